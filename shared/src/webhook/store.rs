//! Webhooks, the outbox of events and their deliveries in the database. Times are Unix seconds.
//! A delivery is keyed by (endpoint, event): written once with its event, claimed by
//! compare-and-set before each attempt, so two senders racing send it once per claim.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::error::{ApiError, ApiResult};
use crate::identity::Role;
use crate::platform::storage::{Database, Row, Value, enum_from_str, enum_to_str};
use crate::webhook::{Attempt, Delivery, DeliveryStatus, EventType, Webhook};

/// An event as the outbox writes it.
pub(super) struct NewEvent {
    pub(super) id: String,
    pub(super) kind: EventType,
    pub(super) provider_id: Option<String>,
    pub(super) customer_id: Option<String>,
    pub(super) data: String,
    pub(super) created_at: i64,
}

/// Rows per multi-row `INSERT`: six parameters each, far below SQLite's oldest limit of 999.
const EVENTS_PER_INSERT: usize = 100;

/// Writes events, then one pending delivery per live endpoint subscribed to each that may see
/// it (its owner is one of the event's tenants, or an operator). The events of one outbox have
/// ascending ids sharing one prefix, so the fan-out selects them by range.
pub(super) fn insert_events(db: &dyn Database, events: &[NewEvent]) -> ApiResult<()> {
    for chunk in events.chunks(EVENTS_PER_INSERT) {
        let mut params: Vec<Value> = Vec::with_capacity(chunk.len() * 6);
        for e in chunk {
            params.extend([
                e.id.clone().into(),
                e.kind.as_str().into(),
                e.provider_id.clone().into(),
                e.customer_id.clone().into(),
                e.data.clone().into(),
                e.created_at.into(),
            ]);
        }
        db.execute(
            &format!(
                "INSERT INTO webhook_events (id, type, provider_id, customer_id, data, created_at)
                 VALUES {}",
                vec!["(?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ")
            ),
            &params,
        )?;
    }
    let (Some(first), Some(last)) = (events.first(), events.last()) else {
        return Ok(());
    };
    db.execute(
        "INSERT INTO webhook_deliveries
             (webhook_id, event_id, status, attempts, next_attempt_at, created_at)
         SELECT w.id, e.id, 'pending', 0, e.created_at, e.created_at
         FROM webhook_events e JOIN webhooks w
           ON w.deleted_at IS NULL AND w.events LIKE '%,' || e.type || ',%'
          AND (w.owner_role = 'operator' OR w.owner_id = e.provider_id
               OR w.owner_id = e.customer_id)
         WHERE e.id >= ? AND e.id <= ?",
        &[first.id.clone().into(), last.id.clone().into()],
    )?;
    Ok(())
}

/// How many live endpoints a principal has.
pub(super) fn count_of(db: &dyn Database, owner_id: &str) -> ApiResult<usize> {
    let rows = db.execute(
        "SELECT COUNT(*) FROM webhooks WHERE owner_id = ? AND deleted_at IS NULL",
        &[owner_id.into()],
    )?;
    Ok(usize::try_from(rows.first().map(|r| r.int(0)).transpose()?.unwrap_or(0)).unwrap_or(0))
}

pub(super) fn insert(
    db: &dyn Database,
    webhook: &Webhook,
    role: Role,
    created_at: i64,
) -> ApiResult<()> {
    let events: Vec<&str> = webhook.events.iter().map(|e| e.as_str()).collect();
    db.execute(
        "INSERT INTO webhooks (id, owner_id, owner_role, url, events, secret, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)",
        &[
            webhook.id.clone().into(),
            webhook.owner_id.clone().into(),
            enum_to_str(&role).into(),
            webhook.url.clone().into(),
            format!(",{},", events.join(",")).into(),
            webhook.secret.clone().unwrap_or_default().into(),
            created_at.into(),
        ],
    )?;
    Ok(())
}

const COLUMNS: &str = "id, owner_id, url, events, created_at";

fn from_row(row: &Row) -> ApiResult<Webhook> {
    let events = row
        .text(3)?
        .split(',')
        .filter(|e| !e.is_empty())
        .map(|e| EventType::parse(e).ok_or_else(|| ApiError::internal("an unknown event type")))
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(Webhook {
        id: row.text(0)?,
        owner_id: row.text(1)?,
        url: row.text(2)?,
        events,
        created_at: instant(row.int(4)?),
        secret: None,
    })
}

fn instant(unix: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(unix, 0).unwrap_or_default()
}

/// A live endpoint by id, of `owner` when given.
pub(super) fn find(db: &dyn Database, id: &str, owner: Option<&str>) -> ApiResult<Option<Webhook>> {
    let rows = db.execute(
        &format!(
            "SELECT {COLUMNS} FROM webhooks
             WHERE id = ?1 AND deleted_at IS NULL AND (CAST(?2 AS TEXT) IS NULL OR owner_id = ?2)"
        ),
        &[id.into(), owner.into()],
    )?;
    rows.first().map(from_row).transpose()
}

