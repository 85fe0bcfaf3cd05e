//! State every API instance must agree on: rate-limit counters, revoked access tokens and
//! idempotency keys. In-process by default (idempotency keys in the user database, so they
//! survive a restart); in Redis when `redis-url` is set, shared by every instance.
//!
//! # The idempotency protocol
//! `POST /orders` needs an `Idempotency-Key`. The key is scoped to the user. [`begin`] claims it
//! with the request's body hash and the order id the request would create, under a short lease:
//! - a new key is *started*: the caller produces the command, then [`complete`]s the key with
//!   the response;
//! - a completed key with the same hash replays the stored response; with another hash it is
//!   a client error (422);
//! - a key whose lease is live belongs to a concurrent request (409);
//! - a key whose lease ran out without a response belongs to a request that died mid-way: the
//!   caller takes it over *with the stored order id*, so the retry re-produces the same order
//!   (the saga ignores a second `PlaceOrder` for an order it knows) instead of a second one.
//!
//! [`begin`]: SharedState::idempotency_begin
//! [`complete`]: SharedState::idempotency_complete

use std::collections::HashMap;
use std::sync::Mutex;

use redis::aio::ConnectionManager;

use crate::db::Database;
use crate::error::IngressError;
use crate::rate_limit::{Decision, Quota, check};

/// A response kept for replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub body: String,
    pub resource_id: String,
}

/// What claiming an idempotency key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyBegin {
    Started { resource_id: String },
    Completed(StoredResponse),
    Mismatch,
    InProgress,
}

/// A failure of the shared state's backend.
#[derive(Debug, thiserror::Error)]
pub enum SharedStateError {
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
}

/// How long a started request owns its key.
pub const IDEMPOTENCY_LEASE_MS: i64 = 30_000;
/// How long a completed response is replayed.
pub const IDEMPOTENCY_TTL_MS: i64 = 24 * 3600 * 1000;

/// Where shared state lives.
pub enum SharedState {
    Local(LocalState),
    Redis(RedisState),
}

impl std::fmt::Debug for SharedState {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(match self {
            Self::Local(_) => "SharedState::Local",
            Self::Redis(_) => "SharedState::Redis",
        })
    }
}

/// In-process state.
#[derive(Debug)]
pub struct LocalState {
    database: Database,
    /// Rate-limit TATs by key, in microseconds.
    tats: Mutex<HashMap<String, i64>>,
    /// Revoked token ids and when they expire (ms).
    revoked: Mutex<HashMap<String, i64>>,
    /// Revoked sessions (refresh-token families) and until when their access tokens are
    /// refused (ms): the longest an access token issued before the revocation lives.
    revoked_sessions: Mutex<HashMap<String, i64>>,
}

/// State in Redis.
pub struct RedisState {
    connection: ConnectionManager,
    gcra: redis::Script,
    idempotency_begin: redis::Script,
}

/// GCRA in Redis, the same arithmetic as [`crate::rate_limit::check`], atomically.
const GCRA_SCRIPT: &str = r#"
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local tolerance = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local ahead = tat - now
if ahead > tolerance then
  return ahead - tolerance
end
local new_tat = tat + interval
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil((new_tat - now) / 1000) + 1)
return -1
"#;

/// The idempotency protocol (module doc) in Redis: one hash per key, atomically.
/// Returns {outcome, resource, status, body}.
const IDEMPOTENCY_BEGIN_SCRIPT: &str = r#"
local now = tonumber(ARGV[3])
local lease = tonumber(ARGV[4])
local ttl = tonumber(ARGV[5])
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 'hash', ARGV[1], 'resource', ARGV[2], 'lease', now + lease)
  redis.call('PEXPIRE', KEYS[1], ttl)
  return {'started', ARGV[2], '', ''}
end
local record = redis.call('HMGET', KEYS[1], 'hash', 'resource', 'lease', 'status', 'body')
if record[1] ~= ARGV[1] then
  return {'mismatch', '', '', ''}
end
if record[4] then
  return {'completed', record[2], record[4], record[5]}
end
if tonumber(record[3]) > now then
  return {'in_progress', '', '', ''}
end
redis.call('HSET', KEYS[1], 'lease', now + lease)
return {'started', record[2], '', ''}
"#;

