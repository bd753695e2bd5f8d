//! Price changes of a published product (docs/RULES.md R15.1–R15.5): each change is a pricing
//! version, validated as the pricing step is, with the billing period and the items' codes
//! unchanged and no new review. New orders get it at once; an existing instance from the first
//! period starting at or after its `effective_at` — at once (the next period) when no unit price
//! rises, else `price_increase_notice_days` after the change. A period of an instance is priced
//! with the highest of the version it was ordered under and every version in effect when the
//! period starts; its bill names that version.

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use serde::Serialize;

use crate::catalog::store::{self, StoredVersion};
use crate::error::{ApiError, ApiResult, Code};
use crate::identity::Principal;
use crate::listing::steps::{PricingStep, Tier};
use crate::listing::{self, ProductStatus, Reader, Step, validate_step};
use crate::period::{BillingPeriod, Period};
use crate::platform::storage::{Database, transaction};

/// One version of a product's prices.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct PricingVersion {
    pub product_id: String,
    pub version: i64,
    /// Existing instances are priced by it from the first period starting at or after this.
    #[serde(with = "crate::platform::clock::instant")]
    pub effective_at: DateTime<Utc>,
    /// Whether some unit price rose against a version in force or pending when it was made: it
    /// then waited the notice period.
    pub raises_price: bool,
    pub created_by: String,
    #[serde(with = "crate::platform::clock::instant")]
    pub created_at: DateTime<Utc>,
    /// The pricing step of this version.
    pub pricing: PricingStep,
}

fn instant(unix: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(unix, 0).unwrap_or_default()
}

fn view(product_id: &str, v: StoredVersion) -> PricingVersion {
    PricingVersion {
        product_id: product_id.to_owned(),
        version: v.version,
        effective_at: instant(v.effective_at),
        raises_price: v.raises_price,
        created_by: v.created_by,
        created_at: instant(v.created_at),
        pricing: v.pricing,
    }
}

/// Version 1: the reviewed pricing step, in effect from the product's publication.
fn first_version(db: &dyn Database, listing: &listing::Listing) -> ApiResult<StoredVersion> {
    let published = store::published_at(db, &listing.product.id)?.map_or(0, |t| t.timestamp());
    Ok(StoredVersion {
        version: 1,
        pricing: listing.pricing()?,
        raises_price: false,
        created_by: listing.product.provider_id.clone(),
        created_at: published,
        effective_at: published,
    })
}

/// Every pricing version of a product, oldest first, for its provider or an operator.
pub(crate) fn versions(
    db: &dyn Database,
    caller: &Principal,
    product_id: &str,
) -> ApiResult<Vec<PricingVersion>> {
    let listing = listing::find(db, Reader::Caller(caller), product_id)?;
    let mut stored = store::versions(db, &listing.product.id)?;
    if stored.is_empty() && listing.is_published() {
        stored.push(first_version(db, &listing)?);
    }
    Ok(stored
        .into_iter()
        .map(|v| view(&listing.product.id, v))
        .collect())
}

/// The version new orders of a product get.
pub(crate) fn current_version(db: &dyn Database, product_id: &str) -> ApiResult<i64> {
    store::current_version(db, product_id)
}

/// A product's pricing versions, read once for every instance of a bill run's batch.
pub(crate) struct VersionBook(Vec<StoredVersion>);

impl VersionBook {
    pub(crate) fn of(db: &dyn Database, product_id: &str) -> ApiResult<Self> {
        Ok(Self(store::versions(db, product_id)?))
    }

    /// The version a period starting at `period_start` (Unix seconds) is priced with, for an
    /// instance ordered under `ordered` — the highest of `ordered` and every version in effect
    /// by then — and its pricing step (`None`: the product's pricing step, version 1 before any
    /// change).
    pub(crate) fn for_period(
        &self,
        ordered: i64,
        period_start: i64,
    ) -> (i64, Option<&PricingStep>) {
        self.0
            .iter()
            .rev()
            .find(|v| v.version <= ordered || v.effective_at <= period_start)
            .map_or((1, None), |v| (v.version, Some(&v.pricing)))
    }
}

