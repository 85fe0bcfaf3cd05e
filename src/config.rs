//! The `orderflow` configuration: a typed file plus `ORDERFLOW__` environment overrides.
//!
//! Sources, later ones winning: built-in defaults, the file given by `--config` (or the
//! `ORDERFLOW_CONFIG` variable), then variables such as `ORDERFLOW__RUNTIME__STREAM_THREADS=2`
//! (double underscores separate levels; single underscores become dashes). Unknown fields and
//! bad values stop start-up with a message naming the field.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use orderflow_runtime::RuntimeConfig;
use orderflow_state_stores::StorageConfig;
use serde::{Deserialize, Serialize};

use crate::platform_config::{DomainConfig, NotificationsConfig, PaymentsConfig};

/// Everything `orderflow` can be configured with. See `deploy/orderflow.example.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default, rename_all = "kebab-case")]
pub struct Config {
    /// Where the embedded database (topics, state, offsets) lives.
    pub data_dir: PathBuf,
    /// Log output.
    pub log: LogConfig,
    /// Stream threads, commits, failure handling.
    pub runtime: RuntimeConfig,
    /// Memory and threads of the storage engine.
    pub storage: StorageConfig,
    /// How often the embedded log applies retention and compaction, in milliseconds.
    pub maintenance_interval_ms: u64,
    /// The HTTP API.
    pub api: orderflow_ingress_api::ApiConfig,
    /// The order saga: pricing (tax rates by region, shipping), reservation TTL, deadlines.
    pub saga: orderflow_processors::order_saga::SagaConfig,
    /// The payment provider and the retries of a charge.
    pub payments: PaymentsConfig,
    /// How notifications are delivered.
    pub notifications: NotificationsConfig,
    /// Windowed analytics.
    pub analytics: orderflow_processors::analytics::AnalyticsConfig,
}

impl Config {
    /// The domain's sections together.
    pub fn domain(&self) -> DomainConfig {
        DomainConfig {
            saga: self.saga.clone(),
            payments: self.payments.clone(),
            notifications: self.notifications.clone(),
            analytics: self.analytics.clone(),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("orderflow-data"),
            log: LogConfig::default(),
            runtime: RuntimeConfig::default(),
            storage: StorageConfig::default(),
            maintenance_interval_ms: 60_000,
            api: orderflow_ingress_api::ApiConfig::default(),
            saga: Default::default(),
            payments: PaymentsConfig::default(),
            notifications: NotificationsConfig::default(),
            analytics: Default::default(),
        }
    }
}

/// Log settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default, rename_all = "kebab-case")]
pub struct LogConfig {
    /// A `tracing` filter such as `info` or `orderflow_runtime=debug,info`; `RUST_LOG` wins.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".to_string(),
        }
    }
}

const ENV_PREFIX: &str = "ORDERFLOW__";

/// Loads the configuration from an optional file and the given environment variables.
pub fn load(
    file: Option<&Path>,
    environment: impl IntoIterator<Item = (String, String)>,
) -> anyhow::Result<Config> {
    let mut tree = match file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading configuration file {}", path.display()))?;
            toml::from_str::<toml::Table>(&text)
                .with_context(|| format!("parsing configuration file {}", path.display()))?
        }
        None => toml::Table::new(),
    };
    for (name, raw_value) in environment {
        let Some(path) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let segments: Vec<String> = path
            .split("__")
            .map(|segment| segment.to_ascii_lowercase().replace('_', "-"))
            .collect();
        if segments.iter().any(String::is_empty) {
            bail!("environment variable {name}: empty path segment");
        }
        insert_override(&mut tree, &segments, parse_env_value(&raw_value))
            .with_context(|| format!("environment variable {name}"))?;
    }
    let config: Config =
        serde_path_to_error::deserialize(toml::Value::Table(tree)).map_err(|error| {
            let field = error.path().to_string();
            anyhow::anyhow!("invalid configuration: field `{field}`: {}", error.inner())
        })?;
    config
        .runtime
        .validate()
        .map_err(|error| anyhow::anyhow!("invalid configuration: runtime.{error}"))?;
    config
        .api
        .validate()
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    if config.storage.worker_threads == 0 {
        bail!("invalid configuration: field `storage.worker-threads`: must be at least 1");
    }
    config.domain().validate()?;
    Ok(config)
}

