//! docs/RULES.md R15.1–R15.5 through the HTTP handlers: a published product's prices change by
//! version, without a new review; new orders get a version at once, existing instances from the
//! first period starting at or after its `effective_at` — after the notice period when a unit
//! price rises —, and every bill names the version it was priced with.

use serde_json::{Value, json};
use testkit::native::{ADMIN, TestApp};
use testkit::{Item, Market, at, step_bodies, str_of, usage};

/// The pricing step of a day product whose one item, `Frequency`, costs `unit_price` each.
fn frequency_at(unit_price: &str) -> Value {
    let mut pricing = step_bodies()
        .into_iter()
        .find(|(name, _)| *name == "pricing")
        .unwrap()
        .1;
    pricing["billing_period"] = json!("day");
    pricing["billable_items"] = json!([{"code": "Frequency", "name": "Frequency",
        "tier_mode": "graduated", "tiers": [{"up_to": null, "unit_price": unit_price}]}]);
    pricing
}

struct World {
    app: TestApp,
    provider: String,
    product: String,
}

/// A published day product at 0.50 a call, two days' notice for a rise, on the test clock at
/// 2026-03-27T08:00Z (Asia/Shanghai days start at 16:00 UTC).
fn world(notice_days: Option<&str>) -> World {
    let notice = notice_days.map(str::to_owned);
    let app = TestApp::with_config(move |name| match name {
        "allow_clock_override" => Some("true".to_owned()),
        "price_increase_notice_days" => notice.clone(),
        _ => None,
    });
    let item = Item {
        tiers: json!([{"up_to": null, "unit_price": "0.50"}]),
        ..Item::frequency()
    };
    let (provider, product) = app.product_with_items("day", &[item], true);
    World {
        app,
        provider,
        product,
    }
}

impl World {
    fn reprice(&self, unit_price: &str) -> Value {
        let view = self
            .app
            .put(
                &format!("/api/v1/products/{}/pricing", self.product),
                &self.provider,
                frequency_at(unit_price),
            )
            .expect(200)
            .json();
        view["pricing_version"].clone()
    }

    /// Ten calls in each Shanghai day from the one starting on March `first_day` at 16:00 UTC,
    /// for `days`: at 10:00 UTC the next morning.
    fn push_days(&self, instance: &str, first_day: u32, days: u32) {
        for d in first_day..first_day + days {
            let start = format!("2026-03-{:02}T10:00:00Z", d + 1);
            let end = format!("2026-03-{:02}T11:00:00Z", d + 1);
            self.app.set_now(at(&end) + chrono::Duration::minutes(1));
            self.app
                .push_usage(
                    &self.provider,
                    instance,
                    &[usage(&start, &end, "Frequency", 10)],
                )
                .expect(200);
        }
    }

    /// (period start, pricing version, product fees) of the instance's bills.
    fn bills(&self, token: &str, instance: &str) -> Vec<(String, i64, String)> {
        self.app
            .bills(token, Some(instance))
            .iter()
            .map(|b| {
                (
                    str_of(&b["period_start"]),
                    b["pricing_version"].as_i64().unwrap(),
                    str_of(&b["product_fees"]),
                )
            })
            .collect()
    }
}

#[test]
fn a_rise_reaches_an_instance_after_the_notice_and_a_new_order_at_once() {
    let w = world(Some("2"));
    let (_, early) = w.app.funded_customer("1000.00");
    let existing = w.app.order(&early, &w.product);
    w.app.set_now(at("2026-03-27T09:00:00Z"));
    let v2 = w.reprice("0.60");
    assert_eq!(v2["version"], 2);
    assert_eq!(v2["raises_price"], true);
    assert_eq!(
        v2["effective_at"], "2026-03-29T09:00:00Z",
        "two days' notice"
    );
    // New orders get it at once: the catalog and the quote say so.
    let catalog = w
        .app
        .get_anonymous(&format!("/api/v1/catalog/{}", w.product))
        .expect(200)
        .json();
    assert_eq!(catalog["pricing"]["pricing_version"], 2);
    assert_eq!(
        catalog["pricing"]["billable_items"][0]["tiers"][0]["unit_price"],
        "0.6"
    );
    let (_, late) = w.app.funded_customer("1000.00");
    let quote = w
        .app
        .post(
            "/api/v1/orders/quote",
            &late,
            json!({"product_id": w.product, "region": "cn-hangzhou"}),
        )
        .expect(200)
        .json();
    assert_eq!(quote["pricing_version"], 2);
    let newer = w.app.order(&late, &w.product);
    // The existing instance is told what comes and from which period.
    let shown = w
        .app
        .get(&format!("/api/v1/instances/{existing}"), &early)
        .expect(200)
        .json();
    assert_eq!(shown["pricing_version"], 1);
    assert_eq!(shown["pricing"]["version"], 1);
    assert_eq!(
        shown["pricing"]["upcoming"],
        json!({"version": 2, "effective_at": "2026-03-29T09:00:00Z",
               "applies_from": "2026-03-29T16:00:00Z", "raises_price": true})
    );
    let newer_shown = w
        .app
        .get(&format!("/api/v1/instances/{newer}"), &late)
        .expect(200)
        .json();
    assert_eq!(newer_shown["pricing"]["version"], 2);
    assert_eq!(newer_shown["pricing"]["upcoming"], Value::Null);

    w.app.set_now(at("2026-04-01T00:00:00Z"));
    w.push_days(&existing, 26, 5);
    w.push_days(&newer, 26, 5);
    w.app.bill_run("2026-04-02T00:00:00Z");
    assert_eq!(
        w.bills(&early, &existing),
        [
            ("2026-03-26T16:00:00Z".to_owned(), 1, "5.00".to_owned()),
            ("2026-03-27T16:00:00Z".to_owned(), 1, "5.00".to_owned()),
            ("2026-03-28T16:00:00Z".to_owned(), 1, "5.00".to_owned()),
            ("2026-03-29T16:00:00Z".to_owned(), 2, "6.00".to_owned()),
            ("2026-03-30T16:00:00Z".to_owned(), 2, "6.00".to_owned()),
        ],
        "the old price until the first day starting after the notice"
    );
    let newer_bills = w.bills(&late, &newer);
    assert_eq!(newer_bills.len(), 5);
    assert!(
        newer_bills
            .iter()
            .all(|(_, v, fees)| *v == 2 && fees == "6.00"),
        "{newer_bills:?}"
    );
}

