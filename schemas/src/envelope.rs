//! The versioned JSON envelope every public topic record carries, and the [`Message`] trait that
//! each topic's payload enum implements.
//!
//! Wire shape (one flat JSON object):
//!
//! ```json
//! {"event_id":"0190...","type":"PlaceOrder","schema_version":1,"occurred_at":1700000000000,
//!  "correlation_id":"0190...","causation_id":null,"traceparent":"00-...-...-01",
//!  "payload":{"order_id":"0190...", ...}}
//! ```
//!
//! `type` names the payload's variant and `payload` holds that variant's struct. Decoding reads
//! the header first so that an unknown type or an unsupported version is reported as such, not as
//! a confusing payload error, then decodes the payload with the exact path of any bad field, then
//! runs the payload's business-rule validation.

use std::borrow::Cow;
use std::fmt;
use std::ops::RangeInclusive;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::DeserializeOwned;
use serde::ser::SerializeStruct;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_path_to_error::{Path, Segment, Track};

use crate::ids::{CorrelationId, EventId};
use crate::time::Timestamp;
use crate::trace::TraceParent;
use crate::validation::ValidationError;

/// A topic's payload type: an enum with one variant per message type the topic carries.
///
/// Implemented (by the `messages` module's macro) for every topic's payload enum; see
/// [`crate::messages`]. The enum's own serde form is `{"type": <variant>, "payload": {...}}`,
/// the same two fields the envelope carries.
pub trait Message:
    Serialize + DeserializeOwned + JsonSchema + Clone + fmt::Debug + PartialEq + Send + Sync + 'static
{
    /// Name of the topic this payload type is carried on, e.g. `order-commands`.
    const TOPIC: &'static str;

    /// Every message type (variant name) the topic carries, e.g. `["PlaceOrder", ...]`.
    const TYPES: &'static [&'static str];

    /// The schema version this code writes. Bump for a message type only with a decoder for the
    /// older versions (see [`Message::supported_versions`]).
    const CURRENT_VERSION: u16 = 1;

    /// The message type (variant name) of this payload, e.g. `PlaceOrder`.
    fn message_type(&self) -> &'static str;

    /// The schema versions of `message_type` this code can decode, or `None` if the type is not
    /// carried on this topic.
    fn supported_versions(message_type: &str) -> Option<RangeInclusive<u16>> {
        Self::TYPES
            .contains(&message_type)
            .then_some(1..=Self::CURRENT_VERSION)
    }

    /// The record key this payload is written with (see [`crate::catalog`] for what each topic is
    /// keyed by), e.g. the order id for order commands.
    fn partition_key(&self) -> String;

    /// Business-rule validation; see [`crate::validation`].
    fn validate(&self) -> Result<(), ValidationError>;

    /// Plumbing for [`Envelope::decode_json`]; callers use that instead. Decodes the `payload`
    /// object of a record whose header says `message_type` at `schema_version` (the place to
    /// upcast old versions once a type has more than one). Called only for types in
    /// [`Message::TYPES`] and supported versions.
    fn deserialize_payload<'de, D: Deserializer<'de>>(
        message_type: &str,
        schema_version: u16,
        payload: D,
    ) -> Result<Self, D::Error>;

    /// Plumbing for [`Envelope::encode_json`]: encodes this message's variant struct, which is
    /// the envelope's `payload` object.
    fn serialize_payload<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error>;
}

/// A message with its routing and tracing metadata: the unit written to public topics.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope<T> {
    /// Unique id of this record; consumers deduplicate on it.
    pub event_id: EventId,
    /// Schema version of the payload's message type.
    pub schema_version: u16,
    /// When the fact happened or the command was issued, from the producer's clock.
    pub occurred_at: Timestamp,
    /// Shared by every record that descends from one external request.
    pub correlation_id: CorrelationId,
    /// The record that directly caused this one; `None` for records caused by an outside request.
    pub causation_id: Option<EventId>,
    /// W3C trace context, so traces span processors.
    pub traceparent: Option<TraceParent>,
    /// The message.
    pub payload: T,
}

