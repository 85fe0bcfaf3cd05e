//! The threaded runtime: graceful shutdown and restart, and panicking processors.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{count_serde, counting_topology, string_serde};
use orderflow_runtime::dead_letter;
use orderflow_runtime::log::LogBackend;
use orderflow_runtime::partitioner::partition_for_key;
use orderflow_runtime::{
    EmbeddedLog, MetricsRegistry, RecordDecoder, RunningApp, RuntimeConfig, SystemClock,
};
use orderflow_state_stores::{Durability, StorageConfig, StorageEngine};

fn produce(log: &EmbeddedLog, key: &str, value: &str) {
    let record = string_serde()
        .to_log_record(&key.to_string(), &value.to_string(), 1)
        .unwrap();
    log.produce(vec![(
        "input".into(),
        partition_for_key(key.as_bytes(), 4),
        record,
    )])
    .unwrap();
}

fn wait_for(description: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {description}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn config() -> RuntimeConfig {
    RuntimeConfig {
        stream_threads: 2,
        commit_interval_ms: 20,
        restart_backoff_initial_ms: 10,
        restart_backoff_max_ms: 50,
        max_panics_per_record: 2,
        ..RuntimeConfig::default()
    }
}

fn outputs(log: &EmbeddedLog) -> Vec<(String, u64)> {
    let serde = count_serde();
    let mut all = Vec::new();
    for partition in 0..4 {
        for stored in log.fetch("output", partition, 0, usize::MAX).unwrap() {
            all.push(serde.decode(&stored.record).unwrap());
        }
    }
    all
}

#[test]
fn shutdown_commits_and_a_restart_resumes_exactly_where_it_stopped() {
    let directory = tempfile::tempdir().unwrap();
    let open = || {
        let engine =
            StorageEngine::open_fjall(directory.path(), &StorageConfig::default()).unwrap();
        Arc::new(EmbeddedLog::open(engine, Durability::Fsync).unwrap())
    };
    let topology = Arc::new(counting_topology(4));
    {
        let log = open();
        let app = RunningApp::start(
            topology.clone(),
            log.clone(),
            config(),
            Arc::new(SystemClock),
            MetricsRegistry::new(),
        )
        .unwrap();
        for index in 0..200 {
            produce(&log, &format!("k{}", index % 10), "x");
        }
        wait_for("the first 200 records", || app.lag().unwrap() == 0);
        app.shutdown().unwrap();
    }
    let log = open();
    for index in 0..100 {
        produce(&log, &format!("k{}", index % 10), "x");
    }
    let metrics = MetricsRegistry::new();
    let app = RunningApp::start(
        topology,
        log.clone(),
        config(),
        Arc::new(SystemClock),
        metrics.clone(),
    )
    .unwrap();
    wait_for("the next 100 records", || app.lag().unwrap() == 0);
    app.shutdown().unwrap();
    // Only the new records were processed after the restart.
    assert_eq!(metrics.summary().records_in, 100);
    let all = outputs(&log);
    assert_eq!(all.len(), 300);
    let final_counts: Vec<u64> = all
        .iter()
        .filter(|(_, count)| *count == 30)
        .map(|(_, count)| *count)
        .collect();
    assert_eq!(final_counts.len(), 10);
}

#[test]
fn a_panicking_processor_restarts_its_task_and_a_poison_record_is_dead_lettered() {
    let log = Arc::new(EmbeddedLog::in_memory());
    let metrics = MetricsRegistry::new();
    let app = RunningApp::start(
        Arc::new(counting_topology(4)),
        log.clone(),
        config(),
        Arc::new(SystemClock),
        metrics.clone(),
    )
    .unwrap();
    for index in 0..50 {
        produce(&log, &format!("k{}", index % 5), "x");
    }
    produce(&log, "k1", "panic");
    for index in 0..50 {
        produce(&log, &format!("k{}", index % 5), "x");
    }
    wait_for("every record to be handled", || app.lag().unwrap() == 0);
    assert!(app.is_healthy());
    app.shutdown().unwrap();

    let summary = metrics.summary();
    assert_eq!(
        summary.restarts, 2,
        "two panics, then the record is dead-lettered"
    );
    assert_eq!(summary.dead_letters, 1);
    let all = outputs(&log);
    assert_eq!(
        all.len(),
        100,
        "every other record produced exactly one output"
    );
    let k1: Vec<u64> = all
        .iter()
        .filter(|(key, _)| key == "k1")
        .map(|(_, count)| *count)
        .collect();
    assert_eq!(
        k1,
        (1..=20).collect::<Vec<u64>>(),
        "the poison record left no state behind"
    );
    let partition = partition_for_key(b"k1", 4);
    let dead = log.fetch("input.dlq", partition, 0, 10).unwrap();
    assert_eq!(dead.len(), 1);
    let headers = &dead[0].record.headers;
    assert_eq!(headers.get_str(dead_letter::STAGE), Some("panic"));
    assert!(
        headers
            .get_str(dead_letter::ERROR)
            .unwrap()
            .contains("the value says panic")
    );
    let prometheus = metrics.render_prometheus("test");
    assert!(prometheus.contains("orderflow_task_restarts_total{application=\"test\",task=\""));
    assert!(prometheus.contains("orderflow_task_dead_letters_total"));
}

#[test]
fn invalid_configuration_is_refused_with_the_field_name() {
    let config = RuntimeConfig {
        commit_interval_ms: 0,
        ..RuntimeConfig::default()
    };
    let error = RunningApp::start(
        Arc::new(counting_topology(1)),
        Arc::new(EmbeddedLog::in_memory()),
        config,
        Arc::new(SystemClock),
        MetricsRegistry::new(),
    )
    .unwrap_err();
    assert!(error.to_string().contains("commit-interval-ms"), "{error}");
}

#[test]
fn a_timer_callback_that_keeps_panicking_is_dropped_and_the_task_goes_on() {
    let log = Arc::new(EmbeddedLog::in_memory());
    let metrics = MetricsRegistry::new();
    let app = RunningApp::start(
        Arc::new(common::timer_topology(1)),
        log.clone(),
        config(),
        Arc::new(SystemClock),
        metrics.clone(),
    )
    .unwrap();
    let serde = string_serde();
    for (key, value) in [("panic", "wall:0"), ("fine", "wall:0")] {
        let record = serde
            .to_log_record(&key.to_string(), &value.to_string(), 1)
            .unwrap();
        log.produce(vec![("timer-input".into(), 0, record)])
            .unwrap();
    }
    wait_for("the healthy timer to fire", || {
        log.offsets("timer-output", 0).unwrap().end == 1
    });
    wait_for("the panicking timer to be given up", || {
        metrics.summary().restarts >= 2
    });
    assert!(app.is_healthy());
    app.shutdown().unwrap();
    let fired = log.fetch("timer-output", 0, 0, 10).unwrap();
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].record.key.as_deref(), Some(b"fine".as_slice()));
}
