//! Host self-tests: a small probe app (fixtures/probe) pokes at every host interface, and these tests check
//! that the host answers as Spin does.
use spin_test_host::{ResponseExt, SpinApp};
use std::collections::BTreeMap;

const PROBE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/probe");

fn probe() -> SpinApp {
    SpinApp::builder(PROBE_DIR)
        .variable("token", "t0k3n")
        .load()
        .expect("probe app loads")
}

/// The probe's `key=value` lines.
fn lines(app: &SpinApp, path: &str) -> BTreeMap<String, String> {
    let response = app.get(path, None);
    assert_eq!(response.status(), 200, "{path}: {}", response.text());
    response
        .text()
        .lines()
        .filter_map(|line| {
            line.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
        })
        .collect()
}

#[test]
fn routes_resolve_as_in_spin_with_spin_headers() {
    let app = probe();
    let seen = lines(&app, "/probe/exact");
    assert_eq!(seen["spin-matched-route"], "/probe/exact");
    assert_eq!(seen["spin-path-info"], "");

    let seen = lines(&app, "/probe/deeper/a/b?x=1");
    assert_eq!(seen["spin-matched-route"], "/probe/deeper/...");
    assert_eq!(seen["spin-component-route"], "/probe/deeper");
    assert_eq!(seen["spin-path-info"], "/a/b");
    assert_eq!(
        seen["spin-full-url"],
        "http://127.0.0.1:3000/probe/deeper/a/b?x=1"
    );
    assert_eq!(seen["spin-base-path"], "/");
    assert!(seen.contains_key("spin-client-addr"));

    let seen = lines(&app, "/probe/exact/below");
    assert_eq!(seen["spin-matched-route"], "/probe/...");
    assert_eq!(seen["spin-path-info"], "/exact/below");

    // `/x/...` also matches `/x` itself.
    let seen = lines(&app, "/probe");
    assert_eq!(seen["spin-matched-route"], "/probe/...");

    let seen = lines(&app, "/items/42/parts/wheel");
    assert_eq!(seen["spin-path-match-id"], "42");
    assert_eq!(seen["spin-path-match-part"], "wheel");

    for unrouted in ["/", "/probex", "/items/42", "/bare/x"] {
        assert_eq!(app.get(unrouted, None).status(), 404, "{unrouted}");
    }
}

#[test]
fn stores_and_databases_need_a_grant() {
    let app = probe();
    assert_eq!(lines(&app, "/probe?kv=default")["kv:default"], "ok:1");
    // The store outlives the instance (one instance per request).
    assert_eq!(lines(&app, "/probe?kv=default")["kv:default"], "ok:2");
    assert_eq!(
        lines(&app, "/probe?kv=other")["kv:other"],
        "err:Error::AccessDenied"
    );
    assert_eq!(
        lines(&app, "/probe?sqlite=default")["sqlite:default"],
        "ok:opened"
    );
    assert_eq!(
        lines(&app, "/probe?sqlite=other")["sqlite:other"],
        "err:Error::AccessDenied"
    );

    // The same code without grants: Spin's access-denied for every label.
    assert_eq!(
        lines(&app, "/bare?kv=default")["kv:default"],
        "err:Error::AccessDenied"
    );
    assert_eq!(
        lines(&app, "/bare?sqlite=default")["sqlite:default"],
        "err:Error::AccessDenied"
    );
}

#[test]
fn sqlite_maps_values_and_persists_in_the_state_directory() {
    let app = probe();
    let seen = lines(
        &app,
        "/probe?sql5=SELECT%20?1%20AS%20i,%20?2%20AS%20r,%20?3%20AS%20s,%20?4%20AS%20b,%20?5%20AS%20n",
    );
    assert_eq!(
        seen["sql5:SELECT ?1 AS i, ?2 AS r, ?3 AS s, ?4 AS b, ?5 AS n"],
        r#"ok:["i", "r", "s", "b", "n"][Value::Integer(7), Value::Real(1.5), Value::Text("t"), Value::Blob([1, 2]), Value::Null]"#
    );
    // Rows written by one instance are there for the next: the same database file.
    lines(&app, "/probe?sql=CREATE%20TABLE%20t%20(x%20TEXT)");
    lines(&app, "/probe?sql=INSERT%20INTO%20t%20VALUES%20('kept')");
    assert_eq!(
        lines(&app, "/probe?sql=SELECT%20x%20FROM%20t")["sql:SELECT x FROM t"],
        r#"ok:["x"][Value::Text("kept")]"#
    );
    let seen = lines(&app, "/probe?sql=SELEKT%201");
    assert!(
        seen["sql:SELEKT 1"].starts_with("err:Error::Io("),
        "{seen:?}"
    );
    assert!(app.state_dir().join("sqlite_db.db").exists());
}

#[test]
fn variables_are_seen_only_through_the_component_mapping() {
    let app = probe();
    let seen = lines(&app, "/probe?var=token&var=greeting&var=region&var=Bad");
    assert_eq!(seen["var:token"], "ok:t0k3n");
    assert_eq!(seen["var:greeting"], "ok:hello cn-hangzhou!");
    // `region` is an application variable, but this component does not map it.
    assert!(
        seen["var:region"].starts_with("err:Error::Undefined("),
        "{seen:?}"
    );
    assert!(
        seen["var:Bad"].starts_with("err:Error::InvalidName("),
        "{seen:?}"
    );
    assert!(lines(&app, "/bare?var=token")["var:token"].starts_with("err:Error::Undefined("));
}