/// Live endpoints, of `owner` when given, oldest first, after `after`.
pub(super) fn list(
    db: &dyn Database,
    owner: Option<&str>,
    after: Option<&str>,
    limit: usize,
) -> ApiResult<Vec<Webhook>> {
    let rows = db.execute(
        &format!(
            "SELECT {COLUMNS} FROM webhooks
             WHERE deleted_at IS NULL AND (CAST(?1 AS TEXT) IS NULL OR owner_id = ?1)
               AND (CAST(?2 AS TEXT) IS NULL OR id > ?2)
             ORDER BY id LIMIT ?3"
        ),
        &[owner.into(), after.into(), (limit as i64).into()],
    )?;
    rows.iter().map(from_row).collect()
}

/// Marks a live endpoint deleted; whether there was one.
pub(super) fn delete(db: &dyn Database, id: &str, owner: Option<&str>, at: i64) -> ApiResult<bool> {
    let rows = db.execute(
        "UPDATE webhooks SET deleted_at = ?3
         WHERE id = ?1 AND deleted_at IS NULL AND (CAST(?2 AS TEXT) IS NULL OR owner_id = ?2)
         RETURNING id",
        &[id.into(), owner.into(), at.into()],
    )?;
    Ok(!rows.is_empty())
}

/// An endpoint's deliveries, newest event first, after `after` (an event id), with every attempt.
pub(super) fn deliveries(
    db: &dyn Database,
    webhook_id: &str,
    after: Option<&str>,
    limit: usize,
) -> ApiResult<Vec<Delivery>> {
    let rows = db.execute(
        "SELECT d.event_id, e.type, d.status, d.created_at, d.next_attempt_at
         FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id
         WHERE d.webhook_id = ?1 AND (CAST(?2 AS TEXT) IS NULL OR d.event_id < ?2)
         ORDER BY d.event_id DESC LIMIT ?3",
        &[webhook_id.into(), after.into(), (limit as i64).into()],
    )?;
    let mut attempts = attempts_of(db, webhook_id, &rows)?;
    rows.iter()
        .map(|r| {
            let event_id = r.text(0)?;
            let status: DeliveryStatus = enum_from_str(&r.text(2)?)?;
            let next_attempt_at = r.int(4)?;
            Ok(Delivery {
                event_type: EventType::parse(&r.text(1)?)
                    .ok_or_else(|| ApiError::internal("an unknown event type"))?,
                created_at: instant(r.int(3)?),
                next_attempt_at: (status == DeliveryStatus::Pending)
                    .then(|| instant(next_attempt_at)),
                attempts: attempts.remove(&event_id).unwrap_or_default(),
                status,
                event_id,
            })
        })
        .collect()
}

/// The attempts of an endpoint's deliveries (rows whose first column is the event id).
fn attempts_of(
    db: &dyn Database,
    webhook_id: &str,
    deliveries: &[Row],
) -> ApiResult<HashMap<String, Vec<Attempt>>> {
    let mut out: HashMap<String, Vec<Attempt>> = HashMap::new();
    if deliveries.is_empty() {
        return Ok(out);
    }
    let mut params: Vec<Value> = vec![webhook_id.into()];
    for r in deliveries {
        params.push(r.text(0)?.into());
    }
    let rows = db.execute(
        &format!(
            "SELECT event_id, attempt, attempted_at, status_code, error FROM webhook_attempts
             WHERE webhook_id = ? AND event_id IN ({}) ORDER BY event_id, attempt",
            vec!["?"; deliveries.len()].join(", ")
        ),
        &params,
    )?;
    for r in &rows {
        out.entry(r.text(0)?).or_default().push(Attempt {
            attempt: r.int(1)?,
            attempted_at: instant(r.int(2)?),
            status_code: r.opt_int(3)?,
            error: r.opt_text(4)?,
        });
    }
    Ok(out)
}

/// A delivery to send: its endpoint and its event.
pub(crate) struct Due {
    pub(crate) webhook_id: String,
    pub(crate) event_id: String,
    pub(crate) attempts: i64,
    pub(crate) next_attempt_at: i64,
    /// When it was first tried, if it was.
    pub(crate) first_attempt_at: Option<i64>,
    pub(crate) url: String,
    pub(crate) secret: String,
    pub(crate) kind: String,
    pub(crate) data: String,
    pub(crate) created_at: i64,
}

