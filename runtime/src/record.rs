//! Records as they travel through logs and processors.

/// Record headers: ordered (name, value) pairs; names may repeat, as in Kafka.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(Vec<(String, Vec<u8>)>);

impl Headers {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) {
        self.0.push((name.into(), value.into()));
    }

    /// Replaces every header of that name with one value.
    pub fn set(&mut self, name: &str, value: impl Into<Vec<u8>>) {
        self.0.retain(|(existing, _)| existing != name);
        self.0.push((name.to_string(), value.into()));
    }

    /// The last value of a header.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.0
            .iter()
            .rev()
            .find(|(existing, _)| existing == name)
            .map(|(_, value)| value.as_slice())
    }

    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.get(name)
            .and_then(|value| std::str::from_utf8(value).ok())
    }

    pub fn remove_prefixed(&mut self, prefix: &str) {
        self.0.retain(|(name, _)| !name.starts_with(prefix));
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.0
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_slice()))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A record in a log: bytes, as Kafka stores them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogRecord {
    pub key: Option<Vec<u8>>,
    /// `None` is a tombstone.
    pub value: Option<Vec<u8>>,
    pub headers: Headers,
    /// Milliseconds since the Unix epoch (event time).
    pub timestamp: i64,
}

impl LogRecord {
    pub fn new(key: Option<Vec<u8>>, value: Option<Vec<u8>>, timestamp: i64) -> Self {
        Self {
            key,
            value,
            headers: Headers::new(),
            timestamp,
        }
    }

    /// Approximate size in bytes, for retention by size.
    pub fn size(&self) -> usize {
        self.key.as_ref().map_or(0, Vec::len)
            + self.value.as_ref().map_or(0, Vec::len)
            + self
                .headers
                .iter()
                .map(|(name, value)| name.len() + value.len())
                .sum::<usize>()
            + 8
    }
}

impl LogRecord {
    /// The exact length of [`encode_log_record`]'s encoding, to size buffers up front.
    pub fn encoded_len(&self) -> usize {
        8 + 4
            + self.key.as_ref().map_or(0, Vec::len)
            + 4
            + self.value.as_ref().map_or(0, Vec::len)
            + 2
            + self
                .headers
                .iter()
                .map(|(name, value)| 2 + name.len() + 4 + value.len())
                .sum::<usize>()
    }
}

/// A record read back from a log, with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    pub offset: u64,
    pub record: LogRecord,
}

/// A typed record inside a topology.
#[derive(Debug, Clone, PartialEq)]
pub struct Record<K, V> {
    pub key: K,
    pub value: V,
    pub timestamp: i64,
    pub headers: Headers,
}

impl<K, V> Record<K, V> {
    pub fn new(key: K, value: V, timestamp: i64) -> Self {
        Self {
            key,
            value,
            timestamp,
            headers: Headers::new(),
        }
    }

    pub fn with_headers(mut self, headers: Headers) -> Self {
        self.headers = headers;
        self
    }
}

/// Where the record being processed came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMetadata {
    pub topic: std::sync::Arc<str>,
    pub partition: u32,
    pub offset: u64,
    pub timestamp: i64,
    pub headers: Headers,
}

const NULL_LENGTH: u32 = u32::MAX;

/// The embedded log's binary record format:
/// `timestamp i64 | key len u32 | key | value len u32 | value | header count u16 |
/// (name len u16 | name | value len u32 | value)*`, lengths of `u32::MAX` meaning null.
pub fn encode_log_record(record: &LogRecord) -> Vec<u8> {
    let mut out = Vec::with_capacity(record.encoded_len());
    encode_log_record_into(record, &mut out);
    out
}

/// [`encode_log_record`], appended to `out` (a record batch).
pub fn encode_log_record_into(record: &LogRecord, out: &mut Vec<u8>) {
    out.extend_from_slice(&record.timestamp.to_be_bytes());
    for field in [&record.key, &record.value] {
        match field {
            Some(bytes) => {
                out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
                out.extend_from_slice(bytes);
            }
            None => out.extend_from_slice(&NULL_LENGTH.to_be_bytes()),
        }
    }
    out.extend_from_slice(&(record.headers.len() as u16).to_be_bytes());
    for (name, value) in record.headers.iter() {
        out.extend_from_slice(&(name.len() as u16).to_be_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&(value.len() as u32).to_be_bytes());
        out.extend_from_slice(value);
    }
}

/// Inverse of [`encode_log_record`]; `Err` names what was truncated or malformed.
pub fn decode_log_record(bytes: &[u8]) -> Result<LogRecord, String> {
    let mut cursor = Cursor { bytes, position: 0 };
    let timestamp = i64::from_be_bytes(cursor.take_array::<8>("timestamp")?);
    let key = cursor.take_nullable("key")?;
    let value = cursor.take_nullable("value")?;
    let header_count = u16::from_be_bytes(cursor.take_array::<2>("header count")?);
    let mut headers = Headers::new();
    for _ in 0..header_count {
        let name_length = u16::from_be_bytes(cursor.take_array::<2>("header name length")?);
        let name = cursor.take(name_length as usize, "header name")?;
        let name = String::from_utf8(name.to_vec()).map_err(|_| "header name is not UTF-8")?;
        let value_length = u32::from_be_bytes(cursor.take_array::<4>("header value length")?);
        let value = cursor.take(value_length as usize, "header value")?;
        headers.push(name, value.to_vec());
    }
    Ok(LogRecord {
        key,
        value,
        headers,
        timestamp,
    })
}

struct Cursor<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, length: usize, what: &str) -> Result<&'a [u8], String> {
        let end = self
            .position
            .checked_add(length)
            .filter(|end| *end <= self.bytes.len());
        let Some(end) = end else {
            return Err(format!("record truncated in {what}"));
        };
        let slice = &self.bytes[self.position..end];
        self.position = end;
        Ok(slice)
    }

    fn take_array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], String> {
        Ok(self.take(N, what)?.try_into().expect("length checked"))
    }

    fn take_nullable(&mut self, what: &str) -> Result<Option<Vec<u8>>, String> {
        let length = u32::from_be_bytes(self.take_array::<4>(what)?);
        if length == NULL_LENGTH {
            return Ok(None);
        }
        Ok(Some(self.take(length as usize, what)?.to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn log_records_round_trip(
            key in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..16)),
            value in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..64)),
            headers in proptest::collection::vec(("[a-z.]{0,8}", proptest::collection::vec(any::<u8>(), 0..8)), 0..4),
            timestamp: i64,
        ) {
            let mut record = LogRecord::new(key, value, timestamp);
            for (name, header_value) in headers {
                record.headers.push(name, header_value);
            }
            let encoded = encode_log_record(&record);
            prop_assert_eq!(encoded.len(), record.encoded_len());
            prop_assert_eq!(decode_log_record(&encoded).unwrap(), record);
            // Every strict prefix is reported as truncated, never panics.
            for cut in 0..encoded.len() {
                prop_assert!(decode_log_record(&encoded[..cut]).is_err());
            }
        }
    }
}
