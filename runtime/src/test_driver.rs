//! A test driver in the spirit of Kafka Streams' `TopologyTestDriver`, with several partitions.
//!
//! It runs the real tasks (the same [`Task`] code the stream threads run) on the calling thread,
//! over an in-memory embedded log, with a manual clock. Tests pipe records in, advance wall-clock
//! time, read output topics and committed stores, and simulate crashes: a crash drops everything
//! since the last commit and reopens every task from committed state.

use std::collections::HashMap;
use std::ops::Bound;
use std::sync::Arc;

use orderflow_state_stores::{CommittedKeyValueStore, StoreCodecs};

use crate::app::{create_topics, task_ids};
use crate::clock::{Clock, ManualClock};
use crate::config::RuntimeConfig;
use crate::error::RuntimeError;
use crate::log::LogBackend;
use crate::log::embedded::EmbeddedLog;
use crate::metrics::MetricsRegistry;
use crate::partitioner::partition_for_key;
use crate::record::{LogRecord, Record, StoredRecord};
use crate::serde::{RecordDecoder, RecordSerde};
use crate::side_tasks::SideTasks;
use crate::task::Task;
use crate::topology::{Topology, TypedStoreCodecs, store_space_name};

/// Drives a topology deterministically. See the module doc.
pub struct TopologyTestDriver {
    topology: Arc<Topology>,
    log: EmbeddedLog,
    clock: ManualClock,
    config: RuntimeConfig,
    metrics: Arc<MetricsRegistry>,
    tasks: Vec<Task>,
    side_tasks: SideTasks,
    read_positions: HashMap<(String, u32), u64>,
    /// Topics whose consumers are stalled (see [`Self::stall`]).
    stalled: std::collections::HashSet<String>,
}

impl std::fmt::Debug for TopologyTestDriver {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("TopologyTestDriver")
            .field("tasks", &self.tasks.len())
            .finish()
    }
}

/// The wall-clock time a driver starts at: 2026-01-01T00:00:00Z.
pub const DEFAULT_START_MS: i64 = 1_767_225_600_000;

impl TopologyTestDriver {
    pub fn new(topology: Topology) -> Result<Self, RuntimeError> {
        Self::with_config(topology, RuntimeConfig::default(), DEFAULT_START_MS)
    }

    pub fn with_config(
        topology: Topology,
        config: RuntimeConfig,
        start_ms: i64,
    ) -> Result<Self, RuntimeError> {
        config.validate()?;
        let log = EmbeddedLog::in_memory();
        let topology = Arc::new(topology);
        create_topics(&topology, &log)?;
        let clock = ManualClock::new(start_ms);
        let side_tasks = SideTasks::open(&topology, &log, &config, Arc::new(clock.clone()))?;
        let mut driver = Self {
            topology,
            log,
            clock,
            config,
            metrics: MetricsRegistry::new(),
            tasks: Vec::new(),
            side_tasks,
            read_positions: HashMap::new(),
            stalled: Default::default(),
        };
        driver.open_tasks()?;
        Ok(driver)
    }

    fn open_tasks(&mut self) -> Result<(), RuntimeError> {
        let clock: Arc<dyn Clock> = Arc::new(self.clock.clone());
        self.tasks = task_ids(&self.topology)
            .into_iter()
            .map(|id| {
                Task::open(
                    self.topology.clone(),
                    id,
                    &self.log,
                    clock.clone(),
                    &self.config,
                    &self.metrics,
                    HashMap::new(),
                )
            })
            .collect::<Result<_, _>>()?;
        Ok(())
    }

    pub fn log(&self) -> &EmbeddedLog {
        &self.log
    }

    /// Raw entries in the application's timer keyspace (due queue and index, every task): 0
    /// once every timer has fired or been cancelled and nothing stale is left behind.
    pub fn timer_entries(&self) -> Result<usize, RuntimeError> {
        self.count_timer_keys(|_| true)
    }

    /// Entries in the due queues of every task: timers not yet fired or cancelled, and the
    /// stale entries of moved indexed timers until they come due. What [`Self::timer_entries`]
    /// counts, without the indexes and stream-time hints.
    pub fn queued_timers(&self) -> Result<usize, RuntimeError> {
        self.count_timer_keys(crate::timers::is_queue_key)
    }

    fn count_timer_keys(&self, counted: impl Fn(&[u8]) -> bool) -> Result<usize, RuntimeError> {
        let engine = self.log.state_engine();
        let space = engine.space(&crate::timers::timer_space_name(
            &self.config.application_id,
        ))?;
        let mut entries = 0;
        engine.scan(
            &space,
            Bound::Unbounded,
            Bound::Unbounded,
            false,
            &mut |key, _| {
                if counted(key) {
                    entries += 1;
                }
                std::ops::ControlFlow::Continue(())
            },
        )?;
        Ok(entries)
    }

