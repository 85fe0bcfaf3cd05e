use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::*;
use crate::ids::EventId;
use crate::messages::fixtures;
use crate::messages::order_commands::{ConfirmDelivery, PlaceOrder};
use crate::messages::{
    AnalyticsAggregate, CatalogCommand, CatalogEvent, InventoryCommand, InventoryEvent,
    NotificationEvent, OrderCommand, OrderEvent, PaymentCommand, PaymentEvent, UserEvent,
};

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn envelope<T: Message>(payload: T) -> Envelope<T> {
    Envelope::new(
        payload,
        fixtures::at(0),
        fixtures::correlation_id(),
        None,
        fixtures::event_id(),
    )
}

fn place_order_envelope() -> Envelope<OrderCommand> {
    envelope(OrderCommand::from(fixtures::place_order()))
        .with_traceparent(TraceParent::parse(TRACEPARENT).unwrap())
}

/// The wire JSON of a valid PlaceOrder, to be broken by each error test.
fn place_order_json() -> Value {
    serde_json::from_slice(&place_order_envelope().encode_json()).unwrap()
}

fn decode(value: &Value) -> Result<Envelope<OrderCommand>, DecodeError> {
    Envelope::<OrderCommand>::decode_json(value.to_string().as_bytes())
}

/// Every sample round-trips, validates, and the samples cover the topic's types exactly.
fn check_topic_samples<T: Message>(samples: Vec<T>) {
    let covered: BTreeSet<&str> = samples.iter().map(Message::message_type).collect();
    let declared: BTreeSet<&str> = T::TYPES.iter().copied().collect();
    assert_eq!(
        covered,
        declared,
        "samples of {} must cover every type",
        T::TOPIC
    );
    for sample in samples {
        assert_eq!(sample.validate(), Ok(()), "{sample:?}");
        let original = envelope(sample);
        let bytes = original.encode_json();
        let decoded = Envelope::<T>::decode_json(&bytes)
            .unwrap_or_else(|error| panic!("{}: {error}", original.message_type()));
        assert_eq!(decoded, original);
        assert_eq!(decoded.encode_json(), bytes, "encoding is deterministic");
    }
}

#[test]
fn every_message_type_of_every_topic_round_trips() {
    check_topic_samples::<OrderCommand>(fixtures::order_commands());
    check_topic_samples::<CatalogCommand>(fixtures::catalog_commands());
    check_topic_samples::<InventoryCommand>(fixtures::inventory_commands());
    check_topic_samples::<PaymentCommand>(fixtures::payment_commands());
    check_topic_samples::<OrderEvent>(fixtures::order_events());
    check_topic_samples::<InventoryEvent>(fixtures::inventory_events());
    check_topic_samples::<PaymentEvent>(fixtures::payment_events());
    check_topic_samples::<NotificationEvent>(fixtures::notification_events());
    check_topic_samples::<UserEvent>(fixtures::user_events());
    check_topic_samples::<CatalogEvent>(fixtures::catalog_events());
    check_topic_samples::<AnalyticsAggregate>(fixtures::analytics_aggregates());
}

#[test]
fn wire_shape_is_one_flat_object_in_documented_order() {
    let bytes = place_order_envelope().encode_json();
    let text = String::from_utf8(bytes).unwrap();
    let keys = [
        "\"event_id\"",
        "\"type\"",
        "\"schema_version\"",
        "\"occurred_at\"",
        "\"correlation_id\"",
        "\"causation_id\"",
        "\"traceparent\"",
        "\"payload\"",
    ];
    let positions: Vec<usize> = keys.iter().map(|key| text.find(key).unwrap()).collect();
    assert!(positions.windows(2).all(|pair| pair[0] < pair[1]), "{text}");

    let value: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(value.as_object().unwrap().len(), 8);
    assert_eq!(value["event_id"], fixtures::event_id().to_string());
    assert_eq!(value["type"], "PlaceOrder");
    assert_eq!(value["schema_version"], 1);
    assert_eq!(value["occurred_at"], fixtures::FIXTURE_MILLIS);
    assert_eq!(
        value["correlation_id"],
        fixtures::correlation_id().to_string()
    );
    assert_eq!(value["causation_id"], Value::Null);
    assert_eq!(value["traceparent"], TRACEPARENT);
    assert_eq!(
        value["payload"]["order_id"],
        fixtures::order_id().to_string()
    );
    assert_eq!(value["payload"]["lines"][0]["quantity"], 2);
    assert_eq!(value["payload"]["currency"], "USD");
    assert!(
        value["payload"].get("type").is_none(),
        "the variant tag is only in the header"
    );
}

