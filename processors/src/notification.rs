//! Notifications: one message per order or payment event per channel the user enabled, from
//! templates per event type and locale; and the outbox, the default delivery, which keeps every
//! message queryable per user.
//!
//! A replayed or duplicated event sends nothing twice: every (event, channel) pair sent is
//! remembered in the `notifications-sent` store, committed with the messages it produced.

use orderflow_runtime::{ProcessError, Processor, ProcessorContext, Record};
use orderflow_schemas::envelope::{Envelope, Message};
use orderflow_schemas::ids::{EventId, NotificationId};
use orderflow_schemas::messages::notification_events::{
    NotificationChannel, NotificationEvent, NotificationSent, SendEmail, SendPush, SendSms,
};
use orderflow_schemas::messages::order_events::OrderEvent;
use orderflow_schemas::messages::payment_events::PaymentEvent;
use orderflow_schemas::messages::user_events::NotificationTopic;
use orderflow_state_stores::KeyValueStore;

use crate::users::{USERS_TABLE, UserProfile};
use crate::wire::Origin;

/// `event id:channel` -> 1, for every notification already produced.
pub const SENT_STORE: &str = "notifications-sent";
/// `user id:notification id` -> the message, for GET /me/notifications.
pub const OUTBOX_STORE: &str = "notification-outbox";
/// order id -> user id, learnt from order events, for payment events (which name no user).
pub const ORDER_USERS_STORE: &str = "notification-order-users";

/// The events that notify.
#[derive(Debug, Clone)]
// Moved once per record between nodes; boxing would cost an allocation for no gain.
#[allow(clippy::large_enum_variant)]
pub enum NotificationInput {
    Order(Envelope<OrderEvent>),
    Payment(Envelope<PaymentEvent>),
}

/// A rendered message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub template: &'static str,
    pub subject: String,
    pub body: String,
}

/// The kind of notification an event makes (its template), if it makes one.
pub fn topic_of(input: &NotificationInput) -> Option<NotificationTopic> {
    Some(match input {
        NotificationInput::Order(envelope) => match &envelope.payload {
            OrderEvent::OrderCreated(_) => NotificationTopic::OrderCreated,
            OrderEvent::OrderConfirmed(_) => NotificationTopic::OrderConfirmed,
            OrderEvent::OrderRejected(_) => NotificationTopic::OrderRejected,
            OrderEvent::OrderCancelled(_) => NotificationTopic::OrderCancelled,
            OrderEvent::OrderShipped(_) => NotificationTopic::OrderShipped,
            OrderEvent::OrderDelivered(_) => NotificationTopic::OrderDelivered,
            OrderEvent::OrderPaymentFailed(_) => NotificationTopic::PaymentFailed,
            OrderEvent::TransitionRefused(_) => return None,
        },
        NotificationInput::Payment(envelope) => match &envelope.payload {
            PaymentEvent::PaymentRefunded(_) => NotificationTopic::PaymentRefunded,
            _ => return None,
        },
    })
}

