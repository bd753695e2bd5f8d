//! Recorded responses of requests sent with an idempotency key, per principal and key.

use chrono::{DateTime, Utc};
use http::{Response, StatusCode, header};

use super::IdempotencyKey;
use super::Resp;
use crate::error::{ApiError, ApiResult};
use crate::platform::clock::rfc3339;
use crate::platform::storage::Database;

/// A recorded response and the fingerprint of the request it answered.
pub(super) struct Saved {
    pub(super) fingerprint: String,
    status: i64,
    content_type: Option<String>,
    /// Where a redirect sent the client (a console form's answer).
    location: Option<String>,
    body: Vec<u8>,
}

/// The status of a key claimed by a request that has not answered yet ([`claim`]): no response's.
const CLAIMED: i64 = 0;

impl Saved {
    /// The recorded response; `None` while the key is only claimed.
    pub(super) fn response(self) -> ApiResult<Option<Resp>> {
        if self.status == CLAIMED {
            return Ok(None);
        }
        let status = u16::try_from(self.status)
            .ok()
            .and_then(|s| StatusCode::from_u16(s).ok())
            .ok_or_else(|| ApiError::internal("a recorded status out of range"))?;
        let mut response = Response::builder().status(status);
        if let Some(ct) = self.content_type {
            response = response.header(header::CONTENT_TYPE, ct);
        }
        if let Some(location) = self.location {
            response = response.header(header::LOCATION, location);
        }
        response
            .body(self.body)
            .map(Some)
            .map_err(ApiError::internal)
    }
}

/// The record of the principal's key, if it was made after `expired_at` (Unix seconds).
pub(super) fn find(
    db: &dyn Database,
    principal_id: &str,
    key: &IdempotencyKey,
    expired_at: i64,
) -> ApiResult<Option<Saved>> {
    let rows = db.execute(
        "SELECT fingerprint, status, content_type, body, location FROM idempotency_keys
         WHERE principal_id = ? AND key = ? AND created_unix > ?",
        &[principal_id.into(), key.as_str().into(), expired_at.into()],
    )?;
    rows.first()
        .map(|r| {
            Ok(Saved {
                fingerprint: r.text(0)?,
                status: r.int(1)?,
                content_type: r.opt_text(2)?,
                body: r.blob(3)?,
                location: r.opt_text(4)?,
            })
        })
        .transpose()
}

/// Records the key as standing for the request of `fingerprint`, its `response` still to come
/// ([`insert`] records it).
pub(super) fn claim(
    db: &dyn Database,
    principal_id: &str,
    key: &IdempotencyKey,
    fingerprint: &str,
    now: DateTime<Utc>,
) -> ApiResult<()> {
    upsert(db, (principal_id, key, fingerprint), None, now)
}

/// Records the request's response under its key.
pub(super) fn insert(
    db: &dyn Database,
    principal_id: &str,
    key: &IdempotencyKey,
    fingerprint: &str,
    response: &Resp,
    now: DateTime<Utc>,
) -> ApiResult<()> {
    upsert(db, (principal_id, key, fingerprint), Some(response), now)
}

/// Gives up the claim of the request of `fingerprint` on the key, if it is still only claimed:
/// the request changed nothing, and the key stands for nothing again.
pub(super) fn release(
    db: &dyn Database,
    principal_id: &str,
    key: &IdempotencyKey,
    fingerprint: &str,
) -> ApiResult<()> {
    db.execute(
        "DELETE FROM idempotency_keys
         WHERE principal_id = ? AND key = ? AND fingerprint = ? AND status = ?",
        &[
            principal_id.into(),
            key.as_str().into(),
            fingerprint.into(),
            CLAIMED.into(),
        ],
    )?;
    Ok(())
}

/// Records `response` (or, `None`, a claim) of a request under its key. An expired record of
/// the key gives way, and so does the request's own claim; another live one (a racing retry's
/// answer, another request's claim) stays.
fn upsert(
    db: &dyn Database,
    (principal_id, key, fingerprint): (&str, &IdempotencyKey, &str),
    response: Option<&Resp>,
    now: DateTime<Utc>,
) -> ApiResult<()> {
    let header = |name: header::HeaderName| {
        response?
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    db.execute(
        "INSERT INTO idempotency_keys (principal_id, key, fingerprint, status, content_type, body,
                                       created_at, created_unix, location)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (principal_id, key) DO UPDATE SET
             fingerprint = excluded.fingerprint, status = excluded.status,
             content_type = excluded.content_type, body = excluded.body,
             location = excluded.location,
             created_at = excluded.created_at, created_unix = excluded.created_unix
         WHERE idempotency_keys.created_unix <= ?
            OR (idempotency_keys.status = ? AND idempotency_keys.fingerprint = excluded.fingerprint)",
        &[
            principal_id.into(),
            key.as_str().into(),
            fingerprint.into(),
            response.map_or(CLAIMED, |r| i64::from(r.status().as_u16())).into(),
            header(header::CONTENT_TYPE).into(),
            response.map_or_else(Vec::new, |r| r.body().clone()).into(),
            rfc3339(now).into(),
            now.timestamp().into(),
            header(header::LOCATION).into(),
            (now.timestamp() - super::LIFETIME).into(),
            CLAIMED.into(),
        ],
    )?;
    Ok(())
}

/// Deletes every record made at or before `expired_at` (Unix seconds); how many.
pub(super) fn delete_older_than(db: &dyn Database, expired_at: i64) -> ApiResult<u64> {
    let rows = db.execute(
        "DELETE FROM idempotency_keys WHERE created_unix <= ? RETURNING 1",
        &[expired_at.into()],
    )?;
    Ok(rows.len() as u64)
}
