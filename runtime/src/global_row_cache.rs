//! The global-table rows a task read lately, kept in memory so a hot row skips the engine.
//!
//! Global tables are read far more often than they change: inventory reads a product's
//! low-stock threshold for every order line, the saga prices every line from the same few
//! thousand products. Each read was an LSM point lookup. The table's own task (the only writer
//! of its keyspace) bumps the table's version after each commit that changed it; a task's cache
//! of that table is dropped as soon as it sees a new version.
//!
//! Why a cached row is never older than a read of the engine would be, apart from the instant
//! between a commit and its version bump: the version is read *before* the engine, and the row
//! is filed under that version. A commit that lands between the two makes the row newer than
//! its version says, and the bump that follows it makes the next read drop the row anyway.
//!
//! Bounded by bytes (keys and values) per task; when a row would pass the budget, the task's
//! whole cache is dropped and refills with what is hot.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use orderflow_state_stores::StoreError;

#[derive(Debug, Default)]
struct CachedTable {
    version: u64,
    rows: HashMap<Vec<u8>, Option<Vec<u8>>>,
    bytes: usize,
}

/// One task's cache of global-table rows (`None`: the table has no such key).
#[derive(Debug, Default)]
pub(crate) struct GlobalRowCache {
    tables: HashMap<String, CachedTable>,
    bytes: usize,
    budget_bytes: usize,
}

impl GlobalRowCache {
    /// A cache of at most `budget_bytes` of keys and values (0: no caching).
    pub(crate) fn new(budget_bytes: usize) -> Self {
        Self {
            tables: HashMap::new(),
            bytes: 0,
            budget_bytes,
        }
    }

    /// The row of `key` in `table`, from the cache if it holds it at the table's current
    /// `version`, else from `load` (which reads the engine).
    pub(crate) fn get_or_load(
        &mut self,
        table: &str,
        version: &AtomicU64,
        key: &[u8],
        load: impl FnOnce() -> Result<Option<Vec<u8>>, StoreError>,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        if self.budget_bytes == 0 {
            return load();
        }
        let current = version.load(Ordering::Acquire);
        if !self.tables.contains_key(table) {
            self.tables
                .insert(table.to_string(), CachedTable::default());
        }
        let cached = self.tables.get_mut(table).expect("inserted above");
        if cached.version != current {
            self.bytes -= cached.bytes;
            cached.rows.clear();
            cached.bytes = 0;
            cached.version = current;
        }
        if let Some(row) = cached.rows.get(key) {
            return Ok(row.clone());
        }
        let row = load()?;
        let size = key.len() + row.as_ref().map_or(0, Vec::len);
        if self.bytes + size > self.budget_bytes {
            for table in self.tables.values_mut() {
                table.rows.clear();
                table.bytes = 0;
            }
            self.bytes = 0;
            if size > self.budget_bytes {
                return Ok(row);
            }
        }
        let cached = self.tables.get_mut(table).expect("inserted above");
        cached.rows.insert(key.to_vec(), row.clone());
        cached.bytes += size;
        self.bytes += size;
        Ok(row)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    /// Loads `value` and counts the loads.
    fn loader<'a>(
        loads: &'a Cell<u32>,
        value: &'a [u8],
    ) -> impl FnOnce() -> Result<Option<Vec<u8>>, StoreError> + 'a {
        move || {
            loads.set(loads.get() + 1);
            Ok(Some(value.to_vec()))
        }
    }

    #[test]
    fn a_row_is_loaded_once_until_the_table_changes() {
        let mut cache = GlobalRowCache::new(1024);
        let version = AtomicU64::new(0);
        let loads = Cell::new(0);
        for _ in 0..3 {
            let row = cache
                .get_or_load("products", &version, b"sku", loader(&loads, b"v1"))
                .unwrap();
            assert_eq!(row, Some(b"v1".to_vec()));
        }
        assert_eq!(loads.get(), 1);
        version.fetch_add(1, Ordering::Release);
        let row = cache
            .get_or_load("products", &version, b"sku", loader(&loads, b"v2"))
            .unwrap();
        assert_eq!(row, Some(b"v2".to_vec()), "a new version drops the old row");
        assert_eq!(loads.get(), 2);
    }

    #[test]
    fn absent_rows_are_cached_and_tables_are_separate() {
        let mut cache = GlobalRowCache::new(1024);
        let version = AtomicU64::new(0);
        let loads = Cell::new(0);
        let absent = || {
            loads.set(loads.get() + 1);
            Ok(None)
        };
        assert_eq!(
            cache.get_or_load("t", &version, b"k", absent).unwrap(),
            None
        );
        assert_eq!(
            cache.get_or_load("t", &version, b"k", absent).unwrap(),
            None
        );
        assert_eq!(loads.get(), 1);
        let other = cache
            .get_or_load("u", &version, b"k", loader(&loads, b"x"))
            .unwrap();
        assert_eq!(other, Some(b"x".to_vec()));
        assert_eq!(loads.get(), 2);
    }

    #[test]
    fn the_budget_bounds_what_is_kept() {
        let mut cache = GlobalRowCache::new(64);
        let version = AtomicU64::new(0);
        let loads = Cell::new(0);
        for key in 0..20u8 {
            cache
                .get_or_load("t", &version, &[key], loader(&loads, &[0; 9]))
                .unwrap();
        }
        assert!(cache.bytes <= 64, "{} bytes held", cache.bytes);
        // A row bigger than the whole budget is returned, never kept.
        let big = [1u8; 100];
        let row = cache
            .get_or_load("t", &version, b"big", loader(&loads, &big))
            .unwrap();
        assert_eq!(row.as_deref(), Some(big.as_slice()));
        assert!(cache.bytes <= 64);
        let before = loads.get();
        cache
            .get_or_load("t", &version, b"big", loader(&loads, &big))
            .unwrap();
        assert_eq!(loads.get(), before + 1);
    }

    #[test]
    fn a_zero_budget_always_loads() {
        let mut cache = GlobalRowCache::new(0);
        let version = AtomicU64::new(0);
        let loads = Cell::new(0);
        for _ in 0..2 {
            cache
                .get_or_load("t", &version, b"k", loader(&loads, b"v"))
                .unwrap();
        }
        assert_eq!(loads.get(), 2);
    }
}
