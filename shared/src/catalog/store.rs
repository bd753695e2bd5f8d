//! Catalog entries in the database: what publication wrote, read by the public catalog.

use chrono::{DateTime, Utc};

use crate::catalog::{CatalogEntry, CatalogFilter, Summary};
use crate::error::{ApiError, ApiResult};
use crate::platform::clock::{self, rfc3339};
use crate::platform::storage::{Database, Dialect, Row};

pub(crate) fn insert_entry(
    db: &dyn Database,
    product_id: &str,
    category: &str,
    tags: &[String],
    search_text: &str,
    summary: &Summary,
    now: DateTime<Utc>,
) -> ApiResult<()> {
    let (tags_json, summary_json) = to_json(tags, summary)?;
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
    tags: &[String],
    search_text: &str,
    summary: &Summary,
) -> ApiResult<()> {
    let (tags_json, summary_json) = to_json(tags, summary)?;
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

/// The tags and the summary as their columns keep them (JSON).
fn to_json(tags: &[String], summary: &Summary) -> ApiResult<(String, String)> {
    Ok((
        serde_json::to_string(tags).map_err(ApiError::internal)?,
        serde_json::to_string(summary).map_err(ApiError::internal)?,
    ))
}

fn entry_from_row(row: &Row) -> ApiResult<CatalogEntry> {
    Ok(CatalogEntry {
        summary: serde_json::from_str(&row.text(0)?).map_err(ApiError::internal)?,
        published_at: clock::stored(&row.text(1)?)?,
    })
}

pub(crate) fn list(
    db: &dyn Database,
    filter: &CatalogFilter,
    after: Option<&str>,
    limit: usize,
) -> ApiResult<Vec<CatalogEntry>> {
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
    rows.iter().map(entry_from_row).collect()
}

/// The catalog summary of a published product, or 404 for anything not published.
pub(crate) fn find(db: &dyn Database, product_id: &str) -> ApiResult<CatalogEntry> {
    let rows = db.execute(
        "SELECT summary, published_at FROM catalog_entries WHERE product_id = ?",
        &[product_id.into()],
    )?;
    rows.first()
        .map(entry_from_row)
        .transpose()?
        .ok_or_else(|| ApiError::not_found("product"))
}