impl std::fmt::Debug for RedisState {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("RedisState").finish_non_exhaustive()
    }
}

impl SharedState {
    pub fn local(database: Database) -> Self {
        Self::Local(LocalState {
            database,
            tats: Mutex::new(HashMap::new()),
            revoked: Mutex::new(HashMap::new()),
            revoked_sessions: Mutex::new(HashMap::new()),
        })
    }

    pub async fn redis(url: &str) -> Result<Self, IngressError> {
        let redis_error = |source| IngressError::Redis {
            url: crate::db::redact(url),
            source,
        };
        let client = redis::Client::open(url).map_err(redis_error)?;
        let connection = ConnectionManager::new(client).await.map_err(redis_error)?;
        Ok(Self::Redis(RedisState {
            connection,
            gcra: redis::Script::new(GCRA_SCRIPT),
            idempotency_begin: redis::Script::new(IDEMPOTENCY_BEGIN_SCRIPT),
        }))
    }

    pub fn backend_name(&self) -> &'static str {
        match self {
            Self::Local(_) => "local",
            Self::Redis(_) => "redis",
        }
    }

    /// `None` if allowed; otherwise microseconds until a retry can succeed.
    pub async fn rate_limit(
        &self,
        key: &str,
        quota: Quota,
        now_ms: i64,
    ) -> Result<Option<i64>, SharedStateError> {
        let now_micros = now_ms * 1000;
        match self {
            Self::Local(local) => {
                let mut tats = local.tats.lock().expect("rate limit lock poisoned");
                if tats.len() > 100_000 {
                    // Clients whose TAT passed have their full burst back: forgetting them
                    // changes no decision.
                    tats.retain(|_, tat| *tat > now_micros);
                }
                match check(quota, tats.get(key).copied(), now_micros) {
                    Decision::Allow { new_tat_micros } => {
                        tats.insert(key.to_string(), new_tat_micros);
                        Ok(None)
                    }
                    Decision::Deny { retry_after_micros } => Ok(Some(retry_after_micros)),
                }
            }
            Self::Redis(redis_state) => {
                let mut connection = redis_state.connection.clone();
                let retry: i64 = redis_state
                    .gcra
                    .key(format!("orderflow:rate:{key}"))
                    .arg(now_micros)
                    .arg(quota.emission_interval_micros())
                    .arg(quota.tolerance_micros())
                    .invoke_async(&mut connection)
                    .await?;
                Ok((retry >= 0).then_some(retry.max(1)))
            }
        }
    }

    /// Revokes an access token until it expires anyway.
    pub async fn revoke_token(
        &self,
        jti: &str,
        expires_at_ms: i64,
        now_ms: i64,
    ) -> Result<(), SharedStateError> {
        match self {
            Self::Local(local) => {
                let mut revoked = local.revoked.lock().expect("revocation lock poisoned");
                revoked.retain(|_, expiry| *expiry > now_ms);
                revoked.insert(jti.to_string(), expires_at_ms);
                Ok(())
            }
            Self::Redis(redis_state) => {
                let mut connection = redis_state.connection.clone();
                let ttl_ms = (expires_at_ms - now_ms).max(1);
                redis::cmd("SET")
                    .arg(format!("orderflow:revoked:{jti}"))
                    .arg(1)
                    .arg("PX")
                    .arg(ttl_ms)
                    .query_async::<()>(&mut connection)
                    .await?;
                Ok(())
            }
        }
    }

    /// Refuses every access token of a session (a refresh-token family) issued so far, until
    /// `until_ms`, by which time all of them have expired: after refresh-token reuse (the
    /// session was stolen) and at logout.
    pub async fn revoke_session(
        &self,
        session_id: &str,
        until_ms: i64,
        now_ms: i64,
    ) -> Result<(), SharedStateError> {
        match self {
            Self::Local(local) => {
                let mut sessions = local
                    .revoked_sessions
                    .lock()
                    .expect("revocation lock poisoned");
                sessions.retain(|_, expiry| *expiry > now_ms);
                sessions.insert(session_id.to_string(), until_ms);
                Ok(())
            }
            Self::Redis(redis_state) => {
                let mut connection = redis_state.connection.clone();
                redis::cmd("SET")
                    .arg(format!("orderflow:revoked-session:{session_id}"))
                    .arg(1)
                    .arg("PX")
                    .arg((until_ms - now_ms).max(1))
                    .query_async::<()>(&mut connection)
                    .await?;
                Ok(())
            }
        }
    }

    /// Whether the access token `jti`, issued in session `session_id`, was revoked (by itself
    /// or with its session).
    pub async fn is_revoked(
        &self,
        jti: &str,
        session_id: &str,
        now_ms: i64,
    ) -> Result<bool, SharedStateError> {
        match self {
            Self::Local(local) => {
                let live = |map: &Mutex<HashMap<String, i64>>, key: &str| {
                    map.lock()
                        .expect("revocation lock poisoned")
                        .get(key)
                        .is_some_and(|expiry| *expiry > now_ms)
                };
                Ok(live(&local.revoked, jti) || live(&local.revoked_sessions, session_id))
            }
            Self::Redis(redis_state) => {
                let mut connection = redis_state.connection.clone();
                let existing: i64 = redis::cmd("EXISTS")
                    .arg(format!("orderflow:revoked:{jti}"))
                    .arg(format!("orderflow:revoked-session:{session_id}"))
                    .query_async(&mut connection)
                    .await?;
                Ok(existing > 0)
            }
        }
    }

    pub async fn idempotency_begin(
        &self,
        scope: &str,
        request_hash: &str,
        resource_id: &str,
        now_ms: i64,
    ) -> Result<IdempotencyBegin, SharedStateError> {
        match self {
            Self::Local(local) => Ok(local
                .database
                .idempotency_begin(
                    scope,
                    request_hash,
                    resource_id,
                    now_ms,
                    IDEMPOTENCY_LEASE_MS,
                    IDEMPOTENCY_TTL_MS,
                )
                .await?),
            Self::Redis(redis_state) => {
                let mut connection = redis_state.connection.clone();
                let (outcome, resource, status, body): (String, String, String, String) =
                    redis_state
                        .idempotency_begin
                        .key(format!("orderflow:idempotency:{scope}"))
                        .arg(request_hash)
                        .arg(resource_id)
                        .arg(now_ms)
                        .arg(IDEMPOTENCY_LEASE_MS)
                        .arg(IDEMPOTENCY_TTL_MS)
                        .invoke_async(&mut connection)
                        .await?;
                Ok(match outcome.as_str() {
                    "started" => IdempotencyBegin::Started {
                        resource_id: resource,
                    },
                    "completed" => IdempotencyBegin::Completed(StoredResponse {
                        status: status.parse().unwrap_or(500),
                        body,
                        resource_id: resource,
                    }),
                    "mismatch" => IdempotencyBegin::Mismatch,
                    _ => IdempotencyBegin::InProgress,
                })
            }
        }
    }

    pub async fn idempotency_complete(
        &self,
        scope: &str,
        response: &StoredResponse,
    ) -> Result<(), SharedStateError> {
        match self {
            Self::Local(local) => Ok(local.database.idempotency_complete(scope, response).await?),
            Self::Redis(redis_state) => {
                let mut connection = redis_state.connection.clone();
                redis::cmd("HSET")
                    .arg(format!("orderflow:idempotency:{scope}"))
                    .arg("status")
                    .arg(response.status)
                    .arg("body")
                    .arg(&response.body)
                    .query_async::<()>(&mut connection)
                    .await?;
                Ok(())
            }
        }
    }

    pub async fn idempotency_abandon(&self, scope: &str) -> Result<(), SharedStateError> {
        match self {
            Self::Local(local) => Ok(local.database.idempotency_abandon(scope).await?),
            Self::Redis(redis_state) => {
                let mut connection = redis_state.connection.clone();
                redis::cmd("DEL")
                    .arg(format!("orderflow:idempotency:{scope}"))
                    .query_async::<()>(&mut connection)
                    .await?;
                Ok(())
            }
        }
    }

    /// Whether the backend answers (for readiness).
    pub async fn ping(&self) -> bool {
        match self {
            Self::Local(_) => true,
            Self::Redis(redis_state) => {
                let mut connection = redis_state.connection.clone();
                redis::cmd("PING")
                    .query_async::<String>(&mut connection)
                    .await
                    .is_ok()
            }
        }
    }
}
