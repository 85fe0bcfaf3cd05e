//! The analytics topology: facts from order, payment and inventory events, windowed into
//! 1-minute tumbling and 1-hour hopping aggregates on analytics-aggregates, and exported (raw
//! order events and final aggregates) as rotated JSON-lines files.

use std::path::PathBuf;
use std::sync::Arc;

use orderflow_processors::analytics::{
    AnalyticsConfig, AnalyticsInput, CONFIRMED_ORDERS_STORE, CategorizedLine, FACTS_TOPIC, Fact,
    FactExtractor, HOUR_PANES, MINUTE_WINDOWS, ORDER_LINES_STORE, PANE_RETENTION_MS, WINDOW_SHAPES,
    WindowAggregator, WindowTotal,
};
use orderflow_processors::export::JsonLinesExport;
use orderflow_processors::wire::{EnvelopeSource, envelope_serde};
use orderflow_runtime::{RecordSerde, Topology, TopologyBuilder, TopologyError};
use orderflow_schemas::catalog::{
    ANALYTICS_AGGREGATES, CATALOG_EVENTS, INVENTORY_EVENTS, LOW_VOLUME_PARTITIONS, ORDER_EVENTS,
    PAYMENT_EVENTS,
};
use orderflow_schemas::messages::analytics::AnalyticsAggregate;
use orderflow_schemas::topic::TopicSpec;
use orderflow_state_stores::{CompactCodec, JsonCodec, StringCodec, WindowRetention};

use crate::catalog_topic;

/// What the analytics topology is built with.
#[derive(Debug, Clone, Default)]
pub struct AnalyticsOptions {
    pub config: Arc<AnalyticsConfig>,
    /// Where the JSON-lines exports go; `None`: no export.
    pub export_directory: Option<PathBuf>,
    /// Largest export file before rotation.
    pub export_file_bytes: u64,
}

/// Builds the analytics topology.
pub fn topology(options: &AnalyticsOptions) -> Result<Topology, TopologyError> {
    let mut builder = TopologyBuilder::new();
    for topic in [
        ORDER_EVENTS,
        PAYMENT_EVENTS,
        INVENTORY_EVENTS,
        CATALOG_EVENTS,
        ANALYTICS_AGGREGATES,
    ] {
        builder.add_topic(catalog_topic(topic));
    }
    builder.add_topic(TopicSpec::new(FACTS_TOPIC, LOW_VOLUME_PARTITIONS));
    crate::add_products_table(&mut builder);
    // An internal topic that only this topology reads: compact binary values.
    let facts: RecordSerde<String, Fact> = RecordSerde::new(StringCodec, CompactCodec);
    builder
        .add_source(
            "analytics-order-events",
            ORDER_EVENTS,
            EnvelopeSource::new(AnalyticsInput::Order),
        )
        .add_source(
            "analytics-payment-events",
            PAYMENT_EVENTS,
            EnvelopeSource::new(AnalyticsInput::Payment),
        )
        .add_source(
            "analytics-inventory-events",
            INVENTORY_EVENTS,
            EnvelopeSource::new(AnalyticsInput::Inventory),
        )
        .add_processor(
            "facts",
            &[
                "analytics-order-events",
                "analytics-payment-events",
                "analytics-inventory-events",
            ],
            || FactExtractor,
            &[ORDER_LINES_STORE, CONFIRMED_ORDERS_STORE],
        )
        .add_key_value_store::<String, u8>(CONFIRMED_ORDERS_STORE, StringCodec, JsonCodec)
        .add_key_value_store::<String, Vec<CategorizedLine>>(
            ORDER_LINES_STORE,
            StringCodec,
            CompactCodec,
        )
        .add_sink("facts-sink", &["facts"], FACTS_TOPIC, facts.clone())
        .add_source("facts-source", FACTS_TOPIC, facts);
    let config = options.config.clone();
    let window_stores: Vec<&str> = WINDOW_SHAPES.iter().map(|shape| shape.store).collect();
    builder.add_processor(
        "windows",
        &["facts-source"],
        move || WindowAggregator::new(config.clone()),
        &window_stores,
    );
    builder
        .add_window_store::<String, WindowTotal>(
            MINUTE_WINDOWS,
            WindowRetention::new(WINDOW_SHAPES[0].retention_ms(options.config.grace_ms)),
            StringCodec,
            CompactCodec,
        )
        .add_window_store::<String, WindowTotal>(
            HOUR_PANES,
            WindowRetention::new(PANE_RETENTION_MS),
            StringCodec,
            CompactCodec,
        );
    builder.add_sink(
        "aggregates-sink",
        &["windows"],
        ANALYTICS_AGGREGATES,
        envelope_serde::<AnalyticsAggregate>(),
    );
    if let Some(directory) = &options.export_directory {
        let file_bytes = if options.export_file_bytes == 0 {
            64 * 1024 * 1024
        } else {
            options.export_file_bytes
        };
        builder
            .add_export(
                "export-aggregates",
                ANALYTICS_AGGREGATES,
                Arc::new(JsonLinesExport::new(
                    directory.clone(),
                    "aggregates",
                    file_bytes,
                )),
            )
            .add_export(
                "export-order-events",
                ORDER_EVENTS,
                Arc::new(JsonLinesExport::new(
                    directory.clone(),
                    "order-events",
                    file_bytes,
                )),
            );
    }
    builder.build()
}
