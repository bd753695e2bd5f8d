//! Locks a transaction takes before it reads what it decides on (docs/ARCHITECTURE.md,
//! Concurrency): rows of a table, or a name where there is no row to lock. Nothing to do on
//! SQLite, where every writing transaction holds the database's one write lock from its start.

use std::collections::HashSet;

use super::{Database, Dialect, StorageError, Value, postgres};

/// Makes the transactions that call this with the same `name` run one at a time, from the call
/// until the calling transaction ends: for what has no row to lock yet (a month being closed, an
/// idempotency key, the schema). On SQLite every writing transaction already does (`BEGIN
/// IMMEDIATE`); on PostgreSQL it is a transaction-scoped advisory lock on the name's hash.
pub(crate) fn serialize_on(db: &dyn Database, name: &str) -> Result<(), StorageError> {
    match db.dialect() {
        Dialect::Sqlite => Ok(()),
        Dialect::Postgres => postgres::advisory_lock(db, name),
    }
}

/// The key of the lock [`serialize_on`] takes for `name`: for a statement that takes that lock
/// itself, shared, within it (a push takes its instance's so).
pub(crate) fn lock_key(name: &str) -> i64 {
    postgres::lock_key(name)
}

/// How a transaction holds a row it locks ([`lock_rows`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RowLock {
    /// Alone: other writers and lockers of the row wait (PostgreSQL's `FOR NO KEY UPDATE`; rows
    /// that merely reference it may still be inserted).
    Exclusive,
    /// With other sharers: a writer of the row waits for all of them, and they for it
    /// (`FOR SHARE`).
    Shared,
}

/// Locks the rows of `table` whose `column` is one of `keys` until the caller's transaction
/// ends, in the keys' order (two transactions locking overlapping rows never each hold one the
/// other waits for). For the rows a transaction decides on, before it reads what it decides:
/// on PostgreSQL writers run at once, and a read after the lock sees what the row's other
/// writers committed. Nothing to do on SQLite, where every writing transaction holds the
/// database's one write lock from its start.
pub(crate) fn lock_rows(
    db: &dyn Database,
    (table, column): (&str, &str),
    keys: &[&str],
    how: RowLock,
) -> Result<(), StorageError> {
    if db.dialect() == Dialect::Sqlite {
        return Ok(());
    }
    let clause = match how {
        RowLock::Exclusive => "FOR NO KEY UPDATE",
        RowLock::Shared => "FOR SHARE",
    };
    let mut sorted = keys.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    for chunk in sorted.chunks(KEYS_PER_LOCK) {
        let params: Vec<Value> = chunk.iter().map(|k| (*k).into()).collect();
        db.execute(
            &format!(
                "SELECT 1 FROM {table} WHERE {column} IN ({}) ORDER BY {column} {clause}",
                vec!["?"; chunk.len()].join(", ")
            ),
            &params,
        )?;
    }
    Ok(())
}

/// Locks, like [`lock_rows`] and exclusively, those rows of `table` whose `column` is one of
/// `keys` that no other transaction holds, and answers their keys: the caller decides on those
/// now and leaves the others for later, rather than wait for them while it holds these. Every
/// key on SQLite, where the caller's transaction holds the database's one write lock.
pub(crate) fn lock_free_rows(
    db: &dyn Database,
    (table, column): (&str, &str),
    keys: &[&str],
) -> Result<HashSet<String>, StorageError> {
    if db.dialect() == Dialect::Sqlite {
        return Ok(keys.iter().map(|k| (*k).to_owned()).collect());
    }
    let mut sorted = keys.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut locked = HashSet::with_capacity(sorted.len());
    for chunk in sorted.chunks(KEYS_PER_LOCK) {
        let params: Vec<Value> = chunk.iter().map(|k| (*k).into()).collect();
        let rows = db.execute(
            &format!(
                "SELECT {column} FROM {table} WHERE {column} IN ({}) ORDER BY {column}
                 FOR NO KEY UPDATE SKIP LOCKED",
                vec!["?"; chunk.len()].join(", ")
            ),
            &params,
        )?;
        for row in &rows {
            locked.insert(row.text(0)?);
        }
    }
    Ok(locked)
}

/// Rows [`lock_rows`] locks per statement.
const KEYS_PER_LOCK: usize = 500;
