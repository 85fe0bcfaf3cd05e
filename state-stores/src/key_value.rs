//! Key-value stores: the trait processors use, its transactional implementation, and a read-only
//! view of committed state for queries.

use std::ops::{Bound, ControlFlow};

use crate::codec::Codec;
use crate::engine::{ScanVisitor, Space, StorageEngine};
use crate::error::{StoreError, key_hex};
use crate::transaction::{SpaceIndex, StoreTransaction};

/// A typed key-value store. Keys are ordered by their encoded bytes.
pub trait KeyValueStore<K, V> {
    fn get(&self, key: &K) -> Result<Option<V>, StoreError>;
    fn put(&mut self, key: &K, value: &V) -> Result<(), StoreError>;
    fn delete(&mut self, key: &K) -> Result<(), StoreError>;
    /// Entries with keys within the bounds, in key order, at most `limit` of them.
    fn range(
        &self,
        lower: Bound<&K>,
        upper: Bound<&K>,
        limit: usize,
    ) -> Result<Vec<(K, V)>, StoreError>;
    /// Entries whose encoded key starts with `prefix`, in key order, at most `limit` of them.
    fn prefix_scan(&self, prefix: &[u8], limit: usize) -> Result<Vec<(K, V)>, StoreError>;
    /// An estimate of the number of keys.
    fn approximate_count(&self) -> u64;
}

/// The typed codecs of a store, with its name for error messages.
pub struct StoreCodecs<'a, K, V> {
    pub name: &'a str,
    pub key: &'a dyn Codec<K>,
    pub value: &'a dyn Codec<V>,
}

impl<K, V> std::fmt::Debug for StoreCodecs<'_, K, V> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("StoreCodecs")
            .field("name", &self.name)
            .finish()
    }
}

impl<K, V> StoreCodecs<'_, K, V> {
    /// Encodes a key; the engine cannot hold empty keys, so they are refused here.
    pub fn encode_key(&self, key: &K) -> Result<Vec<u8>, StoreError> {
        let encoded = self
            .key
            .encode_to_vec(key)
            .map_err(|message| StoreError::Encode {
                store: self.name.to_string(),
                message: format!("key: {message}"),
            })?;
        if encoded.is_empty() {
            return Err(StoreError::EmptyKey {
                store: self.name.to_string(),
            });
        }
        Ok(encoded)
    }

    pub fn encode_value(&self, value: &V) -> Result<Vec<u8>, StoreError> {
        self.value
            .encode_to_vec(value)
            .map_err(|message| StoreError::Encode {
                store: self.name.to_string(),
                message: format!("value: {message}"),
            })
    }

    pub fn decode_key(&self, bytes: &[u8]) -> Result<K, StoreError> {
        self.key
            .decode(bytes)
            .map_err(|message| StoreError::Decode {
                store: self.name.to_string(),
                key_hex: key_hex(bytes),
                message: format!("key: {message}"),
            })
    }

    pub fn decode_value(&self, key: &[u8], bytes: &[u8]) -> Result<V, StoreError> {
        self.value
            .decode(bytes)
            .map_err(|message| StoreError::Decode {
                store: self.name.to_string(),
                key_hex: key_hex(key),
                message: format!("value: {message}"),
            })
    }

    fn encode_bound(&self, bound: Bound<&K>) -> Result<Bound<Vec<u8>>, StoreError> {
        Ok(match bound {
            Bound::Included(key) => Bound::Included(self.encode_key(key)?),
            Bound::Excluded(key) => Bound::Excluded(self.encode_key(key)?),
            Bound::Unbounded => Bound::Unbounded,
        })
    }
}

