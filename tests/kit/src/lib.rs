//! The marketplace's test vocabulary, one for every test layer: the API tests (the handlers over
//! SQLite or PostgreSQL) and the end-to-end tests (the app under Spin, over HTTP) say "a published product",
//! "a customer's order", "a bill run" the same way. A layer implements [`Market::call`] (and the
//! clock); every other step is written once, here.

#[cfg(feature = "native")]
pub mod engine;
mod fixtures;
#[cfg(feature = "native")]
pub mod holding;
mod json_server;
mod market;
#[cfg(feature = "native")]
pub mod native;
mod response;
mod webhook_receiver;

pub use fixtures::{jpeg, mp4, pdf, png, service_body, step_bodies};
pub use json_server::{JsonServer, prometheus_vector, query_param, serve_json};
pub use market::{Item, Market, at, cents, rfc3339, str_of, unix, usage};
pub use response::{Response, csv_rows, error_fields, error_messages};
pub use webhook_receiver::{CUSTOMER_EVENTS, Delivery, PROVIDER_EVENTS, WebhookReceiver};
