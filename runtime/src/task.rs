//! Tasks: one sub-topology processing one partition of its inputs.
//!
//! A task owns its processors, its stores' uncommitted writes, its input positions and the
//! outputs it has produced since its last commit. It is driven from outside (a stream thread, or
//! the test driver) through [`Task::poll`] and [`Task::commit`]; it never spawns anything.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use orderflow_schemas::topic::dead_letter_topic_name;
use orderflow_state_stores::{
    StoreCodecs, StoreTransaction, TransactionalKeyValueStore, TransactionalWindowStore, WriteBatch,
};

use crate::clock::Clock;
use crate::config::RuntimeConfig;
use crate::dead_letter::{self, Failure, FailureStage};
use crate::error::{ProcessError, RuntimeError};
use crate::log::{LogBackend, LogTransaction, Visibility};
use crate::metrics::{MetricsRegistry, ProcessorMetrics, TaskMetrics};
use crate::partitioner::partition_for_key;
use crate::processor::ErasedRecord;
use crate::record::{LogRecord, RecordMetadata, StoredRecord};
use crate::timers::{self, TimerKind};
use crate::topology::{ErasedProcessor, NodeKind, Topology, TypedStoreCodecs, store_space_name};

/// Identifies a task: sub-topology and partition, written `1_3` as in Kafka Streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskId {
    pub sub_topology: usize,
    pub partition: u32,
}

impl std::fmt::Display for TaskId {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{}_{}", self.sub_topology, self.partition)
    }
}

pub(crate) struct StoreHandle {
    space: usize,
}

/// The part of a task processors reach through their context.
pub struct TaskCore {
    pub(crate) topology: Arc<Topology>,
    pub(crate) application_id: String,
    pub(crate) partition: u32,
    pub(crate) transaction: StoreTransaction,
    stores: HashMap<String, StoreHandle>,
    pub(crate) timer_space: usize,
    pub(crate) timer_prefix: [u8; 8],
    /// Per timer kind, a time before which no timer of the task is due (see
    /// [`timers::NextDue`]), so a round does not scan the timer queue for nothing.
    pub(crate) next_due: timers::NextDue,
    global_tables: HashMap<String, orderflow_state_stores::Space>,
    global_rows: std::cell::RefCell<crate::global_row_cache::GlobalRowCache>,
    pub(crate) queue: VecDeque<(usize, ErasedRecord)>,
    outputs: Vec<(String, u32, LogRecord)>,
    pub(crate) metadata: Option<RecordMetadata>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) stream_time: i64,
}

impl std::fmt::Debug for TaskCore {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("TaskCore")
            .field("application_id", &self.application_id)
            .field("partition", &self.partition)
            .finish()
    }
}

impl TaskCore {
    pub(crate) fn enqueue(&mut self, node: usize, record: ErasedRecord) {
        self.queue.push_back((node, record));
    }

    fn check_attached(&self, node: usize, name: &str) -> Result<(), ProcessError> {
        let attached = match &self.topology.nodes[node].kind {
            NodeKind::Processor { stores, .. } => stores.iter().any(|store| store == name),
            _ => false,
        };
        if attached {
            Ok(())
        } else {
            Err(ProcessError::StoreNotAttached {
                store: name.to_string(),
                processor: self.topology.nodes[node].name.clone(),
            })
        }
    }

