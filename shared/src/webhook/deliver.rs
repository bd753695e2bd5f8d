//! Sending deliveries: outside any transaction, each claimed before it is sent and recorded
//! after, retried with exponential backoff until an endpoint answers 2xx or 72 hours have passed
//! since the first attempt (made right after the event).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::error::ApiResult;
use crate::platform::outbound::{self, Outbound};
use crate::platform::storage::{Database, transaction};
use crate::webhook::store::{self, Due, Outcome};
use crate::webhook::{DeliveryStatus, payload, sign};

/// How long after its first attempt a delivery is still tried.
pub(crate) const RETRY_WINDOW_SECONDS: i64 = 72 * 3600;
/// The wait after a first failed attempt; it doubles with each failure up to [`MAX_BACKOFF_SECONDS`].
pub(crate) const FIRST_BACKOFF_SECONDS: i64 = 10;
const MAX_BACKOFF_SECONDS: i64 = 3600;
/// While one sender holds a delivery (longer than an attempt may take), nobody else sends it.
const LEASE_SECONDS: i64 = 60;

/// The wait before the next attempt after `failures` failed ones: 10 s, 20 s, 40 s, … 1 h.
pub(crate) fn backoff(failures: i64) -> i64 {
    let doublings = u32::try_from((failures - 1).clamp(0, 20)).unwrap_or(20);
    (FIRST_BACKOFF_SECONDS << doublings).min(MAX_BACKOFF_SECONDS)
}

/// What a pass of webhook deliveries did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Report {
    /// Attempts made.
    pub attempted: usize,
    /// Deliveries answered with a 2xx.
    pub delivered: usize,
    /// Deliveries given up on (72 hours without a 2xx).
    pub failed: usize,
}

/// How much a pass may spend: attempts and wall-clock time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Budget {
    pub attempts: usize,
    pub time: Duration,
}

impl Budget {
    /// The schedule's pass: everything due, within a minute of sending.
    pub(crate) const SCHEDULED: Budget = Budget {
        attempts: 1_000,
        time: Duration::from_secs(60),
    };
    /// Right after a request: its own events, within what a request may take.
    pub(crate) const AFTER_REQUEST: Budget = Budget {
        attempts: 20,
        time: Duration::from_secs(10),
    };
}

/// Sends every pending delivery due by `now` (the longest waiting first) within `budget`. An
/// endpoint that could not be reached is not tried again in this pass: one dead endpoint never
/// spends the pass's time on its whole backlog.
pub(crate) fn deliver_due(
    db: &dyn Database,
    out: &dyn Outbound,
    now: DateTime<Utc>,
    budget: Budget,
) -> ApiResult<Report> {
    let started = Instant::now();
    let mut report = Report::default();
    let mut unreachable: HashSet<String> = HashSet::new();
    let mut key: store::DueKey = (i64::MIN, String::new(), String::new());
    loop {
        let due = store::due(db, now.timestamp(), &key, 100)?;
        let Some(last) = due.last() else {
            return Ok(report);
        };
        key = (
            last.next_attempt_at,
            last.webhook_id.clone(),
            last.event_id.clone(),
        );
        for d in due {
            if report.attempted >= budget.attempts || started.elapsed() >= budget.time {
                return Ok(report);
            }
            if unreachable.contains(&d.webhook_id) {
                continue;
            }
            if !attempt(db, out, &d, now, &mut report)? {
                unreachable.insert(d.webhook_id.clone());
            }
        }
    }
}

/// Sends the never-tried deliveries of `event_ids` (this request's events), within `budget`:
/// the schedule retries whatever fails or is left.
pub(crate) fn deliver_emitted(
    db: &dyn Database,
    out: &dyn Outbound,
    now: DateTime<Utc>,
    event_ids: &[String],
) -> ApiResult<Report> {
    let started = Instant::now();
    let budget = Budget::AFTER_REQUEST;
    let mut report = Report::default();
    let mut unreachable: HashSet<String> = HashSet::new();
    for ids in event_ids.chunks(100) {
        for d in store::fresh(db, ids)? {
            if report.attempted >= budget.attempts || started.elapsed() >= budget.time {
                return Ok(report);
            }
            if unreachable.contains(&d.webhook_id) {
                continue;
            }
            if !attempt(db, out, &d, now, &mut report)? {
                unreachable.insert(d.webhook_id.clone());
            }
        }
    }
    Ok(report)
}