const DUE_COLUMNS: &str = "d.webhook_id, d.event_id, d.attempts, d.next_attempt_at, w.url, \
     w.secret, e.type, e.data, e.created_at, d.first_attempt_at
     FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id AND w.deleted_at IS NULL
     JOIN webhook_events e ON e.id = d.event_id";

fn due_from_row(r: &Row) -> ApiResult<Due> {
    Ok(Due {
        webhook_id: r.text(0)?,
        event_id: r.text(1)?,
        attempts: r.int(2)?,
        next_attempt_at: r.int(3)?,
        url: r.text(4)?,
        secret: r.text(5)?,
        kind: r.text(6)?,
        data: r.text(7)?,
        created_at: r.int(8)?,
        first_attempt_at: r.opt_int(9)?,
    })
}

/// Where a pass over the due deliveries stands: (next attempt, webhook, event) of the last one
/// read.
pub(super) type DueKey = (i64, String, String);

/// Pending deliveries due by `now`, the longest waiting first, after `after`: a pass reads them
/// page by page, so deliveries it skips (an unreachable endpoint's) never hide the others.
pub(super) fn due(
    db: &dyn Database,
    now: i64,
    after: &DueKey,
    limit: usize,
) -> ApiResult<Vec<Due>> {
    let rows = db.execute(
        &format!(
            "SELECT {DUE_COLUMNS}
             WHERE d.status = 'pending' AND d.next_attempt_at <= ?1
               AND (d.next_attempt_at > ?2
                    OR (d.next_attempt_at = ?2 AND (d.webhook_id > ?3
                        OR (d.webhook_id = ?3 AND d.event_id > ?4))))
             ORDER BY d.next_attempt_at, d.webhook_id, d.event_id LIMIT ?5"
        ),
        &[
            now.into(),
            after.0.into(),
            after.1.clone().into(),
            after.2.clone().into(),
            (limit as i64).into(),
        ],
    )?;
    rows.iter().map(due_from_row).collect()
}

/// The never-tried deliveries of these events, whenever they are due.
pub(super) fn fresh(db: &dyn Database, event_ids: &[String]) -> ApiResult<Vec<Due>> {
    if event_ids.is_empty() {
        return Ok(Vec::new());
    }
    let params: Vec<Value> = event_ids.iter().map(Value::from).collect();
    let rows = db.execute(
        &format!(
            "SELECT {DUE_COLUMNS}
             WHERE d.status = 'pending' AND d.attempts = 0 AND d.event_id IN ({})",
            vec!["?"; event_ids.len()].join(", ")
        ),
        &params,
    )?;
    rows.iter().map(due_from_row).collect()
}

/// Takes a delivery for one attempt: moves its next attempt to `until` if nobody else took it
/// since it was read. Whether this sender has it.
pub(super) fn claim(db: &dyn Database, due: &Due, until: i64) -> ApiResult<bool> {
    let rows = db.execute(
        "UPDATE webhook_deliveries SET next_attempt_at = ?1
         WHERE webhook_id = ?2 AND event_id = ?3 AND status = 'pending'
           AND attempts = ?4 AND next_attempt_at = ?5
         RETURNING event_id",
        &[
            until.into(),
            due.webhook_id.clone().into(),
            due.event_id.clone().into(),
            due.attempts.into(),
            due.next_attempt_at.into(),
        ],
    )?;
    Ok(!rows.is_empty())
}

/// What one attempt came to, and what follows.
pub(super) struct Outcome<'a> {
    pub(super) at: i64,
    pub(super) status_code: Option<u16>,
    pub(super) error: Option<&'a str>,
    pub(super) then: DeliveryStatus,
    pub(super) next_attempt_at: i64,
}

/// Records an attempt and moves the delivery on, in the caller's transaction.
pub(super) fn record(db: &dyn Database, due: &Due, outcome: &Outcome) -> ApiResult<()> {
    let attempt = due.attempts + 1;
    db.execute(
        "INSERT INTO webhook_attempts
             (webhook_id, event_id, attempt, attempted_at, status_code, error)
         VALUES (?, ?, ?, ?, ?, ?)",
        &[
            due.webhook_id.clone().into(),
            due.event_id.clone().into(),
            attempt.into(),
            outcome.at.into(),
            outcome.status_code.map(i64::from).into(),
            outcome.error.into(),
        ],
    )?;
    db.execute(
        "UPDATE webhook_deliveries SET attempts = ?1, status = ?2, next_attempt_at = ?3,
             first_attempt_at = COALESCE(first_attempt_at, ?6)
         WHERE webhook_id = ?4 AND event_id = ?5",
        &[
            attempt.into(),
            enum_to_str(&outcome.then).into(),
            outcome.next_attempt_at.into(),
            due.webhook_id.clone().into(),
            due.event_id.clone().into(),
            outcome.at.into(),
        ],
    )?;
    Ok(())
}
