//! The store (sled): everything the daemon has concluded, kept across restarts and crashes.
//!
//! Trees (all keys order-preserving big-endian, so range scans walk in time order):
//!
//! | tree | key | value |
//! |---|---|---|
//! | `classifications` | window start, end | [`StoredClassification`] JSON |
//! | `spans` | span start | [`Span`] JSON: consecutive windows of one class |
//! | `hourly` | UTC hour start, class | [`HourTotals`] (24 bytes): the statistics rollup |
//! | `sound_events` | onset, source, kind | [`SoundEventRecord`] JSON |
//! | `outbox` | destination, sequence | [`OutboxEntry`] JSON: deliveries still to make |
//! | `delivered` | time, sequence | [`DoneEntry`] JSON: made deliveries (kept a few days) |
//! | `dead_letter` | time, sequence | [`DoneEntry`] JSON: deliveries refused for good |
//! | `analyses` | job id (time-ordered) | [`AnalysisRecord`] JSON: analyses of media files |
//! | `analysis_samples` | job id, sample index | [`AnalysisSample`] JSON |
//! | default tree | name | metadata: schema version, instance id, open span, counters |
//!
//! Invariants:
//! - A result and what it implies (its span, its hour rollup, its outbox entries) are written in
//!   one sled transaction, and the call returns only after `flush`: whatever the API has shown or
//!   the outbox has accepted survives `kill -9`.
//! - Records are types of this module's own, so the on-disk format changes only on purpose, with
//!   `SCHEMA_VERSION` and a migration in [`migrate`].
//! - Unreadable records are logged and skipped by readers, never fatal.

mod activity;
mod analyses;
mod migrate;
pub mod outbox;
mod retention;
mod sound;

use std::path::Path;

use cav_core::classify::{Driver, Scores};
use cav_core::window::WindowSummary;
use cav_core::ActivityClass;
use serde::{Deserialize, Serialize};

pub use activity::{ExternalPolicy, Page, PutOutcome, TimeRange};
pub use analyses::{
    AnalysisInput, AnalysisRecord, AnalysisSample, AnalysisStatus, AnalysisSummary,
    SampleSoundEvent,
};
pub use outbox::{DestinationSummary, DoneEntry, OutboxEntry, OutboxSummary};
pub use retention::{Retention, RetentionReport};
pub use sound::SoundEventFilter;

use crate::messages::Classification;

/// Version of the records and trees above; older stores are migrated at open.
pub const SCHEMA_VERSION: u32 = 2;

const TREE_CLASSIFICATIONS: &str = "classifications";
const TREE_SPANS: &str = "spans";
const TREE_HOURLY: &str = "hourly";
const TREE_SOUND_EVENTS: &str = "sound_events";
const TREE_OUTBOX: &str = "outbox";
const TREE_DELIVERED: &str = "delivered";
const TREE_DEAD_LETTER: &str = "dead_letter";
const TREE_ANALYSES: &str = "analyses";
const TREE_ANALYSIS_SAMPLES: &str = "analysis_samples";

const META_SCHEMA: &[u8] = b"schema_version";
/// Random id of this store, part of every idempotency key (two daemons never collide).
const META_INSTANCE: &[u8] = b"instance_id";
/// Key (in `spans`) of the span the next window may extend.
const META_OPEN_SPAN: &[u8] = b"open_span";
/// The longest window stored, in ms: how far before a time a window covering it may start.
const META_MAX_WINDOW_MS: &[u8] = b"max_window_ms";
/// End (ms) of the last window queued for the external service.
const META_EXTERNAL_LAST_END: &[u8] = b"external_last_end_ms";
const META_DELIVERED_TOTAL: &[u8] = b"delivered_total";
/// Number of stored windows (sled's `len` walks the whole tree; the status page asks often).
const META_WINDOW_COUNT: &[u8] = b"window_count";
const META_DEAD_TOTAL: &[u8] = b"dead_total";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store at {path}: {source}")]
    Open { path: String, source: sled::Error },
    #[error("store at {path} has schema version {found}, this build reads up to {SCHEMA_VERSION}")]
    Schema { path: String, found: u32 },
    #[error("store: {0}")]
    Sled(#[from] sled::Error),
    #[error("store record: {0}")]
    Record(#[from] serde_json::Error),
}

impl From<sled::transaction::TransactionError<StoreError>> for StoreError {
    fn from(e: sled::transaction::TransactionError<StoreError>) -> Self {
        match e {
            sled::transaction::TransactionError::Abort(e) => e,
            sled::transaction::TransactionError::Storage(e) => Self::Sled(e),
        }
    }
}

/// One stored classification window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredClassification {
    pub start_ms: i64,
    pub end_ms: i64,
    pub activity: ActivityClass,
    pub confidence: f32,
    pub scores: Scores,
    pub drivers: Vec<Driver>,
    pub features: WindowSummary,
    pub classifier: String,
    pub source: String,
}

