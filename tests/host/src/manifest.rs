//! The parts of a Spin 2 manifest (`spin.toml`) that the test host honours. Fields the host cannot honour
//! (`files`, dependencies, …) are rejected rather than ignored, so a test never passes by silently skipping
//! something `spin up` would do.
use anyhow::{Context, Result, bail, ensure};
use serde::Deserialize;
use std::collections::BTreeMap;

/// Keys that Spin reads but that change nothing a test can observe; any other key the host does not
/// implement is an error.
const IGNORABLE: &[&str] = &["application", "description", "secret", "tool", "watch"];

#[derive(Debug, Deserialize)]
pub(crate) struct Manifest {
    pub spin_manifest_version: u32,
    #[serde(default)]
    pub variables: BTreeMap<String, AppVariable>,
    #[serde(default)]
    pub trigger: Triggers,
    #[serde(default)]
    pub component: BTreeMap<String, Component>,
    #[serde(flatten)]
    other: toml::Table,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Triggers {
    #[serde(default)]
    pub http: Vec<HttpTrigger>,
    #[serde(default)]
    pub cron: Vec<CronTrigger>,
    #[serde(flatten)]
    other: toml::Table,
}

#[derive(Debug, Deserialize)]
pub(crate) struct HttpTrigger {
    pub route: Route,
    pub component: String,
    #[serde(flatten)]
    other: toml::Table,
}

/// `route = "/path"` or `route = { private = true }` (reachable only through service chaining).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum Route {
    Path(String),
    Private { private: bool },
}

#[derive(Debug, Deserialize)]
pub(crate) struct CronTrigger {
    pub component: String,
    pub cron_expression: String,
    #[serde(flatten)]
    other: toml::Table,
}

