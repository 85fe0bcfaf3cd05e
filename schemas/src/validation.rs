//! Business-rule validation of message payloads: the rules a type alone cannot express
//! (non-empty order lines, positive quantities, consistent currencies, ...).
//!
//! Format rules (a SKU's alphabet, a currency code, a UUID version) are enforced by the newtypes
//! themselves when they are parsed or deserialized; [`Validate`] covers relations between fields.

use crate::money::Money;

/// Most lines one order may have; bounds the fan-out of one order into reservations.
pub const MAX_ORDER_LINES: usize = 100;

/// Longest free-text reason (cancellation, refund, adjustment) in characters.
pub const MAX_REASON_CHARS: usize = 500;

/// Longest short name (product name, person name, carrier) in characters.
pub const MAX_NAME_CHARS: usize = 200;

/// Longest long text (product description, email body) in characters.
pub const MAX_LONG_TEXT_CHARS: usize = 10_000;

/// Longest opaque token or key (payment method token, idempotency key, provider reference).
pub const MAX_TOKEN_CHARS: usize = 255;

/// A payload broke a business rule: which field, and why.
///
/// `field` is a path relative to the payload, such as `lines[2].quantity`; when the error comes out
/// of [`crate::envelope::Envelope::decode_json`] it is prefixed with `payload.`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ValidationError {
    /// Path of the offending field, e.g. `lines[0].quantity`.
    pub field: String,
    /// What is wrong with it, in words, including the offending value where useful.
    pub reason: String,
}

impl ValidationError {
    /// An error about `field`.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// The same error seen from an enclosing value: `prefix` becomes the first path segment.
    pub fn within(self, prefix: &str) -> Self {
        let field = if self.field.is_empty() {
            prefix.to_owned()
        } else if self.field.starts_with('[') {
            format!("{prefix}{}", self.field)
        } else {
            format!("{prefix}.{}", self.field)
        };
        Self { field, ..self }
    }
}

/// Business-rule validation of a payload. Implemented by every message struct.
pub trait Validate {
    /// `Ok(())` when every rule holds, otherwise the first broken rule.
    fn validate(&self) -> Result<(), ValidationError>;
}

/// Checks a required human-readable text: not blank, at most `max_chars` characters, and no
/// control characters other than line breaks and tab (they break logs, emails and CSV exports).
pub fn require_text(field: &str, value: &str, max_chars: usize) -> Result<(), ValidationError> {
    if value.trim().is_empty() {
        return Err(ValidationError::new(field, "must not be blank"));
    }
    limit_text(field, value, max_chars)
}

/// Checks an optional or possibly-empty text: at most `max_chars` characters and no control
/// characters other than line breaks (`\n`, `\r`) and tab.
pub fn limit_text(field: &str, value: &str, max_chars: usize) -> Result<(), ValidationError> {
    let chars = value.chars().count();
    if chars > max_chars {
        return Err(ValidationError::new(
            field,
            format!("must be at most {max_chars} characters, got {chars}"),
        ));
    }
    if let Some(control) = value
        .chars()
        .find(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(ValidationError::new(
            field,
            format!("must not contain control character {control:?}"),
        ));
    }
    Ok(())
}

/// Checks an opaque token (payment token, idempotency key, provider reference): 1..=`max_chars`
/// visible ASCII characters, so it survives HTTP headers and provider APIs unchanged.
pub fn require_token(field: &str, value: &str, max_chars: usize) -> Result<(), ValidationError> {
    if value.is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    if value.len() > max_chars {
        return Err(ValidationError::new(
            field,
            format!(
                "must be at most {max_chars} characters, got {}",
                value.len()
            ),
        ));
    }
    if !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ValidationError::new(
            field,
            format!("must be visible ASCII without spaces, got {value:?}"),
        ));
    }
    Ok(())
}

/// Checks that an amount is zero or more.
pub fn require_non_negative(field: &str, amount: &Money) -> Result<(), ValidationError> {
    if amount.is_negative() {
        return Err(ValidationError::new(
            field,
            format!("must not be negative, got {amount}"),
        ));
    }
    Ok(())
}

/// Checks that an amount is more than zero (charges and refunds of nothing are mistakes).
pub fn require_positive(field: &str, amount: &Money) -> Result<(), ValidationError> {
    if amount.amount_minor <= 0 {
        return Err(ValidationError::new(
            field,
            format!("must be more than zero, got {amount}"),
        ));
    }
    Ok(())
}

/// Checks that a count is more than zero.
pub fn require_positive_count(field: &str, count: u32) -> Result<(), ValidationError> {
    if count == 0 {
        return Err(ValidationError::new(field, "must be more than zero, got 0"));
    }
    Ok(())
}

/// Checks that an amount is in the currency the rest of its document uses.
pub fn require_currency(
    field: &str,
    amount: &Money,
    expected: crate::currency::Currency,
) -> Result<(), ValidationError> {
    if amount.currency != expected {
        return Err(ValidationError::new(
            field,
            format!(
                "must be in {expected} like the rest of the document, got {}",
                amount.currency
            ),
        ));
    }
    Ok(())
}

/// Checks a list's length is within `1..=max`.
pub fn require_count_within<T>(
    field: &str,
    items: &[T],
    max: usize,
) -> Result<(), ValidationError> {
    if items.is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    if items.len() > max {
        return Err(ValidationError::new(
            field,
            format!("must have at most {max} entries, got {}", items.len()),
        ));
    }
    Ok(())
}

