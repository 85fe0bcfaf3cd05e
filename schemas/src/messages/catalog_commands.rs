//! `catalog-commands`: administrators' changes to products, prices and coupons. Written by the
//! ingress API (admin endpoints), keyed by SKU (coupons by `coupon:<code>`), consumed by the
//! catalog processor.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::catalog::CATALOG_COMMANDS;
use crate::codes::{CouponCode, Sku};
use crate::ids::CouponId;
use crate::money::{BASIS_POINTS_PER_WHOLE, Money};
use crate::time::Timestamp;
use crate::validation::{
    MAX_LONG_TEXT_CHARS, MAX_NAME_CHARS, Validate, ValidationError, limit_text, require_currency,
    require_non_negative, require_positive, require_text,
};

message_enum! {
    /// Payload of `catalog-commands`.
    pub enum CatalogCommand on CATALOG_COMMANDS {
        /// Create a product or replace all its attributes.
        UpsertProduct keyed by sku,
        /// Change only a product's price.
        ChangePrice keyed by sku,
        /// Stop selling a product for good.
        Discontinue keyed by sku,
        /// Create or replace a coupon. Keyed `coupon:<code>` so coupon and SKU keys never collide
        /// (`:` is not allowed in a SKU).
        UpsertCoupon keyed by code with prefix "coupon:",
    }
}

/// Create a product or replace all of its attributes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpsertProduct {
    /// The product.
    pub sku: Sku,
    /// Display name.
    pub name: String,
    /// Long description; may be empty.
    pub description: String,
    /// Category for browsing and analytics, e.g. `apparel/shirts`.
    pub category: String,
    /// Unit price; zero is allowed (free items), negative is not.
    pub price: Money,
    /// Whether the product can be ordered now (inactive products keep their data).
    pub active: bool,
    /// Available stock at or below which the inventory processor emits `StockLow`.
    pub low_stock_threshold: u32,
}

impl Validate for UpsertProduct {
    fn validate(&self) -> Result<(), ValidationError> {
        require_text("name", &self.name, MAX_NAME_CHARS)?;
        limit_text("description", &self.description, MAX_LONG_TEXT_CHARS)?;
        require_text("category", &self.category, MAX_NAME_CHARS)?;
        require_non_negative("price", &self.price)
    }
}

/// Change a product's unit price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePrice {
    /// The product.
    pub sku: Sku,
    /// The new unit price; zero or more.
    pub price: Money,
}

impl Validate for ChangePrice {
    fn validate(&self) -> Result<(), ValidationError> {
        require_non_negative("price", &self.price)
    }
}

/// Discontinue a product: it can no longer be ordered or reactivated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Discontinue {
    /// The product.
    pub sku: Sku,
}

impl Validate for Discontinue {
    fn validate(&self) -> Result<(), ValidationError> {
        Ok(())
    }
}

/// What a coupon takes off the basket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum CouponKind {
    /// A share of the basket subtotal, in basis points (1 bp = 0.01 %, 10 000 = 100 %), rounded
    /// half-even to the minor unit.
    Percentage {
        /// 1..=10 000.
        #[schemars(range(min = 1, max = 10_000))]
        basis_points: u32,
    },
    /// A fixed amount off, applicable only to orders in the amount's currency, never more than
    /// the subtotal.
    Fixed {
        /// More than zero.
        amount: Money,
    },
}

impl Validate for CouponKind {
    fn validate(&self) -> Result<(), ValidationError> {
        match self {
            Self::Percentage { basis_points } => {
                if !(1..=BASIS_POINTS_PER_WHOLE).contains(basis_points) {
                    return Err(ValidationError::new(
                        "basis_points",
                        format!("must be within 1..=10000, got {basis_points}"),
                    ));
                }
                Ok(())
            }
            Self::Fixed { amount } => require_positive("amount", amount),
        }
    }
}

/// Create or replace a coupon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpsertCoupon {
    /// Identifies this coupon definition (a code may be reused by a later campaign).
    pub coupon_id: CouponId,
    /// The code customers type.
    pub code: CouponCode,
    /// The discount.
    pub kind: CouponKind,
    /// First instant the coupon applies (inclusive).
    pub valid_from: Timestamp,
    /// Instant the coupon stops applying (exclusive); after `valid_from`.
    pub valid_until: Timestamp,
    /// Smallest basket subtotal the coupon applies to; in the fixed amount's currency if fixed.
    pub minimum_basket: Option<Money>,
}

