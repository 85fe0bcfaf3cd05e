//! `order-events`: the order processor's record of every order's life. Keyed by order id. The
//! order view, notifications and analytics are built from these events; every event names the
//! customer so notifications need no extra lookup of the order.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::address::ShippingAddress;
use crate::catalog::ORDER_EVENTS;
use crate::codes::{CouponCode, Sku};
use crate::currency::Currency;
use crate::ids::{EventId, OrderId, PaymentId, UserId};
use crate::messages::inventory_commands::require_line_index;
use crate::messages::order_commands::validate_lines;
use crate::money::{Money, MoneyError};
use crate::validation::{
    MAX_NAME_CHARS, MAX_ORDER_LINES, MAX_REASON_CHARS, MAX_TOKEN_CHARS, Validate, ValidationError,
    require_currency, require_non_negative, require_positive_count, require_text, require_token,
};

message_enum! {
    /// Payload of `order-events`.
    pub enum OrderEvent on ORDER_EVENTS {
        /// An order was accepted and priced; the saga starts reserving stock.
        OrderCreated keyed by order_id,
        /// Stock is committed and payment captured: the order will be fulfilled.
        OrderConfirmed keyed by order_id,
        /// The order could not be fulfilled (stock, coupon, payment) and is closed; nothing is
        /// charged.
        OrderRejected keyed by order_id,
        /// The order was cancelled on request; compensation has been issued.
        OrderCancelled keyed by order_id,
        /// The order left the warehouse.
        OrderShipped keyed by order_id,
        /// The order reached the customer (terminal).
        OrderDelivered keyed by order_id,
        /// A charge attempt failed; the saga will retry or reject the order.
        OrderPaymentFailed keyed by order_id,
        /// A command was not applicable to the order's state and changed nothing.
        TransitionRefused keyed by order_id,
    }
}

/// Where an order is in its life, as the order processor tracks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Received and being validated and priced.
    Pending,
    /// Created; stock reservations are in flight.
    Reserving,
    /// Every line is reserved; the charge is in flight.
    AwaitingPayment,
    /// Paid and committed.
    Confirmed,
    /// Handed to the carrier.
    Shipped,
    /// Delivered (terminal).
    Delivered,
    /// Rejected before payment (terminal).
    Rejected,
    /// Cancelled (terminal).
    Cancelled,
    /// The charge failed or timed out; reservations were released (terminal).
    PaymentFailed,
}

impl OrderStatus {
    /// Whether no further transition is possible.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Delivered | Self::Rejected | Self::Cancelled | Self::PaymentFailed
        )
    }
}

/// An ordered line with the price the order processor took from the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PricedLine {
    /// The product.
    pub sku: Sku,
    /// Units ordered; at least 1.
    #[schemars(range(min = 1))]
    pub quantity: u32,
    /// Catalog unit price at the time the order was created.
    pub unit_price: Money,
    /// `unit_price × quantity`, exactly.
    pub line_total: Money,
}

impl Validate for PricedLine {
    fn validate(&self) -> Result<(), ValidationError> {
        require_positive_count("quantity", self.quantity)?;
        require_non_negative("unit_price", &self.unit_price)?;
        let expected = self
            .unit_price
            .checked_mul(self.quantity)
            .map_err(|error| {
                ValidationError::new("line_total", format!("cannot be computed: {error}"))
            })?;
        if self.line_total != expected {
            return Err(ValidationError::new(
                "line_total",
                format!(
                    "must equal unit_price × quantity = {expected}, got {}",
                    self.line_total
                ),
            ));
        }
        Ok(())
    }
}

/// The money summary of an order, all in the order's currency:
/// `total = subtotal - discount + tax + shipping`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderTotals {
    /// Sum of the line totals.
    pub subtotal: Money,
    /// Coupon discount; zero or more, at most the subtotal.
    pub discount: Money,
    /// Tax; zero or more.
    pub tax: Money,
    /// Shipping charge; zero or more.
    pub shipping: Money,
    /// What the customer pays.
    pub total: Money,
}

impl OrderTotals {
    /// Totals with `total` computed from the parts; errors on mixed currencies or overflow.
    pub fn compute(
        subtotal: Money,
        discount: Money,
        tax: Money,
        shipping: Money,
    ) -> Result<Self, MoneyError> {
        let total = subtotal
            .checked_sub(discount)?
            .checked_add(tax)?
            .checked_add(shipping)?;
        Ok(Self {
            subtotal,
            discount,
            tax,
            shipping,
            total,
        })
    }

