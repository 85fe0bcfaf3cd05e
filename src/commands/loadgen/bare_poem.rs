//! The yardstick for POST /orders: a bare poem handler on the same path, in this process on
//! its own two-thread runtime (as `serve` runs the API). It parses the JSON body and answers
//! 202 with a fresh order id and a Location, and does nothing else: no auth, no validation, no
//! idempotency, no write. The ingress API's POST throughput is reported as a fraction of it.

use std::net::SocketAddr;
use std::thread::JoinHandle;

use anyhow::Context;
use poem::http::StatusCode;
use poem::web::Json;
use poem::{EndpointExt, Response, Route, handler, post};
use serde_json::{Value, json};

#[handler]
async fn accept_order(Json(order): Json<Value>) -> Response {
    let order_id = uuid::Uuid::now_v7();
    let lines = order["lines"].as_array().map_or(0, Vec::len);
    Response::builder()
        .status(StatusCode::ACCEPTED)
        .header("Location", format!("/api/v1/orders/{order_id}"))
        .content_type("application/json")
        .body(json!({"order_id": order_id, "status": "PENDING", "lines": lines}).to_string())
}

/// A running bare handler; stopped when dropped.
pub struct BarePoem {
    pub url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl BarePoem {
    pub fn start() -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("bare-poem")
            .enable_all()
            .build()
            .context("starting the bare poem runtime")?;
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .context("binding the bare poem handler")?;
        let address: SocketAddr = listener.local_addr()?;
        let acceptor = runtime
            .block_on(async { poem::listener::TcpAcceptor::from_tokio(listener) })
            .context("accepting on the bare poem listener")?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("bare-poem".into())
            .spawn(move || {
                let app = Route::new()
                    .at("/api/v1/orders", post(accept_order))
                    .map_to_response();
                let served = runtime.block_on(
                    poem::Server::new_with_acceptor(acceptor).run_with_graceful_shutdown(
                        app,
                        async move {
                            let _ = stopped.await;
                        },
                        None,
                    ),
                );
                if let Err(error) = served {
                    eprintln!("bare poem handler stopped: {error}");
                }
            })
            .context("spawning the bare poem thread")?;
        Ok(Self {
            url: format!("http://{address}"),
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for BarePoem {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
