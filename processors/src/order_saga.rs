//! The order saga, keyed by order id: validates and prices an order from the catalog, reserves
//! each line's stock, charges the payment, and confirms — or compensates exactly the steps that
//! happened (release reserved or committed stock, refund a charge) and ends in a terminal state.
//!
//! States: PENDING -> RESERVING -> AWAITING_PAYMENT -> CONFIRMED -> SHIPPED -> DELIVERED, with
//! terminals REJECTED, CANCELLED and PAYMENT_FAILED. A command that does not fit the state is
//! refused with a `TransitionRefused` event and changes nothing. Two durable wall-clock
//! deadlines (reservation, payment) move a stuck order to a terminal state.

use std::sync::Arc;

use orderflow_runtime::{FiredTimer, ProcessError, Processor, ProcessorContext, Record, TimerKind};
use orderflow_schemas::address::ShippingAddress;
use orderflow_schemas::codes::CouponCode;
use orderflow_schemas::currency::Currency;
use orderflow_schemas::envelope::{Envelope, Message};
use orderflow_schemas::ids::{EventId, OrderId, PaymentId, ReservationId, UserId};
use orderflow_schemas::messages::catalog_events::{CouponUpserted, Product};
use orderflow_schemas::messages::inventory_commands::{
    Commit, InventoryCommand, Release, ReleaseReason, Reserve,
};
use orderflow_schemas::messages::inventory_events::{InventoryEvent, StockRejectionReason};
use orderflow_schemas::messages::order_commands::{OrderCommand, PlaceOrder};
use orderflow_schemas::messages::order_events::{
    CancellationInitiator, LineRejection, LineRejectionReason, OrderCancelled, OrderConfirmed,
    OrderCreated, OrderDelivered, OrderEvent, OrderPaymentFailed, OrderRejected,
    OrderRejectionReason, OrderShipped, OrderStatus, OrderTotals, PricedLine, TransitionRefused,
};
use orderflow_schemas::messages::payment_commands::{CancelCharge, Charge, PaymentCommand, Refund};
use orderflow_schemas::messages::payment_events::PaymentEvent;
use orderflow_schemas::time::Timestamp;
use orderflow_state_stores::KeyValueStore;
use serde::{Deserialize, Serialize};

use crate::catalog::{COUPONS_TABLE, PRODUCTS_TABLE};
use crate::pricing::{LineToPrice, PricingError, PricingRules, price_order};
use crate::wire::Origin;

/// order id -> order state.
pub const ORDER_STORE: &str = "orders";

/// The saga's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default, rename_all = "kebab-case")]
pub struct SagaConfig {
    pub pricing: PricingRules,
    /// How long inventory holds a reservation before releasing it by itself.
    pub reservation_ttl_ms: i64,
    /// How long an order may wait for every line's reservation outcome.
    pub reservation_deadline_ms: i64,
    /// How long an order may wait for its payment outcome (retries included).
    pub payment_deadline_ms: i64,
}

impl SagaConfig {
    /// Refuses settings under which a reservation could expire before its order's deadlines
    /// pass (the order could then be confirmed on stock that was given back).
    pub fn validate(&self) -> Result<(), String> {
        let deadlines = self.reservation_deadline_ms + self.payment_deadline_ms;
        if self.reservation_ttl_ms <= deadlines {
            return Err(format!(
                "reservation-ttl-ms ({}) must exceed reservation-deadline-ms + payment-deadline-ms ({deadlines})",
                self.reservation_ttl_ms
            ));
        }
        Ok(())
    }
}

impl Default for SagaConfig {
    fn default() -> Self {
        Self {
            pricing: PricingRules::default(),
            reservation_ttl_ms: 15 * 60 * 1000,
            reservation_deadline_ms: 30 * 1000,
            payment_deadline_ms: 2 * 60 * 1000,
        }
    }
}

