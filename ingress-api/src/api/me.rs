//! `/api/v1/me`: the caller's profile.

use crate::api::text::Text;
use std::sync::Arc;

use orderflow_schemas::ids::UserId;
use orderflow_schemas::messages::user_events::{
    NotificationChannels, NotificationPreferences, NotificationTopic, UserCreated, UserRole,
};
use orderflow_schemas::validation::Validate;
use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};

use super::auth::load_user;
use super::{ApiTags, BearerAuth};
use crate::db::users::UserRecord;
use crate::problem::{ApiError, ApiResult};
use crate::state::AppState;

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum RoleDto {
    Customer,
    Admin,
}

/// Channels the user agreed to be notified on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct ChannelsDto {
    pub email: bool,
    /// Needs a phone number.
    pub sms: bool,
    pub push: bool,
}

impl From<NotificationChannels> for ChannelsDto {
    fn from(channels: NotificationChannels) -> Self {
        Self {
            email: channels.email,
            sms: channels.sms,
            push: channels.push,
        }
    }
}

/// A kind of notification (one per kind of event that notifies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum TopicDto {
    OrderCreated,
    OrderConfirmed,
    OrderRejected,
    OrderCancelled,
    OrderShipped,
    OrderDelivered,
    PaymentFailed,
    PaymentRefunded,
}

const TOPICS: [(TopicDto, NotificationTopic); 8] = [
    (TopicDto::OrderCreated, NotificationTopic::OrderCreated),
    (TopicDto::OrderConfirmed, NotificationTopic::OrderConfirmed),
    (TopicDto::OrderRejected, NotificationTopic::OrderRejected),
    (TopicDto::OrderCancelled, NotificationTopic::OrderCancelled),
    (TopicDto::OrderShipped, NotificationTopic::OrderShipped),
    (TopicDto::OrderDelivered, NotificationTopic::OrderDelivered),
    (TopicDto::PaymentFailed, NotificationTopic::PaymentFailed),
    (
        TopicDto::PaymentRefunded,
        NotificationTopic::PaymentRefunded,
    ),
];

/// What the user wants to be notified of on their channels: everything but `muted`.
#[derive(Debug, Clone, PartialEq, Eq, Object)]
pub struct PreferencesDto {
    /// Kinds of notification turned off, on every channel.
    pub muted: Vec<TopicDto>,
}

impl From<&NotificationPreferences> for PreferencesDto {
    fn from(preferences: &NotificationPreferences) -> Self {
        Self {
            muted: TOPICS
                .iter()
                .filter(|(_, topic)| preferences.muted.contains(topic))
                .map(|(dto, _)| *dto)
                .collect(),
        }
    }
}

impl From<&PreferencesDto> for NotificationPreferences {
    fn from(preferences: &PreferencesDto) -> Self {
        Self {
            muted: TOPICS
                .iter()
                .filter(|(dto, _)| preferences.muted.contains(dto))
                .map(|(_, topic)| *topic)
                .collect(),
        }
    }
}

/// A user's profile.
#[derive(Debug, Clone, Object)]
#[oai(example, skip_serializing_if_is_none)]
pub struct UserProfile {
    /// UUIDv7.
    pub id: String,
    pub email: String,
    pub name: String,
    /// E.164, when given.
    pub phone: Option<String>,
    /// BCP 47 language tag.
    pub locale: String,
    pub role: RoleDto,
    pub channels: ChannelsDto,
    pub preferences: PreferencesDto,
    /// Unix milliseconds.
    pub created_at_ms: i64,
    /// Unix milliseconds.
    pub updated_at_ms: i64,
}

impl poem_openapi::types::Example for UserProfile {
    fn example() -> Self {
        Self {
            id: "019ac5d0-1b2c-7a3d-8e4f-5a6b7c8d9e0f".to_string(),
            email: "ada@example.com".to_string(),
            name: "Ada Lovelace".to_string(),
            phone: Some("+442071234567".to_string()),
            locale: "en-GB".to_string(),
            role: RoleDto::Customer,
            channels: ChannelsDto {
                email: true,
                sms: true,
                push: false,
            },
            preferences: PreferencesDto {
                muted: vec![TopicDto::OrderCreated],
            },
            created_at_ms: 1_767_225_600_000,
            updated_at_ms: 1_767_225_600_000,
        }
    }
}

impl From<&UserRecord> for UserProfile {
    fn from(user: &UserRecord) -> Self {
        Self {
            id: user.id.to_string(),
            email: user.email.clone(),
            name: user.name.clone(),
            phone: user.phone.clone(),
            locale: user.locale.clone(),
            role: match user.role {
                UserRole::Customer => RoleDto::Customer,
                UserRole::Admin => RoleDto::Admin,
            },
            channels: user.channels.into(),
            preferences: PreferencesDto::from(&user.preferences),
            created_at_ms: user.created_at_ms,
            updated_at_ms: user.updated_at_ms,
        }
    }
}

