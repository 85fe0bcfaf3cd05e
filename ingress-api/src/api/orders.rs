//! `/api/v1/orders`: place, read (with long-polling), list, cancel, ship and deliver.

use crate::api::text::Text;
use std::sync::Arc;
use std::time::Duration;

use orderflow_processors::order_saga::{ORDER_STORE, OrderState};
use orderflow_schemas::address::{CountryCode, ShippingAddress};
use orderflow_schemas::catalog::ORDER_COMMANDS;
use orderflow_schemas::codes::{CouponCode, Sku};
use orderflow_schemas::currency::Currency;
use orderflow_schemas::ids::{CorrelationId, OrderId, UserId};
use orderflow_schemas::messages::order_commands::{
    CancelOrder, ConfirmDelivery, OrderCommand, OrderLine, PlaceOrder, ShipOrder,
};
use orderflow_schemas::messages::order_events::OrderStatus;
use orderflow_schemas::validation::Validate;
use poem::web::Data;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::{ParseFromJSON, ToJSON};
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};
use sha2::{Digest, Sha256};

use super::{
    ApiTags, BearerAuth, MoneyDto, Principal, await_position, command_record, decode_cursor,
    encode_cursor, page_size, produce, submit_command,
};
use crate::api::example_money;
use crate::platform::order_intake::IntakeBegin;
use crate::platform::{AtomicIntake, Position, Produce};
use crate::problem::{ApiError, ApiResult};
use crate::shared::{IDEMPOTENCY_TTL_MS, IdempotencyBegin, StoredResponse};
use crate::state::AppState;

/// Where an order is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatusDto {
    /// Accepted; the saga has not started yet.
    Pending,
    /// Stock is being reserved.
    Reserving,
    /// Stock reserved; the payment is being taken.
    AwaitingPayment,
    /// Paid and reserved: it will be fulfilled.
    Confirmed,
    Shipped,
    /// Terminal.
    Delivered,
    /// Terminal: stock, coupon or payment refused it; nothing is charged.
    Rejected,
    /// Terminal: cancelled on request; compensation issued.
    Cancelled,
    /// Terminal: the payment failed for good.
    PaymentFailed,
}

impl From<OrderStatus> for OrderStatusDto {
    fn from(status: OrderStatus) -> Self {
        match status {
            OrderStatus::Pending => Self::Pending,
            OrderStatus::Reserving => Self::Reserving,
            OrderStatus::AwaitingPayment => Self::AwaitingPayment,
            OrderStatus::Confirmed => Self::Confirmed,
            OrderStatus::Shipped => Self::Shipped,
            OrderStatus::Delivered => Self::Delivered,
            OrderStatus::Rejected => Self::Rejected,
            OrderStatus::Cancelled => Self::Cancelled,
            OrderStatus::PaymentFailed => Self::PaymentFailed,
        }
    }
}

impl OrderStatusDto {
    fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Delivered | Self::Rejected | Self::Cancelled | Self::PaymentFailed
        )
    }

    /// Whether the saga has decided the order (confirmed or ended).
    fn is_settled(self) -> bool {
        !matches!(
            self,
            Self::Pending | Self::Reserving | Self::AwaitingPayment
        )
    }
}

/// One requested line.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct OrderLineInput {
    #[oai(validator(max_length = 64))]
    pub sku: Text,
    /// Units; at least 1.
    #[oai(validator(minimum(value = "1"), maximum(value = "4294967295")))]
    pub quantity: u32,
}

/// Where to deliver.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct AddressInput {
    #[oai(validator(max_length = 200))]
    pub name: Text,
    #[oai(validator(max_length = 200))]
    pub line1: Text,
    #[oai(nullable, validator(max_length = 200))]
    pub line2: Option<Text>,
    #[oai(validator(max_length = 200))]
    pub city: Text,
    #[oai(validator(max_length = 32))]
    pub postal_code: Text,
    /// ISO 3166-1 alpha-2, e.g. `US`.
    #[oai(validator(min_length = 2, max_length = 2))]
    pub country: Text,
    #[oai(nullable, validator(max_length = 200))]
    pub region: Option<Text>,
}

