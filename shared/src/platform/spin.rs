//! The Spin adapters of the ports: storage over `spin_sdk::sqlite` / `spin_sdk::key_value`,
//! outbound HTTP over Spin's, and the configuration from Spin variables.

use spin_sdk::{key_value, sqlite, variables};

use crate::error::ApiError;
use crate::platform::config::Config;
use crate::platform::outbound::{Outbound, RESPONSE_MAX, TIMEOUT};
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
    use wasi::http::types::{
        Fields, IncomingBody, OutgoingBody, OutgoingRequest, RequestOptions, Scheme,
    };
    use wasi::io::streams::StreamError;

    let timeout_ns = u64::try_from(TIMEOUT.as_nanos()).unwrap_or(u64::MAX);
    let deadline = wasi::clocks::monotonic_clock::now().saturating_add(timeout_ns);
    let late = || format!("no answer within {} s", TIMEOUT.as_secs());
    // Waits until `ready` can make progress; `Err` once the deadline passed first.
    let wait = |ready: &wasi::io::poll::Pollable| {
        let timer = wasi::clocks::monotonic_clock::subscribe_instant(deadline);
        let woken = wasi::io::poll::poll(&[ready, &timer]);
        if woken.contains(&0) {
            Ok(())
        } else {
            Err(late())
        }
    };

    let uri: http::Uri = url.parse().map_err(|_| format!("not a URL: {url}"))?;
    let fields = Fields::new();
    // A body goes with its length, not chunked: receivers need not read chunked requests.
    let length = body_bytes.len().to_string();
    let sized = (!body_bytes.is_empty()).then_some(("content-length", length.as_str()));
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
    let options = RequestOptions::new();
    // A host that does not take an option still has the deadline below.
    let _ = options.set_connect_timeout(Some(timeout_ns));
    let _ = options.set_first_byte_timeout(Some(timeout_ns));
    let _ = options.set_between_bytes_timeout(Some(timeout_ns));
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
        wait(&pending.subscribe())?;
    };
    let status = response.status();
    let incoming = response
        .consume()
        .map_err(|()| "the answer has no body".to_owned())?;
    let mut bytes = Vec::new();
    {
        let stream = incoming
            .stream()
            .map_err(|()| "the answer's body is unreadable".to_owned())?;
        loop {
            match stream.read(16_384) {
                Ok(chunk) if chunk.is_empty() => wait(&stream.subscribe())?,
                Ok(chunk) => {
                    if bytes.len() + chunk.len() > RESPONSE_MAX {
                        return Err(format!("an answer over {RESPONSE_MAX} bytes"));
                    }
                    bytes.extend(chunk);
                }
                Err(StreamError::Closed) => break,
                Err(StreamError::LastOperationFailed(e)) => {
                    return Err(e.to_debug_string());
                }
            }
        }
    }
    drop(IncomingBody::finish(incoming));
    Ok((status, bytes))
}

/// The deployment's configuration from the component's Spin variables.
pub fn config() -> Result<Config, ApiError> {
    Config::from_variables(|name| variables::get(name).ok()).map_err(ApiError::internal)
}
