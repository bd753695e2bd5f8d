//! The one error type of the domain, rendered as RFC 9457 problem details.
//!
//! Every refusal carries a stable PascalCase [`Code`]; the HTTP status is a function of the code,
//! so the same code can never surface with two different statuses.

use http::StatusCode;
use serde::Serialize;

/// Stable, documented error codes (see `openapi.yaml`, component `Problem`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    // 400: malformed or invalid input.
    /// The body (or a field of it) is not the JSON this request takes.
    InvalidJson,
    /// The body has a field this request does not know (typos do not pass silently).
    UnknownField,
    /// A query parameter is missing or malformed.
    InvalidQuery,
    /// Several fields are invalid, for different reasons: see `errors`.
    ValidationFailed,
    /// A required field is missing or blank.
    Required,
    /// A text is longer than its limit (counted in characters).
    TooLong,
    /// A list has more items than its limit.
    TooMany,
    /// A value is not one the field accepts.
    InvalidValue,
    /// A value appears twice where each must be unique.
    Duplicate,
    /// The short description is over 300 characters.
    ShortDescriptionTooLong,
    /// The highlights are over 1,000 characters.
    HighlightsTooLong,
    /// The listing's service method is not its service's.
    ServiceMethodMismatch,
    /// No template of the service has this id.
    UnknownTemplate,
    /// Not one of the catalog's categories.
    UnknownCategory,
    /// Only pay-as-you-go (`by_usage`) is sold here.
    UnsupportedPricingPlan,
    /// Tiers are not strictly ascending, or not unbounded last.
    InvalidTiers,
    /// The media slot index is not a positive integer in range.
    InvalidMediaIndex,
    /// The listing lacks a step or required media: it cannot be submitted.
    ListingIncomplete,
    /// A billable item lacks a reporting method, or none is in effect.
    SalesSettingsIncomplete,
    /// The reporting method is inconsistent (source, query, endpoint).
    InvalidReportingMethod,
    /// No plan of the template has this id.
    UnknownPlan,
    /// A rejection must give a reason.
    ReasonRequired,
    /// An order must accept the product's EULA.
    EulaNotAccepted,
    /// The region is not one of the service's.
    InvalidRegion,
    /// The product's region is not selectable: no region may be given.
    RegionNotSelectable,
    /// An amount is not positive, has more than 2 decimals, or is too large.
    InvalidAmount,
    /// A push carries more than 100 records.
    TooManyRecords,
    /// A usage window does not end after it starts.
    InvalidWindow,
    /// A usage window of an hour or day product is 5 minutes or shorter.
    WindowTooShort,
    /// A usage window crosses a billing period boundary.
    WindowSpansPeriods,
    /// Usage cannot end (or a period start) in the future.
    WindowInFuture,
    /// Usage from before the instance was ordered.
    UsageBeforeOrder,
    /// Usage from after the instance was released.
    UsageAfterRelease,
    /// The key is not a billable item in effect for the instance.
    UnknownBillableItem,
    /// The item is reported by the platform, not pushed by the provider.
    ItemNotReportedByProvider,
    /// The instant is not the start of a billing period of the product.
    InvalidPeriodStart,
    // 401 / 403 / 404 / 405.
    /// No bearer token, or one nobody holds.
    Unauthorized,
    /// The customer's balance is below zero: top up before ordering or starting an instance.
    AccountInArrears,
    /// The caller's role may not perform this operation.
    Forbidden,
    /// The product is sold to enterprise accounts only.
    EnterpriseOnly,
    /// No such resource, or not the caller's (tenants never see each other).
    NotFound,
    /// The resource does not take this method (`Allow` lists those it does).
    MethodNotAllowed,
    // 409: the request is well formed but the state does not allow it.
    /// The service is already listed by a product.
    ServiceAlreadyAssociated,
    /// The built-in operator is configured by the deployment, not the API.
    BuiltInPrincipal,
    /// A published listing cannot be edited.
    ListingNotEditable,
    /// This part of the listing is locked by its review: an approved category, or a required
    /// medium of a submitted listing (which may be replaced, not removed).
    StepLocked,
    /// The listing is under review: wait for the decision.
    ReviewPending,
    /// The product's status does not allow this step of its lifecycle.
    InvalidTransition,
    /// Another operator decided this review first.
    ReviewAlreadyDecided,
    /// A rejected category must change before it is resubmitted.
    CategoryUnchanged,
    /// Sales settings are configured during the self-test only.
    SalesSettingsNotEditable,
    /// Test orders are placed during the self-test only.
    TestOrderNotAllowed,
    /// No billable item applies to the chosen template (or plan): it is not sold.
    TemplateNotOrderable,
    /// The instance is released: it accepts nothing more.
    InstanceReleased,
    /// The instance's status does not allow this action.
    InvalidInstanceAction,
    /// The period is closed for late data, or already billed.
    PeriodClosed,
    /// A usage record was already reported with another value.
    DuplicateRecordConflict,
    /// The billing period cannot change once the product has instances.
    BillingPeriodLocked,
    /// An item's reporting method cannot change once usage of another source is recorded.
    ReportingMethodLocked,
    /// The `Idempotency-Key` was used before for another request.
    IdempotencyKeyReused,
    /// The month cannot be closed yet: a period in it is not closed or not billed.
    MonthNotClosable,
    /// The statement was already paid.
    AlreadyPaid,
    /// A bill run cannot be dated in the future: the clock does not allow it yet.
    AsOfInFuture,
    // 429.
    /// Too many failed authentications from the client's address: wait `Retry-After` seconds.
    TooManyRequests,
    /// The instance-period has a bill: it cannot be written off.
    PeriodAlreadyBilled,
    /// Only an instance's next period to bill, once closed, can be written off.
    PeriodNotDue,
    /// The provider's statement of that month is written already.
    MonthClosed,
    /// The product has as many test instances alive as a product may.
    TestInstanceLimit,
    /// The product is delisted: it takes no quotes or orders, and is not delisted twice.
    ProductDelisted,
    /// The product is not delisted: there is nothing to relist.
    NotDelisted,
    /// An operator delisted the product: only an operator relists it.
    DelistedByOperator,
    /// Only a published product is delisted or changes its prices by version.
    ProductNotPublished,
    /// A price change keeps the billable items' codes: instances are metered by them.
    ItemCodesLocked,
    /// The principal has as many webhooks as one may.
    WebhookLimit,
    /// The deployment may not call a webhook's URL (outside its `webhook_hosts`).
    WebhookHostNotAllowed,
    /// A credit note for more than is left to credit of its bill.
    CreditExceedsBill,
    /// Usage inside a suspension of the instance (its customer's arrears).
    InstanceSuspended,
    // 413 / 415.
    /// The body is larger than the endpoint accepts.
    PayloadTooLarge,
    /// The body's content type is not one the endpoint accepts.
    UnsupportedMediaType,
    // 502: a provider's metrics endpoint could not be read.
    /// A provider's metrics endpoint could not be read.
    PlatformSourceUnavailable,
    // 500: never carries internals in its detail.
    /// Our failure; the detail never carries internals.
    Internal,
    // 503: the request changed nothing and may be retried after `Retry-After` seconds.
    /// The database (or the key-value store) cannot be reached right now.
    StorageUnavailable,
}

