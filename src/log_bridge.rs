//! fjall reports through the `log` crate, and some of what it reports matters to an operator:
//! its background worker logs the error it stops on (after which nothing is flushed or
//! compacted any more). This forwards `log` records of level warn and above into tracing, so
//! they reach the same output as everything else.

struct LogToTracing;

impl log::Log for LogToTracing {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Warn
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let source = record.target();
        let message = record.args();
        match record.level() {
            log::Level::Error => tracing::error!(source, "{message}"),
            _ => tracing::warn!(source, "{message}"),
        }
    }

    fn flush(&self) {}
}

static LOGGER: LogToTracing = LogToTracing;

/// Installs the bridge (once; later calls change nothing).
pub fn install() {
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Warn);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use log::Log;

    #[test]
    fn only_warnings_and_errors_pass() {
        let at = |level| log::Metadata::builder().level(level).build();
        assert!(LOGGER.enabled(&at(log::Level::Error)));
        assert!(LOGGER.enabled(&at(log::Level::Warn)));
        assert!(!LOGGER.enabled(&at(log::Level::Info)));
        assert!(!LOGGER.enabled(&at(log::Level::Trace)));
    }
}
