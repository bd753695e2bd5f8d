//! Every store grant in spin.toml is needed: without it the component fails as it would under Spin.
mod common;

use common::{ADMIN_TOKEN, Expect, load, manifest, png, service_body, str_of};
use serde_json::json;
use spin_test_host::{ResponseExt, SpinApp};

/// spin.toml without `key` in `[component.<id>]`.
fn without(id: &str, key: &str) -> String {
    let mut table: toml::Table = manifest().parse().expect("spin.toml parses");
    let component = table["component"][id]
        .as_table_mut()
        .expect("a component table");
    assert!(component.remove(key).is_some(), "{id} has no {key}");
    toml::to_string(&table).expect("serializes")
}

/// A request through `id` that needs its SQLite database: Ok(status) or the cron error.
fn use_the_database(app: &SpinApp, id: &str) -> Result<u16, String> {
    let get = |path: &str| Ok(app.get(path, Some(ADMIN_TOKEN)).status().as_u16());
    match id {
        "identity" => get("/api/v1/principals"),
        "listings" => get("/api/v1/products"),
        "reviews" => get("/api/v1/reviews"),
        "orders" => get("/api/v1/bills"),
        "metering" => get("/api/v1/metering/usage?instance_id=si-missing"),
        "billing" => app
            .cron(1_774_598_400)
            .map(|()| 200)
            .map_err(|e| format!("{e:#}")),
        other => panic!("grants.rs does not know how {other:?} uses its database: add it"),
    }
}

#[test]
fn every_sqlite_grant_is_needed() {
    let table: toml::Table = manifest().parse().expect("spin.toml parses");
    let granted: Vec<String> = table["component"]
        .as_table()
        .expect("components")
        .iter()
        .filter(|(_, c)| c.get("sqlite_databases").is_some())
        .map(|(id, _)| id.clone())
        .collect();
    assert!(granted.len() >= 6, "{granted:?}");
    let app = load(None);
    for id in &granted {
        let outcome = use_the_database(&app, id);
        assert!(
            matches!(outcome, Ok(200 | 404)),
            "{id} with its grant: {outcome:?}"
        );
    }
    for id in &granted {
        let app = load(Some(without(id, "sqlite_databases")));
        match use_the_database(&app, id) {
            Ok(status) => assert!(
                (500..600).contains(&status),
                "{id} without its SQLite grant answered {status}"
            ),
            // The cron event failed, as it must (the component reports the error, leaking nothing).
            Err(message) => assert!(!message.contains("denied"), "{id}: {message}"),
        }
    }
}

#[test]
fn media_need_the_key_value_grant() {
    let app = load(Some(without("listings", "key_value_stores")));
    let created = app
        .post_json(
            "/api/v1/principals",
            Some(ADMIN_TOKEN),
            &json!({"role": "provider", "name": "p"}),
        )
        .expect_status(201)
        .json();
    let provider = str_of(&created["token"]);
    let service = app
        .post_json("/api/v1/services", Some(&provider), &service_body())
        .expect_status(201)
        .json();
    let product = app
        .post_json(
            "/api/v1/products",
            Some(&provider),
            &json!({"service_id": service["id"]}),
        )
        .expect_status(201)
        .json();
    let logo = format!("/api/v1/products/{}/media/logo", str_of(&product["id"]));
    let response = app.put_bytes(&logo, Some(&provider), "image/png", png(290, 290, 64));
    assert!(
        response.status().is_server_error(),
        "{}: {}",
        response.status(),
        response.text()
    );
    // A 5xx leaks nothing and stores nothing.
    assert!(!response.text().contains("access"), "{}", response.text());
    let view = app
        .get(
            &format!("/api/v1/products/{}", str_of(&product["id"])),
            Some(&provider),
        )
        .expect_status(200)
        .json();
    assert_eq!(
        view["completeness"]["general"]["missing"],
        json!(["general", "media.logo", "media.user_guide"]),
        "{view}"
    );
}
