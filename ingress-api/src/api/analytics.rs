//! `/api/v1/analytics`: the windowed aggregates of the analytics topology, read from the tail
//! of `analytics-aggregates` (each window's latest value wins).

use std::collections::BTreeMap;
use std::sync::Arc;

use orderflow_processors::analytics::{WINDOW_SHAPES, window_key_dimension};
use orderflow_processors::wire::envelope_serde;
use orderflow_runtime::RecordDecoder;
use orderflow_schemas::catalog::ANALYTICS_AGGREGATES;
use orderflow_schemas::messages::analytics::{
    AnalyticsAggregate, AnalyticsMetric, WindowAggregate,
};
use poem::web::Data;
use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::{ApiTags, BearerAuth, MoneyDto, page_size};
use crate::api::example_money;
use crate::problem::{ApiError, ApiResult};
use crate::state::AppState;

/// One window of one metric.
#[derive(Debug, Object)]
#[oai(example, skip_serializing_if_is_none)]
pub struct AggregateView {
    /// `metric/group/window/start`.
    pub window_key: String,
    /// What the window counts over: `all`, a currency, `category:<category>:<currency>` or
    /// `sku:<sku>`.
    pub group: String,
    /// e.g. `orders_confirmed`, `revenue`.
    pub metric: String,
    /// Unix milliseconds, inclusive.
    pub window_start_ms: i64,
    /// Unix milliseconds, exclusive.
    pub window_end_ms: i64,
    pub count: u64,
    /// For money metrics.
    pub amount: Option<MoneyDto>,
    /// Whether the window closed and the value is final.
    pub is_final: bool,
}

impl poem_openapi::types::Example for AggregateView {
    fn example() -> Self {
        Self {
            window_key: "revenue/USD/1m/1767225600000".to_string(),
            group: "USD".to_string(),
            metric: "revenue".to_string(),
            window_start_ms: 1_767_225_600_000,
            window_end_ms: 1_767_225_660_000,
            count: 3,
            amount: Some(example_money(14361, "USD")),
            is_final: true,
        }
    }
}

/// Aggregates, newest windows first.
#[derive(Debug, Object)]
#[oai(example, skip_serializing_if_is_none)]
pub struct AggregatePage {
    pub items: Vec<AggregateView>,
}

impl poem_openapi::types::Example for AggregatePage {
    fn example() -> Self {
        Self {
            items: vec![AggregateView::example()],
        }
    }
}

#[derive(Debug, ApiResponse)]
enum AggregateResponse {
    /// The most recent windows.
    #[oai(status = 200)]
    Ok(Json<AggregatePage>),
}

/// Records read from the end of each partition.
const TAIL_RECORDS: u64 = 2_000;

/// A window's figures, for the summary.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct GroupAmount {
    /// The currency, or `category:<category>:<currency>`.
    pub group: String,
    pub amount: MoneyDto,
}

/// A SKU and the units sold in the window.
#[derive(Debug, Object)]
pub struct SkuUnits {
    pub sku: String,
    pub units: u64,
}

/// Orders by what happened to them in the window.
#[derive(Debug, Default, Object)]
pub struct OrderCounts {
    pub created: u64,
    pub confirmed: u64,
    pub rejected: u64,
    pub cancelled: u64,
    pub payment_failed: u64,
}

/// The derived figures of the most recent closed window of one size.
#[derive(Debug, Object)]
#[oai(example, skip_serializing_if_is_none)]
pub struct AnalyticsSummary {
    /// The window, if one of this size has closed yet.
    pub window_start_ms: Option<i64>,
    pub window_end_ms: Option<i64>,
    pub orders: OrderCounts,
    /// Net revenue per currency.
    pub revenue: Vec<GroupAmount>,
    /// Net revenue per category and currency.
    pub revenue_by_category: Vec<GroupAmount>,
    /// Succeeded payments over all payment outcomes, 0 to 1; absent without payments.
    pub payment_success_rate: Option<f64>,
    /// The SKUs that sold most units net of units refunded before shipping, most first (at
    /// most 10).
    pub top_skus: Vec<SkuUnits>,
    /// StockLow alerts.
    pub stock_low: u64,
}

