//! How the tour prints: a numbered heading per step, what it does, and what it saw.

use std::io::Write;

/// Prints the heading of step `n`.
pub fn step(n: usize, title: &str) {
    println!("\n{n}. {title}");
    flush();
}

/// Prints a line of what the step does or saw, indented under its heading.
pub fn line(text: &str) {
    for line in text.lines() {
        println!("   {line}");
    }
    flush();
}

/// Prints an empty line.
pub fn blank() {
    println!();
    flush();
}

/// Prints a check that held.
pub fn ok(text: &str) {
    println!("   ✓ {text}");
    flush();
}

fn flush() {
    // A closed stdout only means nobody reads the tour any more.
    let _ = std::io::stdout().flush();
}
