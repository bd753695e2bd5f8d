//! The API test harness: the domain's HTTP handlers over the rusqlite adapter, with a new
//! connection per request as Spin opens them, and helpers to show that a refused request
//! changed nothing.

use chrono::{DateTime, Utc};
use http::Request;
use nestmarket::api::{self, Api};
use nestmarket::platform::config::Config;
use nestmarket::platform::outbound::native::NativeOutbound;
use nestmarket::platform::storage::native::NativeBackend;
use nestmarket::platform::storage::{Backend, Storage, Value};
use serde_json::{Value as Json, json};

#[path = "fixtures.rs"]
mod fixtures;
pub(crate) use fixtures::*;

pub(crate) const ADMIN: &str = "test-admin-token-0123456789";

pub(crate) struct TestApp {
    _dir: tempfile::TempDir,
    pub backend: NativeBackend,
    pub config: Config,
    /// The wall clock the handlers see; tests move it with [`TestApp::set_now`].
    now: std::sync::Mutex<DateTime<Utc>>,
}

pub(crate) struct TestResponse {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
}

impl TestResponse {
    pub(crate) fn json(&self) -> Json {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// The problem `code` of an error response.
    pub(crate) fn code(&self) -> String {
        self.json()["code"].as_str().unwrap_or_default().to_owned()
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    #[track_caller]
    pub(crate) fn expect(self, status: u16) -> Self {
        assert_eq!(
            self.status,
            status,
            "unexpected status; body: {}",
            String::from_utf8_lossy(&self.body)
        );
        self
    }

    /// Asserts a problem response with this status and code.
    #[track_caller]
    pub(crate) fn problem(self, status: u16, code: &str) -> Json {
        let r = self.expect(status);
        assert_eq!(r.header("content-type"), Some("application/problem+json"));
        assert_eq!(r.code(), code, "body: {}", String::from_utf8_lossy(&r.body));
        r.json()
    }
}

/// Which component `spin.toml` routes a path to (the wasm test host checks the manifest itself).
fn api_for(path: &str) -> Api {
    let rest = path.trim_start_matches("/api/v1/");
    match rest.split(['/', '?']).next().unwrap_or_default() {
        "principals" | "me" => Api::Identity,
        "reviews" => Api::Reviews,
        "metering" => Api::Metering,
        "orders" | "instances" | "accounts" | "bills" | "billing" => Api::Orders,
        _ => Api::Listings,
    }
}

/// The `field` of each error of a problem document, in order.
pub(crate) fn error_fields(problem: &Json) -> Vec<&str> {
    problem_errors(problem, "field")
}

/// The `message` of each error of a problem document, in order.
pub(crate) fn error_messages(problem: &Json) -> Vec<&str> {
    problem_errors(problem, "message")
}

fn problem_errors<'a>(problem: &'a Json, key: &str) -> Vec<&'a str> {
    problem["errors"]
        .as_array()
        .expect("a problem document lists its errors")
        .iter()
        .map(|e| {
            e[key]
                .as_str()
                .expect("every error names its field and message")
        })
        .collect()
}

pub(crate) fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339).unwrap().to_utc()
}

