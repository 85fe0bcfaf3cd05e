//! The four topologies of the embedded platform, each a [`RunningApp`] on one shared log, and
//! interactive-query readers of their stores.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use orderflow_processors::analytics::AnalyticsConfig;
use orderflow_processors::payment::{PaymentProvider, SimulatedProvider};
use orderflow_runtime::{
    Clock, EffectHandler, LogBackend, MetricsRegistry, RunningApp, RuntimeConfig, RuntimeError,
    StoreReader,
};
use orderflow_topologies::analytics::AnalyticsOptions;
use orderflow_topologies::fulfillment::FulfillmentOptions;
use orderflow_topologies::notifications::NotificationsOptions;

/// What varies between deployments and tests.
#[derive(Clone, Default)]
pub struct PlatformOptions {
    /// Runtime settings; each topology gets `application-id` `<prefix>-<topology>`.
    pub runtime: RuntimeConfig,
    /// Where analytics JSON-lines exports go (none: no export).
    pub analytics_export: Option<PathBuf>,
    pub fulfillment: FulfillmentOptionsShared,
    /// Notification delivery (SMTP, webhook) run as an effect; `None`: the outbox delivers.
    pub notification_delivery: Option<Arc<dyn EffectHandler>>,
    /// Window lateness.
    pub analytics: Arc<AnalyticsConfig>,
}

impl std::fmt::Debug for PlatformOptions {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("PlatformOptions")
            .field("runtime", &self.runtime)
            .field("analytics_export", &self.analytics_export)
            .field("fulfillment", &self.fulfillment)
            .field("external_delivery", &self.notification_delivery.is_some())
            .field("analytics", &self.analytics)
            .finish()
    }
}

/// The fulfillment options, cloneable.
#[derive(Clone)]
pub struct FulfillmentOptionsShared {
    pub provider: Arc<dyn PaymentProvider>,
    pub saga: Arc<orderflow_processors::order_saga::SagaConfig>,
    pub payment: Arc<orderflow_processors::payment::PaymentConfig>,
}

impl std::fmt::Debug for FulfillmentOptionsShared {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("FulfillmentOptionsShared")
            .field("saga", &self.saga)
            .finish_non_exhaustive()
    }
}

impl Default for FulfillmentOptionsShared {
    fn default() -> Self {
        Self {
            provider: Arc::new(SimulatedProvider::new()),
            saga: Arc::default(),
            payment: Arc::default(),
        }
    }
}

/// The running topologies.
#[derive(Debug)]
pub struct Topologies {
    apps: Mutex<Vec<(&'static str, RunningApp)>>,
    pub catalog: StoreReader,
    pub fulfillment: StoreReader,
    pub notifications: StoreReader,
    pub analytics: StoreReader,
}

impl Topologies {
    /// Starts catalog, fulfillment, notifications and analytics. Each start bootstraps its
    /// global tables before its stream threads run, so once this returns every store is
    /// restored and every topology runs.
    pub fn start(
        log: Arc<dyn LogBackend>,
        clock: Arc<dyn Clock>,
        options: &PlatformOptions,
    ) -> Result<Self, RuntimeError> {
        let topologies = [
            ("catalog", orderflow_topologies::catalog::topology()?),
            (
                "fulfillment",
                orderflow_topologies::fulfillment::topology(&FulfillmentOptions {
                    provider: options.fulfillment.provider.clone(),
                    saga: options.fulfillment.saga.clone(),
                    payment: options.fulfillment.payment.clone(),
                })?,
            ),
            (
                "notifications",
                orderflow_topologies::notifications::topology(&NotificationsOptions {
                    delivery: options.notification_delivery.clone(),
                })?,
            ),
            (
                "analytics",
                orderflow_topologies::analytics::topology(&AnalyticsOptions {
                    config: options.analytics.clone(),
                    export_directory: options.analytics_export.clone(),
                    export_file_bytes: 0,
                })?,
            ),
        ];
        let mut apps = Vec::new();
        let mut readers = Vec::new();
        for (name, topology) in topologies {
            let mut runtime = options.runtime.clone();
            runtime.application_id = format!("{}-{name}", options.runtime.application_id);
            let topology = Arc::new(topology);
            readers.push(StoreReader::new(
                topology.clone(),
                log.clone(),
                &runtime.application_id,
            ));
            let app = RunningApp::start(
                topology,
                log.clone(),
                runtime,
                clock.clone(),
                MetricsRegistry::new(),
            )?;
            apps.push((name, app));
        }
        let mut readers = readers.into_iter();
        let mut next = || readers.next().expect("one reader per topology");
        Ok(Self {
            catalog: next(),
            fulfillment: next(),
            notifications: next(),
            analytics: next(),
            apps: Mutex::new(apps),
        })
    }

    /// Whether every topology's threads are running.
    pub fn is_healthy(&self) -> bool {
        let apps = self.apps.lock().expect("apps lock poisoned");
        !apps.is_empty() && apps.iter().all(|(_, app)| app.is_healthy())
    }

    /// Records not yet processed, over every topology.
    pub fn lag(&self) -> Result<u64, RuntimeError> {
        let mut lag = 0;
        for (_, app) in self.apps.lock().expect("apps lock poisoned").iter() {
            lag += app.lag()?;
        }
        Ok(lag)
    }

    /// Waits until every topology has processed everything, twice in a row (one topology's
    /// output is another's input), or the timeout passes. Blocking: for start-up and tools.
    pub fn wait_until_idle(&self, timeout: Duration) -> Result<bool, RuntimeError> {
        let deadline = Instant::now() + timeout;
        let mut idle_checks = 0;
        while Instant::now() < deadline && self.is_healthy() {
            if self.lag()? == 0 {
                idle_checks += 1;
                if idle_checks >= 2 {
                    return Ok(true);
                }
            } else {
                idle_checks = 0;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(false)
    }

    /// Prometheus text of every topology's runtime metrics.
    pub fn render_metrics(&self) -> Vec<String> {
        self.apps
            .lock()
            .expect("apps lock poisoned")
            .iter()
            .map(|(_, app)| app.metrics().render_prometheus(app.application_id()))
            .collect()
    }

    /// Stops every topology after it commits its in-flight work.
    pub fn shutdown(&self) -> Result<(), RuntimeError> {
        let apps = std::mem::take(&mut *self.apps.lock().expect("apps lock poisoned"));
        let mut first_error = None;
        for (name, app) in apps {
            if let Err(error) = app.shutdown() {
                tracing::error!(topology = name, %error, "stopping a topology failed");
                first_error.get_or_insert(error);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}
