//! The wasmtime side: one engine per process, components compiled once per process, and per request or
//! cron event a fresh `Store` and instance, as Spin does.
use crate::key_value::KeyValueStores;
use crate::outbound::{AllowedHost, OutboundHooks};
use anyhow::{Context, Result};
use std::collections::{BTreeMap, HashMap};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, HasSelf, InstancePre, Linker, ResourceTable, ResourceType};
use wasmtime::{Engine, Store};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// What one component may see: its grants, its expanded variables and its environment.
#[derive(Debug)]
pub(crate) struct ComponentConfig {
    pub id: String,
    pub key_value_stores: Vec<String>,
    pub sqlite_databases: Vec<String>,
    pub variables: BTreeMap<String, String>,
    pub environment: BTreeMap<String, String>,
    pub allowed_hosts: Arc<Vec<AllowedHost>>,
}

/// State shared by every instance of one app (Spin's `.spin/` directory plus the key-value stores).
#[derive(Debug)]
pub(crate) struct AppState {
    pub state_dir: tempfile::TempDir,
    pub key_value: KeyValueStores,
}

impl AppState {
    pub fn sqlite_path(&self) -> PathBuf {
        self.state_dir.path().join("sqlite_db.db")
    }
}

/// The `T` of each `Store<T>`: lives exactly as long as one request or cron event.
pub(crate) struct HostState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    pub table: ResourceTable,
    hooks: OutboundHooks,
    pub component: Arc<ComponentConfig>,
    pub app: Arc<AppState>,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// Guest stdout/stderr are kept per instance and replayed through `eprint!`, so the test harness shows
/// them only for failing tests.
const GUEST_OUTPUT_CAPACITY: usize = 16 << 20;

pub(crate) fn new_store(
    component: &Arc<ComponentConfig>,
    app: &Arc<AppState>,
) -> (Store<HostState>, MemoryOutputPipe) {
    let output = MemoryOutputPipe::new(GUEST_OUTPUT_CAPACITY);
    let wasi = WasiCtx::builder()
        .stdout(output.clone())
        .stderr(output.clone())
        .envs(&component.environment.iter().collect::<Vec<_>>())
        .build();
    let state = HostState {
        wasi,
        http: WasiHttpCtx::new(),
        table: ResourceTable::new(),
        hooks: OutboundHooks {
            allowed: component.allowed_hosts.clone(),
        },
        component: component.clone(),
        app: app.clone(),
    };
    (Store::new(engine(), state), output)
}

pub(crate) fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(Engine::default)
}

/// Compiled components by content, so the many apps a test binary loads compile each `.wasm` once.
static COMPILED: Mutex<BTreeMap<u64, Component>> = Mutex::new(BTreeMap::new());

/// Loads a `source` file: a `wasm32-wasip1` core module is turned into a component with the reactor
/// adapter first, as Spin does at load; a component is used as it is.
pub(crate) fn load_component(path: &Path) -> Result<Component> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("reading component source {}", path.display()))?;
    let mut hasher = DefaultHasher::new();
    bytes.hash(&mut hasher);
    let key = hasher.finish();
    let mut compiled = COMPILED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(component) = compiled.get(&key) {
        return Ok(component.clone());
    }
    // The version field after the magic number: 1 for core modules, 0x1000d for components.
    let component_bytes = if bytes.get(4..8) == Some(&[1, 0, 0, 0]) {
        wit_component::ComponentEncoder::default()
            .validate(true)
            .module(&bytes)?
            .adapter(
                wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME,
                wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
            )?
            .encode()
            .with_context(|| format!("componentizing {}", path.display()))?
    } else {
        bytes
    };
    let component = Component::new(engine(), &component_bytes)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("compiling {}", path.display()))?;
    compiled.insert(key, component.clone());
    Ok(component)
}

