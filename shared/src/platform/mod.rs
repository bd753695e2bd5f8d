//! The ports at the bottom of the crate: storage, the clock, ids, outbound HTTP and the Spin adapter.

pub(crate) mod clock;
pub mod config;
pub(crate) mod ids;
pub mod outbound;
#[cfg(feature = "spin")]
pub mod spin;
pub mod storage;

/// What to do with a request body that may be larger than a JSON body (a media file), decided
/// from the request's head before any of it is read (`api::before_large_body`,
/// `console::before_large_body`; the components read accordingly).
#[derive(Debug)]
pub enum LargeBody {
    /// Its sender may send it: read it.
    Read,
    /// The method takes no file there (a `GET`, a `DELETE`, a method routing answers 405 to):
    /// served without reading the body.
    Skip,
    /// Answered so, without reading the body: its sender may not upload.
    Refuse(Box<http::Response<Vec<u8>>>),
}
