//! [`Money`]: an integer amount of a currency's minor unit, with checked arithmetic.
//!
//! Amounts are `i64` minor units (cents for USD, yen for JPY, fils for BHD): exact, and large
//! enough for any order (about 92 quadrillion USD). Every operation that could overflow or mix
//! currencies returns a [`MoneyError`] instead of wrapping, saturating or panicking.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::currency::Currency;

/// Basis points in a whole: 10 000 bp = 100 %.
pub const BASIS_POINTS_PER_WHOLE: u32 = 10_000;

/// An amount of money: integer minor units of one currency. May be negative (refunds, discounts
/// expressed as adjustments); fields that must not be negative are checked by validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Money {
    /// The amount in the currency's minor unit, e.g. 1234 for 12.34 USD or 1234 for 1234 JPY.
    pub amount_minor: i64,
    /// The ISO 4217 currency.
    pub currency: Currency,
}

/// How to round a result that falls between two minor units. Negative amounts round
/// symmetrically to positive ones (by magnitude), so a refund of a discount mirrors the discount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RoundingMode {
    /// Round to nearest; exact halves go to the even neighbour ("banker's rounding"). Unbiased over
    /// many operations, so the default for taxes and discounts.
    HalfEven,
    /// Round to nearest; exact halves go away from zero (the rounding taught in school).
    HalfUp,
    /// Truncate toward zero: never gives more than the exact amount.
    Down,
}

/// The arithmetic operation that failed, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MoneyOperation {
    /// `checked_add`.
    Add,
    /// `checked_sub`.
    Subtract,
    /// `checked_mul`.
    Multiply,
    /// `percent_of`.
    Percentage,
    /// `checked_neg`.
    Negate,
    /// `checked_sum`.
    Sum,
}

impl fmt::Display for MoneyOperation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Add => "addition",
            Self::Subtract => "subtraction",
            Self::Multiply => "multiplication",
            Self::Percentage => "percentage",
            Self::Negate => "negation",
            Self::Sum => "sum",
        })
    }
}

/// Why a money operation has no result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// The operands are in different currencies; converting is a business decision, not
    /// arithmetic.
    #[error("{operation} of {left} and {right} amounts: currencies differ")]
    CurrencyMismatch {
        /// What was attempted.
        operation: MoneyOperation,
        /// Currency of the left operand (or of the running total).
        left: Currency,
        /// Currency of the right operand.
        right: Currency,
    },
    /// The exact result does not fit in `i64` minor units.
    #[error("{operation} of {left} and {right} overflows the 64-bit minor-unit range")]
    Overflow {
        /// What was attempted.
        operation: MoneyOperation,
        /// The money operand.
        left: Money,
        /// The other operand: minor units for add/subtract/sum, quantity for multiply, basis
        /// points for percentage, 0 for negation.
        right: i64,
    },
}

impl Money {
    /// `amount_minor` minor units of `currency`.
    pub const fn new(amount_minor: i64, currency: Currency) -> Self {
        Self {
            amount_minor,
            currency,
        }
    }

    /// Nothing, in `currency`.
    pub const fn zero(currency: Currency) -> Self {
        Self::new(0, currency)
    }

    /// Whether the amount is below zero.
    pub const fn is_negative(&self) -> bool {
        self.amount_minor < 0
    }

    /// Whether the amount is exactly zero.
    pub const fn is_zero(&self) -> bool {
        self.amount_minor == 0
    }