/// WASI 0.2 packages implemented by wasmtime-wasi and wasmtime-wasi-http (any 0.2.x version).
const WASI_PACKAGES: &[&str] = &[
    "wasi:io",
    "wasi:clocks",
    "wasi:random",
    "wasi:filesystem",
    "wasi:sockets",
    "wasi:cli",
    "wasi:http",
];
/// The Spin interfaces implemented here (see `key_value`, `sqlite`, `variables`).
const SPIN_INTERFACES: &[&str] = &[
    "fermyon:spin/key-value@2.0.0",
    "fermyon:spin/sqlite@2.0.0",
    "fermyon:spin/variables@2.0.0",
];

/// Links the WASI 0.2 and `wasi:http` implementations and the Spin interfaces. Any other import (an
/// interface Spin offers that no component has needed yet: redis, mqtt, llm, postgres, `spin:sqlite@3`,
/// ...) is linked to functions that trap, so the component instantiates and fails only if it calls one.
pub(crate) fn instantiate_pre(component: &Component) -> Result<InstancePre<HostState>> {
    let mut linker: Linker<HostState> = Linker::new(engine());
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    crate::bindings::SpinImports::add_to_linker::<HostState, HasSelf<HostState>>(
        &mut linker,
        |state| state,
    )?;
    stub_unimplemented_imports(&mut linker, component)?;
    Ok(linker.instantiate_pre(component)?)
}

/// wasmtime's own `define_unknown_imports_as_traps` does not see that a semver-compatible WASI version is
/// already linked (the adapter imports e.g. `wasi:io/poll@0.2.12`) and shadows it with stubs, which
/// breaks the resource types; so only imports outside the implemented packages are stubbed here.
fn stub_unimplemented_imports(linker: &mut Linker<HostState>, component: &Component) -> Result<()> {
    let engine = engine();
    for (name, item) in component.component_type().imports(engine) {
        let package = name.split_once('/').map_or(name, |(package, _)| package);
        if WASI_PACKAGES.contains(&package) || SPIN_INTERFACES.contains(&name) {
            continue;
        }
        let ComponentItem::ComponentInstance(instance) = item.ty else {
            anyhow::bail!("import {name:?} is not an interface: Spin would not run this component");
        };
        let mut stubs = linker.instance(name)?;
        for (export, item) in instance.exports(engine) {
            match item.ty {
                ComponentItem::ComponentFunc(_) => {
                    let qualified = format!("{name}#{export}");
                    stubs.func_new(export, move |_, _, _, _| {
                        wasmtime::bail!("{qualified} is not implemented by the test host")
                    })?;
                }
                ComponentItem::Resource(_) => {
                    stubs.resource(export, ResourceType::host::<()>(), |_, _| Ok(()))?;
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// Resolves each component's templates and allow list once per app.
pub(crate) fn component_configs(
    manifest: &crate::manifest::Manifest,
    app_variables: &crate::variables::AppVariables,
) -> Result<HashMap<String, Arc<ComponentConfig>>> {
    let mut configs = HashMap::new();
    for (id, component) in &manifest.component {
        let variables = component
            .variables
            .iter()
            .map(|(name, template)| Ok((name.clone(), app_variables.expand(template)?)))
            .collect::<Result<_>>()?;
        let allowed_hosts = component
            .allowed_outbound_hosts
            .iter()
            .map(|entry| {
                AllowedHost::parse(&app_variables.expand(entry)?)
                    .with_context(|| format!("component {id:?} allowed_outbound_hosts"))
            })
            .collect::<Result<Vec<_>>>()?;
        configs.insert(
            id.clone(),
            Arc::new(ComponentConfig {
                id: id.clone(),
                key_value_stores: component.key_value_stores.clone(),
                sqlite_databases: component.sqlite_databases.clone(),
                variables,
                environment: component.environment.clone(),
                allowed_hosts: Arc::new(allowed_hosts),
            }),
        );
    }
    Ok(configs)
}
