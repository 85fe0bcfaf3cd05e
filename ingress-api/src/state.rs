//! Everything a request handler may use, shared by every request.

use std::sync::Arc;

use orderflow_runtime::{Clock, LogBackend};

use crate::auth::access_token::TokenSigner;
use crate::auth::password::PasswordHashing;
use crate::config::ApiConfig;
use crate::db::Database;
use crate::metrics::ApiMetrics;
use crate::platform::{AtomicIntake, CommandProducer, LogWatcher, Topologies};
use crate::shared::SharedState;

/// The API's shared state.
#[derive(Debug)]
pub struct AppState {
    pub config: ApiConfig,
    pub clock: Arc<dyn Clock>,
    pub signer: TokenSigner,
    pub passwords: PasswordHashing,
    pub database: Database,
    pub shared: SharedState,
    /// The atomic order intake, when the log and the shared state are both in this process
    /// (see [`crate::platform::order_intake`]); otherwise orders go through `shared` and SQL.
    pub intake: Option<AtomicIntake>,
    pub log: Arc<dyn LogBackend>,
    pub producer: CommandProducer,
    pub topologies: Arc<Topologies>,
    pub watcher: Arc<LogWatcher>,
    pub metrics: Arc<ApiMetrics>,
    /// Wakes the outbox relay after a user change.
    pub outbox_signal: Arc<tokio::sync::Notify>,
}

impl AppState {
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// The partition count of a topic (1 if unknown, which never happens for catalog topics).
    pub fn partitions(&self, topic: &str) -> u32 {
        self.log.topic(topic).map_or(1, |spec| spec.partitions)
    }
}
