//! Delivering notifications: the `Notifier` trait and the effect that runs a notifier over
//! notification-events, answering each Send* with NotificationSent or NotificationFailed.
//!
//! Failures that may pass (network, 5xx, a busy server) are retried a few times with backoff
//! on the effect thread; then the notification is recorded as failed. A replay after a crash
//! may deliver a message again (at least once); each carries its notification id, which
//! receivers use to deduplicate (the webhook sends it as a header).

use std::time::Duration;

use orderflow_runtime::{EffectHandler, LogRecord};
use orderflow_schemas::envelope::{Envelope, Message};
use orderflow_schemas::messages::notification_events::{
    NotificationChannel, NotificationEvent, NotificationFailed, NotificationSent,
};

use crate::wire::{EnvelopeCodec, Origin};
use orderflow_state_stores::Codec;

/// Why a delivery failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DeliveryError {
    pub message: String,
    /// Whether trying again may succeed.
    pub retriable: bool,
}

/// A way to deliver notifications. Implementations do I/O and run on the effect thread.
pub trait Notifier: Send + Sync + 'static {
    /// Whether this notifier delivers messages of this channel.
    fn handles(&self, channel: NotificationChannel) -> bool;
    /// Delivers one message; `Ok` carries the provider's reference, if any.
    fn deliver(
        &self,
        message: &Envelope<NotificationEvent>,
    ) -> Result<Option<String>, DeliveryError>;
}

/// The effect that delivers Send* records through a notifier.
pub struct NotificationEffect<N> {
    notifier: N,
    attempts: u32,
    backoff: Duration,
}

impl<N> std::fmt::Debug for NotificationEffect<N> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("NotificationEffect")
            .field("attempts", &self.attempts)
            .finish()
    }
}

impl<N: Notifier> NotificationEffect<N> {
    /// `attempts` deliveries at most, waiting `backoff`, then twice that, between them.
    pub fn new(notifier: N, attempts: u32, backoff: Duration) -> Self {
        Self {
            notifier,
            attempts: attempts.max(1),
            backoff,
        }
    }
}

fn channel_of(event: &NotificationEvent) -> Option<NotificationChannel> {
    match event {
        NotificationEvent::SendEmail(_) => Some(NotificationChannel::Email),
        NotificationEvent::SendSms(_) => Some(NotificationChannel::Sms),
        NotificationEvent::SendPush(_) => Some(NotificationChannel::Push),
        NotificationEvent::NotificationSent(_) | NotificationEvent::NotificationFailed(_) => None,
    }
}

impl<N: Notifier> EffectHandler for NotificationEffect<N> {
    fn execute(&self, request: &LogRecord) -> Result<Option<LogRecord>, String> {
        let value = request.value.as_deref().ok_or("the record has no value")?;
        let envelope: Envelope<NotificationEvent> = EnvelopeCodec::default().decode(value)?;
        let Some(channel) = channel_of(&envelope.payload) else {
            return Ok(None); // our own results come back on the same topic
        };
        let (notification_id, user_id, source_event_id) = match &envelope.payload {
            NotificationEvent::SendEmail(send) => {
                (send.notification_id, send.user_id, send.source_event_id)
            }
            NotificationEvent::SendSms(send) => {
                (send.notification_id, send.user_id, send.source_event_id)
            }
            NotificationEvent::SendPush(send) => {
                (send.notification_id, send.user_id, send.source_event_id)
            }
            _ => unreachable!("channel_of returned a channel"),
        };
        let mut attempt = 0;
        let outcome = if !self.notifier.handles(channel) {
            attempt = 1;
            // Configured delivery covers other channels only: say so on the record (the outbox
            // still stores the message), rather than drop it without a trace.
            Err(DeliveryError {
                message: format!(
                    "no notifier delivers {channel:?} here (see [notifications] delivery)"
                ),
                retriable: false,
            })
        } else {
            loop {
                attempt += 1;
                match self.notifier.deliver(&envelope) {
                    Ok(reference) => break Ok(reference),
                    Err(error) if error.retriable && attempt < self.attempts => {
                        std::thread::sleep(self.backoff * 2u32.saturating_pow(attempt - 1));
                    }
                    Err(error) => break Err(error),
                }
            }
        };
        let result = match outcome {
            Ok(provider_reference) => NotificationEvent::NotificationSent(NotificationSent {
                notification_id,
                user_id,
                channel,
                source_event_id,
                provider_reference,
            }),
            Err(error) => NotificationEvent::NotificationFailed(NotificationFailed {
                notification_id,
                user_id,
                channel,
                source_event_id,
                reason: error.message,
                retriable: error.retriable,
                attempt,
            }),
        };
        let now = envelope.occurred_at.as_unix_millis();
        let key = result.partition_key();
        let output = Origin::caused_by(&envelope).envelope(result, now);
        Ok(Some(LogRecord::new(
            Some(key.into_bytes()),
            Some(output.encode_json()),
            request.timestamp,
        )))
    }
}
