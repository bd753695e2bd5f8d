//! Quotes, orders and service instances, and customers' accounts. An order deploys a running
//! instance and charges nothing; usage is billed later, per closed period.

pub(crate) mod arrears;
pub(crate) mod instance;
pub(crate) mod ledger;
mod store;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::catalog;
use crate::error::{ApiError, ApiResult, Code, FieldError};
use crate::identity::{AccountType, Principal, Role};
use crate::listing::service::{Resource, Service, Template};
use crate::listing::steps::{AccessStep, AgreementStep, CategoryStep, Eula, PricingStep};
use crate::listing::{self, Product, ProductStatus, Reader, Step};
use crate::money::Cents;
use crate::period::{BillingPeriod, Period};
use crate::platform::storage::{Database, RowLock, transaction};
use crate::sales::{self, ItemSettings, PricedItem};
use crate::webhook::{self, EventType, Tenants};
use instance::Instance;
/// The body of `POST /api/v1/orders/quote` and, with `accept_eula`, of `POST /api/v1/orders`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OrderRequest {
    pub product_id: String,
    pub template_id: Option<String>,
    pub plan_id: Option<String>,
    pub region: Option<String>,
    #[serde(default)]
    pub accept_eula: Option<bool>,
}

/// A product as one caller may buy it: published for customers, or in its self-test for its own
/// provider's test orders.
pub(crate) struct Purchasable {
    pub product: Product,
    pub service: Service,
    pub pricing: PricingStep,
    pub category: CategoryStep,
    pub access: AccessStep,
    pub agreement: AgreementStep,
    pub test: bool,
    /// The version of the product's prices an order placed now gets.
    pub pricing_version: i64,
}

pub(crate) fn purchasable(
    db: &dyn Database,
    caller: &Principal,
    product_id: &str,
) -> ApiResult<Purchasable> {
    let (listing, test) = match caller.role {
        Role::Customer => {
            let listing = listing::find(db, Reader::Public, product_id)?;
            catalog::delisting::check_listed(db, &listing.product.id)?;
            (listing, false)
        }
        Role::Provider => {
            let listing = listing::find(db, Reader::Caller(caller), product_id)?;
            if !matches!(
                listing.product.status,
                ProductStatus::SelfTest | ProductStatus::FeatureRejected
            ) {
                return Err(ApiError::new(
                    Code::TestOrderNotAllowed,
                    "providers place test orders of their own product during self_test or feature_rejected only",
                ));
            }
            (listing, true)
        }
        _ => return Err(ApiError::forbidden()),
    };
    Ok(Purchasable {
        pricing_version: catalog::versions::current_version(db, &listing.product.id)?,
        pricing: listing.pricing()?,
        category: listing.category()?,
        access: listing.access()?,
        agreement: listing.agreement()?,
        product: listing.product,
        service: listing.service,
        test,
    })
}

/// What the customer chose, resolved against the service.
pub(crate) struct Choice<'a> {
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
    pub(crate) fn choose(&self, req: &OrderRequest) -> ApiResult<Choice<'_>> {
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

    /// The choice ([`Purchasable::choose`]) and the billable items in effect for it. A customer
    /// may not order a template (or plan) no item bills: 409 `TemplateNotOrderable`; a
    /// provider's test order may try any.
    pub(crate) fn choose_billed(
        &self,
        db: &dyn Database,
        req: &OrderRequest,
    ) -> ApiResult<(Choice<'_>, Vec<ItemSettings>)> {
        let choice = self.choose(req)?;
        let items = self.items(db, &choice)?;
        if items.is_empty() && !self.test {
            let plan = choice
                .plan_id
                .as_deref()
                .map(|p| format!(" with plan {p}"))
                .unwrap_or_default();
            return Err(ApiError::new(
                Code::TemplateNotOrderable,
                format!(
                    "template {}{plan} is not sold: no billable item of the product applies to it \
                     (the product's page lists the templates it offers)",
                    choice.template.id
                ),
            ));
        }
        Ok((choice, items))
    }

    /// The billable items in effect for this template or plan.
    pub(crate) fn items(&self, db: &dyn Database, choice: &Choice) -> ApiResult<Vec<ItemSettings>> {
        Ok(
            sales::item_settings(db, &self.product.id, &self.pricing, &self.service.spec)?
                .into_iter()
                .filter(|s| s.applies_to(&choice.template.id, choice.plan_id.as_deref()))
                .collect(),
        )
    }

    /// The order confirmation: resources with hourly fees, tier schedules, period, currency.
    fn confirmation(&self, choice: &Choice, items: &[ItemSettings]) -> Quote {
        let resources: Vec<QuotedResource> = choice
            .template
            .resources
            .iter()
            .map(|r| QuotedResource {
                resource: r.clone(),
                hourly_fee_total: r.hourly_fee * Decimal::from(r.count),
            })
            .collect();
        Quote {
            product_id: self.product.id.clone(),
            product_name: self.access.product_name().to_owned(),
            test: self.test,
            template: QuotedTemplate {
                id: choice.template.id.clone(),
                name: choice.template.name.clone(),
            },
            plan_id: choice.plan_id.clone(),
            region: choice.region.clone(),
            cloud_resources_hourly_fee: resources.iter().map(|r| r.hourly_fee_total).sum(),
            cloud_resources: resources,
            pricing_version: self.pricing_version,
            billing_period: self.pricing.billing_period(),
            currency: self.pricing.currency().to_owned(),
            enterprise_only: self.pricing.enterprise_only(),
            billable_items: items.iter().map(PricedItem::from).collect(),
            eula: self.agreement.eula().clone(),
            eula_digest: self.agreement.eula().digest(),
            charged_at_confirmation: "0.00",
            statement: "Nothing is charged when you confirm this order. From deployment on, each \
                        closed billing period is billed: the cloud resources for the time the \
                        instance ran, and the billable items above for your metered usage.",
        }
    }
}

