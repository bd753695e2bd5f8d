//! docs/RULES.md §9 through the HTTP handlers: PushMeteringData ingestion and usage reads.

use chrono::Duration;
use proptest::prelude::*;
use serde_json::{Value, json};
use testkit::native::{ADMIN, TestApp};
use testkit::{Market, at, error_fields, usage};

/// A published hourly product, a customer's instance ordered at 08:00 UTC, the clock at 09:01.
struct Fixture {
    app: TestApp,
    provider: String,
    customer: String,
    instance: String,
    t0: i64,
}

fn fixture() -> Fixture {
    let app = TestApp::new();
    app.set_now(at("2026-03-27T08:00:00Z"));
    let (provider, _, product) = app.published_product();
    let (_, customer) = app.customer("individual");
    let instance = app.order(&customer, &product);
    app.set_now(at("2026-03-27T09:01:00Z"));
    Fixture {
        app,
        provider,
        customer,
        instance,
        t0: at("2026-03-27T08:00:00Z").timestamp(),
    }
}

impl Fixture {
    fn push(&self, metering: Value) -> testkit::Response {
        self.app.post(
            "/api/v1/metering",
            &self.provider,
            json!({"ServiceInstanceId": self.instance, "Metering": metering}),
        )
    }

    fn record(&self, start: i64, end: i64, key: &str, value: Value) -> Value {
        json!({"StartTime": self.t0 + start, "EndTime": self.t0 + end, "Entities": [{"Key": key, "Value": value}]})
    }

    fn totals(&self) -> Value {
        self.app
            .get(
                &format!("/api/v1/metering/usage?instance_id={}", self.instance),
                &self.provider,
            )
            .expect(200)
            .json()["totals"]
            .clone()
    }
}

#[test]
fn the_cloud_apis_payload_is_accepted_and_read_back() {
    let f = fixture();
    // As the cloud API sends it: `Metering` is a JSON string, `Value` a string.
    let metering = json!([f.record(60, 3600, "Frequency", json!("10"))]).to_string();
    let r = f.push(Value::String(metering)).expect(200).json();
    assert_eq!(r["Success"], true);
    assert_eq!(r["accepted"], 1);
    assert_eq!(r["duplicates"], 0);
    assert!(r["RequestId"].as_str().unwrap().starts_with("req-"));
    // The array itself, with a numeric value, is accepted too.
    f.push(json!([f.record(120, 3600, "Frequency", json!(5))]))
        .expect(200);
    let usage = f
        .app
        .get(
            &format!("/api/v1/metering/usage?instance_id={}", f.instance),
            &f.customer,
        )
        .expect(200)
        .json();
    assert_eq!(usage["records"].as_array().unwrap().len(), 2);
    assert_eq!(
        usage["totals"],
        json!([{"period_start": "2026-03-27T08:00:00Z", "item_code": "Frequency",
        "raw_total": "15", "quantity": "15", "price_unit": "count"}])
    );
    f.app
        .get(
            &format!("/api/v1/metering/usage?instance_id={}", f.instance),
            ADMIN,
        )
        .expect(200);
}

#[test]
fn pushing_the_same_batch_twice_leaves_the_same_totals() {
    let f = fixture();
    let batch = json!([
        f.record(0, 1800, "Frequency", json!("7")),
        f.record(1800, 3600, "Frequency", json!("3"))
    ]);
    f.push(batch.clone()).expect(200);
    let totals = f.totals();
    let again = f.push(batch).expect(200).json();
    assert_eq!(
        (again["accepted"].clone(), again["duplicates"].clone()),
        (json!(0), json!(2))
    );
    assert_eq!(f.totals(), totals);
}

#[test]
fn a_changed_value_for_a_pushed_record_is_a_conflict_and_nothing_is_stored() {
    let f = fixture();
    f.push(json!([f.record(0, 1800, "Frequency", json!("7"))]))
        .expect(200);
    let before = f.app.snapshot();
    let body = f
        .push(json!([
            f.record(1800, 3600, "Frequency", json!("1")),
            f.record(0, 1800, "Frequency", json!("8"))
        ]))
        .problem(409, "DuplicateRecordConflict");
    assert_eq!(body["errors"][0]["field"], "Metering[1].Entities");
    assert_eq!(
        f.app.snapshot(),
        before,
        "the valid first record was not stored either"
    );
}

