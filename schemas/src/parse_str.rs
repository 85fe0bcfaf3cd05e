//! Deserializing a value that is parsed from a string, without copying the string.
//!
//! serde's `Cow<str>` always deserializes to an owned copy, so reading an id through it
//! allocated a `String` per id: three per envelope (event, correlation and causation ids) on
//! every record every processor reads. A visitor gets the `&str` serde_json lends instead (its
//! input, or its scratch buffer when the string has escapes).

use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;

use serde::Deserializer;
use serde::de::{Error, Visitor};

struct ParseVisitor<T>(PhantomData<T>);

impl<T> Visitor<'_> for ParseVisitor<T>
where
    T: FromStr,
    T::Err: fmt::Display,
{
    type Value = T;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a string")
    }

    fn visit_str<E: Error>(self, text: &str) -> Result<T, E> {
        text.parse().map_err(E::custom)
    }
}

/// Reads a string and parses it with `T`'s `FromStr`; a parse failure is a custom error with
/// its message, a value that is not a string an "invalid type ... expected a string" error.
pub(crate) fn deserialize_parsed<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: fmt::Display,
{
    deserializer.deserialize_str(ParseVisitor(PhantomData))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct Even(u32);

    impl FromStr for Even {
        type Err = String;

        fn from_str(text: &str) -> Result<Self, String> {
            let number: u32 = text
                .parse()
                .map_err(|_| format!("{text:?} is not a number"))?;
            if number.is_multiple_of(2) {
                Ok(Self(number))
            } else {
                Err(format!("{number} is odd"))
            }
        }
    }

    fn parse(json: &str) -> Result<Even, String> {
        let mut deserializer = serde_json::Deserializer::from_str(json);
        deserialize_parsed(&mut deserializer).map_err(|error| error.to_string())
    }

    #[test]
    fn strings_parse_with_and_without_escapes_and_errors_say_why() {
        assert_eq!(parse("\"42\""), Ok(Even(42)));
        // An escape makes serde_json decode into its scratch buffer: still no `String` needed.
        assert_eq!(parse("\"\\u0034\\u0032\""), Ok(Even(42)));
        assert!(parse("\"7\"").unwrap_err().starts_with("7 is odd"));
        assert!(
            parse("7")
                .unwrap_err()
                .starts_with("invalid type: integer `7`, expected a string")
        );
    }
}
