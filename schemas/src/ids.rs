//! Typed UUIDv7 identifiers.
//!
//! Every id is a UUID version 7: its first 48 bits are the Unix milliseconds at which it was
//! generated, so ids sort by creation time (good for log-structured stores and for humans reading
//! logs), and the remaining 74 bits are random. A distinct type per kind of id stops an order id
//! from being passed where a payment id is expected. Time is always passed in: nothing here reads
//! the system clock.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

use crate::time::Timestamp;

/// Largest Unix millisecond value the 48-bit UUIDv7 time field can hold (year 10889).
pub const MAX_UUID_V7_UNIX_MILLIS: i64 = (1 << 48) - 1;

/// JSON Schema pattern of a hyphenated UUID with version 7 and the RFC 9562 variant.
const UUID_V7_PATTERN: &str =
    "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-7[0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}$";

/// Why a string or UUID is not a valid id of the named type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The text is not a hyphenated UUID (`xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`).
    #[error("{id_type} must be a hyphenated UUID, got {input:?}: {reason}")]
    Malformed {
        /// The id type being parsed, e.g. `OrderId`.
        id_type: &'static str,
        /// The rejected text.
        input: String,
        /// What the UUID parser objected to.
        reason: String,
    },
    /// A well-formed UUID of another version (or of a non-RFC 9562 variant).
    #[error("{id_type} must be a UUIDv7, got version {version} in {input}")]
    NotVersion7 {
        /// The id type being parsed, e.g. `OrderId`.
        id_type: &'static str,
        /// The rejected UUID, hyphenated.
        input: String,
        /// The version nibble found.
        version: usize,
    },
}

/// Builds a v7 UUID for `unix_millis`, saturating into the representable range: v7 has no
/// encoding for times before 1970 or after year 10889, and an id must still be produced.
fn new_v7_at(unix_millis: i64) -> Uuid {
    let millis = unix_millis.clamp(0, MAX_UUID_V7_UNIX_MILLIS).unsigned_abs();
    let subsec_nanos = u32::try_from((millis % 1000) * 1_000_000)
        .expect("sub-second nanoseconds are below one billion");
    // `NoContext` means no counter: all 74 non-time bits come from uuid's random source.
    Uuid::new_v7(uuid::Timestamp::from_unix(
        uuid::NoContext,
        millis / 1000,
        subsec_nanos,
    ))
}

/// Checks that `uuid` is a v7 UUID of the RFC 9562 variant.
fn check_v7(id_type: &'static str, uuid: Uuid) -> Result<Uuid, IdError> {
    if uuid.get_version_num() == 7 && uuid.get_variant() == uuid::Variant::RFC4122 {
        Ok(uuid)
    } else {
        Err(IdError::NotVersion7 {
            id_type,
            input: uuid.hyphenated().to_string(),
            version: uuid.get_version_num(),
        })
    }
}

/// Parses the canonical 36-character hyphenated form only, so every id has one spelling on the
/// wire (uuid's own parser also accepts braces, `urn:uuid:` and the unhyphenated form).
fn parse_v7(id_type: &'static str, input: &str) -> Result<Uuid, IdError> {
    let malformed = |reason: String| IdError::Malformed {
        id_type,
        input: input.to_owned(),
        reason,
    };
    if input.len() != 36 {
        return Err(malformed(format!(
            "expected 36 characters, got {}",
            input.len()
        )));
    }
    let uuid = Uuid::try_parse(input).map_err(|error| malformed(error.to_string()))?;
    check_v7(id_type, uuid)
}

/// Unix milliseconds embedded in a v7 UUID.
fn embedded_unix_millis(uuid: &Uuid) -> i64 {
    let bytes = uuid.as_bytes();
    let mut millis = [0u8; 8];
    millis[2..].copy_from_slice(&bytes[..6]);
    // 48 bits always fit in an i64.
    i64::from_be_bytes(millis)
}

/// Reads a UUID from its 16 bytes (binary formats).
struct UuidBytesVisitor;

impl serde::de::Visitor<'_> for UuidBytesVisitor {
    type Value = Uuid;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("the 16 bytes of a UUID")
    }

    fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<Uuid, E> {
        Uuid::from_slice(bytes).map_err(E::custom)
    }
}

