//! State stores for orderflow.
//!
//! - [`engine`]: named keyspaces over fjall (durable) or memory, with atomic batches;
//! - [`transaction`]: a task's uncommitted writes, read-your-writes, with record savepoints;
//! - [`key_value`] and [`window`]: the typed store traits processors use;
//! - [`checkpoint`]: input positions committed with the state they produced;
//! - [`group_sync`]: group commit, one fsync for many concurrent commits;
//! - [`journal_sync`]: that fsync, without holding fjall's journal lock;
//! - [`codec`]: order-preserving key codecs and value codecs (JSON, compact binary).

pub mod checkpoint;
pub mod codec;
pub mod config;
pub mod engine;
pub mod error;
pub mod group_sync;
pub mod journal_sync;
pub mod key_value;
pub mod transaction;
pub mod window;

pub use checkpoint::{CheckpointEntry, Checkpoints};
pub use codec::{BytesCodec, Codec, CompactCodec, I64Codec, JsonCodec, StringCodec, U64Codec};
pub use config::{Durability, StorageConfig};
pub use engine::{Space, StorageEngine, StorageStats, WriteBatch};
pub use error::StoreError;
pub use key_value::{
    CommittedKeyValueStore, KeyValueStore, StoreCodecs, TransactionalKeyValueStore,
    prefix_upper_bound,
};
pub use transaction::{SpaceIndex, StoreTransaction};
pub use window::{TransactionalWindowStore, WindowRetention, WindowStore};
