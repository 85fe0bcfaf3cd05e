//! One module per subcommand.

pub mod bench;
pub mod counter;
pub mod demo;
pub mod dlq;
pub mod loadgen;
pub mod platform;
pub mod saga;
pub mod topics;
pub mod topology;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use orderflow_runtime::EmbeddedLog;
use orderflow_state_stores::StorageEngine;

use crate::config::Config;

/// The progress bar every long-running command shows: a label, the bar, the count, the rate and
/// the time left.
pub fn progress_bar(
    length: u64,
    message: impl Into<std::borrow::Cow<'static, str>>,
) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(length);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg:>24} [{bar:40}] {pos}/{len} ({per_sec}, {eta} left)",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    bar.set_message(message);
    bar
}

/// Opens the embedded database of the configuration's data directory.
pub fn open_embedded_log(config: &Config) -> anyhow::Result<Arc<EmbeddedLog>> {
    let engine = StorageEngine::open_fjall(&config.data_dir, &config.storage)
        .with_context(|| format!("opening the data directory {}", config.data_dir.display()))?;
    let log = embedded_log_on(engine, config).context("recovering the embedded log")?;
    Ok(Arc::new(log))
}

/// The embedded log in `engine`, with the configuration's durability and sync spacing.
pub fn embedded_log_on(
    engine: StorageEngine,
    config: &Config,
) -> Result<EmbeddedLog, orderflow_runtime::LogError> {
    EmbeddedLog::open_with_sync_spacing(
        engine,
        config.runtime.durability,
        Duration::from_micros(config.runtime.sync_spacing_us),
    )
}

/// A flag that SIGINT (Ctrl-C) and SIGTERM set, so long-running commands can shut down
/// gracefully: commit in-flight work, flush, and report.
pub fn shutdown_on_signal() -> anyhow::Result<Arc<std::sync::atomic::AtomicBool>> {
    let flag = Arc::new(std::sync::atomic::AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, flag.clone())
            .with_context(|| format!("installing the handler of signal {signal}"))?;
    }
    Ok(flag)
}

/// How many records a topic ever got, and how many it still holds (retention and compaction
/// remove some).
#[derive(Debug, Clone, Copy, Default)]
pub struct TopicCounts {
    pub appended: u64,
    pub retained: u64,
}

/// Sums a topic's partitions; an unknown topic is an error naming it.
pub fn topic_counts(
    log: &dyn orderflow_runtime::LogBackend,
    topic: &str,
) -> anyhow::Result<TopicCounts> {
    let spec = log
        .topic(topic)
        .with_context(|| format!("topic `{topic}` does not exist"))?;
    let mut counts = TopicCounts::default();
    for partition in 0..spec.partitions {
        let offsets = log.offsets(topic, partition)?;
        counts.appended += offsets.end;
        counts.retained += offsets.end - offsets.log_start;
    }
    Ok(counts)
}

/// Renders bytes as UTF-8 when they are, else as hex.
pub fn printable(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) if !text.chars().any(char::is_control) => text.to_string(),
        _ => bytes.iter().map(|byte| format!("{byte:02x}")).collect(),
    }
}

/// Runs retention and compaction every `interval_ms` until `stop` is set. Its own thread,
/// because a pass scans whole partitions.
pub fn spawn_maintenance(
    log: Arc<EmbeddedLog>,
    interval_ms: u64,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<()> {
    use orderflow_runtime::Clock;
    std::thread::spawn(move || {
        let interval = std::time::Duration::from_millis(interval_ms.max(1));
        let tick = std::time::Duration::from_millis(interval_ms.clamp(1, 100));
        let mut last_run = std::time::Instant::now();
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            std::thread::sleep(tick);
            if last_run.elapsed() < interval {
                continue;
            }
            last_run = std::time::Instant::now();
            match log.run_maintenance(orderflow_runtime::SystemClock.now_ms()) {
                Ok(report) if report.expired_records + report.compacted_records > 0 => {
                    tracing::info!(
                        expired = report.expired_records,
                        compacted = report.compacted_records,
                        "log maintenance"
                    );
                }
                Ok(_) => {}
                Err(error) => tracing::error!(error = %error, "log maintenance failed"),
            }
        }
    })
}
