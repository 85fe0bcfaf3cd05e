//! `/api/v1/products` and `/api/v1/coupons`: administrators change the catalog through
//! `catalog-commands`; everyone reads the catalog view (the catalog topology's product store).

use crate::api::text::Text;
use std::sync::Arc;

use orderflow_processors::catalog::{COUPON_STORE, COUPONS_TABLE, PRODUCT_STORE, coupon_store_key};
use orderflow_schemas::catalog::CATALOG_COMMANDS;
use orderflow_schemas::codes::{CouponCode, Sku};
use orderflow_schemas::ids::CouponId;
use orderflow_schemas::messages::catalog_commands::{
    CatalogCommand, ChangePrice, CouponKind, Discontinue, UpsertCoupon, UpsertProduct,
};
use orderflow_schemas::messages::catalog_events::{CouponUpserted, Product};
use orderflow_schemas::time::Timestamp;
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};

use super::{
    Accepted, ApiTags, BearerAuth, MoneyDto, await_position, decode_cursor, encode_cursor,
    page_size, submit_command,
};
use crate::api::example_money;
use crate::problem::{ApiError, ApiResult};
use crate::state::AppState;

/// A product as the catalog shows it.
#[derive(Debug, Clone, Object)]
#[oai(example, skip_serializing_if_is_none)]
pub struct ProductView {
    pub sku: String,
    pub name: String,
    pub description: String,
    pub category: String,
    pub price: MoneyDto,
    /// Whether it can be ordered now.
    pub active: bool,
    /// Discontinued for good.
    pub discontinued: bool,
    /// Available stock at or below which the product counts as low on stock.
    pub low_stock_threshold: u32,
}

impl poem_openapi::types::Example for ProductView {
    fn example() -> Self {
        Self {
            sku: "MUG-BLUE".to_string(),
            name: "Blue mug".to_string(),
            description: "350 ml, dishwasher safe".to_string(),
            category: "kitchen".to_string(),
            price: example_money(1999, "USD"),
            active: true,
            discontinued: false,
            low_stock_threshold: 5,
        }
    }
}

impl From<&Product> for ProductView {
    fn from(product: &Product) -> Self {
        Self {
            sku: product.sku.to_string(),
            name: product.name.clone(),
            description: product.description.clone(),
            category: product.category.clone(),
            price: MoneyDto::from(&product.price),
            active: product.active,
            discontinued: product.discontinued,
            low_stock_threshold: product.low_stock_threshold,
        }
    }
}

/// A page of products.
#[derive(Debug, Object)]
#[oai(example, skip_serializing_if_is_none)]
pub struct ProductPage {
    pub items: Vec<ProductView>,
    /// Pass as `?cursor=` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

impl poem_openapi::types::Example for ProductPage {
    fn example() -> Self {
        Self {
            items: vec![ProductView::example()],
            next_cursor: None,
        }
    }
}

/// A new product.
#[derive(Debug, Object)]
#[oai(example, skip_serializing_if_is_none)]
pub struct NewProduct {
    /// Upper-case letters, digits, `-` and `_`, 1 to 64 characters.
    #[oai(validator(max_length = 64))]
    pub sku: Text,
    #[oai(validator(max_length = 200))]
    pub name: Text,
    #[oai(default, validator(max_length = 5000))]
    pub description: Text,
    #[oai(validator(max_length = 200))]
    pub category: Text,
    pub price: MoneyDto,
    /// Whether it can be ordered at once; `true` when absent.
    #[oai(nullable)]
    pub active: Option<bool>,
    /// Low-stock threshold; 10 when absent.
    #[oai(
        nullable,
        validator(minimum(value = "0"), maximum(value = "4294967295"))
    )]
    pub low_stock_threshold: Option<u32>,
}

