//! A product: the listing of one service, its status in the review lifecycle, its steps as
//! stored and its media, what it still lacks before review — and what its provider does with
//! it: create it, write its steps, upload its media.

use chrono::{DateTime, Utc};
use serde::Serialize;

use std::collections::BTreeMap;

use crate::error::{ApiError, ApiResult};
use crate::identity::Principal;
use crate::listing::media::{self, MediaKind};
use crate::listing::steps::StepData;
use crate::listing::{Edit, ProductStatus, Step, ValidatedStep, Warning, store, validate_step};
use crate::platform::ids::new_id;
use crate::platform::storage::{
    Chunks, Database, Storage, delete_chunked, put_chunked, transaction,
};

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Product {
    pub id: String,
    pub service_id: String,
    pub provider_id: String,
    pub status: ProductStatus,
    #[serde(with = "crate::platform::clock::instant")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "crate::platform::clock::instant")]
    pub updated_at: DateTime<Utc>,
}

/// A step as stored: its normalized JSON (parsed by the listing alone) and the warnings found
/// when it was written.
#[derive(Debug, Clone)]
pub(crate) struct StoredStep {
    pub data: serde_json::Value,
    pub warnings: Vec<Warning>,
    pub updated_at: DateTime<Utc>,
}

/// Metadata of an uploaded medium; the bytes are in the key-value store under `blob_key`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Media {
    pub kind: MediaKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<u32>,
    pub content_type: String,
    pub size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    #[serde(with = "crate::platform::clock::instant")]
    pub uploaded_at: DateTime<Utc>,
    #[serde(skip)]
    pub blob_key: String,
}