    pub(crate) fn key_value_store<K: 'static, V: 'static>(
        &mut self,
        node: usize,
        name: &str,
    ) -> Result<TransactionalKeyValueStore<'_, K, V>, ProcessError> {
        self.check_attached(node, name)?;
        let definition = self
            .topology
            .store(name)
            .expect("attached stores are declared");
        if definition.window.is_some() {
            return Err(ProcessError::StoreType {
                store: name.to_string(),
                requested: "a key-value store",
                actual: "a window store",
            });
        }
        let codecs = definition
            .codecs
            .downcast_ref::<TypedStoreCodecs<K, V>>()
            .ok_or_else(|| ProcessError::StoreType {
                store: name.to_string(),
                requested: std::any::type_name::<(K, V)>(),
                actual: definition.value_type,
            })?;
        let handle = self
            .stores
            .get(name)
            .expect("a task opens every store of its sub-topology");
        Ok(TransactionalKeyValueStore::new(
            &mut self.transaction,
            handle.space,
            StoreCodecs {
                name: &definition.name,
                key: codecs.key.as_ref(),
                value: codecs.value.as_ref(),
            },
        ))
    }

    pub(crate) fn global_table<K: 'static, V: 'static>(
        &self,
        name: &str,
    ) -> Result<crate::global::GlobalTableView<'_, K, V>, ProcessError> {
        let definition = self
            .topology
            .global_tables
            .iter()
            .find(|table| table.name == name)
            .ok_or_else(|| ProcessError::StoreNotAttached {
                store: name.to_string(),
                processor: "(global tables are declared with add_global_table)".to_string(),
            })?;
        let space = self
            .global_tables
            .get(name)
            .expect("a task opens every global table")
            .clone();
        crate::global::view(
            self.transaction.engine(),
            space,
            definition,
            &self.global_rows,
        )
    }

    pub(crate) fn window_store<K: 'static, V: 'static>(
        &mut self,
        node: usize,
        name: &str,
    ) -> Result<TransactionalWindowStore<'_, K, V>, ProcessError> {
        self.check_attached(node, name)?;
        let definition = self
            .topology
            .store(name)
            .expect("attached stores are declared");
        let Some(retention) = definition.window else {
            return Err(ProcessError::StoreType {
                store: name.to_string(),
                requested: "a window store",
                actual: "a key-value store",
            });
        };
        let codecs = definition
            .codecs
            .downcast_ref::<TypedStoreCodecs<K, V>>()
            .ok_or_else(|| ProcessError::StoreType {
                store: name.to_string(),
                requested: std::any::type_name::<(K, V)>(),
                actual: definition.value_type,
            })?;
        let handle = self
            .stores
            .get(name)
            .expect("a task opens every store of its sub-topology");
        Ok(TransactionalWindowStore::new(
            &mut self.transaction,
            handle.space,
            StoreCodecs {
                name: &definition.name,
                key: codecs.key.as_ref(),
                value: codecs.value.as_ref(),
            },
            retention,
        ))
    }
}

struct Input {
    source_node: usize,
    topic: Arc<str>,
    dead_letter_topic: String,
    next_offset: u64,
    buffer: VecDeque<StoredRecord>,
    /// Every record below this offset has been fetched (offsets missing below it are gaps).
    read_to: u64,
}

/// What a task was doing, remembered so that a panic can be pinned on it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum InFlight {
    /// An input record: the input's index within the task, and the record's offset.
    Record { input: usize, offset: u64 },
    /// A timer callback.
    Timer {
        node: String,
        kind: TimerKind,
        key: Vec<u8>,
        due_ms: i64,
    },
}

/// A commit prepared by [`Task::prepare_commit`], waiting for the log.
#[derive(Debug)]
pub struct PreparedCommit {
    started: Instant,
    produced: u64,
}

/// One sub-topology on one partition.
pub struct Task {
    pub id: TaskId,
    core: TaskCore,
    processors: Vec<Option<Box<dyn ErasedProcessor>>>,
    processor_metrics: Vec<Option<Arc<ProcessorMetrics>>>,
    sink_partitions: Vec<u32>,
    inputs: Vec<Input>,
    config: RuntimeConfig,
    metrics: Arc<TaskMetrics>,
    uncommitted_records: usize,
    dirty: bool,
    last_commit_ms: i64,
    in_flight: Option<InFlight>,
    /// Records that panicked too often: dead-lettered without processing.
    poisoned: HashMap<InFlight, String>,
    round_robin: u32,
    /// At the last poll, every input's buffer reached the end of its partition.
    caught_up: bool,
}

impl std::fmt::Debug for Task {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Task")
            .field("id", &self.id)
            .finish()
    }
}

