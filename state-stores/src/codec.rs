//! How typed keys and values become bytes. Key codecs preserve order, so range scans over
//! encoded keys visit typed keys in their natural order.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Encodes and decodes one type. `Send + Sync` so codecs can live in shared topology data.
pub trait Codec<T>: Send + Sync {
    fn encode(&self, value: &T, out: &mut Vec<u8>) -> Result<(), String>;
    fn decode(&self, bytes: &[u8]) -> Result<T, String>;

    fn encode_to_vec(&self, value: &T) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        self.encode(value, &mut out)?;
        Ok(out)
    }
}

/// JSON via serde: for values (not order-preserving).
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonCodec;

impl<T: Serialize + DeserializeOwned> Codec<T> for JsonCodec {
    fn encode(&self, value: &T, out: &mut Vec<u8>) -> Result<(), String> {
        serde_json::to_writer(out, value).map_err(|error| error.to_string())
    }

    fn decode(&self, bytes: &[u8]) -> Result<T, String> {
        serde_json::from_slice(bytes).map_err(|error| error.to_string())
    }
}

/// Compact binary (postcard) behind a format byte: for store values that only this program reads.
///
/// Why: decoding and encoding JSON state was an eighth of the order saga's CPU; postcard writes
/// no field names and parses no text. Values written by [`JsonCodec`] before a store switched
/// to this codec still decode (a JSON value never starts with the format byte), so an existing
/// data directory keeps working and its values turn binary as they are rewritten.
///
/// Postcard is positional: a stored type that changes shape needs a new format byte, and the
/// old one decoded with the old shape (bytes left over after a value are refused, so a longer
/// shape is not silently cut short). First bytes below 0x20 are kept for such formats; an
/// unknown one is refused with its byte, and anything else is read as JSON.
/// It is not self-describing either: a type with an internally tagged or untagged enum, or a
/// flattened field, encodes but cannot be decoded; keep such types on [`JsonCodec`].
#[derive(Debug, Clone, Copy, Default)]
pub struct CompactCodec;

/// The first byte of a value written by [`CompactCodec`] (postcard, first shape).
pub const COMPACT_FORMAT_V1: u8 = 0x01;

/// Appends `format`, then `value` in postcard: a compact value of one shape. A type whose
/// stored shape changes gets a new format byte (below 0x20) and its own codec, which reads the
/// old shapes with [`decode_compact`].
pub fn encode_compact<T: Serialize>(
    format: u8,
    value: &T,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    out.push(format);
    postcard::to_extend(value, std::mem::take(out))
        .map(|encoded| *out = encoded)
        .map_err(|error| error.to_string())
}

/// Reads the postcard value after a compact format byte (`shape` names it in errors). Bytes
/// left over are refused: postcard stops once the value is read, so they mean a value of
/// another shape, which must not be read as this one.
pub fn decode_compact<T: DeserializeOwned>(after_format: &[u8], shape: &str) -> Result<T, String> {
    let (value, rest) =
        postcard::take_from_bytes(after_format).map_err(|error| format!("{shape}: {error}"))?;
    if !rest.is_empty() {
        return Err(format!(
            "{shape}: {} bytes left after the value; written with another shape?",
            rest.len()
        ));
    }
    Ok(value)
}

impl<T: Serialize + DeserializeOwned> Codec<T> for CompactCodec {
    fn encode(&self, value: &T, out: &mut Vec<u8>) -> Result<(), String> {
        encode_compact(COMPACT_FORMAT_V1, value, out)
    }

    fn decode(&self, bytes: &[u8]) -> Result<T, String> {
        match bytes.first() {
            Some(&COMPACT_FORMAT_V1) => decode_compact(&bytes[1..], "compact v1"),
            // Bytes below 0x20 are kept for compact formats; a JSON value never starts with
            // one, whitespace aside.
            Some(&other) if other < 0x20 && !matches!(other, b'\t' | b'\n' | b'\r') => {
                Err(format!("unknown value format byte 0x{other:02x}"))
            }
            // Anything else was written by `JsonCodec`.
            Some(_) => JsonCodec
                .decode(bytes)
                .map_err(|error| format!("json: {error}")),
            None => Err("empty value".to_string()),
        }
    }
}

/// Raw bytes, unchanged.
#[derive(Debug, Clone, Copy, Default)]
pub struct BytesCodec;

impl Codec<Vec<u8>> for BytesCodec {
    fn encode(&self, value: &Vec<u8>, out: &mut Vec<u8>) -> Result<(), String> {
        out.extend_from_slice(value);
        Ok(())
    }

    fn decode(&self, bytes: &[u8]) -> Result<Vec<u8>, String> {
        Ok(bytes.to_vec())
    }
}

/// UTF-8 strings; byte order equals `str` order.
#[derive(Debug, Clone, Copy, Default)]
pub struct StringCodec;

impl Codec<String> for StringCodec {
    fn encode(&self, value: &String, out: &mut Vec<u8>) -> Result<(), String> {
        out.extend_from_slice(value.as_bytes());
        Ok(())
    }

    fn decode(&self, bytes: &[u8]) -> Result<String, String> {
        String::from_utf8(bytes.to_vec()).map_err(|error| error.to_string())
    }
}

/// Big-endian u64: byte order equals numeric order.
#[derive(Debug, Clone, Copy, Default)]
pub struct U64Codec;

