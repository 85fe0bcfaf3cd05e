//! Log backends: where topics live.
//!
//! The trait is shaped after Kafka so that the Kafka backend plugs in without touching
//! processors or topologies:
//!
//! | operation | embedded (fjall) | Kafka |
//! | --- | --- | --- |
//! | `create_topic` | topic metadata in the `orderflow.topics` keyspace | `CreateTopics` (admin client) |
//! | `fetch` | range scan of `topic.<name>` up to the (durable or in-process) high watermark | consumer `poll`, `isolation.level=read_committed` |
//! | `produce` | one atomic batch | idempotent producer |
//! | `commit` | ONE atomic fjall batch: outputs + state + timers + input positions | transaction: `send` outputs and changelog records, `send_offsets_to_transaction`, `commit_transaction` |
//! | `committed_position` | checkpoint entry in the same database | group offset (`committed`) |
//! | state | task keyspaces in the same database | local fjall + compacted changelog topic, restored on assignment |
//!
//! # The commit protocol
//! A task processes records into an uncommitted [`LogTransaction`]: the records it produced, the
//! state changes it made (including timers), and for each input partition the next offset to
//! read. `commit` applies all three together or not at all. A crash before `commit` returns
//! loses the whole transaction; the restarted task resumes at the previous positions with the
//! previous state, recomputes the same outputs, and commits them once: exactly-once. (The
//! embedded log makes a commit durable a moment after it returns, behind the writers; why that
//! keeps exactly-once even across a power cut is "Durability, pipelined" in [`embedded`].)

pub mod embedded;
mod record_batch;

use std::time::Duration;

use orderflow_schemas::topic::TopicSpec;
use orderflow_state_stores::{CheckpointEntry, StorageEngine, WriteBatch};

use crate::error::LogError;
use crate::record::{LogRecord, StoredRecord};

/// First and next offsets of a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PartitionOffsets {
    /// The oldest offset still in the log (retention and compaction move it).
    pub log_start: u64,
    /// The offset the next record will get (the high watermark).
    pub end: u64,
}

/// Everything one task commits at once.
#[derive(Debug, Default)]
pub struct LogTransaction {
    /// The consumer group (application id) whose positions move.
    pub group: String,
    /// Records to append: (topic, partition, record).
    pub outputs: Vec<(String, u32, LogRecord)>,
    /// (topic, partition, next offset to read).
    pub positions: Vec<(String, u32, u64)>,
    /// State store and timer changes.
    pub state: WriteBatch,
}

/// State writes that name the offsets their append's records got, made once the offsets are
/// known and inside the same atomic write (an index entry that points at its record).
pub type OffsetDependentWrites = Box<dyn FnOnce(&[u64], &mut WriteBatch) + Send>;

/// Records appended outside any task together with state that must land with them: both or
/// neither (see [`LogBackend::produce_with_state`]).
pub struct StatefulAppend {
    /// Records to append: (topic, partition, record).
    pub records: Vec<(String, u32, LogRecord)>,
    /// State writes known up front.
    pub state: WriteBatch,
    /// State writes that need the records' offsets (called with them, in record order).
    pub offset_dependent: Option<OffsetDependentWrites>,
}

impl std::fmt::Debug for StatefulAppend {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("StatefulAppend")
            .field("records", &self.records.len())
            .field("state", &self.state.len())
            .field("offset_dependent", &self.offset_dependent.is_some())
            .finish()
    }
}

/// How far a reader reads a partition. The embedded log keeps two high watermarks; see
/// "Durability, pipelined" in [`embedded`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Visibility {
    /// Records on disk. Whatever leaves the process reads only these: effect executors (a
    /// payment provider must never be asked to charge for a request a power cut could undo),
    /// tools, and any reader outside a stream task.
    Durable,
    /// Records committed in this process, possibly not yet on disk. Only stream tasks and
    /// global tables read these: whatever they derive is committed through the same log,
    /// after what they read, so it can never outlive it (see [`embedded`]).
    InProcess,
}

/// What [`LogBackend::listen`] returns.
///
/// The protocol that loses no wake-up: a commit to a listened topic *marks* the listener and
/// wakes it. `wait` returns at once if the listener is marked, and unmarks it on return. A
/// thread polls, then waits; records committed after it polled, even before it waits, mark
/// the listener, so that wait returns at once and the thread polls again.
pub trait RecordListener: Send + Sync {
    /// Blocks until the listener is marked (records on one of its topics, or a `wake_all`)
    /// or the timeout passes, then unmarks it. Returns whether it was marked.
    fn wait(&self, timeout: Duration) -> bool;
}

