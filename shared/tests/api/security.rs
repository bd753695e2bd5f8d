//! Deployment behind TLS and against guessing (docs/RULES.md R2.10, R14.4, R4.18): failed
//! authentications are throttled per client address, in the database every instance shares;
//! an https `public_url` makes the console's cookies `Secure` and `__Host-` prefixed and every
//! response carry HSTS; the console serves media as the API does, sandboxed and as files.

use testkit::native::{ADMIN, TestApp};
use testkit::{Market, Response, at, png};

use crate::console::{Browser, cookie_pair, csrf_of};

/// A `GET /api/v1/me` with `token` from the client at `address` (Spin's `spin-client-addr`).
pub(crate) fn from(app: &TestApp, address: &str, token: &str) -> Response {
    app.call_with_headers(
        "GET",
        "/api/v1/me",
        Some(token),
        &[("spin-client-addr", address)],
        Vec::new(),
    )
}

#[test]
fn ten_failed_authentications_in_a_minute_make_an_address_wait() {
    let app = TestApp::with_config(|n| (n == "allow_clock_override").then(|| "true".to_owned()));
    app.set_now(at("2026-03-27T08:00:10Z"));
    let (_, provider) = app.provider();
    for port in 0..10 {
        // Another port of the same address is the same client.
        from(&app, &format!("10.0.0.7:{}", 5000 + port), "nm_guess").problem(401, "Unauthorized");
    }
    let refused = from(&app, "10.0.0.7:6000", "nm_guess");
    assert_eq!(
        refused.header("retry-after"),
        Some("50"),
        "the rest of the minute"
    );
    refused.problem(429, "TooManyRequests");
    // Every authentication from it waits, a valid token's too; other addresses do not, and a
    // request without a token is no failed authentication.
    from(&app, "10.0.0.7:6001", &provider).problem(429, "TooManyRequests");
    // The minute is the wall clock's: the test clock's header moves no throttle.
    app.call_with_headers(
        "GET",
        "/api/v1/me",
        Some(&provider),
        &[
            ("spin-client-addr", "10.0.0.7:6003"),
            ("x-clock-now", "2026-03-27T08:05:00Z"),
        ],
        Vec::new(),
    )
    .problem(429, "TooManyRequests");
    from(&app, "10.0.0.8:6001", &provider).expect(200);
    app.call_with_headers(
        "GET",
        "/api/v1/me",
        None,
        &[("spin-client-addr", "10.0.0.9:1")],
        Vec::new(),
    )
    .problem(401, "Unauthorized");
    // The console's sign-in counts and waits the same, for the same address.
    let form = app.console("GET", "/sign-in", &[], Vec::new());
    let body: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("csrf", csrf_of(&form).as_str()),
            ("token", provider.as_str()),
        ])
        .finish();
    let sign_in = |address: &str| {
        app.console(
            "POST",
            "/sign-in",
            &[
                ("cookie", &cookie_pair(&form)),
                ("content-type", "application/x-www-form-urlencoded"),
                ("spin-client-addr", address),
            ],
            body.clone().into_bytes(),
        )
    };
    let waiting = sign_in("10.0.0.7:7000");
    assert_eq!(waiting.status, 429, "{}", waiting.text());
    assert_eq!(waiting.header("retry-after"), Some("50"));
    assert_eq!(sign_in("10.0.0.8:7000").status, 303);
    // The next minute, it may try again.
    app.set_now(at("2026-03-27T08:01:00Z"));
    from(&app, "10.0.0.7:6002", &provider).expect(200);
    // The bill run forgets what is an hour old.
    assert_eq!(app.count("auth_failures"), 1);
    app.set_now(at("2026-03-27T09:01:00Z"));
    app.post("/api/v1/billing/runs", ADMIN, serde_json::json!({}))
        .expect(200);
    assert_eq!(app.count("auth_failures"), 0);
}