impl From<&Classification> for StoredClassification {
    fn from(c: &Classification) -> Self {
        Self {
            start_ms: c.start().millis(),
            end_ms: c.end().millis(),
            activity: c.decision.activity,
            confidence: c.decision.confidence,
            scores: c.decision.scores,
            drivers: c.decision.drivers.clone(),
            features: c.window.clone(),
            classifier: c.classifier.clone(),
            source: c.source.clone(),
        }
    }
}

impl StoredClassification {
    /// The classification again, as the pipeline published it (its smoothing note is not
    /// stored). The daemon seeds the current activity with the newest one at start, so a
    /// restart or a settings reload does not blank it until the next window closes.
    pub fn to_classification(&self) -> Classification {
        Classification {
            window: self.features.clone(),
            decision: cav_core::Decision {
                activity: self.activity,
                confidence: self.confidence,
                scores: self.scores,
                drivers: self.drivers.clone(),
                unsmoothed: None,
            },
            classifier: self.classifier.clone(),
            source: self.source.clone(),
        }
    }

    pub fn record(&self) -> cav_core::history::WindowRecord {
        cav_core::history::WindowRecord {
            start_ms: self.start_ms,
            end_ms: self.end_ms,
            class: self.activity,
            confidence: self.confidence,
        }
    }
}

/// Order-preserving encoding of signed milliseconds (flip the sign bit).
pub(crate) fn ms_key(ms: i64) -> [u8; 8] {
    ((ms as u64) ^ (1 << 63)).to_be_bytes()
}

/// Inverse of [`ms_key`] for the first 8 bytes of `b`.
pub(crate) fn key_ms(b: &[u8]) -> Option<i64> {
    let raw: [u8; 8] = b.get(..8)?.try_into().ok()?;
    Some((u64::from_be_bytes(raw) ^ (1 << 63)) as i64)
}

fn window_key(start_ms: i64, end_ms: i64) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&ms_key(start_ms));
    key[8..].copy_from_slice(&ms_key(end_ms));
    key
}

fn read_u64(v: Option<sled::IVec>) -> Option<u64> {
    v.and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
        .map(u64::from_be_bytes)
}

fn read_i64(v: Option<sled::IVec>) -> Option<i64> {
    read_u64(v).map(|u| u as i64)
}

/// Decodes a JSON record, logging and skipping one that does not decode.
fn decode<T: serde::de::DeserializeOwned>(key: &[u8], value: &[u8], what: &str) -> Option<T> {
    match serde_json::from_slice(value) {
        Ok(record) => Some(record),
        Err(e) => {
            tracing::warn!(key = ?key, error = %e, what, "skipping an unreadable record");
            None
        }
    }
}

#[derive(Clone, Debug)]
pub struct Store {
    db: sled::Db,
    meta: sled::Tree,
    classifications: sled::Tree,
    spans: sled::Tree,
    hourly: sled::Tree,
    sound_events: sled::Tree,
    outbox: sled::Tree,
    delivered: sled::Tree,
    dead_letter: sled::Tree,
    analyses: sled::Tree,
    analysis_samples: sled::Tree,
    instance: String,
}