impl Task {
    /// Opens a task at its last commit: stores, timers, stream time and input positions.
    pub fn open(
        topology: Arc<Topology>,
        id: TaskId,
        log: &dyn LogBackend,
        clock: Arc<dyn Clock>,
        config: &RuntimeConfig,
        registry: &MetricsRegistry,
        poisoned: HashMap<InFlight, String>,
    ) -> Result<Task, RuntimeError> {
        let application_id = config.application_id.clone();
        let sub_topology = &topology.sub_topologies[id.sub_topology];
        let mut transaction = StoreTransaction::new(log.state_engine().clone());
        let mut stores = HashMap::new();
        for store in &sub_topology.stores {
            let name = store_space_name(&application_id, store, id.partition);
            // Window stores get a read cache: aggregations read and rewrite the same windows.
            let is_window_store = topology
                .store(store)
                .is_some_and(|definition| definition.window.is_some());
            let space = if is_window_store {
                transaction.register_cached(&name, config.window_store_cache_bytes)?
            } else {
                transaction.register(&name)?
            };
            stores.insert(store.clone(), StoreHandle { space });
        }
        let timer_space = transaction.register(&timers::timer_space_name(&application_id))?;
        let mut global_tables = HashMap::new();
        for table in &topology.global_tables {
            global_tables.insert(
                table.name.clone(),
                log.state_engine()
                    .space(&crate::global::global_table_space_name(
                        &application_id,
                        &table.name,
                    ))?,
            );
        }
        let timer_prefix = timers::task_prefix(id.sub_topology, id.partition);
        // Unknown until the first record: no stream-time timer fires before any record arrives.
        let stream_time = transaction
            .get(timer_space, &timers::stream_time_key(&timer_prefix))?
            .and_then(|bytes| bytes.as_slice().try_into().ok().map(i64::from_be_bytes))
            .unwrap_or(i64::MIN);

        let mut processors: Vec<Option<Box<dyn ErasedProcessor>>> = Vec::new();
        let mut processor_metrics = Vec::new();
        let mut sink_partitions = Vec::new();
        let mut inputs = Vec::new();
        for (index, node) in topology.nodes.iter().enumerate() {
            let in_task = node.sub_topology == id.sub_topology;
            processors.push(match &node.kind {
                NodeKind::Processor { factory, .. } if in_task => Some(factory()),
                _ => None,
            });
            processor_metrics.push(match &node.kind {
                NodeKind::Processor { .. } if in_task => Some(registry.processor(&node.name)),
                _ => None,
            });
            sink_partitions.push(match &node.kind {
                NodeKind::Sink { topic, .. } => {
                    topology.topic(topic).map_or(1, |spec| spec.partitions)
                }
                _ => 0,
            });
            if let NodeKind::Source { topic, .. } = &node.kind
                && in_task
            {
                let next_offset =
                    match log.committed_position(&application_id, topic, id.partition)? {
                        Some(position) => position,
                        // No commit yet: start from the earliest record (auto.offset.reset=earliest).
                        None => log.offsets(topic, id.partition)?.log_start,
                    };
                inputs.push(Input {
                    source_node: index,
                    topic: Arc::from(topic.as_str()),
                    dead_letter_topic: dead_letter_topic_name(topic),
                    next_offset,
                    buffer: VecDeque::new(),
                    read_to: 0,
                });
            }
        }
        Ok(Task {
            id,
            core: TaskCore {
                topology,
                application_id,
                partition: id.partition,
                transaction,
                stores,
                timer_space,
                timer_prefix,
                next_due: timers::NextDue::default(),
                global_tables,
                global_rows: std::cell::RefCell::new(crate::global_row_cache::GlobalRowCache::new(
                    config.global_table_cache_bytes_per_task,
                )),
                queue: VecDeque::new(),
                outputs: Vec::new(),
                metadata: None,
                clock: clock.clone(),
                stream_time,
            },
            processors,
            processor_metrics,
            sink_partitions,
            inputs,
            config: config.clone(),
            metrics: registry.task(&id.to_string()),
            uncommitted_records: 0,
            dirty: false,
            last_commit_ms: clock.now_ms(),
            in_flight: None,
            poisoned,
            round_robin: 0,
            caught_up: false,
        })
    }

    /// The record being processed, if any (read after a panic).
    pub fn in_flight(&self) -> Option<InFlight> {
        self.in_flight.clone()
    }

    /// Whether the task has uncommitted work.
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// Whether every input was read to its end at the last poll and nothing is buffered.
    pub fn is_caught_up(&self) -> bool {
        self.caught_up && self.inputs.iter().all(|input| input.buffer.is_empty())
    }

    /// Whether the commit interval or record limit has been reached.
    pub fn should_commit(&self, now_ms: i64) -> bool {
        self.dirty
            && (self.uncommitted_records >= self.config.commit_max_records
                || now_ms.saturating_sub(self.last_commit_ms)
                    >= self.config.commit_interval_ms as i64)
    }

