//! The marketplace the fuzzer talks to, built through the API with the kit's stories: principals
//! of every role (and both customer account types), products in every listing state, billable
//! items with each reporting method, instances running, stopped, released and under test,
//! usage, platform bills and bills, and a closed month with a provider's statement, unpaid.
//! Generated ids are drawn from it, so requests hit real resources, other tenants' and missing
//! ones.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value as Json, json};
use testkit::native::{ADMIN, TestApp};
use testkit::{
    Item, Market, WebhookReceiver, at, png, prometheus_vector, serve_json, str_of, usage,
};

/// When the world is built; the fuzzing runs at [`FUZZ_NOW`].
const BUILT_AT: &str = "2026-03-27T08:00:00Z";
/// Two hours later: hour 08 is closed and billed, hour 09 still takes late usage, hour 10 runs.
const FUZZ_NOW: &str = "2026-03-27T10:30:00Z";
/// The hour of February (Asia/Shanghai: 23:00 on the 28th) an instance lived in: the world closes
/// February, so its provider has a statement written.
const FEBRUARY_HOUR: (&str, &str) = ("2026-02-28T15:00:00Z", "2026-02-28T15:30:00Z");
/// The closed month and the open one.
const MONTHS: [&str; 2] = ["2026-02", "2026-03"];

/// One principal the fuzzer may call as.
pub(crate) struct Principal {
    pub name: &'static str,
    pub id: String,
    pub role: String,
    token: Mutex<String>,
}

pub(crate) struct World {
    pub app: TestApp,
    pub principals: Vec<Principal>,
    /// Tokens a rotation retired: `401` from then on.
    retired: Mutex<Vec<String>>,
    /// Every value of the world, whoever owns it.
    pub pools: Arc<Pools>,
    /// For each principal, its own resources (a pool it owns nothing of is whole).
    own: Vec<Arc<Pools>>,
}

/// The values the generators draw from, by pool name (see [`pool_for`]), and "now".
#[derive(Debug)]
pub(crate) struct Pools {
    pub now: DateTime<Utc>,
    values: BTreeMap<&'static str, Vec<String>>,
}

impl Pools {
    pub(crate) fn get(&self, pool: &str) -> &[String] {
        self.values.get(pool).map_or(&[], Vec::as_slice)
    }
}

/// Which pool a parameter or a body field draws real values from, by its name. A path
/// parameter without one has no generator (`every_operation_has_a_generator`).
pub(crate) fn pool_for(name: &str) -> Option<&'static str> {
    Some(match name {
        "principal_id" => "principal",
        "customer_id" => "customer",
        "service_id" => "service",
        "product_id" => "product",
        "review_id" => "review",
        "instance_id" | "ServiceInstanceId" => "instance",
        "bill_id" => "bill",
        "cursor" => "id",
        "template_id" | "service_template_id" | "templates" => "template",
        "plan_id" | "plans" => "plan",
        "region" | "regions" => "region",
        "code" | "Key" | "item_code" | "item" => "item",
        "webhook_id" => "webhook",
        "category" => "category",
        "tag" | "tags" => "tag",
        "endpoint" => "prometheus",
        "query" => "selector",
        "settlement_id" => "settlement",
        "provider_id" => "provider",
        "month" => "month",
        _ => return None,
    })
}

