//! The console's HTTP vocabulary: the request as pages read it, cookies, and the responses they
//! give — HTML with its security headers, redirects after a form, files.

use chrono::{DateTime, Utc};
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};
use maud::Markup;

use crate::error::{ApiError, ApiResult};
use crate::listing::product::MediaFile;
use crate::platform::config::Config;
use crate::platform::outbound::Outbound;
use crate::platform::storage::{Database, Storage};

/// An HTTP response of the console.
pub(crate) type Resp = Response<Vec<u8>>;

/// What every page may allow itself: its own origin's styles, scripts, images and media, no
/// inline script or style, no plugins, no framing, forms posted back to the console only.
pub(crate) const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self'; \
     media-src 'self'; style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// One request to the console, as its pages read it.
pub(crate) struct Req<'a> {
    pub storage: &'a Storage,
    pub outbound: &'a dyn Outbound,
    pub config: &'a Config,
    pub now: DateTime<Utc>,
    /// The wall clock, whatever `X-Clock-Now` says: bill runs are dated against it.
    pub real_now: DateTime<Utc>,
    /// The wall clock, to read again after waiting ([`Req::now_again`]).
    pub clock: &'a dyn Fn() -> DateTime<Utc>,
    pub method: Method,
    /// The path split on `/`, percent-decoded, without the leading empty segment.
    pub segments: Vec<String>,
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Req<'_> {
    pub(crate) fn db(&self) -> ApiResult<&dyn Database> {
        self.storage.db()
    }

    /// "Now" read again after a wait, as the API's (`api::Ctx::now_again`).
    pub(crate) fn now_again(&self) -> DateTime<Utc> {
        if self.now == self.real_now {
            (self.clock)()
        } else {
            self.now
        }
    }

    pub(crate) fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.trim().is_empty())
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The fields of a URL-encoded form body, in order.
    pub(crate) fn form(&self) -> Vec<(String, String)> {
        form_urlencoded::parse(&self.body).into_owned().collect()
    }

    /// The value of the console's cookie `name` ([`cookie_name`]), if the browser sent it.
    pub(crate) fn cookie(&self, name: &str) -> Option<&str> {
        cookie_in(&self.headers, &cookie_name(name, self.is_tls()))
    }

    /// Whether the browser reached us over TLS ([`is_secure`]): cookies are then `Secure`.
    pub(crate) fn is_tls(&self) -> bool {
        is_secure(self.config, &self.headers)
    }
}

/// The value of the cookie `name` among a request's headers.
pub(crate) fn cookie_in<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Whether browsers reach the console over TLS: the deployment's `public_url` is https (a proxy
/// in front of Spin may terminate TLS), or Spin itself was asked an https URL (`spin-full-url`).
pub(crate) fn is_secure(config: &Config, headers: &HeaderMap) -> bool {
    config.is_https()
        || headers
            .get("spin-full-url")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|url| url.starts_with("https://"))
}

/// The name a console cookie goes by: over TLS with the `__Host-` prefix, which browsers accept
/// only from a secure origin, for `Path=/` and no `Domain` — no other host or path can set it.
pub(crate) fn cookie_name(name: &str, secure: bool) -> String {
    if secure {
        format!("__Host-{name}")
    } else {
        name.to_owned()
    }
}

/// A cookie of the console: `HttpOnly`, `SameSite=Strict`; over TLS `Secure`, `__Host-`
/// prefixed and so for the whole console (`path` holds over plain HTTP only). `max_age` 0
/// removes it.
pub(crate) fn cookie(name: &str, value: &str, path: &str, max_age: i64, secure: bool) -> String {
    let (path, attribute) = if secure {
        ("/", "; Secure")
    } else {
        (path, "")
    };
    let name = cookie_name(name, secure);
    format!("{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Strict{attribute}")
}

/// The headers every console response carries.
fn secured(status: StatusCode) -> http::response::Builder {
    Response::builder()
        .status(status)
        .header("content-security-policy", CONTENT_SECURITY_POLICY)
        .header("x-content-type-options", "nosniff")
        .header("referrer-policy", "same-origin")
        .header("x-frame-options", "DENY")
}

/// A page. Pages show a tenant's own data, so no cache may keep them.
pub(crate) fn html(status: StatusCode, markup: Markup) -> Resp {
    html_with_cookie(status, markup, None)
}

