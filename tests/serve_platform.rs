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

    // Metrics include the storage engine's gauges and the resident memory, with values.
    let metrics = agent
        .get(format!("{base}/metrics"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    let gauge = |name: &str| -> u64 {
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name} in /metrics"))
            .parse()
            .unwrap()
    };
    assert!(gauge("process_resident_memory_bytes") > 1_000_000);
    assert!(
        gauge("orderflow_storage_write_buffer_bytes") > 0,
        "an order was written"
    );
    gauge("orderflow_storage_queued_flushes");
    assert!(gauge("orderflow_storage_journal_files") >= 1);
    gauge("orderflow_storage_active_compactions");
    gauge("orderflow_storage_block_cache_bytes");

    // SIGTERM: a graceful stop.
    server.stop_gracefully();
}

#[test]
fn one_address_over_its_rate_limit_gets_429_with_retry_after() {
    // Anonymous requests (no user to limit) over a real socket: the limit is the address's.
    // (The readiness probes before this are not counted.)
    let server = RunningServer::start(
        &[],
        &[
            ("ORDERFLOW__API__RATE_LIMITS__PER_IP_PER_SECOND", "1"),
            ("ORDERFLOW__API__RATE_LIMITS__PER_IP_BURST", "3"),
        ],
    );
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let url = format!("{}/api/v1/products", server.base);
    let mut statuses = Vec::new();
    let mut limited = None;
    for _ in 0..10 {
        let response = agent.get(&url).call().unwrap();
        statuses.push(response.status().as_u16());
        if response.status().as_u16() == 429 {
            let retry_after = response
                .headers()
                .get("Retry-After")
                .and_then(|value| value.to_str().ok())
                .map(str::to_string);
            let content_type = response
                .headers()
                .get("Content-Type")
                .and_then(|value| value.to_str().ok())
                .map(str::to_string);
            limited = Some((retry_after, content_type));
            break;
        }
    }
    let (retry_after, content_type) =
        limited.unwrap_or_else(|| panic!("never limited: {statuses:?}"));
    assert!(
        statuses.iter().filter(|status| **status == 200).count() >= 3,
        "the burst passes first: {statuses:?}"
    );
    assert!(
        retry_after.is_some_and(|seconds| seconds.parse::<u64>().is_ok_and(|s| s >= 1)),
        "Retry-After in whole seconds"
    );
    assert_eq!(content_type.as_deref(), Some("application/problem+json"));
    // Probes are not limited, even from a limited address.
    let ready = agent
        .get(format!("{}/health/ready", server.base))
        .call()
        .unwrap();
    assert_eq!(ready.status().as_u16(), 200);
}
