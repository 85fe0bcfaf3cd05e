//! A task's uncommitted state: a read-your-writes overlay over the engine, with record savepoints.
//!
//! Writes made while processing go into the overlay, not the engine. Reads see the overlay first.
//! At commit the runtime drains the overlay into the same [`WriteBatch`] as the task's outputs,
//! timers and input positions, so state and positions move together. A record whose processing
//! fails is rolled back to its savepoint, so a dead-lettered record leaves no half-applied state.

use std::collections::BTreeMap;
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

/// Uncommitted writes to a set of keyspaces of one engine.
#[derive(Debug)]
pub struct StoreTransaction {
    engine: StorageEngine,
    spaces: Vec<Space>,
    overlays: Vec<Overlay>,
    undo: Vec<UndoEntry>,
    pending_writes: usize,
}

impl StoreTransaction {
    pub fn new(engine: StorageEngine) -> Self {
        Self {
            engine,
            spaces: Vec::new(),
            overlays: Vec::new(),
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
        Ok(self.spaces.len() - 1)
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
        self.engine.get(&self.spaces[index], key)
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
        for (space, overlay) in self.spaces.iter().zip(self.overlays.iter_mut()) {
            for (key, value) in std::mem::take(overlay) {
                batch.write(space, key, value);
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
