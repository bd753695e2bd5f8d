//! Signed webhooks: a principal's endpoints, the events written to an outbox in the transaction
//! of the change they report, and their delivery, at least once, signed with the endpoint's
//! secret.
//!
//! - Emitting is one call in the change's transaction ([`emit`], or an [`Outbox`] for many): the
//!   event, and one delivery per endpoint subscribed to it that may see it, are written with the
//!   change or not at all.
//! - [`deliver`]: deliveries are sent outside any transaction — right after the request that
//!   emitted them ([`deliver::deliver_emitted`]) and by the schedule until they succeed or 72
//!   hours pass ([`deliver::deliver_due`]) — each attempt recorded.
//! - [`sign`]: `Nestmarket-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">`.

pub(crate) mod deliver;
pub(crate) mod sign;
mod store;

use std::cell::RefCell;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{ApiError, ApiResult, Code};
use crate::identity::{Principal, Role};
use crate::platform::clock::rfc3339;
use crate::platform::ids::{IdSequence, new_id, random_bytes};
use crate::platform::storage::{Database, transaction};
use crate::validate::Errors;

/// What happened, as a webhook names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum EventType {
    #[serde(rename = "order.created")]
    OrderCreated,
    #[serde(rename = "instance.released")]
    InstanceReleased,
    #[serde(rename = "instance.suspended")]
    InstanceSuspended,
    #[serde(rename = "bill.issued")]
    BillIssued,
    #[serde(rename = "credit_note.issued")]
    CreditNoteIssued,
    #[serde(rename = "review.decided")]
    ReviewDecided,
    #[serde(rename = "product.published")]
    ProductPublished,
    #[serde(rename = "product.delisted")]
    ProductDelisted,
    #[serde(rename = "settlement.closed")]
    SettlementClosed,
    #[serde(rename = "settlement.paid")]
    SettlementPaid,
}

impl EventType {
    pub(crate) const ALL: [EventType; 10] = [
        EventType::OrderCreated,
        EventType::InstanceReleased,
        EventType::InstanceSuspended,
        EventType::BillIssued,
        EventType::CreditNoteIssued,
        EventType::ReviewDecided,
        EventType::ProductPublished,
        EventType::ProductDelisted,
        EventType::SettlementClosed,
        EventType::SettlementPaid,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            EventType::OrderCreated => "order.created",
            EventType::InstanceReleased => "instance.released",
            EventType::InstanceSuspended => "instance.suspended",
            EventType::BillIssued => "bill.issued",
            EventType::CreditNoteIssued => "credit_note.issued",
            EventType::ReviewDecided => "review.decided",
            EventType::ProductPublished => "product.published",
            EventType::ProductDelisted => "product.delisted",
            EventType::SettlementClosed => "settlement.closed",
            EventType::SettlementPaid => "settlement.paid",
        }
    }

    pub(crate) fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == text)
    }

    /// Whether an event of this type ever concerns a principal of `role`: a customer's own
    /// orders, instances, bills and credit notes; a provider's those of its products too, and its
    /// listings and statements; an operator everything.
    pub(crate) fn concerns(self, role: Role) -> bool {
        match role {
            Role::Operator | Role::Provider => true,
            Role::Platform => false,
            Role::Customer => matches!(
                self,
                EventType::OrderCreated
                    | EventType::InstanceReleased
                    | EventType::InstanceSuspended
                    | EventType::BillIssued
                    | EventType::CreditNoteIssued
            ),
        }
    }
}

/// Whom an event concerns: its endpoints of these principals receive it (and operators' all).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Tenants<'a> {
    pub provider: Option<&'a str>,
    pub customer: Option<&'a str>,
}

