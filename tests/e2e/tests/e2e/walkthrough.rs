//! README.md, executed: its walk-through as written, against the test deployment its own
//! commands start; and its Run command's need of the cron plugin. (The Run command's app serving
//! every route is in routes.rs.)

use std::process::Command;

use testkit::{Market, pdf, png};

use crate::harness::{
    HttpMarket, Spin, readme_blocks, readme_command, readme_deployment, readme_run_command,
};

/// The walk-through's settings, which the test replaces with its deployment's.
const README_BASE: &str = "B=http://127.0.0.1:3000/api/v1";

/// The value of the README's `ADMIN='…'` line: the token its deployment commands set.
pub(crate) fn readme_admin_token() -> String {
    let blocks = readme_blocks("## Walk-through").join("\n");
    let line = blocks
        .lines()
        .find_map(|line| line.strip_prefix("ADMIN='"))
        .expect("the walk-through sets ADMIN='…'");
    line.trim_end_matches('\'').to_owned()
}

#[test]
fn the_walk_through_runs_as_written_without_the_cron_plugin() {
    let (deployments, calls): (Vec<String>, Vec<String>) = readme_blocks("## Walk-through")
        .into_iter()
        .partition(|block| block.contains("spin up"));
    assert_eq!(
        deployments.len(),
        1,
        "the walk-through starts one deployment"
    );
    assert!(calls.len() >= 2, "the walk-through's calls: {calls:?}");
    // The selective deployment must not need the plugin: Spin finds none here.
    let no_plugins = tempfile::tempdir().expect("a temporary directory");
    let app = readme_deployment(
        "the README's test deployment",
        &deployments[0],
        &[("SPIN_DATA_DIR", no_plugins.path())],
    );
    assert!(
        !app.processes().iter().any(|p| p.contains("trigger-cron")),
        "{:?}",
        app.processes()
    );

    let script = calls.join("\n");
    assert_eq!(
        script.lines().filter(|line| *line == README_BASE).count(),
        1,
        "the walk-through sets {README_BASE} once"
    );
    let script = script.replace(README_BASE, &format!("B={}/api/v1", app.origin()));
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = |name: &str, bytes: Vec<u8>| std::fs::write(dir.path().join(name), bytes);
    file("logo.png", png(290, 290, 4096)).expect("logo.png");
    file("guide.pdf", pdf(8192)).expect("guide.pdf");
    file("walk-through.sh", script.into_bytes()).expect("the script");
    // -x: a failing step shows which command it was.
    let run = Command::new("bash")
        .args(["-euxo", "pipefail", "walk-through.sh"])
        .current_dir(dir.path())
        .output()
        .expect("bash runs");
    assert!(
        run.status.success(),
        "the README's walk-through failed ({}):\n--- stdout ---\n{}\n--- stderr ---\n{}\n{}",
        run.status,
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr),
        app.output()
    );

    // It ran to its end: the bills it made are the deployment's only ones — March's two, then
    // Carol's, the first credited — and its statement was paid.
    let admin = readme_admin_token();
    let market = HttpMarket::new(app.origin(), &admin);
    let bills = market.bills(&admin, None);
    let totals: Vec<&str> = bills.iter().map(|b| b["total"].as_str().unwrap()).collect();
    assert_eq!(totals[..3], ["502.00", "1.60", "51.60"], "{bills:?}");
    assert_eq!(bills[0]["credited"], "50.00", "{bills:?}");
    let march = market
        .get("/api/v1/settlements?month=2026-03", &admin)
        .expect(200)
        .json();
    assert_eq!(
        march["items"][0]["payout_reference"], "BANK-2026-04-0001",
        "{march}"
    );
}

#[test]
fn the_run_command_needs_the_cron_plugin() {
    let no_plugins = tempfile::tempdir().expect("a temporary directory");
    let work = tempfile::tempdir().expect("a temporary directory");
    let state_dir = work.path().join("state");
    let (command, listen) = readme_command(
        &readme_run_command(),
        &[("SPIN_DATA_DIR", no_plugins.path())],
        &state_dir,
    );
    let output = Spin::refused(
        "the README's Run command without the plugin",
        command,
        work,
        listen,
        state_dir,
    );
    assert!(output.contains("trigger-cron"), "{output}");
}
