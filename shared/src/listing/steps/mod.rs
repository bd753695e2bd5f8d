//! The five listing steps (SPEC §6): for each, the request body as the client sends it and the
//! validated step that can only be built from a valid one.
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

use crate::error::{ApiError, Code};
use crate::listing::categories::{self, Category};
use crate::listing::service::{ServiceMethod, ServiceSpec, Visibility};
use crate::listing::{Step, Warning, WarningCode};
use crate::validate::{Errors, parse_json};

/// A step that passed validation: what to store and what to advise.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatedStep {
    step: Step,
    data: Value,
    warnings: Vec<Warning>,
}

impl ValidatedStep {
    pub fn step(&self) -> Step {
        self.step
    }

    /// The normalized step to store: the request's shape, defaults filled in, decimals as
    /// strings. Reading it back with the step's `from_stored` yields the same step.
    pub fn data(&self) -> &Value {
        &self.data
    }

    /// Advice that does not block the step (e.g. a private template was chosen).
    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
    }

    pub fn into_parts(self) -> (Value, Vec<Warning>) {
        (self.data, self.warnings)
    }
}

/// Validates the body of `PUT /api/v1/products/{id}/{step}` whole.
///
/// Malformed JSON is 400 `InvalidJson` and an unknown field 400 `UnknownField`, both naming the
/// field's path; otherwise every invalid field is reported at once (400, see
/// [`ApiError::validation`]). The access step is checked against the product's service.
pub fn validate_step(
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

// ---------------------------------------------------------------------------------------------
// Access

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessRequest {
    pub product_type: Option<String>,
    pub product_name: Option<String>,
    pub acceleration_plan_id: Option<String>,
    pub access_method: Option<String>,
    pub service_method: Option<String>,
    pub service_template_id: Option<String>,
}

/// The only product type this marketplace accepts for platform-deployed services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProductType {
    Saas,
}

/// How the product reaches customers: deployed by the platform (Compute Nest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AccessMethod {
    ComputeNest,
}

/// Step 1: what is sold and how it is deployed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccessStep {
    product_type: ProductType,
    product_name: String,
    acceleration_plan_id: Option<String>,
    access_method: AccessMethod,
    service_method: ServiceMethod,
    service_template_id: Option<String>,
}

const PRODUCT_NAME_MAX: usize = 60;
/// Ids of things outside this system (acceleration plans, live streams, EULA templates):
/// generous enough for any cloud id, short enough to stay an id.
const EXTERNAL_ID_MAX: usize = 64;

const SERVICE_METHODS: [(&str, ServiceMethod); 2] = [
    ("private", ServiceMethod::Private),
    ("fully_managed", ServiceMethod::FullyManaged),
];

impl AccessStep {
    /// Validates the access step against the product's service: the service method must be the
    /// service's own, and a chosen template one of its templates.
    pub fn parse(request: AccessRequest, service: &ServiceSpec) -> Result<Self, ApiError> {
        let service = service.get();
        let mut e = Errors::new();
        let product_type = choice(
            &mut e,
            "product_type",
            &request.product_type,
            &[("saas", ProductType::Saas)],
            Code::InvalidValue,
        );
        let product_name = required_text(
            &mut e,
            "product_name",
            &request.product_name,
            PRODUCT_NAME_MAX,
            Code::TooLong,
        );
        optional_text(
            &mut e,
            "acceleration_plan_id",
            &request.acceleration_plan_id,
            EXTERNAL_ID_MAX,
        );
        let access_method = choice(
            &mut e,
            "access_method",
            &request.access_method,
            &[("compute_nest", AccessMethod::ComputeNest)],
            Code::InvalidValue,
        );
        let service_method = choice(
            &mut e,
            "service_method",
            &request.service_method,
            &SERVICE_METHODS,
            Code::InvalidValue,
        );
        if let Some(method) = service_method
            && method != service.service_method
        {
            e.add(
                "service_method",
                Code::ServiceMethodMismatch,
                format!(
                    "must be the service's own method, `{}`",
                    name_of(&SERVICE_METHODS, service.service_method)
                ),
            );
        }
        if let Some(id) = &request.service_template_id
            && service.template(id).is_none()
        {
            let known: Vec<&str> = service.templates.iter().map(|t| t.id.as_str()).collect();
            e.add(
                "service_template_id",
                Code::UnknownTemplate,
                format!(
                    "`{id}` is not a template of the service; its templates are {}",
                    quoted_list(&known)
                ),
            );
        }
        e.finish()?;
        let (Some(product_type), Some(product_name), Some(access_method), Some(service_method)) =
            (product_type, product_name, access_method, service_method)
        else {
            return Err(missing_after_validation(Step::Access));
        };
        Ok(Self {
            product_type,
            product_name: product_name.to_owned(),
            acceleration_plan_id: request.acceleration_plan_id,
            access_method,
            service_method,
            service_template_id: request.service_template_id,
        })
    }

    /// Rebuilds the stored access step, re-checking it against the service as it is now.
    pub fn from_stored(stored: &Value, service: &ServiceSpec) -> Result<Self, ApiError> {
        Self::parse(stored_request(Step::Access, stored)?, service)
            .map_err(|e| stored_invalid(Step::Access, &e))
    }

    /// The seed recommends a public template ("If no public template is available, select a
    /// private template"): a private one is accepted, with this advice.
    pub fn warnings(&self, service: &ServiceSpec) -> Vec<Warning> {
        let service = service.get();
        let Some(template) = self
            .service_template_id
            .as_deref()
            .and_then(|id| service.template(id))
        else {
            return Vec::new();
        };
        if template.visibility != Visibility::Private {
            return Vec::new();
        }
        let public: Vec<&str> = service
            .templates
            .iter()
            .filter(|t| t.visibility == Visibility::Public)
            .map(|t| t.id.as_str())
            .collect();
        let advice = if public.is_empty() {
            "publish a public template and select it when you can".to_owned()
        } else {
            format!("select a public template instead: {}", quoted_list(&public))
        };
        vec![Warning {
            field: "service_template_id".to_owned(),
            code: WarningCode::PrivateTemplateSelected,
            message: format!(
                "template `{}` is private; a public template is recommended ({advice})",
                template.id
            ),
        }]
    }

    pub fn product_name(&self) -> &str {
        &self.product_name
    }

    pub fn service_method(&self) -> ServiceMethod {
        self.service_method
    }

    pub fn service_template_id(&self) -> Option<&str> {
        self.service_template_id.as_deref()
    }

    pub fn acceleration_plan_id(&self) -> Option<&str> {
        self.acceleration_plan_id.as_deref()
    }
}

// ---------------------------------------------------------------------------------------------
// General

/// `edition_features` compare the product's editions (their screenshots are uploaded as media).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EditionFeatureRequest {
    pub edition: Option<String>,
    pub description: Option<String>,
}

