//! `spin build` once per test run, and `spin up` processes that always stop: each runs in its own
//! process group (spin up starts a process per trigger, the cron plugin among them), which is
//! killed on drop — and, should the test process die first, by a watchdog that notices its pipe
//! from the test process close.

use std::fs::File;
use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::{ADMIN_TOKEN, HttpMarket, Manifest, repo_dir};

/// How long a starting `spin up` may take to serve HTTP: it compiles every component first
/// (cached by Wasmtime after the first time), on a possibly loaded 2-core machine.
const SERVING_WITHIN: Duration = Duration::from_secs(120);

const NO_SPIN: &str = "`spin` is not on PATH: the end-to-end tests run the app under Spin. Install \
    Spin 3.x or 4.x with its installer (`curl -fsSL https://spinframework.dev/downloads/install.sh | \
    bash`, then put `spin` on PATH) and the cron trigger (`spin plugins install trigger-cron`); see \
    README.md, Install";

/// Builds the components with `spin build` from the repository root (which also proves the
/// manifest's build commands), once per test process; every later caller gets the same outcome.
pub(crate) fn build() {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let outcome = BUILT.get_or_init(|| {
        let output = Command::new("spin")
            .arg("build")
            .arg("--from")
            .arg(repo_dir().join("spin.toml"))
            .current_dir(repo_dir())
            .stdin(Stdio::null())
            .output();
        match output {
            Err(e) if e.kind() == ErrorKind::NotFound => Err(NO_SPIN.to_owned()),
            Err(e) => Err(format!("could not run `spin build`: {e}")),
            Ok(out) if out.status.success() => Ok(()),
            Ok(out) => Err(format!(
                "`spin build` failed ({}):\n{}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )),
        }
    });
    if let Err(message) = outcome {
        panic!("{message}");
    }
}

/// A `spin up` to start: the manifest, the variables, the state directory and the runtime
/// config.
pub(crate) struct SpinUp {
    manifest: Manifest,
    variables: Vec<(String, String)>,
    state_dir: Option<PathBuf>,
    runtime_config: Option<PathBuf>,
}

impl SpinUp {
    /// The manifest with the test operator's `admin_token` and the clock override allowed.
    pub(crate) fn new(manifest: Manifest) -> Self {
        SpinUp {
            manifest,
            variables: vec![
                ("admin_token".to_owned(), ADMIN_TOKEN.to_owned()),
                ("allow_clock_override".to_owned(), "true".to_owned()),
            ],
            state_dir: None,
            runtime_config: None,
        }
    }

    /// Runs with `--runtime-config-file path`.
    pub(crate) fn runtime_config(mut self, path: &Path) -> Self {
        self.runtime_config = Some(path.to_owned());
        self
    }

    pub(crate) fn variable(mut self, name: &str, value: &str) -> Self {
        self.variables.retain(|(n, _)| n != name);
        self.variables.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Keeps the app's state (database, key-value store, logs) in `dir` rather than a fresh one:
    /// for two hosts of one deployment, or a restart after a crash.
    pub(crate) fn state_dir(mut self, dir: &Path) -> Self {
        self.state_dir = Some(dir.to_owned());
        self
    }

    pub(crate) fn start(self) -> Spin {
        let mut spin = self.launch();
        spin.serving();
        spin
    }

    /// Starts them all at once, then waits for each to serve: the hosts of a deployment starting
    /// together.
    pub(crate) fn start_together(ups: Vec<SpinUp>) -> Vec<Spin> {
        let mut hosts: Vec<Spin> = ups.into_iter().map(SpinUp::launch).collect();
        for host in &mut hosts {
            host.serving();
        }
        hosts
    }

    /// Runs `spin up`, without waiting for it to serve.
    fn launch(self) -> Spin {
        build();
        let work = tempfile::tempdir().expect("a temporary directory");
        let manifest = self.manifest.write(work.path());
        let state_dir = self.state_dir.unwrap_or_else(|| work.path().join("state"));
        let listen = free_loopback_address();
        let mut command = Command::new("spin");
        command
            .arg("up")
            .arg("--from")
            .arg(manifest)
            .arg("--listen")
            .arg(listen.to_string())
            .arg("--state-dir")
            .arg(&state_dir);
        if let Some(path) = &self.runtime_config {
            command.arg("--runtime-config-file").arg(path);
        }
        for (name, value) in &self.variables {
            command.arg("--variable").arg(format!("{name}={value}"));
        }
        Spin::launch("spin up", command, work, listen, state_dir)
    }
}

/// A running app. Dropping it kills its whole process group.
pub(crate) struct Spin {
    what: String,
    child: Child,
    watchdog: Child,
    /// Held open until the watchdog must act: its end of the pipe closing is the signal.
    _lifeline: ChildStdin,
    origin: String,
    state_dir: PathBuf,
    work: TempDir,
    stopped: bool,
}

impl Spin {
    /// Runs `command` (described as `what`), which must serve the app on `listen` with its state
    /// in `state_dir`, in a process group of its own; returns once it answers HTTP. Its output
    /// goes to files in `work`, which lives as long as the process.
    pub(crate) fn spawn(
        what: &str,
        command: Command,
        work: TempDir,
        listen: SocketAddr,
        state_dir: PathBuf,
    ) -> Spin {
        let mut spin = Spin::launch(what, command, work, listen, state_dir);
        spin.serving();
        spin
    }

    /// Returns once the app serves HTTP; fails the test if it exits first.
    fn serving(&mut self) {
        if let Err(exit) = self.wait_until_serving() {
            panic!(
                "{} exited ({exit}) before it served HTTP on {}:\n{}",
                self.what,
                self.origin,
                self.output()
            );
        }
    }

    /// Runs `command` like [`Spin::spawn`], for a deployment that must refuse to start: returns
    /// its output once it has exited, and fails the test if it serves HTTP instead.
    pub(crate) fn refused(
        what: &str,
        command: Command,
        work: TempDir,
        listen: SocketAddr,
        state_dir: PathBuf,
    ) -> String {
        let mut spin = Spin::launch(what, command, work, listen, state_dir);
        match spin.wait_until_serving() {
            Ok(()) => panic!("{what} served HTTP, but it should have refused to start"),
            Err(_) => spin.output(),
        }
    }

    fn launch(
        what: &str,
        mut command: Command,
        work: TempDir,
        listen: SocketAddr,
        state_dir: PathBuf,
    ) -> Spin {
        let output = |name: &str| File::create(work.path().join(name)).expect("an output file");
        command
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(output("stdout.txt"))
            .stderr(output("stderr.txt"));
        let mut child = match command.spawn() {
            Err(e) if e.kind() == ErrorKind::NotFound => panic!("{NO_SPIN}"),
            other => other.unwrap_or_else(|e| panic!("could not start {what}: {e}")),
        };
        // The watchdog is in a group of its own, so that a Ctrl-C of the test run does not stop
        // it first. When the test process ends without dropping this Spin (a static, a crash),
        // the pipe closes, `read` returns, and it kills the group and removes the work directory.
        let group = child.id().to_string();
        let mut watchdog = Command::new("sh")
            .arg("-c")
            .arg(r#"read _; kill -KILL "-$0"; rm -rf -- "$1""#)
            .arg(&group)
            .arg(work.path())
            .process_group(0)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                let _ = child.kill();
                panic!("could not start the watchdog of {what}: {e}")
            });
        let lifeline = watchdog.stdin.take().expect("a piped stdin");
        Spin {
            what: what.to_owned(),
            child,
            watchdog,
            _lifeline: lifeline,
            origin: format!("http://{listen}"),
            state_dir,
            work,
            stopped: false,
        }
    }

    /// `http://127.0.0.1:PORT`
    pub(crate) fn origin(&self) -> &str {
        &self.origin
    }

    /// A client of this app as the test operator, on the real clock.
    pub(crate) fn market(&self) -> HttpMarket {
        HttpMarket::new(&self.origin, ADMIN_TOKEN)
    }

    /// What a component wrote to `stream` ("stdout" or "stderr"), from Spin's log directory.
    pub(crate) fn component_log(&self, component: &str, stream: &str) -> String {
        let path = self
            .state_dir
            .join("logs")
            .join(format!("{component}_{stream}.txt"));
        std::fs::read_to_string(path).unwrap_or_default()
    }

    /// The memory of this app's process group, in bytes, summed over its processes from
    /// /proc: (resident now, the peak each process reached so far).
    pub(crate) fn memory(&self) -> (u64, u64) {
        let group = self.child.id().to_string();
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return (0, 0);
        };
        let (mut now, mut peak) = (0, 0);
        for entry in entries.flatten() {
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            let pgrp = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(2));
            if pgrp != Some(group.as_str()) {
                continue;
            }
            let status = std::fs::read_to_string(entry.path().join("status")).unwrap_or_default();
            let kib = |field: &str| -> u64 {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix(field))
                    .and_then(|v| v.split_whitespace().next()?.parse().ok())
                    .unwrap_or(0)
            };
            now += kib("VmRSS:") * 1024;
            peak += kib("VmHWM:") * 1024;
        }
        (now, peak)
    }

    /// The command lines of the processes of this app's group (`spin up`, one `spin trigger …`
    /// per trigger type, the cron plugin), from /proc.
    pub(crate) fn processes(&self) -> Vec<String> {
        let group = self.child.id().to_string();
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|entry| {
                let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
                // pid (comm) state ppid pgrp …; comm may hold spaces, so split after its ')'.
                let pgrp = stat.rsplit_once(')')?.1.split_whitespace().nth(2)?;
                if pgrp != group {
                    return None;
                }
                let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
                Some(String::from_utf8_lossy(&cmdline).replace('\0', " "))
            })
            .collect()
    }

    /// Spin's own stdout and stderr so far.
    pub(crate) fn output(&self) -> String {
        let read =
            |name: &str| std::fs::read_to_string(self.work.path().join(name)).unwrap_or_default();
        format!(
            "--- stdout ---\n{}\n--- stderr ---\n{}",
            read("stdout.txt"),
            read("stderr.txt")
        )
    }

    /// Kills the whole process group at once (SIGKILL: no shutdown, as in a crash) and reaps it.
    pub(crate) fn kill(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        let _ = self.watchdog.kill();
        let _ = self.watchdog.wait();
        let group = i32::try_from(self.child.id()).expect("a pid");
        // std has no way to signal a process group. SAFETY: kill(2) with a negative pid signals
        // that group; no memory is involved.
        #[allow(unsafe_code)]
        unsafe {
            libc::kill(-group, libc::SIGKILL)
        };
        let _ = self.child.wait();
    }

    /// Polls until the app answers HTTP; the exit status if the process ends first.
    fn wait_until_serving(&mut self) -> Result<(), std::process::ExitStatus> {
        let probe = ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(5)))
                .build(),
        );
        let deadline = Instant::now() + SERVING_WITHIN;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.kill();
                return Err(status);
            }
            // Any answer, even Spin's 404 for `/`, means the HTTP trigger is serving.
            if probe.get(format!("{}/", self.origin)).call().is_ok() {
                return Ok(());
            }
            assert!(
                Instant::now() < deadline,
                "{} did not serve HTTP on {} within {} s:\n{}",
                self.what,
                self.origin,
                SERVING_WITHIN.as_secs(),
                self.output()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Spin {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A loopback address no one listens on right now.
pub(crate) fn free_loopback_address() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
}
