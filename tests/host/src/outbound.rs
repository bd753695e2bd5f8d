//! Outbound HTTP (`wasi:http/outgoing-handler`) limited to the component's `allowed_outbound_hosts`, with
//! Spin's syntax: `scheme://host[:port]`, `*` for any scheme or host or port, `*.domain` for subdomains,
//! `a..b` port ranges (end exclusive), the scheme's well-known port when none is given, and `{{ var }}`
//! templates expanded from application variables. A request to any other host fails with
//! `HttpRequestDenied` before a connection is attempted, as in Spin.
use anyhow::{Context, Result, bail, ensure};
use http_body_util::BodyExt;
use std::ops::Range;
use std::sync::Arc;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AllowedHost {
    scheme: Option<String>,
    host: HostPattern,
    ports: PortPattern,
}

#[derive(Debug, Clone, PartialEq)]
enum HostPattern {
    Any,
    /// `*.example.com`, stored as `.example.com`.
    Subdomain(String),
    Exact(String),
}

#[derive(Debug, Clone, PartialEq)]
enum PortPattern {
    Any,
    Port(u16),
    Range(Range<u16>),
}

fn well_known_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        "postgres" => Some(5432),
        "mysql" => Some(3306),
        "redis" => Some(6379),
        "mqtt" => Some(1883),
        _ => None,
    }
}

impl AllowedHost {
    /// Parses one (already template-expanded) `allowed_outbound_hosts` entry.
    pub fn parse(entry: &str) -> Result<Self> {
        let entry = entry.trim();
        let Some((scheme, rest)) = entry.split_once("://") else {
            bail!("{entry:?} has no scheme (e.g. 'http://' or '*://')");
        };
        let (host, port) = rest.rsplit_once(':').unwrap_or((rest, ""));
        let port = match port.split_once('/') {
            Some((_, path)) if !path.is_empty() => bail!("{entry:?} has a path"),
            Some((port, _)) => port,
            None => port,
        };
        let host = host.trim().trim_end_matches('/');
        ensure!(
            !host.contains('/'),
            "{entry:?}: hosts must not contain paths (CIDR ranges are not supported here)"
        );
        if host == "self" || host == "self.alt" || host.ends_with(".spin.internal") {
            bail!("{entry:?}: service chaining is not supported by the test host");
        }
        let scheme = match scheme {
            "*" => None,
            s if s.chars().all(|c| c.is_ascii_alphabetic()) => Some(s.to_owned()),
            s => bail!("scheme {s:?} contains a non-alphabetic character"),
        };
        let host = if host == "*" {
            HostPattern::Any
        } else if let Some(domain) = host.strip_prefix("*.") {
            ensure!(
                !domain.contains('*'),
                "{entry:?}: wildcards are allowed only as prefixes"
            );
            HostPattern::Subdomain(format!(".{domain}"))
        } else {
            ensure!(
                !host.contains('*'),
                "{entry:?}: wildcards are allowed only as subdomains"
            );
            HostPattern::Exact(host.to_owned())
        };
        let ports = match port {
            "" => {
                let scheme = scheme.as_deref().unwrap_or("*");
                PortPattern::Port(well_known_port(scheme).with_context(|| {
                    format!("{entry:?}: no port and scheme {scheme:?} has no default port")
                })?)
            }
            "*" => PortPattern::Any,
            range => match range.split_once("..") {
                Some((start, end)) => PortPattern::Range(
                    start
                        .parse()
                        .with_context(|| format!("{entry:?}: bad port range"))?
                        ..end
                            .parse()
                            .with_context(|| format!("{entry:?}: bad port range"))?,
                ),
                None => PortPattern::Port(
                    range
                        .parse()
                        .with_context(|| format!("{entry:?}: bad port"))?,
                ),
            },
        };
        Ok(Self {
            scheme,
            host,
            ports,
        })
    }

    fn allows(&self, scheme: &str, host: &str, port: Option<u16>) -> bool {
        let scheme_ok = self.scheme.as_deref().is_none_or(|s| s == scheme);
        let host_ok = match &self.host {
            HostPattern::Any => true,
            HostPattern::Subdomain(suffix) => host.ends_with(suffix.as_str()),
            HostPattern::Exact(exact) => exact == host,
        };
        let port_ok = match &self.ports {
            PortPattern::Any => true,
            pattern => match port.or_else(|| well_known_port(scheme)) {
                Some(port) => match pattern {
                    PortPattern::Port(p) => *p == port,
                    PortPattern::Range(r) => r.contains(&port),
                    PortPattern::Any => true,
                },
                None => false,
            },
        };
        scheme_ok && host_ok && port_ok
    }
}

/// Whether any entry allows a request to `uri` (relative URIs would be service chaining: denied).
pub(crate) fn is_allowed(allowed: &[AllowedHost], uri: &http::Uri) -> bool {
    let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
        return false;
    };
    // `http::Uri` keeps the brackets of an IPv6 literal; allow lists are written without them.
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    allowed
        .iter()
        .any(|a| a.allows(scheme, host, authority.port_u16()))
}

/// The `wasi:http` hooks of one instance: the allow list check in front of the default client.
pub(crate) struct OutboundHooks {
    pub allowed: Arc<Vec<AllowedHost>>,
}

type ResponseFuture = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), Error>> + Send>,
                ),
                Error,
            >,
        > + Send,
>;

impl WasiHttpHooks for OutboundHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _response_errors: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> ResponseFuture {
        if !is_allowed(&self.allowed, request.uri()) {
            return Box::new(async { Err(Error::HttpRequestDenied) });
        }
        Box::new(async move {
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((
                response.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn Future<Output = Result<(), Error>> + Send>,
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(entries: &[&str], url: &str) -> bool {
        let parsed: Vec<AllowedHost> = entries
            .iter()
            .map(|e| AllowedHost::parse(e).unwrap())
            .collect();
        is_allowed(&parsed, &url.parse().unwrap())
    }

    #[test]
    fn hosts_ports_and_schemes_follow_spin() {
        assert!(allowed(&["http://127.0.0.1:*"], "http://127.0.0.1:8080/x"));
        assert!(allowed(&["http://127.0.0.1:*"], "http://127.0.0.1/x"));
        assert!(!allowed(&["http://127.0.0.1:*"], "https://127.0.0.1/x"));
        assert!(!allowed(&["http://127.0.0.1:*"], "http://localhost:8080/x"));
        assert!(allowed(&["https://example.com"], "https://example.com/a?b"));
        assert!(allowed(
            &["https://example.com"],
            "https://example.com:443/"
        ));
        assert!(!allowed(
            &["https://example.com"],
            "https://example.com:8443/"
        ));
        assert!(!allowed(
            &["https://example.com"],
            "https://api.example.com/"
        ));
        assert!(allowed(
            &["https://*.example.com"],
            "https://api.example.com/"
        ));
        assert!(allowed(&["*://*:*"], "http://anything:1/"));
        assert!(allowed(&["http://h:8000..8002"], "http://h:8001/"));
        assert!(!allowed(&["http://h:8000..8002"], "http://h:8002/"));
        assert!(!allowed(&[], "http://127.0.0.1/"));
        assert!(!allowed(&["http://127.0.0.1:*"], "/relative"));
    }

    #[test]
    fn malformed_entries_are_rejected() {
        for bad in [
            "127.0.0.1",
            "ftp://h",
            "http://a.*.com",
            "http://h/path",
            "http://self",
            "http://x.spin.internal",
        ] {
            assert!(AllowedHost::parse(bad).is_err(), "{bad}");
        }
    }
}
