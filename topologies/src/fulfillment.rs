//! The fulfillment topology: the order saga, inventory and payment, with the catalog read
//! through global tables and the payment provider called by an effect executor.
//!
//! ```text
//! order-commands ─┐
//! inventory-events┼─> order saga ─┬─> order-events
//! payment-events ─┘               ├─> inventory-commands ──> inventory ──> inventory-events
//!                                 └─> payment-commands ──┐
//!   provider-results ────────────────────────────────────┴─> payment ─┬─> payment-events
//!          ^                                                          └─> provider-requests
//!          └──────────── effect executor (PaymentProvider) <──────────────────┘
//! catalog-events ──> global tables `products`, `coupons` (read by the saga and inventory)
//! ```

use std::sync::Arc;

use orderflow_processors::catalog::{COUPONS_TABLE, project_coupon};
use orderflow_processors::inventory::{
    InventoryProcessor, RESERVATION_STORE, Reservation, STOCK_STORE, StockLevel,
};
use orderflow_processors::order_saga::{
    INVENTORY_COMMANDS_SINK, ORDER_EVENTS_SINK, ORDER_STORE, OrderSaga, OrderState,
    PAYMENT_COMMANDS_SINK, SagaConfig, SagaInput, SagaOutput,
};
use orderflow_processors::order_state_codec::OrderStateCodec;
use orderflow_processors::payment::{
    PAYMENT_EVENTS_SINK, PAYMENT_STORE, PROVIDER_REQUESTS_SINK, PROVIDER_REQUESTS_TOPIC,
    PROVIDER_RESULTS_TOPIC, PaymentConfig, PaymentEffect, PaymentInput, PaymentProcessor,
    PaymentProvider, PaymentRecord, SimulatedProvider, encode_request, payment_event,
};
use orderflow_processors::wire::{
    EnvelopeSink, EnvelopeSource, JsonSource, VariantSink, envelope_serde,
};
use orderflow_runtime::{Topology, TopologyBuilder, TopologyError};
use orderflow_schemas::catalog::{
    CATALOG_EVENTS, HIGH_VOLUME_PARTITIONS, INVENTORY_COMMANDS, INVENTORY_EVENTS, ORDER_COMMANDS,
    ORDER_EVENTS, PAYMENT_COMMANDS, PAYMENT_EVENTS,
};
use orderflow_schemas::messages::inventory_commands::InventoryCommand;
use orderflow_schemas::messages::inventory_events::InventoryEvent;
use orderflow_schemas::topic::TopicSpec;
use orderflow_state_stores::{CompactCodec, JsonCodec, StringCodec};

use crate::catalog_topic;

/// What the fulfillment topology is built with.
#[derive(Clone)]
pub struct FulfillmentOptions {
    pub saga: Arc<SagaConfig>,
    pub payment: Arc<PaymentConfig>,
    pub provider: Arc<dyn PaymentProvider>,
}

impl std::fmt::Debug for FulfillmentOptions {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("FulfillmentOptions")
            .field("saga", &self.saga)
            .field("payment", &self.payment)
            .finish()
    }
}

impl Default for FulfillmentOptions {
    fn default() -> Self {
        Self {
            saga: Arc::default(),
            payment: Arc::default(),
            provider: Arc::new(SimulatedProvider::new()),
        }
    }
}

