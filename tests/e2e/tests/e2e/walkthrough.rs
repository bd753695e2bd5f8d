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

/// The walk-through's blocks: the one that starts the test deployment, and the calls.
pub(crate) fn walk_through() -> (Vec<String>, Vec<String>) {
    readme_blocks("## Walk-through")
        .into_iter()
        .partition(|block| block.contains("spin up"))
}

#[test]
fn the_walk_through_runs_as_written_without_the_cron_plugin() {
    let (deployments, calls) = walk_through();
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

    run_the_walk_through(&calls, &[app.origin()], || app.output());
    assert_the_walk_through_ended(&HttpMarket::new(app.origin(), &readme_admin_token()));
}

/// The walk-through's calls (its ```sh blocks but the one that starts the app), run by bash
/// against the hosts at `origins`: every request to the first, or, with more, each to the next
/// (a `curl` ahead of the real one on the script's PATH moves it), as a load balancer spreads
/// them. A failing step fails the test with the script's output and `context`'s.
pub(crate) fn run_the_walk_through(
    calls: &[String],
    origins: &[&str],
    context: impl Fn() -> String,
) {
    let script = calls.join("\n");
    assert_eq!(
        script.lines().filter(|line| *line == README_BASE).count(),
        1,
        "the walk-through sets {README_BASE} once"
    );
    let script = script.replace(README_BASE, &format!("B={}/api/v1", origins[0]));
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = |name: &str, bytes: Vec<u8>| std::fs::write(dir.path().join(name), bytes);
    file("logo.png", png(290, 290, 4096)).expect("logo.png");
    file("guide.pdf", pdf(8192)).expect("guide.pdf");
    file("walk-through.sh", script.into_bytes()).expect("the script");
    let mut path = std::env::var("PATH").unwrap_or_default();
    if origins.len() > 1 {
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).expect("a bin directory");
        write_spreading_curl(&bin.join("curl"), origins);
        path = format!("{}:{path}", bin.display());
    }
    // -x: a failing step shows which command it was.
    let run = Command::new("bash")
        .args(["-euxo", "pipefail", "walk-through.sh"])
        .current_dir(dir.path())
        .env("PATH", path)
        .output()
        .expect("bash runs");
    assert!(
        run.status.success(),
        "the README's walk-through failed ({}):\n--- stdout ---\n{}\n--- stderr ---\n{}\n{}",
        run.status,
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr),
        context()
    );
}

/// A `curl` that sends each request to the next of `origins` in turn (the walk-through's
/// requests name the first), then runs the real one.
fn write_spreading_curl(path: &std::path::Path, origins: &[&str]) {
    let real = std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .map(|dir| std::path::Path::new(dir).join("curl"))
        .find(|candidate| candidate.is_file())
        .expect("curl is on PATH (the walk-through's client)");
    let script = format!(
        r#"#!/usr/bin/env bash
n=$(cat "$0.count" 2>/dev/null || echo 0); echo $((n + 1)) > "$0.count"
origins=({all})
first={first}
to=${{origins[n % ${{#origins[@]}}]}}
args=(); for a in "$@"; do args+=("${{a//"$first"/"$to"}}"); done
exec {real} "${{args[@]}}"
"#,
        all = origins.join(" "),
        first = origins[0],
        real = real.display()
    );
    std::fs::write(path, script).expect("the spreading curl");
    let mut permissions = std::fs::metadata(path).expect("its metadata").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    std::fs::set_permissions(path, permissions).expect("executable");
}

/// It ran to its end: the bills it made are the deployment's only ones, and its statement was
/// paid.
pub(crate) fn assert_the_walk_through_ended(market: &impl Market) {
    let admin = market.admin_token().to_owned();
    // The bills it made are the deployment's only ones: March's two, then Carol's, the first
    // credited.
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
