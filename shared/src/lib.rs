//! nestmarket's domain crate. See `docs/ARCHITECTURE.md` for the codemap and invariants.

pub mod accounts;
pub mod api;
pub mod billing;
pub mod catalog;
pub mod clock;
pub mod error;
pub mod identity;
pub mod ids;
pub mod listing;
pub mod metering;
pub mod metering_units;
pub mod migrations;
pub mod orders;
pub mod outbound;
pub mod period;
pub mod platform_usage;
pub mod pricing;
pub mod product;
pub mod review;
pub mod sales;
pub mod service;
#[cfg(feature = "spin")]
pub mod spin;
pub mod storage;
pub mod validate;
