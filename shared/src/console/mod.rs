//! The web console: pages for providers, operators and customers, rendered on the server from the
//! same domain functions the API calls, under the same roles and tenant scopes (another tenant's
//! page is 404, like a missing one).
//!
//! A principal signs in with its API token; the browser then holds a session cookie
//! (`identity::session`). Every form carries an anti-forgery token derived from the session,
//! checked on every POST before anything else. Pages are HTML from `maud` templates (which escape
//! every value), styled by one embedded stylesheet; no script runs, so the content security
//! policy allows nothing inline.
//!
//! - `http`: requests, cookies, responses and their security headers;
//! - `layout`: the page around every page, its navigation, the error pages;
//! - `form`: HTML forms to the domain's JSON bodies and back, field errors beside their fields;
//! - `chart`: usage as server-rendered SVG;
//! - `widgets`: what several pages show (a next-page link, a tier schedule, a template's
//!   resources, tags);
//! - `pages/`: one module per area, each page parse → authorize → one domain call → render.

mod assets;
mod chart;
mod form;
mod format;
mod http;
mod layout;
mod once;
mod pages;
mod widgets;

use ::http::{Method, Request};
use chrono::{DateTime, Utc};

use crate::error::{ApiError, ApiResult, Code};
use crate::idempotency::Guard;
use crate::identity::session::{self, Session, SessionId};
use crate::identity::{Principal, Role};
use crate::listing::media::MediaKind;
use crate::platform::LargeBody;
use crate::platform::clock::effective_now;
use crate::platform::config::Config;
use crate::platform::outbound::Outbound;
use crate::platform::storage::Storage;
pub(crate) use http::{Req, Resp};
use layout::Chrome;

/// The cookie holding the session id.
pub(crate) const SESSION_COOKIE: &str = "nestmarket_session";
/// The form field holding the anti-forgery token.
pub(crate) const CSRF_FIELD: &str = "csrf";

/// Room for a multipart form's boundaries and fields around an uploaded file.
const FORM_OVERHEAD: usize = 65_536;

/// The largest form but a media upload (1 MiB, as the API's JSON bodies): far above any page's
/// fields, a pasted service definition included.
const FORM_MAX: usize = 1_048_576;

/// The largest body a console request may carry, known from its method and path alone: a media
/// upload the largest media kind's size (its kind is a field of the form), any other form 1 MiB.
pub fn body_limit(method: &Method, path: &str) -> usize {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method, segments.as_slice()) {
        (&Method::POST, ["products", _, "media"]) => {
            MediaKind::ALL
                .into_iter()
                .map(MediaKind::max_bytes)
                .max()
                .unwrap_or(0)
                + FORM_OVERHEAD
        }
        _ => FORM_MAX,
    }
}

/// What to do with a body that may be larger than a form (a media upload), before it is read:
/// only a signed-in browser's upload is read; a visitor without a session is sent to sign in.
pub fn before_large_body(
    head: &::http::request::Parts,
    storage: &Storage,
    config: &Config,
    real_now: DateTime<Utc>,
) -> LargeBody {
    if head.method != Method::POST {
        return LargeBody::Skip;
    }
    let now =
        effective_now(&head.headers, config.allow_clock_override, real_now).unwrap_or(real_now);
    let name = http::cookie_name(SESSION_COOKIE, http::is_secure(config, &head.headers));
    let session = http::cookie_in(&head.headers, &name).and_then(|c| {
        storage
            .db()
            .and_then(|db| session::resume(db, SessionId::from_cookie(c), &config.admin_token, now))
            .ok()
            .flatten()
    });
    match (session, http::redirect("/sign-in")) {
        (Some(_), _) => LargeBody::Read,
        (None, Ok(to_sign_in)) => LargeBody::Refuse(Box::new(to_sign_in)),
        (None, Err(e)) => LargeBody::Refuse(Box::new(http::problem(&e))),
    }
}

/// Serves one request of the console. `clock` reads the wall clock (when the request arrives,
/// and again after a wait); a deployment that allows the test clock takes "now" from
/// `X-Clock-Now`, as the API does.
pub fn handle(
    req: Request<Vec<u8>>,
    storage: &Storage,
    outbound: &dyn Outbound,
    config: &Config,
    clock: &dyn Fn() -> DateTime<Utc>,
) -> Resp {
    let real_now = clock();
    let (parts, body) = req.into_parts();
    let now = match effective_now(&parts.headers, config.allow_clock_override, real_now) {
        Ok(now) => now,
        Err(e) => return http::problem(&e),
    };
    let req = Req {
        storage,
        outbound,
        config,
        now,
        real_now,
        clock,
        method: parts.method.clone(),
        segments: parts
            .uri
            .path()
            .split('/')
            .skip(1)
            .filter(|s| !s.is_empty())
            .map(crate::validate::path_segment)
            .collect(),
        query: form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect(),
        headers: parts.headers,
        body,
    };
    // Paths under /api/ that no API route took are the API's 404, not a page.
    if req.segments.first().is_some_and(|s| s == "api") {
        return http::problem(&ApiError::not_found("route"));
    }
    let visitor = match visitor(&req) {
        Ok(v) => v,
        Err(e) => return layout::error_page(&Chrome::anonymous(), &e),
    };
    let chrome = Chrome::of(visitor.as_ref());
    let routed = match visitor.as_ref() {
        Some(session) => match check_csrf(&req, session) {
            Ok(()) => route(&req, Some(session), &chrome),
            Err(e) => Err(e),
        },
        None => route(&req, None, &chrome),
    };
    let mut response = routed.unwrap_or_else(|e| layout::error_page(&chrome, &e));
    config.secure(&mut response);
    response
}

