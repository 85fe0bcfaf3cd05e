//! Topology tests through the test driver, with several partitions.

mod common;

use std::collections::HashMap;

use common::{
    count_serde, counting_topology, string_serde, timer_topology, two_timer_sub_topologies,
};
use orderflow_runtime::dead_letter;
use orderflow_runtime::{Clock, LogBackend, LogRecord, TopologyTestDriver};

#[test]
fn counts_every_record_once_across_partitions() {
    let mut driver = TopologyTestDriver::new(counting_topology(4)).unwrap();
    let serde = string_serde();
    let mut expected: HashMap<String, u64> = HashMap::new();
    for index in 0..500u64 {
        let key = format!("k{}", index % 37);
        *expected.entry(key.clone()).or_default() += 1;
        driver
            .pipe("input", &serde, &key, &"x".to_string(), index as i64)
            .unwrap();
    }
    driver.run_until_idle().unwrap();
    let outputs = driver.read("output", &count_serde()).unwrap();
    assert_eq!(outputs.len(), 500);
    // Per key, the emitted counts run 1..=n in order.
    let mut last_seen: HashMap<String, u64> = HashMap::new();
    for record in &outputs {
        let previous = last_seen
            .insert(record.key.clone(), record.value)
            .unwrap_or(0);
        assert_eq!(record.value, previous + 1, "key {}", record.key);
    }
    assert_eq!(last_seen, expected);
    let mut stored: HashMap<String, u64> = driver
        .store_entries::<String, u64>("counts")
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(stored.len(), 37);
    assert_eq!(stored.remove("k0"), expected.get("k0").copied());
    // Keys landed on every partition, so several tasks did the work.
    for partition in 0..4 {
        assert!(driver.log().offsets("input", partition).unwrap().end > 0);
    }
}

#[test]
fn a_crash_before_commit_replays_without_duplicates() {
    let mut driver = TopologyTestDriver::new(counting_topology(3)).unwrap();
    let serde = string_serde();
    for index in 0..100u64 {
        driver
            .pipe(
                "input",
                &serde,
                &format!("k{}", index % 5),
                &"x".to_string(),
                1,
            )
            .unwrap();
    }
    driver.run_until_idle().unwrap();
    for index in 100..250u64 {
        driver
            .pipe(
                "input",
                &serde,
                &format!("k{}", index % 5),
                &"x".to_string(),
                2,
            )
            .unwrap();
    }
    // Process without committing, then crash: the work must be redone exactly once.
    driver.process_once().unwrap();
    driver.crash().unwrap();
    driver.run_until_idle().unwrap();
    let outputs = driver.read("output", &count_serde()).unwrap();
    assert_eq!(outputs.len(), 250);
    let totals: HashMap<String, u64> = driver
        .store_entries::<String, u64>("counts")
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(totals.values().sum::<u64>(), 250);
    assert!(totals.values().all(|count| *count == 50));
}