/// What the saga knows about one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineState {
    /// Reserve sent, no outcome yet.
    Pending,
    Reserved,
    Rejected,
    /// Release sent (compensation).
    Released,
    /// Commit sent (sold).
    Committed,
}

/// The saga's state of one order, kept in the `orders` store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderState {
    pub order_id: OrderId,
    pub user_id: UserId,
    pub status: OrderStatus,
    pub currency: Currency,
    pub lines: Vec<PricedLine>,
    pub line_states: Vec<LineState>,
    pub rejections: Vec<LineRejection>,
    pub totals: Option<OrderTotals>,
    pub coupon_code: Option<CouponCode>,
    pub shipping_address: ShippingAddress,
    pub payment_method_token: String,
    pub payment_id: PaymentId,
    pub charge_requested: bool,
    pub charged: bool,
    pub refund_requested: bool,
    pub refunded: bool,
    pub origin: Origin,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    /// When the deadline armed for the current status (reservation or payment) falls: the
    /// deadlines are fixed timers, cancelled by naming this time. `None` once cancelled, and
    /// in orders stored by builds whose deadlines were indexed timers (see
    /// [`crate::order_state_codec`]).
    pub deadline_at_ms: Option<i64>,
}

/// The saga's inputs, from its three co-partitioned topics.
#[derive(Debug, Clone)]
// Moved once per record between nodes; boxing would cost an allocation for no gain.
#[allow(clippy::large_enum_variant)]
pub enum SagaInput {
    Command(Envelope<OrderCommand>),
    Inventory(Envelope<InventoryEvent>),
    Payment(Envelope<PaymentEvent>),
}

/// The saga's outputs, one variant per output topic.
#[derive(Debug, Clone)]
// Moved once per record between nodes; boxing would cost an allocation for no gain.
#[allow(clippy::large_enum_variant)]
pub enum SagaOutput {
    Order(Envelope<OrderEvent>),
    Inventory(Envelope<InventoryCommand>),
    Payment(Envelope<PaymentCommand>),
}

/// Names of the saga's sinks.
pub const ORDER_EVENTS_SINK: &str = "saga-order-events";
pub const INVENTORY_COMMANDS_SINK: &str = "saga-inventory-commands";
pub const PAYMENT_COMMANDS_SINK: &str = "saga-payment-commands";

const RESERVATION_DEADLINE: &str = "reservation-deadline";
const PAYMENT_DEADLINE: &str = "payment-deadline";

/// The order saga processor.
#[derive(Debug, Clone, Default)]
pub struct OrderSaga {
    config: Arc<SagaConfig>,
}

impl OrderSaga {
    pub fn new(config: Arc<SagaConfig>) -> Self {
        Self { config }
    }
}

type Context<'a> = ProcessorContext<'a, String, SagaOutput>;

/// Emits through the right sink; collects nothing else, so the processor stays a function of
/// (state, input).
struct Emitter<'c, 'a> {
    context: &'c mut Context<'a>,
    origin: Origin,
    timestamp: i64,
}

impl Emitter<'_, '_> {
    fn order_event(&mut self, event: OrderEvent) -> Result<(), ProcessError> {
        let key = event.partition_key();
        let envelope = self.origin.envelope(event, self.context.now_ms());
        self.context.forward_to(
            ORDER_EVENTS_SINK,
            Record::new(key, SagaOutput::Order(envelope), self.timestamp),
        )
    }

    fn inventory_command(&mut self, command: InventoryCommand) -> Result<(), ProcessError> {
        let key = command.partition_key();
        let envelope = self.origin.envelope(command, self.context.now_ms());
        self.context.forward_to(
            INVENTORY_COMMANDS_SINK,
            Record::new(key, SagaOutput::Inventory(envelope), self.timestamp),
        )
    }

    fn payment_command(&mut self, command: PaymentCommand) -> Result<(), ProcessError> {
        let key = command.partition_key();
        let envelope = self.origin.envelope(command, self.context.now_ms());
        self.context.forward_to(
            PAYMENT_COMMANDS_SINK,
            Record::new(key, SagaOutput::Payment(envelope), self.timestamp),
        )
    }

