//! A payment provider for the Stripe API shape: PaymentIntent create, then confirm, each with an
//! `Idempotency-Key`; refunds through `/v1/refunds`. Tested against stripe-mock.
//!
//! Outcome mapping: a confirmed PaymentIntent whose status is `succeeded`, `processing` or
//! `requires_capture` is approved (the reference is its id); any other status, and a `card_error`,
//! is a decline with Stripe's code; 429, 5xx and network failures are transient; a request that
//! gets no answer in time is a timeout (retried with the same idempotency keys, so Stripe answers
//! with the first result instead of charging again).
//!
//! A lookup (what became of a charge, never charging) re-sends the create with the charge's
//! create key, which answers with the PaymentIntent the first create made (or makes one that
//! is never confirmed), reads the intent, searches the payment's other intents by metadata
//! (for a lookup after the key expired), and if none has charged, cancels the intent, so a
//! confirmation still on its way can no longer charge.

use std::time::Duration;

use serde::Deserialize;

use crate::payment::{PaymentProvider, ProviderOutcome, ProviderRequest};

/// Where and how to reach the API.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct StripeConfig {
    /// `https://api.stripe.com`, or stripe-mock's address.
    pub base_url: String,
    /// The secret API key (never logged).
    pub api_key: String,
    /// Per-request timeout, in milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_timeout_ms() -> u64 {
    10_000
}

/// The Stripe provider.
pub struct StripeProvider {
    config: StripeConfig,
    agent: ureq::Agent,
}

impl std::fmt::Debug for StripeProvider {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("StripeProvider")
            .field("base_url", &self.config.base_url)
            .finish()
    }
}

#[derive(Debug, Deserialize)]
struct PaymentIntent {
    id: String,
    status: String,
}

#[derive(Debug, Deserialize)]
struct SearchResult {
    data: Vec<PaymentIntent>,
}

#[derive(Debug, Deserialize)]
struct Refund {
    id: String,
    status: String,
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    error: ApiError,
}

#[derive(Debug, Deserialize)]
struct ApiError {
    #[serde(rename = "type")]
    kind: Option<String>,
    code: Option<String>,
    decline_code: Option<String>,
    message: Option<String>,
}

/// How a PaymentIntent status after confirmation maps onto an outcome.
pub fn outcome_of_status(payment_intent_id: &str, status: &str) -> ProviderOutcome {
    match status {
        status if has_charged(status) => ProviderOutcome::Approved {
            reference: payment_intent_id.to_string(),
        },
        "requires_action" => ProviderOutcome::Declined {
            code: "authentication_required".to_string(),
            message: "the payment needs customer authentication".to_string(),
        },
        other => ProviderOutcome::Declined {
            code: other.to_string(),
            message: format!("the payment intent ended in status {other}"),
        },
    }
}

/// How an HTTP error status and body map onto an outcome. 409 (`idempotency_key_in_use`: the
/// first call with this key is still running), 401 and 403 (our configuration, fixable by an
/// operator), 429 and 5xx may change on retry; other 4xx are definite.
pub fn outcome_of_error(status: u16, body: &str) -> ProviderOutcome {
    if matches!(status, 401 | 403 | 409 | 429) || status >= 500 {
        return ProviderOutcome::Transient {
            message: format!("stripe answered {status}"),
        };
    }
    let error = serde_json::from_str::<ErrorBody>(body)
        .ok()
        .map(|body| body.error);
    let code = error
        .as_ref()
        .and_then(|error| error.decline_code.clone().or_else(|| error.code.clone()))
        .or_else(|| error.as_ref().and_then(|error| error.kind.clone()))
        .unwrap_or_else(|| format!("http_{status}"));
    let message = error
        .and_then(|error| error.message)
        .unwrap_or_else(|| format!("stripe answered {status}"));
    if code == "insufficient_funds" {
        return ProviderOutcome::InsufficientFunds;
    }
    ProviderOutcome::Declined { code, message }
}

enum Answer {
    Ok(String),
    Failed(ProviderOutcome),
}

