//! The category and SEO step: the marketplace category the product is reviewed and filed under,
//! its tags and search keywords.

use super::*;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CategoryRequest {
    pub region_selectable: Option<bool>,
    pub category: Option<String>,
    pub tags: Option<Vec<String>>,
    pub seo_keywords: Option<Vec<String>>,
    pub seo_description: Option<String>,
}

/// Step 3: where the product is filed and how it is found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct CategoryStep {
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
    pub(crate) fn parse(request: CategoryRequest) -> Result<Self, ApiError> {
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

    pub(crate) fn from_stored(stored: &Value) -> Result<Self, ApiError> {
        Self::parse(stored_request(Step::Category, stored)?)
            .map_err(|e| stored_invalid(Step::Category, &e))
    }

    /// Whether a customer chooses the region when ordering (then it must be one of the
    /// service's regions) or may not give one at all.
    pub(crate) fn region_selectable(&self) -> bool {
        self.region_selectable
    }

    pub(crate) fn category(&self) -> &'static Category {
        self.category
    }

    pub(crate) fn tags(&self) -> &[String] {
        &self.tags
    }

    pub(crate) fn seo_keywords(&self) -> &[String] {
        &self.seo_keywords
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
    if !e.list_within(field, words.len(), max_items) {
        return;
    }
    let mut seen = Seen::default();
    for (i, word) in words.iter().enumerate() {
        let at = format!("{field}[{i}]");
        e.text(&at, word, 1, max_chars, Code::TooLong);
        if !seen.first(word) {
            e.add(at, Code::Duplicate, format!("`{word}` is listed twice"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::listing::steps::testing::*;
    use serde_json::json;

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
}
