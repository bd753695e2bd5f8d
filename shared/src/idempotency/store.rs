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

impl Saved {
    pub(super) fn response(self) -> ApiResult<Resp> {
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
        response.body(self.body).map_err(ApiError::internal)
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

pub(super) fn insert(
    db: &dyn Database,
    principal_id: &str,
    key: &IdempotencyKey,
    fingerprint: &str,
    response: &Resp,
    now: DateTime<Utc>,
) -> ApiResult<()> {
    let header = |name: header::HeaderName| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    // An expired record of the key gives way; a live one (a racing retry's) stays.
    db.execute(
        "INSERT INTO idempotency_keys (principal_id, key, fingerprint, status, content_type, body,
                                       created_at, created_unix, location)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (principal_id, key) DO UPDATE SET
             fingerprint = excluded.fingerprint, status = excluded.status,
             content_type = excluded.content_type, body = excluded.body,
             location = excluded.location,
             created_at = excluded.created_at, created_unix = excluded.created_unix
         WHERE idempotency_keys.created_unix <= ?",
        &[
            principal_id.into(),
            key.as_str().into(),
            fingerprint.into(),
            i64::from(response.status().as_u16()).into(),
            header(header::CONTENT_TYPE).into(),
            response.body().clone().into(),
            rfc3339(now).into(),
            now.timestamp().into(),
            header(header::LOCATION).into(),
            (now.timestamp() - super::LIFETIME).into(),
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