impl Validate for UpsertCoupon {
    fn validate(&self) -> Result<(), ValidationError> {
        validate_coupon_terms(
            &self.kind,
            self.valid_from,
            self.valid_until,
            self.minimum_basket.as_ref(),
        )
    }
}

/// The rules a coupon definition obeys, shared by the command and the `CouponUpserted` event.
pub(crate) fn validate_coupon_terms(
    kind: &CouponKind,
    valid_from: Timestamp,
    valid_until: Timestamp,
    minimum_basket: Option<&Money>,
) -> Result<(), ValidationError> {
    kind.validate().map_err(|error| error.within("kind"))?;
    if valid_until <= valid_from {
        return Err(ValidationError::new(
            "valid_until",
            format!("must be after valid_from ({valid_from}), got {valid_until}"),
        ));
    }
    if let Some(minimum) = minimum_basket {
        require_non_negative("minimum_basket", minimum)?;
        if let CouponKind::Fixed { amount } = kind {
            require_currency("minimum_basket", minimum, amount.currency)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::currency::Currency;
    use crate::envelope::Message;
    use crate::messages::fixtures;

    fn coupon(kind: CouponKind) -> UpsertCoupon {
        UpsertCoupon {
            coupon_id: fixtures::coupon_id(),
            code: CouponCode::parse("SPRING25").unwrap(),
            kind,
            valid_from: Timestamp::from_unix_millis(1_000),
            valid_until: Timestamp::from_unix_millis(2_000),
            minimum_basket: None,
        }
    }

    #[test]
    fn coupon_rules() {
        assert_eq!(
            coupon(CouponKind::Percentage { basis_points: 2500 }).validate(),
            Ok(())
        );
        assert_eq!(
            coupon(CouponKind::Percentage { basis_points: 0 })
                .validate()
                .unwrap_err()
                .field,
            "kind.basis_points"
        );
        assert!(
            coupon(CouponKind::Percentage {
                basis_points: 10_001
            })
            .validate()
            .is_err()
        );
        assert_eq!(
            coupon(CouponKind::Fixed {
                amount: fixtures::usd(0)
            })
            .validate()
            .unwrap_err()
            .field,
            "kind.amount"
        );

        let mut backwards = coupon(CouponKind::Percentage { basis_points: 100 });
        backwards.valid_until = backwards.valid_from;
        assert_eq!(backwards.validate().unwrap_err().field, "valid_until");

        let mut mixed = coupon(CouponKind::Fixed {
            amount: fixtures::usd(500),
        });
        mixed.minimum_basket = Some(Money::new(5000, Currency::EUR));
        assert_eq!(mixed.validate().unwrap_err().field, "minimum_basket");
        mixed.minimum_basket = Some(fixtures::usd(5000));
        assert_eq!(mixed.validate(), Ok(()));
    }

    #[test]
    fn coupon_kind_json_shape() {
        let json = serde_json::to_value(CouponKind::Percentage { basis_points: 1500 }).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"type": "percentage", "basis_points": 1500})
        );
        assert!(
            serde_json::from_value::<CouponKind>(
                serde_json::json!({"type": "percentage", "basis_points": 1, "extra": 1})
            )
            .is_err()
        );
    }

    #[test]
    fn product_rules() {
        let product = fixtures::upsert_product();
        assert_eq!(product.validate(), Ok(()));
        let mut negative = product.clone();
        negative.price = fixtures::usd(-1);
        assert_eq!(negative.validate().unwrap_err().field, "price");
        let mut unnamed = product;
        unnamed.name = "\t".into();
        assert_eq!(unnamed.validate().unwrap_err().field, "name");
    }

    #[test]
    fn coupon_keys_cannot_collide_with_skus() {
        let command = CatalogCommand::from(coupon(CouponKind::Percentage { basis_points: 1 }));
        assert_eq!(command.partition_key(), "coupon:SPRING25");
        assert!(Sku::parse(&command.partition_key()).is_err());
        let product = CatalogCommand::from(fixtures::upsert_product());
        assert_eq!(
            product.partition_key(),
            fixtures::upsert_product().sku.as_str()
        );
    }
}
