//! The storage engine: named keyspaces of ordered bytes and atomic multi-keyspace batches.
//!
//! Everything durable in embedded mode (topic logs, consumer positions, state stores, timers)
//! lives in one engine, so one [`WriteBatch`] can commit a task's outputs, state changes, timers
//! and input positions together: that single atomic write is the embedded exactly-once guarantee.
//! Two engines share this interface: fjall (durable, the default) and memory (tests, benchmarks).

use std::collections::{BTreeMap, HashMap};
use std::ops::{Bound, ControlFlow};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use crate::config::{Durability, StorageConfig};
use crate::error::StoreError;
use crate::group_sync::GroupSync;
use crate::journal_sync::JournalSync;

/// Called for each entry of a scan, in key order; `Break` stops the scan.
pub type ScanVisitor<'a> = dyn FnMut(&[u8], &[u8]) -> ControlFlow<()> + 'a;

/// A key and its value.
pub type Entry = (Vec<u8>, Vec<u8>);

/// A handle to one keyspace of an engine. Cheap to clone.
#[derive(Clone)]
pub struct Space {
    name: Arc<str>,
    handle: SpaceHandle,
}

/// How a keyspace is read, which decides whether its tables carry bloom filters.
#[derive(Debug, Clone, Copy)]
enum SpaceReads {
    PointAndScan,
    ScanOnly,
}

#[derive(Clone)]
enum SpaceHandle {
    /// The keyspace, and the bytes written to it since the engine last rotated its memtable
    /// (shared by every handle of the keyspace; see [`MemtableRotation`]).
    Fjall(fjall::Keyspace, Arc<AtomicU64>),
    Memory,
}

/// Why the engine rotates full memtables itself.
///
/// fjall rotates a full memtable on its worker thread: every commit that finds the active
/// memtable over its size sends the worker a rotation request (`try_send` on a mailbox of
/// 1,000), and the worker, once it rotates, sends itself a flush with a *blocking* send on the
/// same mailbox. When commits outpace the worker (it is flushing or compacting), the mailbox
/// fills with duplicate rotation requests, the worker blocks on its own send, and from then on
/// nothing is rotated or flushed while memtables grow without bound (fjall-rs/fjall#323; the
/// saga's resident memory reached 4.6 GiB in a minute at 4,000 orders/s). So the engine counts
/// what it writes to each keyspace, in fjall's own measure (key + value + a per-entry
/// overhead at least fjall's), and rotates the memtable itself, on the committing thread, at
/// seven eighths of the size: fjall never sees a memtable over its size, never queues a
/// request, and the worker's mailbox carries one flush per rotation. fjall still halts a
/// keyspace's writers at four sealed memtables, which bounds memory when flushes fall behind.
struct MemtableRotation;

impl MemtableRotation {
    /// Per-entry bytes fjall adds to key and value when it sizes a memtable (the size of its
    /// internal value), rounded up.
    const ENTRY_OVERHEAD: u64 = 64;

    fn entry_bytes(key: &[u8], value: Option<&[u8]>) -> u64 {
        (key.len() + value.map_or(0, <[u8]>::len)) as u64 + Self::ENTRY_OVERHEAD
    }

    fn threshold(memtable_bytes: u64) -> u64 {
        memtable_bytes - memtable_bytes / 8
    }
}

impl std::fmt::Debug for Space {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_tuple("Space").field(&self.name).finish()
    }
}

impl Space {
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Writes to apply atomically: all of them become visible and durable together, or none do.
#[derive(Debug, Default)]
pub struct WriteBatch {
    writes: Vec<(Space, Vec<u8>, Option<Vec<u8>>)>,
}

impl WriteBatch {
    pub fn new() -> Self {
        Self::default()
    }

    /// A batch with room for `writes` writes before it grows.
    pub fn with_capacity(writes: usize) -> Self {
        Self {
            writes: Vec::with_capacity(writes),
        }
    }

    pub fn put(&mut self, space: &Space, key: Vec<u8>, value: Vec<u8>) {
        self.writes.push((space.clone(), key, Some(value)));
    }

    pub fn delete(&mut self, space: &Space, key: Vec<u8>) {
        self.writes.push((space.clone(), key, None));
    }

