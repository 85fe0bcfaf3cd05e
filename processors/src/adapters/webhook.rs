//! The webhook notifier: each message is POSTed as its JSON envelope to a URL, signed with
//! HMAC-SHA256 so the receiver can check it came from us and was not altered or replayed.
//!
//! Headers: `X-Orderflow-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`
//! and `X-Orderflow-Notification-Id` (for deduplication). 2xx is delivered; 429, 5xx and
//! network failures are retriable; other statuses are final failures.

use std::time::Duration;

use hmac::{Hmac, Mac};
use orderflow_schemas::envelope::Envelope;
use orderflow_schemas::messages::notification_events::{NotificationChannel, NotificationEvent};
use sha2::Sha256;

use super::notifier::{DeliveryError, Notifier};

/// The signature header's value for a body sent at `unix_seconds`.
pub fn signature(secret: &[u8], unix_seconds: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(unix_seconds.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("t={unix_seconds},v1={hex}")
}

/// POSTs messages of the configured channels to one URL.
pub struct WebhookNotifier {
    url: String,
    secret: Vec<u8>,
    channels: Vec<NotificationChannel>,
    agent: ureq::Agent,
}

impl std::fmt::Debug for WebhookNotifier {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("WebhookNotifier")
            .field("url", &self.url)
            .finish()
    }
}

impl WebhookNotifier {
    pub fn new(
        url: String,
        secret: Vec<u8>,
        channels: Vec<NotificationChannel>,
        timeout: Duration,
    ) -> Self {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .build()
            .into();
        Self {
            url,
            secret,
            channels,
            agent,
        }
    }
}

impl Notifier for WebhookNotifier {
    fn handles(&self, channel: NotificationChannel) -> bool {
        self.channels.contains(&channel)
    }

    fn deliver(
        &self,
        message: &Envelope<NotificationEvent>,
    ) -> Result<Option<String>, DeliveryError> {
        let body = message.encode_json();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs() as i64);
        let notification_id = match &message.payload {
            NotificationEvent::SendEmail(send) => send.notification_id.to_string(),
            NotificationEvent::SendSms(send) => send.notification_id.to_string(),
            NotificationEvent::SendPush(send) => send.notification_id.to_string(),
            NotificationEvent::NotificationSent(sent) => sent.notification_id.to_string(),
            NotificationEvent::NotificationFailed(failed) => failed.notification_id.to_string(),
        };
        let response = self
            .agent
            .post(&self.url)
            .header("Content-Type", "application/json")
            .header(
                "X-Orderflow-Signature",
                &signature(&self.secret, now, &body),
            )
            .header("X-Orderflow-Notification-Id", &notification_id)
            .send(&body[..]);
        match response {
            Ok(response) if response.status().is_success() => Ok(None),
            Ok(response) => {
                let status = response.status().as_u16();
                Err(DeliveryError {
                    message: format!("the webhook answered {status}"),
                    retriable: status == 429 || status >= 500,
                })
            }
            Err(error) => Err(DeliveryError {
                message: format!("posting to the webhook: {error}"),
                retriable: true,
            }),
        }
    }
}