/// [`VersionBook::for_period`] of one instance's period.
pub(crate) fn version_for_period(
    db: &dyn Database,
    product_id: &str,
    ordered: i64,
    period_start: i64,
) -> ApiResult<(i64, Option<PricingStep>)> {
    let book = VersionBook::of(db, product_id)?;
    let (version, pricing) = book.for_period(ordered, period_start);
    Ok((version, pricing.cloned()))
}

/// The change coming to an instance: the next version that will price one of its periods,
/// when it takes effect and the start of the first period it prices.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct UpcomingChange {
    pub version: i64,
    #[serde(with = "crate::platform::clock::instant")]
    pub effective_at: DateTime<Utc>,
    #[serde(with = "crate::platform::clock::instant")]
    pub applies_from: DateTime<Utc>,
    pub raises_price: bool,
}

/// The version pricing an instance's period running at `now`, and the next change, if any.
pub(crate) fn outlook(
    db: &dyn Database,
    product_id: &str,
    ordered: i64,
    (kind, tz): (BillingPeriod, Tz),
    now: DateTime<Utc>,
) -> ApiResult<(i64, Option<UpcomingChange>)> {
    let period = Period::containing(kind, tz, now);
    let book = VersionBook::of(db, product_id)?;
    let (in_force, _) = book.for_period(ordered, period.start.timestamp());
    let next = book
        .0
        .into_iter()
        .filter(|v| v.version > in_force && v.effective_at > period.start.timestamp())
        .min_by_key(|v| v.effective_at);
    Ok((
        in_force,
        next.map(|v| {
            let at = DateTime::from_timestamp(v.effective_at, 0).unwrap_or_default();
            let containing = Period::containing(kind, tz, at);
            let first = if containing.start == at {
                containing.start
            } else {
                containing.end
            };
            UpcomingChange {
                version: v.version,
                effective_at: at,
                applies_from: first,
                raises_price: v.raises_price,
            }
        }),
    ))
}

/// A provider's new prices for a published product: a new version (validated as the pricing
/// step, its billing period and items' codes unchanged), the pricing step new orders read set to
/// it, all in one transaction. `None` for a product not published: its pricing step is written
/// as any step is.
pub(crate) fn reprice(
    db: &dyn Database,
    provider: &Principal,
    product_id: &str,
    body: &[u8],
    notice_days: u32,
    now: DateTime<Utc>,
) -> ApiResult<Option<PricingVersion>> {
    let listing = listing::find(db, Reader::Caller(provider), product_id)?;
    if listing.product.status != ProductStatus::Published {
        return Ok(None);
    }
    let validated = validate_step(Step::Pricing, body, &listing.service.spec)?;
    let new = PricingStep::from_stored(validated.data())?;
    let product_id = listing.product.id.clone();
    let version = transaction(db, |db| {
        listing::product::lock_for_reprice(db, &product_id, now)?;
        let mut stored = store::versions(db, &product_id)?;
        if stored.is_empty() {
            let first = first_version(db, &listing)?;
            store::insert_version(db, &product_id, &first)?;
            stored.push(first);
        }
        let latest = stored.last().map_or(1, |v| v.version);
        check_terms_kept(&stored[stored.len() - 1].pricing, &new)?;
        let raises = raises_any(&stored, now, &new);
        let notice = TimeDelta::days(i64::from(notice_days));
        let effective_at = if raises { now + notice } else { now };
        let version = StoredVersion {
            version: latest + 1,
            pricing: new.clone(),
            raises_price: raises,
            created_by: provider.id.clone(),
            created_at: now.timestamp(),
            effective_at: effective_at.timestamp(),
        };
        store::insert_version(db, &product_id, &version)?;
        listing::product::save_repriced(db, &product_id, &validated, now)?;
        Ok::<_, ApiError>(version)
    })?;
    Ok(Some(view(&product_id, version)))
}

/// Whether `new` raises a price against what an instance may pay now or later: the version in
/// force for existing instances at `now` and every one after it.
fn raises_any(stored: &[StoredVersion], now: DateTime<Utc>, new: &PricingStep) -> bool {
    let in_force = stored
        .iter()
        .rev()
        .find(|v| v.effective_at <= now.timestamp())
        .map_or(1, |v| v.version);
    stored
        .iter()
        .filter(|v| v.version >= in_force)
        .any(|v| raises_price(&v.pricing, new))
}

