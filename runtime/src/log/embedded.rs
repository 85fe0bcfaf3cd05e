//! The embedded log: durable topics, partitions and group positions in the same fjall database
//! as the state, so one batch commits outputs, state and positions together.
//!
//! Layout: topic metadata in `orderflow.topics` (name -> JSON spec); the records of topic `t` in
//! keyspace `topic.t`, in batches (one per partition per commit; `log/record_batch.rs`) keyed
//! by `partition u32 BE | first offset u64 BE`; group positions are [`Checkpoints`]. High
//! watermarks are kept in memory and recovered at open from the last record of each
//! partition's last batch. Offsets are assigned under one lock at commit time, so concurrent
//! tasks appending to one partition get distinct, gap-free offsets.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::{Bound, ControlFlow};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

use orderflow_schemas::topic::{CleanupPolicy, TopicSpec};
use orderflow_state_stores::{
    CheckpointEntry, Checkpoints, Durability, Space, StorageEngine, WriteBatch,
};

use crate::error::LogError;
use crate::log::record_batch::{BatchWriter, batch_records};
use crate::log::{
    LogBackend, LogTransaction, OffsetDependentWrites, PartitionOffsets, RecordListener,
    StatefulAppend, Visibility,
};
use crate::record::{LogRecord, StoredRecord, decode_log_record};

const TOPIC_METADATA_SPACE: &str = "orderflow.topics";
/// The syncer's least time between the starts of two syncs, unless configured: under steady
/// load it holds the fsyncs to a few hundred a second (see [`Syncer::start`]).
pub const DEFAULT_SYNC_SPACING: Duration = Duration::from_millis(3);

/// How long a tombstone survives compaction (Kafka's `delete.retention.ms` default).
const TOMBSTONE_RETENTION_MS: i64 = 24 * 60 * 60 * 1000;

fn record_key(partition: u32, offset: u64) -> [u8; 12] {
    let mut key = [0u8; 12];
    key[..4].copy_from_slice(&partition.to_be_bytes());
    key[4..].copy_from_slice(&offset.to_be_bytes());
    key
}

fn offset_of_key(key: &[u8]) -> u64 {
    u64::from_be_bytes(key[4..12].try_into().expect("record keys are 12 bytes"))
}

/// Decodes the records of the batch at `base` whose offsets are in `range` into `records`,
/// until it holds `max_records`.
fn collect_batch(
    base: u64,
    value: &[u8],
    range: &std::ops::Range<u64>,
    max_records: usize,
    records: &mut Vec<StoredRecord>,
) -> Result<ControlFlow<()>, String> {
    for (offset, bytes) in batch_records(base, value)? {
        if offset < range.start {
            continue;
        }
        if offset >= range.end || records.len() >= max_records {
            return Ok(ControlFlow::Break(()));
        }
        let record = decode_log_record(bytes)
            .map_err(|reason| format!("record at offset {offset}: {reason}"))?;
        records.push(StoredRecord { offset, record });
    }
    Ok(if records.len() >= max_records {
        ControlFlow::Break(())
    } else {
        ControlFlow::Continue(())
    })
}

/// The (first, last) offsets of the batch stored under `key`; `None` for an empty one.
fn batch_bounds(key: &[u8], value: &[u8]) -> Result<Option<(u64, u64)>, String> {
    let records = batch_records(offset_of_key(key), value)?;
    Ok(records
        .first()
        .zip(records.last())
        .map(|(first, last)| (first.0, last.0)))
}

/// A partition's first batch, for opening the log: a corrupt one is logged and counted as one
/// record at its key, so it fails the reads of its records, not the open. (A corrupt *last*
/// batch refuses the open instead: its records' offsets are unknown, and guessing the end would
/// hand some of them out again.)
fn recovered_first_batch(
    engine: &StorageEngine,
    space: &Space,
    topic: &str,
    partition: u32,
) -> Result<Option<(u64, u64)>, LogError> {
    match edge_batch_bounds(engine, space, topic, partition, Edge::First) {
        Err(LogError::CorruptRecord { offset, reason, .. }) => {
            tracing::error!(topic, partition, offset, %reason, "a corrupt record batch at the start of a partition: its records cannot be read");
            Ok(Some((offset, offset)))
        }
        other => other,
    }
}

/// Which end of a partition [`edge_batch_bounds`] looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Edge {
    First,
    Last,
}

/// The (first, last) offsets of a partition's first or last batch.
fn edge_batch_bounds(
    engine: &StorageEngine,
    space: &Space,
    topic: &str,
    partition: u32,
    edge: Edge,
) -> Result<Option<(u64, u64)>, LogError> {
    let lower = record_key(partition, 0);
    let upper = record_key(partition, u64::MAX);
    let (lower, upper) = (Bound::Included(&lower[..]), Bound::Included(&upper[..]));
    let found = match edge {
        Edge::First => engine.first_in(space, lower, upper)?,
        Edge::Last => engine.last_in(space, lower, upper)?,
    };
    let Some((key, value)) = found else {
        return Ok(None);
    };
    batch_bounds(&key, &value).map_err(|reason| LogError::CorruptRecord {
        topic: topic.to_string(),
        partition,
        offset: offset_of_key(&key),
        reason,
    })
}

#[derive(Debug, Clone)]
struct TopicEntry {
    spec: TopicSpec,
    space: Space,
    /// Per partition: the in-process high watermark, the end of the committed records.
    ends: Vec<u64>,
    /// Per partition: the durable high watermark, the end of the records known on disk (at
    /// or below `ends`).
    durable_ends: Vec<u64>,
    /// Per partition: the oldest offset present.
    starts: Vec<u64>,
    /// Per partition: the next offset to hand out (at or past `ends`).
    reserved: Vec<u64>,
    /// Per partition: ranges handed out and not yet readable, start -> (end, committed).
    in_flight: Vec<BTreeMap<u64, (u64, bool)>>,
}

