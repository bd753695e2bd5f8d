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
    InvalidJson,
    UnknownField,
    InvalidQuery,
    ValidationFailed,
    Required,
    TooLong,
    TooMany,
    InvalidValue,
    Duplicate,
    ShortDescriptionTooLong,
    HighlightsTooLong,
    ServiceMethodMismatch,
    UnknownTemplate,
    UnknownCategory,
    UnsupportedPricingPlan,
    InvalidTiers,
    InvalidMediaIndex,
    ListingIncomplete,
    SalesSettingsIncomplete,
    InvalidReportingMethod,
    UnknownPlan,
    ReasonRequired,
    EulaNotAccepted,
    InvalidRegion,
    RegionNotSelectable,
    InvalidAmount,
    TooManyRecords,
    InvalidWindow,
    WindowTooShort,
    WindowSpansPeriods,
    WindowInFuture,
    UsageBeforeOrder,
    UsageAfterRelease,
    UnknownBillableItem,
    ItemNotReportedByProvider,
    InvalidPeriodStart,
    AsOfInFuture,
    // 401 / 403 / 404 / 405.
    Unauthorized,
    AccountInArrears,
    Forbidden,
    EnterpriseOnly,
    NotFound,
    MethodNotAllowed,
    // 409: the request is well formed but the state does not allow it.
    ServiceAlreadyAssociated,
    BuiltInPrincipal,
    ListingNotEditable,
    ReviewPending,
    InvalidTransition,
    ReviewAlreadyDecided,
    CategoryUnchanged,
    SalesSettingsNotEditable,
    TestOrderNotAllowed,
    InstanceReleased,
    InvalidInstanceAction,
    CurrencyNotSupported,
    PeriodClosed,
    DuplicateRecordConflict,
    BillingPeriodLocked,
    // 413 / 415.
    PayloadTooLarge,
    UnsupportedMediaType,
    // 502: a provider's metrics endpoint could not be read.
    PlatformSourceUnavailable,
    // 500: never carries internals in its detail.
    Internal,
}

impl Code {
    pub fn status(self) -> StatusCode {
        use Code::*;
        match self {
            InvalidJson
            | UnknownField
            | InvalidQuery
            | ValidationFailed
            | Required
            | TooLong
            | TooMany
            | InvalidValue
            | Duplicate
            | ShortDescriptionTooLong
            | HighlightsTooLong
            | ServiceMethodMismatch
            | UnknownTemplate
            | UnknownCategory
            | UnsupportedPricingPlan
            | InvalidTiers
            | InvalidMediaIndex
            | ListingIncomplete
            | SalesSettingsIncomplete
            | InvalidReportingMethod
            | UnknownPlan
            | ReasonRequired
            | EulaNotAccepted
            | InvalidRegion
            | RegionNotSelectable
            | InvalidAmount
            | TooManyRecords
            | InvalidWindow
            | WindowTooShort
            | WindowSpansPeriods
            | WindowInFuture
            | UsageBeforeOrder
            | UsageAfterRelease
            | UnknownBillableItem
            | ItemNotReportedByProvider
            | InvalidPeriodStart
            | AsOfInFuture => StatusCode::BAD_REQUEST,
            Unauthorized => StatusCode::UNAUTHORIZED,
            AccountInArrears => StatusCode::PAYMENT_REQUIRED,
            Forbidden | EnterpriseOnly => StatusCode::FORBIDDEN,
            NotFound => StatusCode::NOT_FOUND,
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ServiceAlreadyAssociated
            | BuiltInPrincipal
            | ListingNotEditable
            | ReviewPending
            | InvalidTransition
            | ReviewAlreadyDecided
            | CategoryUnchanged
            | SalesSettingsNotEditable
            | TestOrderNotAllowed
            | InstanceReleased
            | InvalidInstanceAction
            | CurrencyNotSupported
            | PeriodClosed
            | DuplicateRecordConflict
            | BillingPeriodLocked => StatusCode::CONFLICT,
            PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            PlatformSourceUnavailable => StatusCode::BAD_GATEWAY,
            Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

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
    pub field: String,
    pub code: Code,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, code: Code, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            code,
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: Code,
    pub detail: String,
    pub errors: Vec<FieldError>,
    /// For 405: the methods the resource does accept (the `Allow` header).
    pub allow: Option<&'static str>,
}

impl ApiError {
    pub fn new(code: Code, detail: impl Into<String>) -> Self {
        Self {
            code,
            detail: detail.into(),
            errors: Vec::new(),
            allow: None,
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
        }
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(Code::NotFound, format!("{what} not found"))
    }

    pub fn forbidden() -> Self {
        Self::new(Code::Forbidden, "your role may not perform this operation")
    }

    pub fn method_not_allowed(allow: &'static str) -> Self {
        Self {
            allow: Some(allow),
            ..Self::new(Code::MethodNotAllowed, format!("allowed methods: {allow}"))
        }
    }

    /// A failure of ours. The cause goes to the log, never to the client.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        eprintln!("internal error: {cause}");
        Self::new(
            Code::Internal,
            "the request could not be completed; nothing was changed",
        )
    }

    pub fn status(&self) -> StatusCode {
        self.code.status()
    }

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
