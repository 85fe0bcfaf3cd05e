//! `orderflow workload saga`: the fulfillment topology under a stream of generated orders, used
//! by the payment crash test and the saga benchmark.
//!
//! It seeds a catalog (products in catalog-events, stock through Restock commands) once, then
//! places orders `--orders` in all, resuming after the orders already in order-commands when
//! restarted, and exits once everything placed has been processed. The simulated payment
//! provider journals its decisions in `<data-dir>/simulated-provider.jsonl`, outside the
//! platform's database, like a real provider.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, Subcommand};
use orderflow_processors::payment::SimulatedProvider;
use orderflow_processors::wire::keyed_envelope_record;
use orderflow_runtime::{Clock, LogBackend, LogRecord, MetricsRegistry, RunningApp, SystemClock};
use orderflow_schemas::address::{CountryCode, ShippingAddress};
use orderflow_schemas::catalog::{
    CATALOG_EVENTS, INVENTORY_COMMANDS, ORDER_COMMANDS, ORDER_EVENTS,
};
use orderflow_schemas::codes::Sku;
use orderflow_schemas::currency::Currency;
use orderflow_schemas::envelope::Message;
use orderflow_schemas::ids::{CorrelationId, OrderId, UserId};
use orderflow_schemas::messages::catalog_events::{CatalogEvent, Product, ProductUpserted};
use orderflow_schemas::messages::inventory_commands::{InventoryCommand, Restock};
use orderflow_schemas::messages::order_commands::{OrderCommand, OrderLine, PlaceOrder};
use orderflow_schemas::money::Money;
use orderflow_topologies::fulfillment::{self, FulfillmentOptions};

use super::{open_embedded_log, shutdown_on_signal, topic_counts};
use crate::config::Config;

/// The application id the fulfillment topology runs under.
pub const FULFILLMENT_APPLICATION: &str = "orderflow-fulfillment";
/// The simulated provider's journal, in the data directory.
pub const PROVIDER_JOURNAL: &str = "simulated-provider.jsonl";

#[derive(Debug, Subcommand)]
pub enum WorkloadCommand {
    /// Places generated orders through the fulfillment topology until all are processed.
    Saga(SagaWorkloadArgs),
}

#[derive(Debug, Clone, Args)]
pub struct SagaWorkloadArgs {
    /// Orders to place in all, across restarts.
    #[arg(long, default_value_t = 10_000)]
    pub orders: u64,
    /// Distinct skus in the catalog.
    #[arg(long, default_value_t = 10_000)]
    pub skus: u64,
    /// Distinct customers.
    #[arg(long, default_value_t = 100_000)]
    pub users: u64,
    /// Most lines per order (each order has 1 to this many).
    #[arg(long, default_value_t = 5)]
    pub max_lines: u64,
    /// Orders placed per second (0: as fast as possible).
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Simulated provider latency per call, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub provider_latency_ms: u64,
    /// Every n-th order pays with `tok_flaky` (two transient failures, then approved); 0: none.
    #[arg(long, default_value_t = 10)]
    pub flaky_every: u64,
    /// Keep the simulated provider's decisions in memory only (no journal file, no fsync per
    /// charge): for throughput benchmarks, not for crash tests.
    #[arg(long)]
    pub no_provider_journal: bool,
    /// Stream threads (default: the configuration's).
    #[arg(long)]
    pub threads: Option<usize>,
}

pub fn record<T: Message>(
    topic: &str,
    partitions: u32,
    payload: T,
    now: i64,
) -> (String, u32, LogRecord) {
    keyed_envelope_record(
        topic,
        partitions,
        payload,
        now,
        CorrelationId::generate(now),
    )
    .expect("envelopes encode")
}

pub fn sku_name(index: u64) -> Sku {
    Sku::parse(&format!("SKU-{index:06}")).expect("generated skus are valid")
}

