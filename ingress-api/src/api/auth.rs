//! `/api/v1/auth`: register, login, refresh, logout.

use crate::api::text::Text;
use std::sync::Arc;

use orderflow_schemas::ids::UserId;
use orderflow_schemas::messages::user_events::{NotificationChannels, UserRole};
use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::me::{UserProfile, validate_profile_fields};
use super::{ApiTags, BearerAuth};
use crate::auth::access_token::Claims;
use crate::auth::refresh_token;
use crate::db::refresh_tokens::RefreshOutcome;
use crate::db::users::{CreateUserError, UserRecord, role_name};
use crate::problem::{ApiError, ApiResult};
use crate::state::AppState;

/// Shortest password accepted (NIST SP 800-63B).
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest password accepted; argon2 would take any, this bounds the work.
pub const MAX_PASSWORD_CHARS: usize = 128;

/// A new account.
#[derive(Debug, Object)]
#[oai(example, skip_serializing_if_is_none)]
pub struct RegisterRequest {
    /// Login and notification address.
    #[oai(validator(max_length = 254))]
    pub email: Text,
    /// 8 to 128 characters.
    #[oai(validator(min_length = 8, max_length = 128))]
    pub password: Text,
    /// How to address the user.
    #[oai(validator(max_length = 200))]
    pub name: Text,
    /// Mobile number in E.164, for SMS notifications.
    #[oai(nullable)]
    pub phone: Option<Text>,
    /// Preferred language (BCP 47); `en-US` when absent.
    #[oai(nullable)]
    pub locale: Option<Text>,
}

impl poem_openapi::types::Example for RegisterRequest {
    fn example() -> Self {
        Self {
            email: "ada@example.com".into(),
            password: "correct horse battery staple".into(),
            name: "Ada Lovelace".into(),
            phone: None,
            locale: Some("en-GB".into()),
        }
    }
}

/// Credentials.
#[derive(Debug, Object)]
#[oai(example, skip_serializing_if_is_none)]
pub struct LoginRequest {
    #[oai(validator(max_length = 254))]
    pub email: Text,
    #[oai(validator(max_length = 128))]
    pub password: Text,
}

impl poem_openapi::types::Example for LoginRequest {
    fn example() -> Self {
        Self {
            email: "ada@example.com".into(),
            password: "correct horse battery staple".into(),
        }
    }
}

/// A refresh token to exchange.
#[derive(Debug, Object)]
#[oai(example, skip_serializing_if_is_none)]
pub struct RefreshRequest {
    /// The refresh token from the last login or refresh; it can be used once.
    #[oai(validator(max_length = 256))]
    pub refresh_token: Text,
}

impl poem_openapi::types::Example for RefreshRequest {
    fn example() -> Self {
        Self {
            refresh_token: "rt_6N2wq3kXbV0eRz8yT1uA9pLmC4sD7fGh".into(),
        }
    }
}

/// What logging out ends.
#[derive(Debug, Object)]
#[oai(example, skip_serializing_if_is_none)]
pub struct LogoutRequest {
    /// The session's refresh token; when given, its whole family is revoked too.
    #[oai(nullable, validator(max_length = 256))]
    pub refresh_token: Option<Text>,
}

impl poem_openapi::types::Example for LogoutRequest {
    fn example() -> Self {
        Self {
            refresh_token: Some("rt_6N2wq3kXbV0eRz8yT1uA9pLmC4sD7fGh".into()),
        }
    }
}

/// Tokens for a session.
#[derive(Debug, Object)]
#[oai(example, skip_serializing_if_is_none)]
pub struct TokenResponse {
    /// A JWT for `Authorization: Bearer`.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Exchange at `/api/v1/auth/refresh` for new tokens; single use.
    pub refresh_token: String,
    /// The user.
    pub user: UserProfile,
}

impl poem_openapi::types::Example for TokenResponse {
    fn example() -> Self {
        Self {
            access_token:
                "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIwMTlhYzVkMCJ9.c2lnbmF0dXJl"
                    .to_string(),
            token_type: "Bearer".to_string(),
            expires_in: 900,
            refresh_token: "rt_6N2wq3kXbV0eRz8yT1uA9pLmC4sD7fGh".to_string(),
            user: poem_openapi::types::Example::example(),
        }
    }
}

#[derive(Debug, ApiResponse)]
enum RegisterResponse {
    /// The account was created; log in to get tokens.
    #[oai(status = 201)]
    Created(Json<UserProfile>),
}

#[derive(Debug, ApiResponse)]
enum TokensResponse {
    /// New tokens.
    #[oai(status = 200)]
    Ok(Json<TokenResponse>),
}

#[derive(Debug, ApiResponse)]
enum LogoutResponse {
    /// The access token (and the session, when its refresh token was given) is revoked.
    #[oai(status = 204)]
    NoContent,
}

