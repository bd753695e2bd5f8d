//! From pushed metering values to the price unit (docs/RULES.md R9.12).
//!
//! Providers push whole numbers in the metering key's base unit (seconds, bytes, bits, counts);
//! customers are charged per price unit (hours, MB, Mb, …), named by
//! [`crate::sales::price_unit`]. The conversion is an exact fraction ([`Exact`]): 1,800 s are
//! ½ h, 1,200 s are ⅓ h — not 0.3333… — so a bill prices `seconds × unit_price / 3600`, the
//! multiplication first, and is exact to the cent.
//!
//! Convert a period's usage once, after summing its raw values: `to_price_unit(Σ raw)`, never
//! `Σ to_price_unit(raw)`. Raw sums are exact, so the bill does not depend on how the provider
//! split its usage across records.

use std::fmt;

use rust_decimal::Decimal;
use serde_json::Value;

use crate::exact::Exact;

/// Seconds in an hour, for `Period`.
const SECONDS_PER_HOUR: u32 = 3_600;
/// Bytes in a MB and bits in a Mb: "MB" is MiB in this marketplace (docs/RULES.md R1.10), and
/// network traffic follows the same binary multiple.
const BINARY_MEGA: u32 = 1_048_576;

/// How many of the pushed base unit make one price unit of `code`; counts and keys already in
/// their price unit take 1.
fn base_units_per_price_unit(code: &str) -> u32 {
    match code {
        "Period" => SECONDS_PER_HOUR,
        "Storage" | "NetworkIn" | "NetworkOut" => BINARY_MEGA,
        // `PeriodMin` is pushed and priced in minutes, `Memory` in GB; `Frequency`,
        // `Character`, `DailyActiveUser`, `VirtualCpu`, `Unit` and every other code are counts.
        _ => 1,
    }
}

/// A period's summed raw usage of the item `code`, in the item's price unit, exactly; `None`
/// only for a negative total, which no stored usage can sum to.
pub(crate) fn to_price_unit(code: &str, raw_total: Decimal) -> Option<Exact> {
    Exact::ratio(raw_total, base_units_per_price_unit(code))
}

/// Why a pushed `Value` is not a metering value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ValueError {
    Empty,
    Negative,
    /// A fraction, an exponent, a sign, spaces or other characters: usage is pushed as a whole
    /// number of the key's base unit, written with digits only.
    NotAnInteger,
    /// Beyond `u64::MAX`.
    TooLarge,
    /// Neither a JSON number nor a string (`kind` names the JSON type that was sent).
    WrongType {
        kind: &'static str,
    },
}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValueError::Empty => f.write_str("must be a non-negative integer, not empty"),
            ValueError::Negative => f.write_str("must not be negative"),
            ValueError::NotAnInteger => f.write_str(
                "must be a whole number of the key's base unit, written with the digits 0-9 \
                 only (no fraction, exponent, sign or spaces)",
            ),
            ValueError::TooLarge => write!(f, "must be at most {}", u64::MAX),
            ValueError::WrongType { kind } => write!(
                f,
                "must be a non-negative integer, as a JSON number or a string; got {kind}"
            ),
        }
    }
}

impl std::error::Error for ValueError {}

