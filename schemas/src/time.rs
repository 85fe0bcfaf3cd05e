//! [`Timestamp`]: a point in time as Unix milliseconds, the only time representation on topics.
//!
//! Nothing in this crate reads the system clock except [`Timestamp::from_system_clock`]; processors
//! get time from the runtime's clock so tests can control it.

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

/// Milliseconds since 1970-01-01T00:00:00Z (UTC), serialized as a JSON integer.
///
/// Milliseconds match Kafka record timestamps and UUIDv7's time field, so an event's
/// `occurred_at`, its record timestamp and its id's embedded time can all agree exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The Unix epoch.
    pub const EPOCH: Timestamp = Timestamp(0);

    /// The timestamp `unix_millis` milliseconds after the epoch (negative is before it).
    pub const fn from_unix_millis(unix_millis: i64) -> Self {
        Self(unix_millis)
    }

    /// Milliseconds since the Unix epoch.
    pub const fn as_unix_millis(self) -> i64 {
        self.0
    }

    /// Reads the machine's wall clock. A convenience for binaries and tools only: processors and
    /// anything under test must take time from the runtime's controllable clock instead.
    pub fn from_system_clock() -> Self {
        let millis = match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            Ok(since_epoch) => i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX),
            Err(before_epoch) => {
                i64::try_from(before_epoch.duration().as_millis()).map_or(i64::MIN, |m| -m)
            }
        };
        Self(millis)
    }

    /// This timestamp plus `millis`, or `None` if the result does not fit in an `i64`.
    pub const fn checked_add_millis(self, millis: i64) -> Option<Self> {
        match self.0.checked_add(millis) {
            Some(sum) => Some(Self(sum)),
            None => None,
        }
    }

    /// Milliseconds from `earlier` to `self` (negative if `earlier` is later), or `None` on
    /// overflow.
    pub const fn checked_millis_since(self, earlier: Timestamp) -> Option<i64> {
        self.0.checked_sub(earlier.0)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

impl JsonSchema for Timestamp {
    fn schema_name() -> Cow<'static, str> {
        "Timestamp".into()
    }

    fn schema_id() -> Cow<'static, str> {
        concat!(module_path!(), "::Timestamp").into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "integer",
            "format": "int64",
            "description": "Unix time in milliseconds (UTC).",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_as_plain_integer() {
        let at = Timestamp::from_unix_millis(1_700_000_000_123);
        assert_eq!(serde_json::to_string(&at).unwrap(), "1700000000123");
        assert_eq!(
            serde_json::from_str::<Timestamp>("-5").unwrap(),
            Timestamp(-5)
        );
        assert!(serde_json::from_str::<Timestamp>("\"5\"").is_err());
        assert!(serde_json::from_str::<Timestamp>("1.5").is_err());
    }

    #[test]
    fn checked_arithmetic_reports_overflow() {
        let at = Timestamp::from_unix_millis(1_000);
        assert_eq!(at.checked_add_millis(500), Some(Timestamp(1_500)));
        assert_eq!(Timestamp(i64::MAX).checked_add_millis(1), None);
        assert_eq!(at.checked_millis_since(Timestamp(400)), Some(600));
        assert_eq!(Timestamp(i64::MIN).checked_millis_since(Timestamp(1)), None);
    }

    #[test]
    fn system_clock_is_after_2024() {
        assert!(Timestamp::from_system_clock() > Timestamp(1_704_067_200_000));
    }
}