impl Store {
    /// Opens (or creates) the store, migrating an older schema in place.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let path = dir.display().to_string();
        let db = sled::Config::new()
            .path(dir)
            .open()
            .map_err(|source| StoreError::Open {
                path: path.clone(),
                source,
            })?;
        let meta: sled::Tree = (*db).clone();
        let found = match meta.get(META_SCHEMA)? {
            // A new store: the current schema from the start.
            None if !db
                .tree_names()
                .iter()
                .any(|n| n.as_ref() == TREE_CLASSIFICATIONS.as_bytes()) =>
            {
                SCHEMA_VERSION
            }
            None => 1,
            Some(v) => <[u8; 4]>::try_from(v.as_ref())
                .map(u32::from_be_bytes)
                .unwrap_or(0),
        };
        if found == 0 || found > SCHEMA_VERSION {
            return Err(StoreError::Schema { path, found });
        }
        let store = Self {
            classifications: db.open_tree(TREE_CLASSIFICATIONS)?,
            spans: db.open_tree(TREE_SPANS)?,
            hourly: db.open_tree(TREE_HOURLY)?,
            sound_events: db.open_tree(TREE_SOUND_EVENTS)?,
            outbox: db.open_tree(TREE_OUTBOX)?,
            delivered: db.open_tree(TREE_DELIVERED)?,
            dead_letter: db.open_tree(TREE_DEAD_LETTER)?,
            analyses: db.open_tree(TREE_ANALYSES)?,
            analysis_samples: db.open_tree(TREE_ANALYSIS_SAMPLES)?,
            instance: instance_id(&meta)?,
            meta,
            db,
        };
        if found < SCHEMA_VERSION {
            migrate::run(&store, found)?;
        }
        store.check()?;
        store
            .meta
            .insert(META_SCHEMA, &SCHEMA_VERSION.to_be_bytes())?;
        store.db.flush()?;
        Ok(store)
    }

    /// Checks what a crash could have left inconsistent and logs what the store holds.
    /// sled itself recovers its log at open; what is ours to check is the metadata: the open
    /// span must exist (else the newest span is reopened).
    fn check(&self) -> Result<(), StoreError> {
        let open = self.meta.get(META_OPEN_SPAN)?;
        let valid = match &open {
            Some(k) => self.spans.contains_key(k)?,
            None => self.spans.is_empty(),
        };
        if !valid {
            tracing::warn!("store: the open span is missing; reopening the newest span");
            match self.spans.last()? {
                Some((k, _)) => self.meta.insert(META_OPEN_SPAN, k)?,
                None => self.meta.remove(META_OPEN_SPAN)?,
            };
        }
        tracing::info!(
            windows = self.classification_count(),
            outbox_pending = self.outbox.len(),
            "store opened"
        );
        Ok(())
    }

    /// This store's random id (stable across restarts).
    pub fn instance(&self) -> &str {
        &self.instance
    }

    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }

    /// Bytes the store takes on disk.
    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        Ok(self.db.size_on_disk()?)
    }
}

/// The store's instance id, created at first open.
fn instance_id(meta: &sled::Tree) -> Result<String, StoreError> {
    if let Some(v) = meta.get(META_INSTANCE)? {
        if let Ok(s) = std::str::from_utf8(&v) {
            return Ok(s.to_string());
        }
    }
    let id = format!("{:016x}", fastrand::u64(..));
    meta.insert(META_INSTANCE, id.as_bytes())?;
    Ok(id)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use cav_core::classify::{Classifier, RuleClassifier};
    use cav_core::Timestamp;

    /// A classification of `class` over [start_s, end_s) (Unix seconds), scored by the rules
    /// and then relabelled, so all the fields are realistic.
    pub fn classification(start_s: i64, end_s: i64, class: ActivityClass) -> Classification {
        let window = WindowSummary {
            start: Timestamp(start_s * 1_000_000),
            end: Timestamp(end_s * 1_000_000),
            spans: 10,
            video: None,
            audio: None,
            vision: None,
            sound: None,
            sub_windows: None,
        };
        let mut decision = RuleClassifier.classify(&window);
        decision.activity = class;
        decision.confidence = 0.5;
        Classification {
            decision,
            window,
            classifier: "rules-v1".into(),
            source: "file".into(),
        }
    }

    #[test]
    fn keys_keep_time_order_for_negative_times() {
        let times = [-5_000, -1, 0, 1, 1_700_000_000_000];
        let keys: Vec<[u8; 8]> = times.iter().map(|&t| ms_key(t)).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
        for (t, k) in times.iter().zip(&keys) {
            assert_eq!(key_ms(k), Some(*t));
        }
    }

    #[test]
    fn refuses_a_store_from_a_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = sled::open(dir.path()).unwrap();
            db.insert(META_SCHEMA, &99u32.to_be_bytes()).unwrap();
            db.flush().unwrap();
        }
        let err = Store::open(dir.path()).unwrap_err();
        assert!(matches!(err, StoreError::Schema { found: 99, .. }), "{err}");
    }

    #[test]
    fn keeps_its_instance_id_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let first = Store::open(dir.path()).unwrap().instance().to_string();
        assert_eq!(first.len(), 16);
        let again = Store::open(dir.path()).unwrap().instance().to_string();
        assert_eq!(first, again);
    }
}
