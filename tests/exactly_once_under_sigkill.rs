//! Proof that nothing is lost or duplicated: the counting workload runs in a child process that
//! is killed with SIGKILL at random moments while input is being produced, restarted each time,
//! and finally allowed to finish. Every input must then be counted exactly once, and each key's
//! outputs must run 1, 2, 3, ... with no gap and no repeat.

use std::collections::{BTreeMap, HashMap};
use std::process::{Command, Stdio};

use orderflow_runtime::log::LogBackend;
use orderflow_runtime::{EmbeddedLog, RecordDecoder};
use orderflow_state_stores::{Durability, StorageConfig, StorageEngine};
use orderflow_topologies::counter;

mod support;

const RECORDS: u64 = 60_000;
const KEYS: u64 = 50;
const KILLS: usize = 15;

fn workload(data_dir: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_orderflow"));
    command
        .arg("--data-dir")
        .arg(data_dir)
        .args(["counter", "run"])
        .args(["--records", &RECORDS.to_string()])
        .args(["--keys", &KEYS.to_string()])
        .args(["--rate", "30000"])
        .env("ORDERFLOW__RUNTIME__STREAM_THREADS", "2")
        .env("ORDERFLOW__RUNTIME__COMMIT_INTERVAL_MS", "20")
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

#[test]
fn sigkill_at_random_moments_loses_and_duplicates_nothing() {
    let directory = tempfile::tempdir().unwrap();
    let status =
        support::kill_repeatedly_then_finish(|| workload(directory.path()), KILLS, 30..400);
    assert!(status.success(), "the final run failed: {status}");

    let engine = StorageEngine::open_fjall(directory.path(), &StorageConfig::default()).unwrap();
    let log = EmbeddedLog::open(engine, Durability::Fsync).unwrap();
    let input_serde = counter::input_serde();
    let output_serde = counter::output_serde();

    // Inputs: every sequence exactly once.
    let mut input_by_key: HashMap<String, Vec<u64>> = HashMap::new();
    let mut sequences = Vec::new();
    for partition in 0..counter::DEFAULT_PARTITIONS {
        for stored in log
            .fetch(counter::INPUT_TOPIC, partition, 0, usize::MAX)
            .unwrap()
        {
            let (key, value) = input_serde.decode(&stored.record).unwrap();
            sequences.push(value.sequence);
            input_by_key.entry(key).or_default().push(value.sequence);
        }
    }
    sequences.sort_unstable();
    assert_eq!(
        sequences,
        (0..RECORDS).collect::<Vec<_>>(),
        "the producer lost or repeated input"
    );

    // Outputs: per key, counts 1..=n in input order, with exactly the key's input sequences.
    let mut output_by_key: BTreeMap<String, Vec<(u64, u64)>> = BTreeMap::new();
    for partition in 0..counter::DEFAULT_PARTITIONS {
        for stored in log
            .fetch(counter::OUTPUT_TOPIC, partition, 0, usize::MAX)
            .unwrap()
        {
            let (key, update) = output_serde.decode(&stored.record).unwrap();
            output_by_key
                .entry(key)
                .or_default()
                .push((update.count, update.sequence));
        }
    }
    assert_eq!(output_by_key.len(), KEYS as usize);
    let mut total_outputs = 0;
    for (key, updates) in &output_by_key {
        let counts: Vec<u64> = updates.iter().map(|(count, _)| *count).collect();
        let expected: Vec<u64> = (1..=updates.len() as u64).collect();
        assert_eq!(counts, expected, "key {key}: counts have a gap or a repeat");
        let output_sequences: Vec<u64> = updates.iter().map(|(_, sequence)| *sequence).collect();
        assert_eq!(
            &output_sequences, &input_by_key[key],
            "key {key}: outputs differ from inputs"
        );
        total_outputs += updates.len() as u64;
    }
    assert_eq!(total_outputs, RECORDS);
    // Nothing was dead-lettered.
    for partition in 0..counter::DEFAULT_PARTITIONS {
        assert_eq!(
            log.offsets(&format!("{}.dlq", counter::INPUT_TOPIC), partition)
                .unwrap()
                .end,
            0
        );
    }
}
