//! Group commit: many commits, one fsync.
//!
//! fjall fsyncs a batch while holding its journal lock, so with `PersistMode::SyncData` on every
//! batch, commits from all threads queue behind one fsync each, and every stream hop and every
//! API write waits in that queue. The engine therefore writes each batch to the journal without
//! syncing it and then waits here until *some* fsync that began after the write has finished.
//! (The sync itself, `Database::persist`, still holds fjall's journal lock while it runs; what
//! changes is that one sync serves a whole group of commits instead of one each.)
//!
//! The protocol: a committer takes a ticket after its batch is in the journal. If no sync is
//! running, it becomes the leader: it notes the newest ticket issued so far, syncs (which
//! covers every batch written before the sync began, so every ticket up to the noted one),
//! records that ticket as synced and wakes everyone. Committers whose ticket is covered
//! return; the rest wait for the next round, whose leader is one of them. Under load, each
//! fsync therefore covers every commit that arrived during the previous one; alone, a commit
//! pays exactly one fsync, as before.
//!
//! `commit(batch, Fsync)` still returns only once the batch is durable. The sync itself runs
//! outside fjall's journal lock (see [`crate::journal_sync`]). What the embedded log builds on
//! this (a durable and an in-process high watermark per partition) is explained in
//! `runtime/src/log/embedded.rs`, "Durability, pipelined".

use std::sync::{Condvar, Mutex};

#[derive(Debug, Default)]
struct State {
    /// Tickets handed out; ticket `n` is the n-th batch written.
    issued: u64,
    /// Every ticket up to this one is on disk.
    synced_through: u64,
    /// A sync is running.
    leader_active: bool,
}

#[derive(Debug, Default)]
pub struct GroupSync {
    state: Mutex<State>,
    round_finished: Condvar,
}

impl GroupSync {
    /// Call after the batch is written (not yet synced); returns once a sync that began after
    /// the write has completed. `sync` makes everything written so far durable; an error of
    /// the sync this caller led is returned to it (waiters then lead the next attempt).
    pub fn wait_durable<E>(&self, sync: impl Fn() -> Result<(), E>) -> Result<(), E> {
        let mut state = self.state.lock().expect("group sync lock poisoned");
        state.issued += 1;
        let ticket = state.issued;
        loop {
            if state.synced_through >= ticket {
                return Ok(());
            }
            if state.leader_active {
                state = self
                    .round_finished
                    .wait(state)
                    .expect("group sync lock poisoned");
                continue;
            }
            state.leader_active = true;
            let covers = state.issued;
            drop(state);
            // Hands leadership back even if `sync` panics, so no waiter sleeps forever.
            let mut round = RoundEnd {
                group: self,
                covered: None,
            };
            let result = sync();
            if result.is_ok() {
                round.covered = Some(covers);
            }
            drop(round);
            result?;
            state = self.state.lock().expect("group sync lock poisoned");
        }
    }
}

/// Ends a leader's round: records what the sync covered (nothing if it failed or panicked),
/// clears the leader flag and wakes the waiters; one of them leads the next round if its ticket
/// is still not covered.
struct RoundEnd<'a> {
    group: &'a GroupSync,
    covered: Option<u64>,
}

impl Drop for RoundEnd<'_> {
    fn drop(&mut self) {
        let mut state = match self.group.state.lock() {
            Ok(state) => state,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(covered) = self.covered {
            state.synced_through = state.synced_through.max(covered);
        }
        state.leader_active = false;
        self.group.round_finished.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    use super::*;

    /// A fake disk: `written` counts batches written, a sync copies it to `durable` (slowly,
    /// like an fsync), and `syncs` counts syncs.
    #[derive(Default)]
    struct Disk {
        written: AtomicU64,
        durable: AtomicU64,
        syncs: AtomicU64,
    }

    impl Disk {
        fn sync(&self) -> Result<(), String> {
            let snapshot = self.written.load(Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(2));
            self.durable.fetch_max(snapshot, Ordering::SeqCst);
            self.syncs.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    #[test]
    fn every_commit_returns_durable_and_concurrent_commits_share_syncs() {
        let disk = Arc::new(Disk::default());
        let group = Arc::new(GroupSync::default());
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (disk, group) = (disk.clone(), group.clone());
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        let mine = disk.written.fetch_add(1, Ordering::SeqCst) + 1;
                        group.wait_durable(|| disk.sync()).unwrap();
                        // A write numbered `mine` is durable once `durable` reached it.
                        assert!(disk.durable.load(Ordering::SeqCst) >= mine);
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let syncs = disk.syncs.load(Ordering::SeqCst);
        assert!(
            syncs < 400,
            "{syncs} syncs for 400 commits: none were shared"
        );
        assert!(
            syncs >= 50,
            "at least one sync per round of one thread's commits"
        );
    }

    #[test]
    fn a_commit_alone_pays_one_sync() {
        let disk = Disk::default();
        let group = GroupSync::default();
        for expected in 1..=3 {
            disk.written.fetch_add(1, Ordering::SeqCst);
            group.wait_durable(|| disk.sync()).unwrap();
            assert_eq!(disk.syncs.load(Ordering::SeqCst), expected);
        }
    }

    #[test]
    fn a_leader_that_panics_hands_the_round_to_the_next_committer() {
        let group = Arc::new(GroupSync::default());
        let panicking = {
            let group = group.clone();
            std::thread::spawn(move || {
                let _ = group.wait_durable(|| -> Result<(), String> { panic!("fsync panicked") });
            })
        };
        assert!(panicking.join().is_err());
        // Without the hand-back this would wait for a leader that is gone.
        group.wait_durable(|| Ok::<(), String>(())).unwrap();
    }

    #[test]
    fn a_failed_sync_fails_its_leader_and_the_next_commit_syncs_again() {
        let group = GroupSync::default();
        let failed: Result<(), String> = group.wait_durable(|| Err("disk full".to_string()));
        assert_eq!(failed, Err("disk full".to_string()));
        let syncs = AtomicU64::new(0);
        group
            .wait_durable(|| {
                syncs.fetch_add(1, Ordering::SeqCst);
                Ok::<(), String>(())
            })
            .unwrap();
        assert_eq!(syncs.load(Ordering::SeqCst), 1);
    }
}