impl StripeProvider {
    pub fn new(config: StripeConfig) -> Self {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_millis(config.timeout_ms.max(1))))
            .http_status_as_error(false)
            .build()
            .into();
        Self { config, agent }
    }

    fn post(&self, path: &str, idempotency_key: &str, form: &[(&str, String)]) -> Answer {
        let url = format!("{}{path}", self.config.base_url.trim_end_matches('/'));
        let result = self
            .agent
            .post(&url)
            .header("Authorization", &format!("Bearer {}", self.config.api_key))
            .header("Idempotency-Key", idempotency_key)
            .send_form(form.iter().map(|(name, value)| (*name, value.as_str())));
        match result {
            Ok(mut response) => {
                let status = response.status().as_u16();
                let should_retry = response
                    .headers()
                    .get("Stripe-Should-Retry")
                    .is_some_and(|value| value.as_bytes() == b"true");
                let body = response.body_mut().read_to_string().unwrap_or_default();
                if (200..300).contains(&status) {
                    Answer::Ok(body)
                } else if should_retry {
                    Answer::Failed(ProviderOutcome::Transient {
                        message: format!("stripe answered {status} and asked for a retry"),
                    })
                } else {
                    Answer::Failed(outcome_of_error(status, &body))
                }
            }
            Err(ureq::Error::Timeout(_)) => Answer::Failed(ProviderOutcome::Timeout),
            Err(error) => Answer::Failed(ProviderOutcome::Transient {
                message: format!("calling {path}: {error}"),
            }),
        }
    }
}

impl StripeProvider {
    fn get(&self, path: &str, query: &[(&str, &str)]) -> Answer {
        let url = format!("{}{path}", self.config.base_url.trim_end_matches('/'));
        let mut request = self
            .agent
            .get(&url)
            .header("Authorization", &format!("Bearer {}", self.config.api_key));
        for (name, value) in query {
            request = request.query(*name, *value);
        }
        match request.call() {
            Ok(mut response) => {
                let status = response.status().as_u16();
                let body = response.body_mut().read_to_string().unwrap_or_default();
                if (200..300).contains(&status) {
                    Answer::Ok(body)
                } else {
                    Answer::Failed(outcome_of_error(status, &body))
                }
            }
            Err(ureq::Error::Timeout(_)) => Answer::Failed(ProviderOutcome::Timeout),
            Err(error) => Answer::Failed(ProviderOutcome::Transient {
                message: format!("calling {path}: {error}"),
            }),
        }
    }

    /// Creates the charge's PaymentIntent, or (same key) gets back the one created before.
    fn create_intent(&self, request: &ProviderRequest) -> Result<PaymentIntent, ProviderOutcome> {
        let create = self.post(
            "/v1/payment_intents",
            &format!("{}:create", request.idempotency_key),
            &[
                ("amount", request.amount.amount_minor.to_string()),
                (
                    "currency",
                    request.amount.currency.to_string().to_lowercase(),
                ),
                (
                    "payment_method",
                    request.payment_method_token.clone().unwrap_or_default(),
                ),
                ("metadata[order_id]", request.order_id.to_string()),
                ("metadata[payment_id]", request.payment_id.to_string()),
            ],
        );
        match create {
            Answer::Ok(body) => read_intent(&body),
            Answer::Failed(outcome) => Err(outcome),
        }
    }
}

fn read_intent(body: &str) -> Result<PaymentIntent, ProviderOutcome> {
    serde_json::from_str::<PaymentIntent>(body).map_err(|error| ProviderOutcome::Transient {
        message: format!("unreadable PaymentIntent: {error}"),
    })
}

/// Whether a PaymentIntent in `status` has taken (or is taking) the customer's money.
fn has_charged(status: &str) -> bool {
    matches!(status, "succeeded" | "processing" | "requires_capture")
}

impl PaymentProvider for StripeProvider {
    fn charge(&self, request: &ProviderRequest) -> ProviderOutcome {
        let intent = match self.create_intent(request) {
            Ok(intent) => intent,
            Err(outcome) => return outcome,
        };
        let confirm = self.post(
            &format!("/v1/payment_intents/{}/confirm", intent.id),
            &format!("{}:confirm", request.idempotency_key),
            &[(
                "payment_method",
                request.payment_method_token.clone().unwrap_or_default(),
            )],
        );
        match confirm {
            Answer::Ok(body) => match serde_json::from_str::<PaymentIntent>(&body) {
                // stripe-mock answers with a fixture whose id differs; the created id is ours.
                Ok(confirmed) => outcome_of_status(&intent.id, &confirmed.status),
                Err(error) => ProviderOutcome::Transient {
                    message: format!("unreadable PaymentIntent: {error}"),
                },
            },
            Answer::Failed(outcome) => outcome,
        }
    }

