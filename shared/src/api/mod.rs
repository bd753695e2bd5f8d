//! The HTTP API as plain functions: `http::Request` in, `http::Response` out, over a [`Storage`].
//! Each Spin component serves one [`Api`]; it only knows its own routes (its route table,
//! `routes`), so a request that `spin.toml` sends to the wrong component gets a 404 instead of
//! silently working.

mod identity;
mod listings;
mod metering;
mod orders;
mod reviews;
mod routes;
mod settlements;
mod webhooks;

use std::cell::OnceCell;

use chrono::{DateTime, Utc};
use http::{HeaderMap, Method, Request, Response, StatusCode, header};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, ApiResult, Code, FieldError};
use crate::idempotency::{self, Guard, IdempotencyKey};
use crate::identity::{Principal, bearer_token, principal_for_token, throttle};
use crate::platform::LargeBody;
use crate::platform::clock::effective_now;
use crate::platform::config::Config;
use crate::platform::outbound::Outbound;
use crate::platform::storage::Storage;
use routes::{Body, KeyUse, Params, Route};

/// The HTTP components of `spin.toml`, one per API area.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// `/api/v1/principals/...`, `/api/v1/me`, `/api/v1/webhooks/...`.
    Identity,
    /// `/api/v1/services/...`, `/api/v1/products/...`, `/api/v1/catalog/...`.
    Listings,
    /// `/api/v1/reviews/...`.
    Reviews,
    /// `/api/v1/orders/...`, `/api/v1/instances/...`, `/api/v1/accounts/...`, `/api/v1/bills/...`,
    /// `/api/v1/billing/...`, `/api/v1/settlements/...`.
    Orders,
    /// `/api/v1/metering/...`.
    Metering,
}

impl Api {
    /// This area's route table.
    pub(crate) fn routes(self) -> &'static [Route] {
        match self {
            Api::Identity => identity::ROUTES,
            Api::Listings => listings::ROUTES,
            Api::Reviews => reviews::ROUTES,
            Api::Orders => orders::ROUTES,
            Api::Metering => metering::ROUTES,
        }
    }

    const ALL: [Api; 5] = [
        Api::Identity,
        Api::Listings,
        Api::Reviews,
        Api::Orders,
        Api::Metering,
    ];
}

/// The route of this area that takes `segments`, with its parameters.
pub(crate) fn find_route(api: Api, segments: &[String]) -> Option<(&'static Route, Params)> {
    api.routes()
        .iter()
        .find_map(|r| r.matches(segments).map(|p| (r, p)))
}

/// Every route of every area.
#[cfg(test)]
fn all_routes() -> impl Iterator<Item = (Api, &'static Route)> {
    Api::ALL
        .into_iter()
        .flat_map(|api| api.routes().iter().map(move |r| (api, r)))
}

/// Everything a handler needs about its request and its environment.
pub(crate) struct Ctx<'a> {
    pub storage: &'a Storage,
    pub outbound: &'a dyn Outbound,
    pub config: &'a Config,
    pub now: DateTime<Utc>,
    /// The wall clock, whatever `X-Clock-Now` says: `as_of` of a bill run is checked against it.
    pub real_now: DateTime<Utc>,
    /// The wall clock, to read again after waiting ([`Ctx::now_again`]).
    pub clock: &'a dyn Fn() -> DateTime<Utc>,
    /// The parameters of the route's path (`{id}`, `{kind}`, …).
    pub params: Params,
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    /// The caller, once authenticated ([`Ctx::principal`]).
    pub caller: OnceCell<ApiResult<Principal>>,
}

/// The principal of a request's bearer token, or 401: no token (not counted as a failure), or
/// one nobody holds (counted against the client's address: past the deployment's
/// `failed_authentication_limit` in a minute, 429). The
/// minute is the wall clock's: `X-Clock-Now` moves no throttle.
fn authenticate(
    headers: &HeaderMap,
    storage: &Storage,
    config: &Config,
    now: DateTime<Utc>,
) -> ApiResult<Principal> {
    let header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let token = bearer_token(header)?;
    let client = headers
        .get(throttle::CLIENT_HEADER)
        .and_then(|v| v.to_str().ok());
    let db = storage.db()?;
    let limit = config.failed_authentication_limit;
    throttle::guarded(db, client, limit, now, || {
        principal_for_token(db, token, &config.admin_token)
    })
}

