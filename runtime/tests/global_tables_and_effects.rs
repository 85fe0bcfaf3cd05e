//! Global tables (lookups across partitioning) and effect executors (I/O outside processors).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use common::string_serde;
use orderflow_runtime::{
    EffectHandler, LogRecord, ProcessError, Processor, ProcessorContext, Record, Topology,
    TopologyBuilder, TopologyTestDriver,
};
use orderflow_schemas::topic::TopicSpec;
use orderflow_state_stores::{Codec, StringCodec};

/// Looks each record's value up in the `prices` global table and emits "value=price".
#[derive(Debug, Default)]
struct PriceLookup;

impl Processor for PriceLookup {
    type InKey = String;
    type InValue = String;
    type OutKey = String;
    type OutValue = String;

    fn process(
        &mut self,
        context: &mut ProcessorContext<'_, String, String>,
        record: Record<String, String>,
    ) -> Result<(), ProcessError> {
        let price = context
            .global_table::<String, String>("prices")?
            .get(&record.value)?
            .unwrap_or_else(|| "unknown".to_string());
        context.forward(Record::new(
            record.key,
            format!("{}={price}", record.value),
            record.timestamp,
        ));
        Ok(())
    }
}

fn lookup_topology() -> Topology {
    let mut builder = TopologyBuilder::new();
    builder
        .add_topic(TopicSpec::new("orders", 4))
        .add_topic(TopicSpec::compacted("price-updates", 2))
        .add_topic(TopicSpec::new("priced", 4))
        .add_global_table(
            "prices",
            "price-updates",
            string_serde(),
            StringCodec,
            StringCodec,
            |sku: String, price: String| {
                if price == "delete" {
                    Some((sku, None))
                } else if price == "ignore" {
                    None
                } else {
                    Some((sku, Some(price)))
                }
            },
        )
        .add_source("orders", "orders", string_serde())
        .add_processor("lookup", &["orders"], || PriceLookup, &[])
        .add_sink("priced", &["lookup"], "priced", string_serde());
    builder.build().unwrap()
}

/// Pipes string records (key, value) into `topic` at `timestamp`.
fn pipe_all(
    driver: &mut TopologyTestDriver,
    topic: &str,
    records: &[(String, &str)],
    timestamp: i64,
) {
    for (key, value) in records {
        driver
            .pipe(topic, &string_serde(), key, &value.to_string(), timestamp)
            .unwrap();
    }
}

