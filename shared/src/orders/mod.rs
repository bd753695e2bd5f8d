//! Quotes, orders and service instances (SPEC §9). An order deploys a running instance and
//! charges nothing; usage is billed later. Running intervals are recorded exactly, because they
//! are the usage of items reported by the platform's Time source.

pub mod ledger;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult, Code, FieldError};
use crate::identity::{AccountType, Principal, Role};
use crate::listing::service::{Service, Template};
use crate::listing::steps::{AccessStep, CategoryStep, PricingStep};
use crate::listing::{self, Product};
use crate::listing::{ProductStatus, Step};
use crate::platform::clock::rfc3339;
use crate::platform::ids::new_id;
use crate::platform::storage::{Database, Row, StorageError};
use crate::sales::{self, ItemSettings};

/// The body of `POST /api/v1/orders/quote` and, with `accept_eula`, of `POST /api/v1/orders`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderRequest {
    pub product_id: String,
    pub template_id: Option<String>,
    pub plan_id: Option<String>,
    pub region: Option<String>,
    #[serde(default)]
    pub accept_eula: Option<bool>,
}

/// A product as one caller may buy it: published for customers, or in its self-test for its own
/// provider's test orders.
pub struct Purchasable {
    pub product: Product,
    pub service: Service,
    pub pricing: PricingStep,
    pub category: CategoryStep,
    pub access: AccessStep,
    pub test: bool,
}

pub fn purchasable(
    db: &dyn Database,
    caller: &Principal,
    product_id: &str,
) -> ApiResult<Purchasable> {
    let (product, test) = match caller.role {
        Role::Customer => (
            listing::store::find_published_product(db, product_id)?,
            false,
        ),
        Role::Provider => {
            let product = listing::store::find_product(db, caller, product_id)?;
            if !matches!(
                product.status,
                ProductStatus::SelfTest | ProductStatus::FeatureRejected
            ) {
                return Err(ApiError::new(
                    Code::TestOrderNotAllowed,
                    "providers place test orders of their own product during self_test or feature_rejected only",
                ));
            }
            (product, true)
        }
        _ => return Err(ApiError::forbidden()),
    };
    let service = listing::store::find_service_unscoped(db, &product.service_id)?;
    let step = |s: Step| -> ApiResult<Value> {
        listing::store::step_data(db, &product.id, s)?
            .ok_or_else(|| ApiError::internal(format!("{} lacks its {s:?} step", product.id)))
    };
    Ok(Purchasable {
        pricing: PricingStep::from_stored(&step(Step::Pricing)?)?,
        category: CategoryStep::from_stored(&step(Step::Category)?)?,
        access: AccessStep::from_stored(&step(Step::Access)?, &service.spec)?,
        product,
        service,
        test,
    })
}

/// What the customer chose, resolved against the service.
pub struct Choice<'a> {
    pub template: &'a Template,
    pub plan_id: Option<String>,
    pub region: String,
}

fn invalid(field: &str, code: Code, message: impl Into<String>) -> ApiError {
    ApiError::validation(vec![FieldError::new(field, code, message)])
}