#[test]
fn variable_overrides_and_required_variables() {
    let app = SpinApp::builder(PROBE_DIR)
        .variable("token", "x")
        .variable("region", "eu-central-1")
        .load()
        .unwrap();
    assert_eq!(
        lines(&app, "/probe?var=greeting")["var:greeting"],
        "ok:hello eu-central-1!"
    );

    let missing = SpinApp::load(PROBE_DIR)
        .err()
        .expect("a required variable without value stops the app");
    assert!(format!("{missing:#}").contains("token"), "{missing:#}");
    let undeclared = SpinApp::builder(PROBE_DIR)
        .variable("token", "x")
        .variable("nope", "1")
        .load();
    assert!(undeclared.is_err());
}

#[test]
fn outbound_http_is_limited_to_allowed_hosts() {
    let app = probe();
    // Allowed (`http://127.0.0.1:*`), so the request is really attempted: nothing listens on port 1.
    let seen = lines(&app, "/probe?send=http://127.0.0.1:1/x");
    assert!(
        seen["send:http://127.0.0.1:1/x"].starts_with("err:Http(ErrorCode::Connection"),
        "{seen:?}"
    );
    for denied in [
        "http://localhost:1/x",
        "https://127.0.0.1:1/x",
        "http://example.com/",
    ] {
        let seen = lines(&app, &format!("/probe?send={denied}"));
        assert_eq!(
            seen[&format!("send:{denied}")],
            "err:Http(ErrorCode::HttpRequestDenied)",
            "{denied}"
        );
    }
    let seen = lines(&app, "/bare?send=http://127.0.0.1:1/x");
    assert_eq!(
        seen["send:http://127.0.0.1:1/x"],
        "err:Http(ErrorCode::HttpRequestDenied)"
    );
}

#[test]
fn outbound_http_reaches_an_allowed_local_server() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut stream, _) = listener.accept().unwrap();
        let mut buffer = [0u8; 4096];
        let _ = stream.read(&mut buffer).unwrap();
        stream
            .write_all(
                b"HTTP/1.1 418 I'm a teapot\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            )
            .unwrap();
    });
    // The `{{ upstream }}` template in allowed_outbound_hosts, expanded from the override.
    let app = SpinApp::builder(PROBE_DIR)
        .variable("token", "x")
        .variable("upstream", format!("localhost:{port}"))
        .load()
        .unwrap();
    let url = format!("http://localhost:{port}/tea");
    let seen = lines(&app, &format!("/probe?send={url}"));
    assert_eq!(seen[&format!("send:{url}")], "ok:418");
    server.join().unwrap();
}

#[test]
fn cron_events_reach_the_cron_component() {
    let app = probe();
    app.cron(1_700_000_000).unwrap();
    app.cron(1_700_000_300).unwrap();
    let seen = lines(
        &app,
        "/probe?sql=SELECT%20ts%20FROM%20cron_runs%20ORDER%20BY%20ts",
    );
    assert_eq!(
        seen["sql:SELECT ts FROM cron_runs ORDER BY ts"],
        r#"ok:["ts"][Value::Integer(1700000000)][Value::Integer(1700000300)]"#
    );
    let refused = app.cron(0).unwrap_err();
    assert!(
        format!("{refused:#}").contains("timestamp 0 refused"),
        "{refused:#}"
    );
}

#[test]
fn manifest_grants_and_routes_come_from_the_manifest_text() {
    let text = std::fs::read_to_string(format!("{PROBE_DIR}/spin.toml")).unwrap();
    let regranted = text.replace(
        "[component.bare]\nsource = \"target/wasm32-wasip1/release/http_probe.wasm\"",
        "[component.bare]\nsource = \"target/wasm32-wasip1/release/http_probe.wasm\"\nkey_value_stores = [\"default\"]",
    );
    assert_ne!(regranted, text);
    let app = SpinApp::builder(PROBE_DIR)
        .variable("token", "x")
        .manifest(regranted)
        .load()
        .unwrap();
    assert_eq!(lines(&app, "/bare?kv=default")["kv:default"], "ok:1");

    // Spin refuses to start when a component asks for a store it has no runtime config for.
    let unknown = text.replace(
        "key_value_stores = [\"default\"]",
        "key_value_stores = [\"default\", \"cache\"]",
    );
    assert!(
        SpinApp::builder(PROBE_DIR)
            .variable("token", "x")
            .manifest(unknown)
            .load()
            .is_err()
    );
}

#[test]
fn a_trapping_component_is_a_500() {
    let app = probe();
    let response = app.get("/probe?panic=1", None);
    assert_eq!(response.status(), 500);
    assert_eq!(response.text(), "Internal Server Error");
    // The next request gets a fresh instance and works.
    assert_eq!(app.get("/probe", None).status(), 200);
}

#[test]
fn requests_may_come_from_many_threads_at_once() {
    let app = probe();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..8)
            .map(|i| {
                scope.spawn({
                    let app = &app;
                    move || app.get(&format!("/items/{i}/parts/p"), None)
                })
            })
            .collect();
        for (i, worker) in workers.into_iter().enumerate() {
            let response = worker.join().unwrap();
            assert_eq!(response.status(), 200);
            assert!(
                response
                    .text()
                    .contains(&format!("spin-path-match-id={i}\n"))
            );
        }
    });
}

#[tokio::test]
async fn async_tests_can_use_request_async() {
    let app = probe();
    let request = spin_test_host::http::Request::get("/probe/exact")
        .body(Vec::new())
        .unwrap();
    let response = app.request_async(request).await;
    assert_eq!(response.status(), 200);
    assert!(response.text().contains("spin-matched-route=/probe/exact"));
}