#[test]
fn optional_header_fields_may_be_absent() {
    let mut value = place_order_json();
    let object = value.as_object_mut().unwrap();
    object.remove("causation_id");
    object.remove("traceparent");
    let decoded = decode(&value).unwrap();
    assert_eq!(decoded.causation_id, None);
    assert_eq!(decoded.traceparent, None);
}

#[test]
fn malformed_json() {
    for bad in [&b"{"[..], b"not json", b"", b"{\"event_id\":}"] {
        let error = Envelope::<OrderCommand>::decode_json(bad).unwrap_err();
        assert!(matches!(error, DecodeError::Malformed { .. }), "{error:?}");
        assert_eq!(error.kind(), "malformed");
    }
    let mut trailing = place_order_envelope().encode_json();
    trailing.extend_from_slice(b" {}");
    let error = Envelope::<OrderCommand>::decode_json(&trailing).unwrap_err();
    assert!(
        matches!(&error, DecodeError::Malformed { line: 1, message, .. } if message.contains("trailing")),
        "{error:?}"
    );
}

#[test]
fn unknown_type_lists_the_topic_types() {
    let mut value = place_order_json();
    value["type"] = json!("StockReserved");
    let error = decode(&value).unwrap_err();
    assert_eq!(
        error,
        DecodeError::UnknownType {
            message_type: "StockReserved".into(),
            topic: "order-commands",
            topic_types: OrderCommand::TYPES,
        }
    );
    assert_eq!(
        error.to_string(),
        "unknown message type \"StockReserved\" on topic order-commands; expected one of \
         [\"PlaceOrder\", \"CancelOrder\", \"ShipOrder\", \"ConfirmDelivery\"]"
    );
}

#[test]
fn unsupported_version_names_the_supported_range() {
    for version in [0, 2, u16::MAX] {
        let mut value = place_order_json();
        value["schema_version"] = json!(version);
        let error = decode(&value).unwrap_err();
        assert_eq!(
            error,
            DecodeError::UnsupportedVersion {
                message_type: "PlaceOrder".into(),
                version,
                supported: 1..=1,
            }
        );
        assert_eq!(error.kind(), "unsupported_version");
    }
}

#[test]
fn unknown_type_is_reported_before_payload_problems() {
    let mut value = place_order_json();
    value["type"] = json!("Nope");
    value["payload"] = json!("garbage");
    assert!(matches!(
        decode(&value),
        Err(DecodeError::UnknownType { .. })
    ));
}

#[test]
fn invalid_payload_field_has_its_path() {
    let mut value = place_order_json();
    value["payload"]["lines"][0]["quantity"] = json!(-1);
    let error = decode(&value).unwrap_err();
    let DecodeError::InvalidField { field, message } = &error else {
        panic!("{error:?}");
    };
    assert_eq!(field, "payload.lines[0].quantity");
    assert!(message.contains("-1"), "{message}");

    let mut value = place_order_json();
    value["payload"]["lines"][1]["sku"] = json!("lower-case");
    assert!(matches!(
        decode(&value),
        Err(DecodeError::InvalidField { field, message })
            if field == "payload.lines[1].sku" && message.contains("invalid Sku \"lower-case\"")
    ));

    let mut value = place_order_json();
    value["payload"]["shipping_address"]["country"] = json!("gb");
    assert!(matches!(
        decode(&value),
        Err(DecodeError::InvalidField { field, .. }) if field == "payload.shipping_address.country"
    ));

    let mut value = place_order_json();
    value["payload"]["currency"] = json!("XYZ");
    assert!(matches!(
        decode(&value),
        Err(DecodeError::InvalidField { field, message })
            if field == "payload.currency" && message.contains("not an active ISO 4217 code")
    ));
}

