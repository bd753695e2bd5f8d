//! The deployment files of `deploy/` agree with spin.toml: the SpinKube `SpinApp` binds only
//! variables the app has, every one it must, the secret ones from its Secret, and gives the
//! components the stores they use; the runtime configs name the stores the components use. (The
//! PostgreSQL and Redis runtime config is run for real by the three-host tests, hosts.rs.)

use std::collections::BTreeSet;

use serde_json::Value as Json;

use crate::harness::repo_dir;

fn spin_toml() -> toml_edit::DocumentMut {
    std::fs::read_to_string(repo_dir().join("spin.toml"))
        .expect("spin.toml")
        .parse()
        .expect("spin.toml is TOML")
}

/// The labels the components are granted under `key` (`key_value_stores`, `sqlite_databases`).
fn granted(manifest: &toml_edit::DocumentMut, key: &str) -> BTreeSet<String> {
    manifest["component"]
        .as_table()
        .expect("components")
        .iter()
        .filter_map(|(_, c)| c.get(key).and_then(|v| v.as_array()))
        .flat_map(|labels| labels.iter().filter_map(|l| l.as_str().map(str::to_owned)))
        .collect()
}

/// The documents of deploy/spinapp.yaml: the SpinApp and its Secret.
fn spinapp() -> (Json, Json) {
    let text = std::fs::read_to_string(repo_dir().join("deploy/spinapp.yaml")).expect("the file");
    let documents: Vec<Json> = serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).expect("YAML"))
        .collect();
    let kind = |k: &str| {
        documents
            .iter()
            .find(|d| d["kind"] == k)
            .unwrap_or_else(|| panic!("deploy/spinapp.yaml has no {k}"))
            .clone()
    };
    (kind("SpinApp"), kind("Secret"))
}

#[test]
fn the_spinapp_binds_spin_tomls_variables_and_its_stores() {
    let manifest = spin_toml();
    let (app, secret) = spinapp();
    let spec = &app["spec"];
    assert!(
        spec["replicas"].as_u64().unwrap_or(0) >= 2,
        "more than one replica"
    );
    let variables = manifest["variables"].as_table().expect("[variables]");
    let secret_keys: BTreeSet<&str> = secret["stringData"]
        .as_object()
        .expect("the Secret's stringData")
        .keys()
        .map(String::as_str)
        .collect();
    let secret_name = secret["metadata"]["name"].clone();
    let from_secret = |binding: &Json| -> Option<String> {
        let reference = &binding["valueFrom"]["secretKeyRef"];
        (reference["name"] == secret_name)
            .then(|| reference["key"].as_str().map(str::to_owned))
            .flatten()
    };
    let mut bound = BTreeSet::new();
    for binding in spec["variables"].as_array().expect("variables") {
        let name = binding["name"].as_str().expect("a variable's name");
        let declared = variables
            .get(name)
            .unwrap_or_else(|| panic!("{name} is not a variable of spin.toml"));
        let secret_variable = declared.get("secret").and_then(|s| s.as_bool()) == Some(true);
        if secret_variable {
            let key = from_secret(binding)
                .unwrap_or_else(|| panic!("the secret {name} comes from the Secret"));
            assert!(secret_keys.contains(key.as_str()), "the Secret holds {key}");
        } else {
            assert!(
                binding["value"].is_string() || from_secret(binding).is_some(),
                "{name} has a value"
            );
        }
        bound.insert(name.to_owned());
    }
    for (name, declared) in variables {
        let required = declared.get("required").and_then(|r| r.as_bool()) == Some(true);
        assert!(
            !required || bound.contains(name),
            "the required {name} is bound"
        );
    }
    // Many replicas, one system of record.
    let database = spec["variables"]
        .as_array()
        .and_then(|v| v.iter().find(|b| b["name"] == "database"))
        .expect("database is bound");
    assert_eq!(database["value"], "postgres");
    for name in ["postgres_host", "postgres_password"] {
        assert!(bound.contains(name), "{name} is bound");
    }

    // Every component runs, and the key-value store it uses is the shared Redis.
    if let Some(components) = spec["components"].as_array() {
        let all: BTreeSet<&str> = manifest["component"]
            .as_table()
            .expect("components")
            .iter()
            .map(|(id, _)| id)
            .collect();
        let listed: BTreeSet<&str> = components.iter().filter_map(Json::as_str).collect();
        assert_eq!(listed, all, "every component of spin.toml");
    }
    let stores: BTreeSet<String> = spec["runtimeConfig"]["keyValueStores"]
        .as_array()
        .expect("keyValueStores")
        .iter()
        .map(|s| {
            assert_eq!(s["type"], "redis", "{s}");
            let url = s["options"]
                .as_array()
                .and_then(|o| o.iter().find(|o| o["name"] == "url"))
                .expect("a url option");
            let key = from_secret(url).expect("the URL from the Secret");
            assert!(secret_keys.contains(key.as_str()), "the Secret holds {key}");
            s["name"].as_str().expect("a label").to_owned()
        })
        .collect();
    assert_eq!(stores, granted(&manifest, "key_value_stores"));
}

#[test]
fn the_runtime_configs_configure_the_stores_the_components_use() {
    let manifest = spin_toml();
    let read = |name: &str| -> toml_edit::DocumentMut {
        std::fs::read_to_string(repo_dir().join("deploy").join(name))
            .unwrap_or_else(|e| panic!("deploy/{name}: {e}"))
            .parse()
            .unwrap_or_else(|e| panic!("deploy/{name} is TOML: {e}"))
    };
    let labels = |doc: &toml_edit::DocumentMut, table: &str| -> BTreeSet<String> {
        doc.get(table)
            .and_then(|t| t.as_table())
            .map(|t| t.iter().map(|(label, _)| label.to_owned()).collect())
            .unwrap_or_default()
    };
    let embedded = read("runtime-config.embedded.toml");
    assert_eq!(
        labels(&embedded, "key_value_store"),
        granted(&manifest, "key_value_stores")
    );
    assert_eq!(
        labels(&embedded, "sqlite_database"),
        granted(&manifest, "sqlite_databases")
    );
    let shared = read("runtime-config.postgres-redis.toml");
    assert_eq!(
        labels(&shared, "key_value_store"),
        granted(&manifest, "key_value_stores")
    );
    for (_, store) in shared["key_value_store"].as_table().expect("stores") {
        assert_eq!(store["type"].as_str(), Some("redis"));
    }
}
