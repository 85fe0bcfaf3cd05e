//! `orderflow serve` with its providers chosen by configuration: charges go to a Stripe-shaped
//! API (a real stripe-mock) and notifications leave as signed webhooks, both named only by
//! `ORDERFLOW__` variables; a provider named without its settings stops start-up naming the
//! field.

mod running_server;
#[path = "../processors/tests/support/mod.rs"]
mod test_services;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use orderflow_processors::adapters::webhook::signature;
use serde_json::{Value, json};

use self::running_server::{RunningServer, try_call};

/// What a webhook receiver got: (signature header, body) per POST.
type Deliveries = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// A webhook receiver answering 200 to every POST.
fn webhook_receiver() -> (u16, Deliveries) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let received: Deliveries = Arc::default();
    let recorded = received.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let (mut length, mut signed) = (0, String::new());
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                let (name, value) = line.split_once(':').unwrap_or((&line, ""));
                match name.to_ascii_lowercase().as_str() {
                    "content-length" => length = value.trim().parse().unwrap_or(0),
                    "x-orderflow-signature" => signed = value.trim().to_string(),
                    _ => {}
                }
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_ok() {
                recorded.lock().unwrap().push((signed, body));
            }
            let mut stream = stream;
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    (port, received)
}

#[test]
fn serve_charges_through_a_stripe_api_and_delivers_notifications_by_webhook() {
    let stripe = test_services::start_stripe_mock();
    let (hook_port, received) = webhook_receiver();
    let stripe_url = format!("http://127.0.0.1:{}", stripe.port);
    let hook_url = format!("http://127.0.0.1:{hook_port}/hooks/orderflow");
    let server = RunningServer::start(
        &["--demo"],
        &[
            ("ORDERFLOW__PAYMENTS__PROVIDER", "stripe"),
            ("ORDERFLOW__PAYMENTS__STRIPE__BASE_URL", &stripe_url),
            ("ORDERFLOW__PAYMENTS__STRIPE__API_KEY", "sk_test_123"),
            ("ORDERFLOW__NOTIFICATIONS__DELIVERY", "webhook"),
            ("ORDERFLOW__NOTIFICATIONS__WEBHOOK__URL", &hook_url),
            ("ORDERFLOW__NOTIFICATIONS__WEBHOOK__SECRET", "whsec_test"),
        ],
    );
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let base = &server.base;
    let call = |method: &str,
                path: &str,
                token: Option<&str>,
                body: Option<Value>,
                key: &[(&str, &str)]| {
        try_call(
            &agent,
            method,
            &format!("{base}{path}"),
            token,
            body.as_ref(),
            key,
        )
        .expect("the server answers")
    };
    let (status, _) = call(
        "POST",
        "/api/v1/auth/register",
        None,
        Some(json!({"email": "hook@example.com", "password": "hook customer pw", "name": "Hook"})),
        &[],
    );
    assert_eq!(status, 201);
    let (_, tokens) = call(
        "POST",
        "/api/v1/auth/login",
        None,
        Some(json!({"email": "hook@example.com", "password": "hook customer pw"})),
        &[],
    );
    let token = tokens["access_token"].as_str().unwrap();
    let (status, accepted) = call(
        "POST",
        "/api/v1/orders",
        Some(token),
        Some(json!({
            "lines": [{"sku": "SKU-000001", "quantity": 1}],
            "currency": "USD",
            "shipping_address": {"name": "H", "line1": "1 Road", "city": "Town", "postal_code": "1", "country": "DE"},
            "payment_method_token": "tok_visa",
        })),
        &[("Idempotency-Key", "hook-1")],
    );
    assert_eq!(status, 202, "{accepted}");
    let order_id = accepted["order_id"].as_str().unwrap();
    // stripe-mock answers every PaymentIntent with its fixture, whose status is
    // `requires_payment_method`: a decline. That the order fails this way (and not as the
    // simulated provider would approve `tok_visa`) shows the charge went over HTTP.
    let mut view = Value::Null;
    for _ in 0..20 {
        let (_, body) = call(
            "GET",
            &format!("/api/v1/orders/{order_id}?wait=2"),
            Some(token),
            None,
            &[],
        );
        view = body;
        if view["status"] == "PAYMENT_FAILED" || view["status"] == "CONFIRMED" {
            break;
        }
    }
    assert_eq!(view["status"], "PAYMENT_FAILED", "{view}");

    // The order's notifications left as webhooks, each signed with the configured secret.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let deliveries = received.lock().unwrap().clone();
        let for_order: Vec<_> = deliveries
            .iter()
            .filter(|(_, body)| String::from_utf8_lossy(body).contains(order_id))
            .collect();
        if for_order.len() >= 2 {
            for (signed, body) in for_order {
                let timestamp: i64 = signed
                    .split(',')
                    .find_map(|part| part.strip_prefix("t="))
                    .and_then(|seconds| seconds.parse().ok())
                    .unwrap_or_else(|| panic!("no timestamp in {signed:?}"));
                assert_eq!(signed, &signature(b"whsec_test", timestamp, body));
            }
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no webhooks for the order's creation and failure: {deliveries:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_provider_without_its_settings_stops_serve_naming_the_field() {
    let data = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_orderflow"))
        .arg("--data-dir")
        .arg(data.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("ORDERFLOW__PAYMENTS__PROVIDER", "stripe")
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("payments.stripe"), "{stderr}");
}
