//! `inventory-commands`: stock changes and the order saga's reservation steps. Written by the
//! ingress API (admin restock/adjust) and the order saga (reserve/release/commit), keyed by SKU so
//! one inventory task is the single writer of each SKU's stock: no two reservations can race.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::catalog::INVENTORY_COMMANDS;
use crate::codes::Sku;
use crate::ids::{OrderId, ReservationId};
use crate::time::Timestamp;
use crate::validation::{
    MAX_ORDER_LINES, MAX_REASON_CHARS, Validate, ValidationError, require_positive_count,
    require_text,
};

message_enum! {
    /// Payload of `inventory-commands`.
    pub enum InventoryCommand on INVENTORY_COMMANDS {
        /// Goods arrived: add to on-hand stock.
        Restock keyed by sku,
        /// Correct on-hand stock after a count, damage or loss.
        Adjust keyed by sku,
        /// Hold units of one order line until payment settles.
        Reserve keyed by sku,
        /// Give a line's held units back (order failed, cancelled or reservation expired).
        Release keyed by sku,
        /// Turn a line's held units into sold units (payment succeeded).
        Commit keyed by sku,
    }
}

/// Why reserved units are given back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseReason {
    /// Another line of the order could not be reserved.
    OrderRejected,
    /// The charge failed for good.
    PaymentFailed,
    /// The order was cancelled.
    OrderCancelled,
    /// The reservation's deadline passed before the saga committed or released it.
    ReservationExpired,
}

/// Validates the index of a line within its order.
pub(crate) fn require_line_index(line_index: u32) -> Result<(), ValidationError> {
    if usize::try_from(line_index).map_or(true, |index| index >= MAX_ORDER_LINES) {
        return Err(ValidationError::new(
            "line_index",
            format!(
                "must be below {MAX_ORDER_LINES} (the most lines an order has), got {line_index}"
            ),
        ));
    }
    Ok(())
}

/// Goods arrived: add `quantity` units to on-hand stock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Restock {
    /// The product.
    pub sku: Sku,
    /// Units received; at least 1.
    #[schemars(range(min = 1))]
    pub quantity: u32,
}

impl Validate for Restock {
    fn validate(&self) -> Result<(), ValidationError> {
        require_positive_count("quantity", self.quantity)
    }
}

/// Correct on-hand stock by `delta` units (negative removes). The inventory processor refuses an
/// adjustment that would take on-hand stock below what is reserved and committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Adjust {
    /// The product.
    pub sku: Sku,
    /// Units to add (positive) or remove (negative); never zero, magnitude within `u32`.
    pub delta: i64,
    /// Why, for the audit trail: `cycle count`, `damaged in transit`, ...
    pub reason: String,
}

impl Validate for Adjust {
    fn validate(&self) -> Result<(), ValidationError> {
        if self.delta == 0 {
            return Err(ValidationError::new("delta", "must not be zero"));
        }
        if self.delta.unsigned_abs() > u64::from(u32::MAX) {
            return Err(ValidationError::new(
                "delta",
                format!("magnitude must be at most {}, got {}", u32::MAX, self.delta),
            ));
        }
        require_text("reason", &self.reason, MAX_REASON_CHARS)
    }
}

/// Hold `quantity` units of `sku` for line `line_index` of an order. Answered by `StockReserved`
/// or `StockRejected` on `inventory-events`. Idempotent per (order, line): a redelivered Reserve
/// gets the same answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Reserve {
    /// The order.
    pub order_id: OrderId,
    /// Index of the line in the order's `lines`.
    pub line_index: u32,
    /// Chosen by the saga so retries refer to the same reservation.
    pub reservation_id: ReservationId,
    /// The product.
    pub sku: Sku,
    /// Units to hold; at least 1.
    #[schemars(range(min = 1))]
    pub quantity: u32,
    /// When the hold lapses if neither committed nor released; the inventory processor then
    /// releases it with `reservation_expired`.
    pub expires_at: Timestamp,
}

impl Validate for Reserve {
    fn validate(&self) -> Result<(), ValidationError> {
        require_line_index(self.line_index)?;
        require_positive_count("quantity", self.quantity)
    }
}

/// Give back the units held for one order line. Releasing a line that holds nothing is a no-op.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Release {
    /// The order.
    pub order_id: OrderId,
    /// Index of the line in the order's `lines`.
    pub line_index: u32,
    /// The product.
    pub sku: Sku,
    /// Why.
    pub reason: ReleaseReason,
}

impl Validate for Release {
    fn validate(&self) -> Result<(), ValidationError> {
        require_line_index(self.line_index)
    }
}

/// Turn the units held for one order line into sold units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Commit {
    /// The order.
    pub order_id: OrderId,
    /// Index of the line in the order's `lines`.
    pub line_index: u32,
    /// The product.
    pub sku: Sku,
}

impl Validate for Commit {
    fn validate(&self) -> Result<(), ValidationError> {
        require_line_index(self.line_index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::Message;
    use crate::messages::fixtures;

    #[test]
    fn adjust_rules() {
        let adjust = |delta| Adjust {
            sku: fixtures::sku("MUG"),
            delta,
            reason: "cycle count".into(),
        };
        assert_eq!(adjust(-3).validate(), Ok(()));
        assert_eq!(adjust(0).validate().unwrap_err().field, "delta");
        assert_eq!(adjust(i64::MIN).validate().unwrap_err().field, "delta");
        assert_eq!(adjust(i64::from(u32::MAX)).validate(), Ok(()));
    }

    #[test]
    fn reserve_rules() {
        let reserve = fixtures::reserve();
        assert_eq!(reserve.validate(), Ok(()));
        let mut zero = reserve.clone();
        zero.quantity = 0;
        assert_eq!(zero.validate().unwrap_err().field, "quantity");
        let mut far_line = reserve;
        far_line.line_index = 100;
        assert_eq!(far_line.validate().unwrap_err().field, "line_index");
    }

    #[test]
    fn keyed_by_sku_for_single_writer_stock() {
        let command = InventoryCommand::from(fixtures::reserve());
        assert_eq!(command.partition_key(), fixtures::reserve().sku.as_str());
    }

    #[test]
    fn release_reason_json() {
        assert_eq!(
            serde_json::to_string(&ReleaseReason::ReservationExpired).unwrap(),
            "\"reservation_expired\""
        );
    }
}
