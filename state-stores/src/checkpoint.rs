//! Checkpoints: for each (consumer group, topic, partition), the next input offset whose effects
//! are not yet in the state.
//!
//! A checkpoint is written in the same atomic batch as the state changes it covers. After a crash
//! the runtime resumes every input partition at its checkpoint, so no input is applied twice and
//! none is skipped. In embedded mode the checkpoint is also the consumer group's committed
//! position; with Kafka it says up to where local state already reflects the changelog.

use std::ops::{Bound, ControlFlow};

use crate::engine::{Space, StorageEngine, WriteBatch};
use crate::error::StoreError;

/// Name of the keyspace that holds every checkpoint.
pub const CHECKPOINT_SPACE: &str = "orderflow.checkpoints";

/// One committed position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointEntry {
    pub group: String,
    pub topic: String,
    pub partition: u32,
    /// The next offset to process.
    pub next_offset: u64,
}

/// Reads and writes checkpoints.
#[derive(Debug, Clone)]
pub struct Checkpoints {
    engine: StorageEngine,
    space: Space,
}

impl Checkpoints {
    pub fn open(engine: &StorageEngine) -> Result<Self, StoreError> {
        Ok(Self {
            engine: engine.clone(),
            space: engine.space(CHECKPOINT_SPACE)?,
        })
    }

    fn key(group: &str, topic: &str, partition: u32) -> Vec<u8> {
        let mut key = Vec::with_capacity(group.len() + topic.len() + 6);
        key.extend_from_slice(group.as_bytes());
        key.push(0);
        key.extend_from_slice(topic.as_bytes());
        key.push(0);
        key.extend_from_slice(&partition.to_be_bytes());
        key
    }

    /// The next offset to process, if the group ever committed this partition.
    pub fn read(
        &self,
        group: &str,
        topic: &str,
        partition: u32,
    ) -> Result<Option<u64>, StoreError> {
        let key = Self::key(group, topic, partition);
        match self.engine.get(&self.space, &key)? {
            Some(bytes) => Ok(Some(self.decode_offset(&bytes)?)),
            None => Ok(None),
        }
    }

    /// Adds the write of a checkpoint to a batch.
    pub fn write(
        &self,
        batch: &mut WriteBatch,
        group: &str,
        topic: &str,
        partition: u32,
        next_offset: u64,
    ) {
        batch.put(
            &self.space,
            Self::key(group, topic, partition),
            next_offset.to_be_bytes().to_vec(),
        );
    }

    /// Adds the removal of a checkpoint to a batch (a reset of the group).
    pub fn delete(&self, batch: &mut WriteBatch, group: &str, topic: &str, partition: u32) {
        batch.delete(&self.space, Self::key(group, topic, partition));
    }

    /// Every checkpoint, ordered by group, topic, partition.
    pub fn list(&self) -> Result<Vec<CheckpointEntry>, StoreError> {
        let mut entries = Vec::new();
        let mut error = None;
        self.engine.scan(
            &self.space,
            Bound::Unbounded,
            Bound::Unbounded,
            false,
            &mut |key, value| match self.decode_entry(key, value) {
                Ok(entry) => {
                    entries.push(entry);
                    ControlFlow::Continue(())
                }
                Err(decode_error) => {
                    error = Some(decode_error);
                    ControlFlow::Break(())
                }
            },
        )?;
        match error {
            Some(error) => Err(error),
            None => Ok(entries),
        }
    }

    fn decode_offset(&self, bytes: &[u8]) -> Result<u64, StoreError> {
        let array: [u8; 8] = bytes
            .try_into()
            .map_err(|_| StoreError::CorruptCheckpoint {
                space: CHECKPOINT_SPACE.to_string(),
                reason: format!("offset has {} bytes, expected 8", bytes.len()),
            })?;
        Ok(u64::from_be_bytes(array))
    }

    fn decode_entry(&self, key: &[u8], value: &[u8]) -> Result<CheckpointEntry, StoreError> {
        let corrupt = |reason: &str| StoreError::CorruptCheckpoint {
            space: CHECKPOINT_SPACE.to_string(),
            reason: reason.to_string(),
        };
        if key.len() < 6 {
            return Err(corrupt("key too short"));
        }
        let (names, partition_bytes) = key.split_at(key.len() - 4);
        let partition = u32::from_be_bytes(partition_bytes.try_into().expect("4 bytes"));
        let names = names
            .strip_suffix(&[0])
            .ok_or_else(|| corrupt("missing separator before partition"))?;
        let separator = names
            .iter()
            .position(|byte| *byte == 0)
            .ok_or_else(|| corrupt("missing separator between group and topic"))?;
        let group =
            std::str::from_utf8(&names[..separator]).map_err(|_| corrupt("group not UTF-8"))?;
        let topic =
            std::str::from_utf8(&names[separator + 1..]).map_err(|_| corrupt("topic not UTF-8"))?;
        Ok(CheckpointEntry {
            group: group.to_string(),
            topic: topic.to_string(),
            partition,
            next_offset: self.decode_offset(value)?,
        })
    }
}
