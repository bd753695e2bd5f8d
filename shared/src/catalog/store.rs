//! Catalog entries in the database: what publication wrote, read by the public catalog.

use chrono::{DateTime, Utc};

use crate::catalog::delisting::ListingChange;
use crate::catalog::{CatalogEntry, CatalogFilter, Summary};
use crate::error::{ApiError, ApiResult};
use crate::listing::steps::PricingStep;
use crate::platform::clock::{self, rfc3339};
use crate::platform::storage::{Database, Dialect, Row, enum_from_str};

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
               AND NOT EXISTS (SELECT 1 FROM delistings d
                               WHERE d.product_id = catalog_entries.product_id)
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

/// A delisting or relisting from columns (action, actor id, actor role, reason, Unix seconds).
fn change_from_row(r: &Row) -> ApiResult<ListingChange> {
    Ok(ListingChange {
        action: enum_from_str(&r.text(0)?)?,
        actor_id: r.text(1)?,
        actor_role: enum_from_str(&r.text(2)?)?,
        reason: r.text(3)?,
        at: clock::from_unix(r.int(4)?)?,
    })
}

/// The delisting standing on a product, if any.
pub(crate) fn delisting(db: &dyn Database, product_id: &str) -> ApiResult<Option<ListingChange>> {
    let rows = db.execute(
        "SELECT 'delisted', actor_id, actor_role, reason, delisted_at FROM delistings
         WHERE product_id = ?",
        &[product_id.into()],
    )?;
    rows.first().map(change_from_row).transpose()
}

/// Appends a delisting or relisting to the product's log.
fn log_listing_change(
    db: &dyn Database,
    product_id: &str,
    action: &str,
    actor: (&str, &str),
    reason: &str,
    at: i64,
) -> ApiResult<()> {
    db.execute(
        "INSERT INTO delisting_log
             (product_id, seq, action, actor_id, actor_role, reason, changed_at)
         SELECT CAST(?1 AS TEXT), COALESCE(MAX(seq), 0) + 1, CAST(?2 AS TEXT), CAST(?3 AS TEXT),
                CAST(?4 AS TEXT), CAST(?5 AS TEXT), CAST(?6 AS BIGINT)
         FROM delisting_log WHERE product_id = ?1",
        &[
            product_id.into(),
            action.into(),
            actor.0.into(),
            actor.1.into(),
            reason.into(),
            at.into(),
        ],
    )?;
    Ok(())
}

/// Takes the product out of the catalog; `false` when a delisting already stands (the primary
/// key decides between racing delistings).
pub(crate) fn delist(
    db: &dyn Database,
    product_id: &str,
    actor: (&str, &str),
    reason: &str,
    at: i64,
) -> ApiResult<bool> {
    let inserted = db.execute(
        "INSERT INTO delistings (product_id, actor_id, actor_role, reason, delisted_at)
         VALUES (?, ?, ?, ?, ?) ON CONFLICT (product_id) DO NOTHING RETURNING product_id",
        &[
            product_id.into(),
            actor.0.into(),
            actor.1.into(),
            reason.into(),
            at.into(),
        ],
    )?;
    if inserted.is_empty() {
        return Ok(false);
    }
    log_listing_change(db, product_id, "delisted", actor, reason, at)?;
    Ok(true)
}

/// Lifts the product's delisting; `false` when none stood.
pub(crate) fn relist(
    db: &dyn Database,
    product_id: &str,
    actor: (&str, &str),
    reason: &str,
    at: i64,
) -> ApiResult<bool> {
    let deleted = db.execute(
        "DELETE FROM delistings WHERE product_id = ? RETURNING product_id",
        &[product_id.into()],
    )?;
    if deleted.is_empty() {
        return Ok(false);
    }
    log_listing_change(db, product_id, "relisted", actor, reason, at)?;
    Ok(true)
}

/// Every delisting and relisting of a product, oldest first.
pub(crate) fn listing_log(db: &dyn Database, product_id: &str) -> ApiResult<Vec<ListingChange>> {
    let rows = db.execute(
        "SELECT action, actor_id, actor_role, reason, changed_at FROM delisting_log
         WHERE product_id = ? ORDER BY seq",
        &[product_id.into()],
    )?;
    rows.iter().map(change_from_row).collect()
}

/// A pricing version as stored.
pub(crate) struct StoredVersion {
    pub(crate) version: i64,
    pub(crate) pricing: PricingStep,
    pub(crate) raises_price: bool,
    pub(crate) created_by: String,
    pub(crate) created_at: i64,
    pub(crate) effective_at: i64,
}

fn version_from_row(r: &Row) -> ApiResult<StoredVersion> {
    Ok(StoredVersion {
        version: r.int(0)?,
        pricing: PricingStep::from_stored(
            &serde_json::from_str(&r.text(1)?).map_err(ApiError::internal)?,
        )?,
        raises_price: r.int(2)? != 0,
        created_by: r.text(3)?,
        created_at: r.int(4)?,
        effective_at: r.int(5)?,
    })
}

const VERSION_COLUMNS: &str =
    "version, pricing, raises_price, created_by, created_at, effective_at";

/// A product's pricing versions, oldest first (none before its first price change).
pub(crate) fn versions(db: &dyn Database, product_id: &str) -> ApiResult<Vec<StoredVersion>> {
    let rows = db.execute(
        &format!(
            "SELECT {VERSION_COLUMNS} FROM pricing_versions WHERE product_id = ? ORDER BY version"
        ),
        &[product_id.into()],
    )?;
    rows.iter().map(version_from_row).collect()
}

/// The version new orders get: the highest (1 before any change).
pub(crate) fn current_version(db: &dyn Database, product_id: &str) -> ApiResult<i64> {
    let rows = db.execute(
        "SELECT MAX(version) FROM pricing_versions WHERE product_id = ?",
        &[product_id.into()],
    )?;
    Ok(rows
        .first()
        .map(|r| r.opt_int(0))
        .transpose()?
        .flatten()
        .unwrap_or(1))
}

/// Writes a pricing version.
pub(crate) fn insert_version(
    db: &dyn Database,
    product_id: &str,
    v: &StoredVersion,
) -> ApiResult<()> {
    db.execute(
        "INSERT INTO pricing_versions
             (product_id, version, pricing, raises_price, created_by, created_at, effective_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)",
        &[
            product_id.into(),
            v.version.into(),
            serde_json::to_string(&v.pricing)
                .map_err(ApiError::internal)?
                .into(),
            i64::from(v.raises_price).into(),
            v.created_by.clone().into(),
            v.created_at.into(),
            v.effective_at.into(),
        ],
    )?;
    Ok(())
}

/// When the product was published, if it is in the catalog.
pub(crate) fn published_at(
    db: &dyn Database,
    product_id: &str,
) -> ApiResult<Option<DateTime<Utc>>> {
    let rows = db.execute(
        "SELECT published_at FROM catalog_entries WHERE product_id = ?",
        &[product_id.into()],
    )?;
    Ok(rows
        .first()
        .map(|r| clock::stored(&r.text(0)?))
        .transpose()?)
}
