//! The order intake of one process: a placed order's command, its idempotency record and its
//! entry in its user's order index go to the embedded log's database in ONE atomic, durable
//! write (see [`orderflow_runtime::LogBackend::produce_with_state`]).
//!
//! Used when the log is embedded and the shared state is in-process (the default platform);
//! with Redis, or a log that keeps topics apart from state, the API keeps idempotency keys in
//! [`crate::shared`] and the index in SQL, in separate writes.
//!
//! # The protocol
//! - [`AtomicIntake::begin`] first claims the key *in memory*: a second request with the same
//!   key while the first runs is refused at once (409). The claim is released only after the
//!   first request's write is durable or has failed, even if its client went away, because
//!   the producer thread holds it until then.
//! - It then reads the key's stored record. A live record with the same body hash replays its
//!   response; with another hash it is a client error (422). An expired record is as if never
//!   written.
//! - Otherwise the caller appends [`AtomicIntake::append`]: the command, the user-index entry,
//!   and the record with the response (which names the command's offset: it is completed
//!   once the offset is known, inside the same write).
//!
//! So there is no lease and no take-over: after a crash either all three are on disk (a
//! retry replays the response) or none is (a retry starts afresh). The SQL path needs both,
//! because its claim, command and response are separate writes.
//!
//! Expired records are deleted by [`AtomicIntake::sweep_expired`], through an index by expiry
//! time, under the same in-memory claim as requests, so a sweep never deletes a record a
//! request is renewing.

use std::collections::HashSet;
use std::ops::{Bound, ControlFlow};
use std::sync::{Arc, Mutex};

use orderflow_runtime::LogRecord;
use orderflow_runtime::log::StatefulAppend;
use orderflow_schemas::ids::{OrderId, UserId};
use orderflow_state_stores::{
    Codec, CompactCodec, Durability, Space, StorageEngine, StoreError, WriteBatch,
};
use serde::{Deserialize, Serialize};

use crate::shared::StoredResponse;

/// Scope (`orders:<user>:<key>`) -> [`IdempotencyRecord`].
pub const IDEMPOTENCY_SPACE: &str = "orderflow.ingress.idempotency";
/// Expiry time (8 bytes, big-endian, offset so that order is time order) ++ scope -> nothing.
pub const IDEMPOTENCY_EXPIRY_SPACE: &str = "orderflow.ingress.idempotency-expiry";
/// User id (16 bytes) ++ order id (16 bytes, UUIDv7: byte order is creation order) -> nothing.
pub const USER_ORDERS_SPACE: &str = "orderflow.ingress.user-orders";
/// Markers of one-time steps (the import of what the SQL path wrote before).
const META_SPACE: &str = "orderflow.ingress.meta";
const IMPORTED_FROM_SQL: &[u8] = b"imported-from-sql";

/// A completed request, kept for replay until it expires; or, imported from the SQL path, a
/// request that claimed its key and may have placed its order without storing its response
/// (`status` [`PENDING`]): a retry places the same order id again, which the saga recognizes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct IdempotencyRecord {
    request_hash: [u8; 32],
    status: u16,
    body: String,
    resource_id: String,
    expires_at_ms: i64,
}

/// The status of a record without a response (see [`IdempotencyRecord`]).
const PENDING: u16 = 0;

/// A key of the SQL path, taken in on the intake's first start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedKey {
    pub scope: String,
    /// The body hash as the SQL path stored it (64 hex digits).
    pub request_hash_hex: String,
    pub resource_id: String,
    /// `None`: claimed, never completed.
    pub response: Option<(u16, String)>,
    pub expires_at_ms: i64,
}

