//! `spin build`: run each component's `[component.<id>.build] command` through the shell in the manifest
//! directory (or its `workdir`). A test process runs each distinct command once, however many apps its
//! tests load; later loads reuse the outcome, failures included, so one broken build fails fast everywhere.
//!
//! Nested cargo is safe here: `cargo test` releases the build-directory lock before it runs test binaries.
use crate::manifest::Manifest;
use anyhow::{Result, bail};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, PoisonError};

/// Outcome of each `(working directory, command)` already run in this process.
static BUILDS: Mutex<BTreeMap<(PathBuf, String), Result<(), String>>> = Mutex::new(BTreeMap::new());

pub(crate) fn build_components(manifest_dir: &Path, manifest: &Manifest) -> Result<()> {
    // Held for the whole build so that concurrent tests wait for the first one instead of racing cargo.
    let mut builds = BUILDS.lock().unwrap_or_else(PoisonError::into_inner);
    for (id, component) in &manifest.component {
        let Some(build) = &component.build else {
            continue;
        };
        let workdir = match &build.workdir {
            Some(dir) => manifest_dir.join(dir),
            None => manifest_dir.to_path_buf(),
        };
        let outcome = builds
            .entry((workdir.clone(), build.command.clone()))
            .or_insert_with(|| run(&workdir, &build.command));
        if let Err(message) = outcome {
            bail!("building component {id:?} failed: {message}");
        }
    }
    Ok(())
}

fn run(workdir: &Path, command: &str) -> Result<(), String> {
    let output = Command::new("sh")
        .arg("-c")
        .arg(command)
        .current_dir(workdir)
        .output()
        .map_err(|e| format!("could not run `{command}` in {}: {e}", workdir.display()))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{command}` in {} exited with {}:\n{}",
            workdir.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}
