//! The HTTP operations, grouped by resource. Shared request plumbing lives here: the bearer
//! scheme, roles, page sizes, command records and common shapes.

pub mod analytics;
pub mod auth;
pub mod catalog;
pub mod inventory;
pub mod me;
pub mod notifications;
pub mod operations;
pub mod orders;
pub mod text;

use crate::api::text::Text;
use std::sync::Arc;

use orderflow_processors::wire::keyed_envelope_record;
use orderflow_runtime::LogRecord;
use orderflow_schemas::currency::Currency;
use orderflow_schemas::envelope::Message;
use orderflow_schemas::ids::{CorrelationId, UserId};
use orderflow_schemas::messages::user_events::UserRole;
use orderflow_schemas::money::Money;
use poem::Request;
use poem_openapi::auth::Bearer;
use poem_openapi::{Object, SecurityScheme, Tags};

use crate::auth::access_token::Claims;
use crate::db::users::parse_role;
use crate::problem::{ApiError, ApiResult};
use crate::rate_limit::{Quota, retry_after_seconds};
use crate::state::AppState;

/// Operation groups in the OpenAPI document.
#[derive(Debug, Tags)]
pub enum ApiTags {
    /// Registration, login, token refresh and logout.
    Auth,
    /// The caller's own profile and notifications.
    Me,
    /// Products and coupons.
    Catalog,
    /// Stock levels (administrators).
    Inventory,
    /// Placing, following and changing orders.
    Orders,
    /// Windowed aggregates (administrators).
    Analytics,
    /// Health and metrics.
    Operations,
}

/// Who is calling, from a verified access token.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: UserId,
    pub role: UserRole,
    pub claims: Claims,
}

impl Principal {
    pub fn is_admin(&self) -> bool {
        self.role == UserRole::Admin
    }

    pub fn require_admin(&self) -> ApiResult<()> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(ApiError::forbidden("this operation needs the admin role"))
        }
    }
}

/// An access token from `POST /api/v1/auth/login`, sent as `Authorization: Bearer <token>`.
#[derive(Debug, SecurityScheme)]
#[oai(
    rename = "bearerAuth",
    ty = "bearer",
    bearer_format = "JWT",
    checker = "check_bearer"
)]
pub struct BearerAuth(pub Principal);

async fn check_bearer(request: &Request, bearer: Bearer) -> poem::Result<Principal> {
    let state = request
        .data::<Arc<AppState>>()
        .expect("the API state is attached to every request");
    let now_ms = state.now_ms();
    let claims = state
        .signer
        .verify(&bearer.token, now_ms.div_euclid(1000))
        .map_err(|error| ApiError::unauthorized(error.to_string()))?;
    let revoked = state
        .shared
        .is_revoked(&claims.jti, &claims.sid, now_ms)
        .await
        .map_err(|error| ApiError::unavailable("the revocation list", error))?;
    if revoked {
        return Err(ApiError::unauthorized(
            "the token was revoked (logged out, or its session was revoked)",
        )
        .into());
    }
    let user_id = claims
        .sub
        .parse::<UserId>()
        .map_err(|_| ApiError::unauthorized("the token's subject is not a user id"))?;
    let role = parse_role(&claims.role)
        .ok_or_else(|| ApiError::unauthorized("the token's role is unknown"))?;
    let limits = &state.config.rate_limits;
    if limits.per_user_per_second > 0 {
        let quota = Quota {
            per_second: limits.per_user_per_second,
            burst: limits.per_user_burst,
        };
        let retry = state
            .shared
            .rate_limit(&format!("user:{user_id}"), quota, now_ms)
            .await
            .map_err(|error| ApiError::unavailable("the rate limiter", error))?;
        if let Some(retry_after_micros) = retry {
            state.metrics.count_rate_limited();
            return Err(
                ApiError::too_many_requests(retry_after_seconds(retry_after_micros)).into(),
            );
        }
    }
    Ok(Principal {
        user_id,
        role,
        claims,
    })
}

/// An amount of money in minor units (cents for USD, yen for JPY) and its ISO 4217 currency.
#[derive(Debug, Clone, PartialEq, Eq, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct MoneyDto {
    /// Minor units: 1999 is 19.99 in a two-decimal currency. At most 10^15 either way, so every
    /// JSON client reads it exactly.
    #[oai(validator(
        minimum(value = "-1000000000000000"),
        maximum(value = "1000000000000000")
    ))]
    pub amount_minor: i64,
    /// ISO 4217 code, e.g. `USD`.
    #[oai(validator(min_length = 3, max_length = 3))]
    pub currency: Text,
}

impl From<&Money> for MoneyDto {
    fn from(money: &Money) -> Self {
        Self {
            amount_minor: money.amount_minor,
            currency: money.currency.code().into(),
        }
    }
}

