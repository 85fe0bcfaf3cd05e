//! Analytics: windowed aggregates of the shop's events.
//!
//! Two steps. The fact extractor (keyed by order id, reading order, payment and inventory
//! events) turns each event into facts — a metric, a dimension ("all", a currency, a category, a
//! sku), a count and an optional amount — keyed by `metric|dimension` onto an internal topic, so
//! each dimension's windows live in one task. The window aggregator adds facts into 1-minute
//! tumbling and 1-hour hopping (10-minute advance) windows by event time. A fact for a window
//! that closed more than the grace period ago is dropped (counted); every window's final result
//! is emitted once, on a stream-time timer at its end plus the grace period.
//!
//! An hour window is the sum of its six 10-minute *panes*: a fact adds to one pane instead of
//! six windows, and a window's timer (scheduled when one of its panes is first written) sums
//! its panes when it fires. A pane is deleted when the last window containing it is reported.

use std::sync::Arc;

use orderflow_runtime::{FiredTimer, ProcessError, Processor, ProcessorContext, Record, TimerKind};
use orderflow_schemas::codes::Sku;
use orderflow_schemas::envelope::Envelope;
use orderflow_schemas::messages::analytics::{
    AnalyticsAggregate, AnalyticsMetric, WindowAggregate,
};
use orderflow_schemas::messages::catalog_events::Product;
use orderflow_schemas::messages::inventory_events::InventoryEvent;
use orderflow_schemas::messages::order_events::OrderEvent;
use orderflow_schemas::messages::payment_events::PaymentEvent;
use orderflow_schemas::money::Money;
use orderflow_schemas::time::Timestamp;
use orderflow_state_stores::{Codec, CompactCodec, KeyValueStore, WindowStore};
use serde::{Deserialize, Serialize};

use crate::catalog::PRODUCTS_TABLE;
use crate::wire::Origin;

/// Internal topic of facts, keyed by `metric|dimension`.
pub const FACTS_TOPIC: &str = "orderflow-analytics-facts";
/// order id -> the order's lines with their categories, until the order settles.
pub const ORDER_LINES_STORE: &str = "analytics-order-lines";
/// order id -> 1 for confirmed orders until they ship, so only their refunds reduce revenue.
pub const CONFIRMED_ORDERS_STORE: &str = "analytics-confirmed-orders";
/// Window store of the 1-minute tumbling windows.
pub const MINUTE_WINDOWS: &str = "analytics-windows-1m";
/// Window store of the 10-minute panes the 1-hour hopping windows are summed from. Panes are
/// deleted when their last window is reported, never by time (see [`PANE_RETENTION_MS`]).
pub const HOUR_PANES: &str = "analytics-panes-10m";
/// The panes' store never expires a pane by time: a pane must outlive every window containing
/// it however far stream time jumps before their timers fire, and each is deleted explicitly.
pub const PANE_RETENTION_MS: i64 = i64::MAX / 4;

/// Timer key shapes: a 1-minute window (carrying its total), a 1-hour window as written before
/// panes (carrying its total), a 1-hour window summed from panes (no payload).
const MINUTE_TIMER: usize = 0;
const LEGACY_HOUR_TIMER: usize = 1;
const HOUR_TIMER: usize = 2;

/// Window and lateness settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default, rename_all = "kebab-case")]
pub struct AnalyticsConfig {
    /// How late (event time behind stream time) a fact may arrive and still count.
    pub grace_ms: i64,
}

impl Default for AnalyticsConfig {
    fn default() -> Self {
        Self { grace_ms: 30_000 }
    }
}

/// One window shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowShape {
    /// The window store the shape's totals are kept in (whole windows, or panes).
    pub store: &'static str,
    pub size_ms: i64,
    pub advance_ms: i64,
}

