//! One-time form tokens. Every form that moves money or deploys — an order, a top-up, a payout,
//! a bill run, a month's close — carries a fresh random token ([`field`]), and its submission
//! is served under that token as its idempotency key ([`crate::idempotency`]): a double click, a
//! page sent again or a post the browser retries takes effect once, and every submission of the
//! form is answered as the first was (the same redirect).

use maud::{Markup, html};

use super::form;
use super::http::{Req, Resp, replayed};
use super::layout::{self, Chrome};
use crate::error::ApiResult;
use crate::idempotency::{self, Guard, IdempotencyKey};
use crate::identity::Principal;
use crate::platform::ids::random_bytes;

/// The hidden field holding the token (a control field: never part of a body).
const FIELD: &str = "_once";

/// The hidden input of a one-time token, fresh on every rendering of the form.
pub(crate) fn field() -> Markup {
    html! { input type="hidden" name=(FIELD) value=(hex::encode(random_bytes::<16>())); }
}

/// Serves a form's submission once per token: `guard` as the API's route would (`Atomic` for
/// what one transaction writes, `Recorded` for bill runs and closes, which read Prometheus
/// between their transactions). A form sent without a token is served as it is.
pub(crate) fn submit(
    req: &Req,
    chrome: &Chrome,
    me: &Principal,
    guard: Guard,
    serve: impl Fn() -> ApiResult<Resp>,
) -> ApiResult<Resp> {
    let Some(token) = form::field(req, FIELD) else {
        return serve();
    };
    let key = IdempotencyKey::parse(token.as_bytes())?;
    let path = format!("/{}", req.segments.join("/"));
    let fingerprint = idempotency::fingerprint(&req.method, &path, &req.headers, &req.body);
    let answer = idempotency::run(
        req.db()?,
        &me.id,
        &key,
        &fingerprint,
        guard,
        req.now,
        || serve().unwrap_or_else(|e| layout::error_page(chrome, &e)),
    )?;
    // A replay comes from the record, without the console's headers: they are put back.
    if answer.headers().contains_key("content-security-policy") {
        Ok(answer)
    } else {
        replayed(answer)
    }
}