/// One attempt of one delivery, if this sender can claim it: sent, then recorded with what
/// follows. Whether the endpoint answered at all.
fn attempt(
    db: &dyn Database,
    out: &dyn Outbound,
    due: &Due,
    now: DateTime<Utc>,
    report: &mut Report,
) -> ApiResult<bool> {
    let at = now.timestamp();
    if !store::claim(db, due, at + LEASE_SECONDS)? {
        return Ok(true);
    }
    report.attempted += 1;
    let body = payload(&due.event_id, &due.kind, due.created_at, &due.data)?;
    // Signed at the wall clock's time, whatever a test clock says: receivers compare `t` with
    // their own clock.
    let signature = sign::signature(&due.secret, Utc::now().timestamp(), &body);
    let headers = [
        ("content-type", "application/json"),
        ("user-agent", "nestmarket-webhooks/1"),
        (sign::HEADER, signature.as_str()),
    ];
    let sent = outbound::post(out, &due.url, &headers, &body);
    let (status_code, error) = match &sent {
        Ok((status, _)) => (Some(*status), None),
        Err(why) => (None, Some(why.as_str())),
    };
    let delivered = status_code.is_some_and(|s| (200..300).contains(&s));
    let failures = due.attempts + 1;
    let next = at + backoff(failures);
    let then = if delivered {
        report.delivered += 1;
        DeliveryStatus::Delivered
    } else if next > due.first_attempt_at.unwrap_or(at) + RETRY_WINDOW_SECONDS {
        report.failed += 1;
        DeliveryStatus::Failed
    } else {
        DeliveryStatus::Pending
    };
    let outcome = Outcome {
        at,
        status_code,
        error,
        then,
        next_attempt_at: next,
    };
    transaction(db, |db| store::record(db, due, &outcome))?;
    Ok(sent.is_ok())
}

/// An endpoint's URL, parsed: what `allowed_outbound_hosts` patterns are matched against.
pub(crate) struct Target {
    scheme: String,
    host: String,
    port: u16,
}

impl Target {
    /// An `http://` or `https://` URL with a host and no credentials or fragment.
    pub(crate) fn parse(url: &str) -> Option<Self> {
        if url.contains('#') || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return None;
        }
        let uri: http::Uri = url.parse().ok()?;
        let scheme = uri.scheme_str()?.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "http" => 80,
            "https" => 443,
            _ => return None,
        };
        let authority = uri.authority()?;
        if authority.as_str().contains('@') || authority.host().is_empty() {
            return None;
        }
        Some(Self {
            scheme,
            host: authority.host().to_ascii_lowercase(),
            port: authority.port_u16().unwrap_or(default_port),
        })
    }

    /// `scheme://host:port`.
    pub(crate) fn origin(&self) -> String {
        format!("{}://{}:{}", self.scheme, self.host, self.port)
    }

    /// Whether an `allowed_outbound_hosts` entry lets the deployment call this target: its
    /// scheme (`*` any), host (`*` any, `*.example.com` its subdomains, else exactly) and port
    /// (`*` any; absent, the scheme's).
    pub(crate) fn allowed_by(&self, pattern: &str) -> bool {
        let Some((scheme, rest)) = pattern.trim().split_once("://") else {
            return false;
        };
        let rest = rest.trim_end_matches('/');
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || p.chars().all(|c| c.is_ascii_digit()) => {
                (h, Some(p))
            }
            _ => (rest, None),
        };
        let scheme_ok = scheme == "*" || scheme.eq_ignore_ascii_case(&self.scheme);
        let host = host.to_ascii_lowercase();
        let host_ok = host == "*"
            || host == self.host
            || host
                .strip_prefix("*.")
                .is_some_and(|suffix| self.host.ends_with(&format!(".{suffix}")));
        let port_ok = match port {
            Some("*") => true,
            Some(p) => p.parse::<u16>().is_ok_and(|p| p == self.port),
            None => match scheme {
                "http" => self.port == 80,
                "https" => self.port == 443,
                _ => false,
            },
        };
        scheme_ok && host_ok && port_ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_up_to_an_hour() {
        assert_eq!(backoff(1), 10);
        assert_eq!(backoff(2), 20);
        assert_eq!(backoff(3), 40);
        assert_eq!(backoff(9), 2560);
        assert_eq!(backoff(10), 3600);
        assert_eq!(backoff(500), 3600);
        // Within the window, a failing endpoint is tried about eighty times.
        let (mut t, mut n) = (0, 0);
        while t <= RETRY_WINDOW_SECONDS {
            n += 1;
            t += backoff(n);
        }
        assert!((70..90).contains(&n), "{n} attempts");
    }

    #[test]
    fn allowed_outbound_hosts_patterns_match_as_spin_reads_them() {
        let t = |url: &str| Target::parse(url).unwrap();
        assert!(t("https://hooks.example.com/in").allowed_by("https://*"));
        assert!(!t("http://hooks.example.com/in").allowed_by("https://*"));
        assert!(!t("https://hooks.example.com:8443/in").allowed_by("https://*"));
        assert!(t("https://hooks.example.com:8443/in").allowed_by("https://*:*"));
        assert!(t("https://a.example.com/").allowed_by("https://*.example.com"));
        assert!(!t("https://example.com/").allowed_by("https://*.example.com"));
        assert!(!t("https://evil-example.com/").allowed_by("https://*.example.com"));
        assert!(t("http://127.0.0.1:8080/x").allowed_by("http://127.0.0.1:8080"));
        assert!(!t("http://127.0.0.1:8081/x").allowed_by("http://127.0.0.1:8080"));
        assert!(t("http://127.0.0.1:8081/x").allowed_by("*://*:*"));
        assert!(!t("https://x.test/").allowed_by("not a pattern"));
    }

    #[test]
    fn only_plain_http_urls_are_targets() {
        for bad in [
            "ftp://x.test/",
            "https://user:pw@x.test/",
            "https:///path",
            "https://x.test/#frag",
            "x.test/path",
            "https://x.test/a b",
        ] {
            assert!(Target::parse(bad).is_none(), "{bad}");
        }
    }
}
