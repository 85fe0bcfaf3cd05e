//! The embedded log: offsets, durability across reopen, retention and compaction.

use orderflow_runtime::log::{LogBackend, LogTransaction, StatefulAppend, Visibility};
use orderflow_runtime::{EmbeddedLog, LogError, LogRecord};
use orderflow_schemas::topic::TopicSpec;
use orderflow_state_stores::{Durability, StorageConfig, StorageEngine, WriteBatch};

fn record(key: &str, value: Option<&str>, timestamp: i64) -> LogRecord {
    LogRecord::new(
        Some(key.as_bytes().to_vec()),
        value.map(|value| value.as_bytes().to_vec()),
        timestamp,
    )
}

fn open(path: &std::path::Path) -> EmbeddedLog {
    let engine = StorageEngine::open_fjall(path, &StorageConfig::default()).unwrap();
    EmbeddedLog::open(engine, Durability::Fsync).unwrap()
}

#[test]
fn offsets_positions_and_records_survive_reopen() {
    let directory = tempfile::tempdir().unwrap();
    {
        let log = open(directory.path());
        log.create_topic(&TopicSpec::new("events", 2)).unwrap();
        let offsets = log
            .produce(vec![
                ("events".into(), 0, record("a", Some("1"), 10)),
                ("events".into(), 0, record("b", Some("2"), 11)),
                ("events".into(), 1, record("c", Some("3"), 12)),
            ])
            .unwrap();
        assert_eq!(offsets, vec![0, 1, 0]);
        log.commit(LogTransaction {
            group: "app".into(),
            outputs: vec![("events".into(), 1, record("d", None, 13))],
            positions: vec![("events".into(), 0, 2)],
            state: WriteBatch::new(),
        })
        .unwrap();
    }
    let log = open(directory.path());
    assert_eq!(log.offsets("events", 0).unwrap().end, 2);
    assert_eq!(log.offsets("events", 1).unwrap().end, 2);
    assert_eq!(log.committed_position("app", "events", 0).unwrap(), Some(2));
    let records = log.fetch("events", 1, 0, 10).unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(records[1].record.value, None);
    assert_eq!(records[1].offset, 1);
    // New records continue after the recovered end.
    assert_eq!(
        log.produce(vec![("events".into(), 0, record("e", Some("5"), 14))])
            .unwrap(),
        vec![2]
    );
}

#[test]
fn topics_are_validated() {
    let log = EmbeddedLog::in_memory();
    log.create_topic(&TopicSpec::new("t", 3)).unwrap();
    log.create_topic(&TopicSpec::new("t", 3)).unwrap();
    assert!(matches!(
        log.create_topic(&TopicSpec::new("t", 4)),
        Err(LogError::PartitionMismatch {
            existing: 3,
            requested: 4,
            ..
        })
    ));
    assert!(matches!(
        log.create_topic(&TopicSpec::new("bad name", 1)),
        Err(LogError::InvalidTopic { .. })
    ));
    assert!(matches!(
        log.fetch("t", 3, 0, 1),
        Err(LogError::UnknownPartition { partition: 3, .. })
    ));
    assert!(matches!(
        log.produce(vec![("nope".into(), 0, record("a", Some("1"), 1))]),
        Err(LogError::UnknownTopic { .. })
    ));
}

