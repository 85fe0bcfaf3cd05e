//! Building a topology validates the graph and says what to fix.

mod common;

use common::{CountingProcessor, TimerProcessor, count_serde, string_serde};
use orderflow_runtime::{TopologyBuilder, TopologyError};
use orderflow_schemas::topic::TopicSpec;
use orderflow_state_stores::{StringCodec, U64Codec};

fn base() -> TopologyBuilder {
    let mut builder = TopologyBuilder::new();
    builder
        .add_topic(TopicSpec::new("input", 4))
        .add_topic(TopicSpec::new("output", 4))
        .add_source("source", "input", string_serde());
    builder
}

#[test]
fn unknown_parent_is_named() {
    let mut builder = base();
    builder.add_processor("timers", &["nowhere"], || TimerProcessor, &[]);
    let error = builder.build().unwrap_err();
    assert_eq!(
        error,
        TopologyError::UnknownParent {
            node: "timers".to_string(),
            parent: "nowhere".to_string()
        }
    );
    assert!(error.to_string().contains("nowhere"));
}

#[test]
fn duplicate_names_are_refused() {
    let mut builder = base();
    builder.add_source("source", "input", string_serde());
    assert_eq!(
        builder.build().unwrap_err(),
        TopologyError::DuplicateNode("source".to_string())
    );
}

#[test]
fn node_names_too_long_for_timer_keys_are_refused() {
    let mut builder = base();
    builder.add_source(&"n".repeat(40_000), "input", string_serde());
    assert_eq!(
        builder.build().unwrap_err(),
        TopologyError::NodeNameTooLong { length: 40_000 }
    );
}

#[test]
fn cycles_are_refused() {
    let mut builder = base();
    builder
        .add_processor("a", &["source", "b"], || TimerProcessor, &[])
        .add_processor("b", &["a"], || TimerProcessor, &[]);
    assert!(matches!(
        builder.build().unwrap_err(),
        TopologyError::Cycle(_)
    ));
}

#[test]
fn a_store_nobody_uses_is_refused() {
    let mut builder = base();
    builder
        .add_processor("timers", &["source"], || TimerProcessor, &[])
        .add_key_value_store("orphan", StringCodec, U64Codec);
    assert_eq!(
        builder.build().unwrap_err(),
        TopologyError::UnattachedStore("orphan".to_string())
    );
}

#[test]
fn a_store_that_is_not_declared_is_refused() {
    let mut builder = base();
    builder.add_processor("count", &["source"], || CountingProcessor, &["counts"]);
    assert_eq!(
        builder.build().unwrap_err(),
        TopologyError::UnknownStore {
            processor: "count".to_string(),
            store: "counts".to_string()
        }
    );
}

#[test]
fn mismatched_types_between_nodes_are_refused() {
    let mut builder = base();
    // The sink expects (String, u64) but the source emits (String, String).
    builder.add_sink("sink", &["source"], "output", count_serde());
    let error = builder.build().unwrap_err();
    assert!(
        matches!(error, TopologyError::TypeMismatch { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("u64"), "{error}");
}

#[test]
fn sources_in_one_sub_topology_must_be_co_partitioned() {
    let mut builder = base();
    builder
        .add_topic(TopicSpec::new("other", 3))
        .add_source("other-source", "other", string_serde())
        .add_processor(
            "timers",
            &["source", "other-source"],
            || TimerProcessor,
            &[],
        );
    let error = builder.build().unwrap_err();
    assert!(
        matches!(error, TopologyError::CoPartitioning { .. }),
        "{error}"
    );
}

#[test]
fn undeclared_topics_and_sinks_as_parents_are_refused() {
    let mut builder = TopologyBuilder::new();
    builder.add_source("source", "missing", string_serde());
    assert_eq!(
        builder.build().unwrap_err(),
        TopologyError::UndeclaredTopic {
            topic: "missing".to_string()
        }
    );

    let mut builder = base();
    builder
        .add_sink("sink", &["source"], "output", string_serde())
        .add_processor("after-sink", &["sink"], || TimerProcessor, &[]);
    assert_eq!(
        builder.build().unwrap_err(),
        TopologyError::SinkAsParent("sink".to_string())
    );
}

#[test]
fn no_source_is_refused() {
    assert_eq!(
        TopologyBuilder::new().build().unwrap_err(),
        TopologyError::NoSource
    );
}

#[test]
fn independent_branches_are_separate_sub_topologies_and_describe_themselves() {
    let mut builder = base();
    builder
        .add_topic(TopicSpec::new("other", 2))
        .add_topic(TopicSpec::new("other-out", 2))
        .add_processor("count", &["source"], || CountingProcessor, &["counts"])
        .add_key_value_store("counts", StringCodec, U64Codec)
        .add_sink("sink", &["count"], "output", count_serde())
        .add_source("other-source", "other", string_serde())
        .add_processor("timers", &["other-source"], || TimerProcessor, &[])
        .add_sink("other-sink", &["timers"], "other-out", string_serde());
    let topology = builder.build().unwrap();
    let sub_topologies = topology.sub_topologies();
    assert_eq!(sub_topologies.len(), 2);
    assert_eq!(sub_topologies[0].partitions, 4);
    assert_eq!(sub_topologies[1].partitions, 2);
    assert_eq!(sub_topologies[0].stores, vec!["counts".to_string()]);

    let text = topology.describe();
    assert!(text.contains("Sub-topology: 0 (4 partitions"), "{text}");
    assert!(
        text.contains("Processor: count (stores: [counts])"),
        "{text}"
    );
    assert!(text.contains("      --> sink"), "{text}");
    assert!(text.contains("      <-- other-source"), "{text}");
    let dot = topology.to_dot();
    assert!(dot.starts_with("digraph topology {"), "{dot}");
    assert!(dot.contains("\"topic:input\" -> \"source\";"), "{dot}");
    assert!(dot.contains("\"count\" -> \"store:counts\""), "{dot}");
}

#[test]
fn a_topic_read_by_two_sources_is_refused() {
    let mut builder = base();
    builder.add_source("again", "input", string_serde());
    assert_eq!(
        builder.build().unwrap_err(),
        TopologyError::TopicReadTwice {
            topic: "input".to_string()
        }
    );
}