/// The envelope fields without the payload: what routing, dead-lettering and tracing need,
/// readable without knowing the topic's payload type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnvelopeHeader {
    /// See [`Envelope::event_id`].
    pub event_id: EventId,
    /// The message type named by the record, not necessarily one this code knows.
    #[serde(rename = "type")]
    pub message_type: String,
    /// See [`Envelope::schema_version`].
    pub schema_version: u16,
    /// See [`Envelope::occurred_at`].
    pub occurred_at: Timestamp,
    /// See [`Envelope::correlation_id`].
    pub correlation_id: CorrelationId,
    /// See [`Envelope::causation_id`].
    pub causation_id: Option<EventId>,
    /// See [`Envelope::traceparent`].
    pub traceparent: Option<TraceParent>,
}

/// Why bytes could not be decoded into an [`Envelope`]. Each variant is a distinct reason a
/// record goes to the dead-letter topic; [`DecodeError::kind`] names it for headers and metrics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Not JSON at all (syntax error, truncated, trailing bytes).
    #[error("malformed JSON at line {line} column {column}: {message}")]
    Malformed {
        /// The parser's complaint, including the position.
        message: String,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
    },
    /// The record's `type` is not one this topic carries.
    #[error(
        "unknown message type {message_type:?} on topic {topic}; expected one of {topic_types:?}"
    )]
    UnknownType {
        /// The type the record named.
        message_type: String,
        /// The topic whose payload type was expected.
        topic: &'static str,
        /// The types that topic carries.
        topic_types: &'static [&'static str],
    },
    /// The record's `schema_version` of its type is not one this code can decode.
    #[error(
        "unsupported schema_version {version} of {message_type}; supported: {}..={}",
        supported.start(),
        supported.end()
    )]
    UnsupportedVersion {
        /// The record's message type.
        message_type: String,
        /// The record's schema version.
        version: u16,
        /// The versions this code decodes.
        supported: RangeInclusive<u16>,
    },
    /// A field is missing, of the wrong JSON type, unknown, or fails its format (a bad UUID,
    /// currency, SKU...). `field` is its path, e.g. `payload.lines[0].quantity`, or `.` for the
    /// envelope object itself (e.g. a missing header field, named in `message`).
    #[error("invalid field {field}: {message}")]
    InvalidField {
        /// Path of the offending field.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// The payload decoded but breaks a business rule; the error's field starts with `payload.`.
    #[error("invalid message: {0}")]
    Invalid(ValidationError),
}

impl DecodeError {
    /// A stable snake_case name of the variant, for dead-letter headers and metric labels.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Malformed { .. } => "malformed",
            Self::UnknownType { .. } => "unknown_type",
            Self::UnsupportedVersion { .. } => "unsupported_version",
            Self::InvalidField { .. } => "invalid_field",
            Self::Invalid(_) => "invalid",
        }
    }
}

impl<T: Message> Envelope<T> {
    /// Wraps `payload` at the current schema version, without a traceparent (add one with
    /// [`Envelope::with_traceparent`]). Ids and time are passed in so callers (and tests) control
    /// them.
    pub fn new(
        payload: T,
        occurred_at: Timestamp,
        correlation_id: CorrelationId,
        causation_id: Option<EventId>,
        event_id: EventId,
    ) -> Self {
        Self {
            event_id,
            schema_version: T::CURRENT_VERSION,
            occurred_at,
            correlation_id,
            causation_id,
            traceparent: None,
            payload,
        }
    }

    /// The same envelope carrying `traceparent`.
    pub fn with_traceparent(mut self, traceparent: TraceParent) -> Self {
        self.traceparent = Some(traceparent);
        self
    }