    fn refused(
        &mut self,
        order_id: OrderId,
        command: &str,
        command_event_id: EventId,
        state: Option<OrderStatus>,
        reason: &str,
    ) -> Result<(), ProcessError> {
        self.order_event(OrderEvent::TransitionRefused(TransitionRefused {
            order_id,
            command: command.to_string(),
            command_event_id,
            state,
            reason: reason.to_string(),
        }))
    }
}

fn timer_key(order_id: &OrderId, deadline: &str) -> Vec<u8> {
    format!("{order_id}:{deadline}").into_bytes()
}

impl OrderSaga {
    fn load(context: &mut Context<'_>, order_id: &str) -> Result<Option<OrderState>, ProcessError> {
        Ok(context
            .key_value_store::<String, OrderState>(ORDER_STORE)?
            .get(&order_id.to_string())?)
    }

    fn save(context: &mut Context<'_>, state: &mut OrderState) -> Result<(), ProcessError> {
        state.updated_at_ms = context.now_ms();
        context
            .key_value_store::<String, OrderState>(ORDER_STORE)?
            .put(&state.order_id.to_string(), state)?;
        Ok(())
    }

    fn place(
        &self,
        emitter: &mut Emitter<'_, '_>,
        command: PlaceOrder,
        command_event_id: EventId,
    ) -> Result<(), ProcessError> {
        let key = command.order_id.to_string();
        if let Some(existing) = Self::load(emitter.context, &key)? {
            return emitter.refused(
                command.order_id,
                "PlaceOrder",
                command_event_id,
                Some(existing.status),
                "the order already exists",
            );
        }
        let now = emitter.context.now_ms();
        let mut state = OrderState {
            order_id: command.order_id,
            user_id: command.user_id,
            status: OrderStatus::Pending,
            currency: command.currency,
            lines: Vec::new(),
            line_states: Vec::new(),
            rejections: Vec::new(),
            totals: None,
            coupon_code: command.coupon_code.clone(),
            shipping_address: command.shipping_address.clone(),
            payment_method_token: command.payment_method_token.clone(),
            payment_id: PaymentId::generate(now),
            charge_requested: false,
            charged: false,
            refund_requested: false,
            refunded: false,
            origin: emitter.origin.clone(),
            created_at_ms: now,
            updated_at_ms: now,
            deadline_at_ms: None,
        };

        // Price every line from the catalog as it is now; later price changes never touch it.
        let mut to_price = Vec::with_capacity(command.lines.len());
        let mut rejections = Vec::new();
        {
            let products = emitter
                .context
                .global_table::<String, Product>(PRODUCTS_TABLE)?;
            for (index, line) in command.lines.iter().enumerate() {
                let reason = match products.get(&line.sku.to_string())? {
                    None => Some(LineRejectionReason::UnknownSku),
                    Some(product) if !product.is_orderable() => {
                        Some(LineRejectionReason::NotForSale)
                    }
                    Some(product) if product.price.currency != command.currency => {
                        Some(LineRejectionReason::PriceCurrencyMismatch)
                    }
                    Some(product) => {
                        to_price.push(LineToPrice {
                            sku: line.sku.clone(),
                            quantity: line.quantity,
                            unit_price: product.price,
                        });
                        None
                    }
                };
                if let Some(reason) = reason {
                    rejections.push(LineRejection {
                        line_index: index as u32,
                        sku: line.sku.clone(),
                        reason,
                        available: None,
                    });
                }
            }
        }
        let coupon = match &command.coupon_code {
            Some(code) => emitter
                .context
                .global_table::<String, CouponUpserted>(COUPONS_TABLE)?
                .get(&code.to_string())?,
            None => None,
        };
        let coupon_missing = command.coupon_code.is_some() && coupon.is_none();
        let priced = if rejections.is_empty() && !coupon_missing {
            match price_order(
                &to_price,
                command.currency,
                coupon.as_ref(),
                now,
                &command.shipping_address,
                &self.config.pricing,
            ) {
                Ok(priced) => Some(priced),
                Err(PricingError::InvalidCoupon { .. }) => None,
                Err(PricingError::Money(error)) => {
                    return Err(ProcessError::invalid(format!("pricing the order: {error}")));
                }
            }
        } else {
            None
        };
        let Some((lines, totals)) = priced else {
            state.status = OrderStatus::Rejected;
            state.rejections = rejections.clone();
            Self::save(emitter.context, &mut state)?;
            let order_reason = rejections
                .is_empty()
                .then_some(OrderRejectionReason::InvalidCoupon);
            return emitter.order_event(OrderEvent::OrderRejected(OrderRejected {
                order_id: state.order_id,
                user_id: state.user_id,
                reasons: rejections,
                order_reason,
            }));
        };

        state.status = OrderStatus::Reserving;
        state.line_states = vec![LineState::Pending; lines.len()];
        state.lines = lines.clone();
        state.totals = Some(totals.clone());
        Self::arm_deadline(
            emitter.context,
            &mut state,
            RESERVATION_DEADLINE,
            now + self.config.reservation_deadline_ms,
        );
        Self::save(emitter.context, &mut state)?;
        emitter.order_event(OrderEvent::OrderCreated(OrderCreated {
            order_id: state.order_id,
            user_id: state.user_id,
            lines: lines.clone(),
            currency: state.currency,
            coupon_code: command.coupon_code,
            totals,
            shipping_address: command.shipping_address,
        }))?;
        let expires_at = Timestamp::from_unix_millis(now + self.config.reservation_ttl_ms);
        for (index, line) in lines.into_iter().enumerate() {
            emitter.inventory_command(InventoryCommand::Reserve(Reserve {
                order_id: state.order_id,
                line_index: index as u32,
                reservation_id: ReservationId::generate(now),
                sku: line.sku,
                quantity: line.quantity,
                expires_at,
            }))?;
        }
        Ok(())
    }

