//! I/O adapters: payment providers and notifiers that effect executors call. Never called by a
//! processor: processors request effects; the runtime's side thread runs these.

pub mod notifier;
pub mod smtp;
pub mod stripe;
pub mod webhook;