    /// Checks the totals are in `currency`, non-negative, and add up.
    fn validate_in(&self, currency: Currency) -> Result<(), ValidationError> {
        for (field, amount) in [
            ("subtotal", &self.subtotal),
            ("discount", &self.discount),
            ("tax", &self.tax),
            ("shipping", &self.shipping),
            ("total", &self.total),
        ] {
            require_currency(field, amount, currency)?;
            require_non_negative(field, amount)?;
        }
        if self.discount.amount_minor > self.subtotal.amount_minor {
            return Err(ValidationError::new(
                "discount",
                format!(
                    "must not exceed the subtotal {}, got {}",
                    self.subtotal, self.discount
                ),
            ));
        }
        let recomputed = Self::compute(self.subtotal, self.discount, self.tax, self.shipping)
            .map_err(|error| {
                ValidationError::new("total", format!("cannot be computed: {error}"))
            })?;
        if recomputed.total != self.total {
            return Err(ValidationError::new(
                "total",
                format!(
                    "must equal subtotal - discount + tax + shipping = {}, got {}",
                    recomputed.total, self.total
                ),
            ));
        }
        Ok(())
    }
}

/// An order was accepted and priced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderCreated {
    /// The order.
    pub order_id: OrderId,
    /// The customer.
    pub user_id: UserId,
    /// Priced lines, in the order the customer gave them; `line_index` elsewhere indexes this.
    #[schemars(length(min = 1, max = 100))]
    pub lines: Vec<PricedLine>,
    /// The order's currency; every amount in this event is in it.
    pub currency: Currency,
    /// The coupon applied, if any.
    pub coupon_code: Option<CouponCode>,
    /// Money summary.
    pub totals: OrderTotals,
    /// Where to deliver.
    pub shipping_address: ShippingAddress,
}

impl Validate for OrderCreated {
    fn validate(&self) -> Result<(), ValidationError> {
        validate_lines("lines", &self.lines, |line| &line.sku)?;
        for (index, line) in self.lines.iter().enumerate() {
            require_currency(
                &format!("lines[{index}].unit_price"),
                &line.unit_price,
                self.currency,
            )?;
        }
        self.totals
            .validate_in(self.currency)
            .map_err(|error| error.within("totals"))?;
        let line_sum = Money::checked_sum(self.currency, self.lines.iter().map(|l| l.line_total))
            .map_err(|error| {
            ValidationError::new("totals.subtotal", format!("cannot be computed: {error}"))
        })?;
        if line_sum != self.totals.subtotal {
            return Err(ValidationError::new(
                "totals.subtotal",
                format!(
                    "must equal the sum of line totals {line_sum}, got {}",
                    self.totals.subtotal
                ),
            ));
        }
        self.shipping_address
            .validate()
            .map_err(|error| error.within("shipping_address"))
    }
}

/// Payment is captured and stock committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderConfirmed {
    /// The order.
    pub order_id: OrderId,
    /// The customer.
    pub user_id: UserId,
    /// The payment that succeeded.
    pub payment_id: PaymentId,
    /// Amount captured.
    pub total: Money,
}

impl Validate for OrderConfirmed {
    fn validate(&self) -> Result<(), ValidationError> {
        require_non_negative("total", &self.total)
    }
}

/// Why one line could not be fulfilled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LineRejectionReason {
    /// Fewer units available than ordered.
    InsufficientStock,
    /// No such product.
    UnknownSku,
    /// The product is inactive or discontinued.
    NotForSale,
    /// The catalog price is in another currency than the order.
    PriceCurrencyMismatch,
}

/// One line that could not be fulfilled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LineRejection {
    /// Index of the line in the order.
    pub line_index: u32,
    /// The line's product.
    pub sku: Sku,
    /// Why.
    pub reason: LineRejectionReason,
    /// Units that were available, when the reason is stock (so the customer can order fewer).
    pub available: Option<u32>,
}

impl Validate for LineRejection {
    fn validate(&self) -> Result<(), ValidationError> {
        require_line_index(self.line_index)
    }
}

