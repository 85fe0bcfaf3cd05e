//! The catalog topology: admin catalog commands to catalog events (snapshots per sku/coupon).

use orderflow_processors::catalog::{COUPON_STORE, CatalogProcessor, PRODUCT_STORE};
use orderflow_processors::wire::envelope_serde;
use orderflow_runtime::{Topology, TopologyBuilder, TopologyError};
use orderflow_schemas::catalog::{CATALOG_COMMANDS, CATALOG_EVENTS};
use orderflow_schemas::messages::catalog_commands::CatalogCommand;
use orderflow_schemas::messages::catalog_events::{CatalogEvent, CouponUpserted, Product};
use orderflow_state_stores::{JsonCodec, StringCodec};

use crate::catalog_topic;

/// Builds the catalog topology.
pub fn topology() -> Result<Topology, TopologyError> {
    let mut builder = TopologyBuilder::new();
    builder
        .add_topic(catalog_topic(CATALOG_COMMANDS))
        .add_topic(catalog_topic(CATALOG_EVENTS))
        .add_source(
            "catalog-commands",
            CATALOG_COMMANDS,
            envelope_serde::<CatalogCommand>(),
        )
        .add_processor(
            "catalog",
            &["catalog-commands"],
            || CatalogProcessor,
            &[PRODUCT_STORE, COUPON_STORE],
        )
        .add_key_value_store::<String, Product>(PRODUCT_STORE, StringCodec, JsonCodec)
        .add_key_value_store::<String, CouponUpserted>(COUPON_STORE, StringCodec, JsonCodec)
        .add_sink(
            "catalog-events-sink",
            &["catalog"],
            CATALOG_EVENTS,
            envelope_serde::<CatalogEvent>(),
        );
    builder.build()
}
