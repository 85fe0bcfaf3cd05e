//! `analytics-aggregates`: windowed aggregates computed by the analytics processor from all
//! events, keyed by window key, read by the analytics views and the Kinesis exporter.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::catalog::ANALYTICS_AGGREGATES;
use crate::money::Money;
use crate::time::Timestamp;
use crate::validation::{MAX_TOKEN_CHARS, Validate, ValidationError, require_token};

message_enum! {
    /// Payload of `analytics-aggregates`.
    pub enum AnalyticsAggregate on ANALYTICS_AGGREGATES {
        /// The value of one metric over one time window for one group.
        WindowAggregate keyed by window_key,
    }
}

/// What an aggregate measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AnalyticsMetric {
    /// `OrderCreated` events.
    OrdersCreated,
    /// `OrderConfirmed` events (their money is in `revenue`, per currency).
    OrdersConfirmed,
    /// `OrderRejected` events.
    OrdersRejected,
    /// `OrderCancelled` events.
    OrdersCancelled,
    /// Captured payments net of refunds; `amount` is the net revenue.
    Revenue,
    /// Units committed (sold), gross: a confirmed order refunded later is in `units_returned`.
    UnitsSold,
    /// `PaymentFailed` events.
    PaymentsFailed,
    /// `PaymentSucceeded` events (with `PaymentsFailed`, the payment success rate).
    PaymentsSucceeded,
    /// `OrderPaymentFailed` events.
    OrdersPaymentFailed,
    /// `StockLow` events.
    StockLow,
    /// Units of confirmed orders cancelled and refunded before shipping, per SKU (net units
    /// sold = `units_sold` - `units_returned`).
    UnitsReturned,
}

/// One metric over one window `[window_start, window_end)` for one group (all orders, one
/// currency, one SKU, ...). Windows emit updates while open and a final value when they close.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WindowAggregate {
    /// Identifies metric, group and window together, e.g.
    /// `revenue/currency=USD/1700000000000`; the record key.
    pub window_key: String,
    /// What is measured.
    pub metric: AnalyticsMetric,
    /// Window start (inclusive).
    pub window_start: Timestamp,
    /// Window end (exclusive); after the start.
    pub window_end: Timestamp,
    /// Events (or units, for `units_sold`) counted in the window so far.
    pub count: u64,
    /// Summed money, for money metrics; one currency per group, never mixed.
    pub amount: Option<Money>,
    /// Whether the window has closed and this value will not change again.
    pub is_final: bool,
}

impl Validate for WindowAggregate {
    fn validate(&self) -> Result<(), ValidationError> {
        require_token("window_key", &self.window_key, MAX_TOKEN_CHARS)?;
        if self.window_end <= self.window_start {
            return Err(ValidationError::new(
                "window_end",
                format!(
                    "must be after window_start ({}), got {}",
                    self.window_start, self.window_end
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::Message;
    use crate::messages::fixtures;

    #[test]
    fn window_rules_and_key() {
        let mut aggregate = fixtures::window_aggregate();
        assert_eq!(aggregate.validate(), Ok(()));
        assert_eq!(
            AnalyticsAggregate::from(aggregate.clone()).partition_key(),
            aggregate.window_key
        );
        aggregate.window_end = aggregate.window_start;
        assert_eq!(aggregate.validate().unwrap_err().field, "window_end");
    }
}
