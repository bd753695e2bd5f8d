//! Catalog entries in the database: what publication wrote, read by the public catalog.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::catalog::CatalogFilter;
use crate::error::{ApiError, ApiResult};
use crate::platform::clock::rfc3339;
use crate::platform::storage::{Database, Dialect, Row};

pub(crate) fn insert_entry(
    db: &dyn Database,
    product_id: &str,
    category: &str,
    tags_json: &str,
    search_text: &str,
    summary_json: &str,
    now: DateTime<Utc>,
) -> ApiResult<()> {
    db.execute(
        "INSERT INTO catalog_entries (product_id, category, tags, search_text, summary, published_at)
         VALUES (?, ?, ?, ?, ?, ?)",
        &[
            product_id.into(),
            category.into(),
            tags_json.into(),
            search_text.into(),
            summary_json.into(),
            rfc3339(now).into(),
        ],
    )?;
    Ok(())
}

/// Rewrites a published product's entry (its publication time stays).
pub(crate) fn update_entry(
    db: &dyn Database,
    product_id: &str,
    category: &str,
    tags_json: &str,
    search_text: &str,
    summary_json: &str,
) -> ApiResult<()> {
    db.execute(
        "UPDATE catalog_entries SET category = ?, tags = ?, search_text = ?, summary = ?
         WHERE product_id = ?",
        &[
            category.into(),
            tags_json.into(),
            search_text.into(),
            summary_json.into(),
            product_id.into(),
        ],
    )?;
    Ok(())
}

fn summary(row: &Row) -> ApiResult<Value> {
    let mut s: Value = serde_json::from_str(&row.text(0)?).map_err(ApiError::internal)?;
    s["published_at"] = Value::String(row.text(1)?);
    Ok(s)
}

pub(crate) fn list(
    db: &dyn Database,
    filter: &CatalogFilter,
    after: Option<&str>,
    limit: usize,
) -> ApiResult<Vec<Value>> {
    let (tagged, containing) = match db.dialect() {
        Dialect::Sqlite => (
            "SELECT 1 FROM json_each(tags) WHERE value = ?2",
            "instr(search_text, ?3) > 0",
        ),
        Dialect::Postgres => (
            "SELECT 1 FROM json_array_elements_text(CAST(tags AS JSON)) AS t(value) WHERE value = ?2",
            "strpos(search_text, ?3) > 0",
        ),
    };
    let rows = db.execute(
        &format!(
            "SELECT summary, published_at FROM catalog_entries
             WHERE (CAST(?1 AS TEXT) IS NULL OR category = ?1)
               AND (CAST(?2 AS TEXT) IS NULL OR EXISTS ({tagged}))
               AND (CAST(?3 AS TEXT) IS NULL OR {containing})
               AND (CAST(?4 AS TEXT) IS NULL OR product_id > ?4)
             ORDER BY product_id LIMIT ?5"
        ),
        &[
            filter.category.clone().into(),
            filter.tag.clone().into(),
            filter.q.as_ref().map(|q| q.to_lowercase()).into(),
            after.map(str::to_owned).into(),
            (limit as i64).into(),
        ],
    )?;
    rows.iter().map(summary).collect()
}

/// The catalog summary of a published product, or 404 for anything not published.
pub(crate) fn find(db: &dyn Database, product_id: &str) -> ApiResult<Value> {
    let rows = db.execute(
        "SELECT summary, published_at FROM catalog_entries WHERE product_id = ?",
        &[product_id.into()],
    )?;
    rows.first()
        .map(summary)
        .transpose()?
        .ok_or_else(|| ApiError::not_found("product"))
}
