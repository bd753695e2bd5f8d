//! Generates the `bindgen!` invocation for the Spin host interfaces. The WIT is the copy shipped inside the
//! `spin-sdk` crate the components are built with, so host and guests can never disagree on it; its
//! directory is only known once cargo has resolved the workspace, hence a build script writing the path
//! into a generated source file (`bindgen!` only takes string literals).
use std::path::{Path, PathBuf};
use std::process::Command;

/// The spin-sdk release whose WIT the host implements (the workspace pins the guests to it too).
const SPIN_SDK_VERSION: &str = "5.2.0";

/// Directories under the SDK's `wit/deps/`, each after the packages it uses.
const WIT_PACKAGES: &[&str] = &[
    "io@0.2.0",
    "clocks@0.2.0",
    "random@0.2.0",
    "filesystem@0.2.0",
    "sockets@0.2.0",
    "cli@0.2.0",
    "http@0.2.0",
    "io-2023-10-18",
    "clocks-2023-10-18",
    "random-2023-10-18",
    "filesystem-2023-10-18",
    "sockets-2023-10-18",
    "cli-2023-10-18",
    "http-2023-10-18",
    "spin@2.0.0",
];

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let workspace_manifest = manifest_dir.join("../../Cargo.toml");
    let deps = spin_sdk_dir(&workspace_manifest).join("wit/deps");
    // Only the packages `fermyon:spin@2.0.0` needs (its worlds name WASI 0.2.0 and the 2023-10-18 RC), dependencies first: the SDK's root world also pulls in
    // WASI 0.3 (futures and streams), which wasmtime's bindgen only accepts with component-model-async.
    let packages: Vec<String> = WIT_PACKAGES
        .iter()
        .map(|package| {
            let dir = deps.join(package);
            assert!(dir.is_dir(), "no WIT package at {}", dir.display());
            dir.to_str().expect("UTF-8 path to spin-sdk").to_owned()
        })
        .collect();

    let generated = format!(
        r#"wasmtime::component::bindgen!({{
    path: {packages:?},
    inline: "
        package spin-test-host:imports;
        world spin-imports {{
            import fermyon:spin/key-value@2.0.0;
            import fermyon:spin/sqlite@2.0.0;
            import fermyon:spin/variables@2.0.0;
        }}
    ",
    world: "spin-imports",
    imports: {{ default: trappable }},
    with: {{
        "fermyon:spin/key-value.store": crate::key_value::OpenStore,
        "fermyon:spin/sqlite.connection": crate::sqlite::OpenConnection,
    }},
}});
"#,
    );
    let out =
        PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo")).join("spin_imports.rs");
    std::fs::write(&out, generated).expect("write generated bindings");

    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=../../Cargo.lock");
}

/// Asks cargo where the workspace's `spin-sdk` package lives (the registry source directory).
fn spin_sdk_dir(workspace_manifest: &Path) -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--manifest-path"])
        .arg(workspace_manifest)
        .output()
        .expect("run cargo metadata");
    assert!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("cargo metadata JSON");
    let packages = metadata["packages"].as_array().expect("packages array");
    let sdk = packages
        .iter()
        .find(|p| p["name"] == "spin-sdk" && p["version"] == SPIN_SDK_VERSION)
        .unwrap_or_else(|| {
            panic!("spin-sdk {SPIN_SDK_VERSION} is not in the workspace's dependency graph")
        });
    let manifest_path = PathBuf::from(sdk["manifest_path"].as_str().expect("manifest_path"));
    manifest_path
        .parent()
        .expect("crate directory")
        .to_path_buf()
}
