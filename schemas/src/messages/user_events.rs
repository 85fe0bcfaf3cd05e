//! `user-events`: user profiles as the notification processor and views need them. Written by the
//! ingress API through its outbox, keyed by user id.
//!
//! The topic is compacted: only the latest record per user survives. So every record carries the
//! user's complete profile (`UserUpdated` is a snapshot plus the list of what changed), never a
//! delta that would be meaningless once the records before it are compacted away.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::catalog::USER_EVENTS;
use crate::ids::UserId;
use crate::validation::{
    MAX_NAME_CHARS, Validate, ValidationError, require_e164_phone, require_email, require_locale,
    require_text,
};

message_enum! {
    /// Payload of `user-events`.
    pub enum UserEvent on USER_EVENTS {
        /// A user registered.
        UserCreated keyed by user_id,
        /// A user's profile, channels or role changed; carries the whole new profile.
        UserUpdated keyed by user_id,
    }
}

/// Which channels a user agreed to be notified on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NotificationChannels {
    /// Email notifications.
    pub email: bool,
    /// SMS notifications; needs a phone number.
    pub sms: bool,
    /// Push notifications to the user's devices.
    pub push: bool,
}

/// A kind of notification, one per kind of event that notifies; a user may turn any off.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum NotificationTopic {
    /// The order was received (`OrderCreated`).
    OrderCreated,
    /// The order was paid and will be fulfilled.
    OrderConfirmed,
    /// Stock, a coupon or the order's checks refused it.
    OrderRejected,
    /// The order was cancelled.
    OrderCancelled,
    /// The order left the warehouse.
    OrderShipped,
    /// The order arrived.
    OrderDelivered,
    /// The payment failed.
    PaymentFailed,
    /// A payment was refunded.
    PaymentRefunded,
}

impl NotificationTopic {
    /// Every kind.
    pub const ALL: [NotificationTopic; 8] = [
        Self::OrderCreated,
        Self::OrderConfirmed,
        Self::OrderRejected,
        Self::OrderCancelled,
        Self::OrderShipped,
        Self::OrderDelivered,
        Self::PaymentFailed,
        Self::PaymentRefunded,
    ];

    /// The name the notification templates use (`order_confirmed`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::OrderCreated => "order_created",
            Self::OrderConfirmed => "order_confirmed",
            Self::OrderRejected => "order_rejected",
            Self::OrderCancelled => "order_cancelled",
            Self::OrderShipped => "order_shipped",
            Self::OrderDelivered => "order_delivered",
            Self::PaymentFailed => "payment_failed",
            Self::PaymentRefunded => "payment_refunded",
        }
    }
}

/// What a user wants to be notified of, on the channels they enabled: everything unless muted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NotificationPreferences {
    /// Kinds of notification turned off, on every channel.
    #[serde(default)]
    pub muted: std::collections::BTreeSet<NotificationTopic>,
}

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum UserRole {
    /// Places and manages their own orders.
    Customer,
    /// Manages the catalog, stock and any order.
    Admin,
}

/// A profile field, to say what a `UserUpdated` changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum UserField {
    /// `email`.
    Email,
    /// `name`.
    Name,
    /// `phone`.
    Phone,
    /// `locale`.
    Locale,
    /// `channels`.
    Channels,
    /// `role`.
    Role,
    /// `preferences`.
    Preferences,
}

/// The rules every profile snapshot obeys.
fn validate_profile(
    email: &str,
    name: &str,
    phone: Option<&str>,
    locale: &str,
    channels: NotificationChannels,
) -> Result<(), ValidationError> {
    require_email("email", email)?;
    require_text("name", name, MAX_NAME_CHARS)?;
    if let Some(phone) = phone {
        require_e164_phone("phone", phone)?;
    }
    require_locale("locale", locale)?;
    if channels.sms && phone.is_none() {
        return Err(ValidationError::new(
            "channels.sms",
            "cannot be enabled without a phone number",
        ));
    }
    Ok(())
}

