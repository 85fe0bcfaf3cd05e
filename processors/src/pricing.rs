//! Order totals, computed server-side from catalog prices: subtotal, coupon discount, tax,
//! shipping and total, in integer minor units.
//!
//! Rounding rule: every percentage (coupon, tax) is rounded half to even (banker's rounding) to
//! the currency's minor unit, once, on the order's subtotal after discount — never per line —
//! so the total is exactly `subtotal - discount + tax + shipping`.

use std::collections::BTreeMap;

use orderflow_schemas::address::ShippingAddress;
use orderflow_schemas::codes::Sku;
use orderflow_schemas::currency::Currency;
use orderflow_schemas::messages::catalog_commands::CouponKind;
use orderflow_schemas::messages::catalog_events::CouponUpserted;
use orderflow_schemas::messages::order_events::{OrderTotals, PricedLine};
use orderflow_schemas::money::{Money, MoneyError, RoundingMode};
use serde::{Deserialize, Serialize};

/// Tax and shipping rules. Amounts are minor units of the order's currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default, rename_all = "kebab-case")]
pub struct PricingRules {
    /// Tax rates in basis points by `COUNTRY` or `COUNTRY-REGION` (the more specific wins).
    pub tax_basis_points: BTreeMap<String, u32>,
    /// Tax rate where no entry matches.
    pub default_tax_basis_points: u32,
    /// Flat shipping fee per order.
    pub shipping_minor: i64,
    /// Orders whose discounted subtotal reaches this ship free (`None`: never).
    pub free_shipping_from_minor: Option<i64>,
}

impl Default for PricingRules {
    fn default() -> Self {
        Self {
            tax_basis_points: BTreeMap::from([
                ("DE".to_string(), 1_900),
                ("FR".to_string(), 2_000),
                ("GB".to_string(), 2_000),
                ("US-CA".to_string(), 725),
                ("US-NY".to_string(), 400),
            ]),
            default_tax_basis_points: 0,
            shipping_minor: 499,
            free_shipping_from_minor: Some(5_000),
        }
    }
}

impl PricingRules {
    /// The tax rate of a shipping address. Regions match case-insensitively, ignoring
    /// surrounding spaces and an ISO 3166-2 country prefix (`ca`, ` CA `, `US-CA` all match
    /// `US-CA`).
    pub fn tax_rate(&self, address: &ShippingAddress) -> u32 {
        let country = address.country.to_string();
        if let Some(region) = &address.region {
            let region = region.trim().to_ascii_uppercase();
            let region = region
                .strip_prefix(&format!("{country}-"))
                .unwrap_or(&region)
                .to_string();
            if let Some(rate) = self.tax_basis_points.get(&format!("{country}-{region}")) {
                return *rate;
            }
        }
        self.tax_basis_points
            .get(&country)
            .copied()
            .unwrap_or(self.default_tax_basis_points)
    }
}

/// Why an order cannot be priced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PricingError {
    #[error("money arithmetic failed: {0}")]
    Money(#[from] MoneyError),
    #[error("coupon {code}: {reason}")]
    InvalidCoupon { code: String, reason: String },
}

/// One line to price: what was ordered and the catalog's unit price.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineToPrice {
    pub sku: Sku,
    pub quantity: u32,
    pub unit_price: Money,
}

