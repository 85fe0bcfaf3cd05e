//! `orderflow serve`: the whole platform in one process, embedded. The HTTP API (poem +
//! poem-openapi) in front of the catalog, fulfillment (order saga, inventory, payment with the
//! simulated provider), notifications (outbox) and analytics topologies, on one embedded log;
//! users in a SQLite file beside it. Runs until SIGINT/SIGTERM, then drains HTTP requests,
//! commits in-flight work and flushes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use orderflow_ingress_api::bootstrap::{AdminBootstrap, ensure_admin};
use orderflow_ingress_api::platform::topologies::FulfillmentOptionsShared;
use orderflow_ingress_api::platform::{PlatformOptions, Topologies};
use orderflow_ingress_api::{IngressOptions, routes};
use orderflow_runtime::{Clock, LogBackend, SystemClock};
use orderflow_schemas::catalog::{CATALOG_COMMANDS, INVENTORY_COMMANDS};
use orderflow_schemas::currency::Currency;
use orderflow_schemas::messages::catalog_commands::{CatalogCommand, UpsertProduct};
use orderflow_schemas::messages::inventory_commands::{InventoryCommand, Restock};
use orderflow_schemas::money::Money;

use super::saga::{record, sku_name};
use super::{open_embedded_log, shutdown_on_signal, spawn_maintenance, topic_counts};
use crate::config::Config;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Seed a demo catalog (50 products with stock) on first start.
    #[arg(long)]
    pub demo: bool,
    /// Overrides `api.listen` (`127.0.0.1:0` picks a free port; the address is printed).
    #[arg(long)]
    pub listen: Option<String>,
}

const DEMO_SKUS: u64 = 50;
const DEMO_STOCK: u32 = 1_000;

/// Publishes the demo catalog and its stock, once (skipped when the catalog has commands).
fn seed_demo_catalog(log: &dyn LogBackend) -> anyhow::Result<bool> {
    if topic_counts(log, CATALOG_COMMANDS)?.appended > 0 {
        return Ok(false);
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
                description: "Seeded by orderflow serve --demo".to_string(),
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
            InventoryCommand::Restock(Restock {
                sku,
                quantity: DEMO_STOCK,
            }),
            now,
        ));
    }
    log.produce(batch)?;
    Ok(true)
}

pub fn serve(config: &Config, args: &ServeArgs) -> anyhow::Result<()> {
    let mut api_config = config.api.clone();
    if let Some(listen) = &args.listen {
        api_config.listen = listen.clone();
    }
    api_config
        .validate()
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    // Validated with the rest of the configuration when it was loaded.
    let domain = config.domain();
    let log = open_embedded_log(config)?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let topologies = Arc::new(
        Topologies::start(
            log.clone(),
            clock.clone(),
            &PlatformOptions {
                runtime: config.runtime.clone(),
                analytics_export: Some(config.data_dir.join("analytics")),
                fulfillment: FulfillmentOptionsShared {
                    provider: domain.provider(),
                    saga: Arc::new(domain.saga.clone()),
                    payment: Arc::new(domain.payments.retries.clone()),
                },
                notification_delivery: domain.delivery()?,
                analytics: Arc::new(domain.analytics.clone()),
            },
        )
        .context("starting the topologies")?,
    );
    let stop = shutdown_on_signal()?;
    let stop_maintenance = Arc::new(AtomicBool::new(false));
    let maintenance = spawn_maintenance(
        log.clone(),
        config.maintenance_interval_ms,
        stop_maintenance.clone(),
    );
    if args.demo && seed_demo_catalog(log.as_ref())? {
        // Serve once every view (the catalog, the saga's copy of it, the stock) has the demo
        // catalog, so the first request after start-up already sees it.
        let settled = topologies
            .wait_until_idle(Duration::from_secs(60))
            .context("waiting for the demo catalog to reach every view")?;
        if !settled {
            tracing::warn!("the demo catalog is still being processed; serving anyway");
        }
        println!(
            "demo: seeded {DEMO_SKUS} products (SKU-000000 to SKU-{:06}) with {DEMO_STOCK} units each",
            DEMO_SKUS - 1
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("orderflow-http")
        .enable_all()
        .build()
        .context("starting the HTTP runtime")?;
    let served = runtime.block_on(async {
        let state = orderflow_ingress_api::start(IngressOptions {
            config: api_config.clone(),
            data_dir: config.data_dir.clone(),
            clock: clock.clone(),
            log: log.clone(),
            topologies: topologies.clone(),
        })
        .await
        .context("starting the API")?;
        let admin = ensure_admin(
            &state,
            std::env::var("ORDERFLOW_ADMIN_EMAIL").ok(),
            std::env::var("ORDERFLOW_ADMIN_PASSWORD").ok(),
        )
        .await
        .map_err(|error| anyhow::anyhow!(error))?;
        match admin {
            AdminBootstrap::Existing => {}
            AdminBootstrap::FromEnvironment { email } => {
                println!("created the first admin {email} from ORDERFLOW_ADMIN_EMAIL/PASSWORD");
            }
            AdminBootstrap::Generated { email, password } => {
                println!(
                    "created the first admin (shown once; change it or set ORDERFLOW_ADMIN_EMAIL/PASSWORD before the first start):\n  email:    {email}\n  password: {password}"
                );
            }
        }
        let listener = tokio::net::TcpListener::bind(&api_config.listen)
            .await
            .with_context(|| format!("listening on {}", api_config.listen))?;
        let address = listener.local_addr().context("reading the listen address")?;
        // Serve on the socket already bound: no window in which another process takes the port.
        let acceptor = poem::listener::TcpAcceptor::from_tokio(listener)
            .context("accepting on the listen socket")?;
        println!("orderflow (embedded): data in {}", config.data_dir.display());
        println!("listening on http://{address} (Swagger UI: http://{address}/swagger-ui.html)");
        let stop_signal = stop.clone();
        poem::Server::new_with_acceptor(acceptor)
            .run_with_graceful_shutdown(
                routes(state.clone()),
                async move {
                    while !stop_signal.load(Ordering::Relaxed) {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                Some(Duration::from_secs(35)),
            )
            .await
            .context("serving HTTP")?;
        state.watcher.stop();
        anyhow::Ok(())
    });
    println!("stopping: committing in-flight work");
    topologies.shutdown().context("stopping the topologies")?;
    stop_maintenance.store(true, Ordering::Relaxed);
    let _ = maintenance.join();
    runtime.shutdown_timeout(Duration::from_secs(5));
    served
}
