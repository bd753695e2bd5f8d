//! One tenant's mistakes or extremes must never stop others' billing, lose usage or panic.

use nestmarket::platform::storage::{Backend, Dialect};
use serde_json::{Value, json};
use testkit::native::{ADMIN, TestApp};
use testkit::{Item, Market, at, step_bodies};

const T0: &str = "2026-03-27T08:00:00Z";

fn app() -> TestApp {
    let app = TestApp::with_config(|n| (n == "allow_clock_override").then(|| "true".to_owned()));
    app.set_now(at(T0));
    app
}

/// A published hourly product with a paying customer's instance: (provider, customer, instance).
fn bystander(app: &TestApp) -> (String, String, String) {
    let (provider, product) = app.product_with_items("hour", &[Item::frequency()], true);
    let (cid, customer) = app.customer("enterprise");
    app.post(
        &format!("/api/v1/accounts/{cid}/top-ups"),
        ADMIN,
        json!({"amount": "1000.00"}),
    )
    .expect(201);
    let instance = app.order(&customer, &product);
    (provider, customer, instance)
}

/// The bystander's usage: 10 calls in the first half of the 08:00 hour, billed 5.00.
fn bystander_uses(app: &TestApp, provider: &str, instance: &str) {
    push(
        app,
        provider,
        instance,
        "2026-03-27T08:00:00Z",
        "2026-03-27T08:30:00Z",
        json!("10"),
    )
    .expect(200);
}

fn push(
    app: &TestApp,
    provider: &str,
    instance: &str,
    start: &str,
    end: &str,
    value: Value,
) -> testkit::Response {
    let body = json!({"ServiceInstanceId": instance, "Metering": [{
        "StartTime": at(start).timestamp(), "EndTime": at(end).timestamp(),
        "Entities": [{"Key": "Frequency", "Value": value}]}]});
    app.post("/api/v1/metering", provider, body)
}

/// The first bill of an instance, as its customer reads it.
fn first_bill(app: &TestApp, customer: &str, instance: &str) -> Value {
    let bills = app
        .get(&format!("/api/v1/bills?instance_id={instance}"), customer)
        .expect(200)
        .json();
    bills["items"][0].clone()
}

/// What the usage of an instance's first bill came to (its resources aside).
fn product_fees(app: &TestApp, customer: &str, instance: &str) -> Value {
    first_bill(app, customer, instance)["product_fees"].clone()
}

#[test]
fn the_billing_period_is_locked_once_the_product_has_instances() {
    let app = app();
    let (provider, product) = app.product_with_items("hour", &[Item::frequency()], false);
    let mut pricing = step_bodies()
        .into_iter()
        .find(|(n, _)| *n == "pricing")
        .unwrap()
        .1;
    pricing["billing_period"] = json!("day");
    let path = format!("/api/v1/products/{product}/pricing");
    app.order(&provider, &product);
    let before = app.snapshot();
    app.put(&path, &provider, pricing.clone())
        .problem(409, "BillingPeriodLocked");
    assert_eq!(app.snapshot(), before);
    // Other pricing edits stay possible during the self-test.
    pricing["billing_period"] = json!("hour");
    pricing["enterprise_only"] = json!(true);
    app.put(&path, &provider, pricing).expect(200);
}

#[test]
fn values_beyond_the_bound_are_refused() {
    let app = app();
    let (provider, _, instance) = bystander(&app);
    app.set_now(at("2026-03-27T09:00:00Z"));
    let before = app.snapshot();
    push(
        &app,
        &provider,
        &instance,
        "2026-03-27T08:00:00Z",
        "2026-03-27T08:30:00Z",
        json!("1000000000000001"),
    )
    .problem(400, "InvalidValue");
    assert_eq!(app.snapshot(), before);
    // Bounded values sum without overflow, however many there are.
    for (s, e) in [("08:00", "08:30"), ("08:30", "09:00"), ("08:00", "09:00")] {
        push(
            &app,
            &provider,
            &instance,
            &format!("2026-03-27T{s}:00Z"),
            &format!("2026-03-27T{e}:00Z"),
            json!("1000000000000000"),
        )
        .expect(200);
    }
    let usage = app
        .get(
            &format!("/api/v1/metering/usage?instance_id={instance}"),
            &provider,
        )
        .expect(200)
        .json();
    assert_eq!(usage["totals"][0]["raw_total"], "3000000000000000");
}