    /// `self + other`; both must be in the same currency.
    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(MoneyOperation::Add, other)?;
        self.amount_minor
            .checked_add(other.amount_minor)
            .map(|sum| Money::new(sum, self.currency))
            .ok_or(MoneyError::Overflow {
                operation: MoneyOperation::Add,
                left: self,
                right: other.amount_minor,
            })
    }

    /// `self - other`; both must be in the same currency.
    pub fn checked_sub(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(MoneyOperation::Subtract, other)?;
        self.amount_minor
            .checked_sub(other.amount_minor)
            .map(|difference| Money::new(difference, self.currency))
            .ok_or(MoneyError::Overflow {
                operation: MoneyOperation::Subtract,
                left: self,
                right: other.amount_minor,
            })
    }

    /// `self × quantity`, e.g. a line total from a unit price.
    pub fn checked_mul(self, quantity: u32) -> Result<Money, MoneyError> {
        self.amount_minor
            .checked_mul(i64::from(quantity))
            .map(|product| Money::new(product, self.currency))
            .ok_or(MoneyError::Overflow {
                operation: MoneyOperation::Multiply,
                left: self,
                right: i64::from(quantity),
            })
    }

    /// `-self`.
    pub fn checked_neg(self) -> Result<Money, MoneyError> {
        self.amount_minor
            .checked_neg()
            .map(|negated| Money::new(negated, self.currency))
            .ok_or(MoneyError::Overflow {
                operation: MoneyOperation::Negate,
                left: self,
                right: 0,
            })
    }

    /// `basis_points / 10 000` of this amount (1 bp = 0.01 %), rounded to a whole minor unit with
    /// `rounding`. E.g. a 12.5 % discount of 10.01 USD is `percent_of(1250, HalfEven)` = 1.25 USD.
    ///
    /// The product is computed exactly in `i128`, so the only error is a result outside `i64`
    /// (possible only when `basis_points` exceeds 10 000).
    pub fn percent_of(
        self,
        basis_points: u32,
        rounding: RoundingMode,
    ) -> Result<Money, MoneyError> {
        let exact_numerator = i128::from(self.amount_minor) * i128::from(basis_points);
        let rounded = divide_rounded(
            exact_numerator,
            i128::from(BASIS_POINTS_PER_WHOLE),
            rounding,
        );
        i64::try_from(rounded)
            .map(|amount| Money::new(amount, self.currency))
            .map_err(|_| MoneyError::Overflow {
                operation: MoneyOperation::Percentage,
                left: self,
                right: i64::from(basis_points),
            })
    }

    /// The sum of `amounts`, all of which must be in `currency`; `zero(currency)` when empty.
    pub fn checked_sum<I>(currency: Currency, amounts: I) -> Result<Money, MoneyError>
    where
        I: IntoIterator<Item = Money>,
    {
        amounts
            .into_iter()
            .try_fold(Money::zero(currency), |total, amount| {
                if amount.currency != currency {
                    return Err(MoneyError::CurrencyMismatch {
                        operation: MoneyOperation::Sum,
                        left: currency,
                        right: amount.currency,
                    });
                }
                total.checked_add(amount).map_err(|_| MoneyError::Overflow {
                    operation: MoneyOperation::Sum,
                    left: total,
                    right: amount.amount_minor,
                })
            })
    }

    fn same_currency(self, operation: MoneyOperation, other: Money) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch {
                operation,
                left: self.currency,
                right: other.currency,
            })
        }
    }
}

/// `numerator / denominator` (denominator > 0) rounded to an integer with `rounding`.
fn divide_rounded(numerator: i128, denominator: i128, rounding: RoundingMode) -> i128 {
    debug_assert!(denominator > 0);
    // Rust's `/` truncates toward zero and `%` keeps the numerator's sign, so `quotient` is the
    // `Down` result and `away` is the neighbour one step further from zero.
    let quotient = numerator / denominator;
    let remainder = numerator % denominator;
    if remainder == 0 {
        return quotient;
    }
    let away = quotient + numerator.signum();
    // Compare the remainder with half the denominator without dividing (exact for odd ones).
    let twice_remainder = remainder.abs() * 2;
    match rounding {
        RoundingMode::Down => quotient,
        RoundingMode::HalfUp if twice_remainder >= denominator => away,
        RoundingMode::HalfUp => quotient,
        RoundingMode::HalfEven if twice_remainder > denominator => away,
        RoundingMode::HalfEven if twice_remainder == denominator && quotient % 2 != 0 => away,
        RoundingMode::HalfEven => quotient,
    }
}

