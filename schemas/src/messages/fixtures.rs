//! Valid sample messages for tests: fixed ids and amounts, and one sample of every message type
//! per topic (tests check the samples cover each topic's `TYPES` exactly).

use crate::address::{CountryCode, ShippingAddress};
use crate::codes::{CouponCode, Sku};
use crate::currency::Currency;
use crate::ids::{
    CorrelationId, CouponId, EventId, NotificationId, OrderId, PaymentId, ReservationId, UserId,
};
use crate::messages::analytics::{AnalyticsMetric, WindowAggregate};
use crate::messages::catalog_commands::{
    ChangePrice, CouponKind, Discontinue, UpsertCoupon, UpsertProduct,
};
use crate::messages::catalog_events::{
    CouponUpserted, PriceChanged, Product, ProductDiscontinued, ProductUpserted,
};
use crate::messages::inventory_commands::{
    Adjust, Commit, Release, ReleaseReason, Reserve, Restock,
};
use crate::messages::inventory_events::{
    StockCommitted, StockLow, StockRejected, StockRejectionReason, StockReleased, StockReserved,
    StockUpdated,
};
use crate::messages::notification_events::{
    NotificationChannel, NotificationFailed, NotificationSent, SendEmail, SendPush, SendSms,
};
use crate::messages::order_commands::{
    CancelOrder, ConfirmDelivery, OrderLine, PlaceOrder, ShipOrder,
};
use crate::messages::order_events::{
    CancellationInitiator, LineRejection, LineRejectionReason, OrderCancelled, OrderConfirmed,
    OrderCreated, OrderDelivered, OrderPaymentFailed, OrderRejected, OrderShipped, OrderStatus,
    OrderTotals, PricedLine, TransitionRefused,
};
use crate::messages::payment_commands::{CancelCharge, Charge, Refund};
use crate::messages::payment_events::{
    PaymentFailed, PaymentInitiated, PaymentRefunded, PaymentSucceeded,
};
use crate::messages::user_events::{
    NotificationChannels, NotificationPreferences, NotificationTopic, UserCreated, UserField,
    UserRole, UserUpdated,
};
use crate::messages::{
    AnalyticsAggregate, CatalogCommand, CatalogEvent, InventoryCommand, InventoryEvent,
    NotificationEvent, OrderCommand, OrderEvent, PaymentCommand, PaymentEvent, UserEvent,
};
use crate::money::Money;
use crate::time::Timestamp;

/// Unix milliseconds embedded in the fixed ids (2023-06-29).
pub const FIXTURE_MILLIS: i64 = 1_688_045_000_000;

pub fn order_id() -> OrderId {
    "01890a5d-ac96-774b-bcce-b302099a8057".parse().unwrap()
}

pub fn user_id() -> UserId {
    "01890a5d-ac96-7a1c-9f3e-5d2b7c4e6a10".parse().unwrap()
}

pub fn payment_id() -> PaymentId {
    "01890a5d-ac97-7b2d-8e4f-6a3c8d5f7b21".parse().unwrap()
}

pub fn event_id() -> EventId {
    "01890a5d-ac98-7c3e-a05a-7b4d9e6a8c32".parse().unwrap()
}

pub fn correlation_id() -> CorrelationId {
    "01890a5d-ac99-7d4f-b16b-8c5e0f7b9d43".parse().unwrap()
}

pub fn reservation_id() -> ReservationId {
    "01890a5d-ac9a-7e5a-827c-9d6f1a8c0e54".parse().unwrap()
}

pub fn notification_id() -> NotificationId {
    "01890a5d-ac9b-7f6b-938d-0e7a2b9d1f65".parse().unwrap()
}

pub fn coupon_id() -> CouponId {
    "01890a5d-ac9c-707c-a49e-1f8b3c0e2a76".parse().unwrap()
}

pub fn sku(code: &str) -> Sku {
    Sku::parse(code).unwrap()
}

pub fn usd(amount_minor: i64) -> Money {
    Money::new(amount_minor, Currency::USD)
}

pub fn at(offset_millis: i64) -> Timestamp {
    Timestamp::from_unix_millis(FIXTURE_MILLIS + offset_millis)
}

