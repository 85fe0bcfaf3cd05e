//! How domain records travel: enveloped JSON values keyed by strings, decoded at sources into
//! each processor's input enum and encoded at sinks from its output enum.

use std::marker::PhantomData;

use orderflow_runtime::{LogRecord, RecordDecoder, RecordEncoder};
use orderflow_schemas::envelope::{Envelope, Message};
use orderflow_schemas::ids::{CorrelationId, EventId};
use orderflow_schemas::time::Timestamp;
use orderflow_schemas::trace::TraceParent;
use orderflow_state_stores::Codec;
use serde::{Deserialize, Serialize};

/// Enveloped JSON, validated on decode (unknown types, versions and bad fields are errors).
#[derive(Debug)]
pub struct EnvelopeCodec<T>(PhantomData<fn() -> T>);

impl<T> Default for EnvelopeCodec<T> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<T: Message> Codec<Envelope<T>> for EnvelopeCodec<T> {
    fn encode(&self, value: &Envelope<T>, out: &mut Vec<u8>) -> Result<(), String> {
        out.extend_from_slice(&value.encode_json());
        Ok(())
    }

    fn encode_to_vec(&self, value: &Envelope<T>) -> Result<Vec<u8>, String> {
        // The encoded vector itself, not a copy of it.
        Ok(value.encode_json())
    }

    fn decode(&self, bytes: &[u8]) -> Result<Envelope<T>, String> {
        Envelope::decode_json(bytes).map_err(|error| format!("{} ({})", error, error.kind()))
    }
}

/// `payload` in a new envelope, as a record for `topic`: keyed by its partition key and placed
/// on the partition Kafka's default partitioner would choose.
pub fn keyed_envelope_record<T: Message>(
    topic: &str,
    partitions: u32,
    payload: T,
    now_ms: i64,
    correlation: CorrelationId,
) -> Result<(String, u32, LogRecord), String> {
    let key = payload.partition_key();
    let envelope = Envelope::new(
        payload,
        Timestamp::from_unix_millis(now_ms),
        correlation,
        None,
        EventId::generate(now_ms),
    );
    let record = envelope_serde::<T>().to_log_record(&key, &envelope, now_ms)?;
    let partition = orderflow_runtime::partitioner::partition_for_key(key.as_bytes(), partitions);
    Ok((topic.to_string(), partition, record))
}

/// Keys as strings, values as enveloped JSON of `T`.
pub fn envelope_serde<T: Message>() -> orderflow_runtime::RecordSerde<String, Envelope<T>> {
    orderflow_runtime::RecordSerde::new(
        orderflow_state_stores::StringCodec,
        EnvelopeCodec::default(),
    )
}

/// Decodes a topic's enveloped records and wraps them into a processor's input enum.
pub struct EnvelopeSource<T, I> {
    wrap: fn(Envelope<T>) -> I,
}

impl<T, I> std::fmt::Debug for EnvelopeSource<T, I> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("EnvelopeSource")
    }
}

impl<T: Message, I> EnvelopeSource<T, I> {
    pub fn new(wrap: fn(Envelope<T>) -> I) -> Self {
        Self { wrap }
    }
}

impl<T: Message, I> RecordDecoder<String, I> for EnvelopeSource<T, I> {
    fn decode(&self, record: &LogRecord) -> Result<(String, I), String> {
        let key = record.key.as_deref().ok_or("the record has no key")?;
        let key = String::from_utf8(key.to_vec()).map_err(|_| "the key is not UTF-8")?;
        let value = record.value.as_deref().ok_or("the record has no value")?;
        let envelope = EnvelopeCodec::<T>::default().decode(value)?;
        Ok((key, (self.wrap)(envelope)))
    }
}

/// Encodes one variant of a processor's output enum as an enveloped record; any other variant
/// reaching this sink is a wiring bug, reported as an error (the record is dead-lettered).
pub struct EnvelopeSink<O, T> {
    unwrap: fn(&O) -> Option<&Envelope<T>>,
}

