//! A test-only host that runs a Spin application's components on wasmtime the way `spin up` would:
//! it reads `spin.toml`, runs the components' build commands, turns `wasm32-wasip1` modules into
//! components, routes HTTP requests as Spin's router does (adding Spin's `spin-*` headers), invokes cron
//! components' `handle-cron-event`, and implements the Spin interfaces with Spin's access rules:
//! key-value stores and SQLite databases only as granted in the manifest, variables only as mapped in
//! `[component.<id>.variables]`, outbound HTTP only to `allowed_outbound_hosts`.
//!
//! Each request or cron event gets a fresh instance; each [`SpinApp`] gets a fresh state directory, so
//! tests are isolated from one another.
//!
//! ```no_run
//! use spin_test_host::{ResponseExt, SpinApp};
//! let app = SpinApp::builder("../..").variable("admin_token", "secret").load().unwrap();
//! let me = app.get("/api/v1/me", Some("secret"));
//! assert_eq!(me.status(), 200);
//! assert_eq!(me.json()["role"], "operator");
//! ```

mod host;
mod key_value;
mod manifest;
mod outbound;
mod router;
mod spin_build;
mod sqlite;
mod variables;

/// Bindings for the Spin interfaces, generated from the WIT inside the `spin-sdk` crate (see build.rs).
mod bindings {
    include!(concat!(env!("OUT_DIR"), "/spin_imports.rs"));
}

/// Bindings for the cron trigger's world (not part of spin-sdk, hence the copy in `wit/`).
mod cron_bindings {
    wasmtime::component::bindgen!({
        path: "../../components/billing/wit/spin-cron.wit",
        world: "spin-cron",
        exports: { default: async },
    });
}

pub use http;

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use cron_bindings::SpinCronPre;
use cron_bindings::fermyon::spin_cron::cron_types::{Error as CronError, Metadata};
use host::{AppState, ComponentConfig, HostState};
use http::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use http::{HeaderName, HeaderValue, Method, StatusCode};
use http_body_util::{BodyExt, Full};
use manifest::{Manifest, Route};
use router::Router;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;

/// A response with its whole body.
pub type Response = http::Response<Vec<u8>>;

/// The address `spin up` listens on by default: the `Host` of requests that name none.
const DEFAULT_HOST: &str = "127.0.0.1:3000";
/// What the guest sees as `spin-client-addr`.
const CLIENT_ADDR: &str = "127.0.0.1:49152";

