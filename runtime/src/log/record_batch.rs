//! Record batches: how the embedded log stores a partition's records, one fjall entry per
//! batch instead of one per record (Kafka's record batches, for the same reason).
//!
//! Every commit appends a range of consecutive offsets to each partition it writes; the range
//! is stored as one entry keyed by its first offset (the *base*). Each entry costs fjall a
//! skip-list insert, a journal entry and a flush of its own, and reading it back a seek, so a
//! stream thread's round that wrote thousands of records to a few partitions costs a few
//! entries. Retention and compaction rewrite a batch without the records they remove, so a
//! record carries its offset as a delta from the base and a batch may have gaps.
//!
//! Format: `BATCH_FORMAT | count u32 | (offset delta u32 | length u32 | record)*`, big-endian,
//! each record in [`encode_log_record`]'s format. Entries written before batches hold one
//! record in that format alone, at the key's offset; such a value starts with the top byte of
//! the record's timestamp: 0x00 or 0xff for any time within 2.2 million years of 1970, and
//! `BATCH_FORMAT` only for a time about 160 million years before it.

use crate::record::{LogRecord, encode_log_record_into};

/// The first byte of a batch.
const BATCH_FORMAT: u8 = 0xba;
const HEADER_LENGTH: usize = 5;

/// Builds one batch, records in offset order.
#[derive(Debug)]
pub(crate) struct BatchWriter {
    base: u64,
    count: u32,
    bytes: Vec<u8>,
}

impl BatchWriter {
    /// A batch whose offsets start at `base`, with room for records whose encodings take
    /// `record_bytes` in all (growing a batch of thousands of records was a visible cost).
    pub(crate) fn new(base: u64, record_bytes: usize, records: usize) -> Self {
        let capacity = record_bytes + records * 8;
        let mut bytes = Vec::with_capacity(HEADER_LENGTH + capacity);
        bytes.push(BATCH_FORMAT);
        bytes.extend_from_slice(&0u32.to_be_bytes());
        Self {
            base,
            count: 0,
            bytes,
        }
    }

    /// Appends `record` at `offset` (at or above the base, above the last one pushed).
    pub(crate) fn push(&mut self, offset: u64, record: &LogRecord) {
        self.push_header(offset);
        let length_at = self.bytes.len();
        self.bytes.extend_from_slice(&0u32.to_be_bytes());
        encode_log_record_into(record, &mut self.bytes);
        let length = (self.bytes.len() - length_at - 4) as u32;
        self.bytes[length_at..length_at + 4].copy_from_slice(&length.to_be_bytes());
    }

    /// Appends a record already encoded (a survivor of retention or compaction).
    pub(crate) fn push_encoded(&mut self, offset: u64, encoded: &[u8]) {
        self.push_header(offset);
        self.bytes
            .extend_from_slice(&(encoded.len() as u32).to_be_bytes());
        self.bytes.extend_from_slice(encoded);
    }

    fn push_header(&mut self, offset: u64) {
        let delta = offset
            .checked_sub(self.base)
            .and_then(|delta| u32::try_from(delta).ok())
            .expect("a batch's offsets are within 2^32 above its base");
        self.bytes.extend_from_slice(&delta.to_be_bytes());
        self.count += 1;
    }

    /// The encoded batch.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        self.bytes[1..HEADER_LENGTH].copy_from_slice(&self.count.to_be_bytes());
        self.bytes
    }
}