/// Why a whole order was rejected, beyond individual lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderRejectionReason {
    /// The coupon is unknown, expired, or its conditions are not met.
    InvalidCoupon,
    /// The payment failed for good (declined, or retries exhausted).
    PaymentFailed,
    /// The payment did not complete before the order's payment deadline.
    PaymentTimedOut,
    /// A stock reservation lapsed before payment completed.
    ReservationExpired,
}

/// The order is closed without being fulfilled; nothing stays charged or reserved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderRejected {
    /// The order.
    pub order_id: OrderId,
    /// The customer.
    pub user_id: UserId,
    /// The lines that could not be fulfilled; may be empty when `order_reason` says why.
    #[schemars(length(max = 100))]
    pub reasons: Vec<LineRejection>,
    /// An order-level reason; required when `reasons` is empty.
    pub order_reason: Option<OrderRejectionReason>,
}

impl Validate for OrderRejected {
    fn validate(&self) -> Result<(), ValidationError> {
        if self.reasons.is_empty() && self.order_reason.is_none() {
            return Err(ValidationError::new(
                "reasons",
                "must not be empty when there is no order_reason",
            ));
        }
        if self.reasons.len() > MAX_ORDER_LINES {
            return Err(ValidationError::new(
                "reasons",
                format!(
                    "must have at most {MAX_ORDER_LINES} entries, got {}",
                    self.reasons.len()
                ),
            ));
        }
        for (index, rejection) in self.reasons.iter().enumerate() {
            let path = format!("reasons[{index}]");
            rejection.validate().map_err(|error| error.within(&path))?;
            if self.reasons[..index]
                .iter()
                .any(|earlier| earlier.line_index == rejection.line_index)
            {
                return Err(ValidationError::new(
                    format!("{path}.line_index"),
                    format!("line {} is rejected more than once", rejection.line_index),
                ));
            }
        }
        Ok(())
    }
}

/// Who cancelled an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CancellationInitiator {
    /// The customer.
    Customer,
    /// An operator.
    Admin,
}

/// The order was cancelled; reserved stock is released and, if it had been charged, a refund is
/// issued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderCancelled {
    /// The order.
    pub order_id: OrderId,
    /// The customer.
    pub user_id: UserId,
    /// The requester's reason.
    pub reason: String,
    /// Who asked.
    pub initiated_by: CancellationInitiator,
    /// Whether a refund was issued (the order had been charged).
    pub refunded: bool,
}

impl Validate for OrderCancelled {
    fn validate(&self) -> Result<(), ValidationError> {
        require_text("reason", &self.reason, MAX_REASON_CHARS)
    }
}

/// The order left the warehouse.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderShipped {
    /// The order.
    pub order_id: OrderId,
    /// The customer.
    pub user_id: UserId,
    /// Carrier name.
    pub carrier: String,
    /// The carrier's tracking number.
    pub tracking_number: String,
}

impl Validate for OrderShipped {
    fn validate(&self) -> Result<(), ValidationError> {
        require_text("carrier", &self.carrier, MAX_NAME_CHARS)?;
        require_token("tracking_number", &self.tracking_number, MAX_TOKEN_CHARS)
    }
}

/// The order reached the customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderDelivered {
    /// The order.
    pub order_id: OrderId,
    /// The customer.
    pub user_id: UserId,
}

impl Validate for OrderDelivered {
    fn validate(&self) -> Result<(), ValidationError> {
        Ok(())
    }
}

/// A charge attempt failed. The saga retries retriable failures; otherwise it rejects the order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderPaymentFailed {
    /// The order.
    pub order_id: OrderId,
    /// The customer.
    pub user_id: UserId,
    /// The failed payment.
    pub payment_id: PaymentId,
    /// The provider's or processor's explanation, safe to show the customer.
    pub reason: String,
}

impl Validate for OrderPaymentFailed {
    fn validate(&self) -> Result<(), ValidationError> {
        require_text("reason", &self.reason, MAX_REASON_CHARS)
    }
}

/// A command arrived that the order's state does not allow (e.g. cancelling a shipped order);
/// nothing changed. Lets the API answer the requester instead of leaving them waiting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TransitionRefused {
    /// The order named by the command.
    pub order_id: OrderId,
    /// The refused command's message type, e.g. `CancelOrder`.
    pub command: String,
    /// Event id of the refused command's envelope.
    pub command_event_id: EventId,
    /// The order's state when the command arrived; `None` if there is no such order.
    pub state: Option<OrderStatus>,
    /// Why, e.g. `order already shipped`.
    pub reason: String,
}

