//! Runtime configuration: threads, commits and failure handling.

use orderflow_state_stores::Durability;
use serde::{Deserialize, Serialize};

use crate::error::RuntimeError;
use crate::log::embedded::DEFAULT_SYNC_SPACING;

/// The largest `sync-spacing-us`: what reads durable records waits up to this long.
const MAX_SYNC_SPACING_US: u64 = 100_000;

/// How an application runs its topology. Every field has a default suited to one small machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default, rename_all = "kebab-case")]
pub struct RuntimeConfig {
    /// Names the consumer group, the state stores and the timers of the application.
    pub application_id: String,
    /// Threads that run tasks; 0 means one per CPU core.
    pub stream_threads: usize,
    /// A task commits at least this often (milliseconds) while it has uncommitted work.
    pub commit_interval_ms: u64,
    /// A task also commits after processing this many records.
    pub commit_max_records: usize,
    /// A task also commits as soon as it has read its inputs to their ends: low latency when
    /// load is light, at the cost of more (smaller) commits. Off: only interval and size.
    pub commit_when_caught_up: bool,
    /// Fsync: what leaves the process (the API's intake, effects) waits until it is on disk,
    /// while stream tasks run ahead of the disk (see "Durability, pipelined" in the embedded
    /// log). Buffered: nothing waits for the disk.
    pub durability: Durability,
    /// With fsync durability: the least time between the starts of two fsyncs of the log's
    /// syncer thread, in microseconds. What commits in between shares the next fsync: fewer
    /// fsyncs under steady load, for at most this much more wait for what reads durable
    /// records (effects such as payment calls, the API's order-status watcher, tools). The
    /// API's intake syncs on its own. At most 100,000 (0.1 s).
    pub sync_spacing_us: u64,
    /// Bytes of global-table rows (products, users) each task keeps in memory after reading
    /// them, dropped whenever the table changes; 0 turns the cache off.
    pub global_table_cache_bytes_per_task: usize,
    /// Bytes of committed windows each window store keeps in memory per task: aggregations
    /// read and rewrite the same windows record after record; 0 turns the cache off.
    pub window_store_cache_bytes: usize,
    /// Records fetched from one input partition per poll, and the most a task handles in one
    /// round. Under load, larger rounds mean fewer commits per record; under light load a round
    /// holds what has arrived, so this does not delay a stream task. (Effect executors take
    /// `effect_batch_records`.)
    pub poll_batch_records: usize,
    /// Requests an effect executor (payment calls, notification delivery, exports) takes per
    /// partition and round. It runs them one at a time and commits their results after the
    /// round, so this bounds how long the first result waits and how much runs again after a
    /// crash (idempotency keys absorb it, a notification may repeat).
    pub effect_batch_records: usize,
    /// First delay before a panicked task restarts; doubles per consecutive failure.
    pub restart_backoff_initial_ms: u64,
    /// Longest delay between task restarts.
    pub restart_backoff_max_ms: u64,
    /// A record that panics its processor this many times goes to the dead-letter topic.
    pub max_panics_per_record: u32,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            application_id: "orderflow".to_string(),
            stream_threads: 0,
            commit_interval_ms: 100,
            commit_max_records: 10_000,
            commit_when_caught_up: true,
            durability: Durability::Fsync,
            sync_spacing_us: DEFAULT_SYNC_SPACING.as_micros() as u64,
            global_table_cache_bytes_per_task: 2 * 1024 * 1024,
            window_store_cache_bytes: 1024 * 1024,
            // 1,000 committed so often under load that the saga benchmark ran 15-25% slower
            // (docs/benchmarks.md).
            poll_batch_records: 5_000,
            effect_batch_records: 1_000,
            restart_backoff_initial_ms: 100,
            restart_backoff_max_ms: 10_000,
            max_panics_per_record: 3,
        }
    }
}

impl RuntimeConfig {
    pub fn with_application_id(mut self, application_id: impl Into<String>) -> Self {
        self.application_id = application_id.into();
        self
    }

    /// Stream threads after resolving 0 to the number of cores.
    pub fn resolved_stream_threads(&self) -> usize {
        if self.stream_threads == 0 {
            std::thread::available_parallelism().map_or(1, usize::from)
        } else {
            self.stream_threads
        }
    }

    /// Refuses values that cannot work, naming the field.
    pub fn validate(&self) -> Result<(), RuntimeError> {
        let invalid = |field, reason: &str| {
            Err(RuntimeError::Config {
                field,
                reason: reason.to_string(),
            })
        };
        if self.application_id.is_empty()
            || !self
                .application_id
                .chars()
                .all(|character| character.is_ascii_alphanumeric() || "-_.".contains(character))
        {
            return invalid(
                "application-id",
                "use 1 or more of the characters [A-Za-z0-9._-]",
            );
        }
        if self.commit_interval_ms == 0 {
            return invalid("commit-interval-ms", "must be at least 1");
        }
        if self.commit_max_records == 0 {
            return invalid("commit-max-records", "must be at least 1");
        }
        if self.poll_batch_records == 0 {
            return invalid("poll-batch-records", "must be at least 1");
        }
        if self.effect_batch_records == 0 {
            return invalid("effect-batch-records", "must be at least 1");
        }
        if self.sync_spacing_us > MAX_SYNC_SPACING_US {
            return invalid(
                "sync-spacing-us",
                "must be at most 100000 (0.1 s): effects and the API wait for it",
            );
        }
        if self.max_panics_per_record == 0 {
            return invalid("max-panics-per-record", "must be at least 1");
        }
        if self.restart_backoff_initial_ms > self.restart_backoff_max_ms {
            return invalid(
                "restart-backoff-initial-ms",
                "must not exceed restart-backoff-max-ms",
            );
        }
        Ok(())
    }
}