    /// A record caused by this one: same correlation id and trace, causation id = this record's
    /// event id. The way processors should build their outputs.
    pub fn follow_up<U: Message>(
        &self,
        payload: U,
        occurred_at: Timestamp,
        event_id: EventId,
    ) -> Envelope<U> {
        Envelope {
            event_id,
            schema_version: U::CURRENT_VERSION,
            occurred_at,
            correlation_id: self.correlation_id,
            causation_id: Some(self.event_id),
            traceparent: self.traceparent.clone(),
            payload,
        }
    }

    /// The payload's message type, written as the envelope's `type`.
    pub fn message_type(&self) -> &'static str {
        self.payload.message_type()
    }

    /// The record key for this envelope: [`Message::partition_key`] of the payload.
    pub fn partition_key(&self) -> String {
        self.payload.partition_key()
    }

    /// The envelope's metadata without the payload.
    pub fn header(&self) -> EnvelopeHeader {
        EnvelopeHeader {
            event_id: self.event_id,
            message_type: self.message_type().to_owned(),
            schema_version: self.schema_version,
            occurred_at: self.occurred_at,
            correlation_id: self.correlation_id,
            causation_id: self.causation_id,
            traceparent: self.traceparent.clone(),
        }
    }

    /// The record value: compact JSON.
    pub fn encode_json(&self) -> Vec<u8> {
        // Cannot fail: every field serializes to JSON strings, numbers, nulls and objects with
        // string keys, and no Serialize impl in this crate reports errors.
        // An envelope's header alone is about 250 bytes: start at 512 rather than growing by
        // doubling from 128 (each growth a reallocation and a copy, on every record produced).
        let mut out = Vec::with_capacity(512);
        serde_json::to_writer(&mut out, self).expect("envelopes always serialize to JSON");
        out
    }

    /// Decodes and validates a record value. See [`DecodeError`] for the order of checks.
    pub fn decode_json(bytes: &[u8]) -> Result<Self, DecodeError> {
        let wire = parse_wire(bytes)?;
        Self::from_wire(wire)
    }

    fn from_wire(wire: EnvelopeWire<'_>) -> Result<Self, DecodeError> {
        if !T::TYPES.contains(&wire.message_type.as_ref()) {
            return Err(DecodeError::UnknownType {
                message_type: wire.message_type.into_owned(),
                topic: T::TOPIC,
                topic_types: T::TYPES,
            });
        }
        let supported = T::supported_versions(&wire.message_type)
            .expect("every type in TYPES has supported versions");
        if !supported.contains(&wire.schema_version) {
            return Err(DecodeError::UnsupportedVersion {
                message_type: wire.message_type.into_owned(),
                version: wire.schema_version,
                supported,
            });
        }
        // The payload is decoded straight from its bytes in the record (no intermediate
        // `serde_json::Value` tree): this is the hot path of every processor. As for the header,
        // the field path is tracked only when reading again a payload that failed.
        let payload = match T::deserialize_payload(
            &wire.message_type,
            wire.schema_version,
            &mut serde_json::Deserializer::from_str(wire.payload.get()),
        ) {
            Ok(payload) => payload,
            Err(_) => {
                let mut track = Track::new();
                let mut payload_json = serde_json::Deserializer::from_str(wire.payload.get());
                T::deserialize_payload(
                    &wire.message_type,
                    wire.schema_version,
                    serde_path_to_error::Deserializer::new(&mut payload_json, &mut track),
                )
                .map_err(|error| DecodeError::InvalidField {
                    field: field_path("payload", &track.path()),
                    message: strip_position(&error.to_string()),
                })?
            }
        };
        payload
            .validate()
            .map_err(|error| DecodeError::Invalid(error.within("payload")))?;
        Ok(Self {
            event_id: wire.event_id,
            schema_version: wire.schema_version,
            occurred_at: wire.occurred_at,
            correlation_id: wire.correlation_id,
            causation_id: wire.causation_id,
            traceparent: wire.traceparent,
            payload,
        })
    }
}