    pub fn clock(&self) -> &ManualClock {
        &self.clock
    }

    pub fn metrics(&self) -> &Arc<MetricsRegistry> {
        &self.metrics
    }

    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// Appends a raw record to a topic partition (committed at once, like a producer's send).
    pub fn pipe_raw(
        &self,
        topic: &str,
        partition: u32,
        record: LogRecord,
    ) -> Result<u64, RuntimeError> {
        let offsets = self
            .log
            .produce(vec![(topic.to_string(), partition, record)])?;
        Ok(offsets[0])
    }

    /// Appends a typed record, partitioned by its encoded key as a Kafka producer would.
    pub fn pipe<K, V>(
        &self,
        topic: &str,
        serde: &RecordSerde<K, V>,
        key: &K,
        value: &V,
        timestamp: i64,
    ) -> Result<u64, RuntimeError> {
        let record = serde
            .to_log_record(key, value, timestamp)
            .map_err(|reason| RuntimeError::Config {
                field: "pipe",
                reason,
            })?;
        let partitions = self
            .log
            .topic(topic)
            .ok_or_else(|| crate::error::LogError::UnknownTopic {
                topic: topic.to_string(),
            })?
            .partitions;
        let partition = partition_for_key(record.key.as_deref().unwrap_or_default(), partitions);
        self.pipe_raw(topic, partition, record)
    }

    /// Processes and commits until no task has input or due timers left; returns the records
    /// and timers handled.
    pub fn run_until_idle(&mut self) -> Result<usize, RuntimeError> {
        let mut total = 0;
        loop {
            let mut handled = self.process_once()?;
            self.commit_all()?;
            handled += self.run_effects()?;
            total += handled;
            if handled == 0 {
                return Ok(total);
            }
        }
    }

    /// Stalls every consumer of `topic`: the stream tasks that read it (records and timers
    /// alike, as a stuck or slow instance would be) and the effect executors whose requests it
    /// carries. Records keep arriving and wait. For tests of what happens when a step of a
    /// pipeline does not answer: deadlines, late answers. [`Self::resume_all`] undoes it.
    pub fn stall(&mut self, topic: &str) {
        self.stalled.insert(topic.to_string());
    }

    /// Ends every [`Self::stall`].
    pub fn resume_all(&mut self) {
        self.stalled.clear();
    }

    /// Global tables first, then one poll of every stream task without committing it (see
    /// [`Self::crash`]), then the effect executors (which commit their own results). Stalled
    /// tasks are skipped.
    pub fn process_once(&mut self) -> Result<usize, RuntimeError> {
        let now_ms = self.clock.now_ms();
        let mut handled = self.side_tasks.poll_global_tables(&self.log)?;
        for task in &mut self.tasks {
            let sources = &self.topology.sub_topologies[task.id.sub_topology].source_topics;
            if sources.iter().any(|topic| self.stalled.contains(topic)) {
                continue;
            }
            handled += task.poll(&self.log, now_ms)?;
        }
        Ok(handled)
    }

    /// Runs the effect executors once over what is committed (but not those stalled).
    pub fn run_effects(&mut self) -> Result<usize, RuntimeError> {
        let stalled = &self.stalled;
        self.side_tasks
            .poll_effects_where(&self.log, |request_topic| !stalled.contains(request_topic))
    }

    pub fn commit_all(&mut self) -> Result<(), RuntimeError> {
        for task in &mut self.tasks {
            task.commit(&self.log)?;
        }
        Ok(())
    }

    /// Moves wall-clock time forward and runs until idle, so due timers fire.
    pub fn advance_wall_clock(&mut self, milliseconds: i64) -> Result<usize, RuntimeError> {
        self.clock.advance_ms(milliseconds);
        self.run_until_idle()
    }

    /// Simulates a crash: drops every uncommitted change and reopens the tasks from the last
    /// commit, as a process restart would.
    pub fn crash(&mut self) -> Result<(), RuntimeError> {
        for task in self.tasks.drain(..) {
            task.abort();
        }
        self.open_tasks()
    }

    /// Every record of a topic not read before by this driver, in partition then offset order.
    pub fn read_raw(&mut self, topic: &str) -> Result<Vec<(u32, StoredRecord)>, RuntimeError> {
        let spec = self
            .log
            .topic(topic)
            .ok_or_else(|| crate::error::LogError::UnknownTopic {
                topic: topic.to_string(),
            })?;
        let mut records = Vec::new();
        for partition in 0..spec.partitions {
            let position = self
                .read_positions
                .entry((topic.to_string(), partition))
                .or_insert(0);
            loop {
                let batch = self.log.fetch(topic, partition, *position, 10_000)?;
                let Some(last) = batch.last() else {
                    break;
                };
                *position = last.offset + 1;
                records.extend(batch.into_iter().map(|record| (partition, record)));
            }
        }
        Ok(records)
    }

