//! The marketplace's product categories (`GET /api/v1/catalog/categories`).
//!
//! The list is fixed in code rather than stored: operators review a product's category against
//! it, the catalog filters by its ids, and an id that could disappear would strand published
//! products. Ids are stable `snake_case`; display names are given in English and Chinese because
//! the marketplace serves both audiences.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct Category {
    /// What `category` in the category step holds, and what `?category=` filters by.
    pub id: &'static str,
    pub name: &'static str,
    pub name_zh: &'static str,
}

/// Every category, in display order.
#[rustfmt::skip]
pub(crate) const CATEGORIES: &[Category] = &[
    Category { id: "databases", name: "Databases", name_zh: "数据库" },
    Category { id: "ai_machine_learning", name: "AI & Machine Learning", name_zh: "人工智能" },
    Category { id: "big_data_analytics", name: "Big Data & Analytics", name_zh: "大数据" },
    Category { id: "middleware", name: "Middleware", name_zh: "中间件" },
    Category { id: "security", name: "Security", name_zh: "安全" },
    Category { id: "devops", name: "DevOps & Developer Tools", name_zh: "开发者工具" },
    Category { id: "observability", name: "Monitoring & Observability", name_zh: "监控运维" },
    Category { id: "storage_backup", name: "Storage & Backup", name_zh: "存储与备份" },
    Category { id: "networking", name: "Networking & CDN", name_zh: "网络与CDN" },
    Category { id: "websites_ecommerce", name: "Websites & E-commerce", name_zh: "建站与电商" },
    Category { id: "enterprise_applications", name: "Enterprise Applications", name_zh: "企业应用" },
    Category { id: "collaboration", name: "Collaboration & Office", name_zh: "协同办公" },
    Category { id: "iot", name: "Internet of Things", name_zh: "物联网" },
    Category { id: "industry_solutions", name: "Industry Solutions", name_zh: "行业解决方案" },
];

/// The category with this id, if the marketplace has one.
pub(crate) fn find(id: &str) -> Option<&'static Category> {
    CATEGORIES.iter().find(|c| c.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_snake_case() {
        for (i, c) in CATEGORIES.iter().enumerate() {
            assert!(
                c.id.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{}",
                c.id
            );
            assert!(!CATEGORIES[..i].iter().any(|o| o.id == c.id), "{}", c.id);
            assert_eq!(find(c.id), Some(c));
        }
        assert_eq!(find("Databases"), None);
    }
}
