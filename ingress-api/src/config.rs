//! The API's configuration: the `[api]` section of the `orderflow` configuration file.

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// Everything the ingress API can be configured with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default, rename_all = "kebab-case")]
pub struct ApiConfig {
    /// Address the HTTP server listens on.
    pub listen: String,
    /// Largest request body accepted, in bytes; larger bodies get 413.
    pub max_body_bytes: usize,
    /// Page size when a list request names none.
    pub default_page_size: u32,
    /// Largest page size a list request may ask for.
    pub max_page_size: u32,
    /// Longest `?wait=` a long-poll may ask for, in seconds.
    pub max_wait_seconds: u32,
    /// Where users, credentials, refresh tokens and idempotency records live: `sqlite://...` or
    /// `postgres://...`. Empty: a SQLite file `users.db` in the data directory.
    pub database_url: String,
    /// Redis for state shared by every instance (rate limits, revoked tokens, idempotency
    /// keys). Empty: kept in this process. The `REDIS_URL` variable fills it when empty.
    pub redis_url: String,
    /// Token issuing and checking.
    pub auth: AuthConfig,
    /// Request rate limits.
    pub rate_limits: RateLimitConfig,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".to_string(),
            max_body_bytes: 64 * 1024,
            default_page_size: 20,
            max_page_size: 100,
            max_wait_seconds: 30,
            database_url: String::new(),
            redis_url: String::new(),
            auth: AuthConfig::default(),
            rate_limits: RateLimitConfig::default(),
        }
    }
}

/// Token settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default, rename_all = "kebab-case")]
pub struct AuthConfig {
    /// `iss` of issued access tokens; tokens with another issuer are refused.
    pub issuer: String,
    /// `aud` of issued access tokens; tokens for another audience are refused.
    pub audience: String,
    /// Access token lifetime, in seconds.
    pub access_token_ttl_seconds: u64,
    /// Refresh token lifetime, in seconds.
    pub refresh_token_ttl_seconds: u64,
    /// HMAC-SHA256 key for access tokens, at least 32 bytes. Empty: a random key is generated
    /// on first start and kept in the data directory (`jwt.key`). Every instance of a scaled-out
    /// deployment needs the same key.
    pub signing_key: String,
    /// argon2id memory cost in KiB (OWASP: 19456).
    pub argon2_memory_kib: u32,
    /// argon2id passes (OWASP: 2).
    pub argon2_iterations: u32,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            issuer: "orderflow".to_string(),
            audience: "orderflow-api".to_string(),
            access_token_ttl_seconds: 15 * 60,
            refresh_token_ttl_seconds: 30 * 24 * 3600,
            signing_key: String::new(),
            argon2_memory_kib: 19_456,
            argon2_iterations: 2,
        }
    }
}

/// GCRA rate limits: a sustained rate and a burst, per authenticated user and per client IP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default, rename_all = "kebab-case")]
pub struct RateLimitConfig {
    /// Requests per second one user may sustain; 0 turns the limit off.
    pub per_user_per_second: u32,
    /// Requests one user may send at once above the sustained rate.
    pub per_user_burst: u32,
    /// Requests per second one IP address may sustain; 0 turns the limit off.
    pub per_ip_per_second: u32,
    /// Requests one IP may send at once above the sustained rate.
    pub per_ip_burst: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            per_user_per_second: 100,
            per_user_burst: 200,
            per_ip_per_second: 200,
            per_ip_burst: 400,
        }
    }
}

impl ApiConfig {
    /// Checks values serde cannot; the error names the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let field = |field: &'static str, reason: String| Err(ConfigError { field, reason });
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            return field(
                "api.listen",
                format!("`{}` is not an address such as 127.0.0.1:8080", self.listen),
            );
        }
        if self.max_body_bytes < 1024 {
            return field(
                "api.max-body-bytes",
                format!("must be at least 1024, got {}", self.max_body_bytes),
            );
        }
        // The OpenAPI document caps `limit` at 100 and `wait` at 30 for every client, so a
        // larger setting could never take effect: refuse it rather than ignore it.
        if self.max_page_size == 0 || self.max_page_size > 100 {
            return field(
                "api.max-page-size",
                format!("must be 1 to 100, got {}", self.max_page_size),
            );
        }
        if self.default_page_size == 0 {
            return field("api.default-page-size", "must be at least 1".to_string());
        }
        if self.max_wait_seconds > 30 {
            return field(
                "api.max-wait-seconds",
                format!("must be at most 30, got {}", self.max_wait_seconds),
            );
        }
        if self.default_page_size > self.max_page_size {
            return field(
                "api.default-page-size",
                format!(
                    "{} is above max-page-size {}",
                    self.default_page_size, self.max_page_size
                ),
            );
        }
        if !self.database_url.is_empty()
            && !self.database_url.starts_with("sqlite:")
            && !self.database_url.starts_with("postgres://")
            && !self.database_url.starts_with("postgresql://")
        {
            return field(
                "api.database-url",
                "must start with sqlite:, postgres:// or postgresql://".to_string(),
            );
        }
        if !self.redis_url.is_empty()
            && !self.redis_url.starts_with("redis://")
            && !self.redis_url.starts_with("rediss://")
        {
            return field(
                "api.redis-url",
                "must start with redis:// or rediss://".to_string(),
            );
        }
        let auth = &self.auth;
        if auth.access_token_ttl_seconds == 0 {
            return field(
                "api.auth.access-token-ttl-seconds",
                "must be at least one second".to_string(),
            );
        }
        if auth.refresh_token_ttl_seconds == 0 {
            return field(
                "api.auth.refresh-token-ttl-seconds",
                "must be at least one second".to_string(),
            );
        }
        if !auth.signing_key.is_empty() && auth.signing_key.len() < 32 {
            return field(
                "api.auth.signing-key",
                format!("must be at least 32 bytes, got {}", auth.signing_key.len()),
            );
        }
        if auth.argon2_memory_kib < 8 * 1024 {
            return field(
                "api.auth.argon2-memory-kib",
                format!(
                    "argon2id needs at least 8192 KiB, got {}",
                    auth.argon2_memory_kib
                ),
            );
        }
        if auth.argon2_iterations == 0 {
            return field(
                "api.auth.argon2-iterations",
                "argon2id needs at least one pass".to_string(),
            );
        }
        let limits = &self.rate_limits;
        if limits.per_user_per_second > 0 && limits.per_user_burst == 0 {
            return field(
                "api.rate-limits.per-user-burst",
                "must be at least 1 when the limit is on".to_string(),
            );
        }
        if limits.per_ip_per_second > 0 && limits.per_ip_burst == 0 {
            return field(
                "api.rate-limits.per-ip-burst",
                "must be at least 1 when the limit is on".to_string(),
            );
        }
        Ok(())
    }
}
