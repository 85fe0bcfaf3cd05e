//! `inventory-events`: the inventory processor's answers and stock levels.
//!
//! Two key spaces share the topic: answers to the order saga (`StockReserved`, `StockRejected`,
//! `StockReleased`, `StockCommitted`) are keyed by order id so they land on the partition of the
//! order's saga state; stock levels (`StockUpdated`, `StockLow`) are keyed by SKU. Consumers tell
//! them apart by message type, never by key, and the topic is not compacted, so the two key
//! spaces never need to be disjoint.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::catalog::INVENTORY_EVENTS;
use crate::codes::Sku;
use crate::ids::{OrderId, ReservationId};
use crate::messages::inventory_commands::{ReleaseReason, require_line_index};
use crate::time::Timestamp;
use crate::validation::{Validate, ValidationError, require_positive_count};

message_enum! {
    /// Payload of `inventory-events`.
    pub enum InventoryEvent on INVENTORY_EVENTS {
        /// Units are held for an order line.
        StockReserved keyed by order_id,
        /// An order line could not be reserved.
        StockRejected keyed by order_id,
        /// Units held for an order line were given back.
        StockReleased keyed by order_id,
        /// Units held for an order line are now sold.
        StockCommitted keyed by order_id,
        /// A SKU's stock levels after any change.
        StockUpdated keyed by sku,
        /// A SKU's available stock fell to or below its low-stock threshold.
        StockLow keyed by sku,
    }
}

/// Units are held for one order line until committed, released or expired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StockReserved {
    /// The order.
    pub order_id: OrderId,
    /// Index of the line in the order.
    pub line_index: u32,
    /// The reservation named by the `Reserve` command.
    pub reservation_id: ReservationId,
    /// The product.
    pub sku: Sku,
    /// Units held; at least 1.
    #[schemars(range(min = 1))]
    pub quantity: u32,
    /// When the hold lapses unless committed or released.
    pub expires_at: Timestamp,
}

impl Validate for StockReserved {
    fn validate(&self) -> Result<(), ValidationError> {
        require_line_index(self.line_index)?;
        require_positive_count("quantity", self.quantity)
    }
}

/// Why a reservation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StockRejectionReason {
    /// Fewer units available than requested.
    InsufficientStock,
    /// The inventory has never heard of the SKU.
    UnknownSku,
}

/// An order line could not be reserved; nothing is held for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StockRejected {
    /// The order.
    pub order_id: OrderId,
    /// Index of the line in the order.
    pub line_index: u32,
    /// The product.
    pub sku: Sku,
    /// Units the line asked for.
    #[schemars(range(min = 1))]
    pub requested: u32,
    /// Units that were available (0 for an unknown SKU).
    pub available: u32,
    /// Why.
    pub reason: StockRejectionReason,
}

impl Validate for StockRejected {
    fn validate(&self) -> Result<(), ValidationError> {
        require_line_index(self.line_index)?;
        require_positive_count("requested", self.requested)?;
        if self.reason == StockRejectionReason::InsufficientStock
            && self.available >= self.requested
        {
            return Err(ValidationError::new(
                "available",
                format!(
                    "must be below requested ({}) when stock is insufficient, got {}",
                    self.requested, self.available
                ),
            ));
        }
        Ok(())
    }
}

/// Units held for an order line went back to available stock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StockReleased {
    /// The order.
    pub order_id: OrderId,
    /// Index of the line in the order.
    pub line_index: u32,
    /// The product.
    pub sku: Sku,
    /// Units released; at least 1 (releasing nothing emits no event).
    #[schemars(range(min = 1))]
    pub quantity: u32,
    /// Why.
    pub reason: ReleaseReason,
}

impl Validate for StockReleased {
    fn validate(&self) -> Result<(), ValidationError> {
        require_line_index(self.line_index)?;
        require_positive_count("quantity", self.quantity)
    }
}

