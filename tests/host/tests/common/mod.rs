//! Shared helpers of the end-to-end tests: the real app (the repository's spin.toml and its built
//! components) behind a test clock, response assertions, and the request bodies of a complete listing.
#![allow(dead_code)] // Each test binary uses its own subset of the helpers.

use serde_json::{Value, json};
use spin_test_host::http::{Method, Request};
use spin_test_host::{Response, ResponseExt, SpinApp};
use std::sync::Mutex;

#[path = "../../../../shared/tests/api/fixtures.rs"]
mod fixtures;
pub use fixtures::{pdf, png, service_body, step_bodies};

pub const APP_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
pub const ADMIN_TOKEN: &str = "e2e-admin-token-0123456789";
/// The clock header the components honour when `allow_clock_override` is true.
pub const CLOCK_HEADER: &str = "X-Clock-Now";

/// The repository's spin.toml.
pub fn manifest() -> String {
    std::fs::read_to_string(format!("{APP_DIR}/spin.toml")).expect("spin.toml")
}

/// Loads the app with the test variables, from `manifest` instead of spin.toml when given.
pub fn load(manifest: Option<String>) -> SpinApp {
    let mut builder = SpinApp::builder(APP_DIR)
        .variable("admin_token", ADMIN_TOKEN)
        .variable("allow_clock_override", "true");
    if let Some(text) = manifest {
        builder = builder.manifest(text);
    }
    builder.load().expect("the app loads")
}

/// The app with a test clock: every request carries `X-Clock-Now` with the clock's current value.
pub struct Market {
    pub app: SpinApp,
    now: Mutex<String>,
}

impl Market {
    pub fn new(now: &str) -> Self {
        Market {
            app: load(None),
            now: Mutex::new(now.to_owned()),
        }
    }

    pub fn set_now(&self, now: &str) {
        *self.now.lock().unwrap() = now.to_owned();
    }

    pub fn now(&self) -> String {
        self.now.lock().unwrap().clone()
    }

    pub fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Response {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(CLOCK_HEADER, self.now());
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        self.app
            .request(request.body(body).expect("a valid request"))
    }

    pub fn get(&self, path: &str, token: Option<&str>) -> Response {
        self.call(Method::GET, path, token, None, Vec::new())
    }

    pub fn post(&self, path: &str, token: &str, body: Value) -> Response {
        self.call(
            Method::POST,
            path,
            Some(token),
            Some("application/json"),
            body.to_string().into_bytes(),
        )
    }

    pub fn put(&self, path: &str, token: &str, body: Value) -> Response {
        self.call(
            Method::PUT,
            path,
            Some(token),
            Some("application/json"),
            body.to_string().into_bytes(),
        )
    }

