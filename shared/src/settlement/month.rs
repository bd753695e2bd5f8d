//! Calendar months, cut in the billing time zone.

use std::fmt;

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

use crate::period::{BillingPeriod, Period};

/// A calendar month, `YYYY-MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Month {
    year: i32,
    month: u32,
}

impl Month {
    /// `YYYY-MM`, from 1970-01 to 2199-12.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let invalid = || "a month as YYYY-MM".to_owned();
        let (year, month) = text.split_once('-').ok_or_else(invalid)?;
        if year.len() != 4 || month.len() != 2 {
            return Err(invalid());
        }
        let (year, month) = (
            year.parse::<i32>().map_err(|_| invalid())?,
            month.parse::<u32>().map_err(|_| invalid())?,
        );
        if !(1970..=2199).contains(&year) || !(1..=12).contains(&month) {
            return Err(invalid());
        }
        Ok(Self { year, month })
    }

    /// The month `instant` falls in, in `tz`.
    pub(crate) fn containing(instant: DateTime<Utc>, tz: Tz) -> Self {
        let local = instant.with_timezone(&tz);
        Self {
            year: local.year(),
            month: local.month(),
        }
    }

    pub(crate) fn previous(self) -> Self {
        match self.month {
            1 => Self {
                year: self.year - 1,
                month: 12,
            },
            m => Self {
                year: self.year,
                month: m - 1,
            },
        }
    }

    pub(crate) fn next(self) -> Self {
        match self.month {
            12 => Self {
                year: self.year + 1,
                month: 1,
            },
            m => Self {
                year: self.year,
                month: m + 1,
            },
        }
    }

    /// Its first instant: the start of its first day in `tz`.
    pub(crate) fn start(self, tz: Tz) -> DateTime<Utc> {
        let noon = NaiveDate::from_ymd_opt(self.year, self.month, 1)
            .and_then(|d| d.and_hms_opt(12, 0, 0))
            .expect("a month of 1970–2199 has a first day");
        let instant = tz
            .from_local_datetime(&noon)
            .earliest()
            .map_or_else(|| noon.and_utc(), |t| t.with_timezone(&Utc));
        Period::containing(BillingPeriod::Day, tz, instant).start
    }

    /// Its end: the first instant of the next month.
    pub(crate) fn end(self, tz: Tz) -> DateTime<Utc> {
        self.next().start(tz)
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

/// `YYYY-MM` on the wire.
impl serde::Serialize for Month {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(t).unwrap().to_utc()
    }

    #[test]
    fn months_are_yyyy_mm() {
        assert_eq!(Month::parse("2026-03").unwrap().to_string(), "2026-03");
        for bad in [
            "2026-3",
            "2026-13",
            "2026-00",
            "26-03",
            "1969-12",
            "2026/03",
            "2026-03-01",
        ] {
            assert!(Month::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_month_is_cut_in_the_billing_time_zone() {
        let shanghai: Tz = "Asia/Shanghai".parse().unwrap();
        let march = Month::parse("2026-03").unwrap();
        assert_eq!(march.start(shanghai), at("2026-02-28T16:00:00Z"));
        assert_eq!(march.end(shanghai), at("2026-03-31T16:00:00Z"));
        assert_eq!(
            Month::containing(at("2026-02-28T16:00:00Z"), shanghai),
            march
        );
        assert_eq!(
            Month::containing(at("2026-02-28T15:59:59Z"), shanghai).to_string(),
            "2026-02"
        );
        assert_eq!(
            Month::parse("2026-01").unwrap().previous().to_string(),
            "2025-12"
        );
        assert_eq!(
            Month::parse("2025-12").unwrap().next().to_string(),
            "2026-01"
        );
    }
}
