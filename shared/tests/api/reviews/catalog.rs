//! docs/RULES.md §7: the public catalog shows published products only, filtered and paged.

use serde_json::Value;
use testkit::Market;
use testkit::native::TestApp;

#[test]
fn the_catalog_shows_published_products_only_and_filters_them() {
    let app = TestApp::new();
    let (_, _, published) = app.published_product();
    let (token, _, draft) = app.complete_product();
    let public = |path: &str| app.call("GET", path, None, None, vec![]);
    public(&format!("/api/v1/catalog/{draft}")).problem(404, "NotFound");
    public(&format!("/api/v1/catalog/{draft}/media/logo")).problem(404, "NotFound");
    app.get(&format!("/api/v1/products/{draft}"), &token)
        .expect(200);
    let ids = |path: &str| -> Vec<String> {
        public(path).expect(200).json()["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids("/api/v1/catalog"), vec![published.clone()]);
    assert_eq!(
        ids("/api/v1/catalog?category=databases"),
        vec![published.clone()]
    );
    assert!(ids("/api/v1/catalog?category=security").is_empty());
    assert_eq!(ids("/api/v1/catalog?tag=vector"), vec![published.clone()]);
    assert!(ids("/api/v1/catalog?tag=vect").is_empty());
    assert_eq!(
        ids("/api/v1/catalog?q=VECTOR%20db"),
        vec![published.clone()]
    );
    assert_eq!(ids("/api/v1/catalog?q=managed"), vec![published.clone()]);
    assert!(ids("/api/v1/catalog?q=spreadsheet").is_empty());
    public("/api/v1/catalog?category=toys").problem(400, "InvalidQuery");
    let detail = public(&format!("/api/v1/catalog/{published}"))
        .expect(200)
        .json();
    assert_eq!(
        detail["platform_tag"]["label"],
        "Compute Nest service: deployed by the platform, stability ensured"
    );
    assert_eq!(detail["agreement"]["eula"]["source"], "custom");
    assert_eq!(detail["pricing"]["billing_period"], "hour");
    // Customers learn the template and plan ids a quote or an order may name.
    assert_eq!(detail["templates"][0]["id"], "tpl-standard");
    assert_eq!(detail["templates"][0]["plans"][1]["id"], "plan-pro");
    assert_eq!(detail["templates"][0]["resources"][0]["hourly_fee"], "0.80");
}

#[test]
fn catalog_pages_follow_the_cursor() {
    let app = TestApp::new();
    let mut ids: Vec<String> = (0..3).map(|_| app.published_product().2).collect();
    ids.sort();
    let page1 = app
        .call("GET", "/api/v1/catalog?limit=2", None, None, vec![])
        .expect(200)
        .json();
    let cursor = page1["next_cursor"].as_str().unwrap();
    let page2 = app
        .call(
            "GET",
            &format!("/api/v1/catalog?limit=2&cursor={cursor}"),
            None,
            None,
            vec![],
        )
        .expect(200)
        .json();
    let got: Vec<&str> = page1["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(page2["items"].as_array().unwrap())
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, ids);
    assert_eq!(page2["next_cursor"], Value::Null);
}