/// Orders for `skus` in turn, `count` of them, keyed `<prefix>-<n>`.
fn orders(prefix: &str, skus: &[&'static str], count: usize) -> Vec<(String, &'static str)> {
    (0..count)
        .map(|order| (format!("{prefix}-{order}"), skus[order % skus.len()]))
        .collect()
}

/// The distinct values read from `priced`, sorted, and how many records there were.
fn priced(driver: &mut TopologyTestDriver) -> (Vec<String>, usize) {
    let mut values: Vec<String> = driver
        .read("priced", &string_serde())
        .unwrap()
        .into_iter()
        .map(|record| record.value)
        .collect();
    let count = values.len();
    values.sort_unstable();
    values.dedup();
    (values, count)
}

#[test]
fn every_task_reads_the_whole_global_table() {
    let mut driver = TopologyTestDriver::new(lookup_topology()).unwrap();
    let updates = [("A", "100"), ("B", "250"), ("C", "7"), ("C", "ignore")];
    let updates: Vec<(String, &str)> = updates.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    pipe_all(&mut driver, "price-updates", &updates, 1);
    pipe_all(
        &mut driver,
        "orders",
        &orders("order", &["A", "B", "C", "D"], 20),
        2,
    );
    driver.run_until_idle().unwrap();
    let (values, count) = priced(&mut driver);
    assert_eq!(count, 20);
    assert_eq!(values, vec!["A=100", "B=250", "C=7", "D=unknown"]);

    // Every task has read (and cached) A and B by now: a deletion and a change must reach
    // all of them.
    let changes = vec![("A".to_string(), "delete"), ("B".to_string(), "300")];
    pipe_all(&mut driver, "price-updates", &changes, 3);
    driver.run_until_idle().unwrap();
    pipe_all(&mut driver, "orders", &orders("late", &["A", "B"], 8), 4);
    driver.run_until_idle().unwrap();
    let (values, count) = priced(&mut driver);
    assert_eq!(count, 8);
    assert_eq!(values, vec!["A=unknown", "B=300"]);
}

/// Upper-cases the request value, counting how often it ran.
struct Shout {
    executions: Arc<AtomicU64>,
}

impl EffectHandler for Shout {
    fn execute(&self, request: &LogRecord) -> Result<Option<LogRecord>, String> {
        self.executions.fetch_add(1, Ordering::SeqCst);
        let value = StringCodec.decode(request.value.as_deref().unwrap_or_default())?;
        if value == "unusable" {
            return Err("cannot shout that".to_string());
        }
        let mut result = request.clone();
        result.value = Some(value.to_uppercase().into_bytes());
        Ok(Some(result))
    }
}

/// Forwards inputs as effect requests, and effect results to the output.
#[derive(Debug, Default)]
struct Pass;

impl Processor for Pass {
    type InKey = String;
    type InValue = String;
    type OutKey = String;
    type OutValue = String;

    fn process(
        &mut self,
        context: &mut ProcessorContext<'_, String, String>,
        record: Record<String, String>,
    ) -> Result<(), ProcessError> {
        context.forward(record);
        Ok(())
    }
}

fn effect_topology(executions: Arc<AtomicU64>) -> Topology {
    let mut builder = TopologyBuilder::new();
    builder
        .add_topic(TopicSpec::new("inputs", 3))
        .add_topic(TopicSpec::new("requests", 3))
        .add_topic(TopicSpec::new("results", 3))
        .add_topic(TopicSpec::new("outputs", 3))
        .add_source("inputs", "inputs", string_serde())
        .add_processor("request", &["inputs"], || Pass, &[])
        .add_sink("requests", &["request"], "requests", string_serde())
        .add_effect(
            "shout",
            "requests",
            "results",
            Arc::new(Shout { executions }),
        )
        .add_source("results", "results", string_serde())
        .add_processor("result", &["results"], || Pass, &[])
        .add_sink("outputs", &["result"], "outputs", string_serde());
    builder.build().unwrap()
}

#[test]
fn effect_results_come_back_as_records_exactly_once() {
    let executions = Arc::new(AtomicU64::new(0));
    let mut driver = TopologyTestDriver::new(effect_topology(executions.clone())).unwrap();
    let serde = string_serde();
    for index in 0..30 {
        driver
            .pipe(
                "inputs",
                &serde,
                &format!("k{index}"),
                &format!("hello {index}"),
                1,
            )
            .unwrap();
    }
    driver
        .pipe(
            "inputs",
            &serde,
            &"bad".to_string(),
            &"unusable".to_string(),
            1,
        )
        .unwrap();
    driver.run_until_idle().unwrap();
    let mut outputs: Vec<String> = driver
        .read("outputs", &serde)
        .unwrap()
        .into_iter()
        .map(|record| record.value)
        .collect();
    outputs.sort_unstable();
    assert_eq!(outputs.len(), 30);
    assert!(outputs.contains(&"HELLO 7".to_string()));
    assert_eq!(executions.load(Ordering::SeqCst), 31);
    assert_eq!(driver.read_raw("requests.dlq").unwrap().len(), 1);
    // Nothing is executed twice once committed.
    driver.crash().unwrap();
    driver.run_until_idle().unwrap();
    assert_eq!(executions.load(Ordering::SeqCst), 31);
    assert!(driver.read_raw("outputs").unwrap().is_empty());
}

#[test]
fn the_threaded_runtime_runs_effects_and_global_tables() {
    use orderflow_runtime::log::LogBackend;
    use orderflow_runtime::{EmbeddedLog, MetricsRegistry, RunningApp, SystemClock};
    let executions = Arc::new(AtomicU64::new(0));
    let log = Arc::new(EmbeddedLog::in_memory());
    let app = RunningApp::start(
        Arc::new(effect_topology(executions.clone())),
        log.clone(),
        orderflow_runtime::RuntimeConfig::default(),
        Arc::new(SystemClock),
        MetricsRegistry::new(),
    )
    .unwrap();
    for index in 0..10 {
        let record = string_serde()
            .to_log_record(&format!("k{index}"), &"x".to_string(), 1)
            .unwrap();
        log.produce(vec![("inputs".into(), index % 3, record)])
            .unwrap();
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let outputs: u64 = (0..3)
            .map(|partition| log.offsets("outputs", partition).unwrap().end)
            .sum();
        if outputs == 10 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "effects did not complete: {}",
            {
                let ends = |topic: &str| -> Vec<u64> {
                    (0..3)
                        .map(|partition| log.offsets(topic, partition).unwrap().end)
                        .collect()
                };
                format!(
                    "inputs {:?} requests {:?} results {:?} outputs {:?} executions {} healthy {} positions {:?}",
                    ends("inputs"),
                    ends("requests"),
                    ends("results"),
                    ends("outputs"),
                    executions.load(Ordering::SeqCst),
                    app.is_healthy(),
                    log.group_positions()
                        .unwrap()
                        .iter()
                        .map(|entry| format!(
                            "{}:{}:{}={}",
                            entry.group, entry.topic, entry.partition, entry.next_offset
                        ))
                        .collect::<Vec<_>>()
                )
            }
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert!(app.is_healthy());
    app.shutdown().unwrap();
    assert_eq!(executions.load(Ordering::SeqCst), 10);
}
