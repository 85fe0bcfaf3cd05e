//! Exports: effect handlers that write records outside the platform (never called by a
//! processor; the runtime's side thread runs them, at least once, in order per partition).

use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

use orderflow_runtime::{EffectHandler, LogRecord};

/// Writes each record's value as one line of JSON-lines files in a directory, starting a new
/// file when the current one reaches `max_file_bytes` (`<prefix>-<n>.jsonl`, n from 1).
///
/// Delivery is at least once: after a crash the last records before the crash may be written
/// again; every record carries its event id for consumers that deduplicate.
#[derive(Debug)]
pub struct JsonLinesExport {
    directory: PathBuf,
    prefix: String,
    max_file_bytes: u64,
    current: Mutex<Option<(u32, std::fs::File, u64)>>,
}

impl JsonLinesExport {
    pub fn new(directory: PathBuf, prefix: &str, max_file_bytes: u64) -> Self {
        Self {
            directory,
            prefix: prefix.to_string(),
            max_file_bytes: max_file_bytes.max(1),
            current: Mutex::new(None),
        }
    }

    fn path(&self, number: u32) -> PathBuf {
        self.directory
            .join(format!("{}-{number:06}.jsonl", self.prefix))
    }

    /// The highest file number present, or 0.
    fn last_file_number(&self) -> u32 {
        std::fs::read_dir(&self.directory)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name().into_string().ok()?;
                name.strip_prefix(&format!("{}-", self.prefix))?
                    .strip_suffix(".jsonl")?
                    .parse::<u32>()
                    .ok()
            })
            .max()
            .unwrap_or(0)
    }

    fn write_line(&self, line: &[u8]) -> std::io::Result<()> {
        let mut current = self.current.lock().expect("export lock poisoned");
        if current.is_none() {
            std::fs::create_dir_all(&self.directory)?;
            let number = self.last_file_number().max(1);
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.path(number))?;
            let size = file.metadata()?.len();
            *current = Some((number, file, size));
        }
        let (number, file, size) = current.as_mut().expect("opened above");
        if *size > 0 && *size + line.len() as u64 + 1 > self.max_file_bytes {
            *number += 1;
            *file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.path(*number))?;
            *size = 0;
        }
        file.write_all(line)?;
        file.write_all(b"\n")?;
        *size += line.len() as u64 + 1;
        Ok(())
    }
}

impl EffectHandler for JsonLinesExport {
    fn execute(&self, record: &LogRecord) -> Result<Option<LogRecord>, String> {
        let Some(value) = record.value.as_deref() else {
            return Ok(None); // tombstones carry nothing to export
        };
        if value.contains(&b'\n') {
            return Err(
                "the value spans several lines; JSON-lines needs one line per record".to_string(),
            );
        }
        self.write_line(value)
            .map_err(|error| format!("writing to {}: {error}", self.directory.display()))?;
        Ok(None)
    }
}