/// The auth operations.
#[derive(Debug)]
pub struct AuthApi;

#[OpenApi(prefix_path = "/api/v1/auth", tag = "ApiTags::Auth")]
impl AuthApi {
    /// Register a customer account.
    #[oai(path = "/register", method = "post", operation_id = "register")]
    async fn register(
        &self,
        state: Data<&Arc<AppState>>,
        body: Json<RegisterRequest>,
    ) -> ApiResult<RegisterResponse> {
        let body = body.0;
        let locale = body
            .locale
            .map_or_else(|| "en-US".to_string(), String::from);
        let email = body.email.trim().to_lowercase();
        validate_profile_fields(&email, &body.name, body.phone.as_deref(), &locale)?;
        check_password(&body.password)?;
        let user = create_user(
            &state,
            &email,
            &body.password,
            &body.name,
            body.phone.map(String::from),
            &locale,
            UserRole::Customer,
        )
        .await?;
        Ok(RegisterResponse::Created(Json(UserProfile::from(&user))))
    }

    /// Log in with email and password.
    #[oai(path = "/login", method = "post", operation_id = "login")]
    async fn login(
        &self,
        state: Data<&Arc<AppState>>,
        body: Json<LoginRequest>,
    ) -> ApiResult<TokensResponse> {
        let email = body.0.email.trim().to_lowercase();
        let user = state
            .database
            .user_by_email(&email)
            .await
            .map_err(|error| ApiError::unavailable("the user database", error))?;
        // Verify against a dummy hash when the user is unknown, so timing does not reveal
        // which emails have accounts.
        let stored_hash = user.as_ref().map(|user| user.password_hash.clone());
        let passwords = state.passwords;
        let password = body.0.password;
        let matches = tokio::task::spawn_blocking(move || {
            let stored_hash = stored_hash.unwrap_or_else(|| {
                DUMMY_HASH
                    .get_or_init(|| passwords.hash("no account has this password"))
                    .clone()
            });
            passwords.verify(&password, &stored_hash)
        })
        .await
        .map_err(|error| ApiError::internal("verifying a password", error))?;
        let Some(user) = user.filter(|_| matches) else {
            return Err(ApiError::unauthorized("unknown email or wrong password"));
        };
        let family_id = uuid::Uuid::now_v7().to_string();
        let tokens = issue_tokens(&state, &user, &family_id).await?;
        Ok(TokensResponse::Ok(Json(tokens)))
    }

    /// Exchange a refresh token for new tokens. A refresh token works once: presenting a
    /// used one revokes its whole session (it was stolen or replayed).
    #[oai(path = "/refresh", method = "post", operation_id = "refresh")]
    async fn refresh(
        &self,
        state: Data<&Arc<AppState>>,
        body: Json<RefreshRequest>,
    ) -> ApiResult<TokensResponse> {
        let now_ms = state.now_ms();
        let auth = &state.config.auth;
        let successor = refresh_token::generate();
        let outcome = state
            .database
            .rotate_refresh_token(
                &refresh_token::digest(&body.0.refresh_token),
                &refresh_token::digest(&successor),
                now_ms,
                now_ms + auth.refresh_token_ttl_seconds as i64 * 1000,
            )
            .await
            .map_err(|error| ApiError::unavailable("the user database", error))?;
        match outcome {
            RefreshOutcome::Unknown => Err(ApiError::unauthorized(
                "the refresh token is unknown, expired or revoked",
            )),
            RefreshOutcome::Reused { family_id } => {
                tracing::warn!(family = %family_id, "refresh token reuse: session revoked");
                // The session's access tokens stop working too, not only its refresh tokens.
                revoke_session_access(&state, &family_id, now_ms).await?;
                Err(ApiError::unauthorized(
                    "the refresh token was already used; the session is revoked, log in again",
                ))
            }
            RefreshOutcome::Rotated { user_id, family_id } => {
                let user = load_user(&state, user_id).await?;
                Ok(TokensResponse::Ok(Json(token_response(
                    &state, &user, &family_id, successor,
                ))))
            }
        }
    }

    /// Log out: the access token stops working now, not when it expires.
    #[oai(path = "/logout", method = "post", operation_id = "logout")]
    async fn logout(
        &self,
        state: Data<&Arc<AppState>>,
        auth: BearerAuth,
        body: Json<LogoutRequest>,
    ) -> ApiResult<LogoutResponse> {
        let now_ms = state.now_ms();
        let claims = &auth.0.claims;
        state
            .shared
            .revoke_token(&claims.jti, claims.exp * 1000, now_ms)
            .await
            .map_err(|error| ApiError::unavailable("the revocation list", error))?;
        state
            .database
            .revoke_family(&claims.sid, now_ms)
            .await
            .map_err(|error| ApiError::unavailable("the user database", error))?;
        revoke_session_access(&state, &claims.sid, now_ms).await?;
        if let Some(token) = &body.0.refresh_token {
            // The token's own family, in case it differs from the access token's session.
            let family = state
                .database
                .refresh_token_family(&refresh_token::digest(token))
                .await
                .map_err(|error| ApiError::unavailable("the user database", error))?;
            if let Some(family_id) = family {
                state
                    .database
                    .revoke_family(&family_id, now_ms)
                    .await
                    .map_err(|error| ApiError::unavailable("the user database", error))?;
                revoke_session_access(&state, &family_id, now_ms).await?;
            }
        }
        Ok(LogoutResponse::NoContent)
    }
}

