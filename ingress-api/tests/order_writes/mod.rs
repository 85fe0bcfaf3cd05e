//! The order path's SQL writes under concurrency (they go through the group-commit batcher):
//! every key is claimed by exactly one of its concurrent requests, responses are stored and
//! replayed, and every order is indexed under its user. Run against each SQL dialect.

use std::sync::Arc;

use orderflow_ingress_api::db::Database;
use orderflow_ingress_api::shared::{IdempotencyBegin, StoredResponse};
use orderflow_schemas::ids::{OrderId, UserId};

const KEYS: usize = 40;
const ATTEMPTS_PER_KEY: usize = 4;

pub async fn concurrent_claims_completions_and_indexes(database: Database) {
    let database = Arc::new(database);
    let now_ms = 1_700_000_000_000;
    let lease_ms = 30_000;
    let ttl_ms = 86_400_000;
    let mut attempts = Vec::new();
    for attempt in 0..ATTEMPTS_PER_KEY {
        for key in 0..KEYS {
            let database = database.clone();
            attempts.push(tokio::spawn(async move {
                let scope = format!("orders:test:{key}");
                let resource = format!("resource-{key}-{attempt}");
                let begun = database
                    .idempotency_begin(&scope, "same-hash", &resource, now_ms, lease_ms, ttl_ms)
                    .await
                    .unwrap();
                (key, begun)
            }));
        }
    }
    let mut started = vec![None; KEYS];
    for attempt in attempts {
        let (key, begun) = attempt.await.unwrap();
        match begun {
            IdempotencyBegin::Started { resource_id } => {
                assert!(started[key].is_none(), "key {key} was claimed twice");
                started[key] = Some(resource_id);
            }
            IdempotencyBegin::InProgress => {}
            other => panic!("key {key}: unexpected {other:?}"),
        }
    }
    assert!(started.iter().all(Option::is_some), "{started:?}");

    // Complete every key and index an order per key, concurrently.
    let user_id = UserId::generate(now_ms);
    let mut writes = Vec::new();
    let mut order_ids = Vec::new();
    for (key, resource_id) in started.iter().enumerate() {
        let resource_id = resource_id.clone().unwrap();
        let order_id = OrderId::generate(now_ms + key as i64);
        order_ids.push(order_id);
        let database = database.clone();
        writes.push(tokio::spawn(async move {
            let scope = format!("orders:test:{key}");
            database
                .idempotency_complete(
                    &scope,
                    &StoredResponse {
                        status: 202,
                        body: format!("{{\"key\":{key}}}"),
                        resource_id,
                    },
                )
                .await
                .unwrap();
            database
                .record_user_order(user_id, order_id, now_ms)
                .await
                .unwrap();
        }));
    }
    for write in writes {
        write.await.unwrap();
    }
    for (key, resource_id) in started.iter().enumerate() {
        let scope = format!("orders:test:{key}");
        let replay = database
            .idempotency_begin(&scope, "same-hash", "ignored", now_ms, lease_ms, ttl_ms)
            .await
            .unwrap();
        match replay {
            IdempotencyBegin::Completed(stored) => {
                assert_eq!(stored.status, 202);
                assert_eq!(stored.body, format!("{{\"key\":{key}}}"));
                assert_eq!(Some(stored.resource_id), resource_id.clone());
            }
            other => panic!("key {key}: expected the stored response, got {other:?}"),
        }
        let mismatch = database
            .idempotency_begin(&scope, "other-hash", "ignored", now_ms, lease_ms, ttl_ms)
            .await
            .unwrap();
        assert!(matches!(mismatch, IdempotencyBegin::Mismatch));
    }
    let mut listed = database.user_orders(user_id, None, 100).await.unwrap();
    order_ids.sort();
    order_ids.reverse();
    listed.truncate(KEYS + 1);
    assert_eq!(listed, order_ids, "newest first, each once");

    // What the atomic intake takes in on its first start: every index row, and the keys that
    // have not expired.
    let mut everything = database.all_user_orders().await.unwrap();
    everything.sort();
    let mut expected: Vec<_> = order_ids.iter().map(|order| (user_id, *order)).collect();
    expected.sort();
    assert_eq!(everything, expected);
    // A key claimed and never completed (its request died) is taken in too, without a response.
    database
        .idempotency_begin(
            "orders:pending",
            "pending-hash",
            "pending-order",
            now_ms,
            lease_ms,
            ttl_ms,
        )
        .await
        .unwrap();
    let mut keys = database.unexpired_idempotency_keys(now_ms).await.unwrap();
    let pending_at = keys
        .iter()
        .position(|key| key.scope == "orders:pending")
        .expect("the claimed key is taken in");
    let pending = keys.remove(pending_at);
    assert_eq!(pending.response, None);
    assert_eq!(pending.resource_id, "pending-order");
    assert_eq!(pending.request_hash_hex, "pending-hash");
    assert_eq!(keys.len(), KEYS);
    assert!(keys.iter().all(|key| {
        key.scope.starts_with("orders:test:")
            && key.request_hash_hex == "same-hash"
            && key
                .response
                .as_ref()
                .is_some_and(|(status, _)| *status == 202)
            && key.expires_at_ms == now_ms + ttl_ms
    }));
    assert!(
        database
            .unexpired_idempotency_keys(now_ms + ttl_ms)
            .await
            .unwrap()
            .is_empty(),
        "expired keys are not taken in"
    );
}