/// Prices the lines and computes the totals.
pub fn price_order(
    lines: &[LineToPrice],
    currency: Currency,
    coupon: Option<&CouponUpserted>,
    now_ms: i64,
    address: &ShippingAddress,
    rules: &PricingRules,
) -> Result<(Vec<PricedLine>, OrderTotals), PricingError> {
    let mut priced = Vec::with_capacity(lines.len());
    for line in lines {
        priced.push(PricedLine {
            sku: line.sku.clone(),
            quantity: line.quantity,
            unit_price: line.unit_price,
            line_total: line.unit_price.checked_mul(line.quantity)?,
        });
    }
    let subtotal = Money::checked_sum(currency, priced.iter().map(|line| line.line_total))?;
    let discount = match coupon {
        Some(coupon) => coupon_discount(coupon, subtotal, now_ms)?,
        None => Money::zero(currency),
    };
    let discounted = subtotal.checked_sub(discount)?;
    let tax = discounted.percent_of(rules.tax_rate(address), RoundingMode::HalfEven)?;
    let ships_free = priced.is_empty()
        || rules
            .free_shipping_from_minor
            .is_some_and(|threshold| discounted.amount_minor >= threshold);
    let shipping = if ships_free {
        Money::zero(currency)
    } else {
        Money::new(rules.shipping_minor, currency)
    };
    Ok((
        priced,
        OrderTotals::compute(subtotal, discount, tax, shipping)?,
    ))
}

