//! Periods that cannot be billed: each holds up its own provider's month only, until an
//! operator writes it off (once) or releases its instance.

use serde_json::json;
use testkit::native::ADMIN;
use testkit::{Item, Market};

use super::{MARCH_CLOSES, Unbillable, product, unbillable, world, write_off};

#[test]
fn an_unbillable_instance_holds_up_its_own_providers_month_only() {
    let w = world();
    let Unbillable {
        provider_id: blocked,
        product: blocked_product,
        instance,
        ..
    } = unbillable(&w, "2026-03-31T15:00:00Z", "2026-03-31T15:30:00Z");
    w.at(MARCH_CLOSES);
    let closing = w.close("2026-03").expect(200).json();
    assert_eq!(closing["statements_written"], 2, "{closing}");
    assert!(
        !closing["closed"].to_string().contains(&blocked),
        "{closing}"
    );
    assert_eq!(
        closing["open"][0]["provider_id"],
        blocked.as_str(),
        "{closing}"
    );
    let blocking = &closing["open"][0]["blocking"];
    assert_eq!(blocking.as_array().unwrap().len(), 1, "{closing}");
    assert_eq!(blocking[0]["instance_id"], instance.as_str());
    assert_eq!(blocking[0]["period_start"], "2026-03-31T15:00:00Z");
    assert!(
        blocking[0]["reason"]
            .as_str()
            .unwrap()
            .contains("unreachable"),
        "{closing}"
    );
    // Every other provider's statement is written; the blocked one's is live.
    assert_eq!(w.statements(&w.provider_a.1, "2026-03")["status"], "closed");
    let march = w.statements(ADMIN, "2026-03");
    assert_eq!(march["status"], "open");
    assert_eq!(
        w.app
            .get(
                &format!("/api/v1/settlements?month=2026-03&provider_id={blocked}"),
                ADMIN
            )
            .expect(200)
            .json()["items"][0]["status"],
        "open"
    );
    // Closing again changes nothing while it is blocked.
    assert_eq!(
        w.close("2026-03").expect(200).json()["statements_written"],
        0
    );

    // An operator writes the period off: the provider's month closes, with nothing to pay and
    // the write-off on its statement.
    write_off(&w, ADMIN, &instance, "2026-03-31T15:00:00Z").expect(201);
    let closing = w.close("2026-03").expect(200).json();
    assert_eq!(closing["statements_written"], 1, "{closing}");
    assert_eq!(closing["open"], json!([]));
    let statement = w
        .app
        .get(
            &format!("/api/v1/settlements?month=2026-03&provider_id={blocked}"),
            ADMIN,
        )
        .expect(200)
        .json();
    let s = &statement["items"][0];
    assert_eq!(
        (&s["status"], &s["gross"]),
        (&json!("closed"), &json!("0.00"))
    );
    assert_eq!(s["write_off_count"], 1);
    let p = product(s, &blocked_product);
    assert_eq!(p["write_offs"]["count"], 1);
    assert_eq!(
        p["write_offs"]["periods"][0],
        json!({"instance_id": instance, "period_start": "2026-03-31T15:00:00Z",
               "reason": "its Prometheus answers nothing"})
    );
    assert_eq!(statement["status"], "closed");
    assert_eq!(w.statements(ADMIN, "2026-03")["status"], "closed");
}

#[test]
fn test_instances_never_hold_up_a_month() {
    let w = world();
    let unreachable = Item::prometheus_requests("http://127.0.0.1:1", "0.01");
    let (tester, product) = w.app.product_with_items("hour", &[unreachable], false);
    w.app.order(&tester, &product);
    w.at(MARCH_CLOSES);
    let report = w.app.bill_run(MARCH_CLOSES);
    assert!(
        !report["failures"].as_array().unwrap().is_empty(),
        "{report}"
    );
    let closing = w.close("2026-03").expect(200).json();
    assert_eq!(closing["open"], json!([]), "{closing}");
    assert_eq!(w.statements(ADMIN, "2026-03")["status"], "closed");
}