impl TestApp {
    pub(crate) fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap()
    }

    pub(crate) fn set_now(&self, now: DateTime<Utc>) {
        *self.now.lock().unwrap() = now;
    }

    pub(crate) fn new() -> Self {
        Self::with_config(|_| None)
    }

    pub(crate) fn with_config(overrides: impl Fn(&str) -> Option<String>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let backend = NativeBackend::new(dir.path().join("sqlite_db.db"));
        let config = Config::from_variables(|name| {
            overrides(name).or_else(|| (name == "admin_token").then(|| ADMIN.to_owned()))
        })
        .unwrap();
        // Migrate up front, so that snapshots taken before the first request see every table.
        Storage::new(backend.clone()).db().unwrap();
        Self {
            _dir: dir,
            backend,
            config,
            now: std::sync::Mutex::new(at("2026-03-27T08:00:00Z")),
        }
    }

    pub(crate) fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> TestResponse {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        // A fresh Storage per request: a new connection, like a fresh Spin instance.
        let storage = Storage::new(self.backend.clone());
        let resp = api::handle(
            api_for(path),
            req.body(body).unwrap(),
            &storage,
            &NativeOutbound,
            &self.config,
            self.now(),
        );
        let (parts, body) = resp.into_parts();
        TestResponse {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
        }
    }

    pub(crate) fn get(&self, path: &str, token: &str) -> TestResponse {
        self.call("GET", path, Some(token), None, Vec::new())
    }

    pub(crate) fn post(&self, path: &str, token: &str, body: Json) -> TestResponse {
        self.call(
            "POST",
            path,
            Some(token),
            Some("application/json"),
            body.to_string().into_bytes(),
        )
    }

    pub(crate) fn put(&self, path: &str, token: &str, body: Json) -> TestResponse {
        self.call(
            "PUT",
            path,
            Some(token),
            Some("application/json"),
            body.to_string().into_bytes(),
        )
    }

    pub(crate) fn put_bytes(
        &self,
        path: &str,
        token: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> TestResponse {
        self.call("PUT", path, Some(token), Some(content_type), body)
    }

    pub(crate) fn delete(&self, path: &str, token: &str) -> TestResponse {
        self.call("DELETE", path, Some(token), None, Vec::new())
    }

    /// Creates a principal through the API and returns (id, token).
    pub(crate) fn principal(&self, role: &str, account_type: Option<&str>) -> (String, String) {
        let mut body = json!({ "role": role, "name": format!("a {role}") });
        if let Some(a) = account_type {
            body["account_type"] = json!(a);
        }
        let created = self
            .post("/api/v1/principals", ADMIN, body)
            .expect(201)
            .json();
        (
            created["principal"]["id"].as_str().unwrap().to_owned(),
            created["token"].as_str().unwrap().to_owned(),
        )
    }

    pub(crate) fn provider(&self) -> (String, String) {
        self.principal("provider", None)
    }

    /// Every row of every table plus the number of blobs: equal snapshots mean nothing changed.
    pub(crate) fn snapshot(&self) -> String {
        let db = self.backend.open_db().unwrap();
        let tables = db
            .execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name",
                &[],
            )
            .unwrap();
        let mut out = format!("kv blobs: {}\n", self.backend.kv_len());
        for t in tables {
            let name = t.text(0).unwrap();
            let rows = db
                .execute(&format!("SELECT * FROM \"{name}\" ORDER BY rowid"), &[])
                .unwrap_or_default();
            out.push_str(&format!("{name}: {rows:?}\n"));
        }
        out
    }

    pub(crate) fn count(&self, table: &str) -> i64 {
        let db = self.backend.open_db().unwrap();
        match db
            .execute(&format!("SELECT COUNT(*) FROM {table}"), &[])
            .unwrap()[0]
            .0[0]
        {
            Value::Integer(n) => n,
            ref v => panic!("count returned {v:?}"),
        }
    }
}

impl TestApp {
    /// A provider with a service and its draft product: (provider token, service id, product id).
    pub(crate) fn draft_product(&self) -> (String, String, String) {
        let (_, token) = self.provider();
        let service = self
            .post("/api/v1/services", &token, service_body())
            .expect(201)
            .json();
        let service_id = service["id"].as_str().unwrap().to_owned();
        let product = self
            .post(
                "/api/v1/products",
                &token,
                json!({ "service_id": service_id }),
            )
            .expect(201)
            .json();
        (
            token,
            service_id,
            product["id"].as_str().unwrap().to_owned(),
        )
    }

    /// Writes the product's status directly, for rules that depend on review states.
    pub(crate) fn force_status(&self, product_id: &str, status: &str) {
        let db = self.backend.open_db().unwrap();
        db.execute(
            "UPDATE products SET status = ? WHERE id = ?",
            &[status.into(), product_id.into()],
        )
        .unwrap();
    }
}

/// A billable item of a test product: its code, tier mode, tiers and reporting method.
pub(crate) struct Item {
    pub code: &'static str,
    pub tier_mode: &'static str,
    pub tiers: Json,
    pub reporting: Json,
}

impl Item {
    /// The seed-like graduated schedule: 0.5 up to 1,000, 0.4 up to 5,000, 0.2 above.
    pub(crate) fn frequency() -> Self {
        Item {
            code: "Frequency",
            tier_mode: "graduated",
            tiers: json!([{"up_to": "1000", "unit_price": "0.5"}, {"up_to": "5000", "unit_price": "0.4"},
                          {"up_to": null, "unit_price": "0.2"}]),
            reporting: json!({"method": "service_provider"}),
        }
    }
}

impl TestApp {
    /// A draft product whose five steps ([`step_bodies`], passed through `adjust`) and required
    /// media are written: ready for category review. Returns (provider token, service, product).
    pub(crate) fn complete_product_with(
        &self,
        adjust: impl Fn(&str, &mut Json),
    ) -> (String, String, String) {
        let (token, service_id, id) = self.draft_product();
        for (name, mut body) in step_bodies() {
            adjust(name, &mut body);
            self.put(&format!("/api/v1/products/{id}/{name}"), &token, body)
                .expect(200);
        }
        let media = format!("/api/v1/products/{id}/media");
        self.put_bytes(
            &format!("{media}/logo"),
            &token,
            "image/png",
            png(290, 290, 64),
        )
        .expect(200);
        self.put_bytes(
            &format!("{media}/user_guide"),
            &token,
            "application/pdf",
            pdf(64),
        )
        .expect(200);
        (token, service_id, id)
    }

