//! `/api/v1/inventory`: administrators restock and adjust through `inventory-commands` and read
//! the inventory processor's stock store.

use crate::api::text::Text;
use std::sync::Arc;

use orderflow_processors::inventory::{STOCK_STORE, StockLevel};
use orderflow_schemas::catalog::INVENTORY_COMMANDS;
use orderflow_schemas::codes::Sku;
use orderflow_schemas::messages::inventory_commands::{Adjust, InventoryCommand, Restock};
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::catalog::{AcceptedResponse, parse_sku};
use super::{
    Accepted, ApiTags, BearerAuth, await_position, decode_cursor, encode_cursor, page_size,
    submit_command,
};
use crate::problem::{ApiError, ApiResult};
use crate::state::AppState;

/// Stock of one SKU.
#[derive(Debug, Object)]
#[oai(example, skip_serializing_if_is_none)]
pub struct StockView {
    pub sku: String,
    /// Units in the warehouse.
    pub on_hand: u32,
    /// Units held for orders in flight.
    pub reserved: u32,
    /// `on_hand - reserved`: what new orders can take.
    pub available: u32,
    /// Units sold over the SKU's life.
    pub committed: u32,
    /// Whether available stock is at or below the product's threshold.
    pub low: bool,
}

impl poem_openapi::types::Example for StockView {
    fn example() -> Self {
        Self {
            sku: "MUG-BLUE".to_string(),
            on_hand: 40,
            reserved: 3,
            available: 37,
            committed: 12,
            low: false,
        }
    }
}

impl StockView {
    fn new(sku: &str, level: &StockLevel) -> Self {
        Self {
            sku: sku.to_string(),
            on_hand: level.on_hand,
            reserved: level.reserved,
            available: level.available(),
            committed: level.committed,
            low: level.low,
        }
    }
}

/// A page of SKUs low on stock.
#[derive(Debug, Object)]
#[oai(example, skip_serializing_if_is_none)]
pub struct StockPage {
    pub items: Vec<StockView>,
    pub next_cursor: Option<String>,
}

impl poem_openapi::types::Example for StockPage {
    fn example() -> Self {
        Self {
            items: vec![StockView::example()],
            next_cursor: None,
        }
    }
}

/// Goods received.
#[derive(Debug, Object)]
#[oai(example, skip_serializing_if_is_none)]
pub struct RestockRequest {
    /// Units received; at least 1.
    #[oai(validator(minimum(value = "1"), maximum(value = "4294967295")))]
    pub quantity: u32,
}

impl poem_openapi::types::Example for RestockRequest {
    fn example() -> Self {
        Self { quantity: 100 }
    }
}

/// A correction of on-hand stock.
#[derive(Debug, Object)]
#[oai(example, skip_serializing_if_is_none)]
pub struct AdjustRequest {
    /// Units to add (positive) or remove (negative); never zero.
    #[oai(validator(minimum(value = "-4294967295"), maximum(value = "4294967295")))]
    pub delta: i64,
    /// Why, for the audit trail.
    #[oai(validator(max_length = 500))]
    pub reason: Text,
}

impl poem_openapi::types::Example for AdjustRequest {
    fn example() -> Self {
        Self {
            delta: -2,
            reason: "two broken in the warehouse".into(),
        }
    }
}

#[derive(Debug, ApiResponse)]
enum StockResponse {
    /// The SKU's stock.
    #[oai(status = 200)]
    Ok(Json<StockView>),
}

#[derive(Debug, ApiResponse)]
enum StockPageResponse {
    /// SKUs low on stock, by SKU.
    #[oai(status = 200)]
    Ok(Json<StockPage>),
}

fn stock_location(sku: &Sku) -> String {
    format!("/api/v1/inventory/{sku}")
}

async fn submit(
    state: &AppState,
    command: InventoryCommand,
    sku: &Sku,
) -> ApiResult<AcceptedResponse> {
    let position = submit_command(state, INVENTORY_COMMANDS, command).await?;
    Ok(AcceptedResponse::Accepted(
        Json(Accepted {
            position: position.token(),
        }),
        stock_location(sku),
    ))
}

