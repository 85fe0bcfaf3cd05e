//! `orderflow bench`: throughput of the runtime and the stores on this machine.
//!
//! Runtime workloads pre-produce their input (not timed), then start the application and time
//! how long it takes until every input record is processed and committed (lag 0), with the
//! configured commit interval and durability (fsync per commit by default).

use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, ValueEnum};
use orderflow_runtime::{
    MetricsRegistry, ProcessError, Processor, ProcessorContext, Record, RecordSerde, RunningApp,
    SystemClock, Topology, TopologyBuilder, TopologyError,
};
use orderflow_schemas::topic::TopicSpec;
use orderflow_state_stores::{
    BytesCodec, Durability, JsonCodec, KeyValueStore, StorageEngine, StoreCodecs, StoreTransaction,
    StringCodec, TransactionalKeyValueStore, WriteBatch,
};
use orderflow_topologies::counter::{self, CounterInput};
use serde::Serialize;

use super::counter::{CounterRunArgs, produce_sequences};
use crate::config::Config;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Workload {
    /// source -> map -> sink, no state.
    Stateless,
    /// source -> count (one get + one put per record) -> sink.
    Stateful,
    /// Raw store put and get, fjall and memory.
    Store,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[arg(long, value_enum, default_value = "stateless")]
    pub workload: Workload,
    /// Input records (or store operations).
    #[arg(long, default_value_t = 2_000_000)]
    pub records: u64,
    /// Distinct keys.
    #[arg(long, default_value_t = 1_000_000)]
    pub keys: u64,
    /// Stream threads.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Input partitions (tasks).
    #[arg(long, default_value_t = 4)]
    pub partitions: u32,
    /// Run on the in-memory engine instead of fjall.
    #[arg(long)]
    pub memory: bool,
    /// Where the fjall database goes (default: a fresh directory under the data dir).
    #[arg(long)]
    pub bench_dir: Option<PathBuf>,
    /// Also write the result as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
struct BenchResult {
    workload: String,
    engine: &'static str,
    records: u64,
    keys: u64,
    threads: usize,
    partitions: u32,
    seconds: f64,
    records_per_second: f64,
    records_per_second_per_thread: f64,
    commits: u64,
    peak_rss_mib: f64,
    cores: usize,
}

#[derive(Debug, Default)]
struct MapProcessor;

impl Processor for MapProcessor {
    type InKey = String;
    type InValue = CounterInput;
    type OutKey = String;
    type OutValue = CounterInput;

    fn process(
        &mut self,
        context: &mut ProcessorContext<'_, String, CounterInput>,
        record: Record<String, CounterInput>,
    ) -> Result<(), ProcessError> {
        context.forward(Record::new(
            record.key,
            CounterInput {
                sequence: record.value.sequence.wrapping_mul(2),
            },
            record.timestamp,
        ));
        Ok(())
    }
}

fn stateless_topology(partitions: u32) -> Result<Topology, TopologyError> {
    let serde: RecordSerde<String, CounterInput> = RecordSerde::new(StringCodec, JsonCodec);
    let mut builder = TopologyBuilder::new();
    builder
        .add_topic(TopicSpec::new(counter::INPUT_TOPIC, partitions))
        .add_topic(TopicSpec::new("bench-output", partitions))
        .add_source("source", counter::INPUT_TOPIC, serde.clone())
        .add_processor("map", &["source"], || MapProcessor, &[])
        .add_sink("sink", &["map"], "bench-output", serde);
    builder.build()
}

/// Peak resident set size of this process, in MiB (Linux).
pub(crate) fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmHWM:"))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kib| kib.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

fn bench_directory(config: &Config, args: &BenchArgs) -> PathBuf {
    args.bench_dir.clone().unwrap_or_else(|| {
        config
            .data_dir
            .join(format!("bench-{}", std::process::id()))
    })
}

pub fn run(config: &Config, args: &BenchArgs) -> anyhow::Result<()> {
    let result = match args.workload {
        Workload::Store => return store_bench(config, args),
        Workload::Stateless | Workload::Stateful => runtime_bench(config, args)?,
    };
    println!(
        "{} on {}: {} records, {} thread(s), {} partitions: {:.2} s, {:.0} records/s ({:.0} per thread), {} commits, peak RSS {:.0} MiB",
        result.workload,
        result.engine,
        result.records,
        result.threads,
        result.partitions,
        result.seconds,
        result.records_per_second,
        result.records_per_second_per_thread,
        result.commits,
        result.peak_rss_mib
    );
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&result)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn open_engine(
    config: &Config,
    args: &BenchArgs,
    directory: &Path,
) -> anyhow::Result<StorageEngine> {
    if args.memory {
        return Ok(StorageEngine::in_memory());
    }
    if directory.exists() {
        std::fs::remove_dir_all(directory)
            .with_context(|| format!("clearing {}", directory.display()))?;
    }
    Ok(StorageEngine::open_fjall(directory, &config.storage)?)
}

fn runtime_bench(config: &Config, args: &BenchArgs) -> anyhow::Result<BenchResult> {
    let directory = bench_directory(config, args);
    let engine = open_engine(config, args, &directory)?;
    let log = Arc::new(super::embedded_log_on(engine, config)?);
    let topology = Arc::new(match args.workload {
        Workload::Stateless => stateless_topology(args.partitions)?,
        _ => counter::topology(args.partitions)?,
    });
    orderflow_runtime::app::create_topics(&topology, log.as_ref())?;

    let produce_args = CounterRunArgs {
        records: args.records,
        keys: args.keys,
        rate: 0,
        batch: 10_000,
        partitions: args.partitions,
    };
    let bar = super::progress_bar(args.records, "producing");
    produce_sequences(
        log.as_ref(),
        0,
        args.records,
        &produce_args,
        &AtomicBool::new(false),
        &|count| bar.inc(count),
    )?;
    bar.reset();
    bar.set_message("processing");

    let mut runtime = config.runtime.clone();
    runtime.stream_threads = args.threads;
    let metrics = MetricsRegistry::new();
    let started = Instant::now();
    let app = RunningApp::start(
        topology,
        log.clone(),
        runtime,
        Arc::new(SystemClock),
        metrics.clone(),
    )?;
    loop {
        let lag = app.lag()?;
        bar.set_position(args.records.saturating_sub(lag));
        if lag == 0 || !app.is_healthy() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let seconds = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    app.shutdown()?;
    let summary = metrics.summary();
    drop(log);
    if !args.memory {
        let _ = std::fs::remove_dir_all(&directory);
    }
    let records_per_second = summary.records_in as f64 / seconds;
    Ok(BenchResult {
        workload: format!("{:?}", args.workload).to_lowercase(),
        engine: if args.memory { "memory" } else { "fjall" },
        records: summary.records_in,
        keys: args.keys,
        threads: args.threads,
        partitions: args.partitions,
        seconds,
        records_per_second,
        records_per_second_per_thread: records_per_second / args.threads.max(1) as f64,
        commits: summary.commits,
        peak_rss_mib: peak_rss_mib(),
        cores: cores(),
    })
}

fn store_bench(config: &Config, args: &BenchArgs) -> anyhow::Result<()> {
    for memory in [false, true] {
        let directory = bench_directory(config, args);
        let engine_args = BenchArgs {
            memory,
            workload: args.workload,
            records: args.records,
            keys: args.keys,
            threads: args.threads,
            partitions: args.partitions,
            bench_dir: args.bench_dir.clone(),
            json: None,
        };
        let engine = open_engine(config, &engine_args, &directory)?;
        let mut transaction = StoreTransaction::new(engine.clone());
        let space = transaction.register("bench.store")?;
        let key_of = |operation: u64| (operation % args.keys.max(1)).to_be_bytes().to_vec();
        let value = vec![7u8; 64];

        let started = Instant::now();
        for operation in 0..args.records {
            TransactionalKeyValueStore::new(
                &mut transaction,
                space,
                StoreCodecs {
                    name: "bench.store",
                    key: &BytesCodec,
                    value: &BytesCodec,
                },
            )
            .put(&key_of(operation), &value)?;
            if operation % 10_000 == 9_999 {
                let mut batch = WriteBatch::new();
                transaction.drain_into(&mut batch);
                engine.commit(batch, Durability::Buffered)?;
            }
        }
        let mut batch = WriteBatch::new();
        transaction.drain_into(&mut batch);
        engine.commit(batch, Durability::Buffered)?;
        let put_seconds = started.elapsed().as_secs_f64();

        let started = Instant::now();
        let mut found = 0u64;
        for operation in 0..args.records {
            let store = TransactionalKeyValueStore::new(
                &mut transaction,
                space,
                StoreCodecs {
                    name: "bench.store",
                    key: &BytesCodec,
                    value: &BytesCodec,
                },
            );
            if store.get(&key_of(operation.wrapping_mul(7_919)))?.is_some() {
                found += 1;
            }
        }
        let get_seconds = started.elapsed().as_secs_f64();
        let scanned = TransactionalKeyValueStore::new(
            &mut transaction,
            space,
            StoreCodecs {
                name: "bench.store",
                key: &BytesCodec,
                value: &BytesCodec,
            },
        )
        .range(Bound::Unbounded, Bound::Unbounded, 1_000)?
        .len();
        println!(
            "store on {}: {} puts in {:.2} s ({:.0} puts/s, 64-byte values, {} keys, commit per 10k); {} gets in {:.2} s ({:.0} gets/s, {found} hits); scan sample {scanned}",
            if memory { "memory" } else { "fjall" },
            args.records,
            put_seconds,
            args.records as f64 / put_seconds,
            args.keys,
            args.records,
            get_seconds,
            args.records as f64 / get_seconds
        );
        drop(transaction);
        drop(engine);
        if !memory {
            let _ = std::fs::remove_dir_all(&directory);
        }
    }
    Ok(())
}