/// A loaded Spin application. `Send + Sync`: tests may issue requests from several threads at once.
pub struct SpinApp {
    app: Arc<AppState>,
    router: Router,
    http_components: HashMap<String, HttpComponent>,
    cron_components: Vec<CronComponent>,
    /// Drives the blocking API; an `Option` only so that `Drop` can shut it down without blocking.
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for SpinApp {
    /// Dropping a runtime blocks, which tokio forbids inside async tests that used `request_async`.
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

struct HttpComponent {
    pre: ProxyPre<HostState>,
    config: Arc<ComponentConfig>,
}

struct CronComponent {
    pre: SpinCronPre<HostState>,
    config: Arc<ComponentConfig>,
}

/// Options for loading an app: variable overrides and, for negative tests, a replacement manifest.
pub struct SpinAppBuilder {
    manifest_dir: PathBuf,
    manifest_text: Option<String>,
    variables: BTreeMap<String, String>,
}

impl SpinAppBuilder {
    /// Sets an application variable (as `spin up --variable name=value` does).
    pub fn variable(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.variables.insert(name.into(), value.into());
        self
    }

    /// Uses `text` instead of the directory's `spin.toml`; paths in it stay relative to the directory.
    pub fn manifest(mut self, text: impl Into<String>) -> Self {
        self.manifest_text = Some(text.into());
        self
    }

    /// Builds the components (once per test process), compiles them (once per process) and prepares a
    /// fresh state directory. Fails where `spin up` would refuse to start.
    pub fn load(self) -> Result<SpinApp> {
        let manifest_dir = self
            .manifest_dir
            .canonicalize()
            .with_context(|| format!("manifest directory {}", self.manifest_dir.display()))?;
        let text = match self.manifest_text {
            Some(text) => text,
            None => std::fs::read_to_string(manifest_dir.join("spin.toml"))
                .with_context(|| format!("reading {}/spin.toml", manifest_dir.display()))?,
        };
        let manifest = Manifest::parse(&text)?;
        let variables = variables::AppVariables::resolve(&manifest, &self.variables)?;
        let configs = host::component_configs(&manifest, &variables)?;
        let router = Router::build(manifest.trigger.http.iter().filter_map(|t| match &t.route {
            Route::Path(route) => Some((route.as_str(), t.component.as_str())),
            Route::Private { .. } => None,
        }))?;
        spin_build::build_components(&manifest_dir, &manifest)?;

        let mut http_components = HashMap::new();
        for trigger in &manifest.trigger.http {
            if http_components.contains_key(&trigger.component) {
                continue;
            }
            let pre = prepare(&manifest_dir, &manifest, &trigger.component)?;
            let pre = ProxyPre::new(pre)
                .map_err(anyhow::Error::from)
                .with_context(|| {
                    format!(
                        "component {:?} does not export wasi:http/incoming-handler",
                        trigger.component
                    )
                })?;
            let config = configs[&trigger.component].clone();
            http_components.insert(trigger.component.clone(), HttpComponent { pre, config });
        }
        let mut cron_components = Vec::new();
        for trigger in &manifest.trigger.cron {
            let pre = prepare(&manifest_dir, &manifest, &trigger.component)?;
            let pre = SpinCronPre::new(pre)
                .map_err(anyhow::Error::from)
                .with_context(|| {
                    format!(
                        "component {:?} does not export handle-cron-event",
                        trigger.component
                    )
                })?;
            let config = configs[&trigger.component].clone();
            cron_components.push(CronComponent { pre, config });
        }

        let app = Arc::new(AppState {
            state_dir: tempfile::tempdir().context("creating the app's state directory")?,
            key_value: Default::default(),
        });
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .context("starting the tokio runtime")?;
        Ok(SpinApp {
            app,
            router,
            http_components,
            cron_components,
            runtime: Some(runtime),
        })
    }
}

fn prepare(
    manifest_dir: &Path,
    manifest: &Manifest,
    id: &str,
) -> Result<wasmtime::component::InstancePre<HostState>> {
    let source = manifest_dir.join(&manifest.component[id].source);
    let component = host::load_component(&source).with_context(|| format!("component {id:?}"))?;
    host::instantiate_pre(&component).with_context(|| format!("linking component {id:?}"))
}

impl SpinApp {
    /// Loads the app in `manifest_dir` (the directory holding `spin.toml`) with no variable overrides.
    pub fn load(manifest_dir: impl AsRef<Path>) -> Result<SpinApp> {
        Self::builder(manifest_dir).load()
    }

    pub fn builder(manifest_dir: impl AsRef<Path>) -> SpinAppBuilder {
        SpinAppBuilder {
            manifest_dir: manifest_dir.as_ref().to_path_buf(),
            manifest_text: None,
            variables: BTreeMap::new(),
        }
    }

    fn runtime(&self) -> &tokio::runtime::Runtime {
        self.runtime.as_ref().expect("only taken by Drop")
    }

    /// The app's private state directory (Spin's `.spin/`): the SQLite database is `sqlite_db.db` in it.
    pub fn state_dir(&self) -> &Path {
        self.app.state_dir.path()
    }

    /// Handles one request as `spin up` would: 404 for an unrouted path, 500 if the component traps or
    /// never responds, otherwise whatever the component answers.
    pub fn request(&self, request: http::Request<Vec<u8>>) -> Response {
        self.runtime().block_on(self.request_async(request))
    }

    /// [`SpinApp::request`] for async tests (needs a tokio runtime).
    pub async fn request_async(&self, request: http::Request<Vec<u8>>) -> Response {
        match self.dispatch(request).await {
            Ok(response) => response,
            Err(e) => {
                eprintln!("spin-test-host: request failed: {e:?}");
                plain_response(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
            }
        }
    }

    pub fn get(&self, path: &str, token: Option<&str>) -> Response {
        self.request(build_request(Method::GET, path, token, None, Vec::new()))
    }

    pub fn delete(&self, path: &str, token: Option<&str>) -> Response {
        self.request(build_request(Method::DELETE, path, token, None, Vec::new()))
    }

    pub fn post_json(&self, path: &str, token: Option<&str>, body: &serde_json::Value) -> Response {
        self.request(build_request(
            Method::POST,
            path,
            token,
            Some("application/json"),
            body.to_string().into_bytes(),
        ))
    }

    pub fn put_json(&self, path: &str, token: Option<&str>, body: &serde_json::Value) -> Response {
        self.request(build_request(
            Method::PUT,
            path,
            token,
            Some("application/json"),
            body.to_string().into_bytes(),
        ))
    }

    /// A `PUT` with a raw body, e.g. a media upload.
    pub fn put_bytes(
        &self,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: Vec<u8>,
    ) -> Response {
        self.request(build_request(
            Method::PUT,
            path,
            token,
            Some(content_type),
            body,
        ))
    }

    /// Fires one cron event at `timestamp` (Unix seconds) for every `[[trigger.cron]]`, in manifest order,
    /// stopping at the first component that returns an error or traps.
    pub fn cron(&self, timestamp: u64) -> Result<()> {
        if self.cron_components.is_empty() {
            bail!("spin.toml has no [[trigger.cron]]");
        }
        for component in &self.cron_components {
            self.runtime()
                .block_on(self.cron_event(component, timestamp))?;
        }
        Ok(())
    }

    async fn cron_event(&self, component: &CronComponent, timestamp: u64) -> Result<()> {
        let (mut store, output) = host::new_store(&component.config, &self.app);
        let outcome = async {
            let instance = component.pre.instantiate_async(&mut store).await?;
            instance
                .call_handle_cron_event(&mut store, Metadata { timestamp })
                .await
        }
        .await;
        replay_guest_output(&component.config.id, &output);
        let id = &component.config.id;
        match outcome.map_err(anyhow::Error::from) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(CronError::Other(message))) => {
                bail!("cron component {id:?} returned an error: {message}")
            }
            Err(trap) => Err(trap.context(format!("cron component {id:?} trapped"))),
        }
    }

    async fn dispatch(&self, request: http::Request<Vec<u8>>) -> Result<Response> {
        let Some(route) = self.router.route(request.uri().path()) else {
            return Ok(plain_response(StatusCode::NOT_FOUND, ""));
        };
        let component = &self.http_components[&route.component];
        let (mut parts, body) = request.into_parts();
        let host = match parts.headers.get(HOST) {
            Some(host) => host.to_str().context("non-ASCII Host header")?.to_owned(),
            None => {
                parts
                    .headers
                    .insert(HOST, HeaderValue::from_static(DEFAULT_HOST));
                DEFAULT_HOST.to_owned()
            }
        };
        let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let full_url = format!("http://{host}{path_and_query}");
        for (name, value) in route.spin_headers(&full_url, CLIENT_ADDR) {
            parts
                .headers
                .insert(HeaderName::try_from(name)?, HeaderValue::try_from(value)?);
        }
        parts.uri = full_url.parse()?;
        let request = http::Request::from_parts(parts, Full::new(Bytes::from(body)));

        let (mut store, output) = host::new_store(&component.config, &self.app);
        let incoming = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, request)?;
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let outparam = store.data_mut().http().new_response_outparam(sender)?;
        let pre = component.pre.clone();
        // The guest may go on writing the body after it has set the response, so it runs on its own task.
        let guest = tokio::spawn(async move {
            let proxy = pre.instantiate_async(&mut store).await?;
            proxy
                .wasi_http_incoming_handler()
                .call_handle(&mut store, incoming, outparam)
                .await
        });
        let response = match receiver.await {
            Ok(Ok(response)) => {
                let (parts, body) = response.into_parts();
                let body = body.collect().await.map(|b| b.to_bytes().to_vec());
                body.map(|body| http::Response::from_parts(parts, body))
                    .map_err(|e| anyhow!("reading the response body: {e:?}"))
            }
            Ok(Err(code)) => Err(anyhow!("the component responded with error {code:?}")),
            Err(_) => Err(anyhow!("the component never set a response")),
        };
        let finished = guest
            .await
            .map_err(anyhow::Error::from)
            .and_then(|r| r.map_err(anyhow::Error::from));
        replay_guest_output(&component.config.id, &output);
        let id = &component.config.id;
        match (response, finished) {
            (Ok(response), Ok(())) => Ok(response),
            (Err(e), Ok(())) => Err(e.context(format!("component {id:?}"))),
            (_, Err(trap)) => Err(trap.context(format!("component {id:?} trapped"))),
        }
    }
}

