//! `orderflow serve`: the whole platform in this process, embedded — the catalog, fulfillment
//! (order saga, inventory, payment with the simulated provider), notifications (outbox) and
//! analytics topologies on one embedded log. Until the ingress API lands, it seeds a demo
//! catalog and customers on first start, places demo orders through the real topologies,
//! reports what happened, and keeps running until Ctrl-C (a graceful shutdown).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use orderflow_processors::analytics::AnalyticsConfig;
use orderflow_processors::notification::OUTBOX_STORE;
use orderflow_processors::order_saga::{ORDER_STORE, OrderState};
use orderflow_processors::payment::SimulatedProvider;
use orderflow_runtime::{
    Clock, EmbeddedLog, LogBackend, MetricsRegistry, RunningApp, SystemClock, Topology,
};
use orderflow_schemas::catalog::{
    ANALYTICS_AGGREGATES, CATALOG_COMMANDS, INVENTORY_COMMANDS, ORDER_COMMANDS, USER_EVENTS,
};
use orderflow_schemas::currency::Currency;
use orderflow_schemas::messages::catalog_commands::{CatalogCommand, UpsertProduct};
use orderflow_schemas::messages::inventory_commands::{InventoryCommand, Restock};
use orderflow_schemas::messages::order_commands::OrderCommand;
use orderflow_schemas::messages::order_events::OrderStatus;
use orderflow_schemas::messages::user_events::{
    NotificationChannels, UserCreated, UserEvent, UserRole,
};
use orderflow_schemas::money::Money;
use orderflow_state_stores::{CommittedKeyValueStore, JsonCodec, StoreCodecs, StringCodec};
use orderflow_topologies::analytics::AnalyticsOptions;
use orderflow_topologies::fulfillment::FulfillmentOptions;
use orderflow_topologies::notifications::NotificationsOptions;

use super::saga::{
    SagaWorkloadArgs, SettlementTracker, customer_id, generate_order, orders_placed, record,
    sku_name,
};
use super::{open_embedded_log, shutdown_on_signal, spawn_maintenance, topic_counts};
use crate::config::Config;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Demo orders to place at start (0: none).
    #[arg(long, default_value_t = 500)]
    pub demo_orders: u64,
    /// Demo orders per second.
    #[arg(long, default_value_t = 250)]
    pub demo_rate: u64,
    /// Stop after the demo report instead of running until Ctrl-C.
    #[arg(long)]
    pub exit_after_demo: bool,
}

const DEMO_SKUS: u64 = 50;
const DEMO_USERS: u64 = 20;

struct Platform {
    apps: Vec<(&'static str, RunningApp)>,
}

impl Platform {
    fn start(config: &Config, log: &Arc<EmbeddedLog>) -> anyhow::Result<Self> {
        let topologies: Vec<(&'static str, Topology)> = vec![
            ("catalog", orderflow_topologies::catalog::topology()?),
            (
                "fulfillment",
                orderflow_topologies::fulfillment::topology(&FulfillmentOptions {
                    provider: Arc::new(SimulatedProvider::new()),
                    ..FulfillmentOptions::default()
                })?,
            ),
            (
                "notifications",
                orderflow_topologies::notifications::topology(&NotificationsOptions::default())?,
            ),
            (
                "analytics",
                orderflow_topologies::analytics::topology(&AnalyticsOptions {
                    config: Arc::new(AnalyticsConfig::default()),
                    export_directory: Some(config.data_dir.join("analytics")),
                    export_file_bytes: 0,
                })?,
            ),
        ];
        let mut apps = Vec::new();
        for (name, topology) in topologies {
            let mut runtime = config.runtime.clone();
            runtime.application_id = format!("orderflow-{name}");
            let app = RunningApp::start(
                Arc::new(topology),
                log.clone(),
                runtime,
                Arc::new(SystemClock),
                MetricsRegistry::new(),
            )
            .with_context(|| format!("starting the {name} topology"))?;
            apps.push((name, app));
        }
        Ok(Self { apps })
    }

