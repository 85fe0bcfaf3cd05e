//! orderflow data contracts: the types every other crate agrees on.
//!
//! - [`ids`], [`codes`], [`time`]: identifiers (UUIDv7 newtypes, SKUs, coupon codes) and the
//!   millisecond [`Timestamp`].
//! - [`currency`], [`money`]: ISO 4217 currencies and integer minor-unit [`Money`]
//!   with checked arithmetic.
//! - [`envelope`]: the versioned JSON [`Envelope`] every public topic carries,
//!   and the [`Message`] trait implemented by each topic's payload enum.
//! - [`messages`]: the commands and events, one module per topic.
//! - [`catalog`]: which topic carries which messages, keyed by what, written by whom.
//! - [`json_schema`]: JSON Schema export of every topic's envelope (committed under `schemas/json`).
//! - [`topic`]: the backend-agnostic topic specification.

#![warn(missing_docs)]

pub mod address;
pub mod catalog;
pub mod codes;
pub mod currency;
pub mod envelope;
pub mod ids;
pub mod json_schema;
pub mod messages;
pub mod money;
mod parse_str;
pub mod time;
pub mod topic;
pub mod trace;
pub mod validation;

pub use address::{CountryCode, ShippingAddress};
pub use codes::{CouponCode, CouponCodeError, Sku, SkuError};
pub use currency::{Currency, CurrencyError};
pub use envelope::{DecodeError, Envelope, EnvelopeHeader, Message};
pub use ids::{
    CorrelationId, CouponId, EventId, IdError, NotificationId, OrderId, PaymentId, ReservationId,
    UserId,
};
pub use money::{Money, MoneyError, RoundingMode};
pub use time::Timestamp;
pub use trace::{TraceParent, TraceParentError};
pub use validation::{Validate, ValidationError};
