//! A task's uncommitted state: a read-your-writes overlay over the engine, with record savepoints.
//!
//! Writes made while processing go into the overlay, not the engine. Reads see the overlay first.
//! At commit the runtime drains the overlay into the same [`WriteBatch`] as the task's outputs,
//! timers and input positions, so state and positions move together. A record whose processing
//! fails is rolled back to its savepoint, so a dead-lettered record leaves no half-applied state.
//!
//! A keyspace registered with [`StoreTransaction::register_cached`] also keeps a read cache of
//! its committed values (Kafka Streams' record cache, for reads): a point read that misses the
//! overlay is answered from memory when the key was read or committed before, and the overlay
//! is copied into the cache as it drains into a commit. Only committed values enter it, so a
//! rolled-back record cannot leave anything behind; a commit that fails stops the task, and the
//! cache goes with it. It pays for aggregations that read and rewrite the same keys record
//! after record (window stores); for a store whose keys are mostly read once (the saga's
//! orders) copying every committed value costs more than the reads it saves (measured).

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::ops::{Bound, ControlFlow};

use crate::engine::{ScanVisitor, Space, StorageEngine, WriteBatch};
use crate::error::StoreError;

/// Index of a keyspace registered with a transaction.
pub type SpaceIndex = usize;

type Overlay = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// One undo entry: the overlay entry a write replaced (`None`: there was none).
#[derive(Debug)]
struct UndoEntry {
    space: SpaceIndex,
    key: Vec<u8>,
    previous: Option<Option<Vec<u8>>>,
}

/// Committed values of one keyspace (`None`: known absent), up to a byte budget; over it,
/// the cache starts again empty (cheaper than tracking recency, and the hot keys of an
/// aggregation come back within a few records).
#[derive(Debug)]
struct ReadCache {
    entries: HashMap<Vec<u8>, Option<Vec<u8>>>,
    bytes: usize,
    budget: usize,
}

/// Rough bytes one cache entry holds, with the map's own overhead.
fn entry_bytes(key: &[u8], value: &Option<Vec<u8>>) -> usize {
    key.len() + value.as_ref().map_or(0, Vec::len) + 64
}

impl ReadCache {
    fn new(budget: usize) -> Self {
        Self {
            entries: HashMap::new(),
            bytes: 0,
            budget,
        }
    }

    fn insert(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) {
        let added = entry_bytes(&key, &value);
        if let Some(previous) = self.entries.get(&key) {
            self.bytes -= entry_bytes(&key, previous);
        } else if self.bytes + added > self.budget {
            self.entries.clear();
            self.bytes = 0;
        }
        self.bytes += added;
        self.entries.insert(key, value);
    }
}

/// Uncommitted writes to a set of keyspaces of one engine.
#[derive(Debug)]
pub struct StoreTransaction {
    engine: StorageEngine,
    spaces: Vec<Space>,
    overlays: Vec<Overlay>,
    /// Per keyspace, its read cache if it has one (see the module doc).
    caches: Vec<Option<RefCell<ReadCache>>>,
    undo: Vec<UndoEntry>,
    pending_writes: usize,
}

impl StoreTransaction {
    pub fn new(engine: StorageEngine) -> Self {
        Self {
            engine,
            spaces: Vec::new(),
            overlays: Vec::new(),
            caches: Vec::new(),
            undo: Vec::new(),
            pending_writes: 0,
        }
    }

    pub fn engine(&self) -> &StorageEngine {
        &self.engine
    }

    /// Registers a keyspace (opening it if needed) and returns its index.
    pub fn register(&mut self, space_name: &str) -> Result<SpaceIndex, StoreError> {
        if let Some(index) = self
            .spaces
            .iter()
            .position(|space| space.name() == space_name)
        {
            return Ok(index);
        }
        let space = self.engine.space(space_name)?;
        self.spaces.push(space);
        self.overlays.push(Overlay::new());
        self.caches.push(None);
        Ok(self.spaces.len() - 1)
    }

    /// [`Self::register`], with a read cache of up to `cache_bytes` of committed values (see
    /// the module doc); 0 means no cache.
    pub fn register_cached(
        &mut self,
        space_name: &str,
        cache_bytes: usize,
    ) -> Result<SpaceIndex, StoreError> {
        let index = self.register(space_name)?;
        if cache_bytes > 0 && self.caches[index].is_none() {
            self.caches[index] = Some(RefCell::new(ReadCache::new(cache_bytes)));
        }
        Ok(index)
    }

    pub fn space(&self, index: SpaceIndex) -> &Space {
        &self.spaces[index]
    }

    /// Number of writes buffered since the last commit (overwrites of one key count once).
    pub fn pending_writes(&self) -> usize {
        self.pending_writes
    }