#[test]
fn an_instance_that_cannot_be_priced_is_reported_and_others_are_billed() {
    let app = app();
    let (provider, customer, instance) = bystander(&app);
    let extreme = Item {
        code: "Frequency",
        tier_mode: "graduated",
        tiers: json!([{"up_to": null, "unit_price": "1000000"}]),
        reporting: json!({"method": "service_provider"}),
    };
    let (p2, product2) = app.product_with_items("hour", &[extreme], true);
    let (_, c2) = app.customer("enterprise");
    let inst2 = app.order(&c2, &product2);
    app.set_now(at("2026-03-27T09:00:00Z"));
    bystander_uses(&app, &provider, &instance);
    push(
        &app,
        &p2,
        &inst2,
        "2026-03-27T08:00:00Z",
        "2026-03-27T08:30:00Z",
        json!("1000000000000000"),
    )
    .expect(200);
    let report = app
        .post(
            "/api/v1/billing/runs",
            ADMIN,
            json!({"as_of": "2026-03-27T10:00:00Z"}),
        )
        .expect(200)
        .json();
    assert_eq!(report["bills_written"], 1, "{report}");
    assert_eq!(report["failures"][0]["instance_id"], inst2.as_str());
    assert_eq!(product_fees(&app, &customer, &instance), "5.00");
    // The failed period stays first in line: the next run reports it again and bills nothing twice.
    let again = app
        .post(
            "/api/v1/billing/runs",
            ADMIN,
            json!({"as_of": "2026-03-27T10:00:00Z"}),
        )
        .expect(200)
        .json();
    assert_eq!(again["bills_written"], 0);
    assert_eq!(again["failures"][0]["instance_id"], inst2.as_str());
}

#[test]
fn usage_for_an_already_billed_period_is_refused() {
    let app = app();
    let (provider, customer, instance) = bystander(&app);
    app.set_now(at("2026-03-27T10:00:00Z"));
    app.post(
        "/api/v1/billing/runs",
        ADMIN,
        json!({"as_of": "2026-03-27T10:00:00Z"}),
    )
    .expect(200);
    // A push whose clock still read 09:59:59 commits after the run.
    app.set_now(at("2026-03-27T09:59:59Z"));
    let before = app.snapshot();
    push(
        &app,
        &provider,
        &instance,
        "2026-03-27T08:00:00Z",
        "2026-03-27T08:30:00Z",
        json!("100"),
    )
    .problem(409, "PeriodClosed");
    assert_eq!(app.snapshot(), before);
    assert_eq!(product_fees(&app, &customer, &instance), "0.00");
    // The open 09:00 hour still takes usage.
    push(
        &app,
        &provider,
        &instance,
        "2026-03-27T09:00:00Z",
        "2026-03-27T09:30:00Z",
        json!("100"),
    )
    .expect(200);
}

/// A Prometheus endpoint answering every query with `value`.
fn fixed_prometheus(value: &'static str) -> String {
    testkit::serve_json(move |_| {
        json!({"status": "success", "data": {"resultType": "vector",
            "result": [{"metric": {}, "value": [0, value]}]}})
    })
}

