//! Services (docs/RULES.md §3): what a provider deploys on the platform; a product lists one.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use chrono::{DateTime, Utc};

use crate::error::{ApiError, ApiResult, Code};
use crate::identity::Principal;
use crate::listing::store;
use crate::platform::storage::Database;
use crate::validate::{Errors, Seen};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ServiceMethod {
    Private,
    FullyManaged,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Visibility {
    Public,
    Private,
}

/// A cloud resource a template deploys, with the hourly fee shown on the order confirmation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Resource {
    #[serde(rename = "type")]
    pub kind: String,
    pub spec: String,
    pub count: u32,
    pub hourly_fee: Decimal,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Plan {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Template {
    pub id: String,
    pub name: String,
    pub visibility: Visibility,
    #[serde(default)]
    pub resources: Vec<Resource>,
    #[serde(default)]
    pub plans: Vec<Plan>,
}

/// The body of `POST /api/v1/services`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewService {
    pub name: String,
    pub service_method: ServiceMethod,
    pub regions: Vec<String>,
    pub templates: Vec<Template>,
}

/// A service definition that passed [`ServiceRequest::validate`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(transparent)]
pub(crate) struct ServiceSpec(NewService);

impl ServiceSpec {
    pub(crate) fn get(&self) -> &NewService {
        &self.0
    }

    /// Rebuilds a spec read back from our own database (validated when it was written).
    pub(crate) fn from_stored(stored: NewService) -> Self {
        Self(stored)
    }
}

/// How many of one resource a template may deploy.
const MAX_RESOURCE_COUNT: u32 = 10_000;
/// Regions a service deploys to; templates it offers; resources a template deploys; plans a
/// template sells. Generous for any real service, and checked before any item is looked at.
const MAX_REGIONS: usize = 50;
pub(crate) const MAX_TEMPLATES: usize = 20;
const MAX_RESOURCES: usize = 50;
pub(crate) const MAX_PLANS: usize = 20;
/// The largest hourly fee of one resource.
const MAX_HOURLY_FEE: i64 = 1_000_000;

/// The body of `POST /api/v1/services` as clients send it: required fields and closed choices
/// stay loose here so that validation reports every mistake at once instead of serde stopping at
/// the first.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ServiceRequest {
    pub name: Option<String>,
    pub service_method: Option<String>,
    #[serde(default)]
    pub regions: Vec<String>,
    #[serde(default)]
    pub templates: Vec<Template>,
}

impl ServiceRequest {
    pub(crate) fn validate(self) -> Result<ServiceSpec, ApiError> {
        let mut e = Errors::new();
        let name = e.required("name", &self.name).cloned();
        let service_method = match self.service_method.as_deref() {
            None => {
                e.add(
                    "service_method",
                    Code::Required,
                    "`private` or `fully_managed`",
                );
                None
            }
            Some("private") => Some(ServiceMethod::Private),
            Some("fully_managed") => Some(ServiceMethod::FullyManaged),
            Some(other) => {
                e.add(
                    "service_method",
                    Code::InvalidValue,
                    format!("`{other}` is not `private` or `fully_managed`"),
                );
                None
            }
        };
        let service = NewService {
            name: name.clone().unwrap_or_default(),
            service_method: service_method.unwrap_or(ServiceMethod::Private),
            regions: self.regions,
            templates: self.templates,
        };
        service.check(&mut e, name.is_some());
        e.finish()?;
        Ok(ServiceSpec(service))
    }
}

impl NewService {
    /// The rules of docs/RULES.md §3 over a whole service; `name` is checked only when it was
    /// given.
    fn check(&self, e: &mut Errors, name_given: bool) {
        if name_given {
            e.text("name", &self.name, 1, 100, Code::TooLong);
        }
        if self.regions.is_empty() {
            e.add("regions", Code::Required, "at least one region");
        }
        let regions: &[String] = if e.list_within("regions", self.regions.len(), MAX_REGIONS) {
            &self.regions
        } else {
            &[]
        };
        let mut seen_regions = Seen::default();
        for (i, r) in regions.iter().enumerate() {
            e.text(&format!("regions[{i}]"), r, 1, 64, Code::TooLong);
            if !seen_regions.first(r) {
                e.add(
                    format!("regions[{i}]"),
                    Code::Duplicate,
                    format!("region {r:?} is listed twice"),
                );
            }
        }
        if self.templates.is_empty() {
            e.add("templates", Code::Required, "at least one template");
        }
        let templates: &[Template] =
            if e.list_within("templates", self.templates.len(), MAX_TEMPLATES) {
                &self.templates
            } else {
                &[]
            };
        let mut template_ids = Seen::default();
        let mut plan_ids = Seen::default();
        for (i, t) in templates.iter().enumerate() {
            let at = format!("templates[{i}]");
            e.text(&format!("{at}.id"), &t.id, 1, 64, Code::TooLong);
            e.text(&format!("{at}.name"), &t.name, 1, 100, Code::TooLong);
            if !template_ids.first(&t.id) {
                e.add(
                    format!("{at}.id"),
                    Code::Duplicate,
                    format!("template id {:?} is used twice", t.id),
                );
            }
            check_resources(e, &at, &t.resources);
            check_plans(e, &at, &t.plans, &mut plan_ids);
        }
    }