/// A user registered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserCreated {
    /// The user.
    pub user_id: UserId,
    /// Login and notification address.
    pub email: String,
    /// How to address the user.
    pub name: String,
    /// Mobile number, E.164, for SMS.
    pub phone: Option<String>,
    /// Preferred language (BCP 47), for notification templates.
    pub locale: String,
    /// Channels the user agreed to.
    pub channels: NotificationChannels,
    /// What the user may do.
    pub role: UserRole,
    /// Notifications turned off (none when absent: events written before preferences).
    #[serde(default)]
    pub preferences: NotificationPreferences,
}

impl Validate for UserCreated {
    fn validate(&self) -> Result<(), ValidationError> {
        validate_profile(
            &self.email,
            &self.name,
            self.phone.as_deref(),
            &self.locale,
            self.channels,
        )
    }
}

/// A user's profile changed. Carries the complete profile after the change (see the module
/// documentation for why) and which fields changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserUpdated {
    /// The user.
    pub user_id: UserId,
    /// Login and notification address.
    pub email: String,
    /// How to address the user.
    pub name: String,
    /// Mobile number, E.164; `null` when the user removed it.
    pub phone: Option<String>,
    /// Preferred language (BCP 47).
    pub locale: String,
    /// Channels the user agreed to.
    pub channels: NotificationChannels,
    /// What the user may do.
    pub role: UserRole,
    /// Notifications turned off (none when absent: events written before preferences).
    #[serde(default)]
    pub preferences: NotificationPreferences,
    /// The fields that differ from the previous record; non-empty, no repeats.
    #[schemars(length(min = 1))]
    pub changed: Vec<UserField>,
}

impl Validate for UserUpdated {
    fn validate(&self) -> Result<(), ValidationError> {
        validate_profile(
            &self.email,
            &self.name,
            self.phone.as_deref(),
            &self.locale,
            self.channels,
        )?;
        if self.changed.is_empty() {
            return Err(ValidationError::new(
                "changed",
                "must name at least one field",
            ));
        }
        for (index, field) in self.changed.iter().enumerate() {
            if self.changed[..index].contains(field) {
                return Err(ValidationError::new(
                    format!("changed[{index}]"),
                    format!("{field:?} is listed twice"),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::Message;
    use crate::messages::fixtures;

    #[test]
    fn sms_needs_a_phone() {
        let mut user = fixtures::user_created();
        assert_eq!(user.validate(), Ok(()));
        user.channels.sms = true;
        user.phone = None;
        assert_eq!(user.validate().unwrap_err().field, "channels.sms");
        user.phone = Some("0151 123".into());
        assert_eq!(user.validate().unwrap_err().field, "phone");
    }

    #[test]
    fn topic_names_are_their_wire_names_and_the_templates_names() {
        for topic in NotificationTopic::ALL {
            assert_eq!(
                serde_json::to_value(topic).unwrap(),
                serde_json::Value::String(topic.name().to_string())
            );
        }
        let preferences: NotificationPreferences =
            serde_json::from_str(r#"{"muted": ["payment_refunded"]}"#).unwrap();
        assert!(
            preferences
                .muted
                .contains(&NotificationTopic::PaymentRefunded)
        );
        // Records written before preferences read as "nothing muted".
        assert_eq!(
            serde_json::from_str::<NotificationPreferences>("{}").unwrap(),
            NotificationPreferences::default()
        );
    }

    #[test]
    fn update_lists_changes_once() {
        let created = fixtures::user_created();
        let mut updated = UserUpdated {
            user_id: created.user_id,
            email: created.email,
            name: "Ada King".into(),
            phone: created.phone,
            locale: created.locale,
            channels: created.channels,
            role: created.role,
            preferences: created.preferences,
            changed: vec![],
        };
        assert_eq!(updated.validate().unwrap_err().field, "changed");
        updated.changed = vec![UserField::Name, UserField::Name];
        assert_eq!(updated.validate().unwrap_err().field, "changed[1]");
        updated.changed = vec![UserField::Name];
        assert_eq!(updated.validate(), Ok(()));
        assert_eq!(
            UserEvent::from(updated).partition_key(),
            fixtures::user_id().to_string()
        );
    }
}