#[test]
fn every_invalid_record_is_named_and_the_batch_is_refused_whole() {
    let f = fixture();
    f.app.set_now(at("2026-03-27T09:30:00Z"));
    let before = f.app.snapshot();
    let body = f
        .push(json!([
            f.record(0, 1800, "Frequency", json!("1")),
            f.record(0, 200, "Frequency", json!("1")),
            f.record(1800, 1800, "Frequency", json!("1")),
            f.record(3000, 4000, "Frequency", json!("1")),
            f.record(0, 1800, "Bandwidth", json!("1")),
            f.record(0, 1800, "Frequency", json!("-1")),
            f.record(0, 1800, "Frequency", json!("1.5")),
        ]))
        .problem(400, "ValidationFailed");
    let got: Vec<(String, String)> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["field"].as_str().unwrap().to_owned(),
                e["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let want = [
        ("Metering[1].EndTime", "WindowTooShort"),
        ("Metering[2].EndTime", "InvalidWindow"),
        ("Metering[3].EndTime", "WindowSpansPeriods"),
        ("Metering[4].Entities[0].Key", "UnknownBillableItem"),
        ("Metering[5].Entities[0].Value", "InvalidValue"),
        ("Metering[6].Entities[0].Value", "InvalidValue"),
    ];
    for (field, code) in want {
        assert!(
            got.contains(&(field.to_owned(), code.to_owned())),
            "{field} {code} not in {got:?}"
        );
    }
    assert_eq!(got.len(), want.len(), "{got:?}");
    assert_eq!(f.app.snapshot(), before);
}

#[test]
fn more_than_100_records_are_refused() {
    let f = fixture();
    let records: Vec<Value> = (0..101)
        .map(|i| f.record(i, 1800 + i, "Frequency", json!("1")))
        .collect();
    let before = f.app.snapshot();
    f.push(json!(records)).problem(400, "TooManyRecords");
    assert_eq!(f.app.snapshot(), before);
    let records: Vec<Value> = (0..100)
        .map(|i| f.record(i, 1800 + i, "Frequency", json!("1")))
        .collect();
    assert_eq!(f.push(json!(records)).expect(200).json()["accepted"], 100);
}

#[test]
fn usage_cannot_end_in_the_future() {
    let f = fixture();
    f.app.set_now(at("2026-03-27T08:30:00Z"));
    f.push(json!([f.record(0, 1800 + 60, "Frequency", json!("1"))]))
        .expect(200);
    let before = f.app.snapshot();
    f.push(json!([f.record(0, 1800 + 61, "Frequency", json!("1"))]))
        .problem(400, "WindowInFuture");
    assert_eq!(f.app.snapshot(), before);
}

#[test]
fn late_data_is_accepted_until_the_end_of_the_next_period() {
    let f = fixture();
    f.app.set_now(at("2026-03-27T09:59:59Z"));
    f.push(json!([f.record(0, 1800, "Frequency", json!("1"))]))
        .expect(200);
    f.app.set_now(at("2026-03-27T10:00:00Z"));
    let before = f.app.snapshot();
    f.push(json!([f.record(1800, 3600, "Frequency", json!("1"))]))
        .problem(409, "PeriodClosed");
    assert_eq!(f.app.snapshot(), before);
}

#[test]
fn only_the_products_provider_pushes_and_only_for_live_instances() {
    let f = fixture();
    let (_, mallory) = f.app.provider();
    let body = json!({"ServiceInstanceId": f.instance, "Metering": [f.record(0, 1800, "Frequency", json!(1))]});
    let before = f.app.snapshot();
    f.app
        .post("/api/v1/metering", &mallory, body.clone())
        .problem(404, "NotFound");
    f.app
        .post("/api/v1/metering", &f.customer, body)
        .problem(403, "Forbidden");
    f.app
        .post(
            "/api/v1/metering",
            &f.provider,
            json!({"ServiceInstanceId": "si-missing", "Metering": []}),
        )
        .problem(404, "NotFound");
    f.app
        .post(
            "/api/v1/metering",
            &f.provider,
            json!({"ServiceInstanceId": f.instance, "Metering": "not json"}),
        )
        .problem(400, "InvalidJson");
    f.app
        .get(
            &format!("/api/v1/metering/usage?instance_id={}", f.instance),
            &mallory,
        )
        .problem(404, "NotFound");
    assert_eq!(f.app.snapshot(), before);
    // Released at 08:40: usage starting later is refused, usage before is accepted.
    f.app.set_now(at("2026-03-27T08:40:00Z"));
    f.app
        .post(
            &format!("/api/v1/instances/{}/actions", f.instance),
            &f.customer,
            json!({"action": "release"}),
        )
        .expect(200);
    f.app.set_now(at("2026-03-27T09:01:00Z"));
    f.push(json!([f.record(2400, 3000, "Frequency", json!(1))]))
        .problem(400, "UsageAfterRelease");
    f.push(json!([f.record(0, 2400, "Frequency", json!(1))]))
        .expect(200);
}

