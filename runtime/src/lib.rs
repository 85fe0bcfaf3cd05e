//! orderflow's stream-processing runtime: a Kafka-Streams-style engine that knows nothing about
//! orders.
//!
//! - [`topology`]: build a graph of sources, [`processor`]s and sinks with state stores;
//! - [`task`]: one sub-topology on one partition; [`app`]: stream threads that run tasks;
//! - [`log`]: where topics live (the embedded fjall log; Kafka plugs in behind the same trait);
//! - [`timers`], [`dead_letter`], [`metrics`]: durable timers, dead letters, counters;
//! - [`test_driver`]: run a topology deterministically in tests, with several partitions.

pub mod app;
pub mod clock;
pub mod config;
pub mod dead_letter;
pub mod effects;
pub mod error;
pub mod global;
mod global_row_cache;
pub mod log;
pub mod metrics;
pub mod partitioner;
pub mod processor;
pub mod query;
pub mod record;
pub mod serde;
mod side_tasks;
pub mod task;
pub mod test_driver;
pub mod timers;
pub mod topology;

pub use app::RunningApp;
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::RuntimeConfig;
pub use effects::EffectHandler;
pub use error::{LogError, ProcessError, RuntimeError, TopologyError};
pub use global::GlobalTableView;
pub use log::embedded::EmbeddedLog;
pub use log::{LogBackend, RecordListener};
pub use metrics::MetricsRegistry;
pub use processor::{FiredTimer, Processor, ProcessorContext};
pub use query::StoreReader;
pub use record::{Headers, LogRecord, Record, RecordMetadata, StoredRecord};
pub use serde::{RecordDecoder, RecordEncoder, RecordSerde};
pub use test_driver::TopologyTestDriver;
pub use timers::TimerKind;
pub use topology::{Topology, TopologyBuilder};