    /// Arms the deadline of the order's new status as a fixed timer (one write; its time kept
    /// in the state for the cancel).
    fn arm_deadline(context: &mut Context<'_>, state: &mut OrderState, deadline: &str, due: i64) {
        context.schedule_fixed(
            TimerKind::WallClock,
            &timer_key(&state.order_id, deadline),
            due,
            Vec::new(),
        );
        state.deadline_at_ms = Some(due);
    }

    /// Sends Release for every line that holds stock (reserved or committed).
    fn release_held_lines(
        emitter: &mut Emitter<'_, '_>,
        state: &mut OrderState,
        reason: ReleaseReason,
    ) -> Result<(), ProcessError> {
        for (index, line_state) in state.line_states.iter_mut().enumerate() {
            if matches!(line_state, LineState::Reserved | LineState::Committed) {
                *line_state = LineState::Released;
                emitter.inventory_command(InventoryCommand::Release(Release {
                    order_id: state.order_id,
                    line_index: index as u32,
                    sku: state.lines[index].sku.clone(),
                    reason,
                }))?;
            }
        }
        Ok(())
    }

    fn refund_if_charged(
        emitter: &mut Emitter<'_, '_>,
        state: &mut OrderState,
        reason: &str,
    ) -> Result<(), ProcessError> {
        if !state.charged || state.refund_requested {
            return Ok(());
        }
        state.refund_requested = true;
        let amount = state
            .totals
            .as_ref()
            .map(|totals| totals.total)
            .expect("a charged order has totals");
        emitter.payment_command(PaymentCommand::Refund(Refund {
            order_id: state.order_id,
            payment_id: state.payment_id,
            amount,
            reason: reason.to_string(),
            idempotency_key: format!("{}:refund", state.order_id),
        }))
    }

