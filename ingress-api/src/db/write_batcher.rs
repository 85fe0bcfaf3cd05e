//! Group commit for the SQL writes on the order path.
//!
//! Every `POST /orders` claims its idempotency key, indexes the order under its user and stores
//! its response: three small writes. One statement per write made the user database the
//! bottleneck of the API (each statement is a round trip to sqlx's connection worker, and
//! SQLite has one writer), so these writes go through one task instead. It takes every write
//! waiting at the moment, runs them as one multi-row statement per kind inside ONE transaction,
//! and answers each caller. Under load one commit serves many requests; under light load a
//! write waits for no one. Callers still see their own write complete before they go on, so
//! the order of each request's writes is unchanged.

use std::collections::HashSet;

use sqlx::{AnyPool, Row};
use tokio::sync::{mpsc, oneshot};

use super::{DbError, Dialect, db_error};

/// Writes per transaction at most; bounds the statement size (5 parameters per claim).
const MAX_BATCH: usize = 200;

type Reply<T> = oneshot::Sender<Result<T, DbError>>;

/// A new idempotency key (see [`crate::shared`] for the protocol).
#[derive(Debug)]
pub struct Claim {
    pub scope: String,
    pub request_hash: String,
    pub resource_id: String,
    pub lease_until_ms: i64,
    pub expires_at_ms: i64,
}

enum Write {
    /// Answers whether the key was new (false: it exists, and the caller reads it).
    Claim(Claim, Reply<bool>),
    IndexOrder {
        user_id: String,
        order_id: String,
        created_at_ms: i64,
        reply: Reply<()>,
    },
    Complete {
        scope: String,
        status: i64,
        body: String,
        reply: Reply<()>,
    },
}

/// The handle; clones share the task. The task ends when the last handle is dropped.
#[derive(Debug, Clone)]
pub struct WriteBatcher {
    writes: mpsc::UnboundedSender<Write>,
}

fn stopped() -> DbError {
    DbError {
        what: "writing through the batcher",
        source: sqlx::Error::PoolClosed,
    }
}

impl WriteBatcher {
    /// Starts the task on the current tokio runtime.
    pub fn start(pool: AnyPool, dialect: Dialect) -> Self {
        let (writes, mut receiver) = mpsc::unbounded_channel::<Write>();
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(MAX_BATCH);
            while receiver.recv_many(&mut batch, MAX_BATCH).await > 0 {
                commit(&pool, dialect, std::mem::take(&mut batch)).await;
            }
        });
        Self { writes }
    }

    async fn send<T>(&self, write: impl FnOnce(Reply<T>) -> Write) -> Result<T, DbError> {
        let (reply, answer) = oneshot::channel();
        self.writes.send(write(reply)).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// Inserts the key unless it exists; true when it was new.
    pub async fn claim(&self, claim: Claim) -> Result<bool, DbError> {
        self.send(|reply| Write::Claim(claim, reply)).await
    }

    pub async fn index_order(
        &self,
        user_id: String,
        order_id: String,
        created_at_ms: i64,
    ) -> Result<(), DbError> {
        self.send(|reply| Write::IndexOrder {
            user_id,
            order_id,
            created_at_ms,
            reply,
        })
        .await
    }

    pub async fn complete(&self, scope: String, status: i64, body: String) -> Result<(), DbError> {
        self.send(|reply| Write::Complete {
            scope,
            status,
            body,
            reply,
        })
        .await
    }
}