fn build_request(
    method: Method,
    path: &str,
    token: Option<&str>,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> http::Request<Vec<u8>> {
    let mut request = http::Request::builder().method(method).uri(path);
    if let Some(token) = token {
        request = request.header(AUTHORIZATION, format!("Bearer {token}"));
    }
    if let Some(content_type) = content_type {
        request = request.header(CONTENT_TYPE, content_type);
    }
    request.body(body).expect("a test's request must be valid")
}

fn plain_response(status: StatusCode, body: &str) -> Response {
    let mut response = Response::new(body.as_bytes().to_vec());
    *response.status_mut() = status;
    response
}

fn replay_guest_output(id: &str, output: &MemoryOutputPipe) {
    let text = output.contents();
    if !text.is_empty() {
        eprint!("[{id}] {}", String::from_utf8_lossy(&text));
    }
}

/// Conveniences for asserting on a [`Response`].
pub trait ResponseExt {
    /// The body parsed as JSON; panics (failing the test) if it is not.
    fn json(&self) -> serde_json::Value;
    /// The body as (lossy) UTF-8.
    fn text(&self) -> String;
    /// A header's value, if present and ASCII.
    fn header_str(&self, name: &str) -> Option<&str>;
}

impl ResponseExt for Response {
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(self.body())
            .unwrap_or_else(|e| panic!("response body is not JSON ({e}): {}", self.text()))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(self.body()).into_owned()
    }

    fn header_str(&self, name: &str) -> Option<&str> {
        self.headers().get(name).and_then(|v| v.to_str().ok())
    }
}