    /// Tells the payment processor to stop charging when the order ends while its charge is
    /// still undecided (so no charge is made for an order that has ended; one already made is
    /// found and refunded).
    fn cancel_pending_charge(
        emitter: &mut Emitter<'_, '_>,
        state: &OrderState,
        reason: &str,
    ) -> Result<(), ProcessError> {
        if state.status != OrderStatus::AwaitingPayment || state.charged {
            return Ok(());
        }
        emitter.payment_command(PaymentCommand::CancelCharge(CancelCharge {
            order_id: state.order_id,
            payment_id: state.payment_id,
            reason: reason.to_string(),
        }))
    }

    /// Cancels the deadline armed for the order's status: the fixed timer at the time the
    /// state keeps. An order stored by a build whose deadlines were indexed timers keeps no
    /// time; its deadline is cancelled through the timer index.
    fn cancel_deadlines(
        context: &mut Context<'_>,
        state: &mut OrderState,
    ) -> Result<(), ProcessError> {
        let deadline = match state.status {
            OrderStatus::Reserving => RESERVATION_DEADLINE,
            OrderStatus::AwaitingPayment => PAYMENT_DEADLINE,
            _ => return Ok(()),
        };
        let key = timer_key(&state.order_id, deadline);
        match state.deadline_at_ms.take() {
            Some(due) => {
                context.cancel_fixed_timer(TimerKind::WallClock, &key, due);
                Ok(())
            }
            None => context.cancel_timer(TimerKind::WallClock, &key),
        }
    }

    /// Once every line has an outcome: charge, or release and reject.
    fn after_line_outcome(
        &self,
        emitter: &mut Emitter<'_, '_>,
        state: &mut OrderState,
    ) -> Result<(), ProcessError> {
        if state.line_states.contains(&LineState::Pending) {
            return Ok(());
        }
        Self::cancel_deadlines(emitter.context, state)?;
        if state.line_states.contains(&LineState::Rejected) {
            Self::release_held_lines(emitter, state, ReleaseReason::OrderRejected)?;
            state.status = OrderStatus::Rejected;
            return emitter.order_event(OrderEvent::OrderRejected(OrderRejected {
                order_id: state.order_id,
                user_id: state.user_id,
                reasons: state.rejections.clone(),
                order_reason: None,
            }));
        }
        state.status = OrderStatus::AwaitingPayment;
        state.charge_requested = true;
        let now = emitter.context.now_ms();
        emitter.payment_command(PaymentCommand::Charge(Charge {
            order_id: state.order_id,
            payment_id: state.payment_id,
            amount: state
                .totals
                .as_ref()
                .expect("created orders have totals")
                .total,
            payment_method_token: state.payment_method_token.clone(),
            idempotency_key: format!("{}:charge:1", state.order_id),
            attempt: 1,
        }))?;
        Self::arm_deadline(
            emitter.context,
            state,
            PAYMENT_DEADLINE,
            now + self.config.payment_deadline_ms,
        );
        Ok(())
    }

