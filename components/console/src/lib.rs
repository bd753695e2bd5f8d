//! The `console` Spin component: a thin adapter from a Spin HTTP request to the domain crate's
//! web console.

// The export glue `#[http_component]` generates is unsafe code; this crate has no other.
#![allow(unsafe_code)]

use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_sdk::http_component;

#[http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    nestmarket::components::serve_console(req, out).await;
}
