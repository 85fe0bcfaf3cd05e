//! `orderflow counter run`: the crash test's workload. It produces `--records` sequenced input
//! records (resuming where the log ends after a restart) while the counting topology runs, and
//! exits once everything produced has been counted and committed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use orderflow_runtime::{Clock, LogBackend, MetricsRegistry, RunningApp, SystemClock};
use orderflow_topologies::counter;

use super::{open_embedded_log, shutdown_on_signal};
use crate::config::Config;

#[derive(Debug, Subcommand)]
pub enum CounterCommand {
    /// Produces and counts until every record is counted.
    Run(CounterRunArgs),
}

#[derive(Debug, Args)]
pub struct CounterRunArgs {
    /// Total input records, across restarts.
    #[arg(long, default_value_t = 100_000)]
    pub records: u64,
    /// Distinct keys.
    #[arg(long, default_value_t = 100)]
    pub keys: u64,
    /// Records produced per second (0: as fast as possible).
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Records per produce batch (each batch is appended atomically).
    #[arg(long, default_value_t = 100)]
    pub batch: u64,
    /// Partitions of the input and output topics.
    #[arg(long, default_value_t = counter::DEFAULT_PARTITIONS)]
    pub partitions: u32,
}

/// Records already in the input topic: the next sequence number to produce.
pub fn produced_so_far(log: &dyn LogBackend) -> anyhow::Result<u64> {
    Ok(super::topic_counts(log, counter::INPUT_TOPIC)?.appended)
}

/// Produces sequences `[from, to)` in atomic batches, at `rate` records/s if non-zero.
pub fn produce_sequences(
    log: &dyn LogBackend,
    from: u64,
    to: u64,
    args: &CounterRunArgs,
    stop: &AtomicBool,
    on_batch: &dyn Fn(u64),
) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut sequence = from;
    while sequence < to && !stop.load(Ordering::Relaxed) {
        let batch_end = (sequence + args.batch.max(1)).min(to);
        let timestamp = SystemClock.now_ms();
        let records = (sequence..batch_end)
            .map(|next| {
                let (partition, record) =
                    counter::input_record(next, args.keys, args.partitions, timestamp);
                (counter::INPUT_TOPIC.to_string(), partition, record)
            })
            .collect();
        log.produce(records)?;
        on_batch(batch_end - sequence);
        sequence = batch_end;
        if args.rate > 0 {
            let due = Duration::from_secs_f64((sequence - from) as f64 / args.rate as f64);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
        }
    }
    Ok(())
}

pub fn run(config: &Config, command: CounterCommand) -> anyhow::Result<()> {
    let CounterCommand::Run(args) = command;
    let log = open_embedded_log(config)?;
    let topology = Arc::new(counter::topology(args.partitions)?);
    let metrics = MetricsRegistry::new();
    let app = RunningApp::start(
        topology,
        log.clone(),
        config.runtime.clone(),
        Arc::new(SystemClock),
        metrics.clone(),
    )?;
    let start_sequence = produced_so_far(log.as_ref())?;
    let stop = shutdown_on_signal()?;
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let producer = scope.spawn(|| {
            produce_sequences(
                log.as_ref(),
                start_sequence,
                args.records,
                &args,
                &stop,
                &|_| {},
            )
        });
        producer
            .join()
            .map_err(|_| anyhow::anyhow!("the producer thread panicked"))??;
        Ok(())
    })?;
    while app.lag()? > 0 {
        if !app.is_healthy() || stop.load(Ordering::Relaxed) {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    app.shutdown()?;
    let summary = metrics.summary();
    println!(
        "counted {} records this run ({} produced in all), {} commits, {} dead letters",
        summary.records_in, args.records, summary.commits, summary.dead_letters
    );
    Ok(())
}