    /// Records not yet processed by any topology.
    fn lag(&self) -> anyhow::Result<u64> {
        let mut lag = 0;
        for (_, app) in &self.apps {
            lag += app.lag()?;
        }
        Ok(lag)
    }

    /// Waits until every topology has processed everything (twice in a row, since one
    /// topology's output is another's input), or the timeout passes.
    fn wait_until_idle(&self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        let mut idle_checks = 0;
        while idle_checks < 2 && Instant::now() < deadline && self.is_healthy() {
            if self.lag()? == 0 {
                idle_checks += 1;
            } else {
                idle_checks = 0;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    fn is_healthy(&self) -> bool {
        self.apps.iter().all(|(_, app)| app.is_healthy())
    }

    fn shutdown(self) -> anyhow::Result<()> {
        for (name, app) in self.apps {
            app.shutdown()
                .with_context(|| format!("stopping the {name} topology"))?;
        }
        Ok(())
    }
}

/// Publishes the demo catalog (through the catalog topology), stock and customers, once.
fn seed(log: &dyn LogBackend) -> anyhow::Result<()> {
    if orders_placed(log)? > 0 || topic_counts(log, CATALOG_COMMANDS)?.appended > 0 {
        return Ok(());
    }
    let partitions = |topic: &str| log.topic(topic).map_or(1, |spec| spec.partitions);
    let now = SystemClock.now_ms();
    let usd = Currency::parse("USD").expect("USD is a currency");
    let mut batch = Vec::new();
    for index in 0..DEMO_SKUS {
        let sku = sku_name(index);
        batch.push(record(
            CATALOG_COMMANDS,
            partitions(CATALOG_COMMANDS),
            CatalogCommand::UpsertProduct(UpsertProduct {
                sku: sku.clone(),
                name: format!("Demo product {index}"),
                description: "Seeded by orderflow serve".to_string(),
                category: ["books", "games", "kitchen", "garden"][index as usize % 4].to_string(),
                price: Money::new(500 + index as i64 * 100, usd),
                active: true,
                low_stock_threshold: 20,
            }),
            now,
        ));
        batch.push(record(
            INVENTORY_COMMANDS,
            partitions(INVENTORY_COMMANDS),
            InventoryCommand::Restock(Restock { sku, quantity: 100 }),
            now,
        ));
    }
    for index in 0..DEMO_USERS {
        batch.push(record(
            USER_EVENTS,
            partitions(USER_EVENTS),
            UserEvent::UserCreated(UserCreated {
                user_id: customer_id(index),
                email: format!("customer{index}@example.com"),
                name: format!("Customer {index}"),
                phone: None,
                locale: if index % 3 == 0 { "de-DE" } else { "en-US" }.to_string(),
                channels: NotificationChannels {
                    email: true,
                    sms: false,
                    push: index % 2 == 0,
                },
                role: UserRole::Customer,
            }),
            now,
        ));
    }
    log.produce(batch)?;
    Ok(())
}

fn order_states(log: &EmbeddedLog) -> anyhow::Result<Vec<OrderState>> {
    let engine = log.state_engine();
    let mut states = Vec::new();
    for partition in 0..log.topic(ORDER_COMMANDS).map_or(0, |spec| spec.partitions) {
        let space = engine.space(&orderflow_runtime::topology::store_space_name(
            "orderflow-fulfillment",
            ORDER_STORE,
            partition,
        ))?;
        let store = CommittedKeyValueStore::new(
            engine,
            space,
            StoreCodecs {
                name: ORDER_STORE,
                key: &StringCodec,
                value: &JsonCodec,
            },
        );
        states.extend(
            store
                .all(usize::MAX)?
                .into_iter()
                .map(|(_, state): (String, OrderState)| state),
        );
    }
    Ok(states)
}

fn outbox_size(log: &EmbeddedLog) -> anyhow::Result<u64> {
    let engine = log.state_engine();
    let mut total = 0;
    for partition in 0..log
        .topic("notification-events")
        .map_or(0, |spec| spec.partitions)
    {
        let space = engine.space(&orderflow_runtime::topology::store_space_name(
            "orderflow-notifications",
            OUTBOX_STORE,
            partition,
        ))?;
        total += engine.approximate_len(&space);
    }
    Ok(total)
}

fn topic_records(log: &dyn LogBackend, topic: &str) -> u64 {
    topic_counts(log, topic).map_or(0, |counts| counts.retained)
}

pub fn serve(config: &Config, args: &ServeArgs) -> anyhow::Result<()> {
    let log = open_embedded_log(config)?;
    println!(
        "orderflow (embedded): data in {}",
        config.data_dir.display()
    );
    let platform = Platform::start(config, &log)?;
    let stop = shutdown_on_signal()?;
    let stop_maintenance = Arc::new(AtomicBool::new(false));
    let maintenance = spawn_maintenance(
        log.clone(),
        config.maintenance_interval_ms,
        stop_maintenance.clone(),
    );
    println!("running topologies: catalog, fulfillment, notifications, analytics");
    seed(log.as_ref())?;
    // Orders start once the catalog has reached the fulfillment topology's product table.
    platform.wait_until_idle(Duration::from_secs(30))?;

    let workload = SagaWorkloadArgs {
        orders: 0,
        skus: DEMO_SKUS,
        users: DEMO_USERS,
        max_lines: 3,
        rate: args.demo_rate,
        provider_latency_ms: 0,
        flaky_every: 7,
        no_provider_journal: true,
        threads: None,
    };
    let placed_before = orders_placed(log.as_ref())?;
    let started = Instant::now();
    let order_partitions = log.topic(ORDER_COMMANDS).map_or(1, |spec| spec.partitions);
    let mut tracker = SettlementTracker::default();
    for sequence in placed_before..placed_before + args.demo_orders {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let now = SystemClock.now_ms();
        let mut order = generate_order(sequence, &workload, now);
        if sequence % 11 == 10 {
            order.payment_method_token = "tok_decline".to_string();
        }
        log.produce(vec![record(
            ORDER_COMMANDS,
            order_partitions,
            OrderCommand::PlaceOrder(order),
            now,
        )])?;
        if args.demo_rate > 0 {
            let due = Duration::from_secs_f64(
                (sequence - placed_before + 1) as f64 / args.demo_rate as f64,
            );
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
        }
    }
    let placed = orders_placed(log.as_ref())?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        tracker.poll(log.as_ref())?;
        if tracker.settled() >= placed
            || stop.load(Ordering::Relaxed)
            || !platform.is_healthy()
            || Instant::now() > deadline
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // Let notifications and analytics catch up with the last orders.
    platform.wait_until_idle(Duration::from_secs(30))?;

    let states = order_states(&log)?;
    let count = |status: OrderStatus| states.iter().filter(|state| state.status == status).count();
    println!(
        "demo: {} orders placed this run in {:.1} s; {} orders in all: {} confirmed, {} rejected, {} payment failed, {} cancelled, {} still in flight",
        placed - placed_before,
        started.elapsed().as_secs_f64(),
        states.len(),
        count(OrderStatus::Confirmed),
        count(OrderStatus::Rejected),
        count(OrderStatus::PaymentFailed),
        count(OrderStatus::Cancelled),
        states
            .iter()
            .filter(|state| !state.status.is_terminal() && state.status != OrderStatus::Confirmed)
            .count()
    );
    println!(
        "notifications in the outbox: {}; final analytics aggregates: {} (a window reports 30 s after it ends, as later events arrive; exported to {}); dead letters: {}",
        outbox_size(&log)?,
        topic_records(log.as_ref(), ANALYTICS_AGGREGATES),
        config.data_dir.join("analytics").display(),
        log.topics()
            .iter()
            .filter(|spec| spec.name.ends_with(".dlq"))
            .map(|spec| topic_records(log.as_ref(), &spec.name))
            .sum::<u64>()
    );
    if !args.exit_after_demo {
        println!("running; Ctrl-C stops gracefully (the HTTP API arrives with the ingress issue)");
        while !stop.load(Ordering::Relaxed) && platform.is_healthy() {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    println!("stopping: committing in-flight work");
    platform.shutdown()?;
    stop_maintenance.store(true, Ordering::Relaxed);
    let _ = maintenance.join();
    Ok(())
}