impl poem_openapi::types::Example for NewProduct {
    fn example() -> Self {
        Self {
            sku: "MUG-BLUE".into(),
            name: "Blue mug".into(),
            description: "350 ml, dishwasher safe".into(),
            category: "kitchen".into(),
            price: MoneyDto {
                amount_minor: 1299,
                currency: "USD".into(),
            },
            active: Some(true),
            low_stock_threshold: Some(10),
        }
    }
}

/// Every attribute of an existing product.
#[derive(Debug, Object)]
#[oai(example, skip_serializing_if_is_none)]
pub struct ProductUpdate {
    #[oai(validator(max_length = 200))]
    pub name: Text,
    #[oai(default, validator(max_length = 5000))]
    pub description: Text,
    #[oai(validator(max_length = 200))]
    pub category: Text,
    pub price: MoneyDto,
    pub active: bool,
    #[oai(validator(minimum(value = "0"), maximum(value = "4294967295")))]
    pub low_stock_threshold: u32,
}

impl poem_openapi::types::Example for ProductUpdate {
    fn example() -> Self {
        Self {
            name: "Blue mug".into(),
            description: "350 ml, dishwasher safe".into(),
            category: "kitchen".into(),
            price: MoneyDto {
                amount_minor: 1999,
                currency: "USD".into(),
            },
            active: true,
            low_stock_threshold: 5,
        }
    }
}

/// A new unit price.
#[derive(Debug, Object)]
#[oai(example, skip_serializing_if_is_none)]
pub struct PriceChange {
    pub price: MoneyDto,
}

impl poem_openapi::types::Example for PriceChange {
    fn example() -> Self {
        Self {
            price: MoneyDto {
                amount_minor: 1799,
                currency: "USD".into(),
            },
        }
    }
}

/// How a coupon discounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum CouponKindDto {
    /// `basis_points` of the subtotal (100 = 1 %).
    Percentage,
    /// `amount` off.
    Fixed,
}

/// A coupon to create or replace.
#[derive(Debug, Object)]
#[oai(example, skip_serializing_if_is_none)]
pub struct CouponInput {
    /// What customers type: letters and digits.
    #[oai(validator(max_length = 32))]
    pub code: Text,
    pub kind: CouponKindDto,
    /// For `percentage`: 1..=10000.
    #[oai(nullable, validator(minimum(value = "1"), maximum(value = "10000")))]
    pub basis_points: Option<u32>,
    /// For `fixed`: the amount off.
    #[oai(nullable)]
    pub amount: Option<MoneyDto>,
    /// Unix milliseconds, inclusive.
    #[oai(validator(minimum(value = "0"), maximum(value = "253402300799999")))]
    pub valid_from_ms: i64,
    /// Unix milliseconds, exclusive.
    #[oai(validator(minimum(value = "0"), maximum(value = "253402300799999")))]
    pub valid_until_ms: i64,
    /// Smallest subtotal the coupon applies to.
    #[oai(nullable)]
    pub minimum_basket: Option<MoneyDto>,
}

impl poem_openapi::types::Example for CouponInput {
    fn example() -> Self {
        Self {
            code: "SPRING25".into(),
            kind: CouponKindDto::Percentage,
            basis_points: Some(2500),
            amount: None,
            valid_from_ms: 1_767_225_600_000,
            valid_until_ms: 1_769_904_000_000,
            minimum_basket: Some(MoneyDto {
                amount_minor: 5000,
                currency: "USD".into(),
            }),
        }
    }
}

/// A coupon accepted for the catalog.
#[derive(Debug, Object)]
#[oai(example, skip_serializing_if_is_none)]
pub struct CouponAccepted {
    pub coupon_id: String,
    pub position: String,
}

impl poem_openapi::types::Example for CouponAccepted {
    fn example() -> Self {
        Self {
            coupon_id: "019ac5e0-0a1b-7c2d-8e3f-4a5b6c7d8e9f".to_string(),
            position: "b3JkZXItY29tbWFuZHM6MToxMjM".to_string(),
        }
    }
}

