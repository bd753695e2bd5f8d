//! Copies of the repository's spin.toml, changed the way a test needs (a faster cron, a grant
//! taken away), to run from a temporary directory.

use std::path::{Path, PathBuf};

use toml_edit::{DocumentMut, Item, Table, value};

use super::repo_dir;

#[derive(Clone)]
pub(crate) struct Manifest {
    doc: DocumentMut,
}

impl Manifest {
    /// spin.toml as it is, with each component's `source` made absolute so that the copy runs
    /// from any directory.
    pub(crate) fn repo() -> Self {
        let path = repo_dir().join("spin.toml");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        let mut doc: DocumentMut = text.parse().expect("spin.toml is TOML");
        for (id, component) in tables_mut(&mut doc["component"]) {
            let source = component["source"]
                .as_str()
                .unwrap_or_else(|| panic!("component {id} has a local `source`"));
            let absolute = repo_dir().join(source);
            component["source"] = value(absolute.to_str().expect("a UTF-8 path"));
        }
        Manifest { doc }
    }

    /// Without the `[[trigger.cron]]` entries: nothing bills unless a test runs a bill run.
    /// Tests on a simulated clock need this, or the schedule bills their past periods.
    pub(crate) fn without_cron(mut self) -> Self {
        let removed = self.triggers().remove("cron");
        assert!(removed.is_some(), "spin.toml has no [[trigger.cron]]");
        self
    }

    /// Without the component `id` and its triggers: for a deployment whose readiness probe
    /// (`GET /`, the console's) must not touch the database.
    pub(crate) fn without_component(mut self, id: &str) -> Self {
        for kind in ["http", "cron"] {
            if let Some(triggers) = self.triggers()[kind].as_array_of_tables_mut() {
                triggers.retain(|t| t["component"].as_str() != Some(id));
            }
        }
        let removed = self.doc["component"]
            .as_table_mut()
            .expect("spin.toml has components")
            .remove(id);
        assert!(removed.is_some(), "spin.toml has no [component.{id}]");
        self
    }

    /// Every `[[trigger.cron]]` fires every two seconds.
    pub(crate) fn cron_every_two_seconds(mut self) -> Self {
        let crons = self.triggers()["cron"]
            .as_array_of_tables_mut()
            .expect("spin.toml has [[trigger.cron]] entries");
        for cron in crons.iter_mut() {
            cron["cron_expression"] = value("*/2 * * * * *");
        }
        self
    }

    /// Without `key` (a grant: `sqlite_databases`, `key_value_stores`, `allowed_outbound_hosts`)
    /// in `[component.<id>]`.
    pub(crate) fn without(mut self, id: &str, key: &str) -> Self {
        let removed = self.component(id).remove(key);
        assert!(removed.is_some(), "component {id} has no {key} to remove");
        self
    }

    /// Without the component's mapping of the app variable `name`.
    pub(crate) fn without_variable(mut self, id: &str, name: &str) -> Self {
        let variables = self.component(id)["variables"]
            .as_table_like_mut()
            .unwrap_or_else(|| panic!("component {id} maps no variables"));
        assert!(
            variables.remove(name).is_some(),
            "component {id} does not map {name}"
        );
        self
    }

    /// The `[[trigger.http]]` of `route` sends its requests to `component` instead.
    pub(crate) fn route_to(mut self, route: &str, component: &str) -> Self {
        let http = self.triggers()["http"]
            .as_array_of_tables_mut()
            .expect("[[trigger.http]] entries");
        let trigger = http
            .iter_mut()
            .find(|t| t["route"].as_str() == Some(route))
            .unwrap_or_else(|| panic!("no [[trigger.http]] for {route}"));
        trigger["component"] = value(component);
        self
    }

    /// The components granted `key`, in manifest order.
    pub(crate) fn components_with(&self, key: &str) -> Vec<String> {
        self.doc["component"]
            .as_table()
            .expect("spin.toml has components")
            .iter()
            .filter(|(_, component)| component.get(key).is_some())
            .map(|(id, _)| id.to_owned())
            .collect()
    }

    /// The public HTTP routes as (route, component), in manifest order.
    pub(crate) fn http_routes(&self) -> Vec<(String, String)> {
        self.doc["trigger"]["http"]
            .as_array_of_tables()
            .expect("[[trigger.http]] entries")
            .iter()
            .filter_map(|t| {
                let component = t["component"].as_str().expect("a component id");
                // A private route (`route = { private = true }`) is not reachable over HTTP.
                let route = t["route"].as_str()?;
                Some((route.to_owned(), component.to_owned()))
            })
            .collect()
    }

    /// Writes the manifest into `dir` and returns its path.
    pub(crate) fn write(&self, dir: &Path) -> PathBuf {
        let path = dir.join("spin.toml");
        std::fs::write(&path, self.doc.to_string()).expect("writing the manifest copy");
        path
    }

    fn triggers(&mut self) -> &mut Table {
        self.doc["trigger"]
            .as_table_mut()
            .expect("spin.toml has a [trigger] table")
    }

    fn component(&mut self, id: &str) -> &mut Table {
        self.doc["component"][id]
            .as_table_mut()
            .unwrap_or_else(|| panic!("spin.toml has no [component.{id}]"))
    }
}

fn tables_mut(item: &mut Item) -> impl Iterator<Item = (String, &mut Table)> {
    item.as_table_mut()
        .expect("spin.toml has components")
        .iter_mut()
        .filter_map(|(id, component)| Some((id.get().to_owned(), component.as_table_mut()?)))
}