impl TopicEntry {
    /// Marks a reserved range committed and moves the high watermark over every committed
    /// range that now follows it without a gap.
    fn complete(&mut self, partition: usize, start: u64, durable: bool) {
        let ranges = &mut self.in_flight[partition];
        if let Some(range) = ranges.get_mut(&start) {
            range.1 = true;
        }
        while let Some((&first, &(end, committed))) = ranges.first_key_value() {
            if !committed || first != self.ends[partition] {
                break;
            }
            self.ends[partition] = end;
            ranges.remove(&first);
        }
        if durable {
            self.durable_ends[partition] = self.ends[partition];
        }
    }

    fn end(&self, partition: usize, visibility: Visibility) -> u64 {
        match visibility {
            Visibility::Durable => self.durable_ends[partition],
            Visibility::InProcess => self.ends[partition],
        }
    }
}

#[derive(Debug, Default)]
struct Notifier {
    generation: Mutex<Generation>,
    changed: Condvar,
    /// Listeners by the topics they listen to (see [`LogBackend::listen`]).
    /// Read by every commit, written only when a listener registers (which also drops the
    /// listeners gone since): a read lock, so committing threads do not queue behind each other.
    listeners: std::sync::RwLock<Vec<std::sync::Weak<TopicListener>>>,
}

/// A [`RecordListener`] of the embedded log: a mark and a condition variable.
#[derive(Debug)]
struct TopicListener {
    topics: HashSet<String>,
    visibility: Visibility,
    state: Mutex<ListenerState>,
    woken: Condvar,
}

/// The commit counter and how many threads wait for it to move.
#[derive(Debug, Default)]
struct Generation {
    value: u64,
    waiters: usize,
}

/// A listener's mark, and how many threads wait for one (a listener is `Sync`: one per
/// thread is how the runtime uses it, but nothing stops two threads sharing one).
#[derive(Debug, Default)]
struct ListenerState {
    marked: bool,
    waiting: usize,
}

impl TopicListener {
    /// Wakes the listener's thread only if it waits and no earlier commit has marked it yet:
    /// a condition variable's notify is a futex syscall even when nobody sleeps, and commits
    /// notify every interested listener (7% of the saga's CPU at 1,000 orders/s, measured).
    fn mark(&self) {
        let mut state = self.state.lock().expect("listener lock poisoned");
        if state.marked {
            return;
        }
        state.marked = true;
        if state.waiting > 0 {
            self.woken.notify_all();
        }
    }
}

impl RecordListener for TopicListener {
    fn wait(&self, timeout: Duration) -> bool {
        let mut state = self.state.lock().expect("listener lock poisoned");
        if !state.marked {
            state.waiting += 1;
            state = self
                .woken
                .wait_timeout_while(state, timeout, |state| !state.marked)
                .expect("listener lock poisoned")
                .0;
            state.waiting -= 1;
        }
        std::mem::replace(&mut state.marked, false)
    }
}

/// Records to append: (topic, partition, record).
type Outputs = Vec<(String, u32, LogRecord)>;

/// When an append returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AppendWait {
    /// Once on disk: what the caller acknowledges leaves the process (the API's intake).
    Durable,
    /// Once written: a stream task's commit; the syncer makes it durable behind it.
    Pipelined,
}

struct RangeCompletion {
    topics: Arc<Mutex<HashMap<String, TopicEntry>>>,
    reservations: Vec<(String, u32, u64, u64)>,
    /// Without fsync, committed is as durable as it gets: both watermarks move together.
    durable: bool,
}

impl Drop for RangeCompletion {
    fn drop(&mut self) {
        let mut topics = match self.topics.lock() {
            Ok(topics) => topics,
            Err(poisoned) => poisoned.into_inner(),
        };
        for (topic, partition, start, _) in &self.reservations {
            if let Some(entry) = topics.get_mut(topic.as_str()) {
                entry.complete(*partition as usize, *start, self.durable);
            }
        }
    }
}

/// What one maintenance pass removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MaintenanceReport {
    pub expired_records: u64,
    pub compacted_records: u64,
    /// Partitions skipped because a batch could not be decoded (logged with its offset).
    pub corrupt_partitions: u64,
}

/// What the durability pipeline needs: the syncer thread holds it weakly, so dropping the last
/// log handle closes the database instead of a thread keeping it open.
#[derive(Debug)]
struct Durabilizer {
    engine: StorageEngine,
    topics: Arc<Mutex<HashMap<String, TopicEntry>>>,
    notifier: Arc<Notifier>,
    /// The first failed sync, for good: nothing written after it is known to reach the disk,
    /// so the log refuses further writes (fjall treats a failed sync as fatal too).
    failed: Mutex<Option<String>>,
}

impl Durabilizer {
    /// Makes every record committed so far durable and moves the durable watermarks over it.
    /// The in-process watermarks are read *before* the sync: every record below them was
    /// written before the sync began, so the sync covers it.
    fn sync_and_publish(&self, notify: &dyn Fn(&[String], Visibility)) -> Result<(), LogError> {
        if let Some(reason) = self
            .failed
            .lock()
            .expect("sync failure lock poisoned")
            .clone()
        {
            return Err(LogError::Sync { reason });
        }
        let snapshot: Vec<(String, Vec<u64>)> = self
            .topics
            .lock()
            .expect("topic table lock poisoned")
            .iter()
            .filter(|(_, entry)| entry.durable_ends != entry.ends)
            .map(|(name, entry)| (name.clone(), entry.ends.clone()))
            .collect();
        if let Err(error) = self.engine.sync() {
            let reason = error.to_string();
            *self.failed.lock().expect("sync failure lock poisoned") = Some(reason.clone());
            return Err(LogError::Sync { reason });
        }
        if snapshot.is_empty() {
            return Ok(());
        }
        let mut moved = Vec::with_capacity(snapshot.len());
        {
            let mut topics = self.topics.lock().expect("topic table lock poisoned");
            for (name, ends) in snapshot {
                let Some(entry) = topics.get_mut(&name) else {
                    continue;
                };
                for (durable, end) in entry.durable_ends.iter_mut().zip(ends) {
                    *durable = (*durable).max(end);
                }
                moved.push(name);
            }
        }
        notify(&moved, Visibility::Durable);
        Ok(())
    }
}

