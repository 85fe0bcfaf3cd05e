//! Inventory, keyed by sku: the single writer of each sku's stock, so no sku is ever reserved
//! beyond its stock.
//!
//! `available = on_hand - reserved`. Reserve succeeds only if `available >= quantity`. Commit
//! takes reserved units out of `on_hand` (they are sold); Release gives them back (from a
//! reservation, or from a commit when a confirmed order is cancelled). StockUpdated follows
//! restocks, adjustments and releases. Every reservation has an
//! expiry on a durable wall-clock timer; one still held at expiry is released. A duplicate
//! Reserve, Release or Commit for the same (order, line) changes nothing.

use orderflow_runtime::{FiredTimer, ProcessError, Processor, ProcessorContext, Record, TimerKind};
use orderflow_schemas::codes::Sku;
use orderflow_schemas::envelope::{Envelope, Message};
use orderflow_schemas::ids::{OrderId, ReservationId};
use orderflow_schemas::messages::catalog_events::Product;
use orderflow_schemas::messages::inventory_commands::{InventoryCommand, ReleaseReason};
use orderflow_schemas::messages::inventory_events::{
    InventoryEvent, StockCommitted, StockLow, StockRejected, StockRejectionReason, StockReleased,
    StockReserved, StockUpdated,
};
use orderflow_state_stores::KeyValueStore;
use serde::{Deserialize, Serialize};

use crate::catalog::PRODUCTS_TABLE;
use crate::wire::Origin;

/// sku -> stock level.
pub const STOCK_STORE: &str = "inventory-stock";
/// `order:line` -> reservation.
pub const RESERVATION_STORE: &str = "inventory-reservations";

/// One sku's stock.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockLevel {
    pub on_hand: u32,
    pub reserved: u32,
    /// Units sold (committed) over the sku's life.
    pub committed: u32,
    /// Whether the last StockLow has not been followed by a recovery above the threshold.
    pub low: bool,
}

impl StockLevel {
    pub fn available(&self) -> u32 {
        self.on_hand - self.reserved
    }
}

/// Where a reservation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReservationState {
    Reserved,
    Rejected,
    Committed,
    Released,
    /// Committed, then released (a confirmed order cancelled before shipping): the units went
    /// back to stock, and a duplicate Commit must not take them again. (Last, so reservations
    /// stored before it still decode.)
    Returned,
}

/// One order line's reservation of a sku.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    pub reservation_id: ReservationId,
    pub order_id: OrderId,
    pub line_index: u32,
    pub sku: Sku,
    pub quantity: u32,
    pub expires_at_ms: i64,
    pub state: ReservationState,
    pub origin: Origin,
}

fn reservation_key(order_id: &OrderId, line_index: u32) -> String {
    format!("{order_id}:{line_index}")
}

/// The inventory processor.
#[derive(Debug, Default)]
pub struct InventoryProcessor;

type Context<'a> = ProcessorContext<'a, String, Envelope<InventoryEvent>>;

fn emit(context: &mut Context<'_>, origin: &Origin, event: InventoryEvent, timestamp: i64) {
    let key = event.partition_key();
    let envelope = origin.envelope(event, context.now_ms());
    context.forward(Record::new(key, envelope, timestamp));
}

impl InventoryProcessor {
    fn low_stock_threshold(context: &Context<'_>, sku: &Sku) -> Result<u32, ProcessError> {
        Ok(context
            .global_table::<String, Product>(PRODUCTS_TABLE)?
            .get(&sku.to_string())?
            .map_or(0, |product| product.low_stock_threshold))
    }

    /// Saves the level and emits StockLow once per downward crossing of the threshold.
    fn save_level(
        context: &mut Context<'_>,
        origin: &Origin,
        sku: &Sku,
        mut level: StockLevel,
        timestamp: i64,
    ) -> Result<StockLevel, ProcessError> {
        let threshold = Self::low_stock_threshold(context, sku)?;
        let available = level.available();
        // Low means at or below the threshold (as the catalog and the API say); a threshold
        // of 0 turns the alert off.
        let crossed_down = threshold > 0 && available <= threshold && !level.low;
        if crossed_down {
            level.low = true;
        } else if available > threshold {
            level.low = false;
        }
        context
            .key_value_store::<String, StockLevel>(STOCK_STORE)?
            .put(&sku.to_string(), &level)?;
        if crossed_down {
            emit(
                context,
                origin,
                InventoryEvent::StockLow(StockLow {
                    sku: sku.clone(),
                    available,
                    threshold,
                }),
                timestamp,
            );
        }
        Ok(level)
    }

    fn stock_updated(
        context: &mut Context<'_>,
        origin: &Origin,
        sku: &Sku,
        level: &StockLevel,
        timestamp: i64,
    ) {
        emit(
            context,
            origin,
            InventoryEvent::StockUpdated(StockUpdated {
                sku: sku.clone(),
                on_hand: level.on_hand,
                reserved: level.reserved,
                committed: level.committed,
            }),
            timestamp,
        );
    }