#[test]
fn missing_and_unknown_payload_fields() {
    let mut value = place_order_json();
    value["payload"].as_object_mut().unwrap().remove("user_id");
    let error = decode(&value).unwrap_err();
    assert_eq!(
        error,
        DecodeError::InvalidField {
            field: "payload".into(),
            message: "missing field `user_id`".into()
        }
    );

    let mut value = place_order_json();
    value["payload"]["gift_wrap"] = json!(true);
    let error = decode(&value).unwrap_err();
    assert!(
        matches!(&error, DecodeError::InvalidField { field, message }
            if field == "payload.gift_wrap" && message.starts_with("unknown field `gift_wrap`")),
        "{error:?}"
    );

    let mut value = place_order_json();
    value["payload"] = json!("an order");
    assert!(matches!(
        decode(&value),
        Err(DecodeError::InvalidField { field, message })
            if field == "payload" && message.contains("expected struct PlaceOrder")
    ));
}

#[test]
fn invalid_header_fields_have_their_path() {
    let mut value = place_order_json();
    value["event_id"] = json!("6f1c2a5e-8d3b-4c7a-9e2f-1b3d5a7c9e0f");
    let error = decode(&value).unwrap_err();
    assert!(
        matches!(&error, DecodeError::InvalidField { field, message }
            if field == "event_id" && message.contains("EventId must be a UUIDv7, got version 4")),
        "{error:?}"
    );

    let mut value = place_order_json();
    value["traceparent"] = json!("00-abc");
    assert!(matches!(
        decode(&value),
        Err(DecodeError::InvalidField { field, .. }) if field == "traceparent"
    ));

    let mut value = place_order_json();
    value["occurred_at"] = json!("yesterday");
    assert!(matches!(
        decode(&value),
        Err(DecodeError::InvalidField { field, .. }) if field == "occurred_at"
    ));

    let mut value = place_order_json();
    value.as_object_mut().unwrap().remove("type");
    assert_eq!(
        decode(&value).unwrap_err(),
        DecodeError::InvalidField {
            field: ".".into(),
            message: "missing field `type`".into()
        }
    );

    let mut value = place_order_json();
    value.as_object_mut().unwrap().remove("payload");
    assert_eq!(
        decode(&value).unwrap_err(),
        DecodeError::InvalidField {
            field: ".".into(),
            message: "missing field `payload`".into()
        }
    );

    let mut value = place_order_json();
    value["tenant"] = json!("acme");
    let error = decode(&value).unwrap_err();
    assert!(
        matches!(&error, DecodeError::InvalidField { field, message }
            if field == "tenant" && message.starts_with("unknown field `tenant`")),
        "{error:?}"
    );
    assert_eq!(error.kind(), "invalid_field");

    let error = Envelope::<OrderCommand>::decode_json(b"[1]").unwrap_err();
    assert!(
        matches!(error, DecodeError::InvalidField { .. }),
        "{error:?}"
    );
}

#[test]
fn business_rule_violations_are_invalid_with_payload_path() {
    let mut value = place_order_json();
    value["payload"]["lines"][0]["quantity"] = json!(0);
    let error = decode(&value).unwrap_err();
    assert_eq!(
        error,
        DecodeError::Invalid(ValidationError::new(
            "payload.lines[0].quantity",
            "must be more than zero, got 0"
        ))
    );
    assert_eq!(
        error.to_string(),
        "invalid message: payload.lines[0].quantity: must be more than zero, got 0"
    );
    assert_eq!(error.kind(), "invalid");

    let mut value = place_order_json();
    value["payload"]["lines"] = json!([]);
    assert_eq!(
        decode(&value).unwrap_err(),
        DecodeError::Invalid(ValidationError::new("payload.lines", "must not be empty"))
    );
}