impl EnvelopeHeader {
    /// Reads only the envelope metadata of a record value, whatever its topic or message type.
    /// The payload must be present but is not decoded or validated.
    pub fn decode_json(bytes: &[u8]) -> Result<Self, DecodeError> {
        let wire = parse_wire(bytes)?;
        Ok(Self {
            event_id: wire.event_id,
            message_type: wire.message_type.into_owned(),
            schema_version: wire.schema_version,
            occurred_at: wire.occurred_at,
            correlation_id: wire.correlation_id,
            causation_id: wire.causation_id,
            traceparent: wire.traceparent,
        })
    }
}

/// The envelope as read from the wire: header fields typed, payload left as JSON until the
/// header says how to read it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EnvelopeWire<'a> {
    event_id: EventId,
    /// Borrowed from the record when it has no escapes: only an error or a header keeps it.
    #[serde(rename = "type", borrow)]
    message_type: Cow<'a, str>,
    schema_version: u16,
    occurred_at: Timestamp,
    correlation_id: CorrelationId,
    #[serde(default)]
    causation_id: Option<EventId>,
    #[serde(default)]
    traceparent: Option<TraceParent>,
    #[serde(borrow)]
    payload: &'a serde_json::value::RawValue,
}

/// [`EnvelopeWire`] for deserializers that cannot lend raw JSON.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OwnedEnvelopeWire {
    event_id: EventId,
    #[serde(rename = "type")]
    message_type: String,
    schema_version: u16,
    occurred_at: Timestamp,
    correlation_id: CorrelationId,
    #[serde(default)]
    causation_id: Option<EventId>,
    #[serde(default)]
    traceparent: Option<TraceParent>,
    payload: serde_json::Value,
}

/// serde_json's messages end with " at line L column C" of the payload alone, which would
/// mislead next to the record's own positions; the field path says where instead.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(index) if message[index..].contains(" column ") => message[..index].to_string(),
        _ => message.to_string(),
    }
}

fn parse_wire(bytes: &[u8]) -> Result<EnvelopeWire<'_>, DecodeError> {
    // Fast path: no field-path tracking (it costs on every field of every record, and records
    // are almost always valid). Only a record that fails is read again, tracked, to say where.
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    if let Ok(wire) = EnvelopeWire::deserialize(&mut deserializer)
        && deserializer.end().is_ok()
    {
        return Ok(wire);
    }
    parse_wire_tracked(bytes)
}

/// [`parse_wire`] with the path of the failing field tracked, for the error.
fn parse_wire_tracked(bytes: &[u8]) -> Result<EnvelopeWire<'_>, DecodeError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let mut track = Track::new();
    let wire = EnvelopeWire::deserialize(serde_path_to_error::Deserializer::new(
        &mut deserializer,
        &mut track,
    ))
    .map_err(|error| json_error(error, &track.path()))?;
    // Trailing bytes after the object are a syntax problem, never a field problem.
    deserializer.end().map_err(malformed)?;
    Ok(wire)
}

/// Classifies a serde_json error: syntax problems are [`DecodeError::Malformed`]; data problems
/// (missing, unknown or mistyped fields) are [`DecodeError::InvalidField`] at `path`.
fn json_error(error: serde_json::Error, path: &Path) -> DecodeError {
    if !error.is_data() {
        return malformed(error);
    }
    let position = format!(" at line {} column {}", error.line(), error.column());
    let full = error.to_string();
    let message = full.strip_suffix(&position).unwrap_or(&full).to_owned();
    DecodeError::InvalidField {
        field: field_path("", path),
        message,
    }
}

fn malformed(error: serde_json::Error) -> DecodeError {
    DecodeError::Malformed {
        message: error.to_string(),
        line: error.line(),
        column: error.column(),
    }
}

/// Renders `path` below `prefix` as `prefix.key[0].key`; the root is `prefix`, or `.` without one.
fn field_path(prefix: &str, path: &Path) -> String {
    let mut rendered = prefix.to_owned();
    for segment in path {
        match segment {
            Segment::Seq { index } => rendered.push_str(&format!("[{index}]")),
            Segment::Map { key } => push_dotted(&mut rendered, key),
            Segment::Enum { variant } => push_dotted(&mut rendered, variant),
            Segment::Unknown => push_dotted(&mut rendered, "?"),
        }
    }
    if rendered.is_empty() {
        rendered.push('.');
    }
    rendered
}