/// The order confirmation a customer reads before ordering (`POST /api/v1/orders/quote`).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Quote {
    pub product_id: String,
    pub product_name: String,
    /// A provider's test order of its own product in its self-test.
    pub test: bool,
    pub template: QuotedTemplate,
    pub plan_id: Option<String>,
    pub region: String,
    pub cloud_resources: Vec<QuotedResource>,
    /// What the template's resources cost per running hour, together.
    pub cloud_resources_hourly_fee: Decimal,
    /// The version of the product's prices an order placed now gets.
    pub pricing_version: i64,
    pub billing_period: BillingPeriod,
    pub currency: String,
    pub enterprise_only: bool,
    pub billable_items: Vec<PricedItem>,
    /// What ordering accepts; the order records its digest.
    pub eula: Eula,
    pub eula_digest: String,
    pub charged_at_confirmation: &'static str,
    pub statement: &'static str,
}

/// The template a quote deploys.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct QuotedTemplate {
    pub id: String,
    pub name: String,
}

/// A cloud resource a quote deploys, with its hourly fee times its count.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct QuotedResource {
    #[serde(flatten)]
    pub resource: Resource,
    pub hourly_fee_total: Decimal,
}

/// Whether the customer may buy this product: enterprise-only products need an enterprise account.
fn check_account_type(caller: &Principal, p: &Purchasable) -> ApiResult<()> {
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

/// The order confirmation a customer sees before ordering (or a provider before a test order):
/// resources with hourly fees, tier schedules, period, currency, and that nothing is charged.
pub(crate) fn quote(db: &dyn Database, caller: &Principal, req: &OrderRequest) -> ApiResult<Quote> {
    let p = purchasable(db, caller, &req.product_id)?;
    check_account_type(caller, &p)?;
    let (choice, items) = p.choose_billed(db, req)?;
    Ok(p.confirmation(&choice, &items))
}

/// A placed order and the instance it deployed.
pub(crate) struct Placed {
    pub order_id: String,
    pub instance: Instance,
    pub eula: AcceptedEula,
}

impl Placed {
    /// What `POST /api/v1/orders` answers and `order.created` carries.
    pub(crate) fn view(&self) -> Ordered {
        let instance = self.instance.clone();
        Ordered {
            order: Order {
                id: self.order_id.clone(),
                product_id: instance.product_id.clone(),
                test: instance.test,
                created_at: instance.created_at,
                eula: self.eula.clone(),
            },
            instance,
        }
    }
}

/// A placed order and the instance it deployed, as its customer reads it.
#[derive(Debug, Serialize)]
pub(crate) struct Ordered {
    order: Order,
    instance: Instance,
}

#[derive(Debug, Serialize)]
struct Order {
    id: String,
    product_id: String,
    test: bool,
    #[serde(with = "crate::platform::clock::instant")]
    created_at: DateTime<Utc>,
    eula: AcceptedEula,
}

/// The EULA an order accepted, as the order records it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct AcceptedEula {
    pub source: String,
    pub template_id: Option<String>,
    /// SHA-256 (hex) of the EULA as the quote showed it.
    pub digest: String,
    #[serde(with = "crate::platform::clock::instant")]
    pub accepted_at: DateTime<Utc>,
}

