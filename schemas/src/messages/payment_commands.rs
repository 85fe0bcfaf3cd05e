//! `payment-commands`: the order saga's instructions to the payment processor. Keyed by order id,
//! so all money movements of one order are handled in order by one task.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::catalog::PAYMENT_COMMANDS;
use crate::ids::{OrderId, PaymentId};
use crate::money::Money;
use crate::validation::{
    MAX_REASON_CHARS, MAX_TOKEN_CHARS, Validate, ValidationError, require_positive,
    require_positive_count, require_text, require_token,
};

message_enum! {
    /// Payload of `payment-commands`.
    pub enum PaymentCommand on PAYMENT_COMMANDS {
        /// Capture money for an order.
        Charge keyed by order_id,
        /// Return captured money.
        Refund keyed by order_id,
        /// Stop charging: the order ended before its payment was decided.
        CancelCharge keyed by order_id,
    }
}

/// Capture `amount` from the customer's payment method.
///
/// The payment processor passes `idempotency_key` to the provider, so a redelivered or retried
/// Charge can never capture twice: the saga derives it from the payment id, not from the attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Charge {
    /// The order being paid.
    pub order_id: OrderId,
    /// This payment; one per order unless a previous one failed for good.
    pub payment_id: PaymentId,
    /// The order total; more than zero.
    pub amount: Money,
    /// The provider's token for the customer's payment method.
    pub payment_method_token: String,
    /// Sent to the provider; identical on every attempt of the same payment.
    pub idempotency_key: String,
    /// 1 for the first try, incremented by each retry after a retriable failure.
    #[schemars(range(min = 1))]
    pub attempt: u32,
}

impl Validate for Charge {
    fn validate(&self) -> Result<(), ValidationError> {
        require_positive("amount", &self.amount)?;
        require_token(
            "payment_method_token",
            &self.payment_method_token,
            MAX_TOKEN_CHARS,
        )?;
        require_token("idempotency_key", &self.idempotency_key, MAX_TOKEN_CHARS)?;
        require_positive_count("attempt", self.attempt)
    }
}

/// Return `amount` of a succeeded payment to the customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Refund {
    /// The order.
    pub order_id: OrderId,
    /// The succeeded payment to refund.
    pub payment_id: PaymentId,
    /// How much to return; more than zero and at most what was captured (checked by the payment
    /// processor, which knows the captured amount).
    pub amount: Money,
    /// Why, for the customer and the provider's records.
    pub reason: String,
    /// Sent to the provider so a redelivered Refund returns money once.
    pub idempotency_key: String,
}

impl Validate for Refund {
    fn validate(&self) -> Result<(), ValidationError> {
        require_positive("amount", &self.amount)?;
        require_text("reason", &self.reason, MAX_REASON_CHARS)?;
        require_token("idempotency_key", &self.idempotency_key, MAX_TOKEN_CHARS)
    }
}

/// Stop a charge that is still being decided: the order ended first (the customer cancelled,
/// or its payment deadline passed).
///
/// The payment processor makes no new charge call after this. Calls already made may still
/// have charged (a timeout says nothing either way), so it asks the provider what became of
/// them, without charging; one that did charge is reported as `PaymentSucceeded`, and the
/// saga refunds it because the order has ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelCharge {
    /// The order.
    pub order_id: OrderId,
    /// The payment being charged.
    pub payment_id: PaymentId,
    /// Why, for the records.
    pub reason: String,
}

impl Validate for CancelCharge {
    fn validate(&self) -> Result<(), ValidationError> {
        require_text("reason", &self.reason, MAX_REASON_CHARS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::Message;
    use crate::messages::fixtures;

    #[test]
    fn charge_rules() {
        let charge = fixtures::charge();
        assert_eq!(charge.validate(), Ok(()));
        let mut free = charge.clone();
        free.amount = fixtures::usd(0);
        assert_eq!(free.validate().unwrap_err().field, "amount");
        let mut no_key = charge.clone();
        no_key.idempotency_key.clear();
        assert_eq!(no_key.validate().unwrap_err().field, "idempotency_key");
        let mut zeroth = charge;
        zeroth.attempt = 0;
        assert_eq!(zeroth.validate().unwrap_err().field, "attempt");
    }

    #[test]
    fn refund_rules_and_key() {
        let refund = Refund {
            order_id: fixtures::order_id(),
            payment_id: fixtures::payment_id(),
            amount: fixtures::usd(-100),
            reason: "cancelled".into(),
            idempotency_key: "refund-1".into(),
        };
        assert_eq!(refund.validate().unwrap_err().field, "amount");
        let command = PaymentCommand::from(refund);
        assert_eq!(command.partition_key(), fixtures::order_id().to_string());
    }

    #[test]
    fn cancel_charge_rules_and_key() {
        let cancel = CancelCharge {
            order_id: fixtures::order_id(),
            payment_id: fixtures::payment_id(),
            reason: String::new(),
        };
        assert_eq!(cancel.validate().unwrap_err().field, "reason");
        let command = PaymentCommand::from(CancelCharge {
            reason: "the payment timed out".into(),
            ..cancel
        });
        assert_eq!(command.validate(), Ok(()));
        assert_eq!(command.partition_key(), fixtures::order_id().to_string());
    }
}
