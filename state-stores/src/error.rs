//! The error type of the storage layer.

use std::path::PathBuf;

/// What went wrong in a store, with the store or keyspace it happened in.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("opening the fjall database at {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: fjall::Error,
    },
    #[error("the database at {path} is in use by another process (is `orderflow serve` running?)")]
    Locked { path: PathBuf },
    #[error("fjall I/O on keyspace `{space}`: {source}")]
    Io {
        space: String,
        #[source]
        source: fjall::Error,
    },
    #[error("committing a write batch of {writes} writes: {source}")]
    Commit {
        writes: usize,
        #[source]
        source: fjall::Error,
    },
    #[error("encoding a value for store `{store}`: {message}")]
    Encode { store: String, message: String },
    #[error("decoding a value from store `{store}` (key {key_hex}): {message}")]
    Decode {
        store: String,
        key_hex: String,
        message: String,
    },
    #[error("store `{store}` refuses an empty key: keys must have at least one byte")]
    EmptyKey { store: String },
    #[error("invalid store name `{name}`: {reason}")]
    InvalidName { name: String, reason: &'static str },
    #[error("corrupt checkpoint entry in `{space}`: {reason}")]
    CorruptCheckpoint { space: String, reason: String },
}

/// Hex of at most the first 32 bytes of a key, for error messages.
pub(crate) fn key_hex(key: &[u8]) -> String {
    let mut hex: String = key
        .iter()
        .take(32)
        .map(|byte| format!("{byte:02x}"))
        .collect();
    if key.len() > 32 {
        hex.push('…');
    }
    hex
}