/// The two window shapes the aggregator reports: 1-minute tumbling (kept whole in
/// [`MINUTE_WINDOWS`]) and 1-hour hopping (summed from [`HOUR_PANES`]).
pub const WINDOW_SHAPES: [WindowShape; 2] = [
    WindowShape {
        store: MINUTE_WINDOWS,
        size_ms: 60_000,
        advance_ms: 60_000,
    },
    WindowShape {
        store: HOUR_PANES,
        size_ms: 3_600_000,
        advance_ms: 600_000,
    },
];

impl WindowShape {
    /// Starts of every window of this shape that contains `time`, oldest first.
    pub fn windows_containing(&self, time: i64) -> Vec<i64> {
        let last_start = time - time.rem_euclid(self.advance_ms);
        let mut starts = Vec::new();
        let mut start = last_start;
        while start > time - self.size_ms {
            starts.push(start);
            start -= self.advance_ms;
        }
        starts.reverse();
        starts
    }

    /// How long a window store must keep windows: the window, its grace, and a margin.
    pub fn retention_ms(&self, grace_ms: i64) -> i64 {
        2 * self.size_ms + grace_ms
    }
}

/// A fact: one increment of one metric in one dimension at one event time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fact {
    pub metric: AnalyticsMetric,
    pub dimension: String,
    pub count: u64,
    pub amount: Option<Money>,
    pub event_time: i64,
}

impl Fact {
    fn key(&self) -> String {
        format!("{}|{}", metric_name(self.metric), self.dimension)
    }
}

fn metric_name(metric: AnalyticsMetric) -> String {
    serde_json::to_value(metric)
        .ok()
        .and_then(|value| value.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("{metric:?}"))
}

/// What the fact extractor reads.
#[derive(Debug, Clone)]
// Moved once per record between nodes; boxing would cost an allocation for no gain.
#[allow(clippy::large_enum_variant)]
pub enum AnalyticsInput {
    Order(Envelope<OrderEvent>),
    Payment(Envelope<PaymentEvent>),
    Inventory(Envelope<InventoryEvent>),
}

/// A line of an order, with the category it had when ordered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategorizedLine {
    pub sku: Sku,
    pub category: String,
    pub quantity: u32,
    pub line_total: Money,
}

/// Turns events into facts.
#[derive(Debug, Default)]
pub struct FactExtractor;

type FactContext<'a> = ProcessorContext<'a, String, Fact>;

fn fact(
    context: &mut FactContext<'_>,
    metric: AnalyticsMetric,
    dimension: String,
    count: u64,
    amount: Option<Money>,
    event_time: i64,
) {
    let fact = Fact {
        metric,
        dimension,
        count,
        amount,
        event_time,
    };
    context.forward(Record::new(fact.key(), fact, event_time));
}

impl Processor for FactExtractor {
    type InKey = String;
    type InValue = AnalyticsInput;
    type OutKey = String;
    type OutValue = Fact;