/// Profile fields to change; absent (or null) fields stay as they are.
#[derive(Debug, Object)]
#[oai(example, skip_serializing_if_is_none)]
pub struct ProfilePatch {
    #[oai(nullable, validator(max_length = 200))]
    pub name: Option<Text>,
    /// E.164; an empty string removes the number (and SMS notifications).
    #[oai(nullable, validator(max_length = 20))]
    pub phone: Option<Text>,
    #[oai(nullable, validator(max_length = 35))]
    pub locale: Option<Text>,
    #[oai(nullable)]
    pub channels: Option<ChannelsDto>,
    /// Replaces the preferences whole.
    #[oai(nullable)]
    pub preferences: Option<PreferencesDto>,
}

impl poem_openapi::types::Example for ProfilePatch {
    fn example() -> Self {
        Self {
            name: Some("Ada King".into()),
            phone: Some("+442071234567".into()),
            locale: Some("en-GB".into()),
            channels: Some(ChannelsDto {
                email: true,
                sms: true,
                push: false,
            }),
            preferences: Some(PreferencesDto {
                muted: vec![TopicDto::OrderCreated],
            }),
        }
    }
}

#[derive(Debug, ApiResponse)]
enum ProfileResponse {
    /// The profile.
    #[oai(status = 200)]
    Ok(Json<UserProfile>),
}

/// Checks profile fields with the same rules the `user-events` schema enforces.
pub fn validate_profile_fields(
    email: &str,
    name: &str,
    phone: Option<&str>,
    locale: &str,
) -> ApiResult<()> {
    validate_profile(
        email,
        name,
        phone,
        locale,
        NotificationChannels {
            email: true,
            sms: phone.is_some(),
            push: false,
        },
    )
}

fn validate_profile(
    email: &str,
    name: &str,
    phone: Option<&str>,
    locale: &str,
    channels: NotificationChannels,
) -> ApiResult<()> {
    UserCreated {
        user_id: UserId::generate(0),
        email: email.to_string(),
        name: name.to_string(),
        phone: phone.map(str::to_string),
        locale: locale.to_string(),
        channels,
        role: UserRole::Customer,
        preferences: NotificationPreferences::default(),
    }
    .validate()
    .map_err(ApiError::invalid)
}

/// `previous` with the patch's fields applied.
fn apply_patch(previous: &UserRecord, patch: &ProfilePatch) -> UserRecord {
    let mut updated = previous.clone();
    if let Some(name) = &patch.name {
        updated.name = name.trim().to_string();
    }
    if let Some(phone) = &patch.phone {
        updated.phone = (!phone.is_empty()).then(|| phone.to_string());
        if updated.phone.is_none() {
            updated.channels.sms = false;
        }
    }
    if let Some(locale) = &patch.locale {
        updated.locale = locale.to_string();
    }
    if let Some(channels) = &patch.channels {
        updated.channels = NotificationChannels {
            email: channels.email,
            sms: channels.sms,
            push: channels.push,
        };
    }
    if let Some(preferences) = &patch.preferences {
        updated.preferences = preferences.into();
    }
    updated
}

/// The profile operations.
#[derive(Debug)]
pub struct MeApi;

#[OpenApi(prefix_path = "/api/v1/me", tag = "ApiTags::Me")]
impl MeApi {
    /// The caller's profile.
    #[oai(path = "/", method = "get", operation_id = "getMe")]
    async fn get_me(
        &self,
        state: Data<&Arc<AppState>>,
        auth: BearerAuth,
    ) -> ApiResult<ProfileResponse> {
        let user = load_user(&state, auth.0.user_id).await?;
        Ok(ProfileResponse::Ok(Json(UserProfile::from(&user))))
    }

    /// Change the caller's profile, notification channels and preferences.
    #[oai(path = "/", method = "patch", operation_id = "updateMe")]
    async fn update_me(
        &self,
        state: Data<&Arc<AppState>>,
        auth: BearerAuth,
        body: Json<ProfilePatch>,
    ) -> ApiResult<ProfileResponse> {
        let patch = body.0;
        // Read, apply, write if nobody wrote in between; else apply to the newer profile
        // (two PATCHes of different fields both land).
        let mut attempts = 0;
        loop {
            attempts += 1;
            let previous = load_user(&state, auth.0.user_id).await?;
            let mut updated = apply_patch(&previous, &patch);
            validate_profile(
                &updated.email,
                &updated.name,
                updated.phone.as_deref(),
                &updated.locale,
                updated.channels,
            )?;
            updated.updated_at_ms = state.now_ms().max(previous.updated_at_ms + 1);
            let written = state
                .database
                .update_profile(&previous, &updated)
                .await
                .map_err(|error| ApiError::unavailable("the user database", error))?;
            if written {
                break;
            }
            if attempts == 5 {
                return Err(ApiError::conflict(
                    "the profile keeps changing under this request; retry it",
                ));
            }
        }
        state.outbox_signal.notify_one();
        let stored = load_user(&state, auth.0.user_id).await?;
        Ok(ProfileResponse::Ok(Json(UserProfile::from(&stored))))
    }
}
