//! Every grant in spin.toml is needed: taken away from a copy of the manifest, the path that
//! needs it fails under Spin while the rest of the app works, so no other test can pass without
//! the grants it relies on. Each component logs why (to its stderr under Spin's log directory).

use serde_json::json;
use testkit::{Market, Response, at, png, step_bodies};

use crate::books::{Account, scheduled_runs};
use crate::harness::{Manifest, Spin, SpinUp, eventually, shared_app};
use crate::prometheus::{ORDERED_AT, product_counted_by, prometheus_answering};

/// A response is a server error, which says nothing of the cause; the component's log does.
#[track_caller]
fn assert_fails(app: &Spin, response: Response, component: &str, cause: &str) {
    assert!(
        (500..600).contains(&response.status),
        "{component}: {} {}",
        response.status,
        response.text()
    );
    assert!(!response.text().contains(cause), "{}", response.text());
    let log = app.component_log(component, "stderr");
    assert!(log.contains(cause), "{component}'s log: {log}");
}

/// A request of `component` as the operator that needs its database.
fn use_the_database(market: &impl Market, component: &str) -> Response {
    let path = match component {
        "identity" => "/api/v1/principals",
        "listings" => "/api/v1/products",
        "reviews" => "/api/v1/reviews",
        "orders" => "/api/v1/bills",
        "metering" => "/api/v1/metering/usage?instance_id=si-missing",
        // The public catalog page reads the catalog from the database.
        "console" => "/catalog",
        other => panic!("grants.rs does not know how {other:?} uses its database: add it"),
    };
    market.get(path, market.admin_token())
}

#[test]
fn every_database_grant_is_needed() {
    let granted = Manifest::repo().components_with("sqlite_databases");
    assert!(granted.len() >= 6, "{granted:?}");
    let http_components = || granted.iter().filter(|id| *id != "billing");
    // With their grants, the requests are answered (the missing instance is a 404).
    let shared = shared_app();
    for id in http_components() {
        let answered = use_the_database(&*shared, id);
        assert!(
            matches!(answered.status, 200 | 404),
            "{id}: {}",
            answered.text()
        );
    }
    drop(shared);
    let manifest = granted
        .iter()
        .fold(Manifest::repo().cron_every_two_seconds(), |m, id| {
            m.without(id, "sqlite_databases")
        });
    let app = SpinUp::new(manifest).start();
    let market = app.market();
    for id in http_components() {
        assert_fails(
            &app,
            use_the_database(&market, id),
            id,
            "sqlite database access denied",
        );
    }
    // The schedule fires, and its runs fail.
    eventually(
        "a failed scheduled run",
        std::time::Duration::from_secs(60),
        || {
            app.component_log("billing", "stderr")
                .contains("sqlite database access denied")
                .then_some(())
        },
    );
    assert_eq!(
        scheduled_runs(&app),
        0,
        "{}",
        app.component_log("billing", "stdout")
    );
}

#[test]
fn media_need_the_key_value_grant_and_reviews_the_operators_token() {
    let manifest = Manifest::repo()
        .without_cron()
        .without("listings", "key_value_stores")
        .without_variable("reviews", "admin_token");
    let app = SpinUp::new(manifest).start();
    let market = app.market();

    // Listings keeps its database: the steps are written. Not its key-value store: a logo
    // upload fails and stores nothing.
    let (provider, _, product) = market.draft_product();
    for (step, body) in step_bodies() {
        market
            .put(
                &format!("/api/v1/products/{product}/{step}"),
                &provider,
                body,
            )
            .expect(200);
    }
    let logo = market.put_bytes(
        &format!("/api/v1/products/{product}/media/logo"),
        &provider,
        "image/png",
        png(290, 290, 64),
    );
    assert_fails(&app, logo, "listings", "key-value store access denied");
    let view = market
        .get(&format!("/api/v1/products/{product}"), &provider)
        .expect(200)
        .json();
    assert_eq!(
        view["completeness"]["general"]["missing"],
        json!(["media.logo", "media.user_guide"]),
        "{view}"
    );

    // Reviews without its mapping of the operator's token fails whole, a misconfigured
    // deployment, while the components that keep theirs answer.
    let reviews = market.get("/api/v1/reviews", market.admin_token());
    assert_fails(&app, reviews, "reviews", "admin_token");
    use_the_database(&market, "orders").expect(200);
}

#[test]
fn without_its_outbound_grant_no_bill_run_or_preview_reaches_prometheus() {
    let prometheus = prometheus_answering("1234.5");
    let app = SpinUp::new(
        Manifest::repo()
            .without_cron()
            .without("orders", "allowed_outbound_hosts"),
    )
    .variable("prometheus_origin", prometheus.origin())
    .start();
    let market = app.market().at(at(ORDERED_AT));
    let (_, product) = product_counted_by(&market, &prometheus);
    let account = Account::open(&market, "100.00");
    let instance = market.order(&account.token, &product);

    market.set_now(at("2026-03-27T08:30:00Z"));
    market
        .preview(&account.token, &instance, ORDERED_AT)
        .problem(502, "PlatformSourceUnavailable");
    let report = market.bill_run("2026-03-27T10:00:00Z");
    assert_eq!(report["bills_written"], 0, "{report}");
    assert_eq!(
        report["failures"][0]["instance_id"],
        instance.as_str(),
        "{report}"
    );
    assert_eq!(
        report["failures"][0]["period_start"], ORDERED_AT,
        "{report}"
    );
    // Spin refused the requests: none reached the server.
    assert_eq!(prometheus.requests(), Vec::<String>::new());
    assert!(
        app.component_log("orders", "stderr")
            .contains("HttpRequestDenied"),
        "{}",
        app.component_log("orders", "stderr")
    );
}