/// What the listing still lacks before it can be submitted, per step in wizard order: the step
/// itself when it was never written, and for the General step the required media (the publishing guide's
/// wizard uploads the logo and the user guide there).
pub(crate) fn missing_by_step(
    steps: &[(Step, StoredStep)],
    media: &[Media],
) -> Vec<(Step, Vec<String>)> {
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

/// Whether one step is done, and what it still lacks.
#[derive(Debug, Serialize)]
pub(crate) struct Completeness {
    pub complete: bool,
    pub missing: Vec<String>,
}

/// A product as its provider (or an operator) sees it: every step (`null` until written),
/// per-step completeness, warnings and media.
#[derive(Debug, Serialize)]
pub(crate) struct ProductView {
    #[serde(flatten)]
    pub product: Product,
    pub steps: BTreeMap<Step, Option<StepData>>,
    pub completeness: BTreeMap<Step, Completeness>,
    /// All five steps valid and the required media (logo, user guide) uploaded: ready to submit.
    pub complete: bool,
    pub warnings: Vec<Warning>,
    pub media: Vec<MediaView>,
}

impl ProductView {
    /// One step as written, if it was.
    pub(crate) fn step(&self, step: Step) -> Option<&StepData> {
        self.steps.get(&step).and_then(Option::as_ref)
    }

    /// The name customers will see, once the access step gives one.
    pub(crate) fn product_name(&self) -> Option<&str> {
        match self.step(Step::Access) {
            Some(StepData::Access(access)) => Some(access.product_name()),
            _ => None,
        }
    }
}

/// One step as stored, for its provider or an operator (`GET /api/v1/products/{id}/{step}`).
#[derive(Debug, Serialize)]
pub(crate) struct StepView {
    pub data: StepData,
    pub warnings: Vec<Warning>,
    #[serde(with = "crate::platform::clock::instant")]
    pub updated_at: DateTime<Utc>,
}

/// A medium with the address its bytes are served at.
#[derive(Debug, Serialize)]
pub(crate) struct MediaView {
    #[serde(flatten)]
    pub media: Media,
    pub url: String,
}

impl MediaView {
    fn of(product_id: &str, media: Media) -> Self {
        let kind = media.kind.as_str();
        let url = match media.index {
            Some(i) => format!("/api/v1/products/{product_id}/media/{kind}/{i}"),
            None => format!("/api/v1/products/{product_id}/media/{kind}"),
        };
        Self { media, url }
    }

    /// Advice about the medium: a logo that is not 290 × 290.
    pub(crate) fn warning(&self) -> Option<Warning> {
        match (self.media.kind, self.media.width, self.media.height) {
            (MediaKind::Logo, Some(w), Some(h)) => media::logo_size_warning(w, h),
            _ => None,
        }
    }
}

/// The product's view, read in one place.
fn view(db: &dyn Database, product: Product) -> ApiResult<ProductView> {
    let stored = store::steps(db, &product.id)?;
    let media = store::media(db, &product.id)?;
    let service = store::find_service_unscoped(db, &product.service_id)?;
    let mut steps: BTreeMap<Step, Option<StepData>> =
        Step::ALL.into_iter().map(|step| (step, None)).collect();
    let mut warnings = Vec::new();
    for (step, stored) in &stored {
        warnings.extend(stored.warnings.iter().cloned());
        let data = StepData::from_stored(*step, &stored.data, &service.spec)?;
        steps.insert(*step, Some(data));
    }
    let missing = missing_by_step(&stored, &media);
    let complete = missing.iter().all(|(_, m)| m.is_empty());
    let completeness = missing
        .into_iter()
        .map(|(step, missing)| {
            let complete = missing.is_empty();
            (step, Completeness { complete, missing })
        })
        .collect();
    let media: Vec<MediaView> = media
        .into_iter()
        .map(|m| MediaView::of(&product.id, m))
        .collect();
    warnings.extend(media.iter().filter_map(MediaView::warning));
    Ok(ProductView {
        product,
        steps,
        completeness,
        complete,
        warnings,
        media,
    })
}

/// A provider lists one of its services as a new draft product. Another provider's service is
/// "not found", exactly like a service that does not exist.
pub(crate) fn create(
    db: &dyn Database,
    provider: &Principal,
    service_id: &str,
    now: DateTime<Utc>,
) -> ApiResult<ProductView> {
    let service = store::find_service(db, provider, service_id)?;
    let product = store::create_product(db, provider, &service.id, now)?;
    view(db, product)
}

/// The product as the caller may see it (its provider, or an operator).
pub(crate) fn find(db: &dyn Database, caller: &Principal, id: &str) -> ApiResult<ProductView> {
    view(db, store::find_product(db, caller, id)?)
}

/// The products the caller may see, oldest first.
pub(crate) fn list(
    db: &dyn Database,
    caller: &Principal,
    status: Option<ProductStatus>,
    after: Option<&str>,
    limit: usize,
) -> ApiResult<Vec<Product>> {
    store::list_products(db, caller, status, after, limit)
}

/// What else a step's write must do in its transaction, once the step is saved (the catalog
/// entry of a published product follows its category step).
pub(crate) type AfterSave<'a> = &'a dyn Fn(&dyn Database, &str, Step) -> ApiResult<()>;

/// The provider writes one step whole: validated against the service before the transaction,
/// the edit lock re-checked inside it, and an approved category kept (409 `StepLocked` for
/// another); `after_save` runs in the same transaction.
pub(crate) fn write_step(
    db: &dyn Database,
    provider: &Principal,
    id: &str,
    step: Step,
    body: &[u8],
    now: DateTime<Utc>,
    after_save: AfterSave,
) -> ApiResult<ProductView> {
    let product = store::find_product(db, provider, id)?;
    if let Some(refusal) = product.status.refusal(Edit::Step(step)) {
        return Err(refusal);
    }
    let service = store::find_service(db, provider, &product.service_id)?;
    let validated = validate_step(step, body, &service.spec)?;
    transaction(db, |db| {
        let status = store::lock_for_edit(db, &product.id, Edit::Step(step), now)?;
        if step == Step::Category && status.category_locked() {
            let approved = store::step_data(db, &product.id, Step::Category)?;
            if approved.as_ref().map(|a| &a["category"]) != Some(&validated.data()["category"]) {
                return Err(ProductStatus::category_refusal());
            }
        }
        if step == Step::Pricing {
            store::check_billing_period_change(db, &product.id, validated.data())?;
        }
        store::save_step(db, &product.id, step, &validated, now)?;
        after_save(db, &product.id, step)
    })?;
    find(db, provider, id)
}

/// Locks a published product for a price change, in the caller's transaction (its status is
/// checked again under the lock: 409 `ProductNotPublished` for any other).
pub(crate) fn lock_for_reprice(
    db: &dyn Database,
    product_id: &str,
    now: DateTime<Utc>,
) -> ApiResult<()> {
    store::lock_for_edit(db, product_id, Edit::Reprice, now).map(drop)
}

/// Writes a published product's new pricing step (validated as the step), after
/// [`lock_for_reprice`] in the same transaction: the step new orders read.
pub(crate) fn save_repriced(
    db: &dyn Database,
    product_id: &str,
    validated: &ValidatedStep,
    now: DateTime<Utc>,
) -> ApiResult<()> {
    store::save_step(db, product_id, Step::Pricing, validated, now)
}

/// One step as stored, for its provider or an operator.
pub(crate) fn stored_step(
    db: &dyn Database,
    caller: &Principal,
    id: &str,
    step: Step,
) -> ApiResult<StepView> {
    let product = store::find_product(db, caller, id)?;
    let stored = store::steps(db, &product.id)?
        .into_iter()
        .find(|(s, _)| *s == step)
        .map(|(_, stored)| stored)
        .ok_or_else(|| ApiError::not_found("step"))?;
    let service = store::find_service_unscoped(db, &product.service_id)?;
    Ok(StepView {
        data: StepData::from_stored(step, &stored.data, &service.spec)?,
        warnings: stored.warnings,
        updated_at: stored.updated_at,
    })
}

/// The product's media, for its provider or an operator.
pub(crate) fn media_of(
    db: &dyn Database,
    caller: &Principal,
    id: &str,
) -> ApiResult<Vec<MediaView>> {
    let product = store::find_product(db, caller, id)?;
    Ok(store::media(db, &product.id)?
        .into_iter()
        .map(|m| MediaView::of(&product.id, m))
        .collect())
}

/// A file sent into a media slot: the slot (`{kind}[/{index}]`), the content type it was sent
/// as, and its bytes.
pub(crate) struct Upload<'a> {
    pub kind: MediaKind,
    pub index: Option<u32>,
    pub content_type: Option<&'a str>,
    pub bytes: &'a [u8],
}

