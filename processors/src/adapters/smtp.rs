//! The SMTP notifier: e-mails (SendEmail) through an SMTP server with lettre.

use lettre::message::{Mailbox, Message};
use lettre::{SmtpTransport, Transport};
use orderflow_schemas::envelope::Envelope;
use orderflow_schemas::messages::notification_events::{NotificationChannel, NotificationEvent};

use super::notifier::{DeliveryError, Notifier};

/// Sends e-mails through one SMTP server (plain SMTP; TLS belongs to the relay in front).
pub struct SmtpNotifier {
    from: Mailbox,
    transport: SmtpTransport,
}

impl std::fmt::Debug for SmtpNotifier {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("SmtpNotifier")
            .field("from", &self.from.to_string())
            .finish()
    }
}

impl SmtpNotifier {
    /// `from` is an address such as `orderflow <shop@example.com>`.
    pub fn new(host: &str, port: u16, from: &str) -> Result<Self, String> {
        let from: Mailbox = from
            .parse()
            .map_err(|error| format!("sender address {from}: {error}"))?;
        let transport = SmtpTransport::builder_dangerous(host).port(port).build();
        Ok(Self { from, transport })
    }
}

impl Notifier for SmtpNotifier {
    fn handles(&self, channel: NotificationChannel) -> bool {
        channel == NotificationChannel::Email
    }

    fn deliver(
        &self,
        message: &Envelope<NotificationEvent>,
    ) -> Result<Option<String>, DeliveryError> {
        let NotificationEvent::SendEmail(email) = &message.payload else {
            return Ok(None);
        };
        let to: Mailbox = email.to.parse().map_err(|error| DeliveryError {
            message: format!("recipient address {}: {error}", email.to),
            retriable: false,
        })?;
        let mail = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(email.subject.clone())
            .message_id(Some(format!("<{}@orderflow>", email.notification_id)))
            .body(email.body.clone())
            .map_err(|error| DeliveryError {
                message: format!("building the e-mail: {error}"),
                retriable: false,
            })?;
        match self.transport.send(&mail) {
            Ok(response) => Ok(Some(response.message().collect::<Vec<_>>().join(" "))),
            Err(error) => Err(DeliveryError {
                // A permanent (5xx) SMTP answer will not change on retry.
                retriable: !error.is_permanent(),
                message: format!("sending the e-mail: {error}"),
            }),
        }
    }
}