/// A place topics live. Implementations are shared by every stream thread.
pub trait LogBackend: Send + Sync + std::fmt::Debug + 'static {
    /// Creates the topic, or checks that the existing one has the same partition count.
    fn create_topic(&self, spec: &TopicSpec) -> Result<(), LogError>;
    fn topic(&self, name: &str) -> Option<TopicSpec>;
    fn topics(&self) -> Vec<TopicSpec>;
    /// Durable records of a partition from `from_offset` on, at most `max_records` (see
    /// [`Visibility`]).
    fn fetch(
        &self,
        topic: &str,
        partition: u32,
        from_offset: u64,
        max_records: usize,
    ) -> Result<Vec<StoredRecord>, LogError>;
    fn offsets(&self, topic: &str, partition: u32) -> Result<PartitionOffsets, LogError>;
    /// [`Self::fetch`] at a visibility. By default every record is durable when committed.
    fn fetch_visible(
        &self,
        topic: &str,
        partition: u32,
        from_offset: u64,
        max_records: usize,
        visibility: Visibility,
    ) -> Result<Vec<StoredRecord>, LogError> {
        let _ = visibility;
        self.fetch(topic, partition, from_offset, max_records)
    }
    /// The high watermark at a visibility ([`Self::offsets`] gives the durable one).
    fn end_visible(
        &self,
        topic: &str,
        partition: u32,
        visibility: Visibility,
    ) -> Result<u64, LogError> {
        let _ = visibility;
        Ok(self.offsets(topic, partition)?.end)
    }
    /// Appends records outside any task (ingress, tools); returns their offsets.
    fn produce(&self, records: Vec<(String, u32, LogRecord)>) -> Result<Vec<u64>, LogError>;
    /// Whether [`Self::produce_with_state`] works: only where topics and state share one
    /// database (the embedded log).
    fn supports_state_appends(&self) -> bool {
        false
    }
    /// The memory and queues of the storage engine under the log, where it has one (the
    /// embedded log), for `/metrics`.
    fn storage_stats(&self) -> Option<orderflow_state_stores::StorageStats> {
        None
    }
    /// Appends each member's records together with its state writes in the state engine, each
    /// member atomically, and answers each once its write is durable (like [`Self::produce`]).
    /// The members are written together: one write and one sync for all. The API's order
    /// intake records an order's idempotency key and user index this way, in the same write
    /// as its command, so a crash keeps all three or none. Backends that keep topics and state
    /// apart refuse ([`LogError::Unsupported`]).
    fn produce_with_state(&self, appends: Vec<StatefulAppend>) -> Vec<Result<Vec<u64>, LogError>> {
        appends
            .iter()
            .map(|_| {
                Err(LogError::Unsupported {
                    operation: "appending records and state atomically",
                })
            })
            .collect()
    }
    /// Commits a task's outputs, state and positions atomically (see the module doc).
    fn commit(&self, transaction: LogTransaction) -> Result<(), LogError>;
    /// Commits several tasks' transactions, each atomically, and answers each. A stream
    /// thread commits the tasks it polled in one round this way: the embedded log makes them
    /// durable with ONE fsync instead of one per task. By default, one by one.
    fn commit_all(&self, transactions: Vec<LogTransaction>) -> Vec<Result<(), LogError>> {
        transactions
            .into_iter()
            .map(|transaction| self.commit(transaction))
            .collect()
    }
    fn committed_position(
        &self,
        group: &str,
        topic: &str,
        partition: u32,
    ) -> Result<Option<u64>, LogError>;
    /// Every committed group position.
    fn group_positions(&self) -> Result<Vec<CheckpointEntry>, LogError>;
    /// A counter that moves whenever records are committed anywhere.
    fn generation(&self) -> u64;
    /// Blocks until the generation moves past `seen`, or the timeout passes. Reading the
    /// generation *before* polling and waiting with it closes the race where records arrive
    /// between a poll that found nothing and the wait.
    fn wait_for_records(&self, seen: u64, timeout: Duration);
    /// Wakes every waiter (shutdown).
    fn wake_all(&self);
    /// A waiter woken only by records committed to `topics` (and by [`Self::wake_all`]): a
    /// stream thread listens to its tasks' inputs, so a commit to a topic it does not read
    /// does not cost it a wake-up and an empty round (with four applications in one process,
    /// every commit used to wake a dozen threads).
    ///
    /// The listener is woken when records become visible at `visibility`: stream threads
    /// listen `InProcess`, a thread running effects `Durable`.
    fn listen(
        &self,
        topics: &[String],
        visibility: Visibility,
    ) -> std::sync::Arc<dyn RecordListener>;
    /// The engine task state lives in.
    fn state_engine(&self) -> &StorageEngine;
}
