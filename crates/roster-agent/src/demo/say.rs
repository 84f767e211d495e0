//! How the demo prints: a numbered heading per phase, what it does and what it saw, above
//! a progress bar that shows the workload's counters (drawn only on a terminal).

use std::io::Write;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The demo's voice and its progress bar.
pub struct Narrator {
    bar: ProgressBar,
}

impl Narrator {
    /// A narrator whose bar counts the workload's `length` (hidden until [`Self::start`]).
    pub fn new(length: Duration) -> Self {
        let bar = ProgressBar::with_draw_target(Some(millis(length)), ProgressDrawTarget::hidden());
        // The template is a constant: it parses, and a bar without a style still counts.
        if let Ok(style) =
            ProgressStyle::with_template("{elapsed:>4} [{bar:28.cyan/blue}] {percent:>3}%  {msg}")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        Self { bar }
    }

    /// Shows the bar from now on (on standard output, if it is a terminal).
    pub fn start(&self) {
        self.bar.set_draw_target(ProgressDrawTarget::stdout());
        self.bar.reset_elapsed();
    }

    /// Moves the bar to `elapsed` of the workload and shows `counters` beside it.
    pub fn progress(&self, elapsed: Duration, counters: String) {
        self.bar
            .set_position(millis(elapsed).min(self.bar.length().unwrap_or(u64::MAX)));
        self.bar.set_message(counters);
    }

    /// Removes the bar (before the summary).
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }

    /// Prints the heading of phase `n`.
    pub fn step(&self, n: usize, title: &str) {
        self.print(&format!("\n{n}. {title}"));
    }

    /// Prints a line of what the phase does or saw, indented under its heading.
    pub fn line(&self, text: &str) {
        let indented: Vec<String> = text.lines().map(|l| format!("   {l}")).collect();
        self.print(&indented.join("\n"));
    }

    /// Prints a check that held.
    pub fn ok(&self, text: &str) {
        self.print(&format!("   ✓ {text}"));
    }

    /// Prints text as it is (the summary).
    pub fn raw(&self, text: &str) {
        self.print(text);
    }

    fn print(&self, text: &str) {
        self.bar.suspend(|| {
            println!("{text}");
            // A closed stdout only means nobody reads the demo any more.
            let _ = std::io::stdout().flush();
        });
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
