//! The `console` Spin component: a thin adapter from a Spin HTTP request to the domain crate's
//! web console.

// The export glue `#[http_component]` generates is unsafe code; this crate has no other.
#![allow(unsafe_code)]

use spin_sdk::http_component;

#[http_component]
fn handle(req: http::Request<Vec<u8>>) -> http::Response<Vec<u8>> {
    nestmarket::components::console(req)
}
