//! The five listing steps (docs/RULES.md §4): for each, the request body as the client sends it and
//! the validated step that can only be built from a valid one.
//!
//! Request types keep required fields as `Option` and closed choices as `String`, so that serde
//! accepts any well-formed body and [`Errors`] reports every missing or wrong field in one
//! response, instead of serde stopping at the first. Unknown fields are still refused by serde
//! (`deny_unknown_fields`), naming the field.
//!
//! A validated step serializes to the normalized JSON we store (defaults filled in, decimals as
//! strings) in the very shape its request type reads, so `from_stored` can rebuild it — and
//! re-check it — when the review, order and billing code needs typed access.

use std::fmt;

use rust_decimal::Decimal;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

use crate::error::{ApiError, ApiResult, Code};
use crate::listing::categories::{self, Category};
use crate::listing::service::{ServiceMethod, ServiceSpec, Visibility};
use crate::listing::{Step, Warning, WarningCode};
use crate::validate::{Errors, Seen, parse_json};

mod access;
mod agreement;
mod category;
mod general;
mod pricing;

pub(crate) use access::*;
pub(crate) use agreement::*;
pub(crate) use category::*;
pub(crate) use general::*;
pub(crate) use pricing::*;

/// A step that passed validation: what to store and what to advise.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ValidatedStep {
    step: Step,
    data: Value,
    warnings: Vec<Warning>,
}

impl ValidatedStep {
    #[cfg(test)]
    pub(crate) fn step(&self) -> Step {
        self.step
    }

    /// The normalized step to store: the request's shape, defaults filled in, decimals as
    /// strings. Reading it back with the step's `from_stored` yields the same step.
    pub(crate) fn data(&self) -> &Value {
        &self.data
    }

    /// Advice that does not block the step (e.g. a private template was chosen).
    pub(crate) fn warnings(&self) -> &[Warning] {
        &self.warnings
    }
}

/// A step as written, parsed: what the API shows of it (in the very shape it is stored in) and
/// the console renders.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub(crate) enum StepData {
    Access(AccessStep),
    General(GeneralStep),
    Category(CategoryStep),
    Pricing(PricingStep),
    Agreement(AgreementStep),
}

impl StepData {
    /// What was stored of `step`, parsed and checked again (the access step against the
    /// product's service): what no longer validates is a failure of ours.
    pub(crate) fn from_stored(
        step: Step,
        stored: &Value,
        service: &ServiceSpec,
    ) -> ApiResult<Self> {
        Ok(match step {
            Step::Access => StepData::Access(AccessStep::from_stored(stored, service)?),
            Step::General => StepData::General(GeneralStep::from_stored(stored)?),
            Step::Category => StepData::Category(CategoryStep::from_stored(stored)?),
            Step::Pricing => StepData::Pricing(PricingStep::from_stored(stored)?),
            Step::Agreement => StepData::Agreement(AgreementStep::from_stored(stored)?),
        })
    }
}

/// Validates the body of `PUT /api/v1/products/{id}/{step}` whole.
///
/// Malformed JSON is 400 `InvalidJson` and an unknown field 400 `UnknownField`, both naming the
/// field's path; otherwise every invalid field is reported at once (400, see
/// [`ApiError::validation`]). The access step is checked against the product's service.
pub(crate) fn validate_step(
    step: Step,
    body: &[u8],
    service: &ServiceSpec,
) -> Result<ValidatedStep, ApiError> {
    let (data, warnings) = match step {
        Step::Access => {
            let access = AccessStep::parse(parse_json(body)?, service)?;
            (to_json(&access)?, access.warnings(service))
        }
        Step::General => (
            to_json(&GeneralStep::parse(parse_json(body)?)?)?,
            Vec::new(),
        ),
        Step::Category => (
            to_json(&CategoryStep::parse(parse_json(body)?)?)?,
            Vec::new(),
        ),
        Step::Pricing => (
            to_json(&PricingStep::parse(parse_json(body)?)?)?,
            Vec::new(),
        ),
        Step::Agreement => (
            to_json(&AgreementStep::parse(parse_json(body)?)?)?,
            Vec::new(),
        ),
    };
    Ok(ValidatedStep {
        step,
        data,
        warnings,
    })
}

/// Ids of things outside this system (acceleration plans, live streams, EULA templates):
/// generous enough for any cloud id, short enough to stay an id.
const EXTERNAL_ID_MAX: usize = 64;
/// URLs a listing links to (cases, live streams).
const URL_MAX: usize = 2_048;

fn to_json<T: Serialize>(step: &T) -> Result<Value, ApiError> {
    serde_json::to_value(step).map_err(ApiError::internal)
}

fn stored_request<T: DeserializeOwned>(step: Step, stored: &Value) -> Result<T, ApiError> {
    T::deserialize(stored).map_err(|e| {
        ApiError::internal(format!(
            "the stored {} step does not parse: {e}",
            step.as_str()
        ))
    })
}