/// Places an order: a running instance, billed from the period it starts in; nothing is charged.
/// Checks run in this order — the product (404), the EULA, the account type, the template and
/// region, whether the template is sold, then the balance (or, for a test order, how many test
/// instances the product has alive: at most `test_limit`) — all inside the transaction that
/// writes, so a concurrent deduction or test order cannot slip between the check and the order.
pub(crate) fn place(
    db: &dyn Database,
    caller: &Principal,
    req: &OrderRequest,
    tz: Tz,
    test_limit: u32,
    now: DateTime<Utc>,
) -> ApiResult<Placed> {
    // Customers' orders of a product go on together (its row shared); a provider's test order
    // counts the product's live test instances and adds one, so test orders take turns (its row
    // alone): two of them could otherwise each count the same instances and both add theirs.
    let how = match caller.role {
        Role::Provider => RowLock::Exclusive,
        _ => RowLock::Shared,
    };
    transaction(db, |db| {
        listing::lock_product(db, &req.product_id, how)?;
        let p = purchasable(db, caller, &req.product_id)?;
        if req.accept_eula != Some(true) {
            return Err(invalid(
                "accept_eula",
                Code::EulaNotAccepted,
                "the product's EULA must be accepted (`accept_eula: true`)",
            ));
        }
        check_account_type(caller, &p)?;
        let (choice, _) = p.choose_billed(db, req)?;
        if p.test {
            let alive = store::live_test_instances(db, &p.product.id)?.len();
            if alive >= test_limit as usize {
                return Err(ApiError::new(
                    Code::TestInstanceLimit,
                    format!(
                        "{} has {alive} test instances alive, the most a product may have: \
                         release one first",
                        p.product.id
                    ),
                ));
            }
        } else if store::balance_cents(db, &caller.id)? < Cents(0) {
            return Err(instance::in_arrears("ordering"));
        }
        let (order_id, instance) = store::insert_order(db, caller, &p, &choice, tz, now)?;
        open_billing_cursor(db, &instance, p.pricing.billing_period(), tz)?;
        let eula = p.agreement.eula();
        let placed = Placed {
            order_id,
            instance,
            eula: AcceptedEula {
                source: eula.source().to_owned(),
                template_id: eula.template_id().map(str::to_owned),
                digest: eula.digest(),
                accepted_at: now,
            },
        };
        let tenants = Tenants {
            provider: Some(&placed.instance.provider_id),
            customer: Some(&placed.instance.owner_id),
        };
        webhook::emit(db, EventType::OrderCreated, tenants, &placed.view(), now)?;
        Ok(placed)
    })
}

/// Starts billing an instance: its first period is the one it was ordered in.
pub(crate) fn open_billing_cursor(
    db: &dyn Database,
    instance: &Instance,
    kind: BillingPeriod,
    tz: Tz,
) -> ApiResult<()> {
    let created = instance
        .created()
        .ok_or_else(|| ApiError::internal("an instance without running intervals"))?;
    let first = Period::containing(kind, tz, created);
    store::open_billing_cursor(db, &instance.id, &first, first.closes_at(kind, tz))
}

/// Gives every instance without a billing cursor one at the period it was created in, each in a
/// transaction of its own: an instance whose cursor cannot be opened is returned with why, and
/// the others are opened all the same.
pub(crate) fn open_missing_billing_cursors(
    db: &dyn Database,
    tz: Tz,
) -> ApiResult<Vec<(String, ApiError)>> {
    let mut failed = Vec::new();
    for id in store::instances_without_cursor(db)? {
        let opened = transaction(db, |db| {
            let instance = store::find_instance(db, &id)?;
            let terms = terms(db, &instance)?;
            open_billing_cursor(db, &instance, terms.kind, instance.zone(tz))
        });
        if let Err(e) = opened {
            failed.push((id, e));
        }
    }
    Ok(failed)
}

/// Instances whatever their owner, by id, with their running intervals, read a batch at a time
/// (bill runs). Ids not found are absent from the map.
pub(crate) fn find_instances(
    db: &dyn Database,
    ids: &[String],
) -> ApiResult<std::collections::HashMap<String, Instance>> {
    store::find_instances(db, ids)
}

/// What an instance is billed by: its product's period kind and currency, and the billable
/// items in effect for its template or plan, priced by one version of the product's prices.
pub(crate) struct Terms {
    pub kind: BillingPeriod,
    pub currency: String,
    pub items: Vec<ItemSettings>,
    pub pricing_version: i64,
}