/// Wakes the syncer thread.
#[derive(Debug, Default)]
struct SyncSignal {
    /// (a sync is wanted, stop)
    state: Mutex<(bool, bool)>,
    changed: Condvar,
}

/// The syncer thread; dropping the last handle stops it and waits for it.
#[derive(Debug)]
struct Syncer {
    signal: Arc<SyncSignal>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Syncer {
    /// Starts the thread. `spacing`: the least time from the start of one sync to the start of
    /// the next; what is committed in between waits for the next one. Every pipelined commit
    /// requests a sync, and under steady load the thread used to fsync back to back (1,850
    /// fsyncs/s in the saga benchmark at 3,300 orders/s, each one kernel CPU on the same two
    /// cores), while what waits for durability (effects, tools) gains little from syncs closer
    /// than a few milliseconds. `produce` syncs on its own and never waits for this thread.
    fn start(target: Weak<Durabilizer>, spacing: Duration) -> Self {
        let signal = Arc::new(SyncSignal::default());
        let thread_signal = signal.clone();
        let thread = std::thread::Builder::new()
            .name("orderflow-sync".to_string())
            .spawn(move || {
                let mut last_sync_started: Option<Instant> = None;
                loop {
                    {
                        let mut state = thread_signal.state.lock().expect("sync signal poisoned");
                        // The rest of the spacing (requests keep their flag); a stop ends it.
                        if let Some(remaining) = last_sync_started
                            .and_then(|started| spacing.checked_sub(started.elapsed()))
                        {
                            state = thread_signal
                                .changed
                                .wait_timeout_while(state, remaining, |state| !state.1)
                                .expect("sync signal poisoned")
                                .0;
                        }
                        while !state.0 && !state.1 {
                            state = thread_signal
                                .changed
                                .wait(state)
                                .expect("sync signal poisoned");
                        }
                        if state.1 {
                            return;
                        }
                        state.0 = false;
                    }
                    let Some(target) = target.upgrade() else {
                        return;
                    };
                    last_sync_started = Some(Instant::now());
                    let notifier = target.notifier.clone();
                    let notify = |topics: &[String], visibility| {
                        notify_listeners(&notifier, Some(topics), visibility);
                    };
                    if let Err(error) = target.sync_and_publish(&notify) {
                        tracing::error!(%error, "the embedded log could not sync; it refuses writes from now on");
                        return;
                    }
                }
            })
            .expect("the syncer thread starts");
        Self {
            signal,
            thread: Some(thread),
        }
    }

    /// Only the first request of a sync cycle notifies (the thread has been woken, or will
    /// see the flag): every pipelined commit requests one, and each notify is a syscall.
    fn request(&self) {
        let mut state = self.signal.state.lock().expect("sync signal poisoned");
        if !state.0 {
            state.0 = true;
            self.signal.changed.notify_one();
        }
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        self.signal.state.lock().expect("sync signal poisoned").1 = true;
        self.signal.changed.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Wakes the generation's waiters, and the listeners of `topics` (`None`: every listener) that
/// read at `visibility`.
fn notify_listeners(notifier: &Notifier, topics: Option<&[String]>, visibility: Visibility) {
    {
        let mut generation = notifier.generation.lock().expect("notifier lock poisoned");
        generation.value += 1;
        if generation.waiters > 0 {
            notifier.changed.notify_all();
        }
    }
    let listeners = notifier.listeners.read().expect("notifier lock poisoned");
    for listener in listeners.iter() {
        let Some(listener) = listener.upgrade() else {
            continue;
        };
        let interested = match topics {
            None => true,
            Some(topics) => {
                listener.visibility == visibility
                    && topics.iter().any(|topic| listener.topics.contains(topic))
            }
        };
        if interested {
            listener.mark();
        }
    }
}

/// The embedded log backend.
///
/// # Durability, pipelined
/// A commit is written to fjall's journal (into the OS, not yet fsynced) and is at once
/// visible *in process*: its partitions' in-process high watermarks move, and stream tasks and
/// global tables read up to them. A syncer thread fsyncs behind the writers and then moves the
/// *durable* high watermarks, up to which everything else reads (effects, tools, anything
/// outside a stream task). So a stream thread never waits for the disk, and a record crosses
/// each hop of a topology without an fsync per hop.
///
/// Why a stream task may read records that are not on disk yet: fjall has ONE journal, written
/// in commit order. A task that reads a record commits what it derived (outputs, state,
/// positions) in a later batch of that journal. A process crash loses nothing that was
/// written (it is in the OS). A power cut keeps a prefix of the journal: if the derived batch
/// survives, the record it was derived from does too; if not, the task's position is back
/// before it as well, and it is derived again. What must not run ahead of the disk is what
/// leaves the process: an effect (a payment provider call) reads only durable requests, and
/// `produce` (the API's intake) returns only once its records are on disk, so a client never
/// holds an acknowledgement a power cut can take back.
#[derive(Debug, Clone)]
pub struct EmbeddedLog {
    engine: StorageEngine,
    durability: Durability,
    metadata: Space,
    checkpoints: Checkpoints,
    topics: Arc<Mutex<HashMap<String, TopicEntry>>>,
    notifier: Arc<Notifier>,
    durabilizer: Arc<Durabilizer>,
    /// With fsync durability: the thread that makes commits durable behind the writers.
    syncer: Option<Arc<Syncer>>,
    /// Held for a whole maintenance pass: retention and compaction rewrite batches (read,
    /// then write), so two passes at once could each write back what the other removed.
    maintenance: Arc<Mutex<()>>,
}

impl EmbeddedLog {
    /// Opens the log in `engine`, recovering topics and high watermarks, with the default
    /// sync spacing ([`DEFAULT_SYNC_SPACING`]).
    pub fn open(engine: StorageEngine, durability: Durability) -> Result<Self, LogError> {
        Self::open_with_sync_spacing(engine, durability, DEFAULT_SYNC_SPACING)
    }

    /// Opens the log; with fsync durability, the syncer thread starts one sync at most every
    /// `sync_spacing` (see "Durability, pipelined" above).
    pub fn open_with_sync_spacing(
        engine: StorageEngine,
        durability: Durability,
        sync_spacing: Duration,
    ) -> Result<Self, LogError> {
        let metadata = engine.space(TOPIC_METADATA_SPACE)?;
        let checkpoints = Checkpoints::open(&engine)?;
        let mut specs = Vec::new();
        engine.scan(
            &metadata,
            Bound::Unbounded,
            Bound::Unbounded,
            false,
            &mut |_, value| {
                specs.push(serde_json::from_slice::<TopicSpec>(value));
                ControlFlow::Continue(())
            },
        )?;
        let mut topics = HashMap::new();
        for spec in specs {
            let spec = spec.map_err(|error| LogError::InvalidTopic {
                topic: TOPIC_METADATA_SPACE.to_string(),
                reason: format!("unreadable topic metadata: {error}"),
            })?;
            let entry = Self::recover_topic(&engine, spec)?;
            topics.insert(entry.spec.name.clone(), entry);
        }
        let topics = Arc::new(Mutex::new(topics));
        let notifier: Arc<Notifier> = Arc::default();
        let durabilizer = Arc::new(Durabilizer {
            engine: engine.clone(),
            topics: topics.clone(),
            notifier: notifier.clone(),
            failed: Mutex::new(None),
        });
        let syncer = (durability == Durability::Fsync && engine.is_durable())
            .then(|| Arc::new(Syncer::start(Arc::downgrade(&durabilizer), sync_spacing)));
        Ok(Self {
            engine,
            durability,
            metadata,
            checkpoints,
            topics,
            notifier,
            durabilizer,
            syncer,
            maintenance: Arc::new(Mutex::new(())),
        })
    }

    /// Whether commits are durable as soon as they are written (no fsync to wait for).
    fn durable_when_written(&self) -> bool {
        self.syncer.is_none()
    }

    /// An embedded log in memory (tests, benchmarks).
    pub fn in_memory() -> Self {
        Self::open(StorageEngine::in_memory(), Durability::Buffered)
            .expect("an in-memory log always opens")
    }

    fn recover_topic(engine: &StorageEngine, spec: TopicSpec) -> Result<TopicEntry, LogError> {
        // Records are fetched by offset range, never by key.
        let space = engine.scan_only_space(&format!("topic.{}", spec.name))?;
        let mut ends = Vec::new();
        let mut starts = Vec::new();
        for partition in 0..spec.partitions {
            let first = recovered_first_batch(engine, &space, &spec.name, partition)?;
            let last = edge_batch_bounds(engine, &space, &spec.name, partition, Edge::Last)?;
            ends.push(last.map_or(0, |(_, last)| last + 1));
            starts.push(first.map_or(0, |(first, _)| first));
        }
        // Retention and compaction never remove a partition's last record (Kafka never
        // deletes the active segment), so the last batch always tells where the partition
        // ends.
        Ok(TopicEntry {
            in_flight: vec![BTreeMap::new(); ends.len()],
            reserved: ends.clone(),
            durable_ends: ends.clone(),
            spec,
            space,
            ends,
            starts,
        })
    }

    fn entry(&self, topic: &str) -> Result<TopicEntry, LogError> {
        self.topics
            .lock()
            .expect("topic table lock poisoned")
            .get(topic)
            .cloned()
            .ok_or_else(|| LogError::UnknownTopic {
                topic: topic.to_string(),
            })
    }

    /// A partition's keyspace and offsets, without copying the topic's bookkeeping (hot path).
    fn partition_view(
        &self,
        topic: &str,
        partition: u32,
        visibility: Visibility,
    ) -> Result<(Space, PartitionOffsets), LogError> {
        let topics = self.topics.lock().expect("topic table lock poisoned");
        let entry = topics.get(topic).ok_or_else(|| LogError::UnknownTopic {
            topic: topic.to_string(),
        })?;
        Self::check_partition(entry, partition)?;
        Ok((
            entry.space.clone(),
            PartitionOffsets {
                log_start: entry.starts[partition as usize],
                end: entry.end(partition as usize, visibility),
            },
        ))
    }

    fn check_partition(entry: &TopicEntry, partition: u32) -> Result<(), LogError> {
        if partition >= entry.spec.partitions {
            return Err(LogError::UnknownPartition {
                topic: entry.spec.name.clone(),
                partition,
                partitions: entry.spec.partitions,
            });
        }
        Ok(())
    }

    /// Wakes the listeners of `topics` at `visibility` (`None`: every listener).
    fn notify(&self, topics: Option<&[String]>, visibility: Visibility) {
        notify_listeners(&self.notifier, topics, visibility);
    }

    /// Makes everything committed so far durable, then moves the durable watermarks.
    fn sync_and_publish(&self) -> Result<(), LogError> {
        let notify = |topics: &[String], visibility| self.notify(Some(topics), visibility);
        self.durabilizer.sync_and_publish(&notify)
    }

    /// Appends each group member's outputs and commits its batch with them atomically: the
    /// heart of the commit protocol.
    ///
    /// Offsets are reserved under the topic lock, but the fjall batch is written outside it, so
    /// tasks on different threads commit in parallel. A partition's in-process high watermark
    /// moves only over reserved ranges that are committed and contiguous, so readers never see
    /// a record before every record below it is committed, and never see an uncommitted one.
    /// A range whose commit fails becomes a gap in the offsets, which readers skip, as with
    /// Kafka's aborted transactions.
    ///
    /// `wait`: [`AppendWait::Durable`] returns once the appends are on disk (one sync for the
    /// whole group); [`AppendWait::Pipelined`] returns once they are written and leaves the
    /// sync to the syncer thread (see "Durability, pipelined" on [`EmbeddedLog`]).
    fn append_group(
        &self,
        appends: Vec<(Outputs, WriteBatch, Option<OffsetDependentWrites>)>,
        wait: AppendWait,
    ) -> Vec<Result<Vec<u64>, LogError>> {
        if let Some(reason) = self
            .durabilizer
            .failed
            .lock()
            .expect("sync failure lock poisoned")
            .clone()
        {
            return appends
                .iter()
                .map(|_| {
                    Err(LogError::Sync {
                        reason: reason.clone(),
                    })
                })
                .collect();
        }
        let mut completions = Vec::with_capacity(appends.len());
        let mut results = Vec::with_capacity(appends.len());
        // The topics written, for the listeners: outputs come grouped by topic, so comparing
        // with the last one seen skips almost every record without a search.
        let mut produced_topics: Vec<String> = Vec::new();
        // Every member that reserved its offsets is written in ONE engine batch: one journal
        // write and one memtable pass per group instead of one per member (a stream thread
        // commits all its due tasks as a group). A member that fails its checks fails alone;
        // a failed write fails every member written with it, and their ranges become gaps.
        // Sized up front: each member adds its state writes and a record batch per partition
        // it wrote (bounded by its records); growing it copied every write again.
        let mut group_batch = WriteBatch::with_capacity(
            appends
                .iter()
                .map(|(outputs, batch, _)| batch.len() + outputs.len().min(64))
                .sum(),
        );
        for (outputs, mut batch, offset_dependent) in appends {
            for (topic, _, _) in &outputs {
                if produced_topics.last() != Some(topic) && !produced_topics.contains(topic) {
                    produced_topics.push(topic.clone());
                }
            }
            match self.reserve_and_stage(outputs, &mut batch) {
                Ok((assigned, completion)) => {
                    if let Some(write) = offset_dependent {
                        write(&assigned, &mut batch);
                    }
                    group_batch.append(batch);
                    completions.push(completion);
                    results.push(Ok(assigned));
                }
                Err(error) => results.push(Err(error)),
            }
        }
        if let Err(error) = self.engine.commit(group_batch, Durability::Buffered) {
            let written: Vec<usize> = (0..results.len())
                .filter(|index| results[*index].is_ok())
                .collect();
            if let [only] = written[..] {
                results[only] = Err(LogError::Store(error));
            } else {
                let reason = error.to_string();
                for index in written {
                    results[index] = Err(LogError::GroupWrite {
                        reason: reason.clone(),
                    });
                }
            }
        }
        // The in-process watermarks move (and the durable ones, without fsync); a failed
        // write completes its ranges as gaps.
        drop(completions);
        let written = results.iter().any(Result::is_ok);
        if !produced_topics.is_empty() {
            self.notify(Some(&produced_topics), Visibility::InProcess);
        }
        // Nothing written and nothing reserved: no watermark moved. (A failed write still
        // completes its range as a gap, which may move an end over other writers' records.)
        if !written && produced_topics.is_empty() {
            return results;
        }
        match (&self.syncer, wait) {
            (None, _) => {
                if !produced_topics.is_empty() {
                    self.notify(Some(&produced_topics), Visibility::Durable);
                }
            }
            (Some(syncer), AppendWait::Pipelined) => syncer.request(),
            (Some(_), AppendWait::Durable) => {
                if let Err(error) = self.sync_and_publish() {
                    let reason = match error {
                        LogError::Sync { reason } => reason,
                        other => other.to_string(),
                    };
                    for result in &mut results {
                        if result.is_ok() {
                            *result = Err(LogError::Sync {
                                reason: reason.clone(),
                            });
                        }
                    }
                }
            }
        }
        results
    }

    /// One append, alone in its group.
    fn append_atomically(
        &self,
        outputs: Vec<(String, u32, LogRecord)>,
        batch: WriteBatch,
    ) -> Result<Vec<u64>, LogError> {
        self.append_group(vec![(outputs, batch, None)], AppendWait::Durable)
            .pop()
            .expect("one result per append")
    }

    /// Reserves offsets for `outputs` and adds the records to `batch`, for `append_group` to
    /// write. The reserved ranges complete (and the high watermarks move) when the returned
    /// completion is dropped, which `append_group` does after the write, whether it succeeded
    /// or not (a failed write leaves the ranges as gaps). Nothing is reserved when a check
    /// fails.
    fn reserve_and_stage(
        &self,
        outputs: Vec<(String, u32, LogRecord)>,
        batch: &mut WriteBatch,
    ) -> Result<(Vec<u64>, RangeCompletion), LogError> {
        let mut offsets = Vec::with_capacity(outputs.len());
        // (topic, partition) -> (first reserved offset, records), in first-seen order.
        let mut reservations: Vec<(String, u32, u64, u64)> = Vec::new();
        let mut spaces: Vec<Space> = Vec::new();
        {
            let mut topics = self.topics.lock().expect("topic table lock poisoned");
            let mut counts: HashMap<(&str, u32), usize> = HashMap::new();
            for (topic, partition, _) in &outputs {
                let entry = topics
                    .get(topic.as_str())
                    .ok_or_else(|| LogError::UnknownTopic {
                        topic: topic.clone(),
                    });
                let checked = entry.and_then(|entry| {
                    Self::check_partition(entry, *partition)?;
                    Ok(entry)
                });
                // Nothing is reserved before every output is checked.
                let entry = checked?;
                let next_index = counts.len();
                let index = *counts
                    .entry((topic.as_str(), *partition))
                    .or_insert(next_index);
                if index == reservations.len() {
                    reservations.push((topic.clone(), *partition, 0, 0));
                    spaces.push(entry.space.clone());
                }
                reservations[index].3 += 1;
            }
            for (topic, partition, start, count) in &mut reservations {
                let entry = topics.get_mut(topic.as_str()).expect("checked above");
                let slot = *partition as usize;
                *start = entry.reserved[slot];
                entry.reserved[slot] += *count;
                entry.in_flight[slot].insert(*start, (*start + *count, false));
            }
            let mut next: Vec<u64> = reservations
                .iter()
                .map(|reservation| reservation.2)
                .collect();
            for (topic, partition, record) in &outputs {
                let index = counts[&(topic.as_str(), *partition)];
                let offset = next[index];
                next[index] += 1;
                offsets.push((index, *partition, offset, record));
            }
        }
        // Completes the reserved ranges however this ends, a panic in the encoding below
        // included, so a partition's high watermark can never stall behind a range nobody
        // will complete. (Created once the topic lock is released: its drop takes the lock.)
        let completion = RangeCompletion {
            topics: self.topics.clone(),
            reservations,
            durable: self.durable_when_written(),
        };
        // One record batch per reserved range: its records are that range's offsets, in
        // order, so each (topic, partition) of this member is one fjall entry.
        let mut record_bytes = vec![0usize; completion.reservations.len()];
        for (index, _, _, record) in &offsets {
            record_bytes[*index] += record.encoded_len();
        }
        let mut assigned = Vec::with_capacity(offsets.len());
        let mut batches: Vec<Option<(u32, BatchWriter)>> =
            (0..completion.reservations.len()).map(|_| None).collect();
        for (index, partition, offset, record) in offsets {
            batches[index]
                .get_or_insert_with(|| {
                    let (_, _, start, count) = &completion.reservations[index];
                    let writer = BatchWriter::new(*start, record_bytes[index], *count as usize);
                    (partition, writer)
                })
                .1
                .push(offset, record);
            assigned.push(offset);
        }
        for (index, staged) in batches.into_iter().enumerate() {
            let (partition, writer) = staged.expect("every reserved range has its records");
            let start = completion.reservations[index].2;
            batch.put(
                &spaces[index],
                record_key(partition, start).to_vec(),
                writer.finish(),
            );
        }
        Ok((assigned, completion))
    }

    /// Applies retention (delete policy) and compaction (compact policy) to every topic.
    pub fn run_maintenance(&self, now_ms: i64) -> Result<MaintenanceReport, LogError> {
        let _one_pass_at_a_time = self
            .maintenance
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut report = MaintenanceReport::default();
        for spec in self.topics() {
            for partition in 0..spec.partitions {
                let removed = match spec.cleanup {
                    CleanupPolicy::Delete => self.apply_retention(&spec, partition, now_ms),
                    CleanupPolicy::Compact => self.compact(&spec, partition, now_ms),
                };
                match (removed, spec.cleanup) {
                    (Ok(removed), CleanupPolicy::Delete) => report.expired_records += removed,
                    (Ok(removed), CleanupPolicy::Compact) => report.compacted_records += removed,
                    // One undecodable batch must not stop the cleanup of every other partition.
                    (Err(LogError::CorruptRecord { offset, reason, .. }), _) => {
                        tracing::error!(topic = %spec.name, partition, offset, %reason, "skipping the cleanup of a partition with a corrupt record batch");
                        report.corrupt_partitions += 1;
                    }
                    (Err(other), _) => return Err(other),
                }
            }
        }
        Ok(report)
    }

    fn partition_records(
        &self,
        entry: &TopicEntry,
        partition: u32,
        visit: &mut dyn FnMut(u64, &LogRecord) -> ControlFlow<()>,
    ) -> Result<(), LogError> {
        // Only what is on disk: records above the durable high watermark may still be in flight.
        let lower = record_key(partition, 0);
        let upper = record_key(partition, entry.durable_ends[partition as usize]);
        let mut corrupt = None;
        self.engine.scan(
            &entry.space,
            Bound::Included(&lower),
            Bound::Excluded(&upper),
            false,
            &mut |key, value| {
                let base = offset_of_key(key);
                let decoded = batch_records(base, value).and_then(|records| {
                    for (offset, bytes) in records {
                        let record = decode_log_record(bytes)
                            .map_err(|reason| format!("record at offset {offset}: {reason}"))?;
                        if visit(offset, &record).is_break() {
                            return Ok(ControlFlow::Break(()));
                        }
                    }
                    Ok(ControlFlow::Continue(()))
                });
                decoded.unwrap_or_else(|reason| {
                    corrupt = Some(LogError::CorruptRecord {
                        topic: entry.spec.name.clone(),
                        partition,
                        offset: base,
                        reason,
                    });
                    ControlFlow::Break(())
                })
            },
        )?;
        corrupt.map_or(Ok(()), Err)
    }

    /// Removes `offsets` from a partition's batches (up to its durable end, where maintenance
    /// reads): a batch left empty is deleted, one left with records is rewritten with them.
    fn delete_offsets(
        &self,
        entry: &TopicEntry,
        partition: u32,
        offsets: &[u64],
    ) -> Result<u64, LogError> {
        if offsets.is_empty() {
            return Ok(0);
        }
        let removed: HashSet<u64> = offsets.iter().copied().collect();
        let corrupt = |key: &[u8], reason: String| LogError::CorruptRecord {
            topic: entry.spec.name.clone(),
            partition,
            offset: offset_of_key(key),
            reason,
        };
        let lower = record_key(partition, 0);
        // The last record stays, as Kafka's active segment does: it marks the partition's end.
        let last_offset = edge_batch_bounds(
            &self.engine,
            &entry.space,
            &entry.spec.name,
            partition,
            Edge::Last,
        )?
        .map(|(_, last)| last);
        let durable_upper = record_key(partition, entry.durable_ends[partition as usize]);
        let mut batch = WriteBatch::new();
        let mut deleted = 0u64;
        let mut failure = None;
        self.engine.scan(
            &entry.space,
            Bound::Included(&lower),
            Bound::Excluded(&durable_upper),
            false,
            &mut |key, value| {
                let base = offset_of_key(key);
                let records = match batch_records(base, value) {
                    Ok(records) => records,
                    Err(reason) => {
                        failure = Some(corrupt(key, reason));
                        return ControlFlow::Break(());
                    }
                };
                let kept: Vec<&(u64, &[u8])> = records
                    .iter()
                    .filter(|(offset, _)| !removed.contains(offset) || Some(*offset) == last_offset)
                    .collect();
                if kept.len() == records.len() {
                    return ControlFlow::Continue(());
                }
                deleted += (records.len() - kept.len()) as u64;
                if kept.is_empty() {
                    batch.delete(&entry.space, key.to_vec());
                } else {
                    let mut writer = BatchWriter::new(base, value.len(), 0);
                    for (offset, encoded) in kept {
                        writer.push_encoded(*offset, encoded);
                    }
                    batch.put(&entry.space, key.to_vec(), writer.finish());
                }
                ControlFlow::Continue(())
            },
        )?;
        if let Some(error) = failure {
            return Err(error);
        }
        if batch.is_empty() {
            return Ok(0);
        }
        self.engine.commit(batch, Durability::Buffered)?;
        let new_start = edge_batch_bounds(
            &self.engine,
            &entry.space,
            &entry.spec.name,
            partition,
            Edge::First,
        )?
        .map(|(first, _)| first);
        let mut topics = self.topics.lock().expect("topic table lock poisoned");
        if let Some(live) = topics.get_mut(&entry.spec.name) {
            live.starts[partition as usize] = new_start.unwrap_or(live.ends[partition as usize]);
        }
        Ok(deleted)
    }

    fn apply_retention(
        &self,
        spec: &TopicSpec,
        partition: u32,
        now_ms: i64,
    ) -> Result<u64, LogError> {
        let entry = self.entry(&spec.name)?;
        let cutoff = spec
            .retention_ms
            .map(|retention| now_ms.saturating_sub(retention));
        let mut sizes = Vec::new();
        self.partition_records(&entry, partition, &mut |offset, record| {
            sizes.push((offset, record.size() as u64, record.timestamp));
            ControlFlow::Continue(())
        })?;
        let mut expired: HashSet<u64> = HashSet::new();
        if let Some(cutoff) = cutoff {
            // Like Kafka's segments, stop at the first record inside the retention: the log is
            // ordered by offset, not by timestamp.
            for (offset, _, timestamp) in &sizes {
                if *timestamp >= cutoff {
                    break;
                }
                expired.insert(*offset);
            }
        }
        if let Some(limit) = spec.retention_bytes {
            let mut kept_bytes = 0u64;
            for (offset, size, _) in sizes.iter().rev() {
                kept_bytes += size;
                if kept_bytes > limit {
                    expired.insert(*offset);
                }
            }
        }
        let mut expired: Vec<u64> = expired.into_iter().collect();
        expired.sort_unstable();
        self.delete_offsets(&entry, partition, &expired)
    }

    fn compact(&self, spec: &TopicSpec, partition: u32, now_ms: i64) -> Result<u64, LogError> {
        let entry = self.entry(&spec.name)?;
        let mut latest: HashMap<Vec<u8>, u64> = HashMap::new();
        let mut records = Vec::new();
        self.partition_records(&entry, partition, &mut |offset, record| {
            if let Some(key) = &record.key {
                latest.insert(key.clone(), offset);
            }
            records.push((
                offset,
                record.key.clone(),
                record.value.is_none(),
                record.timestamp,
            ));
            ControlFlow::Continue(())
        })?;
        let tombstone_cutoff = now_ms.saturating_sub(TOMBSTONE_RETENTION_MS);
        let removable: Vec<u64> = records
            .into_iter()
            .filter(|(offset, key, is_tombstone, timestamp)| match key {
                Some(key) => {
                    latest.get(key) != Some(offset)
                        || (*is_tombstone && *timestamp < tombstone_cutoff)
                }
                // Compacted topics need keys; a keyless record can never be read as a table row.
                None => true,
            })
            .map(|(offset, ..)| offset)
            .collect();
        self.delete_offsets(&entry, partition, &removable)
    }

    /// Resets a group's position on a partition (used by tools, not by running tasks).
    pub fn set_group_position(
        &self,
        group: &str,
        topic: &str,
        partition: u32,
        next_offset: u64,
    ) -> Result<(), LogError> {
        let mut batch = WriteBatch::new();
        self.checkpoints
            .write(&mut batch, group, topic, partition, next_offset);
        self.engine.commit(batch, self.durability)?;
        Ok(())
    }

    /// Makes sure everything committed so far is on disk (shutdown).
    pub fn persist(&self) -> Result<(), LogError> {
        Ok(self.engine.persist()?)
    }
}

impl LogBackend for EmbeddedLog {
    fn create_topic(&self, spec: &TopicSpec) -> Result<(), LogError> {
        if spec.partitions == 0 {
            return Err(LogError::InvalidTopic {
                topic: spec.name.clone(),
                reason: "a topic needs at least one partition".to_string(),
            });
        }
        if spec.name.is_empty()
            || spec.name.len() > 249
            || !spec
                .name
                .chars()
                .all(|character| character.is_ascii_alphanumeric() || "._-".contains(character))
        {
            return Err(LogError::InvalidTopic {
                topic: spec.name.clone(),
                reason: "topic names are 1 to 249 characters of [A-Za-z0-9._-], as in Kafka"
                    .to_string(),
            });
        }
        let mut topics = self.topics.lock().expect("topic table lock poisoned");
        if let Some(existing) = topics.get(&spec.name) {
            if existing.spec.partitions != spec.partitions {
                return Err(LogError::PartitionMismatch {
                    topic: spec.name.clone(),
                    existing: existing.spec.partitions,
                    requested: spec.partitions,
                });
            }
            return Ok(());
        }
        let mut batch = WriteBatch::new();
        batch.put(
            &self.metadata,
            spec.name.as_bytes().to_vec(),
            serde_json::to_vec(spec).expect("topic specs serialize"),
        );
        self.engine.commit(batch, self.durability)?;
        let entry = Self::recover_topic(&self.engine, spec.clone())?;
        topics.insert(spec.name.clone(), entry);
        Ok(())
    }

    fn topic(&self, name: &str) -> Option<TopicSpec> {
        self.entry(name).ok().map(|entry| entry.spec)
    }

    fn topics(&self) -> Vec<TopicSpec> {
        let mut specs: Vec<TopicSpec> = self
            .topics
            .lock()
            .expect("topic table lock poisoned")
            .values()
            .map(|entry| entry.spec.clone())
            .collect();
        specs.sort_by(|left, right| left.name.cmp(&right.name));
        specs
    }

    fn fetch(
        &self,
        topic: &str,
        partition: u32,
        from_offset: u64,
        max_records: usize,
    ) -> Result<Vec<StoredRecord>, LogError> {
        self.fetch_visible(
            topic,
            partition,
            from_offset,
            max_records,
            Visibility::Durable,
        )
    }

    fn fetch_visible(
        &self,
        topic: &str,
        partition: u32,
        from_offset: u64,
        max_records: usize,
        visibility: Visibility,
    ) -> Result<Vec<StoredRecord>, LogError> {
        let (space, offsets) = self.partition_view(topic, partition, visibility)?;
        let end = offsets.end;
        if from_offset >= end || max_records == 0 {
            return Ok(Vec::new());
        }
        let lower = record_key(partition, from_offset);
        let upper = record_key(partition, end);
        let mut records = Vec::with_capacity(max_records.min((end - from_offset) as usize));
        let mut first_base = None;
        let mut corrupt = None;
        let range = from_offset..end;
        self.engine.scan(
            &space,
            Bound::Included(&lower),
            Bound::Excluded(&upper),
            false,
            &mut |key, value| {
                let base = offset_of_key(key);
                first_base.get_or_insert(base);
                match collect_batch(base, value, &range, max_records, &mut records) {
                    Ok(flow) => flow,
                    Err(reason) => {
                        corrupt = Some((base, reason));
                        ControlFlow::Break(())
                    }
                }
            },
        )?;
        // A batch that starts below `from_offset` may hold it: a fetch that stopped inside a
        // batch, or a position whose record compaction removed. Consumers mostly read on from
        // where a batch ended, so this look back is rare.
        if corrupt.is_none() && first_base != Some(from_offset) {
            let partition_start = record_key(partition, 0);
            if let Some((key, value)) = self.engine.last_in(
                &space,
                Bound::Included(&partition_start),
                Bound::Excluded(&lower),
            )? {
                let base = offset_of_key(&key);
                let mut head = Vec::new();
                match collect_batch(base, &value, &range, max_records, &mut head) {
                    Ok(_) if !head.is_empty() => {
                        head.append(&mut records);
                        head.truncate(max_records);
                        records = head;
                    }
                    Ok(_) => {}
                    Err(reason) => corrupt = Some((base, reason)),
                }
            }
        }
        match corrupt {
            Some((offset, reason)) => Err(LogError::CorruptRecord {
                topic: topic.to_string(),
                partition,
                offset,
                reason,
            }),
            None => Ok(records),
        }
    }

    fn offsets(&self, topic: &str, partition: u32) -> Result<PartitionOffsets, LogError> {
        Ok(self
            .partition_view(topic, partition, Visibility::Durable)?
            .1)
    }

    fn end_visible(
        &self,
        topic: &str,
        partition: u32,
        visibility: Visibility,
    ) -> Result<u64, LogError> {
        Ok(self.partition_view(topic, partition, visibility)?.1.end)
    }

    fn produce(&self, records: Vec<(String, u32, LogRecord)>) -> Result<Vec<u64>, LogError> {
        self.append_atomically(records, WriteBatch::new())
    }

    fn supports_state_appends(&self) -> bool {
        true
    }

    fn storage_stats(&self) -> Option<orderflow_state_stores::StorageStats> {
        self.engine.stats()
    }

    fn produce_with_state(&self, appends: Vec<StatefulAppend>) -> Vec<Result<Vec<u64>, LogError>> {
        let appends = appends
            .into_iter()
            .map(|append| (append.records, append.state, append.offset_dependent))
            .collect();
        self.append_group(appends, AppendWait::Durable)
    }

    fn commit(&self, transaction: LogTransaction) -> Result<(), LogError> {
        self.commit_all(vec![transaction])
            .pop()
            .expect("one result per transaction")
    }

    fn commit_all(&self, transactions: Vec<LogTransaction>) -> Vec<Result<(), LogError>> {
        let appends = transactions
            .into_iter()
            .map(|transaction| {
                let LogTransaction {
                    group,
                    outputs,
                    positions,
                    mut state,
                } = transaction;
                for (topic, partition, next_offset) in &positions {
                    self.checkpoints
                        .write(&mut state, &group, topic, *partition, *next_offset);
                }
                (outputs, state, None)
            })
            .collect();
        self.append_group(appends, AppendWait::Pipelined)
            .into_iter()
            .map(|result| result.map(drop))
            .collect()
    }

    fn committed_position(
        &self,
        group: &str,
        topic: &str,
        partition: u32,
    ) -> Result<Option<u64>, LogError> {
        Ok(self.checkpoints.read(group, topic, partition)?)
    }

    fn group_positions(&self) -> Result<Vec<CheckpointEntry>, LogError> {
        Ok(self.checkpoints.list()?)
    }

    fn generation(&self) -> u64 {
        self.notifier
            .generation
            .lock()
            .expect("notifier lock poisoned")
            .value
    }

    fn wait_for_records(&self, seen: u64, timeout: Duration) {
        let mut generation = self
            .notifier
            .generation
            .lock()
            .expect("notifier lock poisoned");
        if generation.value != seen {
            return;
        }
        // Counted under the lock, so a commit either sees this waiter or is seen by it.
        generation.waiters += 1;
        let mut generation = self
            .notifier
            .changed
            .wait_timeout_while(generation, timeout, |current| current.value == seen)
            .expect("notifier lock poisoned")
            .0;
        generation.waiters -= 1;
    }

    fn wake_all(&self) {
        self.notify(None, Visibility::Durable);
    }

    fn listen(&self, topics: &[String], visibility: Visibility) -> Arc<dyn RecordListener> {
        let listener = Arc::new(TopicListener {
            topics: topics.iter().cloned().collect(),
            visibility,
            state: Mutex::default(),
            woken: Condvar::new(),
        });
        let mut listeners = self
            .notifier
            .listeners
            .write()
            .expect("notifier lock poisoned");
        listeners.retain(|listener| listener.strong_count() > 0);
        listeners.push(Arc::downgrade(&listener));
        drop(listeners);
        listener
    }

    fn state_engine(&self) -> &StorageEngine {
        &self.engine
    }
}
