//! Services and products in the database: a product's steps, its media metadata and its status.
//! Every read is scoped to what the caller may see: a provider's query never returns another
//! provider's service or product (404, not 403). Media bytes live in the key-value store; SQLite
//! holds what points at them, so a listing is read from one place.

use chrono::{DateTime, Utc};

use crate::error::{ApiError, ApiResult, Code};
use crate::identity::Principal;
use crate::listing::media::{CheckedMedia, MediaKind};
use crate::listing::service::{NewService, Service, ServiceSpec};
use crate::listing::{
    Edit, Media, Product, ProductStatus, Step, StoredStep, ValidatedStep, Warning,
};
use crate::platform::clock::{self, rfc3339};
use crate::platform::ids::new_id;
use crate::platform::storage::{Database, Dialect, Row, RowLock, StorageError, lock_rows};

const COLUMNS: &str = "id, service_id, provider_id, status, created_at, updated_at";

fn product_from_row(row: &Row) -> Result<Product, StorageError> {
    let status = row.text(3)?;
    Ok(Product {
        id: row.text(0)?,
        service_id: row.text(1)?,
        provider_id: row.text(2)?,
        status: ProductStatus::parse(&status)
            .ok_or_else(|| StorageError::other(format!("unknown product status {status:?}")))?,
        created_at: clock::stored(&row.text(4)?)?,
        updated_at: clock::stored(&row.text(5)?)?,
    })
}

/// Creates the draft product of `service_id`. The UNIQUE constraint on `products.service_id`
/// enforces "one product per service" even when two creations race: the loser gets 409.
pub(crate) fn create_product(
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
        created_at: now,
        updated_at: now,
    };
    let inserted = db.execute(
        &format!("INSERT INTO products ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)"),
        &[
            product.id.clone().into(),
            product.service_id.clone().into(),
            product.provider_id.clone().into(),
            product.status.as_str().into(),
            rfc3339(product.created_at).into(),
            rfc3339(product.updated_at).into(),
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
pub(crate) fn find_product(db: &dyn Database, caller: &Principal, id: &str) -> ApiResult<Product> {
    find_scoped(db, id, scope(caller))
}

/// A product as the public may see it: only once published, 404 before.
pub(crate) fn find_published_product(db: &dyn Database, id: &str) -> ApiResult<Product> {
    let product = find_scoped(db, id, None)?;
    if product.status == ProductStatus::Published {
        Ok(product)
    } else {
        Err(ApiError::not_found("product"))
    }
}

/// A product whatever its status and owner, for internal reads (an instance's product).
pub(crate) fn find_product_unscoped(db: &dyn Database, id: &str) -> ApiResult<Product> {
    find_scoped(db, id, None)
}

fn find_scoped(db: &dyn Database, id: &str, provider: Option<String>) -> ApiResult<Product> {
    let rows = db.execute(
        &format!(
            "SELECT {COLUMNS} FROM products WHERE id = ?1 AND (CAST(?2 AS TEXT) IS NULL OR provider_id = ?2)"
        ),
        &[id.into(), provider.into()],
    )?;
    match rows.first() {
        Some(row) => Ok(product_from_row(row)?),
        None => Err(ApiError::not_found("product")),
    }
}

pub(crate) fn list_products(
    db: &dyn Database,
    caller: &Principal,
    status: Option<ProductStatus>,
    after: Option<&str>,
    limit: usize,
) -> ApiResult<Vec<Product>> {
    let rows = db.execute(
        &format!(
            "SELECT {COLUMNS} FROM products
             WHERE (CAST(?1 AS TEXT) IS NULL OR provider_id = ?1) AND (CAST(?2 AS TEXT) IS NULL OR status = ?2)
               AND (CAST(?3 AS TEXT) IS NULL OR id > ?3)
             ORDER BY id LIMIT ?4"
        ),
        &[
            scope(caller).into(),
            status.map(|s| s.as_str()).into(),
            after.map(str::to_owned).into(),
            (limit as i64).into(),
        ],
    )?;
    Ok(rows
        .iter()
        .map(product_from_row)
        .collect::<Result<_, _>>()?)
}

/// Locks the product's row until the caller's transaction ends ([`lock_rows`]), before it reads
/// what it decides on: `Exclusive` for a submission's checks of the listing or a sales
/// setting's status check (an edit of the listing, which writes the row first,
/// [`lock_for_edit`], waits for it, or it for the edit); `Shared` for an order, which needs the
/// product's status to hold until it commits (a publication, which releases the test
/// instances, waits for the test orders in flight) while other orders go on.
pub(crate) fn lock_product(db: &dyn Database, product_id: &str, how: RowLock) -> ApiResult<()> {
    Ok(lock_rows(db, ("products", "id"), &[product_id], how)?)
}

/// Re-reads the product's status inside the caller's transaction and refuses the edit (409) when
/// the listing is frozen; returns the status. Checking inside the transaction means a submission
/// that commits first cannot be followed by an edit of the listing under review. The product's
/// row is written first (its edit time), so the status is read with the row locked, as it is
/// once any concurrent submission committed (on PostgreSQL, where writers run at once); a
/// refusal rolls the write back with the transaction.
pub(crate) fn lock_for_edit(
    db: &dyn Database,
    product_id: &str,
    edit: Edit,
    now: DateTime<Utc>,
) -> ApiResult<ProductStatus> {
    let rows = db.execute(
        "UPDATE products SET updated_at = ? WHERE id = ? RETURNING status",
        &[rfc3339(now).into(), product_id.into()],
    )?;
    let status = rows
        .first()
        .map(|r| r.text(0))
        .transpose()?
        .and_then(|s| ProductStatus::parse(&s))
        .ok_or_else(|| ApiError::not_found("product"))?;
    if let Some(refusal) = status.refusal(edit) {
        return Err(refusal);
    }
    Ok(status)
}

pub(crate) fn save_step(
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

pub(crate) fn steps(db: &dyn Database, product_id: &str) -> ApiResult<Vec<(Step, StoredStep)>> {
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
                updated_at: clock::stored(&row.text(2)?)?,
            },
        ));
    }
    Ok(out)
}