    fn process(
        &mut self,
        context: &mut FactContext<'_>,
        record: Record<String, AnalyticsInput>,
    ) -> Result<(), ProcessError> {
        let all = || "all".to_string();
        match record.value {
            AnalyticsInput::Order(envelope) => {
                let time = envelope.occurred_at.as_unix_millis();
                match envelope.payload {
                    OrderEvent::OrderCreated(created) => {
                        let mut lines = Vec::with_capacity(created.lines.len());
                        {
                            let products =
                                context.global_table::<String, Product>(PRODUCTS_TABLE)?;
                            for line in &created.lines {
                                let category = products.get(&line.sku.to_string())?.map_or_else(
                                    || "uncategorized".to_string(),
                                    |product| product.category,
                                );
                                lines.push(CategorizedLine {
                                    sku: line.sku.clone(),
                                    category,
                                    quantity: line.quantity,
                                    line_total: line.line_total,
                                });
                            }
                        }
                        context
                            .key_value_store::<String, Vec<CategorizedLine>>(ORDER_LINES_STORE)?
                            .put(&created.order_id.to_string(), &lines)?;
                        fact(
                            context,
                            AnalyticsMetric::OrdersCreated,
                            all(),
                            1,
                            None,
                            time,
                        );
                    }
                    OrderEvent::OrderConfirmed(confirmed) => {
                        fact(
                            context,
                            AnalyticsMetric::OrdersConfirmed,
                            all(),
                            1,
                            None,
                            time,
                        );
                        let currency = confirmed.total.currency;
                        fact(
                            context,
                            AnalyticsMetric::Revenue,
                            currency.to_string(),
                            1,
                            Some(confirmed.total),
                            time,
                        );
                        context
                            .key_value_store::<String, u8>(CONFIRMED_ORDERS_STORE)?
                            .put(&confirmed.order_id.to_string(), &1)?;
                        // The lines stay until the order ships: a refund before then takes
                        // their revenue and units back.
                        let lines = context
                            .key_value_store::<String, Vec<CategorizedLine>>(ORDER_LINES_STORE)?
                            .get(&confirmed.order_id.to_string())?
                            .unwrap_or_default();
                        for line in lines {
                            fact(
                                context,
                                AnalyticsMetric::Revenue,
                                format!("category:{}:{}", line.category, currency),
                                1,
                                Some(line.line_total),
                                time,
                            );
                            fact(
                                context,
                                AnalyticsMetric::UnitsSold,
                                format!("sku:{}", line.sku),
                                u64::from(line.quantity),
                                None,
                                time,
                            );
                        }
                    }
                    // Shipped orders can no longer be cancelled, so no refund will follow.
                    OrderEvent::OrderShipped(shipped) => {
                        let key = shipped.order_id.to_string();
                        context
                            .key_value_store::<String, u8>(CONFIRMED_ORDERS_STORE)?
                            .delete(&key)?;
                        context
                            .key_value_store::<String, Vec<CategorizedLine>>(ORDER_LINES_STORE)?
                            .delete(&key)?;
                    }
                    OrderEvent::OrderRejected(rejected) => {
                        context
                            .key_value_store::<String, Vec<CategorizedLine>>(ORDER_LINES_STORE)?
                            .delete(&rejected.order_id.to_string())?;
                        fact(
                            context,
                            AnalyticsMetric::OrdersRejected,
                            all(),
                            1,
                            None,
                            time,
                        );
                    }
                    OrderEvent::OrderCancelled(cancelled) => {
                        // A confirmed order's lines wait for its refund (below).
                        let key = cancelled.order_id.to_string();
                        if context
                            .key_value_store::<String, u8>(CONFIRMED_ORDERS_STORE)?
                            .get(&key)?
                            .is_none()
                        {
                            context
                                .key_value_store::<String, Vec<CategorizedLine>>(ORDER_LINES_STORE)?
                                .delete(&key)?;
                        }
                        fact(
                            context,
                            AnalyticsMetric::OrdersCancelled,
                            all(),
                            1,
                            None,
                            time,
                        );
                    }
                    OrderEvent::OrderPaymentFailed(failed) => {
                        context
                            .key_value_store::<String, Vec<CategorizedLine>>(ORDER_LINES_STORE)?
                            .delete(&failed.order_id.to_string())?;
                        fact(
                            context,
                            AnalyticsMetric::OrdersPaymentFailed,
                            all(),
                            1,
                            None,
                            time,
                        );
                    }
                    _ => {}
                }
            }
            AnalyticsInput::Payment(envelope) => {
                let time = envelope.occurred_at.as_unix_millis();
                match envelope.payload {
                    PaymentEvent::PaymentSucceeded(_) => fact(
                        context,
                        AnalyticsMetric::PaymentsSucceeded,
                        all(),
                        1,
                        None,
                        time,
                    ),
                    PaymentEvent::PaymentFailed(_) => fact(
                        context,
                        AnalyticsMetric::PaymentsFailed,
                        all(),
                        1,
                        None,
                        time,
                    ),
                    // Revenue is net of refunds of confirmed orders (a late charge of an order
                    // that had already ended was never counted as revenue).
                    PaymentEvent::PaymentRefunded(refunded) => {
                        let mut confirmed =
                            context.key_value_store::<String, u8>(CONFIRMED_ORDERS_STORE)?;
                        let key = refunded.order_id.to_string();
                        if confirmed.get(&key)?.is_none() {
                            return Ok(());
                        }
                        confirmed.delete(&key)?;
                        let negative = refunded.amount.checked_neg().map_err(|error| {
                            ProcessError::invalid(format!("refund amount: {error}"))
                        })?;
                        fact(
                            context,
                            AnalyticsMetric::Revenue,
                            refunded.amount.currency.to_string(),
                            1,
                            Some(negative),
                            time,
                        );
                        // Its categories' revenue and its units, too (orders confirmed by a
                        // build that did not keep their lines only net the currency total).
                        let mut lines_store = context
                            .key_value_store::<String, Vec<CategorizedLine>>(ORDER_LINES_STORE)?;
                        let lines = lines_store.get(&key)?.unwrap_or_default();
                        lines_store.delete(&key)?;
                        let currency = refunded.amount.currency;
                        for line in lines {
                            let negative = line.line_total.checked_neg().map_err(|error| {
                                ProcessError::invalid(format!("line total: {error}"))
                            })?;
                            fact(
                                context,
                                AnalyticsMetric::Revenue,
                                format!("category:{}:{}", line.category, currency),
                                1,
                                Some(negative),
                                time,
                            );
                            fact(
                                context,
                                AnalyticsMetric::UnitsReturned,
                                format!("sku:{}", line.sku),
                                u64::from(line.quantity),
                                None,
                                time,
                            );
                        }
                    }
                    PaymentEvent::PaymentInitiated(_) => {}
                }
            }
            AnalyticsInput::Inventory(envelope) => {
                if let InventoryEvent::StockLow(_) = envelope.payload {
                    fact(
                        context,
                        AnalyticsMetric::StockLow,
                        all(),
                        1,
                        None,
                        envelope.occurred_at.as_unix_millis(),
                    );
                }
            }
        }
        Ok(())
    }
}

