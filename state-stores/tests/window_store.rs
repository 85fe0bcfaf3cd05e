//! Window store behaviour: fetch by key and time range, and expiry past the retention.

use orderflow_state_stores::{
    Durability, I64Codec, StorageEngine, StoreCodecs, StoreTransaction, StringCodec,
    TransactionalWindowStore, WindowRetention, WindowStore, WriteBatch,
};

const STORE: &str = "window.test";

fn view<'a>(
    transaction: &'a mut StoreTransaction,
    space: usize,
    retention: WindowRetention,
) -> TransactionalWindowStore<'a, String, i64> {
    TransactionalWindowStore::new(
        transaction,
        space,
        StoreCodecs {
            name: STORE,
            key: &StringCodec,
            value: &I64Codec,
        },
        retention,
    )
}

#[test]
fn fetch_returns_only_the_keys_windows_in_range() {
    let engine = StorageEngine::in_memory();
    let mut transaction = StoreTransaction::new(engine.clone());
    let space = transaction.register(STORE).unwrap();
    let retention = WindowRetention {
        retention_ms: 3_600_000,
        segment_ms: 60_000,
    };
    let mut store = view(&mut transaction, space, retention);
    for minute in 0..10i64 {
        store
            .put(&"a".to_string(), minute * 60_000, &minute)
            .unwrap();
        store
            .put(&"b".to_string(), minute * 60_000, &(minute * 100))
            .unwrap();
    }
    let windows = store.fetch(&"a".to_string(), 120_000, 300_000).unwrap();
    assert_eq!(
        windows,
        vec![(120_000, 2), (180_000, 3), (240_000, 4), (300_000, 5)]
    );
    assert_eq!(store.get(&"b".to_string(), 60_000).unwrap(), Some(100));
    let all = store.fetch_all(540_000, 600_000).unwrap();
    assert_eq!(
        all,
        vec![
            ("a".to_string(), 540_000, 9),
            ("b".to_string(), 540_000, 900)
        ]
    );

    // Committed state reads the same after a new transaction.
    let mut batch = WriteBatch::new();
    transaction.drain_into(&mut batch);
    engine.commit(batch, Durability::Buffered).unwrap();
    let mut fresh = StoreTransaction::new(engine);
    let space = fresh.register(STORE).unwrap();
    let store = view(&mut fresh, space, retention);
    assert_eq!(
        store.fetch(&"a".to_string(), 0, 60_000).unwrap(),
        vec![(0, 0), (60_000, 1)]
    );
}

#[test]
fn windows_older_than_the_retention_expire() {
    let engine = StorageEngine::in_memory();
    let mut transaction = StoreTransaction::new(engine);
    let space = transaction.register(STORE).unwrap();
    let retention = WindowRetention {
        retention_ms: 120_000,
        segment_ms: 60_000,
    };
    let mut store = view(&mut transaction, space, retention);
    store.put(&"a".to_string(), 0, &1).unwrap();
    store.put(&"a".to_string(), 60_000, &2).unwrap();
    // Moving to minute 10 expires everything before minute 8.
    store.put(&"a".to_string(), 600_000, &3).unwrap();
    assert_eq!(
        store.fetch(&"a".to_string(), 0, 600_000).unwrap(),
        vec![(600_000, 3)]
    );
    // A late window older than the retention is refused.
    assert!(!store.put(&"a".to_string(), 60_000, &9).unwrap());
    assert!(store.put(&"a".to_string(), 540_000, &4).unwrap());
}

#[test]
fn observed_time_rolls_back_with_a_failed_record_and_survives_a_new_transaction() {
    let engine = StorageEngine::in_memory();
    let retention = WindowRetention {
        retention_ms: 120_000,
        segment_ms: 60_000,
    };
    let mut transaction = StoreTransaction::new(engine.clone());
    let space = transaction.register(STORE).unwrap();
    view(&mut transaction, space, retention)
        .put(&"a".to_string(), 60_000, &1)
        .unwrap();
    transaction.savepoint();
    // A record far in the future fails and is rolled back: it must not expire anything.
    view(&mut transaction, space, retention)
        .put(&"a".to_string(), 6_000_000, &2)
        .unwrap();
    transaction.rollback_to_savepoint();
    assert!(
        view(&mut transaction, space, retention)
            .put(&"a".to_string(), 0, &3)
            .unwrap()
    );
    let mut batch = WriteBatch::new();
    transaction.drain_into(&mut batch);
    engine.commit(batch, Durability::Buffered).unwrap();

    // A new transaction (a restart) still knows the observed time: old windows stay refused.
    let mut fresh = StoreTransaction::new(engine);
    let space = fresh.register(STORE).unwrap();
    let mut store = view(&mut fresh, space, retention);
    store.put(&"a".to_string(), 600_000, &4).unwrap();
    assert!(!store.put(&"a".to_string(), 60_000, &5).unwrap());
    assert_eq!(
        store.fetch(&"a".to_string(), i64::MIN, i64::MAX).unwrap(),
        vec![(600_000, 4)]
    );
}
