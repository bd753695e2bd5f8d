//! The outbound HTTP port: how bill runs and previews reach a provider's Prometheus, and how
//! webhooks' events reach their subscribers' endpoints. Components
//! use Spin's outbound HTTP (allow-listed per component in `spin.toml`); native tests use a plain
//! HTTP/1.1 client against a real local server.
//!
//! Every request goes through `get` or `post`, which hold the two rules of the port: a request never
//! waits longer than [`TIMEOUT`] nor reads more than [`RESPONSE_MAX`] bytes (the adapters'
//! [`Outbound::get_unguarded`] enforce both), and it is never sent while this thread holds a
//! write transaction ([`crate::platform::storage::transaction`]): a slow Prometheus must not
//! hold the database's write lock for every other tenant. `tidy::outbound_calls_go_through_the_guard`
//! checks that nothing calls an adapter but `get` and `post`.

use std::time::Duration;

/// The longest an outbound request may take, connecting and reading its answer included.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// The largest answer read: a Prometheus instant query answers a few hundred bytes.
pub const RESPONSE_MAX: usize = 1_048_576;

/// A blocking GET. `Err` carries a message for the run report (unreachable, denied, timeout).
pub trait Outbound {
    /// GETs `url` within [`TIMEOUT`], its body at most [`RESPONSE_MAX`] bytes: its status and
    /// body, or why it could not be had. Called only by `get`.
    fn get_unguarded(&self, url: &str) -> Result<(u16, Vec<u8>), String>;

    /// POSTs `body` with `headers` to `url` under the same bounds: the answer's status and body.
    /// Called only by `post`.
    fn post_unguarded(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<(u16, Vec<u8>), String>;
}

/// GETs `url` through `out`, refused while a write transaction is open on this thread.
pub(crate) fn get(out: &dyn Outbound, url: &str) -> Result<(u16, Vec<u8>), String> {
    if crate::platform::storage::in_transaction() {
        // A defect of ours, never of the provider: every test that reaches Prometheus fails on
        // it, and in production the caller reports the request as failed instead of waiting.
        eprintln!("internal error: an outbound request inside a write transaction: {url}");
        return Err("an outbound request was attempted inside a write transaction".into());
    }
    out.get_unguarded(url)
}

/// POSTs `body` to `url` through `out` (a webhook's delivery), refused while a write transaction
/// is open on this thread, as [`get`] is.
pub(crate) fn post(
    out: &dyn Outbound,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<(u16, Vec<u8>), String> {
    if crate::platform::storage::in_transaction() {
        eprintln!("internal error: an outbound request inside a write transaction: {url}");
        return Err("an outbound request was attempted inside a write transaction".into());
    }
    out.post_unguarded(url, headers, body)
}

#[cfg(not(target_family = "wasm"))]
pub mod native;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ApiResult;
    use crate::platform::storage::native::NativeBackend;
    use crate::platform::storage::{Storage, transaction};

    struct Answering;

    impl Outbound for Answering {
        fn get_unguarded(&self, _url: &str) -> Result<(u16, Vec<u8>), String> {
            Ok((200, b"{}".to_vec()))
        }

        fn post_unguarded(
            &self,
            _url: &str,
            _headers: &[(&str, &str)],
            _body: &[u8],
        ) -> Result<(u16, Vec<u8>), String> {
            Ok((204, Vec::new()))
        }
    }

    #[test]
    fn an_outbound_request_inside_a_write_transaction_is_refused_and_outside_it_is_sent() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::new(NativeBackend::new(dir.path().join("db.sqlite")));
        let db = storage.db().unwrap();
        assert!(get(&Answering, "http://prometheus/").is_ok());
        assert!(post(&Answering, "http://receiver/", &[], b"{}").is_ok());
        let inside: ApiResult<_> = transaction(db, |_| Ok(get(&Answering, "http://prometheus/")));
        assert!(
            inside.unwrap().is_err(),
            "sent while holding the write lock"
        );
        let posted: ApiResult<_> =
            transaction(db, |_| Ok(post(&Answering, "http://receiver/", &[], b"{}")));
        assert!(
            posted.unwrap().is_err(),
            "posted while holding the write lock"
        );
        let nested: ApiResult<_> = transaction(db, |db| {
            transaction(db, |_| ApiResult::Ok(()))?;
            Ok(get(&Answering, "http://prometheus/"))
        });
        assert!(
            nested.unwrap().is_err(),
            "the outer transaction is still open"
        );
        let failed: ApiResult<()> =
            transaction(db, |_| Err(crate::error::ApiError::internal("rolled back")));
        assert!(failed.is_err());
        assert!(
            get(&Answering, "http://prometheus/").is_ok(),
            "closed, whether committed or rolled back"
        );
    }
}
