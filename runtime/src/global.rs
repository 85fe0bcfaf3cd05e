//! Global tables: a read-only copy of a whole topic's table in every task, like Kafka Streams'
//! `GlobalKTable`.
//!
//! Processors keyed one way look up data keyed another way (the order saga, keyed by order id,
//! prices lines from the product table, keyed by sku) without repartitioning. A global table is
//! fed by its own task, which reads every partition of its topic, projects each record into a
//! store entry, and commits the entries with its positions in one batch. At start-up the runtime
//! brings every global table up to the end of its topic before stream tasks run.

use std::any::Any;
use std::cell::RefCell;
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use orderflow_state_stores::{
    CommittedKeyValueStore, Space, StorageEngine, StoreCodecs, WriteBatch,
};

use crate::clock::Clock;
use crate::dead_letter::{self, Failure, FailureStage};
use crate::error::{ProcessError, RuntimeError};
use crate::global_row_cache::GlobalRowCache;
use crate::log::{LogBackend, LogTransaction, Visibility};
use crate::record::LogRecord;
use crate::topology::TypedStoreCodecs;

/// Turns a log record into the store write it implies: `Ok(None)` skips the record,
/// `Some((key, None))` deletes the key.
pub(crate) type ProjectFn =
    Arc<dyn Fn(&LogRecord) -> Result<Option<(Vec<u8>, Option<Vec<u8>>)>, String> + Send + Sync>;

/// A declared global table.
#[derive(Clone)]
pub(crate) struct GlobalTableDefinition {
    pub name: String,
    pub topic: String,
    pub project: ProjectFn,
    pub codecs: Arc<dyn Any + Send + Sync>,
    /// Bumped by the table's task after every commit that changed the table, so tasks drop
    /// the rows they cached (see `global_row_cache`).
    pub version: Arc<AtomicU64>,
}

/// The keyspace of a global table.
pub fn global_table_space_name(application_id: &str, table: &str) -> String {
    format!("global.{application_id}.{table}")
}

/// The consumer group that tracks a global table's positions.
pub fn global_table_group(application_id: &str, table: &str) -> String {
    format!("{application_id}.global.{table}")
}

/// Keeps one global table up to date.
pub(crate) struct GlobalTableTask {
    definition: GlobalTableDefinition,
    group: String,
    application_id: String,
    space: Space,
    positions: Vec<u64>,
    poll_batch: usize,
    clock: Arc<dyn Clock>,
}