impl Ctx<'_> {
    /// "Now" read again, by a step that waited for a lock before it dates what it writes: the
    /// wall clock by then, or `X-Clock-Now` where it is honoured (it names one instant).
    pub(crate) fn now_again(&self) -> DateTime<Utc> {
        if self.now == self.real_now {
            (self.clock)()
        } else {
            self.now
        }
    }

    /// The authenticated caller, or 401 (429 after too many failures from its address); asked
    /// once per request, however often a handler and the idempotency guard ask.
    pub(crate) fn principal(&self) -> ApiResult<Principal> {
        self.caller
            .get_or_init(|| authenticate(&self.headers, self.storage, self.config, self.real_now))
            .clone()
    }

    /// A parameter of the route's path (`{id}` → `ctx.param("id")`).
    pub(crate) fn param(&self, name: &str) -> &str {
        self.params.get(name)
    }

    pub(crate) fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A query parameter naming one of an enum's values (`?status=pending`): absent is `None`,
    /// anything but a value is 400 `InvalidQuery`, `expected` saying what would do.
    pub(crate) fn query_enum<T: DeserializeOwned>(
        &self,
        name: &str,
        expected: &str,
    ) -> ApiResult<Option<T>> {
        self.query(name)
            .map(|v| {
                serde_json::from_value(serde_json::Value::String(v.to_owned())).map_err(|_| {
                    ApiError::validation(vec![FieldError::new(name, Code::InvalidQuery, expected)])
                })
            })
            .transpose()
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The JSON body as `T`. Unknown fields are refused (`deny_unknown_fields` on every request
    /// type) and the error names the offending path.
    pub(crate) fn json<T: DeserializeOwned>(&self) -> ApiResult<T> {
        crate::validate::parse_json(self.json_bytes()?)
    }

    /// The raw body of a JSON request; any declared content type but JSON is 415.
    pub(crate) fn json_bytes(&self) -> ApiResult<&[u8]> {
        if let Some(ct) = self.header("content-type")
            && !ct.to_ascii_lowercase().starts_with("application/json")
        {
            return Err(ApiError::new(
                Code::UnsupportedMediaType,
                format!("expected an application/json body, got {ct}"),
            ));
        }
        Ok(&self.body)
    }

    /// A time bound in the query string (`from`, `to`): RFC 3339 or Unix seconds.
    pub(crate) fn time_bound(&self, name: &str, default: i64) -> ApiResult<i64> {
        let Some(v) = self.query(name) else {
            return Ok(default);
        };
        v.parse::<i64>()
            .ok()
            .or_else(|| DateTime::parse_from_rfc3339(v).ok().map(|t| t.timestamp()))
            .ok_or_else(|| {
                ApiError::validation(vec![FieldError::new(
                    name,
                    Code::InvalidQuery,
                    "RFC 3339 or Unix seconds",
                )])
            })
    }

    /// `?limit=&cursor=` of a list endpoint.
    pub(crate) fn page(&self) -> ApiResult<Page> {
        let limit = match self.query("limit") {
            None => DEFAULT_LIMIT,
            Some(v) => match v.parse::<usize>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
                _ => {
                    return Err(ApiError::validation(vec![FieldError::new(
                        "limit",
                        Code::InvalidQuery,
                        format!("an integer from 1 to {MAX_LIMIT}"),
                    )]));
                }
            },
        };
        Ok(Page {
            limit,
            cursor: self.query("cursor").map(str::to_owned),
        })
    }
}

