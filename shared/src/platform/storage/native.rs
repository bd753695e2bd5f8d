//! The native adapters, for tests and benchmarks: rusqlite over a database file, or a
//! PostgreSQL database through the `postgres` crate; plus an in-memory key-value store. Each
//! [`NativeBackend::open_db`] opens a new connection, as Spin does per `Connection::open` (a
//! pooled session on PostgreSQL, as Spin's host keeps them), so tests that open several see real
//! locking and races.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rusqlite::types::ValueRef;

use super::postgres::native::Pool;
use super::{
    Backend, Database, Dialect, KeyValue, Row, StorageError, Value, busy_handler_off,
    wait_while_busy,
};

/// Upgrades the database to schema `version` and no further, as the app does on first use: a
/// test of a migration fills a database as an older version left it, then upgrades it.
pub fn migrate_to(db: &dyn Database, version: i64) -> Result<(), StorageError> {
    super::migrations::migrate_to(db, version)
}

/// A database and an in-memory key-value store, for tests and benchmarks.
#[derive(Clone)]
pub struct NativeBackend {
    db: NativeDatabase,
    kv: Arc<Mutex<HashMap<String, Vec<u8>>>>,
}

#[derive(Clone)]
enum NativeDatabase {
    Sqlite(PathBuf),
    Postgres(Arc<Pool>),
}

impl NativeBackend {
    /// A backend over the SQLite file `db_path` (created on first open) with a fresh, empty
    /// key-value store. Clones share both, like the instances of one Spin app.
    pub fn new(db_path: impl Into<PathBuf>) -> Self {
        Self {
            db: NativeDatabase::Sqlite(db_path.into()),
            kv: Arc::default(),
        }
    }

    /// A backend over the PostgreSQL database at `url` (`postgres://user@host:port/db`, which
    /// must exist), with a fresh, empty key-value store. Clones share both.
    pub fn postgres(url: &str) -> Self {
        Self {
            db: NativeDatabase::Postgres(Pool::new(url)),
            kv: Arc::default(),
        }
    }

    /// The SQL the database speaks.
    pub fn dialect(&self) -> Dialect {
        match self.db {
            NativeDatabase::Sqlite(_) => Dialect::Sqlite,
            NativeDatabase::Postgres(_) => Dialect::Postgres,
        }
    }

    /// The number of blobs in the key-value store: lets tests assert a refused upload stored none.
    pub fn kv_len(&self) -> usize {
        self.kv.lock().expect("kv lock").len()
    }
}

impl Backend for NativeBackend {
    fn open_db(&self) -> Result<Box<dyn Database>, StorageError> {
        let path = match &self.db {
            NativeDatabase::Sqlite(path) => path,
            NativeDatabase::Postgres(pool) => return Ok(Box::new(pool.open()?)),
        };
        let db = NativeDb(rusqlite::Connection::open(path).map_err(sqlite_error)?);
        // Locks are waited for by `wait_while_busy`, not SQLite's backing-off handler.
        busy_handler_off(&db);
        Ok(Box::new(db))
    }

    fn open_kv(&self) -> Result<Box<dyn KeyValue>, StorageError> {
        Ok(Box::new(NativeKv(self.kv.clone())))
    }
}

struct NativeDb(rusqlite::Connection);

fn sqlite_error(e: rusqlite::Error) -> StorageError {
    StorageError::from_sqlite_message(e.to_string())
}

impl Database for NativeDb {
    fn execute(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, StorageError> {
        wait_while_busy(|| self.run(sql, params))
    }
}

impl NativeDb {
    fn run(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, StorageError> {
        let mut stmt = self.0.prepare(sql).map_err(sqlite_error)?;
        for (i, p) in params.iter().enumerate() {
            let i = i + 1;
            let bound = match p {
                Value::Null => stmt.raw_bind_parameter(i, rusqlite::types::Null),
                Value::Integer(n) => stmt.raw_bind_parameter(i, n),
                Value::Real(f) => stmt.raw_bind_parameter(i, f),
                Value::Text(s) => stmt.raw_bind_parameter(i, s),
                Value::Blob(b) => stmt.raw_bind_parameter(i, b),
            };
            bound.map_err(sqlite_error)?;
        }
        let columns = stmt.column_count();
        let mut rows = stmt.raw_query();
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(sqlite_error)? {
            let mut values = Vec::with_capacity(columns);
            for c in 0..columns {
                values.push(match row.get_ref(c).map_err(sqlite_error)? {
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(n) => Value::Integer(n),
                    ValueRef::Real(f) => Value::Real(f),
                    ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Blob(b) => Value::Blob(b.to_vec()),
                });
            }
            out.push(Row(values));
        }
        Ok(out)
    }
}

struct NativeKv(Arc<Mutex<HashMap<String, Vec<u8>>>>);

impl NativeKv {
    fn map(&self) -> Result<std::sync::MutexGuard<'_, HashMap<String, Vec<u8>>>, StorageError> {
        self.0
            .lock()
            .map_err(|_| StorageError::other("kv lock poisoned"))
    }
}

impl KeyValue for NativeKv {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.map()?.get(key).cloned())
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), StorageError> {
        self.map()?.insert(key.to_owned(), value.to_vec());
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<(), StorageError> {
        self.map()?.remove(key);
        Ok(())
    }
}
