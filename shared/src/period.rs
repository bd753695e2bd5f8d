//! Billing periods: usage is summed, closed and billed per period. A product's pricing step
//! chooses the kind (hour or day); this module cuts time into periods of that kind.
//!
//! An hour period is a clock hour computed in UTC whatever the billing time zone: a UTC hour never
//! has 59 or 61 minutes, and in the zones the marketplace serves (whole-hour offsets) it is also
//! the local clock hour. A day period is a calendar day in the
//! billing time zone (`billing_timezone`, by default Asia/Shanghai, where a day starts at 16:00
//! UTC the day before). Days are found through the zone's rules, never as 24 hours from a
//! start, so a day of a zone with daylight saving time lasts 23 or 25 hours when the clocks
//! change.
//!
//! Every period is half-open, `[start, end)`, and consecutive periods tile time: the end of one
//! is the start of the next. That is what makes "each unit of usage is billed in exactly one
//! period" hold.

use chrono::{DateTime, Days, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Utc};
use chrono::{TimeZone, Timelike};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// The period usage is summed over and billed for: a clock hour, or a day in `billing_timezone`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum BillingPeriod {
    Hour,
    Day,
}

impl BillingPeriod {}

/// 1900-01-01T00:00:00Z. [`EARLIEST`]..=[`LATEST`] bounds the instants periods are computed for:
/// metering takes any Unix seconds, and a bogus one must not make the date arithmetic overflow.
/// An instant outside is treated as the nearer bound; the period found for it is long closed or
/// not yet begun, which the metering rules refuse anyway.
const EARLIEST: DateTime<Utc> = DateTime::from_timestamp_nanos(-2_208_988_800_000_000_000);
/// 2200-01-01T00:00:00Z.
const LATEST: DateTime<Utc> = DateTime::from_timestamp_nanos(7_258_118_400_000_000_000);

/// One billing period, `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub(crate) struct Period {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Period {
    /// The period of `kind` that `instant` falls in.
    pub(crate) fn containing(kind: BillingPeriod, tz: Tz, instant: DateTime<Utc>) -> Period {
        let instant = instant.clamp(EARLIEST, LATEST);
        match kind {
            BillingPeriod::Hour => {
                let start = instant
                    - TimeDelta::seconds(instant.timestamp().rem_euclid(3_600))
                    - TimeDelta::nanoseconds(i64::from(instant.nanosecond()));
                Period {
                    start,
                    end: start + TimeDelta::hours(1),
                }
            }
            BillingPeriod::Day => {
                let date = instant.with_timezone(&tz).date_naive();
                let day = day_of(tz, date);
                // Where the clocks fell back across midnight (America/Creston in 1944), a stretch
                // before midnight repeats after the next day began; it belongs to that later day,
                // so that the days still tile.
                if instant >= day.end {
                    day_of(tz, next_date(date))
                } else {
                    day
                }
            }
        }
    }

    /// The period that starts at `start`, for APIs that name a period by its start; `None` when
    /// `start` is not a period boundary (e.g. 00:00 UTC for a Shanghai day).
    pub(crate) fn from_start(kind: BillingPeriod, tz: Tz, start: DateTime<Utc>) -> Option<Period> {
        let period = Period::containing(kind, tz, start);
        (period.start == start).then_some(period)
    }

    /// The period right after this one.
    pub(crate) fn next(&self, kind: BillingPeriod, tz: Tz) -> Period {
        Period::containing(kind, tz, self.end)
    }

    /// The end of the late-data window: usage for this period is accepted until the end of the
    /// next period (hour H until H+2h; day D until the end of D+1 in the zone), and the period is
    /// billed once that has passed.
    pub(crate) fn closes_at(&self, kind: BillingPeriod, tz: Tz) -> DateTime<Utc> {
        self.next(kind, tz).end
    }

    /// Whether the late-data window has ended at `now`, so that the period can be billed and new
    /// usage for it is refused (`PeriodClosed`).
    pub(crate) fn is_closed(&self, kind: BillingPeriod, tz: Tz, now: DateTime<Utc>) -> bool {
        now >= self.closes_at(kind, tz)
    }

    #[cfg(test)]
    pub(crate) fn contains(&self, instant: DateTime<Utc>) -> bool {
        self.start <= instant && instant < self.end
    }
}