    pub(crate) fn template(&self, id: &str) -> Option<&Template> {
        self.templates.iter().find(|t| t.id == id)
    }
}

/// A template's resources: at most [`MAX_RESOURCES`], each named, counted and with an hourly
/// fee bounded so that a quote's sums can never overflow, and priced like unit prices.
fn check_resources(e: &mut Errors, at: &str, resources: &[Resource]) {
    let resources: &[Resource] =
        if e.list_within(&format!("{at}.resources"), resources.len(), MAX_RESOURCES) {
            resources
        } else {
            &[]
        };
    for (j, r) in resources.iter().enumerate() {
        let at = format!("{at}.resources[{j}]");
        e.text(&format!("{at}.type"), &r.kind, 1, 64, Code::TooLong);
        e.text(&format!("{at}.spec"), &r.spec, 1, 200, Code::TooLong);
        if r.count == 0 || r.count > MAX_RESOURCE_COUNT {
            e.add(
                format!("{at}.count"),
                Code::InvalidValue,
                format!("from 1 to {MAX_RESOURCE_COUNT}"),
            );
        }
        if r.hourly_fee.is_sign_negative()
            || r.hourly_fee > Decimal::from(MAX_HOURLY_FEE)
            || r.hourly_fee.normalize().scale() > 8
        {
            e.add(
                format!("{at}.hourly_fee"),
                Code::InvalidValue,
                format!("from 0 to {MAX_HOURLY_FEE}, at most 8 decimal places"),
            );
        }
    }
}

/// A template's plans: at most [`MAX_PLANS`]. Plans are referenced by id alone (billable-item
/// associations), so ids are unique across the whole service (`seen`), not only within their
/// template.
fn check_plans<'a>(e: &mut Errors, at: &str, plans: &'a [Plan], seen: &mut Seen<'a>) {
    let plans: &'a [Plan] = if e.list_within(&format!("{at}.plans"), plans.len(), MAX_PLANS) {
        plans
    } else {
        &[]
    };
    for (j, p) in plans.iter().enumerate() {
        let at = format!("{at}.plans[{j}]");
        e.text(&format!("{at}.id"), &p.id, 1, 64, Code::TooLong);
        e.text(&format!("{at}.name"), &p.name, 1, 100, Code::TooLong);
        if !seen.first(&p.id) {
            e.add(
                format!("{at}.id"),
                Code::Duplicate,
                format!("plan id {:?} is used twice", p.id),
            );
        }
    }
}

/// A stored service and its owner.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Service {
    pub id: String,
    pub provider_id: String,
    #[serde(flatten)]
    pub spec: ServiceSpec,
    #[serde(with = "crate::platform::clock::instant")]
    pub created_at: DateTime<Utc>,
}

/// A provider registers a service it deploys on the platform.
pub(crate) fn create(
    db: &dyn Database,
    provider: &Principal,
    request: ServiceRequest,
    now: DateTime<Utc>,
) -> ApiResult<Service> {
    let spec = request.validate()?;
    store::create_service(db, provider, spec, now)
}

/// The service, if the caller may see it (its provider, or an operator).
pub(crate) fn find(db: &dyn Database, caller: &Principal, id: &str) -> ApiResult<Service> {
    store::find_service(db, caller, id)
}

/// The services the caller may see, oldest first.
pub(crate) fn list(
    db: &dyn Database,
    caller: &Principal,
    after: Option<&str>,
    limit: usize,
) -> ApiResult<Vec<Service>> {
    store::list_services(db, caller, after, limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service() -> ServiceRequest {
        serde_json::from_value(serde_json::json!({
            "name": "Acme DB",
            "service_method": "private",
            "regions": ["cn-hangzhou"],
            "templates": [{"id": "t1", "name": "Standard", "visibility": "public",
                "resources": [{"type": "ecs", "spec": "ecs.g7.large", "count": 1, "hourly_fee": "0.80"}],
                "plans": [{"id": "p1", "name": "Basic"}]}]
        }))
        .unwrap()
    }

    #[test]
    fn a_complete_service_is_valid() {
        assert!(service().validate().is_ok());
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let mut s = service();
        s.regions.clear();
        s.templates[0].resources[0].hourly_fee = Decimal::new(-1, 0);
        s.templates.push(s.templates[0].clone());
        let err = s.validate().unwrap_err();
        let fields: Vec<_> = err.errors.iter().map(|e| e.field.as_str()).collect();
        assert!(fields.contains(&"regions"));
        assert!(fields.contains(&"templates[0].resources[0].hourly_fee"));
        assert!(fields.contains(&"templates[1].id"));
        assert!(fields.contains(&"templates[1].plans[0].id"));
    }

    #[test]
    fn missing_and_invalid_fields_are_reported_together() {
        let mut s = service();
        s.name = None;
        s.service_method = Some("shared".into());
        s.templates.clear();
        let err = s.validate().unwrap_err();
        let fields: Vec<_> = err
            .errors
            .iter()
            .map(|e| (e.field.as_str(), e.code))
            .collect();
        assert_eq!(
            fields,
            [
                ("name", Code::Required),
                ("service_method", Code::InvalidValue),
                ("templates", Code::Required)
            ]
        );
    }

    #[test]
    fn no_template_is_refused() {
        let mut s = service();
        s.templates.clear();
        assert_eq!(s.validate().unwrap_err().errors[0].field, "templates");
    }
}
