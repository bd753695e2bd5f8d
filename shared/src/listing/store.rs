//! Products in the database: the listing's steps, its media metadata and its status. Blobs live in
//! the key-value store; SQLite holds what points at them, so a listing is read from one place.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::error::{ApiError, ApiResult, Code};
use crate::identity::Principal;
use crate::listing::media::{CheckedMedia, MediaKind};
use crate::listing::{ProductStatus, Step, ValidatedStep, Warning};
use crate::platform::clock::rfc3339;
use crate::platform::ids::new_id;
use crate::platform::storage::{Database, Row, StorageError};

#[derive(Debug, Clone, Serialize)]
pub struct Product {
    pub id: String,
    pub service_id: String,
    pub provider_id: String,
    pub status: ProductStatus,
    pub created_at: String,
    pub updated_at: String,
}

const COLUMNS: &str = "id, service_id, provider_id, status, created_at, updated_at";

fn from_row(row: &Row) -> Result<Product, StorageError> {
    let status = row.text(3)?;
    Ok(Product {
        id: row.text(0)?,
        service_id: row.text(1)?,
        provider_id: row.text(2)?,
        status: ProductStatus::parse(&status)
            .ok_or_else(|| StorageError::other(format!("unknown product status {status:?}")))?,
        created_at: row.text(4)?,
        updated_at: row.text(5)?,
    })
}

/// Creates the draft product of `service_id`. The UNIQUE constraint on `products.service_id`
/// enforces "one product per service" even when two creations race: the loser gets 409.
pub fn create(
    db: &dyn Database,
    provider: &Principal,
    service_id: &str,
    now: DateTime<Utc>,
) -> ApiResult<Product> {
    let product = Product {
        id: new_id("prod", now),
        service_id: service_id.to_owned(),
        provider_id: provider.id.clone(),
        status: ProductStatus::Draft,
        created_at: rfc3339(now),
        updated_at: rfc3339(now),
    };
    let inserted = db.execute(
        &format!("INSERT INTO products ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)"),
        &[
            product.id.clone().into(),
            product.service_id.clone().into(),
            product.provider_id.clone().into(),
            product.status.as_str().into(),
            product.created_at.clone().into(),
            product.updated_at.clone().into(),
        ],
    );
    match inserted {
        Ok(_) => Ok(product),
        Err(e) if e.is_unique_violation() => Err(ApiError::new(
            Code::ServiceAlreadyAssociated,
            format!("service {service_id} is already associated with a product"),
        )),
        Err(e) => Err(e.into()),
    }
}

/// The provider to scope reads to: `None` for operators, who see everything.
fn scope(caller: &Principal) -> Option<String> {
    (!caller.is_operator()).then(|| caller.id.clone())
}

/// The product if the caller may see it: its provider or an operator. Anyone else gets 404.
pub fn find(db: &dyn Database, caller: &Principal, id: &str) -> ApiResult<Product> {
    find_scoped(db, id, scope(caller))
}

/// A product as the public may see it: only once published, 404 before.
pub fn find_published(db: &dyn Database, id: &str) -> ApiResult<Product> {
    let product = find_scoped(db, id, None)?;
    if product.status == ProductStatus::Published {
        Ok(product)
    } else {
        Err(ApiError::not_found("product"))
    }
}

/// A product whatever its status and owner, for internal reads (an instance's product).
pub fn find_unscoped(db: &dyn Database, id: &str) -> ApiResult<Product> {
    find_scoped(db, id, None)
}

fn find_scoped(db: &dyn Database, id: &str, provider: Option<String>) -> ApiResult<Product> {
    let rows = db.execute(
        &format!(
            "SELECT {COLUMNS} FROM products WHERE id = ?1 AND (?2 IS NULL OR provider_id = ?2)"
        ),
        &[id.into(), provider.into()],
    )?;
    match rows.first() {
        Some(row) => Ok(from_row(row)?),
        None => Err(ApiError::not_found("product")),
    }
}

pub fn list(
    db: &dyn Database,
    caller: &Principal,
    status: Option<ProductStatus>,
    after: Option<&str>,
    limit: usize,
) -> ApiResult<Vec<Product>> {
    let rows = db.execute(
        &format!(
            "SELECT {COLUMNS} FROM products
             WHERE (?1 IS NULL OR provider_id = ?1) AND (?2 IS NULL OR status = ?2)
               AND (?3 IS NULL OR id > ?3)
             ORDER BY id LIMIT ?4"
        ),
        &[
            scope(caller).into(),
            status.map(|s| s.as_str()).into(),
            after.map(str::to_owned).into(),
            (limit as i64).into(),
        ],
    )?;
    Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
}

