//! Each backend behaves like a `BTreeMap` under random operation sequences, including aborts
//! (crashes before commit) and close/reopen cycles.

use std::collections::BTreeMap;
use std::ops::Bound;

use orderflow_state_stores::{
    BytesCodec, Checkpoints, Durability, KeyValueStore, StorageConfig, StorageEngine, StoreCodecs,
    StoreTransaction, TransactionalKeyValueStore, WriteBatch,
};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Operation {
    Put(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
    Get(Vec<u8>),
    Range(Vec<u8>, Vec<u8>),
    Prefix(Vec<u8>),
    Savepoint,
    Rollback,
    Commit,
    Abort,
    Reopen,
}

fn small_key() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(0u8..4, 1..3)
}

fn operation() -> impl Strategy<Value = Operation> {
    prop_oneof![
        6 => (small_key(), proptest::collection::vec(any::<u8>(), 0..4))
            .prop_map(|(key, value)| Operation::Put(key, value)),
        3 => small_key().prop_map(Operation::Delete),
        3 => small_key().prop_map(Operation::Get),
        2 => (small_key(), small_key()).prop_map(|(low, high)| Operation::Range(low, high)),
        1 => small_key().prop_map(Operation::Prefix),
        1 => Just(Operation::Savepoint),
        1 => Just(Operation::Rollback),
        2 => Just(Operation::Commit),
        1 => Just(Operation::Abort),
        1 => Just(Operation::Reopen),
    ]
}

struct Harness {
    engine: StorageEngine,
    transaction: StoreTransaction,
    space: usize,
    fjall_path: Option<std::path::PathBuf>,
    /// The read cache's budget (0: none).
    cache_bytes: usize,
}

const STORE: &str = "store.model";

impl Harness {
    fn open(engine: StorageEngine, fjall_path: Option<std::path::PathBuf>) -> Self {
        Self::open_cached(engine, fjall_path, 0)
    }

    fn open_cached(
        engine: StorageEngine,
        fjall_path: Option<std::path::PathBuf>,
        cache_bytes: usize,
    ) -> Self {
        let mut transaction = StoreTransaction::new(engine.clone());
        let space = transaction.register_cached(STORE, cache_bytes).unwrap();
        Self {
            engine,
            transaction,
            space,
            fjall_path,
            cache_bytes,
        }
    }

    fn store(&mut self) -> TransactionalKeyValueStore<'_, Vec<u8>, Vec<u8>> {
        TransactionalKeyValueStore::new(
            &mut self.transaction,
            self.space,
            StoreCodecs {
                name: STORE,
                key: &BytesCodec,
                value: &BytesCodec,
            },
        )
    }

    fn commit(&mut self) {
        let mut batch = WriteBatch::new();
        self.transaction.drain_into(&mut batch);
        self.engine.commit(batch, Durability::Buffered).unwrap();
    }

    fn reopen(self) -> Self {
        let Harness {
            engine,
            transaction,
            fjall_path,
            cache_bytes,
            ..
        } = self;
        drop(transaction);
        match fjall_path {
            Some(path) => {
                drop(engine);
                let engine = StorageEngine::open_fjall(&path, &StorageConfig::default()).unwrap();
                Harness::open_cached(engine, Some(path), cache_bytes)
            }
            None => Harness::open_cached(engine, None, cache_bytes),
        }
    }
}

fn run_model(mut harness: Harness, operations: Vec<Operation>) -> Result<(), TestCaseError> {
    let mut committed: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    let mut pending = committed.clone();
    let mut at_savepoint = pending.clone();
    for operation in operations {
        match operation {
            Operation::Put(key, value) => {
                harness.store().put(&key, &value).unwrap();
                pending.insert(key, value);
            }
            Operation::Delete(key) => {
                harness.store().delete(&key).unwrap();
                pending.remove(&key);
            }
            Operation::Get(key) => {
                prop_assert_eq!(
                    harness.store().get(&key).unwrap(),
                    pending.get(&key).cloned()
                );
            }
            Operation::Range(low, high) => {
                let expected: Vec<_> = if low <= high {
                    pending
                        .range(low.clone()..high.clone())
                        .map(|(key, value)| (key.clone(), value.clone()))
                        .collect()
                } else {
                    Vec::new()
                };
                let actual = harness
                    .store()
                    .range(Bound::Included(&low), Bound::Excluded(&high), usize::MAX)
                    .unwrap();
                prop_assert_eq!(actual, expected);
            }
            Operation::Prefix(prefix) => {
                let expected: Vec<_> = pending
                    .iter()
                    .filter(|(key, _)| key.starts_with(&prefix))
                    .map(|(key, value)| (key.clone(), value.clone()))
                    .collect();
                prop_assert_eq!(
                    harness.store().prefix_scan(&prefix, usize::MAX).unwrap(),
                    expected
                );
            }
            Operation::Savepoint => {
                harness.transaction.savepoint();
                at_savepoint = pending.clone();
            }
            Operation::Rollback => {
                harness.transaction.rollback_to_savepoint();
                pending = at_savepoint.clone();
            }
            Operation::Commit => {
                harness.commit();
                committed = pending.clone();
                harness.transaction.savepoint();
                at_savepoint = pending.clone();
            }
            Operation::Abort => {
                harness.transaction.abort();
                pending = committed.clone();
                at_savepoint = pending.clone();
            }
            Operation::Reopen => {
                harness = harness.reopen();
                pending = committed.clone();
                at_savepoint = pending.clone();
            }
        }
    }
    let all = harness
        .store()
        .range(Bound::Unbounded, Bound::Unbounded, usize::MAX)
        .unwrap();
    let expected: Vec<_> = pending.into_iter().collect();
    prop_assert_eq!(all, expected);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn memory_backend_behaves_like_a_btreemap(operations in proptest::collection::vec(operation(), 1..80)) {
        run_model(Harness::open(StorageEngine::in_memory(), None), operations)?;
    }

    /// With a read cache of committed values: one that holds every key, and one small enough
    /// (a few entries) to start over empty now and then.
    #[test]
    fn a_cached_keyspace_behaves_like_a_btreemap(
        operations in proptest::collection::vec(operation(), 1..80),
        cache_bytes in prop_oneof![Just(300usize), Just(1usize << 20)],
    ) {
        run_model(Harness::open_cached(StorageEngine::in_memory(), None, cache_bytes), operations)?;
    }

    #[test]
    fn fjall_backend_behaves_like_a_btreemap(operations in proptest::collection::vec(operation(), 1..60)) {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("db");
        let engine = StorageEngine::open_fjall(&path, &StorageConfig::default()).unwrap();
        run_model(Harness::open(engine, Some(path)), operations)?;
    }
}

