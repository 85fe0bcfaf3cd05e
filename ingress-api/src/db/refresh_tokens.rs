//! Rotating refresh tokens with reuse detection.
//!
//! Each login starts a *family*. Refreshing marks the presented token used and issues its
//! successor in the same family. Presenting a used token again means two parties hold it (a
//! stolen token, or a replayed one), so the whole family is revoked: the thief and the user both
//! have to log in again, which is the point.

use orderflow_schemas::ids::UserId;
use sqlx::Row;

use super::{Database, DbError, Dialect, db_error};

/// Takes the PostgreSQL advisory lock of a refresh-token family until the transaction ends
/// (the two-key form, a key space apart from the outbox's one-key lock).
async fn lock_family(
    transaction: &mut sqlx::Transaction<'_, sqlx::Any>,
    family_id: &str,
) -> Result<(), DbError> {
    sqlx::query("SELECT pg_advisory_xact_lock(1, hashtext($1))")
        .bind(family_id)
        .execute(&mut **transaction)
        .await
        .map_err(db_error("locking a refresh token family"))?;
    Ok(())
}

/// What presenting a refresh token led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// The token was current; it is now used and the caller issues the successor.
    Rotated { user_id: UserId, family_id: String },
    /// No such token, or it expired.
    Unknown,
    /// The token was already used or revoked: its family is now revoked.
    Reused { family_id: String },
}

impl Database {
    pub async fn insert_refresh_token(
        &self,
        digest: &str,
        family_id: &str,
        user_id: UserId,
        now_ms: i64,
        expires_at_ms: i64,
    ) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO refresh_tokens (digest, family_id, user_id, created_at_ms, expires_at_ms) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(digest)
        .bind(family_id)
        .bind(user_id.to_string())
        .bind(now_ms)
        .bind(expires_at_ms)
        .execute(self.pool())
        .await
        .map_err(db_error("storing a refresh token"))?;
        Ok(())
    }

    /// The family (session) of a stored refresh token, used or not.
    pub async fn refresh_token_family(&self, digest: &str) -> Result<Option<String>, DbError> {
        let row = sqlx::query("SELECT family_id FROM refresh_tokens WHERE digest = $1")
            .bind(digest)
            .fetch_optional(self.pool())
            .await
            .map_err(db_error("reading a refresh token"))?;
        row.map(|row| row.try_get("family_id"))
            .transpose()
            .map_err(db_error("reading a refresh token"))
    }

    /// Presents a refresh token for rotation: if it is current, marks it used and stores its
    /// successor (`successor_digest`, in the same family) in **one transaction**. On
    /// PostgreSQL the claim's row lock is held until the successor exists, so a concurrent
    /// reuse of the same token waits, finds it used, and its family revocation then covers
    /// the successor too; in two separate steps the reuse could revoke the family in between
    /// and the successor would be left alive. A used or revoked token revokes its family
    /// ([`RefreshOutcome::Reused`]).
    pub async fn rotate_refresh_token(
        &self,
        digest: &str,
        successor_digest: &str,
        now_ms: i64,
        successor_expires_at_ms: i64,
    ) -> Result<RefreshOutcome, DbError> {
        let mut transaction = self
            .pool()
            .begin()
            .await
            .map_err(db_error("starting a transaction"))?;
        if self.dialect() == Dialect::Postgres {
            // The family's lock before any row lock, as `revoke_family` takes it (see there).
            let family = sqlx::query("SELECT family_id FROM refresh_tokens WHERE digest = $1")
                .bind(digest)
                .fetch_optional(&mut *transaction)
                .await
                .map_err(db_error("reading a refresh token"))?;
            if let Some(row) = family {
                let family_id: String = row
                    .try_get("family_id")
                    .map_err(db_error("reading a refresh token"))?;
                lock_family(&mut transaction, &family_id).await?;
            }
        }
        let claimed = sqlx::query(
            "UPDATE refresh_tokens SET used_at_ms = $1 WHERE digest = $2 \
             AND used_at_ms IS NULL AND revoked_at_ms IS NULL AND expires_at_ms > $3",
        )
        .bind(now_ms)
        .bind(digest)
        .bind(now_ms)
        .execute(&mut *transaction)
        .await
        .map_err(db_error("using a refresh token"))?;
        let row = sqlx::query(
            "SELECT family_id, user_id, expires_at_ms FROM refresh_tokens WHERE digest = $1",
        )
        .bind(digest)
        .fetch_optional(&mut *transaction)
        .await
        .map_err(db_error("reading a refresh token"))?;
        let Some(row) = row else {
            return Ok(RefreshOutcome::Unknown);
        };
        let read = || db_error("reading a refresh token");
        let family_id: String = row.try_get("family_id").map_err(read())?;
        let user_id: String = row.try_get("user_id").map_err(read())?;
        if claimed.rows_affected() == 1 {
            sqlx::query(
                "INSERT INTO refresh_tokens (digest, family_id, user_id, created_at_ms, expires_at_ms) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(successor_digest)
            .bind(&family_id)
            .bind(&user_id)
            .bind(now_ms)
            .bind(successor_expires_at_ms)
            .execute(&mut *transaction)
            .await
            .map_err(db_error("storing a refresh token"))?;
            transaction
                .commit()
                .await
                .map_err(db_error("committing a refresh token rotation"))?;
            let user_id = user_id.parse().map_err(|error| DbError {
                what: "decoding a refresh token's user",
                source: sqlx::Error::Decode(format!("`{user_id}`: {error}").into()),
            })?;
            return Ok(RefreshOutcome::Rotated { user_id, family_id });
        }
        let expires_at_ms: i64 = row.try_get("expires_at_ms").map_err(read())?;
        drop(transaction);
        if expires_at_ms <= now_ms {
            return Ok(RefreshOutcome::Unknown);
        }
        self.revoke_family(&family_id, now_ms).await?;
        Ok(RefreshOutcome::Reused { family_id })
    }

    /// Revokes every token of a family (logout, or reuse detected).
    ///
    /// On PostgreSQL a rotation in the same family (of another of its tokens: a thief and the
    /// user each holding one) could otherwise insert its successor after this UPDATE's
    /// snapshot and leave it alive; both take the family's advisory lock first, so one waits
    /// for the other: the revocation then sees the successor, or the rotation finds its token
    /// revoked. (SQLite runs one writing transaction at a time anyway.)
    pub async fn revoke_family(&self, family_id: &str, now_ms: i64) -> Result<(), DbError> {
        let mut transaction = self
            .pool()
            .begin()
            .await
            .map_err(db_error("starting a transaction"))?;
        if self.dialect() == Dialect::Postgres {
            lock_family(&mut transaction, family_id).await?;
        }
        sqlx::query(
            "UPDATE refresh_tokens SET revoked_at_ms = $1 WHERE family_id = $2 AND revoked_at_ms IS NULL",
        )
        .bind(now_ms)
        .bind(family_id)
        .execute(&mut *transaction)
        .await
        .map_err(db_error("revoking a refresh token family"))?;
        transaction
            .commit()
            .await
            .map_err(db_error("committing a family's revocation"))
    }
}
