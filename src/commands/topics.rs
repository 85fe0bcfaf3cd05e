//! `orderflow topics`: list, describe and tail topics of the embedded log.

use std::time::Duration;

use anyhow::{Context, bail};
use clap::Subcommand;
use orderflow_runtime::{LogBackend, StoredRecord};

use super::{open_embedded_log, printable};
use crate::config::Config;

#[derive(Debug, Subcommand)]
pub enum TopicsCommand {
    /// Every topic with its partitions, cleanup policy and record count.
    List,
    /// Partitions, offsets, and each consumer group's position and lag.
    Describe { topic: String },
    /// Prints records with their headers, decoded where they are text.
    Tail {
        topic: String,
        /// Only this partition.
        #[arg(long)]
        partition: Option<u32>,
        /// Start at this offset (default: the last `--last` records of each partition).
        #[arg(long)]
        offset: Option<u64>,
        /// How many records per partition to show from the end, when `--offset` is not given.
        #[arg(long, default_value_t = 10)]
        last: u64,
        /// Keep printing new records as they arrive.
        #[arg(long, short)]
        follow: bool,
    },
}

pub fn run(config: &Config, command: TopicsCommand) -> anyhow::Result<()> {
    let log = open_embedded_log(config)?;
    match command {
        TopicsCommand::List => {
            println!(
                "{:<40} {:>10} {:>8} {:>12}",
                "TOPIC", "PARTITIONS", "CLEANUP", "RECORDS"
            );
            for spec in log.topics() {
                let records = super::topic_counts(log.as_ref(), &spec.name)?.retained;
                let cleanup = match spec.cleanup {
                    orderflow_schemas::topic::CleanupPolicy::Delete => "delete",
                    orderflow_schemas::topic::CleanupPolicy::Compact => "compact",
                };
                println!(
                    "{:<40} {:>10} {:>8} {:>12}",
                    spec.name, spec.partitions, cleanup, records
                );
            }
        }
        TopicsCommand::Describe { topic } => {
            let spec = log
                .topic(&topic)
                .with_context(|| format!("topic `{topic}` does not exist"))?;
            println!(
                "topic {}: {} partitions, cleanup {:?}, retention {}",
                spec.name,
                spec.partitions,
                spec.cleanup,
                spec.retention_ms
                    .map_or("forever".to_string(), |ms| format!("{ms} ms"))
            );
            println!("{:>9} {:>12} {:>12}", "PARTITION", "LOG-START", "END");
            for partition in 0..spec.partitions {
                let offsets = log.offsets(&topic, partition)?;
                println!(
                    "{partition:>9} {:>12} {:>12}",
                    offsets.log_start, offsets.end
                );
            }
            let positions: Vec<_> = log
                .group_positions()?
                .into_iter()
                .filter(|entry| entry.topic == topic)
                .collect();
            if positions.is_empty() {
                println!("no consumer group has committed a position on this topic");
            } else {
                println!(
                    "{:<24} {:>9} {:>12} {:>10}",
                    "GROUP", "PARTITION", "POSITION", "LAG"
                );
                for entry in positions {
                    let end = log.offsets(&topic, entry.partition)?.end;
                    println!(
                        "{:<24} {:>9} {:>12} {:>10}",
                        entry.group,
                        entry.partition,
                        entry.next_offset,
                        end.saturating_sub(entry.next_offset)
                    );
                }
            }
        }
        TopicsCommand::Tail {
            topic,
            partition,
            offset,
            last,
            follow,
        } => {
            let spec = log
                .topic(&topic)
                .with_context(|| format!("topic `{topic}` does not exist"))?;
            let partitions: Vec<u32> = match partition {
                Some(partition) if partition >= spec.partitions => {
                    bail!("topic `{topic}` has {} partitions", spec.partitions)
                }
                Some(partition) => vec![partition],
                None => (0..spec.partitions).collect(),
            };
            let mut positions = Vec::new();
            for partition in &partitions {
                let offsets = log.offsets(&topic, *partition)?;
                positions.push(
                    offset.unwrap_or(offsets.end.saturating_sub(last).max(offsets.log_start)),
                );
            }
            loop {
                let generation = log.generation();
                for (partition, position) in partitions.iter().zip(positions.iter_mut()) {
                    loop {
                        let records = log.fetch(&topic, *partition, *position, 1_000)?;
                        let Some(last_record) = records.last() else {
                            break;
                        };
                        *position = last_record.offset + 1;
                        for record in &records {
                            print_record(*partition, record);
                        }
                    }
                }
                if !follow {
                    return Ok(());
                }
                // The embedded database belongs to this process while it is open, so "follow"
                // sees records produced by this process's own tools only; it polls regardless.
                log.wait_for_records(generation, Duration::from_millis(500));
            }
        }
    }
    Ok(())
}

fn print_record(partition: u32, stored: &StoredRecord) {
    let record = &stored.record;
    let key = record.key.as_deref().map_or("null".to_string(), printable);
    let value = record
        .value
        .as_deref()
        .map_or("null".to_string(), printable);
    let mut line = format!(
        "partition={partition} offset={} timestamp={} key={key} value={value}",
        stored.offset, record.timestamp
    );
    for (name, header) in record.headers.iter() {
        line.push_str(&format!(" header.{name}={}", printable(header)));
    }
    println!("{line}");
}
