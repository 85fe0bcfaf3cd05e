//! The log watcher: one thread that follows the log for the API's waiters.
//!
//! - Every commit anywhere moves the log's generation; the watcher republishes it on a tokio
//!   `watch` channel, so async read-your-writes waits re-check their position bound without a
//!   blocking call.
//! - It tails `order-events` and wakes the long-polls waiting on each order. A waiter registers
//!   *before* it reads the order's state, so an event committed between its read and its wait
//!   still wakes it.
//! - From the same events it measures order latency, from the POST (the time inside the order's
//!   UUIDv7 id) to the outcome, and counts saga outcomes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use orderflow_processors::wire::envelope_serde;
use orderflow_runtime::{Clock, LogBackend, RecordDecoder};
use orderflow_schemas::catalog::ORDER_EVENTS;
use orderflow_schemas::ids::OrderId;
use orderflow_schemas::messages::order_events::OrderEvent;
use tokio::sync::{Notify, watch};

use crate::metrics::ApiMetrics;

/// Shared by the watcher thread and the handlers.
#[derive(Debug)]
pub struct LogWatcher {
    generation: watch::Receiver<u64>,
    waiters: Mutex<HashMap<String, Arc<Notify>>>,
    stop: AtomicBool,
}

/// A registered interest in one order; wakes on any event of the order.
#[derive(Debug)]
pub struct OrderWaiter {
    order_key: String,
    notify: Arc<Notify>,
    watcher: Arc<LogWatcher>,
}

impl OrderWaiter {
    pub fn notify(&self) -> &Arc<Notify> {
        &self.notify
    }
}

impl Drop for OrderWaiter {
    fn drop(&mut self) {
        let mut waiters = self.watcher.waiters.lock().expect("waiters lock poisoned");
        // Two references left: the map's and ours. Nobody else waits; forget the order.
        if Arc::strong_count(&self.notify) <= 2 {
            waiters.remove(&self.order_key);
        }
    }
}

impl LogWatcher {
    /// Starts the watcher thread, following `order-events` from its current end.
    pub fn start(
        log: Arc<dyn LogBackend>,
        clock: Arc<dyn Clock>,
        metrics: Arc<ApiMetrics>,
    ) -> Arc<Self> {
        let (generation_sender, generation) = watch::channel(log.generation());
        let watcher = Arc::new(Self {
            generation,
            waiters: Mutex::new(HashMap::new()),
            stop: AtomicBool::new(false),
        });
        let thread_watcher = watcher.clone();
        std::thread::Builder::new()
            .name("orderflow-ingress-watcher".to_string())
            .spawn(move || {
                thread_watcher.run(log.as_ref(), clock.as_ref(), &metrics, generation_sender)
            })
            .expect("spawning the ingress watcher thread");
        watcher
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    fn run(
        &self,
        log: &dyn LogBackend,
        clock: &dyn Clock,
        metrics: &ApiMetrics,
        generation_sender: watch::Sender<u64>,
    ) {
        let partitions = log.topic(ORDER_EVENTS).map_or(0, |spec| spec.partitions);
        let mut positions: Vec<u64> = (0..partitions)
            .map(|partition| {
                log.offsets(ORDER_EVENTS, partition)
                    .map_or(0, |offsets| offsets.end)
            })
            .collect();
        let decoder = envelope_serde::<OrderEvent>();
        while !self.stop.load(Ordering::SeqCst) {
            let generation = log.generation();
            generation_sender.send_replace(generation);
            let mut seen = 0;
            for partition in 0..partitions {
                let records = match log.fetch(
                    ORDER_EVENTS,
                    partition,
                    positions[partition as usize],
                    1000,
                ) {
                    Ok(records) => records,
                    Err(error) => {
                        tracing::warn!(%error, partition, "watcher could not read order-events");
                        continue;
                    }
                };
                for stored in records {
                    positions[partition as usize] = stored.offset + 1;
                    seen += 1;
                    let Ok((key, envelope)) = decoder.decode(&stored.record) else {
                        continue;
                    };
                    self.wake(&key);
                    observe(metrics, &key, &envelope.payload, clock.now_ms());
                }
            }
            if seen == 0 {
                log.wait_for_records(generation, Duration::from_millis(100));
            }
        }
    }

    fn wake(&self, order_key: &str) {
        let waiters = self.waiters.lock().expect("waiters lock poisoned");
        if let Some(notify) = waiters.get(order_key) {
            notify.notify_waiters();
        }
    }

    /// Registers interest in an order; see the module doc for the order of operations.
    pub fn watch_order(self: &Arc<Self>, order_id: OrderId) -> OrderWaiter {
        let order_key = order_id.to_string();
        let notify = self
            .waiters
            .lock()
            .expect("waiters lock poisoned")
            .entry(order_key.clone())
            .or_default()
            .clone();
        OrderWaiter {
            order_key,
            notify,
            watcher: self.clone(),
        }
    }

    /// A receiver that changes whenever the log commits anything.
    pub fn generations(&self) -> watch::Receiver<u64> {
        self.generation.clone()
    }
}

fn observe(metrics: &ApiMetrics, order_key: &str, event: &OrderEvent, now_ms: i64) {
    let outcome = match event {
        OrderEvent::OrderConfirmed(_) => "confirmed",
        OrderEvent::OrderRejected(_) => "rejected",
        OrderEvent::OrderCancelled(_) => "cancelled",
        OrderEvent::OrderPaymentFailed(_) => "payment_failed",
        OrderEvent::OrderShipped(_) => "shipped",
        OrderEvent::OrderDelivered(_) => "delivered",
        OrderEvent::OrderCreated(_) => "created",
        OrderEvent::TransitionRefused(_) => "transition_refused",
    };
    metrics.count_order_event(outcome);
    // The saga's decision (confirmed, or one of the terminal failures) and the end of the
    // lifecycle (delivered), each timed from the POST (the time in the order's UUIDv7 id).
    if matches!(
        event,
        OrderEvent::OrderConfirmed(_)
            | OrderEvent::OrderRejected(_)
            | OrderEvent::OrderCancelled(_)
            | OrderEvent::OrderPaymentFailed(_)
            | OrderEvent::OrderDelivered(_)
    ) && let Ok(order_id) = order_key.parse::<OrderId>()
    {
        let elapsed_ms = (now_ms - order_id.unix_millis()).max(0) as u64;
        metrics.record_order_latency(outcome, Duration::from_millis(elapsed_ms));
    }
}
