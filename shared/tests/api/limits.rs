//! Bounded input: every body, list and value has a limit, checked before any work proportional
//! to the input, and a request over it is refused (a clear 4xx) with nothing changed.

use testkit::Market;
use testkit::native::TestApp;

/// The JSON body limit (1 MiB): `api::JSON_BODY_MAX`.
const JSON_LIMIT: usize = 1_048_576;

#[test]
fn a_body_over_its_endpoints_limit_is_refused_before_routing_or_authentication() {
    let app = TestApp::new();
    let (provider, _, product) = app.draft_product();
    let before = app.snapshot();
    let over_json = vec![b' '; JSON_LIMIT + 1];
    for (method, path, content_type) in [
        ("POST", "/api/v1/metering", "application/json"),
        ("POST", "/api/v1/principals", "application/json"),
        ("POST", "/api/v1/no-such-route", "application/json"),
        (
            "PUT",
            &*format!("/api/v1/products/{product}/general"),
            "application/json",
        ),
    ] {
        app.call(method, path, None, Some(content_type), over_json.clone())
            .problem(413, "PayloadTooLarge");
    }
    // A medium's limit is its kind's: a logo may be 7.5 MiB, not a byte more.
    let logo = format!("/api/v1/products/{product}/media/logo");
    app.call(
        "PUT",
        &logo,
        Some(&provider),
        Some("image/png"),
        vec![0; 7_864_321],
    )
    .problem(413, "PayloadTooLarge");
    assert_eq!(app.snapshot(), before);
    // Exactly the limit is read (and refused for what it is, not its size).
    let at_limit = vec![b' '; JSON_LIMIT];
    let r = app.call(
        "POST",
        "/api/v1/metering",
        Some(&provider),
        Some("application/json"),
        at_limit,
    );
    assert_eq!(r.status, 400, "{}", r.text());
}