#[test]
fn a_deployment_behind_one_address_sets_how_many_failures_it_may_have() {
    let app =
        TestApp::with_config(|n| (n == "failed_authentication_limit").then(|| "3".to_owned()));
    let (_, provider) = app.provider();
    for port in 0..3 {
        from(&app, &format!("10.0.0.7:{}", 5000 + port), "nm_guess").problem(401, "Unauthorized");
    }
    from(&app, "10.0.0.7:6000", "nm_guess").problem(429, "TooManyRequests");
    from(&app, "10.0.0.7:6001", &provider).problem(429, "TooManyRequests");
    from(&app, "10.0.0.8:6001", &provider).expect(200);

    // A higher limit lets more failures through before the address waits.
    let shared =
        TestApp::with_config(|n| (n == "failed_authentication_limit").then(|| "12".to_owned()));
    let (_, provider) = shared.provider();
    for port in 0..12 {
        from(&shared, &format!("10.0.0.7:{}", 5000 + port), "nm_guess")
            .problem(401, "Unauthorized");
    }
    from(&shared, "10.0.0.7:6001", &provider).problem(429, "TooManyRequests");
}

#[test]
fn an_https_public_url_makes_cookies_host_only_and_secure_and_responses_strict() {
    let plain = TestApp::new();
    let page = plain.console("GET", "/sign-in", &[], Vec::new());
    assert!(page.header("strict-transport-security").is_none());
    assert!(!page.header("set-cookie").unwrap().contains("Secure"));

    let app =
        TestApp::with_config(|n| (n == "public_url").then(|| "https://market.example/".to_owned()));
    // Behind a TLS-terminating proxy Spin itself is asked over plain HTTP.
    let page = app.console(
        "GET",
        "/sign-in",
        &[("spin-full-url", "http://10.0.0.2/sign-in")],
        Vec::new(),
    );
    assert_eq!(
        page.header("strict-transport-security"),
        Some("max-age=31536000")
    );
    let nonce = page.header("set-cookie").unwrap().to_owned();
    assert!(nonce.starts_with("__Host-nestmarket_sign_in="), "{nonce}");
    assert!(
        nonce.contains("; Path=/;") && nonce.ends_with("; Secure"),
        "{nonce}"
    );
    let (_, provider) = app.provider();
    let mut browser = Browser::new(&app);
    let signed_in = browser.sign_in(&provider);
    assert_eq!(signed_in.status, 303, "{}", signed_in.text());
    let session = signed_in.header("set-cookie").unwrap();
    assert!(
        session.starts_with("__Host-nestmarket_session="),
        "{session}"
    );
    assert!(
        session.contains("; Path=/;") && session.ends_with("; Secure"),
        "{session}"
    );
    browser.get("/products").expect(200);
    // A cookie without the prefix signs no one in over https.
    let unprefixed = session
        .trim_start_matches("__Host-")
        .split(';')
        .next()
        .unwrap();
    let page = app.console("GET", "/products", &[("cookie", unprefixed)], Vec::new());
    assert_eq!(page.status, 303);
    // The API's responses carry HSTS too.
    let me = app.get("/api/v1/me", &provider).expect(200);
    assert_eq!(
        me.header("strict-transport-security"),
        Some("max-age=31536000")
    );
    assert!(
        plain
            .get("/api/v1/me", ADMIN)
            .header("strict-transport-security")
            .is_none()
    );
}

#[test]
fn the_console_serves_media_sandboxed_and_as_files() {
    let app = TestApp::new();
    let (token, _, product) = app.draft_product();
    app.put_bytes(
        &format!("/api/v1/products/{product}/media/logo"),
        &token,
        "image/png",
        png(290, 290, 100),
    )
    .expect(200);
    let mut browser = Browser::new(&app);
    browser.sign_in(&token).expect(303);
    let logo = browser
        .get(&format!("/products/{product}/media/logo"))
        .expect(200);
    assert_eq!(logo.body, png(290, 290, 100));
    assert_eq!(logo.header("content-type"), Some("image/png"));
    assert_eq!(
        logo.header("content-security-policy"),
        Some("sandbox; default-src 'none'")
    );
    assert_eq!(
        logo.header("content-disposition"),
        Some("inline; filename=\"logo.png\"")
    );
    assert_eq!(logo.header("x-content-type-options"), Some("nosniff"));
}