#[test]
fn usage_windows_overlapping_the_instances_life_are_its_usage() {
    let app = TestApp::new();
    app.set_now(at("2026-03-27T08:00:00Z"));
    let (provider, _, product) = app.published_product();
    let (_, customer) = app.customer("individual");
    // Ordered at 08:20, released at 08:40.
    app.set_now(at("2026-03-27T08:20:00Z"));
    let instance = app.order(&customer, &product);
    app.set_now(at("2026-03-27T08:40:00Z"));
    app.act(&customer, &instance, "release");
    app.set_now(at("2026-03-27T09:01:00Z"));
    let push = |start: &str, end: &str| {
        app.push_usage(&provider, &instance, &[usage(start, end, "Frequency", 1)])
    };
    let before = app.snapshot();
    // Wholly before the order, or wholly after the release: not the instance's.
    let early =
        push("2026-03-27T08:05:00Z", "2026-03-27T08:20:00Z").problem(400, "UsageBeforeOrder");
    assert_eq!(error_fields(&early), ["Metering[0].EndTime"]);
    let late =
        push("2026-03-27T08:40:00Z", "2026-03-27T08:50:00Z").problem(400, "UsageAfterRelease");
    assert_eq!(error_fields(&late), ["Metering[0].StartTime"]);
    assert_eq!(app.snapshot(), before);
    // The meter's hour-aligned window of the first hour, and one across the release: accepted.
    push("2026-03-27T08:00:00Z", "2026-03-27T08:30:00Z").expect(200);
    push("2026-03-27T08:30:00Z", "2026-03-27T09:00:00Z").expect(200);
    let totals = app.usage_totals(&customer, &instance);
    assert_eq!(totals[0]["raw_total"], "2", "{totals}");
}

#[test]
fn items_reported_by_the_platform_cannot_be_pushed() {
    let app = TestApp::new();
    let (token, _, product) = app.self_test_product();
    let items = format!("/api/v1/products/{product}/billable-items/Frequency");
    app.put(
        &format!("{items}/reporting"),
        &token,
        json!({"method": "compute_nest", "source": "bill"}),
    )
    .expect(200);
    app.put(
        &format!("{items}/associations"),
        &token,
        json!({"templates": ["tpl-standard"]}),
    )
    .expect(200);
    // A test order: the provider's own instance during the self-test.
    let instance = app.order(&token, &product);
    app.set_now(app.now() + Duration::minutes(61));
    let t0 = app.now().timestamp() - 3660;
    let before = app.snapshot();
    app.post("/api/v1/metering", &token, json!({"ServiceInstanceId": instance,
        "Metering": [{"StartTime": t0, "EndTime": t0 + 1800, "Entities": [{"Key": "Frequency", "Value": "1"}]}]}))
        .problem(400, "ItemNotReportedByProvider");
    assert_eq!(app.snapshot(), before);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    /// However records are ordered and batched, and however often a batch is retried, the totals
    /// are the sum of the distinct records.
    #[test]
    fn totals_are_independent_of_push_order_and_batching(
        windows in prop::collection::btree_map((0i64..1000, 301i64..2500), 0u32..10_000, 1..30),
        chunk in 1usize..10,
        seed in any::<u64>(),
    ) {
        let f = fixture();
        let mut records: Vec<(i64, i64, u32)> = windows.into_iter().map(|((s, len), v)| (s, s + len, v)).collect();
        let expected: u64 = records.iter().map(|r| u64::from(r.2)).sum();
        // A deterministic shuffle from the seed.
        let n = records.len();
        for i in (1..n).rev() {
            records.swap(i, (seed.wrapping_mul(i as u64 + 7) % (i as u64 + 1)) as usize);
        }
        for batch in records.chunks(chunk) {
            let body: Vec<Value> = batch.iter().map(|(s, e, v)| f.record(*s, *e, "Frequency", json!(v.to_string()))).collect();
            f.push(json!(body)).expect(200);
        }
        // Retrying the first batch changes nothing.
        let retry: Vec<Value> = records.iter().take(chunk).map(|(s, e, v)| f.record(*s, *e, "Frequency", json!(v))).collect();
        f.push(json!(retry)).expect(200);
        let totals = f.totals();
        prop_assert_eq!(totals[0]["raw_total"].as_str().unwrap(), expected.to_string());
    }
}

#[test]
fn a_stopped_instance_is_metered_until_its_release() {
    let f = fixture();
    let act = |t: &str, action: &str| {
        f.app.set_now(at(t));
        f.app
            .post(
                &format!("/api/v1/instances/{}/actions", f.instance),
                &f.customer,
                json!({"action": action}),
            )
            .expect(200);
    };
    // Stopped at 08:20, released at 08:40: a stopped instance still holds its storage.
    act("2026-03-27T08:20:00Z", "stop");
    act("2026-03-27T08:40:00Z", "release");
    f.app.set_now(at("2026-03-27T09:01:00Z"));
    f.push(json!([f.record(1500, 2100, "Frequency", json!(1))]))
        .expect(200);
    f.push(json!([f.record(2400, 3300, "Frequency", json!(1))]))
        .problem(400, "UsageAfterRelease");
}