    /// Reads more input when buffers run dry, processes up to one batch of records in timestamp
    /// order, then fires due timers. Returns how many records and timers it handled.
    pub fn poll(&mut self, log: &dyn LogBackend, now_ms: i64) -> Result<usize, RuntimeError> {
        let mut lag = 0;
        let mut fetched_to_end = true;
        for input in &mut self.inputs {
            // The end is read before fetching: a fetch that returns less than asked has then
            // returned every record below it, and any offset it skipped is a gap (a failed
            // append), which the task steps over instead of waiting for it forever.
            // In-process visibility: see "Durability, pipelined" in the embedded log.
            let end = log.end_visible(&input.topic, self.id.partition, Visibility::InProcess)?;
            if input.buffer.is_empty() {
                if input.next_offset < end {
                    let fetched = log.fetch_visible(
                        &input.topic,
                        self.id.partition,
                        input.next_offset,
                        self.config.poll_batch_records,
                        Visibility::InProcess,
                    )?;
                    if fetched.len() < self.config.poll_batch_records {
                        input.read_to = end;
                    }
                    input.buffer.extend(fetched);
                    if input.buffer.is_empty() && input.read_to > input.next_offset {
                        input.next_offset = input.read_to;
                        self.dirty = true;
                    }
                } else {
                    input.read_to = input.read_to.max(end);
                }
            }
            lag += end.saturating_sub(input.next_offset);
            fetched_to_end &= input.read_to >= end;
        }
        self.metrics.lag.store(lag, Ordering::Relaxed);
        self.caught_up = fetched_to_end;
        let mut handled = 0;
        while handled < self.config.poll_batch_records {
            // Like Kafka Streams, pick the buffered record with the smallest timestamp, so
            // co-partitioned inputs are joined in event-time order.
            let next = self
                .inputs
                .iter()
                .enumerate()
                .filter_map(|(index, input)| {
                    input
                        .buffer
                        .front()
                        .map(|record| (record.record.timestamp, index))
                })
                .min();
            let Some((_, input_index)) = next else {
                break;
            };
            self.process_next(input_index)?;
            handled += 1;
        }
        if self.core.stream_time != i64::MIN {
            handled += self.fire_timers(TimerKind::StreamTime, self.core.stream_time)?;
        }
        handled += self.fire_timers(TimerKind::WallClock, now_ms)?;
        Ok(handled)
    }

    fn process_next(&mut self, input_index: usize) -> Result<(), RuntimeError> {
        let input = &mut self.inputs[input_index];
        let stored = input
            .buffer
            .pop_front()
            .expect("the caller picked a non-empty buffer");
        input.next_offset = stored.offset + 1;
        if input.buffer.is_empty() {
            input.next_offset = input.next_offset.max(input.read_to);
        }
        let source_node = input.source_node;
        let in_flight = InFlight::Record {
            input: input_index,
            offset: stored.offset,
        };
        self.dirty = true;
        self.uncommitted_records += 1;
        self.metrics.records_in.fetch_add(1, Ordering::Relaxed);
        self.core.stream_time = self.core.stream_time.max(stored.record.timestamp);

        if let Some(panic_message) = self.poisoned.remove(&in_flight) {
            self.send_to_dead_letters(
                input_index,
                &stored,
                source_node,
                FailureStage::Panic,
                panic_message,
            );
            return Ok(());
        }
        let started = Instant::now();
        self.in_flight = Some(in_flight);
        let NodeKind::Source {
            decode,
            clone_record,
            ..
        } = &self.core.topology.nodes[source_node].kind
        else {
            unreachable!("inputs are sources");
        };
        let (key, value) = match decode(&stored.record) {
            Ok(decoded) => decoded,
            Err(error) => {
                self.in_flight = None;
                self.send_to_dead_letters(
                    input_index,
                    &stored,
                    source_node,
                    FailureStage::Decode,
                    error,
                );
                return Ok(());
            }
        };
        let clone_record = clone_record.clone();
        self.core.metadata = Some(RecordMetadata {
            topic: self.inputs[input_index].topic.clone(),
            partition: self.id.partition,
            offset: stored.offset,
            timestamp: stored.record.timestamp,
            headers: stored.record.headers.clone(),
        });
        self.core.transaction.savepoint();
        let outputs_before = self.core.outputs.len();
        let record = ErasedRecord {
            key,
            value,
            timestamp: stored.record.timestamp,
            headers: stored.record.headers.clone(),
        };
        let topology = self.core.topology.clone();
        let children = topology.children(source_node);
        if let Some((last, others)) = children.split_last() {
            for child in others {
                self.core.enqueue(*child, clone_record(&record));
            }
            self.core.enqueue(*last, record);
        }
        if let Err((failed_node, error)) = self.drain_queue() {
            self.core.transaction.rollback_to_savepoint();
            self.core.outputs.truncate(outputs_before);
            self.core.queue.clear();
            self.send_to_dead_letters(
                input_index,
                &stored,
                failed_node,
                FailureStage::Process,
                error.to_string(),
            );
        }
        self.core.metadata = None;
        self.in_flight = None;
        self.metrics.process_latency.record(started.elapsed());
        Ok(())
    }

