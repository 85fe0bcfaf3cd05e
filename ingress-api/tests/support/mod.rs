//! A whole embedded platform behind the API, driven through poem's test client: real
//! topologies on an in-memory log, a real SQLite file, a clock the test moves.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use orderflow_ingress_api::platform::topologies::FulfillmentOptionsShared;
use orderflow_ingress_api::platform::{PlatformOptions, Topologies};
use orderflow_ingress_api::{ApiConfig, AppState, IngressOptions};
use orderflow_runtime::{Clock, EmbeddedLog, LogBackend, ManualClock, RuntimeConfig, SystemClock};
use poem::endpoint::BoxEndpoint;
use poem::http::{HeaderMap, Method, StatusCode};
use poem::test::TestClient;
use poem::{EndpointExt, Response};
use serde_json::{Value, json};

pub const ADMIN_EMAIL: &str = "root@example.com";
pub const ADMIN_PASSWORD: &str = "admin password 123";

pub struct Harness {
    pub state: Arc<AppState>,
    pub client: TestClient<BoxEndpoint<'static, Response>>,
    pub clock: ManualClock,
    pub topologies: Arc<Topologies>,
    pub _dir: tempfile::TempDir,
}

/// What a call returned.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub content_type: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// Asserts an RFC 9457 problem with this status.
    pub fn assert_problem(&self, status: StatusCode) {
        assert_eq!(self.status, status, "body: {}", self.body);
        assert!(
            self.content_type.starts_with("application/problem+json"),
            "content type {} for {}",
            self.content_type,
            self.body
        );
        assert_eq!(self.body["status"], json!(status.as_u16()), "{}", self.body);
        assert!(self.body["title"].is_string() && self.body["detail"].is_string());
        assert!(self.body["type"].as_str().unwrap().starts_with("https://"));
    }
}

pub fn test_config() -> ApiConfig {
    let mut config = ApiConfig::default();
    config.auth.argon2_memory_kib = 8 * 1024;
    config.auth.argon2_iterations = 1;
    config.rate_limits.per_user_per_second = 0;
    config.rate_limits.per_ip_per_second = 0;
    config
}

impl Harness {
    pub async fn start() -> Self {
        Self::start_with(test_config(), FulfillmentOptionsShared::default()).await
    }

