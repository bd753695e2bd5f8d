//! Signing in with an API token, and out.

use http::StatusCode;
use maud::html;

use crate::console::http::{Req, Resp, cookie, html_with_cookie, redirect, redirect_with_cookie};
use crate::console::layout::{Chrome, page};
use crate::console::{SESSION_COOKIE, csrf_refusal, home_of};
use crate::error::{ApiError, ApiResult, Code};
use crate::identity::session::{self, SESSION_HOURS, Session, csrf_from_secret, csrf_matches};
use crate::identity::throttle;
use crate::platform::ids::random_bytes;

/// The sign-in form's own secret, in a cookie of the sign-in page: the form's anti-forgery token
/// is derived from it, since no session exists yet.
const SIGN_IN_COOKIE: &str = "nestmarket_sign_in";

/// `/`: the visitor's home page.
pub(crate) fn home(session: Option<&Session>) -> ApiResult<Resp> {
    redirect(session.map_or("/catalog", |s| home_of(&s.principal)))
}

/// The sections of the console a signed-in visitor may be sent back to (`/sign-in`, `/sign-out`,
/// assets and the API are none of them).
const SECTIONS: &[&str] = &[
    "catalog",
    "orders",
    "instances",
    "bills",
    "account",
    "services",
    "products",
    "reviews",
    "principals",
    "bill-runs",
    "settlements",
];

/// Where to go after signing in (or after an action of a list): a page of this console only,
/// never another site. The path is made of ids and words only — letters, digits, `-`, `_`,
/// `.`, `/` — under one of the console's [`SECTIONS`], with no empty or `..` segment; anything
/// percent-encoded, a control character (a browser drops a tab from `/%09/evil.example`, leaving
/// `//evil.example`) or a backslash is refused. A query may follow, of visible characters but a
/// backslash.
pub(super) fn local_path(next: Option<&str>) -> Option<&str> {
    let next = next?;
    let (path, query) = next.split_once('?').unwrap_or((next, ""));
    let segments: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
    let words = segments.iter().all(|s| {
        !s.is_empty()
            && *s != ".."
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    });
    let query_ok = query.bytes().all(|b| b.is_ascii_graphic() && b != b'\\');
    (words && query_ok && SECTIONS.contains(&segments[0])).then_some(next)
}

/// A signed-out visitor asking for a page is sent to sign in, and back afterwards.
pub(crate) fn to_sign_in(req: &Req) -> ApiResult<Resp> {
    if req.method != http::Method::GET {
        return redirect("/sign-in");
    }
    let path = format!("/{}", req.segments.join("/"));
    let next: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("next", &path)
        .finish();
    redirect(&format!("/sign-in?{next}"))
}

fn sign_in_page(
    req: &Req,
    chrome: &Chrome,
    nonce: &str,
    problem: Option<&ApiError>,
) -> maud::Markup {
    let next = local_path(req.query("next")).unwrap_or("");
    page(
        chrome,
        "Sign in",
        html! {
            p { "Sign in with the API token your marketplace operator gave you (it starts with "
                code { "nm_" } "). Operators of a new deployment use its " code { "admin_token" } "." }
            @if let Some(p) = problem {
                div.summary role="alert" { p { strong { (p.detail) } } }
            }
            form.narrow method="post" action="/sign-in" {
                input type="hidden" name="csrf" value=(csrf_from_secret(nonce));
                input type="hidden" name="next" value=(next);
                div.field.invalid[problem.is_some()] {
                    label for="token" { "API token" }
                    input id="token" name="token" type="password" autocomplete="off" required;
                }
                button type="submit" { "Sign in" }
            }
        },
    )
}

fn new_nonce() -> String {
    hex::encode(random_bytes::<32>())
}

fn nonce_cookie(req: &Req, nonce: &str) -> String {
    cookie(SIGN_IN_COOKIE, nonce, "/sign-in", 3600, req.is_tls())
}

/// `GET /sign-in`.
pub(crate) fn sign_in_form(req: &Req, chrome: &Chrome) -> ApiResult<Resp> {
    if let Some(p) = &chrome.principal {
        return redirect(home_of(p));
    }
    let nonce = new_nonce();
    Ok(html_with_cookie(
        StatusCode::OK,
        sign_in_page(req, chrome, &nonce, None),
        Some(nonce_cookie(req, &nonce)),
    ))
}

/// `POST /sign-in`: the token becomes a session cookie; the token itself is kept nowhere.
pub(crate) fn sign_in(req: &Req, chrome: &Chrome) -> ApiResult<Resp> {
    let form = req.form();
    let value = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let nonce = req.cookie(SIGN_IN_COOKIE).unwrap_or_default();
    if nonce.is_empty() || !csrf_matches(&csrf_from_secret(nonce), value("csrf").unwrap_or("")) {
        return Err(csrf_refusal());
    }
    let db = req.db()?;
    let client = req.header(throttle::CLIENT_HEADER);
    let limit = req.config.failed_authentication_limit;
    let signed_in = throttle::guarded(db, client, limit, req.real_now, || {
        session::sign_in(
            db,
            value("token").unwrap_or(""),
            &req.config.admin_token,
            req.now,
        )
    });
    match signed_in {
        Ok(session) => {
            let to = local_path(value("next").filter(|n| !n.is_empty()))
                .unwrap_or(home_of(&session.principal));
            // The sign-in form's cookie is left to expire within the hour: a response sets
            // one cookie (see `html_with_cookie`).
            redirect_with_cookie(
                to,
                Some(cookie(
                    SESSION_COOKIE,
                    session.id.reveal(),
                    "/",
                    SESSION_HOURS * 3600,
                    req.is_tls(),
                )),
            )
        }
        Err(e) if matches!(e.code, Code::Unauthorized | Code::Forbidden) => {
            let problem = if e.code == Code::Unauthorized {
                ApiError::new(Code::Unauthorized, "that token signs no one in")
            } else {
                e
            };
            let nonce = new_nonce();
            Ok(html_with_cookie(
                problem.status(),
                sign_in_page(req, chrome, &nonce, Some(&problem)),
                Some(nonce_cookie(req, &nonce)),
            ))
        }
        Err(e) => Err(e),
    }
}

/// `POST /sign-out`: the session ends on the server, not only in this browser.
pub(crate) fn sign_out(req: &Req, session: &Session) -> ApiResult<Resp> {
    session::sign_out(req.db()?, &session.id)?;
    redirect_with_cookie(
        "/sign-in",
        Some(cookie(SESSION_COOKIE, "", "/", 0, req.is_tls())),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_of_this_console_are_followed_after_sign_in() {
        for local in [
            "/bills/bill-1",
            "/principals?role=provider",
            "/products/prod-1/steps/access",
        ] {
            assert_eq!(local_path(Some(local)), Some(local));
        }
        for foreign in [
            "//evil.example",
            "https://evil.example",
            "/\\evil.example",
            "",
            "/",
            // Percent-encoded or control characters: browsers drop a tab, and `%09` decodes to
            // one, leaving `//evil.example`.
            "/%09/evil.example",
            "/\t/evil.example",
            "/catalog/%2F%2Fevil.example",
            "/%2F%2Fevil.example",
            "/catalog\\evil.example",
            "/catalog//evil.example",
            "/catalog/../../evil",
            // Not a page a visitor is sent back to.
            "/api/v1/me",
            "/sign-out",
            "/assets/console.css",
            "/bills?x=\\evil",
        ] {
            assert_eq!(local_path(Some(foreign)), None, "{foreign}");
        }
    }
}
