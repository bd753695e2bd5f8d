//! A request to every `[[trigger.http]]` route of spin.toml, answered by the component meant to
//! own it, in the app the README's Run command starts (the manifest as it is, cron plugin and
//! all); and the paths no API route matches, which the console's catch-all route takes.
//!
//! The routes are read from spin.toml itself: a route added without probes here, a probe for a
//! route that no longer exists, or a route pointed at another component fails. Each component's
//! router answers a path it does not own with `404 NotFound` "route not found", so a probe's
//! 200/401/403/405 — or a 404 naming the missing *resource* — proves the intended component
//! answered.

use serde_json::{Value, json};
use testkit::{Market, Response};

use crate::harness::{HttpMarket, Manifest, SpinUp, readme_deployment, readme_run_command};
use crate::walkthrough::readme_admin_token;

/// The detail of the problem a component's router gives for a path it does not know.
const ROUTE_NOT_FOUND: &str = "route not found";

#[derive(Clone, Copy, Debug)]
enum Who {
    Anonymous,
    Operator,
    Provider,
    Customer,
}

#[derive(Debug)]
enum Expectation {
    /// 200 and the JSON value at this pointer.
    Ok(&'static str, Value),
    /// 200 and a non-empty array at this pointer.
    OkNonEmpty(&'static str),
    /// A problem with this status and code; for 404, about a resource rather than the route.
    Problem(u16, &'static str),
    /// 405 with this `Allow`.
    NotAllowed(&'static str),
    /// A console page (`text/html`) with this status and this text in it.
    Page(u16, &'static str),
    /// The API's 404 for a route it does not know.
    RouteNotFound,
}

#[derive(Debug)]
struct Probe {
    method: &'static str,
    path: String,
    who: Who,
    body: Option<Value>,
    expect: Expectation,
}

fn probe(method: &'static str, path: &str, who: Who, expect: Expectation) -> Probe {
    Probe {
        method,
        path: path.to_owned(),
        who,
        body: None,
        expect,
    }
}

/// The component each route must reach, and the probes that show it does. `provider_id` is a
/// principal that exists.
fn route_probes(route: &str, provider_id: &str) -> Option<(&'static str, Vec<Probe>)> {
    use Expectation::*;
    use Who::*;
    let probes = match route {
        "/api/v1/principals/..." => (
            "identity",
            vec![
                probe(
                    "GET",
                    "/api/v1/principals",
                    Anonymous,
                    Problem(401, "Unauthorized"),
                ),
                probe(
                    "GET",
                    &format!("/api/v1/principals/{provider_id}"),
                    Operator,
                    Ok("/role", json!("provider")),
                ),
                probe(
                    "GET",
                    "/api/v1/principals",
                    Provider,
                    Problem(403, "Forbidden"),
                ),
                probe(
                    "DELETE",
                    "/api/v1/principals",
                    Operator,
                    NotAllowed("GET, POST"),
                ),
                probe(
                    "GET",
                    &format!("/api/v1/principals/{provider_id}/commission"),
                    Provider,
                    Ok("/source", json!("default")),
                ),
            ],
        ),
        "/api/v1/me" => (
            "identity",
            vec![
                probe(
                    "GET",
                    "/api/v1/me",
                    Operator,
                    Ok("/role", json!("operator")),
                ),
                probe(
                    "GET",
                    "/api/v1/me",
                    Customer,
                    Ok("/role", json!("customer")),
                ),
                probe("POST", "/api/v1/me", Operator, NotAllowed("GET")),
            ],
        ),
        "/api/v1/webhooks/..." => (
            "identity",
            vec![
                probe("GET", "/api/v1/webhooks", Customer, Ok("/items", json!([]))),
                probe(
                    "GET",
                    "/api/v1/webhooks/whk-missing/deliveries",
                    Provider,
                    Problem(404, "NotFound"),
                ),
                probe("PUT", "/api/v1/webhooks", Operator, NotAllowed("GET, POST")),
            ],
        ),
        "/api/v1/services/..." => (
            "listings",
            vec![
                probe("GET", "/api/v1/services", Provider, Ok("/items", json!([]))),
                probe(
                    "GET",
                    "/api/v1/services/svc-missing",
                    Provider,
                    Problem(404, "NotFound"),
                ),
                probe(
                    "GET",
                    "/api/v1/services",
                    Customer,
                    Problem(403, "Forbidden"),
                ),
            ],
        ),
        "/api/v1/products/..." => (
            "listings",
            vec![
                probe("GET", "/api/v1/products", Provider, Ok("/items", json!([]))),
                probe(
                    "GET",
                    "/api/v1/products/prod-missing",
                    Provider,
                    Problem(404, "NotFound"),
                ),
                probe(
                    "DELETE",
                    "/api/v1/products/prod-missing/pricing",
                    Provider,
                    NotAllowed("GET, PUT"),
                ),
            ],
        ),
        "/api/v1/catalog/..." => (
            "listings",
            vec![
                probe("GET", "/api/v1/catalog", Anonymous, Ok("/items", json!([]))),
                probe(
                    "GET",
                    "/api/v1/catalog/categories",
                    Anonymous,
                    OkNonEmpty("/items"),
                ),
                probe(
                    "GET",
                    "/api/v1/catalog/prod-missing",
                    Anonymous,
                    Problem(404, "NotFound"),
                ),
                probe("POST", "/api/v1/catalog", Anonymous, NotAllowed("GET")),
            ],
        ),
        "/api/v1/reviews/..." => (
            "reviews",
            vec![
                probe("GET", "/api/v1/reviews", Operator, Ok("/items", json!([]))),
                probe(
                    "GET",
                    "/api/v1/reviews",
                    Customer,
                    Problem(403, "Forbidden"),
                ),
                probe(
                    "GET",
                    "/api/v1/reviews/rev-missing",
                    Operator,
                    Problem(404, "NotFound"),
                ),
                probe(
                    "GET",
                    "/api/v1/reviews/rev-missing/decision",
                    Operator,
                    NotAllowed("POST"),
                ),
            ],
        ),
        "/api/v1/orders/..." => (
            "orders",
            vec![
                probe("GET", "/api/v1/orders", Customer, NotAllowed("POST")),
                probe(
                    "POST",
                    "/api/v1/orders/quote",
                    Anonymous,
                    Problem(401, "Unauthorized"),
                ),
                Probe {
                    body: Some(json!({"product_id": "prod-missing"})),
                    ..probe(
                        "POST",
                        "/api/v1/orders/quote",
                        Customer,
                        Problem(404, "NotFound"),
                    )
                },
            ],
        ),
        "/api/v1/instances/..." => (
            "orders",
            vec![
                probe(
                    "GET",
                    "/api/v1/instances/si-missing",
                    Customer,
                    Problem(404, "NotFound"),
                ),
                probe(
                    "GET",
                    "/api/v1/instances/si-missing/actions",
                    Customer,
                    NotAllowed("POST"),
                ),
            ],
        ),
        "/api/v1/accounts/..." => (
            "orders",
            vec![
                probe(
                    "GET",
                    "/api/v1/accounts/me",
                    Customer,
                    Ok("/account/balance", json!("0.00")),
                ),
                probe(
                    "GET",
                    "/api/v1/accounts/usr-missing/top-ups",
                    Operator,
                    NotAllowed("POST"),
                ),
            ],
        ),
        "/api/v1/bills/..." => (
            "orders",
            vec![
                probe("GET", "/api/v1/bills", Customer, Ok("/items", json!([]))),
                probe(
                    "GET",
                    "/api/v1/bills/bill-missing",
                    Customer,
                    Problem(404, "NotFound"),
                ),
                Probe {
                    body: Some(json!({"amount": "1.00", "reason": "r"})),
                    ..probe(
                        "POST",
                        "/api/v1/bills/bill-missing/credit-notes",
                        Operator,
                        Problem(404, "NotFound"),
                    )
                },
            ],
        ),
        "/api/v1/credit-notes/..." => (
            "orders",
            vec![
                probe(
                    "GET",
                    "/api/v1/credit-notes",
                    Customer,
                    Ok("/items", json!([])),
                ),
                probe("POST", "/api/v1/credit-notes", Operator, NotAllowed("GET")),
            ],
        ),
        "/api/v1/billing/..." => (
            "orders",
            vec![
                Probe {
                    body: Some(json!({"as_of": "2026-03-27T10:00:00Z"})),
                    ..probe(
                        "POST",
                        "/api/v1/billing/runs",
                        Operator,
                        Ok("/bills_written", json!(0)),
                    )
                },
                probe("GET", "/api/v1/billing/runs", Operator, NotAllowed("POST")),
                Probe {
                    body: Some(json!({})),
                    ..probe(
                        "POST",
                        "/api/v1/billing/runs",
                        Customer,
                        Problem(403, "Forbidden"),
                    )
                },
            ],
        ),
        "/api/v1/settlements/..." => (
            "orders",
            vec![
                probe(
                    "GET",
                    "/api/v1/settlements?month=2026-03",
                    Operator,
                    Ok("/month", json!("2026-03")),
                ),
                probe(
                    "GET",
                    "/api/v1/settlements?month=2026-03",
                    Customer,
                    Problem(403, "Forbidden"),
                ),
                probe(
                    "GET",
                    "/api/v1/settlements/runs",
                    Operator,
                    NotAllowed("POST"),
                ),
                probe(
                    "GET",
                    "/api/v1/settlements/stl-missing",
                    Operator,
                    Problem(404, "NotFound"),
                ),
            ],
        ),
        "/api/v1/metering/..." => (
            "metering",
            vec![
                probe("GET", "/api/v1/metering", Provider, NotAllowed("POST")),
                Probe {
                    body: Some(json!({"ServiceInstanceId": "si-missing", "Metering": "[]"})),
                    ..probe(
                        "POST",
                        "/api/v1/metering",
                        Customer,
                        Problem(403, "Forbidden"),
                    )
                },
                probe(
                    "GET",
                    "/api/v1/metering/usage?instance_id=si-missing",
                    Provider,
                    Problem(404, "NotFound"),
                ),
            ],
        ),
        "/..." => (
            "console",
            vec![
                probe("GET", "/sign-in", Anonymous, Page(200, "API token")),
                probe("GET", "/catalog", Anonymous, Page(200, "Catalog")),
                probe(
                    "GET",
                    "/catalog/prod-missing",
                    Anonymous,
                    Page(404, "Not found"),
                ),
                probe(
                    "POST",
                    "/sign-in",
                    Anonymous,
                    Page(403, "this form expired"),
                ),
                // A signed-out visitor is sent to sign in (the redirect is followed).
                probe("GET", "/instances", Anonymous, Page(200, "API token")),
                probe("GET", "/api/v1/unknown", Operator, RouteNotFound),
            ],
        ),
        _ => return None,
    };
    Some(probes)
}

/// The routes the tests know, to catch a probe left behind by a removed route.
const KNOWN_ROUTES: &[&str] = &[
    "/api/v1/principals/...",
    "/api/v1/me",
    "/api/v1/webhooks/...",
    "/api/v1/services/...",
    "/api/v1/products/...",
    "/api/v1/catalog/...",
    "/api/v1/reviews/...",
    "/api/v1/orders/...",
    "/api/v1/instances/...",
    "/api/v1/accounts/...",
    "/api/v1/bills/...",
    "/api/v1/billing/...",
    "/api/v1/settlements/...",
    "/api/v1/credit-notes/...",
    "/api/v1/metering/...",
    "/...",
];

/// The route Spin picks for `path`: the exact route, else the longest matching wildcard prefix.
fn best_route<'a>(routes: &'a [(String, String)], path: &str) -> Option<&'a str> {
    let path = path.split('?').next().unwrap_or_default();
    if let Some((route, _)) = routes.iter().find(|(route, _)| route == path) {
        return Some(route);
    }
    routes
        .iter()
        .filter_map(|(route, _)| {
            let prefix = route.strip_suffix("/...")?;
            (path == prefix || path.starts_with(&format!("{prefix}/"))).then_some(route.as_str())
        })
        .max_by_key(|route| route.len())
}

struct Tokens {
    operator: String,
    provider_id: String,
    provider: String,
    customer: String,
}

impl Tokens {
    fn new(market: &HttpMarket) -> Self {
        let (provider_id, provider) = market.provider();
        let (_, customer) = market.customer("individual");
        Tokens {
            operator: market.admin_token().to_owned(),
            provider_id,
            provider,
            customer,
        }
    }

    fn of(&self, who: Who) -> Option<&str> {
        match who {
            Who::Anonymous => None,
            Who::Operator => Some(&self.operator),
            Who::Provider => Some(&self.provider),
            Who::Customer => Some(&self.customer),
        }
    }
}

fn send(market: &HttpMarket, tokens: &Tokens, probe: &Probe) -> Response {
    let (content_type, body) = match &probe.body {
        Some(body) => (Some("application/json"), body.to_string().into_bytes()),
        None => (None, Vec::new()),
    };
    market.call(
        probe.method,
        &probe.path,
        tokens.of(probe.who),
        content_type,
        body,
    )
}

#[track_caller]
fn check(probe: &Probe, response: Response) {
    let what = format!("{} {} as {:?}", probe.method, probe.path, probe.who);
    let content_type = response.header("content-type").unwrap_or_default();
    if let Expectation::Page(status, text) = &probe.expect {
        assert_eq!(response.status, *status, "{what}: {}", response.text());
        assert!(
            content_type.starts_with("text/html"),
            "{what}: {content_type}"
        );
        assert!(
            response.text().contains(text),
            "{what}: {}",
            response.text()
        );
        return;
    }
    assert!(
        content_type.starts_with("application/json") || content_type == "application/problem+json",
        "{what}: not from a component (content-type {content_type:?}, status {}): {}",
        response.status,
        response.text()
    );
    match &probe.expect {
        Expectation::Ok(pointer, value) => {
            let body = response.expect(200).json();
            assert_eq!(body.pointer(pointer), Some(value), "{what}: {body}");
        }
        Expectation::OkNonEmpty(pointer) => {
            let body = response.expect(200).json();
            let items = body.pointer(pointer).and_then(Value::as_array);
            assert!(items.is_some_and(|i| !i.is_empty()), "{what}: {body}");
        }
        Expectation::Problem(status, code) => {
            let body = response.problem(*status, code);
            assert_ne!(
                body["detail"], ROUTE_NOT_FOUND,
                "{what}: the component does not know this path"
            );
        }
        Expectation::NotAllowed(allow) => {
            let allowed = response.header("allow").map(str::to_owned);
            response.problem(405, "MethodNotAllowed");
            assert_eq!(allowed.as_deref(), Some(*allow), "{what}");
        }
        Expectation::RouteNotFound => {
            let body = response.problem(404, "NotFound");
            assert_eq!(body["detail"], ROUTE_NOT_FOUND, "{what}: {body}");
        }
        Expectation::Page(..) => unreachable!("pages are checked above"),
    }
}

#[test]
fn the_run_command_serves_every_route_of_spin_toml_from_its_component() {
    let app = readme_deployment("the README's Run command", &readme_run_command(), &[]);
    // The whole app: the HTTP trigger and the cron trigger plugin.
    assert!(
        app.processes().iter().any(|p| p.contains("trigger-cron")),
        "{:?}",
        app.processes()
    );
    let market = HttpMarket::new(app.origin(), &readme_admin_token());
    let me = market
        .get("/api/v1/me", market.admin_token())
        .expect(200)
        .json();
    assert_eq!(me["role"], "operator", "{me}");

    let routes = Manifest::repo().http_routes();
    assert!(!routes.is_empty());
    let tokens = Tokens::new(&market);
    for (route, component) in &routes {
        let (owner, probes) = route_probes(route, &tokens.provider_id).unwrap_or_else(|| {
            panic!(
                "spin.toml routes {route:?} to {component:?}, but routes.rs has no probes for it"
            )
        });
        assert_eq!(
            component, owner,
            "spin.toml routes {route:?} to the wrong component"
        );
        assert!(!probes.is_empty(), "{route}");
        for probe in &probes {
            assert_eq!(
                best_route(&routes, &probe.path),
                Some(route.as_str()),
                "the probe {} {} does not exercise {route}",
                probe.method,
                probe.path
            );
            check(probe, send(&market, &tokens, probe));
        }
    }
    for known in KNOWN_ROUTES {
        assert!(
            routes.iter().any(|(route, _)| route == known),
            "{known} is no longer in spin.toml: remove its probes"
        );
        assert!(route_probes(known, "").is_some(), "{known} has no probes");
    }
    assert_eq!(routes.len(), KNOWN_ROUTES.len(), "{routes:?}");

    // Under one component's prefix, paths that are other components' resources: the prefix's
    // owner answers, and it does not know them.
    for path in [
        "/api/v1/products/reviews/x/decision",
        "/api/v1/catalog/prod-x/media/logo/1/2",
        "/api/v1/orders/bills",
        "/api/v1/billing/accounts/me",
        "/api/v1/settlements/stl-x/principals",
        "/api/v1/metering/principals",
        "/api/v1/reviews/rev-x/history/1",
        "/api/v1/principals/usr-x/tokens/1",
        "/api/v1/accounts",
        "/api/v1/instances",
    ] {
        let body = market
            .get(path, market.admin_token())
            .problem(404, "NotFound");
        assert_eq!(body["detail"], ROUTE_NOT_FOUND, "{path}: {body}");
    }
    // Every other path is the console's (`/...`): exact API routes do not match below
    // themselves, and a wildcard matches whole segments only, so these reach it. Under /api/ it
    // answers as the API would, with the problem of an unknown route; elsewhere with pages.
    for path in [
        "/api",
        "/api/v1/unknown",
        "/api/v1/me/principals",
        "/api/v1/reviewsx",
        "/api/v1/bill",
        "/api/v1/catalogue",
        "/api/v2/me",
    ] {
        let body = market.get(path, &tokens.provider).problem(404, "NotFound");
        assert_eq!(body["detail"], ROUTE_NOT_FOUND, "{path}: {body}");
    }
    let home = market.get_anonymous("/");
    assert_eq!(home.status, 200, "{}", home.text());
    assert!(
        home.text().contains("<h1>Catalog</h1>"),
        "/ leads to the catalog"
    );
}

/// Every route re-pointed at another component: each probe then gets the wrong component's
/// "route not found", so the probes above really tell the components apart.
#[test]
fn a_route_pointed_at_the_wrong_component_is_a_not_found_problem() {
    let routes = Manifest::repo().http_routes();
    let wrong = |component: &str| {
        if component == "listings" {
            "reviews"
        } else {
            "listings"
        }
    };
    let manifest = routes.iter().fold(
        Manifest::repo().without_cron(),
        |manifest, (route, component)| manifest.route_to(route, wrong(component)),
    );
    let app = SpinUp::new(manifest).start();
    let market = app.market();
    // A router refuses an unknown path before it authenticates: no real principals are needed
    // (and with identity's own routes re-pointed, none could be created).
    let tokens = Tokens {
        operator: market.admin_token().to_owned(),
        provider_id: "usr-missing".to_owned(),
        provider: "no-such-token".to_owned(),
        customer: "no-such-token".to_owned(),
    };
    for (route, component) in &routes {
        let (_, probes) = route_probes(route, &tokens.provider_id).expect("probes");
        for probe in &probes {
            let what = format!(
                "{} {} routed to {}",
                probe.method,
                probe.path,
                wrong(component)
            );
            let body = send(&market, &tokens, probe).problem(404, "NotFound");
            assert_eq!(body["detail"], ROUTE_NOT_FOUND, "{what}: {body}");
        }
    }
}
