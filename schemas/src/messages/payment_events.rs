//! `payment-events`: what happened to each payment at the provider. Written by the payment
//! processor, keyed by order id (the saga's partitioning).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::catalog::PAYMENT_EVENTS;
use crate::ids::{OrderId, PaymentId};
use crate::money::Money;
use crate::validation::{
    MAX_REASON_CHARS, MAX_TOKEN_CHARS, Validate, ValidationError, require_positive,
    require_positive_count, require_text, require_token,
};

message_enum! {
    /// Payload of `payment-events`.
    pub enum PaymentEvent on PAYMENT_EVENTS {
        /// A charge attempt was sent to the provider.
        PaymentInitiated keyed by order_id,
        /// The provider captured the money.
        PaymentSucceeded keyed by order_id,
        /// A charge attempt failed.
        PaymentFailed keyed by order_id,
        /// The provider returned money to the customer.
        PaymentRefunded keyed by order_id,
    }
}

/// A charge attempt is about to be sent to the provider. Written before the call, so a crash
/// mid-call leaves a trace and the retry reuses the idempotency key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentInitiated {
    /// The order.
    pub order_id: OrderId,
    /// The payment.
    pub payment_id: PaymentId,
    /// Amount to capture.
    pub amount: Money,
    /// Attempt number, from 1.
    #[schemars(range(min = 1))]
    pub attempt: u32,
    /// The key sent to the provider.
    pub idempotency_key: String,
}

impl Validate for PaymentInitiated {
    fn validate(&self) -> Result<(), ValidationError> {
        require_positive("amount", &self.amount)?;
        require_positive_count("attempt", self.attempt)?;
        require_token("idempotency_key", &self.idempotency_key, MAX_TOKEN_CHARS)
    }
}

/// The provider captured the money.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentSucceeded {
    /// The order.
    pub order_id: OrderId,
    /// The payment.
    pub payment_id: PaymentId,
    /// Amount captured.
    pub amount: Money,
    /// The provider's id of the charge, for reconciliation and refunds.
    pub provider_reference: String,
    /// The attempt that succeeded.
    #[schemars(range(min = 1))]
    pub attempt: u32,
}

impl Validate for PaymentSucceeded {
    fn validate(&self) -> Result<(), ValidationError> {
        require_positive("amount", &self.amount)?;
        require_token(
            "provider_reference",
            &self.provider_reference,
            MAX_TOKEN_CHARS,
        )?;
        require_positive_count("attempt", self.attempt)
    }
}

/// A charge attempt failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentFailed {
    /// The order.
    pub order_id: OrderId,
    /// The payment.
    pub payment_id: PaymentId,
    /// Explanation safe to show the customer, e.g. `card declined`.
    pub reason: String,
    /// The provider's machine-readable decline or error code, when it gave one.
    pub decline_code: Option<String>,
    /// Whether trying again may succeed (timeouts, provider outages) as opposed to a decline.
    pub retriable: bool,
    /// The attempt that failed, from 1.
    #[schemars(range(min = 1))]
    pub attempt: u32,
}

impl Validate for PaymentFailed {
    fn validate(&self) -> Result<(), ValidationError> {
        require_text("reason", &self.reason, MAX_REASON_CHARS)?;
        if let Some(code) = &self.decline_code {
            require_token("decline_code", code, MAX_TOKEN_CHARS)?;
        }
        require_positive_count("attempt", self.attempt)
    }
}

/// The provider returned money to the customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentRefunded {
    /// The order.
    pub order_id: OrderId,
    /// The refunded payment.
    pub payment_id: PaymentId,
    /// Amount returned.
    pub amount: Money,
    /// The provider's id of the refund.
    pub provider_reference: String,
    /// Why, as given in the Refund command.
    pub reason: String,
}

impl Validate for PaymentRefunded {
    fn validate(&self) -> Result<(), ValidationError> {
        require_positive("amount", &self.amount)?;
        require_token(
            "provider_reference",
            &self.provider_reference,
            MAX_TOKEN_CHARS,
        )?;
        require_text("reason", &self.reason, MAX_REASON_CHARS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::Message;
    use crate::messages::fixtures;

    #[test]
    fn failure_rules() {
        let mut failed = PaymentFailed {
            order_id: fixtures::order_id(),
            payment_id: fixtures::payment_id(),
            reason: "card declined".into(),
            decline_code: Some("insufficient_funds".into()),
            retriable: false,
            attempt: 1,
        };
        assert_eq!(failed.validate(), Ok(()));
        failed.decline_code = Some(String::new());
        assert_eq!(failed.validate().unwrap_err().field, "decline_code");
        failed.decline_code = None;
        failed.attempt = 0;
        assert_eq!(failed.validate().unwrap_err().field, "attempt");
    }

    #[test]
    fn success_rules_and_key() {
        let succeeded = PaymentSucceeded {
            order_id: fixtures::order_id(),
            payment_id: fixtures::payment_id(),
            amount: fixtures::usd(100),
            provider_reference: String::new(),
            attempt: 1,
        };
        assert_eq!(
            succeeded.validate().unwrap_err().field,
            "provider_reference"
        );
        assert_eq!(
            PaymentEvent::from(succeeded).partition_key(),
            fixtures::order_id().to_string()
        );
    }
}
