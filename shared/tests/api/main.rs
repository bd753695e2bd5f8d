//! The API tests: the domain's HTTP handlers over real SQLite (the rusqlite adapter, a new
//! connection per request as Spin opens them), request in, response out — every rule, every
//! refusal (a clear 4xx, nothing changed), every tenant boundary. One binary, one vocabulary
//! (`helpers`).

mod helpers;

mod billing;
mod identity;
mod listings;
mod metering;
mod orders;
mod reviews;
mod robustness;
