//! The API tests: the domain's HTTP handlers over real SQLite (the rusqlite adapter, a new
//! connection per request as Spin opens them), request in, response out — every rule, every
//! refusal (a clear 4xx, nothing changed), every tenant boundary. One binary; the vocabulary is
//! the test kit's (`testkit::Market`), over its in-process market (`testkit::native::TestApp`).

mod bill_runs;
mod bill_usage;
mod billing;
mod console;
mod console_after_publication;
mod console_forms;
mod delisting;
mod exact;
mod exports;
mod fuzz;
mod idempotency;
mod identity;
mod limits;
mod listings;
mod metering;
mod orders;
mod outbound;
mod price_changes;
mod reviews;
mod robustness;
mod security;
mod self_test;
mod settlements;
mod webhooks;
