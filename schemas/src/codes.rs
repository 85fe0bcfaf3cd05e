//! Human-assigned codes: [`Sku`] (stock keeping unit) and [`CouponCode`].
//!
//! Both are uppercase ASCII letters, digits, `_` and `-`, so they are safe in URLs, topic keys and
//! file names and compare equal exactly when they look equal (no case folding needed anywhere).

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize};

/// Whether `byte` may appear in a code.
fn is_code_byte(byte: u8) -> bool {
    byte.is_ascii_uppercase() || byte.is_ascii_digit() || byte == b'_' || byte == b'-'
}

/// Why `input` is not a code of at most `max_len` characters, if it is not.
fn code_problem(input: &str, max_len: usize) -> Option<String> {
    if input.is_empty() {
        return Some("must not be empty".to_owned());
    }
    if input.len() > max_len {
        return Some(format!(
            "must be at most {max_len} characters, got {}",
            input.len()
        ));
    }
    input
        .chars()
        .find(|c| !c.is_ascii() || !is_code_byte(*c as u8))
        .map(|c| format!("must contain only A-Z, 0-9, '_' and '-', found {c:?}"))
}

macro_rules! code_newtype {
    (
        $(#[$meta:meta])*
        $name:ident, $error:ident, max_len = $max_len:literal, pattern = $pattern:literal
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        #[doc = concat!("Why a string is not a valid [`", stringify!($name), "`].")]
        #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
        #[error("invalid {} {input:?}: {reason}", stringify!($name))]
        pub struct $error {
            /// The rejected text.
            pub input: String,
            /// What rule it breaks.
            pub reason: String,
        }

        impl $name {
            /// Longest accepted code, in characters.
            pub const MAX_LEN: usize = $max_len;

            /// The accepted codes as a regular expression (JSON Schema, OpenAPI).
            pub const PATTERN: &'static str = $pattern;

            /// Validates and wraps `input`.
            pub fn parse(input: &str) -> Result<Self, $error> {
                match code_problem(input, Self::MAX_LEN) {
                    None => Ok(Self(input.to_owned())),
                    Some(reason) => Err($error {
                        input: input.to_owned(),
                        reason,
                    }),
                }
            }

            /// The code text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = $error;

            fn from_str(input: &str) -> Result<Self, Self::Err> {
                Self::parse(input)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = Cow::<str>::deserialize(deserializer)?;
                Self::parse(&text).map_err(serde::de::Error::custom)
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
                    "minLength": 1,
                    "maxLength": $max_len,
                    "pattern": Self::PATTERN,
                })
            }
        }
    };
}

code_newtype!(
    /// A stock keeping unit: 1 to 64 characters of `A-Z`, `0-9`, `_`, `-` (e.g. `TSHIRT-RED-M`).
    Sku,
    SkuError,
    max_len = 64,
    pattern = "^[A-Z0-9_-]{1,64}$"
);

code_newtype!(
    /// A coupon code customers type: 1 to 32 characters of `A-Z`, `0-9`, `_`, `-` (e.g. `SPRING25`).
    CouponCode,
    CouponCodeError,
    max_len = 32,
    pattern = "^[A-Z0-9_-]{1,32}$"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_alphabet() {
        assert_eq!(
            Sku::parse("TSHIRT-RED_M-01").unwrap().as_str(),
            "TSHIRT-RED_M-01"
        );
        assert!(Sku::parse(&"A".repeat(64)).is_ok());
        assert!(CouponCode::parse(&"A".repeat(32)).is_ok());
    }

    #[test]
    fn rejects_with_input_and_reason() {
        let error = Sku::parse("tshirt").unwrap_err();
        assert_eq!(error.input, "tshirt");
        assert!(error.reason.contains("'t'"), "{error}");
        assert!(
            error.to_string().starts_with("invalid Sku \"tshirt\""),
            "{error}"
        );
        for bad in ["", "A B", "ÄPFEL", "A.B", "A/B"] {
            assert!(Sku::parse(bad).is_err(), "{bad}");
        }
        assert!(Sku::parse(&"A".repeat(65)).is_err());
        assert!(CouponCode::parse(&"A".repeat(33)).is_err());
    }

    proptest::proptest! {
        #[test]
        fn sku_accepts_exactly_its_alphabet_and_length(input in "[A-Z0-9_-]{0,70}|\\PC{0,70}") {
            let expected = (1..=Sku::MAX_LEN).contains(&input.len()) && input.bytes().all(is_code_byte);
            let parsed = Sku::parse(&input);
            proptest::prop_assert_eq!(parsed.is_ok(), expected, "{:?}", input);
            if let Ok(sku) = parsed {
                let json = serde_json::to_string(&sku).unwrap();
                proptest::prop_assert_eq!(serde_json::from_str::<Sku>(&json).unwrap(), sku);
            }
        }
    }

    #[test]
    fn deserialize_validates() {
        assert_eq!(
            serde_json::from_str::<Sku>("\"ABC-1\"").unwrap(),
            Sku::parse("ABC-1").unwrap()
        );
        let error = serde_json::from_str::<Sku>("\"abc\"").unwrap_err();
        assert!(error.to_string().contains("invalid Sku \"abc\""), "{error}");
        assert_eq!(
            serde_json::to_string(&CouponCode::parse("SPRING25").unwrap()).unwrap(),
            "\"SPRING25\""
        );
    }
}