#[test]
fn follow_up_carries_correlation_causation_and_trace() {
    let command = place_order_envelope();
    let event_id = EventId::generate(fixtures::FIXTURE_MILLIS + 5);
    let created = command.follow_up(
        OrderEvent::from(fixtures::order_created()),
        fixtures::at(5),
        event_id,
    );
    assert_eq!(created.event_id, event_id);
    assert_eq!(created.correlation_id, command.correlation_id);
    assert_eq!(created.causation_id, Some(command.event_id));
    assert_eq!(created.traceparent, command.traceparent);
    assert_eq!(created.occurred_at, fixtures::at(5));
    assert_eq!(created.message_type(), "OrderCreated");
    assert_eq!(created.partition_key(), fixtures::order_id().to_string());
}

#[test]
fn header_decodes_without_knowing_the_payload_type() {
    let mut value = place_order_json();
    value["type"] = json!("SomethingNew");
    value["schema_version"] = json!(9);
    let header = EnvelopeHeader::decode_json(value.to_string().as_bytes()).unwrap();
    assert_eq!(header.message_type, "SomethingNew");
    assert_eq!(header.schema_version, 9);
    assert_eq!(header.event_id, fixtures::event_id());
    assert_eq!(header.traceparent.unwrap().as_str(), TRACEPARENT);
    assert_eq!(
        place_order_envelope().header().message_type,
        "PlaceOrder",
        "header() names the payload type"
    );
}

#[test]
fn serde_deserialize_applies_the_same_checks() {
    let bytes = place_order_envelope().encode_json();
    let decoded: Envelope<OrderCommand> = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(decoded, place_order_envelope());

    let mut value = place_order_json();
    value["payload"]["lines"][0]["quantity"] = json!(0);
    let error = serde_json::from_value::<Envelope<OrderCommand>>(value).unwrap_err();
    assert!(
        error.to_string().contains("payload.lines[0].quantity"),
        "{error}"
    );
}

#[test]
fn new_uses_the_current_version() {
    let envelope = envelope(OrderCommand::ConfirmDelivery(ConfirmDelivery {
        order_id: fixtures::order_id(),
    }));
    assert_eq!(envelope.schema_version, OrderCommand::CURRENT_VERSION);
    assert_eq!(OrderCommand::supported_versions("PlaceOrder"), Some(1..=1));
    assert_eq!(OrderCommand::supported_versions("OrderCreated"), None);
}

#[test]
fn payload_enum_converts_from_its_structs() {
    let order: PlaceOrder = fixtures::place_order();
    assert_eq!(
        OrderCommand::from(order.clone()),
        OrderCommand::PlaceOrder(order)
    );
}

proptest::proptest! {
    #[test]
    fn decoding_arbitrary_bytes_never_panics(
        bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)
    ) {
        let _ = Envelope::<OrderCommand>::decode_json(&bytes);
        let _ = EnvelopeHeader::decode_json(&bytes);
    }

    /// A corrupted record either fails to decode or decodes to a payload that passes validation:
    /// decode never hands out an invalid message.
    #[test]
    fn corrupted_records_never_decode_to_invalid_messages(
        position in proptest::prelude::any::<proptest::sample::Index>(),
        byte in proptest::prelude::any::<u8>(),
    ) {
        let mut bytes = place_order_envelope().encode_json();
        let index = position.index(bytes.len());
        bytes[index] = byte;
        if let Ok(envelope) = Envelope::<OrderCommand>::decode_json(&bytes) {
            proptest::prop_assert_eq!(envelope.payload.validate(), Ok(()));
        }
    }
}