/// Publishes the catalog and its stock once (skipped when catalog-events is not empty).
pub fn seed_catalog(
    log: &dyn LogBackend,
    args: &SagaWorkloadArgs,
    stock_per_sku: u32,
) -> anyhow::Result<()> {
    let catalog = log
        .topic(CATALOG_EVENTS)
        .context("catalog-events does not exist")?;
    if topic_counts(log, CATALOG_EVENTS)?.appended > 0 {
        return Ok(());
    }
    let inventory_partitions = log
        .topic(INVENTORY_COMMANDS)
        .context("inventory-commands")?
        .partitions;
    let now = SystemClock.now_ms();
    let usd = Currency::parse("USD").expect("USD is a currency");
    let mut batch = Vec::new();
    for index in 0..args.skus {
        let sku = sku_name(index);
        let product = Product {
            sku: sku.clone(),
            name: format!("Product {index}"),
            description: "Generated for the workload".to_string(),
            category: format!("category-{}", index % 20),
            price: Money::new(100 + (index as i64 % 100) * 25, usd),
            active: true,
            discontinued: false,
            low_stock_threshold: 10,
        };
        batch.push(record(
            CATALOG_EVENTS,
            catalog.partitions,
            CatalogEvent::ProductUpserted(ProductUpserted {
                sku: sku.clone(),
                product,
            }),
            now,
        ));
        batch.push(record(
            INVENTORY_COMMANDS,
            inventory_partitions,
            InventoryCommand::Restock(Restock {
                sku,
                quantity: stock_per_sku,
            }),
            now,
        ));
        if batch.len() >= 10_000 {
            log.produce(std::mem::take(&mut batch))?;
        }
    }
    log.produce(batch)?;
    Ok(())
}

/// Order `sequence` of the workload: deterministic lines and customer.
pub fn generate_order(sequence: u64, args: &SagaWorkloadArgs, now: i64) -> PlaceOrder {
    let mut random = fastrand::Rng::with_seed(sequence);
    let line_count = random.u64(1..=args.max_lines.max(1));
    let mut skus: Vec<u64> = Vec::new();
    while (skus.len() as u64) < line_count.min(args.skus) {
        let sku = random.u64(0..args.skus.max(1));
        if !skus.contains(&sku) {
            skus.push(sku);
        }
    }
    let user = sequence % args.users.max(1);
    PlaceOrder {
        order_id: OrderId::generate(now),
        user_id: customer_id(user),
        lines: skus
            .into_iter()
            .map(|sku| OrderLine {
                sku: sku_name(sku),
                quantity: random.u32(1..=3),
            })
            .collect(),
        currency: Currency::parse("USD").expect("USD is a currency"),
        coupon_code: None,
        shipping_address: ShippingAddress {
            name: format!("Customer {user}"),
            line1: "1 Load St".to_string(),
            line2: None,
            city: "Testville".to_string(),
            postal_code: "00000".to_string(),
            country: CountryCode::parse("US").expect("US is a country"),
            region: Some("NY".to_string()),
        },
        payment_method_token: if args.flaky_every > 0
            && sequence % args.flaky_every == args.flaky_every - 1
        {
            "tok_flaky"
        } else {
            "tok_visa"
        }
        .to_string(),
    }
}

/// The id of generated customer `index`.
pub fn customer_id(index: u64) -> UserId {
    UserId::from_uuid(uuid_v7(index)).expect("a v7 uuid")
}

/// A stable UUIDv7 for customer `index` (timestamp 1, the index in the random bits).
fn uuid_v7(index: u64) -> uuid::Uuid {
    let mut bytes = [0u8; 16];
    bytes[5] = 1;
    bytes[6] = 0x70;
    bytes[8] = 0x80;
    bytes[8..16].copy_from_slice(&(index | 0x8000_0000_0000_0000).to_be_bytes());
    uuid::Uuid::from_bytes(bytes)
}

/// The order-events types that settle an order (checked against `OrderEvent::TYPES` below).
const CONFIRMED: &str = "OrderConfirmed";
const REJECTED: &str = "OrderRejected";
const CANCELLED: &str = "OrderCancelled";
const PAYMENT_FAILED: &str = "OrderPaymentFailed";

