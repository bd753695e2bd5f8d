//! How the console writes times, money and statuses for people.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use crate::money::Cents;

/// An instant as `2026-03-27 08:00 UTC`.
pub(crate) fn time(at: &DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// Unix seconds as `2026-03-27 08:00:00 UTC`.
pub(crate) fn unix_time(seconds: i64) -> String {
    DateTime::from_timestamp(seconds, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| seconds.to_string())
}

/// An amount of money: `104.00 CNY`.
pub(crate) fn money(amount: Cents, currency: &str) -> String {
    format!("{} {currency}", amount.to_decimal())
}

/// A fraction as a percentage: `0.15` → `15%`, `0.123456` → `12.3456%`.
pub(crate) fn percent(rate: Decimal) -> String {
    format!("{}%", (rate * Decimal::ONE_HUNDRED).normalize())
}

/// A quantity or charge as a bill shows it: its decimal (at most 6 places), and its exact
/// fraction beside it when the decimal is not all of it: `0.333333 (exactly 1/3)`.
pub(crate) fn exactly(shown: Decimal, fraction: Option<&str>) -> String {
    match fraction {
        Some(f) => format!("{} (exactly {f})", shown.normalize()),
        None => shown.normalize().to_string(),
    }
}

/// A snake_case status or name as words: `category_review` → `category review`.
pub(crate) fn words(snake: &str) -> String {
    snake.replace('_', " ")
}

/// A serde enum's name as words.
pub(crate) fn name_of<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => words(&s),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_in_utc() {
        let at = DateTime::parse_from_rfc3339("2026-03-27T16:00:00+08:00").unwrap();
        assert_eq!(time(&at.to_utc()), "2026-03-27 08:00 UTC");
        assert_eq!(unix_time(0), "1970-01-01 00:00:00 UTC");
    }

    #[test]
    fn money_has_its_cents_and_rates_read_as_percentages() {
        assert_eq!(money(Cents(10_400), "CNY"), "104.00 CNY");
        assert_eq!(money(Cents(5), "CNY"), "0.05 CNY");
        assert_eq!(percent(Decimal::new(15, 2)), "15%");
        assert_eq!(percent(Decimal::new(1, 1)), "10%");
        assert_eq!(percent(Decimal::new(123_456, 6)), "12.3456%");
        assert_eq!(percent(Decimal::ZERO), "0%");
    }
}