impl Code {
    /// The HTTP status of every problem with this code: the only place statuses are set.
    // Written compactly (one status per arm, its codes packed): the contract's coverage test reads
    // these arms to hold `openapi.yaml` to them.
    #[rustfmt::skip]
    pub fn status(self) -> StatusCode {
        use Code::*;
        match self {
            InvalidJson | UnknownField | InvalidQuery | ValidationFailed | Required | TooLong
            | TooMany | InvalidValue | Duplicate | ShortDescriptionTooLong | HighlightsTooLong
            | ServiceMethodMismatch | UnknownTemplate | UnknownCategory | UnsupportedPricingPlan
            | InvalidTiers | InvalidMediaIndex | ListingIncomplete | SalesSettingsIncomplete
            | InvalidReportingMethod | UnknownPlan | ReasonRequired | EulaNotAccepted
            | InvalidRegion | RegionNotSelectable | InvalidAmount | TooManyRecords
            | InvalidWindow | WindowTooShort | WindowSpansPeriods | WindowInFuture
            | UsageBeforeOrder | UsageAfterRelease | UnknownBillableItem
            | ItemNotReportedByProvider | InvalidPeriodStart => StatusCode::BAD_REQUEST,
            Unauthorized => StatusCode::UNAUTHORIZED,
            AccountInArrears => StatusCode::PAYMENT_REQUIRED,
            Forbidden | EnterpriseOnly => StatusCode::FORBIDDEN,
            NotFound => StatusCode::NOT_FOUND,
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ServiceAlreadyAssociated
            | BuiltInPrincipal
            | ListingNotEditable
            | StepLocked
            | ReviewPending
            | InvalidTransition
            | ReviewAlreadyDecided
            | CategoryUnchanged
            | SalesSettingsNotEditable
            | TestOrderNotAllowed
            | TemplateNotOrderable
            | InstanceReleased
            | InvalidInstanceAction
            | PeriodClosed
            | DuplicateRecordConflict
            | BillingPeriodLocked
            | ReportingMethodLocked
            | IdempotencyKeyReused
            | MonthNotClosable
            | AlreadyPaid
            | AsOfInFuture
            | PeriodAlreadyBilled
            | PeriodNotDue
            | MonthClosed
            | TestInstanceLimit
            | CreditExceedsBill
            | InstanceSuspended
            | ProductDelisted
            | NotDelisted
            | DelistedByOperator
            | ProductNotPublished
            | ItemCodesLocked
            | WebhookLimit
            | WebhookHostNotAllowed => StatusCode::CONFLICT,
            PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            PlatformSourceUnavailable => StatusCode::BAD_GATEWAY,
            Internal => StatusCode::INTERNAL_SERVER_ERROR,
            StorageUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The stable name clients match on (`ShortDescriptionTooLong`).
    pub fn as_str(self) -> String {
        format!("{self:?}")
    }
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.as_str())
    }
}

