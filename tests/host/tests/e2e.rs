//! End-to-end tests of the real application (the repository's spin.toml and the built components),
//! through the Spin-compatible host.
mod common;

use common::{ADMIN_TOKEN, load, manifest};
use spin_test_host::{ResponseExt, SpinApp};

fn app() -> SpinApp {
    load(None)
}

fn app_with_manifest(manifest: Option<String>) -> SpinApp {
    load(manifest)
}

#[test]
fn admin_token_authenticates_the_built_in_operator() {
    let app = app();
    let me = app.get("/api/v1/me", Some(ADMIN_TOKEN));
    assert_eq!(me.status(), 200, "{}", me.text());
    assert!(
        me.header_str("content-type")
            .unwrap_or("")
            .starts_with("application/json")
    );
    assert_eq!(me.json()["role"], "operator");
}

#[test]
fn missing_or_wrong_token_is_401_problem_details() {
    let app = app();
    for token in [None, Some("not-the-token")] {
        let response = app.get("/api/v1/me", token);
        assert_eq!(response.status(), 401, "{token:?}: {}", response.text());
        assert_eq!(
            response.header_str("content-type"),
            Some("application/problem+json")
        );
        assert_eq!(response.json()["status"], 401);
    }
}

#[test]
fn listings_component_serves_the_public_categories() {
    let app = app();
    let response = app.get("/api/v1/catalog/categories", None);
    assert_eq!(response.status(), 200, "{}", response.text());
    assert!(
        response.json()["items"]
            .as_array()
            .is_some_and(|items| !items.is_empty())
    );
}

#[test]
fn unrouted_paths_are_404_from_the_host() {
    let app = app();
    for path in ["/", "/api", "/api/v1/unknown", "/api/v1/mee"] {
        let response = app.get(path, Some(ADMIN_TOKEN));
        assert_eq!(response.status(), 404, "{path}");
        assert!(
            response.body().is_empty(),
            "{path}: the host, not a component, answered"
        );
    }
}

#[test]
fn identity_needs_its_sqlite_grant() {
    let text = manifest();
    let marker = "[component.identity]\nsource = \"target/wasm32-wasip1/release/identity.wasm\"\nsqlite_databases = [\"default\"]\n";
    assert!(
        text.contains(marker),
        "spin.toml's identity component changed shape; update this test"
    );
    let ungranted = text.replace(
        marker,
        "[component.identity]\nsource = \"target/wasm32-wasip1/release/identity.wasm\"\n",
    );
    let app = app_with_manifest(Some(ungranted));
    let response = app.get("/api/v1/me", Some(ADMIN_TOKEN));
    assert!(
        response.status().is_server_error(),
        "{}: {}",
        response.status(),
        response.text()
    );
}

#[test]
fn a_broken_route_no_longer_reaches_the_component() {
    let text = manifest();
    let route = "route = \"/api/v1/me\"\n";
    assert!(
        text.contains(route),
        "spin.toml's /api/v1/me route changed; update this test"
    );
    let app = app_with_manifest(Some(text.replace(route, "route = \"/api/v1/me-typo\"\n")));
    assert_eq!(app.get("/api/v1/me", Some(ADMIN_TOKEN)).status(), 404);
}
