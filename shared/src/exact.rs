//! Exact quantities and amounts: non-negative fractions, so that no amount is ever computed from
//! a rounded quantity (docs/RULES.md R11.14).
//!
//! A quantity in its price unit is what was reported over how many of the reported unit make one
//! price unit: 1,200 running seconds are `1200/3600` = `1/3` of an hour, exactly, where a decimal
//! division would have stopped at 28 digits (`0.3333…3`, which priced at 3.00 an hour is
//! `0.9999…9`, truncated to 0.99). Every product — a quantity by a unit price, a resource's fee
//! by its running time — is taken of the fractions, and only the line's final amount is
//! truncated to cents. A fraction is shown as a decimal of at most [`SHOWN_DECIMALS`] places,
//! with the fraction itself beside it when the decimal is not the whole value.
//!
//! Numerator and denominator are `i128`s kept in lowest terms; an operation whose result does
//! not fit is `None` (an amount nobody can be billed), never a rounded value.

use std::cmp::Ordering;
use std::fmt;

use rust_decimal::Decimal;

/// Decimal places a quantity or an exact amount is shown with, at most.
pub(crate) const SHOWN_DECIMALS: u32 = 6;

/// A non-negative fraction `num / den`, in lowest terms (`den > 0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Exact {
    num: i128,
    den: i128,
}

fn gcd(mut a: i128, mut b: i128) -> i128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.abs()
}

fn pow10(exponent: u32) -> Option<i128> {
    10i128.checked_pow(exponent)
}

impl Exact {
    pub(crate) const ZERO: Exact = Exact { num: 0, den: 1 };

    /// `num / den` in lowest terms; `None` for a negative value or a zero denominator.
    fn new(num: i128, den: i128) -> Option<Self> {
        if den <= 0 || num < 0 {
            return None;
        }
        let g = gcd(num, den).max(1);
        Some(Self {
            num: num / g,
            den: den / g,
        })
    }

    /// A non-negative decimal, exactly; `None` for a negative one.
    pub(crate) fn from_decimal(d: Decimal) -> Option<Self> {
        Self::new(d.mantissa(), pow10(d.scale())?)
    }

    /// `reported / per`: a quantity reported in a base unit, of which `per` make one price unit.
    pub(crate) fn ratio(reported: Decimal, per: u32) -> Option<Self> {
        Self::from_decimal(reported)?.checked_div_int(i128::from(per))
    }

    /// A whole number.
    pub(crate) fn whole(n: i64) -> Option<Self> {
        Self::new(i128::from(n), 1)
    }

    fn checked_div_int(self, d: i128) -> Option<Self> {
        let g = gcd(self.num, d).max(1);
        Self::new(self.num / g, self.den.checked_mul(d / g)?)
    }

    pub(crate) fn checked_mul(self, other: Exact) -> Option<Self> {
        // Cross-reduced first, so that the products stay as small as the result.
        let (a, b) = (
            gcd(self.num, other.den).max(1),
            gcd(other.num, self.den).max(1),
        );
        Self::new(
            (self.num / a).checked_mul(other.num / b)?,
            (self.den / b).checked_mul(other.den / a)?,
        )
    }

    pub(crate) fn checked_add(self, other: Exact) -> Option<Self> {
        let g = gcd(self.den, other.den).max(1);
        let (left, right) = (other.den / g, self.den / g);
        Self::new(
            self.num
                .checked_mul(left)?
                .checked_add(other.num.checked_mul(right)?)?,
            self.den.checked_mul(left)?,
        )
    }

    /// `self − other`, or `None` when that would be negative.
    pub(crate) fn checked_sub(self, other: Exact) -> Option<Self> {
        let g = gcd(self.den, other.den).max(1);
        let (left, right) = (other.den / g, self.den / g);
        Self::new(
            self.num
                .checked_mul(left)?
                .checked_sub(other.num.checked_mul(right)?)?,
            self.den.checked_mul(left)?,
        )
    }

    /// Truncated toward zero to cents, with exactly two decimals (`"0.50"`).
    pub(crate) fn trunc_cents(self) -> Option<Decimal> {
        let (whole, rest) = (self.num / self.den, self.num % self.den);
        let cents = whole
            .checked_mul(100)?
            .checked_add(rest.checked_mul(100)? / self.den)?;
        Decimal::try_from_i128_with_scale(cents, 2).ok()
    }

    /// The decimal shown for it: the value itself when it has at most [`SHOWN_DECIMALS`]
    /// places, else the value truncated to that many (and [`Exact::is_shown_exactly`] false).
    pub(crate) fn shown(self) -> Decimal {
        let scale = pow10(SHOWN_DECIMALS).unwrap_or(1);
        let (whole, rest) = (self.num / self.den, self.num % self.den);
        whole
            .checked_mul(scale)
            .zip(rest.checked_mul(scale))
            .and_then(|(w, r)| w.checked_add(r / self.den))
            .and_then(|m| Decimal::try_from_i128_with_scale(m, SHOWN_DECIMALS).ok())
            .map_or(Decimal::MAX, |d| d.normalize())
    }

    /// Whether [`Exact::shown`] is the whole value: its denominator divides 10^6.
    pub(crate) fn is_shown_exactly(self) -> bool {
        pow10(SHOWN_DECIMALS).is_some_and(|scale| scale % self.den == 0)
    }

