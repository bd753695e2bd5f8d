//! The storage port: one SQL database (the system of record) and one key-value store (media
//! blobs). The database is SQLite (the embedded default) or PostgreSQL (any number of hosts),
//! its [`Dialect`]; SQL is written once where the two agree and per dialect where they do not.
//! The adapters implement [`Backend`]: Spin's (`crate::spin`, used by the components: SQLite,
//! PostgreSQL through `spin_sdk::pg4`, and whatever key-value store the runtime config names)
//! and the native ones (`native`, used by the tests: rusqlite and the `postgres` crate). Both
//! run the same SQL, so native tests exercise the real queries on either engine.

use std::cell::{Cell, OnceCell};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult};
pub(crate) use locks::{RowLock, lock_free_rows, lock_key, lock_rows, serialize_on};

mod locks;
pub(crate) mod migrations;
#[cfg(not(target_family = "wasm"))]
pub mod native;
pub mod postgres;

/// Which SQL a database speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite: `?` placeholders, `json_each`, and one writer at a time (`BEGIN IMMEDIATE`).
    Sqlite,
    /// PostgreSQL: `$n` placeholders (the adapters translate `?`), `json_array_elements`, and
    /// concurrent writers that lock what they decide on (docs/ARCHITECTURE.md, Concurrency).
    Postgres,
}

impl Dialect {
    /// The clause that ends a `SELECT` of the rows a transaction decides on, locking them
    /// against other writers of those rows until it ends (PostgreSQL's `FOR NO KEY UPDATE`:
    /// rows that merely reference them may still be inserted); nothing on SQLite, whose
    /// `BEGIN IMMEDIATE` already holds the only write lock there is.
    pub(crate) fn row_lock(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR NO KEY UPDATE",
        }
    }
}

/// A value of a statement's parameters and results: SQLite's four types (plus NULL), which
/// PostgreSQL's `BIGINT`, `TEXT` and `BYTEA` columns hold as well.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// A 64-bit integer.
    Integer(i64),
    /// A float (nestmarket stores none: money is integer cents).
    Real(f64),
    /// UTF-8 text.
    Text(String),
    /// Bytes.
    Blob(Vec<u8>),
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Text(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Text(s)
    }
}

impl From<&String> for Value {
    fn from(s: &String) -> Self {
        Value::Text(s.clone())
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Integer(i)
    }
}

impl From<Vec<u8>> for Value {
    fn from(b: Vec<u8>) -> Self {
        Value::Blob(b)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// One result row; accessors fail (as an internal error) when the schema and the code disagree.
#[derive(Debug, Clone, PartialEq)]
pub struct Row(pub Vec<Value>);

impl Row {
    fn value(&self, i: usize) -> Result<&Value, StorageError> {
        self.0
            .get(i)
            .ok_or_else(|| StorageError::other(format!("column {i} out of range")))
    }

    /// Column `i` as text.
    pub fn text(&self, i: usize) -> Result<String, StorageError> {
        match self.value(i)? {
            Value::Text(s) => Ok(s.clone()),
            v => Err(StorageError::other(format!(
                "column {i}: expected text, got {v:?}"
            ))),
        }
    }

    /// Column `i` as text, or `None` when NULL.
    pub fn opt_text(&self, i: usize) -> Result<Option<String>, StorageError> {
        match self.value(i)? {
            Value::Null => Ok(None),
            _ => self.text(i).map(Some),
        }
    }

    /// Column `i` as bytes.
    pub fn blob(&self, i: usize) -> Result<Vec<u8>, StorageError> {
        match self.value(i)? {
            Value::Blob(b) => Ok(b.clone()),
            v => Err(StorageError::other(format!(
                "column {i}: expected a blob, got {v:?}"
            ))),
        }
    }

    /// Column `i` as an integer.
    pub fn int(&self, i: usize) -> Result<i64, StorageError> {
        match self.value(i)? {
            Value::Integer(n) => Ok(*n),
            v => Err(StorageError::other(format!(
                "column {i}: expected integer, got {v:?}"
            ))),
        }
    }

    /// Column `i` as an integer, or `None` when NULL.
    pub fn opt_int(&self, i: usize) -> Result<Option<i64>, StorageError> {
        match self.value(i)? {
            Value::Null => Ok(None),
            _ => self.int(i).map(Some),
        }
    }
}

/// What kind of storage failure: the one the domain reacts to is a constraint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageErrorKind {
    /// A UNIQUE or PRIMARY KEY constraint refused the write: the race-deciding signal.
    UniqueViolation,
    /// The component is not allowed to open this store (not declared in `spin.toml`).
    AccessDenied,
    /// Another connection holds the lock the statement needs: the adapters retry it (`wait_while_busy`).
    Busy,
    /// The database undid the transaction to break a deadlock or a serialization conflict
    /// (PostgreSQL's 40P01, 40001): [`transaction`] runs it again.
    Retry,
    /// The database server cannot be reached, or is shutting down or starting up (PostgreSQL's
    /// class 08, 57P01–57P03, 53300): the request is answered 503 with `Retry-After`.
    Unavailable,
    /// The table does not exist (yet): the schema is not migrated.
    NoSuchTable,
    /// Anything else: I/O, a schema mismatch.
    Other,
}

/// A failure of the storage port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageError {
    /// Its kind.
    pub kind: StorageErrorKind,
    /// SQLite's (or the store's) own words, for the log.
    pub message: String,
}

