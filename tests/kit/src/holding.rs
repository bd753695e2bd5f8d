//! Another transaction in flight, held still: a PostgreSQL session of the test's own runs
//! statements in a transaction and keeps it open, holding what they locked — as a push, a bill
//! run or an operator's request halfway through would —, while the test starts requests on
//! threads and waits until they wait behind it. A race is then played in one order, every time,
//! rather than hoped for; and a request that should not wait is seen to finish while the lock is
//! still held.
//!
//! On SQLite there is nothing to hold: a transaction there holds the database's one write lock
//! and no request runs beside it. A [`Holding`] of an app on SQLite holds nothing and waits for
//! nobody, so the same test runs its requests at once there, in whatever order they come.

use std::time::{Duration, Instant};

use postgres::{Client, NoTls};

/// How long a test waits for requests to queue up behind a held lock before it fails.
const DEADLINE: Duration = Duration::from_secs(30);

/// How often a wait looks again.
const POLL: Duration = Duration::from_millis(5);

/// An open transaction of the test's own (rolled back when dropped, unless committed); on
/// SQLite, nothing.
pub struct Holding(Option<Held>);

struct Held {
    session: Client,
    /// Asks who waits: outside any transaction, so each look sees the sessions as they are now
    /// (a transaction sees the server's list of sessions as it was when it first looked).
    observer: Client,
    pid: i32,
}

impl Holding {
    /// Opens a transaction on the PostgreSQL database at `url` and runs `sql` in it (statements
    /// separated by `;`, literals inline).
    pub fn new(url: &str, sql: &str) -> Self {
        let connect =
            || Client::connect(url, NoTls).unwrap_or_else(|e| panic!("connecting to {url}: {e}"));
        let (mut session, observer) = (connect(), connect());
        let pid = session
            .query_one("SELECT pg_backend_pid()", &[])
            .and_then(|row| row.try_get(0))
            .expect("the session's process id");
        session
            .batch_execute("BEGIN")
            .expect("a transaction of the test's own");
        let mut holding = Self(Some(Held {
            session,
            observer,
            pid,
        }));
        holding.run(sql);
        holding
    }

    /// What holds nothing: an app on SQLite.
    pub fn nothing() -> Self {
        Self(None)
    }

    /// Whether it holds anything: the race is played in one order (PostgreSQL), not left to
    /// come as it comes (SQLite).
    pub fn holds(&self) -> bool {
        self.0.is_some()
    }

    /// Runs `sql` in the held transaction: takes more locks (and waits for them, if others hold
    /// them).
    pub fn run(&mut self, sql: &str) {
        if let Err(e) = self.try_run(sql) {
            panic!("{sql}: {e}");
        }
    }

    /// Runs `sql` in the held transaction and answers its error, if it fails.
    pub fn try_run(&mut self, sql: &str) -> Result<(), postgres::Error> {
        match &mut self.0 {
            Some(held) => held.session.batch_execute(sql),
            None => Ok(()),
        }
    }

    /// How many sessions wait behind this one: for a lock it holds, or behind one of those
    /// waiters (in a lock's queue, or for what they hold).
    pub fn waiting(&mut self) -> i64 {
        let Some(held) = &mut self.0 else { return 0 };
        held.observer
            .query_one(
                "WITH RECURSIVE behind (pid) AS (
                     SELECT pid FROM pg_stat_activity WHERE $1 = ANY (pg_blocking_pids(pid))
                     UNION
                     SELECT a.pid FROM pg_stat_activity AS a JOIN behind AS b
                       ON b.pid = ANY (pg_blocking_pids(a.pid)))
                 SELECT COUNT(*) FROM behind",
                &[&held.pid],
            )
            .and_then(|row| row.try_get(0))
            .expect("the sessions waiting")
    }

    /// Waits until at least `n` sessions wait behind this one (at once on SQLite); fails the
    /// test past the deadline.
    pub fn until_waiting(&mut self, n: i64) {
        if self.0.is_none() {
            return;
        }
        let started = Instant::now();
        loop {
            let waiting = self.waiting();
            if waiting >= n {
                return;
            }
            assert!(
                started.elapsed() < DEADLINE,
                "{waiting} sessions wait behind the held transaction, not {n}, after {DEADLINE:?}"
            );
            std::thread::sleep(POLL);
        }
    }

    /// Commits the transaction: what it locked is free, what it wrote visible.
    pub fn commit(mut self) {
        self.run("COMMIT");
    }
}

/// Polls `done` until it holds; fails the test, saying `what`, past the deadline.
pub fn until(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < DEADLINE,
            "{what}: not within {DEADLINE:?}"
        );
        std::thread::sleep(POLL);
    }
}
