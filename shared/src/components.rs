//! The entry points of the Spin components: each component's one line calls one of these, which
//! wire Spin's adapters (`platform::spin`) into the HTTP API, the web console or the scheduled
//! bill run.

use futures::StreamExt;
use spin_sdk::http::{
    Fields, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

use crate::api::{self, Api, CsvPages};
use crate::error::{ApiError, Code};
use crate::platform::LargeBody;
use crate::platform::config::{Config, DatabaseConfig};
use crate::platform::spin::{SpinBackend, SpinOutbound, config};
use crate::platform::storage::{Chunks, Storage};

/// Serves one HTTP request of `api` with Spin's stores, variables and clock.
///
/// The body is read as Spin streams it, and no further than the endpoint's limit: a larger one
/// is refused with 413 before it is read whole, before routing and authentication. A body that
/// may be larger than a JSON body (a media file) is read only once its sender may upload it.
pub async fn serve(api: Api, req: IncomingRequest, out: ResponseOutparam) {
    let config = config();
    let storage = spin_storage(&config);
    let response = match &config {
        Ok(config) => {
            let early = |head: &http::request::Parts| {
                api::before_large_body(api, head, &storage, config, chrono::Utc::now())
            };
            match read(req, api::body_limit, early).await {
                Ok(req) => {
                    api::handle(api, req, &storage, &SpinOutbound, config, &chrono::Utc::now)
                }
                Err(mut answer) => {
                    config.secure(&mut answer);
                    answer
                }
            }
        }
        Err(e) => api::problem(e),
    };
    send(out, response, &storage);
    api::after_response(&storage, &SpinOutbound, chrono::Utc::now());
}

/// Serves one request of the web console with Spin's stores, variables and clock, its body
/// bounded as the API's are, and an upload read only from a signed-in browser.
pub async fn serve_console(req: IncomingRequest, out: ResponseOutparam) {
    let config = config();
    let storage = spin_storage(&config);
    let response = match &config {
        Ok(config) => {
            let early = |head: &http::request::Parts| {
                crate::console::before_large_body(head, &storage, config, chrono::Utc::now())
            };
            match read(req, crate::console::body_limit, early).await {
                Ok(req) => {
                    crate::console::handle(req, &storage, &SpinOutbound, config, &chrono::Utc::now)
                }
                Err(mut answer) => {
                    config.secure(&mut answer);
                    answer
                }
            }
        }
        Err(e) => api::problem(e),
    };
    send(out, response, &storage);
    api::after_response(&storage, &SpinOutbound, chrono::Utc::now());
}

/// The stores of one request, as the deployment's variables choose them (Spin's SQLite when
/// they cannot be read: the request is then answered with the configuration's problem).
fn spin_storage(config: &Result<Config, ApiError>) -> Storage {
    let database = config
        .as_ref()
        .map_or(&DatabaseConfig::Sqlite, |c| &c.database);
    Storage::new(SpinBackend::new(database))
}

/// The request as a handler takes it, its body read up to `limit`'s for its method and path; or
/// the answer given without reading it: 413 for a declared length over the limit, or what
/// `early` decides of a body that may be larger than a JSON body (read it, leave it unread, or
/// answer without it). Nothing is allocated from the declared length: the body grows as it
/// arrives.
async fn read(
    req: IncomingRequest,
    limit: fn(&http::Method, &str) -> usize,
    early: impl FnOnce(&http::request::Parts) -> LargeBody,
) -> Result<http::Request<Vec<u8>>, http::Response<Vec<u8>>> {
    let refused = |e: ApiError| api::problem(&e);
    let method = method_of(&req.method());
    let target = req.path_with_query().unwrap_or_else(|| "/".to_owned());
    let limit = limit(&method, target.split('?').next().unwrap_or_default());
    let mut builder = http::Request::builder().method(method).uri(target);
    let mut declared: Option<usize> = None;
    for (name, value) in req.headers().entries() {
        if name.eq_ignore_ascii_case("content-length") {
            declared = std::str::from_utf8(&value)
                .ok()
                .and_then(|v| v.trim().parse().ok());
        }
        builder = builder.header(name, value);
    }
    if declared.is_some_and(|n| n > limit) {
        return Err(refused(api::too_large(limit)));
    }
    let (head, ()) = builder
        .body(())
        .map_err(|_| {
            refused(ApiError::new(
                Code::InvalidValue,
                "the request's target or headers are malformed",
            ))
        })?
        .into_parts();
    let mut body = Vec::new();
    if limit > api::JSON_BODY_MAX && declared.is_none_or(|n| n > api::JSON_BODY_MAX) {
        match early(&head) {
            LargeBody::Read => {}
            LargeBody::Skip => return Ok(http::Request::from_parts(head, body)),
            LargeBody::Refuse(answer) => return Err(*answer),
        }
    }
    let mut stream = req.into_body_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            refused(ApiError::new(
                Code::InvalidValue,
                format!("the body could not be read: {e:?}"),
            ))
        })?;
        if body.len() + chunk.len() > limit {
            return Err(refused(api::too_large(limit)));
        }
        body.extend(chunk);
    }
    Ok(http::Request::from_parts(head, body))
}