impl poem_openapi::types::Example for AnalyticsSummary {
    fn example() -> Self {
        Self {
            window_start_ms: Some(1_767_225_600_000),
            window_end_ms: Some(1_767_225_660_000),
            orders: OrderCounts {
                created: 4,
                confirmed: 3,
                rejected: 1,
                cancelled: 0,
                payment_failed: 0,
            },
            revenue: vec![GroupAmount {
                group: "USD".to_string(),
                amount: example_money(14361, "USD"),
            }],
            revenue_by_category: vec![GroupAmount {
                group: "category:kitchen:USD".to_string(),
                amount: example_money(14361, "USD"),
            }],
            payment_success_rate: Some(1.0),
            top_skus: vec![SkuUnits {
                sku: "MUG-BLUE".to_string(),
                units: 6,
            }],
            stock_low: 0,
        }
    }
}

#[derive(Debug, ApiResponse)]
enum SummaryResponse {
    /// The summary (empty figures before any window of this size has closed).
    #[oai(status = 200)]
    Ok(Json<AnalyticsSummary>),
}

/// Window sizes the summary reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, poem_openapi::Enum)]
#[oai(rename_all = "lowercase")]
pub enum SummaryWindow {
    /// The 1-minute tumbling windows.
    Minute,
    /// The 1-hour hopping windows (every 10 minutes).
    Hour,
}

/// The latest value of every window in the tail of `analytics-aggregates` (each window's
/// latest record wins), by window key.
fn latest_windows(state: &AppState) -> ApiResult<BTreeMap<String, WindowAggregate>> {
    let decoder = envelope_serde::<AnalyticsAggregate>();
    let mut latest = BTreeMap::new();
    for partition in 0..state.partitions(ANALYTICS_AGGREGATES) {
        let offsets = state
            .log
            .offsets(ANALYTICS_AGGREGATES, partition)
            .map_err(|error| ApiError::internal("reading analytics offsets", error))?;
        let from = offsets
            .end
            .saturating_sub(TAIL_RECORDS)
            .max(offsets.log_start);
        let records = state
            .log
            .fetch(ANALYTICS_AGGREGATES, partition, from, TAIL_RECORDS as usize)
            .map_err(|error| ApiError::internal("reading analytics", error))?;
        for stored in records {
            let Ok((_, envelope)) = decoder.decode(&stored.record) else {
                continue;
            };
            let AnalyticsAggregate::WindowAggregate(aggregate) = envelope.payload;
            latest.insert(aggregate.window_key.clone(), aggregate);
        }
    }
    Ok(latest)
}