#[test]
fn empty_keys_are_refused_with_the_store_name() {
    let mut harness = Harness::open(StorageEngine::in_memory(), None);
    let error = harness
        .store()
        .put(&Vec::new(), &b"v".to_vec())
        .unwrap_err();
    assert!(error.to_string().contains(STORE), "{error}");
}

#[test]
fn checkpoints_commit_atomically_with_state_and_survive_reopen() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("db");
    {
        let engine = StorageEngine::open_fjall(&path, &StorageConfig::default()).unwrap();
        let checkpoints = Checkpoints::open(&engine).unwrap();
        let mut harness = Harness::open(engine.clone(), Some(path.clone()));
        harness.store().put(&b"k".to_vec(), &b"v".to_vec()).unwrap();
        let mut batch = WriteBatch::new();
        harness.transaction.drain_into(&mut batch);
        checkpoints.write(&mut batch, "app", "input", 3, 42);
        engine.commit(batch, Durability::Fsync).unwrap();
        // Written to the overlay but never committed: must not survive.
        harness
            .store()
            .put(&b"lost".to_vec(), &b"x".to_vec())
            .unwrap();
    }
    let engine = StorageEngine::open_fjall(&path, &StorageConfig::default()).unwrap();
    let checkpoints = Checkpoints::open(&engine).unwrap();
    assert_eq!(checkpoints.read("app", "input", 3).unwrap(), Some(42));
    assert_eq!(checkpoints.read("app", "input", 2).unwrap(), None);
    let listed = checkpoints.list().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].topic, "input");
    assert_eq!(listed[0].next_offset, 42);
    let mut harness = Harness::open(engine, Some(path));
    assert_eq!(
        harness.store().get(&b"k".to_vec()).unwrap(),
        Some(b"v".to_vec())
    );
    assert_eq!(harness.store().get(&b"lost".to_vec()).unwrap(), None);
}

#[test]
fn a_scan_only_space_keeps_every_entry_through_flushes_and_reopen() {
    // Tables of a scan-only space have no bloom filters; scans and (rare) point reads must
    // still see everything, also once the memtable has been flushed to tables.
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("db");
    let config = StorageConfig {
        memtable_mib: 1,
        ..StorageConfig::default()
    };
    let value = vec![7u8; 1024];
    {
        let engine = StorageEngine::open_fjall(&path, &config).unwrap();
        let space = engine.scan_only_space("topic.records").unwrap();
        for chunk in 0..6u64 {
            let mut batch = WriteBatch::new();
            for index in chunk * 1000..(chunk + 1) * 1000 {
                batch.put(&space, index.to_be_bytes().to_vec(), value.clone());
            }
            engine.commit(batch, Durability::Fsync).unwrap();
        }
    }
    let engine = StorageEngine::open_fjall(&path, &config).unwrap();
    let space = engine.scan_only_space("topic.records").unwrap();
    let mut seen = Vec::new();
    engine
        .scan(
            &space,
            Bound::Unbounded,
            Bound::Unbounded,
            false,
            &mut |key, stored| {
                assert_eq!(stored, value.as_slice());
                seen.push(u64::from_be_bytes(key.try_into().unwrap()));
                std::ops::ControlFlow::Continue(())
            },
        )
        .unwrap();
    assert_eq!(seen, (0..6000).collect::<Vec<u64>>());
    assert_eq!(
        engine.get(&space, &4321u64.to_be_bytes()).unwrap(),
        Some(value)
    );
    assert_eq!(engine.get(&space, &6000u64.to_be_bytes()).unwrap(), None);
}
