//! Health and metrics, for load balancers, orchestrators and Prometheus.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::payload::{Json, PlainText};
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::ApiTags;
use crate::metrics::merge_expositions;
use crate::state::AppState;

/// What readiness depends on.
#[derive(Debug, Object)]
#[oai(example, skip_serializing_if_is_none)]
pub struct Readiness {
    /// Every topology runs (stores restored, global tables caught up, threads alive).
    pub topologies: bool,
    /// The user database answers.
    pub database: bool,
    /// The shared-state backend (in-process or Redis) answers.
    pub shared_state: bool,
    /// Records not yet processed by the topologies.
    pub lag: u64,
}

impl poem_openapi::types::Example for Readiness {
    fn example() -> Self {
        Self {
            topologies: true,
            database: true,
            shared_state: true,
            lag: 0,
        }
    }
}

#[derive(Debug, ApiResponse)]
enum LiveResponse {
    /// The process is up.
    #[oai(status = 200)]
    Ok(PlainText<String>),
}

#[derive(Debug, ApiResponse)]
enum ReadyResponse {
    /// Ready to serve.
    #[oai(status = 200)]
    Ready(Json<Readiness>),
    /// Not ready (yet, or any more): a problem whose members also say what is missing.
    #[oai(status = 503, content_type = "application/problem+json")]
    NotReady(Json<NotReady>),
}

/// A 503 from `/health/ready`: an RFC 9457 problem (like every error of this API) with the
/// readiness checks as extension members.
#[derive(Debug, Object)]
#[oai(example)]
pub struct NotReady {
    /// A URI reference naming the problem type.
    #[oai(rename = "type")]
    pub problem_type: String,
    /// A short summary of the problem type.
    pub title: String,
    /// The HTTP status code, 503.
    pub status: u16,
    /// Which checks failed, for a person.
    pub detail: String,
    /// Every topology runs (stores restored, global tables caught up, threads alive).
    pub topologies: bool,
    /// The user database answers.
    pub database: bool,
    /// The shared-state backend (in-process or Redis) answers.
    pub shared_state: bool,
    /// Records not yet processed by the topologies.
    pub lag: u64,
}

impl NotReady {
    fn from_readiness(readiness: Readiness) -> Self {
        let failed: Vec<&str> = [
            (readiness.topologies, "the topologies are not all running"),
            (readiness.database, "the user database does not answer"),
            (
                readiness.shared_state,
                "the shared-state backend does not answer",
            ),
        ]
        .into_iter()
        .filter(|(ok, _)| !ok)
        .map(|(_, what)| what)
        .collect();
        let problem = crate::problem::Problem::new(
            poem::http::StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {}", failed.join("; ")),
        );
        Self {
            problem_type: problem.problem_type,
            title: problem.title,
            status: problem.status,
            detail: problem.detail,
            topologies: readiness.topologies,
            database: readiness.database,
            shared_state: readiness.shared_state,
            lag: readiness.lag,
        }
    }
}

impl poem_openapi::types::Example for NotReady {
    fn example() -> Self {
        Self::from_readiness(Readiness {
            topologies: false,
            database: true,
            shared_state: true,
            lag: 1_250,
        })
    }
}

#[derive(Debug, ApiResponse)]
enum MetricsResponse {
    /// Prometheus text exposition format 0.0.4.
    #[oai(status = 200, content_type = "text/plain; version=0.0.4")]
    Ok(PlainText<String>),
}

/// The operations endpoints.
#[derive(Debug)]
pub struct OperationsApi;

#[OpenApi(tag = "ApiTags::Operations")]
impl OperationsApi {
    /// Liveness: the process answers.
    #[oai(path = "/health/live", method = "get", operation_id = "live")]
    async fn live(&self) -> LiveResponse {
        LiveResponse::Ok(PlainText("live".to_string()))
    }

    /// Readiness: stores restored, every topology running, dependencies answering.
    #[oai(path = "/health/ready", method = "get", operation_id = "ready")]
    async fn ready(&self, state: Data<&Arc<AppState>>) -> ReadyResponse {
        let readiness = Readiness {
            topologies: state.topologies.is_healthy(),
            database: state.database.ping().await,
            shared_state: state.shared.ping().await,
            lag: state.topologies.lag().unwrap_or(u64::MAX),
        };
        if readiness.topologies && readiness.database && readiness.shared_state {
            ReadyResponse::Ready(Json(readiness))
        } else {
            ReadyResponse::NotReady(Json(NotReady::from_readiness(readiness)))
        }
    }

    /// Metrics: HTTP latency by route and status, records processed, lag, dead letters, saga
    /// outcomes and order latency; the storage engine's memory and queues and the process's
    /// resident memory.
    #[oai(path = "/metrics", method = "get", operation_id = "metrics")]
    async fn metrics(&self, state: Data<&Arc<AppState>>) -> MetricsResponse {
        let mut texts = state.topologies.render_metrics();
        let mut api = String::new();
        state.metrics.render(&mut api);
        let lag = state.topologies.lag().unwrap_or(0);
        api.push_str(&format!(
            "# HELP orderflow_consumer_lag_records Records not yet processed, over every topology.\n# TYPE orderflow_consumer_lag_records gauge\norderflow_consumer_lag_records {lag}\n"
        ));
        if let Some(stats) = state.log.storage_stats() {
            render_storage_stats(&mut api, &stats);
        }
        if let Some(bytes) = resident_memory_bytes() {
            api.push_str(&format!(
                "# HELP process_resident_memory_bytes Resident memory size in bytes.\n# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes {bytes}\n"
            ));
        }
        texts.push(api);
        MetricsResponse::Ok(PlainText(merge_expositions(&texts)))
    }
}

/// The storage engine's gauges: what an operator watches when memory grows or writes slow
/// down (memtables waiting for the flush worker, journals held back by them).
fn render_storage_stats(out: &mut String, stats: &orderflow_state_stores::StorageStats) {
    use std::fmt::Write;
    let gauges: [(&str, &str, u64); 5] = [
        (
            "orderflow_storage_write_buffer_bytes",
            "Bytes in memtables, active and sealed, over every keyspace.",
            stats.write_buffer_bytes,
        ),
        (
            "orderflow_storage_queued_flushes",
            "Sealed memtables waiting for the flush worker.",
            stats.queued_flushes as u64,
        ),
        (
            "orderflow_storage_journal_files",
            "Journal files not yet released.",
            stats.journal_files as u64,
        ),
        (
            "orderflow_storage_active_compactions",
            "Compactions running now.",
            stats.active_compactions as u64,
        ),
        (
            "orderflow_storage_block_cache_bytes",
            "Bytes in the block cache.",
            stats.block_cache_bytes,
        ),
    ];
    for (name, help, value) in gauges {
        let _ = write!(
            out,
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}\n"
        );
    }
}

/// This process's resident memory, from `VmRSS` in `/proc/self/status` (Linux; `None`
/// elsewhere).
fn resident_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
