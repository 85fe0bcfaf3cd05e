//! Dead letters: records that could not be decoded or processed, kept with the reason.
//!
//! The record goes to `<source topic>.dlq`, same partition, with its key, value and headers
//! unchanged plus the headers below, and the task moves on. `orderflow dlq replay` sends dead
//! letters back to their source topic once the cause is fixed, stripping these headers.

use crate::record::{LogRecord, StoredRecord};

pub const HEADER_PREFIX: &str = "orderflow.dlq.";
pub const ERROR: &str = "orderflow.dlq.error";
pub const STAGE: &str = "orderflow.dlq.stage";
pub const SOURCE_TOPIC: &str = "orderflow.dlq.topic";
pub const SOURCE_PARTITION: &str = "orderflow.dlq.partition";
pub const SOURCE_OFFSET: &str = "orderflow.dlq.offset";
pub const NODE: &str = "orderflow.dlq.node";
pub const APPLICATION: &str = "orderflow.dlq.application";
pub const FAILED_AT: &str = "orderflow.dlq.failed-at";

/// Where processing failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureStage {
    Decode,
    Process,
    Panic,
}

impl FailureStage {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureStage::Decode => "decode",
            FailureStage::Process => "process",
            FailureStage::Panic => "panic",
        }
    }
}

/// What to record about a failure.
#[derive(Debug, Clone)]
pub struct Failure<'a> {
    pub application_id: &'a str,
    pub topic: &'a str,
    pub partition: u32,
    pub node: &'a str,
    pub stage: FailureStage,
    pub error: String,
    pub failed_at_ms: i64,
}

/// The dead letter for a failed input record.
pub fn dead_letter(failed: &StoredRecord, failure: &Failure<'_>) -> LogRecord {
    let mut record = failed.record.clone();
    record.headers.push(ERROR, failure.error.clone());
    record.headers.push(STAGE, failure.stage.as_str());
    record.headers.push(SOURCE_TOPIC, failure.topic);
    record
        .headers
        .push(SOURCE_PARTITION, failure.partition.to_string());
    record
        .headers
        .push(SOURCE_OFFSET, failed.offset.to_string());
    record.headers.push(NODE, failure.node);
    record.headers.push(APPLICATION, failure.application_id);
    record
        .headers
        .push(FAILED_AT, failure.failed_at_ms.to_string());
    record
}

/// The original record, for replay: the dead-letter headers removed.
pub fn original_record(dead_letter: &LogRecord) -> LogRecord {
    let mut record = dead_letter.clone();
    record.headers.remove_prefixed(HEADER_PREFIX);
    record
}