    fn on_inventory(
        &self,
        emitter: &mut Emitter<'_, '_>,
        event: InventoryEvent,
    ) -> Result<(), ProcessError> {
        let (order_id, line_index) = match &event {
            InventoryEvent::StockReserved(reserved) => (reserved.order_id, reserved.line_index),
            InventoryEvent::StockRejected(rejected) => (rejected.order_id, rejected.line_index),
            InventoryEvent::StockReleased(released) => (released.order_id, released.line_index),
            // Keyed by sku or already accounted for when the saga sent the Commit.
            InventoryEvent::StockCommitted(_)
            | InventoryEvent::StockUpdated(_)
            | InventoryEvent::StockLow(_) => return Ok(()),
        };
        let Some(mut state) = Self::load(emitter.context, &order_id.to_string())? else {
            return Ok(());
        };
        let index = line_index as usize;
        if index >= state.line_states.len() {
            return Err(ProcessError::invalid(format!(
                "order {order_id} has no line {line_index}"
            )));
        }
        match event {
            InventoryEvent::StockReserved(_) => {
                if state.line_states[index] != LineState::Pending {
                    return Ok(());
                }
                if state.status == OrderStatus::Reserving {
                    state.line_states[index] = LineState::Reserved;
                    self.after_line_outcome(emitter, &mut state)?;
                } else {
                    // The order ended while this reservation was in flight: give it back,
                    // saying why the order ended.
                    state.line_states[index] = LineState::Released;
                    let reason = match state.status {
                        OrderStatus::PaymentFailed => ReleaseReason::PaymentFailed,
                        OrderStatus::Cancelled => ReleaseReason::OrderCancelled,
                        _ => ReleaseReason::OrderRejected,
                    };
                    emitter.inventory_command(InventoryCommand::Release(Release {
                        order_id,
                        line_index,
                        sku: state.lines[index].sku.clone(),
                        reason,
                    }))?;
                }
            }
            InventoryEvent::StockRejected(rejected) => {
                if state.line_states[index] != LineState::Pending {
                    return Ok(());
                }
                state.line_states[index] = LineState::Rejected;
                state.rejections.push(LineRejection {
                    line_index,
                    sku: rejected.sku,
                    reason: match rejected.reason {
                        StockRejectionReason::InsufficientStock => {
                            LineRejectionReason::InsufficientStock
                        }
                        StockRejectionReason::UnknownSku => LineRejectionReason::UnknownSku,
                    },
                    available: Some(rejected.available),
                });
                if state.status == OrderStatus::Reserving {
                    self.after_line_outcome(emitter, &mut state)?;
                }
            }
            InventoryEvent::StockReleased(released) => {
                // Only an expiry matters here: our own releases were recorded when sent.
                let held = state.line_states[index] == LineState::Reserved;
                if released.reason != ReleaseReason::ReservationExpired || !held {
                    return Ok(());
                }
                state.line_states[index] = LineState::Released;
                if matches!(
                    state.status,
                    OrderStatus::Reserving | OrderStatus::AwaitingPayment
                ) {
                    Self::cancel_pending_charge(emitter, &state, "the reservation expired")?;
                    Self::cancel_deadlines(emitter.context, &mut state)?;
                    Self::release_held_lines(
                        emitter,
                        &mut state,
                        ReleaseReason::ReservationExpired,
                    )?;
                    Self::refund_if_charged(emitter, &mut state, "reservation expired")?;
                    state.status = OrderStatus::Rejected;
                    emitter.order_event(OrderEvent::OrderRejected(OrderRejected {
                        order_id,
                        user_id: state.user_id,
                        reasons: state.rejections.clone(),
                        order_reason: Some(OrderRejectionReason::ReservationExpired),
                    }))?;
                }
            }
            _ => unreachable!("filtered above"),
        }
        Self::save(emitter.context, &mut state)
    }

