//! Topologies shared by the runtime's tests.
#![allow(dead_code)]

use orderflow_runtime::{
    FiredTimer, ProcessError, Processor, ProcessorContext, Record, RecordSerde, TimerKind,
    Topology, TopologyBuilder,
};
use orderflow_schemas::topic::TopicSpec;
use orderflow_state_stores::{JsonCodec, KeyValueStore, StringCodec, U64Codec};

pub fn string_serde() -> RecordSerde<String, String> {
    RecordSerde::new(StringCodec, StringCodec)
}

pub fn count_serde() -> RecordSerde<String, u64> {
    RecordSerde::new(StringCodec, JsonCodec)
}

/// Counts per key; values "fail" return an error after writing state (which must roll back),
/// values "panic" panic.
#[derive(Debug, Default)]
pub struct CountingProcessor;

impl Processor for CountingProcessor {
    type InKey = String;
    type InValue = String;
    type OutKey = String;
    type OutValue = u64;

    fn process(
        &mut self,
        context: &mut ProcessorContext<'_, String, u64>,
        record: Record<String, String>,
    ) -> Result<(), ProcessError> {
        let mut counts = context.key_value_store::<String, u64>("counts")?;
        let count = counts.get(&record.key)?.unwrap_or(0) + 1;
        counts.put(&record.key, &count)?;
        match record.value.as_str() {
            "fail" => return Err(ProcessError::invalid("the value says fail")),
            "panic" => panic!("the value says panic"),
            _ => {}
        }
        context.forward(Record::new(record.key, count, record.timestamp));
        Ok(())
    }
}

pub fn counting_topology(partitions: u32) -> Topology {
    let mut builder = TopologyBuilder::new();
    builder
        .add_topic(TopicSpec::new("input", partitions))
        .add_topic(TopicSpec::new("output", partitions))
        .add_source("source", "input", string_serde())
        .add_processor("count", &["source"], || CountingProcessor, &["counts"])
        .add_key_value_store("counts", StringCodec, U64Codec)
        .add_sink("sink", &["count"], "output", count_serde());
    builder.build().unwrap()
}

/// Schedules a timer per record: value "wall:<delay ms>" or "stream:<due ms>"; "cancel"
/// cancels the key's wall-clock timer, "cancel-due:<due ms>" cancels it without a read, given
/// its due time. "fixed:<delay ms>" schedules a fixed timer and "cancel-fixed:<due ms>"
/// cancels one. Emits "fired:<kind>:<due>" when one fires.
#[derive(Debug, Default)]
pub struct TimerProcessor;

impl Processor for TimerProcessor {
    type InKey = String;
    type InValue = String;
    type OutKey = String;
    type OutValue = String;

    fn process(
        &mut self,
        context: &mut ProcessorContext<'_, String, String>,
        record: Record<String, String>,
    ) -> Result<(), ProcessError> {
        let key = record.key.as_bytes();
        if record.value == "cancel" {
            return context.cancel_timer(TimerKind::WallClock, key);
        }
        let (value, fail_after_scheduling) = match record.value.strip_suffix(":fail") {
            Some(value) => (value, true),
            None => (record.value.as_str(), false),
        };
        let (kind, amount) = value
            .split_once(':')
            .ok_or_else(|| ProcessError::invalid("expected kind:amount"))?;
        let amount: i64 = amount
            .parse()
            .map_err(|_| ProcessError::invalid("amount is not a number"))?;
        match kind {
            "wall" => {
                let due = context.now_ms() + amount;
                context.schedule(
                    TimerKind::WallClock,
                    key,
                    due,
                    record.key.clone().into_bytes(),
                )?
            }
            "stream" => context.schedule(
                TimerKind::StreamTime,
                key,
                amount,
                record.key.clone().into_bytes(),
            )?,
            "cancel-due" => {
                context.cancel_timer_due(TimerKind::WallClock, key, amount);
                return Ok(());
            }
            "fixed" => {
                let due = context.now_ms() + amount;
                context.schedule_fixed(
                    TimerKind::WallClock,
                    key,
                    due,
                    record.key.clone().into_bytes(),
                );
            }
            "cancel-fixed" => {
                context.cancel_fixed_timer(TimerKind::WallClock, key, amount);
                return Ok(());
            }
            _ => return Err(ProcessError::invalid("unknown timer kind")),
        }
        if fail_after_scheduling {
            return Err(ProcessError::invalid("failing after scheduling a timer"));
        }
        Ok(())
    }

    fn on_timer(
        &mut self,
        context: &mut ProcessorContext<'_, String, String>,
        timer: FiredTimer,
    ) -> Result<(), ProcessError> {
        let key = String::from_utf8(timer.payload).unwrap();
        match key.as_str() {
            // A callback that cancels a timer due in the same batch: it must not fire.
            "canceller" => context.cancel_timer(TimerKind::WallClock, b"victim")?,
            // The same with fixed timers: the victim is due 100 ms after the canceller.
            "fixed-canceller" => context.cancel_fixed_timer(
                TimerKind::WallClock,
                b"fixed-victim",
                timer.due_ms + 100,
            ),
            "panic" => panic!("the timer says panic"),
            _ => {}
        }
        let kind = match timer.kind {
            TimerKind::WallClock => "wall",
            TimerKind::StreamTime => "stream",
        };
        context.forward(Record::new(
            key,
            format!("fired:{kind}:{}", timer.due_ms),
            timer.due_ms,
        ));
        Ok(())
    }
}

pub fn timer_topology(partitions: u32) -> Topology {
    let mut builder = TopologyBuilder::new();
    builder
        .add_topic(TopicSpec::new("timer-input", partitions))
        .add_topic(TopicSpec::new("timer-output", partitions))
        .add_source("source", "timer-input", string_serde())
        .add_processor("timers", &["source"], || TimerProcessor, &[])
        .add_sink("sink", &["timers"], "timer-output", string_serde());
    builder.build().unwrap()
}

/// Two sub-topologies, each with its own timer processor, over topics of equal partitions.
pub fn two_timer_sub_topologies(partitions: u32) -> Topology {
    let mut builder = TopologyBuilder::new();
    builder
        .add_topic(TopicSpec::new("left-in", partitions))
        .add_topic(TopicSpec::new("right-in", partitions))
        .add_topic(TopicSpec::new("left-out", partitions))
        .add_topic(TopicSpec::new("right-out", partitions))
        .add_source("left-source", "left-in", string_serde())
        .add_processor("left-timers", &["left-source"], || TimerProcessor, &[])
        .add_sink("left-sink", &["left-timers"], "left-out", string_serde())
        .add_source("right-source", "right-in", string_serde())
        .add_processor("right-timers", &["right-source"], || TimerProcessor, &[])
        .add_sink("right-sink", &["right-timers"], "right-out", string_serde());
    builder.build().unwrap()
}
