//! A listing as its provider and the reviewing operators see it: its steps, media and warnings.

use maud::{Markup, html};
use serde_json::Value;

use crate::console::format::{name_of, words};
use crate::listing::Step;
use crate::listing::media::MediaKind;
use crate::listing::product::{MediaView, ProductView};

/// The name a product goes by: its access step's product name, else its id.
pub(crate) fn product_name(view: &ProductView) -> String {
    view.product_name()
        .map_or_else(|| view.product.id.clone(), str::to_owned)
}

/// Where the console serves a medium of a product (to its provider and operators).
pub(crate) fn media_url(product_id: &str, kind: MediaKind, index: Option<u32>) -> String {
    match index {
        Some(i) => format!("/products/{product_id}/media/{}/{i}", kind.as_str()),
        None => format!("/products/{product_id}/media/{}", kind.as_str()),
    }
}

/// A stored step as nested lists of its fields.
pub(crate) fn json_view(value: &Value) -> Markup {
    html! {
        @match value {
            Value::Object(fields) => {
                dl.json {
                    @for (k, v) in fields.iter().filter(|(_, v)| !v.is_null()) {
                        dt { (words(k)) }
                        dd { (json_view(v)) }
                    }
                }
            }
            Value::Array(items) if items.is_empty() => { "none" }
            Value::Array(items) => { ol.json { @for v in items { li { (json_view(v)) } } } }
            Value::String(s) => { span.prose { (s) } }
            Value::Bool(b) => { (if *b { "yes" } else { "no" }) }
            other => { (other.to_string()) }
        }
    }
}

/// One medium: a preview for pictures and the video, a link for the user guide.
pub(crate) fn medium(product_id: &str, m: &MediaView) -> Markup {
    let url = media_url(product_id, m.media.kind, m.media.index);
    let what = match m.media.index {
        Some(i) => format!("{} {i}", words(m.media.kind.as_str())),
        None => words(m.media.kind.as_str()),
    };
    html! {
        figure.medium {
            @match m.media.kind {
                MediaKind::Video => { video src=(url) controls preload="metadata" { } }
                MediaKind::UserGuide => { a href=(url) { "Open the user guide (PDF)" } }
                _ => { img src=(url) alt=(what); }
            }
            figcaption {
                (what) ": " (m.media.content_type) ", " (m.media.size) " bytes"
                @if let (Some(w), Some(h)) = (m.media.width, m.media.height) { ", " (w) " × " (h) " px" }
            }
        }
    }
}

/// The listing's advice: accepted, but not as the marketplace recommends.
pub(crate) fn warnings(view: &ProductView) -> Markup {
    html! {
        @if !view.warnings.is_empty() {
            div.notice role="status" {
                h2 { "Warnings" }
                ul { @for w in &view.warnings { li { code { (w.field) } ": " (w.message) } } }
            }
        }
    }
}

/// Every step of the listing, as stored, and every medium.
pub(crate) fn whole(view: &ProductView) -> Markup {
    html! {
        @for step in Step::ALL {
            section {
                h2 { (words(step.as_str())) }
                @match view.step(step).and_then(|data| serde_json::to_value(data).ok()) {
                    Some(data) => { (json_view(&data)) }
                    None => { p { "Not written yet." } }
                }
            }
        }
        section {
            h2 { "Media" }
            @if view.media.is_empty() { p { "No media uploaded." } }
            div.gallery { @for m in &view.media { (medium(&view.product.id, m)) } }
        }
    }
}

/// The product's status in words.
pub(crate) fn status(view: &ProductView) -> String {
    name_of(&view.product.status)
}
