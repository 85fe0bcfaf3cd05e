//! The domain's settings in the configuration file: the saga (pricing, deadlines), payments
//! (provider and retries), notification delivery and analytics, and how `serve` builds the
//! provider and the notifier they name.

use std::sync::Arc;
use std::time::Duration;

use orderflow_processors::adapters::notifier::NotificationEffect;
use orderflow_processors::adapters::smtp::SmtpNotifier;
use orderflow_processors::adapters::stripe::{StripeConfig, StripeProvider};
use orderflow_processors::adapters::webhook::WebhookNotifier;
use orderflow_processors::analytics::AnalyticsConfig;
use orderflow_processors::order_saga::SagaConfig;
use orderflow_processors::payment::{PaymentConfig, PaymentProvider, SimulatedProvider};
use orderflow_runtime::EffectHandler;
use orderflow_schemas::messages::notification_events::NotificationChannel;
use serde::{Deserialize, Serialize};

/// Which payment provider charges orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProviderKind {
    /// In process; the payment-method token decides the outcome (`tok_visa` approves,
    /// `tok_decline` declines, ...). For development and demos.
    #[default]
    Simulated,
    /// An HTTP API of Stripe's shape (PaymentIntents with an Idempotency-Key, refunds):
    /// Stripe itself, or stripe-mock. Needs `[payments.stripe]`.
    Stripe,
}

/// Payments: the provider and the retries of a charge.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default, rename_all = "kebab-case")]
pub struct PaymentsConfig {
    pub provider: ProviderKind,
    /// Retries with exponential backoff and jitter, on durable timers.
    pub retries: PaymentConfig,
    /// Where and how to reach the Stripe-shaped API (with `provider = "stripe"`).
    pub stripe: Option<StripeConfig>,
}

/// How notifications leave the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeliveryKind {
    /// Stored and readable at `GET /api/v1/me/notifications`; nothing is sent.
    #[default]
    Outbox,
    /// E-mail through an SMTP server. Needs `[notifications.smtp]`.
    Smtp,
    /// An HTTP POST per notification, signed with HMAC-SHA256. Needs `[notifications.webhook]`.
    Webhook,
}

/// An SMTP server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SmtpSettings {
    pub host: String,
    #[serde(default = "default_smtp_port")]
    pub port: u16,
    /// The sender, e.g. `orderflow <shop@example.com>`.
    pub from: String,
}

fn default_smtp_port() -> u16 {
    25
}

/// A webhook receiver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct WebhookSettings {
    pub url: String,
    /// The HMAC-SHA256 key the receiver checks signatures with (never logged).
    pub secret: String,
    /// The channels it receives.
    #[serde(default = "all_channels")]
    pub channels: Vec<NotificationChannel>,
    #[serde(default = "default_webhook_timeout_ms")]
    pub timeout_ms: u64,
}

fn all_channels() -> Vec<NotificationChannel> {
    vec![
        NotificationChannel::Email,
        NotificationChannel::Sms,
        NotificationChannel::Push,
    ]
}

fn default_webhook_timeout_ms() -> u64 {
    5_000
}

/// Notification delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default, rename_all = "kebab-case")]
pub struct NotificationsConfig {
    pub delivery: DeliveryKind,
    /// Deliveries of one notification before it is recorded as NotificationFailed.
    pub attempts: u32,
    /// Wait before the second delivery, doubling after each further failure, in ms.
    pub backoff_ms: u64,
    pub smtp: Option<SmtpSettings>,
    pub webhook: Option<WebhookSettings>,
}

impl Default for NotificationsConfig {
    fn default() -> Self {
        Self {
            delivery: DeliveryKind::Outbox,
            attempts: 3,
            backoff_ms: 200,
            smtp: None,
            webhook: None,
        }
    }
}

/// The domain's sections of [`crate::config::Config`], together.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DomainConfig {
    /// Pricing (tax by region, shipping), reservation TTL and the order's deadlines.
    pub saga: SagaConfig,
    pub payments: PaymentsConfig,
    pub notifications: NotificationsConfig,
    pub analytics: AnalyticsConfig,
}

/// A setting that cannot work, with the field it is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainConfigError {
    pub field: &'static str,
    pub reason: String,
}

impl std::fmt::Display for DomainConfigError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            formatter,
            "invalid configuration: field `{}`: {}",
            self.field, self.reason
        )
    }
}

impl std::error::Error for DomainConfigError {}

fn invalid(field: &'static str, reason: impl Into<String>) -> DomainConfigError {
    DomainConfigError {
        field,
        reason: reason.into(),
    }
}

