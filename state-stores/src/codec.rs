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

    proptest! {
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
