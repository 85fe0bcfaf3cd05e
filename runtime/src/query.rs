//! Interactive queries: reading a running application's state stores from outside its tasks,
//! as Kafka Streams' `KafkaStreams#store` and IQv2 position bounds do.
//!
//! # The read protocol
//! A task commits its state changes, its outputs and its input positions in one atomic batch
//! (see [`crate::log`]), so a reader sees each store as of some commit: never half a record's
//! effects. Reads go to the committed state directly; they take no lock the stream threads wait
//! on.
//!
//! *Read-your-writes.* A writer that appended a command at `(topic, partition, offset)` can
//! ask [`StoreReader::has_processed`] whether the application's committed position on that
//! partition has moved past the offset. Once it has, every store that the command's task
//! updated reflects it: the same batch moved the position and wrote the state. That is a
//! position bound, the embedded counterpart of IQv2's `PositionBound`.
//!
//! *Routing.* Stores are partitioned like their task: a store keyed by its input's record key
//! (the usual case: the order store by order id, the stock store by sku) holds a key in
//! partition `partition_for_key(key)`. [`StoreReader::get`] routes on that; a store keyed
//! otherwise is read with [`StoreReader::scan_prefix`], which visits every partition.

use std::ops::{Bound, ControlFlow};
use std::sync::Arc;

use orderflow_state_stores::{CommittedKeyValueStore, Space, StoreCodecs, prefix_upper_bound};

use crate::error::RuntimeError;
use crate::log::LogBackend;
use crate::partitioner::partition_for_key;
use crate::topology::{Topology, TypedStoreCodecs, store_space_name};

/// Reads the committed stores of one application (one topology under one application id).
#[derive(Debug, Clone)]
pub struct StoreReader {
    topology: Arc<Topology>,
    log: Arc<dyn LogBackend>,
    application_id: String,
}

impl StoreReader {
    pub fn new(topology: Arc<Topology>, log: Arc<dyn LogBackend>, application_id: &str) -> Self {
        Self {
            topology,
            log,
            application_id: application_id.to_string(),
        }
    }

    pub fn application_id(&self) -> &str {
        &self.application_id
    }

    fn store_shape<K: 'static, V: 'static>(
        &self,
        store: &str,
    ) -> Result<(u32, &TypedStoreCodecs<K, V>), RuntimeError> {
        let definition = self
            .topology
            .store(store)
            .ok_or_else(|| RuntimeError::Config {
                field: "store",
                reason: format!(
                    "application `{}` has no store named `{store}`",
                    self.application_id
                ),
            })?;
        let codecs = definition
            .codecs
            .downcast_ref::<TypedStoreCodecs<K, V>>()
            .ok_or_else(|| RuntimeError::Config {
                field: "store",
                reason: format!(
                    "store `{store}` holds {} -> {}, not {} -> {}",
                    definition.key_type,
                    definition.value_type,
                    std::any::type_name::<K>(),
                    std::any::type_name::<V>()
                ),
            })?;
        let partitions = self.topology.sub_topologies()[definition.sub_topology].partitions;
        Ok((partitions, codecs))
    }

    /// The value under `key`, from the partition its encoded key routes to.
    pub fn get<K: 'static, V: 'static>(
        &self,
        store: &str,
        key: &K,
    ) -> Result<Option<V>, RuntimeError> {
        let (partitions, codecs) = self.store_shape::<K, V>(store)?;
        let codecs = StoreCodecs {
            name: store,
            key: codecs.key.as_ref(),
            value: codecs.value.as_ref(),
        };
        let encoded = codecs.encode_key(key)?;
        let partition = partition_for_key(&encoded, partitions);
        let engine = self.log.state_engine();
        let space = engine.space(&store_space_name(&self.application_id, store, partition))?;
        Ok(CommittedKeyValueStore::new(engine, space, codecs).get(key)?)
    }