/// The terms of an instance by its product's prices as new orders get them: what its usage is
/// validated against (a price change keeps the period and the items' codes).
pub(crate) fn terms(db: &dyn Database, instance: &Instance) -> ApiResult<Terms> {
    let version = catalog::versions::current_version(db, &instance.product_id)?;
    terms_priced(db, instance, version, None)
}

/// The terms a period starting at `period_start` is billed by: the version of the product's
/// prices in effect for the instance then ([`catalog::versions::version_for_period`]).
pub(crate) fn terms_for_period(
    db: &dyn Database,
    instance: &Instance,
    period_start: i64,
) -> ApiResult<Terms> {
    let (version, pricing) = catalog::versions::version_for_period(
        db,
        &instance.product_id,
        instance.pricing_version,
        period_start,
    )?;
    terms_priced(db, instance, version, pricing.as_ref())
}

/// The terms of an instance under pricing `version`, whose step is `pricing` (`None`: the
/// product's pricing step as it is now).
pub(crate) fn terms_priced(
    db: &dyn Database,
    instance: &Instance,
    version: i64,
    pricing: Option<&PricingStep>,
) -> ApiResult<Terms> {
    let listing::Terms {
        product,
        service,
        pricing: current,
    } = listing::terms(db, &instance.product_id)?;
    let pricing = pricing.unwrap_or(&current);
    let items = sales::item_settings(db, &product.id, pricing, &service)?
        .into_iter()
        .filter(|s| s.applies_to(&instance.template_id, instance.plan_id.as_deref()))
        .collect();
    Ok(Terms {
        kind: pricing.billing_period(),
        currency: pricing.currency().to_owned(),
        items,
        pricing_version: version,
    })
}

/// An instance as `GET /api/v1/instances/{id}` shows it: with the version of its product's prices
/// pricing its current period and the change coming to it, if any.
#[derive(Debug, Serialize)]
pub(crate) struct InstanceView {
    #[serde(flatten)]
    pub instance: Instance,
    pub pricing: PricingOutlook,
}

/// Which prices bill an instance now and which will later.
#[derive(Debug, Serialize)]
pub(crate) struct PricingOutlook {
    /// The version pricing its period running now.
    pub version: i64,
    /// The next version that will price its periods, when it takes effect and the first period
    /// it prices.
    pub upcoming: Option<catalog::versions::UpcomingChange>,
}

/// An instance the caller may see, with its pricing outlook at `now`.
pub(crate) fn view(
    db: &dyn Database,
    caller: &Principal,
    id: &str,
    tz: Tz,
    now: DateTime<Utc>,
) -> ApiResult<InstanceView> {
    let instance = instance::find(db, caller, id)?;
    let kind = terms(db, &instance)?.kind;
    let (version, upcoming) = catalog::versions::outlook(
        db,
        &instance.product_id,
        instance.pricing_version,
        (kind, instance.zone(tz)),
        now,
    )?;
    Ok(InstanceView {
        instance,
        pricing: PricingOutlook { version, upcoming },
    })
}

/// The EULA an instance's order accepted, whole (`GET /api/v1/instances/{id}/eula`).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct InstanceEula {
    pub instance_id: String,
    #[serde(flatten)]
    pub accepted: AcceptedEula,
    pub eula: Eula,
}

/// The EULA an instance's order accepted, whole (the custom text, or the marketplace template
/// with the provider's amendments), for its customer, its provider and operators: what the
/// order recorded, or — for an order placed before the EULA itself was recorded — the listing's
/// agreement while its digest is still the one accepted.
pub(crate) fn accepted_eula(
    db: &dyn Database,
    caller: &Principal,
    id: &str,
) -> ApiResult<InstanceEula> {
    let instance = instance::find(db, caller, id)?;
    let unrecorded = || ApiError::not_found("accepted EULA");
    let (accepted, recorded) =
        store::accepted_eula(db, &instance.order_id)?.ok_or_else(unrecorded)?;
    let eula = match recorded {
        Some(json) => serde_json::from_str::<Eula>(&json).map_err(ApiError::internal)?,
        None => {
            let listing = listing::find(db, Reader::Internal, &instance.product_id)?;
            if !listing.has(Step::Agreement) {
                return Err(unrecorded());
            }
            let eula = listing.agreement()?.eula().clone();
            if eula.digest() != accepted.digest {
                return Err(unrecorded());
            }
            eula
        }
    };
    Ok(InstanceEula {
        instance_id: instance.id,
        accepted,
        eula,
    })
}
