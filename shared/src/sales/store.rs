//! Sales settings in the database: one row per (product, billable item code), each half
//! (reporting, associations) written on its own.

use chrono::{DateTime, Utc};

use crate::error::{ApiError, ApiResult};
use crate::platform::clock::rfc3339;
use crate::platform::storage::Database;
use crate::sales::{Associations, ReportingMethod, Setting};

/// The settings stored for one item code; either half may be unset.
pub(crate) struct StoredSettings {
    pub(crate) code: String,
    pub(crate) reporting: Option<ReportingMethod>,
    pub(crate) associations: Option<Associations>,
}

pub(crate) fn settings(db: &dyn Database, product_id: &str) -> ApiResult<Vec<StoredSettings>> {
    let rows = db.execute(
        "SELECT code, reporting, associations FROM billable_item_settings WHERE product_id = ?",
        &[product_id.into()],
    )?;
    rows.iter()
        .map(|r| {
            Ok(StoredSettings {
                code: r.text(0)?,
                reporting: r
                    .opt_text(1)?
                    .map(|s| serde_json::from_str(&s).map_err(ApiError::internal))
                    .transpose()?,
                associations: r
                    .opt_text(2)?
                    .map(|s| serde_json::from_str(&s).map_err(ApiError::internal))
                    .transpose()?,
            })
        })
        .collect()
}

pub(crate) fn save(
    db: &dyn Database,
    product_id: &str,
    code: &str,
    setting: &Setting,
    now: DateTime<Utc>,
) -> ApiResult<()> {
    let (column, json) = match setting {
        Setting::Reporting(r) => ("reporting", r.stored()),
        Setting::Associations(a) => (
            "associations",
            serde_json::to_string(a).map_err(ApiError::internal)?,
        ),
    };
    db.execute(
        &format!(
            "INSERT INTO billable_item_settings (product_id, code, {column}, updated_at)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (product_id, code) DO UPDATE SET {column} = ?3, updated_at = ?4"
        ),
        &[
            product_id.into(),
            code.into(),
            json.into(),
            rfc3339(now).into(),
        ],
    )?;
    Ok(())
}

/// Whether any instance of the product has usage of item `code` recorded from a source other
/// than `source`.
pub(crate) fn usage_from_other_sources(
    db: &dyn Database,
    product_id: &str,
    code: &str,
    source: &str,
) -> ApiResult<bool> {
    Ok(!db
        .execute(
            "SELECT 1 FROM usage_records u JOIN instances i ON i.id = u.instance_id
             WHERE i.product_id = ? AND u.item_code = ? AND u.source != ? LIMIT 1",
            &[product_id.into(), code.into(), source.into()],
        )?
        .is_empty())
}
