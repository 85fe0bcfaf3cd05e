//! Topic specifications: the domain-agnostic description of a topic that every log backend
//! (embedded or Kafka) knows how to create.

use serde::{Deserialize, Serialize};

/// What a log does with old records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CleanupPolicy {
    /// Records older than the retention (time or size) are deleted.
    Delete,
    /// Only the latest record per key is kept; a record with no value (tombstone) deletes the key.
    Compact,
}

/// How a topic is created: the same fields Kafka's `CreateTopics` takes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicSpec {
    /// Kafka-compatible name: 1 to 249 characters of `[A-Za-z0-9._-]`.
    pub name: String,
    /// Number of partitions; records with the same key always land in the same one.
    pub partitions: u32,
    /// Delete old records, or keep the latest per key.
    pub cleanup: CleanupPolicy,
    /// `retention.ms`; `None` keeps records forever.
    pub retention_ms: Option<i64>,
    /// `retention.bytes` per partition; `None` means no size limit.
    pub retention_bytes: Option<u64>,
}

impl TopicSpec {
    /// A delete-policy topic that keeps records for seven days, as Kafka does by default.
    pub fn new(name: impl Into<String>, partitions: u32) -> Self {
        Self {
            name: name.into(),
            partitions,
            cleanup: CleanupPolicy::Delete,
            retention_ms: Some(7 * 24 * 60 * 60 * 1000),
            retention_bytes: None,
        }
    }

    /// A compacted topic (tables, changelogs): latest value per key, kept forever.
    pub fn compacted(name: impl Into<String>, partitions: u32) -> Self {
        Self {
            name: name.into(),
            partitions,
            cleanup: CleanupPolicy::Compact,
            retention_ms: None,
            retention_bytes: None,
        }
    }

    /// Sets `retention.ms` (`None`: forever).
    pub fn with_retention_ms(mut self, retention_ms: Option<i64>) -> Self {
        self.retention_ms = retention_ms;
        self
    }

    /// Sets `retention.bytes` per partition (`None`: no size limit).
    pub fn with_retention_bytes(mut self, retention_bytes: Option<u64>) -> Self {
        self.retention_bytes = retention_bytes;
        self
    }

    /// The dead-letter topic of this topic: same partitions, kept for 30 days.
    pub fn dead_letter(&self) -> TopicSpec {
        TopicSpec::new(dead_letter_topic_name(&self.name), self.partitions)
            .with_retention_ms(Some(30 * 24 * 60 * 60 * 1000))
    }
}

/// `<topic>.dlq`.
pub fn dead_letter_topic_name(topic: &str) -> String {
    format!("{topic}.dlq")
}

/// Whether a topic name is a dead-letter topic, and of which topic.
pub fn dead_letter_source(topic: &str) -> Option<&str> {
    topic.strip_suffix(".dlq")
}