/// Whether the metering window `[start, end)` lies inside one period: `end` may equal the end of
/// the period `start` is in. An empty or inverted window lies in no period; check
/// `EndTime > StartTime` first to report that rule by its own name.
pub(crate) fn window_within_one_period(
    kind: BillingPeriod,
    tz: Tz,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> bool {
    start < end && end <= Period::containing(kind, tz, start).end
}

#[cfg(test)]
/// The consecutive periods covering `[from, to)`, oldest first: the first contains `from`, the
/// last contains the instant just before `to`. Bill runs use it to catch up after a gap.
pub(crate) fn periods_between(
    kind: BillingPeriod,
    tz: Tz,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> impl Iterator<Item = Period> {
    let first = (from < to).then(|| Period::containing(kind, tz, from));
    // Past the supported range every instant maps to the same period: stop instead of repeating.
    std::iter::successors(first, move |period| {
        Some(period.next(kind, tz)).filter(|next| next.start > period.start)
    })
    .take_while(move |period| period.start < to)
}

/// The calendar day `date` of `tz`.
fn day_of(tz: Tz, date: NaiveDate) -> Period {
    Period {
        start: day_start(tz, date),
        end: day_start(tz, next_date(date)),
    }
}

fn next_date(date: NaiveDate) -> NaiveDate {
    // Dates come from instants clamped to 1900–2200, far from the end of the calendar.
    date + Days::new(1)
}

/// The first instant of `date` in `tz`: its midnight, the first of two midnights when the clocks
/// fall back over it, or the moment the clocks jump when they skip it (São Paulo started
/// daylight saving time at 00:00).
fn day_start(tz: Tz, date: NaiveDate) -> DateTime<Utc> {
    let midnight = date.and_time(NaiveTime::MIN);
    match tz.from_local_datetime(&midnight) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t.with_timezone(&Utc),
        LocalResult::None => end_of_gap(tz, midnight),
    }
}

/// The first instant whose local time in `tz` is at or after `local`, a local time the clocks
/// skipped. Found by bisection over whole seconds (zones change offsets on whole seconds), within
/// ±26 hours of `local` read as UTC, which brackets every offset a zone has had.
fn end_of_gap(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    let reached = |t: DateTime<Utc>| t.with_timezone(&tz).naive_local() >= local;
    let as_utc = local.and_utc();
    let (mut before, mut after) = (as_utc - TimeDelta::hours(26), as_utc + TimeDelta::hours(26));
    while after - before > TimeDelta::seconds(1) {
        let middle = before + TimeDelta::seconds((after - before).num_seconds() / 2);
        if reached(middle) {
            after = middle;
        } else {
            before = middle;
        }
    }
    after
}

#[cfg(test)]
mod tests {
    use chrono_tz::TZ_VARIANTS;
    use proptest::prelude::*;

    use super::*;

    const HOUR: BillingPeriod = BillingPeriod::Hour;
    const DAY: BillingPeriod = BillingPeriod::Day;
    const SHANGHAI: Tz = Tz::Asia__Shanghai;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn period(start: &str, end: &str) -> Period {
        Period {
            start: t(start),
            end: t(end),
        }
    }

    #[test]
    fn a_shanghai_day_starts_at_16_utc_the_day_before() {
        let day = period("2024-03-26T16:00:00Z", "2024-03-27T16:00:00Z");
        for instant in [
            "2024-03-26T16:00:00Z",
            "2024-03-27T00:00:00Z",
            "2024-03-27T15:59:59.999Z",
        ] {
            assert_eq!(
                Period::containing(DAY, SHANGHAI, t(instant)),
                day,
                "{instant}"
            );
        }
        assert_eq!(
            Period::containing(DAY, SHANGHAI, t("2024-03-26T15:59:59Z")).end,
            day.start
        );
        assert_eq!(
            Period::containing(DAY, SHANGHAI, t("2024-03-27T16:00:00Z")).start,
            day.end
        );
    }

    #[test]
    fn a_utc_day_is_not_a_shanghai_day() {
        let utc_day = Period::containing(DAY, Tz::UTC, t("2024-03-27T10:00:00Z"));
        assert_eq!(
            utc_day,
            period("2024-03-27T00:00:00Z", "2024-03-28T00:00:00Z")
        );
        assert_ne!(
            Period::containing(DAY, SHANGHAI, t("2024-03-27T10:00:00Z")),
            utc_day
        );
    }

    #[test]
    fn an_hour_is_a_clock_hour_whatever_the_zone() {
        let hour = period("2024-03-27T08:00:00Z", "2024-03-27T09:00:00Z");
        for tz in [SHANGHAI, Tz::UTC, Tz::America__New_York] {
            assert_eq!(
                Period::containing(HOUR, tz, t("2024-03-27T08:59:59.5Z")),
                hour
            );
            assert_eq!(
                Period::containing(HOUR, tz, t("2024-03-27T08:00:00Z")),
                hour
            );
        }
    }

    #[test]
    fn windows_must_stay_inside_one_period() {
        let w = |kind, start: &str, end: &str| {
            window_within_one_period(kind, SHANGHAI, t(start), t(end))
        };
        // Inside one hour, and ending exactly at the hour's end.
        assert!(w(HOUR, "2024-03-27T08:10:00Z", "2024-03-27T08:50:00Z"));
        assert!(w(HOUR, "2024-03-27T08:00:00Z", "2024-03-27T09:00:00Z"));
        // Crossing an hour boundary that is not a Shanghai day boundary: fine for a day product.
        assert!(!w(HOUR, "2024-03-27T08:30:00Z", "2024-03-27T09:30:00Z"));
        assert!(w(DAY, "2024-03-27T08:30:00Z", "2024-03-27T09:30:00Z"));
        // Crossing 16:00 UTC crosses both an hour and a Shanghai day.
        assert!(!w(HOUR, "2024-03-27T15:30:00Z", "2024-03-27T16:30:00Z"));
        assert!(!w(DAY, "2024-03-27T15:30:00Z", "2024-03-27T16:30:00Z"));
        // Crossing 00:00 UTC is inside one Shanghai day (08:00 local).
        assert!(w(DAY, "2024-03-26T23:30:00Z", "2024-03-27T00:30:00Z"));
        assert!(!window_within_one_period(
            DAY,
            Tz::UTC,
            t("2024-03-26T23:30:00Z"),
            t("2024-03-27T00:30:00Z")
        ));
        // A whole Shanghai day, ending exactly at its end.
        assert!(w(DAY, "2024-03-26T16:00:00Z", "2024-03-27T16:00:00Z"));
        // Empty and inverted windows are not windows.
        assert!(!w(HOUR, "2024-03-27T08:10:00Z", "2024-03-27T08:10:00Z"));
        assert!(!w(HOUR, "2024-03-27T08:20:00Z", "2024-03-27T08:10:00Z"));
    }

    #[test]
    fn an_hour_closes_two_hours_after_it_starts() {
        let hour = Period::containing(HOUR, SHANGHAI, t("2024-03-27T08:15:00Z"));
        assert_eq!(hour.closes_at(HOUR, SHANGHAI), t("2024-03-27T10:00:00Z"));
        assert!(!hour.is_closed(HOUR, SHANGHAI, t("2024-03-27T09:59:59Z")));
        assert!(hour.is_closed(HOUR, SHANGHAI, t("2024-03-27T10:00:00Z")));
    }

    #[test]
    fn a_day_closes_at_the_end_of_the_next_day_in_the_zone() {
        let day = Period::containing(DAY, SHANGHAI, t("2024-03-27T08:00:00Z"));
        assert_eq!(day.start, t("2024-03-26T16:00:00Z"));
        assert_eq!(day.closes_at(DAY, SHANGHAI), t("2024-03-28T16:00:00Z"));
        assert!(!day.is_closed(DAY, SHANGHAI, t("2024-03-28T15:59:59Z")));
        assert!(day.is_closed(DAY, SHANGHAI, t("2024-03-28T16:00:00Z")));
    }

    #[test]
    fn new_york_days_last_23_or_25_hours_when_the_clocks_change() {
        let ny = Tz::America__New_York;
        let spring = Period::containing(DAY, ny, t("2024-03-10T12:00:00Z"));
        assert_eq!(
            spring,
            period("2024-03-10T05:00:00Z", "2024-03-11T04:00:00Z")
        );
        assert_eq!(spring.end - spring.start, TimeDelta::hours(23));
        let autumn = Period::containing(DAY, ny, t("2024-11-03T12:00:00Z"));
        assert_eq!(
            autumn,
            period("2024-11-03T04:00:00Z", "2024-11-04T05:00:00Z")
        );
        assert_eq!(autumn.end - autumn.start, TimeDelta::hours(25));
        // Closing follows the zone too: the day after the short day is 24 hours.
        assert_eq!(spring.closes_at(DAY, ny), t("2024-03-12T04:00:00Z"));
    }

    #[test]
    fn a_day_whose_midnight_was_skipped_starts_when_the_clocks_jump() {
        // São Paulo started daylight saving time on 2018-11-04 at 00:00, straight to 01:00.
        let sp = Tz::America__Sao_Paulo;
        let day = Period::containing(DAY, sp, t("2018-11-04T12:00:00Z"));
        assert_eq!(day, period("2018-11-04T03:00:00Z", "2018-11-05T02:00:00Z"));
        let before = Period::containing(DAY, sp, t("2018-11-04T02:59:59Z"));
        assert_eq!(
            before,
            period("2018-11-03T03:00:00Z", "2018-11-04T03:00:00Z")
        );
        assert_eq!(Period::from_start(DAY, sp, day.start), Some(day));
    }

    #[test]
    fn a_repeated_stretch_before_midnight_belongs_to_the_later_day() {
        // America/Creston left war time at 1944-01-01 00:00 local, back to 1943-12-31 23:00: the
        // local date goes back a day for an hour, but the days still tile.
        let creston = Tz::America__Creston;
        let repeated = t("1944-01-01T06:15:00Z");
        assert_eq!(
            repeated.with_timezone(&creston).date_naive(),
            NaiveDate::from_ymd_opt(1943, 12, 31).unwrap()
        );
        let day = Period::containing(DAY, creston, repeated);
        assert_eq!(day, period("1944-01-01T06:00:00Z", "1944-01-02T07:00:00Z"));
        let before = Period::containing(DAY, creston, t("1944-01-01T05:59:59Z"));
        assert_eq!(before.end, day.start);
    }

    #[test]
    fn from_start_accepts_only_period_boundaries() {
        assert_eq!(
            Period::from_start(DAY, SHANGHAI, t("2024-03-26T16:00:00Z")),
            Some(period("2024-03-26T16:00:00Z", "2024-03-27T16:00:00Z"))
        );
        assert_eq!(
            Period::from_start(DAY, SHANGHAI, t("2024-03-27T00:00:00Z")),
            None
        );
        assert_eq!(
            Period::from_start(HOUR, SHANGHAI, t("2024-03-27T00:00:00Z")),
            Some(period("2024-03-27T00:00:00Z", "2024-03-27T01:00:00Z"))
        );
        assert_eq!(
            Period::from_start(HOUR, SHANGHAI, t("2024-03-27T00:30:00Z")),
            None
        );
        assert_eq!(
            Period::from_start(HOUR, SHANGHAI, t("2024-03-27T00:00:00.5Z")),
            None
        );
    }

    #[test]
    fn catch_up_covers_a_gap_of_several_days_oldest_first() {
        let days: Vec<_> = periods_between(
            DAY,
            SHANGHAI,
            t("2024-03-26T20:00:00Z"),
            t("2024-03-29T16:00:00Z"),
        )
        .collect();
        assert_eq!(
            days,
            vec![
                period("2024-03-26T16:00:00Z", "2024-03-27T16:00:00Z"),
                period("2024-03-27T16:00:00Z", "2024-03-28T16:00:00Z"),
                period("2024-03-28T16:00:00Z", "2024-03-29T16:00:00Z"),
            ]
        );
        let hours = periods_between(
            HOUR,
            SHANGHAI,
            t("2024-03-26T00:00:00Z"),
            t("2024-03-29T00:00:01Z"),
        );
        assert_eq!(hours.count(), 3 * 24 + 1);
        let from = t("2024-03-26T00:00:00Z");
        assert_eq!(periods_between(HOUR, SHANGHAI, from, from).count(), 0);
    }

    #[test]
    fn bogus_instants_do_not_panic() {
        for kind in [HOUR, DAY] {
            for instant in [DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC] {
                let p = Period::containing(kind, SHANGHAI, instant);
                assert!(p.start < p.end);
                assert!(Period::from_start(kind, SHANGHAI, instant).is_none());
                assert!(p.closes_at(kind, SHANGHAI) >= p.end);
            }
            let all = periods_between(
                kind,
                SHANGHAI,
                t("2199-12-30T00:00:00Z"),
                DateTime::<Utc>::MAX_UTC,
            );
            assert!(all.count() <= 3 * 24);
        }
    }

    fn kinds() -> impl Strategy<Value = BillingPeriod> {
        prop_oneof![Just(HOUR), Just(DAY)]
    }

    /// Any zone chrono-tz knows, so that historical oddities get exercised too.
    fn zones() -> impl Strategy<Value = Tz> {
        (0..TZ_VARIANTS.len()).prop_map(|i| TZ_VARIANTS[i])
    }

    /// 1901 to 2099, to the nanosecond.
    fn instants() -> impl Strategy<Value = DateTime<Utc>> {
        (-2_177_452_800i64..4_102_444_800, 0u32..1_000_000_000)
            .prop_map(|(s, n)| DateTime::from_timestamp(s, n).unwrap())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        #[test]
        fn the_period_containing_an_instant_contains_it(
            kind in kinds(), tz in zones(), instant in instants()
        ) {
            let p = Period::containing(kind, tz, instant);
            prop_assert!(p.contains(instant), "{tz} {p:?} {instant}");
            prop_assert_eq!(Period::containing(kind, tz, p.start), p);
            prop_assert_eq!(Period::from_start(kind, tz, p.start), Some(p));
            let length = p.end - p.start;
            match kind {
                BillingPeriod::Hour => prop_assert_eq!(length, TimeDelta::hours(1)),
                // A day is its zone's calendar day: 24 hours but where its clocks moved, which
                // they once did by 8 hours at a midnight (Antarctica/Casey on 1969-01-01, from
                // -00 to +08: a day of 16 hours).
                BillingPeriod::Day => prop_assert!(
                    length >= TimeDelta::hours(16) && length <= TimeDelta::hours(28),
                    "{tz} {p:?}"
                ),
            }
        }

        #[test]
        fn consecutive_periods_tile_time(
            kind in kinds(), tz in zones(), from in instants(), hours in 1i64..200
        ) {
            let to = from + TimeDelta::hours(hours);
            let periods: Vec<_> = periods_between(kind, tz, from, to).collect();
            prop_assert!(periods[0].contains(from));
            prop_assert!(periods[periods.len() - 1].contains(to - TimeDelta::nanoseconds(1)));
            for pair in periods.windows(2) {
                prop_assert_eq!(pair[0].end, pair[1].start);
                prop_assert!(pair[0].start < pair[0].end);
            }
            let closes = periods[0].closes_at(kind, tz);
            prop_assert_eq!(closes, periods[0].next(kind, tz).end);
            prop_assert!(!periods[0].is_closed(kind, tz, periods[0].end));
        }
    }
}
