//! The marketplace in-process: the domain's HTTP handlers (`nestmarket::api::handle`) over a real
//! database — SQLite through rusqlite, or PostgreSQL (`NESTMARKET_TEST_DATABASE=postgres`, see
//! [`engine`](crate::engine)) —, a new connection per request as Spin opens them, and a simulated
//! clock passed as "now". The API tests and the benchmarks drive it; it can also look into the
//! database, to show that a refused request changed nothing.

use std::sync::Mutex;

use chrono::{DateTime, Utc};
use nestmarket::api::{self, Api, CsvPages};
use nestmarket::platform::config::Config;
use nestmarket::platform::outbound::native::NativeOutbound;
use nestmarket::platform::storage::native::NativeBackend;
use nestmarket::platform::storage::{Backend, Chunks, Dialect, Storage, Value};

use crate::engine::{Engine, PostgresSchema};
use crate::holding::Holding;
use crate::market::{Market, at};
use crate::response::Response;

/// The built-in operator's token of every in-process app.
pub const ADMIN: &str = "test-admin-token-0123456789";

/// One deployment: a database of its own (a SQLite file in a temporary directory, or a
/// PostgreSQL schema dropped with the app), its key-value store, its variables.
pub struct TestApp {
    /// The stores, shared by every request as the instances of one Spin app share them.
    pub backend: NativeBackend,
    config: Mutex<Config>,
    now: Mutex<DateTime<Utc>>,
    /// The URL of its PostgreSQL schema, on PostgreSQL.
    postgres: Option<String>,
    /// Where the database lives (a temporary directory, a schema), removed when dropped. Last:
    /// the database goes once nothing of the app uses it.
    _database: Box<dyn Send + Sync>,
}

impl Default for TestApp {
    fn default() -> Self {
        Self::new()
    }
}

impl TestApp {
    /// A fresh deployment with the default variables, its clock at 2026-03-27T08:00:00Z.
    pub fn new() -> Self {
        Self::with_config(|_| None)
    }

    /// A fresh deployment whose variables `overrides` returns (the rest default).
    pub fn with_config(overrides: impl Fn(&str) -> Option<String>) -> Self {
        Self::deployed(overrides, &[])
    }

    /// A fresh deployment whose PostgreSQL server gives its sessions these settings (name,
    /// value) — `ALTER ROLE … SET`, say; on SQLite, a fresh deployment.
    pub fn with_server_settings(settings: &[(&str, &str)]) -> Self {
        Self::deployed(|_| None, settings)
    }

    fn deployed(
        overrides: impl Fn(&str) -> Option<String>,
        server_settings: &[(&str, &str)],
    ) -> Self {
        let (backend, database, postgres) = match crate::engine::engine() {
            Engine::Sqlite => {
                let dir = tempfile::tempdir().expect("a temporary directory");
                let backend = NativeBackend::new(dir.path().join("sqlite_db.db"));
                (backend, Box::new(dir) as Box<dyn Send + Sync>, None)
            }
            Engine::Postgres => {
                let schema = PostgresSchema::with_settings(server_settings);
                let url = schema.url().to_owned();
                (
                    NativeBackend::postgres(&url),
                    Box::new(schema) as _,
                    Some(url),
                )
            }
        };
        // Migrate up front, so that snapshots taken before the first request see every table.
        Storage::new(backend.clone())
            .db()
            .expect("a migrated database");
        Self {
            _database: database,
            backend,
            config: Mutex::new(variables(overrides)),
            now: Mutex::new(at("2026-03-27T08:00:00Z")),
            postgres,
        }
    }

    /// The deployment's variables.
    pub fn config(&self) -> Config {
        self.config.lock().expect("the variables").clone()
    }

    /// Deploys the app again over the same stores with other variables (the rest default), as
    /// an operator changing a Spin variable would.
    pub fn redeploy(&self, overrides: impl Fn(&str) -> Option<String>) {
        *self.config.lock().expect("the variables") = variables(overrides);
    }

    /// The SQL the app's database speaks, for the tests that reach into it.
    pub fn dialect(&self) -> Dialect {
        self.backend.dialect()
    }

    /// Another transaction in flight on this app's database, held open (`holding`): on
    /// PostgreSQL a session of the test's own that ran `sql` (statements with their literals
    /// inline) and holds what it locked; on SQLite nothing.
    pub fn holding(&self, sql: &str) -> Holding {
        match &self.postgres {
            Some(url) => Holding::new(url, sql),
            None => Holding::nothing(),
        }
    }

    /// Every row of every table plus the number of blobs: equal snapshots mean nothing changed.
    pub fn snapshot(&self) -> String {
        let db = self.backend.open_db().expect("a connection");
        let (tables, rows) = match self.dialect() {
            Dialect::Sqlite => (
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name",
                "SELECT * FROM \"{}\" ORDER BY rowid",
            ),
            Dialect::Postgres => (
                "SELECT CAST(table_name AS TEXT) FROM information_schema.tables
                 WHERE table_schema = current_schema() ORDER BY 1",
                "SELECT * FROM \"{}\" AS t ORDER BY CAST(t AS TEXT)",
            ),
        };
        let tables = db.execute(tables, &[]).expect("the schema");
        let mut out = format!("kv blobs: {}\n", self.backend.kv_len());
        for t in tables {
            let name = t.text(0).expect("a table name");
            let rows = db
                .execute(&rows.replace("{}", &name), &[])
                .unwrap_or_default();
            out.push_str(&format!("{name}: {rows:?}\n"));
        }
        out
    }

    /// The number of rows of `table`.
    pub fn count(&self, table: &str) -> i64 {
        let db = self.backend.open_db().expect("a connection");
        match db
            .execute(&format!("SELECT COUNT(*) FROM {table}"), &[])
            .expect("a count")[0]
            .0[0]
        {
            Value::Integer(n) => n,
            ref v => panic!("count returned {v:?}"),
        }
    }

