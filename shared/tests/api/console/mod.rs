//! The web console over the in-process market: sessions, anti-forgery tokens, roles and tenant
//! boundaries, the security headers, and that whatever a tenant typed is shown as text;
//! settlements (statements, closing a month, payouts, commission rates) and disabling
//! principals. (The pages in a real browser are the end-to-end tests' `console` module.)

use serde_json::{Value, json};
use testkit::native::{ADMIN, TestApp};
use testkit::{Item, Market, Response, at, str_of};

mod settlements;

/// A browser of the console: it keeps the session cookie and reads forms' anti-forgery tokens.
pub(crate) struct Browser<'a> {
    app: &'a TestApp,
    cookie: Option<String>,
}

/// The value of the hidden `csrf` input of a page.
pub(crate) fn csrf_of(page: &Response) -> String {
    let text = page.text();
    let at = text
        .find(r#"name="csrf" value=""#)
        .unwrap_or_else(|| panic!("no form token on the page: {text}"));
    let rest = &text[at + r#"name="csrf" value=""#.len()..];
    rest[..rest.find('"').expect("a closing quote")].to_owned()
}

/// The `name=value` a `Set-Cookie` header sets.
pub(crate) fn cookie_pair(response: &Response) -> String {
    let set = response.header("set-cookie").expect("a cookie is set");
    set.split(';').next().expect("name=value").to_owned()
}

impl<'a> Browser<'a> {
    pub(crate) fn new(app: &'a TestApp) -> Self {
        Self { app, cookie: None }
    }

    pub(crate) fn request(&self, method: &str, path: &str, form: &[(&str, &str)]) -> Response {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let mut headers = vec![("content-type", "application/x-www-form-urlencoded")];
        if let Some(c) = &self.cookie {
            headers.push(("cookie", c.as_str()));
        }
        self.app.console(method, path, &headers, body.into_bytes())
    }

    pub(crate) fn get(&self, path: &str) -> Response {
        self.request("GET", path, &[])
    }

    /// Posts a form with this session's token, as the page's own form would.
    pub(crate) fn post(&self, path: &str, form: &[(&str, &str)]) -> Response {
        let token = csrf_of(&self.get("/catalog"));
        let mut fields = vec![("csrf", token.as_str())];
        fields.extend_from_slice(form);
        self.request("POST", path, &fields)
    }

    pub(crate) fn sign_in(&mut self, token: &str) -> Response {
        let form = self.app.console("GET", "/sign-in", &[], Vec::new());
        let nonce = cookie_pair(&form);
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("csrf", csrf_of(&form).as_str()),
                ("token", token),
                ("next", ""),
            ])
            .finish();
        let signed_in = self.app.console(
            "POST",
            "/sign-in",
            &[
                ("cookie", &nonce),
                ("content-type", "application/x-www-form-urlencoded"),
            ],
            body.into_bytes(),
        );
        if signed_in.status == 303 {
            self.cookie = Some(cookie_pair(&signed_in));
        }
        signed_in
    }
}

#[test]
fn a_token_signs_in_to_a_session_that_only_the_cookie_holds() {
    let app = TestApp::new();
    let (_, provider) = app.provider();
    let mut browser = Browser::new(&app);
    let signed_in = browser.sign_in(&provider);
    assert_eq!(signed_in.status, 303, "{}", signed_in.text());
    assert_eq!(signed_in.header("location"), Some("/products"));
    let cookie = signed_in.header("set-cookie").unwrap();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
    browser.get("/products").expect(200);
    // The database holds hashes only: neither the token nor the session id.
    let session = browser
        .cookie
        .as_deref()
        .unwrap()
        .split('=')
        .nth(1)
        .unwrap()
        .to_owned();
    let rows = app.snapshot();
    assert!(
        !rows.contains(&provider) && !rows.contains(&session),
        "{rows}"
    );

    // Signed out, the cookie signs no one in.
    browser.post("/sign-out", &[]).expect(303);
    let after = browser.get("/products").expect(303);
    assert_eq!(after.header("location"), Some("/sign-in?next=%2Fproducts"));
}

#[test]
fn over_tls_the_session_cookie_is_secure() {
    let app = TestApp::new();
    let form = app.console(
        "GET",
        "/sign-in",
        &[("spin-full-url", "https://m.example/sign-in")],
        Vec::new(),
    );
    assert!(form.header("set-cookie").unwrap().ends_with("; Secure"));
}

