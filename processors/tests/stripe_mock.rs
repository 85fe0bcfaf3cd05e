//! The Stripe provider against a real stripe-mock (installed by `scripts/test` with
//! `go install github.com/stripe/stripe-mock`). stripe-mock validates every request against
//! Stripe's OpenAPI spec and answers with fixtures, whose PaymentIntent status is always
//! `requires_payment_method`: so a charge it accepted maps to a decline with that code, while a
//! request it rejected would map to `invalid_request_error`.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use orderflow_processors::adapters::stripe::{StripeConfig, StripeProvider};
use orderflow_processors::payment::{
    PaymentProvider, ProviderOperation, ProviderOutcome, ProviderRequest,
};
use orderflow_processors::wire::Origin;
use orderflow_schemas::currency::Currency;
use orderflow_schemas::ids::{CorrelationId, OrderId, PaymentId};
use orderflow_schemas::money::Money;

struct StripeMock {
    child: Child,
    port: u16,
}

impl Drop for StripeMock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn stripe_mock_binary() -> String {
    if let Ok(binary) = std::env::var("STRIPE_MOCK_BIN") {
        return binary;
    }
    let in_go_bin =
        std::path::Path::new(&std::env::var("HOME").unwrap_or_default()).join("go/bin/stripe-mock");
    if in_go_bin.exists() {
        return in_go_bin.display().to_string();
    }
    "stripe-mock".to_string()
}

fn start_stripe_mock() -> StripeMock {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let binary = stripe_mock_binary();
    let child = Command::new(&binary)
        .args(["-http-port", &port.to_string(), "-https-port", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|error| {
            panic!("cannot start stripe-mock ({binary}): {error}; install it with `go install github.com/stripe/stripe-mock@latest` (scripts/test does)")
        });
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "stripe-mock did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    StripeMock { child, port }
}

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
    let mock = start_stripe_mock();
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
fn an_unreachable_provider_is_a_transient_failure() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let outcome = provider(port).charge(&request(ProviderOperation::Charge, None));
    assert!(
        matches!(outcome, ProviderOutcome::Transient { .. }),
        "{outcome:?}"
    );
}