/// A window's running total.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowTotal {
    pub count: u64,
    pub amount: Option<Money>,
}

/// Adds facts into windows and emits each window's final result when it closes.
#[derive(Debug, Clone, Default)]
pub struct WindowAggregator {
    config: Arc<AnalyticsConfig>,
}

impl WindowAggregator {
    pub fn new(config: Arc<AnalyticsConfig>) -> Self {
        Self { config }
    }
}

type AggregateContext<'a> = ProcessorContext<'a, String, Envelope<AnalyticsAggregate>>;

/// `<shape index>|<window start>|<fact key>`, into `out` (cleared first): built for every
/// window of every fact, so without the formatting machinery.
fn write_timer_key(out: &mut Vec<u8>, shape_index: usize, window_start: i64, fact_key: &str) {
    out.clear();
    push_decimal(out, shape_index as i64);
    out.push(b'|');
    push_decimal(out, window_start);
    out.push(b'|');
    out.extend_from_slice(fact_key.as_bytes());
}

/// Appends `value` in decimal, as `to_string` writes it.
fn push_decimal(out: &mut Vec<u8>, value: i64) {
    if value < 0 {
        out.push(b'-');
    }
    let mut magnitude = value.unsigned_abs();
    let mut digits = [0u8; 20];
    let mut first = digits.len();
    loop {
        first -= 1;
        digits[first] = b'0' + (magnitude % 10) as u8;
        magnitude /= 10;
        if magnitude == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[first..]);
}

/// `total` (none yet: zero) plus one fact.
fn add_fact(
    total: Option<WindowTotal>,
    fact: &Fact,
    key: &str,
) -> Result<WindowTotal, ProcessError> {
    let total = total.unwrap_or(WindowTotal {
        count: 0,
        amount: None,
    });
    combine(
        total,
        &WindowTotal {
            count: fact.count,
            amount: fact.amount,
        },
        key,
    )
}