    /// Runs queued records through processors and sinks until the queue is empty.
    fn drain_queue(&mut self) -> Result<(), (usize, ProcessError)> {
        while let Some((node, record)) = self.core.queue.pop_front() {
            let topology = self.core.topology.clone();
            match &topology.nodes[node].kind {
                NodeKind::Processor { .. } => {
                    let processor = self.processors[node]
                        .as_mut()
                        .expect("the task created every processor of its sub-topology");
                    let result = processor.process(&mut self.core, node, record);
                    let metrics = self.processor_metrics[node]
                        .as_ref()
                        .expect("metrics exist for every processor of the task");
                    metrics.records.fetch_add(1, Ordering::Relaxed);
                    if let Err(error) = result {
                        metrics.errors.fetch_add(1, Ordering::Relaxed);
                        return Err((node, error));
                    }
                }
                NodeKind::Sink { topic, encode } => {
                    let (key, value) =
                        encode(record.key.as_ref(), record.value.as_ref()).map_err(|message| {
                            (
                                node,
                                ProcessError::Encode {
                                    topic: topic.clone(),
                                    message,
                                },
                            )
                        })?;
                    let partitions = self.sink_partitions[node];
                    let partition = match &key {
                        Some(key) => partition_for_key(key, partitions),
                        None => {
                            self.round_robin = self.round_robin.wrapping_add(1);
                            self.round_robin % partitions.max(1)
                        }
                    };
                    self.core.outputs.push((
                        topic.clone(),
                        partition,
                        LogRecord {
                            key,
                            value,
                            headers: record.headers,
                            timestamp: record.timestamp,
                        },
                    ));
                }
                NodeKind::Source { .. } => unreachable!("sources have no parents"),
            }
        }
        Ok(())
    }

    fn send_to_dead_letters(
        &mut self,
        input_index: usize,
        stored: &StoredRecord,
        node: usize,
        stage: FailureStage,
        error: String,
    ) {
        let input = &self.inputs[input_index];
        let node_name = self.core.topology.node_name(node).to_string();
        tracing::warn!(
            task = %self.id,
            topic = %input.topic,
            partition = self.id.partition,
            offset = stored.offset,
            node = %node_name,
            stage = stage.as_str(),
            error = %error,
            "record sent to the dead-letter topic"
        );
        let dead_letter = dead_letter::dead_letter(
            stored,
            &Failure {
                application_id: &self.core.application_id,
                topic: &input.topic,
                partition: self.id.partition,
                node: &node_name,
                stage,
                error,
                failed_at_ms: self.core.clock.now_ms(),
            },
        );
        self.core.outputs.push((
            input.dead_letter_topic.clone(),
            self.id.partition,
            dead_letter,
        ));
        self.metrics.dead_letters.fetch_add(1, Ordering::Relaxed);
    }