impl MoneyDto {
    pub fn to_money(&self, field: &str) -> ApiResult<Money> {
        let currency = Currency::parse(&self.currency).map_err(|error| {
            ApiError::unprocessable(Some(format!("{field}.currency")), error.to_string())
        })?;
        Ok(Money::new(self.amount_minor, currency))
    }
}

/// A page size from `?limit=`, within the configured bounds.
/// An amount for the OpenAPI document's examples.
pub(crate) fn example_money(amount_minor: i64, currency: &str) -> MoneyDto {
    MoneyDto {
        amount_minor,
        currency: currency.into(),
    }
}

pub fn page_size(state: &AppState, limit: Option<u32>) -> ApiResult<u32> {
    match limit {
        None => Ok(state.config.default_page_size),
        Some(limit) if (1..=state.config.max_page_size).contains(&limit) => Ok(limit),
        Some(limit) => Err(ApiError::bad_request(format!(
            "limit must be within 1..={}, got {limit}",
            state.config.max_page_size
        ))),
    }
}

/// A command record for `topic`, keyed and partitioned like a Kafka producer would.
pub fn command_record<T: Message>(
    state: &AppState,
    topic: &str,
    payload: T,
    correlation: CorrelationId,
) -> ApiResult<(String, u32, LogRecord)> {
    keyed_envelope_record(
        topic,
        state.partitions(topic),
        payload,
        state.now_ms(),
        correlation,
    )
    .map_err(|error| ApiError::internal("encoding a command", error))
}

/// Appends commands and returns the read-your-writes token of the last one.
pub async fn produce(
    state: &AppState,
    records: Vec<(String, u32, LogRecord)>,
) -> ApiResult<crate::platform::Position> {
    let positions = state
        .producer
        .produce(records)
        .await
        .map_err(|error| ApiError::unavailable("the command log", error))?;
    positions
        .into_iter()
        .last()
        .ok_or_else(|| ApiError::internal("producing a command", "no record was produced"))
}

/// Validates a command, appends it to `topic` and returns where it landed.
pub async fn submit_command<T: Message>(
    state: &AppState,
    topic: &str,
    command: T,
) -> ApiResult<crate::platform::Position> {
    command.validate().map_err(ApiError::invalid)?;
    let record = command_record(
        state,
        topic,
        command,
        CorrelationId::generate(state.now_ms()),
    )?;
    produce(state, vec![record]).await
}

/// An accepted command: where it landed, to read one's own write.
#[derive(Debug, Clone, Object)]
#[oai(example, skip_serializing_if_is_none)]
pub struct Accepted {
    /// Pass as `?position=` to a read of the same resource to see this write.
    pub position: String,
}

impl poem_openapi::types::Example for Accepted {
    fn example() -> Self {
        Self {
            position: "b3JkZXItY29tbWFuZHM6MToxMjM".to_string(),
        }
    }
}

/// Waits (bounded) until `reader`'s application has processed the write behind a position
/// token, so the read that follows sees it (see [`orderflow_runtime::query`]).
pub async fn await_position(
    state: &AppState,
    reader: &orderflow_runtime::StoreReader,
    topics: &[&str],
    token: Option<&str>,
) -> ApiResult<()> {
    let Some(token) = token else {
        return Ok(());
    };
    let position = crate::platform::Position::parse_token(token).ok_or_else(|| {
        ApiError::unprocessable(
            Some("position".into()),
            "position is not a token this API issued",
        )
    })?;
    // A position is only meaningful for a view that reads its topic, and only up to what
    // the topic holds; anything else would wait for nothing.
    let issued = topics.contains(&position.topic.as_str())
        && position.partition < state.partitions(&position.topic)
        && state
            .log
            .offsets(&position.topic, position.partition)
            .is_ok_and(|offsets| position.offset < offsets.end);
    if !issued {
        return Err(ApiError::unprocessable(
            Some("position".into()),
            "position is not a token this API issued for this resource",
        ));
    }
    let wait = std::time::Duration::from_secs(u64::from(state.config.max_wait_seconds.min(10)));
    let deadline = tokio::time::Instant::now() + wait;
    let mut generations = state.watcher.generations();
    loop {
        generations.borrow_and_update();
        let processed = reader
            .has_processed(&position.topic, position.partition, position.offset)
            .map_err(|error| ApiError::internal("reading a committed position", error))?;
        if processed {
            return Ok(());
        }
        if tokio::time::timeout_at(deadline, generations.changed())
            .await
            .is_err()
        {
            return Err(ApiError::unavailable(
                "the view has not caught up with the position yet, so",
                "position wait timed out",
            ));
        }
    }
}

/// Opaque cursors: base64url of the last key of the previous page.
pub fn encode_cursor(key: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key)
}

pub fn decode_cursor(cursor: Option<&str>) -> ApiResult<Option<Vec<u8>>> {
    use base64::Engine;
    cursor
        .map(|cursor| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(cursor)
                .map_err(|_| {
                    ApiError::unprocessable(
                        Some("cursor".into()),
                        "cursor is not one this API issued",
                    )
                })
        })
        .transpose()
}