thread_local! {
    /// Events this request (this Spin instance) emitted: delivered right after its response.
    static EMITTED: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// The ids of the events emitted on this thread since the last call, to deliver them now.
pub(crate) fn take_emitted() -> Vec<String> {
    EMITTED.with(|e| std::mem::take(&mut *e.borrow_mut()))
}

/// Events written together, in the caller's transaction ([`Outbox::write`]).
pub(crate) struct Outbox {
    ids: IdSequence,
    now: DateTime<Utc>,
    events: Vec<store::NewEvent>,
}

impl Outbox {
    pub(crate) fn new(now: DateTime<Utc>) -> Self {
        Self {
            ids: IdSequence::new("evt", now),
            now,
            events: Vec::new(),
        }
    }

    /// Adds an event of `kind` about `data`, concerning `tenants`.
    pub(crate) fn add<T: Serialize>(
        &mut self,
        kind: EventType,
        tenants: Tenants,
        data: &T,
    ) -> ApiResult<()> {
        self.events.push(store::NewEvent {
            id: self.ids.next_id(),
            kind,
            provider_id: tenants.provider.map(str::to_owned),
            customer_id: tenants.customer.map(str::to_owned),
            data: serde_json::to_string(data).map_err(ApiError::internal)?,
            created_at: self.now.timestamp(),
        });
        Ok(())
    }

    /// Writes the events and their deliveries, in the transaction of the change they report.
    pub(crate) fn write(self, db: &dyn Database) -> ApiResult<()> {
        if self.events.is_empty() {
            return Ok(());
        }
        store::insert_events(db, &self.events)?;
        EMITTED.with(|e| {
            e.borrow_mut()
                .extend(self.events.iter().map(|ev| ev.id.clone()));
        });
        Ok(())
    }
}

/// Writes one event and its deliveries, in the transaction of the change it reports.
pub(crate) fn emit<T: Serialize>(
    db: &dyn Database,
    kind: EventType,
    tenants: Tenants,
    data: &T,
    now: DateTime<Utc>,
) -> ApiResult<()> {
    let mut outbox = Outbox::new(now);
    outbox.add(kind, tenants, data)?;
    outbox.write(db)
}

/// The body of `POST /api/v1/webhooks`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WebhookRequest {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
}

/// An endpoint as its owner sees it; the secret only once, when it is created.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Webhook {
    pub id: String,
    pub owner_id: String,
    pub url: String,
    pub events: Vec<EventType>,
    #[serde(with = "crate::platform::clock::instant")]
    pub created_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// The most endpoints one principal may have: each event is delivered to each of them.
pub(crate) const WEBHOOKS_MAX: usize = 10;
const URL_MAX: usize = 2_000;

/// Whether `url` has the shape of an endpoint (the contract's pattern): `http://` or
/// `https://`, a host part without credentials, no fragment, no space; at most 2,000 characters.
fn check_url_shape(e: &mut Errors, url: &str) {
    if url.chars().count() > URL_MAX {
        e.add(
            "url",
            Code::TooLong,
            format!("at most {URL_MAX} characters"),
        );
        return;
    }
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    let authority = rest.map(|r| r.split(['/', '?']).next().unwrap_or_default());
    let shaped = authority.is_some_and(|a| !a.is_empty() && !a.contains('@'))
        && !url.contains('#')
        && !url.chars().any(|c| c.is_whitespace() || c.is_control());
    if !shaped {
        e.add(
            "url",
            Code::InvalidValue,
            "an http:// or https:// URL with a host, without credentials or fragment",
        );
    }
}

/// 409 `WebhookHostNotAllowed` unless the deployment may call `url`: inside the `webhook_hosts`
/// pattern it grants in `allowed_outbound_hosts` (`https://*`, `https://*.example.com`,
/// `http://127.0.0.1:8080`). The same URL may be fine on another deployment: it is the
/// deployment's grant, not the request, that refuses it.
fn check_url_allowed(url: &str, allowed: Option<&str>) -> ApiResult<()> {
    let target = deliver::Target::parse(url);
    if target
        .as_ref()
        .is_some_and(|t| allowed.is_some_and(|pattern| t.allowed_by(pattern)))
    {
        return Ok(());
    }
    let origin = target.map_or_else(|| url.to_owned(), |t| t.origin());
    Err(ApiError::new(
        Code::WebhookHostNotAllowed,
        format!(
            "this deployment may not call {origin} (its webhook_hosts: {})",
            allowed.unwrap_or("none")
        ),
    ))
}

fn check_events(e: &mut Errors, caller: &Principal, events: &[String]) -> Vec<EventType> {
    if events.is_empty() {
        e.add("events", Code::Required, "at least one event type");
    }
    if !e.list_within("events", events.len(), EventType::ALL.len()) {
        return Vec::new();
    }
    let mut kinds = Vec::new();
    for (i, name) in events.iter().enumerate() {
        let field = format!("events[{i}]");
        match EventType::parse(name) {
            None => e.add(field, Code::InvalidValue, "not an event type"),
            Some(kind) if !kind.concerns(caller.role) => e.add(
                field,
                Code::InvalidValue,
                format!("{name} never concerns a {:?}", caller.role).to_lowercase(),
            ),
            Some(kind) if kinds.contains(&kind) => {
                e.add(field, Code::Duplicate, "listed twice");
            }
            Some(kind) => kinds.push(kind),
        }
    }
    kinds
}