#[test]
fn a_wrong_token_or_a_forged_sign_in_opens_no_session() {
    let app = TestApp::new();
    let mut browser = Browser::new(&app);
    let refused = browser.sign_in("nm_not-a-token").expect(401);
    assert!(refused.text().contains("that token signs no one in"));
    assert!(browser.cookie.is_none());
    // Without the sign-in page's own cookie, its form is refused whatever the token.
    let forged = app.console(
        "POST",
        "/sign-in",
        &[("content-type", "application/x-www-form-urlencoded")],
        format!("csrf=x&token={ADMIN}").into_bytes(),
    );
    assert_eq!(forged.status, 403, "{}", forged.text());
    // The platform has no console.
    let (_, platform) = app.principal("platform", None);
    Browser::new(&app).sign_in(&platform).expect(403);
}

#[test]
fn a_rotated_token_ends_its_sessions() {
    let app = TestApp::new();
    let (id, token) = app.provider();
    let mut browser = Browser::new(&app);
    browser.sign_in(&token).expect(303);
    browser.get("/products").expect(200);
    app.post(&format!("/api/v1/principals/{id}/tokens"), ADMIN, json!({}))
        .expect(201);
    browser.get("/products").expect(303);
}

#[test]
fn a_post_without_the_sessions_token_changes_nothing() {
    let app = TestApp::new();
    let (provider, _, _) = app.draft_product();
    let mut browser = Browser::new(&app);
    browser.sign_in(&provider).expect(303);
    let before = app.snapshot();
    for token in [None, Some("0".repeat(64))] {
        let mut form = vec![("service_id", "svc-x")];
        if let Some(t) = &token {
            form.push(("csrf", t.as_str()));
        }
        let refused = browser.request("POST", "/products", &form);
        assert_eq!(refused.status, 403, "{}", refused.text());
        assert!(refused.text().contains("this form expired"));
    }
    assert_eq!(app.snapshot(), before);
}

#[test]
fn pages_enforce_roles_and_another_tenants_page_is_404() {
    let app = TestApp::new();
    let (_, _, product) = app.draft_product();
    let (_, other) = app.provider();
    let (_, customer) = app.customer("individual");
    let mut provider = Browser::new(&app);
    provider.sign_in(&other).expect(303);
    for path in [
        format!("/products/{product}"),
        format!("/products/{product}/steps/general"),
        format!("/products/{product}/media"),
        format!("/products/{product}/sales"),
        "/instances/si-missing".to_owned(),
    ] {
        let page = provider.get(&path);
        assert_eq!(page.status, 404, "{path}: {}", page.text());
    }
    let mut shopper = Browser::new(&app);
    shopper.sign_in(&customer).expect(303);
    for path in [
        "/reviews",
        "/principals",
        "/products",
        "/bill-runs",
        "/settlements",
    ] {
        assert_eq!(shopper.get(path).status, 403, "{path}");
    }
    let mut operator = Browser::new(&app);
    operator.sign_in(ADMIN).expect(303);
    operator.get(&format!("/products/{product}")).expect(200);
    assert_eq!(operator.get("/account").status, 403);
}

#[test]
fn what_tenants_type_is_shown_as_text() {
    let app = TestApp::new();
    let hostile = "<script>alert(1)</script>";
    let (_, _, product) = app.published_product_with(|step, body| match step {
        "access" => body["product_name"] = json!(hostile),
        "general" => body["short_description"] = json!(hostile),
        "category" => body["tags"] = json!(["<b>bold</b>"]),
        _ => {}
    });
    for page in [
        app.console("GET", "/catalog", &[], Vec::new()).expect(200),
        app.console("GET", &format!("/catalog/{product}"), &[], Vec::new())
            .expect(200),
    ] {
        let text = page.text();
        assert!(
            !text.contains("<script>") && !text.contains("<b>"),
            "{text}"
        );
        assert!(
            text.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{text}"
        );
    }
}

#[test]
fn pages_are_private_and_under_a_strict_policy_and_assets_are_versioned() {
    let app = TestApp::new();
    let page = app.console("GET", "/catalog", &[], Vec::new()).expect(200);
    let policy = page.header("content-security-policy").unwrap();
    assert!(policy.starts_with("default-src 'self'"), "{policy}");
    assert_eq!(page.header("cache-control"), Some("no-store"));
    let text = page.text();
    let at = text
        .find("/assets/console.css?v=")
        .expect("the stylesheet link");
    let href = &text[at..at + text[at..].find('"').unwrap()];
    let css = app.console("GET", href, &[], Vec::new()).expect(200);
    assert_eq!(css.header("content-type"), Some("text/css; charset=utf-8"));
    let etag = css.header("etag").unwrap().to_owned();
    assert!(href.ends_with(etag.trim_matches('"')), "{href} {etag}");
    assert!(css.header("cache-control").unwrap().contains("immutable"));
    app.console("GET", href, &[("if-none-match", &etag)], Vec::new())
        .expect(304);
    assert_eq!(
        app.console("GET", "/assets/nothing.js", &[], Vec::new())
            .status,
        404
    );
}