/// The billing period cannot change once the product has instances (test orders during the
/// self-test): their billing cursors stand on the old period's boundaries.
pub(crate) fn check_billing_period_change(
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
pub(crate) fn step_data(
    db: &dyn Database,
    product_id: &str,
    step: Step,
) -> ApiResult<Option<serde_json::Value>> {
    // One step's data, not the whole listing: the usual reader is a push, which needs only the
    // pricing terms, and descriptions and agreements can be long.
    // PostgreSQL's JSON cannot take a member out of a text holding `\u0000`: there the whole
    // stored step is read, and its data taken out here.
    let (column, whole) = match db.dialect() {
        Dialect::Sqlite => ("data -> '$.data'", false),
        Dialect::Postgres => ("data", true),
    };
    db.execute(
        &format!("SELECT {column} FROM product_steps WHERE product_id = ?1 AND step = ?2"),
        &[product_id.into(), step.as_str().into()],
    )?
    .first()
    .map(|row| {
        let mut data: serde_json::Value =
            serde_json::from_str(&row.text(0)?).map_err(ApiError::internal)?;
        Ok(if whole { data["data"].take() } else { data })
    })
    .transpose()
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
        uploaded_at: clock::stored(&row.text(6)?)?,
        blob_key: row.text(7)?,
    })
}

const MEDIA_COLUMNS: &str = "kind, idx, content_type, size, width, height, uploaded_at, blob_key";

pub(crate) fn media(db: &dyn Database, product_id: &str) -> ApiResult<Vec<Media>> {
    let rows = db.execute(
        &format!(
            "SELECT {MEDIA_COLUMNS} FROM product_media WHERE product_id = ? ORDER BY kind, idx"
        ),
        &[product_id.into()],
    )?;
    Ok(rows.iter().map(media_from_row).collect::<Result<_, _>>()?)
}

pub(crate) fn find_media(
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
pub(crate) fn put_media(
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
pub(crate) fn delete_media(
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

// Services

fn service_from_row(row: &Row) -> Result<Service, StorageError> {
    let spec: NewService = serde_json::from_str(&row.text(2)?)
        .map_err(|e| StorageError::other(format!("stored service spec: {e}")))?;
    Ok(Service {
        id: row.text(0)?,
        provider_id: row.text(1)?,
        spec: ServiceSpec::from_stored(spec),
        created_at: clock::stored(&row.text(3)?)?,
    })
}

pub(crate) fn create_service(
    db: &dyn Database,
    provider: &Principal,
    spec: ServiceSpec,
    now: DateTime<Utc>,
) -> ApiResult<Service> {
    let service = Service {
        id: new_id("svc", now),
        provider_id: provider.id.clone(),
        spec,
        created_at: now,
    };
    let json = serde_json::to_string(service.spec.get()).map_err(ApiError::internal)?;
    db.execute(
        "INSERT INTO services (id, provider_id, spec, created_at) VALUES (?, ?, ?, ?)",
        &[
            service.id.clone().into(),
            service.provider_id.clone().into(),
            json.into(),
            rfc3339(service.created_at).into(),
        ],
    )?;
    Ok(service)
}

pub(crate) fn find_service(db: &dyn Database, caller: &Principal, id: &str) -> ApiResult<Service> {
    find_service_scoped(db, id, scope(caller))
}

/// The service behind a published product, for the public catalog and for customers.
pub(crate) fn find_service_unscoped(db: &dyn Database, id: &str) -> ApiResult<Service> {
    find_service_scoped(db, id, None)
}

fn find_service_scoped(
    db: &dyn Database,
    id: &str,
    provider: Option<String>,
) -> ApiResult<Service> {
    let rows = db.execute(
        "SELECT id, provider_id, spec, created_at FROM services
         WHERE id = ?1 AND (CAST(?2 AS TEXT) IS NULL OR provider_id = ?2)",
        &[id.into(), provider.into()],
    )?;
    match rows.first() {
        Some(row) => Ok(service_from_row(row)?),
        None => Err(ApiError::not_found("service")),
    }
}

pub(crate) fn list_services(
    db: &dyn Database,
    caller: &Principal,
    after: Option<&str>,
    limit: usize,
) -> ApiResult<Vec<Service>> {
    let rows = db.execute(
        "SELECT id, provider_id, spec, created_at FROM services
         WHERE (CAST(?1 AS TEXT) IS NULL OR provider_id = ?1) AND (CAST(?2 AS TEXT) IS NULL OR id > ?2)
         ORDER BY id LIMIT ?3",
        &[
            scope(caller).into(),
            after.map(str::to_owned).into(),
            (limit as i64).into(),
        ],
    )?;
    Ok(rows
        .iter()
        .map(service_from_row)
        .collect::<Result<_, _>>()?)
}