    /// `Some(value)` puts, `None` deletes.
    pub fn write(&mut self, space: &Space, key: Vec<u8>, value: Option<Vec<u8>>) {
        self.writes.push((space.clone(), key, value));
    }

    /// Makes room for `additional` more writes at once.
    pub fn reserve(&mut self, additional: usize) {
        self.writes.reserve(additional);
    }

    pub fn len(&self) -> usize {
        self.writes.len()
    }

    /// Moves every write of `other` to the end of this batch (committing both as one).
    pub fn append(&mut self, mut other: WriteBatch) {
        // Taking the other's vector saves a copy, unless this one was sized for both.
        if self.writes.is_empty() && self.writes.capacity() < other.writes.len() {
            self.writes = other.writes;
        } else {
            self.writes.append(&mut other.writes);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }
}

type MemorySpaces = HashMap<Arc<str>, BTreeMap<Vec<u8>, Vec<u8>>>;

/// An engine: fjall on disk or ordered maps in memory. Cheap to clone; clones share the data.
#[derive(Clone)]
pub struct StorageEngine {
    inner: EngineInner,
}

#[derive(Clone)]
enum EngineInner {
    Fjall {
        database: fjall::Database,
        path: PathBuf,
        memtable_bytes: u64,
        /// Bytes written per keyspace since its memtable was last rotated (see
        /// [`MemtableRotation`]).
        memtable_fill: Arc<Mutex<HashMap<Arc<str>, Arc<AtomicU64>>>>,
        group_sync: Arc<GroupSync>,
        journal_sync: Arc<JournalSync>,
    },
    Memory(Arc<RwLock<MemorySpaces>>),
}

impl std::fmt::Debug for StorageEngine {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.inner {
            EngineInner::Fjall { path, .. } => write!(formatter, "StorageEngine::Fjall({path:?})"),
            EngineInner::Memory(_) => write!(formatter, "StorageEngine::Memory"),
        }
    }
}

/// What the storage engine holds in memory and has queued, for operators (`/metrics`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StorageStats {
    /// Bytes in memtables, active and sealed, over every keyspace.
    pub write_buffer_bytes: u64,
    /// Sealed memtables waiting for the flush worker.
    pub queued_flushes: usize,
    /// Journal files not yet released (their memtables are not all flushed).
    pub journal_files: usize,
    /// Compactions running now.
    pub active_compactions: usize,
    /// Bytes in the block cache.
    pub block_cache_bytes: u64,
}

impl StorageEngine {
    /// Opens (or creates) a fjall database in `path`.
    pub fn open_fjall(path: &Path, config: &StorageConfig) -> Result<Self, StoreError> {
        let open_error = |source| match source {
            fjall::Error::Locked => StoreError::Locked {
                path: path.to_path_buf(),
            },
            source => StoreError::Open {
                path: path.to_path_buf(),
                source,
            },
        };
        std::fs::create_dir_all(path).map_err(|error| open_error(fjall::Error::from(error)))?;
        let database = fjall::Database::builder(path)
            .cache_size(config.block_cache_mib * 1024 * 1024)
            .max_journaling_size(config.max_journal_mib.max(64) * 1024 * 1024)
            .worker_threads(config.worker_threads.max(1))
            // The runtime decides when a commit is persisted (Durability), not fjall.
            .manual_journal_persist(true)
            .open()
            .map_err(open_error)?;
        Ok(Self {
            inner: EngineInner::Fjall {
                database,
                path: path.to_path_buf(),
                memtable_bytes: config.memtable_mib.max(1) * 1024 * 1024,
                memtable_fill: Arc::default(),
                group_sync: Arc::default(),
                journal_sync: Arc::new(JournalSync::new(path)),
            },
        })
    }

    /// A fresh engine in memory. Clones share it, so a "restart" can reopen the same data.
    pub fn in_memory() -> Self {
        Self {
            inner: EngineInner::Memory(Arc::default()),
        }
    }

    pub fn is_durable(&self) -> bool {
        matches!(self.inner, EngineInner::Fjall { .. })
    }

    /// Opens a keyspace, creating it if needed.
    pub fn space(&self, name: &str) -> Result<Space, StoreError> {
        self.open_space(name, SpaceReads::PointAndScan)
    }

