//! Service instances: what an order deploys. An instance runs, stops, starts again and is
//! released; its running intervals are recorded exactly, because they are the usage of items the
//! platform's Time source reports.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult, Code};
use crate::identity::{Principal, Role};
use crate::listing::service::Resource;
use crate::money::Cents;
use crate::orders::store;
use crate::period::{BillingPeriod, Period};
use crate::platform::storage::{Database, StorageError, transaction};
use crate::webhook::{self, EventType, Tenants};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum InstanceStatus {
    Running,
    Stopped,
    /// Stopped by a bill run while its customer's arrears outlast the grace; running again
    /// when a top-up ends them.
    Suspended,
    Released,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Action {
    Stop,
    Start,
    Release,
}

/// The refusal of what a customer in arrears may not do (R8.7, R8.20).
pub(crate) fn in_arrears(what: &str) -> ApiError {
    ApiError::new(
        Code::AccountInArrears,
        format!("the account balance is below zero: top up before {what}"),
    )
}

/// The instance lifecycle: running ⇄ stopped, any → released, released accepts nothing; a
/// suspended instance is started again only by the top-up that ends its customer's arrears.
pub(crate) fn act(from: InstanceStatus, action: Action) -> ApiResult<InstanceStatus> {
    use Action::*;
    use InstanceStatus::*;
    match (from, action) {
        (Released, _) => Err(ApiError::new(
            Code::InstanceReleased,
            "the instance is released",
        )),
        (Suspended, Start) => Err(in_arrears(
            "starting it: it runs again once the arrears end",
        )),
        (Running, Stop) => Ok(Stopped),
        (Stopped, Start) => Ok(Running),
        (_, Release) => Ok(Released),
        (s, a) => Err(ApiError::new(
            Code::InvalidInstanceAction,
            format!("a {s:?} instance cannot {a:?}").to_lowercase(),
        )),
    }
}

/// One suspension of an instance for its customer's arrears: from when, and until the top-up
/// that resumed it (`None` while it lasts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct Suspension {
    #[serde(with = "crate::platform::clock::instant")]
    pub suspended_at: DateTime<Utc>,
    #[serde(with = "crate::platform::clock::instant::option")]
    pub resumed_at: Option<DateTime<Utc>>,
}

impl Suspension {
    /// Whether the window `[start, end)` (Unix seconds) lies inside the suspension: it starts
    /// once the instance was suspended and ends before it resumed.
    pub(crate) fn holds(&self, start: i64, end: i64) -> bool {
        start >= self.suspended_at.timestamp()
            && self.resumed_at.is_none_or(|r| end <= r.timestamp())
    }
}

/// A half-open running interval `[started_at, ended_at)` in Unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct RunningInterval {
    pub started_at: i64,
    pub ended_at: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Instance {
    pub id: String,
    pub order_id: String,
    pub owner_id: String,
    pub product_id: String,
    pub provider_id: String,
    pub template_id: String,
    pub plan_id: Option<String>,
    pub region: String,
    pub status: InstanceStatus,
    pub test: bool,
    #[serde(with = "crate::platform::clock::instant")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "crate::platform::clock::instant::option")]
    pub released_at: Option<DateTime<Utc>>,
    /// The zone its day periods are cut in: the deployment's `billing_timezone` when it was
    /// ordered. A later change of the variable leaves it alone, so its billing cursor keeps
    /// standing on its own period boundaries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub billing_timezone: Option<String>,
    /// The cloud resources it deploys and their hourly fees, as its template had them when it
    /// was ordered: what its bills charge per running hour.
    pub resources: Vec<Resource>,
    pub running_intervals: Vec<RunningInterval>,
    /// Its suspensions for its customer's arrears, oldest first.
    pub suspensions: Vec<Suspension>,
    /// The EULA its order accepted (read with the instance alone, not in batches); `None` for
    /// an order placed before accepted EULAs were recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eula: Option<crate::orders::AcceptedEula>,
    /// The version of its product's prices its order was placed under: it prices the instance
    /// at once, later versions from when they take effect.
    pub pricing_version: i64,
}

impl Instance {
    /// When the order deployed it: the start of its first running interval.
    pub(crate) fn created(&self) -> Option<DateTime<Utc>> {
        self.running_intervals
            .first()
            .and_then(|i| DateTime::from_timestamp(i.started_at, 0))
    }

    /// The zone its periods are cut in; `deployment` for an instance ordered before instances
    /// recorded theirs.
    pub(crate) fn zone(&self, deployment: Tz) -> Tz {
        self.billing_timezone
            .as_deref()
            .and_then(|z| z.parse().ok())
            .unwrap_or(deployment)
    }

    /// The next period to bill after `period`, or `None` once `period` is its last: the one in
    /// which it was released, or the one its release ends exactly (nothing runs, and no usage
    /// is accepted, from the release on).
    pub(crate) fn period_after(
        &self,
        period: &Period,
        kind: BillingPeriod,
        tz: Tz,
    ) -> Option<Period> {
        match self.released() {
            Some(r) if r <= period.end => None,
            _ => Some(period.next(kind, tz)),
        }
    }