/// A page that sets a cookie. One cookie per response: Spin 4.0.2 passes on only the last
/// `Set-Cookie` header of a response.
pub(crate) fn html_with_cookie(status: StatusCode, markup: Markup, cookie: Option<String>) -> Resp {
    let mut builder = secured(status)
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-store");
    if let Some(c) = cookie {
        builder = builder.header(header::SET_COOKIE, c);
    }
    builder
        .body(markup.into_string().into_bytes())
        .expect("static headers are valid")
}

/// 303 See Other: where a browser goes after a form was accepted (post/redirect/get).
pub(crate) fn redirect(to: &str) -> ApiResult<Resp> {
    redirect_with_cookie(to, None)
}

/// A redirect that sets a cookie (one, as [`html_with_cookie`]).
pub(crate) fn redirect_with_cookie(to: &str, cookie: Option<String>) -> ApiResult<Resp> {
    let mut builder = secured(StatusCode::SEE_OTHER)
        .header(header::CACHE_CONTROL, "no-store")
        .header(
            header::LOCATION,
            HeaderValue::from_str(to).map_err(ApiError::internal)?,
        );
    if let Some(c) = cookie {
        builder = builder.header(header::SET_COOKIE, c);
    }
    builder.body(Vec::new()).map_err(ApiError::internal)
}

/// A response replayed from its record (a form sent again under its one-time token): the status,
/// type, redirect and body it had, with the headers every console response carries.
pub(crate) fn replayed(recorded: Resp) -> ApiResult<Resp> {
    let (parts, body) = recorded.into_parts();
    let mut builder = secured(parts.status).header(header::CACHE_CONTROL, "no-store");
    for name in [header::CONTENT_TYPE, header::LOCATION] {
        if let Some(value) = parts.headers.get(&name) {
            builder = builder.header(name, value);
        }
    }
    builder.body(body).map_err(ApiError::internal)
}

/// A file a tenant may see (a listing's media): private, revalidated every time, sandboxed and
/// named as a file as the API serves it ([`MediaFile::response`]).
pub(crate) fn file(found: MediaFile) -> ApiResult<Resp> {
    found.response(secured(StatusCode::OK).header(header::CACHE_CONTROL, "private, no-cache"))
}

/// A static asset, cached for a year under its versioned URL and revalidated by its `ETag`.
pub(crate) fn asset(req: &Req, content_type: &str, etag: &str, bytes: &[u8]) -> ApiResult<Resp> {
    let quoted = format!("\"{etag}\"");
    let fresh = req
        .header("if-none-match")
        .is_some_and(|v| v.split(',').any(|t| t.trim() == quoted || t.trim() == "*"));
    let builder = secured(if fresh {
        StatusCode::NOT_MODIFIED
    } else {
        StatusCode::OK
    })
    .header(header::CONTENT_TYPE, content_type)
    .header(header::ETAG, &quoted)
    .header(header::CACHE_CONTROL, "public, max-age=31536000, immutable");
    let body = if fresh { Vec::new() } else { bytes.to_vec() };
    builder.body(body).map_err(ApiError::internal)
}

/// The API's own problem document, for `/api/...` paths no API route took: a client of the API
/// gets the API's answer, not a page.
pub(crate) fn problem(err: &ApiError) -> Resp {
    let mut builder = Response::builder()
        .status(err.status())
        .header(header::CONTENT_TYPE, "application/problem+json");
    if let Some(seconds) = err.retry_after {
        builder = builder.header(header::RETRY_AFTER, seconds);
    }
    builder
        .body(err.to_problem_json())
        .expect("static headers are valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_http_only_strict_and_secure_over_tls() {
        let plain = cookie("s", "v", "/sign-in", 60, false);
        assert_eq!(
            plain,
            "s=v; Path=/sign-in; Max-Age=60; HttpOnly; SameSite=Strict"
        );
        assert_eq!(
            cookie("s", "v", "/sign-in", 60, true),
            "__Host-s=v; Path=/; Max-Age=60; HttpOnly; SameSite=Strict; Secure"
        );
    }

    #[test]
    fn the_policy_allows_nothing_inline_and_nothing_foreign() {
        assert!(CONTENT_SECURITY_POLICY.starts_with("default-src 'self';"));
        assert!(!CONTENT_SECURITY_POLICY.contains("unsafe"));
        assert!(!CONTENT_SECURITY_POLICY.contains("data:"));
        assert!(!CONTENT_SECURITY_POLICY.contains('*'));
    }
}
