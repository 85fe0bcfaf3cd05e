//! fjall's worker deadlocks when its bounded mailbox fills with memtable-rotation requests
//! (fjall-rs/fjall#323): writers ask for a rotation on every commit while a memtable is over
//! its size, the single worker then blocks sending itself a flush, and from then on nothing is
//! flushed and memtables grow without bound (the saga's resident memory reached 4.6 GiB in a
//! minute). The engine rotates full memtables itself, on the committing thread, so the
//! requests never pile up. This writes far more than the memtables hold, in many small
//! commits from two threads with one worker, and checks that flushes keep up.

use std::time::{Duration, Instant};

use orderflow_state_stores::{Durability, StorageConfig, StorageEngine, WriteBatch};

#[test]
fn flushes_keep_up_with_many_small_commits_and_one_worker() {
    let dir = tempfile::tempdir().unwrap();
    let config = StorageConfig {
        memtable_mib: 1,
        worker_threads: 1,
        ..StorageConfig::default()
    };
    let engine = StorageEngine::open_fjall(dir.path(), &config).unwrap();
    const WRITERS: usize = 2;
    const COMMITS: usize = 12_000;
    const ENTRIES: usize = 8;
    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let engine = engine.clone();
            std::thread::spawn(move || {
                let space = engine.space(&format!("space-{writer}")).unwrap();
                for commit in 0..COMMITS {
                    let mut batch = WriteBatch::default();
                    for entry in 0..ENTRIES {
                        let key = ((commit * ENTRIES + entry) as u64).to_be_bytes().to_vec();
                        batch.put(&space, key, vec![7; 200]);
                    }
                    engine.commit(batch, Durability::Buffered).unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    // About 40 MiB went through 1 MiB memtables. Once the worker catches up, a couple of
    // memtables per keyspace at most are in memory; a stuck worker leaves all of it there.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let stats = engine.stats().unwrap();
        if stats.write_buffer_bytes < 8 * 1024 * 1024 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "memtables are not being flushed: {stats:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