    /// Opens a keyspace that is only ever scanned, never read by key (a log's records), creating
    /// it if needed. Its tables get no bloom filters: a filter only answers point reads, and
    /// building one costs hashing every key at each flush and compaction. (Fixed when the
    /// keyspace is created; opening an existing keyspace keeps what it was created with.)
    pub fn scan_only_space(&self, name: &str) -> Result<Space, StoreError> {
        self.open_space(name, SpaceReads::ScanOnly)
    }

    fn open_space(&self, name: &str, reads: SpaceReads) -> Result<Space, StoreError> {
        if name.is_empty() || name.len() > 255 {
            return Err(StoreError::InvalidName {
                name: name.to_string(),
                reason: "keyspace names are 1 to 255 bytes",
            });
        }
        let handle = match &self.inner {
            EngineInner::Fjall {
                database,
                memtable_bytes,
                memtable_fill,
                ..
            } => {
                let memtable_bytes = *memtable_bytes;
                let keyspace = database
                    .keyspace(name, || {
                        let options = fjall::KeyspaceCreateOptions::default()
                            .max_memtable_size(memtable_bytes);
                        match reads {
                            SpaceReads::PointAndScan => options,
                            SpaceReads::ScanOnly => {
                                options.filter_policy(fjall::config::FilterPolicy::disabled())
                            }
                        }
                    })
                    .map_err(|source| StoreError::Io {
                        space: name.to_string(),
                        source,
                    })?;
                let fill = memtable_fill
                    .lock()
                    .expect("memtable fill lock poisoned")
                    .entry(Arc::from(name))
                    .or_default()
                    .clone();
                SpaceHandle::Fjall(keyspace, fill)
            }
            EngineInner::Memory(spaces) => {
                let mut spaces = spaces.write().expect("memory engine lock poisoned");
                spaces.entry(Arc::from(name)).or_default();
                SpaceHandle::Memory
            }
        };
        Ok(Space {
            name: Arc::from(name),
            handle,
        })
    }

    /// Names of every keyspace that exists.
    pub fn space_names(&self) -> Vec<String> {
        match &self.inner {
            EngineInner::Fjall { database, .. } => database
                .list_keyspace_names()
                .into_iter()
                .map(|name| name.to_string())
                .collect(),
            EngineInner::Memory(spaces) => spaces
                .read()
                .expect("memory engine lock poisoned")
                .keys()
                .map(|name| name.to_string())
                .collect(),
        }
    }

    pub fn get(&self, space: &Space, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        match (&self.inner, &space.handle) {
            (_, SpaceHandle::Fjall(keyspace, _)) => keyspace
                .get(key)
                .map(|value| value.map(|slice| slice.to_vec()))
                .map_err(|source| io_error(space, source)),
            (EngineInner::Memory(spaces), SpaceHandle::Memory) => Ok(spaces
                .read()
                .expect("memory engine lock poisoned")
                .get(&space.name)
                .and_then(|map| map.get(key).cloned())),
            (EngineInner::Fjall { .. }, SpaceHandle::Memory) => unreachable_mix(),
        }
    }

    /// Visits the entries of `space` within the bounds in key order (reverse order if `reverse`),
    /// until the visitor breaks.
    pub fn scan(
        &self,
        space: &Space,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        reverse: bool,
        visitor: &mut ScanVisitor<'_>,
    ) -> Result<(), StoreError> {
        if bounds_are_empty(lower, upper) {
            return Ok(());
        }
        match (&self.inner, &space.handle) {
            (_, SpaceHandle::Fjall(keyspace, _)) => {
                let iterator = keyspace.range::<&[u8], _>((lower, upper));
                let mut visit = |guard: fjall::Guard| -> Result<ControlFlow<()>, StoreError> {
                    let (key, value) = guard
                        .into_inner()
                        .map_err(|source| io_error(space, source))?;
                    Ok(visitor(&key, &value))
                };
                if reverse {
                    for guard in iterator.rev() {
                        if visit(guard)?.is_break() {
                            break;
                        }
                    }
                } else {
                    for guard in iterator {
                        if visit(guard)?.is_break() {
                            break;
                        }
                    }
                }
                Ok(())
            }
            (EngineInner::Memory(spaces), SpaceHandle::Memory) => {
                let spaces = spaces.read().expect("memory engine lock poisoned");
                let Some(map) = spaces.get(&space.name) else {
                    return Ok(());
                };
                let range = map.range::<[u8], _>((lower, upper));
                if reverse {
                    for (key, value) in range.rev() {
                        if visitor(key, value).is_break() {
                            break;
                        }
                    }
                } else {
                    for (key, value) in range {
                        if visitor(key, value).is_break() {
                            break;
                        }
                    }
                }
                Ok(())
            }
            (EngineInner::Fjall { .. }, SpaceHandle::Memory) => unreachable_mix(),
        }
    }

