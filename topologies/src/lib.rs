//! Named topologies: processors, topics and stores wired together. Each runs as its own
//! application (consumer group `orderflow-<name>`), so two topologies may read the same topic.

pub mod analytics;
pub mod catalog;
pub mod counter;
pub mod fulfillment;
pub mod notifications;

use orderflow_schemas::topic::TopicSpec;

/// Adds the `products` global table (sku -> product, from catalog-events).
pub fn add_products_table(builder: &mut orderflow_runtime::TopologyBuilder) {
    use orderflow_processors::catalog::{PRODUCTS_TABLE, project_product};
    builder.add_global_table(
        PRODUCTS_TABLE,
        orderflow_schemas::catalog::CATALOG_EVENTS,
        orderflow_processors::wire::EnvelopeSource::new(|envelope| envelope),
        orderflow_state_stores::StringCodec,
        orderflow_state_stores::CompactCodec,
        project_product,
    );
}

/// The spec of a public topic, from the schemas' topic catalog.
pub fn catalog_topic(name: &str) -> TopicSpec {
    orderflow_schemas::catalog::catalog_entry(name)
        .unwrap_or_else(|| panic!("topic `{name}` is not in the topic catalog"))
        .spec
}

use orderflow_runtime::{Topology, TopologyError};

/// A topology `orderflow topology describe` knows by name.
#[derive(Debug, Clone, Copy)]
pub struct NamedTopology {
    pub name: &'static str,
    pub summary: &'static str,
    pub build: fn() -> Result<Topology, TopologyError>,
}

/// Every named topology.
pub fn named_topologies() -> Vec<NamedTopology> {
    vec![
        NamedTopology {
            name: "catalog",
            summary: "catalog commands to product and coupon snapshots",
            build: catalog::topology,
        },
        NamedTopology {
            name: "fulfillment",
            summary: "the order saga, inventory and payment (with the simulated provider)",
            build: || fulfillment::topology(&fulfillment::FulfillmentOptions::default()),
        },
        NamedTopology {
            name: "notifications",
            summary: "order and payment events to notifications per enabled channel, via the outbox",
            build: || notifications::topology(&notifications::NotificationsOptions::default()),
        },
        NamedTopology {
            name: "analytics",
            summary: "1-minute and 1-hour windowed aggregates of orders, revenue, payments and stock",
            build: || analytics::topology(&analytics::AnalyticsOptions::default()),
        },
        NamedTopology {
            name: "counter",
            summary: "counts records per key, exactly once, and emits each running count",
            build: || counter::topology(counter::DEFAULT_PARTITIONS),
        },
    ]
}
