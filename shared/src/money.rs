//! Money as balances, ledger entries, bills and statements hold it: whole cents, exact. Prices
//! and quantities are exact fractions (`exact`) until an amount is truncated to cents here.

use rust_decimal::Decimal;
use serde::Serialize;

/// An amount of money in whole cents: what balances, ledger entries, bills and statements hold.
/// Serialized as a decimal string (`"12.34"`), never a float.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Cents(pub i64);

impl Cents {
    /// Exact conversion: refuses amounts with more than 2 decimal places or out of range.
    pub(crate) fn from_decimal(amount: Decimal) -> Option<Self> {
        let cents = amount.checked_mul(Decimal::ONE_HUNDRED)?;
        if cents.fract() != Decimal::ZERO {
            return None;
        }
        i64::try_from(cents).ok().map(Cents)
    }

    pub(crate) fn to_decimal(self) -> Decimal {
        Decimal::new(self.0, 2)
    }
}

impl std::ops::Add for Cents {
    type Output = Cents;
    fn add(self, other: Cents) -> Cents {
        Cents(self.0 + other.0)
    }
}

impl std::ops::Sub for Cents {
    type Output = Cents;
    fn sub(self, other: Cents) -> Cents {
        Cents(self.0 - other.0)
    }
}

impl std::iter::Sum for Cents {
    fn sum<I: Iterator<Item = Cents>>(cents: I) -> Cents {
        Cents(cents.map(|c| c.0).sum())
    }
}

impl Serialize for Cents {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_decimal().to_string())
    }
}

/// The inverse of its serialization (`"12.34"`), for what the database keeps as JSON.
impl<'de> serde::Deserialize<'de> for Cents {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse::<Decimal>()
            .ok()
            .and_then(Cents::from_decimal)
            .ok_or_else(|| serde::de::Error::custom(format!("not an amount of cents: {text}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cents_are_exact() {
        assert_eq!(
            Cents::from_decimal(Decimal::new(1234, 2)),
            Some(Cents(1234))
        );
        assert_eq!(Cents::from_decimal(Decimal::new(12345, 3)), None);
        assert_eq!(
            Cents::from_decimal(Decimal::new(12340, 3)),
            Some(Cents(1234))
        );
        assert_eq!(Cents(-5).to_decimal().to_string(), "-0.05");
    }

    #[test]
    fn cents_round_trip_through_their_decimal_string() {
        let json = serde_json::to_string(&Cents(-1205)).unwrap();
        assert_eq!(json, "\"-12.05\"");
        assert_eq!(serde_json::from_str::<Cents>(&json).unwrap(), Cents(-1205));
        assert!(serde_json::from_str::<Cents>("\"0.001\"").is_err());
    }
}
