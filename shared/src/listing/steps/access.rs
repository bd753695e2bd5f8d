//! The access step: what is sold (a SaaS product reached through the platform), under which
//! name, and which of the service's templates it deploys.

use super::*;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AccessRequest {
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
pub(crate) enum ProductType {
    Saas,
}

/// How the product reaches customers: deployed by the platform (Compute Nest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum AccessMethod {
    ComputeNest,
}

/// Step 1: what is sold and how it is deployed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct AccessStep {
    product_type: ProductType,
    product_name: String,
    acceleration_plan_id: Option<String>,
    access_method: AccessMethod,
    service_method: ServiceMethod,
    service_template_id: Option<String>,
}

const PRODUCT_NAME_MAX: usize = 60;

const SERVICE_METHODS: [(&str, ServiceMethod); 2] = [
    ("private", ServiceMethod::Private),
    ("fully_managed", ServiceMethod::FullyManaged),
];

impl AccessStep {
    /// Validates the access step against the product's service: the service method must be the
    /// service's own, and a chosen template one of its templates.
    pub(crate) fn parse(request: AccessRequest, service: &ServiceSpec) -> Result<Self, ApiError> {
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
    pub(crate) fn from_stored(stored: &Value, service: &ServiceSpec) -> Result<Self, ApiError> {
        Self::parse(stored_request(Step::Access, stored)?, service)
            .map_err(|e| stored_invalid(Step::Access, &e))
    }

    /// The publishing guide recommends a public template ("If no public template is available, select a
    /// private template"): a private one is accepted, with this advice.
    pub(crate) fn warnings(&self, service: &ServiceSpec) -> Vec<Warning> {
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

    pub(crate) fn product_name(&self) -> &str {
        &self.product_name
    }

    pub(crate) fn service_template_id(&self) -> Option<&str> {
        self.service_template_id.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::listing::steps::testing::*;
    use serde_json::json;

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
}