/// Re-reads the product's status inside the caller's transaction and refuses the edit (409) when
/// the listing is frozen. Checking inside the transaction means a submission that commits first
/// cannot be followed by an edit of the listing under review.
pub fn lock_for_edit(db: &dyn Database, product_id: &str, now: DateTime<Utc>) -> ApiResult<()> {
    let rows = db.execute(
        "SELECT status FROM products WHERE id = ?",
        &[product_id.into()],
    )?;
    let status = rows
        .first()
        .map(|r| r.text(0))
        .transpose()?
        .and_then(|s| ProductStatus::parse(&s))
        .ok_or_else(|| ApiError::not_found("product"))?;
    if let Some(refusal) = status.edit_refusal() {
        return Err(refusal);
    }
    db.execute(
        "UPDATE products SET updated_at = ? WHERE id = ?",
        &[rfc3339(now).into(), product_id.into()],
    )?;
    Ok(())
}

/// A step as stored: its normalized JSON and the warnings found when it was written.
#[derive(Debug, Clone, Serialize)]
pub struct StoredStep {
    pub data: serde_json::Value,
    pub warnings: Vec<Warning>,
    pub updated_at: String,
}

pub fn save_step(
    db: &dyn Database,
    product_id: &str,
    step: Step,
    validated: &ValidatedStep,
    now: DateTime<Utc>,
) -> ApiResult<()> {
    let data = serde_json::json!({ "data": validated.data(), "warnings": validated.warnings() });
    db.execute(
        "INSERT INTO product_steps (product_id, step, data, updated_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (product_id, step) DO UPDATE SET data = ?3, updated_at = ?4",
        &[
            product_id.into(),
            step.as_str().into(),
            data.to_string().into(),
            rfc3339(now).into(),
        ],
    )?;
    Ok(())
}

pub fn steps(db: &dyn Database, product_id: &str) -> ApiResult<Vec<(Step, StoredStep)>> {
    let rows = db.execute(
        "SELECT step, data, updated_at FROM product_steps WHERE product_id = ?",
        &[product_id.into()],
    )?;
    let mut out = Vec::new();
    for row in &rows {
        let step = row.text(0)?;
        let step = Step::parse(&step)
            .ok_or_else(|| StorageError::other(format!("unknown stored step {step:?}")))?;
        #[derive(serde::Deserialize)]
        struct Stored {
            data: serde_json::Value,
            warnings: Vec<Warning>,
        }
        let stored: Stored = serde_json::from_str(&row.text(1)?).map_err(ApiError::internal)?;
        out.push((
            step,
            StoredStep {
                data: stored.data,
                warnings: stored.warnings,
                updated_at: row.text(2)?,
            },
        ));
    }
    Ok(out)
}

/// What the listing still lacks before it can be submitted, per step in wizard order: the step
/// itself when it was never written, and for the General step the required media (the seed's
/// wizard uploads the logo and the user guide there).
pub fn missing_by_step(steps: &[(Step, StoredStep)], media: &[Media]) -> Vec<(Step, Vec<String>)> {
    Step::ALL
        .into_iter()
        .map(|step| {
            let mut missing = Vec::new();
            if !steps.iter().any(|(s, _)| *s == step) {
                missing.push(step.as_str().to_owned());
            }
            if step == Step::General {
                for kind in MediaKind::ALL.into_iter().filter(|k| k.is_required()) {
                    if !media.iter().any(|m| m.kind == kind) {
                        missing.push(format!("media.{}", kind.as_str()));
                    }
                }
            }
            (step, missing)
        })
        .collect()
}

/// The billing period cannot change once the product has instances (test orders during the
/// self-test): their billing cursors stand on the old period's boundaries.
pub fn check_billing_period_change(
    db: &dyn Database,
    product_id: &str,
    new_pricing: &serde_json::Value,
) -> ApiResult<()> {
    let Some(old) = step_data(db, product_id, Step::Pricing)? else {
        return Ok(());
    };
    if old["billing_period"] == new_pricing["billing_period"] {
        return Ok(());
    }
    let instances = db.execute(
        "SELECT 1 FROM instances WHERE product_id = ? LIMIT 1",
        &[product_id.into()],
    )?;
    if instances.is_empty() {
        return Ok(());
    }
    Err(ApiError::new(
        Code::BillingPeriodLocked,
        "the billing period cannot change once the product has instances (test orders)",
    ))
}

