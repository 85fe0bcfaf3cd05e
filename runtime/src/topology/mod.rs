//! Topologies: sources, processors and sinks wired into a graph, with their stores and topics.
//!
//! Like Kafka Streams, a topology splits into sub-topologies: the connected components of its
//! graph, where processors that share a store count as connected. Each sub-topology runs as one
//! task per input partition; all sources of a sub-topology must be co-partitioned.

mod builder;
mod describe;

use std::any::{Any, TypeId};
use std::sync::Arc;

use orderflow_schemas::topic::TopicSpec;
use orderflow_state_stores::{Codec, WindowRetention};

pub use builder::TopologyBuilder;

use crate::error::ProcessError;
use crate::processor::FiredTimer;
use crate::processor::{ErasedRecord, Processor, ProcessorContext};
use crate::record::LogRecord;
use crate::task::TaskCore;

/// The (key, value) types of a record stream, for build-time type checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StreamTypes {
    pub key: TypeId,
    pub value: TypeId,
    pub key_name: &'static str,
    pub value_name: &'static str,
}

impl StreamTypes {
    pub fn of<K: 'static, V: 'static>() -> Self {
        Self {
            key: TypeId::of::<K>(),
            value: TypeId::of::<V>(),
            key_name: std::any::type_name::<K>(),
            value_name: std::any::type_name::<V>(),
        }
    }
}

pub(crate) type DecodeFn = Arc<
    dyn Fn(&LogRecord) -> Result<(Box<dyn Any + Send>, Box<dyn Any + Send>), String> + Send + Sync,
>;
#[allow(clippy::type_complexity)]
pub(crate) type EncodeFn = Arc<
    dyn Fn(&dyn Any, &dyn Any) -> Result<(Option<Vec<u8>>, Option<Vec<u8>>), String> + Send + Sync,
>;
/// Clones an erased record of a known type (for fan-out from sources).
pub(crate) type CloneFn = Arc<dyn Fn(&ErasedRecord) -> ErasedRecord + Send + Sync>;

/// A processor with its types erased, so the task can hold a list of them.
pub(crate) trait ErasedProcessor: Send {
    fn process(
        &mut self,
        core: &mut TaskCore,
        node: usize,
        record: ErasedRecord,
    ) -> Result<(), ProcessError>;
    fn on_timer(
        &mut self,
        core: &mut TaskCore,
        node: usize,
        timer: FiredTimer,
    ) -> Result<(), ProcessError>;
}

struct TypedProcessor<P>(P);

impl<P: Processor> ErasedProcessor for TypedProcessor<P> {
    fn process(
        &mut self,
        core: &mut TaskCore,
        node: usize,
        record: ErasedRecord,
    ) -> Result<(), ProcessError> {
        let key = *record
            .key
            .downcast::<P::InKey>()
            .expect("key types are checked when the topology is built");
        let value = *record
            .value
            .downcast::<P::InValue>()
            .expect("value types are checked when the topology is built");
        let mut context = ProcessorContext {
            core,
            node,
            _forwards: std::marker::PhantomData,
        };
        let typed = crate::record::Record {
            key,
            value,
            timestamp: record.timestamp,
            headers: record.headers,
        };
        self.0.process(&mut context, typed)
    }

    fn on_timer(
        &mut self,
        core: &mut TaskCore,
        node: usize,
        timer: FiredTimer,
    ) -> Result<(), ProcessError> {
        let mut context = ProcessorContext {
            core,
            node,
            _forwards: std::marker::PhantomData,
        };
        self.0.on_timer(&mut context, timer)
    }
}

pub(crate) type ProcessorFactory = Arc<dyn Fn() -> Box<dyn ErasedProcessor> + Send + Sync>;

pub(crate) fn erase_factory<P: Processor>(
    factory: impl Fn() -> P + Send + Sync + 'static,
) -> ProcessorFactory {
    Arc::new(move || Box::new(TypedProcessor(factory())) as Box<dyn ErasedProcessor>)
}

