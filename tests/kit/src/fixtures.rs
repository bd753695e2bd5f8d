//! Request bodies and files: one definition of "a valid listing" for every test layer.

use serde_json::{Value as Json, json};

/// A PNG of `width` × `height` pixels as far as its header says, padded to `size` bytes.
pub fn png(width: u32, height: u32, size: usize) -> Vec<u8> {
    let mut b = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR".to_vec();
    b.extend(width.to_be_bytes());
    b.extend(height.to_be_bytes());
    b.extend([8, 6, 0, 0, 0]);
    b.resize(size.max(b.len()), 0);
    b
}

pub fn jpeg(size: usize) -> Vec<u8> {
    let mut b = vec![0xFF, 0xD8, 0xFF, 0xE0];
    b.resize(size.max(b.len()), 0);
    b
}

pub fn pdf(size: usize) -> Vec<u8> {
    let mut b = b"%PDF-1.7\n".to_vec();
    b.resize(size.max(b.len()), b' ');
    b
}

/// An MP4 as far as its first box says (`ftyp`, major brand `isom`), padded to `size` bytes.
pub fn mp4(size: usize) -> Vec<u8> {
    let mut b = vec![0, 0, 0, 0x18];
    b.extend(b"ftypisom");
    b.extend([0, 0, 2, 0]);
    b.extend(b"isomiso2");
    b.resize(size.max(b.len()), 0);
    b
}

pub fn service_body() -> Json {
    json!({
        "name": "Acme Vector DB",
        "service_method": "private",
        "regions": ["cn-hangzhou", "cn-shanghai"],
        "templates": [
            {"id": "tpl-standard", "name": "Standard", "visibility": "public",
             "resources": [{"type": "ecs", "spec": "ecs.g7.large", "count": 2, "hourly_fee": "0.80"}],
             "plans": [{"id": "plan-basic", "name": "Basic"}, {"id": "plan-pro", "name": "Pro"}]},
            {"id": "tpl-internal", "name": "Internal", "visibility": "private",
             "resources": [], "plans": []}
        ]
    })
}

/// A valid body for each of the five steps of a product of [`service_body`].
pub fn step_bodies() -> Vec<(&'static str, Json)> {
    vec![
        (
            "access",
            json!({
                "product_type": "saas", "product_name": "Acme Vector DB", "access_method": "compute_nest",
                "service_method": "private", "service_template_id": "tpl-standard"
            }),
        ),
        (
            "general",
            json!({
                "short_description": "A managed vector database.",
                "highlights": "Fast, cheap, Chinese-ready.",
                "description": "Everything about it.",
                "support_offered": {"service_scope": "7x24", "time_range": "always",
                                    "business_scope": "deployment", "billing_scope": "usage"}
            }),
        ),
        (
            "category",
            json!({"category": "databases", "tags": ["vector", "ai"], "region_selectable": true}),
        ),
        (
            "pricing",
            json!({
                "pricing_plan": "by_usage", "enterprise_only": false, "billing_period": "hour",
                "billable_items": [{"code": "Frequency", "name": "API calls", "tier_mode": "graduated",
                    "tiers": [{"up_to": "1000", "unit_price": "0.5"}, {"up_to": "5000", "unit_price": "0.4"},
                              {"up_to": null, "unit_price": "0.2"}]}]
            }),
        ),
        (
            "agreement",
            json!({"eula": {"source": "custom", "text": "You agree."}, "icp_filing": "ICP 12345678"}),
        ),
    ]
}
