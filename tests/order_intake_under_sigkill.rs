//! A placed order is its command, its place in its user's order list and its Idempotency-Key's
//! response, written together: `orderflow serve` killed (SIGKILL) while it takes orders keeps
//! all three or none of each, so retrying every key afterwards gives exactly one order per key,
//! and a key that was answered before the kill answers the same order again.

mod running_server;
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use orderflow_processors::wire::envelope_serde;
use orderflow_runtime::log::LogBackend;
use orderflow_runtime::{EmbeddedLog, RecordDecoder};
use orderflow_schemas::catalog::ORDER_COMMANDS;
use orderflow_schemas::messages::order_commands::OrderCommand;
use orderflow_state_stores::{Durability, StorageConfig, StorageEngine};
use serde_json::{Value, json};

use self::running_server::RunningServer;

const KEYS: usize = 1_000;
const CLIENTS: usize = 4;
const KILLS: usize = 3;
/// Every client comes from one address and one user: no rate limits.
const UNLIMITED: &[(&str, &str)] = &[
    ("ORDERFLOW__API__RATE_LIMITS__PER_USER_PER_SECOND", "0"),
    ("ORDERFLOW__API__RATE_LIMITS__PER_IP_PER_SECOND", "0"),
];

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

/// (status, body); `None` when the server did not answer (killed).
fn call(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<&Value>,
    key: Option<&str>,
) -> Option<(u16, Value)> {
    let headers: Vec<(&str, &str)> = key
        .map(|key| ("Idempotency-Key", key))
        .into_iter()
        .collect();
    running_server::try_call(agent, method, url, token, body, &headers)
}

fn order_body(key: usize, skus: &[String]) -> Value {
    json!({
        "lines": [{"sku": skus[key % skus.len()], "quantity": 1 + key % 2}],
        "currency": "USD",
        "shipping_address": {"name": "K", "line1": "1 Road", "city": "Town", "postal_code": "1", "country": "DE"},
        "payment_method_token": "tok_visa",
    })
}

/// Posts every key not in `skip` from `CLIENTS` threads; returns the order id each answered
/// key got.
fn post_all(
    base: &str,
    token: &str,
    skus: &[String],
    skip: &BTreeSet<usize>,
) -> BTreeMap<usize, String> {
    let answered = Arc::new(Mutex::new(BTreeMap::new()));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let (base, token, skus) = (base.to_string(), token.to_string(), skus.to_vec());
            let skip = skip.clone();
            let answered = answered.clone();
            std::thread::spawn(move || {
                let agent = agent();
                for key in (client..KEYS).step_by(CLIENTS) {
                    if skip.contains(&key) {
                        continue;
                    }
                    let reply = call(
                        &agent,
                        "POST",
                        &format!("{base}/api/v1/orders"),
                        Some(&token),
                        Some(&order_body(key, &skus)),
                        Some(&format!("key-{key}")),
                    );
                    match reply {
                        Some((202, body)) => {
                            let order_id = body["order_id"].as_str().unwrap().to_string();
                            answered.lock().unwrap().insert(key, order_id);
                        }
                        // The server is being killed: refused connections, 503s.
                        Some((status, body)) if status >= 500 => {
                            eprintln!("key {key}: {status} {body}")
                        }
                        None => {}
                        Some((status, body)) => panic!("key {key}: {status} {body}"),
                    }
                }
            })
        })
        .collect();
    for client in clients {
        client.join().unwrap();
    }
    Arc::try_unwrap(answered).unwrap().into_inner().unwrap()
}

