//! [`Currency`]: an active ISO 4217 currency and its minor-unit exponent.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Active ISO 4217 codes with their minor-unit exponent (digits after the decimal point),
/// sorted by code.
///
/// Included: national and regional currencies, and the fund codes that have a defined exponent
/// (BOV, CHE, CHW, CLF, COU, MXV, USN, UYI, UYW). Excluded: codes whose minor unit is "N.A." in
/// ISO 4217 (precious metals XAU/XAG/XPD/XPT, bond units XBA-XBD, XDR, XSU, XUA, XTS, XXX), since
/// an amount in minor units is meaningless for them; and withdrawn codes (HRK 2023, SLL 2024,
/// ZWL 2024, ANG 2025, CUC), since no new order may be priced in them.
#[rustfmt::skip]
const ISO_4217: &[(&str, u8)] = &[
    ("AED", 2), ("AFN", 2), ("ALL", 2), ("AMD", 2), ("AOA", 2), ("ARS", 2), ("AUD", 2),
    ("AWG", 2), ("AZN", 2), ("BAM", 2), ("BBD", 2), ("BDT", 2), ("BGN", 2), ("BHD", 3),
    ("BIF", 0), ("BMD", 2), ("BND", 2), ("BOB", 2), ("BOV", 2), ("BRL", 2), ("BSD", 2),
    ("BTN", 2), ("BWP", 2), ("BYN", 2), ("BZD", 2), ("CAD", 2), ("CDF", 2), ("CHE", 2),
    ("CHF", 2), ("CHW", 2), ("CLF", 4), ("CLP", 0), ("CNY", 2), ("COP", 2), ("COU", 2),
    ("CRC", 2), ("CUP", 2), ("CVE", 2), ("CZK", 2), ("DJF", 0), ("DKK", 2), ("DOP", 2),
    ("DZD", 2), ("EGP", 2), ("ERN", 2), ("ETB", 2), ("EUR", 2), ("FJD", 2), ("FKP", 2),
    ("GBP", 2), ("GEL", 2), ("GHS", 2), ("GIP", 2), ("GMD", 2), ("GNF", 0), ("GTQ", 2),
    ("GYD", 2), ("HKD", 2), ("HNL", 2), ("HTG", 2), ("HUF", 2), ("IDR", 2), ("ILS", 2),
    ("INR", 2), ("IQD", 3), ("IRR", 2), ("ISK", 0), ("JMD", 2), ("JOD", 3), ("JPY", 0),
    ("KES", 2), ("KGS", 2), ("KHR", 2), ("KMF", 0), ("KPW", 2), ("KRW", 0), ("KWD", 3),
    ("KYD", 2), ("KZT", 2), ("LAK", 2), ("LBP", 2), ("LKR", 2), ("LRD", 2), ("LSL", 2),
    ("LYD", 3), ("MAD", 2), ("MDL", 2), ("MGA", 2), ("MKD", 2), ("MMK", 2), ("MNT", 2),
    ("MOP", 2), ("MRU", 2), ("MUR", 2), ("MVR", 2), ("MWK", 2), ("MXN", 2), ("MXV", 2),
    ("MYR", 2), ("MZN", 2), ("NAD", 2), ("NGN", 2), ("NIO", 2), ("NOK", 2), ("NPR", 2),
    ("NZD", 2), ("OMR", 3), ("PAB", 2), ("PEN", 2), ("PGK", 2), ("PHP", 2), ("PKR", 2),
    ("PLN", 2), ("PYG", 0), ("QAR", 2), ("RON", 2), ("RSD", 2), ("RUB", 2), ("RWF", 0),
    ("SAR", 2), ("SBD", 2), ("SCR", 2), ("SDG", 2), ("SEK", 2), ("SGD", 2), ("SHP", 2),
    ("SLE", 2), ("SOS", 2), ("SRD", 2), ("SSP", 2), ("STN", 2), ("SVC", 2), ("SYP", 2),
    ("SZL", 2), ("THB", 2), ("TJS", 2), ("TMT", 2), ("TND", 3), ("TOP", 2), ("TRY", 2),
    ("TTD", 2), ("TWD", 2), ("TZS", 2), ("UAH", 2), ("UGX", 0), ("USD", 2), ("USN", 2),
    ("UYI", 0), ("UYU", 2), ("UYW", 4), ("UZS", 2), ("VED", 2), ("VES", 2), ("VND", 0),
    ("VUV", 0), ("WST", 2), ("XAF", 0), ("XCD", 2), ("XCG", 2), ("XOF", 0), ("XPF", 0),
    ("YER", 2), ("ZAR", 2), ("ZMW", 2), ("ZWG", 2),
];

