//! What PostgreSQL needs beyond the portable SQL, shared by its two adapters (Spin's, over
//! `spin_sdk::pg4`, and the native one of the tests): `$N` placeholders, errors classified by
//! SQLSTATE, transactions that say their isolation, and the schema's own migrations.

pub(crate) mod migrations;
#[cfg(not(target_family = "wasm"))]
pub(crate) mod native;

use std::borrow::Cow;

use sha2::{Digest, Sha256};

use super::{Database, StorageError, StorageErrorKind};

/// `BEGIN` as every PostgreSQL transaction of the app starts: READ COMMITTED whatever the
/// server's default, because the app's locks are written for it (docs/ARCHITECTURE.md,
/// Concurrency): each statement sees what committed before it started, and a row a statement
/// locks is read as it is once the lock is held.
pub(crate) const BEGIN: &str = "BEGIN ISOLATION LEVEL READ COMMITTED";

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
/// starting up) and 53300 (too many connections) mean the database cannot be reached now.
pub(crate) fn error(sqlstate: &str, message: impl Into<String>) -> StorageError {
    let kind = match sqlstate {
        "23505" => StorageErrorKind::UniqueViolation,
        "40001" | "40P01" => StorageErrorKind::Retry,
        "42P01" => StorageErrorKind::NoSuchTable,
        "57P01" | "57P02" | "57P03" | "53300" => StorageErrorKind::Unavailable,
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
        for down in ["08006", "08001", "57P01", "57P03", "53300"] {
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
