//! `order-commands`: what customers and operators ask of an order. Written by the ingress API,
//! keyed by order id, consumed by the order processor.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::address::ShippingAddress;
use crate::catalog::ORDER_COMMANDS;
use crate::codes::{CouponCode, Sku};
use crate::currency::Currency;
use crate::ids::{OrderId, UserId};
use crate::validation::{
    MAX_NAME_CHARS, MAX_ORDER_LINES, MAX_REASON_CHARS, MAX_TOKEN_CHARS, Validate, ValidationError,
    require_count_within, require_positive_count, require_text, require_token,
};

message_enum! {
    /// Payload of `order-commands`.
    pub enum OrderCommand on ORDER_COMMANDS {
        /// A customer places an order.
        PlaceOrder keyed by order_id,
        /// A customer or operator cancels an order that has not shipped.
        CancelOrder keyed by order_id,
        /// The warehouse hands a confirmed order to a carrier.
        ShipOrder keyed by order_id,
        /// The carrier reports delivery.
        ConfirmDelivery keyed by order_id,
    }
}

/// One requested line: which product and how many. Prices are not taken from the client: the
/// order processor prices lines from the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderLine {
    /// The product.
    pub sku: Sku,
    /// Units ordered; at least 1.
    #[schemars(range(min = 1))]
    pub quantity: u32,
}

impl Validate for OrderLine {
    fn validate(&self) -> Result<(), ValidationError> {
        require_positive_count("quantity", self.quantity)
    }
}

/// Validates order lines: 1..=[`MAX_ORDER_LINES`] of them, each valid, each SKU at most once
/// (one line per SKU keeps reservations, rejections and refunds one-to-one with lines).
pub(crate) fn validate_lines<L: Validate>(
    field: &str,
    lines: &[L],
    sku_of: impl Fn(&L) -> &Sku,
) -> Result<(), ValidationError> {
    require_count_within(field, lines, MAX_ORDER_LINES)?;
    for (index, line) in lines.iter().enumerate() {
        let line_path = format!("{field}[{index}]");
        line.validate().map_err(|error| error.within(&line_path))?;
        if let Some(first) = lines[..index]
            .iter()
            .position(|earlier| sku_of(earlier) == sku_of(line))
        {
            return Err(ValidationError::new(
                format!("{line_path}.sku"),
                format!(
                    "SKU {} already appears in {field}[{first}]; merge the quantities into one line",
                    sku_of(line)
                ),
            ));
        }
    }
    Ok(())
}

/// Place an order. The order processor prices it from the catalog, applies the coupon and starts
/// the saga (reserve stock, charge, confirm).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceOrder {
    /// Chosen by the ingress API, so a retried request maps to the same order.
    pub order_id: OrderId,
    /// The authenticated customer.
    pub user_id: UserId,
    /// What is ordered: 1 to 100 lines, one per SKU.
    #[schemars(length(min = 1, max = 100))]
    pub lines: Vec<OrderLine>,
    /// The currency the customer pays in; catalog prices must be in it.
    pub currency: Currency,
    /// A coupon the customer entered.
    pub coupon_code: Option<CouponCode>,
    /// Where to deliver.
    pub shipping_address: ShippingAddress,
    /// The payment provider's token for the customer's payment method (never a card number).
    /// Kept in the order processor's state to issue the charge; not copied into events.
    pub payment_method_token: String,
}

impl Validate for PlaceOrder {
    fn validate(&self) -> Result<(), ValidationError> {
        validate_lines("lines", &self.lines, |line| &line.sku)?;
        self.shipping_address
            .validate()
            .map_err(|error| error.within("shipping_address"))?;
        require_token(
            "payment_method_token",
            &self.payment_method_token,
            MAX_TOKEN_CHARS,
        )
    }
}

/// Cancel an order. Allowed until it ships; compensation (stock release, refund) follows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelOrder {
    /// The order.
    pub order_id: OrderId,
    /// Who asks: the customer, or an operator acting on their behalf.
    pub user_id: UserId,
    /// Why, in the requester's words; shown to the customer and support.
    pub reason: String,
}