/// The sum of two totals of window `key`.
fn combine(
    mut total: WindowTotal,
    more: &WindowTotal,
    key: &str,
) -> Result<WindowTotal, ProcessError> {
    total.count += more.count;
    total.amount = match (total.amount, more.amount) {
        (Some(sum), Some(amount)) => Some(
            sum.checked_add(amount)
                .map_err(|error| ProcessError::invalid(format!("window {key}: {error}")))?,
        ),
        (None, amount) | (amount, None) => amount,
    };
    Ok(total)
}

/// The total a window timer carries. (Compact since the fourth session; a timer armed before
/// carries JSON, which the compact codec reads too.)
fn carried_total(payload: &[u8]) -> Result<WindowTotal, ProcessError> {
    CompactCodec
        .decode(payload)
        .map_err(|error| ProcessError::invalid(format!("window timer payload: {error}")))
}

/// The sum of the panes of the hour window of `key` starting at `window_start` (`None` if it
/// has none), and deletes its first pane, which no later window contains.
fn take_hour_window(
    context: &mut AggregateContext<'_>,
    key: &String,
    window_start: i64,
) -> Result<Option<WindowTotal>, ProcessError> {
    let hour = WINDOW_SHAPES[1];
    let mut panes = context.window_store::<String, WindowTotal>(HOUR_PANES)?;
    let mut total: Option<WindowTotal> = None;
    let mut pane_start = window_start;
    while pane_start < window_start + hour.size_ms {
        if let Some(pane) = panes.get(key, pane_start)? {
            total = Some(match total {
                Some(total) => combine(total, &pane, key)?,
                None => pane,
            });
        }
        pane_start += hour.advance_ms;
    }
    panes.delete(key, window_start)?;
    Ok(total)
}

/// Whether a fired window timer is left over from before window timers were fixed (an
/// upgrade leaves each open window's old, moved timer beside the fixed one scheduled since):
/// its total is not the one the store holds. A window the store no longer holds (expired by a
/// jump in stream time before its timer fired) is reported with what its timer carries.
fn superseded(stored: Option<&WindowTotal>, carried: &WindowTotal) -> bool {
    stored.is_some_and(|stored| stored != carried)
}

impl Processor for WindowAggregator {
    type InKey = String;
    type InValue = Fact;
    type OutKey = String;
    type OutValue = Envelope<AnalyticsAggregate>;

    fn process(
        &mut self,
        context: &mut AggregateContext<'_>,
        record: Record<String, Fact>,
    ) -> Result<(), ProcessError> {
        let fact = record.value;
        let stream_time = context.stream_time_ms();
        let grace_ms = self.config.grace_ms;
        let mut timer_key = Vec::with_capacity(32 + record.key.len());

        // The minute window, kept whole: its timer carries the running total, because the
        // window store may expire the window (when a much later fact arrives first) before the
        // timer fires in this batch. A window closes at a time fixed by its start, so its timer
        // is a fixed one: rescheduling overwrites the same entry, one write instead of two.
        let minute = WINDOW_SHAPES[0];
        let minute_start = fact.event_time - fact.event_time.rem_euclid(minute.size_ms);
        let minute_closes_at = minute_start + minute.size_ms + grace_ms;
        if minute_closes_at > stream_time {
            let mut windows = context.window_store::<String, WindowTotal>(MINUTE_WINDOWS)?;
            let total = add_fact(windows.get(&record.key, minute_start)?, &fact, &record.key)?;
            windows.put(&record.key, minute_start, &total)?;
            let payload = CompactCodec
                .encode_to_vec(&total)
                .map_err(|error| ProcessError::invalid(format!("window total: {error}")))?;
            write_timer_key(&mut timer_key, MINUTE_TIMER, minute_start, &record.key);
            context.schedule_fixed(TimerKind::StreamTime, &timer_key, minute_closes_at, payload);
        }

        // The hour windows, through the fact's pane: when a pane is first written, every
        // still-open window containing it gets its (fixed, payload-free) timer.
        let hour = WINDOW_SHAPES[1];
        let pane_start = fact.event_time - fact.event_time.rem_euclid(hour.advance_ms);
        // The window starting with the pane closes last of those containing it.
        if pane_start + hour.size_ms + grace_ms <= stream_time {
            return Ok(()); // later than the grace period of every window it falls in
        }
        let first_in_pane = {
            let mut panes = context.window_store::<String, WindowTotal>(HOUR_PANES)?;
            let existing = panes.get(&record.key, pane_start)?;
            let first = existing.is_none();
            panes.put(
                &record.key,
                pane_start,
                &add_fact(existing, &fact, &record.key)?,
            )?;
            first
        };
        if first_in_pane {
            let open = hour
                .windows_containing(fact.event_time)
                .into_iter()
                .filter(|start| start + hour.size_ms + grace_ms > stream_time);
            for window_start in open {
                write_timer_key(&mut timer_key, HOUR_TIMER, window_start, &record.key);
                context.schedule_fixed(
                    TimerKind::StreamTime,
                    &timer_key,
                    window_start + hour.size_ms + grace_ms,
                    Vec::new(),
                );
            }
        }
        Ok(())
    }