    /// The first entry at or after `lower` and before `upper`.
    pub fn first_in(
        &self,
        space: &Space,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
    ) -> Result<Option<Entry>, StoreError> {
        let mut found = None;
        self.scan(space, lower, upper, false, &mut |key, value| {
            found = Some((key.to_vec(), value.to_vec()));
            ControlFlow::Break(())
        })?;
        Ok(found)
    }

    /// The last entry within the bounds.
    pub fn last_in(
        &self,
        space: &Space,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
    ) -> Result<Option<Entry>, StoreError> {
        let mut found = None;
        self.scan(space, lower, upper, true, &mut |key, value| {
            found = Some((key.to_vec(), value.to_vec()));
            ControlFlow::Break(())
        })?;
        Ok(found)
    }

    /// An estimate of the number of keys in a keyspace (exact in memory).
    pub fn approximate_len(&self, space: &Space) -> u64 {
        match (&self.inner, &space.handle) {
            (_, SpaceHandle::Fjall(keyspace, _)) => keyspace.approximate_len() as u64,
            (EngineInner::Memory(spaces), SpaceHandle::Memory) => spaces
                .read()
                .expect("memory engine lock poisoned")
                .get(&space.name)
                .map_or(0, |map| map.len() as u64),
            (EngineInner::Fjall { .. }, SpaceHandle::Memory) => 0,
        }
    }

    /// Bytes on disk of a keyspace (an estimate of the payload size in memory).
    pub fn disk_space(&self, space: &Space) -> u64 {
        match (&self.inner, &space.handle) {
            (_, SpaceHandle::Fjall(keyspace, _)) => keyspace.disk_space(),
            (EngineInner::Memory(spaces), SpaceHandle::Memory) => spaces
                .read()
                .expect("memory engine lock poisoned")
                .get(&space.name)
                .map_or(0, |map| {
                    map.iter()
                        .map(|(key, value)| (key.len() + value.len()) as u64)
                        .sum()
                }),
            (EngineInner::Fjall { .. }, SpaceHandle::Memory) => 0,
        }
    }

    /// Applies every write of the batch atomically, then makes it as durable as asked.
    /// The engine's memory and queues; `None` for the in-memory engine.
    pub fn stats(&self) -> Option<StorageStats> {
        match &self.inner {
            EngineInner::Fjall { database, .. } => Some(StorageStats {
                write_buffer_bytes: database.write_buffer_size(),
                queued_flushes: database.outstanding_flushes(),
                journal_files: database.journal_count(),
                active_compactions: database.active_compactions(),
                block_cache_bytes: database.cache_size(),
            }),
            EngineInner::Memory(_) => None,
        }
    }

