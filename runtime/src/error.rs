//! Errors at the runtime's boundaries.

use orderflow_state_stores::StoreError;

/// Failures of a log backend, naming the topic and partition involved.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("topic `{topic}` does not exist")]
    UnknownTopic { topic: String },
    #[error("topic `{topic}` has {partitions} partitions; partition {partition} does not exist")]
    UnknownPartition {
        topic: String,
        partition: u32,
        partitions: u32,
    },
    #[error(
        "topic `{topic}` already exists with {existing} partitions, cannot declare it with {requested}"
    )]
    PartitionMismatch {
        topic: String,
        existing: u32,
        requested: u32,
    },
    #[error("invalid topic `{topic}`: {reason}")]
    InvalidTopic { topic: String, reason: String },
    #[error("corrupt record in `{topic}` partition {partition} at offset {offset}: {reason}")]
    CorruptRecord {
        topic: String,
        partition: u32,
        offset: u64,
        reason: String,
    },
    #[error("the database is locked by another orderflow process (stop it first): {0}")]
    Locked(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The shared fsync of a group of commits failed; every commit of the group fails with it.
    #[error("syncing a group of commits to disk failed: {reason}")]
    Sync { reason: String },
    /// The one write of a group of commits failed; every commit of the group fails with it.
    #[error("writing a group of commits failed: {reason}")]
    GroupWrite { reason: String },
    /// The backend cannot do this (Kafka keeps topics and state apart, so it cannot append
    /// records and state in one atomic write).
    #[error("this log backend does not support {operation}")]
    Unsupported { operation: &'static str },
}

/// An error a processor returns for one record: the record goes to the dead-letter topic.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("{0}")]
    Invalid(String),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("store `{store}` is not attached to processor `{processor}`")]
    StoreNotAttached { store: String, processor: String },
    #[error("store `{store}` holds {actual}, not {requested}")]
    StoreType {
        store: String,
        requested: &'static str,
        actual: &'static str,
    },
    #[error("processor `{processor}` has no child named `{child}`")]
    UnknownChild { processor: String, child: String },
    #[error("encoding a record for topic `{topic}`: {message}")]
    Encode { topic: String, message: String },
}

impl ProcessError {
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::Invalid(message.into())
    }
}

/// What is wrong with a topology, and what to do about it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TopologyError {
    #[error("node name `{0}` is used twice; give every source, processor and sink its own name")]
    DuplicateNode(String),
    #[error("a node name of {length} bytes is too long; names are at most 32,767 bytes")]
    NodeNameTooLong { length: usize },
    #[error("node `{node}` names parent `{parent}`, which does not exist; add it before `{node}`")]
    UnknownParent { node: String, parent: String },
    #[error("sink `{0}` cannot be a parent; sinks end a branch")]
    SinkAsParent(String),
    #[error(
        "`{child}` takes ({child_key}, {child_value}) but parent `{parent}` emits ({parent_key}, {parent_value}); insert a mapping processor or fix the types"
    )]
    TypeMismatch {
        parent: String,
        child: String,
        parent_key: &'static str,
        parent_value: &'static str,
        child_key: &'static str,
        child_value: &'static str,
    },
    #[error("store `{store}` is declared twice")]
    DuplicateStore { store: String },
    #[error(
        "processor `{processor}` uses store `{store}`, which is not declared; add it with add_*_store"
    )]
    UnknownStore { processor: String, store: String },
    #[error("store `{0}` is declared but no processor uses it; attach it or remove it")]
    UnattachedStore(String),
    #[error("processor `{0}` is not reachable from any source; connect it to a source")]
    Unreachable(String),
    #[error(
        "topic `{topic}` is used by a source or sink but not declared; declare it with add_topic"
    )]
    UndeclaredTopic { topic: String },
    #[error("topic `{topic}` is declared twice with different settings")]
    ConflictingTopic { topic: String },
    #[error(
        "sources {left} ({left_partitions} partitions) and {right} ({right_partitions} partitions) are in one sub-topology but not co-partitioned; give both topics the same partition count"
    )]
    CoPartitioning {
        left: String,
        left_partitions: u32,
        right: String,
        right_partitions: u32,
    },
    #[error("topic `{topic}` is read by two sources; read it once and forward to both branches")]
    TopicReadTwice { topic: String },
    #[error("the topology has no source; add one with add_source")]
    NoSource,
    #[error("topic `{topic}` has 0 partitions; a topic needs at least one")]
    ZeroPartitions { topic: String },
    #[error(
        "a cycle runs through `{0}`; processors form a directed acyclic graph (loop through a topic instead)"
    )]
    Cycle(String),
}

/// Failures of a running application.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Topology(#[from] TopologyError),
    #[error("invalid runtime configuration: {field}: {reason}")]
    Config { field: &'static str, reason: String },
    #[error("starting stream thread {thread}: {source}")]
    Thread {
        thread: usize,
        #[source]
        source: std::io::Error,
    },
}