impl StorageError {
    /// A failure of kind [`StorageErrorKind::Other`].
    pub fn other(message: impl Into<String>) -> Self {
        Self {
            kind: StorageErrorKind::Other,
            message: message.into(),
        }
    }

    /// Classifies a SQLite error message. Spin reports SQLite failures as plain strings, so the
    /// message is the one signal both adapters share. (PostgreSQL's errors are classified by
    /// their SQLSTATE instead, by the PostgreSQL adapters.)
    pub fn from_sqlite_message(message: String) -> Self {
        let kind = if message.contains("UNIQUE constraint failed")
            || message.contains("PRIMARY KEY constraint failed")
        {
            StorageErrorKind::UniqueViolation
        } else if message.contains("database is locked") {
            StorageErrorKind::Busy
        } else if message.contains("no such table") {
            StorageErrorKind::NoSuchTable
        } else {
            StorageErrorKind::Other
        };
        Self { kind, message }
    }

    /// The failure with the statement that failed, for the log (its first line or so).
    pub(crate) fn in_statement(mut self, sql: &str) -> Self {
        let head: String = sql.split_whitespace().collect::<Vec<_>>().join(" ");
        let head: String = head.chars().take(160).collect();
        self.message = format!("{} (in `{head}`)", self.message);
        self
    }

    /// Whether a UNIQUE or PRIMARY KEY constraint refused the write.
    pub fn is_unique_violation(&self) -> bool {
        self.kind == StorageErrorKind::UniqueViolation
    }
}

impl std::fmt::Display for StorageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.message)
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        match e.kind {
            // Nothing was written (a failed transaction rolls back): the client may retry.
            StorageErrorKind::Unavailable | StorageErrorKind::Retry => ApiError::unavailable(e),
            _ => ApiError::internal(e),
        }
    }
}

/// The longest a statement waits for another connection's lock before its request fails.
/// Generous, because a failed wait turns into a 500 for the client.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs `statement` until no other connection's lock stands in its way, for at most
/// [`BUSY_TIMEOUT`]. Both adapters open their connections with SQLite's own busy handler off and
/// wait here instead. SQLite's handler backs off to sleeps of 25–100 ms whoever waits, so under
/// contention a waiter sleeps through many releases of the write lock and loses it to newcomers
/// again and again (p99 of 1.4 s at 16 concurrent pushes through Spin). Here the longer a
/// statement has waited, the more often it tries ([`poll_interval`]), so when the lock is
/// released the oldest waiters are the likeliest to take it: close to first come, first served,
/// without a shared queue (Spin's instances share nothing but the database). A statement refused
/// for a lock changed nothing, so it is safe to run again, `COMMIT` included.
pub(crate) fn wait_while_busy<T>(
    mut statement: impl FnMut() -> Result<T, StorageError>,
) -> Result<T, StorageError> {
    let started = Instant::now();
    loop {
        match statement() {
            Err(e) if e.kind == StorageErrorKind::Busy && started.elapsed() < BUSY_TIMEOUT => {
                std::thread::sleep(poll_interval(started.elapsed()));
            }
            outcome => return outcome,
        }
    }
}