    pub fn put_bytes(
        &self,
        path: &str,
        token: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Response {
        self.call(Method::PUT, path, Some(token), Some(content_type), body)
    }

    /// Creates a principal as the operator: (id, token).
    pub fn principal(&self, role: &str, account_type: Option<&str>) -> (String, String) {
        let mut body = json!({"role": role, "name": format!("a {role}")});
        if let Some(account_type) = account_type {
            body["account_type"] = json!(account_type);
        }
        let created = self
            .post("/api/v1/principals", ADMIN_TOKEN, body)
            .expect_status(201)
            .json();
        assert_eq!(created["principal"]["role"], role);
        (
            str_of(&created["principal"]["id"]),
            str_of(&created["token"]),
        )
    }

    /// A provider's published product of [`service_body`] and [`step_bodies`], taken through both
    /// reviews without rejections: (provider token, product id).
    pub fn published_product(&self) -> (String, String) {
        let (_, provider) = self.principal("provider", None);
        let service = self
            .post("/api/v1/services", &provider, service_body())
            .expect_status(201)
            .json();
        let product = self
            .post(
                "/api/v1/products",
                &provider,
                json!({"service_id": service["id"]}),
            )
            .expect_status(201)
            .json();
        let id = str_of(&product["id"]);
        for (step, body) in step_bodies() {
            self.put(&format!("/api/v1/products/{id}/{step}"), &provider, body)
                .expect_status(200);
        }
        self.upload_required_media(&provider, &id);
        let review = self.submit(&provider, &id, "category");
        self.decide(&review, "approve", None).expect_status(200);
        let item = format!("/api/v1/products/{id}/billable-items/Frequency");
        self.put(
            &format!("{item}/reporting"),
            &provider,
            json!({"method": "service_provider"}),
        )
        .expect_status(200);
        self.put(
            &format!("{item}/associations"),
            &provider,
            json!({"templates": ["tpl-standard"]}),
        )
        .expect_status(200);
        let review = self.submit(&provider, &id, "feature");
        self.decide(&review, "approve", None).expect_status(200);
        (provider, id)
    }

    pub fn upload_required_media(&self, provider: &str, product_id: &str) {
        self.put_bytes(
            &format!("/api/v1/products/{product_id}/media/logo"),
            provider,
            "image/png",
            png(290, 290, 64),
        )
        .expect_status(200);
        self.put_bytes(
            &format!("/api/v1/products/{product_id}/media/user_guide"),
            provider,
            "application/pdf",
            pdf(64),
        )
        .expect_status(200);
    }

    /// Submits the product for `stage` review: the review id.
    pub fn submit(&self, provider: &str, product_id: &str, stage: &str) -> String {
        let review = self
            .post(
                "/api/v1/reviews",
                provider,
                json!({"product_id": product_id, "stage": stage}),
            )
            .expect_status(201)
            .json();
        assert_eq!(review["status"], "pending", "{review}");
        str_of(&review["id"])
    }

    /// The operator's decision on a review.
    pub fn decide(&self, review_id: &str, decision: &str, reason: Option<&str>) -> Response {
        let mut body = json!({"decision": decision});
        if let Some(reason) = reason {
            body["reason"] = json!(reason);
        }
        self.post(
            &format!("/api/v1/reviews/{review_id}/decision"),
            ADMIN_TOKEN,
            body,
        )
    }

    /// A customer topped up with `amount`, who ordered `product_id` in cn-hangzhou now:
    /// (customer token, instance id).
    pub fn customer_with_instance(&self, product_id: &str, amount: &str) -> (String, String) {
        let (customer_id, customer) = self.principal("customer", Some("enterprise"));
        self.post(
            &format!("/api/v1/accounts/{customer_id}/top-ups"),
            ADMIN_TOKEN,
            json!({"amount": amount}),
        )
        .expect_status(201);
        let ordered = self
            .post(
                "/api/v1/orders",
                &customer,
                json!({"product_id": product_id, "region": "cn-hangzhou", "accept_eula": true}),
            )
            .expect_status(201)
            .json();
        (customer, str_of(&ordered["instance"]["id"]))
    }

    /// Pushes one record of `Frequency` usage as the cloud API sends it (`Metering` a JSON string).
    pub fn push_usage(
        &self,
        provider: &str,
        instance: &str,
        start: &str,
        end: &str,
        value: u64,
    ) -> Response {
        let metering = json!([{
            "StartTime": unix(start), "EndTime": unix(end),
            "Entities": [{"Key": "Frequency", "Value": value.to_string()}],
        }]);
        self.post(
            "/api/v1/metering",
            provider,
            json!({"ServiceInstanceId": instance, "Metering": metering.to_string()}),
        )
    }

    /// The customer's bills of `instance`.
    pub fn bills(&self, customer: &str, instance: &str) -> Vec<Value> {
        let bills = self
            .get(
                &format!("/api/v1/bills?instance_id={instance}&limit=500"),
                Some(customer),
            )
            .expect_status(200)
            .json();
        bills["items"].as_array().expect("items").clone()
    }

    pub fn balance(&self, customer: &str) -> String {
        let me = self
            .get("/api/v1/accounts/me", Some(customer))
            .expect_status(200)
            .json();
        str_of(&me["account"]["balance"])
    }
}

/// Assertions on a response, failing with its body.
pub trait Expect: Sized {
    fn expect_status(self, status: u16) -> Self;
    /// A problem response with this status and code: its body.
    fn problem(self, status: u16, code: &str) -> Value;
}

impl Expect for Response {
    #[track_caller]
    fn expect_status(self, status: u16) -> Self {
        assert_eq!(
            self.status().as_u16(),
            status,
            "unexpected status; body: {}",
            self.text()
        );
        self
    }

    #[track_caller]
    fn problem(self, status: u16, code: &str) -> Value {
        let response = self.expect_status(status);
        assert_eq!(
            response.header_str("content-type"),
            Some("application/problem+json"),
            "body: {}",
            response.text()
        );
        let body = response.json();
        assert_eq!(body["code"], code, "body: {body}");
        assert_eq!(body["status"], status, "body: {body}");
        body
    }
}

#[track_caller]
pub fn str_of(value: &Value) -> String {
    value
        .as_str()
        .unwrap_or_else(|| panic!("not a string: {value}"))
        .to_owned()
}

/// Unix seconds of a UTC `YYYY-MM-DDTHH:MM:SSZ` timestamp.
pub fn unix(rfc3339: &str) -> i64 {
    let b = rfc3339.as_bytes();
    assert!(
        b.len() == 20 && b[4] == b'-' && b[10] == b'T' && b[19] == b'Z',
        "expected YYYY-MM-DDTHH:MM:SSZ, got {rfc3339}"
    );
    let num = |from: usize, to: usize| -> i64 { rfc3339[from..to].parse().expect("a digit") };
    let (y, m, d) = (num(0, 4), num(5, 7), num(8, 10));
    // Days from civil (Howard Hinnant's algorithm), for the proleptic Gregorian calendar.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + num(11, 13) * 3600 + num(14, 16) * 60 + num(17, 19)
}