fn push_dotted(rendered: &mut String, key: &str) {
    if !rendered.is_empty() {
        rendered.push('.');
    }
    rendered.push_str(key);
}

/// Serializes a payload as its variant struct (the envelope's `payload` object).
struct PayloadBody<'a, T>(&'a T);

impl<T: Message> Serialize for PayloadBody<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize_payload(serializer)
    }
}

impl<T: Message> Serialize for Envelope<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut envelope = serializer.serialize_struct("Envelope", 8)?;
        envelope.serialize_field("event_id", &self.event_id)?;
        envelope.serialize_field("type", self.message_type())?;
        envelope.serialize_field("schema_version", &self.schema_version)?;
        envelope.serialize_field("occurred_at", &self.occurred_at)?;
        envelope.serialize_field("correlation_id", &self.correlation_id)?;
        envelope.serialize_field("causation_id", &self.causation_id)?;
        envelope.serialize_field("traceparent", &self.traceparent)?;
        envelope.serialize_field("payload", &PayloadBody(&self.payload))?;
        envelope.end()
    }
}

impl<'de, T: Message> Deserialize<'de> for Envelope<T> {
    /// The same checks as [`Envelope::decode_json`], with errors flattened into the
    /// deserializer's error type. Prefer `decode_json` for typed errors.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Any deserializer, not only JSON bytes: the payload cannot be borrowed as raw JSON, so
        // it is read as a value and re-serialized (the slow path; `decode_json` is the fast one).
        let wire = OwnedEnvelopeWire::deserialize(deserializer)?;
        let payload =
            serde_json::value::to_raw_value(&wire.payload).map_err(serde::de::Error::custom)?;
        Self::from_wire(EnvelopeWire {
            event_id: wire.event_id,
            message_type: Cow::Owned(wire.message_type),
            schema_version: wire.schema_version,
            occurred_at: wire.occurred_at,
            correlation_id: wire.correlation_id,
            causation_id: wire.causation_id,
            traceparent: wire.traceparent,
            payload: &payload,
        })
        .map_err(serde::de::Error::custom)
    }
}

// The JSON Schema shape of an envelope: header properties plus the payload enum flattened in,
// which contributes `type` and `payload` as one `oneOf` branch per message type. (A plain comment,
// not a doc comment, because schemars would publish a doc comment as the schema's description.)
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // Only its schema is used.
struct EnvelopeSchema<T> {
    /// Unique id of this record; consumers deduplicate on it.
    event_id: EventId,
    #[serde(flatten)]
    body: T,
    /// Schema version of the payload's message type.
    #[schemars(range(min = 1))]
    schema_version: u16,
    /// When the fact happened or the command was issued.
    occurred_at: Timestamp,
    /// Shared by every record that descends from one external request.
    correlation_id: CorrelationId,
    /// The record that directly caused this one; null for records caused by an outside request.
    causation_id: Option<EventId>,
    /// W3C trace context.
    traceparent: Option<TraceParent>,
}

impl<T: Message> JsonSchema for Envelope<T> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        format!("{}Envelope", T::schema_name()).into()
    }

    fn schema_id() -> std::borrow::Cow<'static, str> {
        format!("orderflow_schemas::envelope::Envelope<{}>", T::schema_id()).into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let mut schema = EnvelopeSchema::<T>::json_schema(generator);
        schema.insert(
            "description".to_owned(),
            format!(
                "A record value on the `{}` topic: the orderflow envelope around one {} message. \
                 `type` names the message type and `payload` holds its fields.",
                T::TOPIC,
                T::schema_name()
            )
            .into(),
        );
        schema
    }
}

#[cfg(test)]
mod tests;
