//! The user database through sqlx: SQLite by default, PostgreSQL when configured. One code
//! path serves both (sqlx's `Any` driver, `$n` placeholders, types both dialects share); only
//! the migrations differ, and they are embedded in the binary. (The group-commit batcher's
//! multi-row statements number their placeholders per dialect: see `write_batcher`.)

pub mod idempotency;
pub mod outbox;
pub mod refresh_tokens;
pub mod user_orders;
pub mod users;
pub mod write_batcher;

use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Executor, Row};

use crate::error::IngressError;

/// Which SQL dialect the database speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// One embedded migration.
struct Migration {
    version: i64,
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "users",
        sqlite: include_str!("../../migrations/sqlite/0001_users.sql"),
        postgres: include_str!("../../migrations/postgres/0001_users.sql"),
    },
    Migration {
        version: 2,
        name: "preferences",
        sqlite: include_str!("../../migrations/sqlite/0002_preferences.sql"),
        postgres: include_str!("../../migrations/postgres/0002_preferences.sql"),
    },
];

/// A pool of connections to the user database.
#[derive(Debug, Clone)]
pub struct Database {
    pool: AnyPool,
    dialect: Dialect,
    /// Group commit for the order path's writes.
    batcher: write_batcher::WriteBatcher,
}

/// A database failure, with what was being done.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {source}")]
pub struct DbError {
    pub what: &'static str,
    #[source]
    pub source: sqlx::Error,
}

pub(crate) fn db_error(what: &'static str) -> impl FnOnce(sqlx::Error) -> DbError {
    move |source| DbError { what, source }
}

impl Database {
    /// Connects and applies pending migrations.
    pub async fn connect(url: &str) -> Result<Self, IngressError> {
        sqlx::any::install_default_drivers();
        let dialect = if url.starts_with("sqlite:") {
            Dialect::Sqlite
        } else {
            Dialect::Postgres
        };
        let connect_error = |source| IngressError::Database {
            url: redact(url),
            source,
        };
        let options = match dialect {
            // WAL lets readers run beside the one writer; busy_timeout queues writers instead
            // of failing them; NORMAL syncs at checkpoints, which survives a process crash.
            Dialect::Sqlite => {
                AnyPoolOptions::new()
                    .max_connections(8)
                    .after_connect(|connection, _| {
                        Box::pin(async move {
                            connection
                                .execute(
                                    "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 10000; \
                                 PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
                                )
                                .await?;
                            Ok(())
                        })
                    })
            }
            Dialect::Postgres => AnyPoolOptions::new().max_connections(16),
        };
        let pool = options.connect(url).await.map_err(connect_error)?;
        let batcher = write_batcher::WriteBatcher::start(pool.clone(), dialect);
        let database = Self {
            pool,
            dialect,
            batcher,
        };
        database.migrate().await?;
        Ok(database)
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub(crate) fn batcher(&self) -> &write_batcher::WriteBatcher {
        &self.batcher
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Applies each migration not yet recorded, in its own transaction.
    async fn migrate(&self) -> Result<(), IngressError> {
        let migration_error = |migration: &Migration| {
            let (version, name) = (migration.version, migration.name);
            move |source| IngressError::Migration {
                version,
                name,
                source,
            }
        };
        self.pool
            .execute(
                "CREATE TABLE IF NOT EXISTS orderflow_migrations (\
                 version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at_ms BIGINT NOT NULL)",
            )
            .await
            .map_err(migration_error(&MIGRATIONS[0]))?;
        for migration in MIGRATIONS {
            let mut transaction = self
                .pool
                .begin()
                .await
                .map_err(migration_error(migration))?;
            let applied =
                sqlx::query("SELECT version FROM orderflow_migrations WHERE version = $1")
                    .bind(migration.version)
                    .fetch_optional(&mut *transaction)
                    .await
                    .map_err(migration_error(migration))?;
            if applied.is_some() {
                continue;
            }
            let script = match self.dialect {
                Dialect::Sqlite => migration.sqlite,
                Dialect::Postgres => migration.postgres,
            };
            for statement in script.split(';').filter(|text| !text.trim().is_empty()) {
                transaction
                    .execute(statement)
                    .await
                    .map_err(migration_error(migration))?;
            }
            sqlx::query(
                "INSERT INTO orderflow_migrations (version, name, applied_at_ms) VALUES ($1, $2, $3)",
            )
            .bind(migration.version)
            .bind(migration.name)
            .bind(now_ms())
            .execute(&mut *transaction)
            .await
            .map_err(migration_error(migration))?;
            transaction
                .commit()
                .await
                .map_err(migration_error(migration))?;
            tracing::info!(
                version = migration.version,
                name = migration.name,
                "applied migration"
            );
        }
        Ok(())
    }

    /// Whether the database answers (for readiness).
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1")
            .fetch_one(&self.pool)
            .await
            .and_then(|row| {
                row.try_get::<i64, _>(0)
                    .or_else(|_| row.try_get::<i32, _>(0).map(i64::from))
            })
            .is_ok()
    }
}

/// Migration bookkeeping is not business time; the system clock is right here.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as i64)
}

/// A database URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &credentials[..colon],
                    &url[at..]
                ),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Whether an error is a unique-constraint violation (SQLite 2067/1555, PostgreSQL 23505).
pub(crate) fn is_unique_violation(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(database_error) => {
            matches!(
                database_error.kind(),
                sqlx::error::ErrorKind::UniqueViolation
            )
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_hides_only_the_password() {
        assert_eq!(
            redact("postgres://orderflow:secret@localhost:5432/db"),
            "postgres://orderflow:***@localhost:5432/db"
        );
        assert_eq!(redact("sqlite://data/users.db"), "sqlite://data/users.db");
    }
}