pub fn address() -> ShippingAddress {
    ShippingAddress {
        name: "Ada Lovelace".into(),
        line1: "12 St James's Square".into(),
        line2: Some("Flat 2".into()),
        city: "London".into(),
        postal_code: "SW1Y 4JH".into(),
        country: CountryCode::parse("GB").unwrap(),
        region: None,
    }
}

pub fn place_order() -> PlaceOrder {
    PlaceOrder {
        order_id: order_id(),
        user_id: user_id(),
        lines: vec![
            OrderLine {
                sku: sku("TSHIRT-RED-M"),
                quantity: 2,
            },
            OrderLine {
                sku: sku("MUG"),
                quantity: 1,
            },
        ],
        currency: Currency::USD,
        coupon_code: Some(CouponCode::parse("SPRING25").unwrap()),
        shipping_address: address(),
        payment_method_token: "pm_tok_4242".into(),
    }
}

/// The priced form of [`place_order`]: 2 × 19.99 + 1 × 8.50 = 48.48, 25 % off = 12.12,
/// tax 2.91, shipping 4.99, total 44.26.
pub fn order_created() -> OrderCreated {
    OrderCreated {
        order_id: order_id(),
        user_id: user_id(),
        lines: vec![
            PricedLine {
                sku: sku("TSHIRT-RED-M"),
                quantity: 2,
                unit_price: usd(1999),
                line_total: usd(3998),
            },
            PricedLine {
                sku: sku("MUG"),
                quantity: 1,
                unit_price: usd(850),
                line_total: usd(850),
            },
        ],
        currency: Currency::USD,
        coupon_code: Some(CouponCode::parse("SPRING25").unwrap()),
        totals: OrderTotals {
            subtotal: usd(4848),
            discount: usd(1212),
            tax: usd(291),
            shipping: usd(499),
            total: usd(4426),
        },
        shipping_address: address(),
    }
}

pub fn upsert_product() -> UpsertProduct {
    UpsertProduct {
        sku: sku("MUG"),
        name: "Enamel mug".into(),
        description: "Holds 350 ml.\nDishwasher safe.".into(),
        category: "kitchen/mugs".into(),
        price: usd(850),
        active: true,
        low_stock_threshold: 5,
    }
}

pub fn product() -> Product {
    Product {
        sku: sku("MUG"),
        name: "Enamel mug".into(),
        description: String::new(),
        category: "kitchen/mugs".into(),
        price: usd(850),
        active: true,
        discontinued: false,
        low_stock_threshold: 5,
    }
}

pub fn reserve() -> Reserve {
    Reserve {
        order_id: order_id(),
        line_index: 1,
        reservation_id: reservation_id(),
        sku: sku("MUG"),
        quantity: 1,
        expires_at: at(15 * 60 * 1000),
    }
}

pub fn stock_reserved() -> StockReserved {
    StockReserved {
        order_id: order_id(),
        line_index: 1,
        reservation_id: reservation_id(),
        sku: sku("MUG"),
        quantity: 1,
        expires_at: at(15 * 60 * 1000),
    }
}

pub fn charge() -> Charge {
    Charge {
        order_id: order_id(),
        payment_id: payment_id(),
        amount: usd(4426),
        payment_method_token: "pm_tok_4242".into(),
        idempotency_key: format!("charge-{}", payment_id()),
        attempt: 1,
    }
}

pub fn send_email() -> SendEmail {
    SendEmail {
        notification_id: notification_id(),
        user_id: user_id(),
        to: "ada@example.com".into(),
        locale: "en-GB".into(),
        template: "order.confirmed".into(),
        subject: "Your order is confirmed".into(),
        body: "Thank you, Ada.\nYour order is on its way soon.".into(),
        source_event_id: event_id(),
    }
}

pub fn user_created() -> UserCreated {
    UserCreated {
        user_id: user_id(),
        email: "ada@example.com".into(),
        name: "Ada Lovelace".into(),
        phone: Some("+442071234567".into()),
        locale: "en-GB".into(),
        channels: NotificationChannels {
            email: true,
            sms: true,
            push: false,
        },
        role: UserRole::Customer,
        preferences: Default::default(),
    }
}

pub fn window_aggregate() -> WindowAggregate {
    WindowAggregate {
        window_key: format!("revenue/currency=USD/{FIXTURE_MILLIS}"),
        metric: AnalyticsMetric::Revenue,
        window_start: at(0),
        window_end: at(60_000),
        count: 3,
        amount: Some(usd(13_278)),
        is_final: false,
    }
}

