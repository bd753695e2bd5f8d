//! Idempotency keys: a client that retries a request which moves money or creates a resource
//! (a top-up, an order, a bill run) sends the same `Idempotency-Key` and gets the first
//! response again instead of a second effect. The same key with another request is a conflict
//! (409 `IdempotencyKeyReused`): the Stripe semantics, zero2prod's shape (a key type built valid,
//! its persistence apart).
//!
//! A request that writes in one transaction runs inside the transaction that records its key, so
//! its effect and its recorded response commit together or not at all, and a concurrent retry
//! waits for the first (the key's lock, `serialize_on`) and then replays it. A bill run commits batch by batch and reads the
//! network between them, so it is not wrapped: it is idempotent by construction (each period is
//! billed once), and its report is recorded after the run for the retries to replay.
//!
//! Only successful responses (and a console form's redirect) are recorded: a refused request
//! changed nothing, so running it again is harmless. A record lives [`LIFETIME`] (24 hours, Stripe's window): the same key
//! after that is a new request, and bill runs purge what expired ([`purge_expired`]). A response
//! is recorded up to [`RECORDED_MAX`] bytes.
//!
//! What a key does on each route is the API's to say (`api::key_use`); the console's money and
//! deployment forms use a one-time token of the form as their key.

mod key;
mod store;

pub(crate) use key::IdempotencyKey;

use http::{HeaderMap, Method};
use sha2::{Digest, Sha256};

use chrono::{DateTime, Utc};

use crate::error::{ApiError, ApiResult, Code};
use crate::platform::storage::{Database, StorageError, serialize_on, transaction};

/// A response, the API's or the console's.
pub(crate) type Resp = http::Response<Vec<u8>>;

/// How long a key stands for its first request, in seconds: 24 hours.
pub(crate) const LIFETIME: i64 = 24 * 3600;

/// The largest response body recorded for replay (1 MiB, the largest request body): above any
/// response of a route run in one transaction with its record (an order with a 100,000-character
/// EULA is under 400 KiB). A larger one is answered and not recorded; its retry runs again, which
/// only routes idempotent by construction ([`Guard::Recorded`]) can produce.
pub(crate) const RECORDED_MAX: usize = 1_048_576;

/// The header a client names its request with.
pub(crate) const HEADER: &str = "idempotency-key";

/// How a request with a key is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Guard {
    /// In the transaction that records the key: effect and record commit together.
    Atomic,
    /// Run as it is (it is idempotent itself), its response recorded afterwards.
    Recorded,
}

/// What a request with a key amounts to, from its method, path, headers and body: the same key
/// may only ever stand for the same request.
pub(crate) fn fingerprint(
    method: &Method,
    target: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> String {
    let mut hash = Sha256::new();
    for part in [
        method.as_str().as_bytes(),
        target.as_bytes(),
        headers
            .get(http::header::CONTENT_TYPE)
            .map_or(&b""[..], |v| v.as_bytes()),
    ] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part);
    }
    hash.update(body);
    hex::encode(hash.finalize())
}

/// Why a guarded request's transaction was rolled back: the key's own checks or storage, or a
/// server-side failure of the request, which is answered as it is.
enum Unrecorded {
    Refused(ApiError),
    Failed(Box<Resp>),
}

impl From<ApiError> for Unrecorded {
    fn from(e: ApiError) -> Self {
        Unrecorded::Refused(e)
    }
}

impl From<StorageError> for Unrecorded {
    fn from(e: StorageError) -> Self {
        Unrecorded::Refused(e.into())
    }
}

/// Runs `serve` once per (principal, key): the first time for real, then as a replay.
pub(crate) fn run(
    db: &dyn Database,
    principal_id: &str,
    key: &IdempotencyKey,
    fingerprint: &str,
    guard: Guard,
    now: DateTime<Utc>,
    serve: impl Fn() -> Resp,
) -> ApiResult<Resp> {
    let replay = |db: &dyn Database| -> ApiResult<Option<Resp>> {
        match store::find(db, principal_id, key, now.timestamp() - LIFETIME)? {
            Some(saved) if saved.fingerprint == fingerprint => Ok(Some(saved.response()?)),
            Some(_) => Err(ApiError::new(
                Code::IdempotencyKeyReused,
                "this Idempotency-Key was used for another request; use a new key",
            )),
            None => Ok(None),
        }
    };
    let record = |db: &dyn Database, response: &Resp| -> ApiResult<()> {
        if recordable(response) && response.body().len() <= RECORDED_MAX {
            store::insert(db, principal_id, key, fingerprint, response, now)?;
        }
        Ok(())
    };
    // A retry of a request already answered is replayed without taking the write lock.
    if let Some(saved) = replay(db)? {
        return Ok(saved);
    }
    match guard {
        Guard::Atomic => {
            let outcome = transaction(db, |db| {
                // A retry racing the first request waits here for it to commit, then replays.
                serialize_on(
                    db,
                    &format!("idempotency key {principal_id} {}", key.as_str()),
                )?;
                if let Some(saved) = replay(db)? {
                    return Ok(saved);
                }
                let response = serve();
                if response.body().len() > RECORDED_MAX {
                    return Err(Unrecorded::Refused(ApiError::internal(
                        "a response too large to record for its retries",
                    )));
                }
                if response.status().is_server_error() {
                    // Ours or a provider's failure (a 502 of an unreadable Prometheus): nothing
                    // of it is kept, the client may retry, and it is answered as it is.
                    return Err(Unrecorded::Failed(Box::new(response)));
                }
                record(db, &response)?;
                Ok(response)
            });
            match outcome {
                Ok(response) => Ok(response),
                Err(Unrecorded::Failed(response)) => Ok(*response),
                Err(Unrecorded::Refused(e)) => Err(e),
            }
        }
        Guard::Recorded => {
            let response = serve();
            if !recordable(&response) {
                return Ok(response);
            }
            // Should a retry have run at the same time and recorded first, its response is the
            // one every later retry gets: answer with it too.
            let recorded = transaction(db, |db| {
                record(db, &response)?;
                replay(db)
            })?;
            Ok(recorded.unwrap_or(response))
        }
    }
}

/// Whether a response is the request's effect, to be replayed: a success, or the redirect a
/// console form answers with once it was accepted.
fn recordable(response: &Resp) -> bool {
    response.status().is_success() || response.status().is_redirection()
}

/// Deletes the records older than [`LIFETIME`] as of `now`: their keys stand for nothing any
/// more. Run by every bill run; the number deleted.
pub(crate) fn purge_expired(db: &dyn Database, now: DateTime<Utc>) -> ApiResult<u64> {
    store::delete_older_than(db, now.timestamp() - LIFETIME)
}
