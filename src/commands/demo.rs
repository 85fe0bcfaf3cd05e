//! `orderflow demo`: the counting topology on the embedded runtime, with a few malformed
//! records to show the dead-letter path, and a report of what it did.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use orderflow_runtime::{Clock, LogBackend, LogRecord, MetricsRegistry, RunningApp, SystemClock};
use orderflow_state_stores::{CommittedKeyValueStore, StoreCodecs, StringCodec, U64Codec};
use orderflow_topologies::counter;

use super::counter::{CounterRunArgs, produce_sequences, produced_so_far};
use super::{open_embedded_log, progress_bar, shutdown_on_signal, spawn_maintenance};
use crate::config::Config;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Demo input records to produce and count.
    #[arg(long, default_value_t = 200_000)]
    pub records: u64,
    /// Distinct keys in the demo input.
    #[arg(long, default_value_t = 1_000)]
    pub keys: u64,
}

pub fn run(config: &Config, args: &DemoArgs) -> anyhow::Result<()> {
    let log = open_embedded_log(config)?;
    let topology = Arc::new(counter::topology(counter::DEFAULT_PARTITIONS)?);
    println!(
        "orderflow (embedded) — data in {}",
        config.data_dir.display()
    );
    println!("{}", topology.describe());
    let metrics = MetricsRegistry::new();
    let stop_maintenance = Arc::new(AtomicBool::new(false));
    let maintenance = spawn_maintenance(
        log.clone(),
        config.maintenance_interval_ms,
        stop_maintenance.clone(),
    );
    let started = Instant::now();
    let app = RunningApp::start(
        topology.clone(),
        log.clone(),
        config.runtime.clone(),
        Arc::new(SystemClock),
        metrics.clone(),
    )?;

    // Malformed input: a value that is not the expected JSON, and one without a key.
    let now = SystemClock.now_ms();
    log.produce(vec![
        (
            counter::INPUT_TOPIC.to_string(),
            0,
            LogRecord::new(Some(b"key-0".to_vec()), Some(b"not json".to_vec()), now),
        ),
        (
            counter::INPUT_TOPIC.to_string(),
            1,
            LogRecord::new(None, Some(br#"{"sequence":1}"#.to_vec()), now),
        ),
    ])?;

    let already = produced_so_far(log.as_ref())?;
    let produce_args = CounterRunArgs {
        records: already + args.records,
        keys: args.keys,
        rate: 0,
        batch: 1_000,
        partitions: counter::DEFAULT_PARTITIONS,
    };
    let produce_bar = progress_bar(args.records, "produced");
    let stop = shutdown_on_signal()?;
    produce_sequences(
        log.as_ref(),
        already,
        already + args.records,
        &produce_args,
        &stop,
        &|count| produce_bar.inc(count),
    )?;
    produce_bar.finish();

    let total_lag = app.lag()?;
    let process_bar = progress_bar(total_lag, "counted");
    loop {
        let lag = app.lag()?;
        process_bar.set_position(total_lag.saturating_sub(lag));
        if lag == 0 || !app.is_healthy() || stop.load(Ordering::Relaxed) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    process_bar.finish();
    let elapsed = started.elapsed();
    if stop.load(Ordering::Relaxed) {
        println!("signal received: committing in-flight work and shutting down");
    }
    app.shutdown()?;
    stop_maintenance.store(true, Ordering::Relaxed);
    let _ = maintenance.join();

    let summary = metrics.summary();
    println!();
    println!(
        "processed {} records in {:.2?} ({:.0} records/s), {} outputs, {} commits",
        summary.records_in,
        elapsed,
        summary.records_in as f64 / elapsed.as_secs_f64(),
        summary.records_out,
        summary.commits
    );
    println!(
        "dead letters: {} (see `orderflow dlq list`)",
        summary.dead_letters
    );
    let mut counts = Vec::new();
    let engine = log.state_engine();
    for partition in 0..counter::DEFAULT_PARTITIONS {
        let space = engine.space(&orderflow_runtime::topology::store_space_name(
            &config.runtime.application_id,
            counter::COUNT_STORE,
            partition,
        ))?;
        let store = CommittedKeyValueStore::new(
            engine,
            space,
            StoreCodecs {
                name: counter::COUNT_STORE,
                key: &StringCodec,
                value: &U64Codec,
            },
        );
        counts.extend(store.all(usize::MAX)?);
    }
    counts.sort_by(|left, right| right.1.cmp(&left.1).then(left.0.cmp(&right.0)));
    let total: u64 = counts.iter().map(|(_, count)| count).sum();
    println!(
        "store `counts`: {} keys, {total} counted in all; top keys:",
        counts.len()
    );
    for (key, count) in counts.iter().take(5) {
        println!("  {key}: {count}");
    }
    println!("topics:");
    for spec in log.topics() {
        let records = super::topic_counts(log.as_ref(), &spec.name)?.retained;
        println!(
            "  {:<24} {} partitions, {records} records",
            spec.name, spec.partitions
        );
    }
    println!(
        "inspect with `orderflow topics tail {}` or `orderflow dlq list`; run again to count more",
        counter::OUTPUT_TOPIC
    );
    Ok(())
}
