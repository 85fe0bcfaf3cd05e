//! Postal addresses: [`ShippingAddress`] and its [`CountryCode`].

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::validation::{MAX_NAME_CHARS, Validate, ValidationError, limit_text, require_text};

/// Longest postal code accepted (the longest in use are 10 characters; room for formatting).
pub const MAX_POSTAL_CODE_CHARS: usize = 16;

/// An ISO 3166-1 alpha-2 country code: two uppercase ASCII letters, e.g. `DE`.
///
/// Only the shape is checked: assignment of codes changes over time and the shipping provider is
/// the authority on where it delivers.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CountryCode([u8; 2]);

/// Why a string is not a country code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("country must be an ISO 3166-1 alpha-2 code of two uppercase letters, got {input:?}")]
pub struct CountryCodeError {
    /// The rejected text.
    pub input: String,
}

impl CountryCode {
    /// Validates and wraps `input`.
    pub fn parse(input: &str) -> Result<Self, CountryCodeError> {
        match input.as_bytes() {
            [first, second] if first.is_ascii_uppercase() && second.is_ascii_uppercase() => {
                Ok(Self([*first, *second]))
            }
            _ => Err(CountryCodeError {
                input: input.to_owned(),
            }),
        }
    }

    /// The two-letter code.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("country codes are ASCII")
    }
}

impl fmt::Display for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CountryCode({})", self.as_str())
    }
}

impl FromStr for CountryCode {
    type Err = CountryCodeError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        Self::parse(input)
    }
}

impl Serialize for CountryCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for CountryCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Cow::<str>::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for CountryCode {
    fn schema_name() -> Cow<'static, str> {
        "CountryCode".into()
    }

    fn schema_id() -> Cow<'static, str> {
        concat!(module_path!(), "::CountryCode").into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": "^[A-Z]{2}$",
            "description": "ISO 3166-1 alpha-2 country code, e.g. DE.",
        })
    }
}

/// Where an order is delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShippingAddress {
    /// Recipient's name as the carrier should print it.
    pub name: String,
    /// Street address.
    pub line1: String,
    /// Apartment, suite, building, c/o.
    pub line2: Option<String>,
    /// City or town.
    pub city: String,
    /// Postal or ZIP code.
    pub postal_code: String,
    /// Country.
    pub country: CountryCode,
    /// State, province or region, where the country uses one.
    pub region: Option<String>,
}

impl Validate for ShippingAddress {
    fn validate(&self) -> Result<(), ValidationError> {
        require_text("name", &self.name, MAX_NAME_CHARS)?;
        require_text("line1", &self.line1, MAX_NAME_CHARS)?;
        if let Some(line2) = &self.line2 {
            limit_text("line2", line2, MAX_NAME_CHARS)?;
        }
        require_text("city", &self.city, MAX_NAME_CHARS)?;
        require_text("postal_code", &self.postal_code, MAX_POSTAL_CODE_CHARS)?;
        if let Some(region) = &self.region {
            require_text("region", region, MAX_NAME_CHARS)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address() -> ShippingAddress {
        ShippingAddress {
            name: "Ada Lovelace".into(),
            line1: "12 St James's Square".into(),
            line2: None,
            city: "London".into(),
            postal_code: "SW1Y 4JH".into(),
            country: CountryCode::parse("GB").unwrap(),
            region: None,
        }
    }

    #[test]
    fn country_code_shape() {
        assert_eq!(CountryCode::parse("DE").unwrap().as_str(), "DE");
        for bad in ["de", "D", "DEU", "", "D1"] {
            assert_eq!(
                CountryCode::parse(bad),
                Err(CountryCodeError { input: bad.into() })
            );
        }
        let error = serde_json::from_str::<CountryCode>("\"gb\"").unwrap_err();
        assert!(error.to_string().contains("\"gb\""), "{error}");
    }

    #[test]
    fn address_validation_names_the_field() {
        assert_eq!(address().validate(), Ok(()));
        let mut blank_city = address();
        blank_city.city = " ".into();
        assert_eq!(blank_city.validate().unwrap_err().field, "city");
        let mut long_postal = address();
        long_postal.postal_code = "1".repeat(17);
        assert_eq!(long_postal.validate().unwrap_err().field, "postal_code");
    }

    #[test]
    fn address_json_round_trip_and_unknown_fields() {
        let json = serde_json::to_value(address()).unwrap();
        assert_eq!(json["country"], "GB");
        assert_eq!(
            serde_json::from_value::<ShippingAddress>(json.clone()).unwrap(),
            address()
        );
        let mut extra = json;
        extra["floor"] = 3.into();
        assert!(serde_json::from_value::<ShippingAddress>(extra).is_err());
    }
}
