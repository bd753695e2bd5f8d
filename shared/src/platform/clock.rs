//! The clock port. "Now" is the real clock, unless the deployment allows the `X-Clock-Now` override
//! (docs/RULES.md §12), in which case every time rule of the request uses the header's instant.

use chrono::{DateTime, Datelike, Utc};
use http::HeaderMap;

use crate::error::{ApiError, ApiResult, Code, FieldError};
use crate::platform::storage::StorageError;

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

/// An instant as the API shows it and the stores keep it: RFC 3339 in whole seconds, UTC
/// (`2026-03-27T08:00:00Z`).
pub(crate) fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// An instant read back from what a store wrote ([`rfc3339`]).
pub(crate) fn stored(text: &str) -> Result<DateTime<Utc>, StorageError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.to_utc())
        .map_err(|e| StorageError::other(format!("a stored instant {text:?}: {e}")))
}

/// An instant a store keeps in Unix seconds.
pub(crate) fn from_unix(seconds: i64) -> Result<DateTime<Utc>, StorageError> {
    DateTime::from_timestamp(seconds, 0)
        .ok_or_else(|| StorageError::other(format!("a stored instant {seconds} out of range")))
}

/// Serde for a domain instant (`#[serde(with = "crate::platform::clock::instant")]`): inside, a
/// `DateTime<Utc>`; on the wire and in stored JSON, [`rfc3339`].
pub(crate) mod instant {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::rfc3339(*t))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        super::stored(&text).map_err(serde::de::Error::custom)
    }

    /// The same for an instant that may not have happened (`null`), as shown (structs read
    /// back from stored JSON hold none).
    pub(crate) mod option {
        use chrono::{DateTime, Utc};
        use serde::Serializer;

        pub(crate) fn serialize<S: Serializer>(
            t: &Option<DateTime<Utc>>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => s.serialize_str(&super::super::rfc3339(*t)),
                None => s.serialize_none(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::Timelike;

    use super::*;

    fn headers(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(CLOCK_HEADER, v.parse().unwrap());
        h
    }

    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Dated {
        #[serde(with = "instant")]
        at: DateTime<Utc>,
    }

    #[derive(serde::Serialize)]
    struct Ended {
        #[serde(with = "instant::option")]
        until: Option<DateTime<Utc>>,
    }

    #[test]
    fn an_instant_is_shown_in_whole_seconds_and_read_back() {
        let at = DateTime::parse_from_rfc3339("2026-03-27T08:00:00.750+08:00")
            .unwrap()
            .to_utc();
        let json = serde_json::to_value(Dated { at }).unwrap();
        assert_eq!(json, serde_json::json!({"at": "2026-03-27T00:00:00Z"}));
        let back: Dated = serde_json::from_value(json).unwrap();
        assert_eq!(back.at, at.with_nanosecond(0).unwrap());
        for (until, shown) in [
            (None, serde_json::Value::Null),
            (Some(at), "2026-03-27T00:00:00Z".into()),
        ] {
            assert_eq!(
                serde_json::to_value(Ended { until }).unwrap()["until"],
                shown
            );
        }
        assert!(stored("yesterday").is_err());
        assert_eq!(from_unix(0).unwrap(), DateTime::UNIX_EPOCH);
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
