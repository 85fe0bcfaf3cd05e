//! The user-event outbox: events written in the same SQL transaction as the change they
//! describe, relayed to `user-events` afterwards.
//!
//! # The relay protocol
//! Rows are numbered by an increasing `seq`. The relay reads rows after the last relayed seq,
//! appends their events to `user-events` and, in the same atomic log commit, records the next
//! seq as the position of the consumer group `orderflow-ingress-outbox` (see
//! [`orderflow_runtime::log::LogTransaction`]). A crash before that commit relays the rows
//! again from the old position; a crash after it finds the new position: each event reaches
//! the topic exactly once. Relayed rows are deleted afterwards; deleting is only cleanup, the
//! position is what counts. On Kafka the same shape is a transactional producer writing the
//! events and the position in one transaction.
//!
//! # Why rows commit in `seq` order
//! The relay's position is a high-water mark, so a row must never become visible after a
//! row with a higher `seq`. SQLite has one writer at a time, so it never does. PostgreSQL
//! hands out `BIGSERIAL` values at insert time and commits in any order: transaction A takes
//! seq 5, B takes seq 6 and commits first, the relay moves past 6, and A's row would never be
//! relayed. So on PostgreSQL every transaction that writes to the outbox first takes one
//! transaction-scoped advisory lock ([`OUTBOX_LOCK`]) and holds it until it commits: outbox
//! writers commit one at a time, in `seq` order. User writes are rare (registration, profile
//! changes), so serializing them costs nothing that matters.

use orderflow_schemas::ids::UserId;
use orderflow_schemas::messages::user_events::UserEvent;
use sqlx::{Any, Row, Transaction};

use super::{Database, DbError, Dialect, db_error};

/// The PostgreSQL advisory lock that serializes outbox writers (any constant unique to this
/// purpose; "outbox" in ASCII).
const OUTBOX_LOCK: i64 = 0x6f75_7462_6f78;

/// One event waiting to be relayed.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRow {
    pub seq: i64,
    pub user_id: UserId,
    pub event: UserEvent,
    pub created_at_ms: i64,
}

pub(crate) async fn enqueue(
    transaction: &mut Transaction<'_, Any>,
    dialect: Dialect,
    user_id: UserId,
    event: &UserEvent,
    now_ms: i64,
) -> Result<(), DbError> {
    if dialect == Dialect::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(OUTBOX_LOCK)
            .execute(&mut **transaction)
            .await
            .map_err(db_error("locking the user outbox"))?;
    }
    sqlx::query("INSERT INTO user_outbox (user_id, payload, created_at_ms) VALUES ($1, $2, $3)")
        .bind(user_id.to_string())
        .bind(serde_json::to_string(event).expect("user events encode"))
        .bind(now_ms)
        .execute(&mut **transaction)
        .await
        .map_err(db_error("writing to the user outbox"))?;
    Ok(())
}

impl Database {
    /// Rows with `seq >= from_seq`, oldest first.
    pub async fn outbox_from(&self, from_seq: i64, limit: i64) -> Result<Vec<OutboxRow>, DbError> {
        let rows = sqlx::query(
            "SELECT seq, user_id, payload, created_at_ms FROM user_outbox \
             WHERE seq >= $1 ORDER BY seq LIMIT $2",
        )
        .bind(from_seq)
        .bind(limit)
        .fetch_all(self.pool())
        .await
        .map_err(db_error("reading the user outbox"))?;
        rows.iter()
            .map(|row| {
                let read = db_error("reading an outbox row");
                let user_id: String = row.try_get("user_id").map_err(read)?;
                let payload: String = row
                    .try_get("payload")
                    .map_err(db_error("reading an outbox row"))?;
                let corrupt = |reason: String| DbError {
                    what: "decoding an outbox row",
                    source: sqlx::Error::Decode(reason.into()),
                };
                Ok(OutboxRow {
                    seq: row
                        .try_get("seq")
                        .map_err(db_error("reading an outbox row"))?,
                    user_id: user_id
                        .parse()
                        .map_err(|error| corrupt(format!("user id `{user_id}`: {error}")))?,
                    event: serde_json::from_str(&payload)
                        .map_err(|error| corrupt(format!("event `{payload}`: {error}")))?,
                    created_at_ms: row
                        .try_get("created_at_ms")
                        .map_err(db_error("reading an outbox row"))?,
                })
            })
            .collect()
    }

    /// Deletes relayed rows (`seq < before_seq`).
    pub async fn prune_outbox(&self, before_seq: i64) -> Result<u64, DbError> {
        let done = sqlx::query("DELETE FROM user_outbox WHERE seq < $1")
            .bind(before_seq)
            .execute(self.pool())
            .await
            .map_err(db_error("pruning the user outbox"))?;
        Ok(done.rows_affected())
    }
}
