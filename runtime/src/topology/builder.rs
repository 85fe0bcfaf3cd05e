//! Building a topology, and the checks that make a built topology safe to run.

use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;

use orderflow_schemas::topic::TopicSpec;
use orderflow_state_stores::{Codec, WindowRetention};

use super::{
    CloneFn, DecodeFn, EncodeFn, Node, NodeKind, StoreDefinition, StreamTypes, SubTopology,
    Topology, TypedStoreCodecs, erase_factory,
};
use crate::effects::{EffectDefinition, EffectHandler};
use crate::error::TopologyError;
use crate::global::{GlobalTableDefinition, ProjectFn};
use crate::processor::{Data, ErasedRecord, Processor};
use crate::serde::{RecordDecoder, RecordEncoder};

struct PendingNode {
    name: String,
    kind: NodeKind,
    parent_names: Vec<String>,
    input: Option<StreamTypes>,
    output: Option<StreamTypes>,
}

struct PendingStore {
    definition: StoreDefinition,
}

/// The longest node name: timer keys store a name's length in 15 bits (`timers.rs`).
pub const MAX_NODE_NAME_BYTES: usize = 32 * 1024 - 1;

/// Assembles a [`Topology`]. Mistakes are collected and reported by [`TopologyBuilder::build`].
#[derive(Default)]
pub struct TopologyBuilder {
    nodes: Vec<PendingNode>,
    stores: Vec<PendingStore>,
    topics: Vec<TopicSpec>,
    global_tables: Vec<GlobalTableDefinition>,
    effects: Vec<EffectDefinition>,
    errors: Vec<TopologyError>,
}