impl<O, T> std::fmt::Debug for EnvelopeSink<O, T> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("EnvelopeSink")
    }
}

impl<O, T: Message> EnvelopeSink<O, T> {
    pub fn new(unwrap: fn(&O) -> Option<&Envelope<T>>) -> Self {
        Self { unwrap }
    }
}

impl<O: Send + Sync, T: Message> RecordEncoder<String, O> for EnvelopeSink<O, T> {
    fn encode(
        &self,
        key: &String,
        value: &O,
    ) -> Result<(Option<Vec<u8>>, Option<Vec<u8>>), String> {
        let envelope = (self.unwrap)(value)
            .ok_or_else(|| format!("this sink writes {} records only", T::TOPIC))?;
        Ok((Some(key.clone().into_bytes()), Some(envelope.encode_json())))
    }
}

/// Where an output record comes from: the correlation, cause and trace it carries on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    pub correlation_id: CorrelationId,
    pub causation_id: Option<EventId>,
    pub traceparent: Option<TraceParent>,
}

impl Origin {
    /// The origin of records caused by `envelope`.
    pub fn caused_by<T>(envelope: &Envelope<T>) -> Self {
        Self {
            correlation_id: envelope.correlation_id,
            causation_id: Some(envelope.event_id),
            traceparent: envelope.traceparent.clone(),
        }
    }

    /// A new envelope around `payload`, stamped at `now_ms`.
    pub fn envelope<U: Message>(&self, payload: U, now_ms: i64) -> Envelope<U> {
        let mut envelope = Envelope::new(
            payload,
            Timestamp::from_unix_millis(now_ms),
            self.correlation_id,
            self.causation_id,
            EventId::generate(now_ms),
        );
        envelope.traceparent = self.traceparent.clone();
        envelope
    }
}

/// Encodes one variant of a processor's output enum with a plain function (internal topics).
pub struct VariantSink<O> {
    topic: &'static str,
    encode: fn(&O) -> Option<Vec<u8>>,
}

impl<O> std::fmt::Debug for VariantSink<O> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("VariantSink")
            .field("topic", &self.topic)
            .finish()
    }
}

impl<O> VariantSink<O> {
    pub fn new(topic: &'static str, encode: fn(&O) -> Option<Vec<u8>>) -> Self {
        Self { topic, encode }
    }
}

impl<O: Send + Sync> RecordEncoder<String, O> for VariantSink<O> {
    fn encode(
        &self,
        key: &String,
        value: &O,
    ) -> Result<(Option<Vec<u8>>, Option<Vec<u8>>), String> {
        let bytes = (self.encode)(value)
            .ok_or_else(|| format!("this sink writes {} records only", self.topic))?;
        Ok((Some(key.clone().into_bytes()), Some(bytes)))
    }
}

/// Decodes plain JSON records of an internal topic and wraps them into an input enum.
pub struct JsonSource<T, I> {
    wrap: fn(T) -> I,
}

impl<T, I> std::fmt::Debug for JsonSource<T, I> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("JsonSource")
    }
}

impl<T, I> JsonSource<T, I> {
    pub fn new(wrap: fn(T) -> I) -> Self {
        Self { wrap }
    }
}

impl<T: serde::de::DeserializeOwned, I> RecordDecoder<String, I> for JsonSource<T, I> {
    fn decode(&self, record: &LogRecord) -> Result<(String, I), String> {
        let key = record.key.as_deref().ok_or("the record has no key")?;
        let key = String::from_utf8(key.to_vec()).map_err(|_| "the key is not UTF-8")?;
        let value = record.value.as_deref().ok_or("the record has no value")?;
        let decoded = serde_json::from_slice(value).map_err(|error| error.to_string())?;
        Ok((key, (self.wrap)(decoded)))
    }
}
