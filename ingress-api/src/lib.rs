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
use crate::platform::{AtomicIntake, CommandProducer, LogWatcher, Topologies};
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
    let intake = match shared {
        SharedState::Local(_) if log.supports_state_appends() => {
            Some(open_intake(&database, log.as_ref(), clock.now_ms()).await?)
        }
        _ => None,
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
        intake,
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
    if state.intake.is_some() {
        tokio::spawn(sweep_idempotency_keys(Arc::downgrade(&state)));
    }
    Ok(state)
}

/// Opens the atomic order intake in the log's database; on its first start over a data
/// directory the SQL path wrote to, takes in that user index and those completed keys.
async fn open_intake(
    database: &Database,
    log: &dyn LogBackend,
    now_ms: i64,
) -> Result<AtomicIntake, IngressError> {
    let intake_error = |what| {
        move |error: orderflow_state_stores::StoreError| IngressError::Intake {
            what,
            reason: error.to_string(),
        }
    };
    let intake =
        AtomicIntake::open(log.state_engine()).map_err(intake_error("opening its keyspaces"))?;
    if !intake
        .imported_from_sql()
        .map_err(intake_error("reading its markers"))?
    {
        let sql_error = |error: crate::db::DbError| IngressError::Intake {
            what: "reading the SQL order index and idempotency keys",
            reason: error.to_string(),
        };
        let user_orders = database.all_user_orders().await.map_err(sql_error)?;
        let keys = database
            .unexpired_idempotency_keys(now_ms)
            .await
            .map_err(sql_error)?;
        if !user_orders.is_empty() || !keys.is_empty() {
            tracing::info!(
                orders = user_orders.len(),
                keys = keys.len(),
                "moving the user order index and idempotency keys from SQL to the log's database"
            );
        }
        intake
            .import_from_sql(user_orders, keys)
            .map_err(intake_error("importing from SQL"))?;
    }
    Ok(intake)
}

/// How often expired idempotency keys are deleted, and how many per pass.
const SWEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);
const SWEEP_BATCH: usize = 10_000;

/// Deletes expired idempotency keys of the atomic intake until the state is dropped (it
/// holds the state weakly, so it keeps nothing alive).
async fn sweep_idempotency_keys(state: std::sync::Weak<AppState>) {
    loop {
        tokio::time::sleep(SWEEP_INTERVAL).await;
        let Some(state) = state.upgrade() else {
            return;
        };
        let Some(intake) = state.intake.clone() else {
            return;
        };
        let now_ms = state.now_ms();
        drop(state);
        let swept = tokio::task::spawn_blocking(move || {
            let mut total = 0;
            loop {
                let removed = intake.sweep_expired(now_ms, SWEEP_BATCH)?;
                total += removed;
                if removed < SWEEP_BATCH {
                    return Ok::<_, orderflow_state_stores::StoreError>(total);
                }
            }
        })
        .await;
        match swept {
            Ok(Ok(0)) => {}
            Ok(Ok(removed)) => tracing::debug!(removed, "expired idempotency keys deleted"),
            Ok(Err(error)) => tracing::warn!(%error, "deleting expired idempotency keys failed"),
            Err(error) => tracing::warn!(%error, "the idempotency key sweep panicked"),
        }
    }
}
