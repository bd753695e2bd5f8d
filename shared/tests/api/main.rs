//! The API tests: the domain's HTTP handlers over a real database — SQLite through rusqlite, and
//! PostgreSQL through the `postgres` crate — with a new connection per request as Spin opens
//! them, request in, response out: every rule, every refusal (a clear 4xx, nothing changed),
//! every tenant boundary. One binary; the vocabulary is the test kit's (`testkit::Market`), over
//! its in-process market (`testkit::native::TestApp`).
//!
//! Every test runs on both engines: this process on the one `NESTMARKET_TEST_DATABASE` names
//! (SQLite by default), and [`api_tests_pass_on_postgres`] runs the binary again, every test of
//! it, on PostgreSQL.

mod arrears;
mod bill_runs;
mod bill_usage;
mod billing;
mod collection;
mod concurrency;
mod console;
mod console_after_publication;
mod console_forms;
mod credit_notes;
mod delisting;
mod exact;
mod exports;
mod fuzz;
mod idempotency;
mod identity;
mod limits;
mod listings;
mod metering;
mod orders;
mod outbound;
mod price_changes;
mod reviews;
mod robustness;
mod schema;
mod security;
mod self_test;
mod settlements;
mod upgrade;
mod webhooks;

use std::process::Command;

use testkit::engine::{ENGINE_VARIABLE, Engine, HOW_TO_START, POSTGRES_VARIABLE, engine};

/// The same tests on PostgreSQL: this binary again, with `NESTMARKET_TEST_DATABASE=postgres`,
/// every test but this one. Without a server (`NESTMARKET_TEST_POSTGRES`) it fails, saying how
/// to start one. Run on PostgreSQL alone, the process is that pass already.
#[test]
fn api_tests_pass_on_postgres() {
    if engine() == Engine::Postgres {
        return;
    }
    assert!(
        std::env::var_os(POSTGRES_VARIABLE).is_some(),
        "{POSTGRES_VARIABLE} is not set: {HOW_TO_START}"
    );
    let this = std::env::current_exe().expect("the test binary's path");
    let output = Command::new(this)
        .env(ENGINE_VARIABLE, "postgres")
        .args(["--skip", "api_tests_pass_on_postgres"])
        .output()
        .expect("the test binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let summary = stdout
        .lines()
        .filter(|l| l.starts_with("test result") || l.contains("FAILED"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        output.status.success(),
        "the API tests on PostgreSQL failed:\n{summary}\n--- stdout ---\n{stdout}\n--- stderr ---\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    println!("on PostgreSQL: {summary}");
}
