//! The whole product path over HTTP, on the shared app: the operator creates the principals, the
//! provider lists a service (five steps, media through the key-value store), the operator reviews
//! it (a rejection first), the provider configures its sales settings, the product is published,
//! a customer quotes and orders it, the provider pushes usage, a bill run bills the closed hour
//! and the customer sees the bill and the deduction. Every step's status, code and values are
//! asserted; what other tests put in the shared app is filtered out by id.

use serde_json::{Value, json};
use testkit::{Market, at, pdf, png, service_body, step_bodies, str_of, unix};

use crate::harness::{HttpMarket, shared_app};

const LISTED_AT: &str = "2026-03-27T07:00:00Z";
const ORDERED_AT: &str = "2026-03-27T08:00:00Z";
const PUSHED_AT: &str = "2026-03-27T09:01:00Z";

fn product_status(market: &HttpMarket, provider: &str, id: &str) -> String {
    let product = market
        .get(&format!("/api/v1/products/{id}"), provider)
        .expect(200)
        .json();
    str_of(&product["status"])
}

#[test]
fn provider_operator_customer_metering_bill_run_bill() {
    let app = shared_app();
    let market = app.at(at(LISTED_AT));

    // ---- The operator creates the principals ----
    let (provider_id, provider) = market.principal("provider", None);
    assert!(provider_id.starts_with("usr-"), "{provider_id}");
    let (customer_id, customer) = market.principal("customer", Some("enterprise"));
    let me = market.get("/api/v1/me", &provider).expect(200).json();
    assert_eq!(me["id"], provider_id.as_str());
    assert_eq!(me["role"], "provider");
    // A provider cannot create principals.
    market
        .post(
            "/api/v1/principals",
            &provider,
            json!({"role": "provider", "name": "mallory"}),
        )
        .problem(403, "Forbidden");

    // ---- The provider registers its service and creates the product ----
    let service = market
        .post("/api/v1/services", &provider, service_body())
        .expect(201)
        .json();
    let service_id = str_of(&service["id"]);
    assert!(service_id.starts_with("svc-"), "{service}");
    let product = market
        .post(
            "/api/v1/products",
            &provider,
            json!({"service_id": service_id}),
        )
        .expect(201)
        .json();
    let id = str_of(&product["id"]);
    assert!(id.starts_with("prod-"), "{product}");
    assert_eq!(product["status"], "draft");
    // One product per service.
    market
        .post(
            "/api/v1/products",
            &provider,
            json!({"service_id": service_id}),
        )
        .problem(409, "ServiceAlreadyAssociated");
    let path = format!("/api/v1/products/{id}");

    // Submitting an incomplete listing names what is missing.
    let incomplete = market
        .post(
            "/api/v1/reviews",
            &provider,
            json!({"product_id": id, "stage": "category"}),
        )
        .problem(400, "ListingIncomplete");
    let missing: Vec<&str> = incomplete["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert!(missing.contains(&"access"), "{incomplete}");

    // ---- The five steps ----
    for (step, body) in step_bodies() {
        let view = market
            .put(&format!("{path}/{step}"), &provider, body)
            .expect(200)
            .json();
        assert_eq!(view["status"], "draft", "{step}: {view}");
    }
    let view = market.get(&path, &provider).expect(200).json();
    assert_eq!(view["complete"], false, "the media are still missing");
    assert_eq!(
        view["steps"]["pricing"]["billable_items"][0]["tiers"],
        json!([{"up_to": "1000", "unit_price": "0.5"}, {"up_to": "5000", "unit_price": "0.4"},
               {"up_to": null, "unit_price": "0.2"}])
    );
    assert_eq!(view["steps"]["pricing"]["currency"], "CNY");

    // ---- Media: the logo must be a PNG, the user guide a PDF ----
    market
        .put_bytes(
            &format!("{path}/media/logo"),
            &provider,
            "image/png",
            pdf(64),
        )
        .problem(415, "UnsupportedMediaType");
    let logo = png(290, 290, 64);
    market
        .put_bytes(
            &format!("{path}/media/logo"),
            &provider,
            "image/png",
            logo.clone(),
        )
        .expect(200);
    market
        .put_bytes(
            &format!("{path}/media/user_guide"),
            &provider,
            "application/pdf",
            pdf(2048),
        )
        .expect(200);
    let served = market
        .get(&format!("{path}/media/logo"), &provider)
        .expect(200);
    assert_eq!(served.header("content-type"), Some("image/png"));
    assert_eq!(served.body, logo, "the key-value store keeps the bytes");
    let view = market.get(&path, &provider).expect(200).json();
    assert_eq!(view["complete"], true, "{view}");
    assert_eq!(view["warnings"], json!([]), "{view}");

    // ---- Category review: rejected with a reason ----
    let first = market.submit(&provider, &id, "category");
    assert!(first.starts_with("rev-"), "{first}");
    assert_eq!(product_status(&market, &provider, &id), "category_review");
    // Not editable while under review.
    market
        .put(
            &format!("{path}/category"),
            &provider,
            step_bodies()[2].1.clone(),
        )
        .problem(409, "ReviewPending");
    let queue = market
        .get("/api/v1/reviews?status=pending", market.admin_token())
        .expect(200)
        .json();
    assert!(
        queue["items"]
            .as_array()
            .is_some_and(|items| items.iter().any(|r| r["id"] == first.as_str())),
        "{queue}"
    );
    // A rejection needs a reason; a provider cannot decide.
    market
        .decide(&first, "reject", None)
        .problem(400, "ReasonRequired");
    market
        .post(
            &format!("/api/v1/reviews/{first}/decision"),
            &provider,
            json!({"decision": "approve"}),
        )
        .problem(403, "Forbidden");
    let rejected = market
        .decide(&first, "reject", Some("Vector databases belong in AI"))
        .expect(200)
        .json();
    assert_eq!(rejected["status"], "rejected", "{rejected}");
    assert_eq!(product_status(&market, &provider, &id), "category_rejected");
    // A second decision on the same review is a conflict.
    market
        .decide(&first, "approve", None)
        .problem(409, "ReviewAlreadyDecided");

    // ---- The provider changes the category and resubmits ----
    market
        .post(
            "/api/v1/reviews",
            &provider,
            json!({"product_id": id, "stage": "category"}),
        )
        .problem(409, "CategoryUnchanged");
    let mut category = step_bodies()[2].1.clone();
    category["category"] = json!("ai_machine_learning");
    market
        .put(&format!("{path}/category"), &provider, category)
        .expect(200);
    let second = market.submit(&provider, &id, "category");
    let approved = market.decide(&second, "approve", None).expect(200).json();
    assert_eq!(approved["status"], "approved", "{approved}");
    assert_eq!(product_status(&market, &provider, &id), "self_test");

    // ---- Self-test: reporting and associations of the billable item ----
    let items = market
        .get(&format!("{path}/billable-items"), &provider)
        .expect(200)
        .json();
    assert_eq!(items["items"][0]["code"], "Frequency", "{items}");
    assert_eq!(items["items"][0]["in_effect"], false, "{items}");
    // Feature review needs a reporting method for every item.
    market
        .post(
            "/api/v1/reviews",
            &provider,
            json!({"product_id": id, "stage": "feature"}),
        )
        .problem(400, "SalesSettingsIncomplete");
    let item = format!("{path}/billable-items/Frequency");
    let reporting = market
        .put(
            &format!("{item}/reporting"),
            &provider,
            json!({"method": "service_provider"}),
        )
        .expect(200)
        .json();
    assert_eq!(
        reporting["reporting"],
        json!({"method": "service_provider"})
    );
    assert_eq!(reporting["in_effect"], false, "not associated yet");
    let associated = market
        .put(
            &format!("{item}/associations"),
            &provider,
            json!({"templates": ["tpl-standard"]}),
        )
        .expect(200)
        .json();
    assert_eq!(associated["in_effect"], true, "{associated}");

    // ---- Feature review, approved: published ----
    let third = market.submit(&provider, &id, "feature");
    assert_eq!(product_status(&market, &provider, &id), "feature_review");
    market
        .decide(&third, "approve", Some("Looks good"))
        .expect(200);
    assert_eq!(product_status(&market, &provider, &id), "published");

    // ---- The public catalog, without a token ----
    let catalog = market
        .get_anonymous("/api/v1/catalog?category=ai_machine_learning")
        .expect(200)
        .json();
    let listed = catalog_entry(&catalog, &id).unwrap_or_else(|| panic!("not listed: {catalog}"));
    assert_eq!(listed["platform_tag"]["id"], "compute_nest_service");
    let old_category = market
        .get_anonymous("/api/v1/catalog?category=databases")
        .expect(200)
        .json();
    assert!(
        catalog_entry(&old_category, &id).is_none(),
        "{old_category}"
    );
    let detail = market
        .get_anonymous(&format!("/api/v1/catalog/{id}"))
        .expect(200)
        .json();
    assert_eq!(detail["product_name"], "Acme Vector DB");
    assert_eq!(detail["category"], "ai_machine_learning");
    assert_eq!(
        detail["pricing"]["billable_items"][0]["tiers"][1]["unit_price"],
        "0.4"
    );
    let logo_url = detail["media"]
        .as_array()
        .expect("media")
        .iter()
        .find(|m| m["kind"] == "logo")
        .map(|m| str_of(&m["url"]))
        .expect("the logo in the catalog");
    let public_logo = market.get_anonymous(&logo_url).expect(200);
    assert_eq!(public_logo.header("content-type"), Some("image/png"));
    assert_eq!(public_logo.body, logo);

    // ---- The operator tops up the customer ----
    let topped = market
        .post(
            &format!("/api/v1/accounts/{customer_id}/top-ups"),
            market.admin_token(),
            json!({"amount": "1000.00"}),
        )
        .expect(201)
        .json();
    assert_eq!(topped["account"]["balance"], "1000.00", "{topped}");
    market
        .post(
            &format!("/api/v1/accounts/{customer_id}/top-ups"),
            &provider,
            json!({"amount": "1.00"}),
        )
        .problem(403, "Forbidden");

    // ---- The customer quotes and orders at 08:00 ----
    market.set_now(at(ORDERED_AT));
    let quote = market
        .post(
            "/api/v1/orders/quote",
            &customer,
            json!({"product_id": id, "region": "cn-shanghai"}),
        )
        .expect(200)
        .json();
    assert_eq!(quote["template"]["id"], "tpl-standard", "{quote}");
    assert_eq!(quote["region"], "cn-shanghai");
    assert_eq!(quote["cloud_resources"][0]["spec"], "ecs.g7.large");
    assert_eq!(quote["cloud_resources_hourly_fee"], "1.60");
    assert_eq!(quote["billing_period"], "hour");
    assert_eq!(quote["currency"], "CNY");
    assert_eq!(quote["billable_items"][0]["code"], "Frequency");
    assert_eq!(
        quote["billable_items"][0]["tiers"][2],
        json!({"up_to": null, "unit_price": "0.2"})
    );
    assert_eq!(quote["charged_at_confirmation"], "0.00");
    // The product lets the customer choose a region: it must be given, and one of the service's.
    market
        .post(
            "/api/v1/orders",
            &customer,
            json!({"product_id": id, "accept_eula": true}),
        )
        .problem(400, "Required");
    market
        .post(
            "/api/v1/orders",
            &customer,
            json!({"product_id": id, "region": "us-east-1", "accept_eula": true}),
        )
        .problem(400, "InvalidRegion");
    market
        .post(
            "/api/v1/orders",
            &customer,
            json!({"product_id": id, "region": "cn-hangzhou"}),
        )
        .problem(400, "EulaNotAccepted");
    let ordered = market
        .post(
            "/api/v1/orders",
            &customer,
            json!({"product_id": id, "region": "cn-hangzhou", "accept_eula": true}),
        )
        .expect(201)
        .json();
    let instance = str_of(&ordered["instance"]["id"]);
    assert!(instance.starts_with("si-"), "{ordered}");
    assert!(str_of(&ordered["order"]["id"]).starts_with("ord-"));
    assert_eq!(ordered["instance"]["status"], "running");
    assert_eq!(ordered["instance"]["test"], false);
    assert_eq!(ordered["instance"]["region"], "cn-hangzhou");
    assert_eq!(
        ordered["instance"]["running_intervals"],
        json!([{"started_at": unix(ORDERED_AT), "ended_at": null}])
    );
    assert_eq!(
        market.balance(&customer),
        "1000.00",
        "nothing charged at order"
    );
    let seen = market
        .get(&format!("/api/v1/instances/{instance}"), &customer)
        .expect(200)
        .json();
    assert_eq!(seen["id"], instance.as_str());

    // ---- The provider pushes the 08:00 hour's usage, as PushMeteringData sends it ----
    market.set_now(at(PUSHED_AT));
    let metering = json!([
        {"StartTime": unix("2026-03-27T08:00:00Z"), "EndTime": unix("2026-03-27T08:30:00Z"),
         "Entities": [{"Key": "Frequency", "Value": "600"}]},
        {"StartTime": unix("2026-03-27T08:30:00Z"), "EndTime": unix("2026-03-27T09:00:00Z"),
         "Entities": [{"Key": "Frequency", "Value": "401"}]},
    ])
    .to_string();
    let push = json!({"ServiceInstanceId": instance, "Metering": metering});
    let pushed = market
        .post("/api/v1/metering", &provider, push.clone())
        .expect(200)
        .json();
    assert_eq!(pushed["Success"], true, "{pushed}");
    assert_eq!(pushed["accepted"], 2);
    assert_eq!(pushed["duplicates"], 0);
    assert!(str_of(&pushed["RequestId"]).starts_with("req-"));
    // The same batch again is counted once.
    let again = market
        .post("/api/v1/metering", &provider, push)
        .expect(200)
        .json();
    assert_eq!(again["duplicates"], 2, "{again}");
    // Only the product's provider meters the instance.
    market
        .post(
            "/api/v1/metering",
            &customer,
            json!({"ServiceInstanceId": instance, "Metering": "[]"}),
        )
        .problem(403, "Forbidden");
    assert_eq!(
        market.usage_totals(&provider, &instance),
        json!([{"period_start": "2026-03-27T08:00:00Z", "item_code": "Frequency",
                "raw_total": "1001", "quantity": "1001", "price_unit": "count"}])
    );
    let preview = market
        .post(
            "/api/v1/billing/preview",
            &customer,
            json!({"instance_id": instance, "period_start": "2026-03-27T08:00:00Z"}),
        )
        .expect(200)
        .json();
    assert_eq!(preview["product_fees"], "500.40", "{preview}");
    assert_eq!(preview["resource_fees"], "1.60", "{preview}");
    assert!(
        market.bills(&customer, Some(&instance)).is_empty(),
        "a preview writes nothing"
    );

    // ---- Bill runs: the 08:00 hour closes at 10:00 ----
    // Only operators and the platform start bill runs.
    market
        .post(
            "/api/v1/billing/runs",
            &customer,
            json!({"as_of": "2026-03-27T10:00:00Z"}),
        )
        .problem(403, "Forbidden");
    // (The shared app's other tenants may have periods due too: only this instance is asserted.)
    market.bill_run("2026-03-27T09:59:59Z");
    assert!(market.bills(&customer, Some(&instance)).is_empty());
    let report = market.bill_run("2026-03-27T10:00:00Z");
    assert!(
        !report["failures"].to_string().contains(&instance),
        "{report}"
    );

    // ---- The customer's bill and the deduction ----
    let bills = market.bills(&customer, Some(&instance));
    assert_eq!(bills.len(), 1, "{bills:?}");
    let bill = &bills[0];
    assert!(str_of(&bill["id"]).starts_with("bill-"), "{bill}");
    assert_eq!(bill["instance_id"], instance.as_str(), "{bill}");
    assert_eq!(bill["period_start"], "2026-03-27T08:00:00Z");
    assert_eq!(bill["period_end"], "2026-03-27T09:00:00Z");
    assert_eq!(bill["test"], false);
    // The usage and an hour of the template's resources (2 × ecs at 0.80/h).
    assert_eq!(bill["product_fees"], "500.40");
    assert_eq!(bill["resource_fees"], "1.60");
    assert_eq!(bill["resource_lines"][0]["running_seconds"], 3600);
    assert_eq!(bill["total"], "502.00");
    let lines = bill["lines"].as_array().expect("lines");
    assert_eq!(lines.len(), 1, "{bill}");
    assert_eq!(lines[0]["code"], "Frequency", "{bill}");
    assert_eq!(lines[0]["tier_mode"], "graduated");
    assert_eq!(lines[0]["quantity"], "1001");
    assert_eq!(lines[0]["amount"], "500.40");
    let breakdown = lines[0]["breakdown"].as_array().expect("breakdown");
    assert_eq!(breakdown.len(), 2, "{bill}");
    assert_eq!(breakdown[0]["quantity"], "1000");
    assert_eq!(breakdown[0]["unit_price"], "0.5");
    assert_eq!(breakdown[0]["amount"], "500", "tier amounts are exact");
    assert_eq!(breakdown[0].get("amount_exact"), None, "500 is all of it");
    assert_eq!(breakdown[1]["quantity"], "1");
    assert_eq!(breakdown[1]["unit_price"], "0.4");
    assert_eq!(breakdown[1]["amount"], "0.4");
    let bill_id = str_of(&bill["id"]);
    let single = market
        .get(&format!("/api/v1/bills/{bill_id}"), &customer)
        .expect(200)
        .json();
    assert_eq!(&single, bill);
    // The provider sees the bill of its product; another customer does not.
    market
        .get(&format!("/api/v1/bills/{bill_id}"), &provider)
        .expect(200);
    let (_, stranger) = market.principal("customer", Some("individual"));
    market
        .get(&format!("/api/v1/bills/{bill_id}"), &stranger)
        .problem(404, "NotFound");

    let account = market
        .get("/api/v1/accounts/me", &customer)
        .expect(200)
        .json();
    assert_eq!(account["account"]["balance"], "498.00", "{account}");
    let last = &account["ledger"]["items"][0];
    assert_eq!(last["kind"], "bill", "{account}");
    assert_eq!(last["amount"], "-502.00");
    assert_eq!(last["reference"], bill_id.as_str());

    // A second run at the same instant bills nothing more.
    market.bill_run("2026-03-27T10:00:00Z");
    assert_eq!(market.bills(&customer, Some(&instance)), bills);
    assert_eq!(market.balance(&customer), "498.00");

    // ---- The review history, oldest first ----
    let history = market
        .get(&format!("/api/v1/reviews?product_id={id}"), &provider)
        .expect(200)
        .json();
    let transitions: Vec<(String, String, Value, Value)> = history["items"]
        .as_array()
        .expect("items")
        .iter()
        .flat_map(|review| review["history"].as_array().expect("history").clone())
        .map(|t| {
            (
                str_of(&t["from"]),
                str_of(&t["to"]),
                t["actor_id"].clone(),
                t["reason"].clone(),
            )
        })
        .collect();
    let (provider_json, admin) = (json!(provider_id), json!("usr-admin"));
    let expected = vec![
        ("draft", "category_review", &provider_json, Value::Null),
        (
            "category_review",
            "category_rejected",
            &admin,
            json!("Vector databases belong in AI"),
        ),
        (
            "category_rejected",
            "category_review",
            &provider_json,
            Value::Null,
        ),
        ("category_review", "self_test", &admin, Value::Null),
        ("self_test", "feature_review", &provider_json, Value::Null),
        ("feature_review", "published", &admin, json!("Looks good")),
    ];
    let expected: Vec<(String, String, Value, Value)> = expected
        .into_iter()
        .map(|(from, to, actor, reason)| (from.to_owned(), to.to_owned(), actor.clone(), reason))
        .collect();
    assert_eq!(transitions, expected, "{history}");
    // Another provider sees none of it.
    let (_, other) = market.principal("provider", None);
    let theirs = market
        .get(&format!("/api/v1/reviews?product_id={id}"), &other)
        .expect(200)
        .json();
    assert_eq!(theirs["items"], json!([]));

    // The listing is frozen after publication.
    market
        .put(
            &format!("{path}/general"),
            &provider,
            step_bodies()[1].1.clone(),
        )
        .problem(409, "ListingNotEditable");
}

/// The entry of product `id` in a catalog page.
fn catalog_entry<'a>(page: &'a Value, id: &str) -> Option<&'a Value> {
    page["items"].as_array()?.iter().find(|p| p["id"] == id)
}
