//! `catalog-events`: the catalog as the order processor prices from it. Written by the catalog
//! processor, keyed by SKU (coupons by `coupon:<code>`).
//!
//! The topic is compacted: only the latest record per key survives. So every product event carries
//! the complete product after the change (`PriceChanged` and `ProductDiscontinued` too), and the
//! catalog view can be rebuilt from whatever record is left for each key.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::catalog::CATALOG_EVENTS;
use crate::codes::{CouponCode, Sku};
use crate::ids::CouponId;
use crate::messages::catalog_commands::{CouponKind, validate_coupon_terms};
use crate::money::Money;
use crate::time::Timestamp;
use crate::validation::{
    MAX_LONG_TEXT_CHARS, MAX_NAME_CHARS, Validate, ValidationError, limit_text,
    require_non_negative, require_text,
};

message_enum! {
    /// Payload of `catalog-events`.
    pub enum CatalogEvent on CATALOG_EVENTS {
        /// A product was created or its attributes replaced.
        ProductUpserted keyed by sku,
        /// A product's price changed.
        PriceChanged keyed by sku,
        /// A product was discontinued.
        ProductDiscontinued keyed by sku,
        /// A coupon was created or replaced. Keyed `coupon:<code>` (`:` is not allowed in a SKU,
        /// so compaction can never drop a product for a coupon or the other way round).
        CouponUpserted keyed by code with prefix "coupon:",
    }
}

/// A product as the catalog holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Product {
    /// The product.
    pub sku: Sku,
    /// Display name.
    pub name: String,
    /// Long description; may be empty.
    pub description: String,
    /// Category for browsing and analytics.
    pub category: String,
    /// Unit price; zero or more.
    pub price: Money,
    /// Whether an administrator has it on sale.
    pub active: bool,
    /// Discontinued for good; a discontinued product is never active.
    pub discontinued: bool,
    /// Available stock at or below which `StockLow` is emitted.
    pub low_stock_threshold: u32,
}

impl Product {
    /// Whether the product can be ordered now.
    pub fn is_orderable(&self) -> bool {
        self.active && !self.discontinued
    }
}

impl Validate for Product {
    fn validate(&self) -> Result<(), ValidationError> {
        require_text("name", &self.name, MAX_NAME_CHARS)?;
        limit_text("description", &self.description, MAX_LONG_TEXT_CHARS)?;
        require_text("category", &self.category, MAX_NAME_CHARS)?;
        require_non_negative("price", &self.price)?;
        if self.discontinued && self.active {
            return Err(ValidationError::new(
                "active",
                "must be false for a discontinued product",
            ));
        }
        Ok(())
    }
}

/// Checks that an event's key SKU is its product's SKU.
fn require_same_sku(sku: &Sku, product: &Product) -> Result<(), ValidationError> {
    if *sku != product.sku {
        return Err(ValidationError::new(
            "product.sku",
            format!("must equal sku {sku}, got {}", product.sku),
        ));
    }
    Ok(())
}

/// A product was created or its attributes replaced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductUpserted {
    /// The product's key.
    pub sku: Sku,
    /// The product after the change.
    pub product: Product,
}

impl Validate for ProductUpserted {
    fn validate(&self) -> Result<(), ValidationError> {
        require_same_sku(&self.sku, &self.product)?;
        self.product
            .validate()
            .map_err(|error| error.within("product"))
    }
}

/// A product's unit price changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PriceChanged {
    /// The product's key.
    pub sku: Sku,
    /// The price before.
    pub old_price: Money,
    /// The price now; equal to `product.price`.
    pub new_price: Money,
    /// The product after the change.
    pub product: Product,
}

impl Validate for PriceChanged {
    fn validate(&self) -> Result<(), ValidationError> {
        require_same_sku(&self.sku, &self.product)?;
        require_non_negative("old_price", &self.old_price)?;
        require_non_negative("new_price", &self.new_price)?;
        if self.new_price != self.product.price {
            return Err(ValidationError::new(
                "new_price",
                format!(
                    "must equal product.price {}, got {}",
                    self.product.price, self.new_price
                ),
            ));
        }
        self.product
            .validate()
            .map_err(|error| error.within("product"))
    }
}

/// A product was discontinued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductDiscontinued {
    /// The product's key.
    pub sku: Sku,
    /// The product after the change: discontinued and inactive.
    pub product: Product,
}

impl Validate for ProductDiscontinued {
    fn validate(&self) -> Result<(), ValidationError> {
        require_same_sku(&self.sku, &self.product)?;
        if !self.product.discontinued {
            return Err(ValidationError::new(
                "product.discontinued",
                "must be true in ProductDiscontinued",
            ));
        }
        self.product
            .validate()
            .map_err(|error| error.within("product"))
    }
}

/// A coupon was created or replaced; the complete definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CouponUpserted {
    /// Identifies this coupon definition.
    pub coupon_id: CouponId,
    /// The code customers type.
    pub code: CouponCode,
    /// The discount.
    pub kind: CouponKind,
    /// First instant the coupon applies (inclusive).
    pub valid_from: Timestamp,
    /// Instant the coupon stops applying (exclusive).
    pub valid_until: Timestamp,
    /// Smallest basket subtotal the coupon applies to.
    pub minimum_basket: Option<Money>,
}

impl Validate for CouponUpserted {
    fn validate(&self) -> Result<(), ValidationError> {
        validate_coupon_terms(
            &self.kind,
            self.valid_from,
            self.valid_until,
            self.minimum_basket.as_ref(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::Message;
    use crate::messages::fixtures;

    #[test]
    fn price_change_carries_the_whole_product() {
        let product = fixtures::product();
        let mut changed = PriceChanged {
            sku: product.sku.clone(),
            old_price: fixtures::usd(1_000),
            new_price: product.price,
            product: product.clone(),
        };
        assert_eq!(changed.validate(), Ok(()));
        changed.new_price = fixtures::usd(1);
        assert_eq!(changed.validate().unwrap_err().field, "new_price");
        changed.new_price = product.price;
        changed.sku = fixtures::sku("OTHER");
        assert_eq!(changed.validate().unwrap_err().field, "product.sku");
    }

    #[test]
    fn discontinued_products_are_inactive() {
        let mut product = fixtures::product();
        product.discontinued = true;
        assert_eq!(product.validate().unwrap_err().field, "active");
        product.active = false;
        assert!(!product.is_orderable());
        let discontinued = ProductDiscontinued {
            sku: product.sku.clone(),
            product,
        };
        assert_eq!(discontinued.validate(), Ok(()));
        let mut still_on = discontinued;
        still_on.product.discontinued = false;
        assert_eq!(
            still_on.validate().unwrap_err().field,
            "product.discontinued"
        );
    }

    #[test]
    fn nested_product_errors_are_prefixed() {
        let mut upserted = ProductUpserted {
            sku: fixtures::product().sku,
            product: fixtures::product(),
        };
        upserted.product.category = String::new();
        assert_eq!(upserted.validate().unwrap_err().field, "product.category");
    }

    #[test]
    fn keys() {
        let upserted = CatalogEvent::from(ProductUpserted {
            sku: fixtures::product().sku,
            product: fixtures::product(),
        });
        assert_eq!(upserted.partition_key(), fixtures::product().sku.as_str());
    }
}
