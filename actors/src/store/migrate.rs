//! Schema migrations, run at open on a store older than [`super::SCHEMA_VERSION`].
//!
//! - 1 → 2: version 1 kept windows and sound events only. Version 2 adds spans, the hourly
//!   rollup behind the statistics and the outbox; the spans and rollup are rebuilt from the
//!   stored windows, in time order (the outbox starts empty: version 1 delivered best-effort).

use super::{decode, Store, StoreError, StoredClassification};

/// Gap between windows that still merge into one span during the rebuild.
const REBUILD_SPAN_GAP_MS: i64 = 60_000;

pub(super) fn run(store: &Store, from: u32) -> Result<(), StoreError> {
    if from < 2 {
        let windows: Vec<StoredClassification> = store
            .classifications
            .iter()
            .filter_map(|item| {
                let (k, v) = item.ok()?;
                decode(&k, &v, "classification")
            })
            .collect();
        tracing::info!(
            windows = windows.len(),
            "migrating the store from schema 1 to 2: rebuilding spans and statistics"
        );
        // Rebuild from nothing: the import writes windows again (same keys, same values).
        store.spans.clear()?;
        store.hourly.clear()?;
        store.meta.remove(super::META_OPEN_SPAN)?;
        store.meta.remove(super::META_WINDOW_COUNT)?;
        // The windows are there already: import counts only new ones, so count them here.
        store.adjust_window_count(windows.len() as i64)?;
        store.import_windows(&windows, REBUILD_SPAN_GAP_MS)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::tests::classification;
    use super::super::{window_key, TimeRange, META_SCHEMA, TREE_CLASSIFICATIONS};
    use super::*;
    use cav_core::ActivityClass::{Busy, Reading};

    #[test]
    fn a_version_1_store_gets_spans_and_statistics() {
        let dir = tempfile::tempdir().unwrap();
        {
            // What version 1 wrote: windows as JSON in `classifications`, schema 1.
            let db = sled::open(dir.path()).unwrap();
            db.insert(META_SCHEMA, &1u32.to_be_bytes()).unwrap();
            let tree = db.open_tree(TREE_CLASSIFICATIONS).unwrap();
            for (s, class) in [(0, Busy), (300, Busy), (600, Reading)] {
                let c = StoredClassification::from(&classification(s, s + 300, class));
                tree.insert(
                    window_key(c.start_ms, c.end_ms),
                    serde_json::to_vec(&c).unwrap(),
                )
                .unwrap();
            }
            db.flush().unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        let spans = store.spans(TimeRange::all(), None, 10, 0).unwrap();
        assert_eq!(spans.total, 2);
        assert_eq!(spans.items[1].windows, 2);
        let stats = store
            .statistics(
                TimeRange::new(0, 900_000),
                chrono::FixedOffset::east_opt(0).unwrap(),
            )
            .unwrap();
        assert_eq!(stats.windows, 3);
        assert_eq!(store.classification_count(), 3);
        assert!((stats.observed_s - 900.0).abs() < 1e-9);
        drop(store);
        // Opening again does not migrate again.
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.spans(TimeRange::all(), None, 10, 0).unwrap().total, 2);
    }
}