#[derive(Debug, ApiResponse)]
pub enum AcceptedResponse {
    /// Accepted: the catalog applies it asynchronously; read with `?position=` to see it.
    #[oai(status = 202)]
    Accepted(Json<Accepted>, #[oai(header = "Location")] String),
}

#[derive(Debug, ApiResponse)]
enum CouponResponse {
    /// Accepted: the catalog applies it asynchronously; read it at `Location` with
    /// `?position=`.
    #[oai(status = 202)]
    Accepted(Json<CouponAccepted>, #[oai(header = "Location")] String),
}

/// A coupon's current definition.
#[derive(Debug, Object)]
#[oai(example, skip_serializing_if_is_none)]
pub struct CouponView {
    pub coupon_id: String,
    pub code: String,
    pub kind: CouponKindDto,
    /// For `percentage`.
    pub basis_points: Option<u32>,
    /// For `fixed`.
    pub amount: Option<MoneyDto>,
    /// Unix milliseconds, inclusive.
    pub valid_from_ms: i64,
    /// Unix milliseconds, exclusive.
    pub valid_until_ms: i64,
    pub minimum_basket: Option<MoneyDto>,
    /// Whether it applies now (the validity window contains the present).
    pub active: bool,
}

impl poem_openapi::types::Example for CouponView {
    fn example() -> Self {
        Self {
            coupon_id: "019ac5e0-0a1b-7c2d-8e3f-4a5b6c7d8e9f".to_string(),
            code: "SPRING25".to_string(),
            kind: CouponKindDto::Percentage,
            basis_points: Some(2500),
            amount: None,
            valid_from_ms: 1_767_225_600_000,
            valid_until_ms: 1_769_904_000_000,
            minimum_basket: Some(example_money(5000, "USD")),
            active: true,
        }
    }
}

impl CouponView {
    fn new(coupon: &CouponUpserted, now_ms: i64) -> Self {
        let (kind, basis_points, amount) = match &coupon.kind {
            CouponKind::Percentage { basis_points } => {
                (CouponKindDto::Percentage, Some(*basis_points), None)
            }
            CouponKind::Fixed { amount } => {
                (CouponKindDto::Fixed, None, Some(MoneyDto::from(amount)))
            }
        };
        let (from, until) = (
            coupon.valid_from.as_unix_millis(),
            coupon.valid_until.as_unix_millis(),
        );
        Self {
            coupon_id: coupon.coupon_id.to_string(),
            code: coupon.code.to_string(),
            kind,
            basis_points,
            amount,
            valid_from_ms: from,
            valid_until_ms: until,
            minimum_basket: coupon.minimum_basket.as_ref().map(MoneyDto::from),
            active: from <= now_ms && now_ms < until,
        }
    }
}

/// A page of coupons, by code.
#[derive(Debug, Object)]
#[oai(example, skip_serializing_if_is_none)]
pub struct CouponPage {
    pub items: Vec<CouponView>,
    pub next_cursor: Option<String>,
}

impl poem_openapi::types::Example for CouponPage {
    fn example() -> Self {
        Self {
            items: vec![CouponView::example()],
            next_cursor: None,
        }
    }
}

#[derive(Debug, ApiResponse)]
enum CouponViewResponse {
    /// The coupon.
    #[oai(status = 200)]
    Ok(Json<CouponView>),
}

#[derive(Debug, ApiResponse)]
enum CouponPageResponse {
    /// A page of coupons, by code, expired ones included.
    #[oai(status = 200)]
    Ok(Json<CouponPage>),
}

fn parse_coupon_code(code: &str) -> ApiResult<CouponCode> {
    CouponCode::parse(code)
        .map_err(|error| ApiError::unprocessable(Some("code".to_string()), error.to_string()))
}

fn coupon_location(code: &CouponCode) -> String {
    format!("/api/v1/coupons/{code}")
}

/// Entry `key` of the catalog view's `store`, once the write behind `position` (its creation,
/// say) is visible, so a client that just wrote it can act on it at once; 404 with `missing`
/// if there is none.
async fn catalog_entry<V: 'static>(
    state: &AppState,
    store: &str,
    key: &str,
    position: Option<&str>,
    missing: impl FnOnce() -> String,
) -> ApiResult<V> {
    await_position(
        state,
        &state.topologies.catalog,
        &[CATALOG_COMMANDS],
        position,
    )
    .await?;
    state
        .topologies
        .catalog
        .get::<String, V>(store, &key.to_string())
        .map_err(|error| ApiError::internal("reading the catalog view", error))?
        .ok_or_else(|| ApiError::not_found(missing()))
}

/// The coupon `code` names (see [`catalog_entry`]). A coupon defined before the catalog kept
/// coupons in its own store is found in the saga's `coupons` table instead.
async fn existing_coupon(
    state: &AppState,
    code: &CouponCode,
    position: Option<&str>,
) -> ApiResult<CouponUpserted> {
    let kept = catalog_entry(
        state,
        COUPON_STORE,
        &coupon_store_key(code),
        position,
        || format!("no coupon {code}"),
    )
    .await;
    match kept {
        Err(not_found) => state
            .topologies
            .fulfillment
            .global_table_get::<String, CouponUpserted>(COUPONS_TABLE, &code.to_string())
            .map_err(|error| ApiError::internal("reading the coupons table", error))?
            .ok_or(not_found),
        found => found,
    }
}

#[derive(Debug, ApiResponse)]
enum ProductResponse {
    /// The product.
    #[oai(status = 200)]
    Ok(Json<ProductView>),
}

#[derive(Debug, ApiResponse)]
enum ProductPageResponse {
    /// A page of orderable products, by SKU.
    #[oai(status = 200)]
    Ok(Json<ProductPage>),
}

pub fn parse_sku(sku: &str) -> ApiResult<Sku> {
    Sku::parse(sku)
        .map_err(|error| ApiError::unprocessable(Some("sku".to_string()), error.to_string()))
}

fn product_location(sku: &Sku) -> String {
    format!("/api/v1/products/{sku}")
}

async fn current_product(state: &AppState, sku: &Sku) -> ApiResult<Option<Product>> {
    state
        .topologies
        .catalog
        .get::<String, Product>(PRODUCT_STORE, &sku.to_string())
        .map_err(|error| ApiError::internal("reading the catalog view", error))
}

/// The product a change applies to (see [`catalog_entry`]).
async fn existing_product(
    state: &AppState,
    sku: &Sku,
    position: Option<&str>,
) -> ApiResult<Product> {
    catalog_entry(state, PRODUCT_STORE, sku.as_ref(), position, || {
        format!("no product with SKU {sku}")
    })
    .await
}

async fn submit(
    state: &AppState,
    command: CatalogCommand,
    location: String,
) -> ApiResult<AcceptedResponse> {
    let position = submit_command(state, CATALOG_COMMANDS, command).await?;
    Ok(AcceptedResponse::Accepted(
        Json(Accepted {
            position: position.token(),
        }),
        location,
    ))
}

/// The catalog operations.
#[derive(Debug)]
pub struct CatalogApi;

#[OpenApi(tag = "ApiTags::Catalog")]
impl CatalogApi {
    /// List orderable products by SKU, optionally by category and unit price range.
    #[oai(
        path = "/api/v1/products",
        method = "get",
        operation_id = "listProducts"
    )]
    async fn list_products(
        &self,
        state: Data<&Arc<AppState>>,
        /// Only this category.
        category: Query<Option<String>>,
        /// Smallest unit price, in minor units.
        #[oai(validator(minimum(value = "0"), maximum(value = "1000000000000000")))]
        min_price: Query<Option<i64>>,
        /// Largest unit price, in minor units.
        #[oai(validator(minimum(value = "0"), maximum(value = "1000000000000000")))]
        max_price: Query<Option<i64>>,
        /// Page size, 1 to 100 (the default maximum; see `api.max-page-size`).
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<Option<u32>>,
        /// From the previous page's `next_cursor`.
        cursor: Query<Option<String>>,
    ) -> ApiResult<ProductPageResponse> {
        let limit = page_size(&state, limit.0)? as usize;
        let mut after = decode_cursor(cursor.0.as_deref())?;
        let mut items = Vec::new();
        let mut next_cursor = None;
        // Filtering happens after reading, so read in chunks until the page is full.
        'pages: loop {
            let chunk = state
                .topologies
                .catalog
                .scan_prefix::<String, Product>(
                    PRODUCT_STORE,
                    b"",
                    after.as_deref(),
                    false,
                    limit * 4,
                )
                .map_err(|error| ApiError::internal("reading the catalog view", error))?;
            let exhausted = chunk.len() < limit * 4;
            for (key, _, product) in chunk {
                after = Some(key.clone());
                let wanted = product.is_orderable()
                    && category
                        .0
                        .as_ref()
                        .is_none_or(|category| &product.category == category)
                    && min_price
                        .0
                        .is_none_or(|min| product.price.amount_minor >= min)
                    && max_price
                        .0
                        .is_none_or(|max| product.price.amount_minor <= max);
                if wanted {
                    items.push(ProductView::from(&product));
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
        Ok(ProductPageResponse::Ok(Json(ProductPage {
            items,
            next_cursor,
        })))
    }

    /// One product, discontinued ones included.
    #[oai(
        path = "/api/v1/products/:sku",
        method = "get",
        operation_id = "getProduct"
    )]
    async fn get_product(
        &self,
        state: Data<&Arc<AppState>>,
        sku: Path<String>,
        /// A position token from a write, to read that write.
        position: Query<Option<String>>,
    ) -> ApiResult<ProductResponse> {
        let sku = parse_sku(&sku.0)?;
        let product = existing_product(&state, &sku, position.0.as_deref()).await?;
        Ok(ProductResponse::Ok(Json(ProductView::from(&product))))
    }

    /// Create a product (admin).
    #[oai(
        path = "/api/v1/products",
        method = "post",
        operation_id = "createProduct"
    )]
    async fn create_product(
        &self,
        state: Data<&Arc<AppState>>,
        auth: BearerAuth,
        body: Json<NewProduct>,
    ) -> ApiResult<AcceptedResponse> {
        auth.0.require_admin()?;
        let body = body.0;
        let sku = parse_sku(&body.sku)?;
        if current_product(&state, &sku).await?.is_some() {
            return Err(ApiError::conflict(format!(
                "product {sku} exists; update it with PUT {}",
                product_location(&sku)
            )));
        }
        let command = CatalogCommand::UpsertProduct(UpsertProduct {
            sku: sku.clone(),
            name: body.name.into(),
            description: body.description.into(),
            category: body.category.into(),
            price: body.price.to_money("price")?,
            active: body.active.unwrap_or(true),
            low_stock_threshold: body.low_stock_threshold.unwrap_or(10),
        });
        submit(&state, command, product_location(&sku)).await
    }

    /// Replace a product's attributes (admin).
    #[oai(
        path = "/api/v1/products/:sku",
        method = "put",
        operation_id = "updateProduct"
    )]
    async fn update_product(
        &self,
        state: Data<&Arc<AppState>>,
        auth: BearerAuth,
        sku: Path<String>,
        /// A position token from an earlier write (the product's creation, say): this change
        /// sees that write.
        position: Query<Option<String>>,
        body: Json<ProductUpdate>,
    ) -> ApiResult<AcceptedResponse> {
        auth.0.require_admin()?;
        let sku = parse_sku(&sku.0)?;
        let existing = existing_product(&state, &sku, position.0.as_deref()).await?;
        if existing.discontinued {
            return Err(ApiError::conflict(format!("product {sku} is discontinued")));
        }
        let body = body.0;
        let command = CatalogCommand::UpsertProduct(UpsertProduct {
            sku: sku.clone(),
            name: body.name.into(),
            description: body.description.into(),
            category: body.category.into(),
            price: body.price.to_money("price")?,
            active: body.active,
            low_stock_threshold: body.low_stock_threshold,
        });
        submit(&state, command, product_location(&sku)).await
    }

    /// Change a product's unit price (admin).
    #[oai(
        path = "/api/v1/products/:sku/price",
        method = "post",
        operation_id = "repriceProduct"
    )]
    async fn reprice_product(
        &self,
        state: Data<&Arc<AppState>>,
        auth: BearerAuth,
        sku: Path<String>,
        /// A position token from an earlier write (the product's creation, say): this change
        /// sees that write.
        position: Query<Option<String>>,
        body: Json<PriceChange>,
    ) -> ApiResult<AcceptedResponse> {
        auth.0.require_admin()?;
        let sku = parse_sku(&sku.0)?;
        existing_product(&state, &sku, position.0.as_deref()).await?;
        let command = CatalogCommand::ChangePrice(ChangePrice {
            sku: sku.clone(),
            price: body.0.price.to_money("price")?,
        });
        submit(&state, command, product_location(&sku)).await
    }

    /// Discontinue a product for good (admin).
    #[oai(
        path = "/api/v1/products/:sku/discontinue",
        method = "post",
        operation_id = "discontinueProduct"
    )]
    async fn discontinue_product(
        &self,
        state: Data<&Arc<AppState>>,
        auth: BearerAuth,
        sku: Path<String>,
        /// A position token from an earlier write (the product's creation, say): this change
        /// sees that write.
        position: Query<Option<String>>,
    ) -> ApiResult<AcceptedResponse> {
        auth.0.require_admin()?;
        let sku = parse_sku(&sku.0)?;
        existing_product(&state, &sku, position.0.as_deref()).await?;
        let command = CatalogCommand::Discontinue(Discontinue { sku: sku.clone() });
        submit(&state, command, product_location(&sku)).await
    }

    /// Create or replace a coupon (admin).
    #[oai(
        path = "/api/v1/coupons",
        method = "post",
        operation_id = "upsertCoupon"
    )]
    async fn upsert_coupon(
        &self,
        state: Data<&Arc<AppState>>,
        auth: BearerAuth,
        body: Json<CouponInput>,
    ) -> ApiResult<CouponResponse> {
        auth.0.require_admin()?;
        let body = body.0;
        let code = CouponCode::parse(&body.code).map_err(|error| {
            ApiError::unprocessable(Some("code".to_string()), error.to_string())
        })?;
        let kind = match (body.kind, body.basis_points, &body.amount) {
            (CouponKindDto::Percentage, Some(basis_points), None) => {
                CouponKind::Percentage { basis_points }
            }
            (CouponKindDto::Fixed, None, Some(amount)) => CouponKind::Fixed {
                amount: amount.to_money("amount")?,
            },
            (CouponKindDto::Percentage, _, _) => {
                return Err(ApiError::unprocessable(
                    Some("basis_points".to_string()),
                    "a percentage coupon needs basis_points and no amount",
                ));
            }
            (CouponKindDto::Fixed, _, _) => {
                return Err(ApiError::unprocessable(
                    Some("amount".to_string()),
                    "a fixed coupon needs an amount and no basis_points",
                ));
            }
        };
        let coupon_id = CouponId::generate(state.now_ms());
        let minimum_basket = body
            .minimum_basket
            .as_ref()
            .map(|money| money.to_money("minimum_basket"))
            .transpose()?;
        let location = coupon_location(&code);
        let command = CatalogCommand::UpsertCoupon(UpsertCoupon {
            coupon_id,
            code,
            kind,
            valid_from: Timestamp::from_unix_millis(body.valid_from_ms),
            valid_until: Timestamp::from_unix_millis(body.valid_until_ms),
            minimum_basket,
        });
        let AcceptedResponse::Accepted(accepted, location) =
            submit(&state, command, location).await?;
        Ok(CouponResponse::Accepted(
            Json(CouponAccepted {
                coupon_id: coupon_id.to_string(),
                position: accepted.0.position,
            }),
            location,
        ))
    }

    /// Coupons by code, expired and discontinued ones included (admin). The list trails a
    /// write by a moment; read a coupon with `?position=` to see your own write.
    #[oai(path = "/api/v1/coupons", method = "get", operation_id = "listCoupons")]
    async fn list_coupons(
        &self,
        state: Data<&Arc<AppState>>,
        auth: BearerAuth,
        /// Page size, 1 to 100 (the default maximum; see `api.max-page-size`).
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<Option<u32>>,
        /// From the previous page's `next_cursor`.
        cursor: Query<Option<String>>,
    ) -> ApiResult<CouponPageResponse> {
        auth.0.require_admin()?;
        let limit = page_size(&state, limit.0)? as usize;
        let after = decode_cursor(cursor.0.as_deref())?;
        // Every coupon ever defined, as the saga prices orders with them (a moment behind a
        // write; read one with `?position=` to see your own).
        let page = state
            .topologies
            .fulfillment
            .global_table_scan::<String, CouponUpserted>(COUPONS_TABLE, after.as_deref(), limit)
            .map_err(|error| ApiError::internal("reading the coupons table", error))?;
        let now_ms = state.now_ms();
        let next_cursor = (page.len() == limit)
            .then(|| page.last().map(|(key, _, _)| encode_cursor(key)))
            .flatten();
        Ok(CouponPageResponse::Ok(Json(CouponPage {
            items: page
                .iter()
                .map(|(_, _, coupon)| CouponView::new(coupon, now_ms))
                .collect(),
            next_cursor,
        })))
    }

    /// One coupon (admin).
    #[oai(
        path = "/api/v1/coupons/:code",
        method = "get",
        operation_id = "getCoupon"
    )]
    async fn get_coupon(
        &self,
        state: Data<&Arc<AppState>>,
        auth: BearerAuth,
        code: Path<String>,
        /// A position token from a write, to read that write.
        position: Query<Option<String>>,
    ) -> ApiResult<CouponViewResponse> {
        auth.0.require_admin()?;
        let code = parse_coupon_code(&code.0)?;
        let coupon = existing_coupon(&state, &code, position.0.as_deref()).await?;
        Ok(CouponViewResponse::Ok(Json(CouponView::new(
            &coupon,
            state.now_ms(),
        ))))
    }

    /// Discontinue a coupon (admin): it stops applying now, to orders placed from now on;
    /// orders already priced keep their discount.
    #[oai(
        path = "/api/v1/coupons/:code/discontinue",
        method = "post",
        operation_id = "discontinueCoupon"
    )]
    async fn discontinue_coupon(
        &self,
        state: Data<&Arc<AppState>>,
        auth: BearerAuth,
        code: Path<String>,
        /// A position token from a write (the coupon's creation, say), to act on it.
        position: Query<Option<String>>,
    ) -> ApiResult<AcceptedResponse> {
        auth.0.require_admin()?;
        let code = parse_coupon_code(&code.0)?;
        let coupon = existing_coupon(&state, &code, position.0.as_deref()).await?;
        // Its validity ends now (never later than it did); a campaign not yet started ends
        // before it starts.
        let valid_until = coupon.valid_until.as_unix_millis().min(state.now_ms());
        let valid_from = coupon.valid_from.as_unix_millis().min(valid_until - 1);
        let command = CatalogCommand::UpsertCoupon(UpsertCoupon {
            coupon_id: coupon.coupon_id,
            code: coupon.code,
            kind: coupon.kind,
            valid_from: Timestamp::from_unix_millis(valid_from),
            valid_until: Timestamp::from_unix_millis(valid_until),
            minimum_basket: coupon.minimum_basket,
        });
        submit(&state, command, coupon_location(&code)).await
    }
}
