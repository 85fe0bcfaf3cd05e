//! The topic catalog: every public topic, what its records are keyed by, which message types it
//! carries, who writes it, and how it is created (partitions, cleanup, retention).
//!
//! Topics whose records are joined per order (order commands and events, payment commands and
//! events, inventory events) have the same partition count, so one order's records from all of
//! them land on the same partition number and one task sees them all.

use crate::topic::TopicSpec;

/// `order-commands` topic name.
pub const ORDER_COMMANDS: &str = "order-commands";
/// `catalog-commands` topic name.
pub const CATALOG_COMMANDS: &str = "catalog-commands";
/// `inventory-commands` topic name.
pub const INVENTORY_COMMANDS: &str = "inventory-commands";
/// `payment-commands` topic name.
pub const PAYMENT_COMMANDS: &str = "payment-commands";
/// `order-events` topic name.
pub const ORDER_EVENTS: &str = "order-events";
/// `inventory-events` topic name.
pub const INVENTORY_EVENTS: &str = "inventory-events";
/// `payment-events` topic name.
pub const PAYMENT_EVENTS: &str = "payment-events";
/// `notification-events` topic name.
pub const NOTIFICATION_EVENTS: &str = "notification-events";
/// `user-events` topic name.
pub const USER_EVENTS: &str = "user-events";
/// `catalog-events` topic name.
pub const CATALOG_EVENTS: &str = "catalog-events";
/// `analytics-aggregates` topic name.
pub const ANALYTICS_AGGREGATES: &str = "analytics-aggregates";

/// Partitions of topics that carry per-order or per-user traffic.
pub const HIGH_VOLUME_PARTITIONS: u32 = 6;
/// Partitions of administrative and aggregate topics.
pub const LOW_VOLUME_PARTITIONS: u32 = 3;

/// Prefix of coupon keys on the catalog topics, which otherwise are keyed by SKU.
pub const COUPON_KEY_PREFIX: &str = "coupon:";

/// One public topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogEntry {
    /// How to create it.
    pub spec: TopicSpec,
    /// What the record key is, in words.
    pub key: &'static str,
    /// The message types (envelope `type` values) it carries.
    pub value_types: &'static [&'static str],
    /// Which component writes it.
    pub written_by: &'static str,
}

impl CatalogEntry {
    /// The topic name.
    pub fn name(&self) -> &str {
        &self.spec.name
    }
}

/// Every public topic, in the order of the architecture brief's table. Dead-letter topics are
/// derived with [`TopicSpec::dead_letter`].
pub fn topic_catalog() -> Vec<CatalogEntry> {
    let seven_day_log = |name, partitions| TopicSpec::new(name, partitions);
    vec![
        CatalogEntry {
            spec: seven_day_log(ORDER_COMMANDS, HIGH_VOLUME_PARTITIONS),
            key: "order id",
            value_types: &["PlaceOrder", "CancelOrder", "ShipOrder", "ConfirmDelivery"],
            written_by: "ingress API",
        },
        CatalogEntry {
            spec: seven_day_log(CATALOG_COMMANDS, LOW_VOLUME_PARTITIONS),
            key: "sku (coupons: coupon:<code>)",
            value_types: &[
                "UpsertProduct",
                "ChangePrice",
                "Discontinue",
                "UpsertCoupon",
            ],
            written_by: "ingress API (admin)",
        },
        CatalogEntry {
            spec: seven_day_log(INVENTORY_COMMANDS, HIGH_VOLUME_PARTITIONS),
            key: "sku",
            value_types: &["Restock", "Adjust", "Reserve", "Release", "Commit"],
            written_by: "ingress API (admin: Restock, Adjust), order saga (Reserve, Release, Commit)",
        },
        CatalogEntry {
            spec: seven_day_log(PAYMENT_COMMANDS, HIGH_VOLUME_PARTITIONS),
            key: "order id",
            value_types: &["Charge", "Refund", "CancelCharge"],
            written_by: "order saga",
        },
        CatalogEntry {
            spec: seven_day_log(ORDER_EVENTS, HIGH_VOLUME_PARTITIONS),
            key: "order id",
            value_types: &[
                "OrderCreated",
                "OrderConfirmed",
                "OrderRejected",
                "OrderCancelled",
                "OrderShipped",
                "OrderDelivered",
                "OrderPaymentFailed",
                "TransitionRefused",
            ],
            written_by: "order processor",
        },
        CatalogEntry {
            spec: seven_day_log(INVENTORY_EVENTS, HIGH_VOLUME_PARTITIONS),
            key: "order id (saga answers), sku (StockUpdated, StockLow)",
            value_types: &[
                "StockReserved",
                "StockRejected",
                "StockReleased",
                "StockCommitted",
                "StockUpdated",
                "StockLow",
            ],
            written_by: "inventory processor",
        },
        CatalogEntry {
            spec: seven_day_log(PAYMENT_EVENTS, HIGH_VOLUME_PARTITIONS),
            key: "order id",
            value_types: &[
                "PaymentInitiated",
                "PaymentSucceeded",
                "PaymentFailed",
                "PaymentRefunded",
            ],
            written_by: "payment processor",
        },
        CatalogEntry {
            spec: seven_day_log(NOTIFICATION_EVENTS, HIGH_VOLUME_PARTITIONS),
            key: "user id",
            value_types: &[
                "SendEmail",
                "SendSms",
                "SendPush",
                "NotificationSent",
                "NotificationFailed",
            ],
            written_by: "notification processor",
        },
        CatalogEntry {
            spec: TopicSpec::compacted(USER_EVENTS, LOW_VOLUME_PARTITIONS),
            key: "user id",
            value_types: &["UserCreated", "UserUpdated"],
            written_by: "ingress API (via outbox)",
        },
        CatalogEntry {
            spec: TopicSpec::compacted(CATALOG_EVENTS, LOW_VOLUME_PARTITIONS),
            key: "sku (coupons: coupon:<code>)",
            value_types: &[
                "ProductUpserted",
                "PriceChanged",
                "ProductDiscontinued",
                "CouponUpserted",
            ],
            written_by: "catalog processor",
        },
        CatalogEntry {
            spec: seven_day_log(ANALYTICS_AGGREGATES, LOW_VOLUME_PARTITIONS),
            key: "window key",
            value_types: &["WindowAggregate"],
            written_by: "analytics processor",
        },
    ]
}