impl Ctx<'_> {
    /// Whether the client asked for CSV: `text/csv` in `Accept` with a weight above zero and at
    /// least JSON's (listed first on a tie).
    pub(crate) fn wants_csv(&self) -> bool {
        let Some(accept) = self.header("accept") else {
            return false;
        };
        let mut csv: Option<(f32, usize)> = None;
        let mut json: Option<(f32, usize)> = None;
        for (i, range) in accept.split(',').enumerate() {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            match media.as_str() {
                "text/csv" => csv = Some((q, i)),
                "application/json" | "application/*" | "*/*" if json.is_none_or(|j| q > j.0) => {
                    json = Some((q, i));
                }
                _ => {}
            }
        }
        match (csv, json) {
            (Some((c, _)), _) if c <= 0.0 => false,
            (Some(_), None) => true,
            (Some((c, ci)), Some((j, ji))) => c > j || (c == j && ci < ji),
            (None, _) => false,
        }
    }
}

pub(crate) const DEFAULT_LIMIT: usize = 50;
pub(crate) const MAX_LIMIT: usize = 500;

pub(crate) struct Page {
    pub limit: usize,
    /// The id of the last item of the previous page.
    pub cursor: Option<String>,
}

impl Page {
    /// Fetch `limit + 1` rows and pass them here: the extra row only tells there is a next page.
    pub(crate) fn list<T: Serialize>(
        &self,
        items: Vec<T>,
        id: impl Fn(&T) -> &str,
    ) -> ApiResult<Resp> {
        ok(&self.envelope(items, id))
    }

    /// `{"items": [...], "next_cursor": ...}` from `limit + 1` fetched rows.
    pub(crate) fn envelope<T: Serialize>(
        &self,
        mut items: Vec<T>,
        id: impl Fn(&T) -> &str,
    ) -> Listed<T> {
        let next_cursor = if items.len() > self.limit {
            items.truncate(self.limit);
            items.last().map(|i| id(i).to_owned())
        } else {
            None
        };
        Listed { items, next_cursor }
    }

    pub(crate) fn fetch(&self) -> usize {
        self.limit + 1
    }
}

/// A page of a list: its items and where the next page starts, if there is one.
#[derive(Serialize)]
pub(crate) struct Listed<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// A list answered whole (`{"items": [...]}`): categories, a product's media and items.
#[derive(Serialize)]
pub(crate) struct Items<T> {
    pub items: Vec<T>,
}

pub use crate::export::CsvPages;

/// An HTTP response of the API.
pub type Resp = Response<Vec<u8>>;

pub(crate) fn json_response<T: Serialize>(status: StatusCode, body: &T) -> ApiResult<Resp> {
    let body = serde_json::to_vec(body).map_err(ApiError::internal)?;
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body)
        .map_err(ApiError::internal)
}

pub(crate) fn ok<T: Serialize>(body: &T) -> ApiResult<Resp> {
    json_response(StatusCode::OK, body)
}

pub(crate) fn created<T: Serialize>(body: &T) -> ApiResult<Resp> {
    json_response(StatusCode::CREATED, body)
}

pub(crate) fn no_content() -> ApiResult<Resp> {
    Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body(Vec::new())
        .map_err(ApiError::internal)
}

/// The problem document of a refusal or failure, with its status and headers.
pub fn problem(err: &ApiError) -> Resp {
    let mut builder = Response::builder()
        .status(err.status())
        .header(header::CONTENT_TYPE, "application/problem+json");
    if let Some(allow) = &err.allow {
        builder = builder.header(header::ALLOW, allow);
    }
    if let Some(seconds) = err.retry_after {
        builder = builder.header(header::RETRY_AFTER, seconds);
    }
    if err.code == Code::Unauthorized {
        builder = builder.header(header::WWW_AUTHENTICATE, "Bearer");
    }
    builder
        .body(err.to_problem_json())
        .expect("static headers are valid")
}

/// The largest JSON body any endpoint takes (1 MiB): far above any valid request (a full
/// pricing step, a 100-record push), far below what would tie up an instance.
pub const JSON_BODY_MAX: usize = 1_048_576;

/// The largest body a request may carry, as its route says (`routes::Body`): on a media slot's
/// path (`/products/{id}/media/{kind}` and `…/{kind}/{index}`) its kind's byte limit, whatever
/// the method — a `POST` of a file to a slot is a `405`, as for a body of any size the slot would
/// take —, anything else [`JSON_BODY_MAX`]. Known from the path alone (the method is taken for
/// the components' common signature, and does not matter), so a larger body is refused before
/// it is read, routed or authenticated.
pub fn body_limit(_method: &Method, path: &str) -> usize {
    let Some(segments) = routes::segments_of(path) else {
        return JSON_BODY_MAX;
    };
    Api::ALL
        .into_iter()
        .find_map(|api| find_route(api, &segments))
        .map_or(JSON_BODY_MAX, |(route, params)| route.body_limit(&params))
}

