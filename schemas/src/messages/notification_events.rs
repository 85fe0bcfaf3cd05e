//! `notification-events`: notifications to send and their outcomes. Written by the notification
//! processor, keyed by user id, so one user's notifications are sent in order.
//!
//! The notification processor emits one `Send*` per source event per channel the user enabled;
//! (`source_event_id`, channel) identifies it, so a redelivered source event is not sent twice.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::catalog::NOTIFICATION_EVENTS;
use crate::ids::{EventId, NotificationId, UserId};
use crate::validation::{
    MAX_NAME_CHARS, MAX_REASON_CHARS, MAX_TOKEN_CHARS, Validate, ValidationError,
    require_e164_phone, require_email, require_locale, require_positive_count,
    require_template_name, require_text, require_token,
};

/// Longest email body, in characters (rendered HTML included).
pub const MAX_EMAIL_BODY_CHARS: usize = 100_000;
/// Longest SMS body, in characters: ten concatenated segments.
pub const MAX_SMS_CHARS: usize = 1_600;
/// Longest push notification title, in characters.
pub const MAX_PUSH_TITLE_CHARS: usize = 100;
/// Longest push notification body, in characters.
pub const MAX_PUSH_BODY_CHARS: usize = 1_000;

message_enum! {
    /// Payload of `notification-events`.
    pub enum NotificationEvent on NOTIFICATION_EVENTS {
        /// Send an email.
        SendEmail keyed by user_id,
        /// Send a text message.
        SendSms keyed by user_id,
        /// Send a push notification.
        SendPush keyed by user_id,
        /// A notification was accepted by its provider.
        NotificationSent keyed by user_id,
        /// A notification could not be delivered to its provider.
        NotificationFailed keyed by user_id,
    }
}

/// A way to reach a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NotificationChannel {
    /// Email.
    Email,
    /// SMS text message.
    Sms,
    /// Mobile push notification.
    Push,
}

/// Send a rendered email.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SendEmail {
    /// This notification.
    pub notification_id: NotificationId,
    /// The recipient.
    pub user_id: UserId,
    /// Recipient address, as on the user's profile when rendered.
    pub to: String,
    /// Language the message was rendered in (BCP 47).
    pub locale: String,
    /// Template rendered, e.g. `order.confirmed`.
    pub template: String,
    /// Subject line.
    pub subject: String,
    /// Rendered body.
    pub body: String,
    /// The event this notification tells the user about.
    pub source_event_id: EventId,
}

impl Validate for SendEmail {
    fn validate(&self) -> Result<(), ValidationError> {
        require_email("to", &self.to)?;
        require_locale("locale", &self.locale)?;
        require_template_name("template", &self.template)?;
        require_text("subject", &self.subject, MAX_NAME_CHARS)?;
        require_text("body", &self.body, MAX_EMAIL_BODY_CHARS)
    }
}

/// Send a text message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SendSms {
    /// This notification.
    pub notification_id: NotificationId,
    /// The recipient.
    pub user_id: UserId,
    /// Recipient phone number, E.164.
    pub to: String,
    /// Language the message was rendered in (BCP 47).
    pub locale: String,
    /// Template rendered.
    pub template: String,
    /// Rendered text.
    pub body: String,
    /// The event this notification tells the user about.
    pub source_event_id: EventId,
}

impl Validate for SendSms {
    fn validate(&self) -> Result<(), ValidationError> {
        require_e164_phone("to", &self.to)?;
        require_locale("locale", &self.locale)?;
        require_template_name("template", &self.template)?;
        require_text("body", &self.body, MAX_SMS_CHARS)
    }
}

/// Send a push notification to the user's registered devices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SendPush {
    /// This notification.
    pub notification_id: NotificationId,
    /// The recipient.
    pub user_id: UserId,
    /// Language the message was rendered in (BCP 47).
    pub locale: String,
    /// Template rendered.
    pub template: String,
    /// Title line.
    pub title: String,
    /// Rendered text.
    pub body: String,
    /// The event this notification tells the user about.
    pub source_event_id: EventId,
}

impl Validate for SendPush {
    fn validate(&self) -> Result<(), ValidationError> {
        require_locale("locale", &self.locale)?;
        require_template_name("template", &self.template)?;
        require_text("title", &self.title, MAX_PUSH_TITLE_CHARS)?;
        require_text("body", &self.body, MAX_PUSH_BODY_CHARS)
    }
}

/// A notification was handed to its provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NotificationSent {
    /// The notification.
    pub notification_id: NotificationId,
    /// The recipient.
    pub user_id: UserId,
    /// How it was sent.
    pub channel: NotificationChannel,
    /// The event it told the user about.
    pub source_event_id: EventId,
    /// The provider's message id, when it returns one.
    pub provider_reference: Option<String>,
}

impl Validate for NotificationSent {
    fn validate(&self) -> Result<(), ValidationError> {
        if let Some(reference) = &self.provider_reference {
            require_token("provider_reference", reference, MAX_TOKEN_CHARS)?;
        }
        Ok(())
    }
}

/// A notification attempt failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NotificationFailed {
    /// The notification.
    pub notification_id: NotificationId,
    /// The recipient.
    pub user_id: UserId,
    /// How it was to be sent.
    pub channel: NotificationChannel,
    /// The event it was to tell the user about.
    pub source_event_id: EventId,
    /// What went wrong.
    pub reason: String,
    /// Whether another attempt may succeed.
    pub retriable: bool,
    /// The attempt that failed, from 1.
    #[schemars(range(min = 1))]
    pub attempt: u32,
}

impl Validate for NotificationFailed {
    fn validate(&self) -> Result<(), ValidationError> {
        require_text("reason", &self.reason, MAX_REASON_CHARS)?;
        require_positive_count("attempt", self.attempt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::Message;
    use crate::messages::fixtures;

    #[test]
    fn email_rules() {
        let email = fixtures::send_email();
        assert_eq!(email.validate(), Ok(()));
        let mut bad_to = email.clone();
        bad_to.to = "nobody".into();
        assert_eq!(bad_to.validate().unwrap_err().field, "to");
        let mut bad_template = email.clone();
        bad_template.template = "Order Confirmed".into();
        assert_eq!(bad_template.validate().unwrap_err().field, "template");
        let mut crlf = email;
        crlf.body = "Hello,\r\nyour order shipped.\r\n".into();
        assert_eq!(crlf.validate(), Ok(()));
    }

    #[test]
    fn sms_and_push_rules() {
        let sms = SendSms {
            notification_id: fixtures::notification_id(),
            user_id: fixtures::user_id(),
            to: "+4915112345678".into(),
            locale: "de-DE".into(),
            template: "order.shipped".into(),
            body: "x".repeat(MAX_SMS_CHARS + 1),
            source_event_id: fixtures::event_id(),
        };
        assert_eq!(sms.validate().unwrap_err().field, "body");
        let push = SendPush {
            notification_id: fixtures::notification_id(),
            user_id: fixtures::user_id(),
            locale: "en".into(),
            template: "order.shipped".into(),
            title: String::new(),
            body: "On its way".into(),
            source_event_id: fixtures::event_id(),
        };
        assert_eq!(push.validate().unwrap_err().field, "title");
    }

    #[test]
    fn keyed_by_user() {
        let event = NotificationEvent::from(fixtures::send_email());
        assert_eq!(event.partition_key(), fixtures::user_id().to_string());
    }
}