/// Follows order-events and remembers which orders have settled (confirmed or ended).
#[derive(Debug, Default)]
pub struct SettlementTracker {
    positions: Vec<u64>,
    settled: std::collections::HashSet<OrderId>,
    /// (order, when it was confirmed), in the order seen.
    pub confirmations: Vec<(OrderId, i64)>,
}

impl SettlementTracker {
    /// Reads what order-events gained since the last call. Only the envelope's header is
    /// decoded (the key is the order id): the tracker shares the cores with what it measures.
    pub fn poll(&mut self, log: &dyn LogBackend) -> anyhow::Result<()> {
        use orderflow_schemas::envelope::EnvelopeHeader;
        let partitions = log
            .topic(ORDER_EVENTS)
            .context("order-events does not exist")?
            .partitions;
        self.positions.resize(partitions as usize, 0);
        for partition in 0..partitions {
            loop {
                let records = log.fetch(
                    ORDER_EVENTS,
                    partition,
                    self.positions[partition as usize],
                    10_000,
                )?;
                let Some(last) = records.last() else {
                    break;
                };
                self.positions[partition as usize] = last.offset + 1;
                for stored in records {
                    let read = |what: &str| {
                        anyhow::anyhow!("order-events offset {}: {what}", stored.offset)
                    };
                    let header = EnvelopeHeader::decode_json(
                        stored
                            .record
                            .value
                            .as_deref()
                            .ok_or_else(|| read("no value"))?,
                    )
                    .map_err(|error| read(&error.to_string()))?;
                    let order_id = || -> anyhow::Result<OrderId> {
                        std::str::from_utf8(stored.record.key.as_deref().unwrap_or_default())
                            .ok()
                            .and_then(|key| key.parse().ok())
                            .ok_or_else(|| read("the key is not an order id"))
                    };
                    let settled_order = match header.message_type.as_str() {
                        CONFIRMED => {
                            let order_id = order_id()?;
                            self.confirmations
                                .push((order_id, header.occurred_at.as_unix_millis()));
                            Some(order_id)
                        }
                        REJECTED | CANCELLED | PAYMENT_FAILED => Some(order_id()?),
                        _ => None,
                    };
                    if let Some(order) = settled_order {
                        self.settled.insert(order);
                    }
                }
            }
        }
        Ok(())
    }

    pub fn settled(&self) -> u64 {
        self.settled.len() as u64
    }
}

/// Orders already in order-commands.
pub fn orders_placed(log: &dyn LogBackend) -> anyhow::Result<u64> {
    Ok(topic_counts(log, ORDER_COMMANDS)?.appended)
}

pub fn provider_journal(config: &Config) -> PathBuf {
    config.data_dir.join(PROVIDER_JOURNAL)
}

