//! The notifications topology: order and payment events joined with the user table into one
//! message per enabled channel, delivered by the outbox.

use orderflow_processors::notification::{
    NotificationInput, NotificationProcessor, ORDER_USERS_STORE, OUTBOX_STORE, OutboxProcessor,
    SENT_STORE,
};
use orderflow_processors::user_profile_codec::UserProfileCodec;
use orderflow_processors::users::{USERS_TABLE, project_user};
use orderflow_processors::wire::{EnvelopeSource, envelope_serde};
use std::sync::Arc;

use orderflow_runtime::{EffectHandler, Topology, TopologyBuilder, TopologyError};
use orderflow_schemas::catalog::{NOTIFICATION_EVENTS, ORDER_EVENTS, PAYMENT_EVENTS, USER_EVENTS};
use orderflow_schemas::envelope::Envelope;
use orderflow_schemas::messages::notification_events::NotificationEvent;
use orderflow_state_stores::{JsonCodec, StringCodec};

use crate::catalog_topic;

/// How notifications are delivered.
#[derive(Clone, Default)]
pub struct NotificationsOptions {
    /// An external delivery (SMTP, webhook) run as an effect; `None`: the outbox delivers.
    pub delivery: Option<Arc<dyn EffectHandler>>,
}

impl std::fmt::Debug for NotificationsOptions {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("NotificationsOptions")
            .field("external_delivery", &self.delivery.is_some())
            .finish()
    }
}

/// Builds the notifications topology.
pub fn topology(options: &NotificationsOptions) -> Result<Topology, TopologyError> {
    let is_delivery = options.delivery.is_none();
    let mut builder = TopologyBuilder::new();
    if let Some(delivery) = &options.delivery {
        builder.add_effect(
            "notification-delivery",
            NOTIFICATION_EVENTS,
            NOTIFICATION_EVENTS,
            delivery.clone(),
        );
    }
    for topic in [
        ORDER_EVENTS,
        PAYMENT_EVENTS,
        USER_EVENTS,
        NOTIFICATION_EVENTS,
    ] {
        builder.add_topic(catalog_topic(topic));
    }
    builder
        .add_global_table(
            USERS_TABLE,
            USER_EVENTS,
            EnvelopeSource::new(|envelope| envelope),
            StringCodec,
            UserProfileCodec,
            project_user,
        )
        .add_source(
            "notify-order-events",
            ORDER_EVENTS,
            EnvelopeSource::new(NotificationInput::Order),
        )
        .add_source(
            "notify-payment-events",
            PAYMENT_EVENTS,
            EnvelopeSource::new(NotificationInput::Payment),
        )
        .add_processor(
            "notify",
            &["notify-order-events", "notify-payment-events"],
            || NotificationProcessor,
            &[SENT_STORE, ORDER_USERS_STORE],
        )
        .add_key_value_store::<String, u8>(SENT_STORE, StringCodec, JsonCodec)
        .add_key_value_store::<String, String>(ORDER_USERS_STORE, StringCodec, StringCodec)
        .add_sink(
            "notification-events-sink",
            &["notify"],
            NOTIFICATION_EVENTS,
            envelope_serde::<NotificationEvent>(),
        )
        .add_source(
            "outbox-notification-events",
            NOTIFICATION_EVENTS,
            envelope_serde::<NotificationEvent>(),
        )
        .add_processor(
            "outbox",
            &["outbox-notification-events"],
            move || OutboxProcessor { is_delivery },
            &[OUTBOX_STORE],
        )
        .add_key_value_store::<String, Envelope<NotificationEvent>>(
            OUTBOX_STORE,
            StringCodec,
            JsonCodec,
        )
        .add_sink(
            "outbox-sent-sink",
            &["outbox"],
            NOTIFICATION_EVENTS,
            envelope_serde::<NotificationEvent>(),
        );
    builder.build()
}