/// The inventory operations (all for administrators).
#[derive(Debug)]
pub struct InventoryApi;

#[OpenApi(prefix_path = "/api/v1/inventory", tag = "ApiTags::Inventory")]
impl InventoryApi {
    /// SKUs whose available stock is at or below their threshold (admin).
    #[oai(path = "/low-stock", method = "get", operation_id = "listLowStock")]
    async fn low_stock(
        &self,
        state: Data<&Arc<AppState>>,
        auth: BearerAuth,
        /// Page size, 1 to 100 (the default maximum; see `api.max-page-size`).
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<Option<u32>>,
        cursor: Query<Option<String>>,
    ) -> ApiResult<StockPageResponse> {
        auth.0.require_admin()?;
        let limit = page_size(&state, limit.0)? as usize;
        let mut after = decode_cursor(cursor.0.as_deref())?;
        let mut items = Vec::new();
        let mut next_cursor = None;
        'pages: loop {
            let chunk = state
                .topologies
                .fulfillment
                .scan_prefix::<String, StockLevel>(STOCK_STORE, b"", after.as_deref(), false, 512)
                .map_err(|error| ApiError::internal("reading the stock view", error))?;
            let exhausted = chunk.len() < 512;
            for (key, sku, level) in chunk {
                after = Some(key.clone());
                if level.low {
                    items.push(StockView::new(&sku, &level));
                    if items.len() == limit {
                        next_cursor = Some(encode_cursor(&key));
                        break 'pages;
                    }
                }
            }
            if exhausted {
                break;
            }
        }
        Ok(StockPageResponse::Ok(Json(StockPage {
            items,
            next_cursor,
        })))
    }

    /// Stock of one SKU (admin).
    #[oai(path = "/:sku", method = "get", operation_id = "getStock")]
    async fn get_stock(
        &self,
        state: Data<&Arc<AppState>>,
        auth: BearerAuth,
        sku: Path<String>,
        /// A position token from a restock or adjustment, to read it.
        position: Query<Option<String>>,
    ) -> ApiResult<StockResponse> {
        auth.0.require_admin()?;
        let sku = parse_sku(&sku.0)?;
        await_position(
            &state,
            &state.topologies.fulfillment,
            &[INVENTORY_COMMANDS],
            position.0.as_deref(),
        )
        .await?;
        let level = state
            .topologies
            .fulfillment
            .get::<String, StockLevel>(STOCK_STORE, &sku.to_string())
            .map_err(|error| ApiError::internal("reading the stock view", error))?
            .ok_or_else(|| ApiError::not_found(format!("no stock recorded for SKU {sku}")))?;
        Ok(StockResponse::Ok(Json(StockView::new(
            sku.as_str(),
            &level,
        ))))
    }

    /// Add received units to on-hand stock (admin).
    #[oai(path = "/:sku/restock", method = "post", operation_id = "restock")]
    async fn restock(
        &self,
        state: Data<&Arc<AppState>>,
        auth: BearerAuth,
        sku: Path<String>,
        body: Json<RestockRequest>,
    ) -> ApiResult<AcceptedResponse> {
        auth.0.require_admin()?;
        let sku = parse_sku(&sku.0)?;
        let command = InventoryCommand::Restock(Restock {
            sku: sku.clone(),
            quantity: body.0.quantity,
        });
        submit(&state, command, &sku).await
    }

    /// Correct on-hand stock; refused by the inventory processor if it would drop below what
    /// is reserved (admin).
    #[oai(path = "/:sku/adjust", method = "post", operation_id = "adjustStock")]
    async fn adjust(
        &self,
        state: Data<&Arc<AppState>>,
        auth: BearerAuth,
        sku: Path<String>,
        body: Json<AdjustRequest>,
    ) -> ApiResult<AcceptedResponse> {
        auth.0.require_admin()?;
        let sku = parse_sku(&sku.0)?;
        let command = InventoryCommand::Adjust(Adjust {
            sku: sku.clone(),
            delta: body.0.delta,
            reason: body.0.reason.into(),
        });
        submit(&state, command, &sku).await
    }
}