    /// Like [`Self::read_raw`], decoded.
    pub fn read<K, V>(
        &mut self,
        topic: &str,
        serde: &RecordSerde<K, V>,
    ) -> Result<Vec<Record<K, V>>, RuntimeError> {
        self.read_raw(topic)?
            .into_iter()
            .map(|(_, stored)| {
                let (key, value) =
                    serde
                        .decode(&stored.record)
                        .map_err(|reason| RuntimeError::Config {
                            field: "read",
                            reason: format!("{topic} offset {}: {reason}", stored.offset),
                        })?;
                Ok(Record {
                    key,
                    value,
                    timestamp: stored.record.timestamp,
                    headers: stored.record.headers,
                })
            })
            .collect()
    }

    /// The committed contents of a key-value store, over every partition, in partition order.
    pub fn store_entries<K: 'static, V: 'static>(
        &self,
        store: &str,
    ) -> Result<Vec<(K, V)>, RuntimeError> {
        let definition = self.store_definition(store)?;
        let codecs = definition
            .codecs
            .downcast_ref::<TypedStoreCodecs<K, V>>()
            .ok_or_else(|| RuntimeError::Config {
                field: "store",
                reason: format!("store `{store}` has other types"),
            })?;
        let partitions = self.topology.sub_topologies()[definition.sub_topology].partitions;
        let engine = self.log.state_engine();
        let mut entries = Vec::new();
        for partition in 0..partitions {
            let space = engine.space(&store_space_name(
                &self.config.application_id,
                store,
                partition,
            ))?;
            let view = CommittedKeyValueStore::new(
                engine,
                space,
                StoreCodecs {
                    name: store,
                    key: codecs.key.as_ref(),
                    value: codecs.value.as_ref(),
                },
            );
            entries.extend(view.range(Bound::Unbounded, Bound::Unbounded, usize::MAX)?);
        }
        Ok(entries)
    }

    fn store_definition(
        &self,
        store: &str,
    ) -> Result<&crate::topology::StoreDefinition, RuntimeError> {
        self.topology
            .store(store)
            .ok_or_else(|| RuntimeError::Config {
                field: "store",
                reason: format!("no store named `{store}`"),
            })
    }

    /// Writes an indexed timer of processor `node` straight into the timer keyspace, as the
    /// task owning `record_key` (an input record's key) would have scheduled it: for tests of
    /// timers left by older builds. Call it between rounds.
    pub fn put_indexed_timer(
        &self,
        node: &str,
        record_key: &[u8],
        kind: crate::timers::TimerKind,
        timer_key: &[u8],
        due_ms: i64,
    ) -> Result<(), RuntimeError> {
        self.put_indexed_timer_carrying(node, record_key, kind, timer_key, due_ms, Vec::new())
    }

    /// [`Self::put_indexed_timer`] with a payload.
    pub fn put_indexed_timer_carrying(
        &self,
        node: &str,
        record_key: &[u8],
        kind: crate::timers::TimerKind,
        timer_key: &[u8],
        due_ms: i64,
        payload: Vec<u8>,
    ) -> Result<(), RuntimeError> {
        let sub_topology = self
            .topology
            .nodes
            .iter()
            .find(|candidate| candidate.name == node)
            .map(|found| found.sub_topology)
            .ok_or_else(|| RuntimeError::Config {
                field: "node",
                reason: format!("no node named `{node}`"),
            })?;
        let partitions = self.topology.sub_topologies()[sub_topology].partitions;
        let prefix =
            crate::timers::task_prefix(sub_topology, partition_for_key(record_key, partitions));
        let engine = self.log.state_engine();
        let space = engine.space(&crate::timers::timer_space_name(
            &self.config.application_id,
        ))?;
        let mut batch = orderflow_state_stores::WriteBatch::new();
        for (key, value) in
            crate::timers::indexed_entries(&prefix, kind, node, timer_key, due_ms, payload)
        {
            batch.put(&space, key, value);
        }
        engine.commit(batch, orderflow_state_stores::Durability::Buffered)?;
        Ok(())
    }

    /// Writes `value` as the stored bytes of `key` (already encoded) in `store`, in the
    /// partition the key belongs to, between rounds: for tests of values written by older
    /// builds in older formats.
    pub fn put_store_bytes(
        &self,
        store: &str,
        key: &[u8],
        value: Vec<u8>,
    ) -> Result<(), RuntimeError> {
        let definition = self.store_definition(store)?;
        let partitions = self.topology.sub_topologies()[definition.sub_topology].partitions;
        let partition = partition_for_key(key, partitions);
        let engine = self.log.state_engine();
        let space = engine.space(&store_space_name(
            &self.config.application_id,
            store,
            partition,
        ))?;
        let mut batch = orderflow_state_stores::WriteBatch::new();
        batch.put(&space, key.to_vec(), value);
        engine.commit(batch, orderflow_state_stores::Durability::Buffered)?;
        Ok(())
    }
}