#[test]
fn a_misspelt_field_in_a_record_is_named() {
    let f = fixture();
    let record = json!({"StartTime": f.t0, "EndTme": f.t0 + 1800, "Entities": []});
    let body = f.push(json!([record])).problem(400, "UnknownField");
    assert_eq!(body["errors"][0]["field"], "Metering[0].EndTme");
}

#[test]
fn platform_bills_are_refused_for_periods_the_instance_did_not_live_in() {
    let fee = testkit::Item {
        code: "BillFee",
        tier_mode: "volume",
        tiers: json!([{"up_to": null, "unit_price": "1"}]),
        reporting: json!({"method": "compute_nest", "source": "bill"}),
    };
    let app = TestApp::new();
    app.set_now(at("2026-03-27T08:00:00Z"));
    let (_, product) = app.product_with_items("hour", &[fee], true);
    let (_, customer) = app.customer("enterprise");
    let instance = app.order(&customer, &product);
    app.set_now(at("2026-03-27T08:30:00Z"));
    app.post(
        &format!("/api/v1/instances/{instance}/actions"),
        &customer,
        json!({"action": "release"}),
    )
    .expect(200);
    app.set_now(at("2026-03-27T09:30:00Z"));
    let bill =
        |start: &str| json!({"instance_id": instance, "period_start": start, "amount": "1.00"});
    let before = app.snapshot();
    app.post(
        "/api/v1/metering/platform-bills",
        ADMIN,
        bill("2026-03-27T07:00:00Z"),
    )
    .problem(400, "UsageBeforeOrder");
    app.post(
        "/api/v1/metering/platform-bills",
        ADMIN,
        bill("2026-03-27T09:00:00Z"),
    )
    .problem(400, "UsageAfterRelease");
    assert_eq!(app.snapshot(), before);
    app.post(
        "/api/v1/metering/platform-bills",
        ADMIN,
        bill("2026-03-27T08:00:00Z"),
    )
    .expect(200);
    let conflict = app
        .post(
            "/api/v1/metering/platform-bills",
            ADMIN,
            json!({"instance_id": instance,
              "period_start": "2026-03-27T08:00:00Z", "amount": "2.00"}),
        )
        .problem(409, "DuplicateRecordConflict");
    assert_eq!(conflict["errors"][0]["field"], "amount");
    assert!(
        conflict["detail"].as_str().unwrap().contains("1.00"),
        "{conflict}"
    );
}

/// Usage reads come in pages (`limit`, `next_cursor`) in order of period, item and window; each
/// page carries the complete totals of the periods its records are in, even a period split
/// across pages.
#[test]
fn usage_reads_are_paginated_with_the_totals_of_their_periods() {
    let f = fixture();
    f.app.set_now(at("2026-03-27T09:30:00Z"));
    // Three records in the 08:00 hour, two in the 09:00 hour.
    let records = json!([
        f.record(0, 600, "Frequency", json!("1")),
        f.record(600, 1200, "Frequency", json!("2")),
        f.record(1200, 1800, "Frequency", json!("4")),
        f.record(3600, 4200, "Frequency", json!("8")),
        f.record(4200, 4800, "Frequency", json!("16")),
    ]);
    f.push(records).expect(200);
    let path = format!("/api/v1/metering/usage?instance_id={}&limit=2", f.instance);
    let mut values = Vec::new();
    let mut totals = Vec::new();
    let mut next = Some(path.clone());
    while let Some(page_path) = next {
        let page = f.app.get(&page_path, &f.provider).expect(200).json();
        assert!(page["records"].as_array().unwrap().len() <= 2, "{page}");
        values.extend(
            page["records"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["value"].clone()),
        );
        totals.push(page["totals"].clone());
        next = page["next_cursor"]
            .as_str()
            .map(|c| format!("{path}&cursor={c}"));
    }
    assert_eq!(
        values,
        [json!("1"), json!("2"), json!("4"), json!("8"), json!("16")]
    );
    let raw = |t: &Value| -> Vec<(String, String)> {
        t.as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["period_start"].as_str().unwrap().to_owned(),
                    p["raw_total"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let eight = "2026-03-27T08:00:00Z".to_owned();
    let nine = "2026-03-27T09:00:00Z".to_owned();
    assert_eq!(raw(&totals[0]), [(eight.clone(), "7".to_owned())]);
    assert_eq!(
        raw(&totals[1]),
        [(eight, "7".to_owned()), (nine.clone(), "24".to_owned())]
    );
    assert_eq!(raw(&totals[2]), [(nine, "24".to_owned())]);

    f.app
        .get(&format!("{path}&cursor=not-a-cursor"), &f.provider)
        .problem(400, "InvalidQuery");
}