fn metric_name(metric: AnalyticsMetric) -> String {
    serde_json::to_value(metric)
        .ok()
        .and_then(|value| value.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// The summary of the most recent closed window of `size_ms` among `windows`.
pub fn summarize(windows: &BTreeMap<String, WindowAggregate>, size_ms: i64) -> AnalyticsSummary {
    let of_size = || {
        windows.values().filter(move |window| {
            window.is_final
                && window.window_end.as_unix_millis() - window.window_start.as_unix_millis()
                    == size_ms
        })
    };
    let start = of_size()
        .map(|window| window.window_start.as_unix_millis())
        .max();
    let mut summary = AnalyticsSummary {
        window_start_ms: start,
        window_end_ms: start.map(|start| start + size_ms),
        orders: OrderCounts::default(),
        revenue: Vec::new(),
        revenue_by_category: Vec::new(),
        payment_success_rate: None,
        top_skus: Vec::new(),
        stock_low: 0,
    };
    let Some(start) = start else {
        return summary;
    };
    let (mut succeeded, mut failed) = (0u64, 0u64);
    let mut units: std::collections::BTreeMap<String, i64> = Default::default();
    for window in of_size().filter(|window| window.window_start.as_unix_millis() == start) {
        let group = window_key_dimension(&window.window_key);
        match (window.metric, group.as_str()) {
            (AnalyticsMetric::OrdersCreated, "all") => summary.orders.created = window.count,
            (AnalyticsMetric::OrdersConfirmed, "all") => summary.orders.confirmed = window.count,
            (AnalyticsMetric::OrdersRejected, "all") => summary.orders.rejected = window.count,
            (AnalyticsMetric::OrdersCancelled, "all") => summary.orders.cancelled = window.count,
            (AnalyticsMetric::OrdersPaymentFailed, "all") => {
                summary.orders.payment_failed = window.count
            }
            (AnalyticsMetric::PaymentsSucceeded, "all") => succeeded = window.count,
            (AnalyticsMetric::PaymentsFailed, "all") => failed = window.count,
            (AnalyticsMetric::StockLow, "all") => summary.stock_low = window.count,
            (AnalyticsMetric::Revenue, group) => {
                if let Some(amount) = &window.amount {
                    let entry = GroupAmount {
                        group: group.to_string(),
                        amount: MoneyDto::from(amount),
                    };
                    if group.starts_with("category:") {
                        summary.revenue_by_category.push(entry);
                    } else {
                        summary.revenue.push(entry);
                    }
                }
            }
            (AnalyticsMetric::UnitsSold, group) => {
                if let Some(sku) = group.strip_prefix("sku:") {
                    *units.entry(sku.to_string()).or_default() += window.count as i64;
                }
            }
            (AnalyticsMetric::UnitsReturned, group) => {
                if let Some(sku) = group.strip_prefix("sku:") {
                    *units.entry(sku.to_string()).or_default() -= window.count as i64;
                }
            }
            _ => {}
        }
    }
    // Net of units refunded before shipping.
    summary.top_skus = units
        .into_iter()
        .filter(|(_, units)| *units > 0)
        .map(|(sku, units)| SkuUnits {
            sku,
            units: units as u64,
        })
        .collect();
    if succeeded + failed > 0 {
        summary.payment_success_rate = Some(succeeded as f64 / (succeeded + failed) as f64);
    }
    summary
        .top_skus
        .sort_by(|left, right| right.units.cmp(&left.units).then(left.sku.cmp(&right.sku)));
    summary.top_skus.truncate(10);
    summary
}

/// The analytics operations.
#[derive(Debug)]
pub struct AnalyticsApi;

#[OpenApi(prefix_path = "/api/v1/analytics", tag = "ApiTags::Analytics")]
impl AnalyticsApi {
    /// Windowed aggregates: 1-minute tumbling and 1-hour hopping windows (admin).
    #[oai(path = "/aggregates", method = "get", operation_id = "listAggregates")]
    async fn aggregates(
        &self,
        state: Data<&Arc<AppState>>,
        auth: BearerAuth,
        /// Only this metric, e.g. `revenue`.
        metric: Query<Option<String>>,
        /// Only final (closed) windows.
        final_only: Query<Option<bool>>,
        /// Page size, 1 to 100 (the default maximum; see `api.max-page-size`).
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<Option<u32>>,
    ) -> ApiResult<AggregateResponse> {
        auth.0.require_admin()?;
        let limit = page_size(&state, limit.0)? as usize;
        let mut latest: BTreeMap<String, AggregateView> = BTreeMap::new();
        for (window_key, aggregate) in latest_windows(&state)? {
            let metric_name = metric_name(aggregate.metric);
            if metric
                .0
                .as_ref()
                .is_some_and(|wanted| wanted != &metric_name)
            {
                continue;
            }
            if final_only.0 == Some(true) && !aggregate.is_final {
                continue;
            }
            latest.insert(
                window_key,
                AggregateView {
                    group: window_key_dimension(&aggregate.window_key),
                    window_key: aggregate.window_key,
                    metric: metric_name,
                    window_start_ms: aggregate.window_start.as_unix_millis(),
                    window_end_ms: aggregate.window_end.as_unix_millis(),
                    count: aggregate.count,
                    amount: aggregate.amount.as_ref().map(MoneyDto::from),
                    is_final: aggregate.is_final,
                },
            );
        }
        let mut items: Vec<AggregateView> = latest.into_values().collect();
        items.sort_by(|left, right| {
            right
                .window_start_ms
                .cmp(&left.window_start_ms)
                .then_with(|| left.window_key.cmp(&right.window_key))
        });
        items.truncate(limit);
        Ok(AggregateResponse::Ok(Json(AggregatePage { items })))
    }

    /// The most recent closed window of a size, summarized: orders by outcome, revenue by
    /// currency and by category, the payment success rate, the top SKUs by units sold, and
    /// StockLow alerts (admin).
    #[oai(
        path = "/summary",
        method = "get",
        operation_id = "getAnalyticsSummary"
    )]
    async fn summary(
        &self,
        state: Data<&Arc<AppState>>,
        auth: BearerAuth,
        /// `minute` (default) or `hour`.
        window: Query<Option<SummaryWindow>>,
    ) -> ApiResult<SummaryResponse> {
        auth.0.require_admin()?;
        let size_ms = match window.0.unwrap_or(SummaryWindow::Minute) {
            SummaryWindow::Minute => WINDOW_SHAPES[0].size_ms,
            SummaryWindow::Hour => WINDOW_SHAPES[1].size_ms,
        };
        Ok(SummaryResponse::Ok(Json(summarize(
            &latest_windows(&state)?,
            size_ms,
        ))))
    }
}