/// An order to place. Prices come from the catalog, never from the client; the customer
/// comes from the access token, never from the body.
#[derive(Debug, Clone, Object)]
#[oai(example, skip_serializing_if_is_none)]
pub struct PlaceOrderRequest {
    /// 1 to 100 lines, one per SKU.
    #[oai(validator(min_items = 1, max_items = 100))]
    pub lines: Vec<OrderLineInput>,
    /// ISO 4217; the catalog prices must be in it.
    #[oai(validator(min_length = 3, max_length = 3))]
    pub currency: Text,
    #[oai(nullable, validator(max_length = 32))]
    pub coupon_code: Option<Text>,
    pub shipping_address: AddressInput,
    /// The payment provider's token for the payment method. With the simulated provider the
    /// token decides: `tok_decline` is declined, `tok_insufficient_funds` lacks funds,
    /// `tok_transient` and `tok_timeout` fail every attempt (retried, then PAYMENT_FAILED),
    /// `tok_flaky` fails twice and then succeeds, `tok_lost_answer` charges but every answer
    /// times out (PAYMENT_FAILED, then the charge is found and refunded); anything else is
    /// approved.
    #[oai(validator(max_length = 200))]
    pub payment_method_token: Text,
}

impl poem_openapi::types::Example for PlaceOrderRequest {
    fn example() -> Self {
        Self {
            lines: vec![OrderLineInput {
                sku: "MUG-BLUE".into(),
                quantity: 2,
            }],
            currency: "USD".into(),
            coupon_code: None,
            shipping_address: AddressInput {
                name: "Ada Lovelace".into(),
                line1: "12 St James's Square".into(),
                line2: None,
                city: "London".into(),
                postal_code: "SW1Y 4JH".into(),
                country: "GB".into(),
                region: None,
            },
            payment_method_token: "tok_visa".into(),
        }
    }
}

/// An order accepted for processing.
#[derive(Debug, Clone, Object)]
#[oai(example, skip_serializing_if_is_none)]
pub struct OrderAccepted {
    pub order_id: String,
    /// Always `PENDING` at acceptance.
    pub status: OrderStatusDto,
    /// Pass as `?position=` to `GET /api/v1/orders/{id}` to read this write.
    pub position: String,
}

impl poem_openapi::types::Example for OrderAccepted {
    fn example() -> Self {
        Self {
            order_id: "019ac5e2-7c1a-7d3e-9b41-2f6a8c0d4e51".to_string(),
            status: OrderStatusDto::Pending,
            position: "b3JkZXItY29tbWFuZHM6MToxMjM".to_string(),
        }
    }
}

/// A priced line.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct OrderLineView {
    pub sku: String,
    pub quantity: u32,
    pub unit_price: MoneyDto,
    pub line_total: MoneyDto,
}

/// A line the saga could not fulfil.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct LineRejectionView {
    pub line_index: u32,
    pub sku: String,
    /// `insufficient_stock`, `unknown_sku`, `not_for_sale` or `price_currency_mismatch`.
    pub reason: String,
    /// Units available, for stock rejections.
    pub available: Option<u32>,
}

/// Money totals: `total = subtotal - discount + tax + shipping`.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct TotalsView {
    pub subtotal: MoneyDto,
    pub discount: MoneyDto,
    pub tax: MoneyDto,
    pub shipping: MoneyDto,
    pub total: MoneyDto,
}

/// An order as the order view shows it.
#[derive(Debug, Clone, Object)]
#[oai(example, skip_serializing_if_is_none)]
pub struct OrderView {
    pub order_id: String,
    pub user_id: String,
    pub status: OrderStatusDto,
    /// ISO 4217.
    pub currency: Option<String>,
    pub lines: Vec<OrderLineView>,
    pub rejections: Vec<LineRejectionView>,
    pub totals: Option<TotalsView>,
    pub coupon_code: Option<String>,
    /// Unix milliseconds.
    pub created_at_ms: i64,
    /// Unix milliseconds.
    pub updated_at_ms: i64,
}

