//! `fermyon:spin/variables@2.0.0`: application variables (manifest defaults, replaced by per-app test
//! overrides) seen by each component only through its own `[component.<id>.variables]` templates.
use crate::bindings::fermyon::spin::variables::{Error, Host};
use crate::host::HostState;
use crate::manifest::{Manifest, TemplatePart, parse_template, validate_variable_name};
use anyhow::{Result, bail};
use std::collections::BTreeMap;

/// The value of every application variable, fixed when the app is loaded.
#[derive(Debug)]
pub(crate) struct AppVariables {
    values: BTreeMap<String, String>,
}

impl AppVariables {
    /// Like `spin up`, refuses to start when a required variable has no value.
    pub fn resolve(manifest: &Manifest, overrides: &BTreeMap<String, String>) -> Result<Self> {
        if let Some(name) = overrides
            .keys()
            .find(|name| !manifest.variables.contains_key(*name))
        {
            bail!("variable override {name:?} is not declared in spin.toml [variables]");
        }
        let mut values = BTreeMap::new();
        for (name, variable) in &manifest.variables {
            let value = overrides.get(name).or(variable.default.as_ref());
            match value {
                Some(value) => {
                    values.insert(name.clone(), value.clone());
                }
                None => bail!(
                    "required variable {name:?} has no value: set it with SpinAppBuilder::variable"
                ),
            }
        }
        Ok(Self { values })
    }

    /// Expands `{{ name }}` references (the manifest was already checked to declare them all).
    pub fn expand(&self, template: &str) -> Result<String> {
        let mut out = String::new();
        for part in parse_template(template)? {
            match part {
                TemplatePart::Literal(text) => out.push_str(text),
                TemplatePart::Variable(name) => match self.values.get(name) {
                    Some(value) => out.push_str(value),
                    None => bail!("undeclared variable {name:?} in {template:?}"),
                },
            }
        }
        Ok(out)
    }
}

impl Host for HostState {
    fn get(&mut self, name: String) -> wasmtime::Result<Result<String, Error>> {
        if let Err(e) = validate_variable_name(&name) {
            return Ok(Err(Error::InvalidName(format!("{name:?}: {e}"))));
        }
        Ok(match self.component.variables.get(&name) {
            Some(value) => Ok(value.clone()),
            None => Err(Error::Undefined(format!(
                "no variable for {:?}.{name:?}",
                self.component.id
            ))),
        })
    }
}