type Scanner<'s> =
    dyn Fn(Bound<&[u8]>, Bound<&[u8]>, &mut ScanVisitor<'_>) -> Result<(), StoreError> + 's;

/// Collects decoded entries from a byte-level scan.
fn collect_scan<K, V>(
    codecs: &StoreCodecs<'_, K, V>,
    scanner: &Scanner<'_>,
    lower: Bound<&[u8]>,
    upper: Bound<&[u8]>,
    limit: usize,
) -> Result<Vec<(K, V)>, StoreError> {
    let mut entries = Vec::new();
    let mut decode_error = None;
    scanner(lower, upper, &mut |key, value| {
        if entries.len() >= limit {
            return ControlFlow::Break(());
        }
        match codecs
            .decode_key(key)
            .and_then(|typed_key| Ok((typed_key, codecs.decode_value(key, value)?)))
        {
            Ok(entry) => {
                entries.push(entry);
                ControlFlow::Continue(())
            }
            Err(error) => {
                decode_error = Some(error);
                ControlFlow::Break(())
            }
        }
    })?;
    match decode_error {
        Some(error) => Err(error),
        None => Ok(entries),
    }
}

/// The smallest key greater than every key starting with `prefix` (`None`: no such key).
pub fn prefix_upper_bound(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut upper = prefix.to_vec();
    while let Some(last) = upper.pop() {
        if last < u8::MAX {
            upper.push(last + 1);
            return Some(upper);
        }
    }
    None
}

fn bound_as_slice(bound: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match bound {
        Bound::Included(key) => Bound::Included(key.as_slice()),
        Bound::Excluded(key) => Bound::Excluded(key.as_slice()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// A store whose writes go into a task's [`StoreTransaction`] and commit with the task.
pub struct TransactionalKeyValueStore<'a, K, V> {
    transaction: &'a mut StoreTransaction,
    space: SpaceIndex,
    codecs: StoreCodecs<'a, K, V>,
}

impl<K, V> std::fmt::Debug for TransactionalKeyValueStore<'_, K, V> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("TransactionalKeyValueStore")
            .field("store", &self.codecs.name)
            .finish()
    }
}

impl<'a, K, V> TransactionalKeyValueStore<'a, K, V> {
    pub fn new(
        transaction: &'a mut StoreTransaction,
        space: SpaceIndex,
        codecs: StoreCodecs<'a, K, V>,
    ) -> Self {
        Self {
            transaction,
            space,
            codecs,
        }
    }

    fn scan_collect(
        &self,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(K, V)>, StoreError> {
        let scanner = |lower: Bound<&[u8]>, upper: Bound<&[u8]>, visitor: &mut ScanVisitor<'_>| {
            self.transaction.scan(self.space, lower, upper, visitor)
        };
        collect_scan(&self.codecs, &scanner, lower, upper, limit)
    }
}

impl<K, V> KeyValueStore<K, V> for TransactionalKeyValueStore<'_, K, V> {
    fn get(&self, key: &K) -> Result<Option<V>, StoreError> {
        let encoded_key = self.codecs.encode_key(key)?;
        match self.transaction.get(self.space, &encoded_key)? {
            Some(bytes) => Ok(Some(self.codecs.decode_value(&encoded_key, &bytes)?)),
            None => Ok(None),
        }
    }

    fn put(&mut self, key: &K, value: &V) -> Result<(), StoreError> {
        let encoded_key = self.codecs.encode_key(key)?;
        let encoded_value = self.codecs.encode_value(value)?;
        self.transaction
            .write(self.space, encoded_key, Some(encoded_value));
        Ok(())
    }

    fn delete(&mut self, key: &K) -> Result<(), StoreError> {
        let encoded_key = self.codecs.encode_key(key)?;
        self.transaction.write(self.space, encoded_key, None);
        Ok(())
    }

    fn range(
        &self,
        lower: Bound<&K>,
        upper: Bound<&K>,
        limit: usize,
    ) -> Result<Vec<(K, V)>, StoreError> {
        let lower = self.codecs.encode_bound(lower)?;
        let upper = self.codecs.encode_bound(upper)?;
        self.scan_collect(bound_as_slice(&lower), bound_as_slice(&upper), limit)
    }

    fn prefix_scan(&self, prefix: &[u8], limit: usize) -> Result<Vec<(K, V)>, StoreError> {
        let upper = prefix_upper_bound(prefix);
        let upper_bound = match &upper {
            Some(upper) => Bound::Excluded(upper.as_slice()),
            None => Bound::Unbounded,
        };
        self.scan_collect(Bound::Included(prefix), upper_bound, limit)
    }

    fn approximate_count(&self) -> u64 {
        self.transaction.approximate_len(self.space)
    }
}

/// A read-only view of a store's committed state, for interactive queries and tools.
pub struct CommittedKeyValueStore<'a, K, V> {
    engine: &'a StorageEngine,
    space: Space,
    codecs: StoreCodecs<'a, K, V>,
}

impl<K, V> std::fmt::Debug for CommittedKeyValueStore<'_, K, V> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("CommittedKeyValueStore")
            .field("store", &self.codecs.name)
            .finish()
    }
}

impl<'a, K, V> CommittedKeyValueStore<'a, K, V> {
    pub fn new(engine: &'a StorageEngine, space: Space, codecs: StoreCodecs<'a, K, V>) -> Self {
        Self {
            engine,
            space,
            codecs,
        }
    }

    pub fn get(&self, key: &K) -> Result<Option<V>, StoreError> {
        self.get_through(key, |engine, space, encoded_key| {
            engine.get(space, encoded_key)
        })
    }

    /// [`Self::get`], with the encoded key's bytes read by `read` (given the engine, the
    /// keyspace and the encoded key): a cache in front of the engine.
    pub fn get_through(
        &self,
        key: &K,
        read: impl FnOnce(&StorageEngine, &Space, &[u8]) -> Result<Option<Vec<u8>>, StoreError>,
    ) -> Result<Option<V>, StoreError> {
        let encoded_key = self.codecs.encode_key(key)?;
        match read(self.engine, &self.space, &encoded_key)? {
            Some(bytes) => Ok(Some(self.codecs.decode_value(&encoded_key, &bytes)?)),
            None => Ok(None),
        }
    }

    pub fn range(
        &self,
        lower: Bound<&K>,
        upper: Bound<&K>,
        limit: usize,
    ) -> Result<Vec<(K, V)>, StoreError> {
        let lower = self.codecs.encode_bound(lower)?;
        let upper = self.codecs.encode_bound(upper)?;
        let scanner = |lower: Bound<&[u8]>, upper: Bound<&[u8]>, visitor: &mut ScanVisitor<'_>| {
            self.engine.scan(&self.space, lower, upper, false, visitor)
        };
        collect_scan(
            &self.codecs,
            &scanner,
            bound_as_slice(&lower),
            bound_as_slice(&upper),
            limit,
        )
    }

    pub fn all(&self, limit: usize) -> Result<Vec<(K, V)>, StoreError> {
        self.range(Bound::Unbounded, Bound::Unbounded, limit)
    }

    pub fn approximate_count(&self) -> u64 {
        self.engine.approximate_len(&self.space)
    }
}