/// The stored data of one step, if written.
pub fn step_data(
    db: &dyn Database,
    product_id: &str,
    step: Step,
) -> ApiResult<Option<serde_json::Value>> {
    Ok(steps(db, product_id)?
        .into_iter()
        .find(|(s, _)| *s == step)
        .map(|(_, stored)| stored.data))
}

/// Metadata of an uploaded medium; the bytes are in the key-value store under `blob_key`.
#[derive(Debug, Clone, Serialize)]
pub struct Media {
    pub kind: MediaKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<u32>,
    pub content_type: String,
    pub size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    pub uploaded_at: String,
    #[serde(skip)]
    pub blob_key: String,
}

/// Single-item kinds are stored at index 0; the API shows no index for them.
fn stored_index(index: Option<u32>) -> i64 {
    index.map_or(0, i64::from)
}

fn media_from_row(row: &Row) -> Result<Media, StorageError> {
    let kind = row.text(0)?;
    let kind = MediaKind::parse(&kind)
        .ok_or_else(|| StorageError::other(format!("unknown media kind {kind:?}")))?;
    let idx = row.int(1)?;
    let dim = |v: Option<i64>| v.and_then(|n| u32::try_from(n).ok());
    Ok(Media {
        kind,
        index: kind.is_multi().then_some(idx as u32),
        content_type: row.text(2)?,
        size: row.int(3)? as u64,
        width: dim(row.opt_int(4)?),
        height: dim(row.opt_int(5)?),
        uploaded_at: row.text(6)?,
        blob_key: row.text(7)?,
    })
}

const MEDIA_COLUMNS: &str = "kind, idx, content_type, size, width, height, uploaded_at, blob_key";

pub fn media(db: &dyn Database, product_id: &str) -> ApiResult<Vec<Media>> {
    let rows = db.execute(
        &format!(
            "SELECT {MEDIA_COLUMNS} FROM product_media WHERE product_id = ? ORDER BY kind, idx"
        ),
        &[product_id.into()],
    )?;
    Ok(rows.iter().map(media_from_row).collect::<Result<_, _>>()?)
}

pub fn find_media(
    db: &dyn Database,
    product_id: &str,
    kind: MediaKind,
    index: Option<u32>,
) -> ApiResult<Media> {
    let rows = db.execute(
        &format!("SELECT {MEDIA_COLUMNS} FROM product_media WHERE product_id = ? AND kind = ? AND idx = ?"),
        &[product_id.into(), kind.as_str().into(), stored_index(index).into()],
    )?;
    match rows.first() {
        Some(row) => Ok(media_from_row(row)?),
        None => Err(ApiError::not_found("media")),
    }
}

/// Points the media slot at a new blob and returns the blob key it replaced, if any.
pub fn put_media(
    db: &dyn Database,
    product_id: &str,
    kind: MediaKind,
    index: Option<u32>,
    checked: &CheckedMedia,
    blob_key: &str,
    now: DateTime<Utc>,
) -> ApiResult<(Media, Option<String>)> {
    let previous = find_media(db, product_id, kind, index)
        .ok()
        .map(|m| m.blob_key);
    let (width, height) = checked.png_dimensions.unzip();
    db.execute(
        "INSERT INTO product_media (product_id, kind, idx, content_type, size, width, height, blob_key, uploaded_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (product_id, kind, idx) DO UPDATE SET content_type = ?4, size = ?5,
           width = ?6, height = ?7, blob_key = ?8, uploaded_at = ?9",
        &[
            product_id.into(),
            kind.as_str().into(),
            stored_index(index).into(),
            checked.content_type.into(),
            (checked.size as i64).into(),
            width.map(i64::from).into(),
            height.map(i64::from).into(),
            blob_key.into(),
            rfc3339(now).into(),
        ],
    )?;
    Ok((find_media(db, product_id, kind, index)?, previous))
}

/// Removes the media slot and returns the key of the blob it pointed at.
pub fn delete_media(
    db: &dyn Database,
    product_id: &str,
    kind: MediaKind,
    index: Option<u32>,
) -> ApiResult<String> {
    let rows = db.execute(
        "DELETE FROM product_media WHERE product_id = ? AND kind = ? AND idx = ? RETURNING blob_key",
        &[product_id.into(), kind.as_str().into(), stored_index(index).into()],
    )?;
    match rows.first() {
        Some(row) => Ok(row.text(0)?),
        None => Err(ApiError::not_found("media")),
    }
}
