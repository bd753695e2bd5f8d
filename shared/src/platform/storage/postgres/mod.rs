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

/// Takes the transaction-scoped advisory lock of `name` ([`super::serialize_on`]).
pub(crate) fn advisory_lock(db: &dyn Database, name: &str) -> Result<(), StorageError> {
    db.execute(
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
