//! Syncing fjall's journal to disk without holding fjall's journal lock.
//!
//! `fjall::Database::persist(SyncData)` runs the `fdatasync` while it holds the journal writer's
//! lock, so while the disk works (a millisecond or more) no thread can commit anything: every
//! stream thread stalls behind every sync. The sync here splits it in two:
//!
//! 1. `persist(Buffer)`, under fjall's lock but without touching the disk: the journal bytes
//!    fjall still buffers move into the OS page cache;
//! 2. `fdatasync` of the active journal file through a handle of our own, outside fjall's lock,
//!    so commits go on while the disk works.
//!
//! Why that makes every batch written before step 1 durable: such a batch is in the journal
//! that was active at step 1, or in an older one. fjall persists a journal with `SyncAll`
//! before it rotates to the next, so every journal older than the active one is already on
//! disk. Step 2 looks for the newest journal *after* step 1, so it finds the one that was
//! active then or a newer one; if newer, the one active at step 1 was rotated, hence synced.
//!
//! Layout this relies on (fjall 3.1, pinned in Cargo.lock): journals are `<id>.jnl` in the
//! database folder, ids only grow, rotation persists the old journal first. If no journal file
//! can be found or opened, the sync falls back to fjall's own `persist(SyncData)` for that call.
//! A failed sync (only the sync itself) is sticky, as fjall makes it: after a failed
//! `fdatasync` the kernel may have dropped the dirty pages, so a later sync that succeeds would
//! prove nothing.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

#[derive(Debug)]
struct Active {
    id: u64,
    file: File,
}

#[derive(Debug, Default)]
struct State {
    active: Option<Active>,
    failed: Option<String>,
}

/// Syncs one database's journal; see the module doc.
#[derive(Debug)]
pub struct JournalSync {
    folder: PathBuf,
    state: Mutex<State>,
}

fn journal_path(folder: &Path, id: u64) -> PathBuf {
    folder.join(format!("{id}.jnl"))
}

/// The highest journal id in `folder`, if any.
fn newest_journal(folder: &Path) -> std::io::Result<Option<u64>> {
    let mut newest = None;
    for entry in std::fs::read_dir(folder)? {
        let name = entry?.file_name();
        let id = name
            .to_str()
            .and_then(|name| name.strip_suffix(".jnl"))
            .and_then(|id| id.parse::<u64>().ok());
        if let Some(id) = id {
            newest = newest.max(Some(id));
        }
    }
    Ok(newest)
}

impl JournalSync {
    pub fn new(folder: &Path) -> Self {
        Self {
            folder: folder.to_path_buf(),
            state: Mutex::new(State::default()),
        }
    }

    /// Makes every batch written to `database` before the call durable.
    pub fn sync(&self, database: &fjall::Database) -> Result<(), fjall::Error> {
        let mut state = self.state.lock().expect("journal sync lock poisoned");
        if let Some(reason) = &state.failed {
            return Err(fjall::Error::from(std::io::Error::other(format!(
                "an earlier journal sync failed ({reason}); nothing is known to reach the disk since"
            ))));
        }
        database.persist(fjall::PersistMode::Buffer)?;
        let result = match self.active_after_flush(&mut state) {
            Ok(Some(active)) => active.file.sync_data().map_err(fjall::Error::from),
            // No journal found, or it could not be looked up or opened (no file descriptor left,
            // say): nothing failed to reach the disk yet; fjall's own sync does it this time.
            Ok(None) | Err(_) => {
                state.active = None;
                database.persist(fjall::PersistMode::SyncData)
            }
        };
        if let Err(error) = &result {
            state.failed = Some(error.to_string());
        }
        result
    }