#[test]
fn retention_deletes_old_records_by_time_and_size() {
    let log = EmbeddedLog::in_memory();
    log.create_topic(&TopicSpec::new("timed", 1).with_retention_ms(Some(1_000)))
        .unwrap();
    let records = (0..10)
        .map(|index| ("timed".to_string(), 0, record("k", Some("v"), index * 200)))
        .collect();
    log.produce(records).unwrap();
    // At t=2000 the cutoff is 1000: records at 0..800 (5 of them) expire.
    let report = log.run_maintenance(2_000).unwrap();
    assert_eq!(report.expired_records, 5);
    let offsets = log.offsets("timed", 0).unwrap();
    assert_eq!((offsets.log_start, offsets.end), (5, 10));
    assert_eq!(log.fetch("timed", 0, 0, 100).unwrap()[0].offset, 5);

    let sized = TopicSpec::new("sized", 1)
        .with_retention_ms(None)
        .with_retention_bytes(Some(100));
    log.create_topic(&sized).unwrap();
    let records = (0..20)
        .map(|index| {
            (
                "sized".to_string(),
                0,
                record("k", Some("0123456789"), index),
            )
        })
        .collect();
    log.produce(records).unwrap();
    log.run_maintenance(0).unwrap();
    let kept = log.fetch("sized", 0, 0, 100).unwrap();
    assert!(!kept.is_empty() && kept.len() < 20);
    let kept_bytes: usize = kept.iter().map(|stored| stored.record.size()).sum();
    assert!(kept_bytes <= 100, "{kept_bytes}");
    assert_eq!(kept.last().unwrap().offset, 19);
}

#[test]
fn compaction_keeps_the_latest_value_per_key() {
    let log = EmbeddedLog::in_memory();
    log.create_topic(&TopicSpec::compacted("table", 1)).unwrap();
    log.produce(vec![
        ("table".into(), 0, record("a", Some("1"), 0)),
        ("table".into(), 0, record("b", Some("1"), 0)),
        ("table".into(), 0, record("a", Some("2"), 0)),
        ("table".into(), 0, record("b", None, 0)),
        ("table".into(), 0, record("c", Some("1"), i64::MAX / 2)),
        ("table".into(), 0, record("c", None, i64::MAX / 2)),
    ])
    .unwrap();
    let report = log.run_maintenance(100_000_000_000).unwrap();
    let kept: Vec<(String, Option<String>)> = log
        .fetch("table", 0, 0, 100)
        .unwrap()
        .into_iter()
        .map(|stored| {
            (
                String::from_utf8(stored.record.key.unwrap()).unwrap(),
                stored
                    .record
                    .value
                    .map(|value| String::from_utf8(value).unwrap()),
            )
        })
        .collect();
    // "a" keeps its latest value; "b"'s old tombstone is gone; "c"'s recent tombstone stays.
    assert_eq!(
        kept,
        vec![
            ("a".to_string(), Some("2".to_string())),
            ("c".to_string(), None)
        ]
    );
    assert_eq!(report.compacted_records, 4);
}

#[test]
fn retention_keeps_the_last_record_so_offsets_never_go_back_after_reopen() {
    let directory = tempfile::tempdir().unwrap();
    {
        let log = open(directory.path());
        log.create_topic(&TopicSpec::new("short", 1).with_retention_ms(Some(10)))
            .unwrap();
        let records = (0..5)
            .map(|index| ("short".to_string(), 0, record("k", Some("v"), index)))
            .collect();
        log.produce(records).unwrap();
        // Everything is past retention, but the last record stays.
        assert_eq!(log.run_maintenance(1_000_000).unwrap().expired_records, 4);
        let offsets = log.offsets("short", 0).unwrap();
        assert_eq!((offsets.log_start, offsets.end), (4, 5));
    }
    let log = open(directory.path());
    assert_eq!(log.offsets("short", 0).unwrap().end, 5);
    assert_eq!(
        log.produce(vec![("short".into(), 0, record("k", Some("v"), 2_000_000))])
            .unwrap(),
        vec![5]
    );
}