/// How long a statement that has waited `waited` sleeps before trying again: 8 ms in its first
/// 15 ms, then 4, then 2, and every millisecond (the timers' grain) from 60 ms on; with up to a
/// quarter more at random, so waiters that started together do not keep colliding.
fn poll_interval(waited: Duration) -> Duration {
    let waited_ms = u64::try_from(waited.as_millis()).unwrap_or(u64::MAX);
    let base_us = match waited_ms {
        0..15 => 8_000,
        15..30 => 4_000,
        30..60 => 2_000,
        _ => 1_000,
    };
    let jitter_us = u64::from(crate::platform::ids::random_bytes::<1>()[0]) * base_us / 1_024;
    Duration::from_micros(base_us + jitter_us)
}

/// Turns SQLite's own busy handler off on a new connection: concurrent instances each hold their
/// own connection, and a lock another holds is waited for by [`wait_while_busy`], which polls,
/// where SQLite's handler (whatever the host set) would back off to 100 ms sleeps. libSQL's
/// client refuses the pragma ("unsupported statement"; its server queues writers itself): a
/// refusal leaves the connection as it is, usable, rather than failing it.
pub(crate) fn busy_handler_off(db: &dyn Database) {
    let _ = db.execute("PRAGMA busy_timeout = 0", &[]);
}

/// Stored enums round-trip through their JSON names, so the database holds the API's words.
pub(crate) fn enum_to_str<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => unreachable!("unit enum variants serialize to strings"),
    }
}

pub(crate) fn enum_from_str<T: for<'de> Deserialize<'de>>(s: &str) -> Result<T, StorageError> {
    serde_json::from_value(serde_json::Value::String(s.to_owned()))
        .map_err(|_| StorageError::other(format!("unexpected stored value {s:?}")))
}