macro_rules! uuid_v7_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        ///
        /// A UUIDv7, serialized as its lowercase hyphenated string (as its 16 bytes in binary
        /// formats such as the stores' compact codec, which parse no text).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Uuid);

        impl $name {
            /// A new id whose embedded time is `unix_millis` (clamped to the v7 range
            /// `0..=MAX_UUID_V7_UNIX_MILLIS`) and whose other 74 bits are random.
            pub fn generate(unix_millis: i64) -> Self {
                Self(new_v7_at(unix_millis))
            }

            /// A new id whose embedded time is `at`; see [`Self::generate`].
            pub fn generate_at(at: Timestamp) -> Self {
                Self::generate(at.as_unix_millis())
            }

            /// Wraps an existing UUID, refusing any that is not version 7.
            pub fn from_uuid(uuid: Uuid) -> Result<Self, IdError> {
                check_v7(stringify!($name), uuid).map(Self)
            }

            /// The underlying UUID.
            pub const fn as_uuid(&self) -> &Uuid {
                &self.0
            }

            /// The Unix milliseconds embedded in the id (when it was generated).
            pub fn unix_millis(&self) -> i64 {
                embedded_unix_millis(&self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }

        impl FromStr for $name {
            type Err = IdError;

            fn from_str(input: &str) -> Result<Self, Self::Err> {
                parse_v7(stringify!($name), input).map(Self)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                if !serializer.is_human_readable() {
                    return serializer.serialize_bytes(self.0.as_bytes());
                }
                let mut buffer = Uuid::encode_buffer();
                serializer.serialize_str(self.0.hyphenated().encode_lower(&mut buffer))
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                if !deserializer.is_human_readable() {
                    let uuid = deserializer.deserialize_bytes(UuidBytesVisitor)?;
                    return Self::from_uuid(uuid).map_err(serde::de::Error::custom);
                }
                crate::parse_str::deserialize_parsed(deserializer)
            }
        }

        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }

            fn schema_id() -> Cow<'static, str> {
                concat!(module_path!(), "::", stringify!($name)).into()
            }

            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!({
                    "type": "string",
                    "format": "uuid",
                    "pattern": UUID_V7_PATTERN,
                    "description": concat!(stringify!($name), ": a UUIDv7 (time-ordered UUID)."),
                })
            }
        }
    };
}

uuid_v7_id!(
    /// Identifies one record on a topic: the envelope's `event_id`, also used as a causation id.
    EventId
);
uuid_v7_id!(
    /// Ties together every record caused, directly or not, by one external request.
    CorrelationId
);
uuid_v7_id!(
    /// Identifies an order for its whole life.
    OrderId
);
uuid_v7_id!(
    /// Identifies a user account.
    UserId
);
uuid_v7_id!(
    /// Identifies one payment (a charge) of an order.
    PaymentId
);
uuid_v7_id!(
    /// Identifies a stock reservation for one order line.
    ReservationId
);
uuid_v7_id!(
    /// Identifies one notification sent (or attempted) on one channel.
    NotificationId
);
uuid_v7_id!(
    /// Identifies a coupon definition.
    CouponId
);

#[cfg(test)]
mod tests {
    use super::*;

    const V4: &str = "6f1c2a5e-8d3b-4c7a-9e2f-1b3d5a7c9e0f";

    #[test]
    fn generate_embeds_the_given_time() {
        let id = OrderId::generate(1_700_000_000_123);
        assert_eq!(id.as_uuid().get_version_num(), 7);
        assert_eq!(id.unix_millis(), 1_700_000_000_123);
        assert_ne!(
            id,
            OrderId::generate(1_700_000_000_123),
            "random bits differ"
        );
        assert_eq!(
            OrderId::generate_at(Timestamp::from_unix_millis(42)).unix_millis(),
            42
        );
    }

    #[test]
    fn binary_formats_carry_the_16_bytes_and_refuse_other_versions() {
        let id = OrderId::generate(1_700_000_000_123);
        let encoded = postcard::to_allocvec(&id).unwrap();
        assert_eq!(
            encoded.len(),
            17,
            "a length byte and the 16 bytes: {encoded:?}"
        );
        assert_eq!(&encoded[1..], id.as_uuid().as_bytes());
        assert_eq!(postcard::from_bytes::<OrderId>(&encoded).unwrap(), id);

        // The same bytes written as plain serde bytes decode; a v4 UUID's do not.
        let as_bytes = postcard::to_allocvec(&serde_bytes_of(id.as_uuid())).unwrap();
        assert_eq!(postcard::from_bytes::<OrderId>(&as_bytes).unwrap(), id);
        let v4: Uuid = V4.parse().unwrap();
        let v4_encoded = postcard::to_allocvec(&serde_bytes_of(&v4)).unwrap();
        assert!(postcard::from_bytes::<OrderId>(&v4_encoded).is_err());
        assert!(
            postcard::from_bytes::<OrderId>(&[3, 1, 2, 3]).is_err(),
            "3 bytes"
        );
        // JSON stays the hyphenated string.
        assert_eq!(
            serde_json::to_string(&id).unwrap(),
            format!("\"{}\"", id.as_uuid().hyphenated())
        );
    }