/// What we stored ourselves no longer validates: a bug or a rule tightened since, never the
/// client's fault.
fn stored_invalid(step: Step, error: &ApiError) -> ApiError {
    ApiError::internal(format!(
        "the stored {} step no longer validates: {:?}",
        step.as_str(),
        error.errors
    ))
}

/// `Errors::finish` passed, so every required value is present; reaching this is a bug here.
fn missing_after_validation(step: Step) -> ApiError {
    ApiError::internal(format!(
        "{} step: a required value is missing after validation passed",
        step.as_str()
    ))
}

/// A required text of 1..=`max` characters. Hands back the text whenever it is present, valid
/// or not: the step is only built after [`Errors::finish`] passed, and meanwhile callers keep
/// checking the rest of the body.
fn required_text<'a>(
    e: &mut Errors,
    field: &str,
    value: &'a Option<String>,
    max: usize,
    too_long: Code,
) -> Option<&'a str> {
    let text = e.required(field, value)?;
    e.text(field, text, 1, max, too_long);
    Some(text)
}

/// An optional text: when given, 1..=`max` characters (an empty string is not "absent").
fn optional_text(e: &mut Errors, field: &str, value: &Option<String>, max: usize) {
    if let Some(text) = value {
        e.text(field, text, 1, max, Code::TooLong);
    }
}

/// One of a closed set of names. Missing is `Required`; anything else is `wrong`.
fn choice<T: Copy>(
    e: &mut Errors,
    field: &str,
    value: &Option<String>,
    choices: &[(&str, T)],
    wrong: Code,
) -> Option<T> {
    let given = e.required(field, value)?;
    let found = choices
        .iter()
        .find(|(name, _)| name == given)
        .map(|&(_, v)| v);
    if found.is_none() {
        let names: Vec<&str> = choices.iter().map(|&(name, _)| name).collect();
        e.add(
            field,
            wrong,
            format!(
                "`{given}` is not accepted; expected {}",
                quoted_list(&names)
            ),
        );
    }
    found
}