/// The signed-in principal's session, if the cookie names one that still works.
fn visitor(req: &Req) -> ApiResult<Option<Session>> {
    let Some(cookie) = req.cookie(SESSION_COOKIE) else {
        return Ok(None);
    };
    session::resume(
        req.db()?,
        SessionId::from_cookie(cookie),
        &req.config.admin_token,
        req.now,
    )
}

/// Every POST of a signed-in browser carries the session's anti-forgery token, or changes
/// nothing: a form another site posts cannot know it.
fn check_csrf(req: &Req, session: &Session) -> ApiResult<()> {
    if req.method != Method::POST {
        return Ok(());
    }
    let submitted = form::field(req, CSRF_FIELD);
    if session::csrf_matches(&session.id.csrf_token(), submitted.as_deref().unwrap_or("")) {
        Ok(())
    } else {
        Err(csrf_refusal())
    }
}

pub(crate) fn csrf_refusal() -> ApiError {
    ApiError::new(
        Code::Forbidden,
        "this form expired or did not come from this console: reload the page and send it again",
    )
}

/// The console's routes. A page for another role is 403; a signed-out visitor is sent to sign in.
fn route(req: &Req, session: Option<&Session>, chrome: &Chrome) -> ApiResult<Resp> {
    let segs: Vec<&str> = req.segments.iter().map(String::as_str).collect();
    let get = req.method == Method::GET || req.method == Method::HEAD;
    let post = req.method == Method::POST;
    if let Some(page) = public_page(req, session, chrome, (&segs, get, post)) {
        return page;
    }
    let Some(session) = session else {
        return pages::auth::to_sign_in(req);
    };
    if segs == ["sign-out"] && post {
        return pages::auth::sign_out(req, session);
    }
    let visit = Visit {
        req,
        chrome,
        me: &session.principal,
        get,
        post,
    };
    visit
        .customer_page(&segs)
        .or_else(|| visit.provider_page(&segs))
        .or_else(|| visit.operator_page(&segs))
        .unwrap_or_else(|| Err(ApiError::not_found("page")))
}

/// The pages anyone may see: the assets, the home, signing in, the catalog.
fn public_page(
    req: &Req,
    session: Option<&Session>,
    chrome: &Chrome,
    (segs, get, post): (&[&str], bool, bool),
) -> Option<ApiResult<Resp>> {
    Some(match (segs, get, post) {
        (["assets", name], true, _) => assets::serve(req, name),
        ([], true, _) => pages::auth::home(session),
        (["sign-in"], true, _) => pages::auth::sign_in_form(req, chrome),
        (["sign-in"], _, true) => pages::auth::sign_in(req, chrome),
        (["catalog"], true, _) => pages::catalog::list(req, chrome),
        (["catalog", id], true, _) => pages::catalog::product(req, chrome, id),
        _ => return None,
    })
}

/// A signed-in principal's request: each area's pages check the role they serve.
struct Visit<'a> {
    req: &'a Req<'a>,
    chrome: &'a Chrome,
    me: &'a Principal,
    get: bool,
    post: bool,
}