/// Checks an email address the way a sender needs it: one `@`, a non-empty local part, a domain
/// with a dot, no whitespace, at most 254 characters (RFC 5321's path limit). Deliverability is
/// the email provider's job, not the contract's.
pub fn require_email(field: &str, value: &str) -> Result<(), ValidationError> {
    let fail = || ValidationError::new(field, format!("must be an email address, got {value:?}"));
    if value.len() > 254 || value.chars().any(char::is_whitespace) {
        return Err(fail());
    }
    let Some((local, domain)) = value.split_once('@') else {
        return Err(fail());
    };
    if local.is_empty()
        || domain.contains('@')
        || !domain.contains('.')
        || domain.starts_with('.')
        || domain.ends_with('.')
    {
        return Err(fail());
    }
    Ok(())
}

/// Checks an E.164 phone number: `+`, a non-zero digit, then up to 14 more digits.
pub fn require_e164_phone(field: &str, value: &str) -> Result<(), ValidationError> {
    let digits = value.strip_prefix('+').unwrap_or("");
    let valid = (2..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0');
    if !valid {
        return Err(ValidationError::new(
            field,
            format!("must be an E.164 phone number like +14155550123, got {value:?}"),
        ));
    }
    Ok(())
}

/// Checks a BCP 47 language tag in the shape templates are keyed by: a 2-3 letter lowercase
/// language, then optional `-`-separated alphanumeric subtags (`en`, `en-GB`, `zh-Hant-TW`).
pub fn require_locale(field: &str, value: &str) -> Result<(), ValidationError> {
    let mut subtags = value.split('-');
    let language = subtags.next().unwrap_or("");
    let language_ok =
        (2..=3).contains(&language.len()) && language.bytes().all(|b| b.is_ascii_lowercase());
    let rest_ok =
        subtags.all(|s| (1..=8).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric()));
    if !(language_ok && rest_ok) || value.len() > 35 {
        return Err(ValidationError::new(
            field,
            format!("must be a BCP 47 language tag like en-GB, got {value:?}"),
        ));
    }
    Ok(())
}

/// Checks a notification template name: 1..=64 of `[a-z0-9_.]`, e.g. `order.confirmed`.
pub fn require_template_name(field: &str, value: &str) -> Result<(), ValidationError> {
    let valid = (1..=64).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.');
    if !valid {
        return Err(ValidationError::new(
            field,
            format!("must be 1-64 characters of a-z, 0-9, '_' or '.', got {value:?}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::currency::Currency;

    #[test]
    fn within_builds_dotted_and_indexed_paths() {
        let error = ValidationError::new("quantity", "must be more than zero");
        assert_eq!(error.clone().within("lines[3]").field, "lines[3].quantity");
        assert_eq!(
            ValidationError::new("[3]", "x").within("lines").field,
            "lines[3]"
        );
        assert_eq!(
            ValidationError::new("", "x").within("payload").field,
            "payload"
        );
        assert_eq!(error.to_string(), "quantity: must be more than zero");
    }

    #[test]
    fn text_rules() {
        assert!(require_text("name", "Ada", 10).is_ok());
        assert_eq!(
            require_text("name", "   ", 10).unwrap_err(),
            ValidationError::new("name", "must not be blank")
        );
        assert!(
            require_text("name", "ééééé", 5).is_ok(),
            "limit counts characters, not bytes"
        );
        assert!(require_text("name", "ééééé!", 5).is_err());
        assert!(require_text("name", "a\u{7}b", 5).is_err());
        assert!(limit_text("body", "line\nline", 20).is_ok());
        assert!(limit_text("body", "", 20).is_ok());
    }

    #[test]
    fn token_rules() {
        assert!(require_token("key", "order-1:charge:1", 255).is_ok());
        assert!(require_token("key", "", 255).is_err());
        assert!(require_token("key", "has space", 255).is_err());
        assert!(require_token("key", &"k".repeat(256), 255).is_err());
    }

    #[test]
    fn money_rules() {
        let usd = Currency::USD;
        assert!(require_non_negative("price", &Money::new(0, usd)).is_ok());
        assert!(require_non_negative("price", &Money::new(-1, usd)).is_err());
        assert!(require_positive("amount", &Money::new(0, usd)).is_err());
        assert!(require_positive("amount", &Money::new(1, usd)).is_ok());
        let error = require_currency("total", &Money::new(1, Currency::EUR), usd).unwrap_err();
        assert_eq!(error.field, "total");
        assert!(
            error.reason.contains("USD") && error.reason.contains("EUR"),
            "{error}"
        );
    }

    #[test]
    fn contact_rules() {
        assert!(require_email("email", "ada@example.com").is_ok());
        for bad in [
            "",
            "ada",
            "@example.com",
            "ada@example",
            "ada@@example.com",
            "a da@x.io",
            "ada@.com",
        ] {
            assert!(require_email("email", bad).is_err(), "{bad}");
        }
        assert!(require_e164_phone("phone", "+14155550123").is_ok());
        for bad in ["14155550123", "+0123", "+1", "+1234567890123456", "+1-415"] {
            assert!(require_e164_phone("phone", bad).is_err(), "{bad}");
        }
        for good in ["en", "en-GB", "zh-Hant-TW", "fil"] {
            assert!(require_locale("locale", good).is_ok(), "{good}");
        }
        for bad in ["", "EN", "english", "en_GB", "en-"] {
            assert!(require_locale("locale", bad).is_err(), "{bad}");
        }
        assert!(require_template_name("template", "order.confirmed").is_ok());
        assert!(require_template_name("template", "Order Confirmed").is_err());
    }

    #[test]
    fn count_rules() {
        assert!(require_count_within::<u8>("lines", &[], 3).is_err());
        assert!(require_count_within("lines", &[1, 2, 3], 3).is_ok());
        assert!(require_count_within("lines", &[1, 2, 3, 4], 3).is_err());
        assert!(require_positive_count("quantity", 0).is_err());
        assert!(require_positive_count("quantity", 1).is_ok());
    }
}