impl DomainConfig {
    /// Refuses settings that cannot work, naming the field.
    pub fn validate(&self) -> Result<(), DomainConfigError> {
        self.saga
            .validate()
            .map_err(|reason| invalid("saga", reason))?;
        let retries = &self.payments.retries;
        if retries.max_attempts == 0 {
            return Err(invalid(
                "payments.retries.max-attempts",
                "must be at least 1",
            ));
        }
        if retries.reconcile_attempts < retries.max_attempts {
            // Fewer would stop confirming a charge before its failure was ever reported, and
            // the order would wait for its payment deadline instead.
            return Err(invalid(
                "payments.retries.reconcile-attempts",
                "must be at least max-attempts",
            ));
        }
        if retries.backoff_initial_ms <= 0 || retries.backoff_max_ms < retries.backoff_initial_ms {
            return Err(invalid(
                "payments.retries.backoff-initial-ms",
                "must be positive and at most backoff-max-ms",
            ));
        }
        if self.payments.provider == ProviderKind::Stripe {
            let Some(stripe) = &self.payments.stripe else {
                return Err(invalid(
                    "payments.stripe",
                    "provider = \"stripe\" needs base-url and api-key",
                ));
            };
            if !(stripe.base_url.starts_with("http://") || stripe.base_url.starts_with("https://"))
            {
                return Err(invalid(
                    "payments.stripe.base-url",
                    format!("must be an http(s) URL, got {:?}", stripe.base_url),
                ));
            }
            if stripe.api_key.is_empty() {
                return Err(invalid("payments.stripe.api-key", "must not be empty"));
            }
        }
        if self.notifications.attempts == 0 {
            return Err(invalid("notifications.attempts", "must be at least 1"));
        }
        match self.notifications.delivery {
            DeliveryKind::Outbox => {}
            DeliveryKind::Smtp if self.notifications.smtp.is_none() => {
                return Err(invalid(
                    "notifications.smtp",
                    "delivery = \"smtp\" needs host and from",
                ));
            }
            DeliveryKind::Webhook => {
                let Some(webhook) = &self.notifications.webhook else {
                    return Err(invalid(
                        "notifications.webhook",
                        "delivery = \"webhook\" needs url and secret",
                    ));
                };
                if !(webhook.url.starts_with("http://") || webhook.url.starts_with("https://")) {
                    return Err(invalid(
                        "notifications.webhook.url",
                        format!("must be an http(s) URL, got {:?}", webhook.url),
                    ));
                }
                if webhook.secret.is_empty() {
                    return Err(invalid("notifications.webhook.secret", "must not be empty"));
                }
            }
            DeliveryKind::Smtp => {}
        }
        if self.analytics.grace_ms < 0 {
            return Err(invalid("analytics.grace-ms", "must not be negative"));
        }
        Ok(())
    }

    /// The payment provider the configuration names.
    pub fn provider(&self) -> Arc<dyn PaymentProvider> {
        match (&self.payments.provider, &self.payments.stripe) {
            (ProviderKind::Stripe, Some(stripe)) => Arc::new(StripeProvider::new(stripe.clone())),
            _ => Arc::new(SimulatedProvider::new()),
        }
    }

    /// The notification delivery effect the configuration names (`None`: the outbox).
    pub fn delivery(&self) -> Result<Option<Arc<dyn EffectHandler>>, DomainConfigError> {
        let settings = &self.notifications;
        let backoff = Duration::from_millis(settings.backoff_ms);
        Ok(
            match (settings.delivery, &settings.smtp, &settings.webhook) {
                (DeliveryKind::Smtp, Some(smtp), _) => {
                    let notifier = SmtpNotifier::new(&smtp.host, smtp.port, &smtp.from)
                        .map_err(|reason| invalid("notifications.smtp", reason))?;
                    Some(Arc::new(NotificationEffect::new(
                        notifier,
                        settings.attempts,
                        backoff,
                    )))
                }
                (DeliveryKind::Webhook, _, Some(webhook)) => {
                    let notifier = WebhookNotifier::new(
                        webhook.url.clone(),
                        webhook.secret.as_bytes().to_vec(),
                        webhook.channels.clone(),
                        Duration::from_millis(webhook.timeout_ms),
                    );
                    Some(Arc::new(NotificationEffect::new(
                        notifier,
                        settings.attempts,
                        backoff,
                    )))
                }
                _ => None,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid_and_simulated_with_the_outbox() {
        let config = DomainConfig::default();
        assert_eq!(config.validate(), Ok(()));
        assert!(config.delivery().unwrap().is_none());
    }

    #[test]
    fn a_provider_or_delivery_without_its_settings_is_refused_by_field() {
        let mut config = DomainConfig::default();
        config.payments.provider = ProviderKind::Stripe;
        assert_eq!(config.validate().unwrap_err().field, "payments.stripe");
        config.payments.stripe = Some(StripeConfig {
            base_url: "localhost:12111".to_string(),
            api_key: "sk_test_123".to_string(),
            timeout_ms: 1_000,
        });
        assert_eq!(
            config.validate().unwrap_err().field,
            "payments.stripe.base-url"
        );
        config.payments.stripe.as_mut().unwrap().base_url = "http://localhost:12111".to_string();
        assert_eq!(config.validate(), Ok(()));

        config.notifications.delivery = DeliveryKind::Webhook;
        assert_eq!(
            config.validate().unwrap_err().field,
            "notifications.webhook"
        );
        config.notifications.webhook = Some(WebhookSettings {
            url: "http://127.0.0.1:9/hook".to_string(),
            secret: String::new(),
            channels: all_channels(),
            timeout_ms: 1_000,
        });
        assert_eq!(
            config.validate().unwrap_err().field,
            "notifications.webhook.secret"
        );
        config.notifications.webhook.as_mut().unwrap().secret = "s3cret".to_string();
        assert_eq!(config.validate(), Ok(()));
        assert!(config.delivery().unwrap().is_some());

        config.notifications.delivery = DeliveryKind::Smtp;
        assert_eq!(config.validate().unwrap_err().field, "notifications.smtp");

        config.notifications.delivery = DeliveryKind::Outbox;
        config.payments.retries.reconcile_attempts = config.payments.retries.max_attempts - 1;
        assert_eq!(
            config.validate().unwrap_err().field,
            "payments.retries.reconcile-attempts"
        );
        config.payments.retries.reconcile_attempts = config.payments.retries.max_attempts;
        assert_eq!(config.validate(), Ok(()));
        config.saga.reservation_ttl_ms = 1;
        assert_eq!(config.validate().unwrap_err().field, "saga");
    }
}