/// Slot of a three-uppercase-letter code in [`EXPONENT_BY_CODE`].
const fn code_slot(code: [u8; 3]) -> usize {
    ((code[0] - b'A') as usize * 26 + (code[1] - b'A') as usize) * 26 + (code[2] - b'A') as usize
}

/// [`ISO_4217`] as a direct lookup: the minor-unit exponent plus one at every active code's slot,
/// 0 elsewhere. Every amount read, written or added looks its currency up, and a binary search
/// over 160 codes was 1.5% of the saga benchmark; this is one load from a 17.6 KB table.
static EXPONENT_BY_CODE: [u8; 26 * 26 * 26] = {
    let mut table = [0u8; 26 * 26 * 26];
    let mut index = 0;
    while index < ISO_4217.len() {
        let code = ISO_4217[index].0.as_bytes();
        table[code_slot([code[0], code[1], code[2]])] = ISO_4217[index].1 + 1;
        index += 1;
    }
    table
};

/// The minor-unit exponent of `code` (three uppercase ASCII letters), if it is active.
fn exponent_of(code: [u8; 3]) -> Option<u8> {
    EXPONENT_BY_CODE[code_slot(code)].checked_sub(1)
}

/// An active ISO 4217 currency, stored as its three ASCII uppercase letters.
///
/// Serialized as the code string (`"USD"`). Only codes in the active table parse, so every
/// `Currency` has a known minor-unit exponent.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Currency([u8; 3]);

/// Why a string is not an active ISO 4217 currency code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CurrencyError {
    /// Not three uppercase ASCII letters.
    #[error("currency must be three uppercase letters like \"USD\", got {input:?}")]
    Malformed {
        /// The rejected text.
        input: String,
    },
    /// Three uppercase letters, but not an active ISO 4217 code.
    #[error("currency {input:?} is not an active ISO 4217 code")]
    Unknown {
        /// The rejected code.
        input: String,
    },
}

impl Currency {
    /// United States dollar (2 decimals).
    pub const USD: Currency = Currency(*b"USD");
    /// Euro (2 decimals).
    pub const EUR: Currency = Currency(*b"EUR");
    /// Pound sterling (2 decimals).
    pub const GBP: Currency = Currency(*b"GBP");
    /// Swiss franc (2 decimals).
    pub const CHF: Currency = Currency(*b"CHF");
    /// Canadian dollar (2 decimals).
    pub const CAD: Currency = Currency(*b"CAD");
    /// Australian dollar (2 decimals).
    pub const AUD: Currency = Currency(*b"AUD");
    /// Japanese yen (no minor unit).
    pub const JPY: Currency = Currency(*b"JPY");
    /// South Korean won (no minor unit).
    pub const KRW: Currency = Currency(*b"KRW");
    /// Bahraini dinar (3 decimals).
    pub const BHD: Currency = Currency(*b"BHD");
    /// Kuwaiti dinar (3 decimals).
    pub const KWD: Currency = Currency(*b"KWD");
    /// Chilean unidad de fomento (4 decimals).
    pub const CLF: Currency = Currency(*b"CLF");

    /// Parses an active ISO 4217 code. Case matters: `"usd"` is rejected so that every currency
    /// has exactly one spelling on the wire.
    pub fn parse(input: &str) -> Result<Self, CurrencyError> {
        let bytes = input.as_bytes();
        if bytes.len() != 3 || !bytes.iter().all(u8::is_ascii_uppercase) {
            return Err(CurrencyError::Malformed {
                input: input.to_owned(),
            });
        }
        let code = [bytes[0], bytes[1], bytes[2]];
        match exponent_of(code) {
            Some(_) => Ok(Self(code)),
            None => Err(CurrencyError::Unknown {
                input: input.to_owned(),
            }),
        }
    }

    /// The three-letter code.
    pub fn code(&self) -> &str {
        std::str::from_utf8(&self.0).expect("currency codes are ASCII")
    }

    /// Number of digits after the decimal point: 2 for USD (cents), 0 for JPY, 3 for BHD.
    pub fn minor_unit_exponent(&self) -> u8 {
        exponent_of(self.0).expect("every Currency is in the ISO 4217 table")
    }

    /// Minor units in one major unit: 100 for USD, 1 for JPY, 1000 for BHD.
    pub fn minor_units_per_major(&self) -> i64 {
        10_i64.pow(u32::from(self.minor_unit_exponent()))
    }

