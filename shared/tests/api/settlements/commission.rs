//! Commission rates: a provider's own from a month on, the deployment's otherwise; a month
//! settles at the rate in force for it, and a written statement never changes.

use serde_json::{Value, json};
use testkit::native::ADMIN;
use testkit::{Market, str_of};

use super::{MARCH_CLOSES, world};

#[test]
fn a_rate_changed_after_closing_changes_no_written_statement() {
    let w = world();
    w.bill_within_march();
    w.at(MARCH_CLOSES);
    w.close("2026-03").expect(200);
    let path = format!("/api/v1/principals/{}/commission", w.provider_a.0);
    let set = w
        .app
        .put(&path, ADMIN, json!({"rate": "0.5"}))
        .expect(200)
        .json();
    assert_eq!(
        (&set["rate"], &set["source"]),
        (&json!("0.5"), &json!("provider"))
    );
    assert_eq!(
        w.statements(&w.provider_a.1, "2026-03")["items"][0]["commission"],
        "10.20"
    );
    // April is open: computed at the new rate. 23 hours of April 1st (Shanghai) are billed
    // (the last closes at 17:00 UTC); collected in April are those and March's last two.
    let april = &w.statements(&w.provider_a.1, "2026-04")["items"][0];
    assert_eq!(
        (&april["gross"], &april["collected"], &april["commission"]),
        (&json!("23.00"), &json!("25.00"), &json!("12.50"))
    );
    // Back to the deployment's.
    let reset = w
        .app
        .put(&path, ADMIN, json!({"rate": null}))
        .expect(200)
        .json();
    assert_eq!(
        (&reset["rate"], &reset["source"]),
        (&json!("0.1"), &json!("default"))
    );
    let own = w.app.get(&path, &w.provider_a.1).expect(200).json();
    assert_eq!(own["rate"], "0.1");
}

#[test]
fn a_commission_rate_is_a_fraction_below_one() {
    let w = world();
    let path = format!("/api/v1/principals/{}/commission", w.provider_a.0);
    let (customer, _) = w.app.customer("individual");
    let before = w.app.snapshot();
    for bad in ["1", "1.5", "-0.1", "0.1234567", "ten percent", ""] {
        w.app
            .put(&path, ADMIN, json!({ "rate": bad }))
            .problem(400, "InvalidValue");
    }
    // Schemathesis found `[null, null]` (the fields' values in a row) taken for no rate.
    w.app
        .put(&path, ADMIN, json!([null, null]))
        .problem(400, "InvalidJson");
    w.app
        .put(&path, &w.provider_a.1, json!({"rate": "0"}))
        .problem(403, "Forbidden");
    w.app
        .put(
            &format!("/api/v1/principals/{customer}/commission"),
            ADMIN,
            json!({"rate": "0.2"}),
        )
        .problem(404, "NotFound");
    assert_eq!(w.app.snapshot(), before);
}