/// A hash with the configured costs, verified against when an email is unknown.
static DUMMY_HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();

pub fn check_password(password: &str) -> ApiResult<()> {
    let length = password.chars().count();
    if !(MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&length) {
        return Err(ApiError::unprocessable(
            Some("password".to_string()),
            format!(
                "must be {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters, got {length}"
            ),
        ));
    }
    Ok(())
}

/// Creates a user (and its `UserCreated` event, through the outbox).
pub async fn create_user(
    state: &AppState,
    email: &str,
    password: &str,
    name: &str,
    phone: Option<String>,
    locale: &str,
    role: UserRole,
) -> ApiResult<UserRecord> {
    let passwords = state.passwords;
    let password = password.to_string();
    let password_hash = tokio::task::spawn_blocking(move || passwords.hash(&password))
        .await
        .map_err(|error| ApiError::internal("hashing a password", error))?;
    let now_ms = state.now_ms();
    let user = UserRecord {
        id: UserId::generate(now_ms),
        email: email.to_string(),
        password_hash,
        role,
        name: name.trim().to_string(),
        channels: NotificationChannels {
            email: true,
            sms: phone.is_some(),
            push: false,
        },
        phone,
        locale: locale.to_string(),
        preferences: Default::default(),
        created_at_ms: now_ms,
        updated_at_ms: now_ms,
    };
    match state.database.create_user(&user).await {
        Ok(()) => {
            state.outbox_signal.notify_one();
            Ok(user)
        }
        Err(CreateUserError::EmailTaken(email)) => Err(ApiError::conflict(format!(
            "an account with email {email} already exists"
        ))),
        Err(CreateUserError::Db(error)) => Err(ApiError::unavailable("the user database", error)),
    }
}

pub async fn load_user(state: &AppState, user_id: UserId) -> ApiResult<UserRecord> {
    state
        .database
        .user_by_id(user_id)
        .await
        .map_err(|error| ApiError::unavailable("the user database", error))?
        .ok_or_else(|| ApiError::unauthorized("the token's user no longer exists"))
}

/// A new access token and a new refresh token in `family_id` (a login).
pub async fn issue_tokens(
    state: &AppState,
    user: &UserRecord,
    family_id: &str,
) -> ApiResult<TokenResponse> {
    let now_ms = state.now_ms();
    let refresh = refresh_token::generate();
    state
        .database
        .insert_refresh_token(
            &refresh_token::digest(&refresh),
            family_id,
            user.id,
            now_ms,
            now_ms + state.config.auth.refresh_token_ttl_seconds as i64 * 1000,
        )
        .await
        .map_err(|error| ApiError::unavailable("the user database", error))?;
    Ok(token_response(state, user, family_id, refresh))
}

/// Signs an access token in session `family_id` and answers it with `refresh`, a refresh
/// token already stored in that family.
fn token_response(
    state: &AppState,
    user: &UserRecord,
    family_id: &str,
    refresh: String,
) -> TokenResponse {
    let now_seconds = state.now_ms().div_euclid(1000);
    let auth = &state.config.auth;
    let claims = Claims {
        sub: user.id.to_string(),
        role: role_name(user.role).to_string(),
        iss: state.signer.issuer().to_string(),
        aud: state.signer.audience().to_string(),
        iat: now_seconds,
        nbf: now_seconds,
        exp: now_seconds + auth.access_token_ttl_seconds as i64,
        jti: uuid::Uuid::now_v7().to_string(),
        sid: family_id.to_string(),
    };
    TokenResponse {
        access_token: state.signer.sign(&claims),
        token_type: "Bearer".to_string(),
        expires_in: auth.access_token_ttl_seconds,
        refresh_token: refresh,
        user: UserProfile::from(user),
    }
}

/// Refuses every access token issued so far in session `family_id`, until the last of them
/// would have expired anyway (plus a second for the clock's rounding of `exp`).
async fn revoke_session_access(state: &AppState, family_id: &str, now_ms: i64) -> ApiResult<()> {
    let until_ms = now_ms + (state.config.auth.access_token_ttl_seconds as i64 + 1) * 1000;
    state
        .shared
        .revoke_session(family_id, until_ms, now_ms)
        .await
        .map_err(|error| ApiError::unavailable("the revocation list", error))
}
