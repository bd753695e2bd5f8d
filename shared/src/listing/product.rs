//! A product: the listing of one service, its status in the review lifecycle, its steps as
//! stored and its media, and what it still lacks before review.

use serde::Serialize;

use crate::listing::media::MediaKind;
use crate::listing::{ProductStatus, Step, Warning};

#[derive(Debug, Clone, Serialize)]
pub struct Product {
    pub id: String,
    pub service_id: String,
    pub provider_id: String,
    pub status: ProductStatus,
    pub created_at: String,
    pub updated_at: String,
}

/// A step as stored: its normalized JSON and the warnings found when it was written.
#[derive(Debug, Clone, Serialize)]
pub struct StoredStep {
    pub data: serde_json::Value,
    pub warnings: Vec<Warning>,
    pub updated_at: String,
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