#[test]
fn a_providers_statements_and_rate_are_its_own() {
    let w = world();
    w.at(MARCH_CLOSES);
    let closed = w.close("2026-03").expect(200).json();
    let statement_of = |provider: &str| {
        closed["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["provider_id"] == provider)
            .map(|s| str_of(&s["id"]))
            .unwrap()
    };
    let (a, b) = (statement_of(&w.provider_a.0), statement_of(&w.provider_b.0));
    // A sees its own, only: asking for B's by id or by filter shows nothing of B.
    let own = w.statements(&w.provider_a.1, "2026-03");
    assert_eq!(own["items"].as_array().unwrap().len(), 1);
    assert_eq!(own["items"][0]["id"], a.as_str());
    let filtered = w
        .app
        .get(
            &format!(
                "/api/v1/settlements?month=2026-03&provider_id={}",
                w.provider_b.0
            ),
            &w.provider_a.1,
        )
        .expect(200)
        .json();
    assert_eq!(filtered["items"][0]["provider_id"], w.provider_a.0.as_str());
    w.app
        .get(&format!("/api/v1/settlements/{b}"), &w.provider_a.1)
        .problem(404, "NotFound");
    w.app
        .get(
            &format!("/api/v1/principals/{}/commission", w.provider_b.0),
            &w.provider_a.1,
        )
        .problem(404, "NotFound");
    // The operator sees every provider's, or one's.
    assert_eq!(
        w.statements(ADMIN, "2026-03")["items"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let one = w
        .app
        .get(
            &format!(
                "/api/v1/settlements?month=2026-03&provider_id={}",
                w.provider_b.0
            ),
            ADMIN,
        )
        .expect(200)
        .json();
    assert_eq!(one["items"][0]["id"], b.as_str());
    // A statement of nothing is for a provider that earned nothing, not for anyone else.
    let (customer_id, customer) = w.app.customer("individual");
    for stranger in [customer_id.as_str(), "usr-nobody"] {
        for month in ["2026-03", "2026-04"] {
            w.app
                .get(
                    &format!("/api/v1/settlements?month={month}&provider_id={stranger}"),
                    ADMIN,
                )
                .problem(404, "NotFound");
        }
    }
    // Customers see none.
    w.app
        .get("/api/v1/settlements?month=2026-03", &customer)
        .problem(403, "Forbidden");
    w.app
        .get(&format!("/api/v1/settlements/{a}"), &customer)
        .problem(403, "Forbidden");
}

#[test]
fn a_month_settles_at_the_rate_in_force_for_it() {
    let w = world();
    let path = format!("/api/v1/principals/{}/commission", w.provider_a.0);
    // On April 1st (Shanghai) an operator sets 20% "from April on": March stays at 10%.
    w.at("2026-03-31T17:00:00Z");
    let set = w
        .app
        .put(&path, ADMIN, json!({"rate": "0.2"}))
        .expect(200)
        .json();
    assert_eq!(
        (&set["month"], &set["rate"], &set["source"]),
        (&json!("2026-04"), &json!("0.2"), &json!("provider"))
    );
    assert_eq!(set["rates"][0]["effective_from"], "2026-04");
    assert_eq!(
        w.statements(&w.provider_a.1, "2026-03")["items"][0]["rate"],
        "0.1"
    );
    assert_eq!(
        w.statements(&w.provider_a.1, "2026-04")["items"][0]["rate"],
        "0.2"
    );
    // From June on, back to the deployment's; May is still at 20%.
    w.app
        .put(
            &path,
            ADMIN,
            json!({"rate": null, "effective_from": "2026-06"}),
        )
        .expect(200);
    assert_eq!(
        w.statements(&w.provider_a.1, "2026-05")["items"][0]["rate"],
        "0.2"
    );
    assert_eq!(
        w.statements(&w.provider_a.1, "2026-06")["items"][0]["rate"],
        "0.1"
    );
    w.bill_within_march();
    w.at(MARCH_CLOSES);
    let closed = w.close("2026-03").expect(200).json();
    let a = closed["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["provider_id"] == w.provider_a.0.as_str())
        .unwrap();
    assert_eq!(
        (&a["rate"], &a["commission"]),
        (&json!("0.1"), &json!("10.20"))
    );
    // A written month cannot change any more, nor one before it.
    let before = w.app.snapshot();
    for month in ["2026-03", "2026-01"] {
        w.app
            .put(
                &path,
                ADMIN,
                json!({"rate": "0.3", "effective_from": month}),
            )
            .problem(409, "MonthClosed");
    }
    for bad in ["2026-13", "April", ""] {
        w.app
            .put(&path, ADMIN, json!({"rate": "0.3", "effective_from": bad}))
            .problem(400, "InvalidValue");
    }
    assert_eq!(w.app.snapshot(), before);
    // The history, oldest month first; the provider reads its own.
    let own = w.app.get(&path, &w.provider_a.1).expect(200).json();
    let months: Vec<&Value> = own["rates"].as_array().unwrap().iter().collect();
    assert_eq!(months.len(), 2, "{own}");
    assert_eq!(
        (&months[0]["effective_from"], &months[0]["rate"]),
        (&json!("2026-04"), &json!("0.2"))
    );
    assert_eq!(
        (&months[1]["effective_from"], &months[1]["rate"]),
        (&json!("2026-06"), &Value::Null)
    );
    assert_eq!(
        (&own["month"], &own["rate"]),
        (&json!("2026-04"), &json!("0.2"))
    );
}
