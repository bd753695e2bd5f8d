//! The test kit's vocabulary over real HTTP: a blocking client of one running app.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use testkit::{Market, Response, rfc3339};

/// The longest a request may take before the test fails: a bill run over thousands of instances
/// on a loaded machine takes a while, but a hung request must not hang the test run.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

/// The largest response body read (media are up to 100 MiB).
const MAX_BODY: u64 = 128 * 1024 * 1024;

/// A client of one app, with its own connections and its own clock: when set, every request
/// carries `X-Clock-Now` (honoured by deployments with `allow_clock_override`).
pub(crate) struct HttpMarket {
    origin: String,
    admin_token: String,
    agent: ureq::Agent,
    clock: Mutex<Option<DateTime<Utc>>>,
}

impl HttpMarket {
    pub(crate) fn new(origin: &str, admin_token: &str) -> Self {
        let agent = ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(REQUEST_TIMEOUT))
                .build(),
        );
        HttpMarket {
            origin: origin.to_owned(),
            admin_token: admin_token.to_owned(),
            agent,
            clock: Mutex::new(None),
        }
    }

    /// `http://127.0.0.1:PORT`
    pub(crate) fn origin(&self) -> &str {
        &self.origin
    }

    /// Another client of the same app, with connections of its own, whose requests say `now`.
    pub(crate) fn at(&self, now: DateTime<Utc>) -> Self {
        let other = HttpMarket::new(&self.origin, &self.admin_token);
        other.set_now(now);
        other
    }

    /// Another client of the same app, with connections of its own, on the real clock.
    pub(crate) fn on_real_clock(&self) -> Self {
        HttpMarket::new(&self.origin, &self.admin_token)
    }

    /// Like [`Market::call`], but a request that gets no response (the app died, say) is an
    /// error instead of a failed test.
    pub(crate) fn try_call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Result<Response, String> {
        let mut request = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.origin));
        if let Some(now) = *self.clock.lock().unwrap_or_else(PoisonError::into_inner) {
            request = request.header("X-Clock-Now", rfc3339(now));
        }
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let request = request.body(body).map_err(|e| e.to_string())?;
        let response = self.agent.run(request).map_err(|e| e.to_string())?;
        let (parts, mut body) = response.into_parts();
        let body = body
            .with_config()
            .limit(MAX_BODY)
            .read_to_vec()
            .map_err(|e| e.to_string())?;
        Ok(Response {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
        })
    }
}

impl Market for HttpMarket {
    fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Response {
        self.try_call(method, path, token, content_type, body)
            .unwrap_or_else(|e| panic!("{method} {}{path} got no response: {e}", self.origin))
    }

    fn admin_token(&self) -> &str {
        &self.admin_token
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .unwrap_or_else(Utc::now)
    }

    fn set_now(&self, now: DateTime<Utc>) {
        *self.clock.lock().unwrap_or_else(PoisonError::into_inner) = Some(now);
    }
}