#[test]
fn sigkill_while_taking_orders_leaves_one_order_per_key() {
    let data = tempfile::tempdir().unwrap();
    let mut random = fastrand::Rng::with_seed(support::test_seed());

    let mut server = RunningServer::start_in(data.path(), &["--demo"], UNLIMITED);
    let agent = agent();
    let base = server.base.clone();
    let (status, _) = call(
        &agent,
        "POST",
        &format!("{base}/api/v1/auth/register"),
        None,
        Some(&json!({"email": "k@example.com", "password": "kill test pw", "name": "K"})),
        None,
    )
    .unwrap();
    assert_eq!(status, 201);
    let login = |base: &str| {
        let (status, tokens) = call(
            &agent,
            "POST",
            &format!("{base}/api/v1/auth/login"),
            None,
            Some(&json!({"email": "k@example.com", "password": "kill test pw"})),
            None,
        )
        .unwrap();
        assert_eq!(status, 200, "{tokens}");
        tokens["access_token"].as_str().unwrap().to_string()
    };
    let (_, products) = call(
        &agent,
        "GET",
        &format!("{base}/api/v1/products?limit=20"),
        None,
        None,
        None,
    )
    .unwrap();
    let skus: Vec<String> = products["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|product| product["sku"].as_str().unwrap().to_string())
        .collect();
    assert!(!skus.is_empty());

    // Kill the server while clients post the keys not answered yet, restart it over the same
    // data, again.
    let mut first_answers: BTreeMap<usize, String> = BTreeMap::new();
    let mut interrupted = false;
    for _ in 0..KILLS {
        let token = login(&server.base);
        let posting = {
            let (base, skus) = (server.base.clone(), skus.clone());
            let skip: BTreeSet<usize> = first_answers.keys().copied().collect();
            std::thread::spawn(move || post_all(&base, &token, &skus, &skip))
        };
        std::thread::sleep(Duration::from_millis(random.u64(50..400)));
        server.kill();
        let answered = posting.join().unwrap();
        eprintln!(
            "{} more of {KEYS} keys answered before the kill",
            answered.len()
        );
        interrupted |= first_answers.len() + answered.len() < KEYS;
        for (key, order_id) in answered {
            let first = first_answers.entry(key).or_insert_with(|| order_id.clone());
            assert_eq!(
                first, &order_id,
                "key {key} answered two different orders across a kill"
            );
        }
        server = RunningServer::start_in(data.path(), &[], UNLIMITED);
    }

    assert!(interrupted, "no kill landed while orders were being taken");

    // Every key once more, to the end: each answers, and the same order as before if it had.
    let token = login(&server.base);
    let answers = post_all(&server.base, &token, &skus, &BTreeSet::new());
    assert_eq!(answers.len(), KEYS, "every key is answered");
    for (key, order_id) in &first_answers {
        assert_eq!(
            &answers[key], order_id,
            "key {key} was answered before the kill with another order"
        );
    }
    let mut listed = BTreeSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = match &cursor {
            Some(cursor) => format!("{}/api/v1/orders?limit=100&cursor={cursor}", server.base),
            None => format!("{}/api/v1/orders?limit=100", server.base),
        };
        let (status, body) = call(&agent, "GET", &page, Some(&token), None, None).unwrap();
        assert_eq!(status, 200, "{body}");
        for item in body["items"].as_array().unwrap() {
            assert!(
                listed.insert(item["order_id"].as_str().unwrap().to_string()),
                "an order listed twice"
            );
        }
        match body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    let placed: BTreeSet<String> = answers.values().cloned().collect();
    assert_eq!(placed.len(), KEYS, "one order per key");
    assert_eq!(
        listed, placed,
        "the user's list is exactly the keys' orders"
    );
    server.stop_gracefully();

    // And the log holds exactly those orders' commands: none without its key and list entry.
    let engine = StorageEngine::open_fjall(data.path(), &StorageConfig::default()).unwrap();
    let log = EmbeddedLog::open(engine, Durability::Fsync).unwrap();
    let serde = envelope_serde::<OrderCommand>();
    let mut commanded = BTreeSet::new();
    let partitions = log.topic(ORDER_COMMANDS).unwrap().partitions;
    for partition in 0..partitions {
        for stored in log.fetch(ORDER_COMMANDS, partition, 0, usize::MAX).unwrap() {
            let (_, envelope) = serde.decode(&stored.record).unwrap();
            if let OrderCommand::PlaceOrder(place) = envelope.payload {
                assert!(
                    commanded.insert(place.order_id.to_string()),
                    "order {} was placed twice",
                    place.order_id
                );
            }
        }
    }
    assert_eq!(commanded, placed);
}