/// A connection to the database: one statement per call, parameters bound positionally (`?`,
/// or `?N` for the N-th; the PostgreSQL adapters translate both to `$N`).
pub trait Database {
    /// Runs one statement and returns its rows.
    fn execute(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, StorageError>;

    /// Runs one write (`INSERT`, `UPDATE` or `DELETE`, without `RETURNING`) and returns how many
    /// rows it wrote: for a write whose refusal the caller tells apart by its error (a unique
    /// violation). Spin 4.0.2's PostgreSQL host reports an error met while a statement returns
    /// rows without its SQLSTATE, and its `execute` with it, so the PostgreSQL adapters run
    /// these through `execute`; SQLite counts the rows the write returns.
    fn written(&self, sql: &str, params: &[Value]) -> Result<u64, StorageError> {
        let rows = self.execute(&format!("{sql} RETURNING 0"), params)?;
        Ok(rows.len() as u64)
    }

    /// The SQL this database speaks.
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    /// Opens a transaction ([`transaction`]). On SQLite, `BEGIN IMMEDIATE` takes the write lock
    /// up front, so two instances racing on the same rows serialize instead of failing halfway
    /// with a lock upgrade error. Inside an open transaction of the same connection, a savepoint.
    fn begin(&self) -> Result<(), StorageError> {
        self.execute("BEGIN IMMEDIATE", &[]).map(drop)
    }

    /// Commits what [`Database::begin`] opened.
    fn commit(&self) -> Result<(), StorageError> {
        self.execute("COMMIT", &[]).map(drop)
    }

    /// Undoes what [`Database::begin`] opened.
    fn rollback(&self) -> Result<(), StorageError> {
        self.execute("ROLLBACK", &[]).map(drop)
    }

    /// Whether the outermost transaction was undone by the database to break a deadlock or a
    /// serialization conflict ([`StorageErrorKind::Retry`]) since it began: [`transaction`] then
    /// runs it again.
    fn undone_for_retry(&self) -> bool {
        false
    }
}

/// A connection that knows how deep in transactions it is: a transaction opened inside another
/// (a domain operation inside an idempotent request's transaction) is a savepoint of it, so the
/// whole commits or rolls back as one.
struct Nesting {
    inner: Box<dyn Database>,
    depth: Cell<u32>,
    /// A statement of the current outermost transaction failed with [`StorageErrorKind::Retry`].
    retry: Cell<bool>,
}

impl Nesting {
    /// Notes a failure that undid the transaction, for [`transaction`] to run it again.
    fn noting_retry<T>(&self, outcome: Result<T, StorageError>) -> Result<T, StorageError> {
        if let Err(e) = &outcome
            && e.kind == StorageErrorKind::Retry
        {
            self.retry.set(true);
        }
        outcome
    }
}

impl Database for Nesting {
    fn execute(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, StorageError> {
        self.noting_retry(self.inner.execute(sql, params))
    }

    fn written(&self, sql: &str, params: &[Value]) -> Result<u64, StorageError> {
        self.noting_retry(self.inner.written(sql, params))
    }

    fn dialect(&self) -> Dialect {
        self.inner.dialect()
    }

    fn begin(&self) -> Result<(), StorageError> {
        let depth = self.depth.get();
        match depth {
            0 => {
                self.retry.set(false);
                self.inner.begin()?;
            }
            _ => self
                .execute(&format!("SAVEPOINT nested_{depth}"), &[])
                .map(drop)?,
        }
        self.depth.set(depth + 1);
        Ok(())
    }

    fn commit(&self) -> Result<(), StorageError> {
        // The level stays open when its commit fails: the rollback that follows closes it.
        let depth = self.depth.get().saturating_sub(1);
        match depth {
            0 => self.noting_retry(self.inner.commit())?,
            _ => self
                .execute(&format!("RELEASE nested_{depth}"), &[])
                .map(drop)?,
        }
        self.depth.set(depth);
        Ok(())
    }

    fn rollback(&self) -> Result<(), StorageError> {
        let depth = self.depth.get().saturating_sub(1);
        self.depth.set(depth);
        match depth {
            0 => self.inner.rollback(),
            _ => {
                self.execute(&format!("ROLLBACK TO nested_{depth}"), &[])?;
                self.execute(&format!("RELEASE nested_{depth}"), &[])
                    .map(drop)
            }
        }
    }

    fn undone_for_retry(&self) -> bool {
        self.depth.get() == 0 && self.retry.get()
    }
}

/// The media blob store.
pub trait KeyValue {
    /// The value under `key`.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError>;
    /// Stores `value` under `key`.
    fn set(&self, key: &str, value: &[u8]) -> Result<(), StorageError>;
    /// Removes `key`.
    fn delete(&self, key: &str) -> Result<(), StorageError>;
}

/// How large a piece of a blob the key-value store holds under one key: a file is written and
/// served a piece at a time, so serving a 100 MiB video holds about this much per request.
pub const BLOB_CHUNK: usize = 1_048_576;

/// A response body still in the key-value store: the keys of its pieces, in order, and its
/// length. A handler answers a file with an empty body and this extension; Spin's adapter
/// streams the pieces out one by one (`components`), the native tests read them whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunks {
    /// The keys of the pieces, in order.
    pub keys: Vec<String>,
    /// The body's length in bytes.
    pub size: u64,
}

impl Chunks {
    /// The pieces of a blob of `size` bytes written by [`put_chunked`] under `key`.
    pub(crate) fn of(key: &str, size: u64) -> Self {
        let count = size.div_ceil(BLOB_CHUNK as u64);
        Chunks {
            keys: (0..count).map(|n| format!("{key}/{n}")).collect(),
            size,
        }
    }