#[test]
fn failed_and_undecodable_records_go_to_the_dead_letter_topic_and_processing_continues() {
    let mut driver = TopologyTestDriver::new(counting_topology(2)).unwrap();
    let serde = string_serde();
    driver
        .pipe("input", &serde, &"a".to_string(), &"ok".to_string(), 1)
        .unwrap();
    driver
        .pipe("input", &serde, &"a".to_string(), &"fail".to_string(), 2)
        .unwrap();
    driver
        .pipe_raw(
            "input",
            1,
            LogRecord::new(None, Some(b"no key".to_vec()), 3),
        )
        .unwrap();
    driver
        .pipe_raw(
            "input",
            0,
            LogRecord::new(Some(vec![0xff, 0xfe]), Some(b"bad utf8 key".to_vec()), 4),
        )
        .unwrap();
    driver
        .pipe("input", &serde, &"a".to_string(), &"ok".to_string(), 5)
        .unwrap();
    driver.run_until_idle().unwrap();

    // The failed record's state change was rolled back: "a" counts only the two good records.
    let outputs = driver.read("output", &count_serde()).unwrap();
    let counts: Vec<u64> = outputs.iter().map(|record| record.value).collect();
    assert_eq!(counts, vec![1, 2]);

    let dead_letters = driver.read_raw("input.dlq").unwrap();
    assert_eq!(dead_letters.len(), 3);
    let stages: Vec<&str> = dead_letters
        .iter()
        .map(|(_, stored)| stored.record.headers.get_str(dead_letter::STAGE).unwrap())
        .collect();
    assert_eq!(stages.iter().filter(|stage| **stage == "decode").count(), 2);
    assert_eq!(
        stages.iter().filter(|stage| **stage == "process").count(),
        1
    );
    let failed = dead_letters
        .iter()
        .find(|(_, stored)| stored.record.headers.get_str(dead_letter::STAGE) == Some("process"))
        .unwrap();
    let headers = &failed.1.record.headers;
    assert_eq!(
        headers.get_str(dead_letter::ERROR),
        Some("the value says fail")
    );
    assert_eq!(headers.get_str(dead_letter::SOURCE_TOPIC), Some("input"));
    assert_eq!(headers.get_str(dead_letter::NODE), Some("count"));
    assert!(headers.get_str(dead_letter::SOURCE_OFFSET).is_some());
    assert_eq!(failed.1.record.value.as_deref(), Some(b"fail".as_slice()));
    assert_eq!(driver.metrics().summary().dead_letters, 3);
}

#[test]
fn wall_clock_timers_fire_once_when_due_and_survive_a_crash() {
    let mut driver = TopologyTestDriver::new(timer_topology(3)).unwrap();
    let serde = string_serde();
    let start = driver.clock().now_ms();
    for (key, delay) in [("a", 1_000), ("b", 5_000), ("c", 3_000)] {
        driver
            .pipe(
                "timer-input",
                &serde,
                &key.to_string(),
                &format!("wall:{delay}"),
                start,
            )
            .unwrap();
    }
    driver
        .pipe(
            "timer-input",
            &serde,
            &"d".to_string(),
            &"wall:2000".to_string(),
            start,
        )
        .unwrap();
    driver
        .pipe(
            "timer-input",
            &serde,
            &"d".to_string(),
            &"cancel".to_string(),
            start,
        )
        .unwrap();
    driver.run_until_idle().unwrap();
    assert!(driver.read_raw("timer-output").unwrap().is_empty());

    driver.advance_wall_clock(3_000).unwrap();
    let fired = driver.read("timer-output", &serde).unwrap();
    let mut fired_keys: Vec<&str> = fired.iter().map(|record| record.key.as_str()).collect();
    fired_keys.sort_unstable();
    assert_eq!(fired_keys, vec!["a", "c"]);
    assert_eq!(
        fired.iter().find(|record| record.key == "a").unwrap().value,
        format!("fired:wall:{}", start + 1_000)
    );

    // "b" is committed; a crash must neither lose it nor fire "a" or "c" again.
    driver.crash().unwrap();
    driver.advance_wall_clock(10_000).unwrap();
    let fired = driver.read("timer-output", &serde).unwrap();
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].key, "b");
}

#[test]
fn a_timer_due_before_the_next_known_one_still_fires_on_time() {
    // Rounds skip the timer queue until the earliest timer they know of is due; a timer
    // scheduled for earlier than that must lower it, or it would fire late.
    let mut driver = TopologyTestDriver::new(timer_topology(1)).unwrap();
    let serde = string_serde();
    let start = driver.clock().now_ms();
    let pipe = |driver: &mut TopologyTestDriver, key: &str, value: &str, at: i64| {
        driver
            .pipe(
                "timer-input",
                &serde,
                &key.to_string(),
                &value.to_string(),
                at,
            )
            .unwrap();
        driver.run_until_idle().unwrap();
    };
    pipe(&mut driver, "late", "wall:5000", start);
    driver.advance_wall_clock(1_000).unwrap();
    assert!(driver.read_raw("timer-output").unwrap().is_empty());
    pipe(&mut driver, "early", "wall:500", start + 1_000);
    driver.advance_wall_clock(600).unwrap();
    let fired = driver.read("timer-output", &serde).unwrap();
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(fired[0].key, "early");
    assert_eq!(fired[0].value, format!("fired:wall:{}", start + 1_500));
    driver.advance_wall_clock(4_000).unwrap();
    let fired = driver.read("timer-output", &serde).unwrap();
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(fired[0].key, "late");
}

