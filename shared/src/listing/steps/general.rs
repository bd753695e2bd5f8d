//! The general step: the descriptions, highlights and support a customer reads before buying.

use super::*;

/// `edition_features` compare the product's editions (their screenshots are uploaded as media).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EditionFeatureRequest {
    pub edition: Option<String>,
    pub description: Option<String>,
}

/// A success story: `{title, description, url?}`; `url` links to the full story (http or https).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CaseRequest {
    pub title: Option<String>,
    pub description: Option<String>,
    pub url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SupportOfferedRequest {
    pub service_scope: Option<String>,
    pub time_range: Option<String>,
    pub business_scope: Option<String>,
    pub billing_scope: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GeneralRequest {
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

/// What support the provider offers customers, in four parts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct SupportOffered {
    service_scope: String,
    time_range: String,
    business_scope: String,
    billing_scope: String,
}

impl SupportOffered {
    pub(crate) fn service_scope(&self) -> &str {
        &self.service_scope
    }

    /// When support answers.
    pub(crate) fn time_range(&self) -> &str {
        &self.time_range
    }

    pub(crate) fn business_scope(&self) -> &str {
        &self.business_scope
    }

    pub(crate) fn billing_scope(&self) -> &str {
        &self.billing_scope
    }
}

/// Step 2: how the product presents itself in the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct GeneralStep {
    short_description: String,
    highlights: String,
    description: String,
    edition_features: Vec<EditionFeature>,
    live_stream_id: Option<String>,
    cases: Vec<Case>,
    support_offered: SupportOffered,
}

/// Shown on the catalog's product list; the publishing guide recommends "no more than 300 characters".
const SHORT_DESCRIPTION_MAX: usize = 300;
const HIGHLIGHTS_MAX: usize = 1_000;
/// The product page's full text: the publishing guide gives no limit; 20,000 characters is several pages,
/// and keeps a product row a bounded size.
const DESCRIPTION_MAX: usize = 20_000;
/// Editions and cases are compared side by side on the product page: ten of each is plenty.
const EDITION_FEATURES_MAX: usize = 10;
const EDITION_NAME_MAX: usize = 60;
const EDITION_DESCRIPTION_MAX: usize = 1_000;
const CASES_MAX: usize = 10;
const CASE_TITLE_MAX: usize = 100;
const CASE_DESCRIPTION_MAX: usize = 2_000;
/// Each part of "Support Offered" is a sentence or a short paragraph.
const SUPPORT_FIELD_MAX: usize = 500;

impl GeneralStep {
    pub(crate) fn parse(request: GeneralRequest) -> Result<Self, ApiError> {
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

        let edition_features = editions(&mut e, request.edition_features.unwrap_or_default());
        let cases = cases(&mut e, request.cases.unwrap_or_default());
        let support_offered = e
            .required("support_offered", &request.support_offered)
            .cloned()
            .and_then(|s| support(&mut e, &s));
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

    pub(crate) fn from_stored(stored: &Value) -> Result<Self, ApiError> {
        Self::parse(stored_request(Step::General, stored)?)
            .map_err(|e| stored_invalid(Step::General, &e))
    }

    pub(crate) fn short_description(&self) -> &str {
        &self.short_description
    }

    pub(crate) fn highlights(&self) -> &str {
        &self.highlights
    }

    pub(crate) fn description(&self) -> &str {
        &self.description
    }

    pub(crate) fn support_offered(&self) -> &SupportOffered {
        &self.support_offered
    }
}

/// The edition features: at most [`EDITION_FEATURES_MAX`], each an edition and what it offers.
fn editions(e: &mut Errors, mut requests: Vec<EditionFeatureRequest>) -> Vec<EditionFeature> {
    if !e.list_within("edition_features", requests.len(), EDITION_FEATURES_MAX) {
        requests.clear();
    }
    let mut out = Vec::new();
    for (i, f) in requests.iter().enumerate() {
        let at = format!("edition_features[{i}]");
        let edition = required_text(
            e,
            &format!("{at}.edition"),
            &f.edition,
            EDITION_NAME_MAX,
            Code::TooLong,
        );
        let description = required_text(
            e,
            &format!("{at}.description"),
            &f.description,
            EDITION_DESCRIPTION_MAX,
            Code::TooLong,
        );
        if let (Some(edition), Some(description)) = (edition, description) {
            out.push(EditionFeature {
                edition: edition.to_owned(),
                description: description.to_owned(),
            });
        }
    }
    out
}

/// The success stories: at most [`CASES_MAX`], each a title, a story and maybe a link.
fn cases(e: &mut Errors, mut requests: Vec<CaseRequest>) -> Vec<Case> {
    if !e.list_within("cases", requests.len(), CASES_MAX) {
        requests.clear();
    }
    let mut out = Vec::new();
    for (i, c) in requests.into_iter().enumerate() {
        let at = format!("cases[{i}]");
        let title = required_text(
            e,
            &format!("{at}.title"),
            &c.title,
            CASE_TITLE_MAX,
            Code::TooLong,
        );
        let description = required_text(
            e,
            &format!("{at}.description"),
            &c.description,
            CASE_DESCRIPTION_MAX,
            Code::TooLong,
        );
        if let Some(url) = &c.url {
            check_url(e, &format!("{at}.url"), url);
        }
        if let (Some(title), Some(description)) = (title, description) {
            out.push(Case {
                title: title.to_owned(),
                description: description.to_owned(),
                url: c.url,
            });
        }
    }
    out
}

/// The four parts of the support offered, each checked before any is found missing, so all
/// are reported.
fn support(e: &mut Errors, s: &SupportOfferedRequest) -> Option<SupportOffered> {
    let mut part = |name: &str, value: &Option<String>| {
        required_text(
            e,
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::listing::steps::testing::*;
    use proptest::prelude::*;
    use serde_json::json;

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

    /// Text of `len` arbitrary characters that is not blank (blank text counts as missing).
    fn text_of_len(len: std::ops::Range<usize>) -> impl Strategy<Value = String> {
        prop::collection::vec(any::<char>(), len)
            .prop_map(|rest| format!("说{}", String::from_iter(rest)))
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
    }
}
