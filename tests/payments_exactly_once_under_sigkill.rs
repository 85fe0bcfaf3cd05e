//! No order is charged twice, even when the process is killed in the middle of a charge.
//!
//! The saga workload runs in a child process with a slow simulated provider (so kills land
//! between the provider's decision and the platform's commit of its result) and is SIGKILLed at
//! random moments, restarted each time, then run to completion. The provider journals every
//! decision outside the platform's database, as a real provider keeps its own records. Every
//! placed order must end confirmed, charged exactly once, refunded never.

use std::collections::{HashMap, HashSet};
use std::ops::Bound;
use std::process::{Command, Stdio};

use orderflow_processors::order_saga::{ORDER_STORE, OrderState};
use orderflow_processors::order_state_codec::OrderStateCodec;
use orderflow_processors::wire::envelope_serde;
use orderflow_runtime::log::LogBackend;
use orderflow_runtime::topology::store_space_name;
use orderflow_runtime::{EmbeddedLog, RecordDecoder};
use orderflow_schemas::messages::order_commands::OrderCommand;
use orderflow_schemas::messages::order_events::OrderStatus;
use orderflow_state_stores::{
    CommittedKeyValueStore, Durability, StorageConfig, StorageEngine, StoreCodecs, StringCodec,
};

mod support;

const ORDERS: u64 = 1_500;
const KILLS: usize = 10;

fn workload(data_dir: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_orderflow"));
    command
        .arg("--data-dir")
        .arg(data_dir)
        .args(["workload", "saga"])
        .args(["--orders", &ORDERS.to_string()])
        .args(["--skus", "50", "--users", "20", "--rate", "1500"])
        .args(["--provider-latency-ms", "2"])
        .env("ORDERFLOW__RUNTIME__STREAM_THREADS", "2")
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

#[test]
fn sigkill_during_charges_never_charges_an_order_twice() {
    let directory = tempfile::tempdir().unwrap();
    let status =
        support::kill_repeatedly_then_finish(|| workload(directory.path()), KILLS, 150..900);
    assert!(status.success(), "the final run failed: {status}");

    // The provider's own records: one approved charge per order, no refund.
    let journal =
        std::fs::read_to_string(directory.path().join("simulated-provider.jsonl")).unwrap();
    let mut charges: HashMap<String, u32> = HashMap::new();
    let mut keys = HashSet::new();
    for line in journal.lines().filter(|line| !line.trim().is_empty()) {
        let Ok(entry) = serde_json::from_str::<serde_json::Value>(line) else {
            continue; // a torn line from a kill during the append
        };
        let key = entry["idempotency_key"].as_str().unwrap().to_string();
        assert!(
            keys.insert(key.clone()),
            "the provider decided key {key} twice"
        );
        assert_eq!(entry["operation"], "charge", "a refund happened: {line}");
        if entry["outcome"]["outcome"] == "approved" {
            *charges
                .entry(entry["order_id"].as_str().unwrap().to_string())
                .or_default() += 1;
        }
    }

    let engine = StorageEngine::open_fjall(directory.path(), &StorageConfig::default()).unwrap();
    let log = EmbeddedLog::open(engine.clone(), Durability::Fsync).unwrap();
    let mut placed = Vec::new();
    let serde = envelope_serde::<OrderCommand>();
    for partition in 0..6 {
        for stored in log
            .fetch("order-commands", partition, 0, usize::MAX)
            .unwrap()
        {
            let (_, envelope) = serde.decode(&stored.record).unwrap();
            if let OrderCommand::PlaceOrder(place) = envelope.payload {
                placed.push(place.order_id.to_string());
            }
        }
    }
    assert_eq!(placed.len() as u64, ORDERS);
    let mut states: HashMap<String, OrderState> = HashMap::new();
    for partition in 0..6 {
        let space = engine
            .space(&store_space_name(
                "orderflow-fulfillment",
                ORDER_STORE,
                partition,
            ))
            .unwrap();
        let store = CommittedKeyValueStore::new(
            &engine,
            space,
            StoreCodecs {
                name: ORDER_STORE,
                key: &StringCodec,
                value: &OrderStateCodec,
            },
        );
        states.extend(
            store
                .range(Bound::Unbounded, Bound::Unbounded, usize::MAX)
                .unwrap(),
        );
    }
    for order in &placed {
        let state: &OrderState = &states[order];
        assert_eq!(state.status, OrderStatus::Confirmed, "order {order}");
        assert_eq!(
            charges.get(order),
            Some(&1),
            "order {order} charged {:?} times",
            charges.get(order)
        );
    }
}
