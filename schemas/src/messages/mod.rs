//! Commands and events: one module per topic, each with the topic's payload enum.
//!
//! | module | payload enum | topic |
//! | --- | --- | --- |
//! | [`order_commands`] | [`OrderCommand`] | `order-commands` |
//! | [`catalog_commands`] | [`CatalogCommand`] | `catalog-commands` |
//! | [`inventory_commands`] | [`InventoryCommand`] | `inventory-commands` |
//! | [`payment_commands`] | [`PaymentCommand`] | `payment-commands` |
//! | [`order_events`] | [`OrderEvent`] | `order-events` |
//! | [`inventory_events`] | [`InventoryEvent`] | `inventory-events` |
//! | [`payment_events`] | [`PaymentEvent`] | `payment-events` |
//! | [`notification_events`] | [`NotificationEvent`] | `notification-events` |
//! | [`user_events`] | [`UserEvent`] | `user-events` |
//! | [`catalog_events`] | [`CatalogEvent`] | `catalog-events` |
//! | [`analytics`] | [`AnalyticsAggregate`] | `analytics-aggregates` |
//!
//! Every variant wraps a struct of the same name (`OrderCommand::PlaceOrder(PlaceOrder)`), and
//! every struct rejects unknown fields, so a producer's typo fails loudly at the consumer instead
//! of being silently dropped.

/// Defines a topic's payload enum and its [`crate::envelope::Message`] implementation.
///
/// Each variant names a struct of the same name, the struct field the record is keyed by, and
/// optionally a key prefix (used where one topic's key space mixes two kinds of key).
macro_rules! message_enum {
    (
        $(#[$enum_meta:meta])*
        pub enum $enum_name:ident on $topic:path {
            $(
                $(#[$variant_meta:meta])*
                $variant:ident keyed by $key:ident $(with prefix $prefix:literal)?
            ),+ $(,)?
        }
    ) => {
        $(#[$enum_meta])*
        #[derive(
            Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
        )]
        #[serde(tag = "type", content = "payload", deny_unknown_fields)]
        // A record's payload is decoded once and moved a few times; boxing the big variants
        // (OrderCreated) would burden every constructor and match for no measurable gain.
        #[allow(clippy::large_enum_variant)]
        pub enum $enum_name {
            $(
                $(#[$variant_meta])*
                $variant($variant),
            )+
        }

        impl $crate::envelope::Message for $enum_name {
            const TOPIC: &'static str = $topic;
            const TYPES: &'static [&'static str] = &[$(stringify!($variant)),+];

            fn message_type(&self) -> &'static str {
                match self {
                    $(Self::$variant(_) => stringify!($variant),)+
                }
            }

            fn partition_key(&self) -> String {
                match self {
                    $(Self::$variant(message) => {
                        format!(concat!($($prefix,)? "{}"), message.$key)
                    })+
                }
            }

            fn validate(&self) -> Result<(), $crate::validation::ValidationError> {
                match self {
                    $(Self::$variant(message) => $crate::validation::Validate::validate(message),)+
                }
            }

            fn deserialize_payload<'de, D: serde::Deserializer<'de>>(
                message_type: &str,
                _schema_version: u16,
                payload: D,
            ) -> Result<Self, D::Error> {
                match message_type {
                    $(stringify!($variant) => {
                        <$variant as serde::Deserialize>::deserialize(payload).map(Self::$variant)
                    })+
                    other => Err(<D::Error as serde::de::Error>::unknown_variant(
                        other,
                        Self::TYPES,
                    )),
                }
            }

            fn serialize_payload<S: serde::Serializer>(
                &self,
                serializer: S,
            ) -> Result<S::Ok, S::Error> {
                match self {
                    $(Self::$variant(message) => serde::Serialize::serialize(message, serializer),)+
                }
            }
        }

        $(
            impl From<$variant> for $enum_name {
                fn from(message: $variant) -> Self {
                    Self::$variant(message)
                }
            }
        )+
    };
}

pub mod analytics;
pub mod catalog_commands;
pub mod catalog_events;
pub mod inventory_commands;
pub mod inventory_events;
pub mod notification_events;
pub mod order_commands;
pub mod order_events;
pub mod payment_commands;
pub mod payment_events;
pub mod user_events;

pub use analytics::AnalyticsAggregate;
pub use catalog_commands::CatalogCommand;
pub use catalog_events::CatalogEvent;
pub use inventory_commands::InventoryCommand;
pub use inventory_events::InventoryEvent;
pub use notification_events::NotificationEvent;
pub use order_commands::OrderCommand;
pub use order_events::OrderEvent;
pub use payment_commands::PaymentCommand;
pub use payment_events::PaymentEvent;
pub use user_events::UserEvent;

#[cfg(test)]
pub(crate) mod fixtures;