#[test]
fn an_absurd_prometheus_answer_is_a_reported_failure_not_a_crash() {
    let app = app();
    let (provider, customer, instance) = bystander(&app);
    let url = fixed_prometheus("79228162514264337593543950335");
    let item = Item {
        code: "Requests",
        tier_mode: "graduated",
        tiers: json!([{"up_to": null, "unit_price": "0.01"}]),
        reporting: json!({"method": "compute_nest", "source": "prometheus",
            "prometheus": {"endpoint": url, "query": "http_requests_total"}}),
    };
    let (_, product) = app.product_with_items("hour", &[item], true);
    let (_, c) = app.customer("enterprise");
    let inst = app.order(&c, &product);
    app.set_now(at("2026-03-27T08:40:00Z"));
    bystander_uses(&app, &provider, &instance);
    app.post(
        "/api/v1/billing/preview",
        &c,
        json!({"instance_id": inst, "period_start": T0}),
    )
    .problem(502, "PlatformSourceUnavailable");
    let report = app
        .post(
            "/api/v1/billing/runs",
            ADMIN,
            json!({"as_of": "2026-03-27T10:00:00Z"}),
        )
        .expect(200)
        .json();
    assert_eq!(report["failures"][0]["instance_id"], inst.as_str());
    assert_eq!(product_fees(&app, &customer, &instance), "5.00");
}

#[test]
fn hourly_fees_are_bounded() {
    let app = app();
    let (_, token) = app.provider();
    let before = app.snapshot();
    for fee in ["79228162514264337593543950335", "1000000.01", "0.123456789"] {
        let mut svc = testkit::service_body();
        svc["templates"][0]["resources"][0]["hourly_fee"] = json!(fee);
        app.post("/api/v1/services", &token, svc)
            .problem(400, "InvalidValue");
    }
    assert_eq!(app.snapshot(), before);
}

/// Makes the database refuse one tenant's writes to `table` (those `when` matches), as a corrupt
/// page or a full disk would, for the faults no input can cause any more.
fn refuse_writes(app: &TestApp, table: &str, when: &str) {
    let db = app.backend.open_db().unwrap();
    let statements = match app.dialect() {
        Dialect::Sqlite => vec![format!(
            "CREATE TRIGGER refuse_{table} BEFORE INSERT ON {table} WHEN {when}
             BEGIN SELECT RAISE(ABORT, 'injected fault'); END"
        )],
        Dialect::Postgres => vec![
            format!(
                "CREATE FUNCTION refuse_{table}() RETURNS trigger LANGUAGE plpgsql AS
                 $$ BEGIN RAISE EXCEPTION 'injected fault'; END $$"
            ),
            format!(
                "CREATE TRIGGER refuse_{table} BEFORE INSERT ON {table} FOR EACH ROW
                 WHEN ({when}) EXECUTE FUNCTION refuse_{table}()"
            ),
        ],
    };
    for statement in statements {
        db.execute(&statement, &[]).unwrap();
    }
}

fn accept_writes(app: &TestApp, table: &str) {
    let db = app.backend.open_db().unwrap();
    let drop = match app.dialect() {
        Dialect::Sqlite => format!("DROP TRIGGER refuse_{table}"),
        Dialect::Postgres => format!("DROP TRIGGER refuse_{table} ON {table}"),
    };
    db.execute(&drop, &[]).unwrap();
}

