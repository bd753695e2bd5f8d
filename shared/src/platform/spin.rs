//! The Spin adapters of the ports: storage over `spin_sdk::sqlite` or `spin_sdk::pg4` (the
//! `database` variable) and `spin_sdk::key_value` (Spin's own store, or Redis, by the runtime
//! config), outbound HTTP over Spin's, and the configuration from Spin variables.

use std::cell::Cell;

use spin_sdk::{key_value, pg4, sqlite, variables};

use crate::error::ApiError;
use crate::platform::config::{Config, DatabaseConfig};
use crate::platform::outbound::{Outbound, RESPONSE_MAX, TIMEOUT};
use crate::platform::storage::postgres::{self, BEGIN, placeholders, returns_rows, storable};
use crate::platform::storage::{
    Backend, Database, Dialect, KeyValue, Row, StorageError, StorageErrorKind, Value,
    busy_handler_off, wait_while_busy,
};

/// The database and store label every component uses (`spin.toml`: `sqlite_databases` and
/// `key_value_stores` = `["default"]`).
const LABEL: &str = "default";

/// Spin's stores, as the deployment's variables choose them.
pub(crate) struct SpinBackend {
    /// The PostgreSQL URL, or `None` for Spin's SQLite database.
    postgres: Option<String>,
}

impl SpinBackend {
    pub(crate) fn new(database: &DatabaseConfig) -> Self {
        Self {
            postgres: database.postgres_url(),
        }
    }
}

