//! nestmarket's domain crate. See `docs/ARCHITECTURE.md` for the codemap and invariants.

pub mod api;
pub mod billing;
pub mod catalog;
#[cfg(feature = "spin")]
pub mod components;
pub mod error;
pub mod identity;
pub mod listing;
pub mod metering;
pub mod orders;
pub mod period;
pub mod platform;
pub mod review;
pub mod sales;
pub mod validate;

#[cfg(test)]
mod tidy;