/// Whatever fails for one instance inside a bill run's batch — storing the platform's usage,
/// writing the bill, posting its deduction — is that instance's failure, reported with a stable
/// code; the other instances of the batch are billed in the same run, and the next run bills
/// the failed one, once.
#[test]
fn a_fault_in_one_instances_bill_leaves_the_others_billed_in_the_same_run() {
    for (table, fault, code) in [
        (
            "usage_records",
            "NEW.source = 'platform'",
            "platform_usage_not_stored",
        ),
        ("bills", "1 = 1", "bill_not_written"),
        (
            "ledger_entries",
            "NEW.kind = 'bill'",
            "deduction_not_posted",
        ),
    ] {
        let app = app();
        let items = [Item::frequency(), Item::running_time("1.00")];
        let (provider, product) = app.product_with_items("hour", &items, true);
        let (_, bystander) = app.funded_customer("1000.00");
        let (troubled_id, troubled) = app.funded_customer("1000.00");
        let bystander_instance = app.order(&bystander, &product);
        let troubled_instance = app.order(&troubled, &product);
        app.set_now(at("2026-03-27T09:00:00Z"));
        for instance in [&bystander_instance, &troubled_instance] {
            push(
                &app,
                &provider,
                instance,
                "2026-03-27T08:00:00Z",
                "2026-03-27T08:30:00Z",
                json!("10"),
            )
            .expect(200);
        }
        let whose = match table {
            "ledger_entries" => format!("NEW.customer_id = '{troubled_id}'"),
            _ => format!("NEW.instance_id = '{troubled_instance}'"),
        };
        refuse_writes(&app, table, &format!("{whose} AND {fault}"));
        let report = app.bill_run("2026-03-27T10:00:00Z");
        assert_eq!(report["bills_written"], 1, "{table}: {report}");
        assert_eq!(report["failures"].as_array().unwrap().len(), 1, "{report}");
        let failure = &report["failures"][0];
        assert_eq!(failure["instance_id"], troubled_instance.as_str());
        assert_eq!(failure["period_start"], "2026-03-27T08:00:00Z");
        assert_eq!(failure["code"], code, "{table}");
        // 10 calls at 0.5, an hour of running time at 1.00 and of the resources (2 × 0.80).
        assert_eq!(
            first_bill(&app, &bystander, &bystander_instance)["total"],
            "7.60"
        );
        assert!(app.bills(&troubled, Some(&troubled_instance)).is_empty());
        assert_eq!(
            app.balance(&troubled),
            "1000.00",
            "{table}: nothing half-written"
        );

        accept_writes(&app, table);
        let rerun = app.bill_run("2026-03-27T10:00:00Z");
        assert_eq!(rerun["bills_written"], 1, "{table}: {rerun}");
        assert_eq!(rerun["failures"], json!([]));
        assert_eq!(
            first_bill(&app, &troubled, &troubled_instance)["total"],
            "7.60"
        );
        assert_eq!(app.bills(&bystander, Some(&bystander_instance)).len(), 1);
        assert_eq!(app.balance(&troubled), "992.40");
    }
}

/// Once usage of an item is recorded from one source (a provider's test pushes), its reporting
/// method cannot switch to another source: the two sources' records of one window would both be
/// priced.
#[test]
fn a_reporting_method_is_locked_once_another_source_has_recorded_usage() {
    let app = app();
    let items = [Item::frequency()];
    let (provider, product) = app.product_with_items("hour", &items, false);
    let test_instance = app.order(&provider, &product);
    app.set_now(at("2026-03-27T09:00:00Z"));
    push(
        &app,
        &provider,
        &test_instance,
        "2026-03-27T08:00:00Z",
        "2026-03-27T08:30:00Z",
        json!("10"),
    )
    .expect(200);
    let reporting = format!("/api/v1/products/{product}/billable-items/Frequency/reporting");
    let before = app.snapshot();
    app.put(
        &reporting,
        &provider,
        json!({"method": "compute_nest", "source": "bill"}),
    )
    .problem(409, "ReportingMethodLocked");
    assert_eq!(app.snapshot(), before);
    // The same source again is no change.
    app.put(&reporting, &provider, json!({"method": "service_provider"}))
        .expect(200);
}

