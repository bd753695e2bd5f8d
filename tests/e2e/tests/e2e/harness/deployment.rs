//! A deployment beyond one machine: several `spin up` hosts, each on its own port and state
//! directory, sharing one PostgreSQL database (a fresh one, on the tests' server) and one Redis
//! (`deploy/runtime-config.postgres-redis.toml`, pointed at the tests' Redis); and a client that
//! spreads its requests over the hosts, round-robin.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use chrono::{DateTime, Utc};
use testkit::engine::{HOW_TO_START, PostgresDatabase, postgres_parts};
use testkit::{Market, Response};

use super::{ADMIN_TOKEN, HttpMarket, Manifest, Spin, SpinUp, repo_dir};

/// The variable naming the tests' Redis (`redis://127.0.0.1:PORT`).
const REDIS_VARIABLE: &str = "NESTMARKET_TEST_REDIS";

/// The tests' PostgreSQL cluster, for the test that restarts it: its data directory and the
/// directory of its programs (`pg_ctl`).
const POSTGRES_DATA_VARIABLE: &str = "NESTMARKET_TEST_POSTGRES_DATA";
const POSTGRES_BIN_VARIABLE: &str = "NESTMARKET_TEST_POSTGRES_BIN";

/// Hosts of one deployment on PostgreSQL and Redis. The deployments of the test process take
/// turns (one at a time holds the tests' database server: three hosts load the machine, and one
/// test restarts the server); dropping it stops its hosts, then drops its database.
pub(crate) struct Deployment {
    hosts: Vec<Spin>,
    database: PostgresDatabase,
    _work: tempfile::TempDir,
    _turn: MutexGuard<'static, ()>,
}

impl Deployment {
    /// `count` hosts of `manifest`, started together on an empty database; `adjust` may set more
    /// variables of each host (the same for all).
    pub(crate) fn start(
        manifest: &Manifest,
        count: usize,
        adjust: impl Fn(SpinUp) -> SpinUp,
    ) -> Self {
        static TURN: Mutex<()> = Mutex::new(());
        // A failed test's turn is over all the same.
        let turn = TURN.lock().unwrap_or_else(PoisonError::into_inner);
        let database = PostgresDatabase::new();
        let work = tempfile::tempdir().expect("a temporary directory");
        let runtime_config = redis_runtime_config(work.path());
        let ups = (0..count)
            .map(|_| adjust(on_postgres(SpinUp::new(manifest.clone()), &database)))
            .map(|up| up.runtime_config(&runtime_config))
            .collect();
        Deployment {
            hosts: SpinUp::start_together(ups),
            database,
            _work: work,
            _turn: turn,
        }
    }

    /// The hosts.
    pub(crate) fn hosts(&self) -> &[Spin] {
        &self.hosts
    }

    /// One host, to kill it.
    pub(crate) fn host_mut(&mut self, i: usize) -> &mut Spin {
        &mut self.hosts[i]
    }

    /// A client spreading its requests over the hosts, round-robin, on the real clock.
    pub(crate) fn market(&self) -> RoundRobin {
        self.market_as(ADMIN_TOKEN)
    }

    /// [`Deployment::market`] for a deployment whose `admin_token` is `admin_token`.
    pub(crate) fn market_as(&self, admin_token: &str) -> RoundRobin {
        RoundRobin {
            hosts: self
                .hosts
                .iter()
                .map(|h| HttpMarket::new(h.origin(), admin_token))
                .collect(),
            next: AtomicUsize::new(0),
        }
    }

    /// The deployment's database, for a look the API does not give.
    pub(crate) fn database(&self) -> &PostgresDatabase {
        &self.database
    }
}

/// A host's variables for the deployment's database.
fn on_postgres(up: SpinUp, database: &PostgresDatabase) -> SpinUp {
    let (user, password, address, _) = postgres_parts();
    up.variable("database", "postgres")
        .variable("postgres_host", &address)
        .variable("postgres_database", database.name())
        .variable("postgres_user", &user)
        .variable("postgres_password", &password)
}

/// `deploy/runtime-config.postgres-redis.toml` as the deployment uses it: its Redis URL is the
/// tests' Redis. Written into `dir`; its path.
fn redis_runtime_config(dir: &Path) -> PathBuf {
    let redis = std::env::var(REDIS_VARIABLE)
        .unwrap_or_else(|_| panic!("{REDIS_VARIABLE} is not set: {HOW_TO_START}"));
    let template_path = repo_dir().join("deploy/runtime-config.postgres-redis.toml");
    let template = std::fs::read_to_string(&template_path).expect("the runtime config");
    let mut doc: toml_edit::DocumentMut = template.parse().expect("the runtime config is TOML");
    let store = &mut doc["key_value_store"]["default"];
    assert_eq!(store["type"].as_str(), Some("redis"), "{template}");
    store["url"] = toml_edit::value(redis);
    let path = dir.join("runtime-config.toml");
    std::fs::write(&path, doc.to_string()).expect("writing the runtime config");
    path
}

/// A client of every host of a deployment: each request goes to the next host.
pub(crate) struct RoundRobin {
    hosts: Vec<HttpMarket>,
    next: AtomicUsize,
}

impl RoundRobin {
    /// The client of host `i` alone.
    pub(crate) fn host(&self, i: usize) -> &HttpMarket {
        &self.hosts[i]
    }
}

impl Market for RoundRobin {
    fn call_with_headers(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Response {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.hosts.len();
        self.hosts[i].call_with_headers(method, path, token, headers, body)
    }

    fn admin_token(&self) -> &str {
        self.hosts[0].admin_token()
    }

    fn now(&self) -> DateTime<Utc> {
        self.hosts[0].now()
    }

    fn set_now(&self, now: DateTime<Utc>) {
        for host in &self.hosts {
            host.set_now(now);
        }
    }
}

/// Stops (`"stop"`, fast: sessions are ended) or starts (`"start"`) the tests' PostgreSQL
/// server, as its owner: the test of an outage.
pub(crate) fn pg_ctl(action: &str) {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: {HOW_TO_START}"))
    };
    let (data, bin) = (var(POSTGRES_DATA_VARIABLE), var(POSTGRES_BIN_VARIABLE));
    let pg_ctl = format!("{bin}/pg_ctl");
    let log = format!("{data}/../restarted.log");
    let args = ["-D", &data, "-l", &log, "-m", "fast", "-w", action];
    // PostgreSQL refuses to run as root: its owner runs it.
    // SAFETY: geteuid(2) only reads the process's credentials.
    #[allow(unsafe_code)]
    let root = unsafe { libc::geteuid() } == 0;
    let mut command = if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", &pg_ctl]);
        c
    } else {
        Command::new(&pg_ctl)
    };
    let out = command.args(args).output().expect("pg_ctl runs");
    assert!(
        out.status.success(),
        "pg_ctl {action}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