#[test]
fn rescheduling_a_timer_moves_it() {
    let mut driver = TopologyTestDriver::new(timer_topology(1)).unwrap();
    let serde = string_serde();
    let now = driver.clock().now_ms();
    driver
        .pipe(
            "timer-input",
            &serde,
            &"a".to_string(),
            &"wall:1000".to_string(),
            now,
        )
        .unwrap();
    driver
        .pipe(
            "timer-input",
            &serde,
            &"a".to_string(),
            &"wall:5000".to_string(),
            now,
        )
        .unwrap();
    driver.run_until_idle().unwrap();
    driver.advance_wall_clock(2_000).unwrap();
    assert!(driver.read_raw("timer-output").unwrap().is_empty());
    driver.advance_wall_clock(3_000).unwrap();
    assert_eq!(driver.read_raw("timer-output").unwrap().len(), 1);
}

/// Pipes (key, command) pairs to the timer topology at `now` and processes them.
fn pipe_timer_commands(driver: &mut TopologyTestDriver, commands: &[(&str, String)], now: i64) {
    for (key, command) in commands {
        driver
            .pipe(
                "timer-input",
                &string_serde(),
                &key.to_string(),
                command,
                now,
            )
            .unwrap();
    }
    driver.run_until_idle().unwrap();
}

/// Advances the wall clock a second at a time, collecting the (key, value) of every firing.
fn fired_over_seconds(driver: &mut TopologyTestDriver, seconds: usize) -> Vec<(String, String)> {
    let mut fired = Vec::new();
    for _ in 0..seconds {
        driver.advance_wall_clock(1_000).unwrap();
        fired.extend(
            driver
                .read("timer-output", &string_serde())
                .unwrap()
                .into_iter()
                .map(|record| (record.key, record.value)),
        );
    }
    fired
}

/// Scheduling and `cancel_timer_due` read no index, so a moved timer leaves its old queue
/// entry behind: it must never fire, whether the timer moved earlier or later, and a cancel
/// given the due time (even a wrong one) must cancel.
#[test]
fn timers_moved_or_cancelled_without_a_read_fire_only_where_they_are() {
    let mut driver = TopologyTestDriver::new(timer_topology(2)).unwrap();
    let now = driver.clock().now_ms();
    let commands = [
        ("earlier", "wall:5000".to_string()),
        ("earlier", "wall:1000".to_string()),
        ("later", "wall:1500".to_string()),
        ("later", "wall:4000".to_string()),
        ("exact", "wall:2000".to_string()),
        ("exact", format!("cancel-due:{}", now + 2_000)),
        ("wrong", "wall:3000".to_string()),
        ("wrong", format!("cancel-due:{}", now + 9_999)),
    ];
    pipe_timer_commands(&mut driver, &commands, now);
    let fired = fired_over_seconds(&mut driver, 12);
    assert_eq!(
        fired,
        vec![
            ("earlier".to_string(), format!("fired:wall:{}", now + 1_000)),
            ("later".to_string(), format!("fired:wall:{}", now + 4_000)),
        ]
    );
    // Stale entries are deleted when they come due; the stream-time hint stays.
    let stream_time_entries = 2;
    assert_eq!(driver.timer_entries().unwrap(), stream_time_entries);
}