/// A success story: `{title, description, url?}`; `url` links to the full story (http or https).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseRequest {
    pub title: Option<String>,
    pub description: Option<String>,
    pub url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SupportOfferedRequest {
    pub service_scope: Option<String>,
    pub time_range: Option<String>,
    pub business_scope: Option<String>,
    pub billing_scope: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeneralRequest {
    pub short_description: Option<String>,
    pub highlights: Option<String>,
    pub description: Option<String>,
    pub edition_features: Option<Vec<EditionFeatureRequest>>,
    pub live_stream_id: Option<String>,
    pub cases: Option<Vec<CaseRequest>>,
    pub support_offered: Option<SupportOfferedRequest>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct EditionFeature {
    edition: String,
    description: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct Case {
    title: String,
    description: String,
    url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct SupportOffered {
    service_scope: String,
    time_range: String,
    business_scope: String,
    billing_scope: String,
}

/// Step 2: how the product presents itself in the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GeneralStep {
    short_description: String,
    highlights: String,
    description: String,
    edition_features: Vec<EditionFeature>,
    live_stream_id: Option<String>,
    cases: Vec<Case>,
    support_offered: SupportOffered,
}

/// Shown on the catalog's product list; the seed recommends "no more than 300 characters".
const SHORT_DESCRIPTION_MAX: usize = 300;
const HIGHLIGHTS_MAX: usize = 1_000;
/// The product page's full text: the seed gives no limit; 20,000 characters is several pages,
/// and keeps a product row a bounded size.
const DESCRIPTION_MAX: usize = 20_000;
/// Editions and cases are compared side by side on the product page: ten of each is plenty.
const EDITION_FEATURES_MAX: usize = 10;
const EDITION_NAME_MAX: usize = 60;
const EDITION_DESCRIPTION_MAX: usize = 1_000;
const CASES_MAX: usize = 10;
const CASE_TITLE_MAX: usize = 100;
const CASE_DESCRIPTION_MAX: usize = 2_000;
const URL_MAX: usize = 2_048;
/// Each part of "Support Offered" is a sentence or a short paragraph.
const SUPPORT_FIELD_MAX: usize = 500;

impl GeneralStep {
    pub fn parse(request: GeneralRequest) -> Result<Self, ApiError> {
        let mut e = Errors::new();
        let short_description = required_text(
            &mut e,
            "short_description",
            &request.short_description,
            SHORT_DESCRIPTION_MAX,
            Code::ShortDescriptionTooLong,
        );
        let highlights = required_text(
            &mut e,
            "highlights",
            &request.highlights,
            HIGHLIGHTS_MAX,
            Code::HighlightsTooLong,
        );
        let description = required_text(
            &mut e,
            "description",
            &request.description,
            DESCRIPTION_MAX,
            Code::TooLong,
        );
        optional_text(
            &mut e,
            "live_stream_id",
            &request.live_stream_id,
            EXTERNAL_ID_MAX,
        );

        let editions = request.edition_features.unwrap_or_default();
        at_most(
            &mut e,
            "edition_features",
            editions.len(),
            EDITION_FEATURES_MAX,
        );
        let mut edition_features = Vec::new();
        for (i, f) in editions.iter().enumerate() {
            let at = format!("edition_features[{i}]");
            let edition = required_text(
                &mut e,
                &format!("{at}.edition"),
                &f.edition,
                EDITION_NAME_MAX,
                Code::TooLong,
            );
            let description = required_text(
                &mut e,
                &format!("{at}.description"),
                &f.description,
                EDITION_DESCRIPTION_MAX,
                Code::TooLong,
            );
            if let (Some(edition), Some(description)) = (edition, description) {
                edition_features.push(EditionFeature {
                    edition: edition.to_owned(),
                    description: description.to_owned(),
                });
            }
        }

        let case_requests = request.cases.unwrap_or_default();
        at_most(&mut e, "cases", case_requests.len(), CASES_MAX);
        let mut cases = Vec::new();
        for (i, c) in case_requests.into_iter().enumerate() {
            let at = format!("cases[{i}]");
            let title = required_text(
                &mut e,
                &format!("{at}.title"),
                &c.title,
                CASE_TITLE_MAX,
                Code::TooLong,
            );
            let description = required_text(
                &mut e,
                &format!("{at}.description"),
                &c.description,
                CASE_DESCRIPTION_MAX,
                Code::TooLong,
            );
            if let Some(url) = &c.url {
                check_url(&mut e, &format!("{at}.url"), url);
            }
            if let (Some(title), Some(description)) = (title, description) {
                cases.push(Case {
                    title: title.to_owned(),
                    description: description.to_owned(),
                    url: c.url,
                });
            }
        }

        let support_offered = e
            .required("support_offered", &request.support_offered)
            .and_then(|s| {
                // Every part is checked before any is found missing, so all are reported.
                let mut part = |name: &str, value: &Option<String>| {
                    required_text(
                        &mut e,
                        &format!("support_offered.{name}"),
                        value,
                        SUPPORT_FIELD_MAX,
                        Code::TooLong,
                    )
                    .map(str::to_owned)
                };
                let parts = (
                    part("service_scope", &s.service_scope),
                    part("time_range", &s.time_range),
                    part("business_scope", &s.business_scope),
                    part("billing_scope", &s.billing_scope),
                );
                Some(SupportOffered {
                    service_scope: parts.0?,
                    time_range: parts.1?,
                    business_scope: parts.2?,
                    billing_scope: parts.3?,
                })
            });

        e.finish()?;
        let (Some(short_description), Some(highlights), Some(description), Some(support_offered)) =
            (short_description, highlights, description, support_offered)
        else {
            return Err(missing_after_validation(Step::General));
        };
        Ok(Self {
            short_description: short_description.to_owned(),
            highlights: highlights.to_owned(),
            description: description.to_owned(),
            edition_features,
            live_stream_id: request.live_stream_id,
            cases,
            support_offered,
        })
    }

    pub fn from_stored(stored: &Value) -> Result<Self, ApiError> {
        Self::parse(stored_request(Step::General, stored)?)
            .map_err(|e| stored_invalid(Step::General, &e))
    }

    pub fn short_description(&self) -> &str {
        &self.short_description
    }

    pub fn highlights(&self) -> &str {
        &self.highlights
    }

    pub fn description(&self) -> &str {
        &self.description
    }
}

// ---------------------------------------------------------------------------------------------
// Category and SEO

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategoryRequest {
    pub region_selectable: Option<bool>,
    pub category: Option<String>,
    pub tags: Option<Vec<String>>,
    pub seo_keywords: Option<Vec<String>>,
    pub seo_description: Option<String>,
}

/// Step 3: where the product is filed and how it is found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CategoryStep {
    region_selectable: bool,
    #[serde(serialize_with = "category_id")]
    category: &'static Category,
    tags: Vec<String>,
    seo_keywords: Vec<String>,
    seo_description: Option<String>,
}

const TAGS_MAX: usize = 10;
const TAG_MAX_CHARS: usize = 32;
const SEO_KEYWORDS_MAX: usize = 10;
/// A search keyword is a word or a short phrase, like a tag.
const SEO_KEYWORD_MAX_CHARS: usize = 32;
const SEO_DESCRIPTION_MAX: usize = 300;

impl CategoryStep {
    pub fn parse(request: CategoryRequest) -> Result<Self, ApiError> {
        let mut e = Errors::new();
        let category = e.required("category", &request.category).and_then(|id| {
            let found = categories::find(id);
            if found.is_none() {
                e.add(
                    "category",
                    Code::UnknownCategory,
                    format!(
                        "`{id}` is not a marketplace category (see GET /api/v1/catalog/categories)"
                    ),
                );
            }
            found
        });
        let tags = request.tags.unwrap_or_default();
        check_word_list(&mut e, "tags", &tags, TAGS_MAX, TAG_MAX_CHARS);
        let seo_keywords = request.seo_keywords.unwrap_or_default();
        check_word_list(
            &mut e,
            "seo_keywords",
            &seo_keywords,
            SEO_KEYWORDS_MAX,
            SEO_KEYWORD_MAX_CHARS,
        );
        if let Some(text) = &request.seo_description {
            e.text(
                "seo_description",
                text,
                1,
                SEO_DESCRIPTION_MAX,
                Code::TooLong,
            );
        }
        e.finish()?;
        let Some(category) = category else {
            return Err(missing_after_validation(Step::Category));
        };
        Ok(Self {
            region_selectable: request.region_selectable.unwrap_or(false),
            category,
            tags,
            seo_keywords,
            seo_description: request.seo_description,
        })
    }

    pub fn from_stored(stored: &Value) -> Result<Self, ApiError> {
        Self::parse(stored_request(Step::Category, stored)?)
            .map_err(|e| stored_invalid(Step::Category, &e))
    }

    /// Whether a customer chooses the region when ordering (then it must be one of the
    /// service's regions) or may not give one at all.
    pub fn region_selectable(&self) -> bool {
        self.region_selectable
    }

    pub fn category(&self) -> &'static Category {
        self.category
    }

    pub fn tags(&self) -> &[String] {
        &self.tags
    }

    pub fn seo_keywords(&self) -> &[String] {
        &self.seo_keywords
    }

    pub fn seo_description(&self) -> Option<&str> {
        self.seo_description.as_deref()
    }
}

fn category_id<S: Serializer>(category: &&'static Category, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(category.id)
}

/// Tags and keywords: at most `max_items`, each 1..=`max_chars` characters, no repeats (an
/// exact, case-sensitive comparison, like the catalog's `?tag=` filter).
fn check_word_list(
    e: &mut Errors,
    field: &str,
    words: &[String],
    max_items: usize,
    max_chars: usize,
) {
    at_most(e, field, words.len(), max_items);
    for (i, word) in words.iter().enumerate() {
        let at = format!("{field}[{i}]");
        e.text(&at, word, 1, max_chars, Code::TooLong);
        if words[..i].contains(word) {
            e.add(at, Code::Duplicate, format!("`{word}` is listed twice"));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Pricing

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierRequest {
    /// Inclusive upper bound of the tier in the item's price unit; `null` (or absent) for the
    /// last, unbounded tier. A decimal string (`"100"`) or a JSON number.
    pub up_to: Option<Decimal>,
    /// Price per unit within the tier. A decimal string (`"0.5"`) or a JSON number.
    pub unit_price: Option<Decimal>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BillableItemRequest {
    pub code: Option<String>,
    pub name: Option<String>,
    pub tier_mode: Option<String>,
    pub tiers: Option<Vec<TierRequest>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PricingRequest {
    pub pricing_plan: Option<String>,
    pub enterprise_only: Option<bool>,
    pub billing_period: Option<String>,
    pub currency: Option<String>,
    pub billable_items: Option<Vec<BillableItemRequest>>,
}

/// How the product is charged. Only pay-as-you-go is sold through this marketplace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PricingPlan {
    ByUsage,
}

/// The period usage is summed over and billed for: a clock hour, or a day in `billing_timezone`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BillingPeriod {
    Hour,
    Day,
}

impl BillingPeriod {
    pub const fn as_str(self) -> &'static str {
        match self {
            BillingPeriod::Hour => "hour",
            BillingPeriod::Day => "day",
        }
    }
}

/// How a period's quantity meets the tiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TierMode {
    /// Each unit is priced by the tier it falls in.
    Graduated,
    /// Every unit is priced at the tier the whole quantity falls in.
    Volume,
}

impl TierMode {
    pub const fn as_str(self) -> &'static str {
        match self {
            TierMode::Graduated => "graduated",
            TierMode::Volume => "volume",
        }
    }
}

/// One price tier. Within a [`BillableItem`] the tiers ascend strictly by `up_to` and only the
/// last is unbounded, so every quantity has exactly one tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Tier {
    /// Inclusive upper bound in the item's price unit; `None` for the last tier.
    pub up_to: Option<Decimal>,
    /// Non-negative, at most 8 decimal places.
    pub unit_price: Decimal,
}