/// One invalid field of a request body, named by its JSON path (`billable_items[2].tiers[0].up_to`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The field's JSON path (`billable_items[2].tiers[0].up_to`), or a header or query name.
    pub field: String,
    /// Why the field is refused.
    pub code: Code,
    /// What would be accepted, for a person.
    pub message: String,
}

impl FieldError {
    /// A field error.
    pub fn new(field: impl Into<String>, code: Code, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            code,
            message: message.into(),
        }
    }
}

/// A refusal or a failure: an RFC 9457 problem document with a stable [`Code`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The stable code; it decides the HTTP status.
    pub code: Code,
    /// What happened, for a person.
    pub detail: String,
    /// Every invalid field, when the request is refused for its fields.
    pub errors: Vec<FieldError>,
    /// For 405: the methods the resource does accept (the `Allow` header).
    pub allow: Option<String>,
    /// For 429: how many seconds to wait before trying again (the `Retry-After` header).
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// A problem of this code.
    pub fn new(code: Code, detail: impl Into<String>) -> Self {
        Self {
            code,
            detail: detail.into(),
            errors: Vec::new(),
            allow: None,
            retry_after: None,
        }
    }

    /// A refusal listing every invalid field at once. The top-level code is the fields' own code
    /// when they all share one (so a lone `ShortDescriptionTooLong` is reported as such), and
    /// `ValidationFailed` otherwise.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let code = match errors.first() {
            Some(first) if errors.iter().all(|e| e.code == first.code) => first.code,
            _ => Code::ValidationFailed,
        };
        let detail = match errors.len() {
            1 => format!("{}: {}", errors[0].field, errors[0].message),
            n => format!("{n} fields are invalid"),
        };
        Self {
            code,
            detail,
            errors,
            allow: None,
            retry_after: None,
        }
    }

    /// 404 for `what`: missing, or another tenant's.
    pub fn not_found(what: &str) -> Self {
        Self::new(Code::NotFound, format!("{what} not found"))
    }

    /// 403: the caller's role may not do this.
    pub fn forbidden() -> Self {
        Self::new(Code::Forbidden, "your role may not perform this operation")
    }

    /// 405, with the methods the resource accepts.
    pub fn method_not_allowed(allow: impl Into<String>) -> Self {
        let allow = allow.into();
        let detail = format!("allowed methods: {allow}");
        Self {
            allow: Some(allow),
            ..Self::new(Code::MethodNotAllowed, detail)
        }
    }

    /// A failure of ours. The cause goes to the log, never to the client.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        eprintln!("internal error: {cause}");
        Self::new(
            Code::Internal,
            "the request could not be completed; it can be retried",
        )
    }

    /// 503: the database server cannot be reached, or keeps undoing the transaction. Nothing was
    /// written; the cause goes to the log. `Retry-After` says when to try again.
    pub fn unavailable(cause: impl std::fmt::Display) -> Self {
        eprintln!("storage unavailable: {cause}");
        Self {
            retry_after: Some(STORAGE_RETRY_AFTER_SECONDS),
            ..Self::new(
                Code::StorageUnavailable,
                "the database cannot be reached right now; nothing was changed, retry after the \
                 Retry-After seconds",
            )
        }
    }

    /// The HTTP status, from the code.
    pub fn status(&self) -> StatusCode {
        self.code.status()
    }

    /// The `application/problem+json` body.
    pub fn to_problem_json(&self) -> Vec<u8> {
        let status = self.status();
        let body = serde_json::json!({
            "type": format!("https://nestmarket.dev/problems/{}", self.code.as_str()),
            "title": status.canonical_reason().unwrap_or("Error"),
            "status": status.as_u16(),
            "detail": self.detail,
            "code": self.code.as_str(),
            "errors": self.errors,
        });
        serde_json::to_vec(&body).expect("a JSON value always serializes")
    }
}

/// The `Retry-After` of a 503: a PostgreSQL restart takes a few seconds, a failover longer; a
/// client that retries sooner is answered 503 again, at no cost to anyone.
const STORAGE_RETRY_AFTER_SECONDS: u64 = 1;

/// The result of every domain operation.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_field_code_becomes_the_problem_code() {
        let e = ApiError::validation(vec![FieldError::new(
            "short_description",
            Code::ShortDescriptionTooLong,
            "at most 300 characters",
        )]);
        assert_eq!(e.code, Code::ShortDescriptionTooLong);
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn mixed_field_codes_become_validation_failed() {
        let e = ApiError::validation(vec![
            FieldError::new("a", Code::Required, "required"),
            FieldError::new("b", Code::TooLong, "too long"),
        ]);
        assert_eq!(e.code, Code::ValidationFailed);
        assert_eq!(e.errors.len(), 2);
    }

    #[test]
    fn internal_errors_do_not_leak_their_cause() {
        let e = ApiError::internal("disk I/O error at /secret/path");
        let body = String::from_utf8(e.to_problem_json()).unwrap();
        assert!(!body.contains("/secret/path"));
        assert!(body.contains("\"status\":500"));
    }
}