fn name_of<T: Copy + PartialEq>(choices: &[(&'static str, T)], value: T) -> &'static str {
    choices
        .iter()
        .find(|&&(_, v)| v == value)
        .map_or("?", |&(name, _)| name)
}

fn quoted_list(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn check_url(e: &mut Errors, field: &str, url: &str) {
    let has_scheme = url.starts_with("https://") || url.starts_with("http://");
    if !has_scheme || url.chars().any(char::is_whitespace) {
        e.add(field, Code::InvalidValue, "an http:// or https:// URL");
    } else {
        e.text(field, url, 1, URL_MAX, Code::TooLong);
    }
}

#[cfg(test)]
mod testing {
    //! The valid bodies and assertions the tests of every step share.

    use super::*;
    use crate::listing::service::ServiceRequest;
    use http::StatusCode;
    use serde_json::json;

    /// A private-method service with a public and a private template.
    pub(super) fn service() -> ServiceSpec {
        let service: ServiceRequest = serde_json::from_value(json!({
            "name": "Acme DB",
            "service_method": "private",
            "regions": ["cn-hangzhou"],
            "templates": [
                {"id": "t-public", "name": "Standard", "visibility": "public"},
                {"id": "t-private", "name": "Internal", "visibility": "private"}
            ]
        }))
        .unwrap();
        service.validate().unwrap()
    }

    pub(super) fn check(step: Step, body: &Value) -> Result<ValidatedStep, ApiError> {
        validate_step(step, body.to_string().as_bytes(), &service())
    }

    pub(super) fn refusal(step: Step, body: &Value) -> ApiError {
        check(step, body).expect_err("the step should be refused")
    }

    /// `body` with top-level `field` set to `value` (`null` removes nothing: it is "absent").
    pub(super) fn with(mut body: Value, field: &str, value: Value) -> Value {
        body[field] = value;
        body
    }

    pub(super) fn without(mut body: Value, field: &str) -> Value {
        body.as_object_mut().unwrap().remove(field);
        body
    }

    pub(super) fn errors_of(err: &ApiError) -> Vec<(&str, Code)> {
        err.errors
            .iter()
            .map(|e| (e.field.as_str(), e.code))
            .collect()
    }

    pub(super) fn assert_only(err: &ApiError, field: &str, code: Code) {
        assert_eq!(errors_of(err), vec![(field, code)], "{err:?}");
        assert_eq!(err.code, code);
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
    }

    pub(super) fn chinese(n: usize) -> String {
        "云".repeat(n)
    }

    pub(super) fn access() -> Value {
        json!({
            "product_type": "saas",
            "product_name": "Acme DB Cloud",
            "access_method": "compute_nest",
            "service_method": "private",
            "service_template_id": "t-public"
        })
    }

    pub(super) fn general() -> Value {
        json!({
            "short_description": "A managed database",
            "highlights": "Fast, safe, managed",
            "description": "Everything about Acme DB.",
            "support_offered": {
                "service_scope": "Installation and upgrades",
                "time_range": "9:00-18:00 on working days",
                "business_scope": "Database operations",
                "billing_scope": "Included in the usage price"
            }
        })
    }

    pub(super) fn category() -> Value {
        json!({"category": "databases", "tags": ["sql", "ha"]})
    }

    pub(super) fn item(code: &str) -> Value {
        json!({
            "code": code,
            "name": "Requests",
            "tier_mode": "graduated",
            "tiers": [
                {"up_to": "1000", "unit_price": "0.01"},
                {"up_to": null, "unit_price": "0.005"}
            ]
        })
    }

    pub(super) fn pricing() -> Value {
        json!({
            "pricing_plan": "by_usage",
            "enterprise_only": false,
            "billing_period": "hour",
            "billable_items": [item("Frequency")]
        })
    }

    pub(super) fn pricing_with_tiers(tiers: Value) -> Value {
        let mut body = pricing();
        body["billable_items"][0]["tiers"] = tiers;
        body
    }

    pub(super) fn agreement() -> Value {
        json!({
            "eula": {"source": "template", "template_id": "eula-standard"},
            "icp_filing": "浙ICP备12345678号"
        })
    }

    pub(super) fn valid(step: Step) -> Value {
        match step {
            Step::Access => access(),
            Step::General => general(),
            Step::Category => category(),
            Step::Pricing => pricing(),
            Step::Agreement => agreement(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;
    use http::StatusCode;
    use serde_json::json;

    // --- every step -----------------------------------------------------------------------

    #[test]
    fn every_valid_step_is_accepted_and_its_stored_form_validates_to_itself() {
        for step in Step::ALL {
            let validated = check(step, &valid(step)).unwrap();
            assert_eq!(validated.step(), step);
            let again = check(step, validated.data()).unwrap();
            assert_eq!(again.data(), validated.data(), "{step:?}");
        }
    }

    #[test]
    fn an_unknown_field_is_refused_by_name() {
        let err = refusal(Step::Access, &with(access(), "prodcut_name", json!("x")));
        assert_only(&err, "prodcut_name", Code::UnknownField);
    }

    #[test]
    fn a_nested_unknown_field_is_named_by_its_path() {
        let mut body = pricing();
        body["billable_items"][0]["tiers"][0]["price"] = json!("1");
        let err = refusal(Step::Pricing, &body);
        assert_only(&err, "billable_items[0].tiers[0].price", Code::UnknownField);

        let mut body = general();
        body["support_offered"]["hours"] = json!("24/7");
        assert_only(
            &refusal(Step::General, &body),
            "support_offered.hours",
            Code::UnknownField,
        );
    }

    #[test]
    fn malformed_json_is_invalid_json() {
        let service = service();
        for body in [
            &b"{"[..],
            b"",
            b"[]",
            b"{\"product_name\": \"x\"} trailing",
            b"null",
        ] {
            let err = validate_step(Step::Access, body, &service).unwrap_err();
            assert_eq!(
                err.code,
                Code::InvalidJson,
                "{:?}",
                String::from_utf8_lossy(body)
            );
            assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        }
    }

    #[test]
    fn a_wrongly_typed_field_is_invalid_json_naming_the_field() {
        let err = refusal(
            Step::Pricing,
            &with(pricing(), "enterprise_only", json!("yes")),
        );
        assert_only(&err, "enterprise_only", Code::InvalidJson);
    }

    #[test]
    fn several_invalid_fields_are_all_reported() {
        let body = json!({
            "product_type": "api",
            "product_name": chinese(61),
            "access_method": "ecs",
            "service_method": "fully_managed",
            "service_template_id": "t-missing"
        });
        let err = refusal(Step::Access, &body);
        assert_eq!(err.code, Code::ValidationFailed);
        assert_eq!(
            errors_of(&err),
            vec![
                ("product_type", Code::InvalidValue),
                ("product_name", Code::TooLong),
                ("access_method", Code::InvalidValue),
                ("service_method", Code::ServiceMethodMismatch),
                ("service_template_id", Code::UnknownTemplate),
            ]
        );
    }

    #[test]
    fn an_empty_object_reports_every_required_field_of_each_step() {
        let required = |step| {
            let err = refusal(step, &json!({}));
            assert!(
                err.errors.iter().all(|e| e.code == Code::Required),
                "{err:?}"
            );
            err.errors.into_iter().map(|e| e.field).collect::<Vec<_>>()
        };
        assert_eq!(
            required(Step::Access),
            [
                "product_type",
                "product_name",
                "access_method",
                "service_method"
            ]
        );
        assert_eq!(
            required(Step::General),
            [
                "short_description",
                "highlights",
                "description",
                "support_offered"
            ]
        );
        assert_eq!(required(Step::Category), ["category"]);
        assert_eq!(
            required(Step::Pricing),
            [
                "pricing_plan",
                "enterprise_only",
                "billing_period",
                "billable_items"
            ]
        );
        assert_eq!(required(Step::Agreement), ["eula", "icp_filing"]);
    }
}