    /// The fraction, for showing beside a decimal that is not the whole value (`"1/3"`).
    pub(crate) fn fraction(self) -> Option<String> {
        (!self.is_shown_exactly()).then(|| self.to_string())
    }

    /// Reads a fraction (`"1/3"`) or a decimal (`"0.5"`), as [`Exact::fraction`] and decimals
    /// write them.
    #[cfg(test)]
    pub(crate) fn parse(text: &str) -> Option<Self> {
        match text.split_once('/') {
            Some((num, den)) => Self::new(num.parse().ok()?, den.parse().ok()?),
            None => Self::from_decimal(text.parse().ok()?),
        }
    }
}

impl Ord for Exact {
    /// Compared exactly without multiplying out (which could overflow): by whole parts, then by
    /// the remainders' reciprocals, as a continued fraction.
    fn cmp(&self, other: &Self) -> Ordering {
        let (mut a, mut b, mut c, mut d) = (self.num, self.den, other.num, other.den);
        loop {
            let (ra, rc) = (a % b, c % d);
            match (a / b).cmp(&(c / d)) {
                Ordering::Equal => match (ra == 0, rc == 0) {
                    (true, true) => return Ordering::Equal,
                    (true, false) => return Ordering::Less,
                    (false, true) => return Ordering::Greater,
                    // ra/b < rc/d exactly when d/rc < b/ra.
                    (false, false) => (a, b, c, d) = (d, rc, b, ra),
                },
                unequal => return unequal,
            }
        }
    }
}

impl PartialOrd for Exact {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Exact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.den == 1 {
            write!(f, "{}", self.num)
        } else {
            write!(f, "{}/{}", self.num, self.den)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use proptest::prelude::*;

    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn x(s: &str) -> Exact {
        Exact::parse(s).unwrap()
    }

    #[test]
    fn a_third_of_an_hour_at_three_an_hour_is_one_exactly() {
        let third = Exact::ratio(d("1200"), 3_600).unwrap();
        assert_eq!(third, x("1/3"));
        assert_eq!(third.shown().to_string(), "0.333333");
        assert_eq!(third.fraction().as_deref(), Some("1/3"));
        let amount = third.checked_mul(x("3.00")).unwrap();
        assert_eq!(amount, x("1"));
        assert_eq!(amount.trunc_cents().unwrap().to_string(), "1.00");
        assert_eq!(amount.fraction(), None);
    }

    #[test]
    fn shown_decimals_are_exact_up_to_six_places_and_truncated_beyond() {
        assert_eq!(x("0.5").shown().to_string(), "0.5");
        assert_eq!(x("0.5").fraction(), None);
        assert_eq!(x("2/3").shown().to_string(), "0.666666");
        // A terminating decimal of more than six places is shown with its fraction.
        let byte = Exact::ratio(d("1"), 1_048_576).unwrap();
        assert_eq!(byte.shown().to_string(), "0");
        assert_eq!(byte.fraction().as_deref(), Some("1/1048576"));
        assert_eq!(x("7").shown().to_string(), "7");
        assert_eq!(x("0.000001").fraction(), None);
    }

    #[test]
    fn cents_are_truncated_never_rounded() {
        assert_eq!(x("0.129").trunc_cents().unwrap().to_string(), "0.12");
        assert_eq!(x("3599/3600").trunc_cents().unwrap().to_string(), "0.99");
        assert_eq!(Exact::ZERO.trunc_cents().unwrap().to_string(), "0.00");
    }

    #[test]
    fn negative_values_and_overflow_are_refused() {
        assert_eq!(Exact::from_decimal(d("-1")), None);
        assert_eq!(x("1").checked_sub(x("2")), None);
        let huge = Exact::whole(i64::MAX).unwrap();
        let product = huge.checked_mul(huge).and_then(|h| h.checked_mul(huge));
        assert_eq!(product, None);
        assert_eq!(Exact::parse("1/0"), None);
    }

    fn fractions() -> impl Strategy<Value = Exact> {
        (0i128..1_000_000_000_000, 1i128..10_000_000).prop_map(|(n, d)| Exact::new(n, d).unwrap())
    }

    proptest! {
        #[test]
        fn comparison_agrees_with_cross_multiplication(a in fractions(), b in fractions()) {
            prop_assert_eq!(a.cmp(&b), (a.num * b.den).cmp(&(b.num * a.den)));
        }

        #[test]
        fn adding_and_subtracting_are_inverse(a in fractions(), b in fractions()) {
            let sum = a.checked_add(b).unwrap();
            prop_assert_eq!(sum.checked_sub(b).unwrap(), a);
            prop_assert!(sum >= a && sum >= b);
        }

        #[test]
        fn the_shown_decimal_is_the_value_truncated_to_six_places(a in fractions()) {
            let shown = Exact::from_decimal(a.shown()).unwrap();
            prop_assert!(shown <= a);
            prop_assert!(a.checked_sub(shown).unwrap() < x("0.000001"));
            prop_assert_eq!(shown == a, a.fraction().is_none());
            prop_assert!(a.shown().scale() <= SHOWN_DECIMALS);
            prop_assert_eq!(Exact::parse(&a.to_string()), Some(a));
        }
    }
}
