//! A listing's media: what is uploaded, with previews and the logo's size advice, uploads and
//! removals, and the files themselves for the provider and the reviewing operators.

use http::StatusCode;
use maud::html;

use super::listing::{medium, product_name, warnings};
use super::provider::steps_nav;
use crate::console::form::{field, multipart};
use crate::console::http::{Req, Resp, file as file_response, html, redirect};
use crate::console::layout::{Chrome, page};
use crate::error::{ApiError, ApiResult, Code};
use crate::identity::{Principal, Role};
use crate::listing::media::MediaKind;
use crate::listing::product;

/// Every slot a listing has: `logo`, `screenshot/1` … as (value, label).
fn slots() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for kind in MediaKind::ALL {
        let label = crate::console::format::words(kind.as_str());
        if kind.is_multi() {
            for i in 1..=kind.max_items() {
                out.push((format!("{}/{i}", kind.as_str()), format!("{label} {i}")));
            }
        } else {
            out.push((kind.as_str().to_owned(), label));
        }
    }
    out
}

/// A slot's kind and index from `kind` or `kind/index`.
fn parse_slot(slot: &str) -> ApiResult<(MediaKind, Option<u32>)> {
    let (kind, index) = slot
        .split_once('/')
        .map_or((slot, None), |(k, i)| (k, Some(i)));
    let kind = MediaKind::parse(kind).ok_or_else(|| ApiError::not_found("media kind"))?;
    let index = index
        .map(|i| {
            i.parse::<u32>().map_err(|_| {
                ApiError::new(
                    Code::InvalidMediaIndex,
                    "the media index is a positive integer",
                )
            })
        })
        .transpose()?;
    Ok((kind, index))
}

fn media_page(
    req: &Req,
    chrome: &Chrome,
    me: &Principal,
    id: &str,
    problem: Option<&ApiError>,
) -> ApiResult<Resp> {
    let view = product::find(req.db()?, me, id)?;
    let content = html! {
        (steps_nav(&view, None))
        (warnings(&view))
        p { "The logo (PNG, 290 × 290 px recommended) and the user guide (PDF) are required before review; screenshots and certifications are PNG or JPEG, the video MP4." }
        @if let Some(p) = problem { div.summary role="alert" { p { strong { (p.detail) } } } }
        form.narrow method="post" action={ "/products/" (view.product.id) "/media" } enctype="multipart/form-data" {
            (chrome.csrf_field())
            div.field {
                label for="slot" { "Slot" }
                select id="slot" name="slot" {
                    @for (value, label) in slots() { option value=(value) { (label) } }
                }
            }
            div.field.invalid[problem.is_some()] {
                label for="file" { "File" }
                input id="file" name="file" type="file" accept="image/png,image/jpeg,application/pdf,video/mp4" required;
            }
            button type="submit" { "Upload" }
        }
        h2 { "Uploaded" }
        @if view.media.is_empty() { p { "Nothing uploaded yet." } }
        div.gallery {
            @for m in &view.media {
                div {
                    (medium(&view.product.id, m))
                    form method="post" action={ "/products/" (view.product.id) "/media/delete" } {
                        (chrome.csrf_field())
                        input type="hidden" name="slot" value={ (m.media.kind.as_str()) @if let Some(i) = m.media.index { "/" (i) } };
                        button.secondary type="submit" { "Remove" }
                    }
                }
            }
        }
    };
    let status = problem.map_or(StatusCode::OK, ApiError::status);
    Ok(html(
        status,
        page(chrome, &format!("{}: media", product_name(&view)), content),
    ))
}

/// `GET /products/{id}/media`.
pub(crate) fn show(req: &Req, chrome: &Chrome, me: &Principal, id: &str) -> ApiResult<Resp> {
    me.require(&[Role::Provider])?;
    media_page(req, chrome, me, id, None)
}

/// `POST /products/{id}/media` (multipart): the file into its slot, checked by its bytes.
pub(crate) fn upload(req: &Req, chrome: &Chrome, me: &Principal, id: &str) -> ApiResult<Resp> {
    me.require(&[Role::Provider])?;
    let parts = multipart(req.header("content-type").unwrap_or(""), &req.body)?;
    let slot = parts
        .iter()
        .find(|p| p.name == "slot")
        .map(|p| String::from_utf8_lossy(&p.data).into_owned())
        .unwrap_or_default();
    let file = parts
        .iter()
        .find(|p| p.name == "file" && p.filename.is_some());
    let uploaded = parse_slot(&slot).and_then(|(kind, index)| {
        let upload = product::Upload {
            kind,
            index,
            content_type: file.and_then(|f| f.content_type.as_deref()),
            bytes: file.map_or(&[][..], |f| f.data.as_slice()),
        };
        product::upload_media(req.storage, me, id, upload, req.now)
    });
    match uploaded {
        Ok(_) => redirect(&format!("/products/{id}/media")),
        Err(e) if e.status().is_client_error() && e.code != Code::NotFound => {
            media_page(req, chrome, me, id, Some(&e))
        }
        Err(e) => Err(e),
    }
}

/// `POST /products/{id}/media/delete`.
pub(crate) fn delete(req: &Req, me: &Principal, id: &str) -> ApiResult<Resp> {
    me.require(&[Role::Provider])?;
    let (kind, index) = parse_slot(&field(req, "slot").unwrap_or_default())?;
    product::delete_media(req.storage, me, id, kind, index, req.now)?;
    redirect(&format!("/products/{id}/media"))
}

/// `GET /products/{id}/media/{kind}[/{index}]`: the bytes, to the provider and operators.
pub(crate) fn file(
    req: &Req,
    me: &Principal,
    id: &str,
    kind: &str,
    index: Option<&str>,
) -> ApiResult<Resp> {
    me.require(&[Role::Provider, Role::Operator])?;
    let slot = match index {
        Some(i) => format!("{kind}/{i}"),
        None => kind.to_owned(),
    };
    let (kind, index) = parse_slot(&slot)?;
    let found = product::media_file(req.storage, Some(me), id, kind, index)?;
    file_response(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_name_every_kind_and_index() {
        let slots = slots();
        assert!(slots.iter().any(|(v, _)| v == "logo"));
        assert!(slots.iter().any(|(v, _)| v == "screenshot/10"));
        assert!(!slots.iter().any(|(v, _)| v == "screenshot/11"));
        assert_eq!(
            parse_slot("certification/6").unwrap(),
            (MediaKind::Certification, Some(6))
        );
        assert_eq!(parse_slot("poster").unwrap_err().code, Code::NotFound);
    }
}