fn coupon_kind() -> CouponKind {
    CouponKind::Percentage { basis_points: 2500 }
}

pub fn order_commands() -> Vec<OrderCommand> {
    vec![
        place_order().into(),
        CancelOrder {
            order_id: order_id(),
            user_id: user_id(),
            reason: "Ordered the wrong size".into(),
        }
        .into(),
        ShipOrder {
            order_id: order_id(),
            carrier: "DHL".into(),
            tracking_number: "JD014600006281234567".into(),
        }
        .into(),
        ConfirmDelivery {
            order_id: order_id(),
        }
        .into(),
    ]
}

pub fn catalog_commands() -> Vec<CatalogCommand> {
    vec![
        upsert_product().into(),
        ChangePrice {
            sku: sku("MUG"),
            price: usd(900),
        }
        .into(),
        Discontinue { sku: sku("MUG") }.into(),
        UpsertCoupon {
            coupon_id: coupon_id(),
            code: CouponCode::parse("SPRING25").unwrap(),
            kind: coupon_kind(),
            valid_from: at(0),
            valid_until: at(30 * 24 * 3600 * 1000),
            minimum_basket: Some(usd(2000)),
        }
        .into(),
    ]
}

pub fn inventory_commands() -> Vec<InventoryCommand> {
    vec![
        Restock {
            sku: sku("MUG"),
            quantity: 24,
        }
        .into(),
        Adjust {
            sku: sku("MUG"),
            delta: -2,
            reason: "Broken in transit".into(),
        }
        .into(),
        reserve().into(),
        Release {
            order_id: order_id(),
            line_index: 1,
            sku: sku("MUG"),
            reason: ReleaseReason::PaymentFailed,
        }
        .into(),
        Commit {
            order_id: order_id(),
            line_index: 1,
            sku: sku("MUG"),
        }
        .into(),
    ]
}

pub fn payment_commands() -> Vec<PaymentCommand> {
    vec![
        charge().into(),
        Refund {
            order_id: order_id(),
            payment_id: payment_id(),
            amount: usd(4426),
            reason: "Order cancelled".into(),
            idempotency_key: format!("refund-{}", payment_id()),
        }
        .into(),
        CancelCharge {
            order_id: order_id(),
            payment_id: payment_id(),
            reason: "the payment timed out".into(),
        }
        .into(),
    ]
}

pub fn order_events() -> Vec<OrderEvent> {
    vec![
        order_created().into(),
        OrderConfirmed {
            order_id: order_id(),
            user_id: user_id(),
            payment_id: payment_id(),
            total: usd(4426),
        }
        .into(),
        OrderRejected {
            order_id: order_id(),
            user_id: user_id(),
            reasons: vec![LineRejection {
                line_index: 0,
                sku: sku("TSHIRT-RED-M"),
                reason: LineRejectionReason::InsufficientStock,
                available: Some(1),
            }],
            order_reason: None,
        }
        .into(),
        OrderCancelled {
            order_id: order_id(),
            user_id: user_id(),
            reason: "Ordered the wrong size".into(),
            initiated_by: CancellationInitiator::Customer,
            refunded: true,
        }
        .into(),
        OrderShipped {
            order_id: order_id(),
            user_id: user_id(),
            carrier: "DHL".into(),
            tracking_number: "JD014600006281234567".into(),
        }
        .into(),
        OrderDelivered {
            order_id: order_id(),
            user_id: user_id(),
        }
        .into(),
        OrderPaymentFailed {
            order_id: order_id(),
            user_id: user_id(),
            payment_id: payment_id(),
            reason: "Card declined".into(),
        }
        .into(),
        TransitionRefused {
            order_id: order_id(),
            command: "CancelOrder".into(),
            command_event_id: event_id(),
            state: Some(OrderStatus::Shipped),
            reason: "Order already shipped".into(),
        }
        .into(),
    ]
}