    /// Every currency this crate accepts, in code order.
    pub fn all() -> impl Iterator<Item = Currency> {
        ISO_4217.iter().map(|(code, _)| {
            let bytes = code.as_bytes();
            Currency([bytes[0], bytes[1], bytes[2]])
        })
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Currency({})", self.code())
    }
}

impl FromStr for Currency {
    type Err = CurrencyError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        Self::parse(input)
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Cow::<str>::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Currency {
    fn schema_name() -> Cow<'static, str> {
        "Currency".into()
    }

    fn schema_id() -> Cow<'static, str> {
        concat!(module_path!(), "::Currency").into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": "^[A-Z]{3}$",
            "description": "Active ISO 4217 alphabetic currency code, e.g. USD.",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_unique_and_plausible() {
        assert!(
            ISO_4217.windows(2).all(|pair| pair[0].0 < pair[1].0),
            "table must be strictly sorted: Currency::all() lists codes in order"
        );
        assert!((150..=180).contains(&ISO_4217.len()), "{}", ISO_4217.len());
        for (code, exponent) in ISO_4217 {
            assert!(code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase()));
            assert!(matches!(exponent, 0 | 2 | 3 | 4), "{code}");
        }
    }

    #[test]
    fn the_direct_lookup_agrees_with_the_table_for_every_three_letter_code() {
        for first in b'A'..=b'Z' {
            for second in b'A'..=b'Z' {
                for third in b'A'..=b'Z' {
                    let code = [first, second, third];
                    let listed = ISO_4217
                        .iter()
                        .find(|(entry, _)| entry.as_bytes() == code)
                        .map(|(_, exponent)| *exponent);
                    assert_eq!(
                        exponent_of(code),
                        listed,
                        "{}",
                        String::from_utf8_lossy(&code)
                    );
                    let text = std::str::from_utf8(&code).unwrap();
                    assert_eq!(Currency::parse(text).is_ok(), listed.is_some(), "{text}");
                }
            }
        }
    }

    #[test]
    fn exponents_of_well_known_currencies() {
        let expected = [
            ("USD", 2),
            ("EUR", 2),
            ("JPY", 0),
            ("KRW", 0),
            ("BHD", 3),
            ("KWD", 3),
            ("OMR", 3),
            ("TND", 3),
            ("CLF", 4),
            ("CLP", 0),
            ("ISK", 0),
            ("VND", 0),
            ("XOF", 0),
        ];
        for (code, exponent) in expected {
            assert_eq!(
                Currency::parse(code).unwrap().minor_unit_exponent(),
                exponent,
                "{code}"
            );
        }
        assert_eq!(Currency::BHD.minor_units_per_major(), 1000);
        assert_eq!(Currency::JPY.minor_units_per_major(), 1);
    }

    #[test]
    fn constants_are_in_the_table() {
        for currency in [
            Currency::USD,
            Currency::EUR,
            Currency::GBP,
            Currency::CHF,
            Currency::CAD,
            Currency::AUD,
            Currency::JPY,
            Currency::KRW,
            Currency::BHD,
            Currency::KWD,
            Currency::CLF,
        ] {
            assert_eq!(Currency::parse(currency.code()), Ok(currency));
        }
    }

    #[test]
    fn rejects_malformed_and_unknown_codes() {
        for bad in ["usd", "US", "USDD", "", "U5D", "ÜSD"] {
            assert_eq!(
                Currency::parse(bad),
                Err(CurrencyError::Malformed {
                    input: bad.to_owned()
                })
            );
        }
        for unknown in ["XXX", "HRK", "XAU", "ABC"] {
            assert_eq!(
                Currency::parse(unknown),
                Err(CurrencyError::Unknown {
                    input: unknown.to_owned()
                })
            );
        }
    }

    #[test]
    fn serde_uses_the_code() {
        assert_eq!(serde_json::to_string(&Currency::EUR).unwrap(), "\"EUR\"");
        assert_eq!(
            serde_json::from_str::<Currency>("\"JPY\"").unwrap(),
            Currency::JPY
        );
        let error = serde_json::from_str::<Currency>("\"ABC\"").unwrap_err();
        assert!(
            error
                .to_string()
                .contains("\"ABC\" is not an active ISO 4217 code"),
            "{error}"
        );
    }

    #[test]
    fn all_lists_every_code() {
        assert_eq!(Currency::all().count(), ISO_4217.len());
        assert!(Currency::all().any(|c| c == Currency::USD));
    }
}
