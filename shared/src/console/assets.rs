//! The console's static files, embedded when the crate is built: nothing is read at run time.
//! Each is served under a URL carrying its content hash, so browsers may keep it for a year and
//! a new build is fetched at once; its `ETag` is the same hash.

use sha2::{Digest, Sha256};

use super::http::{Req, Resp, asset};
use crate::error::{ApiError, ApiResult};

const STYLESHEET: &str = include_str!("assets/console.css");
/// The tab icon: without one, browsers ask for `/favicon.ico` on every page.
const ICON: &str = include_str!("assets/icon.svg");

/// The hash of a file's bytes, as its version and `ETag`.
fn version(bytes: &[u8]) -> String {
    hex::encode(&Sha256::digest(bytes)[..8])
}

/// Where pages link the stylesheet.
pub(crate) fn stylesheet_url() -> String {
    format!("/assets/console.css?v={}", version(STYLESHEET.as_bytes()))
}

/// Where pages link the icon.
pub(crate) fn icon_url() -> String {
    format!("/assets/icon.svg?v={}", version(ICON.as_bytes()))
}

/// `GET /assets/{name}`.
pub(crate) fn serve(req: &Req, name: &str) -> ApiResult<Resp> {
    match name {
        "console.css" => asset(
            req,
            "text/css; charset=utf-8",
            &version(STYLESHEET.as_bytes()),
            STYLESHEET.as_bytes(),
        ),
        "icon.svg" => asset(
            req,
            "image/svg+xml",
            &version(ICON.as_bytes()),
            ICON.as_bytes(),
        ),
        _ => Err(ApiError::not_found("asset")),
    }
}