/// An environment value as TOML if it parses (numbers, booleans, arrays), else as a string.
fn parse_env_value(raw: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("value = {raw}"))
        .ok()
        .and_then(|mut table| table.remove("value"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()))
}

fn insert_override(
    tree: &mut toml::Table,
    segments: &[String],
    value: toml::Value,
) -> anyhow::Result<()> {
    let (last, parents) = segments.split_last().expect("at least one segment");
    let mut table = tree;
    for segment in parents {
        let entry = table
            .entry(segment.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let toml::Value::Table(next) = entry else {
            bail!("`{segment}` is a value, not a section");
        };
        table = next;
    }
    table.insert(last.clone(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example_path() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/orderflow.example.toml")
    }

    #[test]
    fn the_documented_example_parses_and_matches_the_defaults() {
        let config = load(Some(&example_path()), Vec::new()).unwrap();
        assert_eq!(config, Config::default());
    }

    #[test]
    fn environment_overrides_nested_fields() {
        let config = load(
            None,
            vec![
                (
                    "ORDERFLOW__RUNTIME__STREAM_THREADS".to_string(),
                    "3".to_string(),
                ),
                ("ORDERFLOW__DATA_DIR".to_string(), "/tmp/x".to_string()),
                (
                    "ORDERFLOW__RUNTIME__DURABILITY".to_string(),
                    "buffered".to_string(),
                ),
                ("UNRELATED".to_string(), "1".to_string()),
            ],
        )
        .unwrap();
        assert_eq!(config.runtime.stream_threads, 3);
        assert_eq!(config.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(
            config.runtime.durability,
            orderflow_state_stores::Durability::Buffered
        );
    }

    #[test]
    fn unknown_fields_are_refused_by_name() {
        let error = load(
            None,
            vec![(
                "ORDERFLOW__RUNTIME__STREAM_THRADS".to_string(),
                "3".to_string(),
            )],
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("runtime"), "{error}");
        assert!(error.contains("stream-thrads"), "{error}");
    }

    #[test]
    fn bad_values_name_the_field() {
        let error = load(
            None,
            vec![(
                "ORDERFLOW__RUNTIME__COMMIT_INTERVAL_MS".to_string(),
                "soon".to_string(),
            )],
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("runtime.commit-interval-ms"), "{error}");

        let error = load(
            None,
            vec![(
                "ORDERFLOW__RUNTIME__COMMIT_INTERVAL_MS".to_string(),
                "0".to_string(),
            )],
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("commit-interval-ms"), "{error}");

        for (variable, value, field) in [
            (
                "ORDERFLOW__RUNTIME__SYNC_SPACING_US",
                "1000000",
                "sync-spacing-us",
            ),
            (
                "ORDERFLOW__RUNTIME__EFFECT_BATCH_RECORDS",
                "0",
                "effect-batch-records",
            ),
            (
                "ORDERFLOW__API__AUTH__ARGON2_ITERATIONS",
                "0",
                "api.auth.argon2-iterations",
            ),
            (
                "ORDERFLOW__API__AUTH__REFRESH_TOKEN_TTL_SECONDS",
                "0",
                "api.auth.refresh-token-ttl-seconds",
            ),
            (
                "ORDERFLOW__API__DEFAULT_PAGE_SIZE",
                "0",
                "api.default-page-size",
            ),
            ("ORDERFLOW__API__MAX_PAGE_SIZE", "500", "api.max-page-size"),
            (
                "ORDERFLOW__API__MAX_WAIT_SECONDS",
                "60",
                "api.max-wait-seconds",
            ),
        ] {
            let error = load(None, vec![(variable.to_string(), value.to_string())])
                .unwrap_err()
                .to_string();
            assert!(error.contains(field), "{variable}={value}: {error}");
        }
    }
}
