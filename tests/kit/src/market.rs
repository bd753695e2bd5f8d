//! The steps of the marketplace's stories, written once over [`Market::call`].

use chrono::{DateTime, Utc};
use serde_json::{Value as Json, json};

use crate::fixtures::{pdf, png, service_body, step_bodies};
use crate::response::Response;

/// A marketplace the tests talk to: the API handlers in-process, or the app under Spin.
///
/// An implementation provides [`Market::call_with_headers`], the operator's token and the clock
/// ("now" of the requests it sends); every other method is a step of the marketplace's stories
/// built on those.
pub trait Market {
    /// Sends one request with these headers (and the bearer `token`, if any) and returns the
    /// response, whatever its status.
    fn call_with_headers(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Response;

    /// Sends one request and returns the response, whatever its status.
    fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Response {
        let headers: Vec<(&str, &str)> = content_type
            .map(|ct| ("content-type", ct))
            .into_iter()
            .collect();
        self.call_with_headers(method, path, token, &headers, body)
    }

    /// The token of the deployment's built-in operator (the `admin_token` variable).
    fn admin_token(&self) -> &str;

    /// "Now" of the requests sent from here on.
    fn now(&self) -> DateTime<Utc>;

    fn set_now(&self, now: DateTime<Utc>);

    fn get(&self, path: &str, token: &str) -> Response {
        self.call("GET", path, Some(token), None, Vec::new())
    }

    /// A list as CSV (`Accept: text/csv`): the export of what `GET path` lists.
    fn export(&self, path: &str, token: &str) -> Response {
        self.call_with_headers(
            "GET",
            path,
            Some(token),
            &[("accept", "text/csv")],
            Vec::new(),
        )
    }

    /// A request without a token, as the public catalog is read.
    fn get_anonymous(&self, path: &str) -> Response {
        self.call("GET", path, None, None, Vec::new())
    }

    fn post(&self, path: &str, token: &str, body: Json) -> Response {
        self.call(
            "POST",
            path,
            Some(token),
            Some("application/json"),
            body.to_string().into_bytes(),
        )
    }

    fn put(&self, path: &str, token: &str, body: Json) -> Response {
        self.call(
            "PUT",
            path,
            Some(token),
            Some("application/json"),
            body.to_string().into_bytes(),
        )
    }

    fn put_bytes(&self, path: &str, token: &str, content_type: &str, body: Vec<u8>) -> Response {
        self.call("PUT", path, Some(token), Some(content_type), body)
    }

    fn delete(&self, path: &str, token: &str) -> Response {
        self.call("DELETE", path, Some(token), None, Vec::new())
    }

    /// Creates a principal as the operator and returns (id, token).
    fn principal(&self, role: &str, account_type: Option<&str>) -> (String, String) {
        let mut body = json!({ "role": role, "name": format!("a {role}") });
        if let Some(a) = account_type {
            body["account_type"] = json!(a);
        }
        let created = self
            .post("/api/v1/principals", self.admin_token(), body)
            .expect(201)
            .json();
        (
            str_of(&created["principal"]["id"]),
            str_of(&created["token"]),
        )
    }

    fn provider(&self) -> (String, String) {
        self.principal("provider", None)
    }

    fn customer(&self, account_type: &str) -> (String, String) {
        self.principal("customer", Some(account_type))
    }

    /// A provider with a service and its draft product: (provider token, service id, product id).
    fn draft_product(&self) -> (String, String, String) {
        let (_, token) = self.provider();
        let service = self
            .post("/api/v1/services", &token, service_body())
            .expect(201)
            .json();
        let service_id = str_of(&service["id"]);
        let product = self
            .post(
                "/api/v1/products",
                &token,
                json!({ "service_id": service_id }),
            )
            .expect(201)
            .json();
        (token, service_id, str_of(&product["id"]))
    }

    /// A draft product whose five steps ([`step_bodies`], passed through `adjust`) and required
    /// media are written: ready for category review. Returns (provider token, service, product).
    fn complete_product_with(&self, adjust: impl Fn(&str, &mut Json)) -> (String, String, String) {
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

    fn complete_product(&self) -> (String, String, String) {
        self.complete_product_with(|_, _| {})
    }

    /// Submits the product for `stage` review and returns the review id.
    fn submit(&self, token: &str, product_id: &str, stage: &str) -> String {
        let review = self
            .post(
                "/api/v1/reviews",
                token,
                json!({"product_id": product_id, "stage": stage}),
            )
            .expect(201)
            .json();
        str_of(&review["id"])
    }

    /// The operator's decision on a review.
    fn decide(&self, review_id: &str, decision: &str, reason: Option<&str>) -> Response {
        let mut body = json!({ "decision": decision });
        if let Some(r) = reason {
            body["reason"] = json!(r);
        }
        self.post(
            &format!("/api/v1/reviews/{review_id}/decision"),
            self.admin_token(),
            body,
        )
    }

    /// Category review approved: the product is in `self_test`.
    fn pass_category_review(&self, token: &str, id: &str) {
        let review = self.submit(token, id, "category");
        self.decide(&review, "approve", None).expect(200);
    }

    /// Sets each item's reporting method and associates it with the standard template, then
    /// passes the feature review (when `publish`): the product is published.
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
    fn self_test_product(&self) -> (String, String, String) {
        let (token, service_id, id) = self.complete_product();
        self.pass_category_review(&token, &id);
        (token, service_id, id)
    }

    /// Like [`Market::published_product`], with the steps adjusted first.
    fn published_product_with(&self, adjust: impl Fn(&str, &mut Json)) -> (String, String, String) {
        let (token, service_id, id) = self.complete_product_with(adjust);
        self.pass_category_review(&token, &id);
        self.configure_and_publish(&token, &id, &[Item::frequency()], true);
        (token, service_id, id)
    }

    /// The listing of [`step_bodies`], its `Frequency` item reported by the provider, published.
    fn published_product(&self) -> (String, String, String) {
        self.published_product_with(|_, _| {})
    }

    /// A product with these items and billing period, taken through both reviews (or left in
    /// `self_test` when `publish` is false). Returns (provider token, product id).
    fn product_with_items(&self, period: &str, items: &[Item], publish: bool) -> (String, String) {
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

    /// Orders `product_id` in region cn-hangzhou and returns the instance id.
    fn order(&self, token: &str, product_id: &str) -> String {
        let body = json!({"product_id": product_id, "region": "cn-hangzhou", "accept_eula": true});
        str_of(&self.post("/api/v1/orders", token, body).expect(201).json()["instance"]["id"])
    }

    /// The operator tops up a customer's account; returns the account after it.
    fn top_up(&self, customer_id: &str, amount: &str) -> Json {
        let topped = self
            .post(
                &format!("/api/v1/accounts/{customer_id}/top-ups"),
                self.admin_token(),
                json!({ "amount": amount }),
            )
            .expect(201)
            .json();
        topped["account"].clone()
    }

    /// An enterprise customer topped up with `amount`: (id, token).
    fn funded_customer(&self, amount: &str) -> (String, String) {
        let (id, token) = self.customer("enterprise");
        self.top_up(&id, amount);
        (id, token)
    }

    /// The customer's action (`stop`, `start`, `release`) on an instance; returns the instance.
    fn act(&self, token: &str, instance: &str, action: &str) -> Json {
        self.post(
            &format!("/api/v1/instances/{instance}/actions"),
            token,
            json!({ "action": action }),
        )
        .expect(200)
        .json()
    }

    /// Pushes usage records (see [`usage`]) as the cloud API's `PushMeteringData` sends them:
    /// `Metering` is a JSON string.
    fn push_usage(&self, provider: &str, instance: &str, records: &[Json]) -> Response {
        self.post(
            "/api/v1/metering",
            provider,
            json!({"ServiceInstanceId": instance, "Metering": Json::from(records).to_string()}),
        )
    }

    /// `hours` hours of `Frequency` usage from `from`: ten six-minute records an hour (values 1
    /// to 10), each hour pushed a minute after it ends, on this market's clock.
    fn push_hours(&self, provider: &str, instance: &str, from: DateTime<Utc>, hours: i64) {
        for h in 0..hours {
            let hour = from + chrono::Duration::hours(h);
            let records: Vec<Json> = (0..10u64)
                .map(|i| {
                    let start = hour + chrono::Duration::minutes(6 * i as i64);
                    let end = start + chrono::Duration::minutes(6);
                    usage(&rfc3339(start), &rfc3339(end), "Frequency", 1 + i)
                })
                .collect();
            self.set_now(hour + chrono::Duration::minutes(61));
            self.push_usage(provider, instance, &records).expect(200);
        }
    }

    /// Every usage record of an instance `token` may see, across all pages of the usage read.
    fn usage_records(&self, token: &str, instance: &str) -> Vec<Json> {
        let path = format!("/api/v1/metering/usage?instance_id={instance}&limit=500");
        let mut records = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page_path = match &cursor {
                Some(c) => format!("{path}&cursor={c}"),
                None => path.clone(),
            };
            let page = self.get(&page_path, token).expect(200).json();
            records.extend(page["records"].as_array().expect("records").iter().cloned());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return records,
            }
        }
    }

    /// The usage stored for an instance, per period and item (`totals` of the usage read).
    fn usage_totals(&self, token: &str, instance: &str) -> Json {
        let usage = self
            .get(
                &format!("/api/v1/metering/usage?instance_id={instance}"),
                token,
            )
            .expect(200)
            .json();
        usage["totals"].clone()
    }

    /// An operator's bill run as of `as_of` (RFC 3339); returns its report.
    fn bill_run(&self, as_of: &str) -> Json {
        self.post(
            "/api/v1/billing/runs",
            self.admin_token(),
            json!({ "as_of": as_of }),
        )
        .expect(200)
        .json()
    }

    /// What the period starting at `period_start` costs (or cost) the instance.
    fn preview(&self, token: &str, instance: &str, period_start: &str) -> Response {
        self.post(
            "/api/v1/billing/preview",
            token,
            json!({"instance_id": instance, "period_start": period_start}),
        )
    }

    /// Every bill `token` may see (of `instance` only, when given), across all pages.
    fn bills(&self, token: &str, instance: Option<&str>) -> Vec<Json> {
        let path = match instance {
            Some(id) => format!("/api/v1/bills?instance_id={id}"),
            None => "/api/v1/bills".to_owned(),
        };
        self.every_page(&path, token, "")
    }

    /// `token`'s webhook for `events` at `url`: (id, secret).
    fn webhook(&self, token: &str, url: &str, events: &[&str]) -> (String, String) {
        let created = self
            .post(
                "/api/v1/webhooks",
                token,
                json!({ "url": url, "events": events }),
            )
            .expect(201)
            .json();
        (str_of(&created["id"]), str_of(&created["secret"]))
    }

    /// The operator's credit note of `amount` on a bill, with why.
    fn credit(&self, bill_id: &str, amount: &str, reason: &str) -> Response {
        self.post(
            &format!("/api/v1/bills/{bill_id}/credit-notes"),
            self.admin_token(),
            json!({"amount": amount, "reason": reason}),
        )
    }

    /// The customer's account (balance, arrears).
    fn account(&self, token: &str) -> Json {
        self.get("/api/v1/accounts/me", token).expect(200).json()["account"].clone()
    }

    /// A month's statement of the provider of `token` (`YYYY-MM`), live or written.
    fn statement(&self, token: &str, month: &str) -> Json {
        let path = format!("/api/v1/settlements?month={month}");
        self.get(&path, token).expect(200).json()["items"][0].clone()
    }

    /// The customer's balance.
    fn balance(&self, token: &str) -> String {
        str_of(&self.get("/api/v1/accounts/me", token).expect(200).json()["account"]["balance"])
    }

    /// Every ledger entry of the customer's account, newest first.
    fn ledger(&self, token: &str) -> Vec<Json> {
        self.every_page("/api/v1/accounts/me", token, "/ledger")
    }

    /// The items of a paginated list, every page of it: `list` points at the page envelope
    /// (`{"items", "next_cursor"}`) within the response ("" when it is the response itself).
    fn every_page(&self, path: &str, token: &str, list: &str) -> Vec<Json> {
        let separator = if path.contains('?') { '&' } else { '?' };
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page_path = match &cursor {
                Some(c) => format!("{path}{separator}limit=500&cursor={c}"),
                None => format!("{path}{separator}limit=500"),
            };
            let page = self.get(&page_path, token).expect(200).json();
            let envelope = page
                .pointer(list)
                .unwrap_or_else(|| panic!("no page at {list:?}: {page}"));
            items.extend(
                envelope["items"]
                    .as_array()
                    .unwrap_or_else(|| panic!("not a page: {envelope}"))
                    .iter()
                    .cloned(),
            );
            match envelope["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return items,
            }
        }
    }
}

