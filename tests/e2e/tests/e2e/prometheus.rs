//! Items reported by the provider's Prometheus, which bill runs and previews query through Spin's
//! outbound HTTP: spin.toml grants `allowed_outbound_hosts = ["{{ prometheus_origin }}"]`, and the
//! variable holds a whole origin (`http://127.0.0.1:PORT` here: a stand-in Prometheus).

use serde_json::json;
use testkit::{Item, JsonServer, Market, at, error_fields, prometheus_vector, query_param, unix};

use crate::books::{Account, assert_account_agrees, billed_once};
use crate::harness::{Manifest, SpinUp};

pub(crate) const ORDERED_AT: &str = "2026-03-27T08:00:00Z";

/// A stand-in Prometheus whose every query finds an increase of `increase`.
pub(crate) fn prometheus_answering(increase: &'static str) -> JsonServer {
    JsonServer::start(move |target| {
        let time = query_param(target, "time").and_then(|t| t.parse().ok());
        prometheus_vector(time.unwrap_or_default(), Some(increase))
    })
}

/// A product published with one item, requests counted by `prometheus` at 0.01 each: (provider
/// token, product id).
pub(crate) fn product_counted_by(
    market: &impl Market,
    prometheus: &JsonServer,
) -> (String, String) {
    let requests = Item::prometheus_requests(prometheus.origin(), "0.01");
    market.product_with_items("hour", &[requests], true)
}

#[test]
fn bills_are_priced_from_the_prometheus_at_the_deployments_origin_and_no_other() {
    let prometheus = prometheus_answering("1234.5");
    let app = SpinUp::new(Manifest::repo().without_cron())
        .variable("prometheus_origin", prometheus.origin())
        .start();
    let market = app.market().at(at(ORDERED_AT));

    // An endpoint at another origin is refused: Spin would never let a bill run reach it.
    let elsewhere = prometheus_answering("1");
    let (provider, product) = market.product_with_items(
        "hour",
        &[Item::prometheus_requests(prometheus.origin(), "0.01")],
        false,
    );
    let refused = market
        .put(
            &format!("/api/v1/products/{product}/billable-items/Requests/reporting"),
            &provider,
            Item::prometheus_requests(elsewhere.origin(), "0.01").reporting,
        )
        .problem(400, "InvalidReportingMethod");
    assert_eq!(error_fields(&refused), ["prometheus.endpoint"]);
    let review = market.submit(&provider, &product, "feature");
    market.decide(&review, "approve", None).expect(200);

    let account = Account::open(&market, "100.00");
    let instance = market.order(&account.token, &product);
    market.set_now(at("2026-03-27T08:30:00Z"));
    // 1,234.5 requests × 0.01 = 12.345, truncated to cents.
    let preview = market
        .preview(&account.token, &instance, ORDERED_AT)
        .expect(200)
        .json();
    assert_eq!(preview["product_fees"], "12.34", "{preview}");
    let queries = prometheus.requests();
    assert_eq!(queries.len(), 1, "{queries:?}");
    assert!(queries[0].starts_with("/api/v1/query?"), "{queries:?}");
    assert_eq!(
        query_param(&queries[0], "query").as_deref(),
        Some(
            format!(
                "sum(increase(http_requests_total{{job=\"api\",service_instance_id=\"{instance}\"}}[3600s]))"
            )
            .as_str()
        )
    );
    let period_end = unix("2026-03-27T09:00:00Z").to_string();
    assert_eq!(query_param(&queries[0], "time"), Some(period_end));

    let report = market.bill_run("2026-03-27T10:00:00Z");
    assert_eq!(report["failures"], json!([]), "{report}");
    let bills = market.bills(&account.token, Some(&instance));
    let bill = billed_once(&bills)
        .remove(&(instance, ORDERED_AT.to_owned()))
        .unwrap_or_else(|| panic!("the 08:00 hour is not billed: {bills:?}"));
    assert_eq!(bill["product_fees"], "12.34", "{bill}");
    assert_eq!(bill["lines"][0]["quantity"], "1234.5", "{bill}");
    assert_eq!(prometheus.requests().len(), 2, "the bill run asked too");
    assert_eq!(elsewhere.requests(), Vec::<String>::new());
    assert_account_agrees(&market, &account, &bills);
}
