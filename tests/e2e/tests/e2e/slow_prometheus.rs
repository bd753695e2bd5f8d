//! A provider's slow Prometheus holds nobody else up (docs/RULES.md R1.14): previews sent with
//! an `Idempotency-Key` wait on it outside any write transaction, so another tenant's pushes and
//! a customer's order go through meanwhile; and under Spin a request to it is bounded — 5 s, or
//! 1 MiB of answer — past which the preview is the documented 502.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::json;
use testkit::{JsonServer, Market, at, prometheus_vector, query_param, usage};

use crate::books::Account;
use crate::harness::{HttpMarket, Manifest, SpinUp};
use crate::prometheus::{ORDERED_AT, product_counted_by};

/// A preview of `instance`'s 08:00 hour by `token`, with an idempotency key.
fn preview_with_key(
    market: &HttpMarket,
    token: &str,
    instance: &str,
    key: &str,
) -> testkit::Response {
    market.call_with_headers(
        "POST",
        "/api/v1/billing/preview",
        Some(token),
        &[
            ("content-type", "application/json"),
            ("idempotency-key", key),
        ],
        json!({"instance_id": instance, "period_start": ORDERED_AT})
            .to_string()
            .into_bytes(),
    )
}

#[test]
fn previews_waiting_on_a_slow_prometheus_hold_up_no_other_tenants_writes() {
    // Answers 1,234.5 requests, or — once `oversized` — the same padded past 1 MiB.
    let oversized = Arc::new(AtomicBool::new(false));
    let prometheus = JsonServer::start({
        let oversized = oversized.clone();
        move |target| {
            let time = query_param(target, "time").and_then(|t| t.parse().ok());
            let mut answer = prometheus_vector(time.unwrap_or_default(), Some("1234.5"));
            if oversized.load(Ordering::SeqCst) {
                answer["padding"] = json!("x".repeat(1_100_000));
            }
            answer
        }
    });
    let app = SpinUp::new(Manifest::repo().without_cron())
        .variable("prometheus_origin", prometheus.origin())
        .start();
    let market = app.market().at(at(ORDERED_AT));
    // Tenant A: a product priced from its provider's Prometheus, and a customer's instance.
    let (_, counted) = product_counted_by(&market, &prometheus);
    let customer_a = Account::open(&market, "100.00");
    let instance_a = market.order(&customer_a.token, &counted);
    // Tenant B: another provider's product, metered by pushes, and a customer's instance.
    let (provider_b, _, metered) = market.published_product();
    let customer_b = Account::open(&market, "100.00");
    let instance_b = market.order(&customer_b.token, &metered);
    market.set_now(at("2026-03-27T08:30:00Z"));

    // From now on the Prometheus answers only when the test releases it.
    let asked_before = prometheus.requests().len();
    prometheus.hold_every_from(asked_before + 1);
    let finished = AtomicUsize::new(0);
    std::thread::scope(|s| {
        let previews: Vec<_> = ["preview-1", "preview-2"]
            .into_iter()
            .map(|key| {
                let (market, token, instance) = (&market, &customer_a.token, &instance_a);
                let finished = &finished;
                s.spawn(move || {
                    let answer = preview_with_key(market, token, instance, key);
                    (answer, finished.fetch_add(1, Ordering::SeqCst))
                })
            })
            .collect();
        assert!(
            prometheus.wait_for_requests(asked_before + 2, Duration::from_secs(60)),
            "both previews are waiting on the Prometheus"
        );
        // Meanwhile: tenant B's provider pushes, and its customer orders again.
        for k in 0..5 {
            // Windows longer than the 300 s minimum.
            let start = format!("2026-03-27T08:{:02}:00Z", k * 4);
            let end = format!("2026-03-27T08:{:02}:00Z", k * 4 + 6);
            market
                .push_usage(
                    &provider_b,
                    &instance_b,
                    &[usage(&start, &end, "Frequency", 7)],
                )
                .expect(200);
        }
        market.order(&customer_b.token, &metered);
        let writes_done = finished.fetch_add(1, Ordering::SeqCst);
        assert!(
            previews.iter().all(|p| !p.is_finished()),
            "the previews are still waiting on the Prometheus"
        );
        prometheus.release();
        for preview in previews {
            let (answer, order) = preview.join().expect("a preview");
            assert!(order > writes_done, "the writes went first");
            let priced = answer.expect(200).json();
            // 1,234.5 requests × 0.01 = 12.345, truncated to cents.
            assert_eq!(priced["product_fees"], "12.34", "{priced}");
        }
    });

    // A Prometheus that never answers: the preview gives up after 5 s, with the documented 502.
    prometheus.hold_every_from(prometheus.requests().len() + 1);
    preview_with_key(&market, &customer_a.token, &instance_a, "preview-3")
        .problem(502, "PlatformSourceUnavailable");
    prometheus.release();
    // An answer over 1 MiB is not read: 502 too.
    oversized.store(true, Ordering::SeqCst);
    market
        .preview(&customer_a.token, &instance_a, ORDERED_AT)
        .problem(502, "PlatformSourceUnavailable");
}