/// Reads `Entities[].Value` as `PushMeteringData` sends it: a non-negative integer, either as a
/// JSON number (`10`) or a string of digits (`"10"`).
pub(crate) fn parse_value(value: &Value) -> Result<u64, ValueError> {
    match value {
        Value::Number(n) => match (n.as_u64(), n.as_f64()) {
            (Some(v), _) => Ok(v),
            (None, Some(f)) if f < 0.0 => Err(ValueError::Negative),
            // serde_json reads integers beyond 64 bits as floats; so does it `1e20`, which is
            // too large all the same.
            (None, Some(f)) if f.fract() == 0.0 && f >= u64::MAX as f64 => {
                Err(ValueError::TooLarge)
            }
            _ => Err(ValueError::NotAnInteger),
        },
        Value::String(s) if s.is_empty() => Err(ValueError::Empty),
        Value::String(s) if s.bytes().all(|b| b.is_ascii_digit()) => {
            // Only digits, so the only way to fail is a number beyond 64 bits.
            s.parse().map_err(|_| ValueError::TooLarge)
        }
        Value::String(s) if s.parse::<f64>().is_ok_and(|f| f < 0.0) => Err(ValueError::Negative),
        Value::String(_) => Err(ValueError::NotAnInteger),
        Value::Null => Err(ValueError::WrongType { kind: "null" }),
        Value::Bool(_) => Err(ValueError::WrongType { kind: "a boolean" }),
        Value::Array(_) => Err(ValueError::WrongType { kind: "an array" }),
        Value::Object(_) => Err(ValueError::WrongType { kind: "an object" }),
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::sales::price_unit;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn convert(code: &str, raw: u64) -> Exact {
        to_price_unit(code, Decimal::from(raw)).unwrap()
    }

    fn x(s: &str) -> Exact {
        Exact::parse(s).unwrap()
    }

    #[test]
    fn period_seconds_become_hours() {
        assert_eq!(convert("Period", 1_800).shown().to_string(), "0.5");
        assert_eq!(convert("Period", 3_600), x("1"));
        assert_eq!(convert("Period", 5_400), x("1.5"));
        // A third of an hour is a third, not 0.3333…: shown to 6 places with the fraction.
        assert_eq!(convert("Period", 1_200), x("1/3"));
        assert_eq!(convert("Period", 1_200).shown(), d("0.333333"));
        assert_eq!(convert("Period", 1), x("1/3600"));
    }

    #[test]
    fn storage_bytes_become_mb() {
        assert_eq!(convert("Storage", 524_288), x("0.5"));
        assert_eq!(convert("Storage", 1_048_576), x("1"));
        // docs/RULES.md R1.10: 7.5 MB is 7,864,320 bytes.
        assert_eq!(convert("Storage", 7_864_320), x("7.5"));
        assert_eq!(convert("Storage", 1), x("1/1048576"));
        // A petabyte of bytes stays exact (a decimal quotient would need 30 digits).
        let petabyte = convert("Storage", 1_000_000_000_000_001);
        assert_eq!(petabyte.to_string(), "1000000000000001/1048576");
    }

    #[test]
    fn network_bits_become_mb() {
        for code in ["NetworkIn", "NetworkOut"] {
            assert_eq!(convert(code, 1_048_576), x("1"), "{code}");
            assert_eq!(convert(code, 3_145_728), x("3"), "{code}");
            assert_eq!(convert(code, 524_288), x("0.5"), "{code}");
        }
    }

    #[test]
    fn keys_pushed_in_their_price_unit_and_counts_are_taken_as_they_are() {
        for code in [
            "PeriodMin",
            "Memory",
            "Frequency",
            "Character",
            "DailyActiveUser",
            "VirtualCpu",
            "Unit",
            "ApiCalls",
        ] {
            assert_eq!(convert(code, 1_800), x("1800"), "{code}");
            assert_eq!(convert(code, 0), Exact::ZERO, "{code}");
        }
    }

    #[test]
    fn conversions_agree_with_the_price_units_shown_to_customers() {
        for (code, unit, one_unit) in [
            ("Period", "hour", 3_600),
            ("PeriodMin", "minute", 1),
            ("Storage", "MB", 1_048_576),
            ("NetworkIn", "Mb", 1_048_576),
            ("NetworkOut", "Mb", 1_048_576),
            ("Memory", "GB", 1),
            ("Frequency", "count", 1),
            ("ApiCalls", "count", 1),
        ] {
            assert_eq!(price_unit(code), unit, "{code}");
            assert_eq!(convert(code, one_unit), x("1"), "{code}");
        }
    }

    #[test]
    fn values_are_non_negative_integers_as_numbers_or_strings() {
        assert_eq!(parse_value(&json!(10)), Ok(10));
        assert_eq!(parse_value(&json!("10")), Ok(10));
        assert_eq!(parse_value(&json!(0)), Ok(0));
        assert_eq!(parse_value(&json!("0")), Ok(0));
        assert_eq!(parse_value(&json!("007")), Ok(7));
        assert_eq!(parse_value(&json!(u64::MAX)), Ok(u64::MAX));
        assert_eq!(parse_value(&json!("18446744073709551615")), Ok(u64::MAX));
    }

    #[test]
    fn refused_values_say_why() {
        let number = |text: &str| serde_json::from_str::<Value>(text).unwrap();
        for (value, error) in [
            (json!(-1), ValueError::Negative),
            (json!("-1"), ValueError::Negative),
            (json!(-1.5), ValueError::Negative),
            (json!("-2.5"), ValueError::Negative),
            (json!(1.5), ValueError::NotAnInteger),
            (json!("1.5"), ValueError::NotAnInteger),
            (number("10.0"), ValueError::NotAnInteger),
            (number("1e3"), ValueError::NotAnInteger),
            (json!("1e3"), ValueError::NotAnInteger),
            (json!("+3"), ValueError::NotAnInteger),
            (json!(" 3"), ValueError::NotAnInteger),
            (json!("3 "), ValueError::NotAnInteger),
            (json!("ten"), ValueError::NotAnInteger),
            (json!("0x10"), ValueError::NotAnInteger),
            (json!("NaN"), ValueError::NotAnInteger),
            (json!(""), ValueError::Empty),
            (json!("18446744073709551616"), ValueError::TooLarge),
            (number("18446744073709551616"), ValueError::TooLarge),
            (number("1e20"), ValueError::TooLarge),
            (json!(null), ValueError::WrongType { kind: "null" }),
            (json!(true), ValueError::WrongType { kind: "a boolean" }),
            (json!([1]), ValueError::WrongType { kind: "an array" }),
            (json!({"v": 1}), ValueError::WrongType { kind: "an object" }),
        ] {
            assert_eq!(parse_value(&value), Err(error), "{value}");
        }
        assert_eq!(
            ValueError::TooLarge.to_string(),
            "must be at most 18446744073709551615"
        );
        assert_eq!(
            ValueError::WrongType { kind: "null" }.to_string(),
            "must be a non-negative integer, as a JSON number or a string; got null"
        );
    }

    fn codes() -> impl Strategy<Value = &'static str> {
        prop_oneof![
            Just("Period"),
            Just("Storage"),
            Just("NetworkIn"),
            Just("NetworkOut"),
            Just("PeriodMin"),
            Just("Frequency"),
        ]
    }

    proptest! {
        #[test]
        fn converting_is_linear_and_monotone(
            code in codes(), a in 0u64..1 << 62, b in 0u64..1 << 62
        ) {
            prop_assert!(convert(code, a.min(b)) <= convert(code, a.max(b)));
            let split = convert(code, a).checked_add(convert(code, b)).unwrap();
            prop_assert_eq!(convert(code, a + b), split);
        }

        #[test]
        fn numbers_and_digit_strings_read_the_same(v in any::<u64>()) {
            prop_assert_eq!(parse_value(&json!(v)), Ok(v));
            prop_assert_eq!(parse_value(&json!(v.to_string())), Ok(v));
        }
    }
}
