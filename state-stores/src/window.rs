//! Window stores: values per (key, window start), kept for a retention period.
//!
//! Entries are laid out by time segment (`segment | key length | key | window start`), as Kafka
//! Streams' segmented stores are, so expiring old windows deletes a contiguous range of whole
//! segments instead of scanning every key.

use std::ops::{Bound, ControlFlow};

use crate::codec::{decode_i64_ordered, encode_i64_ordered};
use crate::error::StoreError;
use crate::key_value::StoreCodecs;
use crate::transaction::{SpaceIndex, StoreTransaction};

/// Called for each window of a scan: raw key, window start, raw value.
type WindowVisitor<'a> = dyn FnMut(&[u8], i64, &[u8]) -> Result<(), StoreError> + 'a;

/// A typed window store.
pub trait WindowStore<K, V> {
    /// Stores the value of `key`'s window starting at `window_start` (milliseconds). A window
    /// older than the retention is dropped and `Ok(false)` returned.
    fn put(&mut self, key: &K, window_start: i64, value: &V) -> Result<bool, StoreError>;
    /// The value of one window.
    fn get(&self, key: &K, window_start: i64) -> Result<Option<V>, StoreError>;
    /// `key`'s windows starting in `[from, to]`, ordered by start.
    fn fetch(&self, key: &K, from: i64, to: i64) -> Result<Vec<(i64, V)>, StoreError>;
    /// Every key's windows starting in `[from, to]`, ordered by segment, key, start.
    fn fetch_all(&self, from: i64, to: i64) -> Result<Vec<(K, i64, V)>, StoreError>;
    fn delete(&mut self, key: &K, window_start: i64) -> Result<(), StoreError>;
}

/// How long windows are kept and how they are grouped for expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowRetention {
    /// Windows whose start is older than the newest start seen minus this are expired.
    pub retention_ms: i64,
    /// Width of an expiry segment; at least 1 ms.
    pub segment_ms: i64,
}

impl WindowRetention {
    /// A retention split into segments of half the retention (at least 1 ms), so expiry drops
    /// a segment once the newest window is a retention and a half past its start.
    pub fn new(retention_ms: i64) -> Self {
        let retention_ms = retention_ms.max(1);
        Self {
            retention_ms,
            segment_ms: (retention_ms / 2).clamp(1, retention_ms),
        }
    }

    fn segment_of(&self, window_start: i64) -> i64 {
        window_start.div_euclid(self.segment_ms.max(1))
    }
}

/// Where the store keeps the newest window start it has seen ("observed time"). It is written
/// through the transaction like any entry, so it rolls back with a failed record and survives a
/// restart. All bytes 0xFF: it sorts after every segment key, so expiry never touches it.
const OBSERVED_TIME_KEY: [u8; 13] = [0xFF; 13];

fn window_key(segment: i64, key: &[u8], window_start: i64) -> Vec<u8> {
    let mut encoded = Vec::with_capacity(8 + 4 + key.len() + 8);
    encoded.extend_from_slice(&encode_i64_ordered(segment));
    encoded.extend_from_slice(&(key.len() as u32).to_be_bytes());
    encoded.extend_from_slice(key);
    encoded.extend_from_slice(&encode_i64_ordered(window_start));
    encoded
}

fn split_window_key(encoded: &[u8]) -> Option<(&[u8], i64)> {
    let key_length = u32::from_be_bytes(encoded.get(8..12)?.try_into().ok()?) as usize;
    let key = encoded.get(12..12 + key_length)?;
    let start = encoded.get(12 + key_length..20 + key_length)?;
    Some((key, decode_i64_ordered(start.try_into().ok()?)))
}

/// A window store whose writes go into a task's [`StoreTransaction`].
pub struct TransactionalWindowStore<'a, K, V> {
    transaction: &'a mut StoreTransaction,
    space: SpaceIndex,
    codecs: StoreCodecs<'a, K, V>,
    retention: WindowRetention,
}

impl<K, V> std::fmt::Debug for TransactionalWindowStore<'_, K, V> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("TransactionalWindowStore")
            .field("store", &self.codecs.name)
            .field("retention", &self.retention)
            .finish()
    }
}

impl<'a, K, V> TransactionalWindowStore<'a, K, V> {
    pub fn new(
        transaction: &'a mut StoreTransaction,
        space: SpaceIndex,
        codecs: StoreCodecs<'a, K, V>,
        retention: WindowRetention,
    ) -> Self {
        Self {
            transaction,
            space,
            codecs,
            retention,
        }
    }

    /// The newest window start ever put, if any.
    fn observed_time(&self) -> Result<Option<i64>, StoreError> {
        Ok(self
            .transaction
            .get(self.space, &OBSERVED_TIME_KEY)?
            .and_then(|bytes| bytes.as_slice().try_into().ok())
            .map(decode_i64_ordered))
    }

    /// Deletes every segment entirely older than the retention.
    fn expire(&mut self, oldest_start: i64) -> Result<(), StoreError> {
        let first_live_segment = self.retention.segment_of(oldest_start);
        let upper = encode_i64_ordered(first_live_segment);
        let mut expired = Vec::new();
        self.transaction.scan(
            self.space,
            Bound::Unbounded,
            Bound::Excluded(&upper),
            &mut |key, _| {
                expired.push(key.to_vec());
                ControlFlow::Continue(())
            },
        )?;
        for key in expired {
            self.transaction.write(self.space, key, None);
        }
        Ok(())
    }