impl GlobalTableTask {
    pub fn open(
        definition: GlobalTableDefinition,
        application_id: &str,
        log: &dyn LogBackend,
        poll_batch: usize,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, RuntimeError> {
        let group = global_table_group(application_id, &definition.name);
        let space = log
            .state_engine()
            .space(&global_table_space_name(application_id, &definition.name))?;
        let partitions = log
            .topic(&definition.topic)
            .ok_or_else(|| crate::error::LogError::UnknownTopic {
                topic: definition.topic.clone(),
            })?
            .partitions;
        let mut positions = Vec::new();
        for partition in 0..partitions {
            positions.push(
                match log.committed_position(&group, &definition.topic, partition)? {
                    Some(position) => position,
                    None => log.offsets(&definition.topic, partition)?.log_start,
                },
            );
        }
        Ok(Self {
            definition,
            group,
            application_id: application_id.to_string(),
            space,
            positions,
            poll_batch,
            clock,
        })
    }

    /// Applies one batch per partition and commits it; returns how many records it applied.
    pub fn poll(&mut self, log: &dyn LogBackend) -> Result<usize, RuntimeError> {
        let mut state = WriteBatch::new();
        let mut dead_letters = Vec::new();
        let mut applied = 0;
        let topic = self.definition.topic.clone();
        for (partition, position) in self.positions.iter_mut().enumerate() {
            let partition = partition as u32;
            // As in tasks: the end is read first, so a short fetch proves offsets below it that
            // it did not return are gaps, which are stepped over.
            let end = log.end_visible(&topic, partition, Visibility::InProcess)?;
            if *position >= end {
                continue;
            }
            let records = log.fetch_visible(
                &topic,
                partition,
                *position,
                self.poll_batch,
                Visibility::InProcess,
            )?;
            let complete = records.len() < self.poll_batch;
            if records.is_empty() {
                *position = end;
                applied += 1;
            }
            for stored in records {
                *position = stored.offset + 1;
                applied += 1;
                match (self.definition.project)(&stored.record) {
                    Ok(Some((key, value))) => state.write(&self.space, key, value),
                    Ok(None) => {}
                    Err(error) => {
                        tracing::warn!(
                            table = %self.definition.name,
                            topic = %topic,
                            partition,
                            offset = stored.offset,
                            error = %error,
                            "global table record sent to the dead-letter topic"
                        );
                        dead_letters.push((
                            orderflow_schemas::topic::dead_letter_topic_name(&topic),
                            partition,
                            dead_letter::dead_letter(
                                &stored,
                                &Failure {
                                    application_id: &self.application_id,
                                    topic: &topic,
                                    partition,
                                    node: &self.definition.name,
                                    stage: FailureStage::Decode,
                                    error,
                                    failed_at_ms: self.clock.now_ms(),
                                },
                            ),
                        ));
                    }
                }
            }
            if complete {
                *position = (*position).max(end);
            }
        }
        if applied == 0 {
            return Ok(0);
        }
        let changed = !state.is_empty();
        log.commit(LogTransaction {
            group: self.group.clone(),
            outputs: dead_letters,
            positions: self
                .positions
                .iter()
                .enumerate()
                .map(|(partition, position)| (topic.clone(), partition as u32, *position))
                .collect(),
            state,
        })?;
        if changed {
            // After the commit: a task that sees the new version reads the new rows.
            self.definition.version.fetch_add(1, Ordering::Release);
        }
        Ok(applied)
    }

    /// Whether every partition has been applied to its end.
    pub fn is_caught_up(&self, log: &dyn LogBackend) -> Result<bool, RuntimeError> {
        for (partition, position) in self.positions.iter().enumerate() {
            if log.end_visible(
                &self.definition.topic,
                partition as u32,
                Visibility::InProcess,
            )? > *position
            {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// A read-only view of a global table, for processors. Point reads go through the task's
/// [`GlobalRowCache`].
pub struct GlobalTableView<'a, K, V> {
    store: CommittedKeyValueStore<'a, K, V>,
    name: &'a str,
    cache: &'a RefCell<GlobalRowCache>,
    version: &'a AtomicU64,
}

impl<K, V> std::fmt::Debug for GlobalTableView<'_, K, V> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("GlobalTableView")
            .field("table", &self.name)
            .finish()
    }
}

impl<K, V> GlobalTableView<'_, K, V> {
    pub fn get(&self, key: &K) -> Result<Option<V>, ProcessError> {
        Ok(self.store.get_through(key, |engine, space, encoded_key| {
            self.cache
                .borrow_mut()
                .get_or_load(self.name, self.version, encoded_key, || {
                    engine.get(space, encoded_key)
                })
        })?)
    }

    pub fn range(
        &self,
        lower: Bound<&K>,
        upper: Bound<&K>,
        limit: usize,
    ) -> Result<Vec<(K, V)>, ProcessError> {
        Ok(self.store.range(lower, upper, limit)?)
    }
}

/// Opens a typed view of a global table's committed state.
pub(crate) fn view<'a, K: 'static, V: 'static>(
    engine: &'a StorageEngine,
    space: Space,
    definition: &'a GlobalTableDefinition,
    cache: &'a RefCell<GlobalRowCache>,
) -> Result<GlobalTableView<'a, K, V>, ProcessError> {
    let codecs = definition
        .codecs
        .downcast_ref::<TypedStoreCodecs<K, V>>()
        .ok_or_else(|| ProcessError::StoreType {
            store: definition.name.clone(),
            requested: std::any::type_name::<(K, V)>(),
            actual: "other types",
        })?;
    Ok(GlobalTableView {
        store: CommittedKeyValueStore::new(
            engine,
            space,
            StoreCodecs {
                name: &definition.name,
                key: codecs.key.as_ref(),
                value: codecs.value.as_ref(),
            },
        ),
        name: &definition.name,
        cache,
        version: &definition.version,
    })
}