/// Renders the message for an event in a locale (German for `de*`, English otherwise); `None`
/// for events nobody is notified of.
pub fn render(input: &NotificationInput, locale: &str, name: &str) -> Option<Rendered> {
    let german = locale.starts_with("de");
    let template = topic_of(input)?.name();
    let (subject, body) = match input {
        NotificationInput::Order(envelope) => match &envelope.payload {
            OrderEvent::OrderCreated(created) => (
                if german {
                    "Bestellung eingegangen"
                } else {
                    "Order received"
                },
                if german {
                    format!(
                        "Hallo {name}, wir haben deine Bestellung {} über {} erhalten.",
                        created.order_id, created.totals.total
                    )
                } else {
                    format!(
                        "Hi {name}, we received your order {} for {}.",
                        created.order_id, created.totals.total
                    )
                },
            ),
            OrderEvent::OrderConfirmed(confirmed) => (
                if german {
                    "Bestellung bestätigt"
                } else {
                    "Order confirmed"
                },
                if german {
                    format!(
                        "Hallo {name}, deine Bestellung {} ist bezahlt und bestätigt.",
                        confirmed.order_id
                    )
                } else {
                    format!(
                        "Hi {name}, your order {} is paid and confirmed.",
                        confirmed.order_id
                    )
                },
            ),
            OrderEvent::OrderRejected(rejected) => (
                if german {
                    "Bestellung abgelehnt"
                } else {
                    "Order rejected"
                },
                if german {
                    format!(
                        "Hallo {name}, deine Bestellung {} konnte nicht angenommen werden.",
                        rejected.order_id
                    )
                } else {
                    format!(
                        "Hi {name}, we could not accept your order {}.",
                        rejected.order_id
                    )
                },
            ),
            OrderEvent::OrderCancelled(cancelled) => (
                if german {
                    "Bestellung storniert"
                } else {
                    "Order cancelled"
                },
                if german {
                    format!(
                        "Hallo {name}, deine Bestellung {} wurde storniert.",
                        cancelled.order_id
                    )
                } else {
                    format!(
                        "Hi {name}, your order {} was cancelled.",
                        cancelled.order_id
                    )
                },
            ),
            OrderEvent::OrderShipped(shipped) => (
                if german {
                    "Bestellung versandt"
                } else {
                    "Order shipped"
                },
                if german {
                    format!(
                        "Hallo {name}, deine Bestellung {} ist mit {} unterwegs ({}).",
                        shipped.order_id, shipped.carrier, shipped.tracking_number
                    )
                } else {
                    format!(
                        "Hi {name}, your order {} is on its way with {} ({}).",
                        shipped.order_id, shipped.carrier, shipped.tracking_number
                    )
                },
            ),
            OrderEvent::OrderDelivered(delivered) => (
                if german {
                    "Bestellung zugestellt"
                } else {
                    "Order delivered"
                },
                if german {
                    format!(
                        "Hallo {name}, deine Bestellung {} wurde zugestellt.",
                        delivered.order_id
                    )
                } else {
                    format!(
                        "Hi {name}, your order {} was delivered.",
                        delivered.order_id
                    )
                },
            ),
            OrderEvent::OrderPaymentFailed(failed) => (
                if german {
                    "Zahlung fehlgeschlagen"
                } else {
                    "Payment failed"
                },
                if german {
                    format!(
                        "Hallo {name}, die Zahlung für deine Bestellung {} ist fehlgeschlagen: {}.",
                        failed.order_id, failed.reason
                    )
                } else {
                    format!(
                        "Hi {name}, the payment for your order {} failed: {}.",
                        failed.order_id, failed.reason
                    )
                },
            ),
            OrderEvent::TransitionRefused(_) => return None,
        },
        NotificationInput::Payment(envelope) => match &envelope.payload {
            PaymentEvent::PaymentRefunded(refunded) => (
                if german {
                    "Erstattung veranlasst"
                } else {
                    "Refund issued"
                },
                if german {
                    format!(
                        "Hallo {name}, wir haben {} für deine Bestellung {} erstattet.",
                        refunded.amount, refunded.order_id
                    )
                } else {
                    format!(
                        "Hi {name}, we refunded {} for your order {}.",
                        refunded.amount, refunded.order_id
                    )
                },
            ),
            _ => return None,
        },
    };
    Some(Rendered {
        template,
        subject: subject.to_string(),
        body,
    })
}

/// Produces notifications, keyed by order id on input and by user id on output.
#[derive(Debug, Default)]
pub struct NotificationProcessor;

type Context<'a> = ProcessorContext<'a, String, Envelope<NotificationEvent>>;

/// The user an order event is about.
fn user_of_order_event(event: &OrderEvent) -> Option<String> {
    let user_id = match event {
        OrderEvent::OrderCreated(event) => event.user_id,
        OrderEvent::OrderConfirmed(event) => event.user_id,
        OrderEvent::OrderRejected(event) => event.user_id,
        OrderEvent::OrderCancelled(event) => event.user_id,
        OrderEvent::OrderShipped(event) => event.user_id,
        OrderEvent::OrderDelivered(event) => event.user_id,
        OrderEvent::OrderPaymentFailed(event) => event.user_id,
        OrderEvent::TransitionRefused(_) => return None,
    };
    Some(user_id.to_string())
}

impl Processor for NotificationProcessor {
    type InKey = String;
    type InValue = NotificationInput;
    type OutKey = String;
    type OutValue = Envelope<NotificationEvent>;