    /// The whole body, read piece by piece from `kv`: for tests and small files.
    pub fn read_all(&self, kv: &dyn KeyValue) -> Result<Vec<u8>, StorageError> {
        let mut body = Vec::new();
        for key in &self.keys {
            body.extend(
                kv.get(key)?
                    .ok_or_else(|| StorageError::other(format!("piece {key} is missing")))?,
            );
        }
        Ok(body)
    }
}

/// Writes `bytes` under `key` in pieces of [`BLOB_CHUNK`] bytes (`key/0`, `key/1`, …).
pub(crate) fn put_chunked(kv: &dyn KeyValue, key: &str, bytes: &[u8]) -> Result<(), StorageError> {
    for (n, piece) in bytes.chunks(BLOB_CHUNK).enumerate() {
        kv.set(&format!("{key}/{n}"), piece)?;
    }
    Ok(())
}

/// Deletes a blob written under `key`, whole (as blobs were before pieces) or in pieces of a
/// blob of at most `max_size` bytes. Best effort: an orphaned piece is invisible.
pub(crate) fn delete_chunked(kv: &dyn KeyValue, key: &str, max_size: usize) {
    let _ = kv.delete(key);
    for n in 0..max_size.div_ceil(BLOB_CHUNK) {
        let _ = kv.delete(&format!("{key}/{n}"));
    }
}

/// Opens the real stores. Opening is deferred until a handler needs a store, because a component
/// may only open what `spin.toml` grants it (identity has no key-value store).
pub trait Backend {
    /// A new connection to the database `default`.
    fn open_db(&self) -> Result<Box<dyn Database>, StorageError>;
    /// The key-value store `default`.
    fn open_kv(&self) -> Result<Box<dyn KeyValue>, StorageError>;
}

/// The stores of one request: opened on first use, the schema migrated on first database use.
pub struct Storage {
    backend: Box<dyn Backend>,
    db: OnceCell<Nesting>,
    kv: OnceCell<Box<dyn KeyValue>>,
}

impl Storage {
    /// The stores of one request over `backend`, nothing opened yet.
    pub fn new(backend: impl Backend + 'static) -> Self {
        Self {
            backend: Box::new(backend),
            db: OnceCell::new(),
            kv: OnceCell::new(),
        }
    }

    /// The database, opened and migrated on first use.
    pub fn db(&self) -> ApiResult<&dyn Database> {
        if let Some(db) = self.db.get() {
            return Ok(db);
        }
        let db = self.backend.open_db()?;
        migrations::migrate(db.as_ref())?;
        Ok(self.db.get_or_init(|| Nesting {
            inner: db,
            depth: Cell::new(0),
            retry: Cell::new(false),
        }))
    }

