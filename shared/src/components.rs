//! The entry points of the Spin components: each component's one line calls one of these, which
//! wire Spin's adapters (`platform::spin`) into the HTTP API, the web console or the scheduled
//! bill run.

use crate::api::{self, Api};
use crate::platform::spin::{SpinBackend, SpinOutbound, config};
use crate::platform::storage::Storage;

/// Serves one HTTP request of `api` with Spin's stores, variables and clock.
pub fn serve(api: Api, req: http::Request<Vec<u8>>) -> http::Response<Vec<u8>> {
    match config() {
        Ok(config) => {
            let storage = Storage::new(SpinBackend);
            api::handle(
                api,
                req,
                &storage,
                &SpinOutbound,
                &config,
                chrono::Utc::now(),
            )
        }
        Err(e) => api::problem(&e),
    }
}

/// Serves one request of the web console with Spin's stores, variables and clock.
pub fn console(req: http::Request<Vec<u8>>) -> http::Response<Vec<u8>> {
    match config() {
        Ok(config) => {
            let storage = Storage::new(SpinBackend);
            crate::console::handle(req, &storage, &SpinOutbound, &config, chrono::Utc::now())
        }
        Err(e) => api::problem(&e),
    }
}

/// The scheduled bill run of the `billing` cron component, with the event's timestamp as "now".
pub fn scheduled_bill_run(timestamp: u64) -> Result<String, String> {
    let config = config().map_err(|e| e.detail)?;
    let storage = Storage::new(SpinBackend);
    let now = i64::try_from(timestamp)
        .ok()
        .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
        .ok_or_else(|| format!("timestamp {timestamp} is out of range"))?;
    // As the built-in operator, as of the event's time: a late or repeated event bills exactly
    // what it should.
    let report = crate::billing::run::run(
        storage.db().map_err(|e| e.detail)?,
        &SpinOutbound,
        config.billing_timezone,
        now,
        now,
        &crate::identity::Principal::built_in_operator(),
    )
    .map_err(|e| e.detail)?;
    serde_json::to_string(&report).map_err(|e| e.to_string())
}
