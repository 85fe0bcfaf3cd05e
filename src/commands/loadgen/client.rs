//! The HTTP calls loadgen makes, as a customer and as the admin would: log in, seed the
//! catalog, register customers, place an order, and long-poll it until the saga decides it.

use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};

/// What the server answered: the status, or the transport error (refused, reset, timeout).
pub type Answer = Result<(u16, Value), reqwest::Error>;

/// A base URL and a pooled client; cheap to clone.
#[derive(Clone)]
pub struct Api {
    client: reqwest::Client,
    base: String,
}

/// Set-up requests answered 429 are retried this often.
const RETRIES_AFTER_429: usize = 30;

/// The order statuses the saga has not decided yet; anything else is an outcome.
const UNDECIDED: [&str; 3] = ["PENDING", "RESERVING", "AWAITING_PAYMENT"];

impl Api {
    pub fn new(base: &str, connections: usize) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(connections)
            .tcp_nodelay(true)
            .timeout(Duration::from_secs(60))
            .build()
            .context("building the HTTP client")?;
        Ok(Self {
            client,
            base: base.trim_end_matches('/').to_string(),
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        let response = request.send().await?;
        let status = response.status().as_u16();
        let body = response.json::<Value>().await.unwrap_or(Value::Null);
        Ok((status, body))
    }

    /// Sends a set-up request and insists on one of the `accepted` statuses; a 429 is waited
    /// out (its Retry-After) and retried, as a polite client would.
    async fn expect(
        &self,
        what: &str,
        request: reqwest::RequestBuilder,
        accepted: &[u16],
    ) -> anyhow::Result<Value> {
        for _ in 0..RETRIES_AFTER_429 {
            let attempt = request
                .try_clone()
                .context("a JSON request can be cloned")?;
            let response = attempt
                .send()
                .await
                .with_context(|| format!("{what}: no answer from {}", self.base))?;
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get("Retry-After")
                .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
            let body = response.json::<Value>().await.unwrap_or(Value::Null);
            if accepted.contains(&status) {
                return Ok(body);
            }
            if status != 429 {
                bail!("{what}: the server answered {status}: {body}");
            }
            tokio::time::sleep(Duration::from_secs(retry_after.unwrap_or(1).clamp(1, 10))).await;
        }
        bail!("{what}: still rate limited (429) after {RETRIES_AFTER_429} attempts")
    }

    /// Logs in and returns the access token.
    pub async fn login(&self, email: &str, password: &str) -> anyhow::Result<String> {
        let body = self
            .expect(
                &format!("logging in as {email}"),
                self.client
                    .post(format!("{}/api/v1/auth/login", self.base))
                    .json(&json!({"email": email, "password": password})),
                &[200],
            )
            .await?;
        body["access_token"]
            .as_str()
            .map(str::to_string)
            .with_context(|| format!("logging in as {email}: no access_token in {body}"))
    }

    /// Registers a customer and logs in as them.
    pub async fn register(&self, email: &str, password: &str) -> anyhow::Result<String> {
        self.expect(
            &format!("registering {email}"),
            self.client
                .post(format!("{}/api/v1/auth/register", self.base))
                .json(&json!({"email": email, "password": password, "name": "Load Generator"})),
            &[201],
        )
        .await?;
        self.login(email, password).await
    }

    /// Creates a product priced 10.00 USD with plenty of stock, as the admin.
    pub async fn seed_product(&self, admin: &str, sku: &str, stock: u32) -> anyhow::Result<()> {
        self.expect(
            &format!("creating product {sku}"),
            self.client
                .post(format!("{}/api/v1/products", self.base))
                .bearer_auth(admin)
                .json(&json!({"sku": sku, "name": sku, "category": "loadgen",
                              "price": {"amount_minor": 1_000, "currency": "USD"}})),
            &[202],
        )
        .await?;
        self.expect(
            &format!("restocking {sku}"),
            self.client
                .post(format!("{}/api/v1/inventory/{sku}/restock", self.base))
                .bearer_auth(admin)
                .json(&json!({"quantity": stock})),
            &[202],
        )
        .await?;
        Ok(())
    }

    /// Whether the product is in the catalog view and its stock in the inventory view.
    pub async fn product_ready(&self, admin: &str, sku: &str, stock: u32) -> bool {
        let product = self
            .send(
                self.client
                    .get(format!("{}/api/v1/products/{sku}", self.base)),
            )
            .await;
        let inventory = self
            .send(
                self.client
                    .get(format!("{}/api/v1/inventory/{sku}", self.base))
                    .bearer_auth(admin),
            )
            .await;
        matches!(product, Ok((200, _)))
            && matches!(inventory, Ok((200, view)) if view["on_hand"].as_u64() >= Some(u64::from(stock)))
    }

    /// Waits until the server reports no lag twice in a row (every topology, global-table copy
    /// and effect has caught up), at most `patience`; `false` if it never did.
    pub async fn wait_until_idle(&self, patience: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + patience;
        let mut idle = 0;
        while tokio::time::Instant::now() < deadline {
            let ready = self
                .send(self.client.get(format!("{}/health/ready", self.base)))
                .await;
            match ready {
                Ok((200, body)) if body["lag"].as_u64() == Some(0) => idle += 1,
                _ => idle = 0,
            }
            if idle >= 2 {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    /// POST /api/v1/orders with a fresh Idempotency-Key.
    pub async fn place_order(&self, token: &str, body: &Value, key: &str) -> Answer {
        self.send(
            self.client
                .post(format!("{}/api/v1/orders", self.base))
                .bearer_auth(token)
                .header("Idempotency-Key", key)
                .json(body),
        )
        .await
    }

    /// Long-polls an order until the saga decides it (or `patience` runs out) and returns its
    /// last status. The first poll carries the POST's position token, so the order is visible
    /// to it even if the view has not caught up with the write yet.
    pub async fn await_outcome(
        &self,
        token: &str,
        order_id: &str,
        position: &str,
        patience: Duration,
    ) -> Result<String, String> {
        let deadline = tokio::time::Instant::now() + patience;
        let mut last = String::from("no answer");
        let mut first = true;
        while tokio::time::Instant::now() < deadline {
            let wait = deadline
                .saturating_duration_since(tokio::time::Instant::now())
                .as_secs()
                .clamp(1, 30);
            let mut url = format!("{}/api/v1/orders/{order_id}?wait={wait}", self.base);
            if first {
                url.push_str("&position=");
                url.push_str(position);
            }
            match self.send(self.client.get(url).bearer_auth(token)).await {
                Ok((200, view)) => {
                    first = false;
                    let status = view["status"].as_str().unwrap_or_default();
                    if !UNDECIDED.contains(&status) {
                        return Ok(status.to_string());
                    }
                    last = status.to_string();
                }
                Ok((status, body)) => return Err(format!("GET answered {status}: {body}")),
                Err(error) => return Err(format!("GET failed: {error}")),
            }
        }
        Err(format!("still {last} after {patience:?}"))
    }
}

/// The order every simulated customer places: one line of one unit, approved payment.
pub fn order_body(sku: &str) -> Value {
    json!({
        "lines": [{"sku": sku, "quantity": 1}],
        "currency": "USD",
        "shipping_address": {"name": "Load Generator", "line1": "1 Benchmark Road",
                             "city": "Testville", "postal_code": "12345", "country": "US"},
        "payment_method_token": "tok_visa",
    })
}
