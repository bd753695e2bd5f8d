//! What PostgreSQL needs beyond the portable SQL, shared by its two adapters (Spin's, over
//! `spin_sdk::pg4`, and the native one of the tests): `$N` placeholders, errors classified by
//! SQLSTATE, transactions that say their isolation, and the schema's own migrations.

pub(crate) mod migrations;
#[cfg(not(target_family = "wasm"))]
pub(crate) mod native;

use std::borrow::Cow;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::{BUSY_TIMEOUT, Database, StorageError, StorageErrorKind};

/// `BEGIN` as every PostgreSQL transaction of the app starts: READ COMMITTED whatever the
/// server's default, because the app's locks are written for it (docs/ARCHITECTURE.md,
/// Concurrency): each statement sees what committed before it started, and a row a statement
/// locks is read as it is once the lock is held.
pub(crate) const BEGIN: &str = "BEGIN ISOLATION LEVEL READ COMMITTED";

/// How long a transaction may sit idle — its session waiting for the next statement — before
/// the server ends the session, rolling it back and freeing its locks
/// (`idle_in_transaction_session_timeout`): the app waits on nothing but the database inside a
/// transaction, so only a component that trapped halfway (its session back in the host's pool,
/// the transaction open) stays idle that long.
pub(crate) const IDLE_IN_TRANSACTION: Duration = Duration::from_secs(30);

/// Readies a session a connection was just lent: ends any transaction it still holds, and gives
/// it the app's time limits — a statement waits at most [`BUSY_TIMEOUT`] for a lock
/// (`lock_timeout`, as long as SQLite waits; then 55P03, a 503) and a transaction idles at most
/// [`IDLE_IN_TRANSACTION`] — unless the server gives it its own (`ALTER ROLE … SET`, `ALTER
/// DATABASE … SET`, the connection's options; `0` means none set). One statement, which
/// answers whether a transaction was open: inside one `now()` is when it began, outside it is
/// the statement's own time (a failed transaction refuses the question).
///
/// Spin's host lends a session again once the instance that held it is gone, however it went:
/// a component that trapped in the middle of a transaction leaves it open, and the next request
/// would commit that half of a transaction with its own; the pool resets a session's settings
/// (`RESET ALL`) before lending it again, so they are set here every time.
pub(crate) fn ready_session(db: &dyn Database) -> Result<(), StorageError> {
    let limit = |name: &str, value: Duration| {
        format!(
            "CASE WHEN current_setting('{name}') = '0'
                  THEN set_config('{name}', '{}ms', false) END AS {name}",
            value.as_millis()
        )
    };
    let sql = format!(
        "SELECT now() = statement_timestamp() AS outside, {}, {}",
        limit("lock_timeout", BUSY_TIMEOUT),
        limit("idle_in_transaction_session_timeout", IDLE_IN_TRANSACTION)
    );
    let outside = |db: &dyn Database| {
        db.execute(&sql, &[])
            .map(|rows| rows.first().and_then(|r| r.int(0).ok()) == Some(1))
    };
    if outside(db) == Ok(true) {
        return Ok(());
    }
    // The settings rolled back with the transaction left open: once more, outside it.
    db.rollback()?;
    outside(db).map(drop)
}

/// The statement in PostgreSQL's placeholders: SQLite's `?N` becomes `$N`, and a bare `?` the
/// number after the largest so far (SQLite's own rule), so the same text binds the same
/// parameters on both engines. Quoted text and identifiers are copied as they are.
pub(crate) fn placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut chars = sql.chars().peekable();
    let mut largest = 0u32;
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => {
                quote = None;
                out.push(c);
            }
            (Some(_), c) => out.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                out.push(c);
            }
            (None, '?') => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                let n = digits.parse().unwrap_or(largest + 1);
                largest = largest.max(n);
                out.push('$');
                out.push_str(&n.to_string());
            }
            (None, c) => out.push(c),
        }
    }
    out
}

/// Text as PostgreSQL can take it: its `TEXT` cannot hold U+0000, which SQLite's can. No id,
/// code or word the marketplace issues contains one, so a parameter with a NUL — a garbled path
/// or a name typed so — is bound with U+FFFD (the replacement character) in its place: a
/// lookup finds nothing, as it would have on SQLite, and a name is stored marked where the NUL
/// was, rather than failing the request.
pub(crate) fn storable(text: &str) -> Cow<'_, str> {
    if text.contains('\0') {
        Cow::Owned(text.replace('\0', "\u{fffd}"))
    } else {
        Cow::Borrowed(text)
    }
}

/// A PostgreSQL error by its SQLSTATE, never by its words: 23505 (unique violation) decides
/// races; 40001 and 40P01 (a serialization failure, a deadlock) undid the transaction, which is
/// run again; class 08 (the connection), 57P01–57P03 (the server shutting down, crashed, or
/// starting up) and 53300 (too many connections) mean the database cannot be reached now, and
/// so do 55P03 (a lock waited for past `lock_timeout`: another transaction holds it, for longer
/// than a request waits) and 25P03 (the session ended for idling in a transaction).
pub(crate) fn error(sqlstate: &str, message: impl Into<String>) -> StorageError {
    let kind = match sqlstate {
        "23505" => StorageErrorKind::UniqueViolation,
        "40001" | "40P01" => StorageErrorKind::Retry,
        "42P01" => StorageErrorKind::NoSuchTable,
        "57P01" | "57P02" | "57P03" | "53300" | "55P03" | "25P03" => StorageErrorKind::Unavailable,
        code if code.starts_with("08") => StorageErrorKind::Unavailable,
        _ => StorageErrorKind::Other,
    };
    StorageError {
        kind,
        message: format!("{sqlstate}: {}", message.into()),
    }
}