/// A principal registers an endpoint for events of its own (operators: of everyone). The secret
/// that signs its deliveries is in the answer, and only there.
pub(crate) fn create(
    db: &dyn Database,
    caller: &Principal,
    request: WebhookRequest,
    allowed_hosts: Option<&str>,
    now: DateTime<Utc>,
) -> ApiResult<Webhook> {
    let mut e = Errors::new();
    let url = e.required("url", &request.url).cloned();
    if let Some(url) = &url {
        check_url_shape(&mut e, url);
    }
    let events = e
        .required("events", &request.events)
        .map(|events| check_events(&mut e, caller, events))
        .unwrap_or_default();
    e.finish()?;
    check_url_allowed(url.as_deref().unwrap_or_default(), allowed_hosts)?;
    let webhook = Webhook {
        id: new_id("whk", now),
        owner_id: caller.id.clone(),
        url: url.unwrap_or_default(),
        events,
        created_at: now,
        secret: Some(format!("whsec_{}", hex::encode(random_bytes::<32>()))),
    };
    transaction(db, |db| {
        if store::count_of(db, &caller.id)? >= WEBHOOKS_MAX {
            return Err(ApiError::new(
                Code::WebhookLimit,
                format!("a principal has at most {WEBHOOKS_MAX} webhooks: delete one first"),
            ));
        }
        store::insert(db, &webhook, caller.role, now.timestamp())
    })?;
    Ok(webhook)
}

/// Whose endpoints a caller sees: its own; an operator's, everyone's.
fn owner_scope(caller: &Principal) -> Option<&str> {
    (!caller.is_operator()).then_some(caller.id.as_str())
}

/// An endpoint, if the caller may see it (its owner, an operator); without its secret.
pub(crate) fn find(db: &dyn Database, caller: &Principal, id: &str) -> ApiResult<Webhook> {
    store::find(db, id, owner_scope(caller))?.ok_or_else(|| ApiError::not_found("webhook"))
}

/// The endpoints the caller sees, oldest first, after `cursor`.
pub(crate) fn list(
    db: &dyn Database,
    caller: &Principal,
    cursor: Option<&str>,
    limit: usize,
) -> ApiResult<Vec<Webhook>> {
    store::list(db, owner_scope(caller), cursor, limit)
}

/// Deletes an endpoint (its owner, an operator): nothing more is delivered to it.
pub(crate) fn delete(
    db: &dyn Database,
    caller: &Principal,
    id: &str,
    now: DateTime<Utc>,
) -> ApiResult<()> {
    if store::delete(db, id, owner_scope(caller), now.timestamp())? {
        Ok(())
    } else {
        Err(ApiError::not_found("webhook"))
    }
}

/// One delivery of an event to an endpoint, with every attempt made.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Delivery {
    pub event_id: String,
    pub event_type: EventType,
    pub status: DeliveryStatus,
    #[serde(with = "crate::platform::clock::instant")]
    pub created_at: DateTime<Utc>,
    /// When it is tried next; `None` once delivered or given up.
    #[serde(with = "crate::platform::clock::instant::option")]
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub attempts: Vec<Attempt>,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum DeliveryStatus {
    /// Not yet answered with a 2xx: tried again with backoff.
    Pending,
    /// Answered with a 2xx.
    Delivered,
    /// No 2xx within 72 hours of the first attempt: no more attempts.
    Failed,
}

/// One attempt of a delivery: the answer's status, or why there was none.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Attempt {
    pub attempt: i64,
    #[serde(with = "crate::platform::clock::instant")]
    pub attempted_at: DateTime<Utc>,
    pub status_code: Option<i64>,
    pub error: Option<String>,
}

/// An endpoint's deliveries, newest first, after `cursor`, for its owner or an operator.
pub(crate) fn deliveries(
    db: &dyn Database,
    caller: &Principal,
    id: &str,
    cursor: Option<&str>,
    limit: usize,
) -> ApiResult<Vec<Delivery>> {
    let webhook = find(db, caller, id)?;
    store::deliveries(db, &webhook.id, cursor, limit)
}

/// The JSON a delivery POSTs: `{id, type, created_at, data}` of its event.
pub(crate) fn payload(id: &str, kind: &str, created_at: i64, data: &str) -> ApiResult<Vec<u8>> {
    let data: Value = serde_json::from_str(data).map_err(ApiError::internal)?;
    let created_at = DateTime::from_timestamp(created_at, 0).unwrap_or_default();
    serde_json::to_vec(&serde_json::json!({
        "id": id,
        "type": kind,
        "created_at": rfc3339(created_at),
        "data": data,
    }))
    .map_err(ApiError::internal)
}
