//! The ingress API: poem + poem-openapi. It authenticates and validates requests, writes
//! commands to topics, and serves the topologies' materialized views back, with
//! read-your-writes position tokens and long-polling. Errors are RFC 9457 problem details.

// `ApiError` is a poem-openapi response enum carrying the problem body; it is large by design
// (documented responses cannot be boxed) and only travels on the error path.
#![allow(clippy::result_large_err)]

pub mod allowed_methods;
pub mod api;
pub mod auth;
pub mod bootstrap;
pub mod config;
pub mod db;
pub mod error;
pub mod metrics;
pub mod openapi_formats;
pub mod openapi_links;
pub mod platform;
pub mod problem;
pub mod rate_limit;
pub mod relay;
pub mod server;
pub mod shared;
pub mod state;

use std::path::PathBuf;
use std::sync::Arc;

use orderflow_runtime::{Clock, LogBackend};

pub use config::ApiConfig;
pub use error::IngressError;
pub use server::{openapi_document, routes};
pub use state::AppState;

use crate::auth::access_token::TokenSigner;
use crate::auth::password::PasswordHashing;
use crate::db::Database;
use crate::metrics::ApiMetrics;
use crate::platform::{CommandProducer, LogWatcher, Topologies};
use crate::shared::SharedState;

/// What the API is built from.
#[derive(Debug, Clone)]
pub struct IngressOptions {
    pub config: ApiConfig,
    /// Where the SQLite user database and the signing key live by default.
    pub data_dir: PathBuf,
    pub clock: Arc<dyn Clock>,
    pub log: Arc<dyn LogBackend>,
    pub topologies: Arc<Topologies>,
}

/// Connects the API's dependencies and starts its background work (producer, watcher,
/// outbox relay). Needs a tokio runtime.
pub async fn start(options: IngressOptions) -> Result<Arc<AppState>, IngressError> {
    let IngressOptions {
        mut config,
        data_dir,
        clock,
        log,
        topologies,
    } = options;
    if config.redis_url.is_empty()
        && let Ok(url) = std::env::var("REDIS_URL")
    {
        config.redis_url = url;
    }
    config.validate()?;
    if config.database_url.is_empty() {
        std::fs::create_dir_all(&data_dir).map_err(|source| IngressError::Io {
            what: format!("creating the data directory {}", data_dir.display()),
            source,
        })?;
        config.database_url = format!("sqlite://{}?mode=rwc", data_dir.join("users.db").display());
    }
    let database = Database::connect(&config.database_url).await?;
    let shared = if config.redis_url.is_empty() {
        SharedState::local(database.clone())
    } else {
        SharedState::redis(&config.redis_url).await?
    };
    let key = bootstrap::signing_key(&config.auth.signing_key, &data_dir)?;
    let metrics = ApiMetrics::new();
    let state = Arc::new(AppState {
        signer: TokenSigner::new(key, &config.auth.issuer, &config.auth.audience),
        passwords: PasswordHashing::new(
            config.auth.argon2_memory_kib,
            config.auth.argon2_iterations,
        ),
        database,
        shared,
        producer: CommandProducer::start(log.clone()),
        watcher: LogWatcher::start(log.clone(), clock.clone(), metrics.clone()),
        outbox_signal: Arc::new(tokio::sync::Notify::new()),
        metrics,
        config,
        clock,
        log,
        topologies,
    });
    tokio::spawn(relay::run(state.clone()));
    Ok(state)
}
