//! nestmarket's domain crate: a pay-as-you-go cloud marketplace as plain functions over ports.
//!
//! One folder per marketplace capability — `identity`, `listing`, `sales`, `catalog`, `orders`,
//! `review`, `metering`, `billing`, `settlement` — each its rules and types, with its SQL in a
//! `store.rs`; the HTTP API ([`api`]) and the web console ([`console`]) over them; the ports
//! ([`platform`]: storage, clock, outbound HTTP, configuration, their Spin and native adapters)
//! below them. Dependencies point one way, api → capabilities → ports (a test, `tidy`, holds
//! it). `docs/ARCHITECTURE.md` has the
//! codemap and the invariants, `docs/RULES.md` the business rules and where each is held.
//!
//! What other crates use: the Spin components call `components` (with the `spin` feature);
//! tests and benchmarks drive [`api::handle`] and [`console::handle`] over the native adapters,
//! and [`bill_run`] and [`scheduled_run`] (what the cron component runs) directly.

#![warn(missing_docs, unreachable_pub)]

pub mod api;
mod billing;
mod catalog;
#[cfg(feature = "spin")]
pub mod components;
pub mod console;
pub mod error;
mod exact;
mod export;
mod idempotency;
mod identity;
mod listing;
mod metering;
mod money;
mod orders;
mod period;
pub mod platform;
mod review;
mod sales;
mod settlement;
mod validate;
mod webhook;

#[cfg(test)]
mod tidy;

pub use billing::run::run as bill_run;
pub use billing::{Failure, FailureCode, RunReport};
pub use identity::{AccountType, Principal, Role};
pub use settlement::{MonthClosed, ScheduledRun, scheduled_run};
pub use webhook::deliver::Report as DeliveryReport;