    /// Whether the window `[start, end)` (Unix seconds) lies inside one of its suspensions.
    pub(crate) fn suspended_during(&self, start: i64, end: i64) -> bool {
        self.suspensions.iter().any(|s| s.holds(start, end))
    }

    /// When it was released, if it was. Usage and billing end here, not at an earlier stop: a
    /// stopped instance still holds resources (storage, reserved capacity) until released.
    pub(crate) fn released(&self) -> Option<DateTime<Utc>> {
        self.released_at
    }
}

/// The instance if the caller may see it: its owner, the product's provider, an operator or the
/// platform (which reports usage of any instance). Anyone else gets 404.
pub(crate) fn find(db: &dyn Database, caller: &Principal, id: &str) -> ApiResult<Instance> {
    let instance = store::find_instance(db, id)?;
    let visible = caller.is_operator()
        || caller.role == Role::Platform
        || instance.owner_id == caller.id
        || instance.provider_id == caller.id;
    if visible {
        Ok(instance)
    } else {
        Err(ApiError::not_found("instance"))
    }
}

/// The instances the caller may see, oldest first: a customer its own, a provider those of its
/// products, operators every one.
pub(crate) fn list(
    db: &dyn Database,
    caller: &Principal,
    after: Option<&str>,
    limit: usize,
) -> ApiResult<Vec<Instance>> {
    let scope = match caller.role {
        Role::Operator => (None, None),
        Role::Provider => (None, Some(caller.id.clone())),
        _ => (Some(caller.id.clone()), None),
    };
    let ids = store::list_instance_ids(db, scope, after, limit)?;
    let mut found = store::find_instances(db, &ids)?;
    Ok(ids.iter().filter_map(|id| found.remove(id)).collect())
}

/// Waits for the instance's gate and holds it alone until the caller's transaction ends (on
/// PostgreSQL; nothing on SQLite, where the transaction holds the database's one write lock).
///
/// The gate is an advisory lock of the instance that every push of its usage holds *shared*
/// within its statement, before it locks the instance's row and billing cursor to read them.
/// Whatever closes the instance to usage — a bill run moving its cursor, a write-off, a release
/// — takes it alone first. PostgreSQL's row locks let new shared lockers (a stream of pushes)
/// pass an exclusive one that waits, for as long as they keep overlapping; its lock manager
/// queues them behind it instead. So a push arriving while a run or a release waits for the
/// instance waits behind it, and that wait ends once the pushes in flight have committed.
pub(crate) fn close_gate(db: &dyn Database, id: &str) -> Result<(), StorageError> {
    store::close_gate(db, id)
}

/// The instance's suspensions for its customer's arrears, oldest first: read in the caller's
/// transaction, once it holds the instance's gate, they are all there are.
pub(crate) fn suspensions(db: &dyn Database, id: &str) -> ApiResult<Vec<Suspension>> {
    store::suspensions_of(db, id)
}

/// The key of the instance's gate ([`close_gate`]), which a push's statement takes shared.
pub(crate) fn gate_key(id: &str) -> i64 {
    store::gate_key(id)
}

/// The owner stops, starts or releases its instance: a compare-and-set on the status, and the
/// running interval closed or opened at `now()`, in one transaction. The provider sees the
/// instance; only its owner operates it, and operators may release any (an instance that can
/// never be billed must stop running up periods). The clock is read once the instance is held:
/// a release waits for the pushes in flight, and is later than any window they stored.
pub(crate) fn perform(
    db: &dyn Database,
    caller: &Principal,
    id: &str,
    action: Action,
    now: &dyn Fn() -> DateTime<Utc>,
) -> ApiResult<Instance> {
    transaction(db, |db| {
        store::lock_instances(db, &[id])?;
        let instance = find(db, caller, id)?;
        let operator_release = caller.is_operator() && action == Action::Release;
        if instance.owner_id != caller.id && !operator_release {
            return Err(ApiError::forbidden());
        }
        let to = act(instance.status, action)?;
        // Starting runs up resource fees again: not on an account that already owes.
        if to == InstanceStatus::Running && store::balance_cents(db, &instance.owner_id)? < Cents(0)
        {
            return Err(in_arrears("starting an instance"));
        }
        move_status(db, &instance.id, instance.status, to, now())?;
        store::find_instance(db, id)
    })
}

/// Moves an instance from one status to another (compare-and-set) and announces the move, in
/// the same transaction.
fn move_status(
    db: &dyn Database,
    id: &str,
    from: InstanceStatus,
    to: InstanceStatus,
    now: DateTime<Utc>,
) -> ApiResult<()> {
    store::move_instance(db, id, from, to, now)?;
    announce_move(db, id, to, now)
}