fn coupon_discount(
    coupon: &CouponUpserted,
    subtotal: Money,
    now_ms: i64,
) -> Result<Money, PricingError> {
    let invalid = |reason: String| PricingError::InvalidCoupon {
        code: coupon.code.to_string(),
        reason,
    };
    if now_ms < coupon.valid_from.as_unix_millis() || now_ms >= coupon.valid_until.as_unix_millis()
    {
        return Err(invalid("not valid at this time".to_string()));
    }
    if let Some(minimum) = coupon.minimum_basket {
        if minimum.currency != subtotal.currency {
            return Err(invalid(format!(
                "minimum basket is in {}",
                minimum.currency
            )));
        }
        if subtotal.amount_minor < minimum.amount_minor {
            return Err(invalid(format!(
                "the basket is below the minimum of {minimum}"
            )));
        }
    }
    let discount = match coupon.kind {
        CouponKind::Percentage { basis_points } => {
            subtotal.percent_of(basis_points, RoundingMode::HalfEven)?
        }
        CouponKind::Fixed { amount } => {
            if amount.currency != subtotal.currency {
                return Err(invalid(format!("the coupon is in {}", amount.currency)));
            }
            amount
        }
    };
    // A discount never exceeds the basket.
    Ok(if discount.amount_minor > subtotal.amount_minor {
        subtotal
    } else {
        discount
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use orderflow_schemas::address::CountryCode;
    use orderflow_schemas::codes::CouponCode;
    use orderflow_schemas::ids::CouponId;
    use orderflow_schemas::time::Timestamp;
    use proptest::prelude::*;

    fn usd() -> Currency {
        Currency::parse("USD").unwrap()
    }

    fn address(country: &str, region: Option<&str>) -> ShippingAddress {
        ShippingAddress {
            name: "Ada".to_string(),
            line1: "1 Main St".to_string(),
            line2: None,
            city: "Town".to_string(),
            postal_code: "12345".to_string(),
            country: country.parse::<CountryCode>().unwrap(),
            region: region.map(str::to_string),
        }
    }

    fn line(sku: &str, quantity: u32, unit: i64) -> LineToPrice {
        LineToPrice {
            sku: Sku::parse(sku).unwrap(),
            quantity,
            unit_price: Money::new(unit, usd()),
        }
    }

    fn coupon(kind: CouponKind) -> CouponUpserted {
        CouponUpserted {
            coupon_id: CouponId::generate(0),
            code: CouponCode::parse("SAVE").unwrap(),
            kind,
            valid_from: Timestamp::from_unix_millis(0),
            valid_until: Timestamp::from_unix_millis(1_000),
            minimum_basket: None,
        }
    }

    #[test]
    fn totals_follow_the_documented_example() {
        // 2 x 12.99 + 1 x 5.00 = 30.98; 10% off = 3.10 (3.098 rounds half-even to 3.10);
        // tax 7.25% of 27.88 = 2.0213 -> 2.02; shipping 4.99 (below 50.00).
        let rules = PricingRules::default();
        let (lines, totals) = price_order(
            &[line("A", 2, 1_299), line("B", 1, 500)],
            usd(),
            Some(&coupon(CouponKind::Percentage {
                basis_points: 1_000,
            })),
            10,
            &address("US", Some("CA")),
            &rules,
        )
        .unwrap();
        assert_eq!(lines[0].line_total.amount_minor, 2_598);
        assert_eq!(totals.subtotal.amount_minor, 3_098);
        assert_eq!(totals.discount.amount_minor, 310);
        assert_eq!(totals.tax.amount_minor, 202);
        assert_eq!(totals.shipping.amount_minor, 499);
        assert_eq!(totals.total.amount_minor, 3_098 - 310 + 202 + 499);
    }

    #[test]
    fn coupons_outside_their_window_or_below_the_minimum_are_refused() {
        let rules = PricingRules::default();
        let mut expired = coupon(CouponKind::Percentage { basis_points: 500 });
        expired.valid_until = Timestamp::from_unix_millis(5);
        let error = price_order(
            &[line("A", 1, 100)],
            usd(),
            Some(&expired),
            10,
            &address("DE", None),
            &rules,
        )
        .unwrap_err();
        assert!(matches!(error, PricingError::InvalidCoupon { .. }));
        let mut minimum = coupon(CouponKind::Percentage { basis_points: 500 });
        minimum.minimum_basket = Some(Money::new(10_000, usd()));
        assert!(
            price_order(
                &[line("A", 1, 100)],
                usd(),
                Some(&minimum),
                10,
                &address("DE", None),
                &rules
            )
            .is_err()
        );
    }

    #[test]
    fn regions_match_whatever_their_spelling() {
        let rules = PricingRules::default();
        for region in ["CA", "ca", " Ca ", "US-CA", "us-ca"] {
            assert_eq!(
                rules.tax_rate(&address("US", Some(region))),
                725,
                "{region}"
            );
        }
        assert_eq!(rules.tax_rate(&address("US", Some("Nowhere"))), 0);
        assert_eq!(rules.tax_rate(&address("DE", None)), 1_900);
    }

    #[test]
    fn a_fixed_coupon_never_makes_the_subtotal_negative() {
        let rules = PricingRules::default();
        let big = coupon(CouponKind::Fixed {
            amount: Money::new(10_000, usd()),
        });
        let (_, totals) = price_order(
            &[line("A", 1, 300)],
            usd(),
            Some(&big),
            10,
            &address("DE", None),
            &rules,
        )
        .unwrap();
        assert_eq!(totals.discount.amount_minor, 300);
        assert_eq!(totals.tax.amount_minor, 0);
        assert_eq!(totals.total.amount_minor, 499);
    }

    proptest! {
        #[test]
        fn total_is_subtotal_minus_discount_plus_tax_plus_shipping(
            lines in proptest::collection::vec((1u32..50, 1i64..100_000), 1..6),
            basis_points in 1u32..=10_000,
            use_coupon: bool,
            region in prop_oneof![Just(("US", Some("CA"))), Just(("DE", None)), Just(("JP", None))],
        ) {
            let rules = PricingRules::default();
            let lines: Vec<LineToPrice> = lines
                .iter()
                .enumerate()
                .map(|(index, (quantity, unit))| line(&format!("SKU-{index}"), *quantity, *unit))
                .collect();
            let coupon = coupon(CouponKind::Percentage { basis_points });
            let (priced, totals) = price_order(
                &lines,
                usd(),
                use_coupon.then_some(&coupon),
                10,
                &address(region.0, region.1),
                &rules,
            )
            .unwrap();
            let sum: i64 = priced.iter().map(|line| line.line_total.amount_minor).sum();
            prop_assert_eq!(totals.subtotal.amount_minor, sum);
            prop_assert_eq!(
                totals.total.amount_minor,
                totals.subtotal.amount_minor - totals.discount.amount_minor
                    + totals.tax.amount_minor
                    + totals.shipping.amount_minor
            );
            prop_assert!(totals.discount.amount_minor <= totals.subtotal.amount_minor);
            prop_assert!(totals.tax.amount_minor >= 0 && totals.total.amount_minor >= 0);
        }
    }
}