impl Validate for TransitionRefused {
    fn validate(&self) -> Result<(), ValidationError> {
        require_token("command", &self.command, MAX_NAME_CHARS)?;
        require_text("reason", &self.reason, MAX_REASON_CHARS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::Message;
    use crate::messages::fixtures;

    #[test]
    fn consistent_order_created_passes() {
        assert_eq!(fixtures::order_created().validate(), Ok(()));
    }

    #[test]
    fn line_totals_must_match_prices() {
        let mut order = fixtures::order_created();
        order.lines[0].line_total = fixtures::usd(1);
        let error = order.validate().unwrap_err();
        assert_eq!(error.field, "lines[0].line_total");
        assert!(error.reason.contains("unit_price × quantity"), "{error}");
    }

    #[test]
    fn currencies_must_agree_inside_one_order() {
        let mut order = fixtures::order_created();
        order.lines[1].unit_price =
            Money::new(order.lines[1].unit_price.amount_minor, Currency::EUR);
        order.lines[1].line_total =
            Money::new(order.lines[1].line_total.amount_minor, Currency::EUR);
        assert_eq!(order.validate().unwrap_err().field, "lines[1].unit_price");

        let mut order = fixtures::order_created();
        order.totals.tax = Money::new(0, Currency::EUR);
        assert_eq!(order.validate().unwrap_err().field, "totals.tax");
    }

    #[test]
    fn totals_must_add_up() {
        let mut order = fixtures::order_created();
        order.totals.total = order.totals.total.checked_add(fixtures::usd(1)).unwrap();
        assert_eq!(order.validate().unwrap_err().field, "totals.total");

        let mut order = fixtures::order_created();
        order.totals.subtotal = order.totals.subtotal.checked_add(fixtures::usd(1)).unwrap();
        order.totals.total = order.totals.total.checked_add(fixtures::usd(1)).unwrap();
        assert_eq!(order.validate().unwrap_err().field, "totals.subtotal");

        let mut order = fixtures::order_created();
        order.totals.discount = order.totals.subtotal.checked_add(fixtures::usd(1)).unwrap();
        assert_eq!(order.validate().unwrap_err().field, "totals.discount");
    }

    #[test]
    fn compute_totals() {
        let totals = OrderTotals::compute(
            fixtures::usd(10_000),
            fixtures::usd(1_000),
            fixtures::usd(720),
            fixtures::usd(499),
        )
        .unwrap();
        assert_eq!(totals.total, fixtures::usd(10_219));
        assert!(
            OrderTotals::compute(
                fixtures::usd(1),
                Money::new(1, Currency::EUR),
                fixtures::usd(0),
                fixtures::usd(0)
            )
            .is_err()
        );
    }

    #[test]
    fn rejection_needs_a_reason_and_unique_lines() {
        let mut rejected = OrderRejected {
            order_id: fixtures::order_id(),
            user_id: fixtures::user_id(),
            reasons: vec![],
            order_reason: None,
        };
        assert_eq!(rejected.validate().unwrap_err().field, "reasons");
        rejected.order_reason = Some(OrderRejectionReason::InvalidCoupon);
        assert_eq!(rejected.validate(), Ok(()));
        let line = LineRejection {
            line_index: 1,
            sku: fixtures::sku("MUG"),
            reason: LineRejectionReason::InsufficientStock,
            available: Some(2),
        };
        rejected.reasons = vec![line.clone(), line];
        assert_eq!(
            rejected.validate().unwrap_err().field,
            "reasons[1].line_index"
        );
    }

    #[test]
    fn terminal_states() {
        assert!(OrderStatus::Delivered.is_terminal());
        assert!(OrderStatus::Cancelled.is_terminal());
        assert!(OrderStatus::Rejected.is_terminal());
        assert!(!OrderStatus::Shipped.is_terminal());
        assert!(!OrderStatus::AwaitingPayment.is_terminal());
    }

    #[test]
    fn keyed_by_order_id() {
        let event = OrderEvent::from(fixtures::order_created());
        assert_eq!(event.partition_key(), fixtures::order_id().to_string());
    }
}