impl Purchasable {
    /// The template (the request's, else the listing's, else the service's only one), the plan
    /// and the region, under the listing's region rule.
    pub fn choose(&self, req: &OrderRequest) -> ApiResult<Choice<'_>> {
        let spec = self.service.spec.get();
        let template_id = req
            .template_id
            .as_deref()
            .or(self.access.service_template_id())
            .or(match spec.templates.as_slice() {
                [only] => Some(only.id.as_str()),
                _ => None,
            })
            .ok_or_else(|| {
                invalid(
                    "template_id",
                    Code::Required,
                    "the service has several templates: choose one",
                )
            })?;
        let template = spec.template(template_id).ok_or_else(|| {
            invalid(
                "template_id",
                Code::UnknownTemplate,
                format!("no template {template_id:?}"),
            )
        })?;
        if let Some(plan) = &req.plan_id
            && !template.plans.iter().any(|p| p.id == *plan)
        {
            return Err(invalid(
                "plan_id",
                Code::UnknownPlan,
                format!("template {template_id} has no plan {plan:?}"),
            ));
        }
        let region = match (self.category.region_selectable(), &req.region) {
            (true, Some(r)) if spec.regions.contains(r) => r.clone(),
            (true, Some(r)) => {
                return Err(invalid(
                    "region",
                    Code::InvalidRegion,
                    format!("{r:?} is not one of {:?}", spec.regions),
                ));
            }
            (true, None) => {
                return Err(invalid(
                    "region",
                    Code::Required,
                    "choose one of the service's regions",
                ));
            }
            (false, Some(_)) => {
                return Err(invalid(
                    "region",
                    Code::RegionNotSelectable,
                    "this product's region is not selectable",
                ));
            }
            // Not selectable: the service deploys to its first (default) region.
            (false, None) => spec.regions[0].clone(),
        };
        Ok(Choice {
            template,
            plan_id: req.plan_id.clone(),
            region,
        })
    }

    /// The billable items in effect for this template or plan.
    pub fn items(&self, db: &dyn Database, choice: &Choice) -> ApiResult<Vec<ItemSettings>> {
        Ok(
            sales::item_settings(db, &self.product.id, &self.pricing, &self.service.spec)?
                .into_iter()
                .filter(|s| {
                    s.in_effect
                        && (s.associations.templates.contains(&choice.template.id)
                            || choice
                                .plan_id
                                .as_ref()
                                .is_some_and(|p| s.associations.plans.contains(p)))
                })
                .collect(),
        )
    }

    /// The order confirmation: resources with hourly fees, tier schedules, period, currency.
    pub fn quote(&self, db: &dyn Database, choice: &Choice) -> ApiResult<Value> {
        let resources: Vec<Value> = choice
            .template
            .resources
            .iter()
            .map(|r| {
                json!({"type": r.kind, "spec": r.spec, "count": r.count, "hourly_fee": r.hourly_fee,
                       "hourly_fee_total": r.hourly_fee * Decimal::from(r.count)})
            })
            .collect();
        let hourly: Decimal = choice
            .template
            .resources
            .iter()
            .map(|r| r.hourly_fee * Decimal::from(r.count))
            .sum();
        let items: Vec<Value> = self
            .items(db, choice)?
            .iter()
            .map(|s| {
                json!({"code": s.item.code(), "name": s.item.name(), "price_unit": s.price_unit,
                       "tier_mode": s.item.tier_mode(), "tiers": s.item.tiers()})
            })
            .collect();
        Ok(json!({
            "product_id": self.product.id,
            "product_name": self.access.product_name(),
            "test": self.test,
            "template": {"id": choice.template.id, "name": choice.template.name},
            "plan_id": choice.plan_id,
            "region": choice.region,
            "cloud_resources": resources,
            "cloud_resources_hourly_fee": hourly,
            "billing_period": self.pricing.billing_period(),
            "currency": self.pricing.currency(),
            "enterprise_only": self.pricing.enterprise_only(),
            "billable_items": items,
            "charged_at_confirmation": "0.00",
            "statement": "Nothing is charged when you confirm this order. Cloud resource fees are \
                          charged by the cloud when the resources are deployed; the billable items \
                          above are billed per closed billing period from your metered usage.",
        }))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstanceStatus {
    Running,
    Stopped,
    Released,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Stop,
    Start,
    Release,
}

/// The instance lifecycle: running ⇄ stopped, either → released, released accepts nothing.
pub fn act(from: InstanceStatus, action: Action) -> ApiResult<InstanceStatus> {
    use Action::*;
    use InstanceStatus::*;
    match (from, action) {
        (Released, _) => Err(ApiError::new(
            Code::InstanceReleased,
            "the instance is released",
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

/// A half-open running interval `[started_at, ended_at)` in Unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RunningInterval {
    pub started_at: i64,
    pub ended_at: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Instance {
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
    pub created_at: String,
    pub released_at: Option<String>,
    pub running_intervals: Vec<RunningInterval>,
}

pub fn place(
    db: &dyn Database,
    caller: &Principal,
    p: &Purchasable,
    choice: &Choice,
    now: DateTime<Utc>,
) -> ApiResult<(String, Instance)> {
    let order_id = new_id("ord", now);
    let instance_id = new_id("si", now);
    db.execute(
        "INSERT INTO orders (id, owner_id, product_id, template_id, plan_id, region, test, instance_id, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        &[
            order_id.clone().into(),
            caller.id.clone().into(),
            p.product.id.clone().into(),
            choice.template.id.clone().into(),
            choice.plan_id.clone().into(),
            choice.region.clone().into(),
            i64::from(p.test).into(),
            instance_id.clone().into(),
            rfc3339(now).into(),
        ],
    )?;
    db.execute(
        "INSERT INTO instances (id, order_id, owner_id, product_id, provider_id, template_id, plan_id, region, status, test, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'running', ?, ?)",
        &[
            instance_id.clone().into(),
            order_id.clone().into(),
            caller.id.clone().into(),
            p.product.id.clone().into(),
            p.product.provider_id.clone().into(),
            choice.template.id.clone().into(),
            choice.plan_id.clone().into(),
            choice.region.clone().into(),
            i64::from(p.test).into(),
            rfc3339(now).into(),
        ],
    )?;
    db.execute(
        "INSERT INTO instance_intervals (instance_id, started_at) VALUES (?, ?)",
        &[instance_id.clone().into(), now.timestamp().into()],
    )?;
    Ok((order_id, find_unscoped(db, &instance_id)?))
}

const COLUMNS: &str = "id, order_id, owner_id, product_id, provider_id, template_id, plan_id, \
                       region, status, test, created_at, released_at";

fn from_row(row: &Row) -> Result<Instance, StorageError> {
    Ok(Instance {
        id: row.text(0)?,
        order_id: row.text(1)?,
        owner_id: row.text(2)?,
        product_id: row.text(3)?,
        provider_id: row.text(4)?,
        template_id: row.text(5)?,
        plan_id: row.opt_text(6)?,
        region: row.text(7)?,
        status: crate::platform::storage::enum_from_str(&row.text(8)?)?,
        test: row.int(9)? != 0,
        created_at: row.text(10)?,
        released_at: row.opt_text(11)?,
        running_intervals: Vec::new(),
    })
}

pub fn intervals(db: &dyn Database, instance_id: &str) -> ApiResult<Vec<RunningInterval>> {
    let rows = db.execute(
        "SELECT started_at, ended_at FROM instance_intervals WHERE instance_id = ? ORDER BY rowid",
        &[instance_id.into()],
    )?;
    Ok(rows
        .iter()
        .map(|r| {
            Ok(RunningInterval {
                started_at: r.int(0)?,
                ended_at: r.opt_int(1)?,
            })
        })
        .collect::<Result<_, StorageError>>()?)
}

/// An instance whatever its owner, for internal reads (bill runs).
pub fn find_unscoped(db: &dyn Database, id: &str) -> ApiResult<Instance> {
    let rows = db.execute(
        &format!("SELECT {COLUMNS} FROM instances WHERE id = ?"),
        &[id.into()],
    )?;
    let mut instance = rows
        .first()
        .map(from_row)
        .transpose()?
        .ok_or_else(|| ApiError::not_found("instance"))?;
    instance.running_intervals = intervals(db, id)?;
    Ok(instance)
}

/// Instances whatever their owner, by id, with their running intervals: two queries per
/// [`IDS_PER_QUERY`] ids instead of two per instance (bill runs read a batch at once). Ids not
/// found are absent from the map.
pub fn find_many_unscoped(
    db: &dyn Database,
    ids: &[String],
) -> ApiResult<std::collections::HashMap<String, Instance>> {
    let mut found = std::collections::HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(IDS_PER_QUERY) {
        let marks = vec!["?"; chunk.len()].join(", ");
        let params: Vec<crate::platform::storage::Value> = chunk.iter().map(Into::into).collect();
        for row in &db.execute(
            &format!("SELECT {COLUMNS} FROM instances WHERE id IN ({marks})"),
            &params,
        )? {
            let instance = from_row(row)?;
            found.insert(instance.id.clone(), instance);
        }
        // Ordered by rowid, as `intervals` reads them: the order they were opened in.
        for row in &db.execute(
            &format!(
                "SELECT instance_id, started_at, ended_at FROM instance_intervals
                 WHERE instance_id IN ({marks}) ORDER BY rowid"
            ),
            &params,
        )? {
            if let Some(instance) = found.get_mut(&row.text(0)?) {
                instance.running_intervals.push(RunningInterval {
                    started_at: row.int(1)?,
                    ended_at: row.opt_int(2)?,
                });
            }
        }
    }
    Ok(found)
}

/// Ids per `IN (…)` list: below 999, the oldest SQLite limit on bound parameters.
const IDS_PER_QUERY: usize = 500;

/// The instance if the caller may see it: its owner, the product's provider, an operator or the
/// platform.
pub fn find(db: &dyn Database, caller: &Principal, id: &str) -> ApiResult<Instance> {
    let instance = find_unscoped(db, id)?;
    // The platform reports usage of any instance; operators see all.
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

/// Applies an owner's action: compare-and-set on the status, and the running interval closed or
/// opened at `now` in the same transaction.
pub fn perform(
    db: &dyn Database,
    caller: &Principal,
    id: &str,
    action: Action,
    now: DateTime<Utc>,
) -> ApiResult<Instance> {
    let instance = find(db, caller, id)?;
    if instance.owner_id != caller.id {
        // The provider and operators see the instance; only its owner operates it.
        return Err(ApiError::forbidden());
    }
    let to = act(instance.status, action)?;
    let moved = db.execute(
        "UPDATE instances SET status = ?, released_at = CASE WHEN ? = 'released' THEN ? ELSE released_at END
         WHERE id = ? AND status = ? RETURNING id",
        &[
            crate::platform::storage::enum_to_str(&to).into(),
            crate::platform::storage::enum_to_str(&to).into(),
            rfc3339(now).into(),
            id.into(),
            crate::platform::storage::enum_to_str(&instance.status).into(),
        ],
    )?;
    if moved.is_empty() {
        return Err(ApiError::new(
            Code::InvalidInstanceAction,
            "the instance changed meanwhile; retry",
        ));
    }
    let at = now.timestamp();
    match to {
        InstanceStatus::Running => {
            db.execute(
                "INSERT INTO instance_intervals (instance_id, started_at) VALUES (?, ?)",
                &[id.into(), at.into()],
            )?;
        }
        InstanceStatus::Stopped | InstanceStatus::Released => {
            db.execute(
                "UPDATE instance_intervals SET ended_at = MAX(started_at, ?) WHERE instance_id = ? AND ended_at IS NULL",
                &[at.into(), id.into()],
            )?;
        }
    }
    find_unscoped(db, id)
}

/// Whether the customer may buy this product: enterprise-only products need an enterprise account.
pub fn check_account_type(caller: &Principal, p: &Purchasable) -> ApiResult<()> {
    if p.pricing.enterprise_only()
        && caller.role == Role::Customer
        && caller.account_type != Some(AccountType::Enterprise)
    {
        return Err(ApiError::new(
            Code::EnterpriseOnly,
            "this product is sold to enterprise accounts only",
        ));
    }
    Ok(())
}

/// The billing period, the currency and the billable items in effect for an instance's template
/// or plan: what its usage is validated against and billed by.
pub fn billing_terms(
    db: &dyn Database,
    instance: &Instance,
) -> ApiResult<(crate::period::BillingPeriod, String, Vec<ItemSettings>)> {
    let product = listing::store::find_product_unscoped(db, &instance.product_id)?;
    let service = listing::store::find_service_unscoped(db, &product.service_id)?;
    let pricing = PricingStep::from_stored(
        &listing::store::step_data(db, &product.id, Step::Pricing)?
            .ok_or_else(|| ApiError::internal("an ordered product lacks its pricing step"))?,
    )?;
    let items = sales::item_settings(db, &product.id, &pricing, &service.spec)?
        .into_iter()
        .filter(|s| {
            s.in_effect
                && (s.associations.templates.contains(&instance.template_id)
                    || instance
                        .plan_id
                        .as_ref()
                        .is_some_and(|p| s.associations.plans.contains(p)))
        })
        .collect();
    Ok((
        pricing.billing_period(),
        pricing.currency().to_owned(),
        items,
    ))
}

impl Instance {
    /// When the order deployed it: the start of its first running interval.
    pub fn created(&self) -> Option<DateTime<Utc>> {
        self.running_intervals
            .first()
            .and_then(|i| DateTime::from_timestamp(i.started_at, 0))
    }

    /// When it was released, if it was. Usage and billing end here, not at an earlier stop: a
    /// stopped instance still holds resources (storage, reserved capacity) until released.
    pub fn released(&self) -> Option<DateTime<Utc>> {
        self.released_at
            .as_deref()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.to_utc())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Action::*;
    use InstanceStatus::*;

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