/// `($1, $2), ($3, $4), ...`: `rows` groups of `columns` numbered placeholders. SQLite gets
/// `?1, ?2, ...`: to SQLite `$1` is a *named* parameter, and it resolves each name by a linear
/// search of the names before it, so a 200-row statement (1,000 parameters) spent half a
/// million string comparisons in the parser; `?N` is a number.
fn placeholders(dialect: Dialect, rows: usize, columns: usize) -> String {
    let sigil = match dialect {
        Dialect::Sqlite => '?',
        Dialect::Postgres => '$',
    };
    (0..rows)
        .map(|row| {
            let cells: Vec<String> = (1..=columns)
                .map(|column| format!("{sigil}{}", row * columns + column))
                .collect();
            format!("({})", cells.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs one batch in one transaction and answers every write in it.
async fn commit(pool: &AnyPool, dialect: Dialect, batch: Vec<Write>) {
    let mut claims = Vec::new();
    let mut indexes = Vec::new();
    let mut completions = Vec::new();
    for write in batch {
        match write {
            Write::Claim(claim, reply) => claims.push((claim, reply)),
            Write::IndexOrder {
                user_id,
                order_id,
                created_at_ms,
                reply,
            } => indexes.push(((user_id, order_id, created_at_ms), reply)),
            Write::Complete {
                scope,
                status,
                body,
                reply,
            } => completions.push(((scope, status, body), reply)),
        }
    }
    // Two claims of one key in one batch: only the first may insert; the second answers
    // "exists" and its caller reads the first's record (409 while it runs).
    let mut seen = HashSet::new();
    let (fresh, repeated): (Vec<_>, Vec<_>) = claims
        .into_iter()
        .partition(|(claim, _)| seen.insert(claim.scope.clone()));
    for (_, reply) in repeated {
        let _ = reply.send(Ok(false));
    }
    let fresh_claims: Vec<&Claim> = fresh.iter().map(|(claim, _)| claim).collect();
    let index_rows: Vec<_> = indexes.iter().map(|(row, _)| row).collect();
    let completion_rows: Vec<_> = completions.iter().map(|(row, _)| row).collect();
    match write_all(pool, dialect, &fresh_claims, &index_rows, &completion_rows).await {
        Ok(inserted) => {
            for (claim, reply) in fresh {
                let _ = reply.send(Ok(inserted.contains(&claim.scope)));
            }
            for (_, reply) in indexes {
                let _ = reply.send(Ok(()));
            }
            for (_, reply) in completions {
                let _ = reply.send(Ok(()));
            }
        }
        Err(error) => {
            // The batch failed as a whole (one bad row, a busy database): one caller's problem
            // must not fail a hundred others, so each write is retried on its own and answered
            // with its own outcome.
            tracing::warn!(%error, writes = fresh.len() + indexes.len() + completions.len(),
                "a batch of order writes failed; retrying each write alone");
            for (claim, reply) in fresh {
                let inserted = write_all(pool, dialect, &[&claim], &[], &[]).await;
                let _ = reply.send(inserted.map(|inserted| inserted.contains(&claim.scope)));
            }
            for (row, reply) in indexes {
                let _ = reply.send(write_all(pool, dialect, &[], &[&row], &[]).await.map(drop));
            }
            for (row, reply) in completions {
                let _ = reply.send(write_all(pool, dialect, &[], &[], &[&row]).await.map(drop));
            }
        }
    }
}

/// The statements of one batch; returns the scopes of the claims that inserted.
async fn write_all(
    pool: &AnyPool,
    dialect: Dialect,
    claims: &[&Claim],
    indexes: &[&(String, String, i64)],
    completions: &[&(String, i64, String)],
) -> Result<HashSet<String>, DbError> {
    let mut transaction = pool
        .begin()
        .await
        .map_err(db_error("starting a batch of order writes"))?;
    let mut inserted = HashSet::new();
    if !claims.is_empty() {
        let sql = format!(
            "INSERT INTO idempotency_keys \
             (scope, request_hash, resource_id, lease_until_ms, expires_at_ms) VALUES {} \
             ON CONFLICT (scope) DO NOTHING RETURNING scope",
            placeholders(dialect, claims.len(), 5)
        );
        // The text varies with the batch size: not worth a slot in the statement cache.
        let mut query = sqlx::query(&sql).persistent(false);
        for claim in claims {
            query = query
                .bind(&claim.scope)
                .bind(&claim.request_hash)
                .bind(&claim.resource_id)
                .bind(claim.lease_until_ms)
                .bind(claim.expires_at_ms);
        }
        let rows = query
            .fetch_all(&mut *transaction)
            .await
            .map_err(db_error("claiming idempotency keys"))?;
        for row in rows {
            let scope: String = row
                .try_get("scope")
                .map_err(db_error("reading claimed idempotency keys"))?;
            inserted.insert(scope);
        }
    }
    if !indexes.is_empty() {
        let sql = format!(
            "INSERT INTO user_orders (user_id, order_id, created_at_ms) VALUES {} \
             ON CONFLICT (user_id, order_id) DO NOTHING",
            placeholders(dialect, indexes.len(), 3)
        );
        // The text varies with the batch size: not worth a slot in the statement cache.
        let mut query = sqlx::query(&sql).persistent(false);
        for (user_id, order_id, created_at_ms) in indexes {
            query = query.bind(user_id).bind(order_id).bind(*created_at_ms);
        }
        query
            .execute(&mut *transaction)
            .await
            .map_err(db_error("indexing orders under their users"))?;
    }
    if !completions.is_empty() {
        // Both dialects name the columns of a VALUES list column1, column2, ...
        let sql = format!(
            "UPDATE idempotency_keys SET response_status = v.column2, response_body = v.column3 \
             FROM (VALUES {}) AS v WHERE idempotency_keys.scope = v.column1",
            placeholders(dialect, completions.len(), 3)
        );
        // The text varies with the batch size: not worth a slot in the statement cache.
        let mut query = sqlx::query(&sql).persistent(false);
        for (scope, status, body) in completions {
            query = query.bind(scope).bind(*status).bind(body);
        }
        query
            .execute(&mut *transaction)
            .await
            .map_err(db_error("storing idempotent responses"))?;
    }
    transaction
        .commit()
        .await
        .map_err(db_error("committing a batch of order writes"))?;
    Ok(inserted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_number_every_cell_in_row_order() {
        assert_eq!(placeholders(Dialect::Postgres, 1, 2), "($1, $2)");
        assert_eq!(
            placeholders(Dialect::Postgres, 2, 3),
            "($1, $2, $3), ($4, $5, $6)"
        );
        assert_eq!(
            placeholders(Dialect::Sqlite, 2, 3),
            "(?1, ?2, ?3), (?4, ?5, ?6)"
        );
    }
}
