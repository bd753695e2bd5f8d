//! Items the platform reports from the provider's Prometheus: the increase over the period,
//! an unreachable endpoint retried next run, previews that never leak where it is.

use serde_json::json;
use testkit::{Item, Market, at};

use super::{T0, scalar, world};

/// A Prometheus-compatible server on loopback: it evaluates `sum(increase(...[Ns]))` for the
/// instance named in the query over per-instance counter samples, resets included, the way
/// Prometheus does (without extrapolation).
fn prometheus(samples: Vec<(String, Vec<(i64, f64)>)>) -> String {
    testkit::serve_json(move |target| {
        let query: Vec<(String, String)> =
            form_urlencoded::parse(target.split_once('?').map_or("", |q| q.1).as_bytes())
                .into_owned()
                .collect();
        let get = |k: &str| {
            query
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let (promql, time) = (get("query"), get("time").parse::<i64>().unwrap_or(0));
        let instance = promql
            .split("service_instance_id=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or("");
        let range: i64 = promql
            .rsplit('[')
            .next()
            .and_then(|r| r.split('s').next())
            .and_then(|r| r.parse().ok())
            .unwrap_or(0);
        let points: Vec<f64> = samples
            .iter()
            .filter(|(i, _)| i == instance)
            .flat_map(|(_, s)| {
                s.iter()
                    .filter(|(t, _)| *t > time - range && *t <= time)
                    .map(|(_, v)| *v)
            })
            .collect();
        // Prometheus's own arithmetic (samples are floats); the app truncates the answer exactly.
        #[allow(clippy::float_arithmetic)]
        let increase: f64 = points
            .windows(2)
            .map(|w| if w[1] >= w[0] { w[1] - w[0] } else { w[1] })
            .sum();
        let result = if points.is_empty() {
            json!([])
        } else {
            json!([{"metric": {}, "value": [time, increase.to_string()]}])
        };
        json!({"status": "success", "data": {"resultType": "vector", "result": result}})
    })
}

fn requests_item(endpoint: &str) -> Item {
    Item {
        code: "Requests",
        tier_mode: "graduated",
        tiers: json!([{"up_to": null, "unit_price": "0.01"}]),
        reporting: json!({"method": "compute_nest", "source": "prometheus",
                          "prometheus": {"endpoint": endpoint, "query": "http_requests_total{job=\"api\"}"}}),
    }
}

#[test]
fn prometheus_usage_is_the_increase_over_the_period_counter_resets_included() {
    let w = world("hour", &[requests_item("http://127.0.0.1:1")]);
    let t = at(T0).timestamp();
    // Samples within 08:00–09:00: 100 → 400, a restart resets to 0, then → 250: increase 550.
    let url = prometheus(vec![(
        w.instance.clone(),
        vec![
            (t + 60, 100.0),
            (t + 1200, 400.0),
            (t + 1800, 0.0),
            (t + 3000, 250.0),
        ],
    )]);
    // The instance id is known only after ordering, so the server starts now; point the item
    // at it.
    w.app
        .report_from_prometheus(&url, "http_requests_total{job=\"api\"}");
    w.run("2026-03-27T10:00:00Z");
    let bill = w.bill_for("2026-03-27T08:00:00Z");
    assert_eq!(bill["lines"][0]["quantity"], "550");
    assert_eq!(bill["product_fees"], "5.50");
}

#[test]
fn an_unreachable_prometheus_records_nothing_and_is_retried_next_run() {
    let w = world("hour", &[requests_item("http://127.0.0.1:1")]);
    let report = w.run("2026-03-27T10:00:00Z");
    assert_eq!(report["bills_written"], 0);
    assert!(
        report["failures"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("unreachable"),
        "{report}"
    );
    assert_eq!(scalar(&w.app, "SELECT COUNT(*) FROM usage_records"), 0);
    assert!(w.bills().is_empty());
    // Once the endpoint answers, the next run bills the period.
    let url = prometheus(vec![(
        w.instance.clone(),
        vec![
            (at(T0).timestamp() + 10, 1.0),
            (at(T0).timestamp() + 20, 3.0),
        ],
    )]);
    w.app.report_from_prometheus(&url, "http_requests_total");
    let report = w.run("2026-03-27T10:00:00Z");
    assert_eq!(report["bills_written"], 1, "{report}");
    assert_eq!(
        w.bill_for("2026-03-27T08:00:00Z")["lines"][0]["quantity"],
        "2"
    );
}

#[test]
fn a_preview_of_a_billed_period_is_its_bill_and_an_unreadable_source_says_nothing_internal() {
    let w = world("hour", &[requests_item("http://127.0.0.1:1")]);
    w.app.set_now(at("2026-03-27T08:30:00Z"));
    let body = json!({"instance_id": w.instance, "period_start": T0});
    let r = w
        .app
        .post("/api/v1/billing/preview", &w.customer, body.clone())
        .problem(502, "PlatformSourceUnavailable");
    assert!(!r.to_string().contains("127.0.0.1"), "{r}");
    let url = prometheus(vec![(
        w.instance.clone(),
        vec![
            (at(T0).timestamp() + 10, 1.0),
            (at(T0).timestamp() + 20, 4.0),
        ],
    )]);
    w.app.report_from_prometheus(&url, "http_requests_total");
    w.run("2026-03-27T10:00:00Z");
    let bill = w.bill_for("2026-03-27T08:00:00Z");
    // The endpoint goes away again; the billed period's preview no longer needs it.
    w.app
        .report_from_prometheus("http://127.0.0.1:1", "http_requests_total");
    w.app.set_now(at("2026-03-27T10:30:00Z"));
    let p = w
        .app
        .post("/api/v1/billing/preview", &w.customer, body)
        .expect(200)
        .json();
    assert_eq!(p["bill_id"], bill["id"]);
    assert_eq!(p["total"], bill["total"]);
    assert_eq!(p["product_fees"], "0.03");
}

/// A preview sent with an `Idempotency-Key` whose Prometheus cannot be read is the documented
/// 502, as without a key (not a 500), and is not recorded: once the endpoint answers, the same
/// request under the same key is priced.
#[test]
fn an_unreadable_source_is_502_under_an_idempotency_key_too_and_not_replayed() {
    let w = world("hour", &[requests_item("http://127.0.0.1:1")]);
    w.app.set_now(at("2026-03-27T08:30:00Z"));
    let body = json!({"instance_id": w.instance, "period_start": T0}).to_string();
    let preview = || {
        w.app.call_with_headers(
            "POST",
            "/api/v1/billing/preview",
            Some(&w.customer),
            &[
                ("content-type", "application/json"),
                ("idempotency-key", "preview-1"),
            ],
            body.clone().into_bytes(),
        )
    };
    preview().problem(502, "PlatformSourceUnavailable");
    let url = prometheus(vec![(
        w.instance.clone(),
        vec![(at(T0).timestamp() + 10, 1.0)],
    )]);
    w.app.report_from_prometheus(&url, "http_requests_total");
    preview().expect(200);
}
