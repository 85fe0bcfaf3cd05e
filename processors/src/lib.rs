//! Pure domain processors: catalog, inventory, order saga, payment, notification and analytics.
//!
//! Each implements [`orderflow_runtime::Processor`]: a record and a context in; state changes,
//! forwarded records and timers out; no I/O. Payment-provider calls leave as effect requests
//! (see `orderflow_runtime::effects`).

pub mod adapters;
pub mod analytics;
pub mod catalog;
pub mod export;
pub mod inventory;
pub mod notification;
pub mod order_saga;
pub mod order_state_codec;
pub mod payment;
pub mod pricing;
pub mod user_profile_codec;
pub mod users;
pub mod wire;