fn method_of(method: &Method) -> http::Method {
    match method {
        Method::Get => http::Method::GET,
        Method::Head => http::Method::HEAD,
        Method::Post => http::Method::POST,
        Method::Put => http::Method::PUT,
        Method::Delete => http::Method::DELETE,
        Method::Connect => http::Method::CONNECT,
        Method::Options => http::Method::OPTIONS,
        Method::Trace => http::Method::TRACE,
        Method::Patch => http::Method::PATCH,
        Method::Other(other) => {
            http::Method::from_bytes(other.as_bytes()).unwrap_or(http::Method::OPTIONS)
        }
    }
}

/// Bytes `blocking_write_and_flush` takes at once.
const WRITE_CHUNK: usize = 4096;

/// Hands the response to Spin with its body already written, so that the head and the body
/// leave together. Spin's HTTP listener does not set `TCP_NODELAY`: a head sent on its own
/// waits for the client's delayed ACK (~40 ms on a keep-alive connection) before the body may
/// follow (Nagle). What the body's stream accepts before the response is set goes with the
/// head; the rest follows at once. A body left in the key-value store ([`Chunks`], a medium) is
/// streamed a piece at a time, so a 100 MiB video holds one piece in memory, not the file; the
/// rest of an export ([`CsvPages`]) is read and written a page at a time.
fn send(out: ResponseOutparam, response: http::Response<Vec<u8>>, storage: &Storage) {
    let (parts, body) = response.into_parts();
    let chunks = parts.extensions.get::<Chunks>();
    let pages = parts.extensions.get::<CsvPages>();
    let length = chunks.map_or(body.len() as u64, |c| c.size);
    let mut headers: Vec<(String, Vec<u8>)> = parts
        .headers
        .iter()
        .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
        .collect();
    // An export's length is known only once written: it goes out chunked.
    if pages.is_none() {
        headers.push(("content-length".to_owned(), length.to_string().into_bytes()));
    }
    let Ok(fields) = Fields::from_list(&headers) else {
        eprintln!("internal error: response headers refused by the host");
        return;
    };
    let outgoing = OutgoingResponse::new(fields);
    let _ = outgoing.set_status_code(parts.status.as_u16());
    let Ok(outgoing_body) = outgoing.body() else {
        return;
    };
    let Ok(stream) = outgoing_body.write() else {
        return;
    };
    let early = stream
        .check_write()
        .ok()
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(0)
        .min(body.len());
    if early > 0 && stream.write(&body[..early]).is_ok() {
        let _ = stream.flush();
    }
    out.set(outgoing);
    let write = |bytes: &[u8]| {
        bytes
            .chunks(WRITE_CHUNK)
            .all(|piece| stream.blocking_write_and_flush(piece).is_ok())
    };
    let mut complete = write(&body[early..]);
    for key in chunks.map(|c| c.keys.as_slice()).unwrap_or_default() {
        if !complete {
            break;
        }
        match storage.kv().map(|kv| kv.get(key)) {
            Ok(Ok(Some(piece))) => complete = write(&piece),
            outcome => {
                // The head is gone: the client sees a body shorter than its length.
                eprintln!("internal error: piece {key} of a response: {outcome:?}");
                complete = false;
            }
        }
    }
    if complete && let Some(pages) = pages {
        complete = pages.write_rest(storage, write);
    }
    drop(stream);
    if complete {
        let _ = OutgoingBody::finish(outgoing_body, None);
    }
}

/// The `billing` cron component's run ([`crate::settlement::scheduled_run`]) with the event's
/// timestamp as "now"; its report as JSON (`{"bill_run", "settlement": [{"month",
/// "statements_written", "open"}]}`).
pub fn scheduled_bill_run(timestamp: u64) -> Result<String, String> {
    let config = config().map_err(|e| e.detail)?;
    let storage = Storage::new(SpinBackend::new(&config.database));
    let now = i64::try_from(timestamp)
        .ok()
        .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
        .ok_or_else(|| format!("timestamp {timestamp} is out of range"))?;
    let db = storage.db().map_err(|e| e.detail)?;
    let report =
        crate::settlement::scheduled_run(db, &SpinOutbound, &config, now).map_err(|e| e.detail)?;
    serde_json::to_string(&report).map_err(|e| e.to_string())
}
