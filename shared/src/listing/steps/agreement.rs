//! The agreement step: the EULA customers accept when they order, and the compliance filing.

use sha2::{Digest, Sha256};

use super::*;

/// The EULA customers accept when ordering: the marketplace's template (optionally amended by
/// the provider) or the provider's own text.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "source", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum EulaRequest {
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
pub(crate) struct AgreementRequest {
    pub eula: Option<EulaRequest>,
    pub icp_filing: Option<String>,
}

/// A validated EULA, as stored and shown on the order confirmation (and, as an order recorded
/// it, read back whole).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub(crate) enum Eula {
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
pub(crate) struct AgreementStep {
    eula: Eula,
    icp_filing: String,
}

/// Amendments adjust a template (a few clauses); a custom EULA is a whole contract.
const EULA_AMENDMENTS_MAX: usize = 10_000;
const EULA_TEXT_MAX: usize = 100_000;
const ICP_FILING_MAX: usize = 200;

impl AgreementStep {
    pub(crate) fn parse(request: AgreementRequest) -> Result<Self, ApiError> {
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

    pub(crate) fn from_stored(stored: &Value) -> Result<Self, ApiError> {
        Self::parse(stored_request(Step::Agreement, stored)?)
            .map_err(|e| stored_invalid(Step::Agreement, &e))
    }

    /// The EULA a customer accepts by ordering.
    pub(crate) fn eula(&self) -> &Eula {
        &self.eula
    }
}

impl Eula {
    /// Which agreement this is, in a form an order keeps: the marketplace template's id, if it
    /// is one, and the SHA-256 of the whole EULA as shown (template and amendments, or the
    /// custom text), so a later edit of the listing cannot change what a customer accepted.
    pub(crate) fn digest(&self) -> String {
        let shown = serde_json::to_vec(self).unwrap_or_default();
        hex::encode(Sha256::digest(&shown))
    }

    pub(crate) fn template_id(&self) -> Option<&str> {
        match self {
            Eula::Template { template_id, .. } => Some(template_id),
            Eula::Custom { .. } => None,
        }
    }

    pub(crate) fn source(&self) -> &'static str {
        match self {
            Eula::Template { .. } => "template",
            Eula::Custom { .. } => "custom",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::listing::steps::testing::*;
    use serde_json::json;

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
}
