//! Failed authentications are throttled per client address (docs/RULES.md R2.10): after
//! `limit` failures from one address within a minute (the deployment's
//! `failed_authentication_limit`, 10 unless set), every authentication from it — a bearer
//! token or a console sign-in — is 429 `TooManyRequests` with `Retry-After` until the minute is
//! over. The count is kept in the database, so every instance and every host of a deployment
//! sees the same one. The address is Spin's `spin-client-addr` header; a request without one (no
//! Spin in front: the native tests) is not throttled.

mod store;

use chrono::{DateTime, Utc};

use crate::error::{ApiError, ApiResult, Code};
use crate::platform::storage::Database;

/// The header Spin tells the client's address (and port) in.
pub(crate) const CLIENT_HEADER: &str = "spin-client-addr";

/// The address of `spin-client-addr` without its port: a client reconnecting from another port
/// is the same client.
fn address(client: &str) -> &str {
    match client.rsplit_once(':') {
        // `[::1]:8080` or `127.0.0.1:8080`; a bare IPv6 address has no port to drop.
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !host.ends_with(':') => {
            host.trim_start_matches('[').trim_end_matches(']')
        }
        _ => client,
    }
}

/// Runs `authenticate` for a client at `client`'s address, unless it failed `limit` times in
/// the current minute (429); a failure of it (`Unauthorized`) is counted, and answered 429 too
/// when the count it makes is past the limit — failures of attempts running at once are counted
/// one by one, so of those that started below the limit only as many as it leaves are 401.
pub(crate) fn guarded<T>(
    db: &dyn Database,
    client: Option<&str>,
    limit: u32,
    now: DateTime<Utc>,
    authenticate: impl FnOnce() -> ApiResult<T>,
) -> ApiResult<T> {
    let Some(client) = client.map(address) else {
        return authenticate();
    };
    let limit = i64::from(limit);
    let minute = now.timestamp() - now.timestamp().rem_euclid(60);
    let too_many = || {
        let wait = u64::try_from(minute + 60 - now.timestamp())
            .unwrap_or(60)
            .max(1);
        ApiError {
            retry_after: Some(wait),
            ..ApiError::new(
                Code::TooManyRequests,
                format!("too many failed sign-ins from your address; try again in {wait} s"),
            )
        }
    };
    if store::failures(db, client, minute)? >= limit {
        return Err(too_many());
    }
    let outcome = authenticate();
    if outcome
        .as_ref()
        .is_err_and(|e| e.code == Code::Unauthorized)
        && store::count_failure(db, client, minute)? > limit
    {
        return Err(too_many());
    }
    outcome
}

/// Deletes the counts of minutes an hour past: run by every bill run.
pub(crate) fn purge(db: &dyn Database, now: DateTime<Utc>) -> ApiResult<()> {
    store::delete_before(db, now.timestamp() - 3600)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_is_its_address_whatever_its_port() {
        assert_eq!(address("127.0.0.1:52814"), "127.0.0.1");
        assert_eq!(address("[::1]:52814"), "::1");
        assert_eq!(address("::1"), "::1");
        assert_eq!(address("10.0.0.7"), "10.0.0.7");
    }
}
