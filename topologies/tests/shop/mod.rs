//! A test shop: the fulfillment topology in the test driver, with helpers to stock products,
//! place orders and read what happened.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Arc;

use orderflow_processors::inventory::{STOCK_STORE, StockLevel};
use orderflow_processors::order_saga::{ORDER_STORE, OrderState, SagaConfig};
use orderflow_processors::payment::{PaymentConfig, SimulatedProvider};
use orderflow_processors::wire::envelope_serde;
use orderflow_runtime::{Clock, TopologyTestDriver};
use orderflow_schemas::address::{CountryCode, ShippingAddress};
use orderflow_schemas::codes::{CouponCode, Sku};
use orderflow_schemas::currency::Currency;
use orderflow_schemas::envelope::{Envelope, Message};
use orderflow_schemas::ids::{CorrelationId, CouponId, EventId, OrderId, UserId};
use orderflow_schemas::messages::catalog_commands::CouponKind;
use orderflow_schemas::messages::catalog_events::{
    CatalogEvent, CouponUpserted, PriceChanged, Product, ProductUpserted,
};
use orderflow_schemas::messages::inventory_commands::{InventoryCommand, Restock};
use orderflow_schemas::messages::inventory_events::InventoryEvent;
use orderflow_schemas::messages::order_commands::{
    CancelOrder, ConfirmDelivery, OrderCommand, OrderLine, PlaceOrder, ShipOrder,
};
use orderflow_schemas::messages::order_events::{OrderEvent, OrderStatus};
use orderflow_schemas::messages::payment_events::PaymentEvent;
use orderflow_schemas::money::Money;
use orderflow_schemas::time::Timestamp;
use orderflow_topologies::fulfillment::{self, FulfillmentOptions};

pub fn usd(amount_minor: i64) -> Money {
    Money::new(amount_minor, Currency::parse("USD").unwrap())
}

pub fn sku(name: &str) -> Sku {
    Sku::parse(name).unwrap()
}

pub struct Shop {
    pub driver: TopologyTestDriver,
    pub provider: Arc<SimulatedProvider>,
    pub order_events: Vec<OrderEvent>,
    pub inventory_events: Vec<InventoryEvent>,
    pub payment_events: Vec<PaymentEvent>,
}

impl Shop {
    pub fn new() -> Self {
        Self::with_configs(SagaConfig::default(), PaymentConfig::default(), 6)
    }

    pub fn with_configs(saga: SagaConfig, payment: PaymentConfig, _partitions: u32) -> Self {
        let provider = Arc::new(SimulatedProvider::new());
        let options = FulfillmentOptions {
            saga: Arc::new(saga),
            payment: Arc::new(payment),
            provider: provider.clone(),
        };
        let driver = TopologyTestDriver::new(fulfillment::topology(&options).unwrap()).unwrap();
        Self {
            driver,
            provider,
            order_events: Vec::new(),
            inventory_events: Vec::new(),
            payment_events: Vec::new(),
        }
    }

    pub fn now(&self) -> i64 {
        self.driver.clock().now_ms()
    }

    fn envelope<T: Message>(&self, payload: T) -> Envelope<T> {
        let now = self.now();
        Envelope::new(
            payload,
            Timestamp::from_unix_millis(now),
            CorrelationId::generate(now),
            None,
            EventId::generate(now),
        )
    }

    pub fn pipe<T: Message>(&mut self, topic: &str, payload: T) {
        let key = payload.partition_key();
        let envelope = self.envelope(payload);
        let now = self.now();
        self.driver
            .pipe(topic, &envelope_serde::<T>(), &key, &envelope, now)
            .unwrap();
    }

    /// Publishes a product (as the catalog topology would) and restocks it.
    pub fn add_product(&mut self, name: &str, price_minor: i64, stock: u32, low_threshold: u32) {
        let product = Product {
            sku: sku(name),
            name: format!("Product {name}"),
            description: "A product".to_string(),
            category: "things".to_string(),
            price: usd(price_minor),
            active: true,
            discontinued: false,
            low_stock_threshold: low_threshold,
        };
        self.pipe(
            "catalog-events",
            CatalogEvent::ProductUpserted(ProductUpserted {
                sku: sku(name),
                product,
            }),
        );
        if stock > 0 {
            self.restock(name, stock);
        }
        self.run();
    }

    pub fn change_price(&mut self, name: &str, price_minor: i64) {
        let product = Product {
            sku: sku(name),
            name: format!("Product {name}"),
            description: "A product".to_string(),
            category: "things".to_string(),
            price: usd(price_minor),
            active: true,
            discontinued: false,
            low_stock_threshold: 0,
        };
        self.pipe(
            "catalog-events",
            CatalogEvent::PriceChanged(PriceChanged {
                sku: sku(name),
                old_price: usd(0),
                new_price: usd(price_minor),
                product,
            }),
        );
        self.run();
    }