/// A billable item's code: the metering key providers push in `Entities[].Key`
/// (`^[A-Za-z][A-Za-z0-9]{0,63}$`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ItemCode(String);

impl ItemCode {
    const MAX_CHARS: usize = 64;

    /// Checks the pattern by hand: a letter, then letters and digits, 64 characters at most.
    pub fn parse(code: &str) -> Result<Self, String> {
        let mut chars = code.chars();
        if !chars.next().is_some_and(|c| c.is_ascii_alphabetic()) {
            return Err("must start with a letter (A-Z or a-z)".to_owned());
        }
        if !chars.all(|c| c.is_ascii_alphanumeric()) {
            return Err("may contain only letters A-Z, a-z and digits 0-9".to_owned());
        }
        // All ASCII by now, so bytes are characters.
        if code.len() > Self::MAX_CHARS {
            return Err(format!(
                "at most {} characters, got {}",
                Self::MAX_CHARS,
                code.len()
            ));
        }
        Ok(Self(code.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ItemCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Something a customer pays for by usage, with its tier schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BillableItem {
    code: ItemCode,
    name: String,
    tier_mode: TierMode,
    tiers: Vec<Tier>,
}

impl BillableItem {
    pub fn code(&self) -> &ItemCode {
        &self.code
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn tier_mode(&self) -> TierMode {
        self.tier_mode
    }

    /// Never empty; ascending by `up_to`; the last (and only the last) has `up_to: None`.
    pub fn tiers(&self) -> &[Tier] {
        &self.tiers
    }
}

/// Step 4: how usage is priced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PricingStep {
    pricing_plan: PricingPlan,
    enterprise_only: bool,
    billing_period: BillingPeriod,
    currency: String,
    billable_items: Vec<BillableItem>,
}

const BILLABLE_ITEMS_MAX: usize = 20;
const ITEM_NAME_MAX: usize = 64;
/// Not bounded by the seed; 20 tiers is far beyond any real price list and bounds the work per
/// bill line.
const TIERS_MAX: usize = 20;
/// SPEC §3: unit prices may carry up to 8 decimal places.
const UNIT_PRICE_MAX_SCALE: u32 = 8;
const DEFAULT_CURRENCY: &str = "CNY";

const TIER_MODES: [(&str, TierMode); 2] = [
    ("graduated", TierMode::Graduated),
    ("volume", TierMode::Volume),
];

impl PricingStep {
    pub fn parse(request: PricingRequest) -> Result<Self, ApiError> {
        let mut e = Errors::new();
        let pricing_plan = choice(
            &mut e,
            "pricing_plan",
            &request.pricing_plan,
            &[("by_usage", PricingPlan::ByUsage)],
            Code::UnsupportedPricingPlan,
        );
        let enterprise_only = e
            .required("enterprise_only", &request.enterprise_only)
            .copied();
        let billing_period = choice(
            &mut e,
            "billing_period",
            &request.billing_period,
            &[("hour", BillingPeriod::Hour), ("day", BillingPeriod::Day)],
            Code::InvalidValue,
        );
        let currency = request.currency.as_deref().unwrap_or(DEFAULT_CURRENCY);
        if !(currency.len() == 3 && currency.bytes().all(|b| b.is_ascii_uppercase())) {
            e.add(
                "currency",
                Code::InvalidValue,
                "an ISO 4217 code: three uppercase letters, e.g. `CNY`",
            );
        }

        let mut billable_items = Vec::new();
        if let Some(items) = e.required("billable_items", &request.billable_items) {
            if items.is_empty() {
                e.add(
                    "billable_items",
                    Code::Required,
                    "at least one billable item",
                );
            }
            at_most(&mut e, "billable_items", items.len(), BILLABLE_ITEMS_MAX);
            for (i, item) in items.iter().enumerate() {
                let at = format!("billable_items[{i}]");
                if let Some(code) = &item.code
                    && items[..i].iter().any(|o| o.code.as_ref() == Some(code))
                {
                    e.add(
                        format!("{at}.code"),
                        Code::Duplicate,
                        format!("`{code}` is used by an earlier billable item"),
                    );
                }
                if let Some(item) = parse_billable_item(&mut e, &at, item) {
                    billable_items.push(item);
                }
            }
        }

        e.finish()?;
        let (Some(pricing_plan), Some(enterprise_only), Some(billing_period)) =
            (pricing_plan, enterprise_only, billing_period)
        else {
            return Err(missing_after_validation(Step::Pricing));
        };
        Ok(Self {
            pricing_plan,
            enterprise_only,
            billing_period,
            currency: currency.to_owned(),
            billable_items,
        })
    }

    pub fn from_stored(stored: &Value) -> Result<Self, ApiError> {
        Self::parse(stored_request(Step::Pricing, stored)?)
            .map_err(|e| stored_invalid(Step::Pricing, &e))
    }

    pub fn pricing_plan(&self) -> PricingPlan {
        self.pricing_plan
    }

    /// Only customers with an enterprise account may order the product.
    pub fn enterprise_only(&self) -> bool {
        self.enterprise_only
    }

    pub fn billing_period(&self) -> BillingPeriod {
        self.billing_period
    }

    /// ISO 4217 code; `CNY` unless the provider chose another.
    pub fn currency(&self) -> &str {
        &self.currency
    }

    /// 1 to 20 items with unique codes.
    pub fn billable_items(&self) -> &[BillableItem] {
        &self.billable_items
    }

    pub fn billable_item(&self, code: &str) -> Option<&BillableItem> {
        self.billable_items.iter().find(|i| i.code.as_str() == code)
    }
}

/// Validates one item, reporting into `e`; `None` when anything about it is invalid.
fn parse_billable_item(
    e: &mut Errors,
    at: &str,
    item: &BillableItemRequest,
) -> Option<BillableItem> {
    let code_field = format!("{at}.code");
    let code = e
        .required(&code_field, &item.code)
        .and_then(|code| match ItemCode::parse(code) {
            Ok(code) => Some(code),
            Err(why) => {
                e.add(&code_field, Code::InvalidValue, why);
                None
            }
        });
    let name = required_text(
        e,
        &format!("{at}.name"),
        &item.name,
        ITEM_NAME_MAX,
        Code::TooLong,
    );
    let tier_mode = choice(
        e,
        &format!("{at}.tier_mode"),
        &item.tier_mode,
        &TIER_MODES,
        Code::InvalidValue,
    );
    let tiers_field = format!("{at}.tiers");
    let tiers = e
        .required(&tiers_field, &item.tiers)
        .and_then(|tiers| parse_tiers(e, &tiers_field, tiers));
    Some(BillableItem {
        code: code?,
        name: name?.to_owned(),
        tier_mode: tier_mode?,
        tiers: tiers?,
    })
}

/// The tier schedule rules (SPEC §6): at least one tier, strictly ascending positive `up_to`,
/// the last one unbounded — so that every quantity falls in exactly one tier.
fn parse_tiers(e: &mut Errors, at: &str, tiers: &[TierRequest]) -> Option<Vec<Tier>> {
    let Some(last) = tiers.len().checked_sub(1) else {
        e.add(
            at,
            Code::InvalidTiers,
            "at least one tier; the last has `up_to: null`",
        );
        return None;
    };
    at_most(e, at, tiers.len(), TIERS_MAX);
    let mut valid = Vec::with_capacity(tiers.len());
    let mut previous_bound: Option<Decimal> = None;
    for (j, tier) in tiers.iter().enumerate() {
        let up_to_field = format!("{at}[{j}].up_to");
        let mut up_to_ok = true;
        match tier.up_to {
            None if j < last => {
                up_to_ok = false;
                e.add(
                    &up_to_field,
                    Code::InvalidTiers,
                    "only the last tier is unbounded; this tier needs an `up_to`",
                );
            }
            Some(_) if j == last => {
                up_to_ok = false;
                e.add(
                    &up_to_field,
                    Code::InvalidTiers,
                    "the last tier must have `up_to: null` so that every quantity has a price",
                );
            }
            Some(bound) if bound <= Decimal::ZERO => {
                up_to_ok = false;
                e.add(&up_to_field, Code::InvalidTiers, "must be greater than 0");
            }
            Some(bound) => {
                if let Some(previous) = previous_bound
                    && bound <= previous
                {
                    up_to_ok = false;
                    e.add(
                        &up_to_field,
                        Code::InvalidTiers,
                        format!("tiers ascend strictly: must be greater than {previous}"),
                    );
                }
                previous_bound = Some(bound);
            }
            None => {}
        }
        let price_field = format!("{at}[{j}].unit_price");
        let unit_price = e
            .required(&price_field, &tier.unit_price)
            .and_then(|&price| {
                let price = price.normalize();
                if price < Decimal::ZERO {
                    e.add(&price_field, Code::InvalidValue, "must not be negative");
                    None
                } else if price.scale() > UNIT_PRICE_MAX_SCALE {
                    e.add(
                        &price_field,
                        Code::InvalidValue,
                        format!(
                            "at most {UNIT_PRICE_MAX_SCALE} decimal places, got {}",
                            price.scale()
                        ),
                    );
                    None
                } else {
                    Some(price)
                }
            });
        if let (true, Some(unit_price)) = (up_to_ok, unit_price) {
            valid.push(Tier {
                up_to: tier.up_to.map(|b| b.normalize()),
                unit_price,
            });
        }
    }
    (valid.len() == tiers.len() && tiers.len() <= TIERS_MAX).then_some(valid)
}

// ---------------------------------------------------------------------------------------------
// Agreement

/// The EULA customers accept when ordering: the marketplace's template (optionally amended by
/// the provider) or the provider's own text.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "source", rename_all = "snake_case", deny_unknown_fields)]
pub enum EulaRequest {
    Template {
        template_id: Option<String>,
        amendments: Option<String>,
    },
    Custom {
        text: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgreementRequest {
    pub eula: Option<EulaRequest>,
    pub icp_filing: Option<String>,
}

/// A validated EULA, as stored and shown on the order confirmation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum Eula {
    Template {
        template_id: String,
        amendments: Option<String>,
    },
    Custom {
        text: String,
    },
}

/// Step 5: the legal terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgreementStep {
    eula: Eula,
    icp_filing: String,
}

/// Amendments adjust a template (a few clauses); a custom EULA is a whole contract.
const EULA_AMENDMENTS_MAX: usize = 10_000;
const EULA_TEXT_MAX: usize = 100_000;
const ICP_FILING_MAX: usize = 200;

impl AgreementStep {
    pub fn parse(request: AgreementRequest) -> Result<Self, ApiError> {
        let mut e = Errors::new();
        let eula = e
            .required("eula", &request.eula)
            .and_then(|eula| match eula {
                EulaRequest::Template {
                    template_id,
                    amendments,
                } => {
                    let id = required_text(
                        &mut e,
                        "eula.template_id",
                        template_id,
                        EXTERNAL_ID_MAX,
                        Code::TooLong,
                    );
                    optional_text(&mut e, "eula.amendments", amendments, EULA_AMENDMENTS_MAX);
                    id.map(|id| Eula::Template {
                        template_id: id.to_owned(),
                        amendments: amendments.clone(),
                    })
                }
                EulaRequest::Custom { text } => {
                    required_text(&mut e, "eula.text", text, EULA_TEXT_MAX, Code::TooLong).map(
                        |text| Eula::Custom {
                            text: text.to_owned(),
                        },
                    )
                }
            });
        let icp_filing = required_text(
            &mut e,
            "icp_filing",
            &request.icp_filing,
            ICP_FILING_MAX,
            Code::TooLong,
        );
        e.finish()?;
        let (Some(eula), Some(icp_filing)) = (eula, icp_filing) else {
            return Err(missing_after_validation(Step::Agreement));
        };
        Ok(Self {
            eula,
            icp_filing: icp_filing.to_owned(),
        })
    }

    pub fn from_stored(stored: &Value) -> Result<Self, ApiError> {
        Self::parse(stored_request(Step::Agreement, stored)?)
            .map_err(|e| stored_invalid(Step::Agreement, &e))
    }

    pub fn eula(&self) -> &Eula {
        &self.eula
    }

    pub fn icp_filing(&self) -> &str {
        &self.icp_filing
    }
}

// ---------------------------------------------------------------------------------------------
// Shared helpers

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

fn at_most(e: &mut Errors, field: &str, count: usize, max: usize) {
    if count > max {
        e.add(
            field,
            Code::TooMany,
            format!("at most {max} items, got {count}"),
        );
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
mod tests {
    use super::*;
    use crate::listing::service::ServiceRequest;
    use http::StatusCode;
    use proptest::prelude::*;
    use serde_json::json;

    /// A private-method service with a public and a private template.
    fn service() -> ServiceSpec {
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

    fn check(step: Step, body: &Value) -> Result<ValidatedStep, ApiError> {
        validate_step(step, body.to_string().as_bytes(), &service())
    }

    fn refusal(step: Step, body: &Value) -> ApiError {
        check(step, body).expect_err("the step should be refused")
    }

    /// `body` with top-level `field` set to `value` (`null` removes nothing: it is "absent").
    fn with(mut body: Value, field: &str, value: Value) -> Value {
        body[field] = value;
        body
    }

    fn without(mut body: Value, field: &str) -> Value {
        body.as_object_mut().unwrap().remove(field);
        body
    }

    fn errors_of(err: &ApiError) -> Vec<(&str, Code)> {
        err.errors
            .iter()
            .map(|e| (e.field.as_str(), e.code))
            .collect()
    }

    fn assert_only(err: &ApiError, field: &str, code: Code) {
        assert_eq!(errors_of(err), vec![(field, code)], "{err:?}");
        assert_eq!(err.code, code);
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
    }

    fn chinese(n: usize) -> String {
        "云".repeat(n)
    }

    fn access() -> Value {
        json!({
            "product_type": "saas",
            "product_name": "Acme DB Cloud",
            "access_method": "compute_nest",
            "service_method": "private",
            "service_template_id": "t-public"
        })
    }

    fn general() -> Value {
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

    fn category() -> Value {
        json!({"category": "databases", "tags": ["sql", "ha"]})
    }

    fn item(code: &str) -> Value {
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

    fn pricing() -> Value {
        json!({
            "pricing_plan": "by_usage",
            "enterprise_only": false,
            "billing_period": "hour",
            "billable_items": [item("Frequency")]
        })
    }

    fn pricing_with_tiers(tiers: Value) -> Value {
        let mut body = pricing();
        body["billable_items"][0]["tiers"] = tiers;
        body
    }

    fn agreement() -> Value {
        json!({
            "eula": {"source": "template", "template_id": "eula-standard"},
            "icp_filing": "浙ICP备12345678号"
        })
    }

    fn valid(step: Step) -> Value {
        match step {
            Step::Access => access(),
            Step::General => general(),
            Step::Category => category(),
            Step::Pricing => pricing(),
            Step::Agreement => agreement(),
        }
    }

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

    // --- access ---------------------------------------------------------------------------

    #[test]
    fn product_name_is_1_to_60_characters() {
        assert!(
            check(
                Step::Access,
                &with(access(), "product_name", json!(chinese(60)))
            )
            .is_ok()
        );
        let err = refusal(
            Step::Access,
            &with(access(), "product_name", json!(chinese(61))),
        );
        assert_only(&err, "product_name", Code::TooLong);
        let err = refusal(Step::Access, &with(access(), "product_name", json!("  ")));
        assert_only(&err, "product_name", Code::Required);
    }

    #[test]
    fn only_saas_through_compute_nest_is_accepted() {
        let err = refusal(
            Step::Access,
            &with(access(), "product_type", json!("image")),
        );
        assert_only(&err, "product_type", Code::InvalidValue);
        let err = refusal(Step::Access, &with(access(), "access_method", json!("api")));
        assert_only(&err, "access_method", Code::InvalidValue);
    }

    #[test]
    fn the_service_method_must_be_the_services_own() {
        let err = refusal(
            Step::Access,
            &with(access(), "service_method", json!("fully_managed")),
        );
        assert_only(&err, "service_method", Code::ServiceMethodMismatch);
        assert!(err.errors[0].message.contains("`private`"));
        let err = refusal(
            Step::Access,
            &with(access(), "service_method", json!("hybrid")),
        );
        assert_only(&err, "service_method", Code::InvalidValue);
    }

    #[test]
    fn the_template_must_be_one_of_the_services() {
        let err = refusal(
            Step::Access,
            &with(access(), "service_template_id", json!("t-x")),
        );
        assert_only(&err, "service_template_id", Code::UnknownTemplate);
        let untemplated = check(Step::Access, &without(access(), "service_template_id")).unwrap();
        assert!(untemplated.warnings().is_empty());
        assert_eq!(untemplated.data()["service_template_id"], Value::Null);
    }

    #[test]
    fn a_private_template_is_accepted_with_a_warning_recommending_a_public_one() {
        let public = check(Step::Access, &access()).unwrap();
        assert!(public.warnings().is_empty());
        let private = check(
            Step::Access,
            &with(access(), "service_template_id", json!("t-private")),
        )
        .unwrap();
        assert_eq!(private.warnings().len(), 1);
        let warning = &private.warnings()[0];
        assert_eq!(warning.field, "service_template_id");
        assert_eq!(warning.code, WarningCode::PrivateTemplateSelected);
        assert!(
            warning.message.contains("`t-public`"),
            "{}",
            warning.message
        );
        let stored = AccessStep::from_stored(private.data(), &service()).unwrap();
        assert_eq!(stored.service_template_id(), Some("t-private"));
        assert_eq!(stored.warnings(&service()), private.warnings());
    }

    #[test]
    fn an_empty_acceleration_plan_id_is_not_absent() {
        let err = refusal(
            Step::Access,
            &with(access(), "acceleration_plan_id", json!("")),
        );
        assert_only(&err, "acceleration_plan_id", Code::Required);
    }

    // --- general --------------------------------------------------------------------------

    #[test]
    fn short_description_is_at_most_300_characters_of_any_script() {
        let ok = check(
            Step::General,
            &with(general(), "short_description", json!(chinese(300))),
        );
        assert!(ok.is_ok());
        let err = refusal(
            Step::General,
            &with(general(), "short_description", json!(chinese(301))),
        );
        assert_only(&err, "short_description", Code::ShortDescriptionTooLong);
    }

    #[test]
    fn highlights_are_at_most_1000_characters() {
        assert!(
            check(
                Step::General,
                &with(general(), "highlights", json!(chinese(1000)))
            )
            .is_ok()
        );
        let err = refusal(
            Step::General,
            &with(general(), "highlights", json!(chinese(1001))),
        );
        assert_only(&err, "highlights", Code::HighlightsTooLong);
    }

    #[test]
    fn every_part_of_support_offered_is_required() {
        let body = with(general(), "support_offered", json!({"time_range": ""}));
        let err = refusal(Step::General, &body);
        assert_eq!(
            errors_of(&err),
            vec![
                ("support_offered.service_scope", Code::Required),
                ("support_offered.time_range", Code::Required),
                ("support_offered.business_scope", Code::Required),
                ("support_offered.billing_scope", Code::Required),
            ]
        );
    }

    #[test]
    fn optional_general_lists_default_to_empty_and_are_checked_when_given() {
        let stored = check(Step::General, &general()).unwrap();
        assert_eq!(stored.data()["edition_features"], json!([]));
        assert_eq!(stored.data()["cases"], json!([]));
        assert_eq!(stored.data()["live_stream_id"], Value::Null);

        let body = with(
            with(
                general(),
                "edition_features",
                json!([{"edition": "Pro", "description": "Replicas"}, {"edition": ""}]),
            ),
            "cases",
            json!([
                {"title": "Bank", "description": "1,000 nodes", "url": "https://acme.example/b"},
                {"title": "Shop", "description": "Black Friday", "url": "ftp://acme.example"}
            ]),
        );
        let err = refusal(Step::General, &body);
        assert_eq!(
            errors_of(&err),
            vec![
                ("edition_features[1].edition", Code::Required),
                ("edition_features[1].description", Code::Required),
                ("cases[1].url", Code::InvalidValue),
            ]
        );
        let too_many = with(
            general(),
            "cases",
            json!(vec![json!({"title": "t", "description": "d"}); 11]),
        );
        assert_only(&refusal(Step::General, &too_many), "cases", Code::TooMany);
    }

    // --- category -------------------------------------------------------------------------

    #[test]
    fn category_defaults_are_filled_in() {
        let stored = check(Step::Category, &json!({"category": "security"})).unwrap();
        assert_eq!(
            stored.data(),
            &json!({
                "region_selectable": false,
                "category": "security",
                "tags": [],
                "seo_keywords": [],
                "seo_description": null
            })
        );
        let step = CategoryStep::from_stored(stored.data()).unwrap();
        assert!(!step.region_selectable());
        assert_eq!(step.category().id, "security");
        assert_eq!(step.category().name, "Security");
    }

    #[test]
    fn the_category_must_be_a_marketplace_category() {
        let err = refusal(Step::Category, &json!({"category": "games"}));
        assert_only(&err, "category", Code::UnknownCategory);
    }

    #[test]
    fn at_most_10_tags() {
        let tags: Vec<String> = (0..11).map(|i| format!("tag{i}")).collect();
        assert!(check(Step::Category, &with(category(), "tags", json!(tags[..10]))).is_ok());
        let err = refusal(Step::Category, &with(category(), "tags", json!(tags)));
        assert_only(&err, "tags", Code::TooMany);
    }

    #[test]
    fn a_tag_is_1_to_32_characters_and_unique() {
        let ok = with(category(), "tags", json!([chinese(32)]));
        assert!(check(Step::Category, &ok).is_ok());
        let err = refusal(
            Step::Category,
            &with(category(), "tags", json!([chinese(33)])),
        );
        assert_only(&err, "tags[0]", Code::TooLong);
        let err = refusal(
            Step::Category,
            &with(category(), "tags", json!(["a", "", "a"])),
        );
        assert_eq!(
            errors_of(&err),
            vec![("tags[1]", Code::Required), ("tags[2]", Code::Duplicate)]
        );
    }

    #[test]
    fn seo_description_is_at_most_300_characters_and_keywords_at_most_10() {
        let ok = with(category(), "seo_description", json!(chinese(300)));
        assert!(check(Step::Category, &ok).is_ok());
        let err = refusal(
            Step::Category,
            &with(category(), "seo_description", json!(chinese(301))),
        );
        assert_only(&err, "seo_description", Code::TooLong);
        let keywords: Vec<String> = (0..11).map(|i| format!("kw{i}")).collect();
        let err = refusal(
            Step::Category,
            &with(category(), "seo_keywords", json!(keywords)),
        );
        assert_only(&err, "seo_keywords", Code::TooMany);
    }

    // --- pricing --------------------------------------------------------------------------

    #[test]
    fn pricing_is_normalized_and_readable_by_billing() {
        let body = with(
            pricing_with_tiers(json!([
                {"up_to": 100, "unit_price": 0.5},
                {"up_to": "1000.00", "unit_price": "0.2500"},
                {"unit_price": "0"}
            ])),
            "billing_period",
            json!("day"),
        );
        let stored = check(Step::Pricing, &body).unwrap();
        assert_eq!(stored.data()["currency"], json!("CNY"));
        assert_eq!(
            stored.data()["billable_items"][0]["tiers"],
            json!([
                {"up_to": "100", "unit_price": "0.5"},
                {"up_to": "1000", "unit_price": "0.25"},
                {"up_to": null, "unit_price": "0"}
            ])
        );
        let step = PricingStep::from_stored(stored.data()).unwrap();
        assert_eq!(step.pricing_plan(), PricingPlan::ByUsage);
        assert_eq!(step.billing_period(), BillingPeriod::Day);
        assert_eq!(step.currency(), "CNY");
        let item = step.billable_item("Frequency").unwrap();
        assert_eq!(item.tier_mode(), TierMode::Graduated);
        assert_eq!(item.tiers()[0].up_to, Some(Decimal::new(100, 0)));
        assert_eq!(item.tiers()[1].unit_price, Decimal::new(25, 2));
        assert_eq!(item.tiers()[2].up_to, None);
    }

    #[test]
    fn only_pay_as_you_go_is_supported() {
        let err = refusal(
            Step::Pricing,
            &with(pricing(), "pricing_plan", json!("subscription")),
        );
        assert_only(&err, "pricing_plan", Code::UnsupportedPricingPlan);
        let err = refusal(
            Step::Pricing,
            &with(pricing(), "billing_period", json!("month")),
        );
        assert_only(&err, "billing_period", Code::InvalidValue);
    }

    #[test]
    fn the_currency_is_three_uppercase_letters() {
        let usd = check(Step::Pricing, &with(pricing(), "currency", json!("USD"))).unwrap();
        assert_eq!(usd.data()["currency"], json!("USD"));
        for bad in ["cny", "CN", "CNYY", "C1Y", "人民币"] {
            let err = refusal(Step::Pricing, &with(pricing(), "currency", json!(bad)));
            assert_only(&err, "currency", Code::InvalidValue);
        }
    }

    #[test]
    fn one_to_20_billable_items() {
        let items = |n: usize| {
            json!(
                (0..n)
                    .map(|i| item(&format!("Item{i}")))
                    .collect::<Vec<_>>()
            )
        };
        assert!(check(Step::Pricing, &with(pricing(), "billable_items", items(20))).is_ok());
        let err = refusal(Step::Pricing, &with(pricing(), "billable_items", items(21)));
        assert_only(&err, "billable_items", Code::TooMany);
        let err = refusal(Step::Pricing, &with(pricing(), "billable_items", items(0)));
        assert_only(&err, "billable_items", Code::Required);
    }

    #[test]
    fn billable_item_codes_are_unique_and_follow_the_metering_key_pattern() {
        let body = with(
            pricing(),
            "billable_items",
            json!([
                item("Frequency"),
                item("Frequency"),
                item("9lives"),
                item("Net_In")
            ]),
        );
        let err = refusal(Step::Pricing, &body);
        assert_eq!(
            errors_of(&err),
            vec![
                ("billable_items[1].code", Code::Duplicate),
                ("billable_items[2].code", Code::InvalidValue),
                ("billable_items[3].code", Code::InvalidValue),
            ]
        );
    }

    #[test]
    fn item_codes_are_a_letter_then_up_to_63_letters_or_digits() {
        for good in [
            "A",
            "Frequency",
            "NetworkIn",
            "x9",
            &format!("a{}", "b".repeat(63)),
        ] {
            assert_eq!(ItemCode::parse(good).unwrap().as_str(), good);
        }
        for bad in [
            "",
            "9a",
            "_a",
            "a-b",
            "a b",
            "é",
            "aé",
            &format!("a{}", "b".repeat(64)),
        ] {
            assert!(ItemCode::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn tiers_ascend_strictly_and_only_the_last_is_unbounded() {
        let cases = [
            (json!([]), "billable_items[0].tiers"),
            (
                json!([{"up_to": "10", "unit_price": "1"}]),
                "billable_items[0].tiers[0].up_to",
            ),
            (
                json!([{"up_to": null, "unit_price": "1"}, {"up_to": null, "unit_price": "1"}]),
                "billable_items[0].tiers[0].up_to",
            ),
            (
                json!([
                    {"up_to": "10", "unit_price": "1"},
                    {"up_to": "10", "unit_price": "1"},
                    {"unit_price": "1"}
                ]),
                "billable_items[0].tiers[1].up_to",
            ),
            (
                json!([
                    {"up_to": "10", "unit_price": "1"},
                    {"up_to": "5", "unit_price": "1"},
                    {"unit_price": "1"}
                ]),
                "billable_items[0].tiers[1].up_to",
            ),
            (
                json!([{"up_to": "0", "unit_price": "1"}, {"unit_price": "1"}]),
                "billable_items[0].tiers[0].up_to",
            ),
            (
                json!([{"up_to": "-5", "unit_price": "1"}, {"unit_price": "1"}]),
                "billable_items[0].tiers[0].up_to",
            ),
        ];
        for (tiers, field) in cases {
            let err = refusal(Step::Pricing, &pricing_with_tiers(tiers.clone()));
            assert_only(&err, field, Code::InvalidTiers);
        }
        let tiers = |n: usize| {
            let mut tiers: Vec<Value> = (1..n)
                .map(|b| json!({"up_to": b.to_string(), "unit_price": "1"}))
                .collect();
            tiers.push(json!({"up_to": null, "unit_price": "1"}));
            pricing_with_tiers(json!(tiers))
        };
        assert!(check(Step::Pricing, &tiers(20)).is_ok());
        assert_only(
            &refusal(Step::Pricing, &tiers(21)),
            "billable_items[0].tiers",
            Code::TooMany,
        );
        let single = pricing_with_tiers(json!([{"up_to": null, "unit_price": "0.3"}]));
        assert!(check(Step::Pricing, &single).is_ok());
        let fractional = pricing_with_tiers(json!([
            {"up_to": "0.5", "unit_price": "1"},
            {"up_to": "0.75", "unit_price": "1"},
            {"up_to": null, "unit_price": "1"}
        ]));
        assert!(check(Step::Pricing, &fractional).is_ok());
    }

    #[test]
    fn unit_prices_are_non_negative_with_at_most_8_decimal_places() {
        let price = |p: Value| pricing_with_tiers(json!([{"up_to": null, "unit_price": p}]));
        for ok in [
            json!("0.00000001"),
            json!("12.12345678"),
            json!("0.100000000"),
            json!(0),
        ] {
            assert!(check(Step::Pricing, &price(ok.clone())).is_ok(), "{ok}");
        }
        for bad in [json!("0.000000001"), json!(0.000000001), json!("-0.01")] {
            let err = refusal(Step::Pricing, &price(bad.clone()));
            assert_only(
                &err,
                "billable_items[0].tiers[0].unit_price",
                Code::InvalidValue,
            );
        }
        let err = refusal(Step::Pricing, &price(Value::Null));
        assert_only(
            &err,
            "billable_items[0].tiers[0].unit_price",
            Code::Required,
        );
        let err = refusal(Step::Pricing, &price(json!("cheap")));
        assert_only(
            &err,
            "billable_items[0].tiers[0].unit_price",
            Code::InvalidJson,
        );
    }

    #[test]
    fn a_wrong_tier_mode_is_reported_with_the_other_item_fields() {
        let mut body = pricing();
        body["billable_items"][0]["tier_mode"] = json!("flat");
        body["billable_items"][0]["name"] = json!("");
        let err = refusal(Step::Pricing, &body);
        assert_eq!(
            errors_of(&err),
            vec![
                ("billable_items[0].name", Code::Required),
                ("billable_items[0].tier_mode", Code::InvalidValue),
            ]
        );
    }

    // --- agreement ------------------------------------------------------------------------

    #[test]
    fn the_eula_is_a_template_or_custom_text() {
        let custom = json!({"eula": {"source": "custom", "text": "Terms"}, "icp_filing": "x"});
        let stored = check(Step::Agreement, &custom).unwrap();
        assert_eq!(
            AgreementStep::from_stored(stored.data()).unwrap().eula(),
            &Eula::Custom {
                text: "Terms".to_owned()
            }
        );
        let amended = with(
            agreement(),
            "eula",
            json!({"source": "template", "template_id": "eula-std", "amendments": "No refunds"}),
        );
        assert!(check(Step::Agreement, &amended).is_ok());

        let err = refusal(
            Step::Agreement,
            &with(agreement(), "eula", json!({"source": "custom"})),
        );
        assert_only(&err, "eula.text", Code::Required);
        let err = refusal(
            Step::Agreement,
            &with(agreement(), "eula", json!({"source": "url"})),
        );
        assert_only(&err, "eula.source", Code::InvalidJson);
        let wrong_field = json!({"source": "custom", "text": "Terms", "template_id": "x"});
        let err = refusal(Step::Agreement, &with(agreement(), "eula", wrong_field));
        assert_only(&err, "eula.template_id", Code::UnknownField);
    }

    #[test]
    fn icp_filing_is_1_to_200_characters() {
        assert!(
            check(
                Step::Agreement,
                &with(agreement(), "icp_filing", json!(chinese(200)))
            )
            .is_ok()
        );
        let err = refusal(
            Step::Agreement,
            &with(agreement(), "icp_filing", json!(chinese(201))),
        );
        assert_only(&err, "icp_filing", Code::TooLong);
    }

    // --- properties -----------------------------------------------------------------------

    /// Text of `len` arbitrary characters that is not blank (blank text counts as missing).
    fn text_of_len(len: std::ops::Range<usize>) -> impl Strategy<Value = String> {
        prop::collection::vec(any::<char>(), len)
            .prop_map(|rest| format!("说{}", String::from_iter(rest)))
    }

    /// Strictly ascending tier bounds and prices of up to 8 decimal places.
    fn ascending_tiers() -> impl Strategy<Value = Value> {
        (
            prop::collection::btree_set(1u64..1_000_000_000, 0..19),
            prop::collection::vec((0i64..1_000_000_000_000, 0u32..=8), 20),
        )
            .prop_map(|(bounds, prices)| {
                let bounds: Vec<Option<Decimal>> = bounds
                    .into_iter()
                    .map(|b| Some(Decimal::new(b as i64, 2)))
                    .chain([None])
                    .collect();
                let tiers: Vec<Value> = bounds
                    .iter()
                    .zip(prices)
                    .map(|(up_to, (mantissa, scale))| {
                        json!({"up_to": up_to, "unit_price": Decimal::new(mantissa, scale)})
                    })
                    .collect();
                json!(tiers)
            })
    }

    proptest! {
        #[test]
        fn any_short_description_of_at_most_300_characters_is_accepted(
            text in text_of_len(0..300),
        ) {
            let body = with(general(), "short_description", json!(text));
            prop_assert!(check(Step::General, &body).is_ok());
        }

        #[test]
        fn any_short_description_over_300_characters_is_refused(text in text_of_len(300..600)) {
            let err = refusal(Step::General, &with(general(), "short_description", json!(text)));
            prop_assert_eq!(err.code, Code::ShortDescriptionTooLong);
        }

        #[test]
        fn ascending_tiers_are_accepted_and_stored_faithfully(tiers in ascending_tiers()) {
            let stored = check(Step::Pricing, &pricing_with_tiers(tiers.clone())).unwrap();
            let step = PricingStep::from_stored(stored.data()).unwrap();
            let given: Vec<TierRequest> = serde_json::from_value(tiers).unwrap();
            let kept = step.billable_items()[0].tiers();
            prop_assert_eq!(kept.len(), given.len());
            for (kept, given) in kept.iter().zip(&given) {
                prop_assert_eq!(kept.up_to, given.up_to);
                prop_assert_eq!(Some(kept.unit_price), given.unit_price);
            }
        }

        #[test]
        fn swapping_two_bounded_tiers_is_refused(
            tiers in ascending_tiers(),
            pick in any::<prop::sample::Index>(),
        ) {
            let mut tiers = tiers.as_array().unwrap().clone();
            prop_assume!(tiers.len() >= 3);
            // Two neighbours among the bounded tiers (the last, unbounded one stays in place).
            let i = pick.index(tiers.len() - 2);
            tiers.swap(i, i + 1);
            let err = refusal(Step::Pricing, &pricing_with_tiers(json!(tiers)));
            prop_assert_eq!(err.code, Code::InvalidTiers);
        }
    }
}