#[test]
fn a_refused_step_is_shown_again_with_every_error_beside_its_field() {
    let app = TestApp::new();
    let (provider, _, product) = app.draft_product();
    let mut browser = Browser::new(&app);
    browser.sign_in(&provider).expect(303);
    let refused = browser.post(
        &format!("/products/{product}/steps/pricing"),
        &[
            ("pricing_plan", "by_usage"),
            ("enterprise_only", "false"),
            ("billing_period", "hour"),
            ("billable_items[0].code", "9lives"),
            ("billable_items[0].name", "Calls"),
            ("billable_items[0].tier_mode", "graduated"),
            ("billable_items[0].tiers[0].unit_price", "-1"),
        ],
    );
    assert_eq!(refused.status, 400, "{}", refused.text());
    let text = refused.text();
    for id in [
        "f-billable-items-0--code-error",
        "f-billable-items-0--tiers-0--unit-price-error",
    ] {
        assert!(text.contains(&format!(r#"id="{id}""#)), "{id}: {text}");
    }
    assert!(
        text.contains(r#"value="9lives""#),
        "what was typed stays: {text}"
    );
    let view = app
        .get(&format!("/api/v1/products/{product}"), &provider)
        .expect(200)
        .json();
    assert_eq!(view["steps"]["pricing"], Value::Null, "nothing written");
}

/// What tenants type, as they might type it.
const HOSTILE: &str = "<script>alert(1)</script>";

/// When every period of March 2026 (Asia/Shanghai) is closed: the end of April 1st there.
pub(crate) const MARCH_CLOSES: &str = "2026-04-01T16:00:00Z";

/// Two providers' hourly products, each billed 1.00 per running hour and ordered by one customer
/// at 08:00 UTC on March 27th; the first product is named like markup. The deployment's
/// commission is 10% and it allows the test clock.
pub(crate) struct Settling {
    pub(crate) app: TestApp,
    /// (id, token) of each provider.
    pub(crate) a: (String, String),
    pub(crate) b: (String, String),
    /// The token of the customer who ordered both products.
    pub(crate) customer: String,
}

fn principal_id(app: &TestApp, token: &str) -> String {
    str_of(&app.get("/api/v1/me", token).expect(200).json()["id"])
}

pub(crate) fn settling() -> Settling {
    let app = TestApp::with_config(|name| match name {
        "allow_clock_override" => Some("true".to_owned()),
        "commission_rate" => Some("0.10".to_owned()),
        _ => None,
    });
    let items = [Item::running_time("1.00")];
    let billable: Vec<Value> = items
        .iter()
        .map(
            |i| json!({"code": i.code, "name": i.code, "tier_mode": i.tier_mode, "tiers": i.tiers}),
        )
        .collect();
    let product = |name: &str| {
        let (token, _, id) = app.complete_product_with(|step, body| match step {
            "access" => body["product_name"] = json!(name),
            "pricing" => {
                body["billing_period"] = json!("hour");
                body["billable_items"] = json!(billable);
            }
            _ => {}
        });
        app.pass_category_review(&token, &id);
        app.configure_and_publish(&token, &id, &items, true);
        (token, id)
    };
    let (token_a, product_a) = product(HOSTILE);
    let (token_b, product_b) = product("Beta DB");
    let (_, customer) = app.funded_customer("10000.00");
    app.order(&customer, &product_a);
    app.order(&customer, &product_b);
    Settling {
        a: (principal_id(&app, &token_a), token_a),
        b: (principal_id(&app, &token_b), token_b),
        app,
        customer,
    }
}

impl Settling {
    /// A bill run the minute before March ends in Shanghai: 102 of March's 104 hours are
    /// billed, and collected, within March (the last two close in April).
    fn bill_within_march(&self) {
        self.app.set_now(at("2026-03-31T15:59:00Z"));
        self.app.bill_run("2026-03-31T15:59:00Z");
    }

    /// March closes, as soon as it may, through the API, its bills collected within it but
    /// the last two hours'.
    fn close_march(&self) {
        self.bill_within_march();
        self.app.set_now(at(MARCH_CLOSES));
        self.app
            .post(
                "/api/v1/settlements/runs",
                ADMIN,
                json!({"month": "2026-03"}),
            )
            .expect(200);
    }

    /// The id of each provider's written statement of March: (a's, b's).
    pub(crate) fn march_statements(&self) -> (String, String) {
        let march = self
            .app
            .get("/api/v1/settlements?month=2026-03", ADMIN)
            .expect(200)
            .json();
        let of = |provider: &str| {
            march["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["provider_id"] == provider)
                .map(|s| str_of(&s["id"]))
                .unwrap_or_else(|| panic!("{provider}'s statement in {march}"))
        };
        (of(&self.a.0), of(&self.b.0))
    }

    pub(crate) fn signed_in(&self, token: &str) -> Browser<'_> {
        let mut browser = Browser::new(&self.app);
        browser.sign_in(token).expect(303);
        browser
    }
}

#[test]
fn disabling_a_principal_ends_its_console_session_at_once_and_enabling_lets_it_sign_in_again() {
    let app = TestApp::new();
    let (id, token) = app.provider();
    let mut provider = Browser::new(&app);
    provider.sign_in(&token).expect(303);
    provider.get("/products").expect(200);
    let operator = {
        let mut b = Browser::new(&app);
        b.sign_in(ADMIN).expect(303);
        b
    };

    // The built-in operator is the deployment's: refused on the principals page, nothing changed.
    let before = app.snapshot();
    let refused = operator.post("/principals/usr-admin/disable", &[("next", "/principals")]);
    assert_eq!(refused.status, 409, "{}", refused.text());
    assert!(
        refused
            .text()
            .contains("the built-in operator is the admin_token variable"),
        "{}",
        refused.text()
    );
    assert_eq!(app.snapshot(), before);

    let disabled = operator.post(
        &format!("/principals/{id}/disable"),
        &[("next", "/principals?role=provider")],
    );
    assert_eq!(disabled.status, 303, "{}", disabled.text());
    assert_eq!(
        disabled.header("location"),
        Some("/principals?role=provider")
    );
    let listed = operator.get("/principals?role=provider").expect(200).text();
    assert!(
        listed.contains("disabled")
            && listed.contains(&format!(r#"action="/principals/{id}/enable""#)),
        "{listed}"
    );
    // At once: the open session signs no one in, nor does the token.
    let after = provider.get("/products").expect(303);
    assert_eq!(after.header("location"), Some("/sign-in?next=%2Fproducts"));
    Browser::new(&app).sign_in(&token).expect(401);
    app.get("/api/v1/me", &token).problem(401, "Unauthorized");

    // Enabled again, the token signs in anew; the session it had stays ended. A `next` of
    // another site is not followed.
    let enabled = operator.post(
        &format!("/principals/{id}/enable"),
        &[("next", "https://evil.example/principals")],
    );
    assert_eq!(enabled.status, 303, "{}", enabled.text());
    let page = format!("/principals/{id}");
    assert_eq!(enabled.header("location"), Some(page.as_str()));
    assert!(operator.get(&page).expect(200).text().contains("active"));
    app.get("/api/v1/me", &token).expect(200);
    provider.get("/products").expect(303);
    provider.sign_in(&token).expect(303);
    provider.get("/products").expect(200);
}

#[test]
fn a_customer_reads_the_eula_it_accepted_on_its_instance_page() {
    let app = TestApp::new();
    let (_, _, product) = app.published_product_with(|step, body| {
        if step == "agreement" {
            body["eula"] = json!({"source": "custom", "text": "Clause 1. <b>Be nice.</b>"});
        }
    });
    let (_, customer) = app.funded_customer("10.00");
    let instance = app.order(&customer, &product);
    let mut shopper = Browser::new(&app);
    shopper.sign_in(&customer).expect(303);
    let shown = shopper
        .get(&format!("/instances/{instance}"))
        .expect(200)
        .text();
    let digest = str_of(
        &app.get(&format!("/api/v1/instances/{instance}"), &customer)
            .expect(200)
            .json()["eula"]["digest"],
    );
    assert!(
        shown.contains("End-user license agreement")
            && shown.contains("Clause 1. &lt;b&gt;Be nice.&lt;/b&gt;")
            && shown.contains(&digest),
        "{shown}"
    );
}