    fn load(context: &mut Context<'_>, sku: &Sku) -> Result<Option<StockLevel>, ProcessError> {
        Ok(context
            .key_value_store::<String, StockLevel>(STOCK_STORE)?
            .get(&sku.to_string())?)
    }

    /// Gives a reservation's units back; `Ok(false)` if there was nothing to give back.
    fn release(
        context: &mut Context<'_>,
        mut reservation: Reservation,
        reason: ReleaseReason,
        origin: &Origin,
        timestamp: i64,
    ) -> Result<bool, ProcessError> {
        let key = reservation_key(&reservation.order_id, reservation.line_index);
        let mut level = Self::load(context, &reservation.sku)?.unwrap_or_default();
        match reservation.state {
            ReservationState::Reserved => {
                level.reserved -= reservation.quantity;
                // The expiry is a fixed timer at the reservation's stored expiry.
                context.cancel_fixed_timer(
                    TimerKind::WallClock,
                    key.as_bytes(),
                    reservation.expires_at_ms,
                );
            }
            // A confirmed order cancelled before shipping: the sold units return to stock.
            ReservationState::Committed => {
                level.on_hand += reservation.quantity;
                level.committed -= reservation.quantity;
            }
            ReservationState::Rejected
            | ReservationState::Released
            | ReservationState::Returned => {
                return Ok(false);
            }
        }
        reservation.state = if reservation.state == ReservationState::Committed {
            ReservationState::Returned
        } else {
            ReservationState::Released
        };
        context
            .key_value_store::<String, Reservation>(RESERVATION_STORE)?
            .put(&key, &reservation)?;
        let level = Self::save_level(context, origin, &reservation.sku, level, timestamp)?;
        emit(
            context,
            origin,
            InventoryEvent::StockReleased(StockReleased {
                order_id: reservation.order_id,
                line_index: reservation.line_index,
                sku: reservation.sku.clone(),
                quantity: reservation.quantity,
                reason,
            }),
            timestamp,
        );
        Self::stock_updated(context, origin, &reservation.sku, &level, timestamp);
        Ok(true)
    }
}

impl Processor for InventoryProcessor {
    type InKey = String;
    type InValue = Envelope<InventoryCommand>;
    type OutKey = String;
    type OutValue = Envelope<InventoryEvent>;