pub fn run(config: &Config, command: WorkloadCommand) -> anyhow::Result<()> {
    let WorkloadCommand::Saga(args) = command;
    let log = open_embedded_log(config)?;
    let provider = if args.no_provider_journal {
        SimulatedProvider::new()
    } else {
        SimulatedProvider::with_journal(
            &provider_journal(config),
            Duration::from_millis(args.provider_latency_ms),
        )
        .context("opening the simulated provider's journal")?
    };
    let options = FulfillmentOptions {
        provider: Arc::new(provider),
        ..FulfillmentOptions::default()
    };
    options
        .saga
        .validate()
        .map_err(|reason| anyhow::anyhow!("invalid saga configuration: {reason}"))?;
    let topology = Arc::new(fulfillment::topology(&options)?);
    orderflow_runtime::app::create_topics(&topology, log.as_ref())?;
    seed_catalog(log.as_ref(), &args, 1_000_000)?;
    let mut runtime = config.runtime.clone();
    runtime.application_id = FULFILLMENT_APPLICATION.to_string();
    if let Some(threads) = args.threads {
        runtime.stream_threads = threads;
    }
    let metrics = MetricsRegistry::new();
    let app = RunningApp::start(
        topology,
        log.clone(),
        runtime,
        Arc::new(SystemClock),
        metrics.clone(),
    )?;
    let stop = shutdown_on_signal()?;
    // Orders start once the seeded catalog and stock are processed, so latencies measure the
    // saga, not the start-up backlog.
    while app.lag()? > 0 && app.is_healthy() && !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let placed_before = orders_placed(log.as_ref())?;
    let order_partitions = log
        .topic(ORDER_COMMANDS)
        .context("order-commands")?
        .partitions;
    let mut tracker = SettlementTracker::default();
    let mut placed_at: std::collections::HashMap<OrderId, i64> = std::collections::HashMap::new();
    let progress = super::progress_bar(args.orders.saturating_sub(placed_before), "settled");
    let started = Instant::now();
    let started_ms = SystemClock.now_ms();
    // At a fixed rate, orders arrive evenly: a batch holds about a millisecond's worth (one
    // order below 1,000/s), not a burst of 100 whose queueing would be measured as latency.
    let batch_size = match args.rate {
        0 => 100,
        rate => (rate / 1_000).clamp(1, 100),
    };
    let mut sequence = placed_before;
    let mut last_check = Instant::now();
    while sequence < args.orders && !stop.load(Ordering::Relaxed) {
        let batch_end = (sequence + batch_size).min(args.orders);
        // At a fixed rate each order is stamped with the time it was due, not the time it was
        // produced: if producing falls behind, the delay counts as latency (no coordinated
        // omission).
        let produced_at = SystemClock.now_ms();
        let batch = (sequence..batch_end)
            .map(|next| {
                let now = match args.rate {
                    0 => produced_at,
                    rate => started_ms + ((next - placed_before) * 1_000 / rate) as i64,
                };
                let order = generate_order(next, &args, now);
                placed_at.insert(order.order_id, now);
                record(
                    ORDER_COMMANDS,
                    order_partitions,
                    OrderCommand::PlaceOrder(order),
                    now,
                )
            })
            .collect();
        log.produce(batch)?;
        sequence = batch_end;
        if last_check.elapsed() >= Duration::from_millis(200) {
            tracker.poll(log.as_ref())?;
            progress.set_position(tracker.settled().saturating_sub(placed_before));
            last_check = Instant::now();
        }
        if args.rate > 0 {
            let due = Duration::from_secs_f64((sequence - placed_before) as f64 / args.rate as f64);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
        }
    }
    // Done when every order placed, in this run or before, has settled.
    loop {
        tracker.poll(log.as_ref())?;
        progress.set_position(tracker.settled().saturating_sub(placed_before));
        if tracker.settled() >= sequence || !app.is_healthy() || stop.load(Ordering::Relaxed) {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let elapsed = started.elapsed();
    progress.finish_and_clear();
    app.shutdown()?;

    let mut latencies: Vec<i64> = tracker
        .confirmations
        .iter()
        .filter_map(|(order, confirmed_at)| {
            placed_at.get(order).map(|placed| confirmed_at - placed)
        })
        .collect();
    latencies.sort_unstable();
    let percentile = |quantile: f64| -> i64 {
        if latencies.is_empty() {
            return 0;
        }
        let index = ((latencies.len() as f64) * quantile).ceil() as usize;
        latencies[index.clamp(1, latencies.len()) - 1]
    };
    let placed_now = sequence - placed_before;
    println!(
        "placed {placed_now} orders this run ({sequence} in all), all settled in {:.2} s: {:.0} orders/s; PlaceOrder -> OrderConfirmed p50 {} ms, p99 {} ms, max {} ms ({} confirmed); {} records processed; peak RSS {:.0} MiB",
        elapsed.as_secs_f64(),
        placed_now as f64 / elapsed.as_secs_f64(),
        percentile(0.50),
        percentile(0.99),
        latencies.last().copied().unwrap_or(0),
        latencies.len(),
        metrics.summary().records_in,
        super::bench::peak_rss_mib()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use orderflow_schemas::envelope::Message;
    use orderflow_schemas::messages::order_events::OrderEvent;

    #[test]
    fn the_tracker_names_order_event_types_that_exist() {
        for name in [
            super::CONFIRMED,
            super::REJECTED,
            super::CANCELLED,
            super::PAYMENT_FAILED,
        ] {
            assert!(
                OrderEvent::TYPES.contains(&name),
                "{name} is not an order-events type"
            );
        }
    }
}
