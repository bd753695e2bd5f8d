//! The outbound HTTP port: how bill runs reach a provider's Prometheus. Components use Spin's
//! outbound HTTP (allow-listed per component in `spin.toml`); native tests use a plain HTTP/1.1
//! client against a real local server.

/// A blocking GET. `Err` carries a message for the run report (unreachable, denied, timeout).
pub trait Outbound {
    /// GETs `url`: its status and body, or why it could not be reached.
    fn get(&self, url: &str) -> Result<(u16, Vec<u8>), String>;
}

#[cfg(not(target_family = "wasm"))]
pub mod native;