impl poem_openapi::types::Example for OrderView {
    fn example() -> Self {
        Self {
            order_id: "019ac5e2-7c1a-7d3e-9b41-2f6a8c0d4e51".to_string(),
            user_id: "019ac5d0-1b2c-7a3d-8e4f-5a6b7c8d9e0f".to_string(),
            status: OrderStatusDto::Confirmed,
            currency: Some("USD".to_string()),
            lines: vec![OrderLineView {
                sku: "MUG-BLUE".to_string(),
                quantity: 2,
                unit_price: example_money(1999, "USD"),
                line_total: example_money(3998, "USD"),
            }],
            rejections: Vec::new(),
            totals: Some(TotalsView {
                subtotal: example_money(3998, "USD"),
                discount: example_money(0, "USD"),
                tax: example_money(290, "USD"),
                shipping: example_money(499, "USD"),
                total: example_money(4787, "USD"),
            }),
            coupon_code: None,
            created_at_ms: 1_767_225_600_000,
            updated_at_ms: 1_767_225_600_012,
        }
    }
}

impl OrderView {
    fn from_state(state: &OrderState) -> Self {
        Self {
            order_id: state.order_id.to_string(),
            user_id: state.user_id.to_string(),
            status: state.status.into(),
            currency: Some(state.currency.code().to_string()),
            lines: state
                .lines
                .iter()
                .map(|line| OrderLineView {
                    sku: line.sku.to_string(),
                    quantity: line.quantity,
                    unit_price: MoneyDto::from(&line.unit_price),
                    line_total: MoneyDto::from(&line.line_total),
                })
                .collect(),
            rejections: state
                .rejections
                .iter()
                .map(|rejection| LineRejectionView {
                    line_index: rejection.line_index,
                    sku: rejection.sku.to_string(),
                    reason: serde_json::to_value(rejection.reason)
                        .ok()
                        .and_then(|value| value.as_str().map(str::to_string))
                        .unwrap_or_default(),
                    available: rejection.available,
                })
                .collect(),
            totals: state.totals.as_ref().map(|totals| TotalsView {
                subtotal: MoneyDto::from(&totals.subtotal),
                discount: MoneyDto::from(&totals.discount),
                tax: MoneyDto::from(&totals.tax),
                shipping: MoneyDto::from(&totals.shipping),
                total: MoneyDto::from(&totals.total),
            }),
            coupon_code: state.coupon_code.as_ref().map(ToString::to_string),
            created_at_ms: state.created_at_ms,
            updated_at_ms: state.updated_at_ms,
        }
    }

    /// An accepted order the saga has not picked up yet.
    fn pending(order_id: OrderId, user_id: UserId) -> Self {
        Self {
            order_id: order_id.to_string(),
            user_id: user_id.to_string(),
            status: OrderStatusDto::Pending,
            currency: None,
            lines: Vec::new(),
            rejections: Vec::new(),
            totals: None,
            coupon_code: None,
            created_at_ms: order_id.unix_millis(),
            updated_at_ms: order_id.unix_millis(),
        }
    }
}

/// A page of the caller's orders, newest first.
#[derive(Debug, Object)]
#[oai(example, skip_serializing_if_is_none)]
pub struct OrderPage {
    pub items: Vec<OrderView>,
    pub next_cursor: Option<String>,
}

impl poem_openapi::types::Example for OrderPage {
    fn example() -> Self {
        Self {
            items: vec![OrderView::example()],
            next_cursor: Some("MDE5YWM1ZTItN2MxYQ".to_string()),
        }
    }
}

/// Why the customer cancels.
#[derive(Debug, Object)]
#[oai(example, skip_serializing_if_is_none)]
pub struct CancelRequest {
    #[oai(validator(max_length = 500))]
    pub reason: Text,
}

impl poem_openapi::types::Example for CancelRequest {
    fn example() -> Self {
        Self {
            reason: "ordered the wrong size".into(),
        }
    }
}