    fn scan_windows(
        &self,
        lower: &[u8],
        upper: &[u8],
        from: i64,
        to: i64,
        visit: &mut WindowVisitor<'_>,
    ) -> Result<(), StoreError> {
        let mut error = None;
        self.transaction.scan(
            self.space,
            Bound::Included(lower),
            Bound::Included(upper),
            &mut |encoded, value| {
                let Some((key, start)) = split_window_key(encoded) else {
                    return ControlFlow::Continue(());
                };
                if start < from || start > to {
                    return ControlFlow::Continue(());
                }
                match visit(key, start, value) {
                    Ok(()) => ControlFlow::Continue(()),
                    Err(visit_error) => {
                        error = Some(visit_error);
                        ControlFlow::Break(())
                    }
                }
            },
        )?;
        error.map_or(Ok(()), Err)
    }
}

impl<K, V> WindowStore<K, V> for TransactionalWindowStore<'_, K, V> {
    fn put(&mut self, key: &K, window_start: i64, value: &V) -> Result<bool, StoreError> {
        let previous = self.observed_time()?;
        let observed = match previous {
            Some(observed) if observed >= window_start => observed,
            _ => window_start,
        };
        if previous.is_none_or(|observed| window_start > observed) {
            self.transaction.write(
                self.space,
                OBSERVED_TIME_KEY.to_vec(),
                Some(encode_i64_ordered(window_start).to_vec()),
            );
            let oldest_start = window_start.saturating_sub(self.retention.retention_ms);
            // Only a move into a new segment can make whole segments expire.
            let previous_oldest = previous.map(|observed| {
                self.retention
                    .segment_of(observed.saturating_sub(self.retention.retention_ms))
            });
            if previous_oldest != Some(self.retention.segment_of(oldest_start)) {
                self.expire(oldest_start)?;
            }
        }
        // The observed time as it is now (read once: this runs for every window of every
        // fact of an aggregation).
        if window_start < observed.saturating_sub(self.retention.retention_ms) {
            return Ok(false);
        }
        let encoded_key = self.codecs.encode_key(key)?;
        let encoded_value = self.codecs.encode_value(value)?;
        let segment = self.retention.segment_of(window_start);
        self.transaction.write(
            self.space,
            window_key(segment, &encoded_key, window_start),
            Some(encoded_value),
        );
        Ok(true)
    }

    fn get(&self, key: &K, window_start: i64) -> Result<Option<V>, StoreError> {
        let encoded_key = self.codecs.encode_key(key)?;
        let segment = self.retention.segment_of(window_start);
        let full_key = window_key(segment, &encoded_key, window_start);
        match self.transaction.get(self.space, &full_key)? {
            Some(bytes) => Ok(Some(self.codecs.decode_value(&full_key, &bytes)?)),
            None => Ok(None),
        }
    }

    fn fetch(&self, key: &K, from: i64, to: i64) -> Result<Vec<(i64, V)>, StoreError> {
        let encoded_key = self.codecs.encode_key(key)?;
        let mut windows = Vec::new();
        // Only segments that can hold windows are visited: from the oldest retained start to
        // the newest start seen.
        let Some(observed) = self.observed_time()? else {
            return Ok(windows);
        };
        let from = from.max(observed.saturating_sub(self.retention.retention_ms));
        let to = to.min(observed);
        if from > to {
            return Ok(windows);
        }
        let first_segment = self.retention.segment_of(from);
        let last_segment = self.retention.segment_of(to);
        for segment in first_segment..=last_segment {
            let lower = window_key(segment, &encoded_key, from);
            let upper = window_key(segment, &encoded_key, to);
            self.scan_windows(&lower, &upper, from, to, &mut |raw_key, start, value| {
                windows.push((start, self.codecs.decode_value(raw_key, value)?));
                Ok(())
            })?;
        }
        Ok(windows)
    }

    fn fetch_all(&self, from: i64, to: i64) -> Result<Vec<(K, i64, V)>, StoreError> {
        let mut windows = Vec::new();
        if from > to {
            return Ok(windows);
        }
        let lower = encode_i64_ordered(self.retention.segment_of(from));
        let mut upper = encode_i64_ordered(self.retention.segment_of(to)).to_vec();
        upper.extend_from_slice(&[0xff; 12]);
        self.scan_windows(&lower, &upper, from, to, &mut |raw_key, start, value| {
            windows.push((
                self.codecs.decode_key(raw_key)?,
                start,
                self.codecs.decode_value(raw_key, value)?,
            ));
            Ok(())
        })?;
        Ok(windows)
    }

    fn delete(&mut self, key: &K, window_start: i64) -> Result<(), StoreError> {
        let encoded_key = self.codecs.encode_key(key)?;
        let segment = self.retention.segment_of(window_start);
        self.transaction.write(
            self.space,
            window_key(segment, &encoded_key, window_start),
            None,
        );
        Ok(())
    }
}