/// The provider uploads a medium into a slot. The bytes are checked by their magic bytes and
/// written under a fresh key: the slot's old blob stays intact until the metadata pointing at
/// the new one has committed, so a failed upload leaves the listing exactly as it was.
pub(crate) fn upload_media(
    storage: &Storage,
    provider: &Principal,
    id: &str,
    upload: Upload,
    now: DateTime<Utc>,
) -> ApiResult<MediaView> {
    let Upload {
        kind,
        index,
        content_type,
        bytes,
    } = upload;
    let db = storage.db()?;
    let product = store::find_product(db, provider, id)?;
    if let Some(refusal) = product.status.refusal(Edit::PutMedia) {
        return Err(refusal);
    }
    let checked = media::check_upload(kind, index, content_type, bytes)?;
    let blob_key = format!("media/{}/{}", product.id, new_id("blob", now));
    let kv = storage.kv()?;
    if let Err(e) = put_chunked(kv, &blob_key, bytes) {
        delete_chunked(kv, &blob_key, bytes.len());
        return Err(e.into());
    }
    let saved = transaction(db, |db| {
        store::lock_for_edit(db, &product.id, Edit::PutMedia, now)?;
        store::put_media(db, &product.id, kind, index, &checked, &blob_key, now)
    });
    let (media, previous) = match saved {
        Ok(saved) => saved,
        Err(e) => {
            // Best effort: an orphaned blob is invisible (nothing points at it).
            delete_chunked(kv, &blob_key, bytes.len());
            return Err(e);
        }
    };
    if let Some(previous) = previous {
        delete_chunked(kv, &previous, kind.max_bytes());
    }
    Ok(MediaView::of(&product.id, media))
}