    pub async fn start_with(config: ApiConfig, fulfillment: FulfillmentOptionsShared) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(SystemClock.now_ms());
        let log: Arc<dyn LogBackend> = Arc::new(EmbeddedLog::in_memory());
        let runtime = RuntimeConfig {
            stream_threads: 1,
            commit_interval_ms: 5,
            ..RuntimeConfig::default()
        };
        let topologies = Arc::new(
            Topologies::start(
                log.clone(),
                Arc::new(clock.clone()),
                &PlatformOptions {
                    runtime,
                    fulfillment,
                    ..PlatformOptions::default()
                },
            )
            .unwrap(),
        );
        let state = orderflow_ingress_api::start(IngressOptions {
            config,
            data_dir: dir.path().to_path_buf(),
            clock: Arc::new(clock.clone()),
            log,
            topologies: topologies.clone(),
        })
        .await
        .unwrap();
        orderflow_ingress_api::bootstrap::ensure_admin(
            &state,
            Some(ADMIN_EMAIL.to_string()),
            Some(ADMIN_PASSWORD.to_string()),
        )
        .await
        .unwrap();
        let endpoint = orderflow_ingress_api::routes(state.clone()).boxed();
        Self {
            state,
            client: TestClient::new(endpoint),
            clock,
            topologies,
            _dir: dir,
        }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut request = match method {
            Method::GET => self.client.get(path),
            Method::POST => self.client.post(path),
            Method::PUT => self.client.put(path),
            Method::PATCH => self.client.patch(path),
            Method::DELETE => self.client.delete(path),
            _ => unreachable!(),
        };
        if let Some(token) = token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.body_json(&body);
        }
        let response = request.send().await.0;
        let status = response.status();
        let headers = response.headers().clone();
        let content_type = response.content_type().unwrap_or_default().to_string();
        let text = response.into_body().into_string().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Reply {
            status,
            headers,
            body,
            content_type,
        }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.call(Method::GET, path, token, None, &[]).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.call(Method::POST, path, token, Some(body), &[]).await
    }

    /// Registers and logs in; returns (access token, refresh token, user id).
    pub async fn customer(&self, email: &str) -> (String, String, String) {
        let registered = self
            .post(
                "/api/v1/auth/register",
                None,
                json!({"email": email, "password": "customer password", "name": "Customer"}),
            )
            .await;
        assert_eq!(
            registered.status,
            StatusCode::CREATED,
            "{}",
            registered.body
        );
        let tokens = self.login(email, "customer password").await;
        (
            tokens["access_token"].as_str().unwrap().to_string(),
            tokens["refresh_token"].as_str().unwrap().to_string(),
            registered.body["id"].as_str().unwrap().to_string(),
        )
    }

    pub async fn login(&self, email: &str, password: &str) -> Value {
        let reply = self
            .post(
                "/api/v1/auth/login",
                None,
                json!({"email": email, "password": password}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        reply.body
    }

    pub async fn admin(&self) -> String {
        self.login(ADMIN_EMAIL, ADMIN_PASSWORD).await["access_token"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Creates a product with stock, and waits until both are visible.
    pub async fn product(&self, admin: &str, sku: &str, price_minor: i64, stock: u32) {
        let created = self
            .post(
                "/api/v1/products",
                Some(admin),
                json!({"sku": sku, "name": format!("Product {sku}"), "category": "kitchen",
                       "price": {"amount_minor": price_minor, "currency": "USD"}}),
            )
            .await;
        assert_eq!(created.status, StatusCode::ACCEPTED, "{}", created.body);
        let position = created.body["position"].as_str().unwrap().to_string();
        let read = self
            .get(&format!("/api/v1/products/{sku}?position={position}"), None)
            .await;
        assert_eq!(read.status, StatusCode::OK, "{}", read.body);
        if stock > 0 {
            let restocked = self
                .post(
                    &format!("/api/v1/inventory/{sku}/restock"),
                    Some(admin),
                    json!({"quantity": stock}),
                )
                .await;
            assert_eq!(restocked.status, StatusCode::ACCEPTED, "{}", restocked.body);
            let position = restocked.body["position"].as_str().unwrap();
            let read = self
                .get(
                    &format!("/api/v1/inventory/{sku}?position={position}"),
                    Some(admin),
                )
                .await;
            assert_eq!(read.status, StatusCode::OK, "{}", read.body);
        }
        // Orders price lines from the fulfillment topology's copy of the catalog.
        assert!(
            self.topologies
                .wait_until_idle(Duration::from_secs(10))
                .unwrap()
        );
    }

    pub async fn place(&self, token: &str, key: &str, lines: Value, payment: &str) -> Reply {
        self.call(
            Method::POST,
            "/api/v1/orders",
            Some(token),
            Some(order_body(lines, payment)),
            &[("Idempotency-Key", key)],
        )
        .await
    }

    /// Long-polls the order until it settles; returns its view.
    pub async fn settled(&self, token: &str, order_id: &str) -> Value {
        for _ in 0..20 {
            let reply = self
                .get(&format!("/api/v1/orders/{order_id}?wait=2"), Some(token))
                .await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
            let status = reply.body["status"].as_str().unwrap();
            if !matches!(status, "PENDING" | "RESERVING" | "AWAITING_PAYMENT") {
                return reply.body;
            }
        }
        panic!("order {order_id} did not settle");
    }
}

pub fn order_body(lines: Value, payment: &str) -> Value {
    json!({
        "lines": lines,
        "currency": "USD",
        "shipping_address": {"name": "Ada", "line1": "1 Main St", "city": "Springfield",
                             "postal_code": "12345", "country": "US"},
        "payment_method_token": payment,
    })
}

/// The `type` of every `user-events` record about `user_id`, in log order per partition.
pub fn user_event_types(harness: &Harness, user_id: &str) -> Vec<String> {
    topic_envelopes(harness, "user-events", "user_id", user_id)
        .iter()
        .map(|envelope| envelope["type"].as_str().unwrap().to_string())
        .collect()
}

/// The envelopes on `topic` whose payload's `field` is `id`, as JSON.
pub fn topic_envelopes(harness: &Harness, topic: &str, field: &str, id: &str) -> Vec<Value> {
    let log = &harness.state.log;
    let mut envelopes = Vec::new();
    for partition in 0..log.topic(topic).unwrap().partitions {
        for stored in log.fetch(topic, partition, 0, 10_000).unwrap() {
            let value: Value =
                serde_json::from_slice(stored.record.value.as_ref().unwrap()).unwrap();
            if value["payload"][field] == json!(id) {
                envelopes.push(value);
            }
        }
    }
    envelopes
}

/// The hash the API computes over a request body (SHA-256 of its JSON as poem-openapi renders
/// it).
pub fn request_digest(body: &Value) -> [u8; 32] {
    use poem_openapi::types::{ParseFromJSON, ToJSON};
    use sha2::Digest;
    let parsed =
        orderflow_ingress_api::api::orders::PlaceOrderRequest::parse_from_json(Some(body.clone()))
            .unwrap();
    let canonical = parsed.to_json().unwrap().to_string();
    sha2::Sha256::digest(canonical.as_bytes()).into()
}

/// [`request_digest`] in hex, as the separate-writes path stores it.
pub fn request_hash_hex(body: &Value) -> String {
    request_digest(body)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}
