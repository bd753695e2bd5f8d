//! Sales settings of billable items (docs/RULES.md §6): how each item's usage is reported, and
//! which of the service's templates and plans it applies to. An item takes effect only once
//! associated.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult, Code};
use crate::identity::Principal;
use crate::listing::ProductStatus;
use crate::listing::service::{MAX_PLANS, MAX_TEMPLATES, ServiceSpec, Template};
use crate::listing::steps::{BillableItem, ItemCode, PricingStep, Tier, TierMode};
use crate::listing::{self, Reader, Step};
use crate::platform::storage::{Database, RowLock, transaction};

mod prometheus;
mod reporting;
mod store;

use crate::validate::{Errors, Seen, parse_json};
pub(crate) use prometheus::{Endpoint, Selector};
pub(crate) use reporting::{
    PLATFORM_BILL_SOURCE, PLATFORM_MEASURED_SOURCE, PlatformSource, PrometheusQuery,
    ReportingMethod, ReportingRequest, SERVICE_PROVIDER_SOURCE, check_reachable,
};

/// The body of `PUT .../billable-items/{code}/associations`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Associations {
    #[serde(default)]
    pub templates: Vec<String>,
    #[serde(default)]
    pub plans: Vec<String>,
}

impl Associations {
    pub(crate) fn validate(self, service: &ServiceSpec) -> ApiResult<Self> {
        let mut e = Errors::new();
        let spec = service.get();
        // An item is associated with at most every template and plan a service may have: a
        // bound known before the service is looked at, refused before any id is. Within it, an
        // id the service does not have, or one listed twice, is refused for what it is.
        let templates_ok = e.list_within("templates", self.templates.len(), MAX_TEMPLATES);
        let plans_ok = e.list_within("plans", self.plans.len(), MAX_TEMPLATES * MAX_PLANS);
        if !(templates_ok && plans_ok) {
            return e.finish().map(|()| self);
        }
        let mut templates = Seen::default();
        for (i, t) in self.templates.iter().enumerate() {
            if spec.template(t).is_none() {
                e.add(
                    format!("templates[{i}]"),
                    Code::UnknownTemplate,
                    format!("the service has no template {t:?}"),
                );
            } else if !templates.first(t) {
                e.add(
                    format!("templates[{i}]"),
                    Code::Duplicate,
                    format!("{t:?} is listed twice"),
                );
            }
        }
        let service_plans: std::collections::HashSet<&str> = spec
            .templates
            .iter()
            .flat_map(|t| &t.plans)
            .map(|plan| plan.id.as_str())
            .collect();
        let mut plans = Seen::default();
        for (i, p) in self.plans.iter().enumerate() {
            if !service_plans.contains(p.as_str()) {
                e.add(
                    format!("plans[{i}]"),
                    Code::UnknownPlan,
                    format!("the service has no plan {p:?}"),
                );
            } else if !plans.first(p) {
                e.add(
                    format!("plans[{i}]"),
                    Code::Duplicate,
                    format!("{p:?} is listed twice"),
                );
            }
        }
        e.finish()?;
        Ok(self)
    }

    fn is_empty(&self) -> bool {
        self.templates.is_empty() && self.plans.is_empty()
    }
}

/// What customers pay per unit of an item is priced in, from its metering key (docs/RULES.md R6.9).
pub(crate) fn price_unit(code: &str) -> &'static str {
    match code {
        "Period" => "hour",
        "PeriodMin" => "minute",
        "Storage" => "MB",
        "NetworkIn" | "NetworkOut" => "Mb",
        "Memory" => "GB",
        _ => "count",
    }
}

/// A billable item with its sales settings, as shown to the provider and used by the catalog,
/// orders, metering and billing.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ItemSettings {
    #[serde(flatten)]
    pub item: BillableItem,
    pub price_unit: &'static str,
    pub reporting: Option<ReportingMethod>,
    pub associations: Associations,
    /// True when the association is the automatic one of a single-template service.
    pub automatic_association: bool,
    pub in_effect: bool,
}

impl ItemSettings {
    /// Whether the item bills instances of this template or plan: it is in effect and associated
    /// with either.
    pub(crate) fn applies_to(&self, template_id: &str, plan_id: Option<&str>) -> bool {
        self.in_effect
            && (self.associations.templates.iter().any(|t| t == template_id)
                || plan_id.is_some_and(|p| self.associations.plans.iter().any(|a| a == p)))
    }
}

