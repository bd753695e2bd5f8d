//! Running the app under real Spin for a test: build, manifest copies, `spin up` processes and
//! an HTTP client that speaks the test kit's vocabulary.

mod browser;
mod client;
mod deployment;
mod manifest;
mod process;
mod readme;

use std::ops::Deref;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

pub(crate) use browser::{Browser, PAGE_WITHIN};
pub(crate) use client::HttpMarket;
pub(crate) use deployment::{Deployment, pg_ctl};
pub(crate) use manifest::Manifest;
pub(crate) use process::{Spin, SpinUp, build, free_loopback_address};
pub(crate) use readme::{readme_blocks, readme_command, readme_deployment, readme_run_command};

/// The `admin_token` of the apps the tests start.
pub(crate) const ADMIN_TOKEN: &str = "e2e-admin-token-0123456789";

/// The repository root: spin.toml, README.md and the build's `target/`.
pub(crate) fn repo_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .canonicalize()
        .expect("the repository root")
}

/// The app that tests share: spin.toml without the cron trigger, the clock override allowed.
/// It is started by the first test that asks and stopped when the test process ends.
///
/// Its database is shared, and a bill run bills every tenant's closed periods as of its own
/// clock; so one test at a time has the app (the returned turn ends when it is dropped), and a
/// test asserts only about its own principals, products and instances.
pub(crate) fn shared_app() -> SharedApp {
    static SHARED: OnceLock<Spin> = OnceLock::new();
    static TURN: Mutex<()> = Mutex::new(());
    // A failed test's turn is over all the same.
    let turn = TURN.lock().unwrap_or_else(PoisonError::into_inner);
    let app = SHARED.get_or_init(|| SpinUp::new(Manifest::repo().without_cron()).start());
    SharedApp {
        market: app.market(),
        _turn: turn,
    }
}

/// A test's turn with the shared app: a client of it (see [`shared_app`]).
pub(crate) struct SharedApp {
    market: HttpMarket,
    _turn: MutexGuard<'static, ()>,
}

impl Deref for SharedApp {
    type Target = HttpMarket;

    fn deref(&self) -> &HttpMarket {
        &self.market
    }
}

/// Polls `check` until it returns a value, for at most `deadline`; panics naming `what` if it
/// never does. This is how tests wait: on a condition, never for a time.
#[track_caller]
pub(crate) fn eventually<T>(
    what: &str,
    deadline: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> T {
    let give_up = Instant::now() + deadline;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            Instant::now() < give_up,
            "{what}: not within {} s",
            deadline.as_secs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
