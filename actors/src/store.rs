//! The store: every classification window, in sled, ordered by time.
//!
//! Keys are the window's start and end as order-preserving big-endian integers, so a range scan
//! walks windows in time order. Values are [`StoredClassification`] JSON records, a type of this
//! module's own so that the on-disk format changes only on purpose (with `SCHEMA_VERSION`).
//! `put` flushes before returning: a classification the API has shown is on disk.

use std::path::Path;

use cav_core::classify::{Driver, Scores};
use cav_core::window::WindowSummary;
use cav_core::{ActivityClass, Timestamp};
use serde::{Deserialize, Serialize};

use crate::events::SoundEventRecord;
use crate::messages::Classification;

/// Version of the records and trees below; checked at open.
pub const SCHEMA_VERSION: u32 = 1;

const TREE_CLASSIFICATIONS: &str = "classifications";
const TREE_SOUND_EVENTS: &str = "sound_events";
const META_SCHEMA: &[u8] = b"schema_version";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store at {path}: {source}")]
    Open { path: String, source: sled::Error },
    #[error("store at {path} has schema version {found}, this build reads {SCHEMA_VERSION}")]
    Schema { path: String, found: u32 },
    #[error("store: {0}")]
    Sled(#[from] sled::Error),
    #[error("store record: {0}")]
    Record(#[from] serde_json::Error),
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

/// Order-preserving encoding of a signed time (flip the sign bit).
fn time_key(t: Timestamp) -> [u8; 8] {
    ((t.micros() as u64) ^ (1 << 63)).to_be_bytes()
}

/// The newest `limit` records of a tree, newest first; unreadable ones are logged and skipped.
fn newest<T: serde::de::DeserializeOwned>(
    tree: &sled::Tree,
    limit: usize,
    what: &str,
) -> Result<Vec<T>, StoreError> {
    let mut out = Vec::new();
    for item in tree.iter().rev() {
        if out.len() >= limit {
            break;
        }
        let (key, value) = item?;
        match serde_json::from_slice(&value) {
            Ok(record) => out.push(record),
            Err(e) => tracing::warn!(key = ?key, error = %e, what, "skipping an unreadable record"),
        }
    }
    Ok(out)
}

#[derive(Clone, Debug)]
pub struct Store {
    db: sled::Db,
    classifications: sled::Tree,
    sound_events: sled::Tree,
}

impl Store {
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let path = dir.display().to_string();
        let db = sled::Config::new()
            .path(dir)
            .open()
            .map_err(|source| StoreError::Open {
                path: path.clone(),
                source,
            })?;
        match db.get(META_SCHEMA)? {
            None => {
                db.insert(META_SCHEMA, &SCHEMA_VERSION.to_be_bytes())?;
            }
            Some(v) => {
                let found = <[u8; 4]>::try_from(v.as_ref())
                    .map(u32::from_be_bytes)
                    .unwrap_or(0);
                if found != SCHEMA_VERSION {
                    return Err(StoreError::Schema { path, found });
                }
            }
        }
        let classifications = db.open_tree(TREE_CLASSIFICATIONS)?;
        let sound_events = db.open_tree(TREE_SOUND_EVENTS)?;
        Ok(Self {
            db,
            classifications,
            sound_events,
        })
    }

    /// Stores a classification and waits until it is on disk.
    pub fn put_classification(&self, c: &Classification) -> Result<(), StoreError> {
        let mut key = [0u8; 16];
        key[..8].copy_from_slice(&time_key(c.start()));
        key[8..].copy_from_slice(&time_key(c.end()));
        let value = serde_json::to_vec(&StoredClassification::from(c))?;
        self.classifications.insert(key, value)?;
        self.db.flush()?;
        Ok(())
    }

    /// The newest `limit` classifications, newest first. Unreadable records are skipped and
    /// logged, never fatal.
    pub fn latest_classifications(
        &self,
        limit: usize,
    ) -> Result<Vec<StoredClassification>, StoreError> {
        newest(&self.classifications, limit, "classification")
    }

    /// Stores a sound event (keyed by onset, then source and kind) and waits until it is on disk.
    pub fn put_sound_event(&self, e: &SoundEventRecord) -> Result<(), StoreError> {
        let mut key = time_key(Timestamp::from_millis(e.onset_ms)).to_vec();
        key.extend_from_slice(e.source.as_bytes());
        key.push(0);
        key.extend_from_slice(e.kind.as_bytes());
        self.sound_events.insert(key, serde_json::to_vec(e)?)?;
        self.db.flush()?;
        Ok(())
    }

    /// The newest `limit` sound events, newest first.
    pub fn latest_sound_events(&self, limit: usize) -> Result<Vec<SoundEventRecord>, StoreError> {
        newest(&self.sound_events, limit, "sound event")
    }

    pub fn sound_event_count(&self) -> usize {
        self.sound_events.len()
    }

    pub fn classification_count(&self) -> usize {
        self.classifications.len()
    }

    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cav_core::classify::{Classifier, RuleClassifier};

    fn classification(start_s: i64) -> Classification {
        let window = WindowSummary {
            start: Timestamp(start_s * 1_000_000),
            end: Timestamp((start_s + 10) * 1_000_000),
            spans: 10,
            video: None,
            audio: None,
        };
        Classification {
            decision: RuleClassifier.classify(&window),
            window,
            classifier: "rules-v1".into(),
            source: "file".into(),
        }
    }

    #[test]
    fn keeps_windows_in_time_order_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            for s in [1_700_000_020, -5, 1_700_000_000, 1_700_000_010] {
                store.put_classification(&classification(s)).unwrap();
            }
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.classification_count(), 4);
        let latest = store.latest_classifications(3).unwrap();
        let starts: Vec<i64> = latest.iter().map(|c| c.start_ms / 1000).collect();
        assert_eq!(starts, vec![1_700_000_020, 1_700_000_010, 1_700_000_000]);
        assert_eq!(latest[0].scores.iter().count(), 7);
        assert_eq!(latest[0].classifier, "rules-v1");
    }

    #[test]
    fn sound_events_come_back_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for (ms, kind) in [
            (3_000, "clap"),
            (1_000, "clap"),
            (3_000, "speech"),
            (2_000, "applause"),
        ] {
            store
                .put_sound_event(&SoundEventRecord {
                    source: "mic".into(),
                    kind: kind.into(),
                    onset_ms: ms,
                    end_ms: None,
                    score: 0.5,
                })
                .unwrap();
        }
        assert_eq!(store.sound_event_count(), 4);
        let got: Vec<(i64, String)> = store
            .latest_sound_events(10)
            .unwrap()
            .into_iter()
            .map(|e| (e.onset_ms, e.kind))
            .collect();
        assert_eq!(
            got,
            vec![
                (3_000, "speech".to_string()),
                (3_000, "clap".to_string()),
                (2_000, "applause".to_string()),
                (1_000, "clap".to_string())
            ]
        );
    }

    #[test]
    fn refuses_a_store_from_another_schema() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = sled::open(dir.path()).unwrap();
            db.insert(META_SCHEMA, &99u32.to_be_bytes()).unwrap();
            db.flush().unwrap();
        }
        let err = Store::open(dir.path()).unwrap_err();
        assert!(matches!(err, StoreError::Schema { found: 99, .. }), "{err}");
    }
}