/// A fixed timer is one entry named by its key and due time: it fires at that time, only a
/// cancel naming that time removes it, the indexed `cancel_timer` does not see it, and the
/// same key at two times is two timers.
#[test]
fn fixed_timers_are_one_entry_each_and_cancel_only_at_their_time() {
    let mut driver = TopologyTestDriver::new(timer_topology(1)).unwrap();
    let now = driver.clock().now_ms();
    let commands = [
        ("plain", "fixed:1000".to_string()),
        ("cancelled", "fixed:2000".to_string()),
        ("cancelled", format!("cancel-fixed:{}", now + 2_000)),
        ("wrong-time", "fixed:3000".to_string()),
        ("wrong-time", format!("cancel-fixed:{}", now + 9_999)),
        ("twice", "fixed:1500".to_string()),
        ("twice", "fixed:4000".to_string()),
        ("index-cancel", "fixed:2500".to_string()),
        ("index-cancel", "cancel".to_string()),
        // An indexed and a fixed timer of one key at one time are two timers.
        ("both", "wall:2000".to_string()),
        ("both", "fixed:2000".to_string()),
        ("both", "cancel".to_string()),
    ];
    let entries_before = driver.timer_entries().unwrap();
    pipe_timer_commands(&mut driver, &commands, now);
    let live_fixed_timers = 6;
    let entries_scheduled = driver.timer_entries().unwrap();
    let fired = fired_over_seconds(&mut driver, 10);
    assert_eq!(
        fired,
        vec![
            ("plain".to_string(), format!("fired:wall:{}", now + 1_000)),
            ("twice".to_string(), format!("fired:wall:{}", now + 1_500)),
            ("both".to_string(), format!("fired:wall:{}", now + 2_000)),
            (
                "index-cancel".to_string(),
                format!("fired:wall:{}", now + 2_500)
            ),
            (
                "wrong-time".to_string(),
                format!("fired:wall:{}", now + 3_000)
            ),
            ("twice".to_string(), format!("fired:wall:{}", now + 4_000)),
        ]
    );
    let entries_after = driver.timer_entries().unwrap();
    // One entry per live timer, none left once they fired (the stream-time hint aside).
    assert_eq!(entries_scheduled - entries_after, live_fixed_timers);
    assert!(
        entries_after <= entries_before + 1,
        "{entries_after} entries left"
    );
}

#[test]
fn a_callback_that_cancels_a_fixed_timer_due_in_the_same_batch_wins() {
    let mut driver = TopologyTestDriver::new(timer_topology(1)).unwrap();
    let now = driver.clock().now_ms();
    let commands = [
        ("fixed-canceller", "fixed:100".to_string()),
        ("fixed-victim", "fixed:200".to_string()),
    ];
    pipe_timer_commands(&mut driver, &commands, now);
    let fired = fired_over_seconds(&mut driver, 1);
    assert_eq!(
        fired,
        vec![(
            "fixed-canceller".to_string(),
            format!("fired:wall:{}", now + 100)
        )]
    );
}

#[test]
fn stream_time_timers_fire_in_due_order_as_stream_time_passes() {
    let mut driver = TopologyTestDriver::new(timer_topology(1)).unwrap();
    let serde = string_serde();
    for (key, due) in [("late", 300), ("early", 100), ("middle", 200)] {
        driver
            .pipe(
                "timer-input",
                &serde,
                &key.to_string(),
                &format!("stream:{due}"),
                10,
            )
            .unwrap();
    }
    driver.run_until_idle().unwrap();
    assert!(driver.read_raw("timer-output").unwrap().is_empty());
    // A record at timestamp 250 moves stream time past "early" and "middle", not "late".
    driver
        .pipe(
            "timer-input",
            &serde,
            &"tick".to_string(),
            &"stream:10000".to_string(),
            250,
        )
        .unwrap();
    driver.run_until_idle().unwrap();
    let fired: Vec<String> = driver
        .read("timer-output", &serde)
        .unwrap()
        .into_iter()
        .map(|record| record.key)
        .collect();
    assert_eq!(fired, vec!["early".to_string(), "middle".to_string()]);
    // Stream time is durable: after a crash it does not go back and refire anything.
    driver.crash().unwrap();
    driver
        .pipe(
            "timer-input",
            &serde,
            &"tick2".to_string(),
            &"stream:10000".to_string(),
            300,
        )
        .unwrap();
    driver.run_until_idle().unwrap();
    let fired: Vec<String> = driver
        .read("timer-output", &serde)
        .unwrap()
        .into_iter()
        .map(|record| record.key)
        .collect();
    assert_eq!(fired, vec!["late".to_string()]);
}