impl World {
    pub(crate) fn build() -> World {
        let prometheus = serve_json(|_| prometheus_vector(0, Some("42")));
        let origin = prometheus.clone();
        // Every event the fuzzing makes is delivered to a receiver that takes them all.
        let receiver = WebhookReceiver::start();
        let hooks = receiver.origin().to_owned();
        // The clock header is honoured, so the fuzzer exercises it; bill runs may be dated
        // ahead. Prometheus is reachable at the stand-in only: no generated endpoint leaves it.
        let app = TestApp::with_config(move |name| match name {
            "allow_clock_override" => Some("true".to_owned()),
            "prometheus_origin" => Some(origin.clone()),
            "webhook_hosts" => Some(hooks.clone()),
            // A customer in arrears is suspended by the first bill run after: the world has one.
            "arrears_grace_hours" => Some("0".to_owned()),
            _ => None,
        });
        app.set_now(at(BUILT_AT));
        let mut w = Builder {
            app: &app,
            principals: Vec::new(),
            pools: BTreeMap::new(),
            owners: BTreeMap::new(),
        };
        w.stories(&prometheus);
        w.webhooks(receiver.url());
        app.set_now(at(FUZZ_NOW));
        for bill in app.bills(ADMIN, None) {
            let id = str_of(&bill["id"]);
            w.add("bill", &id);
            w.owned_by(
                &id,
                &[str_of(&bill["owner_id"]), str_of(&bill["provider_id"])],
            );
        }
        let Builder {
            principals,
            mut pools,
            owners,
            ..
        } = w;
        let mut ids: Vec<String> = pools
            .iter()
            .filter(|(pool, _)| ID_POOLS.contains(pool))
            .flat_map(|(_, v)| v.iter().cloned())
            .collect();
        ids.sort();
        pools.insert("id", ids);
        let own = principals
            .iter()
            .map(|p| {
                let values = pools
                    .iter()
                    .map(|(pool, all)| {
                        let mine: Vec<String> = all
                            .iter()
                            .filter(|v| owners.get(*v).is_some_and(|o| o.contains(&p.id)))
                            .cloned()
                            .collect();
                        (*pool, if mine.is_empty() { all.clone() } else { mine })
                    })
                    .collect();
                Arc::new(Pools {
                    now: at(FUZZ_NOW),
                    values,
                })
            })
            .collect();
        World {
            app,
            principals,
            retired: Mutex::default(),
            pools: Arc::new(Pools {
                now: at(FUZZ_NOW),
                values: pools,
            }),
            own,
        }
    }

    /// The values `principal` owns, for requests that go by the book.
    pub(crate) fn own_pools(&self, principal: usize) -> Arc<Pools> {
        self.own[principal].clone()
    }

    pub(crate) fn token(&self, principal: usize) -> String {
        self.principals[principal]
            .token
            .lock()
            .expect("a token")
            .clone()
    }

    /// A token that was valid once, if a rotation retired one.
    pub(crate) fn retired_token(&self) -> Option<String> {
        self.retired.lock().expect("the retired").last().cloned()
    }

    /// Enables every principal of the world again (an operation that disables them was
    /// fuzzed), so the operations after it keep their callers.
    pub(crate) fn enable_all(&self) {
        for p in self.principals.iter().filter(|p| p.id != "usr-admin") {
            self.app
                .post(
                    &format!("/api/v1/principals/{}/enable", p.id),
                    ADMIN,
                    json!({}),
                )
                .expect(200);
        }
    }

    /// Learns from a rotation's answer: the principal's new token replaces the old one, which
    /// joins the retired.
    pub(crate) fn rotated(&self, answer: &Json) {
        let (Some(id), Some(token)) =
            (answer["principal"]["id"].as_str(), answer["token"].as_str())
        else {
            return;
        };
        if let Some(p) = self.principals.iter().find(|p| p.id == id) {
            let old = std::mem::replace(&mut *p.token.lock().expect("a token"), token.to_owned());
            self.retired.lock().expect("the retired").push(old);
        }
    }
}

/// The pools of ids (what a cursor may name).
const ID_POOLS: [&str; 8] = [
    "principal",
    "service",
    "product",
    "review",
    "instance",
    "bill",
    "settlement",
    "webhook",
];

struct Builder<'a> {
    app: &'a TestApp,
    principals: Vec<Principal>,
    pools: BTreeMap<&'static str, Vec<String>>,
    /// Id → the principals whose resource it is (a customer's instance is its provider's too).
    owners: BTreeMap<String, BTreeSet<String>>,
}