pub(crate) enum NodeKind {
    Source {
        topic: String,
        decode: DecodeFn,
        clone_record: CloneFn,
    },
    Processor {
        factory: ProcessorFactory,
        stores: Vec<String>,
    },
    Sink {
        topic: String,
        encode: EncodeFn,
    },
}

pub(crate) struct Node {
    pub name: String,
    pub kind: NodeKind,
    pub parents: Vec<usize>,
    pub children: Vec<usize>,
    pub sub_topology: usize,
}

/// What kind of store, and its typed codecs (erased; downcast on access).
#[derive(Clone)]
pub(crate) struct StoreDefinition {
    pub name: String,
    pub window: Option<WindowRetention>,
    pub codecs: Arc<dyn Any + Send + Sync>,
    pub key_type: &'static str,
    pub value_type: &'static str,
    pub sub_topology: usize,
}

/// The typed codecs of a store, as stored in [`StoreDefinition::codecs`].
pub(crate) struct TypedStoreCodecs<K, V> {
    pub key: Arc<dyn Codec<K>>,
    pub value: Arc<dyn Codec<V>>,
}

/// One connected component of the graph.
#[derive(Debug, Clone)]
pub struct SubTopology {
    pub id: usize,
    /// Node indexes in insertion order.
    pub nodes: Vec<usize>,
    pub source_topics: Vec<String>,
    pub sink_topics: Vec<String>,
    pub stores: Vec<String>,
    /// Partitions of its source topics, hence its task count.
    pub partitions: u32,
}

/// A validated, immutable topology.
pub struct Topology {
    pub(crate) nodes: Vec<Node>,
    pub(crate) stores: Vec<StoreDefinition>,
    pub(crate) topics: Vec<TopicSpec>,
    pub(crate) sub_topologies: Vec<SubTopology>,
    pub(crate) global_tables: Vec<crate::global::GlobalTableDefinition>,
    pub(crate) effects: Vec<crate::effects::EffectDefinition>,
}

impl std::fmt::Debug for Topology {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.describe())
    }
}

impl Topology {
    pub(crate) fn node_name(&self, node: usize) -> &str {
        &self.nodes[node].name
    }

    pub(crate) fn children(&self, node: usize) -> &[usize] {
        &self.nodes[node].children
    }

    pub fn sub_topologies(&self) -> &[SubTopology] {
        &self.sub_topologies
    }

    /// Every topic the topology reads or writes, as declared.
    pub fn topics(&self) -> &[TopicSpec] {
        &self.topics
    }

    pub fn topic(&self, name: &str) -> Option<&TopicSpec> {
        self.topics.iter().find(|topic| topic.name == name)
    }

    /// Names of the topics read by sources.
    pub fn source_topics(&self) -> Vec<&str> {
        self.nodes
            .iter()
            .filter_map(|node| match &node.kind {
                NodeKind::Source { topic, .. } => Some(topic.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Names of the declared state stores.
    pub fn store_names(&self) -> Vec<&str> {
        self.stores
            .iter()
            .map(|store| store.name.as_str())
            .collect()
    }

    /// Names of the global tables.
    pub fn global_table_names(&self) -> Vec<&str> {
        self.global_tables
            .iter()
            .map(|table| table.name.as_str())
            .collect()
    }

    /// Topics every task must be able to dead-letter into: sources, global tables and effect
    /// requests.
    pub fn consumed_topics(&self) -> Vec<&str> {
        let mut topics = self.source_topics();
        topics.extend(self.global_tables.iter().map(|table| table.topic.as_str()));
        topics.extend(
            self.effects
                .iter()
                .map(|effect| effect.request_topic.as_str()),
        );
        topics.sort_unstable();
        topics.dedup();
        topics
    }

    pub(crate) fn store(&self, name: &str) -> Option<&StoreDefinition> {
        self.stores.iter().find(|store| store.name == name)
    }
}

/// The keyspace of one partition of a store.
pub fn store_space_name(application_id: &str, store: &str, partition: u32) -> String {
    format!("store.{application_id}.{store}.{partition}")
}