/// A provider's Prometheus settings cannot smuggle a query of their own: the endpoint is an
/// origin and a plain path (a query string in it is refused), the query a selector (anything
/// else is refused), and what reaches Prometheus is the app's own query — the instance's
/// increase, its label always matched — with nothing but `query` and `time`.
#[test]
fn a_prometheus_setting_cannot_query_another_tenants_metrics() {
    let app = app();
    let prometheus = testkit::JsonServer::start(|_| testkit::prometheus_vector(0, Some("12")));
    let (provider, product) = app.product_with_items(
        "hour",
        &[Item::prometheus_requests(prometheus.origin(), "0.10")],
        false,
    );
    let reporting = format!("/api/v1/products/{product}/billable-items/Requests/reporting");
    let before = app.snapshot();
    for (endpoint, query, field) in [
        (
            format!(
                "{}/api/v1/query?query=sum(other_tenant_metric)&x=",
                prometheus.origin()
            ),
            "http_requests_total",
            "prometheus.endpoint",
        ),
        (
            prometheus.origin().to_owned(),
            "http_requests_total{job=\"api\"} or sum(other_tenant_metric)",
            "prometheus.query",
        ),
        (
            prometheus.origin().to_owned(),
            "http_requests_total{service_instance_id=~\".*\"}",
            "prometheus.query",
        ),
    ] {
        let body = json!({"method": "compute_nest", "source": "prometheus",
                          "prometheus": {"endpoint": endpoint, "query": query}});
        let problem = app
            .put(&reporting, &provider, body)
            .problem(400, "InvalidReportingMethod");
        assert_eq!(testkit::error_fields(&problem), [field]);
    }
    assert_eq!(app.snapshot(), before);

    let instance = app.order(&provider, &product);
    app.set_now(at("2026-03-27T08:40:00Z"));
    let preview = app.preview(&provider, &instance, T0).expect(200).json();
    assert_eq!(preview["product_fees"], "1.20", "{preview}");
    let requests = prometheus.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    let (path, query) = requests[0].split_once('?').unwrap();
    assert_eq!(path, "/api/v1/query");
    let params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let expected_query = format!(
        "sum(increase(http_requests_total{{job=\"api\",service_instance_id=\"{instance}\"}}[3600s]))"
    );
    assert_eq!(
        params,
        [
            ("query".to_owned(), expected_query),
            (
                "time".to_owned(),
                at("2026-03-27T09:00:00Z").timestamp().to_string()
            ),
        ]
    );
}

/// An instance's day periods are cut in the zone it was ordered under: when the deployment's
/// `billing_timezone` changes, its billing cursor still stands on its own boundaries and its
/// days are billed as before, while an instance ordered afterwards is cut in the new zone.
#[test]
fn a_change_of_the_billing_time_zone_strands_no_instance() {
    let app = TestApp::with_config(|n| match n {
        "allow_clock_override" => Some("true".to_owned()),
        "billing_timezone" => Some("Asia/Shanghai".to_owned()),
        _ => None,
    });
    // A Shanghai day runs from 16:00 UTC to 16:00 UTC.
    app.set_now(at("2026-03-26T16:00:00Z"));
    let (_, product) = app.product_with_items("day", &[Item::running_time("24.00")], true);
    let (_, before_change) = app.funded_customer("1000.00");
    let shanghai = app.order(&before_change, &product);
    app.redeploy(|n| match n {
        "allow_clock_override" => Some("true".to_owned()),
        "billing_timezone" => Some("UTC".to_owned()),
        _ => None,
    });
    app.set_now(at("2026-03-27T00:00:00Z"));
    let (_, after_change) = app.funded_customer("1000.00");
    let utc = app.order(&after_change, &product);

    // By 2026-03-29T00:00Z the Shanghai day of 03-27 (from 03-26T16:00Z) and the UTC day of
    // 03-27 have both closed (a day closes at the end of the next).
    let report = app.bill_run("2026-03-29T00:00:00Z");
    assert_eq!(report["failures"], json!([]), "{report}");
    let starts = |token: &str, instance: &str| -> Vec<String> {
        app.bills(token, Some(instance))
            .iter()
            .map(|b| b["period_start"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(starts(&before_change, &shanghai), ["2026-03-26T16:00:00Z"]);
    assert_eq!(starts(&after_change, &utc), ["2026-03-27T00:00:00Z"]);
    let instance = app
        .get(&format!("/api/v1/instances/{shanghai}"), &before_change)
        .expect(200)
        .json();
    assert_eq!(instance["billing_timezone"], "Asia/Shanghai");
}