impl fmt::Display for Money {
    /// `12.34 USD`, `-0.05 EUR`, `1234 JPY`, `1.234 BHD`: the decimal point placed by the
    /// currency's exponent.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.is_negative() { "-" } else { "" };
        // `unsigned_abs` keeps i64::MIN representable.
        let magnitude = self.amount_minor.unsigned_abs();
        let exponent = u32::from(self.currency.minor_unit_exponent());
        if exponent == 0 {
            return write!(f, "{sign}{magnitude} {}", self.currency);
        }
        let scale = 10_u64.pow(exponent);
        let width = exponent as usize;
        write!(
            f,
            "{sign}{}.{:0width$} {}",
            magnitude / scale,
            magnitude % scale,
            self.currency
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn usd(amount_minor: i64) -> Money {
        Money::new(amount_minor, Currency::USD)
    }

    #[test]
    fn display_honours_the_exponent() {
        assert_eq!(usd(1234).to_string(), "12.34 USD");
        assert_eq!(usd(5).to_string(), "0.05 USD");
        assert_eq!(usd(-5).to_string(), "-0.05 USD");
        assert_eq!(usd(0).to_string(), "0.00 USD");
        assert_eq!(Money::new(1234, Currency::JPY).to_string(), "1234 JPY");
        assert_eq!(Money::new(-1234, Currency::JPY).to_string(), "-1234 JPY");
        assert_eq!(Money::new(1234, Currency::BHD).to_string(), "1.234 BHD");
        assert_eq!(Money::new(7, Currency::CLF).to_string(), "0.0007 CLF");
        assert_eq!(usd(i64::MIN).to_string(), "-92233720368547758.08 USD");
    }

    #[test]
    fn add_and_sub_refuse_mixed_currencies() {
        let error = usd(1)
            .checked_add(Money::new(1, Currency::EUR))
            .unwrap_err();
        assert_eq!(
            error,
            MoneyError::CurrencyMismatch {
                operation: MoneyOperation::Add,
                left: Currency::USD,
                right: Currency::EUR
            }
        );
        assert_eq!(
            error.to_string(),
            "addition of USD and EUR amounts: currencies differ"
        );
        assert!(matches!(
            usd(1).checked_sub(Money::new(1, Currency::JPY)),
            Err(MoneyError::CurrencyMismatch {
                operation: MoneyOperation::Subtract,
                ..
            })
        ));
    }

    #[test]
    fn overflow_is_an_error_naming_the_operands() {
        let error = usd(i64::MAX).checked_add(usd(1)).unwrap_err();
        assert_eq!(
            error,
            MoneyError::Overflow {
                operation: MoneyOperation::Add,
                left: usd(i64::MAX),
                right: 1
            }
        );
        assert!(
            error.to_string().contains("92233720368547758.07 USD"),
            "{error}"
        );
        assert!(usd(i64::MIN).checked_sub(usd(1)).is_err());
        assert!(usd(i64::MAX / 2 + 1).checked_mul(2).is_err());
        assert!(usd(i64::MIN).checked_neg().is_err());
        assert!(
            usd(i64::MAX)
                .percent_of(20_000, RoundingMode::Down)
                .is_err()
        );
    }

    #[test]
    fn percent_of_rounds_as_documented() {
        // 10.01 USD × 12.5 % = 125.125 cents.
        assert_eq!(
            usd(1001).percent_of(1250, RoundingMode::HalfEven).unwrap(),
            usd(125)
        );
        assert_eq!(
            usd(1001).percent_of(1250, RoundingMode::HalfUp).unwrap(),
            usd(125)
        );
        assert_eq!(
            usd(1001).percent_of(1250, RoundingMode::Down).unwrap(),
            usd(125)
        );
        // Exact halves: 0.5 and 1.5 and 2.5 cents.
        assert_eq!(
            usd(1).percent_of(5000, RoundingMode::HalfEven).unwrap(),
            usd(0)
        );
        assert_eq!(
            usd(3).percent_of(5000, RoundingMode::HalfEven).unwrap(),
            usd(2)
        );
        assert_eq!(
            usd(5).percent_of(5000, RoundingMode::HalfEven).unwrap(),
            usd(2)
        );
        assert_eq!(
            usd(5).percent_of(5000, RoundingMode::HalfUp).unwrap(),
            usd(3)
        );
        assert_eq!(usd(5).percent_of(5000, RoundingMode::Down).unwrap(), usd(2));
        // Negative amounts mirror positive ones.
        assert_eq!(
            usd(-5).percent_of(5000, RoundingMode::HalfUp).unwrap(),
            usd(-3)
        );
        assert_eq!(
            usd(-5).percent_of(5000, RoundingMode::HalfEven).unwrap(),
            usd(-2)
        );
        assert_eq!(
            usd(-5).percent_of(5000, RoundingMode::Down).unwrap(),
            usd(-2)
        );
        assert_eq!(
            usd(-7).percent_of(5000, RoundingMode::HalfEven).unwrap(),
            usd(-4)
        );
        // Above half rounds away from zero in both nearest modes.
        assert_eq!(
            usd(999).percent_of(10, RoundingMode::HalfEven).unwrap(),
            usd(1)
        );
        assert_eq!(usd(999).percent_of(10, RoundingMode::Down).unwrap(), usd(0));
        // Over 100 % works while the result fits.
        assert_eq!(
            usd(100).percent_of(25_000, RoundingMode::Down).unwrap(),
            usd(250)
        );
        // The full i64 range does not overflow the intermediate.
        assert_eq!(
            usd(i64::MAX)
                .percent_of(10_000, RoundingMode::HalfEven)
                .unwrap(),
            usd(i64::MAX)
        );
    }

    #[test]
    fn sum_checks_every_currency() {
        assert_eq!(Money::checked_sum(Currency::USD, []).unwrap(), usd(0));
        assert_eq!(
            Money::checked_sum(Currency::USD, [usd(1), usd(2)]).unwrap(),
            usd(3)
        );
        assert!(matches!(
            Money::checked_sum(Currency::USD, [usd(1), Money::new(2, Currency::EUR)]),
            Err(MoneyError::CurrencyMismatch {
                operation: MoneyOperation::Sum,
                ..
            })
        ));
        assert!(matches!(
            Money::checked_sum(Currency::USD, [usd(i64::MAX), usd(1)]),
            Err(MoneyError::Overflow {
                operation: MoneyOperation::Sum,
                ..
            })
        ));
    }

    #[test]
    fn serde_shape() {
        let json = serde_json::to_string(&usd(1234)).unwrap();
        assert_eq!(json, r#"{"amount_minor":1234,"currency":"USD"}"#);
        assert_eq!(serde_json::from_str::<Money>(&json).unwrap(), usd(1234));
        assert!(serde_json::from_str::<Money>(r#"{"amount_minor":1.5,"currency":"USD"}"#).is_err());
        assert!(
            serde_json::from_str::<Money>(r#"{"amount_minor":1,"currency":"USD","x":1}"#).is_err()
        );
    }

    fn any_currency() -> impl Strategy<Value = Currency> {
        proptest::sample::select(Currency::all().collect::<Vec<_>>())
    }

    proptest! {
        #[test]
        fn add_then_sub_is_identity(a in any::<i64>(), b in any::<i64>(), currency in any_currency()) {
            let a_money = Money::new(a, currency);
            let b_money = Money::new(b, currency);
            match a_money.checked_add(b_money) {
                Ok(sum) => {
                    prop_assert_eq!(i128::from(sum.amount_minor), i128::from(a) + i128::from(b));
                    prop_assert_eq!(sum.checked_sub(b_money), Ok(a_money));
                }
                Err(error) => {
                    prop_assert!(a.checked_add(b).is_none());
                    let is_overflow = matches!(error, MoneyError::Overflow { .. });
                    prop_assert!(is_overflow);
                }
            }
        }

        #[test]
        fn no_operation_panics(
            a in any::<i64>(),
            b in any::<i64>(),
            quantity in any::<u32>(),
            basis_points in any::<u32>(),
            left in any_currency(),
            right in any_currency(),
        ) {
            let a_money = Money::new(a, left);
            let b_money = Money::new(b, right);
            let _ = a_money.checked_add(b_money);
            let _ = a_money.checked_sub(b_money);
            let _ = a_money.checked_mul(quantity);
            let _ = a_money.checked_neg();
            let _ = Money::checked_sum(left, [a_money, b_money]);
            for rounding in [RoundingMode::HalfEven, RoundingMode::HalfUp, RoundingMode::Down] {
                let _ = a_money.percent_of(basis_points, rounding);
            }
            let _ = a_money.to_string();
        }

        #[test]
        fn display_shows_exactly_the_amount(a in any::<i64>(), currency in any_currency()) {
            let text = Money::new(a, currency).to_string();
            let (number, code) = text.split_once(' ').unwrap();
            prop_assert_eq!(code, currency.code());
            let decimals = number.split_once('.').map_or(0, |(_, fraction)| fraction.len());
            prop_assert_eq!(decimals, usize::from(currency.minor_unit_exponent()));
            prop_assert_eq!(number.replace('.', "").parse::<i128>().unwrap(), i128::from(a));
        }

        #[test]
        fn mul_equals_repeated_add(a in any::<i64>(), quantity in 0u32..40) {
            let unit = Money::new(a, Currency::EUR);
            let repeated = (0..quantity).try_fold(Money::zero(Currency::EUR), |total, _| total.checked_add(unit));
            match unit.checked_mul(quantity) {
                Ok(product) => prop_assert_eq!(repeated, Ok(product)),
                // Partial sums k × a move monotonically toward the product, so they overflow
                // exactly when the product does.
                Err(_) => prop_assert!(repeated.is_err()),
            }
        }

        #[test]
        fn rounding_stays_within_one_minor_unit(a in any::<i64>(), basis_points in 0u32..=20_000) {
            let exact_times_10k = i128::from(a) * i128::from(basis_points);
            for rounding in [RoundingMode::HalfEven, RoundingMode::HalfUp, RoundingMode::Down] {
                let Ok(result) = Money::new(a, Currency::USD).percent_of(basis_points, rounding) else {
                    prop_assert!(basis_points > 10_000);
                    continue;
                };
                let error_times_10k = i128::from(result.amount_minor) * 10_000 - exact_times_10k;
                prop_assert!(error_times_10k.abs() < 10_000, "{rounding:?}: off by {error_times_10k}/10000");
                match rounding {
                    // Nearest modes are off by at most half a unit.
                    RoundingMode::HalfEven | RoundingMode::HalfUp => prop_assert!(error_times_10k.abs() <= 5_000),
                    // Truncation never grows the magnitude.
                    RoundingMode::Down => prop_assert!(i128::from(result.amount_minor).abs() * 10_000 <= exact_times_10k.abs()),
                }
            }
        }
    }
}