    fn on_payment(
        &self,
        emitter: &mut Emitter<'_, '_>,
        event: PaymentEvent,
    ) -> Result<(), ProcessError> {
        let order_id = match &event {
            PaymentEvent::PaymentSucceeded(succeeded) => succeeded.order_id,
            PaymentEvent::PaymentFailed(failed) => failed.order_id,
            PaymentEvent::PaymentRefunded(refunded) => refunded.order_id,
            PaymentEvent::PaymentInitiated(_) => return Ok(()),
        };
        let Some(mut state) = Self::load(emitter.context, &order_id.to_string())? else {
            return Ok(());
        };
        match event {
            PaymentEvent::PaymentSucceeded(succeeded) => {
                if state.charged {
                    return Ok(());
                }
                state.charged = true;
                if state.status == OrderStatus::AwaitingPayment {
                    Self::cancel_deadlines(emitter.context, &mut state)?;
                    state.status = OrderStatus::Confirmed;
                    for (index, line_state) in state.line_states.iter_mut().enumerate() {
                        *line_state = LineState::Committed;
                        emitter.inventory_command(InventoryCommand::Commit(Commit {
                            order_id,
                            line_index: index as u32,
                            sku: state.lines[index].sku.clone(),
                        }))?;
                    }
                    emitter.order_event(OrderEvent::OrderConfirmed(OrderConfirmed {
                        order_id,
                        user_id: state.user_id,
                        payment_id: succeeded.payment_id,
                        total: succeeded.amount,
                    }))?;
                } else {
                    // Charged after the order ended (timeout, cancel, expiry): pay it back.
                    Self::refund_if_charged(emitter, &mut state, "the order had already ended")?;
                }
            }
            PaymentEvent::PaymentFailed(failed) => {
                if state.status != OrderStatus::AwaitingPayment {
                    return Ok(());
                }
                Self::cancel_deadlines(emitter.context, &mut state)?;
                Self::release_held_lines(emitter, &mut state, ReleaseReason::PaymentFailed)?;
                state.status = OrderStatus::PaymentFailed;
                emitter.order_event(OrderEvent::OrderPaymentFailed(OrderPaymentFailed {
                    order_id,
                    user_id: state.user_id,
                    payment_id: failed.payment_id,
                    reason: failed.reason,
                }))?;
            }
            PaymentEvent::PaymentRefunded(_) => {
                state.refunded = true;
            }
            PaymentEvent::PaymentInitiated(_) => unreachable!("filtered above"),
        }
        Self::save(emitter.context, &mut state)
    }

    fn on_command(
        &self,
        emitter: &mut Emitter<'_, '_>,
        command: OrderCommand,
        command_event_id: EventId,
    ) -> Result<(), ProcessError> {
        let command_name = command.message_type();
        let (order_id, place) = match command {
            OrderCommand::PlaceOrder(place) => return self.place(emitter, place, command_event_id),
            OrderCommand::CancelOrder(ref cancel) => (cancel.order_id, command),
            OrderCommand::ShipOrder(ref ship) => (ship.order_id, command),
            OrderCommand::ConfirmDelivery(ref delivery) => (delivery.order_id, command),
        };
        let Some(mut state) = Self::load(emitter.context, &order_id.to_string())? else {
            return emitter.refused(
                order_id,
                command_name,
                command_event_id,
                None,
                "unknown order",
            );
        };
        let status = state.status;
        match place {
            OrderCommand::CancelOrder(cancel) => {
                if cancel.user_id != state.user_id {
                    return emitter.refused(
                        order_id,
                        command_name,
                        command_event_id,
                        Some(status),
                        "the order belongs to another user",
                    );
                }
                if !matches!(
                    status,
                    OrderStatus::Pending
                        | OrderStatus::Reserving
                        | OrderStatus::AwaitingPayment
                        | OrderStatus::Confirmed
                ) {
                    return emitter.refused(
                        order_id,
                        command_name,
                        command_event_id,
                        Some(status),
                        "an order can be cancelled only until it ships",
                    );
                }
                Self::cancel_pending_charge(emitter, &state, "cancelled by the customer")?;
                Self::cancel_deadlines(emitter.context, &mut state)?;
                Self::release_held_lines(emitter, &mut state, ReleaseReason::OrderCancelled)?;
                Self::refund_if_charged(emitter, &mut state, "cancelled by the customer")?;
                state.status = OrderStatus::Cancelled;
                emitter.order_event(OrderEvent::OrderCancelled(OrderCancelled {
                    order_id,
                    user_id: state.user_id,
                    reason: cancel.reason,
                    initiated_by: CancellationInitiator::Customer,
                    refunded: state.refund_requested,
                }))?;
            }
            OrderCommand::ShipOrder(ship) => {
                if status != OrderStatus::Confirmed {
                    return emitter.refused(
                        order_id,
                        command_name,
                        command_event_id,
                        Some(status),
                        "only a confirmed order can ship",
                    );
                }
                state.status = OrderStatus::Shipped;
                emitter.order_event(OrderEvent::OrderShipped(OrderShipped {
                    order_id,
                    user_id: state.user_id,
                    carrier: ship.carrier,
                    tracking_number: ship.tracking_number,
                }))?;
            }
            OrderCommand::ConfirmDelivery(_) => {
                if status != OrderStatus::Shipped {
                    return emitter.refused(
                        order_id,
                        command_name,
                        command_event_id,
                        Some(status),
                        "only a shipped order can be delivered",
                    );
                }
                state.status = OrderStatus::Delivered;
                emitter.order_event(OrderEvent::OrderDelivered(OrderDelivered {
                    order_id,
                    user_id: state.user_id,
                }))?;
            }
            OrderCommand::PlaceOrder(_) => unreachable!("handled above"),
        }
        Self::save(emitter.context, &mut state)
    }
}

