//! [`TraceParent`]: the W3C Trace Context `traceparent` value carried in envelopes, so one trace
//! follows an order from the HTTP request through every processor.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize};

/// A validated W3C `traceparent` of version `00`: `00-<trace-id>-<parent-id>-<flags>`, with a
/// 32-hex-digit trace id, a 16-hex-digit parent (span) id and 2 hex digits of flags, all
/// lowercase, and neither id all zeros (the spec calls those invalid).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct TraceParent(String);

/// Why a string is not a valid `traceparent`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid traceparent {input:?}: {reason}")]
pub struct TraceParentError {
    /// The rejected text.
    pub input: String,
    /// What rule it breaks.
    pub reason: &'static str,
}

/// Whether `part` is exactly `len` lowercase hex digits.
fn is_lower_hex(part: &str, len: usize) -> bool {
    part.len() == len
        && part
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl TraceParent {
    /// Validates and wraps `input`.
    pub fn parse(input: &str) -> Result<Self, TraceParentError> {
        let fail = |reason| TraceParentError {
            input: input.to_owned(),
            reason,
        };
        let parts: Vec<&str> = input.split('-').collect();
        let [version, trace_id, parent_id, flags] = parts[..] else {
            return Err(fail("expected 4 '-'-separated fields"));
        };
        if version != "00" {
            return Err(fail("only version 00 is supported"));
        }
        if !is_lower_hex(trace_id, 32) {
            return Err(fail("trace-id must be 32 lowercase hex digits"));
        }
        if !is_lower_hex(parent_id, 16) {
            return Err(fail("parent-id must be 16 lowercase hex digits"));
        }
        if !is_lower_hex(flags, 2) {
            return Err(fail("trace-flags must be 2 lowercase hex digits"));
        }
        if trace_id.bytes().all(|b| b == b'0') {
            return Err(fail("trace-id must not be all zeros"));
        }
        if parent_id.bytes().all(|b| b == b'0') {
            return Err(fail("parent-id must not be all zeros"));
        }
        Ok(Self(input.to_owned()))
    }

    /// The whole header value.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 32-hex-digit trace id shared by every span of the trace.
    pub fn trace_id(&self) -> &str {
        &self.0[3..35]
    }

    /// The 16-hex-digit id of the span that produced this record.
    pub fn parent_id(&self) -> &str {
        &self.0[36..52]
    }

    /// The trace flags byte.
    pub fn flags(&self) -> u8 {
        u8::from_str_radix(&self.0[53..55], 16).expect("validated as two hex digits")
    }

    /// Whether the `sampled` flag (bit 0) is set.
    pub fn is_sampled(&self) -> bool {
        self.flags() & 1 == 1
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for TraceParent {
    type Err = TraceParentError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        Self::parse(input)
    }
}

impl<'de> Deserialize<'de> for TraceParent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        crate::parse_str::deserialize_parsed(deserializer)
    }
}

impl JsonSchema for TraceParent {
    fn schema_name() -> Cow<'static, str> {
        "TraceParent".into()
    }

    fn schema_id() -> Cow<'static, str> {
        concat!(module_path!(), "::TraceParent").into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": "^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$",
            "description": "W3C Trace Context traceparent, version 00.",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn parses_the_spec_example() {
        let parent = TraceParent::parse(VALID).unwrap();
        assert_eq!(parent.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(parent.parent_id(), "00f067aa0ba902b7");
        assert_eq!(parent.flags(), 1);
        assert!(parent.is_sampled());
        assert_eq!(parent.to_string(), VALID);
    }

    #[test]
    fn rejects_each_malformation_with_a_reason() {
        let cases = [
            ("", "expected 4 '-'-separated fields"),
            (
                "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                "only version 00 is supported",
            ),
            (
                "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
                "trace-id must be 32 lowercase hex digits",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
                "trace-id must be 32 lowercase hex digits",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-01",
                "parent-id must be 16 lowercase hex digits",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
                "trace-flags must be 2 lowercase hex digits",
            ),
            (
                "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                "trace-id must not be all zeros",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
                "parent-id must not be all zeros",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
                "expected 4 '-'-separated fields",
            ),
        ];
        for (input, reason) in cases {
            let error = TraceParent::parse(input).unwrap_err();
            assert_eq!(
                error,
                TraceParentError {
                    input: input.to_owned(),
                    reason
                },
                "{input}"
            );
        }
    }

    #[test]
    fn deserialize_validates() {
        let json = format!("\"{VALID}\"");
        assert_eq!(
            serde_json::from_str::<TraceParent>(&json).unwrap().as_str(),
            VALID
        );
        assert!(serde_json::from_str::<TraceParent>("\"00-zz\"").is_err());
    }
}