#[derive(Debug, Deserialize)]
pub(crate) struct AppVariable {
    pub default: Option<String>,
    #[serde(default)]
    pub required: bool,
    #[serde(flatten)]
    other: toml::Table,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Component {
    pub source: String,
    #[serde(default)]
    pub allowed_outbound_hosts: Vec<String>,
    #[serde(default)]
    pub key_value_stores: Vec<String>,
    #[serde(default)]
    pub sqlite_databases: Vec<String>,
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    pub build: Option<Build>,
    #[serde(flatten)]
    other: toml::Table,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Build {
    pub command: String,
    pub workdir: Option<String>,
    #[serde(flatten)]
    other: toml::Table,
}

fn reject_unsupported(other: &toml::Table, what: &str) -> Result<()> {
    match other.keys().find(|key| !IGNORABLE.contains(&key.as_str())) {
        Some(key) => bail!("{what}: `{key}` is not supported by the test host"),
        None => Ok(()),
    }
}

impl Manifest {
    pub fn parse(text: &str) -> Result<Self> {
        let manifest: Manifest = toml::from_str(text).context("spin.toml does not parse")?;
        ensure!(
            manifest.spin_manifest_version == 2,
            "only spin_manifest_version = 2 is supported"
        );
        ensure!(
            manifest.other.contains_key("application"),
            "spin.toml has no [application]"
        );
        reject_unsupported(&manifest.other, "spin.toml")?;
        reject_unsupported(
            &manifest.trigger.other,
            "trigger types other than http and cron",
        )?;
        for trigger in &manifest.trigger.http {
            reject_unsupported(&trigger.other, "[[trigger.http]]")?;
            if let Route::Private { private: false } = trigger.route {
                bail!(
                    "route = {{ private = false }} is invalid: use a path or {{ private = true }}"
                );
            }
            ensure!(
                manifest.component.contains_key(&trigger.component),
                "HTTP trigger refers to undefined component {:?}",
                trigger.component
            );
        }
        for trigger in &manifest.trigger.cron {
            reject_unsupported(&trigger.other, "[[trigger.cron]]")?;
            // The cron plugin's scheduler takes a seconds field first (6 fields, optionally a 7th for years).
            let fields = trigger.cron_expression.split_whitespace().count();
            ensure!(
                (6..=7).contains(&fields),
                "cron_expression {:?} needs 6 or 7 fields (seconds first)",
                trigger.cron_expression
            );
            ensure!(
                manifest.component.contains_key(&trigger.component),
                "cron trigger refers to undefined component {:?}",
                trigger.component
            );
        }
        for (name, variable) in &manifest.variables {
            reject_unsupported(&variable.other, "[variables]")?;
            validate_variable_name(name)
                .with_context(|| format!("application variable {name:?}"))?;
            ensure!(
                variable.required != variable.default.is_some(),
                "variable {name:?} must have either a default or `required = true` (not both)"
            );
        }
        for (id, component) in &manifest.component {
            reject_unsupported(&component.other, &format!("[component.{id}]"))?;
            if let Some(build) = &component.build {
                reject_unsupported(&build.other, &format!("[component.{id}.build]"))?;
            }
            for (name, template) in &component.variables {
                validate_variable_name(name)
                    .with_context(|| format!("component {id:?} variable {name:?}"))?;
                manifest
                    .check_template(template)
                    .with_context(|| format!("component {id:?} variable {name:?}"))?;
            }
            for host in &component.allowed_outbound_hosts {
                manifest.check_template(host).with_context(|| {
                    format!("component {id:?} allowed_outbound_hosts entry {host:?}")
                })?;
            }
            // Without a runtime config Spin only provides the `default` store and database, and
            // `spin up` refuses to start when a component asks for any other.
            for label in &component.key_value_stores {
                ensure!(
                    label == "default",
                    "component {id:?} uses key-value store {label:?}, which needs a runtime config"
                );
            }
            for label in &component.sqlite_databases {
                ensure!(
                    label == "default",
                    "component {id:?} uses SQLite database {label:?}, which needs a runtime config"
                );
            }
        }
        Ok(manifest)
    }

    /// Spin resolves templates against application variables and rejects references to undeclared ones.
    fn check_template(&self, template: &str) -> Result<()> {
        for part in parse_template(template)? {
            if let TemplatePart::Variable(name) = part {
                ensure!(
                    self.variables.contains_key(name),
                    "refers to undeclared application variable {name:?}"
                );
            }
        }
        Ok(())
    }
}

/// Spin's variable names: lower-case ASCII letters, digits and single underscores, starting with a letter
/// and not ending with an underscore.
pub(crate) fn validate_variable_name(name: &str) -> Result<()> {
    let bytes = name.as_bytes();
    ensure!(!bytes.is_empty(), "must not be empty");
    ensure!(
        bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_'),
        "may contain only lower-case letters, digits and '_'"
    );
    ensure!(
        bytes[0].is_ascii_lowercase(),
        "must start with a lower-case letter"
    );
    ensure!(bytes[bytes.len() - 1] != b'_', "must not end with '_'");
    ensure!(!name.contains("__"), "must not contain '__'");
    Ok(())
}

#[derive(Debug, PartialEq)]
pub(crate) enum TemplatePart<'a> {
    Literal(&'a str),
    Variable(&'a str),
}

/// Splits `"hello {{ name }}!"` into literal text and `{{ variable }}` references.
pub(crate) fn parse_template(template: &str) -> Result<Vec<TemplatePart<'_>>> {
    let mut parts = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        if start > 0 {
            parts.push(TemplatePart::Literal(&rest[..start]));
        }
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            bail!("unterminated '{{{{' in {template:?}");
        };
        let name = after[..end].trim();
        validate_variable_name(name)
            .with_context(|| format!("variable reference {name:?} in {template:?}"))?;
        parts.push(TemplatePart::Variable(name));
        rest = &after[end + 2..];
    }
    if !rest.is_empty() {
        parts.push(TemplatePart::Literal(rest));
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_split_into_literals_and_variables() {
        assert_eq!(
            parse_template("http://{{ host }}:{{port}}").unwrap(),
            vec![
                TemplatePart::Literal("http://"),
                TemplatePart::Variable("host"),
                TemplatePart::Literal(":"),
                TemplatePart::Variable("port"),
            ]
        );
        assert!(parse_template("{{ open").is_err());
        assert!(parse_template("{{ Upper }}").is_err());
    }

    #[test]
    fn variable_names_follow_spin_rules() {
        for ok in ["a", "admin_token", "x1"] {
            assert!(validate_variable_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "1a", "_a", "a_", "a__b", "A", "a-b"] {
            assert!(validate_variable_name(bad).is_err(), "{bad}");
        }
    }
}