/// Hand-over to a carrier.
#[derive(Debug, Object)]
#[oai(example, skip_serializing_if_is_none)]
pub struct ShipRequest {
    #[oai(validator(max_length = 200))]
    pub carrier: Text,
    #[oai(validator(max_length = 200))]
    pub tracking_number: Text,
}

impl poem_openapi::types::Example for ShipRequest {
    fn example() -> Self {
        Self {
            carrier: "DHL".into(),
            tracking_number: "JJD000390007827194".into(),
        }
    }
}

/// A change accepted for an order.
#[derive(Debug, Object)]
#[oai(example, skip_serializing_if_is_none)]
pub struct OrderChangeAccepted {
    pub order_id: String,
    /// Pass as `?position=` to read the change.
    pub position: String,
}

impl poem_openapi::types::Example for OrderChangeAccepted {
    fn example() -> Self {
        Self {
            order_id: "019ac5e2-7c1a-7d3e-9b41-2f6a8c0d4e51".to_string(),
            position: "b3JkZXItY29tbWFuZHM6MToxMjM".to_string(),
        }
    }
}

#[derive(Debug, ApiResponse)]
enum PlaceOrderResponse {
    /// Accepted; follow `Location` (with `?wait=`) to see it settle.
    #[oai(status = 202)]
    Accepted(Json<OrderAccepted>, #[oai(header = "Location")] String),
}

#[derive(Debug, ApiResponse)]
enum OrderResponse {
    /// The order.
    #[oai(status = 200)]
    Ok(Json<OrderView>),
}

#[derive(Debug, ApiResponse)]
enum OrderPageResponse {
    /// The caller's orders, newest first.
    #[oai(status = 200)]
    Ok(Json<OrderPage>),
}

#[derive(Debug, ApiResponse)]
enum OrderChangeResponse {
    /// Accepted; the saga applies it asynchronously.
    #[oai(status = 202)]
    Accepted(
        Json<OrderChangeAccepted>,
        #[oai(header = "Location")] String,
    ),
}

fn order_location(order_id: &str) -> String {
    format!("/api/v1/orders/{order_id}")
}

fn invalid(field: &str, error: impl std::fmt::Display) -> ApiError {
    ApiError::unprocessable(Some(field.to_string()), error.to_string())
}

fn to_place_order(
    body: &PlaceOrderRequest,
    order_id: OrderId,
    user_id: UserId,
) -> ApiResult<PlaceOrder> {
    let lines = body
        .lines
        .iter()
        .enumerate()
        .map(|(index, line)| {
            Ok(OrderLine {
                sku: Sku::parse(&line.sku)
                    .map_err(|error| invalid(&format!("lines[{index}].sku"), error))?,
                quantity: line.quantity,
            })
        })
        .collect::<ApiResult<Vec<_>>>()?;
    let address = &body.shipping_address;
    let place = PlaceOrder {
        order_id,
        user_id,
        lines,
        currency: Currency::parse(&body.currency).map_err(|error| invalid("currency", error))?,
        coupon_code: body
            .coupon_code
            .as_deref()
            .map(CouponCode::parse)
            .transpose()
            .map_err(|error| invalid("coupon_code", error))?,
        shipping_address: ShippingAddress {
            name: address.name.to_string(),
            line1: address.line1.to_string(),
            line2: address.line2.clone().map(String::from),
            city: address.city.to_string(),
            postal_code: address.postal_code.to_string(),
            country: CountryCode::parse(&address.country)
                .map_err(|error| invalid("shipping_address.country", error))?,
            region: address.region.clone().map(String::from),
        },
        payment_method_token: body.payment_method_token.to_string(),
    };
    place.validate().map_err(ApiError::invalid)?;
    Ok(place)
}

fn parse_order_id(text: &str) -> ApiResult<OrderId> {
    // A malformed id is as unknown as a well-formed one that does not exist.
    text.parse()
        .map_err(|_| ApiError::not_found(format!("no order {text}")))
}

fn read_order(state: &AppState, order_id: OrderId) -> ApiResult<Option<OrderState>> {
    state
        .topologies
        .fulfillment
        .get::<String, OrderState>(ORDER_STORE, &order_id.to_string())
        .map_err(|error| ApiError::internal("reading the order view", error))
}

/// The order as `principal` may see it: owners and admins see it, anyone else gets 404.
async fn visible_order(
    state: &AppState,
    principal: &Principal,
    order_id: OrderId,
) -> ApiResult<OrderView> {
    let not_found = || ApiError::not_found(format!("no order {order_id}"));
    match read_order(state, order_id)? {
        Some(order) if principal.is_admin() || order.user_id == principal.user_id => {
            Ok(OrderView::from_state(&order))
        }
        Some(_) => Err(not_found()),
        None => {
            if owns_order(state, principal.user_id, order_id).await? {
                Ok(OrderView::pending(order_id, principal.user_id))
            } else {
                Err(not_found())
            }
        }
    }
}

/// The SHA-256 of the request's canonical JSON: what makes "the same body".
fn request_digest(body: &PlaceOrderRequest) -> [u8; 32] {
    let canonical = body
        .to_json()
        .map(|value| value.to_string())
        .unwrap_or_default();
    Sha256::digest(canonical.as_bytes()).into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn replay(stored: StoredResponse) -> ApiResult<PlaceOrderResponse> {
    let value = serde_json::from_str(&stored.body)
        .map_err(|error| ApiError::internal("reading a stored response", error))?;
    let accepted = OrderAccepted::parse_from_json(Some(value))
        .map_err(|error| ApiError::internal("reading a stored response", error.into_message()))?;
    let location = order_location(&accepted.order_id);
    Ok(PlaceOrderResponse::Accepted(Json(accepted), location))
}

fn key_reused_with_another_body() -> ApiError {
    ApiError::unprocessable(
        Some("Idempotency-Key".to_string()),
        "this Idempotency-Key was used with a different request body",
    )
}

fn key_in_progress() -> ApiError {
    ApiError::conflict("a request with this Idempotency-Key is still being processed")
}

fn accepted(order_id: OrderId, position: &Position) -> OrderAccepted {
    OrderAccepted {
        order_id: order_id.to_string(),
        status: OrderStatusDto::Pending,
        position: position.token(),
    }
}

/// Places an order through the atomic intake: the command, the user index entry and the
/// key's stored response in one write (see [`crate::platform::order_intake`]).
async fn place_atomically(
    state: &AppState,
    intake: &AtomicIntake,
    place: PlaceOrder,
    scope: String,
    request_hash: [u8; 32],
    now_ms: i64,
) -> ApiResult<PlaceOrderResponse> {
    let (claim, place) = match intake
        .begin(&scope, &request_hash, now_ms)
        .map_err(|error| ApiError::unavailable("the idempotency store", error))?
    {
        IntakeBegin::Fresh { claim, reuse: None } => (claim, place),
        // A request of the SQL path claimed this key and may have placed its order: the
        // same order id again, which the saga recognizes.
        IntakeBegin::Fresh {
            claim,
            reuse: Some(order_id),
        } => (claim, PlaceOrder { order_id, ..place }),
        IntakeBegin::Completed(stored) => return replay(stored),
        IntakeBegin::Mismatch => return Err(key_reused_with_another_body()),
        IntakeBegin::InProgress => return Err(key_in_progress()),
    };
    let (order_id, user_id) = (place.order_id, place.user_id);
    let record = command_record(
        state,
        ORDER_COMMANDS,
        OrderCommand::PlaceOrder(place),
        CorrelationId::generate(now_ms),
    )?;
    let (topic, partition) = (record.0.clone(), record.1);
    let append = intake.append(
        record,
        user_id,
        order_id,
        &scope,
        request_hash,
        now_ms + IDEMPOTENCY_TTL_MS,
        move |offset| {
            let position = Position {
                topic,
                partition,
                offset,
            };
            accepted(order_id, &position)
                .to_json()
                .map(|value| value.to_string())
                .unwrap_or_default()
        },
    );
    let position = state
        .producer
        .produce_with(Produce {
            claim: Some(claim),
            ..append.into()
        })
        .await
        .map_err(|error| ApiError::unavailable("the command log", error))?
        .pop()
        .ok_or_else(|| ApiError::internal("producing a command", "no record was produced"))?;
    let accepted = accepted(order_id, &position);
    let location = order_location(&accepted.order_id);
    Ok(PlaceOrderResponse::Accepted(Json(accepted), location))
}

/// Places an order with the key in [`crate::shared`] (SQL or Redis) and the index in SQL:
/// separate writes, so the key is leased first and completed last (see the protocol there).
async fn place_separately(
    state: &AppState,
    place: PlaceOrder,
    scope: String,
    request_hash: [u8; 32],
    now_ms: i64,
) -> ApiResult<PlaceOrderResponse> {
    let user_id = place.user_id;
    let begun = state
        .shared
        .idempotency_begin(
            &scope,
            &hex(&request_hash),
            &place.order_id.to_string(),
            now_ms,
        )
        .await
        .map_err(|error| ApiError::unavailable("the idempotency store", error))?;
    let order_id = match begun {
        IdempotencyBegin::Completed(stored) => return replay(stored),
        IdempotencyBegin::Mismatch => return Err(key_reused_with_another_body()),
        IdempotencyBegin::InProgress => return Err(key_in_progress()),
        IdempotencyBegin::Started { resource_id } => resource_id
            .parse::<OrderId>()
            .map_err(|error| ApiError::internal("reading an idempotency record", error))?,
    };
    let place = PlaceOrder { order_id, ..place };
    if let Err(error) = state
        .database
        .record_user_order(user_id, order_id, now_ms)
        .await
    {
        let _ = state.shared.idempotency_abandon(&scope).await;
        return Err(ApiError::unavailable("the user database", error));
    }
    let record = command_record(
        state,
        ORDER_COMMANDS,
        OrderCommand::PlaceOrder(place),
        CorrelationId::generate(now_ms),
    )?;
    // On failure the key keeps its lease: a retry after it takes the same order id over.
    let position = produce(state, vec![record]).await?;
    let accepted = accepted(order_id, &position);
    let stored = StoredResponse {
        status: 202,
        body: accepted
            .to_json()
            .map(|value| value.to_string())
            .unwrap_or_default(),
        resource_id: order_id.to_string(),
    };
    if let Err(error) = state.shared.idempotency_complete(&scope, &stored).await {
        // The order is placed; a retry will take the lease over and re-send the same
        // order, which the saga recognizes.
        tracing::warn!(%error, "could not store an idempotent response");
    }
    let location = order_location(&accepted.order_id);
    Ok(PlaceOrderResponse::Accepted(Json(accepted), location))
}

/// Whether `user_id` placed `order_id`, from wherever this API indexes orders.
async fn owns_order(state: &AppState, user_id: UserId, order_id: OrderId) -> ApiResult<bool> {
    match &state.intake {
        Some(intake) => intake
            .user_owns_order(user_id, order_id)
            .map_err(|error| ApiError::unavailable("the order index", error)),
        None => state
            .database
            .user_owns_order(user_id, order_id)
            .await
            .map_err(|error| ApiError::unavailable("the user database", error)),
    }
}

/// The user's orders, newest first, older than `before` when given.
async fn orders_of(
    state: &AppState,
    user_id: UserId,
    before: Option<OrderId>,
    limit: u32,
) -> ApiResult<Vec<OrderId>> {
    match &state.intake {
        Some(intake) => intake
            .user_orders(user_id, before, limit)
            .map_err(|error| ApiError::unavailable("the order index", error)),
        None => state
            .database
            .user_orders(user_id, before, limit)
            .await
            .map_err(|error| ApiError::unavailable("the user database", error)),
    }
}

/// The order operations.
#[derive(Debug)]
pub struct OrdersApi;

#[OpenApi(prefix_path = "/api/v1/orders", tag = "ApiTags::Orders")]
impl OrdersApi {
    /// Place an order. The `Idempotency-Key` makes retries safe: the same key with the same
    /// body returns the first response; with another body, 422; while the first request is
    /// still running, 409.
    #[oai(path = "/", method = "post", operation_id = "placeOrder")]
    async fn place_order(
        &self,
        state: Data<&Arc<AppState>>,
        auth: BearerAuth,
        /// A client-chosen unique key per order attempt (a UUID is a good choice), 1 to 255
        /// visible ASCII characters.
        #[oai(name = "Idempotency-Key", validator(min_length = 1, max_length = 255))]
        idempotency_key: Header<String>,
        body: Json<PlaceOrderRequest>,
    ) -> ApiResult<PlaceOrderResponse> {
        let key = idempotency_key.0;
        if key.is_empty() || key.len() > 255 || !key.bytes().all(|byte| byte.is_ascii_graphic()) {
            return Err(ApiError::bad_request(
                "Idempotency-Key must be 1 to 255 visible ASCII characters",
            ));
        }
        let user_id = auth.0.user_id;
        let now_ms = state.now_ms();
        let place = to_place_order(&body.0, OrderId::generate(now_ms), user_id)?;
        let scope = format!("orders:{user_id}:{key}");
        let request_hash = request_digest(&body.0);
        match &state.intake {
            Some(intake) => {
                place_atomically(&state, intake, place, scope, request_hash, now_ms).await
            }
            None => place_separately(&state, place, scope, request_hash, now_ms).await,
        }
    }

    /// The caller's orders, newest first.
    #[oai(path = "/", method = "get", operation_id = "listOrders")]
    async fn list_orders(
        &self,
        state: Data<&Arc<AppState>>,
        auth: BearerAuth,
        /// Page size, 1 to 100 (the default maximum; see `api.max-page-size`).
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<Option<u32>>,
        cursor: Query<Option<String>>,
    ) -> ApiResult<OrderPageResponse> {
        let limit = page_size(&state, limit.0)?;
        let before = decode_cursor(cursor.0.as_deref())?
            .map(|bytes| {
                String::from_utf8(bytes)
                    .ok()
                    .and_then(|text| text.parse::<OrderId>().ok())
                    .ok_or_else(|| {
                        ApiError::unprocessable(
                            Some("cursor".into()),
                            "cursor is not one this API issued",
                        )
                    })
            })
            .transpose()?;
        let ids = orders_of(&state, auth.0.user_id, before, limit).await?;
        let mut items = Vec::with_capacity(ids.len());
        for order_id in &ids {
            items.push(match read_order(&state, *order_id)? {
                Some(order) => OrderView::from_state(&order),
                None => OrderView::pending(*order_id, auth.0.user_id),
            });
        }
        let next_cursor = (ids.len() == limit as usize)
            .then(|| {
                ids.last()
                    .map(|id| encode_cursor(id.to_string().as_bytes()))
            })
            .flatten();
        Ok(OrderPageResponse::Ok(Json(OrderPage {
            items,
            next_cursor,
        })))
    }

    /// One order, to its owner or an admin. With `wait`, holds the request until the order
    /// leaves `status` (or, without `status`, until it settles: confirmed or ended) or reaches
    /// a terminal state, at most `wait` seconds.
    #[oai(path = "/:order_id", method = "get", operation_id = "getOrder")]
    async fn get_order(
        &self,
        state: Data<&Arc<AppState>>,
        auth: BearerAuth,
        order_id: Path<String>,
        /// Seconds to long-poll; 0 or absent answers at once.
        #[oai(validator(minimum(value = "0"), maximum(value = "30")))]
        wait: Query<Option<u32>>,
        /// The status the client already knows; the long-poll returns once the order leaves it.
        status: Query<Option<OrderStatusDto>>,
        /// A position token from a write, to read that write.
        position: Query<Option<String>>,
    ) -> ApiResult<OrderResponse> {
        let order_id = parse_order_id(&order_id.0)?;
        let wait_seconds = wait.0.unwrap_or(0);
        if wait_seconds > state.config.max_wait_seconds {
            return Err(ApiError::bad_request(format!(
                "wait must be at most {} seconds, got {wait_seconds}",
                state.config.max_wait_seconds
            )));
        }
        await_position(
            &state,
            &state.topologies.fulfillment,
            &[ORDER_COMMANDS],
            position.0.as_deref(),
        )
        .await?;
        if wait_seconds == 0 {
            return Ok(OrderResponse::Ok(Json(
                visible_order(&state, &auth.0, order_id).await?,
            )));
        }
        let done = |view: &OrderView| match status.0 {
            Some(known) => view.status != known || view.status.is_terminal(),
            None => view.status.is_settled(),
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(u64::from(wait_seconds));
        let waiter = state.watcher.watch_order(order_id);
        loop {
            let notified = waiter.notify().notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let view = visible_order(&state, &auth.0, order_id).await?;
            if done(&view) {
                return Ok(OrderResponse::Ok(Json(view)));
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Ok(OrderResponse::Ok(Json(view)));
            }
        }
    }

    /// Cancel an order that has not shipped; stock is released and any charge refunded.
    #[oai(
        path = "/:order_id/cancel",
        method = "post",
        operation_id = "cancelOrder"
    )]
    async fn cancel_order(
        &self,
        state: Data<&Arc<AppState>>,
        auth: BearerAuth,
        order_id: Path<String>,
        body: Json<CancelRequest>,
    ) -> ApiResult<OrderChangeResponse> {
        let order_id = parse_order_id(&order_id.0)?;
        let view = visible_order(&state, &auth.0, order_id).await?;
        if view.status.is_terminal() || view.status == OrderStatusDto::Shipped {
            return Err(ApiError::conflict(format!(
                "order {order_id} is {:?} and can no longer be cancelled",
                view.status
            )));
        }
        let owner = view
            .user_id
            .parse::<UserId>()
            .map_err(|error| ApiError::internal("reading an order's owner", error))?;
        let command = OrderCommand::CancelOrder(CancelOrder {
            order_id,
            user_id: owner,
            reason: body.0.reason.into(),
        });
        submit(&state, order_id, command).await
    }

    /// Record that a confirmed order left the warehouse (admin).
    #[oai(path = "/:order_id/ship", method = "post", operation_id = "shipOrder")]
    async fn ship_order(
        &self,
        state: Data<&Arc<AppState>>,
        auth: BearerAuth,
        order_id: Path<String>,
        body: Json<ShipRequest>,
    ) -> ApiResult<OrderChangeResponse> {
        auth.0.require_admin()?;
        let order_id = parse_order_id(&order_id.0)?;
        let view = visible_order(&state, &auth.0, order_id).await?;
        if view.status != OrderStatusDto::Confirmed {
            return Err(ApiError::conflict(format!(
                "order {order_id} is {:?}; only confirmed orders ship",
                view.status
            )));
        }
        let command = OrderCommand::ShipOrder(ShipOrder {
            order_id,
            carrier: body.0.carrier.into(),
            tracking_number: body.0.tracking_number.into(),
        });
        submit(&state, order_id, command).await
    }

    /// Record that a shipped order reached the customer (admin).
    #[oai(
        path = "/:order_id/deliver",
        method = "post",
        operation_id = "deliverOrder"
    )]
    async fn deliver_order(
        &self,
        state: Data<&Arc<AppState>>,
        auth: BearerAuth,
        order_id: Path<String>,
    ) -> ApiResult<OrderChangeResponse> {
        auth.0.require_admin()?;
        let order_id = parse_order_id(&order_id.0)?;
        let view = visible_order(&state, &auth.0, order_id).await?;
        if view.status != OrderStatusDto::Shipped {
            return Err(ApiError::conflict(format!(
                "order {order_id} is {:?}; only shipped orders are delivered",
                view.status
            )));
        }
        let command = OrderCommand::ConfirmDelivery(ConfirmDelivery { order_id });
        submit(&state, order_id, command).await
    }
}

async fn submit(
    state: &AppState,
    order_id: OrderId,
    command: OrderCommand,
) -> ApiResult<OrderChangeResponse> {
    let position = submit_command(state, ORDER_COMMANDS, command).await?;
    Ok(OrderChangeResponse::Accepted(
        Json(OrderChangeAccepted {
            order_id: order_id.to_string(),
            position: position.token(),
        }),
        order_location(&order_id.to_string()),
    ))
}
