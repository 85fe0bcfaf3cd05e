//! The Stripe provider against a real stripe-mock (installed by `scripts/test` with
//! `go install github.com/stripe/stripe-mock`). stripe-mock validates every request against
//! Stripe's OpenAPI spec and answers with fixtures, whose PaymentIntent status is always
//! `requires_payment_method`: so a charge it accepted maps to a decline with that code, while a
//! request it rejected would map to `invalid_request_error`.

mod support;

use orderflow_processors::adapters::stripe::{StripeConfig, StripeProvider};
use orderflow_processors::payment::{
    PaymentProvider, ProviderOperation, ProviderOutcome, ProviderRequest,
};
use orderflow_processors::wire::Origin;
use orderflow_schemas::currency::Currency;
use orderflow_schemas::ids::{CorrelationId, OrderId, PaymentId};
use orderflow_schemas::money::Money;

fn provider(port: u16) -> StripeProvider {
    StripeProvider::new(StripeConfig {
        base_url: format!("http://127.0.0.1:{port}"),
        api_key: "sk_test_123".to_string(),
        timeout_ms: 5_000,
    })
}

fn request(operation: ProviderOperation, reference: Option<&str>) -> ProviderRequest {
    ProviderRequest {
        operation,
        order_id: OrderId::generate(1_767_225_600_000),
        payment_id: PaymentId::generate(1_767_225_600_000),
        amount: Money::new(1_234, Currency::parse("USD").unwrap()),
        payment_method_token: Some("pm_card_visa".to_string()),
        idempotency_key: "order-1:charge:1".to_string(),
        attempt: 1,
        provider_reference: reference.map(str::to_string),
        origin: Origin {
            correlation_id: CorrelationId::generate(1_767_225_600_000),
            causation_id: None,
            traceparent: None,
        },
    }
}

#[test]
fn charges_and_refunds_go_through_the_stripe_api_shape() {
    let mock = support::start_stripe_mock();
    let stripe = provider(mock.port);
    // stripe-mock accepted both the create and the confirm call (a rejected request would be an
    // invalid_request_error); its fixture status is requires_payment_method.
    let outcome = stripe.charge(&request(ProviderOperation::Charge, None));
    assert_eq!(
        outcome,
        ProviderOutcome::Declined {
            code: "requires_payment_method".to_string(),
            message: "the payment intent ended in status requires_payment_method".to_string(),
        }
    );
    let refund = stripe.refund(&request(ProviderOperation::Refund, Some("pi_123")));
    assert!(
        matches!(refund, ProviderOutcome::Approved { ref reference } if reference.starts_with("re_")),
        "{refund:?}"
    );
    let without_reference = stripe.refund(&request(ProviderOperation::Refund, None));
    assert!(matches!(
        without_reference,
        ProviderOutcome::Declined { .. }
    ));
}

#[test]
fn a_lookup_reads_the_intent_and_cancels_one_that_has_not_charged() {
    let mock = support::start_stripe_mock();
    let stripe = provider(mock.port);
    // stripe-mock accepted the create (same key as the charge's), the read and the cancel:
    // its fixture intent (requires_payment_method) has not charged, so the lookup finds no
    // charge. A request stripe-mock rejected would have been an invalid_request_error, and an
    // unreadable answer a transient failure.
    let outcome = stripe.lookup(&request(ProviderOperation::Lookup, None));
    assert!(
        matches!(&outcome, ProviderOutcome::Declined { code, message }
            if code == "no_charge" && message.contains("cancelled")),
        "{outcome:?}"
    );
    // Unreachable: it cannot tell, so it is asked again later.
    let unreachable =
        provider(support::free_port()).lookup(&request(ProviderOperation::Lookup, None));
    assert!(
        matches!(unreachable, ProviderOutcome::Transient { .. }),
        "{unreachable:?}"
    );
}

#[test]
fn an_unreachable_provider_is_a_transient_failure() {
    let port = support::free_port();
    let outcome = provider(port).charge(&request(ProviderOperation::Charge, None));
    assert!(
        matches!(outcome, ProviderOutcome::Transient { .. }),
        "{outcome:?}"
    );
}
