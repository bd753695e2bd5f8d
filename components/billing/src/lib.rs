//! The `billing` Spin component: the scheduled bill run and month close, triggered by the cron
//! trigger plugin. The event's timestamp is "now", so a late or repeated event bills exactly
//! what it should.

// The bindings wit-bindgen generates for the cron world export raw symbols: unsafe code, and
// the only unsafe code in this crate.
#![allow(unsafe_code)]

spin_sdk::wit_bindgen::generate!({
    world: "spin-cron",
    path: "wit/spin-cron.wit",
    runtime_path: "::spin_sdk::wit_bindgen::rt",
});

struct Billing;

impl Guest for Billing {
    fn handle_cron_event(metadata: Metadata) -> Result<(), Error> {
        let report =
            nestmarket::components::scheduled_bill_run(metadata.timestamp).map_err(Error::Other)?;
        println!("scheduled run: {report}");
        Ok(())
    }
}

export!(Billing);
