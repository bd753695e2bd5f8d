//! The entry points of the Spin components: each component's one line calls one of these, which
//! wire Spin's adapters (`platform::spin`) into the HTTP API, the web console or the scheduled
//! bill run.

use futures::StreamExt;
use spin_sdk::http::{
    Fields, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

use crate::api::{self, Api};
use crate::error::{ApiError, Code};
use crate::platform::spin::{SpinBackend, SpinOutbound, config};
use crate::platform::storage::Storage;

/// Serves one HTTP request of `api` with Spin's stores, variables and clock.
///
/// The body is read as Spin streams it, and no further than the endpoint's limit: a larger one
/// is refused with 413 before it is read whole, before routing and authentication.
pub async fn serve(api: Api, req: IncomingRequest, out: ResponseOutparam) {
    let response = match read(req, api::body_limit).await {
        Ok(req) => match config() {
            Ok(config) => {
                let storage = Storage::new(SpinBackend::new(&config.database));
                api::handle(
                    api,
                    req,
                    &storage,
                    &SpinOutbound,
                    &config,
                    chrono::Utc::now(),
                )
            }
            Err(e) => api::problem(&e),
        },
        Err(refusal) => api::problem(&refusal),
    };
    send(out, response);
}

/// Serves one request of the web console with Spin's stores, variables and clock, its body
/// bounded as the API's are.
pub async fn serve_console(req: IncomingRequest, out: ResponseOutparam) {
    let response = match read(req, crate::console::body_limit).await {
        Ok(req) => match config() {
            Ok(config) => {
                let storage = Storage::new(SpinBackend::new(&config.database));
                crate::console::handle(req, &storage, &SpinOutbound, &config, chrono::Utc::now())
            }
            Err(e) => api::problem(&e),
        },
        Err(refusal) => api::problem(&refusal),
    };
    send(out, response);
}

/// The request as a handler takes it, its body read up to `limit`'s for its method and path.
async fn read(
    req: IncomingRequest,
    limit: fn(&http::Method, &str) -> usize,
) -> Result<http::Request<Vec<u8>>, ApiError> {
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
        return Err(api::too_large(limit));
    }
    let mut body = Vec::with_capacity(declared.unwrap_or(0));
    let mut stream = req.into_body_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::new(
                Code::InvalidValue,
                format!("the body could not be read: {e:?}"),
            )
        })?;
        if body.len() + chunk.len() > limit {
            return Err(api::too_large(limit));
        }
        body.extend(chunk);
    }
    builder.body(body).map_err(|_| {
        ApiError::new(
            Code::InvalidValue,
            "the request's target or headers are malformed",
        )
    })
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
/// head; the rest follows at once.
fn send(out: ResponseOutparam, response: http::Response<Vec<u8>>) {
    let (parts, body) = response.into_parts();
    let mut headers: Vec<(String, Vec<u8>)> = parts
        .headers
        .iter()
        .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
        .collect();
    headers.push((
        "content-length".to_owned(),
        body.len().to_string().into_bytes(),
    ));
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
    for chunk in body[early..].chunks(WRITE_CHUNK) {
        if stream.blocking_write_and_flush(chunk).is_err() {
            break;
        }
    }
    drop(stream);
    let _ = OutgoingBody::finish(outgoing_body, None);
}

/// The `billing` cron component's run ([`crate::settlement::scheduled_run`]) with the event's
/// timestamp as "now"; its report as JSON.
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
    Ok(report.to_string())
}