/// A billable item of a test product: its code, tier mode, tiers and reporting method.
pub struct Item {
    pub code: &'static str,
    pub tier_mode: &'static str,
    pub tiers: Json,
    pub reporting: Json,
}

impl Item {
    /// The seed-like graduated schedule: 0.5 up to 1,000, 0.4 up to 5,000, 0.2 above.
    pub fn frequency() -> Self {
        Item {
            code: "Frequency",
            tier_mode: "graduated",
            tiers: json!([{"up_to": "1000", "unit_price": "0.5"}, {"up_to": "5000", "unit_price": "0.4"},
                          {"up_to": null, "unit_price": "0.2"}]),
            reporting: json!({"method": "service_provider"}),
        }
    }

    /// Running time, reported by the platform from the instance's running intervals: billed
    /// per hour at `unit_price`, never pushed by anyone (so no test push can race its bill).
    pub fn running_time(unit_price: &str) -> Self {
        Item {
            code: "Period",
            tier_mode: "graduated",
            tiers: json!([{"up_to": null, "unit_price": unit_price}]),
            reporting: json!({"method": "compute_nest", "source": "time"}),
        }
    }

    /// Requests counted by the provider's Prometheus at `endpoint`, at `unit_price` each.
    pub fn prometheus_requests(endpoint: &str, unit_price: &str) -> Self {
        Item {
            code: "Requests",
            tier_mode: "graduated",
            tiers: json!([{"up_to": null, "unit_price": unit_price}]),
            reporting: json!({"method": "compute_nest", "source": "prometheus",
                              "prometheus": {"endpoint": endpoint, "query": "http_requests_total{job=\"api\"}"}}),
        }
    }
}