/// A failure that reached no database error at all (the connection could not be made, or broke
/// in the middle of a statement): the server cannot be reached.
pub(crate) fn unreachable(message: impl Into<String>) -> StorageError {
    StorageError {
        kind: StorageErrorKind::Unavailable,
        message: message.into(),
    }
}

/// A failure of a statement that returns rows, reported without its SQLSTATE: Spin 4.0.2's host
/// hands an error met while the rows stream back (anything the server found while running the
/// statement — a deadlock, a serialization failure, a lock it waited for in vain) to the guest
/// as text, and the native adapter reports it so too. Inside a transaction the server has undone
/// whatever it was, the transaction is aborted and a rollback loses nothing, so it counts as
/// [`StorageErrorKind::Retry`]: a deadlock broken there is run again, like one whose SQLSTATE
/// arrived, and anything else fails again, at most five times ([`super::transaction`]), and is
/// answered 503 as it was before. Outside one, the server out of reach ([`unreachable()`]).
pub(crate) fn without_sqlstate(message: impl Into<String>, in_transaction: bool) -> StorageError {
    let message = format!("reported without its SQLSTATE: {}", message.into());
    if in_transaction {
        StorageError {
            kind: StorageErrorKind::Retry,
            message,
        }
    } else {
        unreachable(message)
    }
}

/// Whether one of the app's statements returns rows: a `SELECT`, or a write with `RETURNING`.
/// Spin 4.0.2's host never answers `query` of a statement that returns none (`BEGIN`, `CREATE
/// TABLE`, an `INSERT` without `RETURNING`: its result has no row description), so the adapters
/// run those through `execute`, which also keeps the SQLSTATE of their errors.
pub(crate) fn returns_rows(sql: &str) -> bool {
    let head = sql.trim_start().get(..6).unwrap_or_default();
    head.eq_ignore_ascii_case("SELECT")
        || sql
            .split_whitespace()
            .any(|word| word.eq_ignore_ascii_case("RETURNING"))
}

/// Takes the transaction-scoped advisory lock of `name` ([`super::serialize_on`]). Its rows are
/// not needed: it runs as a write does ([`Database::written`]), so a deadlock it meets keeps
/// its SQLSTATE.
pub(crate) fn advisory_lock(db: &dyn Database, name: &str) -> Result<(), StorageError> {
    db.written(
        "SELECT pg_advisory_xact_lock(CAST(? AS BIGINT)) IS NULL",
        &[lock_key(name).into()],
    )
    .map(drop)
}

/// The advisory lock key of a name: the first 8 bytes of its SHA-256.
pub(crate) fn lock_key(name: &str) -> i64 {
    let digest = Sha256::digest(name.as_bytes());
    let mut first = [0; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_as_sqlite_numbers_them() {
        assert_eq!(
            placeholders("SELECT ? , ?, ?"),
            "SELECT $1 , $2, $3".to_owned()
        );
        assert_eq!(
            placeholders("WHERE a = ?2 AND b = ?1 AND c = ?"),
            "WHERE a = $2 AND b = $1 AND c = $3"
        );
        assert_eq!(
            placeholders("SELECT '?', \"a?\", ?"),
            "SELECT '?', \"a?\", $1"
        );
        assert_eq!(placeholders("SELECT 'it''s ?', ?"), "SELECT 'it''s ?', $1");
    }

    #[test]
    fn errors_are_told_apart_by_their_sqlstate() {
        assert_eq!(
            error("23505", "duplicate key").kind,
            StorageErrorKind::UniqueViolation
        );
        for retried in ["40001", "40P01"] {
            assert_eq!(error(retried, "x").kind, StorageErrorKind::Retry);
        }
        for down in [
            "08006", "08001", "57P01", "57P03", "53300", "55P03", "25P03",
        ] {
            assert_eq!(error(down, "x").kind, StorageErrorKind::Unavailable);
        }
        // The words do not matter: a message that reads like a unique violation is not one.
        assert_eq!(
            error("22P02", "UNIQUE constraint failed").kind,
            StorageErrorKind::Other
        );
    }

    #[test]
    fn an_error_without_its_sqlstate_runs_the_transaction_again_and_is_unavailable_outside_one() {
        assert_eq!(
            without_sqlstate("db error", true).kind,
            StorageErrorKind::Retry
        );
        assert_eq!(
            without_sqlstate("db error", false).kind,
            StorageErrorKind::Unavailable
        );
    }

    #[test]
    fn statements_that_return_rows_are_told_from_those_that_do_not() {
        for rows in [
            "SELECT 1",
            "  select id FROM t FOR NO KEY UPDATE",
            "UPDATE t SET a = 1 RETURNING a",
            "INSERT INTO t VALUES (1)\n RETURNING 0",
        ] {
            assert!(returns_rows(rows), "{rows}");
        }
        for none in [
            "BEGIN",
            "INSERT INTO t VALUES (1)",
            "UPDATE t SET returned = 1",
        ] {
            assert!(!returns_rows(none), "{none}");
        }
    }

    #[test]
    fn a_nul_is_bound_as_the_replacement_character() {
        assert_eq!(storable("prd-1\0x"), "prd-1\u{fffd}x");
        assert!(matches!(storable("prd-1"), Cow::Borrowed("prd-1")));
    }

    #[test]
    fn lock_keys_are_stable_and_distinct() {
        assert_eq!(lock_key("schema"), lock_key("schema"));
        assert_ne!(lock_key("month:2026-03"), lock_key("month:2026-04"));
    }
}