    /// The key-value store, opened on first use.
    pub fn kv(&self) -> ApiResult<&dyn KeyValue> {
        if let Some(kv) = self.kv.get() {
            return Ok(kv.as_ref());
        }
        let kv = self.backend.open_kv()?;
        Ok(self.kv.get_or_init(|| kv).as_ref())
    }
}

/// How many times [`transaction`] runs a transaction the database undid to break a deadlock or a
/// serialization conflict before it gives up (503: the client may retry later).
const RETRIES: u32 = 5;

thread_local! {
    /// How many [`transaction`]s this thread has open: one request (or bill run) per thread,
    /// under Spin as in the native tests.
    static OPEN_TRANSACTIONS: Cell<u32> = const { Cell::new(0) };
}

/// Whether this thread holds a write transaction open: the outbound port refuses to wait on the
/// network then (`platform::outbound::get`).
pub(crate) fn in_transaction() -> bool {
    OPEN_TRANSACTIONS.with(|open| open.get() > 0)
}

/// Counts a [`transaction`] open until it is dropped, however it ends.
struct Open;

impl Open {
    fn new() -> Self {
        OPEN_TRANSACTIONS.with(|open| open.set(open.get() + 1));
        Open
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        OPEN_TRANSACTIONS.with(|open| open.set(open.get().saturating_sub(1)));
    }
}

/// Runs `f` in a transaction ([`Database::begin`]), committing what it did or, on any error,
/// rolling all of it back. Nothing in `f` may wait on the network: the outbound port refuses
/// while it runs. A transaction the database undid to break a deadlock or a serialization
/// conflict (PostgreSQL only) is run again from the start, up to five times: `f` must do
/// nothing outside the database that a second run would repeat.
pub fn transaction<T, E: From<StorageError>>(
    db: &dyn Database,
    mut f: impl FnMut(&dyn Database) -> Result<T, E>,
) -> Result<T, E> {
    let _open = Open::new();
    let mut retries = 0;
    loop {
        db.begin()?;
        let result = f(db).and_then(|v| {
            db.commit()?;
            Ok(v)
        });
        let Err(e) = result else { return result };
        // Nothing to do if the rollback fails too: the connection is dropped with the request,
        // and the database rolls back an open transaction when its connection closes.
        let _ = db.rollback();
        if !db.undone_for_retry() || retries == RETRIES {
            return Err(e);
        }
        retries += 1;
        // A little wait, longer each time and at random, so that the two sides of a deadlock
        // do not meet again at once.
        let jitter = u64::from(crate::platform::ids::random_bytes::<1>()[0]);
        std::thread::sleep(Duration::from_millis(
            u64::from(retries) * (1 + jitter / 32),
        ));
    }
}

/// The plan SQLite makes of `sql` on a freshly migrated database, one line per step: tests
/// hold the reads that must go by index to their plans.
#[cfg(test)]
pub(crate) fn query_plan(sql: &str, params: usize) -> String {
    let dir = tempfile::tempdir().expect("a directory");
    let storage = Storage::new(native::NativeBackend::new(dir.path().join("db.sqlite")));
    let db = storage.db().expect("a migrated database");
    let zeros = vec![Value::Integer(0); params];
    db.execute(&format!("EXPLAIN QUERY PLAN {sql}"), &zeros)
        .expect("a plan")
        .iter()
        .map(|r| r.text(3).expect("the step"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::storage::native::NativeBackend;

    fn count(db: &dyn Database) -> i64 {
        db.execute("SELECT COUNT(*) FROM principals", &[]).unwrap()[0]
            .int(0)
            .unwrap()
    }

    fn insert(db: &dyn Database, id: &str) -> ApiResult<()> {
        db.execute(
            "INSERT INTO principals (id, role, name, token_hash, created_at, token_issued_at)
             VALUES (?, 'provider', 'p', ?, '', '')",
            &[id.into(), id.into()],
        )?;
        Ok(())
    }

    #[test]
    fn the_longer_a_statement_has_waited_the_more_often_it_tries() {
        let interval = |ms| poll_interval(Duration::from_millis(ms));
        for (waited, least) in [(0, 8_000), (20, 4_000), (45, 2_000), (500, 1_000)] {
            let slept = interval(waited).as_micros();
            assert!(
                (least..least * 5 / 4).contains(&slept),
                "{waited} ms: {slept} µs"
            );
        }
    }

    /// libSQL's client, which refuses the busy-timeout pragma.
    struct LibsqlLike(Box<dyn Database>);

    impl Database for LibsqlLike {
        fn execute(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, StorageError> {
            if sql.starts_with("PRAGMA busy_timeout") {
                return Err(StorageError::other("unsupported statement"));
            }
            self.0.execute(sql, params)
        }
    }

    #[test]
    fn a_database_refusing_the_busy_timeout_pragma_is_used_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let db = LibsqlLike(
            NativeBackend::new(dir.path().join("db.sqlite"))
                .open_db()
                .unwrap(),
        );
        busy_handler_off(&db);
        migrations::migrate(&db).unwrap();
        insert(&db, "usr-1").unwrap();
        assert_eq!(count(&db), 1);
    }

    #[test]
    fn a_busy_statement_runs_again_until_the_lock_is_free_and_other_failures_do_not() {
        let busy = || StorageError::from_sqlite_message("database is locked".into());
        let mut tries = 0;
        let outcome = wait_while_busy(|| {
            tries += 1;
            if tries < 3 { Err(busy()) } else { Ok(tries) }
        });
        assert_eq!(outcome.unwrap(), 3);
        let mut tries = 0;
        let failed: Result<(), _> = wait_while_busy(|| {
            tries += 1;
            Err(StorageError::other("disk I/O error"))
        });
        assert!(failed.is_err());
        assert_eq!(tries, 1);
    }

    /// A transaction inside another is a savepoint: its failure undoes only itself, and the
    /// outer one's failure undoes everything, the inner work included.
    #[test]
    fn a_transaction_inside_another_commits_and_rolls_back_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::new(NativeBackend::new(dir.path().join("db.sqlite")));
        let db = storage.db().unwrap();
        let outcome: ApiResult<()> = transaction(db, |db| {
            insert(db, "usr-outer")?;
            let inner: ApiResult<()> = transaction(db, |db| {
                insert(db, "usr-inner")?;
                Err(ApiError::internal("the inner step fails"))
            });
            assert!(inner.is_err());
            assert_eq!(count(db), 1, "only the inner work is undone");
            transaction(db, |db| insert(db, "usr-kept"))
        });
        outcome.unwrap();
        assert_eq!(count(db), 2);

        let outcome: ApiResult<()> = transaction(db, |db| {
            transaction(db, |db| insert(db, "usr-gone"))?;
            Err(ApiError::internal("the outer step fails"))
        });
        assert!(outcome.is_err());
        assert_eq!(
            count(db),
            2,
            "the committed inner work is undone with the outer"
        );
    }
}
