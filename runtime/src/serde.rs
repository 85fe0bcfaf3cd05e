//! How records' bytes become typed keys and values at sources, and back at sinks.

use std::sync::Arc;

use orderflow_state_stores::Codec;

use crate::record::LogRecord;

/// Decodes a log record into a typed key and value (sources).
pub trait RecordDecoder<K, V>: Send + Sync {
    fn decode(&self, record: &LogRecord) -> Result<(K, V), String>;
}

/// Encodes a typed key and value into bytes (sinks). `None` key or value writes a null.
pub trait RecordEncoder<K, V>: Send + Sync {
    #[allow(clippy::type_complexity)]
    fn encode(&self, key: &K, value: &V) -> Result<(Option<Vec<u8>>, Option<Vec<u8>>), String>;
}

/// A key codec and a value codec used together; keys and values are required (no nulls).
pub struct RecordSerde<K, V> {
    key: Arc<dyn Codec<K>>,
    value: Arc<dyn Codec<V>>,
}

impl<K, V> Clone for RecordSerde<K, V> {
    fn clone(&self) -> Self {
        Self {
            key: self.key.clone(),
            value: self.value.clone(),
        }
    }
}

impl<K, V> std::fmt::Debug for RecordSerde<K, V> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("RecordSerde")
            .field("key", &std::any::type_name::<K>())
            .field("value", &std::any::type_name::<V>())
            .finish()
    }
}

impl<K, V> RecordSerde<K, V> {
    pub fn new(key: impl Codec<K> + 'static, value: impl Codec<V> + 'static) -> Self {
        Self {
            key: Arc::new(key),
            value: Arc::new(value),
        }
    }

    pub fn key_codec(&self) -> &dyn Codec<K> {
        self.key.as_ref()
    }

    pub fn value_codec(&self) -> &dyn Codec<V> {
        self.value.as_ref()
    }

    /// Encodes a key and value into a log record with the given timestamp.
    pub fn to_log_record(&self, key: &K, value: &V, timestamp: i64) -> Result<LogRecord, String> {
        Ok(LogRecord::new(
            Some(self.key.encode_to_vec(key)?),
            Some(self.value.encode_to_vec(value)?),
            timestamp,
        ))
    }
}

impl<K, V> RecordDecoder<K, V> for RecordSerde<K, V> {
    fn decode(&self, record: &LogRecord) -> Result<(K, V), String> {
        let key = record.key.as_deref().ok_or("the record has no key")?;
        let value = record
            .value
            .as_deref()
            .ok_or("the record has no value (tombstone)")?;
        let key = self
            .key
            .decode(key)
            .map_err(|error| format!("key: {error}"))?;
        let value = self
            .value
            .decode(value)
            .map_err(|error| format!("value: {error}"))?;
        Ok((key, value))
    }
}

impl<K, V> RecordEncoder<K, V> for RecordSerde<K, V> {
    fn encode(&self, key: &K, value: &V) -> Result<(Option<Vec<u8>>, Option<Vec<u8>>), String> {
        Ok((
            Some(
                self.key
                    .encode_to_vec(key)
                    .map_err(|error| format!("key: {error}"))?,
            ),
            Some(
                self.value
                    .encode_to_vec(value)
                    .map_err(|error| format!("value: {error}"))?,
            ),
        ))
    }
}
