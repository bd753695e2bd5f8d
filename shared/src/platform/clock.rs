//! The clock port. "Now" is the real clock, unless the deployment allows the `X-Clock-Now` override
//! (docs/RULES.md §12), in which case every time rule of the request uses the header's instant.

use chrono::{DateTime, Utc};
use http::HeaderMap;

use crate::error::{ApiError, ApiResult, Code, FieldError};

pub(crate) const CLOCK_HEADER: &str = "x-clock-now";

pub(crate) fn effective_now(
    headers: &HeaderMap,
    allow_override: bool,
    real_now: DateTime<Utc>,
) -> ApiResult<DateTime<Utc>> {
    let Some(value) = headers.get(CLOCK_HEADER).filter(|_| allow_override) else {
        return Ok(real_now);
    };
    value
        .to_str()
        .ok()
        .and_then(|v| DateTime::parse_from_rfc3339(v).ok())
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| {
            ApiError::validation(vec![FieldError::new(
                "X-Clock-Now",
                Code::InvalidValue,
                "must be an RFC 3339 timestamp",
            )])
        })
}

pub(crate) fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(CLOCK_HEADER, v.parse().unwrap());
        h
    }

    #[test]
    fn the_header_is_ignored_unless_allowed() {
        let real = Utc::now();
        assert_eq!(
            effective_now(&headers("2020-01-01T00:00:00Z"), false, real).unwrap(),
            real
        );
    }

    #[test]
    fn the_header_sets_now_when_allowed() {
        let now = effective_now(&headers("2020-01-01T08:00:00+08:00"), true, Utc::now()).unwrap();
        assert_eq!(rfc3339(now), "2020-01-01T00:00:00Z");
    }

    #[test]
    fn a_malformed_header_is_refused_when_allowed() {
        let err = effective_now(&headers("yesterday"), true, Utc::now()).unwrap_err();
        assert_eq!(err.code, Code::InvalidValue);
    }
}
