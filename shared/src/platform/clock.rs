//! The clock port. "Now" is the real clock, unless the deployment allows the `X-Clock-Now` override
//! (docs/RULES.md §12), in which case every time rule of the request uses the header's instant.

use chrono::{DateTime, Datelike, Utc};
use http::HeaderMap;

use crate::error::{ApiError, ApiResult, Code, FieldError};

pub(crate) const CLOCK_HEADER: &str = "x-clock-now";

pub(crate) fn effective_now(
    headers: &HeaderMap,
    allow_override: bool,
    real_now: DateTime<Utc>,
) -> ApiResult<DateTime<Utc>> {
    let Some(value) = headers.get(CLOCK_HEADER) else {
        return Ok(real_now);
    };
    let refused = |message: &str| {
        ApiError::validation(vec![FieldError::new(
            "X-Clock-Now",
            Code::InvalidValue,
            message,
        )])
    };
    // Malformed, it is refused whether it is honoured or not: the header is an instant.
    let at = value
        .to_str()
        .ok()
        .and_then(|v| DateTime::parse_from_rfc3339(v).ok())
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| refused("must be an RFC 3339 timestamp"))?;
    if !allow_override {
        return Ok(real_now);
    }
    // The calendar the marketplace keeps: a settlement month is one of 1970-01 to 2199-12.
    if !(1970..=2199).contains(&at.year()) {
        return Err(refused("must be an instant from 1970 to 2199"));
    }
    Ok(at)
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
    fn a_malformed_header_is_refused_whether_allowed_or_not() {
        for allowed in [true, false] {
            for malformed in ["yesterday", "", "2026-03-27 08:00:00"] {
                let err = effective_now(&headers(malformed), allowed, Utc::now()).unwrap_err();
                assert_eq!(err.code, Code::InvalidValue, "{malformed:?}");
            }
        }
    }

    #[test]
    fn an_honoured_header_is_an_instant_from_1970_to_2199() {
        for outside in [
            "0454-02-19T00:00:00Z",
            "1969-12-31T23:59:59Z",
            "2200-01-01T00:00:00Z",
        ] {
            let err = effective_now(&headers(outside), true, Utc::now()).unwrap_err();
            assert_eq!(err.code, Code::InvalidValue, "{outside}");
            assert!(effective_now(&headers(outside), false, Utc::now()).is_ok());
        }
        assert!(effective_now(&headers("2199-12-31T23:59:59Z"), true, Utc::now()).is_ok());
    }
}
