//! The ingress API's side of the stream platform: the topologies it runs beside (embedded),
//! the producer its commands go through, and the watcher that wakes long-polls.

pub mod order_intake;
pub mod producer;
pub mod topologies;
pub mod watcher;

pub use order_intake::AtomicIntake;
pub use producer::{CommandProducer, Position, Produce};
pub use topologies::{PlatformOptions, Topologies};
pub use watcher::LogWatcher;
