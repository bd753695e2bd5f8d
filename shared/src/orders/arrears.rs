//! Arrears (docs/RULES.md R8.20): a customer whose balance a bill run took below zero is in
//! arrears from that moment. Once `arrears_grace_hours` have passed, the next bill run suspends
//! its running non-test instances — no resource fees, no usage, while it lasts — and the
//! posting that brings the balance back to zero or above (a top-up, a credit note) ends the
//! arrears and runs them again from that moment. Each suspension and resumption is recorded on
//! the instance.

use chrono::{DateTime, TimeDelta, Utc};

use crate::error::ApiResult;
use crate::orders::instance::InstanceStatus;
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
    transaction(db, |db| {
        store::start_arrears(db, now)?;
        let customers = store::lock_overdue(db, since)?;
        let mut suspended = Vec::new();
        for id in store::running_of(db, &customers)? {
            let (from, to) = (InstanceStatus::Running, InstanceStatus::Suspended);
            // One its customer stopped or released meanwhile is left as it is.
            if store::move_instance_if(db, &id, from, to, now)? {
                store::open_suspension(db, &id, now)?;
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
        }
    }
    Ok(())
}