/// What to do with a body that may be larger than [`JSON_BODY_MAX`], before it is read: a
/// media slot takes a file with `PUT` alone, from a provider; for another method the body is
/// not read, and for a `PUT` without a provider's token the answer is 401 (or 403). Whoever may
/// not upload never makes the app read up to 100 MiB.
pub fn before_large_body(
    api: Api,
    head: &http::request::Parts,
    storage: &Storage,
    config: &Config,
    real_now: DateTime<Utc>,
) -> LargeBody {
    let takes_file = routes::segments_of(head.uri.path())
        .and_then(|segments| find_route(api, &segments))
        .is_some_and(|(route, _)| {
            route.body == Body::MediaFile
                && head.method == Method::PUT
                && route.serving(&Method::PUT).is_some()
        });
    if !takes_file {
        return LargeBody::Skip;
    }
    let authorized = authenticate(&head.headers, storage, config, real_now)
        .and_then(|principal| principal.require(&[crate::identity::Role::Provider]));
    match authorized {
        Ok(()) => LargeBody::Read,
        Err(e) => LargeBody::Refuse(Box::new(problem(&e))),
    }
}

/// 413 for a body over `limit` bytes.
pub fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        Code::PayloadTooLarge,
        format!("the body is larger than this endpoint's limit of {limit} bytes"),
    )
}

/// Serves one request for `api`. `clock` reads the wall clock (when the request arrives, and
/// again after a wait); a deployment that allows the test clock takes "now" from `X-Clock-Now`
/// instead. Its route table decides 404 and 405 before the handler runs; the handler
/// authenticates and does the work.
pub fn handle(
    api: Api,
    req: Request<Vec<u8>>,
    storage: &Storage,
    outbound: &dyn Outbound,
    config: &Config,
    clock: &dyn Fn() -> DateTime<Utc>,
) -> Resp {
    let real_now = clock();
    let (parts, body) = req.into_parts();
    let limit = body_limit(&parts.method, parts.uri.path());
    if body.len() > limit {
        return problem(&too_large(limit));
    }
    let result =
        effective_now(&parts.headers, config.allow_clock_override, real_now).and_then(|now| {
            let path = parts.uri.path();
            let no_route = || ApiError::not_found("route");
            let segments = routes::segments_of(path).ok_or_else(no_route)?;
            let (route, params) = find_route(api, &segments).ok_or_else(no_route)?;
            let serve = route
                .serving(&parts.method)
                .ok_or_else(|| route.not_allowed())?;
            let target = parts.uri.path_and_query().map_or(path, |t| t.as_str());
            let fingerprint =
                idempotency::fingerprint(&parts.method, target, &parts.headers, &body);
            let ctx = Ctx {
                storage,
                outbound,
                config,
                now,
                real_now,
                clock,
                params,
                query: form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
                    .into_owned()
                    .collect(),
                headers: parts.headers.clone(),
                body,
                caller: OnceCell::new(),
            };
            let respond = || (serve.handler)(&ctx).unwrap_or_else(|e| problem(&e));
            match idempotency_guard(&ctx, serve.key)? {
                Some((caller, key, guard)) => idempotency::run(
                    storage.db()?,
                    &caller.id,
                    &key,
                    &fingerprint,
                    guard,
                    now,
                    respond,
                ),
                None => Ok(respond()),
            }
        });
    let mut response = result.unwrap_or_else(|e| problem(&e));
    config.secure(&mut response);
    response
}

/// Delivers the webhook events the request just served emitted, right after its response was
/// handed over: outside any transaction, within a few seconds, leaving whatever fails or is left
/// to the schedule's retries. `now` is the wall clock.
pub fn after_response(storage: &Storage, outbound: &dyn Outbound, now: DateTime<Utc>) {
    let emitted = crate::webhook::take_emitted();
    if emitted.is_empty() {
        return;
    }
    let delivered = storage
        .db()
        .and_then(|db| crate::webhook::deliver::deliver_emitted(db, outbound, now, &emitted));
    if let Err(e) = delivered {
        eprintln!(
            "webhooks: deliveries after the response failed: {}",
            e.detail
        );
    }
}