#[cfg(test)]
mod tests {
    use orderflow_processors::analytics::window_key;
    use orderflow_schemas::currency::Currency;
    use orderflow_schemas::money::Money;
    use orderflow_schemas::time::Timestamp;

    use super::*;

    fn window(
        metric: AnalyticsMetric,
        group: &str,
        start: i64,
        count: u64,
        amount: Option<i64>,
    ) -> WindowAggregate {
        WindowAggregate {
            window_key: window_key(&metric_name(metric), group, 60_000, start),
            metric,
            window_start: Timestamp::from_unix_millis(start),
            window_end: Timestamp::from_unix_millis(start + 60_000),
            count,
            amount: amount.map(|minor| Money::new(minor, Currency::parse("USD").unwrap())),
            is_final: true,
        }
    }

    #[test]
    fn the_summary_derives_its_figures_from_the_latest_closed_window() {
        let windows: BTreeMap<String, WindowAggregate> = [
            // An older window is ignored.
            window(AnalyticsMetric::OrdersConfirmed, "all", 0, 99, None),
            window(AnalyticsMetric::OrdersConfirmed, "all", 60_000, 3, None),
            window(AnalyticsMetric::OrdersRejected, "all", 60_000, 1, None),
            window(AnalyticsMetric::PaymentsSucceeded, "all", 60_000, 3, None),
            window(AnalyticsMetric::PaymentsFailed, "all", 60_000, 1, None),
            window(AnalyticsMetric::Revenue, "USD", 60_000, 3, Some(4_500)),
            window(
                AnalyticsMetric::Revenue,
                "category:Home & Garden:USD",
                60_000,
                2,
                Some(3_000),
            ),
            window(AnalyticsMetric::UnitsSold, "sku:MUG", 60_000, 2, None),
            window(AnalyticsMetric::UnitsSold, "sku:PEN", 60_000, 5, None),
            // Refunded before shipping: net units.
            window(AnalyticsMetric::UnitsReturned, "sku:PEN", 60_000, 4, None),
            window(AnalyticsMetric::UnitsReturned, "sku:CUP", 60_000, 1, None),
            window(AnalyticsMetric::StockLow, "all", 60_000, 1, None),
        ]
        .into_iter()
        .map(|window| (window.window_key.clone(), window))
        .collect();
        let summary = summarize(&windows, 60_000);
        assert_eq!(summary.window_start_ms, Some(60_000));
        assert_eq!(summary.orders.confirmed, 3);
        assert_eq!(summary.orders.rejected, 1);
        assert_eq!(summary.payment_success_rate, Some(0.75));
        assert_eq!(summary.revenue.len(), 1);
        assert_eq!(summary.revenue[0].amount.amount_minor, 4_500);
        assert_eq!(
            summary.revenue_by_category[0].group, "category:Home & Garden:USD",
            "percent-decoded"
        );
        let top: Vec<(&str, u64)> = summary
            .top_skus
            .iter()
            .map(|sku| (sku.sku.as_str(), sku.units))
            .collect();
        assert_eq!(top, vec![("MUG", 2), ("PEN", 1)]);
        assert_eq!(summary.stock_low, 1);
        // No hour window has closed: empty figures, no rate.
        let hours = summarize(&windows, 3_600_000);
        assert_eq!(hours.window_start_ms, None);
        assert_eq!(hours.payment_success_rate, None);
    }
}
