//! Pure domain processors: catalog, inventory, order saga, payment, notification and analytics.
//!
//! They arrive with the order-saga issue. Each will implement
//! [`orderflow_runtime::Processor`]: a record and a context in; state changes, forwarded
//! records and timers out; no I/O.
