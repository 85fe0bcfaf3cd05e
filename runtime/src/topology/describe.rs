//! A topology describes itself: as text in the style of Kafka Streams' `Topology#describe()`,
//! and as Graphviz dot.

use std::fmt::Write as _;

use super::{NodeKind, Topology};

impl Topology {
    fn node_names(&self, indexes: &[usize]) -> String {
        indexes
            .iter()
            .map(|index| self.nodes[*index].name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Sub-topologies, nodes, topics and stores, as text.
    pub fn describe(&self) -> String {
        let mut text = String::from("Topologies:\n");
        for sub_topology in &self.sub_topologies {
            let _ = writeln!(
                text,
                "   Sub-topology: {} ({} partitions, {} tasks)",
                sub_topology.id, sub_topology.partitions, sub_topology.partitions
            );
            for index in &sub_topology.nodes {
                let node = &self.nodes[*index];
                match &node.kind {
                    NodeKind::Source { topic, .. } => {
                        let _ = writeln!(text, "    Source: {} (topics: [{topic}])", node.name);
                    }
                    NodeKind::Processor { stores, .. } => {
                        let _ = writeln!(
                            text,
                            "    Processor: {} (stores: [{}])",
                            node.name,
                            stores.join(", ")
                        );
                    }
                    NodeKind::Sink { topic, .. } => {
                        let _ = writeln!(text, "    Sink: {} (topic: {topic})", node.name);
                    }
                }
                if !node.children.is_empty() {
                    let _ = writeln!(text, "      --> {}", self.node_names(&node.children));
                }
                if !node.parents.is_empty() {
                    let _ = writeln!(text, "      <-- {}", self.node_names(&node.parents));
                }
            }
            for store in &sub_topology.stores {
                if let Some(definition) = self.store(store) {
                    let kind = match definition.window {
                        Some(retention) => {
                            format!("window store, retention {} ms", retention.retention_ms)
                        }
                        None => "key-value store".to_string(),
                    };
                    let _ = writeln!(
                        text,
                        "    Store: {store} ({kind}; {} -> {})",
                        definition.key_type, definition.value_type
                    );
                }
            }
        }
        for table in &self.global_tables {
            let _ = writeln!(
                text,
                "   Global table: {} (topic: {})",
                table.name, table.topic
            );
        }
        for effect in &self.effects {
            let _ = match &effect.result_topic {
                Some(result_topic) => writeln!(
                    text,
                    "   Effect: {} ({} -> {result_topic})",
                    effect.name, effect.request_topic
                ),
                None => writeln!(
                    text,
                    "   Export: {} ({})",
                    effect.name, effect.request_topic
                ),
            };
        }
        text
    }

    /// The graph in Graphviz dot: topics as ellipses, processors as boxes, stores as cylinders.
    pub fn to_dot(&self) -> String {
        let mut dot =
            String::from("digraph topology {\n  rankdir=LR;\n  node [fontname=\"Helvetica\"];\n");
        for sub_topology in &self.sub_topologies {
            let _ = writeln!(
                dot,
                "  subgraph cluster_{} {{\n    label=\"sub-topology {} ({} partitions)\";",
                sub_topology.id, sub_topology.id, sub_topology.partitions
            );
            for index in &sub_topology.nodes {
                let node = &self.nodes[*index];
                let shape = match node.kind {
                    NodeKind::Source { .. } => "invhouse",
                    NodeKind::Processor { .. } => "box",
                    NodeKind::Sink { .. } => "house",
                };
                let _ = writeln!(dot, "    \"{}\" [shape={shape}];", node.name);
            }
            for store in &sub_topology.stores {
                let _ = writeln!(
                    dot,
                    "    \"store:{store}\" [shape=cylinder, label=\"{store}\"];"
                );
            }
            dot.push_str("  }\n");
        }
        for node in &self.nodes {
            match &node.kind {
                NodeKind::Source { topic, .. } => {
                    let _ = writeln!(
                        dot,
                        "  \"topic:{topic}\" [shape=ellipse, label=\"{topic}\"];"
                    );
                    let _ = writeln!(dot, "  \"topic:{topic}\" -> \"{}\";", node.name);
                }
                NodeKind::Sink { topic, .. } => {
                    let _ = writeln!(
                        dot,
                        "  \"topic:{topic}\" [shape=ellipse, label=\"{topic}\"];"
                    );
                    let _ = writeln!(dot, "  \"{}\" -> \"topic:{topic}\";", node.name);
                }
                NodeKind::Processor { stores, .. } => {
                    for store in stores {
                        let _ = writeln!(
                            dot,
                            "  \"{}\" -> \"store:{store}\" [style=dashed, dir=both];",
                            node.name
                        );
                    }
                }
            }
            for child in &node.children {
                let _ = writeln!(
                    dot,
                    "  \"{}\" -> \"{}\";",
                    node.name, self.nodes[*child].name
                );
            }
        }
        dot.push_str("}\n");
        dot
    }
}