impl Visit<'_> {
    /// A customer's orders, instances, bills and account; bills' usage, downloads and webhooks
    /// (every role's, each page checking its own).
    fn customer_page(&self, segs: &[&str]) -> Option<ApiResult<Resp>> {
        let (req, chrome, me) = (self.req, self.chrome, self.me);
        Some(match (segs, self.get, self.post) {
            (["orders", "new"], true, _) => pages::customer::confirm(req, chrome, me),
            (["orders"], _, true) => once::submit(req, chrome, me, Guard::Atomic, || {
                pages::customer::place(req, chrome, me)
            }),
            (["instances"], true, _) => pages::instances::list(req, chrome, me),
            (["instances", id], true, _) => pages::instances::show(req, chrome, me, id),
            (["instances", id, "actions"], _, true) => pages::instances::act(req, me, id),
            (["bills"], true, _) => pages::bills::list(req, chrome, me),
            (["bills", id], true, _) => pages::bills::show(req, chrome, me, id),
            (["bills", id, "usage"], true, _) => pages::bills::line_usage(req, chrome, me, id),
            (["exports", "bills"], true, _) => pages::exports::bills(req, me),
            (["exports", "usage"], true, _) => pages::exports::usage(req, me),
            (["exports", "settlements"], true, _) => pages::exports::settlements(req, me),
            (["webhooks"], true, _) => pages::webhooks::list(req, chrome, me),
            (["webhooks"], _, true) => pages::webhooks::create(req, chrome, me),
            (["webhooks", id], true, _) => pages::webhooks::show(req, chrome, me, id),
            (["webhooks", id, "delete"], _, true) => pages::webhooks::delete(req, me, id),
            (["bills", id, "credit-notes"], _, true) => {
                once::submit(req, chrome, me, Guard::Atomic, || {
                    pages::bills::credit(req, chrome, me, id)
                })
            }
            (["account"], true, _) => pages::customer::account(req, chrome, me),
            _ => return None,
        })
    }

    /// A provider's services, products, listing steps, media and sales settings.
    fn provider_page(&self, segs: &[&str]) -> Option<ApiResult<Resp>> {
        let (req, chrome, me) = (self.req, self.chrome, self.me);
        Some(match (segs, self.get, self.post) {
            (["services"], true, _) => pages::provider::services(req, chrome, me),
            (["services"], _, true) => pages::provider::create_service(req, chrome, me),
            (["products"], true, _) => pages::provider::products(req, chrome, me),
            (["products"], _, true) => pages::provider::create_product(req, me),
            (["products", id], true, _) => pages::provider::product(req, chrome, me, id),
            (["products", id, "reviews"], _, true) => pages::provider::submit(req, chrome, me, id),
            (["products", id, "delist"], _, true) => pages::pricing::change(req, me, id, true),
            (["products", id, "relist"], _, true) => pages::pricing::change(req, me, id, false),
            (["products", id, "steps", step], true, _) => {
                pages::wizard::show(req, chrome, me, id, step)
            }
            (["products", id, "steps", step], _, true) => {
                pages::wizard::save(req, chrome, me, id, step)
            }
            (["products", id, "media"], true, _) => pages::media::show(req, chrome, me, id),
            (["products", id, "media"], _, true) => pages::media::upload(req, chrome, me, id),
            (["products", id, "media", "delete"], _, true) => pages::media::delete(req, me, id),
            (["products", id, "media", kind], true, _) => {
                pages::media::file(req, me, id, kind, None)
            }
            (["products", id, "media", kind, index], true, _) => {
                pages::media::file(req, me, id, kind, Some(index))
            }
            (["products", id, "sales"], true, _) => pages::sales::show(req, chrome, me, id),
            (["products", id, "sales", code, setting], _, true) => {
                pages::sales::save(req, chrome, me, id, code, setting)
            }
            _ => return None,
        })
    }

    /// An operator's reviews, principals, bill runs and settlements.
    fn operator_page(&self, segs: &[&str]) -> Option<ApiResult<Resp>> {
        let (req, chrome, me) = (self.req, self.chrome, self.me);
        let once =
            |guard, page: &dyn Fn() -> ApiResult<Resp>| once::submit(req, chrome, me, guard, page);
        Some(match (segs, self.get, self.post) {
            (["reviews"], true, _) => pages::operator::queue(req, chrome, me),
            (["reviews", id], true, _) => pages::operator::review(req, chrome, me, id),
            (["reviews", id, "decision"], _, true) => pages::operator::decide(req, chrome, me, id),
            (["principals"], true, _) => pages::principals::principals(req, chrome, me),
            (["principals"], _, true) => pages::principals::create_principal(req, chrome, me),
            (["principals", id, "tokens"], _, true) => {
                pages::principals::rotate(req, chrome, me, id)
            }
            (["principals", id], true, _) => pages::principals::principal(req, chrome, me, id),
            (["principals", id, "top-ups"], _, true) => once(Guard::Atomic, &|| {
                pages::principals::top_up(req, chrome, me, id)
            }),
            (["principals", id, "disable" | "enable"], _, true) => {
                pages::principals::set_disabled(req, chrome, me, id, segs[2] == "disable")
            }
            (["principals", id, "commission"], _, true) => {
                pages::principals::set_commission(req, chrome, me, id)
            }
            (["bill-runs"], true, _) => pages::operator::bill_runs(req, chrome, me),
            (["bill-runs"], _, true) => once(Guard::Recorded, &|| {
                pages::operator::run_bills(req, chrome, me)
            }),
            (["settlements"], true, _) => pages::settlements::month(req, chrome, me),
            (["settlements", "close"], _, true) => once(Guard::Recorded, &|| {
                pages::settlements::close(req, chrome, me)
            }),
            (["settlements", "write-offs"], _, true) => {
                pages::settlements::write_off(req, chrome, me)
            }
            (["settlements", id], true, _) => pages::settlements::statement(req, chrome, me, id),
            (["settlements", id, "payout"], _, true) => once(Guard::Atomic, &|| {
                pages::settlements::pay(req, chrome, me, id)
            }),
            _ => return None,
        })
    }
}

/// The page a principal lands on after signing in.
pub(crate) fn home_of(principal: &Principal) -> &'static str {
    match principal.role {
        Role::Operator => "/reviews",
        Role::Provider => "/products",
        Role::Customer | Role::Platform => "/catalog",
    }
}
