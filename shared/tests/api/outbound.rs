//! docs/RULES.md R1.14: a request to a provider's Prometheus is bounded — 5 s in all and 1 MiB of
//! answer — and one past either bound is the documented 502, never a wait or a read without end.

use std::time::Duration;

use serde_json::json;
use testkit::native::TestApp;
use testkit::{Item, JsonServer, Market, at, prometheus_vector};

const T0: &str = "2026-03-27T08:00:00Z";

/// A customer's instance of a product whose one item is counted by `prometheus`: (app, customer
/// token, instance id), on the test clock half an hour later.
fn counted_by(prometheus: &JsonServer) -> (TestApp, String, String) {
    let app = TestApp::with_config(|n| (n == "allow_clock_override").then(|| "true".to_owned()));
    app.set_now(at(T0));
    let requests = Item::prometheus_requests(prometheus.origin(), "0.01");
    let (_, product) = app.product_with_items("hour", &[requests], true);
    let (_, customer) = app.funded_customer("100.00");
    let instance = app.order(&customer, &product);
    app.set_now(at("2026-03-27T08:30:00Z"));
    (app, customer, instance)
}

#[test]
fn an_answer_over_1_mib_is_502_and_is_not_read_further() {
    // A valid Prometheus answer, padded past 1 MiB: read whole, it would price 12.34.
    let prometheus = JsonServer::start(|_| {
        let mut answer = prometheus_vector(0, Some("1234.5"));
        answer["padding"] = json!("x".repeat(1_100_000));
        answer
    });
    let (app, customer, instance) = counted_by(&prometheus);
    app.preview(&customer, &instance, T0)
        .problem(502, "PlatformSourceUnavailable");
}

#[test]
fn a_prometheus_that_does_not_answer_is_502_once_the_request_times_out() {
    let prometheus = JsonServer::start(|_| prometheus_vector(0, Some("1")));
    let (app, customer, instance) = counted_by(&prometheus);
    app.preview(&customer, &instance, T0).expect(200);
    prometheus.hold_every_from(prometheus.requests().len() + 1);
    app.preview(&customer, &instance, T0)
        .problem(502, "PlatformSourceUnavailable");
    assert!(prometheus.wait_for_requests(2, Duration::ZERO));
    prometheus.release();
}
