//! The README's commands, run as written: its ```sh blocks, section by section.

use std::path::Path;
use std::process::Command;

use super::{Spin, build, free_loopback_address, repo_dir};

/// The ```sh blocks of the README section headed `heading` (a `## ` line), its subsections
/// included, in order.
pub(crate) fn readme_blocks(heading: &str) -> Vec<String> {
    let readme = std::fs::read_to_string(repo_dir().join("README.md")).expect("README.md");
    let start = readme
        .lines()
        .position(|line| line == heading)
        .unwrap_or_else(|| panic!("README.md has no {heading:?} section"));
    let mut blocks = Vec::new();
    let mut block: Option<String> = None;
    for line in readme.lines().skip(start + 1) {
        match &mut block {
            None if line.starts_with("## ") => break,
            None if line == "```sh" => block = Some(String::new()),
            None => {}
            Some(_) if line == "```" => blocks.extend(block.take()),
            Some(text) => {
                text.push_str(line);
                text.push('\n');
            }
        }
    }
    assert!(block.is_none(), "an unterminated ```sh block in {heading}");
    blocks
}

/// The README's Run command: the one ```sh block of `## Run`.
pub(crate) fn readme_run_command() -> String {
    let mut blocks = readme_blocks("## Run");
    assert_eq!(blocks.len(), 1, "## Run has one command: {blocks:?}");
    blocks.remove(0)
}

/// A README block that deploys the app, run by bash from the repository root with `--listen`
/// and `--state-dir` appended to its last command (so the test's app has a port and a state
/// of its own), and `env` set.
pub(crate) fn readme_command(
    block: &str,
    env: &[(&str, &Path)],
    state_dir: &Path,
) -> (Command, std::net::SocketAddr) {
    build();
    let listen = free_loopback_address();
    let mut command = Command::new("bash");
    command
        .arg("-euo")
        .arg("pipefail")
        .arg("-c")
        .arg(format!(
            "{} --listen {listen} --state-dir \"$STATE_DIR\"",
            block.trim_end()
        ))
        .current_dir(repo_dir())
        .env("STATE_DIR", state_dir);
    for (name, value) in env {
        command.env(name, value);
    }
    (command, listen)
}

/// Starts the app with a README block (see [`readme_command`]).
pub(crate) fn readme_deployment(what: &str, block: &str, env: &[(&str, &Path)]) -> Spin {
    let work = tempfile::tempdir().expect("a temporary directory");
    let state_dir = work.path().join("state");
    let (command, listen) = readme_command(block, env, &state_dir);
    Spin::spawn(what, command, work, listen, state_dir)
}