/// An item's price list as customers read it before ordering (the catalog, a quote): its tiers
/// in its price unit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct PricedItem {
    pub code: ItemCode,
    pub name: String,
    pub price_unit: &'static str,
    pub tier_mode: TierMode,
    pub tiers: Vec<Tier>,
}

impl From<&ItemSettings> for PricedItem {
    fn from(s: &ItemSettings) -> Self {
        PricedItem {
            code: s.item.code().clone(),
            name: s.item.name().to_owned(),
            price_unit: s.price_unit,
            tier_mode: s.item.tier_mode(),
            tiers: s.item.tiers().to_vec(),
        }
    }
}

/// The templates customers may order, given the product's items: those with at least one item
/// in effect for them (without a plan, or with one of their plans), each with the plans that
/// have one. A template nothing would bill deploys resources the provider is never paid for.
pub(crate) fn orderable_templates(items: &[ItemSettings], templates: &[Template]) -> Vec<Template> {
    let any_item =
        |template: &str, plan: Option<&str>| items.iter().any(|i| i.applies_to(template, plan));
    templates
        .iter()
        .filter_map(|t| {
            let plans: Vec<_> = t
                .plans
                .iter()
                .filter(|p| any_item(&t.id, Some(&p.id)))
                .cloned()
                .collect();
            (any_item(&t.id, None) || !plans.is_empty()).then(|| Template { plans, ..t.clone() })
        })
        .collect()
}

/// Every billable item of the pricing step with its settings. When the service has exactly one
/// template and the provider has not set an item's associations, the item is associated with
/// that template automatically; an explicit (even empty) association always wins.
pub(crate) fn item_settings(
    db: &dyn Database,
    product_id: &str,
    pricing: &PricingStep,
    service: &ServiceSpec,
) -> ApiResult<Vec<ItemSettings>> {
    let stored = store::settings(db, product_id)?;
    let single_template = match service.get().templates.as_slice() {
        [only] => Some(only.id.clone()),
        _ => None,
    };
    Ok(pricing
        .billable_items()
        .iter()
        .map(|item| {
            let code = item.code().as_str();
            let (reporting, explicit) = stored
                .iter()
                .find(|s| s.code == code)
                .map(|s| (s.reporting.clone(), s.associations.clone()))
                .unwrap_or_default();
            let (associations, automatic_association) = match (explicit, &single_template) {
                (Some(a), _) => (a, false),
                (None, Some(t)) => (
                    Associations {
                        templates: vec![t.clone()],
                        plans: Vec::new(),
                    },
                    true,
                ),
                (None, None) => (Associations::default(), false),
            };
            ItemSettings {
                price_unit: price_unit(code),
                in_effect: !associations.is_empty(),
                item: item.clone(),
                reporting,
                associations,
                automatic_association,
            }
        })
        .collect())
}

/// Which half of an item's settings a write replaces.
pub(crate) enum Setting {
    Reporting(ReportingMethod),
    Associations(Associations),
}

/// The provider writes one half of an item's sales settings: only in `self_test` and
/// `feature_rejected`, checked inside the transaction that writes. `setting` turns the request
/// into the setting, against the product's service.
pub(crate) fn configure(
    db: &dyn Database,
    provider: &Principal,
    product_id: &str,
    code: &str,
    setting: impl FnOnce(&ServiceSpec) -> ApiResult<Setting>,
    now: DateTime<Utc>,
) -> ApiResult<ItemSettings> {
    let listing = listing::find(db, Reader::Caller(provider), product_id)?;
    // The state first, as for listing steps: a frozen product refuses any body.
    settings_refusal(listing.product.status).map_or(Ok(()), Err)?;
    let service = listing.service;
    let setting = setting(&service.spec)?;
    transaction(db, |db| {
        listing::lock_product(db, product_id, RowLock::Exclusive)?;
        let product = listing::find_product(db, Reader::Caller(provider), product_id)?;
        settings_refusal(product.status).map_or(Ok(()), Err)?;
        let pricing = listing::pricing_of(db, &product.id)?
            .ok_or_else(|| ApiError::not_found("billable item"))?;
        if pricing.billable_item(code).is_none() {
            return Err(ApiError::not_found("billable item"));
        }
        if let Setting::Reporting(method) = &setting
            && store::usage_from_other_sources(db, &product.id, code, method.record_source())?
        {
            // Usage of one source priced as if it were another's would be billed twice (or
            // not at all): the test orders' records pin the method.
            return Err(ApiError::new(
                Code::ReportingMethodLocked,
                format!(
                    "usage of {code} is already recorded from another source (test orders): \
                     the reporting method cannot change"
                ),
            ));
        }
        store::save(db, &product.id, code, &setting, now)?;
        item_settings(db, &product.id, &pricing, &service.spec)?
            .into_iter()
            .find(|s| s.item.code().as_str() == code)
            .ok_or_else(|| ApiError::not_found("billable item"))
    })
}