/// The event a move to `to` is to the instance's customer and provider, if any: a release is
/// `instance.released`, a suspension for arrears `instance.suspended`. Running again is never
/// news, whatever it follows: a start is the customer's own doing, and so is the posting that
/// ends a suspension (a top-up; an operator's credit note is `credit_note.issued`), whose
/// instance shows `running` and its suspension's `resumed_at`. Stopping is the customer's own.
fn event_of(to: InstanceStatus) -> Option<EventType> {
    match to {
        InstanceStatus::Released => Some(EventType::InstanceReleased),
        InstanceStatus::Suspended => Some(EventType::InstanceSuspended),
        InstanceStatus::Running | InstanceStatus::Stopped => None,
    }
}

/// Writes the event of the instance's move to `to` (see [`event_of`]), the instance as it now
/// is, for its customer and provider, in the caller's transaction: every move that is news goes
/// through here, whoever makes it.
pub(super) fn announce_move(
    db: &dyn Database,
    id: &str,
    to: InstanceStatus,
    now: DateTime<Utc>,
) -> ApiResult<()> {
    let Some(kind) = event_of(to) else {
        return Ok(());
    };
    let instance = store::find_instance(db, id)?;
    let tenants = Tenants {
        provider: Some(&instance.provider_id),
        customer: Some(&instance.owner_id),
    };
    webhook::emit(db, kind, tenants, &instance, now)
}

/// Ends a product's self-test: its test instances still alive are released at `now`, so their
/// last bill is the period of the publication and no free instance outlives the self-test. The
/// caller holds the product's row, so no test order adds one meanwhile.
pub(crate) fn release_test_instances(
    db: &dyn Database,
    product_id: &str,
    now: DateTime<Utc>,
) -> ApiResult<()> {
    let alive = store::live_test_instances(db, product_id)?;
    let ids: Vec<&str> = alive.iter().map(|(id, _)| id.as_str()).collect();
    store::lock_instances(db, &ids)?;
    for (id, status) in store::live_test_instances(db, product_id)? {
        move_status(db, &id, status, InstanceStatus::Released, now)?;
    }
    Ok(())
}

/// Releases every test instance that has lived `max_hours` by `as_of`, at the moment its time
/// ran out: a test deployment is bounded, and its last bill is of the period it ended in. Each
/// in a transaction of its own, so none waits for another's pushes; one that fails is left for
/// the next run, and the first failure answered once the others are released.
pub(crate) fn expire_test_instances(
    db: &dyn Database,
    max_hours: u32,
    as_of: DateTime<Utc>,
) -> ApiResult<()> {
    let lifetime = chrono::TimeDelta::hours(i64::from(max_hours));
    let deployed_by = (as_of - lifetime).timestamp();
    let mut outcome = Ok(());
    for (id, _, deployed) in store::test_instances_deployed_by(db, deployed_by)? {
        let ended = DateTime::from_timestamp(deployed, 0).unwrap_or_default() + lifetime;
        let released = transaction(db, |db| {
            store::lock_instances(db, &[&id])?;
            let status = store::find_instance(db, &id)?.status;
            if status == InstanceStatus::Released {
                return Ok(());
            }
            move_status(db, &id, status, InstanceStatus::Released, ended)
        });
        if outcome.is_ok() {
            outcome = released;
        }
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use Action::*;
    use InstanceStatus::*;

    #[test]
    fn a_suspended_instance_is_released_or_waits_for_its_customers_top_up() {
        assert_eq!(
            act(Suspended, Start).unwrap_err().code,
            Code::AccountInArrears
        );
        assert_eq!(
            act(Suspended, Stop).unwrap_err().code,
            Code::InvalidInstanceAction
        );
        assert_eq!(act(Suspended, Release).unwrap(), Released);
    }

    #[test]
    fn a_window_is_inside_a_suspension_from_its_start_to_its_resumption() {
        let at = |t: i64| DateTime::from_timestamp(t, 0).unwrap();
        let open = Suspension {
            suspended_at: at(100),
            resumed_at: None,
        };
        assert!(open.holds(100, 500) && !open.holds(99, 500));
        let over = Suspension {
            suspended_at: at(100),
            resumed_at: Some(at(400)),
        };
        assert!(over.holds(100, 400) && !over.holds(100, 401) && !over.holds(400, 700));
    }

    #[test]
    fn a_release_or_a_suspension_is_news_to_the_instances_tenants_and_running_or_stopping_is_not() {
        assert_eq!(event_of(Released), Some(EventType::InstanceReleased));
        assert_eq!(event_of(Suspended), Some(EventType::InstanceSuspended));
        assert_eq!(event_of(Running), None);
        assert_eq!(event_of(Stopped), None);
    }

    #[test]
    fn the_instance_lifecycle() {
        assert_eq!(act(Running, Stop).unwrap(), Stopped);
        assert_eq!(act(Stopped, Start).unwrap(), Running);
        assert_eq!(act(Running, Release).unwrap(), Released);
        assert_eq!(act(Stopped, Release).unwrap(), Released);
        assert_eq!(
            act(Running, Start).unwrap_err().code,
            Code::InvalidInstanceAction
        );
        assert_eq!(
            act(Stopped, Stop).unwrap_err().code,
            Code::InvalidInstanceAction
        );
        for a in [Stop, Start, Release] {
            assert_eq!(act(Released, a).unwrap_err().code, Code::InstanceReleased);
        }
    }
}
