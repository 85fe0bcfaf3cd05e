//! `orderflow dlq`: dead letters, and sending them back once their cause is fixed.

use anyhow::{Context, bail};
use clap::Subcommand;
use orderflow_runtime::LogBackend;
use orderflow_runtime::dead_letter::{self, ERROR, SOURCE_OFFSET, STAGE};
use orderflow_schemas::topic::{dead_letter_source, dead_letter_topic_name};

use super::{open_embedded_log, printable};
use crate::config::Config;

/// The consumer group that remembers how far each dead-letter topic was replayed.
const REPLAY_GROUP: &str = "orderflow.dlq-replay";

#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// Dead-letter topics with their record counts and the latest errors.
    List {
        /// Errors to show per topic.
        #[arg(long, default_value_t = 3)]
        errors: usize,
    },
    /// Sends the dead letters of TOPIC (the source topic or its `.dlq`) back to the source topic,
    /// without the dead-letter headers. Each dead letter is replayed once: the replay position
    /// is committed with the replayed records.
    Replay { topic: String },
}

pub fn run(config: &Config, command: DlqCommand) -> anyhow::Result<()> {
    let log = open_embedded_log(config)?;
    match command {
        DlqCommand::List { errors } => {
            let mut any = false;
            for spec in log.topics() {
                if dead_letter_source(&spec.name).is_none() {
                    continue;
                }
                any = true;
                let mut total = 0;
                let mut latest = Vec::new();
                for partition in 0..spec.partitions {
                    let offsets = log.offsets(&spec.name, partition)?;
                    total += offsets.end - offsets.log_start;
                    let from = offsets.end.saturating_sub(errors as u64);
                    for stored in log.fetch(&spec.name, partition, from, errors)? {
                        latest.push((partition, stored));
                    }
                }
                let replayed: u64 = (0..spec.partitions)
                    .map(|partition| {
                        log.committed_position(REPLAY_GROUP, &spec.name, partition)
                            .map(|position| position.unwrap_or(0))
                    })
                    .sum::<Result<u64, _>>()?;
                println!("{}: {total} dead letters, {replayed} replayed", spec.name);
                latest.sort_by_key(|(_, stored)| std::cmp::Reverse(stored.record.timestamp));
                for (partition, stored) in latest.into_iter().take(errors) {
                    let headers = &stored.record.headers;
                    println!(
                        "  partition {partition} offset {} (source offset {}): {} error: {}",
                        stored.offset,
                        headers.get_str(SOURCE_OFFSET).unwrap_or("?"),
                        headers.get_str(STAGE).unwrap_or("?"),
                        headers.get(ERROR).map_or("?".to_string(), printable)
                    );
                }
            }
            if !any {
                println!("no dead-letter topics");
            }
        }
        DlqCommand::Replay { topic } => {
            let (source, dead_letters) = match dead_letter_source(&topic) {
                Some(source) => (source.to_string(), topic.clone()),
                None => (topic.clone(), dead_letter_topic_name(&topic)),
            };
            let source_spec = log
                .topic(&source)
                .with_context(|| format!("source topic `{source}` does not exist"))?;
            let Some(spec) = log.topic(&dead_letters) else {
                bail!("`{source}` has no dead-letter topic `{dead_letters}`");
            };
            let replayed = replay(&log, &spec.name, &source, source_spec.partitions)?;
            println!("replayed {replayed} dead letters from {dead_letters} to {source}");
        }
    }
    Ok(())
}

/// Replays every dead letter not replayed before; returns how many it sent.
pub fn replay(
    log: &orderflow_runtime::EmbeddedLog,
    dead_letter_topic: &str,
    source_topic: &str,
    source_partitions: u32,
) -> anyhow::Result<u64> {
    let spec = log
        .topic(dead_letter_topic)
        .with_context(|| format!("topic `{dead_letter_topic}` does not exist"))?;
    let mut replayed = 0;
    for partition in 0..spec.partitions {
        let mut position = log
            .committed_position(REPLAY_GROUP, dead_letter_topic, partition)?
            .unwrap_or(0);
        loop {
            let batch = log.fetch(dead_letter_topic, partition, position, 1_000)?;
            let Some(last) = batch.last() else {
                break;
            };
            let next_position = last.offset + 1;
            let outputs = batch
                .iter()
                .map(|stored| {
                    let original = dead_letter::original_record(&stored.record);
                    let target = stored
                        .record
                        .headers
                        .get_str(dead_letter::SOURCE_PARTITION)
                        .and_then(|value| value.parse::<u32>().ok())
                        .filter(|target| *target < source_partitions)
                        .unwrap_or(partition % source_partitions);
                    (source_topic.to_string(), target, original)
                })
                .collect::<Vec<_>>();
            replayed += outputs.len() as u64;
            log.commit(orderflow_runtime::log::LogTransaction {
                group: REPLAY_GROUP.to_string(),
                outputs,
                positions: vec![(dead_letter_topic.to_string(), partition, next_position)],
                state: Default::default(),
            })?;
            position = next_position;
        }
    }
    Ok(replayed)
}