/// The provider empties a media slot (a required one only before the listing is submitted).
pub(crate) fn delete_media(
    storage: &Storage,
    provider: &Principal,
    id: &str,
    kind: MediaKind,
    index: Option<u32>,
    now: DateTime<Utc>,
) -> ApiResult<()> {
    let db = storage.db()?;
    let product = store::find_product(db, provider, id)?;
    let blob_key = transaction(db, |db| {
        store::lock_for_edit(db, &product.id, Edit::RemoveMedia(kind), now)?;
        store::delete_media(db, &product.id, kind, index)
    })?;
    delete_chunked(storage.kv()?, &blob_key, kind.max_bytes());
    Ok(())
}

/// A medium and the content type it was checked to have.
pub(crate) struct MediaFile {
    pub content_type: String,
    /// A name to save it under, made of the slot alone (`logo.png`, `screenshot-2.jpg`): nothing
    /// the provider typed reaches the header.
    pub file_name: String,
    pub body: MediaBody,
}

impl MediaFile {
    /// The file as an HTTP response on `builder` (the API's or the console's, with their own
    /// headers). A provider chose these bytes: browsers must not sniff them into another type,
    /// render them as a page of this origin, or run anything they contain — so the response is
    /// sandboxed and named as a file. Bytes in pieces go as a [`Chunks`] extension, streamed by
    /// the component; bytes stored whole go as the body.
    pub(crate) fn response(
        self,
        mut builder: http::response::Builder,
    ) -> ApiResult<http::Response<Vec<u8>>> {
        use http::header::{self, HeaderValue};
        let disposition = format!("inline; filename=\"{}\"", self.file_name);
        if let Some(headers) = builder.headers_mut() {
            for (name, value) in [
                (header::CONTENT_TYPE, self.content_type.as_str()),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                (
                    header::CONTENT_SECURITY_POLICY,
                    "sandbox; default-src 'none'",
                ),
                (header::CONTENT_DISPOSITION, disposition.as_str()),
            ] {
                headers.insert(
                    name,
                    HeaderValue::from_str(value).map_err(ApiError::internal)?,
                );
            }
        }
        match self.body {
            MediaBody::Whole(bytes) => builder.body(bytes),
            MediaBody::Chunks(chunks) => builder.extension(chunks).body(Vec::new()),
        }
        .map_err(ApiError::internal)
    }
}

/// Where a medium's bytes are: in pieces of the key-value store, read as they are sent, or
/// (uploaded before media were stored in pieces) whole.
pub(crate) enum MediaBody {
    Chunks(Chunks),
    Whole(Vec<u8>),
}

/// A medium of a product, for its provider or an operator; or, with no caller, of a published
/// product, for anyone.
pub(crate) fn media_file(
    storage: &Storage,
    caller: Option<&Principal>,
    id: &str,
    kind: MediaKind,
    index: Option<u32>,
) -> ApiResult<MediaFile> {
    let db = storage.db()?;
    let product = match caller {
        Some(caller) => store::find_product(db, caller, id)?,
        None => store::find_published_product(db, id)?,
    };
    let media = store::find_media(db, &product.id, kind, index)?;
    // Nothing under the key itself: the blob is in pieces.
    let body = match storage.kv()?.get(&media.blob_key)? {
        Some(whole) => MediaBody::Whole(whole),
        None => MediaBody::Chunks(Chunks::of(&media.blob_key, media.size)),
    };
    let extension = match media.content_type.as_str() {
        "image/png" => "png",
        "image/jpeg" => "jpg",
        "application/pdf" => "pdf",
        "video/mp4" => "mp4",
        _ => "bin",
    };
    let file_name = match media.index {
        Some(i) => format!("{}-{i}.{extension}", media.kind.as_str()),
        None => format!("{}.{extension}", media.kind.as_str()),
    };
    Ok(MediaFile {
        content_type: media.content_type,
        file_name,
        body,
    })
}