    pub fn get(&self, index: SpaceIndex, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(buffered) = self.overlays[index].get(key) {
            return Ok(buffered.clone());
        }
        let Some(cache) = &self.caches[index] else {
            return self.engine.get(&self.spaces[index], key);
        };
        if let Some(cached) = cache.borrow().entries.get(key) {
            return Ok(cached.clone());
        }
        let committed = self.engine.get(&self.spaces[index], key)?;
        cache.borrow_mut().insert(key.to_vec(), committed.clone());
        Ok(committed)
    }

    /// Puts (`Some`) or deletes (`None`) a key.
    pub fn write(&mut self, index: SpaceIndex, key: Vec<u8>, value: Option<Vec<u8>>) {
        let previous = self.overlays[index].insert(key.clone(), value);
        if previous.is_none() {
            self.pending_writes += 1;
        }
        self.undo.push(UndoEntry {
            space: index,
            key,
            previous,
        });
    }

    /// Visits the merged view (overlay over engine) of a key range in key order.
    pub fn scan(
        &self,
        index: SpaceIndex,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        visitor: &mut ScanVisitor<'_>,
    ) -> Result<(), StoreError> {
        let overlay = &self.overlays[index];
        let empty_range = match (lower, upper) {
            (Bound::Included(low), Bound::Included(high)) => low > high,
            (Bound::Unbounded, _) | (_, Bound::Unbounded) => false,
            (Bound::Included(low) | Bound::Excluded(low), Bound::Excluded(high))
            | (Bound::Excluded(low), Bound::Included(high)) => low >= high,
        };
        if empty_range {
            return Ok(());
        }
        let mut overlay_entries = overlay.range::<[u8], _>((lower, upper)).peekable();
        let mut stopped = false;
        self.engine.scan(
            &self.spaces[index],
            lower,
            upper,
            false,
            &mut |key, value| {
                // Emit overlay entries that sort before this engine key first.
                while let Some((overlay_key, overlay_value)) = overlay_entries.peek() {
                    if overlay_key.as_slice() > key {
                        break;
                    }
                    let same_key = overlay_key.as_slice() == key;
                    if let Some(overlay_value) = overlay_value
                        && visitor(overlay_key, overlay_value).is_break()
                    {
                        stopped = true;
                        return ControlFlow::Break(());
                    }
                    overlay_entries.next();
                    if same_key {
                        // The overlay shadows the engine's value for this key.
                        return ControlFlow::Continue(());
                    }
                }
                let flow = visitor(key, value);
                if flow.is_break() {
                    stopped = true;
                }
                flow
            },
        )?;
        if stopped {
            return Ok(());
        }
        for (overlay_key, overlay_value) in overlay_entries {
            if let Some(overlay_value) = overlay_value
                && visitor(overlay_key, overlay_value).is_break()
            {
                break;
            }
        }
        Ok(())
    }

    /// Starts a record: writes from here on can be undone by [`Self::rollback_to_savepoint`].
    pub fn savepoint(&mut self) {
        self.undo.clear();
    }

    /// Undoes every write since the last savepoint.
    pub fn rollback_to_savepoint(&mut self) {
        while let Some(entry) = self.undo.pop() {
            let overlay = &mut self.overlays[entry.space];
            match entry.previous {
                Some(previous) => {
                    overlay.insert(entry.key, previous);
                }
                None => {
                    overlay.remove(&entry.key);
                    self.pending_writes -= 1;
                }
            }
        }
    }

    /// Moves every buffered write into `batch`; the overlay is empty afterwards.
    pub fn drain_into(&mut self, batch: &mut WriteBatch) {
        batch.reserve(self.pending_writes);
        for ((space, overlay), cache) in self
            .spaces
            .iter()
            .zip(self.overlays.iter_mut())
            .zip(self.caches.iter_mut())
        {
            match cache {
                None => {
                    for (key, value) in std::mem::take(overlay) {
                        batch.write(space, key, value);
                    }
                }
                Some(cache) => {
                    let cache = cache.get_mut();
                    for (key, value) in std::mem::take(overlay) {
                        cache.insert(key.clone(), value.clone());
                        batch.write(space, key, value);
                    }
                }
            }
        }
        self.undo.clear();
        self.pending_writes = 0;
    }

    /// Drops every uncommitted write (a crash, or a task restart after a panic).
    pub fn abort(&mut self) {
        for overlay in &mut self.overlays {
            overlay.clear();
        }
        self.undo.clear();
        self.pending_writes = 0;
    }

    /// An estimate of the keys in a keyspace, counting uncommitted writes.
    pub fn approximate_len(&self, index: SpaceIndex) -> u64 {
        let committed = self.engine.approximate_len(&self.spaces[index]);
        let (puts, deletes) = self.overlays[index].values().fold(
            (0u64, 0u64),
            |(puts, deletes), value| match value {
                Some(_) => (puts + 1, deletes),
                None => (puts, deletes + 1),
            },
        );
        (committed + puts).saturating_sub(deletes)
    }
}
