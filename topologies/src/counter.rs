//! The counting topology: for every input record, add one to its key's count and emit the new
//! count with the input's sequence number. Because every output carries the count, a reader can
//! check exactly-once from the output alone: per key, counts run 1, 2, 3, ... with no gap and no
//! repeat.

use orderflow_runtime::{
    ProcessError, Processor, ProcessorContext, Record, RecordSerde, Topology, TopologyBuilder,
    TopologyError,
};
use orderflow_schemas::topic::TopicSpec;
use orderflow_state_stores::{JsonCodec, KeyValueStore, StringCodec, U64Codec};
use serde::{Deserialize, Serialize};

pub const INPUT_TOPIC: &str = "counter-input";
pub const OUTPUT_TOPIC: &str = "counter-output";
pub const COUNT_STORE: &str = "counts";
pub const DEFAULT_PARTITIONS: u32 = 4;

/// An input record's value: its sequence number in the producer's stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CounterInput {
    pub sequence: u64,
}

/// What the topology emits per input record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountUpdate {
    pub sequence: u64,
    pub count: u64,
}

/// The serde of the input topic.
pub fn input_serde() -> RecordSerde<String, CounterInput> {
    RecordSerde::new(StringCodec, JsonCodec)
}

/// The serde of the output topic.
pub fn output_serde() -> RecordSerde<String, CountUpdate> {
    RecordSerde::new(StringCodec, JsonCodec)
}

/// Counts per key in the `counts` store.
#[derive(Debug, Default)]
pub struct CountProcessor;

impl Processor for CountProcessor {
    type InKey = String;
    type InValue = CounterInput;
    type OutKey = String;
    type OutValue = CountUpdate;

    fn process(
        &mut self,
        context: &mut ProcessorContext<'_, String, CountUpdate>,
        record: Record<String, CounterInput>,
    ) -> Result<(), ProcessError> {
        let mut counts = context.key_value_store::<String, u64>(COUNT_STORE)?;
        let count = counts.get(&record.key)?.unwrap_or(0) + 1;
        counts.put(&record.key, &count)?;
        context.forward(Record::new(
            record.key,
            CountUpdate {
                sequence: record.value.sequence,
                count,
            },
            record.timestamp,
        ));
        Ok(())
    }
}

/// The counting topology with `partitions` input and output partitions.
pub fn topology(partitions: u32) -> Result<Topology, TopologyError> {
    let mut builder = TopologyBuilder::new();
    builder
        .add_topic(TopicSpec::new(INPUT_TOPIC, partitions))
        .add_topic(TopicSpec::new(OUTPUT_TOPIC, partitions))
        .add_source("counter-source", INPUT_TOPIC, input_serde())
        .add_processor(
            "count",
            &["counter-source"],
            || CountProcessor,
            &[COUNT_STORE],
        )
        .add_key_value_store(COUNT_STORE, StringCodec, U64Codec)
        .add_sink("counter-sink", &["count"], OUTPUT_TOPIC, output_serde());
    builder.build()
}

/// The input record with sequence number `sequence`, keyed `key-{sequence % keys}`, and the
/// partition a Kafka producer would send it to.
pub fn input_record(
    sequence: u64,
    keys: u64,
    partitions: u32,
    timestamp: i64,
) -> (u32, orderflow_runtime::LogRecord) {
    let key = format!("key-{}", sequence % keys.max(1));
    let record = input_serde()
        .to_log_record(&key, &CounterInput { sequence }, timestamp)
        .expect("strings and integers always encode");
    let partition = orderflow_runtime::partitioner::partition_for_key(key.as_bytes(), partitions);
    (partition, record)
}
