//! Failed authentications per client address and minute.

use crate::error::{ApiError, ApiResult};
use crate::platform::storage::Database;

/// The failures counted for `client` in the minute starting at `minute` (Unix seconds).
pub(super) fn failures(db: &dyn Database, client: &str, minute: i64) -> ApiResult<i64> {
    let rows = db.execute(
        "SELECT failures FROM auth_failures WHERE client = ? AND minute = ?",
        &[client.into(), minute.into()],
    )?;
    Ok(rows.first().map(|r| r.int(0)).transpose()?.unwrap_or(0))
}

/// Counts one more failure of `client` in the minute starting at `minute`, and answers the
/// count with it: one statement, so racing failures are all counted, each with a count of its
/// own.
pub(super) fn count_failure(db: &dyn Database, client: &str, minute: i64) -> ApiResult<i64> {
    let rows = db.execute(
        "INSERT INTO auth_failures (client, minute, failures) VALUES (?, ?, 1)
         ON CONFLICT (client, minute) DO UPDATE SET failures = auth_failures.failures + 1
         RETURNING failures",
        &[client.into(), minute.into()],
    )?;
    let row = rows
        .first()
        .ok_or_else(|| ApiError::internal("a counted failure without its count"))?;
    Ok(row.int(0)?)
}

/// Deletes the counts of minutes before `before` (Unix seconds).
pub(super) fn delete_before(db: &dyn Database, before: i64) -> ApiResult<()> {
    db.execute(
        "DELETE FROM auth_failures WHERE minute < ?",
        &[before.into()],
    )?;
    Ok(())
}