    pub(crate) fn complete_product(&self) -> (String, String, String) {
        self.complete_product_with(|_, _| {})
    }

    /// Submits the product for `stage` review and returns the review id.
    pub(crate) fn submit(&self, token: &str, product_id: &str, stage: &str) -> String {
        let r = self
            .post(
                "/api/v1/reviews",
                token,
                json!({"product_id": product_id, "stage": stage}),
            )
            .expect(201)
            .json();
        r["id"].as_str().unwrap().to_owned()
    }

    pub(crate) fn decide(
        &self,
        review_id: &str,
        decision: &str,
        reason: Option<&str>,
    ) -> TestResponse {
        let mut body = json!({ "decision": decision });
        if let Some(r) = reason {
            body["reason"] = json!(r);
        }
        self.post(
            &format!("/api/v1/reviews/{review_id}/decision"),
            ADMIN,
            body,
        )
    }

    /// Category review approved: the product is in `self_test`.
    fn pass_category_review(&self, token: &str, id: &str) {
        let review = self.submit(token, id, "category");
        self.decide(&review, "approve", None).expect(200);
    }

    /// Sets each item's reporting method and associates it with the standard template, then
    /// passes the feature review: the product is published.
    fn configure_and_publish(&self, token: &str, id: &str, items: &[Item], publish: bool) {
        for i in items {
            let item = format!("/api/v1/products/{id}/billable-items/{}", i.code);
            self.put(&format!("{item}/reporting"), token, i.reporting.clone())
                .expect(200);
            self.put(
                &format!("{item}/associations"),
                token,
                json!({"templates": ["tpl-standard"]}),
            )
            .expect(200);
        }
        if publish {
            let review = self.submit(token, id, "feature");
            self.decide(&review, "approve", None).expect(200);
        }
    }

    /// A product taken through category review into `self_test`.
    pub(crate) fn self_test_product(&self) -> (String, String, String) {
        let (token, service_id, id) = self.complete_product();
        self.pass_category_review(&token, &id);
        (token, service_id, id)
    }

    /// Like [`TestApp::published_product`], with the steps adjusted first.
    pub(crate) fn published_product_with(
        &self,
        adjust: impl Fn(&str, &mut Json),
    ) -> (String, String, String) {
        let (token, service_id, id) = self.complete_product_with(adjust);
        self.pass_category_review(&token, &id);
        self.configure_and_publish(&token, &id, &[Item::frequency()], true);
        (token, service_id, id)
    }

    /// The listing of [`step_bodies`], its `Frequency` item reported by the provider, published.
    pub(crate) fn published_product(&self) -> (String, String, String) {
        self.published_product_with(|_, _| {})
    }

    /// A product with these items and billing period, taken through both reviews (or left in
    /// `self_test` when `publish` is false). Returns (provider token, product id).
    pub(crate) fn product_with_items(
        &self,
        period: &str,
        items: &[Item],
        publish: bool,
    ) -> (String, String) {
        let billable_items: Vec<Json> = items
            .iter()
            .map(|i| json!({"code": i.code, "name": i.code, "tier_mode": i.tier_mode, "tiers": i.tiers}))
            .collect();
        let (token, _, id) = self.complete_product_with(|name, body| {
            if name == "pricing" {
                body["billing_period"] = json!(period);
                body["billable_items"] = json!(billable_items);
            }
        });
        self.pass_category_review(&token, &id);
        self.configure_and_publish(&token, &id, items, publish);
        (token, id)
    }

    pub(crate) fn customer(&self, account_type: &str) -> (String, String) {
        self.principal("customer", Some(account_type))
    }

    /// Orders `product_id` in region cn-hangzhou and returns the instance id.
    pub(crate) fn order(&self, token: &str, product_id: &str) -> String {
        let body = json!({"product_id": product_id, "region": "cn-hangzhou", "accept_eula": true});
        self.post("/api/v1/orders", token, body).expect(201).json()["instance"]["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

/// A JSON HTTP server on loopback for the tests' stand-ins of outside services (a provider's
/// Prometheus): `answer` gets each request's target (path and query) and returns the body of a
/// 200. It serves until the test process ends. Returns its `http://` origin.
pub(crate) fn serve_json(answer: impl Fn(&str) -> Json + Send + 'static) -> String {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(&stream);
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            // Read the headers through, so the client's request is consumed before we answer.
            let mut header = String::new();
            while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                header.clear();
            }
            let target = request_line.split_whitespace().nth(1).unwrap_or_default();
            let body = answer(target).to_string();
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://{addr}")
}