/// A price change keeps the billing period (409 `BillingPeriodLocked`) and the items' codes
/// (409 `ItemCodesLocked`): instances are cut into periods and metered by them.
fn check_terms_kept(current: &PricingStep, new: &PricingStep) -> ApiResult<()> {
    if current.billing_period() != new.billing_period() {
        return Err(ApiError::new(
            Code::BillingPeriodLocked,
            "a price change keeps the billing period of the published product",
        ));
    }
    let codes = |p: &PricingStep| {
        let mut codes: Vec<String> = p
            .billable_items()
            .iter()
            .map(|i| i.code().as_str().to_owned())
            .collect();
        codes.sort();
        codes
    };
    if codes(current) != codes(new) {
        return Err(ApiError::new(
            Code::ItemCodesLocked,
            format!(
                "a price change keeps the billable items' codes: {}",
                codes(current).join(", ")
            ),
        ));
    }
    Ok(())
}

/// The unit price of the tier a quantity falls in: at `q` itself, or (`above`) just above it.
fn unit_price_at(tiers: &[Tier], q: Decimal, above: bool) -> Decimal {
    tiers
        .iter()
        .find(|t| match t.up_to {
            None => true,
            Some(up_to) if above => up_to > q,
            Some(up_to) => q <= up_to,
        })
        .map_or(Decimal::ZERO, |t| t.unit_price)
}

/// Whether any unit price of `new` is above `old`'s at some quantity, or an item's tier mode
/// changed (which can raise a charge at equal prices). Tiers are steps, so comparing at every
/// bound of either schedule and just above it covers every quantity.
pub(crate) fn raises_price(old: &PricingStep, new: &PricingStep) -> bool {
    new.billable_items().iter().any(|item| {
        let Some(before) = old
            .billable_items()
            .iter()
            .find(|o| o.code() == item.code())
        else {
            return true;
        };
        if before.tier_mode() != item.tier_mode() {
            return true;
        }
        let bounds = before
            .tiers()
            .iter()
            .chain(item.tiers())
            .filter_map(|t| t.up_to)
            .chain([Decimal::ZERO]);
        bounds.into_iter().any(|q| {
            [false, true].into_iter().any(|above| {
                unit_price_at(item.tiers(), q, above) > unit_price_at(before.tiers(), q, above)
            })
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn pricing(mode: &str, tiers: Value) -> PricingStep {
        PricingStep::from_stored(&json!({
            "pricing_plan": "by_usage", "enterprise_only": false, "billing_period": "hour",
            "currency": "CNY",
            "billable_items": [{"code": "Frequency", "name": "Calls", "tier_mode": mode,
                                "tiers": tiers}],
        }))
        .unwrap()
    }

    #[test]
    fn a_rise_at_any_quantity_is_a_rise_and_nothing_else_is() {
        let base = pricing(
            "graduated",
            json!([{"up_to": "1000", "unit_price": "0.5"}, {"up_to": null, "unit_price": "0.2"}]),
        );
        let same = base.clone();
        assert!(!raises_price(&base, &same));
        let cheaper = pricing(
            "graduated",
            json!([{"up_to": "1000", "unit_price": "0.4"}, {"up_to": null, "unit_price": "0.2"}]),
        );
        assert!(!raises_price(&base, &cheaper));
        assert!(raises_price(&cheaper, &base));
        // The first tier shortened: quantities 501–1000 now pay the second tier's 0.2, cheaper.
        let shorter = pricing(
            "graduated",
            json!([{"up_to": "500", "unit_price": "0.5"}, {"up_to": null, "unit_price": "0.2"}]),
        );
        assert!(!raises_price(&base, &shorter));
        // Lengthened: 1001–2000 now pay 0.5 instead of 0.2.
        let longer = pricing(
            "graduated",
            json!([{"up_to": "2000", "unit_price": "0.5"}, {"up_to": null, "unit_price": "0.2"}]),
        );
        assert!(raises_price(&base, &longer));
        // Only the top tier rises.
        let top = pricing(
            "graduated",
            json!([{"up_to": "1000", "unit_price": "0.5"}, {"up_to": null, "unit_price": "0.21"}]),
        );
        assert!(raises_price(&base, &top));
        let volume = pricing(
            "volume",
            json!([{"up_to": "1000", "unit_price": "0.5"}, {"up_to": null, "unit_price": "0.2"}]),
        );
        assert!(raises_price(&base, &volume), "a tier mode change");
    }
}