/// Whether this request is guarded by an idempotency key, for whom, and how (its route's
/// [`KeyUse`]). The key is looked at only once the request is routed (the route table answered
/// 404 and 405 already) and its caller authenticated, as the documented order of checks puts
/// routing before the token (401): a request without a valid token is served as if it had no
/// key — nothing it does is recorded.
fn idempotency_guard(
    ctx: &Ctx<'_>,
    key_use: KeyUse,
) -> ApiResult<Option<(Principal, IdempotencyKey, Guard)>> {
    let Some(value) = ctx.headers.get(idempotency::HEADER) else {
        return Ok(None);
    };
    if key_use == KeyUse::Ignored {
        return Ok(None);
    }
    let Ok(caller) = ctx.principal() else {
        return Ok(None);
    };
    let key = IdempotencyKey::parse(value.as_bytes())?;
    match key_use {
        KeyUse::Guarded(guard) => Ok(Some((caller, key, guard))),
        KeyUse::Ignored => Ok(None),
        KeyUse::Refused => Err(ApiError::validation(vec![FieldError::new(
            "Idempotency-Key",
            Code::InvalidValue,
            "not accepted on requests that issue a token: a token is shown once",
        )])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::listing::media::MediaKind;

    fn segments(path: &str) -> Vec<String> {
        routes::segments_of(path).unwrap()
    }

    fn body_limit(path: &str) -> usize {
        super::body_limit(&Method::PUT, path)
    }

    #[test]
    fn a_path_finds_its_route_and_parameters_or_none() {
        let (route, params) =
            find_route(Api::Listings, &segments("/api/v1/products/p-1/pricing")).unwrap();
        assert_eq!(route.path, "products/{id}/{step}");
        assert_eq!((params.get("id"), params.get("step")), ("p-1", "pricing"));
        assert!(find_route(Api::Listings, &segments("/api/v1/products/p-1/bogus")).is_none());
        assert!(
            find_route(
                Api::Listings,
                &segments("/api/v1/products/p-1/media/poster")
            )
            .is_none()
        );
        assert!(find_route(Api::Orders, &segments("/api/v1/products/p-1")).is_none());
        let (route, _) = find_route(Api::Orders, &segments("/api/v1/settlements/runs")).unwrap();
        assert_eq!(route.path, "settlements/runs");
    }

    #[test]
    fn another_method_is_405_with_what_the_route_takes() {
        let (route, _) =
            find_route(Api::Listings, &segments("/api/v1/products/p-1/media/logo")).unwrap();
        assert!(route.serving(&Method::POST).is_none());
        let refusal = route.not_allowed();
        assert_eq!(refusal.allow.as_deref(), Some("GET, PUT, DELETE"));
    }

    #[test]
    fn a_media_slot_takes_its_kinds_file_and_every_other_path_json() {
        assert_eq!(
            body_limit("/api/v1/products/p-1/media/video"),
            MediaKind::Video.max_bytes()
        );
        assert_eq!(
            body_limit("/api/v1/products/p-1/media/screenshot/2"),
            MediaKind::Screenshot.max_bytes()
        );
        for path in [
            "/api/v1/products/p-1/media/poster",
            "/api/v1/catalog/p-1/media/video",
            "/api/v1/metering",
            "/elsewhere",
        ] {
            assert_eq!(body_limit(path), JSON_BODY_MAX, "{path}");
        }
    }

    #[test]
    fn every_route_is_written_once_and_takes_each_method_once() {
        let mut seen = std::collections::HashSet::new();
        for (api, route) in all_routes() {
            assert!(seen.insert(route.path), "{api:?} {} twice", route.path);
            let mut methods: Vec<&str> = route.serves.iter().map(|s| s.verb.as_str()).collect();
            methods.dedup();
            assert_eq!(methods.len(), route.serves.len(), "{}", route.path);
        }
    }
}