/// The provider sets an item's reporting method from its JSON body: a Prometheus endpoint
/// outside the deployment's `prometheus_origin` is refused, since no bill run could reach it.
pub(crate) fn set_reporting(
    db: &dyn Database,
    provider: &Principal,
    product_id: &str,
    code: &str,
    body: &[u8],
    prometheus_origin: Option<&str>,
    now: DateTime<Utc>,
) -> ApiResult<ItemSettings> {
    configure(
        db,
        provider,
        product_id,
        code,
        |_| {
            let method = parse_json::<ReportingRequest>(body)?.validate(code)?;
            check_reachable(&method, prometheus_origin)?;
            Ok(Setting::Reporting(method))
        },
        now,
    )
}

/// The provider sets the templates and plans an item applies to, from its JSON body.
pub(crate) fn set_associations(
    db: &dyn Database,
    provider: &Principal,
    product_id: &str,
    code: &str,
    body: &[u8],
    now: DateTime<Utc>,
) -> ApiResult<ItemSettings> {
    configure(
        db,
        provider,
        product_id,
        code,
        |service| {
            let request: Associations = parse_json(body)?;
            Ok(Setting::Associations(request.validate(service)?))
        },
        now,
    )
}

/// A product's billable items with their settings, as its provider or an operator sees them
/// (none before the pricing step is written).
pub(crate) fn items_of(
    db: &dyn Database,
    caller: &Principal,
    product_id: &str,
) -> ApiResult<Vec<ItemSettings>> {
    let listing = listing::find(db, Reader::Caller(caller), product_id)?;
    if !listing.has(Step::Pricing) {
        return Ok(Vec::new());
    }
    item_settings(
        db,
        &listing.product.id,
        &listing.pricing()?,
        &listing.service.spec,
    )
}

/// Sales settings are configured during the self-test (docs/RULES.md R6.1): 409 in any other state.
pub(crate) fn settings_refusal(status: ProductStatus) -> Option<ApiError> {
    match status {
        ProductStatus::SelfTest | ProductStatus::FeatureRejected => None,
        other => Some(ApiError::new(
            Code::SalesSettingsNotEditable,
            format!(
                "sales settings are configured in self_test or feature_rejected, not in {}",
                other.as_str()
            ),
        )),
    }
}

/// The feature review's precondition: every item has a reporting method and at least one is in
/// effect. Returns the field errors, empty when the settings are complete.
pub(crate) fn incomplete(items: &[ItemSettings]) -> Vec<crate::error::FieldError> {
    let mut e = Vec::new();
    for s in items {
        if s.reporting.is_none() {
            e.push(crate::error::FieldError::new(
                format!("billable_items.{}.reporting", s.item.code()),
                Code::SalesSettingsIncomplete,
                "no reporting method is set",
            ));
        }
    }
    if !items.iter().any(|s| s.in_effect) {
        e.push(crate::error::FieldError::new(
            "billable_items",
            Code::SalesSettingsIncomplete,
            "no billable item is in effect: associate one with a template or plan",
        ));
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn price_units_follow_the_metering_key() {
        assert_eq!(price_unit("Period"), "hour");
        assert_eq!(price_unit("Storage"), "MB");
        assert_eq!(price_unit("NetworkOut"), "Mb");
        assert_eq!(price_unit("Frequency"), "count");
        assert_eq!(price_unit("ApiCalls"), "count");
    }
}
