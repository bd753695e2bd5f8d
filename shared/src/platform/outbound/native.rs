//! A minimal HTTP/1.1 client over `std::net` for `http://` URLs: enough to talk to a local
//! Prometheus-compatible server in tests, with no extra dependency.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use super::Outbound;

/// Plain HTTP/1.1 over `std::net`.
pub struct NativeOutbound;

impl Outbound for NativeOutbound {
    fn get(&self, url: &str) -> Result<(u16, Vec<u8>), String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("only http:// URLs are supported natively: {url}"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let mut stream =
            TcpStream::connect(authority).map_err(|e| format!("connect {authority}: {e}"))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| e.to_string())?;
        write!(stream, "GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nAccept: application/json\r\n\r\n")
            .map_err(|e| format!("send: {e}"))?;
        let mut raw = Vec::new();
        stream
            .read_to_end(&mut raw)
            .map_err(|e| format!("read: {e}"))?;
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
        if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            return Err("chunked responses are not supported by the native client".into());
        }
        Ok((status, body))
    }
}
