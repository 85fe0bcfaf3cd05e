//! How the `orders` store keeps an [`OrderState`], across the shapes it has had.
//!
//! [`CompactCodec`] is positional (postcard): a field added to a stored type makes its old
//! values unreadable as the new shape. So each shape of `OrderState` has its own format byte:
//! - `0x02` (this build): postcard of [`OrderState`], which added `deadline_at_ms`;
//! - `0x01`: [`CompactCodec`]'s postcard of the shape before it ([`OrderStateV1`]);
//! - anything else: the JSON the first builds wrote, also in the first shape.
//!
//! Older values read with `deadline_at_ms: None`: their deadlines were indexed timers, which
//! the saga cancels through the index when it finds no time in the state.

use orderflow_schemas::address::ShippingAddress;
use orderflow_schemas::codes::CouponCode;
use orderflow_schemas::currency::Currency;
use orderflow_schemas::ids::{OrderId, PaymentId, UserId};
use orderflow_schemas::messages::order_events::{
    LineRejection, OrderStatus, OrderTotals, PricedLine,
};
use orderflow_state_stores::codec::{decode_compact, encode_compact};
use orderflow_state_stores::{Codec, CompactCodec};
use serde::{Deserialize, Serialize};

use crate::order_saga::{LineState, OrderState};
use crate::wire::Origin;

/// The first byte of an `OrderState` in its second shape.
pub const ORDER_STATE_FORMAT_V2: u8 = 0x02;

/// The `orders` store's value codec (module doc).
#[derive(Debug, Clone, Copy, Default)]
pub struct OrderStateCodec;

impl Codec<OrderState> for OrderStateCodec {
    fn encode(&self, value: &OrderState, out: &mut Vec<u8>) -> Result<(), String> {
        encode_compact(ORDER_STATE_FORMAT_V2, value, out)
    }

    fn decode(&self, bytes: &[u8]) -> Result<OrderState, String> {
        match bytes.split_first() {
            Some((&ORDER_STATE_FORMAT_V2, rest)) => decode_compact(rest, "order state v2"),
            _ => CompactCodec
                .decode(bytes)
                .map(|old: OrderStateV1| old.into()),
        }
    }
}

/// `OrderState` as stored before deadlines became fixed timers: the same fields, without
/// `deadline_at_ms`. Read only; never written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct OrderStateV1 {
    order_id: OrderId,
    user_id: UserId,
    status: OrderStatus,
    currency: Currency,
    lines: Vec<PricedLine>,
    line_states: Vec<LineState>,
    rejections: Vec<LineRejection>,
    totals: Option<OrderTotals>,
    coupon_code: Option<CouponCode>,
    shipping_address: ShippingAddress,
    payment_method_token: String,
    payment_id: PaymentId,
    charge_requested: bool,
    charged: bool,
    refund_requested: bool,
    refunded: bool,
    origin: Origin,
    created_at_ms: i64,
    updated_at_ms: i64,
}

impl From<OrderStateV1> for OrderState {
    fn from(old: OrderStateV1) -> Self {
        Self {
            order_id: old.order_id,
            user_id: old.user_id,
            status: old.status,
            currency: old.currency,
            lines: old.lines,
            line_states: old.line_states,
            rejections: old.rejections,
            totals: old.totals,
            coupon_code: old.coupon_code,
            shipping_address: old.shipping_address,
            payment_method_token: old.payment_method_token,
            payment_id: old.payment_id,
            charge_requested: old.charge_requested,
            charged: old.charged,
            refund_requested: old.refund_requested,
            refunded: old.refunded,
            origin: old.origin,
            created_at_ms: old.created_at_ms,
            updated_at_ms: old.updated_at_ms,
            deadline_at_ms: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An order in the middle of its payment, as the saga keeps it.
    fn awaiting_payment() -> OrderState {
        serde_json::from_value(serde_json::json!({
            "order_id": "01a21b42-fee1-7415-95f2-8842ad3cd138",
            "user_id": "00000000-0001-7000-8000-0000000000ef",
            "status": "awaiting_payment",
            "currency": "USD",
            "lines": [],
            "line_states": ["reserved"],
            "rejections": [],
            "totals": null,
            "coupon_code": null,
            "shipping_address": {
                "name": "Ada", "line1": "1 Main St", "line2": null, "city": "Springfield",
                "postal_code": "12345", "country": "US"
            },
            "payment_method_token": "tok_visa",
            "payment_id": "01a21b42-fee7-7ecf-ac6f-8e66d89d5a75",
            "charge_requested": true,
            "charged": false,
            "refund_requested": false,
            "refunded": false,
            "origin": {
                "correlation_id": "01a21b42-fee1-7bcc-b288-03dfef92b48b",
                "causation_id": null,
                "traceparent": null
            },
            "created_at_ms": 1_795_753_705_185_i64,
            "updated_at_ms": 1_795_753_705_209_i64,
            "deadline_at_ms": 1_795_753_825_209_i64
        }))
        .unwrap()
    }

    /// The state's JSON without the field the second shape added.
    fn first_shape_json(state: &OrderState) -> serde_json::Value {
        let mut json = serde_json::to_value(state).unwrap();
        json.as_object_mut().unwrap().remove("deadline_at_ms");
        json
    }

    #[test]
    fn the_current_shape_round_trips_with_its_deadline() {
        let state = awaiting_payment();
        let encoded = OrderStateCodec.encode_to_vec(&state).unwrap();
        assert_eq!(encoded[0], ORDER_STATE_FORMAT_V2);
        assert_eq!(OrderStateCodec.decode(&encoded).unwrap(), state);
        let mut longer = encoded.clone();
        longer.push(0);
        assert!(
            OrderStateCodec
                .decode(&longer)
                .unwrap_err()
                .contains("left")
        );
    }

    #[test]
    fn values_of_the_first_shape_read_without_a_deadline() {
        let state = awaiting_payment();
        let expected = OrderState {
            deadline_at_ms: None,
            ..state.clone()
        };
        let old: OrderStateV1 = serde_json::from_value(first_shape_json(&state)).unwrap();
        let compact = CompactCodec.encode_to_vec(&old).unwrap();
        assert_eq!(OrderStateCodec.decode(&compact).unwrap(), expected);
        let json = serde_json::to_vec(&first_shape_json(&state)).unwrap();
        assert_eq!(OrderStateCodec.decode(&json).unwrap(), expected);
        // The first shape's reader refuses the second shape rather than misreading it.
        let current = OrderStateCodec.encode_to_vec(&state).unwrap();
        assert!(<CompactCodec as Codec<OrderStateV1>>::decode(&CompactCodec, &current).is_err());
    }
}