/// Builds the fulfillment topology.
pub fn topology(options: &FulfillmentOptions) -> Result<Topology, TopologyError> {
    let mut builder = TopologyBuilder::new();
    for topic in [
        ORDER_COMMANDS,
        INVENTORY_COMMANDS,
        PAYMENT_COMMANDS,
        ORDER_EVENTS,
        INVENTORY_EVENTS,
        PAYMENT_EVENTS,
        CATALOG_EVENTS,
    ] {
        builder.add_topic(catalog_topic(topic));
    }
    builder
        .add_topic(TopicSpec::new(
            PROVIDER_REQUESTS_TOPIC,
            HIGH_VOLUME_PARTITIONS,
        ))
        .add_topic(TopicSpec::new(
            PROVIDER_RESULTS_TOPIC,
            HIGH_VOLUME_PARTITIONS,
        ));

    crate::add_products_table(&mut builder);
    builder.add_global_table(
        COUPONS_TABLE,
        CATALOG_EVENTS,
        EnvelopeSource::new(|envelope| envelope),
        StringCodec,
        // JSON: a coupon's kind is an internally tagged enum, which postcard cannot read back.
        JsonCodec,
        project_coupon,
    );

    // The order saga.
    let saga = options.saga.clone();
    builder
        .add_source(
            "order-commands",
            ORDER_COMMANDS,
            EnvelopeSource::new(SagaInput::Command),
        )
        .add_source(
            "saga-inventory-events",
            INVENTORY_EVENTS,
            EnvelopeSource::new(SagaInput::Inventory),
        )
        .add_source(
            "saga-payment-events",
            PAYMENT_EVENTS,
            EnvelopeSource::new(SagaInput::Payment),
        )
        .add_processor(
            "order-saga",
            &[
                "order-commands",
                "saga-inventory-events",
                "saga-payment-events",
            ],
            move || OrderSaga::new(saga.clone()),
            &[ORDER_STORE],
        )
        .add_key_value_store::<String, OrderState>(ORDER_STORE, StringCodec, OrderStateCodec)
        .add_sink(
            ORDER_EVENTS_SINK,
            &["order-saga"],
            ORDER_EVENTS,
            EnvelopeSink::new(|output: &SagaOutput| match output {
                SagaOutput::Order(envelope) => Some(envelope),
                _ => None,
            }),
        )
        .add_sink(
            INVENTORY_COMMANDS_SINK,
            &["order-saga"],
            INVENTORY_COMMANDS,
            EnvelopeSink::new(|output: &SagaOutput| match output {
                SagaOutput::Inventory(envelope) => Some(envelope),
                _ => None,
            }),
        )
        .add_sink(
            PAYMENT_COMMANDS_SINK,
            &["order-saga"],
            PAYMENT_COMMANDS,
            EnvelopeSink::new(|output: &SagaOutput| match output {
                SagaOutput::Payment(envelope) => Some(envelope),
                _ => None,
            }),
        );

    // Inventory: one writer per sku.
    builder
        .add_source(
            "inventory-commands",
            INVENTORY_COMMANDS,
            envelope_serde::<InventoryCommand>(),
        )
        .add_processor(
            "inventory",
            &["inventory-commands"],
            || InventoryProcessor,
            &[STOCK_STORE, RESERVATION_STORE],
        )
        .add_key_value_store::<String, StockLevel>(STOCK_STORE, StringCodec, CompactCodec)
        .add_key_value_store::<String, Reservation>(RESERVATION_STORE, StringCodec, CompactCodec)
        .add_sink(
            "inventory-events-sink",
            &["inventory"],
            INVENTORY_EVENTS,
            envelope_serde::<InventoryEvent>(),
        );

    // Payment, with provider calls as effects.
    let payment = options.payment.clone();
    builder
        .add_source(
            "payment-commands",
            PAYMENT_COMMANDS,
            EnvelopeSource::new(PaymentInput::Command),
        )
        .add_source(
            "provider-results",
            PROVIDER_RESULTS_TOPIC,
            JsonSource::new(PaymentInput::Result),
        )
        .add_processor(
            "payment",
            &["payment-commands", "provider-results"],
            move || PaymentProcessor::new(payment.clone()),
            &[PAYMENT_STORE],
        )
        .add_key_value_store::<String, PaymentRecord>(PAYMENT_STORE, StringCodec, CompactCodec)
        .add_sink(
            PAYMENT_EVENTS_SINK,
            &["payment"],
            PAYMENT_EVENTS,
            EnvelopeSink::new(payment_event),
        )
        .add_sink(
            PROVIDER_REQUESTS_SINK,
            &["payment"],
            PROVIDER_REQUESTS_TOPIC,
            VariantSink::new(PROVIDER_REQUESTS_TOPIC, encode_request),
        )
        .add_effect(
            "payment-provider",
            PROVIDER_REQUESTS_TOPIC,
            PROVIDER_RESULTS_TOPIC,
            Arc::new(PaymentEffect::new(options.provider.clone())),
        );
    builder.build()
}