    fn refund(&self, request: &ProviderRequest) -> ProviderOutcome {
        let Some(payment_intent) = &request.provider_reference else {
            return ProviderOutcome::Declined {
                code: "missing_reference".to_string(),
                message: "a refund needs the charge's payment intent".to_string(),
            };
        };
        match self.post(
            "/v1/refunds",
            &request.idempotency_key,
            &[
                ("payment_intent", payment_intent.clone()),
                ("amount", request.amount.amount_minor.to_string()),
            ],
        ) {
            Answer::Ok(body) => match serde_json::from_str::<Refund>(&body) {
                Ok(refund) if refund.status == "succeeded" || refund.status == "pending" => {
                    ProviderOutcome::Approved {
                        reference: refund.id,
                    }
                }
                Ok(refund) => ProviderOutcome::Declined {
                    code: refund.status.clone(),
                    message: format!("the refund ended in status {}", refund.status),
                },
                Err(error) => ProviderOutcome::Transient {
                    message: format!("unreadable Refund: {error}"),
                },
            },
            Answer::Failed(outcome) => outcome,
        }
    }

    fn lookup(&self, request: &ProviderRequest) -> ProviderOutcome {
        let created = match self.create_intent(request) {
            Ok(intent) => intent,
            Err(outcome) if outcome.is_definite_refusal() => {
                // The create itself was refused (and Stripe keeps that answer for the key):
                // no intent, so no charge.
                return no_charge("the payment intent was never created");
            }
            Err(outcome) => return outcome,
        };
        let intent = match self.get(&format!("/v1/payment_intents/{}", created.id), &[]) {
            Answer::Ok(body) => match read_intent(&body) {
                Ok(intent) => intent,
                Err(outcome) => return outcome,
            },
            Answer::Failed(outcome) => return outcome,
        };
        if has_charged(&intent.status) {
            return ProviderOutcome::Approved {
                reference: created.id,
            };
        }
        // Stripe keeps an idempotency key about a day: a lookup later than that got a new
        // intent from the create above, so the payment's other intents are searched by its
        // metadata too. (Search lags writes by up to a minute; a charge that recent is the
        // one the create found.)
        let query = format!("metadata['payment_id']:'{}'", request.payment_id);
        match self.get("/v1/payment_intents/search", &[("query", &query)]) {
            Answer::Ok(body) => match serde_json::from_str::<SearchResult>(&body) {
                Ok(found) => {
                    if let Some(charged) = found
                        .data
                        .into_iter()
                        .find(|intent| has_charged(&intent.status))
                    {
                        return ProviderOutcome::Approved {
                            reference: charged.id,
                        };
                    }
                }
                Err(error) => {
                    return ProviderOutcome::Transient {
                        message: format!("unreadable PaymentIntent search: {error}"),
                    };
                }
            },
            Answer::Failed(outcome) => return outcome,
        }
        if intent.status == "canceled" {
            return no_charge("the payment intent is cancelled");
        }
        match self.post(
            &format!("/v1/payment_intents/{}/cancel", created.id),
            &format!("{}:cancel", request.idempotency_key),
            &[("cancellation_reason", "abandoned".to_string())],
        ) {
            Answer::Ok(_) => no_charge("the payment intent had not charged; it is cancelled"),
            // It may have just charged (a confirmation arriving meanwhile): ask again later.
            Answer::Failed(outcome) => ProviderOutcome::Transient {
                message: format!("cancelling an unconfirmed payment intent: {outcome:?}"),
            },
        }
    }
}

fn no_charge(message: &str) -> ProviderOutcome {
    ProviderOutcome::Declined {
        code: crate::payment::NO_CHARGE.to_string(),
        message: message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_errors_map_onto_outcomes() {
        assert!(
            matches!(outcome_of_status("pi_1", "succeeded"), ProviderOutcome::Approved { reference } if reference == "pi_1")
        );
        assert!(matches!(
            outcome_of_status("pi_1", "requires_capture"),
            ProviderOutcome::Approved { .. }
        ));
        assert!(
            matches!(outcome_of_status("pi_1", "requires_action"), ProviderOutcome::Declined { code, .. } if code == "authentication_required")
        );
        assert!(matches!(
            outcome_of_error(503, ""),
            ProviderOutcome::Transient { .. }
        ));
        assert!(matches!(
            outcome_of_error(429, ""),
            ProviderOutcome::Transient { .. }
        ));
        let card_error = r#"{"error":{"type":"card_error","code":"card_declined","decline_code":"insufficient_funds","message":"no money"}}"#;
        assert_eq!(
            outcome_of_error(402, card_error),
            ProviderOutcome::InsufficientFunds
        );
        let declined = r#"{"error":{"type":"card_error","code":"card_declined","decline_code":"stolen_card","message":"stolen"}}"#;
        assert!(
            matches!(outcome_of_error(402, declined), ProviderOutcome::Declined { code, .. } if code == "stolen_card")
        );
        assert!(
            matches!(outcome_of_error(400, "not json"), ProviderOutcome::Declined { code, .. } if code == "http_400")
        );
    }
}
