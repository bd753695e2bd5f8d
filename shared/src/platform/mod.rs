//! The ports at the bottom of the crate: storage, the clock, ids, outbound HTTP and the Spin adapter.

pub(crate) mod clock;
pub mod config;
pub(crate) mod ids;
pub mod outbound;
#[cfg(feature = "spin")]
pub mod spin;
pub mod storage;
