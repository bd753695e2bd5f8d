//! The Spin adapters of the ports: storage over `spin_sdk::sqlite` / `spin_sdk::key_value`,
//! outbound HTTP over Spin's, and the configuration from Spin variables.

use spin_sdk::{key_value, sqlite, variables};

use crate::error::ApiError;
use crate::platform::config::Config;
use crate::platform::outbound::Outbound;
use crate::platform::storage::{
    Backend, Database, KeyValue, Row, StorageError, StorageErrorKind, Value, wait_while_busy,
};

/// The database and store label every component uses (`spin.toml`: `sqlite_databases` and
/// `key_value_stores` = `["default"]`).
const LABEL: &str = "default";

pub(crate) struct SpinBackend;

impl Backend for SpinBackend {
    fn open_db(&self) -> Result<Box<dyn Database>, StorageError> {
        let conn = sqlite::Connection::open(LABEL).map_err(sqlite_error)?;
        let db = SpinDb(conn);
        // Concurrent instances each hold their own connection. A lock another holds is waited
        // for by `wait_while_busy`, which polls; SQLite's own handler (whatever the host set)
        // would back off to 100 ms sleeps.
        db.execute("PRAGMA busy_timeout = 0", &[])?;
        Ok(Box::new(db))
    }

    fn open_kv(&self) -> Result<Box<dyn KeyValue>, StorageError> {
        let store = key_value::Store::open(LABEL).map_err(kv_error)?;
        Ok(Box::new(SpinKv(store)))
    }
}

fn sqlite_error(e: sqlite::Error) -> StorageError {
    match e {
        sqlite::Error::AccessDenied => StorageError {
            kind: StorageErrorKind::AccessDenied,
            message: "sqlite database access denied (check sqlite_databases in spin.toml)".into(),
        },
        sqlite::Error::Io(message) => StorageError::from_sqlite_message(message),
        other => StorageError::other(format!("{other:?}")),
    }
}

fn kv_error(e: key_value::Error) -> StorageError {
    match e {
        key_value::Error::AccessDenied => StorageError {
            kind: StorageErrorKind::AccessDenied,
            message: "key-value store access denied (check key_value_stores in spin.toml)".into(),
        },
        other => StorageError::other(format!("{other:?}")),
    }
}

struct SpinDb(sqlite::Connection);

impl Database for SpinDb {
    fn execute(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, StorageError> {
        wait_while_busy(|| self.run(sql, params))
    }
}

impl SpinDb {
    fn run(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, StorageError> {
        let params: Vec<sqlite::Value> = params
            .iter()
            .map(|p| match p {
                Value::Null => sqlite::Value::Null,
                Value::Integer(n) => sqlite::Value::Integer(*n),
                Value::Real(f) => sqlite::Value::Real(*f),
                Value::Text(s) => sqlite::Value::Text(s.clone()),
                Value::Blob(b) => sqlite::Value::Blob(b.clone()),
            })
            .collect();
        let result = self.0.execute(sql, &params).map_err(sqlite_error)?;
        Ok(result
            .rows
            .into_iter()
            .map(|r| {
                Row(r
                    .values
                    .into_iter()
                    .map(|v| match v {
                        sqlite::Value::Null => Value::Null,
                        sqlite::Value::Integer(n) => Value::Integer(n),
                        sqlite::Value::Real(f) => Value::Real(f),
                        sqlite::Value::Text(s) => Value::Text(s),
                        sqlite::Value::Blob(b) => Value::Blob(b),
                    })
                    .collect())
            })
            .collect())
    }
}

struct SpinKv(key_value::Store);

impl KeyValue for SpinKv {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        self.0.get(key).map_err(kv_error)
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), StorageError> {
        self.0.set(key, value).map_err(kv_error)
    }

    fn delete(&self, key: &str) -> Result<(), StorageError> {
        self.0.delete(key).map_err(kv_error)
    }
}

/// Outbound HTTP through Spin: only hosts in the component's `allowed_outbound_hosts` answer.
pub(crate) struct SpinOutbound;

impl Outbound for SpinOutbound {
    fn get(&self, url: &str) -> Result<(u16, Vec<u8>), String> {
        let req = http::Request::get(url)
            .body(Vec::new())
            .map_err(|e| e.to_string())?;
        let resp: http::Response<Vec<u8>> =
            spin_executor::run(spin_sdk::http::send(req)).map_err(|e| e.to_string())?;
        Ok((resp.status().as_u16(), resp.into_body()))
    }
}

/// The deployment's configuration from the component's Spin variables.
pub fn config() -> Result<Config, ApiError> {
    Config::from_variables(|name| variables::get(name).ok()).map_err(ApiError::internal)
}
