//! `/api/v1/me/notifications`: what the outbox notifier sent to the caller, from the
//! notifications topology's outbox store (keyed `user:notification`, ids in time order).

use std::sync::Arc;

use orderflow_processors::notification::OUTBOX_STORE;
use orderflow_schemas::envelope::Envelope;
use orderflow_schemas::messages::notification_events::NotificationEvent;
use poem::web::Data;
use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};

use super::{ApiTags, BearerAuth, decode_cursor, encode_cursor, page_size};
use crate::problem::{ApiError, ApiResult};
use crate::state::AppState;

/// How a notification was delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum ChannelDto {
    Email,
    Sms,
    Push,
}

/// One notification sent to the user.
#[derive(Debug, Object)]
#[oai(example, skip_serializing_if_is_none)]
pub struct NotificationView {
    pub notification_id: String,
    pub channel: ChannelDto,
    /// The template, e.g. `order_confirmed`.
    pub template: String,
    /// Email subject or push title; absent for SMS.
    pub subject: Option<String>,
    pub body: String,
    /// Unix milliseconds.
    pub sent_at_ms: i64,
}

impl poem_openapi::types::Example for NotificationView {
    fn example() -> Self {
        Self {
            notification_id: "019ac5e3-2d4e-7f60-8a1b-2c3d4e5f6a7b".to_string(),
            channel: ChannelDto::Email,
            template: "order_confirmed".to_string(),
            subject: Some("Order confirmed".to_string()),
            body: "Hi Ada, your order is confirmed.".to_string(),
            sent_at_ms: 1_767_225_600_020,
        }
    }
}

/// A page of notifications, newest first.
#[derive(Debug, Object)]
#[oai(example, skip_serializing_if_is_none)]
pub struct NotificationPage {
    pub items: Vec<NotificationView>,
    pub next_cursor: Option<String>,
}

impl poem_openapi::types::Example for NotificationPage {
    fn example() -> Self {
        Self {
            items: vec![NotificationView::example()],
            next_cursor: None,
        }
    }
}

#[derive(Debug, ApiResponse)]
enum NotificationPageResponse {
    /// The caller's notifications, newest first.
    #[oai(status = 200)]
    Ok(Json<NotificationPage>),
}

fn view(envelope: &Envelope<NotificationEvent>) -> Option<NotificationView> {
    let sent_at_ms = envelope.occurred_at.as_unix_millis();
    Some(match &envelope.payload {
        NotificationEvent::SendEmail(email) => NotificationView {
            notification_id: email.notification_id.to_string(),
            channel: ChannelDto::Email,
            template: email.template.clone(),
            subject: Some(email.subject.clone()),
            body: email.body.clone(),
            sent_at_ms,
        },
        NotificationEvent::SendSms(sms) => NotificationView {
            notification_id: sms.notification_id.to_string(),
            channel: ChannelDto::Sms,
            template: sms.template.clone(),
            subject: None,
            body: sms.body.clone(),
            sent_at_ms,
        },
        NotificationEvent::SendPush(push) => NotificationView {
            notification_id: push.notification_id.to_string(),
            channel: ChannelDto::Push,
            template: push.template.clone(),
            subject: Some(push.title.clone()),
            body: push.body.clone(),
            sent_at_ms,
        },
        NotificationEvent::NotificationSent(_) | NotificationEvent::NotificationFailed(_) => {
            return None;
        }
    })
}

/// The notification operations.
#[derive(Debug)]
pub struct NotificationsApi;

#[OpenApi(prefix_path = "/api/v1/me", tag = "ApiTags::Me")]
impl NotificationsApi {
    /// What the notifier sent to the caller, newest first.
    #[oai(
        path = "/notifications",
        method = "get",
        operation_id = "listMyNotifications"
    )]
    async fn list(
        &self,
        state: Data<&Arc<AppState>>,
        auth: BearerAuth,
        /// Page size, 1 to 100 (the default maximum; see `api.max-page-size`).
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<Option<u32>>,
        cursor: Query<Option<String>>,
    ) -> ApiResult<NotificationPageResponse> {
        let limit = page_size(&state, limit.0)? as usize;
        let prefix = format!("{}:", auth.0.user_id);
        let cursor = decode_cursor(cursor.0.as_deref())?;
        if cursor
            .as_ref()
            .is_some_and(|cursor| !cursor.starts_with(prefix.as_bytes()))
        {
            return Err(ApiError::unprocessable(
                Some("cursor".into()),
                "cursor is not one this API issued",
            ));
        }
        let entries = state
            .topologies
            .notifications
            .scan_prefix::<String, Envelope<NotificationEvent>>(
                OUTBOX_STORE,
                prefix.as_bytes(),
                cursor.as_deref(),
                true,
                limit,
            )
            .map_err(|error| ApiError::internal("reading the notification outbox", error))?;
        let next_cursor = (entries.len() == limit)
            .then(|| entries.last().map(|(key, _, _)| encode_cursor(key)))
            .flatten();
        let items = entries
            .iter()
            .filter_map(|(_, _, envelope)| view(envelope))
            .collect();
        Ok(NotificationPageResponse::Ok(Json(NotificationPage {
            items,
            next_cursor,
        })))
    }
}