#[test]
fn concurrent_commits_to_one_partition_get_distinct_contiguous_offsets() {
    let log = std::sync::Arc::new(EmbeddedLog::in_memory());
    log.create_topic(&TopicSpec::new("shared", 1)).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|thread| {
            let log = log.clone();
            std::thread::spawn(move || {
                for batch in 0..50 {
                    let records = (0..10)
                        .map(|index| {
                            let value = format!("{thread}-{batch}-{index}");
                            ("shared".to_string(), 0, record("k", Some(&value), 0))
                        })
                        .collect();
                    log.produce(records).unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let records = log.fetch("shared", 0, 0, usize::MAX).unwrap();
    let offsets: Vec<u64> = records.iter().map(|stored| stored.offset).collect();
    assert_eq!(offsets, (0..2_000).collect::<Vec<u64>>());
    assert_eq!(log.offsets("shared", 0).unwrap().end, 2_000);
}

#[test]
fn a_group_of_commits_lands_each_atomically_and_a_bad_one_fails_alone() {
    let directory = tempfile::tempdir().unwrap();
    {
        let log = open(directory.path());
        log.create_topic(&TopicSpec::new("in", 1)).unwrap();
        log.create_topic(&TopicSpec::new("out", 2)).unwrap();
        let transaction = |group: &str, partition: u32, position: u64| LogTransaction {
            group: group.into(),
            outputs: vec![
                ("out".into(), partition, record(group, Some("x"), 1)),
                ("out".into(), partition, record(group, Some("y"), 2)),
            ],
            positions: vec![("in".into(), 0, position)],
            state: WriteBatch::new(),
        };
        let mut bad = transaction("bad", 0, 9);
        bad.outputs
            .push(("missing".into(), 0, record("z", None, 3)));
        let results = log.commit_all(vec![
            transaction("first", 0, 3),
            bad,
            transaction("second", 1, 5),
        ]);
        assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
        assert!(
            matches!(&results[1], Err(LogError::UnknownTopic { topic }) if topic == "missing"),
            "{results:?}"
        );
        // Visible in process at once after the group returns (durable a sync later).
        for partition in [0, 1] {
            assert_eq!(
                log.end_visible("out", partition, Visibility::InProcess)
                    .unwrap(),
                2
            );
        }
    }
    // And durable: the outputs and positions of the good commits survive a reopen; nothing
    // of the bad one does.
    let log = open(directory.path());
    assert_eq!(log.committed_position("first", "in", 0).unwrap(), Some(3));
    assert_eq!(log.committed_position("second", "in", 0).unwrap(), Some(5));
    assert_eq!(log.committed_position("bad", "in", 0).unwrap(), None);
    let keys = |partition| -> Vec<Vec<u8>> {
        log.fetch("out", partition, 0, 10)
            .unwrap()
            .into_iter()
            .map(|fetched| fetched.record.key.unwrap())
            .collect()
    };
    assert_eq!(keys(0), vec![b"first".to_vec(), b"first".to_vec()]);
    assert_eq!(keys(1), vec![b"second".to_vec(), b"second".to_vec()]);
}

#[test]
fn a_listener_is_woken_by_its_topics_only_and_loses_no_wake_up() {
    let log = std::sync::Arc::new(EmbeddedLog::in_memory());
    for topic in ["inputs", "others"] {
        log.create_topic(&TopicSpec::new(topic, 2)).unwrap();
    }
    let listener = log.listen(&["inputs".to_string()], Visibility::InProcess);
    let zero = std::time::Duration::ZERO;
    assert!(!listener.wait(zero), "nothing happened yet");

    // A commit to a topic it does not listen to does not mark it.
    log.produce(vec![("others".into(), 0, record("k", Some("v"), 1))])
        .unwrap();
    assert!(!listener.wait(zero));

    // A commit before the wait is not lost: the wait returns at once, then the mark is gone.
    log.commit(LogTransaction {
        group: "app".into(),
        outputs: vec![("inputs".into(), 1, record("k", Some("v"), 2))],
        positions: vec![],
        state: WriteBatch::new(),
    })
    .unwrap();
    assert!(listener.wait(std::time::Duration::from_secs(30)));
    assert!(!listener.wait(zero));

    // Two commits before a wait leave one mark (the second finds it set and skips the wake).
    for offset in [4, 5] {
        log.produce(vec![("inputs".into(), 0, record("k", Some("v"), offset))])
            .unwrap();
    }
    assert!(listener.wait(zero));
    assert!(!listener.wait(zero));

    // A thread blocked in wait is woken by a commit to its topic.
    let waiting = {
        let listener = listener.clone();
        std::thread::spawn(move || listener.wait(std::time::Duration::from_secs(60)))
    };
    std::thread::sleep(std::time::Duration::from_millis(20));
    log.produce(vec![("inputs".into(), 0, record("k", Some("v"), 3))])
        .unwrap();
    assert!(
        waiting.join().unwrap(),
        "woken by the commit, not by the timeout"
    );

    // Two threads on one listener: the one whose wait timed out does not hide the other.
    let long_wait = {
        let listener = listener.clone();
        std::thread::spawn(move || {
            let started = std::time::Instant::now();
            let woken = listener.wait(std::time::Duration::from_secs(60));
            (woken, started.elapsed())
        })
    };
    assert!(!listener.wait(std::time::Duration::from_millis(50)));
    std::thread::sleep(std::time::Duration::from_millis(100));
    log.produce(vec![("inputs".into(), 0, record("k", Some("v"), 6))])
        .unwrap();
    let (woken, waited) = long_wait.join().unwrap();
    assert!(woken && waited < std::time::Duration::from_secs(50));

    // Shutdown wakes every listener.
    log.wake_all();
    assert!(listener.wait(zero));
}

/// `wait_for_records` returns at once when the generation has moved, and a waiter blocked on
/// the generation it saw is woken by the next commit (commits notify only while someone waits).
#[test]
fn a_generation_waiter_is_woken_by_the_next_commit() {
    let log = std::sync::Arc::new(EmbeddedLog::in_memory());
    log.create_topic(&TopicSpec::new("inputs", 1)).unwrap();
    let before = log.generation();
    log.produce(vec![("inputs".into(), 0, record("k", Some("v"), 1))])
        .unwrap();
    let seen = log.generation();
    assert!(seen > before, "a commit moves the generation");
    // Already moved past `before`: no wait at all.
    let started = std::time::Instant::now();
    log.wait_for_records(before, std::time::Duration::from_secs(60));
    assert!(started.elapsed() < std::time::Duration::from_secs(50));

    let waiting = {
        let log = log.clone();
        std::thread::spawn(move || {
            let started = std::time::Instant::now();
            log.wait_for_records(seen, std::time::Duration::from_secs(60));
            started.elapsed()
        })
    };
    // Time for the thread to block (if it has not yet, it returns at once, as above).
    std::thread::sleep(std::time::Duration::from_millis(100));
    log.produce(vec![("inputs".into(), 0, record("k", Some("v"), 2))])
        .unwrap();
    assert!(
        waiting.join().unwrap() < std::time::Duration::from_secs(50),
        "woken by the commit, not by the one-minute timeout"
    );
}

/// "Durability, pipelined": a task's commit is readable in process at once and reaches the
/// durable watermark when the syncer thread has synced it; an intake `produce` returns only
/// once its records are durable; after a reopen both watermarks are the end on disk.
#[test]
fn commits_are_visible_in_process_at_once_and_durable_after_the_syncer() {
    let folder = tempfile::tempdir().unwrap();
    let log = open(folder.path());
    log.create_topic(&TopicSpec::new("events", 1)).unwrap();
    let durable_listener = log.listen(&["events".to_string()], Visibility::Durable);

    log.commit(LogTransaction {
        group: "app".into(),
        outputs: vec![("events".into(), 0, record("k", Some("v"), 1))],
        positions: vec![],
        state: WriteBatch::new(),
    })
    .unwrap();
    assert_eq!(
        log.end_visible("events", 0, Visibility::InProcess).unwrap(),
        1,
        "a stream task reads a commit without waiting for the disk"
    );
    assert_eq!(
        log.fetch_visible("events", 0, 0, 10, Visibility::InProcess)
            .unwrap()
            .len(),
        1
    );
    // The syncer makes it durable behind the writer, and wakes durable listeners.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while log.offsets("events", 0).unwrap().end < 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the syncer never made the commit durable"
        );
        durable_listener.wait(std::time::Duration::from_millis(50));
    }
    assert_eq!(log.fetch("events", 0, 0, 10).unwrap().len(), 1);

    // The intake's produce returns durable: nothing to wait for after it.
    let offsets = log
        .produce(vec![("events".into(), 0, record("k", Some("w"), 2))])
        .unwrap();
    assert_eq!(offsets, vec![1]);
    assert_eq!(log.offsets("events", 0).unwrap().end, 2);

    // Dropping the log stops the syncer and closes the database: it reopens at once.
    drop(durable_listener);
    drop(log);
    let reopened = open(folder.path());
    assert_eq!(reopened.offsets("events", 0).unwrap().end, 2);
    assert_eq!(
        reopened
            .end_visible("events", 0, Visibility::InProcess)
            .unwrap(),
        2
    );
}

/// The syncer starts a sync at most once per spacing: a commit right after a sync waits for the
/// next one, and commits in between share it; the intake's produce does not wait for it.
#[test]
fn the_syncer_spaces_its_syncs_and_later_commits_share_the_next_one() {
    use std::time::{Duration, Instant};
    let folder = tempfile::tempdir().unwrap();
    let engine = StorageEngine::open_fjall(folder.path(), &StorageConfig::default()).unwrap();
    let spacing = Duration::from_secs(2);
    let log = EmbeddedLog::open_with_sync_spacing(engine, Durability::Fsync, spacing).unwrap();
    log.create_topic(&TopicSpec::new("events", 1)).unwrap();
    let commit = |value: &str| {
        log.commit(LogTransaction {
            group: "app".into(),
            outputs: vec![("events".into(), 0, record("k", Some(value), 1))],
            positions: vec![],
            state: WriteBatch::new(),
        })
        .unwrap();
    };
    let durable_end = || log.offsets("events", 0).unwrap().end;
    let wait_durable = |end: u64| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while durable_end() < end {
            assert!(Instant::now() < deadline, "never durable up to {end}");
            std::thread::sleep(Duration::from_millis(5));
        }
    };

    // The first sync starts at once (it is the first request).
    let first_committed_at = Instant::now();
    commit("a");
    wait_durable(1);
    // The next ones wait for the spacing, and share one sync.
    commit("b");
    commit("c");
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(durable_end(), 1, "a sync started before the spacing was up");
    assert_eq!(
        log.end_visible("events", 0, Visibility::InProcess).unwrap(),
        3,
        "stream tasks do not wait for the sync"
    );
    wait_durable(3);
    // The second sync started a spacing after the first, which started after "a" committed.
    assert!(
        first_committed_at.elapsed() >= spacing,
        "the second sync came {:?} after the first commit, within the spacing",
        first_committed_at.elapsed()
    );
    // The intake syncs on its own: durable when produce returns, spacing or not.
    assert_eq!(
        log.produce(vec![("events".into(), 0, record("k", Some("d"), 2))])
            .unwrap(),
        vec![3]
    );
    assert_eq!(durable_end(), 4);
    // A stop does not wait out the spacing: the syncer is waiting for it now (a request came).
    commit("e");
    let stopping = Instant::now();
    drop(log);
    assert!(
        stopping.elapsed() < Duration::from_secs(1),
        "closing the log waited {:?} for the spacing",
        stopping.elapsed()
    );
}

fn offsets_of(records: &[orderflow_runtime::record::StoredRecord]) -> Vec<u64> {
    records.iter().map(|stored| stored.offset).collect()
}

/// Entries in a topic's keyspace: one per record batch.
fn batches_in(log: &EmbeddedLog, topic: &str) -> usize {
    let engine = log.state_engine();
    let space = engine.scan_only_space(&format!("topic.{topic}")).unwrap();
    let mut batches = 0;
    engine
        .scan(
            &space,
            std::ops::Bound::Unbounded,
            std::ops::Bound::Unbounded,
            false,
            &mut |_, _| {
                batches += 1;
                std::ops::ControlFlow::Continue(())
            },
        )
        .unwrap();
    batches
}

/// A commit's records for one partition are one batch, one fjall entry; a fetch may start and
/// stop anywhere inside batches and span several.
#[test]
fn each_commit_writes_one_batch_per_partition_and_fetches_start_anywhere_in_one() {
    let log = EmbeddedLog::in_memory();
    log.create_topic(&TopicSpec::new("batched", 2)).unwrap();
    for round in 0..3 {
        let records = (0..10)
            .map(|index| {
                let value = format!("{round}-{index}");
                (
                    "batched".to_string(),
                    index % 2,
                    record("k", Some(&value), 1),
                )
            })
            .collect();
        log.produce(records).unwrap();
    }
    // Three commits, two partitions each.
    assert_eq!(batches_in(&log, "batched"), 6);
    assert_eq!(log.offsets("batched", 0).unwrap().end, 15);
    assert_eq!(offsets_of(&log.fetch("batched", 0, 2, 2).unwrap()), [2, 3]);
    assert_eq!(
        offsets_of(&log.fetch("batched", 0, 3, 9).unwrap()),
        (3..12).collect::<Vec<u64>>()
    );
    assert_eq!(offsets_of(&log.fetch("batched", 0, 14, 100).unwrap()), [14]);
    let from_the_middle = log.fetch("batched", 1, 7, 100).unwrap();
    assert_eq!(offsets_of(&from_the_middle), (7..15).collect::<Vec<u64>>());
    // Partition 1 got the odd indexes: offset 7 is round 1's third record there.
    assert_eq!(
        from_the_middle[0].record.value.as_deref(),
        Some("1-5".as_bytes())
    );
}

/// Retention and compaction remove records from inside batches: a batch left empty goes, one
/// left with records is rewritten, and reads from a removed offset go on at the next record.
#[test]
fn retention_and_compaction_remove_records_from_inside_batches() {
    let log = EmbeddedLog::in_memory();
    log.create_topic(&TopicSpec::new("timed", 1).with_retention_ms(Some(1_000)))
        .unwrap();
    for first in [0, 3] {
        let records = (first..first + 3)
            .map(|index| ("timed".to_string(), 0, record("k", Some("v"), index * 200)))
            .collect();
        log.produce(records).unwrap();
    }
    // At t=1900 the cutoff is 900: offsets 0..4 (timestamps 0..800) expire, the first batch
    // whole and the second in part.
    assert_eq!(log.run_maintenance(1_900).unwrap().expired_records, 5);
    assert_eq!(batches_in(&log, "timed"), 1);
    assert_eq!(log.offsets("timed", 0).unwrap().log_start, 5);
    assert_eq!(offsets_of(&log.fetch("timed", 0, 0, 10).unwrap()), [5]);

    log.create_topic(&TopicSpec::compacted("table", 1)).unwrap();
    log.produce(vec![
        ("table".into(), 0, record("a", Some("1"), 0)),
        ("table".into(), 0, record("b", Some("1"), 0)),
        ("table".into(), 0, record("a", Some("2"), 0)),
        ("table".into(), 0, record("b", Some("2"), 0)),
    ])
    .unwrap();
    assert_eq!(log.run_maintenance(0).unwrap().compacted_records, 2);
    assert_eq!(batches_in(&log, "table"), 1);
    // A consumer positioned on a removed record reads on from the next one.
    assert_eq!(offsets_of(&log.fetch("table", 0, 0, 10).unwrap()), [2, 3]);
    assert_eq!(offsets_of(&log.fetch("table", 0, 1, 10).unwrap()), [2, 3]);
    assert_eq!(offsets_of(&log.fetch("table", 0, 3, 10).unwrap()), [3]);
    assert_eq!(log.offsets("table", 0).unwrap().log_start, 2);
}

/// A batch rewritten without its first records keeps its key; the log start recovered at
/// open is its first remaining record, not the key.
#[test]
fn the_log_start_after_a_rewritten_batch_survives_reopen() {
    let directory = tempfile::tempdir().unwrap();
    {
        let log = open(directory.path());
        log.create_topic(&TopicSpec::new("trimmed", 1).with_retention_ms(Some(1_000)))
            .unwrap();
        log.produce(
            [0, 500, 2_000]
                .into_iter()
                .map(|timestamp| ("trimmed".to_string(), 0, record("k", Some("v"), timestamp)))
                .collect(),
        )
        .unwrap();
        assert_eq!(log.run_maintenance(2_100).unwrap().expired_records, 2);
        assert_eq!(batches_in(&log, "trimmed"), 1);
    }
    let log = open(directory.path());
    let offsets = log.offsets("trimmed", 0).unwrap();
    assert_eq!((offsets.log_start, offsets.end), (2, 3));
    assert_eq!(offsets_of(&log.fetch("trimmed", 0, 0, 10).unwrap()), [2]);
}

/// Data written before record batches (one record per entry) is read as batches of one.
#[test]
fn records_stored_one_per_entry_before_batches_still_read() {
    let directory = tempfile::tempdir().unwrap();
    {
        let log = open(directory.path());
        log.create_topic(&TopicSpec::new("old", 1)).unwrap();
    }
    for offset in 0..3u64 {
        let value = format!("old-{offset}");
        let encoded = orderflow_runtime::record::encode_log_record(&record("k", Some(&value), 5));
        put_raw_entry(directory.path(), "old", offset, encoded);
    }
    let log = open(directory.path());
    assert_eq!(log.offsets("old", 0).unwrap().end, 3);
    assert_eq!(
        log.produce(vec![("old".into(), 0, record("k", Some("new"), 6))])
            .unwrap(),
        vec![3]
    );
    let values: Vec<String> = log
        .fetch("old", 0, 1, 10)
        .unwrap()
        .into_iter()
        .map(|stored| String::from_utf8(stored.record.value.unwrap()).unwrap())
        .collect();
    assert_eq!(values, ["old-1", "old-2", "new"]);
}

/// Writes `value` under record key (partition 0, `offset`) of topic `topic`, bypassing the log.
fn put_raw_entry(directory: &std::path::Path, topic: &str, offset: u64, value: Vec<u8>) {
    let engine = StorageEngine::open_fjall(directory, &StorageConfig::default()).unwrap();
    let space = engine.scan_only_space(&format!("topic.{topic}")).unwrap();
    let mut batch = WriteBatch::new();
    let mut key = 0u32.to_be_bytes().to_vec();
    key.extend_from_slice(&offset.to_be_bytes());
    batch.put(&space, key, value);
    engine.commit(batch, Durability::Fsync).unwrap();
}

/// A batch header promising 9 records, then 2 bytes.
const CORRUPT_BATCH: [u8; 7] = [0xba, 0, 0, 0, 9, 1, 2];

/// A corrupt batch fails the reads of its records and the cleanup of its partition; the log
/// still opens, and the other partitions and topics work and are cleaned up.
#[test]
fn a_corrupt_batch_fails_its_reads_and_its_partitions_cleanup_only() {
    let directory = tempfile::tempdir().unwrap();
    {
        let log = open(directory.path());
        log.create_topic(&TopicSpec::new("damaged", 2).with_retention_ms(Some(10)))
            .unwrap();
        log.create_topic(&TopicSpec::new("healthy", 1).with_retention_ms(Some(10)))
            .unwrap();
    }
    put_raw_entry(directory.path(), "damaged", 7, CORRUPT_BATCH.to_vec());
    // A sound last batch after it (one record in the format from before batches).
    let last = orderflow_runtime::record::encode_log_record(&record("k", Some("v"), 1));
    put_raw_entry(directory.path(), "damaged", 20, last);
    let log = open(directory.path());
    let offsets = log.offsets("damaged", 0).unwrap();
    assert_eq!((offsets.log_start, offsets.end), (7, 21));
    assert!(matches!(
        log.fetch("damaged", 0, 7, 10),
        Err(LogError::CorruptRecord { offset: 7, .. })
    ));
    assert_eq!(offsets_of(&log.fetch("damaged", 0, 20, 10).unwrap()), [20]);
    log.produce(vec![("damaged".into(), 1, record("k", Some("v"), 1))])
        .unwrap();
    assert_eq!(log.fetch("damaged", 1, 0, 10).unwrap().len(), 1);
    log.produce(
        (0..3)
            .map(|_| ("healthy".to_string(), 0, record("k", Some("v"), 1)))
            .collect(),
    )
    .unwrap();
    let report = log.run_maintenance(1_000).unwrap();
    assert_eq!(report.corrupt_partitions, 1);
    // The healthy topic's expired records went (all but its last).
    assert_eq!(log.offsets("healthy", 0).unwrap().log_start, 2);
}

/// A corrupt last batch refuses the open, naming it: its records' offsets are unknown, and
/// guessing the partition's end would hand some of them out again.
#[test]
fn a_corrupt_last_batch_refuses_the_open_and_names_it() {
    let directory = tempfile::tempdir().unwrap();
    {
        let log = open(directory.path());
        log.create_topic(&TopicSpec::new("damaged", 1)).unwrap();
    }
    put_raw_entry(directory.path(), "damaged", 7, CORRUPT_BATCH.to_vec());
    let engine = StorageEngine::open_fjall(directory.path(), &StorageConfig::default()).unwrap();
    match EmbeddedLog::open(engine, Durability::Fsync) {
        Err(LogError::CorruptRecord {
            topic,
            partition,
            offset,
            ..
        }) => assert_eq!((topic.as_str(), partition, offset), ("damaged", 0, 7)),
        Err(other) => panic!("expected a corrupt record error, got {other}"),
        Ok(_) => panic!("a log with a corrupt last batch opened"),
    }
}

#[test]
fn records_and_state_appended_together_land_together_and_survive_reopen() {
    let directory = tempfile::tempdir().unwrap();
    {
        let log = open(directory.path());
        assert!(log.supports_state_appends());
        log.create_topic(&TopicSpec::new("commands", 2)).unwrap();
        log.produce(vec![("commands".into(), 1, record("x", Some("0"), 1))])
            .unwrap();
        let index = log.state_engine().space("index").unwrap();
        let member = |key: &'static str, partition: u32, topic: &str| {
            let mut state = WriteBatch::new();
            state.put(
                &index,
                format!("up-front:{key}").into_bytes(),
                b"1".to_vec(),
            );
            let space = index.clone();
            StatefulAppend {
                records: vec![(topic.to_string(), partition, record(key, Some(key), 2))],
                state,
                offset_dependent: Some(Box::new(move |offsets: &[u64], batch: &mut WriteBatch| {
                    batch.put(
                        &space,
                        format!("offset-of:{key}").into_bytes(),
                        offsets[0].to_string().into_bytes(),
                    );
                })),
            }
        };
        let results = log.produce_with_state(vec![
            member("a", 1, "commands"),
            member("b", 0, "no-such-topic"),
            member("c", 1, "commands"),
        ]);
        assert_eq!(results[0].as_ref().unwrap(), &vec![1]);
        assert!(
            matches!(results[1], Err(LogError::UnknownTopic { .. })),
            "{:?}",
            results[1]
        );
        assert_eq!(results[2].as_ref().unwrap(), &vec![2]);
    }
    // After a reopen: each good member's record, its up-front state and the state that names
    // its offset; nothing of the refused member.
    let log = open(directory.path());
    let engine = log.state_engine();
    let index = engine.space("index").unwrap();
    let get = |key: &str| engine.get(&index, key.as_bytes()).unwrap();
    assert_eq!(get("offset-of:a"), Some(b"1".to_vec()));
    assert_eq!(get("offset-of:c"), Some(b"2".to_vec()));
    assert_eq!(get("up-front:a"), Some(b"1".to_vec()));
    assert_eq!(get("up-front:b"), None);
    assert_eq!(get("offset-of:b"), None);
    let keys: Vec<_> = log
        .fetch("commands", 1, 0, 10)
        .unwrap()
        .into_iter()
        .map(|stored| stored.record.key.unwrap())
        .collect();
    assert_eq!(keys, vec![b"x".to_vec(), b"a".to_vec(), b"c".to_vec()]);
}