    fn process(
        &mut self,
        context: &mut Context<'_>,
        record: Record<String, NotificationInput>,
    ) -> Result<(), ProcessError> {
        let (event_id, origin) = match &record.value {
            NotificationInput::Order(envelope) => (envelope.event_id, Origin::caused_by(envelope)),
            NotificationInput::Payment(envelope) => {
                (envelope.event_id, Origin::caused_by(envelope))
            }
        };
        // Order and payment events share the order id as key (co-partitioned), so the order's
        // user, learnt from its order events, is at hand for its payment events.
        let user_id = match &record.value {
            NotificationInput::Order(envelope) => {
                let Some(user_id) = user_of_order_event(&envelope.payload) else {
                    return Ok(());
                };
                context
                    .key_value_store::<String, String>(ORDER_USERS_STORE)?
                    .put(&record.key, &user_id)?;
                user_id
            }
            NotificationInput::Payment(_) => {
                match context
                    .key_value_store::<String, String>(ORDER_USERS_STORE)?
                    .get(&record.key)?
                {
                    Some(user_id) => user_id,
                    None => return Ok(()),
                }
            }
        };
        let Some(profile) = context
            .global_table::<String, UserProfile>(USERS_TABLE)?
            .get(&user_id)?
        else {
            return Ok(()); // a user that no longer exists (or never did) is not notified
        };
        // Muted kinds are sent on no channel (and not rendered).
        if topic_of(&record.value).is_some_and(|topic| profile.preferences.muted.contains(&topic)) {
            return Ok(());
        }
        let Some(rendered) = render(&record.value, &profile.locale, &profile.name) else {
            return Ok(());
        };
        let now = context.now_ms();
        for channel in [
            NotificationChannel::Email,
            NotificationChannel::Sms,
            NotificationChannel::Push,
        ] {
            let enabled = match channel {
                NotificationChannel::Email => profile.channels.email,
                NotificationChannel::Sms => profile.channels.sms && profile.phone.is_some(),
                NotificationChannel::Push => profile.channels.push,
            };
            if !enabled {
                continue;
            }
            let sent_key = format!("{event_id}:{channel:?}");
            let mut sent = context.key_value_store::<String, u8>(SENT_STORE)?;
            if sent.get(&sent_key)?.is_some() {
                continue;
            }
            sent.put(&sent_key, &1)?;
            let notification = message(&profile, channel, &rendered, event_id, now);
            let key = notification.partition_key();
            let envelope = origin.envelope(notification, now);
            context.forward(Record::new(key, envelope, record.timestamp));
        }
        Ok(())
    }
}

fn message(
    profile: &UserProfile,
    channel: NotificationChannel,
    rendered: &Rendered,
    source_event_id: EventId,
    now: i64,
) -> NotificationEvent {
    let notification_id = NotificationId::generate(now);
    match channel {
        NotificationChannel::Email => NotificationEvent::SendEmail(SendEmail {
            notification_id,
            user_id: profile.user_id,
            to: profile.email.clone(),
            locale: profile.locale.clone(),
            template: rendered.template.to_string(),
            subject: rendered.subject.clone(),
            body: rendered.body.clone(),
            source_event_id,
        }),
        NotificationChannel::Sms => NotificationEvent::SendSms(SendSms {
            notification_id,
            user_id: profile.user_id,
            to: profile.phone.clone().unwrap_or_default(),
            locale: profile.locale.clone(),
            template: rendered.template.to_string(),
            body: rendered.body.clone(),
            source_event_id,
        }),
        NotificationChannel::Push => NotificationEvent::SendPush(SendPush {
            notification_id,
            user_id: profile.user_id,
            locale: profile.locale.clone(),
            template: rendered.template.to_string(),
            title: rendered.subject.clone(),
            body: rendered.body.clone(),
            source_event_id,
        }),
    }
}

/// The outbox, keyed by user id: stores each Send* message where the API can list it, and —
/// when it is the delivery (no SMTP or webhook notifier configured) — records it as sent.
#[derive(Debug, Default)]
pub struct OutboxProcessor {
    /// Whether the outbox is the delivery, so storing a message is sending it.
    pub is_delivery: bool,
}

impl Processor for OutboxProcessor {
    type InKey = String;
    type InValue = Envelope<NotificationEvent>;
    type OutKey = String;
    type OutValue = Envelope<NotificationEvent>;

    fn process(
        &mut self,
        context: &mut ProcessorContext<'_, String, Envelope<NotificationEvent>>,
        record: Record<String, Envelope<NotificationEvent>>,
    ) -> Result<(), ProcessError> {
        let (notification_id, user_id, channel, source_event_id) = match &record.value.payload {
            NotificationEvent::SendEmail(send) => (
                send.notification_id,
                send.user_id,
                NotificationChannel::Email,
                send.source_event_id,
            ),
            NotificationEvent::SendSms(send) => (
                send.notification_id,
                send.user_id,
                NotificationChannel::Sms,
                send.source_event_id,
            ),
            NotificationEvent::SendPush(send) => (
                send.notification_id,
                send.user_id,
                NotificationChannel::Push,
                send.source_event_id,
            ),
            NotificationEvent::NotificationSent(_) | NotificationEvent::NotificationFailed(_) => {
                return Ok(());
            }
        };
        let outbox_key = format!("{user_id}:{notification_id}");
        let mut outbox =
            context.key_value_store::<String, Envelope<NotificationEvent>>(OUTBOX_STORE)?;
        if outbox.get(&outbox_key)?.is_some() {
            return Ok(());
        }
        outbox.put(&outbox_key, &record.value)?;
        if !self.is_delivery {
            return Ok(());
        }
        let origin = Origin::caused_by(&record.value);
        let sent = NotificationEvent::NotificationSent(NotificationSent {
            notification_id,
            user_id,
            channel,
            source_event_id,
            provider_reference: None,
        });
        let envelope = origin.envelope(sent, context.now_ms());
        context.forward(Record::new(record.key, envelope, record.timestamp));
        Ok(())
    }
}