/// The catalog entry of topic `name`, if it is a public topic.
pub fn catalog_entry(name: &str) -> Option<CatalogEntry> {
    topic_catalog()
        .into_iter()
        .find(|entry| entry.spec.name == name)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::envelope::Message;
    use crate::messages::{
        AnalyticsAggregate, CatalogCommand, CatalogEvent, InventoryCommand, InventoryEvent,
        NotificationEvent, OrderCommand, OrderEvent, PaymentCommand, PaymentEvent, UserEvent,
    };
    use crate::topic::CleanupPolicy;

    /// (topic, types) of every payload enum.
    fn payload_enums() -> Vec<(&'static str, &'static [&'static str])> {
        fn of<T: Message>() -> (&'static str, &'static [&'static str]) {
            (T::TOPIC, T::TYPES)
        }
        vec![
            of::<OrderCommand>(),
            of::<CatalogCommand>(),
            of::<InventoryCommand>(),
            of::<PaymentCommand>(),
            of::<OrderEvent>(),
            of::<InventoryEvent>(),
            of::<PaymentEvent>(),
            of::<NotificationEvent>(),
            of::<UserEvent>(),
            of::<CatalogEvent>(),
            of::<AnalyticsAggregate>(),
        ]
    }

    #[test]
    fn every_payload_type_appears_in_exactly_the_topic_that_carries_it() {
        let catalog = topic_catalog();
        for (topic, types) in payload_enums() {
            for message_type in types {
                let carriers: Vec<&str> = catalog
                    .iter()
                    .filter(|entry| entry.value_types.contains(message_type))
                    .map(CatalogEntry::name)
                    .collect();
                assert_eq!(carriers, [topic], "{message_type}");
            }
            let entry = catalog_entry(topic).expect("payload topic is in the catalog");
            let declared: BTreeSet<_> = entry.value_types.iter().collect();
            let carried: BTreeSet<_> = types.iter().collect();
            assert_eq!(declared, carried, "{topic}");
        }
        let topics_with_payloads: BTreeSet<_> = payload_enums()
            .into_iter()
            .map(|(topic, _)| topic)
            .collect();
        let catalog_topics: BTreeSet<_> = catalog.iter().map(CatalogEntry::name).collect();
        assert_eq!(topics_with_payloads, catalog_topics);
    }

    #[test]
    fn message_type_names_are_unique_across_topics() {
        let all: Vec<&str> = payload_enums()
            .into_iter()
            .flat_map(|(_, types)| types.iter().copied())
            .collect();
        let unique: BTreeSet<&str> = all.iter().copied().collect();
        assert_eq!(all.len(), unique.len());
    }

    #[test]
    fn cleanup_policies() {
        for entry in topic_catalog() {
            let compacted = [USER_EVENTS, CATALOG_EVENTS].contains(&entry.name());
            if compacted {
                assert_eq!(
                    entry.spec.cleanup,
                    CleanupPolicy::Compact,
                    "{}",
                    entry.name()
                );
                assert_eq!(entry.spec.retention_ms, None);
            } else {
                assert_eq!(
                    entry.spec.cleanup,
                    CleanupPolicy::Delete,
                    "{}",
                    entry.name()
                );
                assert_eq!(entry.spec.retention_ms, Some(7 * 24 * 60 * 60 * 1000));
            }
        }
    }

    #[test]
    fn per_order_topics_are_co_partitioned() {
        let partitions: BTreeSet<u32> = [
            ORDER_COMMANDS,
            PAYMENT_COMMANDS,
            ORDER_EVENTS,
            PAYMENT_EVENTS,
            INVENTORY_EVENTS,
        ]
        .into_iter()
        .map(|name| catalog_entry(name).unwrap().spec.partitions)
        .collect();
        assert_eq!(partitions.len(), 1, "{partitions:?}");
    }

    #[test]
    fn names_are_unique_and_not_dead_letter_topics() {
        let catalog = topic_catalog();
        let names: BTreeSet<&str> = catalog.iter().map(CatalogEntry::name).collect();
        assert_eq!(names.len(), catalog.len());
        assert!(
            names
                .iter()
                .all(|name| crate::topic::dead_letter_source(name).is_none())
        );
        assert_eq!(catalog_entry("nope"), None);
    }

    #[test]
    fn coupon_prefix_matches_the_keys_messages_use() {
        let coupon = crate::messages::fixtures::catalog_commands()
            .into_iter()
            .find(|command| command.message_type() == "UpsertCoupon")
            .unwrap();
        assert!(coupon.partition_key().starts_with(COUPON_KEY_PREFIX));
    }
}