#[test]
fn a_write_off_closes_one_due_period_without_a_bill_once() {
    let w = world();
    let u = unbillable(&w, "2026-03-31T14:00:00Z", "2026-03-31T15:30:00Z");
    let instance = u.instance.clone();
    let (_, stranger) = w.app.provider();
    w.at("2026-03-31T16:30:00Z");
    let path = format!("/api/v1/instances/{instance}/write-offs");
    let before = w.app.snapshot();
    // Operators only, a reason required, only the next period to bill once it has closed.
    for token in [&u.provider, &u.customer] {
        write_off(&w, token, &instance, "2026-03-31T14:00:00Z").problem(403, "Forbidden");
    }
    w.app
        .post(
            &path,
            ADMIN,
            json!({"period_start": "2026-03-31T14:00:00Z"}),
        )
        .problem(400, "Required");
    w.app
        .post(
            &path,
            ADMIN,
            json!({"period_start": "2026-03-31T14:00:00Z", "reason": "x".repeat(501)}),
        )
        .problem(400, "TooLong");
    write_off(&w, ADMIN, &instance, "2026-03-31T14:30:00Z").problem(400, "InvalidPeriodStart");
    // The 14:00 hour closed at 16:00, the 15:00 hour closes at 17:00.
    write_off(&w, ADMIN, &instance, "2026-03-31T15:00:00Z").problem(409, "PeriodNotDue");
    write_off(&w, ADMIN, "si-missing", "2026-03-31T14:00:00Z").problem(404, "NotFound");
    assert_eq!(
        w.app.snapshot(),
        before,
        "a refused write-off writes nothing"
    );

    let first = write_off(&w, ADMIN, &instance, "2026-03-31T14:00:00Z")
        .expect(201)
        .json();
    assert!(first["id"].as_str().unwrap().starts_with("wo-"), "{first}");
    assert_eq!(
        (
            &first["period_start"],
            &first["period_end"],
            &first["written_off_by"]
        ),
        (
            &json!("2026-03-31T14:00:00Z"),
            &json!("2026-03-31T15:00:00Z"),
            &json!("usr-admin")
        )
    );
    assert_eq!(first["written_off_at"], "2026-03-31T16:30:00Z");
    // Again: the same record, nothing more.
    let again = write_off(&w, ADMIN, &instance, "2026-03-31T14:00:00Z")
        .expect(200)
        .json();
    assert_eq!(again, first);
    assert_eq!(w.app.count("write_offs"), 1);
    // The 15:00 hour is next, once closed; the instance was released in it, so it is the last.
    write_off(&w, ADMIN, &instance, "2026-03-31T15:00:00Z").problem(409, "PeriodNotDue");
    w.at("2026-03-31T17:00:00Z");
    write_off(&w, ADMIN, &instance, "2026-03-31T15:00:00Z").expect(201);
    write_off(&w, ADMIN, &instance, "2026-03-31T16:00:00Z").problem(409, "PeriodNotDue");
    // Nothing was billed or deducted; a run finds nothing left of it.
    let report = w.app.bill_run("2026-03-31T17:00:00Z");
    assert!(!report.to_string().contains(&instance), "{report}");
    assert!(w.app.bills(ADMIN, Some(&instance)).is_empty());
    // A billed period cannot be written off.
    let billed = w.app.bills(ADMIN, None)[0].clone();
    write_off(
        &w,
        ADMIN,
        billed["instance_id"].as_str().unwrap(),
        billed["period_start"].as_str().unwrap(),
    )
    .problem(409, "PeriodAlreadyBilled");

    // The instance's customer, its provider and operators read them; nobody else.
    for token in [&u.customer, &u.provider, &ADMIN.to_owned()] {
        let listed = w.app.get(&path, token).expect(200).json();
        assert_eq!(listed["items"].as_array().unwrap().len(), 2);
        assert_eq!(listed["items"][0], first);
    }
    w.app.get(&path, &stranger).problem(404, "NotFound");
    let page = w
        .app
        .get(&format!("{path}?limit=1"), ADMIN)
        .expect(200)
        .json();
    assert_eq!(page["next_cursor"], first["id"]);
}

#[test]
fn operators_release_any_instance_and_only_release_it() {
    let w = world();
    let (_, customer) = w.app.funded_customer("10.00");
    let instance = w.app.order(&customer, &w.product_a);
    let action = |token: &str, action: &str| {
        w.app.post(
            &format!("/api/v1/instances/{instance}/actions"),
            token,
            json!({ "action": action }),
        )
    };
    action(ADMIN, "stop").problem(403, "Forbidden");
    action(&w.provider_a.1, "release").problem(403, "Forbidden");
    let released = action(ADMIN, "release").expect(200).json();
    assert_eq!(released["status"], "released");
}

/// An instance whose stored terms no longer parse is written off without them: its period's
/// kind and boundaries come from its billing cursor.
#[test]
fn a_period_whose_terms_no_longer_parse_is_written_off_all_the_same() {
    let w = world();
    let u = unbillable(&w, "2026-03-31T15:00:00Z", "2026-03-31T15:30:00Z");
    w.app.break_step(&u.product, "pricing");
    w.at(MARCH_CLOSES);
    let closing = w.close("2026-03").expect(200).json();
    let reason = &closing["open"][0]["blocking"][0]["reason"];
    assert!(reason.as_str().unwrap().contains("terms"), "{closing}");
    write_off(&w, ADMIN, &u.instance, "2026-03-31T15:00:00Z").expect(201);
    let closing = w.close("2026-03").expect(200).json();
    assert_eq!(closing["open"], json!([]), "{closing}");
    assert!(closing["closed"].to_string().contains(&u.provider_id));
}
