//! One module per subcommand.

pub mod bench;
pub mod counter;
pub mod demo;
pub mod dlq;
pub mod topics;
pub mod topology;

use std::sync::Arc;

use anyhow::Context;
use orderflow_runtime::EmbeddedLog;
use orderflow_state_stores::StorageEngine;

use crate::config::Config;

/// Opens the embedded database of the configuration's data directory.
pub fn open_embedded_log(config: &Config) -> anyhow::Result<Arc<EmbeddedLog>> {
    let engine = StorageEngine::open_fjall(&config.data_dir, &config.storage)
        .with_context(|| format!("opening the data directory {}", config.data_dir.display()))?;
    let log = EmbeddedLog::open(engine, config.runtime.durability)
        .context("recovering the embedded log")?;
    Ok(Arc::new(log))
}

/// Renders bytes as UTF-8 when they are, else as hex.
pub fn printable(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) if !text.chars().any(char::is_control) => text.to_string(),
        _ => bytes.iter().map(|byte| format!("{byte:02x}")).collect(),
    }
}
