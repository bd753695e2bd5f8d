//! Which database engine the tests run the app on, and fresh PostgreSQL databases for them.
//!
//! The API tests run on SQLite unless `NESTMARKET_TEST_DATABASE=postgres`; the API test binary
//! runs itself again that way (`api_tests_pass_on_postgres`), so `cargo test` runs every API
//! test on both engines. PostgreSQL is the server at `NESTMARKET_TEST_POSTGRES` (a URL whose
//! user may create databases): `.ci/services start DIR` starts one and prints the variables.
//! Without it the PostgreSQL tests fail, saying so — they are never skipped.

use std::sync::OnceLock;

use postgres::{Client, NoTls};

/// The variable that chooses the engine of the in-process apps.
pub const ENGINE_VARIABLE: &str = "NESTMARKET_TEST_DATABASE";

/// The variable naming the PostgreSQL server of the tests.
pub const POSTGRES_VARIABLE: &str = "NESTMARKET_TEST_POSTGRES";

/// How to get a PostgreSQL server for the tests, for the failures that need one.
pub const HOW_TO_START: &str = "the PostgreSQL tests need a server: run `eval \"$(.ci/services \
    start /tmp/nestmarket-services)\"` (Debian: `apt-get install -y postgresql redis-server`), \
    which starts PostgreSQL and Redis on loopback ports and exports NESTMARKET_TEST_POSTGRES and \
    NESTMARKET_TEST_REDIS; `.ci/run` does it for CI";

/// A database engine the app runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// The embedded default: a SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// The engine of this test process's in-process apps (`NESTMARKET_TEST_DATABASE`, `sqlite` by
/// default).
pub fn engine() -> Engine {
    match std::env::var(ENGINE_VARIABLE).as_deref() {
        Err(_) | Ok("sqlite") => Engine::Sqlite,
        Ok("postgres") => Engine::Postgres,
        Ok(other) => panic!("{ENGINE_VARIABLE}={other:?}: expected sqlite or postgres"),
    }
}

/// The URL of the tests' PostgreSQL server, or a failure saying how to start one.
pub fn postgres_url() -> String {
    std::env::var(POSTGRES_VARIABLE)
        .unwrap_or_else(|_| panic!("{POSTGRES_VARIABLE} is not set: {HOW_TO_START}"))
}

/// The parts of the server's URL: `(user, password, host:port, database)`.
pub fn postgres_parts() -> (String, String, String, String) {
    let url = postgres_url();
    let rest = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))
        .unwrap_or_else(|| panic!("{POSTGRES_VARIABLE} must be a postgres:// URL, got {url}"));
    let (credentials, rest) = rest.split_once('@').unwrap_or(("postgres", rest));
    let (user, password) = credentials.split_once(':').unwrap_or((credentials, ""));
    let (address, database) = rest.split_once('/').unwrap_or((rest, "postgres"));
    (
        user.to_owned(),
        password.to_owned(),
        address.to_owned(),
        database.split('?').next().unwrap_or_default().to_owned(),
    )
}

fn connect(url: &str) -> Client {
    Client::connect(url, NoTls)
        .unwrap_or_else(|e| panic!("cannot connect to PostgreSQL at {url} ({e}): {HOW_TO_START}"))
}

/// The URL of database `name` on the tests' server.
pub fn database_url(name: &str) -> String {
    let (user, password, address, _) = postgres_parts();
    let credentials = match password.as_str() {
        "" => user,
        password => format!("{user}:{password}"),
    };
    format!("postgres://{credentials}@{address}/{name}")
}

fn unique_name(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{prefix}_{}_{:x}",
        std::process::id(),
        nanos ^ u128::from(rand_u64())
    )
}

/// A little randomness without a dependency: a fresh hasher's random keys.
fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::thread::current().id())
}

/// The database the in-process apps' schemas live in, created once.
const TESTS_DATABASE: &str = "nestmarket_api_tests";

/// A schema of its own in the tests' database, for one in-process app: its URL sets the
/// `search_path`, so the app's SQL finds its tables and nobody else's. Dropped with it.
pub struct PostgresSchema {
    name: String,
    url: String,
}

impl Default for PostgresSchema {
    fn default() -> Self {
        Self::new()
    }
}

impl PostgresSchema {
    /// A new, empty schema.
    pub fn new() -> Self {
        static DATABASE: OnceLock<()> = OnceLock::new();
        DATABASE.get_or_init(|| {
            create_database_if_missing(TESTS_DATABASE);
            // The API tests check behaviour, not durability: their commits need not wait for
            // the disk. (The deployments of the end-to-end tests, which restart PostgreSQL, keep
            // the server's synchronous commits.)
            connect(&postgres_url())
                .batch_execute(&format!(
                    "ALTER DATABASE {TESTS_DATABASE} SET synchronous_commit = off"
                ))
                .unwrap_or_else(|e| panic!("configuring {TESTS_DATABASE}: {e}"));
        });
        let name = unique_name("app");
        let database = database_url(TESTS_DATABASE);
        connect(&database)
            .batch_execute(&format!("CREATE SCHEMA {name}"))
            .unwrap_or_else(|e| panic!("creating schema {name}: {e}"));
        let url = format!("{database}?options=-csearch_path%3D{name}");
        Self { name, url }
    }

    /// The URL of a session whose tables are this schema's.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for PostgresSchema {
    fn drop(&mut self) {
        if let Ok(mut client) = Client::connect(&database_url(TESTS_DATABASE), NoTls) {
            let _ = client.batch_execute(&format!("DROP SCHEMA {} CASCADE", self.name));
        }
    }
}

/// A database of its own on the tests' server, for a deployment under Spin. Dropped with it
/// (its sessions ended first).
pub struct PostgresDatabase {
    name: String,
}

impl Default for PostgresDatabase {
    fn default() -> Self {
        Self::new()
    }
}

impl PostgresDatabase {
    /// A new, empty database.
    pub fn new() -> Self {
        let name = unique_name("deployment");
        create_database_if_missing(&name);
        Self { name }
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its URL.
    pub fn url(&self) -> String {
        database_url(&self.name)
    }

    /// The one integer `sql` answers (a count, a version): a look the API does not give.
    pub fn integer(&self, sql: &str) -> i64 {
        connect(&self.url())
            .query_one(sql, &[])
            .and_then(|row| row.try_get(0))
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}

impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        if let Ok(mut client) = Client::connect(&postgres_url(), NoTls) {
            let _ = client.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

fn create_database_if_missing(name: &str) {
    let mut admin = connect(&postgres_url());
    let exists = admin
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .unwrap_or_else(|e| panic!("reading the databases: {e}"))
        .is_some();
    if exists {
        return;
    }
    // C collation: text sorts by code point, as in SQLite (the schema says so per column too).
    if let Err(e) = admin.batch_execute(&format!(
        "CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'"
    )) {
        // Another test process created it meanwhile.
        let raced = e.code().map(|c| c.code()) == Some("42P04");
        assert!(raced, "creating database {name}: {e}");
    }
}