impl Processor for OrderSaga {
    type InKey = String;
    type InValue = SagaInput;
    type OutKey = String;
    type OutValue = SagaOutput;

    fn process(
        &mut self,
        context: &mut Context<'_>,
        record: Record<String, SagaInput>,
    ) -> Result<(), ProcessError> {
        let timestamp = record.timestamp;
        match record.value {
            SagaInput::Command(envelope) => {
                let mut emitter = Emitter {
                    origin: Origin::caused_by(&envelope),
                    context,
                    timestamp,
                };
                self.on_command(&mut emitter, envelope.payload, envelope.event_id)
            }
            SagaInput::Inventory(envelope) => {
                let mut emitter = Emitter {
                    origin: Origin::caused_by(&envelope),
                    context,
                    timestamp,
                };
                self.on_inventory(&mut emitter, envelope.payload)
            }
            SagaInput::Payment(envelope) => {
                let mut emitter = Emitter {
                    origin: Origin::caused_by(&envelope),
                    context,
                    timestamp,
                };
                self.on_payment(&mut emitter, envelope.payload)
            }
        }
    }

    fn on_timer(
        &mut self,
        context: &mut Context<'_>,
        timer: FiredTimer,
    ) -> Result<(), ProcessError> {
        let key = String::from_utf8(timer.key)
            .map_err(|_| ProcessError::invalid("timer key is not UTF-8"))?;
        let Some((order_id, deadline)) = key.split_once(':') else {
            return Err(ProcessError::invalid(format!(
                "unexpected saga timer {key}"
            )));
        };
        let Some(mut state) = Self::load(context, order_id)? else {
            return Ok(());
        };
        let mut emitter = Emitter {
            origin: state.origin.clone(),
            context,
            timestamp: timer.due_ms,
        };
        match (deadline, state.status) {
            (RESERVATION_DEADLINE, OrderStatus::Reserving) => {
                Self::release_held_lines(
                    &mut emitter,
                    &mut state,
                    ReleaseReason::ReservationExpired,
                )?;
                state.status = OrderStatus::Rejected;
                emitter.order_event(OrderEvent::OrderRejected(OrderRejected {
                    order_id: state.order_id,
                    user_id: state.user_id,
                    reasons: state.rejections.clone(),
                    order_reason: Some(OrderRejectionReason::ReservationExpired),
                }))?;
            }
            (PAYMENT_DEADLINE, OrderStatus::AwaitingPayment) => {
                Self::cancel_pending_charge(&mut emitter, &state, "the payment timed out")?;
                Self::release_held_lines(&mut emitter, &mut state, ReleaseReason::PaymentFailed)?;
                state.status = OrderStatus::PaymentFailed;
                emitter.order_event(OrderEvent::OrderPaymentFailed(OrderPaymentFailed {
                    order_id: state.order_id,
                    user_id: state.user_id,
                    payment_id: state.payment_id,
                    reason: "the payment timed out".to_string(),
                }))?;
            }
            _ => return Ok(()),
        }
        // The deadline fired: nothing is left to cancel.
        state.deadline_at_ms = None;
        Self::save(emitter.context, &mut state)
    }
}