    /// One request to the web console, as a browser sends it: `headers` such as `cookie` and
    /// `content-type`.
    pub fn console(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Response {
        let mut req = http::Request::builder().method(method).uri(path);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let storage = Storage::new(self.backend.clone());
        let answer = response(
            nestmarket::console::handle(
                req.body(body).expect("a valid request"),
                &storage,
                &NativeOutbound,
                &self.config(),
                &|| self.now(),
            ),
            &storage,
        );
        api::after_response(&storage, &NativeOutbound, self.now());
        answer
    }

    /// What the `billing` cron component runs, at `instant`: the bill run, the closes, the
    /// webhooks' deliveries due. Its report.
    pub fn scheduled_run(&self, instant: DateTime<Utc>) -> nestmarket::ScheduledRun {
        let storage = Storage::new(self.backend.clone());
        nestmarket::scheduled_run(
            storage.db().expect("a connection"),
            &NativeOutbound,
            &self.config(),
            instant,
        )
        .expect("a scheduled run")
    }

    /// Writes the product's status directly, for rules that depend on review states.
    pub fn force_status(&self, product_id: &str, status: &str) {
        let db = self.backend.open_db().expect("a connection");
        db.execute(
            "UPDATE products SET status = ? WHERE id = ?",
            &[status.into(), product_id.into()],
        )
        .expect("the status written");
    }

    /// Points every billable item of the deployment at a Prometheus query, written directly: the
    /// stand-in Prometheus of a test starts once its instance's id is known, after the product
    /// was published and its sales settings frozen.
    pub fn report_from_prometheus(&self, endpoint: &str, query: &str) {
        let reporting = serde_json::json!({"method": "compute_nest", "source": "prometheus",
            "prometheus": {"endpoint": endpoint, "query": query}});
        let db = self.backend.open_db().expect("a connection");
        db.execute(
            "UPDATE billable_item_settings SET reporting = ?",
            &[reporting.to_string().into()],
        )
        .expect("the reporting written");
    }

    /// Changes every service's resource fee `from` to `to`, written directly (no operation edits
    /// a service): what instances ordered before must not see.
    pub fn reprice_templates(&self, from: &str, to: &str) {
        let db = self.backend.open_db().expect("a connection");
        db.execute(
            "UPDATE services SET spec = replace(spec, ?, ?)",
            &[format!("\"{from}\"").into(), format!("\"{to}\"").into()],
        )
        .expect("the services written");
    }

    /// Empties a product's stored step, as a step an older version wrote that no longer parses.
    pub fn break_step(&self, product_id: &str, step: &str) {
        let db = self.backend.open_db().expect("a connection");
        db.execute(
            "UPDATE product_steps SET data = '{\"data\": {}, \"warnings\": []}'
             WHERE product_id = ? AND step = ?",
            &[product_id.into(), step.into()],
        )
        .expect("the step written");
    }

    /// Serves one request as it arrives, whatever its method, headers and path (the fuzzing
    /// harness sends what no story would): routed to the component `spin.toml` routes its path
    /// to, answered in-process.
    pub fn send(&self, req: http::Request<Vec<u8>>) -> Response {
        // A fresh Storage per request: a new connection, like a fresh Spin instance.
        let storage = Storage::new(self.backend.clone());
        let api = api_for(req.uri().path());
        let answer = response(
            api::handle(api, req, &storage, &NativeOutbound, &self.config(), &|| {
                self.now()
            }),
            &storage,
        );
        // As the components do once the response is handed over: this request's events.
        api::after_response(&storage, &NativeOutbound, self.now());
        answer
    }
}

/// The kit's response of a handler's; a body left in the key-value store in pieces (a medium)
/// is read whole, as Spin's adapter streams it.
fn response(resp: http::Response<Vec<u8>>, storage: &Storage) -> Response {
    let (parts, mut body) = resp.into_parts();
    if let Some(chunks) = parts.extensions.get::<Chunks>() {
        assert!(body.is_empty(), "a streamed body has no bytes of its own");
        body = chunks
            .read_all(storage.kv().expect("the key-value store"))
            .expect("every piece of the body");
    }
    if let Some(pages) = parts.extensions.get::<CsvPages>() {
        let complete = pages.write_rest(storage, |page| {
            body.extend_from_slice(page);
            true
        });
        assert!(complete, "every page of the export");
    }
    Response {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body,
    }
}

fn variables(overrides: impl Fn(&str) -> Option<String>) -> Config {
    Config::from_variables(|name| {
        overrides(name).or_else(|| (name == "admin_token").then(|| ADMIN.to_owned()))
    })
    .expect("valid variables")
}

/// Which component `spin.toml` routes a path to (the end-to-end tests check the manifest itself).
fn api_for(path: &str) -> Api {
    let rest = path.trim_start_matches("/api/v1/");
    match rest.split(['/', '?']).next().unwrap_or_default() {
        "principals" | "me" | "webhooks" => Api::Identity,
        "reviews" => Api::Reviews,
        "metering" => Api::Metering,
        "orders" | "instances" | "accounts" | "bills" | "billing" | "settlements"
        | "credit-notes" => Api::Orders,
        _ => Api::Listings,
    }
}

impl Market for TestApp {
    fn call_with_headers(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Response {
        let mut req = http::Request::builder().method(method).uri(path);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        self.send(req.body(body).expect("a valid request"))
    }

    fn admin_token(&self) -> &str {
        ADMIN
    }

    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().expect("the clock")
    }

    fn set_now(&self, now: DateTime<Utc>) {
        *self.now.lock().expect("the clock") = now;
    }
}
