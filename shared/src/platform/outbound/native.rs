//! A minimal HTTP/1.1 client over `std::net` for `http://` URLs: enough to talk to a local
//! Prometheus-compatible server in tests, with no extra dependency, under the port's limits
//! ([`TIMEOUT`] in all, [`RESPONSE_MAX`] bytes of answer).

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Instant;

use super::{Outbound, RESPONSE_MAX, TIMEOUT};

/// Plain HTTP/1.1 over `std::net`.
pub struct NativeOutbound;

/// Room for the status line and headers above the body's cap.
const HEAD_MAX: usize = 65_536;

impl Outbound for NativeOutbound {
    fn get_unguarded(&self, url: &str) -> Result<(u16, Vec<u8>), String> {
        exchange("GET", url, &[("Accept", "application/json")], &[])
    }

    fn post_unguarded(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<(u16, Vec<u8>), String> {
        exchange("POST", url, headers, body)
    }
}

/// One request and its answer over a fresh connection, within [`TIMEOUT`] in all.
fn exchange(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<(u16, Vec<u8>), String> {
    let deadline = Instant::now() + TIMEOUT;
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("only http:// URLs are supported natively: {url}"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let address = authority
        .to_socket_addrs()
        .map_err(|e| format!("resolve {authority}: {e}"))?
        .next()
        .ok_or_else(|| format!("resolve {authority}: no address"))?;
    let mut stream = TcpStream::connect_timeout(&address, left(deadline)?)
        .map_err(|e| format!("connect {authority}: {e}"))?;
    stream
        .set_write_timeout(Some(left(deadline)?))
        .map_err(|e| e.to_string())?;
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if method != "GET" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(body))
        .map_err(|e| format!("send: {e}"))?;
    let raw = read_bounded(&mut stream, deadline)?;
    answer(method, &raw)
}

/// What is left of the deadline; `Err` once it passed.
fn left(deadline: Instant) -> Result<std::time::Duration, String> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("no answer within {} s", TIMEOUT.as_secs()))
}

/// The whole answer, head and body, before the deadline and within the bounds.
fn read_bounded(stream: &mut TcpStream, deadline: Instant) -> Result<Vec<u8>, String> {
    let mut raw = Vec::new();
    let mut buffer = [0u8; 16_384];
    loop {
        stream
            .set_read_timeout(Some(left(deadline)?))
            .map_err(|e| e.to_string())?;
        let n = stream.read(&mut buffer).map_err(|e| match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                format!("no answer within {} s", TIMEOUT.as_secs())
            }
            _ => format!("read: {e}"),
        })?;
        if n == 0 {
            return Ok(raw);
        }
        raw.extend_from_slice(&buffer[..n]);
        if raw.len() > RESPONSE_MAX + HEAD_MAX {
            return Err(format!("an answer over {RESPONSE_MAX} bytes"));
        }
    }
}

/// The status and body of a raw answer to `method`.
fn answer(method: &str, raw: &[u8]) -> Result<(u16, Vec<u8>), String> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("malformed HTTP response")?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or("malformed status line")?;
    let body = raw[split + 4..].to_vec();
    if body.len() > RESPONSE_MAX {
        return Err(format!("an answer over {RESPONSE_MAX} bytes"));
    }
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        // A webhook's answer counts by its status alone; a Prometheus answer must be read.
        if method == "POST" {
            return Ok((status, Vec::new()));
        }
        return Err("chunked responses are not supported by the native client".into());
    }
    Ok((status, body))
}