    fn process(
        &mut self,
        context: &mut Context<'_>,
        record: Record<String, Envelope<InventoryCommand>>,
    ) -> Result<(), ProcessError> {
        let origin = Origin::caused_by(&record.value);
        let timestamp = record.timestamp;
        match record.value.payload {
            InventoryCommand::Restock(restock) => {
                let mut level = Self::load(context, &restock.sku)?.unwrap_or_default();
                level.on_hand = level.on_hand.checked_add(restock.quantity).ok_or_else(|| {
                    ProcessError::invalid(format!(
                        "restocking {} would overflow on-hand",
                        restock.sku
                    ))
                })?;
                let level = Self::save_level(context, &origin, &restock.sku, level, timestamp)?;
                Self::stock_updated(context, &origin, &restock.sku, &level, timestamp);
            }
            InventoryCommand::Adjust(adjust) => {
                let mut level = Self::load(context, &adjust.sku)?.unwrap_or_default();
                let adjusted = i64::from(level.on_hand) + adjust.delta;
                if adjusted < i64::from(level.reserved) || adjusted > i64::from(u32::MAX) {
                    return Err(ProcessError::invalid(format!(
                        "adjusting {} by {} leaves {adjusted} on hand, but {} are reserved",
                        adjust.sku, adjust.delta, level.reserved
                    )));
                }
                level.on_hand = adjusted as u32;
                let level = Self::save_level(context, &origin, &adjust.sku, level, timestamp)?;
                Self::stock_updated(context, &origin, &adjust.sku, &level, timestamp);
            }
            InventoryCommand::Reserve(reserve) => {
                let key = reservation_key(&reserve.order_id, reserve.line_index);
                let reservations =
                    context.key_value_store::<String, Reservation>(RESERVATION_STORE)?;
                if reservations.get(&key)?.is_some() {
                    return Ok(());
                }
                let level = Self::load(context, &reserve.sku)?;
                let available = level.as_ref().map_or(0, StockLevel::available);
                let granted = level.is_some() && available >= reserve.quantity;
                // A catalog product never restocked has no level yet: it is out of stock, not
                // unknown.
                let known = level.is_some()
                    || context
                        .global_table::<String, Product>(PRODUCTS_TABLE)?
                        .get(&reserve.sku.to_string())?
                        .is_some();
                let reservation = Reservation {
                    reservation_id: reserve.reservation_id,
                    order_id: reserve.order_id,
                    line_index: reserve.line_index,
                    sku: reserve.sku.clone(),
                    quantity: reserve.quantity,
                    expires_at_ms: reserve.expires_at.as_unix_millis(),
                    state: if granted {
                        ReservationState::Reserved
                    } else {
                        ReservationState::Rejected
                    },
                    origin: origin.clone(),
                };
                context
                    .key_value_store::<String, Reservation>(RESERVATION_STORE)?
                    .put(&key, &reservation)?;
                if !granted {
                    emit(
                        context,
                        &origin,
                        InventoryEvent::StockRejected(StockRejected {
                            order_id: reserve.order_id,
                            line_index: reserve.line_index,
                            sku: reserve.sku,
                            requested: reserve.quantity,
                            available,
                            reason: if known {
                                StockRejectionReason::InsufficientStock
                            } else {
                                StockRejectionReason::UnknownSku
                            },
                        }),
                        timestamp,
                    );
                    return Ok(());
                }
                let mut level = level.expect("granted implies a level");
                level.reserved += reserve.quantity;
                debug_assert!(level.reserved <= level.on_hand);
                Self::save_level(context, &origin, &reserve.sku, level, timestamp)?;
                // Fixed (one write, no index): the reservation keeps its expiry, and a
                // duplicate Reserve changes nothing, so the timer never moves.
                context.schedule_fixed(
                    TimerKind::WallClock,
                    key.as_bytes(),
                    reservation.expires_at_ms,
                    Vec::new(),
                );
                emit(
                    context,
                    &origin,
                    InventoryEvent::StockReserved(StockReserved {
                        order_id: reserve.order_id,
                        line_index: reserve.line_index,
                        reservation_id: reserve.reservation_id,
                        sku: reserve.sku,
                        quantity: reserve.quantity,
                        expires_at: reserve.expires_at,
                    }),
                    timestamp,
                );
            }
            InventoryCommand::Release(release) => {
                let key = reservation_key(&release.order_id, release.line_index);
                let reservation = context
                    .key_value_store::<String, Reservation>(RESERVATION_STORE)?
                    .get(&key)?;
                if let Some(reservation) = reservation {
                    Self::release(context, reservation, release.reason, &origin, timestamp)?;
                }
            }
            InventoryCommand::Commit(commit) => {
                let key = reservation_key(&commit.order_id, commit.line_index);
                let reservations =
                    context.key_value_store::<String, Reservation>(RESERVATION_STORE)?;
                let Some(mut reservation) = reservations.get(&key)? else {
                    return Ok(());
                };
                let mut level = Self::load(context, &reservation.sku)?.unwrap_or_default();
                match reservation.state {
                    ReservationState::Reserved => {
                        level.reserved -= reservation.quantity;
                    }
                    // The saga commits only lines it believes reserved, so a released one
                    // expired first (a TTL shorter than the order's deadlines, or clock skew):
                    // take the units now if they are still there.
                    ReservationState::Released if level.available() >= reservation.quantity => {}
                    ReservationState::Released => {
                        tracing::error!(
                            order = %reservation.order_id,
                            line = reservation.line_index,
                            sku = %reservation.sku,
                            "a confirmed order's reservation expired and its stock is gone: oversold, reconcile by hand"
                        );
                        return Ok(());
                    }
                    ReservationState::Committed
                    | ReservationState::Rejected
                    | ReservationState::Returned => return Ok(()),
                }
                reservation.state = ReservationState::Committed;
                context
                    .key_value_store::<String, Reservation>(RESERVATION_STORE)?
                    .put(&key, &reservation)?;
                context.cancel_fixed_timer(
                    TimerKind::WallClock,
                    key.as_bytes(),
                    reservation.expires_at_ms,
                );
                level.on_hand -= reservation.quantity;
                level.committed += reservation.quantity;
                Self::save_level(context, &origin, &reservation.sku, level, timestamp)?;
                emit(
                    context,
                    &origin,
                    InventoryEvent::StockCommitted(StockCommitted {
                        order_id: reservation.order_id,
                        line_index: reservation.line_index,
                        sku: reservation.sku.clone(),
                        quantity: reservation.quantity,
                    }),
                    timestamp,
                );
                // No StockUpdated here: commits are the hot path (one per order line), and
                // StockCommitted already says what changed.
            }
        }
        Ok(())
    }

    fn on_timer(
        &mut self,
        context: &mut Context<'_>,
        timer: FiredTimer,
    ) -> Result<(), ProcessError> {
        let key = String::from_utf8(timer.key)
            .map_err(|_| ProcessError::invalid("reservation timer key is not UTF-8"))?;
        let reservation = context
            .key_value_store::<String, Reservation>(RESERVATION_STORE)?
            .get(&key)?;
        if let Some(reservation) = reservation
            && reservation.state == ReservationState::Reserved
        {
            let origin = reservation.origin.clone();
            Self::release(
                context,
                reservation,
                ReleaseReason::ReservationExpired,
                &origin,
                timer.due_ms,
            )?;
        }
        Ok(())
    }
}