/// What [`AtomicIntake::begin`] found.
#[derive(Debug)]
pub enum IntakeBegin {
    /// A new request: append with this claim. `reuse` is the order id a request imported from
    /// the SQL path claimed and may have placed: the retry must place that id again.
    Fresh {
        claim: InFlightClaim,
        reuse: Option<OrderId>,
    },
    /// The key was completed with the same body: replay.
    Completed(StoredResponse),
    /// The key was used with another body.
    Mismatch,
    /// A request with this key is running.
    InProgress,
}

/// A key claimed by a running request; released when dropped.
#[derive(Debug)]
pub struct InFlightClaim {
    in_flight: Arc<Mutex<HashSet<String>>>,
    scope: String,
}

impl Drop for InFlightClaim {
    fn drop(&mut self) {
        self.in_flight
            .lock()
            .expect("in-flight keys lock poisoned")
            .remove(&self.scope);
    }
}

/// The atomic order intake (module doc).
#[derive(Debug, Clone)]
pub struct AtomicIntake {
    engine: StorageEngine,
    keys: Space,
    expiry: Space,
    user_orders: Space,
    meta: Space,
    in_flight: Arc<Mutex<HashSet<String>>>,
}

/// Key of the expiry index: times sort as unsigned big-endian after flipping the sign bit.
fn expiry_key(expires_at_ms: i64, scope: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(8 + scope.len());
    key.extend_from_slice(&((expires_at_ms as u64) ^ (1 << 63)).to_be_bytes());
    key.extend_from_slice(scope.as_bytes());
    key
}

