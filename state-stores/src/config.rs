//! Storage configuration: where the database lives and how much memory it may use.

use serde::{Deserialize, Serialize};

/// Memory and durability settings of the storage engine. The defaults suit a 2-core machine with
/// little memory: a 32 MiB block cache and 8 MiB memtables.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default, rename_all = "kebab-case")]
pub struct StorageConfig {
    /// Block cache shared by every keyspace, in MiB.
    pub block_cache_mib: u64,
    /// Largest memtable of one keyspace before it is flushed to disk, in MiB.
    pub memtable_mib: u64,
    /// Journal size after which the oldest memtables are flushed, in MiB.
    pub max_journal_mib: u64,
    /// Background flush and compaction threads.
    pub worker_threads: usize,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            block_cache_mib: 32,
            memtable_mib: 8,
            max_journal_mib: 128,
            worker_threads: 1,
        }
    }
}

/// When a commit reaches the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Durability {
    /// The commit is in the journal's OS buffer: it survives a process crash, not a power loss.
    Buffered,
    /// The commit is fsynced before it returns: it survives a power loss.
    #[default]
    Fsync,
}
