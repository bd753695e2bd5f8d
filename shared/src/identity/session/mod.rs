//! Console sessions: a principal signs in to the web console with its API token, and the browser
//! holds a random session id in a cookie. The token itself is never stored; the session keeps its
//! SHA-256 hash, the same hash the principal's row holds, and works only as long as that hash
//! still authenticates the principal: a rotated token (or a redeployed `admin_token`) ends every
//! session opened with the old one, and so does anything that stops the token from
//! authenticating (a disabled principal's token finds no one). Disabling a principal also ends
//! its sessions outright, so enabling it again revives none of them. The session id is stored
//! hashed too, so the table holds no usable secret.

use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};

use super::{Principal, Role, principal_for_token, same_secret, token_hash};
use crate::error::{ApiError, ApiResult, Code};
use crate::platform::ids::random_bytes;
use crate::platform::storage::Database;

mod store;

/// How long a session lasts after sign-in, whatever happens in between: a working day.
pub(crate) const SESSION_HOURS: i64 = 12;

/// The secret a browser holds: 256 random bits, hex. Only its hash is stored.
pub(crate) struct SessionId(String);

impl SessionId {
    /// The id a browser sent back in its cookie.
    pub(crate) fn from_cookie(value: &str) -> Self {
        Self(value.to_owned())
    }

    /// What the cookie carries.
    pub(crate) fn reveal(&self) -> &str {
        &self.0
    }

    fn hash(&self) -> String {
        hex::encode(Sha256::digest(self.0.as_bytes()))
    }

    /// The anti-forgery token of this session's forms: derived from the session id, which only
    /// the browser holding the cookie knows, so another site can neither read nor compute it.
    pub(crate) fn csrf_token(&self) -> String {
        csrf_from_secret(&self.0)
    }
}

/// The anti-forgery token derived from a secret the browser keeps in an `HttpOnly` cookie (a
/// session id, or the sign-in form's own nonce).
pub(crate) fn csrf_from_secret(secret: &str) -> String {
    let mut digest = Sha256::new();
    digest.update(b"nestmarket console form\0");
    digest.update(secret.as_bytes());
    hex::encode(digest.finalize())
}

/// Whether a submitted anti-forgery token is the expected one, compared in constant time.
pub(crate) fn csrf_matches(expected: &str, submitted: &str) -> bool {
    same_secret(expected, submitted)
}

/// A session that still authenticates its principal.
pub(crate) struct Session {
    pub principal: Principal,
    pub id: SessionId,
}

/// Signs a principal in with its API token: 401 for a token nobody holds, 403 for the platform,
/// which has no pages. Expired sessions are swept on the way.
pub(crate) fn sign_in(
    db: &dyn Database,
    token: &str,
    admin_token: &str,
    now: DateTime<Utc>,
) -> ApiResult<Session> {
    let principal = principal_for_token(db, token.trim(), admin_token)?;
    if principal.role == Role::Platform {
        return Err(ApiError::new(
            Code::Forbidden,
            "the platform's token has no console; sign in as an operator, a provider or a customer",
        ));
    }
    let id = SessionId(hex::encode(random_bytes::<32>()));
    let expires = now + Duration::hours(SESSION_HOURS);
    store::sweep_expired(db, now.timestamp())?;
    store::insert(
        db,
        &store::StoredSession {
            id_hash: id.hash(),
            principal_id: principal.id.clone(),
            token_hash: token_hash(token.trim()),
            created_at: now,
            expires_at: expires,
        },
    )?;
    Ok(Session { principal, id })
}

/// The session of a cookie, if it still authenticates its principal: unknown, expired, signed
/// out, or opened with a token that no longer authenticates is `None`.
pub(crate) fn resume(
    db: &dyn Database,
    id: SessionId,
    admin_token: &str,
    now: DateTime<Utc>,
) -> ApiResult<Option<Session>> {
    let Some(stored) = store::find(db, &id.hash())? else {
        return Ok(None);
    };
    if stored.expires_at <= now.timestamp() {
        return Ok(None);
    }
    let principal =
        if !admin_token.is_empty() && same_secret(&stored.token_hash, &token_hash(admin_token)) {
            Some(Principal::built_in_operator())
        } else {
            super::store::find_by_token_hash(db, &stored.token_hash)?
        };
    Ok(principal
        .filter(|p| p.id == stored.principal_id)
        .map(|principal| Session { principal, id }))
}

/// Ends every session of a principal: their cookies sign no one in again, whatever happens to
/// the principal afterwards (a disabled principal enabled again signs in anew).
pub(crate) fn end_all(db: &dyn Database, principal_id: &str) -> ApiResult<()> {
    store::delete_for_principal(db, principal_id)
}

/// Ends the session: its cookie no longer signs anyone in.
pub(crate) fn sign_out(db: &dyn Database, id: &SessionId) -> ApiResult<()> {
    store::delete(db, &id.hash())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csrf_tokens_are_per_secret_and_compare_exactly() {
        let a = SessionId("a".repeat(64));
        let b = SessionId("b".repeat(64));
        assert_ne!(a.csrf_token(), b.csrf_token());
        assert_ne!(
            a.csrf_token(),
            a.reveal(),
            "the token is not the session id"
        );
        assert!(csrf_matches(&a.csrf_token(), &a.csrf_token()));
        assert!(!csrf_matches(&a.csrf_token(), &b.csrf_token()));
        assert!(!csrf_matches(&a.csrf_token(), ""));
    }
}
