//! Console sessions in the database: hashes only, never a token or a session id.

use chrono::{DateTime, Utc};

use crate::error::ApiResult;
use crate::platform::clock::rfc3339;
use crate::platform::storage::Database;

pub(super) struct StoredSession {
    pub(super) id_hash: String,
    pub(super) principal_id: String,
    /// The hash of the token the principal signed in with.
    pub(super) token_hash: String,
    pub(super) created_at: DateTime<Utc>,
    pub(super) expires_at: DateTime<Utc>,
}

pub(super) fn insert(db: &dyn Database, session: &StoredSession) -> ApiResult<()> {
    db.execute(
        "INSERT INTO console_sessions (id_hash, principal_id, token_hash, created_at, expires_at)
         VALUES (?, ?, ?, ?, ?)",
        &[
            session.id_hash.clone().into(),
            session.principal_id.clone().into(),
            session.token_hash.clone().into(),
            rfc3339(session.created_at).into(),
            session.expires_at.timestamp().into(),
        ],
    )?;
    Ok(())
}

/// What a session's cookie is checked against.
pub(super) struct FoundSession {
    pub(super) principal_id: String,
    pub(super) token_hash: String,
    pub(super) expires_at: i64,
}

pub(super) fn find(db: &dyn Database, id_hash: &str) -> ApiResult<Option<FoundSession>> {
    let rows = db.execute(
        "SELECT principal_id, token_hash, expires_at FROM console_sessions WHERE id_hash = ?",
        &[id_hash.into()],
    )?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    Ok(Some(FoundSession {
        principal_id: row.text(0)?,
        token_hash: row.text(1)?,
        expires_at: row.int(2)?,
    }))
}

pub(super) fn delete(db: &dyn Database, id_hash: &str) -> ApiResult<()> {
    db.execute(
        "DELETE FROM console_sessions WHERE id_hash = ?",
        &[id_hash.into()],
    )?;
    Ok(())
}

/// Removes every session of a principal.
pub(super) fn delete_for_principal(db: &dyn Database, principal_id: &str) -> ApiResult<()> {
    db.execute(
        "DELETE FROM console_sessions WHERE principal_id = ?",
        &[principal_id.into()],
    )?;
    Ok(())
}

/// Removes sessions that expired by `now` (Unix seconds): they can never sign anyone in again.
pub(super) fn sweep_expired(db: &dyn Database, now: i64) -> ApiResult<()> {
    db.execute(
        "DELETE FROM console_sessions WHERE expires_at <= ?",
        &[now.into()],
    )?;
    Ok(())
}