impl Validate for CancelOrder {
    fn validate(&self) -> Result<(), ValidationError> {
        require_text("reason", &self.reason, MAX_REASON_CHARS)
    }
}

/// Record that a confirmed order left the warehouse.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShipOrder {
    /// The order.
    pub order_id: OrderId,
    /// Carrier name, e.g. `DHL`.
    pub carrier: String,
    /// The carrier's tracking number.
    pub tracking_number: String,
}

impl Validate for ShipOrder {
    fn validate(&self) -> Result<(), ValidationError> {
        require_text("carrier", &self.carrier, MAX_NAME_CHARS)?;
        require_token("tracking_number", &self.tracking_number, MAX_TOKEN_CHARS)
    }
}

/// Record that a shipped order reached the customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmDelivery {
    /// The order.
    pub order_id: OrderId,
}

impl Validate for ConfirmDelivery {
    fn validate(&self) -> Result<(), ValidationError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::Message;
    use crate::messages::fixtures;

    #[test]
    fn valid_place_order_passes() {
        assert_eq!(fixtures::place_order().validate(), Ok(()));
    }

    #[test]
    fn lines_must_be_present_bounded_positive_and_unique() {
        let mut empty = fixtures::place_order();
        empty.lines.clear();
        assert_eq!(
            empty.validate(),
            Err(ValidationError::new("lines", "must not be empty"))
        );

        let mut too_many = fixtures::place_order();
        too_many.lines = (0..=MAX_ORDER_LINES)
            .map(|i| OrderLine {
                sku: Sku::parse(&format!("SKU-{i}")).unwrap(),
                quantity: 1,
            })
            .collect();
        assert_eq!(too_many.validate().unwrap_err().field, "lines");

        let mut zero = fixtures::place_order();
        zero.lines[1].quantity = 0;
        assert_eq!(
            zero.validate(),
            Err(ValidationError::new(
                "lines[1].quantity",
                "must be more than zero, got 0"
            ))
        );

        let mut duplicate = fixtures::place_order();
        duplicate.lines[1].sku = duplicate.lines[0].sku.clone();
        let error = duplicate.validate().unwrap_err();
        assert_eq!(error.field, "lines[1].sku");
        assert!(error.reason.contains("lines[0]"), "{error}");
    }

    #[test]
    fn nested_address_errors_are_prefixed() {
        let mut order = fixtures::place_order();
        order.shipping_address.name = String::new();
        assert_eq!(order.validate().unwrap_err().field, "shipping_address.name");
    }

    #[test]
    fn token_and_texts_are_checked() {
        let mut order = fixtures::place_order();
        order.payment_method_token = " ".into();
        assert_eq!(order.validate().unwrap_err().field, "payment_method_token");
        let cancel = CancelOrder {
            order_id: fixtures::order_id(),
            user_id: fixtures::user_id(),
            reason: String::new(),
        };
        assert_eq!(cancel.validate().unwrap_err().field, "reason");
        let ship = ShipOrder {
            order_id: fixtures::order_id(),
            carrier: "DHL".into(),
            tracking_number: "JD 0146".into(),
        };
        assert_eq!(ship.validate().unwrap_err().field, "tracking_number");
    }

    #[test]
    fn keyed_by_order_id() {
        let command = OrderCommand::from(fixtures::place_order());
        assert_eq!(command.partition_key(), fixtures::order_id().to_string());
        assert_eq!(command.message_type(), "PlaceOrder");
        let delivery = OrderCommand::ConfirmDelivery(ConfirmDelivery {
            order_id: fixtures::order_id(),
        });
        assert_eq!(delivery.partition_key(), fixtures::order_id().to_string());
    }

    #[test]
    fn enum_serde_form_is_type_and_payload() {
        let command = OrderCommand::ConfirmDelivery(ConfirmDelivery {
            order_id: fixtures::order_id(),
        });
        let json = serde_json::to_value(&command).unwrap();
        assert_eq!(json["type"], "ConfirmDelivery");
        assert_eq!(
            json["payload"]["order_id"],
            fixtures::order_id().to_string()
        );
        assert_eq!(
            serde_json::from_value::<OrderCommand>(json).unwrap(),
            command
        );
    }
}
