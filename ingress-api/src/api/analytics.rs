//! `/api/v1/analytics`: the windowed aggregates of the analytics topology, read from the tail
//! of `analytics-aggregates` (each window's latest value wins).

use std::collections::BTreeMap;
use std::sync::Arc;

use orderflow_processors::wire::envelope_serde;
use orderflow_runtime::RecordDecoder;
use orderflow_schemas::catalog::ANALYTICS_AGGREGATES;
use orderflow_schemas::messages::analytics::AnalyticsAggregate;
use poem::web::Data;
use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::{ApiTags, BearerAuth, MoneyDto, page_size};
use crate::problem::{ApiError, ApiResult};
use crate::state::AppState;

/// One window of one metric.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct AggregateView {
    /// `metric/group/window/start`.
    pub window_key: String,
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

/// Aggregates, newest windows first.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct AggregatePage {
    pub items: Vec<AggregateView>,
}

#[derive(Debug, ApiResponse)]
enum AggregateResponse {
    /// The most recent windows.
    #[oai(status = 200)]
    Ok(Json<AggregatePage>),
}

/// Records read from the end of each partition.
const TAIL_RECORDS: u64 = 2_000;

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
        let decoder = envelope_serde::<AnalyticsAggregate>();
        let mut latest: BTreeMap<String, AggregateView> = BTreeMap::new();
        let partitions = state.partitions(ANALYTICS_AGGREGATES);
        for partition in 0..partitions {
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
                let metric_name = serde_json::to_value(aggregate.metric)
                    .ok()
                    .and_then(|value| value.as_str().map(str::to_string))
                    .unwrap_or_default();
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
                    aggregate.window_key.clone(),
                    AggregateView {
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
}