impl std::fmt::Debug for TopologyBuilder {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("TopologyBuilder")
            .field(
                "nodes",
                &self.nodes.iter().map(|node| &node.name).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl TopologyBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Declares a topic a source reads or a sink writes.
    pub fn add_topic(&mut self, spec: TopicSpec) -> &mut Self {
        if spec.partitions == 0 {
            self.errors.push(TopologyError::ZeroPartitions {
                topic: spec.name.clone(),
            });
        }
        match self
            .topics
            .iter()
            .find(|existing| existing.name == spec.name)
        {
            Some(existing) if *existing != spec => {
                self.errors
                    .push(TopologyError::ConflictingTopic { topic: spec.name });
            }
            Some(_) => {}
            None => self.topics.push(spec),
        }
        self
    }

    fn add_node(&mut self, node: PendingNode) {
        if node.name.len() > MAX_NODE_NAME_BYTES {
            self.errors.push(TopologyError::NodeNameTooLong {
                length: node.name.len(),
            });
            return;
        }
        if self.nodes.iter().any(|existing| existing.name == node.name) {
            self.errors
                .push(TopologyError::DuplicateNode(node.name.clone()));
            return;
        }
        self.nodes.push(node);
    }

    /// A source reading `topic`, decoding each record into `(K, V)`. Records that fail to
    /// decode go to the topic's dead-letter topic.
    pub fn add_source<K: Data, V: Data>(
        &mut self,
        name: &str,
        topic: &str,
        decoder: impl RecordDecoder<K, V> + 'static,
    ) -> &mut Self {
        let decoder = Arc::new(decoder);
        let decode: DecodeFn = Arc::new(move |record| {
            let (key, value) = decoder.decode(record)?;
            Ok((
                Box::new(key) as Box<dyn Any + Send>,
                Box::new(value) as Box<dyn Any + Send>,
            ))
        });
        let clone_record: CloneFn = Arc::new(|record: &ErasedRecord| ErasedRecord {
            key: Box::new(
                record
                    .key
                    .downcast_ref::<K>()
                    .expect("source key type is fixed")
                    .clone(),
            ),
            value: Box::new(
                record
                    .value
                    .downcast_ref::<V>()
                    .expect("source value type is fixed")
                    .clone(),
            ),
            timestamp: record.timestamp,
            headers: record.headers.clone(),
        });
        self.add_node(PendingNode {
            name: name.to_string(),
            kind: NodeKind::Source {
                topic: topic.to_string(),
                decode,
                clone_record,
            },
            parent_names: Vec::new(),
            input: None,
            output: Some(StreamTypes::of::<K, V>()),
        });
        self
    }

    /// A processor fed by `parents`, created once per task by `factory`, using `stores`.
    pub fn add_processor<P: Processor>(
        &mut self,
        name: &str,
        parents: &[&str],
        factory: impl Fn() -> P + Send + Sync + 'static,
        stores: &[&str],
    ) -> &mut Self {
        self.add_node(PendingNode {
            name: name.to_string(),
            kind: NodeKind::Processor {
                factory: erase_factory(factory),
                stores: stores.iter().map(|store| store.to_string()).collect(),
            },
            parent_names: parents.iter().map(|parent| parent.to_string()).collect(),
            input: Some(StreamTypes::of::<P::InKey, P::InValue>()),
            output: Some(StreamTypes::of::<P::OutKey, P::OutValue>()),
        });
        self
    }

    /// A sink writing what `parents` forward to `topic`, partitioned by the encoded key with
    /// Kafka's murmur2 partitioner (round-robin for records without a key).
    pub fn add_sink<K: Data, V: Data>(
        &mut self,
        name: &str,
        parents: &[&str],
        topic: &str,
        encoder: impl RecordEncoder<K, V> + 'static,
    ) -> &mut Self {
        let encoder = Arc::new(encoder);
        let encode: EncodeFn = Arc::new(move |key, value| {
            let key = key.downcast_ref::<K>().expect("sink key type is checked");
            let value = value
                .downcast_ref::<V>()
                .expect("sink value type is checked");
            encoder.encode(key, value)
        });
        self.add_node(PendingNode {
            name: name.to_string(),
            kind: NodeKind::Sink {
                topic: topic.to_string(),
                encode,
            },
            parent_names: parents.iter().map(|parent| parent.to_string()).collect(),
            input: Some(StreamTypes::of::<K, V>()),
            output: None,
        });
        self
    }

    fn add_store<K: 'static, V: 'static>(
        &mut self,
        name: &str,
        window: Option<WindowRetention>,
        key: impl Codec<K> + 'static,
        value: impl Codec<V> + 'static,
    ) -> &mut Self {
        if self
            .stores
            .iter()
            .any(|store| store.definition.name == name)
        {
            self.errors.push(TopologyError::DuplicateStore {
                store: name.to_string(),
            });
            return self;
        }
        let codecs: Arc<dyn Any + Send + Sync> = Arc::new(TypedStoreCodecs::<K, V> {
            key: Arc::new(key),
            value: Arc::new(value),
        });
        self.stores.push(PendingStore {
            definition: StoreDefinition {
                name: name.to_string(),
                window,
                codecs,
                key_type: std::any::type_name::<K>(),
                value_type: std::any::type_name::<V>(),
                sub_topology: 0,
            },
        });
        self
    }

    /// A key-value store with typed codecs. Keys are ordered by their encoding.
    pub fn add_key_value_store<K: 'static, V: 'static>(
        &mut self,
        name: &str,
        key: impl Codec<K> + 'static,
        value: impl Codec<V> + 'static,
    ) -> &mut Self {
        self.add_store(name, None, key, value)
    }

    /// A window store with typed codecs, keeping windows for `retention`.
    pub fn add_window_store<K: 'static, V: 'static>(
        &mut self,
        name: &str,
        retention: WindowRetention,
        key: impl Codec<K> + 'static,
        value: impl Codec<V> + 'static,
    ) -> &mut Self {
        self.add_store(name, Some(retention), key, value)
    }

    /// A global table named `name`: every record of `topic` is decoded, projected by `project`
    /// into `Some((key, Some(value)))` (put), `Some((key, None))` (delete) or `None` (skip), and
    /// the result is readable by every processor through `ProcessorContext::global_table`.
    pub fn add_global_table<K: 'static, V: 'static, SK: 'static, SV: 'static>(
        &mut self,
        name: &str,
        topic: &str,
        decoder: impl RecordDecoder<K, V> + 'static,
        key_codec: impl Codec<SK> + 'static,
        value_codec: impl Codec<SV> + 'static,
        project: impl Fn(K, V) -> Option<(SK, Option<SV>)> + Send + Sync + 'static,
    ) -> &mut Self {
        if self.global_tables.iter().any(|table| table.name == name)
            || self
                .stores
                .iter()
                .any(|store| store.definition.name == name)
        {
            self.errors.push(TopologyError::DuplicateStore {
                store: name.to_string(),
            });
            return self;
        }
        let key_codec: Arc<dyn Codec<SK>> = Arc::new(key_codec);
        let value_codec: Arc<dyn Codec<SV>> = Arc::new(value_codec);
        let codecs: Arc<dyn Any + Send + Sync> = Arc::new(TypedStoreCodecs::<SK, SV> {
            key: key_codec.clone(),
            value: value_codec.clone(),
        });
        let project: ProjectFn = Arc::new(move |record| {
            let (key, value) = decoder.decode(record)?;
            let Some((store_key, store_value)) = project(key, value) else {
                return Ok(None);
            };
            let encoded_key = key_codec.encode_to_vec(&store_key)?;
            if encoded_key.is_empty() {
                return Err("the projected key encodes to no bytes".to_string());
            }
            let encoded_value = match store_value {
                Some(value) => Some(value_codec.encode_to_vec(&value)?),
                None => None,
            };
            Ok(Some((encoded_key, encoded_value)))
        });
        self.global_tables.push(GlobalTableDefinition {
            name: name.to_string(),
            topic: topic.to_string(),
            project,
            codecs,
            version: Arc::default(),
        });
        self
    }

    /// An effect executor: requests on `request_topic` are performed by `handler` on the
    /// runtime's side-task thread and its results appended to `result_topic` (see
    /// [`crate::effects`]).
    pub fn add_effect(
        &mut self,
        name: &str,
        request_topic: &str,
        result_topic: &str,
        handler: Arc<dyn EffectHandler>,
    ) -> &mut Self {
        self.push_effect(name, request_topic, Some(result_topic), handler)
    }

    /// An export: every record of `topic` is handed to `handler` on the side-task thread (to
    /// write it somewhere outside the platform), at least once, in order per partition.
    pub fn add_export(
        &mut self,
        name: &str,
        topic: &str,
        handler: Arc<dyn EffectHandler>,
    ) -> &mut Self {
        self.push_effect(name, topic, None, handler)
    }

    fn push_effect(
        &mut self,
        name: &str,
        request_topic: &str,
        result_topic: Option<&str>,
        handler: Arc<dyn EffectHandler>,
    ) -> &mut Self {
        if self.effects.iter().any(|effect| effect.name == name) {
            self.errors
                .push(TopologyError::DuplicateNode(name.to_string()));
            return self;
        }
        self.effects.push(EffectDefinition {
            name: name.to_string(),
            request_topic: request_topic.to_string(),
            result_topic: result_topic.map(str::to_string),
            handler,
        });
        self
    }

    /// Validates the graph and freezes it.
    pub fn build(self) -> Result<Topology, TopologyError> {
        let TopologyBuilder {
            nodes: pending,
            stores: pending_stores,
            topics,
            global_tables,
            effects,
            mut errors,
        } = self;
        for topic in global_tables
            .iter()
            .map(|table| &table.topic)
            .chain(effects.iter().flat_map(|effect| {
                std::iter::once(&effect.request_topic).chain(effect.result_topic.as_ref())
            }))
        {
            if !topics.iter().any(|spec| spec.name == *topic) {
                errors.push(TopologyError::UndeclaredTopic {
                    topic: topic.clone(),
                });
            }
        }
        if !errors.is_empty() {
            return Err(errors.remove(0));
        }
        if !pending
            .iter()
            .any(|node| matches!(node.kind, NodeKind::Source { .. }))
        {
            return Err(TopologyError::NoSource);
        }
        let index_of: HashMap<&str, usize> = pending
            .iter()
            .enumerate()
            .map(|(index, node)| (node.name.as_str(), index))
            .collect();

        // Edges and their types.
        let mut parents: Vec<Vec<usize>> = vec![Vec::new(); pending.len()];
        let mut children: Vec<Vec<usize>> = vec![Vec::new(); pending.len()];
        for (index, node) in pending.iter().enumerate() {
            for parent_name in &node.parent_names {
                let Some(&parent) = index_of.get(parent_name.as_str()) else {
                    return Err(TopologyError::UnknownParent {
                        node: node.name.clone(),
                        parent: parent_name.clone(),
                    });
                };
                let parent_node = &pending[parent];
                let Some(parent_types) = parent_node.output else {
                    return Err(TopologyError::SinkAsParent(parent_node.name.clone()));
                };
                let child_types = node
                    .input
                    .expect("only sources lack inputs, and they have no parents");
                if parent_types.key != child_types.key || parent_types.value != child_types.value {
                    return Err(TopologyError::TypeMismatch {
                        parent: parent_node.name.clone(),
                        child: node.name.clone(),
                        parent_key: parent_types.key_name,
                        parent_value: parent_types.value_name,
                        child_key: child_types.key_name,
                        child_value: child_types.value_name,
                    });
                }
                parents[index].push(parent);
                children[parent].push(index);
            }
            if node.input.is_some() && node.parent_names.is_empty() {
                return Err(TopologyError::Unreachable(node.name.clone()));
            }
        }
        detect_cycle(&pending, &children)?;

        // Stores: declared, attached, used.
        let mut store_users: HashMap<String, Vec<usize>> = HashMap::new();
        for (index, node) in pending.iter().enumerate() {
            if let NodeKind::Processor { stores, .. } = &node.kind {
                for store in stores {
                    if !pending_stores
                        .iter()
                        .any(|pending_store| pending_store.definition.name == *store)
                    {
                        return Err(TopologyError::UnknownStore {
                            processor: node.name.clone(),
                            store: store.clone(),
                        });
                    }
                    store_users.entry(store.clone()).or_default().push(index);
                }
            }
        }
        for store in &pending_stores {
            if !store_users.contains_key(&store.definition.name) {
                return Err(TopologyError::UnattachedStore(
                    store.definition.name.clone(),
                ));
            }
        }

        // A topic feeds one source: positions are committed per (group, topic, partition).
        let mut source_topics: Vec<&str> = Vec::new();
        for node in &pending {
            if let NodeKind::Source { topic, .. } = &node.kind {
                if source_topics.contains(&topic.as_str()) {
                    return Err(TopologyError::TopicReadTwice {
                        topic: topic.clone(),
                    });
                }
                source_topics.push(topic);
            }
        }

        // Topics: every source and sink topic is declared.
        for node in &pending {
            let topic = match &node.kind {
                NodeKind::Source { topic, .. } | NodeKind::Sink { topic, .. } => topic,
                NodeKind::Processor { .. } => continue,
            };
            if !topics.iter().any(|spec| spec.name == *topic) {
                return Err(TopologyError::UndeclaredTopic {
                    topic: topic.clone(),
                });
            }
        }

        // Sub-topologies: connected components over edges and shared stores.
        let mut components = UnionFind::new(pending.len());
        for (child, node_parents) in parents.iter().enumerate() {
            for parent in node_parents {
                components.union(*parent, child);
            }
        }
        for users in store_users.values() {
            for pair in users.windows(2) {
                components.union(pair[0], pair[1]);
            }
        }
        let mut component_ids: HashMap<usize, usize> = HashMap::new();
        let mut sub_topologies: Vec<SubTopology> = Vec::new();
        let mut node_component = vec![0; pending.len()];
        for (index, component_slot) in node_component.iter_mut().enumerate() {
            let root = components.find(index);
            let next_id = component_ids.len();
            let id = *component_ids.entry(root).or_insert(next_id);
            if id == sub_topologies.len() {
                sub_topologies.push(SubTopology {
                    id,
                    nodes: Vec::new(),
                    source_topics: Vec::new(),
                    sink_topics: Vec::new(),
                    stores: Vec::new(),
                    partitions: 0,
                });
            }
            *component_slot = id;
            let sub_topology = &mut sub_topologies[id];
            sub_topology.nodes.push(index);
            match &pending[index].kind {
                NodeKind::Source { topic, .. } => sub_topology.source_topics.push(topic.clone()),
                NodeKind::Sink { topic, .. } => sub_topology.sink_topics.push(topic.clone()),
                NodeKind::Processor { stores, .. } => {
                    for store in stores {
                        if !sub_topology.stores.contains(store) {
                            sub_topology.stores.push(store.clone());
                        }
                    }
                }
            }
        }
        for sub_topology in &mut sub_topologies {
            let mut first: Option<(&str, u32)> = None;
            for topic in &sub_topology.source_topics {
                let partitions = topics
                    .iter()
                    .find(|spec| spec.name == *topic)
                    .map_or(0, |spec| spec.partitions);
                match first {
                    None => first = Some((topic, partitions)),
                    Some((first_topic, first_partitions)) if first_partitions != partitions => {
                        return Err(TopologyError::CoPartitioning {
                            left: first_topic.to_string(),
                            left_partitions: first_partitions,
                            right: topic.clone(),
                            right_partitions: partitions,
                        });
                    }
                    Some(_) => {}
                }
            }
            sub_topology.partitions = first.map_or(0, |(_, partitions)| partitions);
        }

        let nodes = pending
            .into_iter()
            .enumerate()
            .map(|(index, node)| Node {
                name: node.name,
                kind: node.kind,
                parents: std::mem::take(&mut parents[index]),
                children: std::mem::take(&mut children[index]),
                sub_topology: node_component[index],
            })
            .collect::<Vec<_>>();
        let stores = pending_stores
            .into_iter()
            .map(|store| {
                let mut definition = store.definition;
                let user = store_users[definition.name.as_str()][0];
                definition.sub_topology = node_component[user];
                definition
            })
            .collect();
        Ok(Topology {
            nodes,
            stores,
            topics,
            sub_topologies,
            global_tables,
            effects,
        })
    }
}

fn detect_cycle(nodes: &[PendingNode], children: &[Vec<usize>]) -> Result<(), TopologyError> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Unvisited,
        InProgress,
        Done,
    }
    let mut marks = vec![Mark::Unvisited; nodes.len()];
    for start in 0..nodes.len() {
        if marks[start] != Mark::Unvisited {
            continue;
        }
        // Iterative depth-first search: (node, next child position).
        let mut stack = vec![(start, 0usize)];
        marks[start] = Mark::InProgress;
        while let Some((node, position)) = stack.pop() {
            if let Some(&child) = children[node].get(position) {
                stack.push((node, position + 1));
                match marks[child] {
                    Mark::InProgress => {
                        return Err(TopologyError::Cycle(nodes[child].name.clone()));
                    }
                    Mark::Unvisited => {
                        marks[child] = Mark::InProgress;
                        stack.push((child, 0));
                    }
                    Mark::Done => {}
                }
            } else {
                marks[node] = Mark::Done;
            }
        }
    }
    Ok(())
}

struct UnionFind {
    parent: Vec<usize>,
}

impl UnionFind {
    fn new(size: usize) -> Self {
        Self {
            parent: (0..size).collect(),
        }
    }

    fn find(&mut self, mut node: usize) -> usize {
        while self.parent[node] != node {
            self.parent[node] = self.parent[self.parent[node]];
            node = self.parent[node];
        }
        node
    }

    fn union(&mut self, left: usize, right: usize) {
        let left_root = self.find(left);
        let right_root = self.find(right);
        if left_root != right_root {
            self.parent[right_root.max(left_root)] = left_root.min(right_root);
        }
    }
}
