//! Exports: effect handlers that write records outside the platform (never called by a
//! processor; the runtime's side thread runs them, at least once, in order per partition).

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Mutex;

use orderflow_runtime::{EffectHandler, LogRecord};

/// Writes each record's value as one line of JSON-lines files in a directory, starting a new
/// file when the current one reaches `max_file_bytes` (`<prefix>-<n>.jsonl`, n from 1).
///
/// Delivery is at least once: lines are written as they come and fsynced once per batch, in
/// [`EffectHandler::flush`], before the executor commits past the batch's records (a file
/// left for the next is fsynced first), so after a crash the last records may be written again
/// (every record carries its event id for consumers that deduplicate). An fsync per line
/// was a tenth of the platform's CPU and held up the payment effects on the same thread. A line torn by a crash is closed with a newline
/// when the file is reopened, so it never swallows the next record; readers skip lines that do
/// not parse.
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

    fn open_file(&self, number: u32) -> std::io::Result<(std::fs::File, u64)> {
        use std::io::{Read, Seek, SeekFrom};
        let path = self.path(number);
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)?;
        let mut size = file.metadata()?.len();
        if size > 0 {
            let mut last = [0u8; 1];
            file.seek(SeekFrom::Start(size - 1))?;
            file.read_exact(&mut last)?;
            if last[0] != b'\n' {
                file.write_all(b"\n")?;
                size += 1;
            }
        }
        Ok((file, size))
    }

    fn write_line(&self, value: &[u8]) -> std::io::Result<()> {
        let mut current = self.current.lock().expect("export lock poisoned");
        if current.is_none() {
            std::fs::create_dir_all(&self.directory)?;
            let number = self.last_file_number().max(1);
            let (file, size) = self.open_file(number)?;
            *current = Some((number, file, size));
        }
        let (number, file, size) = current.as_mut().expect("opened above");
        let mut line = Vec::with_capacity(value.len() + 1);
        line.extend_from_slice(value);
        line.push(b'\n');
        if *size > 0 && *size + line.len() as u64 > self.max_file_bytes {
            // The batch's flush syncs only the current file: the one left behind first.
            file.sync_data()?;
            *number += 1;
            let (next, next_size) = self.open_file(*number)?;
            *file = next;
            *size = next_size;
        }
        file.write_all(&line)?;
        *size += line.len() as u64;
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
        // A full disk or a flaky mount may pass: try a few times before dead-lettering the
        // record (from where `orderflow dlq replay` sends it back once the cause is fixed).
        let mut attempt: u64 = 0;
        loop {
            attempt += 1;
            match self.write_line(value) {
                Ok(()) => return Ok(None),
                Err(error) if attempt < 3 => {
                    tracing::warn!(directory = %self.directory.display(), error = %error, attempt, "export write failed; retrying");
                    *self.current.lock().expect("export lock poisoned") = None;
                    std::thread::sleep(std::time::Duration::from_millis(100 * attempt));
                }
                Err(error) => {
                    return Err(format!("writing to {}: {error}", self.directory.display()));
                }
            }
        }
    }

    fn flush(&self) -> Result<(), String> {
        let mut current = self.current.lock().expect("export lock poisoned");
        let Some((_, file, _)) = current.as_mut() else {
            return Ok(());
        };
        file.sync_data().map_err(|error| {
            // Reopened next time: after a failed fsync the file's state is unknown.
            let message = format!("syncing {}: {error}", self.directory.display());
            *current = None;
            message
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_torn_last_line_is_closed_before_the_next_record() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("events-000001.jsonl");
        std::fs::write(&path, b"{\"complete\":1}\n{\"torn\":").unwrap();
        let export = JsonLinesExport::new(directory.path().to_path_buf(), "events", 1 << 20);
        let record = LogRecord::new(None, Some(b"{\"next\":2}".to_vec()), 0);
        assert_eq!(export.execute(&record), Ok(None));
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, "{\"complete\":1}\n{\"torn\":\n{\"next\":2}\n");
    }

    #[test]
    fn files_rotate_at_the_size_limit() {
        let directory = tempfile::tempdir().unwrap();
        let export = JsonLinesExport::new(directory.path().to_path_buf(), "events", 20);
        assert_eq!(
            export.flush(),
            Ok(()),
            "nothing written yet: nothing to sync"
        );
        for index in 0..5 {
            let record = LogRecord::new(None, Some(format!("{{\"n\":{index}}}").into_bytes()), 0);
            export.execute(&record).unwrap();
        }
        assert_eq!(export.flush(), Ok(()));
        let mut names: Vec<String> = std::fs::read_dir(directory.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert!(names.len() >= 2, "{names:?}");
        let lines: usize = names
            .iter()
            .map(|name| {
                std::fs::read_to_string(directory.path().join(name))
                    .unwrap()
                    .lines()
                    .count()
            })
            .sum();
        assert_eq!(lines, 5);
    }
}