    fn on_timer(
        &mut self,
        context: &mut AggregateContext<'_>,
        timer: FiredTimer,
    ) -> Result<(), ProcessError> {
        let key = String::from_utf8(timer.key)
            .map_err(|_| ProcessError::invalid("window timer key is not UTF-8"))?;
        let mut parts = key.splitn(3, '|');
        let (Some(shape_index), Some(window_start), Some(fact_key)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(ProcessError::invalid(format!(
                "unexpected window timer {key}"
            )));
        };
        let shape_index: usize = shape_index
            .parse()
            .map_err(|_| ProcessError::invalid("window shape"))?;
        let window_start: i64 = window_start
            .parse()
            .map_err(|_| ProcessError::invalid("window start"))?;
        let fact_key = fact_key.to_string();
        let (shape, total) = match shape_index {
            MINUTE_TIMER => {
                let shape = WINDOW_SHAPES[0];
                let total = carried_total(&timer.payload)?;
                let stored = context
                    .window_store::<String, WindowTotal>(MINUTE_WINDOWS)?
                    .get(&fact_key, window_start)?;
                if superseded(stored.as_ref(), &total) {
                    return Ok(());
                }
                (shape, Some(total))
            }
            HOUR_TIMER => {
                let shape = WINDOW_SHAPES[1];
                (shape, take_hour_window(context, &fact_key, window_start)?)
            }
            // Armed before panes: its payload is the window's total up to then; the panes hold
            // what came after, and the pane timer of the same window, if any, is not needed.
            LEGACY_HOUR_TIMER => {
                let shape = WINDOW_SHAPES[1];
                let carried = carried_total(&timer.payload)?;
                let since = take_hour_window(context, &fact_key, window_start)?;
                let mut pane_timer = Vec::new();
                write_timer_key(&mut pane_timer, HOUR_TIMER, window_start, &fact_key);
                context.cancel_fixed_timer(TimerKind::StreamTime, &pane_timer, timer.due_ms);
                let total = match since {
                    Some(since) => combine(carried, &since, &fact_key)?,
                    None => carried,
                };
                (shape, Some(total))
            }
            other => {
                return Err(ProcessError::invalid(format!(
                    "unknown window shape {other}"
                )));
            }
        };
        let Some(total) = total else {
            return Ok(()); // no pane left: nothing to report
        };
        let (metric_name, dimension) = fact_key
            .split_once('|')
            .unwrap_or((fact_key.as_str(), "all"));
        let metric: AnalyticsMetric =
            serde_json::from_value(serde_json::Value::String(metric_name.to_string()))
                .map_err(|error| ProcessError::invalid(format!("metric {metric_name}: {error}")))?;
        let window_key = window_key(metric_name, dimension, shape.size_ms, window_start);
        let aggregate = AnalyticsAggregate::WindowAggregate(WindowAggregate {
            window_key: window_key.clone(),
            metric,
            window_start: Timestamp::from_unix_millis(window_start),
            window_end: Timestamp::from_unix_millis(window_start + shape.size_ms),
            count: total.count,
            amount: total.amount,
            is_final: true,
        });
        let now = context.now_ms();
        let origin = Origin {
            correlation_id: orderflow_schemas::ids::CorrelationId::generate(now),
            causation_id: None,
            traceparent: None,
        };
        let envelope = origin.envelope(aggregate, now);
        context.forward(Record::new(window_key, envelope, timer.due_ms));
        Ok(())
    }
}