/// One `PushMeteringData` record: `value` of `key` in the window [`start`, `end`) (RFC 3339).
pub fn usage(start: &str, end: &str, key: &str, value: u64) -> Json {
    json!({"StartTime": unix(start), "EndTime": unix(end),
           "Entities": [{"Key": key, "Value": value.to_string()}]})
}

pub fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339)
        .unwrap_or_else(|e| panic!("{rfc3339:?} is not RFC 3339: {e}"))
        .to_utc()
}

/// Unix seconds of an RFC 3339 instant.
pub fn unix(rfc3339: &str) -> i64 {
    at(rfc3339).timestamp()
}

/// The API's form of an instant: RFC 3339 in UTC, whole seconds (`2026-03-27T08:00:00Z`).
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// An amount of money as the API writes it (`"-500.40"`, `"0.4"`), in cents.
#[track_caller]
pub fn cents(amount: &str) -> i64 {
    let (negative, digits) = match amount.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, amount),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    assert!(
        fraction.len() <= 2 && !whole.is_empty(),
        "not an amount in cents: {amount:?}"
    );
    let parse = |s: &str| -> i64 {
        s.parse()
            .unwrap_or_else(|_| panic!("not an amount: {amount:?}"))
    };
    let value = parse(whole) * 100 + parse(&format!("{fraction:0<2}"));
    if negative { -value } else { value }
}

/// A JSON string's value; panics (naming the value) on anything else.
#[track_caller]
pub fn str_of(value: &Json) -> String {
    value
        .as_str()
        .unwrap_or_else(|| panic!("not a string: {value}"))
        .to_owned()
}