#[test]
fn a_cut_reaches_existing_instances_from_the_next_period() {
    let w = world(None);
    let (_, customer) = w.app.funded_customer("1000.00");
    let instance = w.app.order(&customer, &w.product);
    w.app.set_now(at("2026-03-28T09:00:00Z"));
    let v2 = w.reprice("0.40");
    assert_eq!(v2["raises_price"], false);
    assert_eq!(v2["effective_at"], "2026-03-28T09:00:00Z");
    w.app.set_now(at("2026-03-30T00:00:00Z"));
    w.push_days(&instance, 26, 3);
    w.app.bill_run("2026-04-02T00:00:00Z");
    let bills: Vec<(i64, String)> = w
        .bills(&customer, &instance)
        .into_iter()
        .map(|(_, v, f)| (v, f))
        .collect();
    assert_eq!(
        bills,
        [
            (1, "5.00".to_owned()),
            (1, "5.00".to_owned()),
            (2, "4.00".to_owned()),
            (2, "0.00".to_owned()),
            (2, "0.00".to_owned())
        ],
        "the day running at the change keeps its price; the next one is cheaper"
    );
}

#[test]
fn the_notice_is_ninety_days_by_default_and_a_cut_after_a_rise_still_waits_for_it() {
    let w = world(None);
    let v2 = w.reprice("0.60");
    assert_eq!(v2["effective_at"], "2026-06-25T08:00:00Z");
    // Cheaper than the pending rise but dearer than what instances pay now: still a rise.
    let v3 = w.reprice("0.55");
    assert_eq!(v3["raises_price"], true);
    assert_eq!(v3["effective_at"], "2026-06-25T08:00:00Z");
    let v4 = w.reprice("0.45");
    assert_eq!(v4["raises_price"], false);
    let versions = w
        .app
        .get(
            &format!("/api/v1/products/{}/pricing/versions", w.product),
            &w.provider,
        )
        .expect(200)
        .json();
    let listed: Vec<(i64, bool)> = versions["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["version"].as_i64().unwrap(), v["raises_price"] == true))
        .collect();
    assert_eq!(listed, [(1, false), (2, true), (3, true), (4, false)]);
    assert_eq!(
        versions["items"][0]["pricing"]["billable_items"][0]["tiers"][0]["unit_price"], "0.5",
        "version 1 is the reviewed step"
    );
    // Operators read them too; another provider does not see the product.
    w.app
        .get(
            &format!("/api/v1/products/{}/pricing/versions", w.product),
            ADMIN,
        )
        .expect(200);
    let (_, other) = w.app.provider();
    w.app
        .get(
            &format!("/api/v1/products/{}/pricing/versions", w.product),
            &other,
        )
        .problem(404, "NotFound");
}

#[test]
fn a_price_change_keeps_the_period_and_the_codes_and_needs_no_review() {
    let w = world(None);
    let path = format!("/api/v1/products/{}/pricing", w.product);
    let (_, other) = w.app.provider();
    let before = w.app.snapshot();
    let mut hourly = frequency_at("0.50");
    hourly["billing_period"] = json!("hour");
    w.app
        .put(&path, &w.provider, hourly)
        .problem(409, "BillingPeriodLocked");
    let mut renamed = frequency_at("0.50");
    renamed["billable_items"][0]["code"] = json!("Calls");
    w.app
        .put(&path, &w.provider, renamed)
        .problem(409, "ItemCodesLocked");
    let mut invalid = frequency_at("0.50");
    invalid["billable_items"][0]["tiers"][0]["unit_price"] = json!("-1");
    w.app.put(&path, &w.provider, invalid).expect(400);
    w.app
        .put(&path, &other, frequency_at("0.10"))
        .problem(404, "NotFound");
    assert_eq!(w.app.snapshot(), before, "a refused change changes nothing");
    w.reprice("0.70");
    let product = w
        .app
        .get(&format!("/api/v1/products/{}", w.product), &w.provider)
        .expect(200)
        .json();
    assert_eq!(product["status"], "published", "no new review");
    assert_eq!(w.app.count("reviews"), 2);
}