pub fn inventory_events() -> Vec<InventoryEvent> {
    vec![
        stock_reserved().into(),
        StockRejected {
            order_id: order_id(),
            line_index: 0,
            sku: sku("TSHIRT-RED-M"),
            requested: 2,
            available: 1,
            reason: StockRejectionReason::InsufficientStock,
        }
        .into(),
        StockReleased {
            order_id: order_id(),
            line_index: 1,
            sku: sku("MUG"),
            quantity: 1,
            reason: ReleaseReason::OrderRejected,
        }
        .into(),
        StockCommitted {
            order_id: order_id(),
            line_index: 1,
            sku: sku("MUG"),
            quantity: 1,
        }
        .into(),
        StockUpdated {
            sku: sku("MUG"),
            on_hand: 22,
            reserved: 1,
            committed: 3,
        }
        .into(),
        StockLow {
            sku: sku("MUG"),
            available: 4,
            threshold: 5,
        }
        .into(),
    ]
}

pub fn payment_events() -> Vec<PaymentEvent> {
    vec![
        PaymentInitiated {
            order_id: order_id(),
            payment_id: payment_id(),
            amount: usd(4426),
            attempt: 1,
            idempotency_key: format!("charge-{}", payment_id()),
        }
        .into(),
        PaymentSucceeded {
            order_id: order_id(),
            payment_id: payment_id(),
            amount: usd(4426),
            provider_reference: "ch_3NXyz".into(),
            attempt: 1,
        }
        .into(),
        PaymentFailed {
            order_id: order_id(),
            payment_id: payment_id(),
            reason: "Card declined".into(),
            decline_code: Some("insufficient_funds".into()),
            retriable: false,
            attempt: 1,
        }
        .into(),
        PaymentRefunded {
            order_id: order_id(),
            payment_id: payment_id(),
            amount: usd(4426),
            provider_reference: "re_3NXyz".into(),
            reason: "Order cancelled".into(),
        }
        .into(),
    ]
}

pub fn notification_events() -> Vec<NotificationEvent> {
    vec![
        send_email().into(),
        SendSms {
            notification_id: notification_id(),
            user_id: user_id(),
            to: "+442071234567".into(),
            locale: "en-GB".into(),
            template: "order.shipped".into(),
            body: "Your order has shipped with DHL.".into(),
            source_event_id: event_id(),
        }
        .into(),
        SendPush {
            notification_id: notification_id(),
            user_id: user_id(),
            locale: "en-GB".into(),
            template: "order.shipped".into(),
            title: "Shipped".into(),
            body: "Your order has shipped with DHL.".into(),
            source_event_id: event_id(),
        }
        .into(),
        NotificationSent {
            notification_id: notification_id(),
            user_id: user_id(),
            channel: NotificationChannel::Email,
            source_event_id: event_id(),
            provider_reference: Some("msg-123".into()),
        }
        .into(),
        NotificationFailed {
            notification_id: notification_id(),
            user_id: user_id(),
            channel: NotificationChannel::Sms,
            source_event_id: event_id(),
            reason: "Carrier rejected the number".into(),
            retriable: false,
            attempt: 2,
        }
        .into(),
    ]
}

pub fn user_events() -> Vec<UserEvent> {
    let created = user_created();
    vec![
        created.clone().into(),
        UserUpdated {
            user_id: created.user_id,
            email: created.email,
            name: created.name,
            phone: None,
            locale: created.locale,
            channels: NotificationChannels {
                email: true,
                sms: false,
                push: true,
            },
            role: created.role,
            preferences: NotificationPreferences {
                muted: [NotificationTopic::OrderCreated].into(),
            },
            changed: vec![
                UserField::Phone,
                UserField::Channels,
                UserField::Preferences,
            ],
        }
        .into(),
    ]
}

pub fn catalog_events() -> Vec<CatalogEvent> {
    let mut discontinued = product();
    discontinued.active = false;
    discontinued.discontinued = true;
    vec![
        ProductUpserted {
            sku: sku("MUG"),
            product: product(),
        }
        .into(),
        PriceChanged {
            sku: sku("MUG"),
            old_price: usd(800),
            new_price: usd(850),
            product: product(),
        }
        .into(),
        ProductDiscontinued {
            sku: sku("MUG"),
            product: discontinued,
        }
        .into(),
        CouponUpserted {
            coupon_id: coupon_id(),
            code: CouponCode::parse("SPRING25").unwrap(),
            kind: coupon_kind(),
            valid_from: at(0),
            valid_until: at(1000),
            minimum_basket: None,
        }
        .into(),
    ]
}

pub fn analytics_aggregates() -> Vec<AnalyticsAggregate> {
    vec![window_aggregate().into()]
}
