//! Idempotency records in SQL: the in-process default (see [`crate::shared`] for the protocol
//! and the Redis variant).

use sqlx::Row;

use super::write_batcher::Claim;
use super::{Database, DbError, db_error};
use crate::platform::order_intake::ImportedKey;
use crate::shared::{IdempotencyBegin, StoredResponse};

impl Database {
    pub async fn idempotency_begin(
        &self,
        scope: &str,
        request_hash: &str,
        resource_id: &str,
        now_ms: i64,
        lease_ms: i64,
        ttl_ms: i64,
    ) -> Result<IdempotencyBegin, DbError> {
        let claimed = self
            .batcher()
            .claim(Claim {
                scope: scope.to_string(),
                request_hash: request_hash.to_string(),
                resource_id: resource_id.to_string(),
                lease_until_ms: now_ms + lease_ms,
                expires_at_ms: now_ms + ttl_ms,
            })
            .await?;
        if claimed {
            return Ok(IdempotencyBegin::Started {
                resource_id: resource_id.to_string(),
            });
        }
        let row = sqlx::query(
            "SELECT request_hash, resource_id, lease_until_ms, response_status, response_body, \
             expires_at_ms FROM idempotency_keys WHERE scope = $1",
        )
        .bind(scope)
        .fetch_optional(self.pool())
        .await
        .map_err(db_error("reading an idempotency key"))?;
        let Some(row) = row else {
            // Abandoned between the insert and the read: its owner gave it up; retry later.
            return Ok(IdempotencyBegin::InProgress);
        };
        let read = || db_error("reading an idempotency key");
        let expires_at_ms: i64 = row.try_get("expires_at_ms").map_err(read())?;
        if expires_at_ms <= now_ms {
            // An expired key is as if never written: the new request takes it afresh.
            let replaced = sqlx::query(
                "UPDATE idempotency_keys SET request_hash = $1, resource_id = $2, lease_until_ms = $3, \
                 response_status = NULL, response_body = NULL, expires_at_ms = $4 \
                 WHERE scope = $5 AND expires_at_ms = $6",
            )
            .bind(request_hash)
            .bind(resource_id)
            .bind(now_ms + lease_ms)
            .bind(now_ms + ttl_ms)
            .bind(scope)
            .bind(expires_at_ms)
            .execute(self.pool())
            .await
            .map_err(db_error("renewing an expired idempotency key"))?;
            return Ok(if replaced.rows_affected() == 1 {
                IdempotencyBegin::Started {
                    resource_id: resource_id.to_string(),
                }
            } else {
                IdempotencyBegin::InProgress
            });
        }
        let stored_hash: String = row.try_get("request_hash").map_err(read())?;
        if stored_hash != request_hash {
            return Ok(IdempotencyBegin::Mismatch);
        }
        let stored_resource: String = row.try_get("resource_id").map_err(read())?;
        let status: Option<i64> = row.try_get("response_status").map_err(read())?;
        let body: Option<String> = row.try_get("response_body").map_err(read())?;
        if let (Some(status), Some(body)) = (status, body) {
            return Ok(IdempotencyBegin::Completed(StoredResponse {
                status: status as u16,
                body,
                resource_id: stored_resource,
            }));
        }
        let lease_until_ms: i64 = row.try_get("lease_until_ms").map_err(read())?;
        if lease_until_ms > now_ms {
            return Ok(IdempotencyBegin::InProgress);
        }
        // The first attempt died mid-way; take over its lease and its resource id, so the
        // retry produces the same order rather than a second one.
        let taken = sqlx::query(
            "UPDATE idempotency_keys SET lease_until_ms = $1 WHERE scope = $2 AND lease_until_ms = $3 \
             AND response_status IS NULL",
        )
        .bind(now_ms + lease_ms)
        .bind(scope)
        .bind(lease_until_ms)
        .execute(self.pool())
        .await
        .map_err(db_error("taking over an idempotency key"))?;
        if taken.rows_affected() == 1 {
            Ok(IdempotencyBegin::Started {
                resource_id: stored_resource,
            })
        } else {
            Ok(IdempotencyBegin::InProgress)
        }
    }

    pub async fn idempotency_complete(
        &self,
        scope: &str,
        response: &StoredResponse,
    ) -> Result<(), DbError> {
        self.batcher()
            .complete(
                scope.to_string(),
                i64::from(response.status),
                response.body.clone(),
            )
            .await
    }

    /// Gives a claimed key up after a failure that produced nothing, so a retry starts over.
    pub async fn idempotency_abandon(&self, scope: &str) -> Result<(), DbError> {
        sqlx::query("DELETE FROM idempotency_keys WHERE scope = $1 AND response_status IS NULL")
            .bind(scope)
            .execute(self.pool())
            .await
            .map_err(db_error("abandoning an idempotency key"))?;
        Ok(())
    }

    /// Keys that have not expired by `now_ms`, completed or not, for the one-time move to the
    /// atomic intake.
    pub async fn unexpired_idempotency_keys(
        &self,
        now_ms: i64,
    ) -> Result<Vec<ImportedKey>, DbError> {
        let rows = sqlx::query(
            "SELECT scope, request_hash, resource_id, response_status, response_body, expires_at_ms \
             FROM idempotency_keys WHERE expires_at_ms > $1",
        )
        .bind(now_ms)
        .fetch_all(self.pool())
        .await
        .map_err(db_error("reading idempotency keys"))?;
        let read = || db_error("reading an idempotency key");
        rows.iter()
            .map(|row| {
                let status: Option<i64> = row.try_get("response_status").map_err(read())?;
                let body: Option<String> = row.try_get("response_body").map_err(read())?;
                Ok(ImportedKey {
                    scope: row.try_get("scope").map_err(read())?,
                    request_hash_hex: row.try_get("request_hash").map_err(read())?,
                    resource_id: row.try_get("resource_id").map_err(read())?,
                    response: status.zip(body).map(|(status, body)| (status as u16, body)),
                    expires_at_ms: row.try_get("expires_at_ms").map_err(read())?,
                })
            })
            .collect()
    }
}