/// Units held for an order line are now sold (committed until shipped).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StockCommitted {
    /// The order.
    pub order_id: OrderId,
    /// Index of the line in the order.
    pub line_index: u32,
    /// The product.
    pub sku: Sku,
    /// Units committed; at least 1.
    #[schemars(range(min = 1))]
    pub quantity: u32,
}

impl Validate for StockCommitted {
    fn validate(&self) -> Result<(), ValidationError> {
        require_line_index(self.line_index)?;
        require_positive_count("quantity", self.quantity)
    }
}

/// A SKU's stock levels. `on_hand` counts every unit in the warehouse; of those, `reserved` are
/// held for unpaid orders and `committed` are sold but not shipped; the rest are available.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StockUpdated {
    /// The product.
    pub sku: Sku,
    /// Units in stock and not yet sold (reserved units included).
    pub on_hand: u32,
    /// Units of `on_hand` held for orders awaiting payment.
    pub reserved: u32,
    /// Units sold over the SKU's life; a commit takes them out of `on_hand`.
    pub committed: u32,
}

impl StockUpdated {
    /// Units that can be reserved now: `on_hand - reserved`, or `None` if the levels are
    /// inconsistent (see [`Validate`]).
    pub fn available(&self) -> Option<u32> {
        self.on_hand.checked_sub(self.reserved)
    }
}

impl Validate for StockUpdated {
    fn validate(&self) -> Result<(), ValidationError> {
        if self.available().is_none() {
            return Err(ValidationError::new(
                "on_hand",
                format!(
                    "must be at least reserved = {}, got {}",
                    self.reserved, self.on_hand
                ),
            ));
        }
        Ok(())
    }
}

/// A SKU's available stock is at or below its threshold: time to restock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StockLow {
    /// The product.
    pub sku: Sku,
    /// Units available now.
    pub available: u32,
    /// The product's low-stock threshold.
    pub threshold: u32,
}

impl Validate for StockLow {
    fn validate(&self) -> Result<(), ValidationError> {
        if self.available > self.threshold {
            return Err(ValidationError::new(
                "available",
                format!(
                    "must be at most the threshold {}, got {}",
                    self.threshold, self.available
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::Message;
    use crate::messages::fixtures;

    #[test]
    fn stock_levels_must_be_consistent() {
        let mut levels = StockUpdated {
            sku: fixtures::sku("MUG"),
            on_hand: 10,
            reserved: 3,
            committed: 2,
        };
        // Sold units have left on_hand, so only reservations count against it.
        assert_eq!(levels.available(), Some(7));
        assert_eq!(levels.validate(), Ok(()));
        levels.committed = 80;
        assert_eq!(levels.available(), Some(7));
        levels.reserved = 11;
        assert_eq!(levels.available(), None);
        let error = levels.validate().unwrap_err();
        assert_eq!(error.field, "on_hand");
        assert!(error.reason.contains("reserved = 11"), "{}", error.reason);
    }

    #[test]
    fn rejection_and_low_stock_rules() {
        let mut rejected = StockRejected {
            order_id: fixtures::order_id(),
            line_index: 0,
            sku: fixtures::sku("MUG"),
            requested: 3,
            available: 3,
            reason: StockRejectionReason::InsufficientStock,
        };
        assert_eq!(rejected.validate().unwrap_err().field, "available");
        rejected.available = 2;
        assert_eq!(rejected.validate(), Ok(()));
        let low = StockLow {
            sku: fixtures::sku("MUG"),
            available: 6,
            threshold: 5,
        };
        assert_eq!(low.validate().unwrap_err().field, "available");
    }

    #[test]
    fn saga_answers_keyed_by_order_levels_by_sku() {
        let reserved = InventoryEvent::from(fixtures::stock_reserved());
        assert_eq!(reserved.partition_key(), fixtures::order_id().to_string());
        let low = InventoryEvent::from(StockLow {
            sku: fixtures::sku("MUG"),
            available: 1,
            threshold: 5,
        });
        assert_eq!(low.partition_key(), "MUG");
    }
}