    pub fn add_coupon(&mut self, code: &str, kind: CouponKind) {
        let now = self.now();
        self.pipe(
            "catalog-events",
            CatalogEvent::CouponUpserted(CouponUpserted {
                coupon_id: CouponId::generate(now),
                code: CouponCode::parse(code).unwrap(),
                kind,
                valid_from: Timestamp::from_unix_millis(now - 1_000),
                valid_until: Timestamp::from_unix_millis(now + 86_400_000),
                minimum_basket: None,
            }),
        );
        self.run();
    }

    pub fn restock(&mut self, name: &str, quantity: u32) {
        self.pipe(
            "inventory-commands",
            InventoryCommand::Restock(Restock {
                sku: sku(name),
                quantity,
            }),
        );
    }

    pub fn place(
        &mut self,
        user: UserId,
        lines: &[(&str, u32)],
        token: &str,
        coupon: Option<&str>,
    ) -> OrderId {
        let order_id = OrderId::generate(self.now());
        self.pipe(
            "order-commands",
            OrderCommand::PlaceOrder(PlaceOrder {
                order_id,
                user_id: user,
                lines: lines
                    .iter()
                    .map(|(name, quantity)| OrderLine {
                        sku: sku(name),
                        quantity: *quantity,
                    })
                    .collect(),
                currency: Currency::parse("USD").unwrap(),
                coupon_code: coupon.map(|code| CouponCode::parse(code).unwrap()),
                shipping_address: ShippingAddress {
                    name: "Ada Lovelace".to_string(),
                    line1: "1 Analytical St".to_string(),
                    line2: None,
                    city: "London".to_string(),
                    postal_code: "N1".to_string(),
                    country: CountryCode::parse("US").unwrap(),
                    region: Some("CA".to_string()),
                },
                payment_method_token: token.to_string(),
            }),
        );
        order_id
    }

    pub fn cancel(&mut self, order_id: OrderId, user: UserId) {
        self.pipe(
            "order-commands",
            OrderCommand::CancelOrder(CancelOrder {
                order_id,
                user_id: user,
                reason: "changed my mind".to_string(),
            }),
        );
    }

    pub fn ship(&mut self, order_id: OrderId) {
        self.pipe(
            "order-commands",
            OrderCommand::ShipOrder(ShipOrder {
                order_id,
                carrier: "UPS".to_string(),
                tracking_number: "1Z".to_string(),
            }),
        );
    }

    pub fn deliver(&mut self, order_id: OrderId) {
        self.pipe(
            "order-commands",
            OrderCommand::ConfirmDelivery(ConfirmDelivery { order_id }),
        );
    }

    /// Runs until idle and collects what was emitted.
    pub fn run(&mut self) {
        self.driver.run_until_idle().unwrap();
        self.collect();
    }

    pub fn advance(&mut self, milliseconds: i64) {
        self.driver.advance_wall_clock(milliseconds).unwrap();
        self.collect();
    }

    fn collect(&mut self) {
        for record in self
            .driver
            .read("order-events", &envelope_serde::<OrderEvent>())
            .unwrap()
        {
            self.order_events.push(record.value.payload);
        }
        for record in self
            .driver
            .read("inventory-events", &envelope_serde::<InventoryEvent>())
            .unwrap()
        {
            self.inventory_events.push(record.value.payload);
        }
        for record in self
            .driver
            .read("payment-events", &envelope_serde::<PaymentEvent>())
            .unwrap()
        {
            self.payment_events.push(record.value.payload);
        }
    }

    pub fn orders(&self) -> HashMap<OrderId, OrderState> {
        self.driver
            .store_entries::<String, OrderState>(ORDER_STORE)
            .unwrap()
            .into_iter()
            .map(|(_, state)| (state.order_id, state))
            .collect()
    }

    /// Rewrites an order's stored state as builds before fixed deadlines stored it: the first
    /// shape, without `deadline_at_ms` (JSON, as the first builds wrote it).
    pub fn store_as_older_build(&mut self, order_id: OrderId) {
        let state = self.orders()[&order_id].clone();
        let mut json = serde_json::to_value(&state).unwrap();
        json.as_object_mut().unwrap().remove("deadline_at_ms");
        self.driver
            .put_store_bytes(
                ORDER_STORE,
                order_id.to_string().as_bytes(),
                serde_json::to_vec(&json).unwrap(),
            )
            .unwrap();
        assert_eq!(self.orders()[&order_id].deadline_at_ms, None);
    }

    pub fn status(&self, order_id: OrderId) -> OrderStatus {
        self.orders()[&order_id].status
    }

    pub fn stock(&self, name: &str) -> StockLevel {
        self.driver
            .store_entries::<String, StockLevel>(STOCK_STORE)
            .unwrap()
            .into_iter()
            .find(|(key, _)| key == name)
            .map(|(_, level)| level)
            .unwrap_or_default()
    }

    pub fn events_of(&self, order_id: OrderId) -> Vec<&'static str> {
        self.order_events
            .iter()
            .filter(|event| event.partition_key() == order_id.to_string())
            .map(|event| event.message_type())
            .collect()
    }

    pub fn clock(&self) -> i64 {
        self.driver.clock().now_ms()
    }
}