    /// A UUID's bytes as serde bytes (what a binary format holds for an id).
    fn serde_bytes_of(uuid: &Uuid) -> impl Serialize + '_ {
        struct Bytes<'a>(&'a [u8]);
        impl Serialize for Bytes<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_bytes(self.0)
            }
        }
        Bytes(uuid.as_bytes())
    }

    #[test]
    fn generate_clamps_out_of_range_times() {
        assert_eq!(EventId::generate(-1).unix_millis(), 0);
        assert_eq!(
            EventId::generate(i64::MAX).unix_millis(),
            MAX_UUID_V7_UNIX_MILLIS
        );
    }

    #[test]
    fn ids_sort_by_time() {
        let earlier = PaymentId::generate(1_000);
        let later = PaymentId::generate(1_001);
        assert!(earlier < later);
        assert!(earlier.to_string() < later.to_string());
    }

    #[test]
    fn display_and_parse_round_trip() {
        let id = UserId::generate(1_700_000_000_000);
        let text = id.to_string();
        assert_eq!(text.len(), 36);
        assert_eq!(text, text.to_lowercase());
        assert_eq!(text.parse::<UserId>().unwrap(), id);
        assert_eq!(text.to_uppercase().parse::<UserId>().unwrap(), id);
    }

    #[test]
    fn parse_rejects_other_versions_naming_the_type() {
        let error = V4.parse::<OrderId>().unwrap_err();
        assert_eq!(
            error,
            IdError::NotVersion7 {
                id_type: "OrderId",
                input: V4.to_owned(),
                version: 4
            }
        );
        assert!(error.to_string().contains("OrderId"), "{error}");
        let nil = Uuid::nil();
        assert!(matches!(
            CouponId::from_uuid(nil),
            Err(IdError::NotVersion7 {
                id_type: "CouponId",
                version: 0,
                ..
            })
        ));
    }

    #[test]
    fn parse_rejects_non_canonical_forms() {
        let id = EventId::generate(5).to_string();
        let simple = id.replace('-', "");
        let braced = format!("{{{id}}}");
        for bad in [
            simple.as_str(),
            braced.as_str(),
            "",
            "not-a-uuid",
            &id[..35],
        ] {
            let error = bad.parse::<EventId>().unwrap_err();
            assert!(
                matches!(&error, IdError::Malformed { id_type: "EventId", input, .. } if input == bad),
                "{bad}: {error:?}"
            );
        }
    }

    #[test]
    fn serde_uses_the_hyphenated_string() {
        let id = ReservationId::generate(7);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{id}\""));
        assert_eq!(serde_json::from_str::<ReservationId>(&json).unwrap(), id);
        let error = serde_json::from_str::<ReservationId>(&format!("\"{V4}\"")).unwrap_err();
        assert!(
            error.to_string().contains("ReservationId must be a UUIDv7"),
            "{error}"
        );
        assert!(serde_json::from_str::<ReservationId>("42").is_err());
    }

    #[test]
    fn from_uuid_round_trips() {
        let id = NotificationId::generate(99);
        assert_eq!(NotificationId::from_uuid(*id.as_uuid()).unwrap(), id);
        assert_eq!(
            CorrelationId::from_uuid(*id.as_uuid())
                .unwrap()
                .unix_millis(),
            99
        );
    }

    proptest::proptest! {
        #[test]
        fn generate_embeds_the_clamped_time_and_round_trips(millis in proptest::prelude::any::<i64>()) {
            let id = OrderId::generate(millis);
            proptest::prop_assert_eq!(id.unix_millis(), millis.clamp(0, MAX_UUID_V7_UNIX_MILLIS));
            proptest::prop_assert_eq!(id.to_string().parse::<OrderId>(), Ok(id));
            proptest::prop_assert_eq!(OrderId::from_uuid(*id.as_uuid()), Ok(id));
        }

        #[test]
        fn exactly_v7_rfc_uuids_parse(bytes in proptest::prelude::any::<[u8; 16]>()) {
            let uuid = Uuid::from_bytes(bytes);
            let is_v7 = uuid.get_version_num() == 7 && uuid.get_variant() == uuid::Variant::RFC4122;
            let parsed = uuid.hyphenated().to_string().parse::<EventId>();
            proptest::prop_assert_eq!(parsed.is_ok(), is_v7);
            proptest::prop_assert_eq!(EventId::from_uuid(uuid).is_ok(), is_v7);
        }
    }

    #[test]
    fn schema_is_a_uuid_string() {
        let schema = schemars::schema_for!(OrderId);
        assert_eq!(schema.get("format").unwrap(), "uuid");
        assert_eq!(schema.get("type").unwrap(), "string");
    }
}