impl Backend for SpinBackend {
    fn open_db(&self) -> Result<Box<dyn Database>, StorageError> {
        if let Some(url) = &self.postgres {
            // A session from the host's pool for this address, held until the request ends.
            let db = SpinPg {
                session: pg4::Connection::open(url).map_err(pg_error)?,
                in_transaction: Cell::new(false),
            };
            postgres::ready_session(&db)?;
            return Ok(Box::new(db));
        }
        let conn = sqlite::Connection::open(LABEL).map_err(sqlite_error)?;
        let db = SpinDb(conn);
        busy_handler_off(&db);
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

/// A PostgreSQL session through Spin's host.
struct SpinPg {
    session: pg4::Connection,
    /// Whether a transaction is open: an error that arrives without its SQLSTATE undid it
    /// ([`postgres::without_sqlstate`]).
    in_transaction: Cell<bool>,
}

impl Database for SpinPg {
    fn execute(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, StorageError> {
        if !returns_rows(sql) {
            return self.written(sql, params).map(|_| Vec::new());
        }
        let statement = placeholders(sql);
        let params = parameters(params);
        let result = self
            .session
            .query(&at_least_one_row(&statement), &params)
            .map_err(|e| match e {
                // An error met while the rows streamed back (spinframework/spin 4.0.2 keeps
                // only its text).
                pg4::PgError::QueryFailed(pg4::QueryError::Text(message)) => {
                    postgres::without_sqlstate(message, self.in_transaction.get())
                }
                other => pg_error(other),
            })
            .map_err(|e| e.in_statement(sql))?;
        let mut rows = Vec::with_capacity(result.rows.len());
        for r in result.rows {
            let mut values = r.into_iter();
            // The marker: NULL on the one row that stands for none.
            if matches!(values.next(), None | Some(pg4::DbValue::DbNull)) {
                break;
            }
            values.next();
            rows.push(Row(values
                .enumerate()
                .map(|(i, v)| pg_value(i, v))
                .collect::<Result<_, _>>()?));
        }
        Ok(rows)
    }

    fn written(&self, sql: &str, params: &[Value]) -> Result<u64, StorageError> {
        self.session
            .execute(&placeholders(sql), &parameters(params))
            .map_err(|e| pg_error(e).in_statement(sql))
    }

    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn begin(&self) -> Result<(), StorageError> {
        self.command(BEGIN)?;
        self.in_transaction.set(true);
        Ok(())
    }

    fn commit(&self) -> Result<(), StorageError> {
        // Ended either way: a failed COMMIT rolls back.
        self.in_transaction.set(false);
        self.command("COMMIT")
    }

    fn rollback(&self) -> Result<(), StorageError> {
        self.in_transaction.set(false);
        self.command("ROLLBACK")
    }
}

impl SpinPg {
    fn command(&self, sql: &str) -> Result<(), StorageError> {
        self.execute(sql, &[]).map(drop)
    }
}

/// The port's parameters as Spin's: text without NUL ([`storable`]).
fn parameters(params: &[Value]) -> Vec<pg4::ParameterValue> {
    params
        .iter()
        .map(|p| match p {
            Value::Null => pg4::ParameterValue::DbNull,
            Value::Integer(n) => pg4::ParameterValue::Int64(*n),
            Value::Real(f) => pg4::ParameterValue::Floating64(*f),
            Value::Text(s) => pg4::ParameterValue::Str(storable(s).into_owned()),
            Value::Blob(b) => pg4::ParameterValue::Binary(b.clone()),
        })
        .collect()
}

/// The statement, answered with one row more than it has when it has none: Spin 4.0.2's host
/// never answers `query` of a statement whose result is empty (spinframework/spin#3671, fixed
/// after 4.0.2), so every result carries a marker and its rows' order in front of them — `1`
/// and the row's number on each row of the statement's, and one row of NULLs when it has none.
/// Any statement fits: PostgreSQL takes a `SELECT` (locking clauses included) and a write with
/// `RETURNING` alike as a common table expression.
fn at_least_one_row(statement: &str) -> String {
    format!(
        "WITH nestmarket_rows AS ({statement})
         SELECT r.* FROM (VALUES (0)) AS nestmarket_one (x)
         LEFT JOIN LATERAL (SELECT 1, row_number() OVER (), q.* FROM nestmarket_rows AS q) AS r
           ON true
         ORDER BY 2"
    )
}

/// A result value as the port's: only the types the schema uses come back (as the native
/// adapter, which the tests run, refuses the others too).
fn pg_value(column: usize, v: pg4::DbValue) -> Result<Value, StorageError> {
    Ok(match v {
        pg4::DbValue::DbNull => Value::Null,
        pg4::DbValue::Int64(n) => Value::Integer(n),
        pg4::DbValue::Int32(n) => Value::Integer(n.into()),
        pg4::DbValue::Int16(n) => Value::Integer(n.into()),
        pg4::DbValue::Int8(n) => Value::Integer(n.into()),
        pg4::DbValue::Boolean(b) => Value::Integer(b.into()),
        pg4::DbValue::Floating64(f) => Value::Real(f),
        pg4::DbValue::Str(s) => Value::Text(s),
        pg4::DbValue::Binary(b) => Value::Blob(b),
        other => {
            return Err(StorageError::other(format!(
                "column {column} came back as {other:?}: cast it to BIGINT or TEXT"
            )));
        }
    })
}

/// A failure of Spin's PostgreSQL API: a database error by its SQLSTATE. A connection that
/// could not be made, or a statement that reached no answer from the server (the host reports
/// no database error then: a broken or closed session), is the database out of reach. (Through
/// Spin 4.0.2's `query` an error met while the rows stream back arrives as text too: the
/// statements whose errors decide something — writes, locks — run through `execute`
/// ([`Database::written`]), which keeps the SQLSTATE, and `query` reads the rest inside a
/// transaction as undone, [`postgres::without_sqlstate`].)
fn pg_error(e: pg4::PgError) -> StorageError {
    match e {
        pg4::PgError::QueryFailed(pg4::QueryError::DbError(db)) => {
            postgres::error(&db.code, db.message)
        }
        pg4::PgError::ConnectionFailed(message)
        | pg4::PgError::QueryFailed(pg4::QueryError::Text(message)) => {
            postgres::unreachable(message)
        }
        other => StorageError::other(format!("{other:?}")),
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
/// The port's limits hold here: the host is told the timeouts (connect, first byte, between
/// bytes), and the component waits for nothing past its own deadline of [`TIMEOUT`] in all,
/// nor reads past [`RESPONSE_MAX`] bytes.
pub(crate) struct SpinOutbound;

impl Outbound for SpinOutbound {
    fn get_unguarded(&self, url: &str) -> Result<(u16, Vec<u8>), String> {
        exchange(
            wasi::http::types::Method::Get,
            url,
            &[("accept", "application/json")],
            &[],
        )
    }

    fn post_unguarded(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<(u16, Vec<u8>), String> {
        exchange(wasi::http::types::Method::Post, url, headers, body)
    }
}

/// One request through Spin's outbound HTTP and its answer, within [`TIMEOUT`] in all and at
/// most [`RESPONSE_MAX`] bytes of it.
fn exchange(
    method: wasi::http::types::Method,
    url: &str,
    headers: &[(&str, &str)],
    body_bytes: &[u8],
) -> Result<(u16, Vec<u8>), String> {
    use wasi::http::types::{IncomingBody, OutgoingBody};

    let deadline = Deadline::after(TIMEOUT);
    let (request, options) = outgoing(method, url, headers, body_bytes.len())?;
    let body = request
        .body()
        .map_err(|()| "the request has no body".to_owned())?;
    let pending = wasi::http::outgoing_handler::handle(request, Some(options))
        .map_err(|e| format!("{e:?}"))?;
    if !body_bytes.is_empty() {
        let stream = body
            .write()
            .map_err(|()| "the request's body is unwritable".to_owned())?;
        for piece in body_bytes.chunks(4096) {
            stream
                .blocking_write_and_flush(piece)
                .map_err(|e| format!("send: {e:?}"))?;
        }
    }
    let _ = OutgoingBody::finish(body, None);
    let response = loop {
        if let Some(answer) = pending.get() {
            break answer
                .map_err(|()| "the answer was already taken".to_owned())?
                .map_err(|e| format!("{e:?}"))?;
        }
        deadline.wait(&pending.subscribe())?;
    };
    let status = response.status();
    let incoming = response
        .consume()
        .map_err(|()| "the answer has no body".to_owned())?;
    let bytes = read_bounded(&incoming, &deadline)?;
    drop(IncomingBody::finish(incoming));
    Ok((status, bytes))
}

/// When an outbound request gives up: [`TIMEOUT`] after it began.
struct Deadline(u64);

impl Deadline {
    fn after(timeout: std::time::Duration) -> Self {
        let ns = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
        Deadline(wasi::clocks::monotonic_clock::now().saturating_add(ns))
    }

    /// Waits until `ready` can make progress; `Err` once the deadline passed first.
    fn wait(&self, ready: &wasi::io::poll::Pollable) -> Result<(), String> {
        let timer = wasi::clocks::monotonic_clock::subscribe_instant(self.0);
        if wasi::io::poll::poll(&[ready, &timer]).contains(&0) {
            Ok(())
        } else {
            Err(format!("no answer within {} s", TIMEOUT.as_secs()))
        }
    }
}

/// The request's head and the host's timeouts. A body goes with its length, not chunked:
/// receivers need not read chunked requests.
fn outgoing(
    method: wasi::http::types::Method,
    url: &str,
    headers: &[(&str, &str)],
    body_length: usize,
) -> Result<
    (
        wasi::http::types::OutgoingRequest,
        wasi::http::types::RequestOptions,
    ),
    String,
> {
    use wasi::http::types::{Fields, OutgoingRequest, RequestOptions, Scheme};

    let uri: http::Uri = url.parse().map_err(|_| format!("not a URL: {url}"))?;
    let fields = Fields::new();
    let length = body_length.to_string();
    let sized = (body_length > 0).then_some(("content-length", length.as_str()));
    for (name, value) in headers.iter().chain(sized.iter()) {
        fields
            .append(&(*name).to_owned(), &value.as_bytes().to_vec())
            .map_err(|e| format!("header {name}: {e:?}"))?;
    }
    let request = OutgoingRequest::new(fields);
    let scheme = match uri.scheme_str() {
        Some("https") => Scheme::Https,
        _ => Scheme::Http,
    };
    let _ = request.set_method(&method);
    let _ = request.set_scheme(Some(&scheme));
    let _ = request.set_authority(uri.authority().map(|a| a.as_str()));
    let _ = request.set_path_with_query(uri.path_and_query().map(|p| p.as_str()));
    let timeout_ns = u64::try_from(TIMEOUT.as_nanos()).unwrap_or(u64::MAX);
    let options = RequestOptions::new();
    // A host that does not take an option still has the component's own deadline.
    let _ = options.set_connect_timeout(Some(timeout_ns));
    let _ = options.set_first_byte_timeout(Some(timeout_ns));
    let _ = options.set_between_bytes_timeout(Some(timeout_ns));
    Ok((request, options))
}

/// An answer's body, at most [`RESPONSE_MAX`] bytes, read before the deadline.
fn read_bounded(
    incoming: &wasi::http::types::IncomingBody,
    deadline: &Deadline,
) -> Result<Vec<u8>, String> {
    use wasi::io::streams::StreamError;

    let stream = incoming
        .stream()
        .map_err(|()| "the answer's body is unreadable".to_owned())?;
    let mut bytes = Vec::new();
    loop {
        match stream.read(16_384) {
            Ok(chunk) if chunk.is_empty() => deadline.wait(&stream.subscribe())?,
            Ok(chunk) => {
                if bytes.len() + chunk.len() > RESPONSE_MAX {
                    return Err(format!("an answer over {RESPONSE_MAX} bytes"));
                }
                bytes.extend(chunk);
            }
            Err(StreamError::Closed) => return Ok(bytes),
            Err(StreamError::LastOperationFailed(e)) => return Err(e.to_debug_string()),
        }
    }
}

/// The deployment's configuration from the component's Spin variables.
pub fn config() -> Result<Config, ApiError> {
    Config::from_variables(|name| variables::get(name).ok()).map_err(ApiError::internal)
}