    /// The newest journal, found after the flush: from the one last synced, step to the next
    /// while it exists (ids only grow); the first time, list the folder.
    fn active_after_flush<'a>(
        &self,
        state: &'a mut State,
    ) -> std::io::Result<Option<&'a mut Active>> {
        let mut id = match &state.active {
            Some(active) => active.id,
            None => match newest_journal(&self.folder)? {
                Some(id) => id,
                None => return Ok(None),
            },
        };
        while journal_path(&self.folder, id + 1).exists() {
            id += 1;
        }
        // Gone without a successor in sight: fjall rotated past it and deleted it and the
        // next between two syncs; find the newest by listing.
        if !journal_path(&self.folder, id).exists() {
            match newest_journal(&self.folder)? {
                Some(newest) => id = newest,
                None => return Ok(None),
            }
        }
        if state.active.as_ref().is_none_or(|active| active.id != id) {
            match File::open(journal_path(&self.folder, id)) {
                Ok(file) => state.active = Some(Active { id, file }),
                // Listed a moment ago and gone now: fjall deleted it after a flush, so a newer
                // one exists; look again from scratch next time, fjall's sync this time.
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                    state.active = None;
                    return Ok(None);
                }
                Err(error) => return Err(error),
            }
        }
        Ok(state.active.as_mut())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open_database() -> (tempfile::TempDir, fjall::Database) {
        let folder = tempfile::tempdir().unwrap();
        let database = fjall::Database::builder(folder.path())
            .manual_journal_persist(true)
            .open()
            .unwrap();
        (folder, database)
    }

    #[test]
    fn finds_the_newest_journal_and_follows_rotations() {
        let (folder, database) = open_database();
        // Small memtables: a flush (where fjall may rotate the journal) every 4 MiB.
        let keyspace = database
            .keyspace("data", || {
                fjall::KeyspaceCreateOptions::default().max_memtable_size(4 << 20)
            })
            .unwrap();
        keyspace.insert("key", "value").unwrap();
        let sync = JournalSync::new(folder.path());
        sync.sync(&database).unwrap();
        let first = sync.state.lock().unwrap().active.as_ref().map(|a| a.id);
        assert_eq!(
            first,
            newest_journal(folder.path()).unwrap(),
            "the sync must use fjall's journal file, not fall back"
        );
        // fjall starts a new journal at a flush once the active one passes 64 MB.
        // Values that do not compress (xorshift), so the journal really grows.
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        for index in 0..80u32 {
            let value: Vec<u8> = (0..1 << 20)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            keyspace.insert(index.to_be_bytes(), value).unwrap();
        }
        keyspace.rotate_memtable_and_wait().unwrap();
        keyspace.insert("key", "value 2").unwrap();
        sync.sync(&database).unwrap();
        let second = sync.state.lock().unwrap().active.as_ref().map(|a| a.id);
        assert_eq!(second, newest_journal(folder.path()).unwrap());
        assert!(second > first, "{second:?} after {first:?}");
    }

    #[test]
    fn falls_back_to_fjall_when_no_journal_can_be_found_and_a_failure_is_sticky() {
        let (_folder, database) = open_database();
        // A folder with no journal, or none at all: fjall's own sync runs, and succeeds.
        let elsewhere = tempfile::tempdir().unwrap();
        let sync = JournalSync::new(elsewhere.path());
        sync.sync(&database).unwrap();
        assert!(sync.state.lock().unwrap().active.is_none());
        let missing = JournalSync::new(&elsewhere.path().join("missing"));
        missing.sync(&database).unwrap();
        // A failed sync is for good.
        missing.state.lock().unwrap().failed = Some("EIO".to_string());
        let error = missing.sync(&database).unwrap_err().to_string();
        assert!(
            error.contains("an earlier journal sync failed (EIO)"),
            "{error}"
        );
    }

    /// Two rotations between syncs, both old journals deleted: the handle kept for the first
    /// must not be synced (it is unlinked); the newest journal is found by listing.
    #[test]
    fn a_deleted_journal_without_its_successor_is_found_again_by_listing() {
        let (_folder, database) = open_database();
        let journals = tempfile::tempdir().unwrap();
        std::fs::write(journals.path().join("5.jnl"), b"").unwrap();
        let sync = JournalSync::new(journals.path());
        sync.sync(&database).unwrap();
        assert_eq!(
            sync.state.lock().unwrap().active.as_ref().map(|a| a.id),
            Some(5)
        );
        std::fs::write(journals.path().join("7.jnl"), b"").unwrap();
        std::fs::remove_file(journals.path().join("5.jnl")).unwrap();
        sync.sync(&database).unwrap();
        assert_eq!(
            sync.state.lock().unwrap().active.as_ref().map(|a| a.id),
            Some(7)
        );
    }
}