/// The records of the batch stored at `base`, as (offset, encoded record), in offset order.
/// `Err` says what is malformed, for the caller to report with the batch's offset.
pub(crate) fn batch_records(base: u64, value: &[u8]) -> Result<Vec<(u64, &[u8])>, String> {
    if value.first() != Some(&BATCH_FORMAT) {
        // Written before batches: one record at the key's offset.
        return Ok(vec![(base, value)]);
    }
    let count = read_u32(value, 1, "batch record count")?;
    let mut records = Vec::with_capacity(count.min(65_536) as usize);
    let mut position = HEADER_LENGTH;
    let mut previous = None;
    for index in 0..count {
        let delta = read_u32(value, position, "record offset delta")?;
        let length = read_u32(value, position + 4, "record length")? as usize;
        position += 8;
        let record = value
            .get(position..position + length)
            .ok_or_else(|| format!("record {index} of {count} is cut short"))?;
        position += length;
        if previous.is_some_and(|previous| delta <= previous) {
            return Err(format!("record {index} of {count} is out of offset order"));
        }
        previous = Some(delta);
        records.push((base + u64::from(delta), record));
    }
    if position != value.len() {
        return Err(format!(
            "{} bytes left after the batch's {count} records",
            value.len() - position
        ));
    }
    Ok(records)
}

fn read_u32(value: &[u8], at: usize, what: &str) -> Result<u32, String> {
    value
        .get(at..at + 4)
        .map(|bytes| u32::from_be_bytes(bytes.try_into().expect("four bytes")))
        .ok_or_else(|| format!("the batch is cut short in its {what}"))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::record::{decode_log_record, encode_log_record};

    fn record(value: &str, timestamp: i64) -> LogRecord {
        LogRecord::new(
            Some(b"key".to_vec()),
            Some(value.as_bytes().to_vec()),
            timestamp,
        )
    }

    #[test]
    fn a_value_from_before_batches_is_one_record_at_its_key() {
        for timestamp in [0, 1_795_753_339_413, -1, i64::MAX / 1_000, i64::MIN / 1_000] {
            let encoded = encode_log_record(&record("v", timestamp));
            let records = batch_records(42, &encoded).unwrap();
            assert_eq!(records, vec![(42, encoded.as_slice())], "{timestamp}");
        }
    }

    #[test]
    fn malformed_batches_are_refused_with_what_is_wrong() {
        let mut writer = BatchWriter::new(10, 64, 2);
        writer.push(10, &record("a", 1));
        writer.push(12, &record("b", 2));
        let batch = writer.finish();
        for cut in 1..batch.len() {
            assert!(batch_records(10, &batch[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = batch.clone();
        longer.push(0);
        assert!(
            batch_records(10, &longer)
                .unwrap_err()
                .contains("bytes left")
        );
        let mut swapped = BatchWriter::new(10, 64, 2);
        swapped.push_encoded(12, b"x");
        swapped.count += 1;
        swapped.bytes.extend_from_slice(&1u32.to_be_bytes());
        swapped.bytes.extend_from_slice(&1u32.to_be_bytes());
        swapped.bytes.push(b'y');
        assert!(
            batch_records(10, &swapped.finish())
                .unwrap_err()
                .contains("offset order")
        );
    }

    proptest! {
        /// Any records at any increasing offsets come back as they went in.
        #[test]
        fn batches_round_trip(
            base in 0u64..1 << 40,
            records in proptest::collection::vec(
                (1u32..1_000, ".{0,40}", proptest::option::of(".{0,8}"), any::<i64>()),
                0..20,
            ),
        ) {
            let mut writer = BatchWriter::new(base, 0, 0);
            let mut expected = Vec::new();
            let mut offset = base;
            for (step, value, key, timestamp) in &records {
                offset += u64::from(*step) - 1;
                let record = LogRecord::new(
                    key.as_ref().map(|key| key.as_bytes().to_vec()),
                    Some(value.as_bytes().to_vec()),
                    *timestamp,
                );
                writer.push(offset, &record);
                expected.push((offset, record));
                offset += 1;
            }
            prop_assert_eq!(writer.count as usize, records.len());
            let batch = writer.finish();
            let decoded: Vec<(u64, LogRecord)> = batch_records(base, &batch)
                .unwrap()
                .into_iter()
                .map(|(offset, bytes)| (offset, decode_log_record(bytes).unwrap()))
                .collect();
            prop_assert_eq!(decoded, expected);
        }
    }
}
