//! schemathesis against a real agent's OpenAPI document: every operation, with data drawn
//! from its schema and data that breaks it (its coverage, fuzzing and stateful phases), must
//! never answer a server error, and every answer must be one the document gives (status,
//! content type, body schema, headers); writes must refuse a missing or wrong token.
//!
//! The checks that judge validation rather than answers (`positive_data_acceptance`,
//! `negative_data_rejection`) are left out: the document gives types, not every rule the
//! agent checks (a duration's grammar, a key's characters), so a value of the right type
//! can be refused with a documented 400. `/api/events` is left out: a stream never ends,
//! which a request-and-answer tool cannot judge (`tests/streams.rs` covers it).
//!
//! `scripts/test.sh` installs schemathesis into `target/schemathesis`; without it the test
//! fails and says so.

mod support;

use std::path::Path;
use std::process::Command;

use support::{AgentProcess, target_dir};

const TOKEN: &str = "schemathesis-write-token";

#[test]
fn no_server_error_and_no_answer_outside_the_document() {
    let python = target_dir().join("schemathesis/bin/python3");
    assert!(
        python.with_file_name("schemathesis").exists(),
        "schemathesis is missing from {}: run scripts/test.sh, which installs it \
         (python3 -m venv target/schemathesis && target/schemathesis/bin/pip install schemathesis==4.32.5)",
        python
            .parent()
            .map_or_else(String::new, |p| p.display().to_string())
    );
    let agent =
        AgentProcess::start_with_env("schema", &["--fault-injection"], &[("ROSTER_TOKEN", TOKEN)]);
    let runner = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/schemathesis-run.py");
    let out = Command::new(&python)
        .arg(runner)
        .args(["run", &agent.url("/api/openapi.json")])
        .args(["--checks", "all"])
        .args([
            "--exclude-checks",
            "positive_data_acceptance,negative_data_rejection",
        ])
        .args(["--exclude-path", "/api/events"])
        .args(["-H", &format!("Authorization: Bearer {TOKEN}")])
        .args([
            "--max-examples",
            "25",
            "--request-timeout",
            "10",
            "--workers",
            "2",
        ])
        .args(["--no-color"])
        .output()
        .expect("run schemathesis");
    let report = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "schemathesis found failures:\n{report}"
    );
    // It ran the operations, not nothing.
    assert!(report.contains("Tested: 36"), "{report}");
}