#[test]
fn a_timer_rolled_back_with_its_failed_record_never_fires() {
    let mut driver = TopologyTestDriver::new(timer_topology(1)).unwrap();
    let serde = string_serde();
    let now = driver.clock().now_ms();
    driver
        .pipe(
            "timer-input",
            &serde,
            &"a".to_string(),
            &"wall:100:fail".to_string(),
            now,
        )
        .unwrap();
    driver.run_until_idle().unwrap();
    driver.advance_wall_clock(1_000_000).unwrap();
    assert!(driver.read_raw("timer-output").unwrap().is_empty());
    assert_eq!(driver.read_raw("timer-input.dlq").unwrap().len(), 1);
}

#[test]
fn timers_of_different_sub_topologies_on_one_partition_stay_apart() {
    let mut driver = TopologyTestDriver::new(two_timer_sub_topologies(1)).unwrap();
    let serde = string_serde();
    driver
        .pipe(
            "left-in",
            &serde,
            &"l".to_string(),
            &"wall:1000".to_string(),
            1,
        )
        .unwrap();
    driver
        .pipe(
            "right-in",
            &serde,
            &"r".to_string(),
            &"wall:2000".to_string(),
            5,
        )
        .unwrap();
    driver
        .pipe(
            "left-in",
            &serde,
            &"ls".to_string(),
            &"stream:500".to_string(),
            1_000,
        )
        .unwrap();
    driver
        .pipe(
            "right-in",
            &serde,
            &"rs".to_string(),
            &"stream:50".to_string(),
            10,
        )
        .unwrap();
    driver.run_until_idle().unwrap();
    // Each sub-topology keeps its own stream time: left is at 1000, right at 10.
    let left: Vec<String> = driver
        .read("left-out", &serde)
        .unwrap()
        .into_iter()
        .map(|r| r.key)
        .collect();
    assert_eq!(left, vec!["ls".to_string()]);
    assert!(driver.read_raw("right-out").unwrap().is_empty());
    driver.crash().unwrap();
    driver.advance_wall_clock(5_000).unwrap();
    let left: Vec<String> = driver
        .read("left-out", &serde)
        .unwrap()
        .into_iter()
        .map(|r| r.key)
        .collect();
    let right: Vec<String> = driver
        .read("right-out", &serde)
        .unwrap()
        .into_iter()
        .map(|r| r.key)
        .collect();
    assert_eq!(left, vec!["l".to_string()]);
    assert_eq!(right, vec!["r".to_string()]);
}

#[test]
fn a_callback_that_cancels_a_timer_due_in_the_same_batch_wins() {
    let mut driver = TopologyTestDriver::new(timer_topology(1)).unwrap();
    let serde = string_serde();
    let now = driver.clock().now_ms();
    driver
        .pipe(
            "timer-input",
            &serde,
            &"canceller".to_string(),
            &"wall:100".to_string(),
            now,
        )
        .unwrap();
    driver
        .pipe(
            "timer-input",
            &serde,
            &"victim".to_string(),
            &"wall:200".to_string(),
            now,
        )
        .unwrap();
    driver.run_until_idle().unwrap();
    driver.advance_wall_clock(1_000).unwrap();
    let fired: Vec<String> = driver
        .read("timer-input".replace("input", "output").as_str(), &serde)
        .unwrap()
        .into_iter()
        .map(|record| record.key)
        .collect();
    assert_eq!(fired, vec!["canceller".to_string()]);
}