fn user_order_key(user_id: UserId, order_id: OrderId) -> Vec<u8> {
    let mut key = Vec::with_capacity(32);
    key.extend_from_slice(user_id.as_uuid().as_bytes());
    key.extend_from_slice(order_id.as_uuid().as_bytes());
    key
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn decode_record(scope: &str, bytes: &[u8]) -> Result<IdempotencyRecord, StoreError> {
    CompactCodec
        .decode(bytes)
        .map_err(|message| StoreError::Decode {
            store: IDEMPOTENCY_SPACE.to_string(),
            key_hex: hex(scope.as_bytes()),
            message,
        })
}

impl AtomicIntake {
    /// Opens (creating if needed) the intake's keyspaces in `engine`, the log's database.
    pub fn open(engine: &StorageEngine) -> Result<Self, StoreError> {
        Ok(Self {
            engine: engine.clone(),
            keys: engine.space(IDEMPOTENCY_SPACE)?,
            expiry: engine.scan_only_space(IDEMPOTENCY_EXPIRY_SPACE)?,
            user_orders: engine.space(USER_ORDERS_SPACE)?,
            meta: engine.space(META_SPACE)?,
            in_flight: Arc::default(),
        })
    }

    fn claim(&self, scope: &str) -> Option<InFlightClaim> {
        let mut in_flight = self.in_flight.lock().expect("in-flight keys lock poisoned");
        in_flight.insert(scope.to_string()).then(|| InFlightClaim {
            in_flight: self.in_flight.clone(),
            scope: scope.to_string(),
        })
    }

    /// Claims `scope` and reads what it holds (module doc).
    pub fn begin(
        &self,
        scope: &str,
        request_hash: &[u8; 32],
        now_ms: i64,
    ) -> Result<IntakeBegin, StoreError> {
        let Some(claim) = self.claim(scope) else {
            return Ok(IntakeBegin::InProgress);
        };
        let Some(bytes) = self.engine.get(&self.keys, scope.as_bytes())? else {
            return Ok(IntakeBegin::Fresh { claim, reuse: None });
        };
        let record = decode_record(scope, &bytes)?;
        Ok(if record.expires_at_ms <= now_ms {
            IntakeBegin::Fresh { claim, reuse: None }
        } else if &record.request_hash != request_hash {
            IntakeBegin::Mismatch
        } else if record.status == PENDING {
            IntakeBegin::Fresh {
                claim,
                reuse: record.resource_id.parse().ok(),
            }
        } else {
            IntakeBegin::Completed(StoredResponse {
                status: record.status,
                body: record.body,
                resource_id: record.resource_id,
            })
        })
    }

    /// The append that places an order: `command` (the order's only record), its user-index
    /// entry, and the key's record with the response `respond` writes for the command's
    /// offset, kept until `expires_at_ms`.
    #[allow(clippy::too_many_arguments)]
    pub fn append(
        &self,
        command: (String, u32, LogRecord),
        user_id: UserId,
        order_id: OrderId,
        scope: &str,
        request_hash: [u8; 32],
        expires_at_ms: i64,
        respond: impl FnOnce(u64) -> String + Send + 'static,
    ) -> StatefulAppend {
        let mut state = WriteBatch::with_capacity(3);
        state.put(
            &self.user_orders,
            user_order_key(user_id, order_id),
            Vec::new(),
        );
        state.put(&self.expiry, expiry_key(expires_at_ms, scope), Vec::new());
        let keys = self.keys.clone();
        let scope = scope.to_string();
        StatefulAppend {
            records: vec![command],
            state,
            offset_dependent: Some(Box::new(move |offsets: &[u64], batch: &mut WriteBatch| {
                let record = IdempotencyRecord {
                    request_hash,
                    status: 202,
                    body: respond(offsets[0]),
                    resource_id: order_id.to_string(),
                    expires_at_ms,
                };
                let mut value = Vec::with_capacity(64 + record.body.len());
                // A record of plain fields always encodes.
                if CompactCodec.encode(&record, &mut value).is_ok() {
                    batch.put(&keys, scope.into_bytes(), value);
                }
            })),
        }
    }

    /// Whether `user_id` placed `order_id`.
    pub fn user_owns_order(&self, user_id: UserId, order_id: OrderId) -> Result<bool, StoreError> {
        Ok(self
            .engine
            .get(&self.user_orders, &user_order_key(user_id, order_id))?
            .is_some())
    }

    /// The user's orders, newest first, older than `before` when given.
    pub fn user_orders(
        &self,
        user_id: UserId,
        before: Option<OrderId>,
        limit: u32,
    ) -> Result<Vec<OrderId>, StoreError> {
        let prefix = user_id.as_uuid().as_bytes().to_vec();
        let upper = match before {
            Some(before) => Bound::Excluded(user_order_key(user_id, before)),
            // The last key this user can have.
            None => {
                let mut last = prefix.clone();
                last.extend_from_slice(&[0xff; 16]);
                Bound::Included(last)
            }
        };
        let mut orders = Vec::new();
        let mut failure = None;
        self.engine.scan(
            &self.user_orders,
            Bound::Included(&prefix),
            upper.as_ref().map(Vec::as_slice),
            true,
            &mut |key, _| {
                let parsed = key
                    .get(16..)
                    .and_then(|rest| <[u8; 16]>::try_from(rest).ok())
                    .and_then(|bytes| OrderId::from_uuid(uuid::Uuid::from_bytes(bytes)).ok());
                match parsed {
                    Some(order_id) => orders.push(order_id),
                    None => failure = Some(key.to_vec()),
                }
                if orders.len() >= limit as usize || failure.is_some() {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            },
        )?;
        match failure {
            Some(key) => Err(StoreError::Decode {
                store: USER_ORDERS_SPACE.to_string(),
                key_hex: hex(&key),
                message: "not a user id and an order id".to_string(),
            }),
            None => Ok(orders),
        }
    }

    /// Deletes up to `max` records that expired by `now_ms`, and their index entries; returns
    /// how many index entries it removed. Keys a request holds are left for the next sweep.
    pub fn sweep_expired(&self, now_ms: i64, max: usize) -> Result<usize, StoreError> {
        let mut due = Vec::new();
        // Expired means `expires_at_ms <= now_ms`, as in `begin`.
        let upper = expiry_key(now_ms.saturating_add(1), "");
        self.engine.scan(
            &self.expiry,
            Bound::Unbounded,
            Bound::Excluded(&upper),
            false,
            &mut |key, _| {
                due.push(key.to_vec());
                if due.len() >= max {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            },
        )?;
        let mut batch = WriteBatch::with_capacity(due.len() * 2);
        let mut claims = Vec::with_capacity(due.len());
        let mut removed = 0;
        for key in due {
            removed += 1;
            let scope = key
                .get(8..)
                .and_then(|bytes| std::str::from_utf8(bytes).ok());
            let expired_at =
                (u64::from_be_bytes(key[..8].try_into().expect("8 bytes")) ^ (1 << 63)) as i64;
            // The index entry goes in every case: only the record it was written with names
            // its time, and that record is deleted with it below.
            batch.delete(&self.expiry, key.clone());
            let Some(scope) = scope else {
                continue;
            };
            // A record renewed since (a live key) is neither claimed nor deleted, so its
            // replays are never refused for the sweep's sake.
            if !self.record_expired_at(scope, expired_at)? {
                continue;
            }
            // Claimed, then read again: a request that renewed it between the two reads has
            // finished its write (it held the claim until then).
            let Some(claim) = self.claim(scope) else {
                continue;
            };
            if self.record_expired_at(scope, expired_at)? {
                batch.delete(&self.keys, scope.as_bytes().to_vec());
            }
            claims.push(claim);
        }
        self.engine.commit(batch, Durability::Buffered)?;
        drop(claims);
        Ok(removed)
    }

    /// Whether the record of `scope` is the one that expires at `expired_at`. A record that
    /// cannot be decoded counts as expired (logged), so it cannot stop every later sweep.
    fn record_expired_at(&self, scope: &str, expired_at: i64) -> Result<bool, StoreError> {
        let Some(bytes) = self.engine.get(&self.keys, scope.as_bytes())? else {
            return Ok(false);
        };
        Ok(match decode_record(scope, &bytes) {
            Ok(record) => record.expires_at_ms == expired_at,
            Err(error) => {
                tracing::warn!(%error, "deleting an idempotency record that cannot be read");
                true
            }
        })
    }

    /// Whether the one-time import of the SQL path's rows ran.
    pub fn imported_from_sql(&self) -> Result<bool, StoreError> {
        Ok(self.engine.get(&self.meta, IMPORTED_FROM_SQL)?.is_some())
    }

    /// Takes in what the SQL path wrote before this intake existed (the user index, and the
    /// keys not yet expired, completed or not), once: the import and its marker are one write.
    pub fn import_from_sql(
        &self,
        user_orders: Vec<(UserId, OrderId)>,
        keys: Vec<ImportedKey>,
    ) -> Result<(), StoreError> {
        let mut batch = WriteBatch::with_capacity(user_orders.len() + keys.len() * 2 + 1);
        for (user_id, order_id) in user_orders {
            batch.put(
                &self.user_orders,
                user_order_key(user_id, order_id),
                Vec::new(),
            );
        }
        for key in keys {
            let Some(request_hash) = parse_hex_hash(&key.request_hash_hex) else {
                tracing::warn!(scope = %key.scope, "skipping an idempotency key whose hash is not 64 hex digits");
                continue;
            };
            let (status, body) = key.response.unwrap_or((PENDING, String::new()));
            let record = IdempotencyRecord {
                request_hash,
                status,
                body,
                resource_id: key.resource_id,
                expires_at_ms: key.expires_at_ms,
            };
            let mut value = Vec::new();
            if CompactCodec.encode(&record, &mut value).is_ok() {
                batch.put(
                    &self.expiry,
                    expiry_key(key.expires_at_ms, &key.scope),
                    Vec::new(),
                );
                batch.put(&self.keys, key.scope.into_bytes(), value);
            }
        }
        batch.put(&self.meta, IMPORTED_FROM_SQL.to_vec(), Vec::new());
        self.engine.commit(batch, Durability::Fsync)
    }
}

/// The SHA-256 of a request body, as the SQL path stored it (64 hex digits).
fn parse_hex_hash(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 {
        return None;
    }
    let mut hash = [0u8; 32];
    for (index, byte) in hash.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(index * 2..index * 2 + 2)?, 16).ok()?;
    }
    Some(hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_keys_sort_in_time_order_across_the_sign() {
        let times = [-5_i64, -1, 0, 1, 1_700_000_000_000, i64::MAX];
        let keys: Vec<_> = times.iter().map(|time| expiry_key(*time, "s")).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
    }

    #[test]
    fn imported_rows_list_newest_first_replay_and_mark_the_import() {
        let engine = StorageEngine::in_memory();
        let intake = AtomicIntake::open(&engine).unwrap();
        assert!(!intake.imported_from_sql().unwrap());
        let (user, other) = (UserId::generate(1_000), UserId::generate(1_001));
        let orders: Vec<OrderId> = (0..5).map(|at| OrderId::generate(2_000 + at)).collect();
        let mut rows: Vec<_> = orders.iter().map(|order| (user, *order)).collect();
        rows.push((other, OrderId::generate(3_000)));
        let hash = [7u8; 32];
        let pending_order = OrderId::generate(4_000);
        let keys = vec![
            ImportedKey {
                scope: "orders:u:k".to_string(),
                request_hash_hex: hex(&hash),
                resource_id: orders[0].to_string(),
                response: Some((202, "{}".to_string())),
                expires_at_ms: 10_000,
            },
            ImportedKey {
                scope: "orders:u:pending".to_string(),
                request_hash_hex: hex(&hash),
                resource_id: pending_order.to_string(),
                response: None,
                expires_at_ms: 10_000,
            },
        ];
        intake.import_from_sql(rows, keys).unwrap();
        assert!(intake.imported_from_sql().unwrap());
        assert_eq!(
            intake.user_orders(user, None, 3).unwrap(),
            vec![orders[4], orders[3], orders[2]]
        );
        assert_eq!(
            intake.user_orders(user, Some(orders[2]), 3).unwrap(),
            vec![orders[1], orders[0]]
        );
        assert!(intake.user_owns_order(user, orders[0]).unwrap());
        assert!(!intake.user_owns_order(other, orders[0]).unwrap());
        match intake.begin("orders:u:k", &hash, 9_999).unwrap() {
            IntakeBegin::Completed(stored) => assert_eq!(stored.resource_id, orders[0].to_string()),
            other => panic!("expected the imported response, got {other:?}"),
        }
        assert!(matches!(
            intake.begin("orders:u:k", &[0; 32], 9_999).unwrap(),
            IntakeBegin::Mismatch
        ));
        assert!(matches!(
            intake.begin("orders:u:k", &[0; 32], 10_000).unwrap(),
            IntakeBegin::Fresh { reuse: None, .. }
        ));
        // A key the SQL path claimed but never completed: the retry places the same order.
        match intake.begin("orders:u:pending", &hash, 9_999).unwrap() {
            IntakeBegin::Fresh { reuse, .. } => assert_eq!(reuse, Some(pending_order)),
            other => panic!("expected a fresh start with the claimed order id, got {other:?}"),
        }
        assert!(matches!(
            intake.begin("orders:u:pending", &[1; 32], 9_999).unwrap(),
            IntakeBegin::Mismatch
        ));
    }

    #[test]
    fn hex_hashes_parse_and_bad_ones_are_refused() {
        let hex = "00ff".repeat(16);
        let parsed = parse_hex_hash(&hex).unwrap();
        assert_eq!(parsed[0], 0);
        assert_eq!(parsed[1], 0xff);
        assert_eq!(parse_hex_hash("abc"), None);
        assert_eq!(parse_hex_hash(&"zz".repeat(32)), None);
    }
}