    /// Entries whose encoded key starts with `prefix`, from every partition, merged in key
    /// order (descending when `reverse`), at most `limit`. `cursor` continues a previous page:
    /// only keys after it in the scan direction are returned.
    pub fn scan_prefix<K: 'static, V: 'static>(
        &self,
        store: &str,
        prefix: &[u8],
        cursor: Option<&[u8]>,
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, K, V)>, RuntimeError> {
        let (partitions, typed) = self.store_shape::<K, V>(store)?;
        let codecs = StoreCodecs {
            name: store,
            key: typed.key.as_ref(),
            value: typed.value.as_ref(),
        };
        let engine = self.log.state_engine();
        let prefix_end = prefix_upper_bound(prefix);
        let mut lower = Bound::Included(prefix);
        let mut upper = match &prefix_end {
            Some(end) => Bound::Excluded(end.as_slice()),
            None => Bound::Unbounded,
        };
        if let Some(cursor) = cursor {
            if reverse {
                upper = Bound::Excluded(cursor);
            } else if cursor >= prefix {
                lower = Bound::Excluded(cursor);
            }
        }
        let mut merged: Vec<(Vec<u8>, K, V)> = Vec::new();
        for partition in 0..partitions {
            let space = engine.space(&store_space_name(&self.application_id, store, partition))?;
            let mut error = None;
            let mut taken = 0;
            let mut visitor = |key: &[u8], value: &[u8]| -> ControlFlow<()> {
                match (codecs.decode_key(key), codecs.decode_value(key, value)) {
                    (Ok(decoded_key), Ok(decoded_value)) => {
                        merged.push((key.to_vec(), decoded_key, decoded_value));
                    }
                    (Err(failure), _) | (_, Err(failure)) => {
                        error = Some(failure);
                        return ControlFlow::Break(());
                    }
                }
                taken += 1;
                // Each partition contributes at most `limit`: enough for the merged page.
                if taken >= limit {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            };
            engine.scan(&space, lower, upper, reverse, &mut visitor)?;
            if let Some(failure) = error {
                return Err(failure.into());
            }
        }
        if reverse {
            merged.sort_by(|left, right| right.0.cmp(&left.0));
        } else {
            merged.sort_by(|left, right| left.0.cmp(&right.0));
        }
        merged.truncate(limit);
        Ok(merged)
    }

    fn global_table_shape<K: 'static, V: 'static>(
        &self,
        table: &str,
    ) -> Result<&TypedStoreCodecs<K, V>, RuntimeError> {
        let definition = self
            .topology
            .global_tables
            .iter()
            .find(|definition| definition.name == table)
            .ok_or_else(|| RuntimeError::Config {
                field: "global table",
                reason: format!(
                    "application `{}` has no global table named `{table}`",
                    self.application_id
                ),
            })?;
        definition
            .codecs
            .downcast_ref::<TypedStoreCodecs<K, V>>()
            .ok_or_else(|| RuntimeError::Config {
                field: "global table",
                reason: format!(
                    "global table `{table}` does not hold {} -> {}",
                    std::any::type_name::<K>(),
                    std::any::type_name::<V>()
                ),
            })
    }

    /// A global table's codecs and keyspace (one keyspace holds every row).
    fn global_table_access<'a, K: 'static, V: 'static>(
        &'a self,
        table: &'a str,
    ) -> Result<(StoreCodecs<'a, K, V>, Space), RuntimeError> {
        let typed = self.global_table_shape::<K, V>(table)?;
        let codecs = StoreCodecs {
            name: table,
            key: typed.key.as_ref(),
            value: typed.value.as_ref(),
        };
        let space = self
            .log
            .state_engine()
            .space(&crate::global::global_table_space_name(
                &self.application_id,
                table,
            ))?;
        Ok((codecs, space))
    }

    /// The committed row of global table `table` under `key`.
    pub fn global_table_get<K: 'static, V: 'static>(
        &self,
        table: &str,
        key: &K,
    ) -> Result<Option<V>, RuntimeError> {
        let (codecs, space) = self.global_table_access::<K, V>(table)?;
        Ok(CommittedKeyValueStore::new(self.log.state_engine(), space, codecs).get(key)?)
    }

    /// Rows of global table `table` in key order, after the encoded key `cursor`, at most
    /// `limit`.
    pub fn global_table_scan<K: 'static, V: 'static>(
        &self,
        table: &str,
        cursor: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, K, V)>, RuntimeError> {
        let (codecs, space) = self.global_table_access::<K, V>(table)?;
        let engine = self.log.state_engine();
        let lower = cursor.map_or(Bound::Unbounded, Bound::Excluded);
        let mut rows = Vec::new();
        let mut error = None;
        engine.scan(&space, lower, Bound::Unbounded, false, &mut |key, value| {
            match (codecs.decode_key(key), codecs.decode_value(key, value)) {
                (Ok(decoded_key), Ok(decoded_value)) => {
                    rows.push((key.to_vec(), decoded_key, decoded_value))
                }
                (Err(failure), _) | (_, Err(failure)) => {
                    error = Some(failure);
                    return ControlFlow::Break(());
                }
            }
            if rows.len() >= limit {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })?;
        match error {
            Some(failure) => Err(failure.into()),
            None => Ok(rows),
        }
    }

    /// Whether the application has committed processing of `topic`'s `partition` past
    /// `offset` (see the module doc on read-your-writes).
    pub fn has_processed(
        &self,
        topic: &str,
        partition: u32,
        offset: u64,
    ) -> Result<bool, RuntimeError> {
        Ok(self
            .log
            .committed_position(&self.application_id, topic, partition)?
            .is_some_and(|next| next > offset))
    }
}
