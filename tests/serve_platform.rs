//! `orderflow serve` is the whole platform: started with nothing configured, it answers HTTP,
//! creates the first admin, takes an order from a new customer to CONFIRMED, and stops
//! gracefully on SIGTERM.

mod running_server;

use serde_json::{Value, json};

use self::running_server::{ADMIN_EMAIL, RunningServer};

fn call(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> (u16, Value) {
    running_server::try_call(agent, method, url, token, body.as_ref(), headers)
        .expect("the server answers")
}

#[test]
fn serve_answers_http_and_an_order_reaches_confirmed() {
    let mut server = RunningServer::start(&["--demo"], &[]);
    let base = server.base.clone();
    assert!(
        server.banner.contains("seeded 50 products"),
        "{}",
        server.banner
    );
    assert!(
        server
            .banner
            .contains(&format!("created the first admin {ADMIN_EMAIL}")),
        "{}",
        server.banner
    );
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
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
    // Served with its links, like the committed document.
    assert_eq!(
        docs["paths"]["/api/v1/orders"]["post"]["responses"]["202"]["links"]["getOrder"]["operationId"],
        "getOrder"
    );

    // SIGTERM: a graceful stop.
    server.stop_gracefully();
}