    /// Fires the timers of `kind` due by `up_to`, at most one batch per call, each claimed just
    /// before its callback and rolled back with it if the callback fails. Returns the entries
    /// handled: fired, and stale ones deleted.
    fn fire_timers(&mut self, kind: TimerKind, up_to: i64) -> Result<usize, RuntimeError> {
        let store_error = |error: ProcessError| match error {
            ProcessError::Store(store) => RuntimeError::Store(store),
            other => RuntimeError::Config {
                field: "timers",
                reason: other.to_string(),
            },
        };
        let due = timers::due(&mut self.core, kind, up_to, self.config.poll_batch_records)
            .map_err(store_error)?;
        let mut handled = 0;
        let topology = self.core.topology.clone();
        for due_timer in due {
            // A claim always writes: it deletes the entry whether it fires or is stale. Stale
            // ones count as handled too, so a backlog of them does not look like an idle round.
            self.dirty = true;
            handled += 1;
            if !timers::claim(&mut self.core, &due_timer).map_err(store_error)? {
                continue;
            }
            let timers::DueTimer {
                node: node_name,
                timer,
                ..
            } = due_timer;
            let Some(node) = topology.nodes.iter().position(|node| {
                node.name == node_name && node.sub_topology == self.id.sub_topology
            }) else {
                tracing::warn!(task = %self.id, node = %node_name, "dropping a timer of a processor that no longer exists");
                continue;
            };
            let Some(processor) = self.processors[node].as_mut() else {
                continue;
            };
            let in_flight = InFlight::Timer {
                node: node_name.clone(),
                kind,
                key: timer.key.clone(),
                due_ms: timer.due_ms,
            };
            if let Some(panic_message) = self.poisoned.remove(&in_flight) {
                tracing::error!(task = %self.id, node = %node_name, due_ms = timer.due_ms, panic = %panic_message, "dropping a timer whose callback keeps panicking");
                continue;
            }
            self.in_flight = Some(in_flight);
            self.core.metadata = None;
            self.core.transaction.savepoint();
            let outputs_before = self.core.outputs.len();
            let due_ms = timer.due_ms;
            let result = processor
                .on_timer(&mut self.core, node, timer)
                .map_err(|error| (node, error))
                .and_then(|()| self.drain_queue());
            self.in_flight = None;
            self.metrics.timers_fired.fetch_add(1, Ordering::Relaxed);
            if let Err((failed_node, error)) = result {
                self.core.transaction.rollback_to_savepoint();
                self.core.outputs.truncate(outputs_before);
                self.core.queue.clear();
                if let Some(metrics) = &self.processor_metrics[failed_node] {
                    metrics.errors.fetch_add(1, Ordering::Relaxed);
                }
                tracing::error!(
                    task = %self.id,
                    node = %topology.node_name(failed_node),
                    due_ms,
                    error = %error,
                    "a timer callback failed; its effects were rolled back and the timer dropped"
                );
            }
        }
        Ok(handled)
    }

    /// Commits outputs, state, timers and input positions in one atomic log transaction.
    pub fn commit(&mut self, log: &dyn LogBackend) -> Result<(), RuntimeError> {
        if let Some((transaction, prepared)) = self.prepare_commit() {
            log.commit(transaction)?;
            self.finish_commit(prepared);
        }
        Ok(())
    }

    /// The first half of a commit: everything since the last commit as one log transaction,
    /// or `None` when nothing changed. Hand it to [`LogBackend::commit`] (or, with other
    /// tasks', to [`LogBackend::commit_all`]) and, once it is committed, call
    /// [`Task::finish_commit`].
    pub fn prepare_commit(&mut self) -> Option<(LogTransaction, PreparedCommit)> {
        if !self.dirty {
            return None;
        }
        let started = Instant::now();
        self.core.transaction.write(
            self.core.timer_space,
            timers::stream_time_key(&self.core.timer_prefix),
            Some(self.core.stream_time.to_be_bytes().to_vec()),
        );
        let mut state = WriteBatch::new();
        self.core.transaction.drain_into(&mut state);
        let positions = self
            .inputs
            .iter()
            .map(|input| {
                (
                    input.topic.to_string(),
                    self.id.partition,
                    input.next_offset,
                )
            })
            .collect();
        let outputs = std::mem::take(&mut self.core.outputs);
        let produced = outputs.len() as u64;
        let transaction = LogTransaction {
            group: self.core.application_id.clone(),
            outputs,
            positions,
            state,
        };
        Some((transaction, PreparedCommit { started, produced }))
    }

    /// The second half of a commit, once the log has committed the prepared transaction.
    pub fn finish_commit(&mut self, prepared: PreparedCommit) {
        self.dirty = false;
        self.uncommitted_records = 0;
        self.last_commit_ms = self.core.clock.now_ms();
        self.metrics
            .records_out
            .fetch_add(prepared.produced, Ordering::Relaxed);
        self.metrics.commits.fetch_add(1, Ordering::Relaxed);
        self.metrics
            .commit_latency
            .record(prepared.started.elapsed());
        let mut store_keys = self
            .metrics
            .store_keys
            .lock()
            .expect("metrics lock poisoned");
        for (name, handle) in &self.core.stores {
            store_keys.insert(
                name.clone(),
                self.core.transaction.approximate_len(handle.space),
            );
        }
    }

    /// When the task's next wall-clock timer is due, if a round has looked (`None`: none is
    /// scheduled, or not known yet). Lets an idle thread sleep until then rather than a fixed
    /// time.
    pub fn next_wall_clock_timer_ms(&self) -> Option<i64> {
        match self.core.next_due.get(TimerKind::WallClock) {
            i64::MIN | i64::MAX => None,
            due => Some(due),
        }
    }

    /// Drops everything since the last commit (a simulated crash, or a failed task).
    pub fn abort(mut self) {
        self.core.transaction.abort();
        self.core.outputs.clear();
        self.core.queue.clear();
    }
}
