//! `orderflow serve` is the whole platform: started with nothing configured, it answers HTTP,
//! creates the first admin, takes an order from a new customer to CONFIRMED, and stops
//! gracefully on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

fn call(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> (u16, Value) {
    let mut request = ureq::http::Request::builder().method(method).uri(url);
    if let Some(token) = token {
        request = request.header("Authorization", format!("Bearer {token}"));
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = send(agent, request, body).unwrap();
    let status = response.status().as_u16();
    let text = response.into_body().read_to_string().unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn send(
    agent: &ureq::Agent,
    request: ureq::http::request::Builder,
    body: Option<Value>,
) -> Result<ureq::http::Response<ureq::Body>, ureq::Error> {
    match body {
        Some(body) => agent.run(
            request
                .header("Content-Type", "application/json")
                .body(body.to_string())
                .unwrap(),
        ),
        None => agent.run(request.body(()).unwrap()),
    }
}

/// Kills the server if the test fails half-way.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn serve_answers_http_and_an_order_reaches_confirmed() {
    let directory = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_orderflow"))
        .arg("--data-dir")
        .arg(directory.path())
        .args(["serve", "--demo", "--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "error")
        .env("ORDERFLOW_ADMIN_EMAIL", "boss@example.com")
        .env("ORDERFLOW_ADMIN_PASSWORD", "boss password 1")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut child = KillOnDrop(child);
    let mut base = None;
    let mut seen = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if let Some(rest) = line.strip_prefix("listening on ") {
            base = Some(rest.split(' ').next().unwrap().to_string());
            break;
        }
    }
    let base = base.unwrap_or_else(|| panic!("no listen line in:\n{seen}"));
    assert!(seen.contains("seeded 50 products"), "{seen}");
    assert!(
        seen.contains("created the first admin boss@example.com"),
        "{seen}"
    );
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();

    let deadline = Instant::now() + Duration::from_secs(30);
    // The address is printed just before the socket opens: connection errors are retried.
    let ready = |agent: &ureq::Agent| {
        let request = ureq::http::Request::builder()
            .method("GET")
            .uri(format!("{base}/health/ready"));
        send(agent, request, None).is_ok_and(|response| response.status().as_u16() == 200)
    };
    while !ready(&agent) {
        assert!(Instant::now() < deadline, "never ready");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, _) = call(
        &agent,
        "POST",
        &format!("{base}/api/v1/auth/register"),
        None,
        Some(json!({"email": "new@example.com", "password": "new customer pw", "name": "New"})),
        &[],
    );
    assert_eq!(status, 201);
    let (status, tokens) = call(
        &agent,
        "POST",
        &format!("{base}/api/v1/auth/login"),
        None,
        Some(json!({"email": "new@example.com", "password": "new customer pw"})),
        &[],
    );
    assert_eq!(status, 200, "{tokens}");
    let token = tokens["access_token"].as_str().unwrap();
    let (status, products) = call(
        &agent,
        "GET",
        &format!("{base}/api/v1/products?category=books&limit=5"),
        None,
        None,
        &[],
    );
    assert_eq!(status, 200);
    assert_eq!(products["items"].as_array().unwrap().len(), 5, "{products}");
    let sku = products["items"][0]["sku"].as_str().unwrap();
    let order = json!({
        "lines": [{"sku": sku, "quantity": 1}],
        "currency": "USD",
        "shipping_address": {"name": "N", "line1": "1 Road", "city": "Town", "postal_code": "1", "country": "DE"},
        "payment_method_token": "tok_visa",
    });
    let (status, accepted) = call(
        &agent,
        "POST",
        &format!("{base}/api/v1/orders"),
        Some(token),
        Some(order),
        &[("Idempotency-Key", "first")],
    );
    assert_eq!(status, 202, "{accepted}");
    let order_id = accepted["order_id"].as_str().unwrap();
    let (status, view) = call(
        &agent,
        "GET",
        &format!("{base}/api/v1/orders/{order_id}?wait=10"),
        Some(token),
        None,
        &[],
    );
    assert_eq!(status, 200);
    assert_eq!(view["status"], "CONFIRMED", "{view}");
    let (status, docs) = call(&agent, "GET", &format!("{base}/api-docs"), None, None, &[]);
    assert_eq!(status, 200);
    assert!(docs["paths"]["/api/v1/orders"].is_object());

    // SIGTERM: a graceful stop.
    let pid = child.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.0.wait().unwrap();
    assert!(status.success(), "{status:?} {rest:?}");
    assert!(
        rest.iter().any(|line| line.contains("stopping")),
        "{rest:?}"
    );
}
