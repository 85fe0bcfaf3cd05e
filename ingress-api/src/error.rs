//! Errors at the crate boundary (start-up and storage); request errors are [`crate::problem`].

/// A configuration value the API cannot start with.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {field}: {reason}")]
pub struct ConfigError {
    pub field: &'static str,
    pub reason: String,
}

/// What can stop the API from starting or serving.
#[derive(Debug, thiserror::Error)]
pub enum IngressError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("user database {url}: {source}")]
    Database {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("user database migration {version} ({name}): {source}")]
    Migration {
        version: i64,
        name: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("redis {url}: {source}")]
    Redis {
        url: String,
        #[source]
        source: redis::RedisError,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Runtime(#[from] orderflow_runtime::RuntimeError),
    #[error("the order intake: {what}: {reason}")]
    Intake { what: &'static str, reason: String },
}