impl Builder<'_> {
    fn add(&mut self, pool: &'static str, value: impl Into<String>) {
        self.pools.entry(pool).or_default().push(value.into());
    }

    fn owned_by(&mut self, id: &str, principals: &[String]) {
        self.owners
            .entry(id.to_owned())
            .or_default()
            .extend(principals.iter().cloned());
    }

    fn id_of(&self, token: &str) -> String {
        str_of(&self.app.get("/api/v1/me", token).expect(200).json()["id"])
    }

    /// Registers a principal the fuzzer may call as; returns its token.
    fn principal(&mut self, name: &'static str, token: &str) -> String {
        let me = self.app.get("/api/v1/me", token).expect(200).json();
        let id = str_of(&me["id"]);
        self.add("principal", id.clone());
        self.owned_by(&id, std::slice::from_ref(&id));
        if me["role"] == "customer" {
            self.add("customer", id.clone());
        }
        if me["role"] == "provider" {
            self.add("provider", id.clone());
        }
        self.principals.push(Principal {
            name,
            id,
            role: str_of(&me["role"]),
            token: Mutex::new(token.to_owned()),
        });
        token.to_owned()
    }

    fn created(&mut self, name: &'static str, role: &str, account_type: Option<&str>) -> String {
        let (_, token) = self.app.principal(role, account_type);
        self.principal(name, &token)
    }

    /// The product's service and the reviews of it, into their pools.
    fn listed(&mut self, name: &'static str, token: &str, product: &str) {
        self.principal(name, token);
        let provider = [self.id_of(token)];
        let view = self
            .app
            .get(&format!("/api/v1/products/{product}"), token)
            .expect(200)
            .json();
        let service = str_of(&view["service_id"]);
        self.add("service", &service);
        self.owned_by(&service, &provider);
        self.add("product", product);
        self.owned_by(product, &provider);
        let reviews = self
            .app
            .get(&format!("/api/v1/reviews?product_id={product}"), token)
            .expect(200)
            .json();
        for r in reviews["items"].as_array().into_iter().flatten() {
            let review = str_of(&r["id"]);
            self.add("review", &review);
            self.owned_by(&review, &provider);
        }
    }

    /// A webhook of each principal that may have one, for every event its role may take.
    fn webhooks(&mut self, url: &str) {
        let callers: Vec<(String, String, String)> = self
            .principals
            .iter()
            .map(|p| {
                (
                    p.id.clone(),
                    p.role.clone(),
                    p.token.lock().expect("a token").clone(),
                )
            })
            .collect();
        for (id, role, token) in callers {
            let events: &[&str] = match role.as_str() {
                "customer" => &["order.created", "instance.released", "bill.issued"],
                "provider" | "operator" => &["order.created", "bill.issued", "product.delisted"],
                _ => continue,
            };
            let (webhook, _) = self.app.webhook(&token, url, events);
            self.add("webhook", &webhook);
            self.owned_by(&webhook, &[id]);
        }
    }

    /// `customer` orders `product` of `provider`; returns the instance.
    fn order(&mut self, customer: &str, provider: &str, product: &str) -> String {
        let instance = self.app.order(customer, product);
        self.add("instance", &instance);
        let owners = [self.id_of(customer), self.id_of(provider)];
        self.owned_by(&instance, &owners);
        instance
    }

    fn stories(&mut self, prometheus: &str) {
        let app = self.app;
        // The platform's names, as the stories below use them.
        for t in ["tpl-standard", "tpl-internal"] {
            self.add("template", t);
        }
        for p in ["plan-basic", "plan-pro"] {
            self.add("plan", p);
        }
        for r in ["cn-hangzhou", "cn-shanghai"] {
            self.add("region", r);
        }
        for c in ["Frequency", "Period", "Reports", "Requests"] {
            self.add("item", c);
        }
        for t in ["vector", "ai"] {
            self.add("tag", t);
        }
        let categories = app.get_anonymous("/api/v1/catalog/categories").expect(200);
        for c in categories.json()["items"].as_array().into_iter().flatten() {
            self.add("category", str_of(&c["id"]));
        }
        self.add("prometheus", prometheus);
        self.add("selector", "requests_total{job=\"api\"}");
        for m in MONTHS {
            self.add("month", m);
        }

        self.principal("the built-in operator", ADMIN);
        self.created("an operator", "operator", None);
        let platform = self.created("the platform", "platform", None);
        self.created("a provider without products", "provider", None);

        let (token, _, draft) = app.draft_product();
        self.listed("the provider of a draft", &token, &draft);

        let (token, _, pending) = app.complete_product();
        app.submit(&token, &pending, "category");
        self.listed("the provider of a listing under review", &token, &pending);

        let (token, _, rejected) = app.complete_product();
        let review = app.submit(&token, &rejected, "category");
        self.app
            .decide(&review, "reject", Some("not a database"))
            .expect(200);
        self.listed("the provider of a rejected listing", &token, &rejected);

        // Every reporting method, on the product customers buy.
        let items = [
            Item::frequency(),
            Item::running_time("0.5"),
            Item {
                code: "Reports",
                tier_mode: "volume",
                tiers: json!([{"up_to": "10", "unit_price": "2"}, {"up_to": null, "unit_price": "1"}]),
                reporting: json!({"method": "compute_nest", "source": "bill"}),
            },
            Item::prometheus_requests(prometheus, "0.01"),
        ];
        let (tester, testing) = app.product_with_items("hour", &items, false);
        let screenshot = format!("/api/v1/products/{testing}/media/screenshot/1");
        self.app
            .put_bytes(&screenshot, &tester, "image/png", png(800, 600, 256))
            .expect(200);
        self.listed("the provider of a listing in self-test", &tester, &testing);
        // The hourly product sold since February: an hour of it was used and released then.
        app.set_now(at(FEBRUARY_HOUR.0));
        let (seller, hourly) = app.product_with_items("hour", &items, true);
        self.listed("the provider of the hourly product", &seller, &hourly);
        let (_, enterprise) = app.funded_customer("10000.00");
        self.principal("an enterprise customer", &enterprise);
        let february = self.order(&enterprise, &seller, &hourly);
        app.set_now(at(FEBRUARY_HOUR.1) + Duration::minutes(10));
        app.push_usage(
            &seller,
            &february,
            &[usage(FEBRUARY_HOUR.0, FEBRUARY_HOUR.1, "Frequency", 300)],
        )
        .expect(200);
        app.act(&enterprise, &february, "release");
        app.set_now(at(BUILT_AT));

        let (daily_seller, daily) = self
            .app
            .product_with_items("day", &[Item::frequency()], true);
        self.listed("the provider of the daily product", &daily_seller, &daily);

        let individual = self.created("an individual customer", "customer", Some("individual"));

        let running = self.order(&enterprise, &seller, &hourly);
        let stopped = self.order(&enterprise, &seller, &hourly);
        // A customer without funds: the first bill run takes it into arrears and, past a grace
        // of none, suspends its instance.
        let broke = self.created("a customer in arrears", "customer", Some("enterprise"));
        let suspended = self.order(&broke, &seller, &hourly);
        let released = self.order(&enterprise, &seller, &hourly);
        let daily_instance = self.order(&individual, &daily_seller, &daily);
        self.order(&tester, &tester, &testing);
        app.set_now(at("2026-03-27T08:40:00Z"));
        app.act(&enterprise, &stopped, "stop");
        app.act(&enterprise, &released, "release");
        let hour = ("2026-03-27T08:00:00Z", "2026-03-27T08:30:00Z");
        for i in [&running, &stopped, &released] {
            app.push_usage(&seller, i, &[usage(hour.0, hour.1, "Frequency", 1500)])
                .expect(200);
            app.post(
                "/api/v1/metering/platform-bills",
                &platform,
                json!({"instance_id": i, "period_start": hour.0, "amount": "12.50", "item_code": "Reports"}),
            )
            .expect(200);
        }
        app.push_usage(
            &daily_seller,
            &daily_instance,
            &[usage(hour.0, hour.1, "Frequency", 7)],
        )
        .expect(200);
        // Hour 08 closes at 10:00: a run then bills it for every instance.
        app.set_now(at(FUZZ_NOW) - Duration::minutes(20));
        let run = app.bill_run(&testkit::rfc3339(app.now()));
        assert_eq!(run["suspended"], json!([suspended]), "{run}");
        // The running instance's hour, credited in part.
        let bill = str_of(&app.bills(ADMIN, Some(&running))[0]["id"]);
        app.post(
            &format!("/api/v1/bills/{bill}/credit-notes"),
            ADMIN,
            json!({"amount": "1.00", "reason": "a retry storm of ours"}),
        )
        .expect(201);
        // February closed (on March 1st's end in Asia/Shanghai) and billed: its statement is
        // written, not paid.
        let closed = app
            .post(
                "/api/v1/settlements/runs",
                ADMIN,
                json!({"month": MONTHS[0]}),
            )
            .expect(200)
            .json();
        for statement in closed["items"].as_array().into_iter().flatten() {
            let id = str_of(&statement["id"]);
            self.add("settlement", &id);
            self.owned_by(&id, &[str_of(&statement["provider_id"])]);
        }
        assert!(
            !self.pools.get("settlement").is_none_or(Vec::is_empty),
            "February has a statement: {closed}"
        );
    }
}