/// Identifies metric, dimension and window together, as a token (visible ASCII, no spaces):
/// `<metric>/<dimension, percent-encoded>/<size in minutes>m/<start ms>`.
pub fn window_key(metric: &str, dimension: &str, size_ms: i64, window_start: i64) -> String {
    let mut encoded = String::with_capacity(dimension.len());
    for byte in dimension.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.:".contains(&byte) {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    format!("{metric}/{encoded}/{}m/{window_start}", size_ms / 60_000)
}

/// The dimension of a [`window_key`] (`all`, a currency, `category:<c>:<currency>`,
/// `sku:<sku>`), percent-decoded.
pub fn window_key_dimension(window_key: &str) -> String {
    let encoded = window_key.split('/').nth(1).unwrap_or_default();
    let mut bytes = Vec::with_capacity(encoded.len());
    let mut input = encoded.bytes();
    while let Some(byte) = input.next() {
        if byte == b'%' {
            let high = input.next().and_then(|digit| (digit as char).to_digit(16));
            let low = input.next().and_then(|digit| (digit as char).to_digit(16));
            if let (Some(high), Some(low)) = (high, low) {
                bytes.push((high * 16 + low) as u8);
                continue;
            }
        }
        bytes.push(byte);
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_keys_are_tokens_whatever_the_dimension() {
        let key = window_key("revenue", "category:Home & Küche:EUR", 60_000, 120_000);
        assert_eq!(
            key,
            "revenue/category:Home%20%26%20K%C3%BCche:EUR/1m/120000"
        );
        assert!(key.bytes().all(|byte| byte.is_ascii_graphic()));
        assert_eq!(window_key_dimension(&key), "category:Home & Küche:EUR");
    }

    #[test]
    fn timer_keys_are_what_formatting_writes() {
        let mut out = Vec::new();
        for (shape, start, key) in [
            (0, 0, "orders|all"),
            (1, 1_764_000_000_000, "revenue|EUR"),
            (1, -600_000, "x"),
            (0, i64::MIN, ""),
            (0, i64::MAX, "k"),
        ] {
            write_timer_key(&mut out, shape, start, key);
            assert_eq!(out, format!("{shape}|{start}|{key}").into_bytes());
        }
    }

    #[test]
    fn a_timer_whose_total_the_store_no_longer_holds_is_superseded() {
        let total = |count| WindowTotal {
            count,
            amount: None,
        };
        assert!(!superseded(Some(&total(3)), &total(3)));
        assert!(superseded(Some(&total(5)), &total(3)));
        // Expired from the store: the timer's total is all there is.
        assert!(!superseded(None, &total(3)));
    }

    #[test]
    fn a_time_falls_in_one_tumbling_and_six_hopping_windows() {
        let minute = WINDOW_SHAPES[0];
        assert_eq!(minute.windows_containing(125_000), vec![120_000]);
        let hour = WINDOW_SHAPES[1];
        let starts = hour.windows_containing(3_650_000);
        assert_eq!(starts.len(), 6);
        assert_eq!(starts.first(), Some(&600_000));
        assert_eq!(starts.last(), Some(&3_600_000));
        for start in starts {
            assert!(start <= 3_650_000 && 3_650_000 < start + hour.size_ms);
        }
    }
}
