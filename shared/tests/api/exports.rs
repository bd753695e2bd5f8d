//! docs/RULES.md R15.11 through the HTTP handlers: `Accept: text/csv` on the bills, usage and
//! settlements lists answers RFC 4180 CSV that a standard reader parses and that matches the
//! JSON — same filters, same tenancy —, written a page at a time.

use serde_json::json;
use testkit::native::{ADMIN, TestApp};
use testkit::{Item, Market, at, csv_rows, str_of};

fn app() -> TestApp {
    TestApp::with_config(|name| (name == "allow_clock_override").then(|| "true".to_owned()))
}

#[test]
fn the_bills_export_is_the_json_list_every_page_of_it() {
    let app = app();
    let (_, product) = app.product_with_items("hour", &[Item::running_time("1.00")], true);
    let (_, customer) = app.funded_customer("100000.00");
    let instance = app.order(&customer, &product);
    // 22 days of hours: more bills than one page of the export reads.
    app.bill_run("2026-04-18T08:00:00Z");
    let json = app.bills(&customer, Some(&instance));
    assert!(json.len() > 500, "{} bills", json.len());
    let (header, rows) = app
        .export(&format!("/api/v1/bills?instance_id={instance}"), &customer)
        .expect(200)
        .csv();
    assert_eq!(header[0], "id");
    assert!(header.contains(&"pricing_version".to_owned()));
    assert_eq!(rows, csv_rows(&header, &json));
    // The same filters: a time range.
    let from = "2026-03-28T00:00:00Z";
    let to = "2026-03-29T00:00:00Z";
    let path = format!("/api/v1/bills?from={from}&to={to}");
    let (_, ranged) = app.export(&path, &customer).expect(200).csv();
    let listed = app.every_page(&path, &customer, "");
    assert_eq!(ranged.len(), 24);
    assert_eq!(ranged, csv_rows(&header, &listed));
    // The same tenancy: another customer's export has the header alone.
    let (_, stranger) = app.funded_customer("1.00");
    let (_, none) = app.export("/api/v1/bills", &stranger).expect(200).csv();
    assert!(none.is_empty());
    // JSON unless CSV is asked for, and preferred.
    for accept in [
        "application/json",
        "text/csv;q=0",
        "application/json, text/csv;q=0.5",
        "*/*",
    ] {
        let r = app.call_with_headers(
            "GET",
            "/api/v1/bills?limit=1",
            Some(&customer),
            &[("accept", accept)],
            Vec::new(),
        );
        assert_eq!(
            r.header("content-type"),
            Some("application/json"),
            "{accept}"
        );
    }
    let r = app.call_with_headers(
        "GET",
        "/api/v1/bills?limit=1",
        Some(&customer),
        &[("accept", "text/csv, application/json;q=0.9")],
        Vec::new(),
    );
    assert_eq!(r.header("content-type"), Some("text/csv; charset=utf-8"));
}

#[test]
fn the_usage_export_is_every_record_of_the_range() {
    let app = app();
    let (provider, product) = app.product_with_items("hour", &[Item::frequency()], true);
    let (_, customer) = app.funded_customer("100000.00");
    let instance = app.order(&customer, &product);
    // Ten six-minute records an hour for 55 hours: 550 records.
    app.push_hours(&provider, &instance, at("2026-03-27T08:00:00Z"), 55);
    let path = format!("/api/v1/metering/usage?instance_id={instance}");
    let json = app.usage_records(&provider, &instance);
    assert_eq!(json.len(), 550);
    for token in [&provider, &customer] {
        let (header, rows) = app.export(&path, token).expect(200).csv();
        assert_eq!(
            header,
            [
                "item_code",
                "start_time",
                "end_time",
                "value",
                "period_start",
                "source",
                "received_at"
            ]
        );
        assert_eq!(rows, csv_rows(&header, &json));
    }
    let (_, stranger) = app.customer("enterprise");
    app.export(&path, &stranger).problem(404, "NotFound");
}

#[test]
fn the_settlements_export_is_the_months_statements() {
    let app = TestApp::with_config(|name| match name {
        "allow_clock_override" => Some("true".to_owned()),
        "commission_rate" => Some("0.10".to_owned()),
        _ => None,
    });
    let (provider_a, product_a) =
        app.product_with_items("hour", &[Item::running_time("1.00")], true);
    let (_, product_b) = app.product_with_items("hour", &[Item::running_time("3.33")], true);
    let (_, customer) = app.funded_customer("10000.00");
    app.order(&customer, &product_a);
    app.order(&customer, &product_b);
    app.set_now(at("2026-04-01T16:00:00Z"));
    app.post(
        "/api/v1/settlements/runs",
        ADMIN,
        json!({"month": "2026-03"}),
    )
    .expect(200);
    let path = "/api/v1/settlements?month=2026-03";
    let json = app.get(path, ADMIN).expect(200).json();
    let (header, rows) = app.export(path, ADMIN).expect(200).csv();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows, csv_rows(&header, json["items"].as_array().unwrap()));
    let own = app.get(path, &provider_a).expect(200).json();
    let (_, provider_rows) = app.export(path, &provider_a).expect(200).csv();
    assert_eq!(
        provider_rows,
        csv_rows(&header, own["items"].as_array().unwrap())
    );
    assert_eq!(provider_rows.len(), 1);
    assert_eq!(provider_rows[0][1], str_of(&own["items"][0]["provider_id"]));
}