impl Codec<u64> for U64Codec {
    fn encode(&self, value: &u64, out: &mut Vec<u8>) -> Result<(), String> {
        out.extend_from_slice(&value.to_be_bytes());
        Ok(())
    }

    fn decode(&self, bytes: &[u8]) -> Result<u64, String> {
        let array: [u8; 8] = bytes
            .try_into()
            .map_err(|_| format!("expected 8 bytes for a u64, got {}", bytes.len()))?;
        Ok(u64::from_be_bytes(array))
    }
}

/// i64 with the sign bit flipped, big-endian: byte order equals numeric order, negatives first.
#[derive(Debug, Clone, Copy, Default)]
pub struct I64Codec;

impl Codec<i64> for I64Codec {
    fn encode(&self, value: &i64, out: &mut Vec<u8>) -> Result<(), String> {
        out.extend_from_slice(&encode_i64_ordered(*value));
        Ok(())
    }

    fn decode(&self, bytes: &[u8]) -> Result<i64, String> {
        let array: [u8; 8] = bytes
            .try_into()
            .map_err(|_| format!("expected 8 bytes for an i64, got {}", bytes.len()))?;
        Ok(decode_i64_ordered(array))
    }
}

/// Order-preserving bytes of an i64.
pub fn encode_i64_ordered(value: i64) -> [u8; 8] {
    ((value as u64) ^ (1 << 63)).to_be_bytes()
}

/// Inverse of [`encode_i64_ordered`].
pub fn decode_i64_ordered(bytes: [u8; 8]) -> i64 {
    (u64::from_be_bytes(bytes) ^ (1 << 63)) as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Sample {
        name: String,
        amount: i64,
        lines: Vec<(u32, Option<String>)>,
        flag: bool,
    }

    fn sample(name: String, amount: i64, lines: Vec<(u32, Option<String>)>, flag: bool) -> Sample {
        Sample {
            name,
            amount,
            lines,
            flag,
        }
    }

    #[test]
    fn compact_reads_values_written_as_json() {
        let value = sample("a \"quoted\" name".to_string(), -5, vec![(1, None)], true);
        let json = JsonCodec.encode_to_vec(&value).unwrap();
        assert_eq!(CompactCodec.decode(&json), Ok(value.clone()));
        let compact = CompactCodec.encode_to_vec(&value).unwrap();
        assert_eq!(compact[0], COMPACT_FORMAT_V1);
        assert!(compact.len() < json.len(), "{compact:?} vs {json:?}");
    }

    #[test]
    fn compact_refuses_a_value_with_bytes_left_over() {
        let value = sample("name".to_string(), 7, vec![], true);
        let mut encoded = CompactCodec.encode_to_vec(&value).unwrap();
        encoded.push(0);
        let error = Codec::<Sample>::decode(&CompactCodec, &encoded).unwrap_err();
        assert!(error.contains("1 bytes left"), "{error}");
    }

    #[test]
    fn compact_reads_any_json_value_written_before() {
        assert_eq!(Codec::<u8>::decode(&CompactCodec, b"7"), Ok(7));
        assert_eq!(Codec::<bool>::decode(&CompactCodec, b"true"), Ok(true));
        assert_eq!(
            Codec::<Option<u8>>::decode(&CompactCodec, b"null"),
            Ok(None)
        );
        assert_eq!(Codec::<i64>::decode(&CompactCodec, b" -3"), Ok(-3));
        assert_eq!(Codec::<i64>::decode(&CompactCodec, b"\n-3"), Ok(-3));
    }

    #[test]
    fn compact_refuses_unknown_formats_and_truncated_values() {
        let error = Codec::<Sample>::decode(&CompactCodec, &[0x02, 0, 0]).unwrap_err();
        assert!(error.contains("0x02"), "{error}");
        assert!(Codec::<Sample>::decode(&CompactCodec, &[]).is_err());
        let value = sample(
            "name".to_string(),
            7,
            vec![(3, Some("x".to_string()))],
            false,
        );
        let encoded = CompactCodec.encode_to_vec(&value).unwrap();
        let error =
            Codec::<Sample>::decode(&CompactCodec, &encoded[..encoded.len() - 2]).unwrap_err();
        assert!(error.starts_with("compact v1"), "{error}");
    }

    proptest! {
        #[test]
        fn compact_round_trips(
            name in ".*",
            amount: i64,
            lines in proptest::collection::vec((any::<u32>(), proptest::option::of(".*")), 0..5),
            flag: bool,
        ) {
            let value = sample(name, amount, lines, flag);
            let encoded = CompactCodec.encode_to_vec(&value).unwrap();
            prop_assert_eq!(CompactCodec.decode(&encoded), Ok(value));
        }

        #[test]
        fn i64_encoding_preserves_order(left: i64, right: i64) {
            let encoded_left = encode_i64_ordered(left);
            let encoded_right = encode_i64_ordered(right);
            prop_assert_eq!(left.cmp(&right), encoded_left.cmp(&encoded_right));
            prop_assert_eq!(decode_i64_ordered(encoded_left), left);
        }

        #[test]
        fn u64_encoding_preserves_order(left: u64, right: u64) {
            let encoded_left = U64Codec.encode_to_vec(&left).unwrap();
            let encoded_right = U64Codec.encode_to_vec(&right).unwrap();
            prop_assert_eq!(left.cmp(&right), encoded_left.cmp(&encoded_right));
            prop_assert_eq!(U64Codec.decode(&encoded_left).unwrap(), left);
        }
    }
}