    pub fn commit(&self, batch: WriteBatch, durability: Durability) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let writes = batch.writes.len();
        match &self.inner {
            EngineInner::Fjall {
                database,
                memtable_bytes,
                ..
            } => {
                let rotate_at = MemtableRotation::threshold(*memtable_bytes);
                let mut full: Vec<(fjall::Keyspace, Arc<AtomicU64>)> = Vec::new();
                // Into the OS buffer here; the fsync, if asked for, is shared (group_sync).
                // Sized up front: growing the item vector by doubling was a visible share of
                // the saga's allocations.
                let mut fjall_batch =
                    fjall::OwnedWriteBatch::with_capacity(database.clone(), writes)
                        .durability(Some(fjall::PersistMode::Buffer));
                for (space, key, value) in batch.writes {
                    let SpaceHandle::Fjall(keyspace, fill) = &space.handle else {
                        unreachable_mix()
                    };
                    let bytes = MemtableRotation::entry_bytes(&key, value.as_deref());
                    let before = fill.fetch_add(bytes, Ordering::Relaxed);
                    if before < rotate_at && before + bytes >= rotate_at {
                        full.push((keyspace.clone(), fill.clone()));
                    }
                    match value {
                        Some(value) => fjall_batch.insert(keyspace, key, value),
                        None => fjall_batch.remove(keyspace, key),
                    }
                }
                fjall_batch
                    .commit()
                    .map_err(|source| StoreError::Commit { writes, source })?;
                for (keyspace, fill) in full {
                    fill.store(0, Ordering::Relaxed);
                    // The journal lock for a moment, then a flush queued for the worker.
                    keyspace
                        .rotate_memtable()
                        .map_err(|source| StoreError::Io {
                            space: keyspace.name().to_string(),
                            source,
                        })?;
                }
                match durability {
                    Durability::Buffered => Ok(()),
                    Durability::Fsync => self.sync(),
                }
            }
            EngineInner::Memory(spaces) => {
                let mut spaces = spaces.write().expect("memory engine lock poisoned");
                for (space, key, value) in batch.writes {
                    let map = spaces.entry(space.name.clone()).or_default();
                    match value {
                        Some(value) => {
                            map.insert(key, value);
                        }
                        None => {
                            map.remove(&key);
                        }
                    }
                }
                Ok(())
            }
        }
    }

    /// Makes every batch committed so far durable, sharing the fsync with concurrent callers
    /// (see [`crate::group_sync`]). `commit(batch, Buffered)` then `sync()` is
    /// `commit(batch, Fsync)`; a caller with several batches pays one sync for all.
    pub fn sync(&self) -> Result<(), StoreError> {
        match &self.inner {
            EngineInner::Fjall {
                database,
                group_sync,
                journal_sync,
                ..
            } => group_sync
                .wait_durable(|| journal_sync.sync(database))
                .map_err(|source| StoreError::Commit { writes: 0, source }),
            EngineInner::Memory(_) => Ok(()),
        }
    }

    /// Forces everything committed so far to disk.
    pub fn persist(&self) -> Result<(), StoreError> {
        match &self.inner {
            EngineInner::Fjall { database, .. } => database
                .persist(fjall::PersistMode::SyncAll)
                .map_err(|source| StoreError::Commit { writes: 0, source }),
            EngineInner::Memory(_) => Ok(()),
        }
    }

    /// Removes every entry of a keyspace (not atomic with other writes).
    pub fn clear(&self, space: &Space) -> Result<(), StoreError> {
        match (&self.inner, &space.handle) {
            (_, SpaceHandle::Fjall(keyspace, _)) => {
                keyspace.clear().map_err(|source| io_error(space, source))
            }
            (EngineInner::Memory(spaces), SpaceHandle::Memory) => {
                if let Some(map) = spaces
                    .write()
                    .expect("memory engine lock poisoned")
                    .get_mut(&space.name)
                {
                    map.clear();
                }
                Ok(())
            }
            (EngineInner::Fjall { .. }, SpaceHandle::Memory) => unreachable_mix(),
        }
    }

    /// Where the database lives, if on disk.
    pub fn path(&self) -> Option<&Path> {
        match &self.inner {
            EngineInner::Fjall { path, .. } => Some(path),
            EngineInner::Memory(_) => None,
        }
    }
}

fn io_error(space: &Space, source: fjall::Error) -> StoreError {
    StoreError::Io {
        space: space.name.to_string(),
        source,
    }
}

fn unreachable_mix() -> ! {
    panic!("a keyspace handle was used with an engine that did not create it")
}

fn bounds_are_empty(lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> bool {
    match (lower, upper) {
        (Bound::Included(low), Bound::Included(high)) => low > high,
        (Bound::Included(low), Bound::Excluded(high))
        | (Bound::Excluded(low), Bound::Included(high))
        | (Bound::Excluded(low), Bound::Excluded(high)) => low >= high,
        _ => false,
    }
}
