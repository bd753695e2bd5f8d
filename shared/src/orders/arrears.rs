//! Arrears (docs/RULES.md R8.20): a customer whose balance a bill run took below zero is in
//! arrears from that moment. Once `arrears_grace_hours` have passed, the next bill run suspends
//! its running non-test instances — no resource fees, no usage, while it lasts — and the
//! posting that brings the balance back to zero or above (a top-up, a credit note) ends the
//! arrears and runs them again from that moment. Each suspension and resumption is recorded on
//! the instance; a suspension is news to the instance's customer and provider
//! (`instance.suspended`, written with it), a resumption is not.

use chrono::{DateTime, TimeDelta, Utc};

use crate::error::ApiResult;
use crate::orders::instance::{self, InstanceStatus};
use crate::orders::store;
use crate::platform::storage::{Database, transaction};

/// What a bill run does at `now` about arrears: an account below zero that is not in arrears
/// yet is from now, and the running non-test instances of every customer in arrears for
/// `grace_hours` or more are suspended at `now`. Returns the instances suspended.
pub(crate) fn suspend_overdue(
    db: &dyn Database,
    grace_hours: u32,
    now: DateTime<Utc>,
) -> ApiResult<Vec<String>> {
    let since = now - TimeDelta::hours(i64::from(grace_hours));
    transaction(db, |db| store::start_arrears(db, now))?;
    transaction(db, |db| {
        // A suspension closes its instances to usage, as a release does: their gates first, in
        // id order and before any account (a bill run's batch takes its gate before it holds
        // anything), so the pushes in flight commit before it and those arriving wait for it,
        // then find the instance suspended. Then the accounts, read again under their locks.
        let mut gated = store::running_of(db, &store::overdue(db, since, false)?)?;
        gated.sort_unstable();
        for id in &gated {
            store::close_gate(db, id)?;
        }
        let customers = store::overdue(db, since, true)?;
        let mut suspended = Vec::new();
        for id in store::running_of(db, &customers)? {
            let (from, to) = (InstanceStatus::Running, InstanceStatus::Suspended);
            // One its customer stopped or released meanwhile is left as it is, and one that
            // started running since the gates were taken is left to the next run.
            if gated.binary_search(&id).is_ok() && store::move_instance_if(db, &id, from, to, now)?
            {
                store::open_suspension(db, &id, now)?;
                instance::announce_move(db, &id, to, now)?;
                suspended.push(id);
            }
        }
        Ok(suspended)
    })
}

/// Ends a customer's arrears' suspensions, in the caller's transaction (the posting that brought
/// its balance back to zero or above): its suspended instances run again from `now`.
pub(crate) fn resume(db: &dyn Database, customer_id: &str, now: DateTime<Utc>) -> ApiResult<()> {
    for id in store::suspended_instances(db, customer_id)? {
        let (from, to) = (InstanceStatus::Suspended, InstanceStatus::Running);
        // One released meanwhile stays released.
        if store::move_instance_if(db, &id, from, to, now)? {
            store::close_suspension(db, &id, now)?;
            // Running again is no event (`instance::event_of` says why); announced all the same,
            // so that the one place that decides what is news sees every move.
            instance::announce_move(db, &id, to, now)?;
        }
    }
    Ok(())
}
