//! Retention: deletes records older than their tree's configured age, a bounded batch at a time
//! so that a first run over a large store never holds the store writer for long.

use super::{ms_key, Store, StoreError};

const DAY_MS: i64 = 86_400_000;

/// Days to keep each kind of record; 0 keeps it forever.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Retention {
    pub activities_days: u32,
    /// Also the age of the hourly rollup behind the statistics.
    pub spans_days: u32,
    pub sound_events_days: u32,
    pub delivered_days: u32,
    pub dead_letter_days: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            activities_days: 400,
            spans_days: 0,
            sound_events_days: 90,
            delivered_days: 7,
            dead_letter_days: 30,
        }
    }
}

/// What one retention pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RetentionReport {
    pub removed: u64,
    /// The batch limit was reached: call again soon.
    pub more: bool,
}

impl Store {
    /// Removes at most `budget` expired records, oldest first.
    pub fn apply_retention(
        &self,
        now_ms: i64,
        r: &Retention,
        budget: usize,
    ) -> Result<RetentionReport, StoreError> {
        let mut report = RetentionReport::default();
        let trees = [
            (&self.classifications, r.activities_days),
            (&self.spans, r.spans_days),
            (&self.hourly, r.spans_days),
            (&self.sound_events, r.sound_events_days),
            (&self.delivered, r.delivered_days),
            (&self.dead_letter, r.dead_letter_days),
        ];
        let open_span = self.meta.get(super::META_OPEN_SPAN)?;
        for (tree, days) in trees {
            if days == 0 {
                continue;
            }
            let cutoff = ms_key(now_ms - i64::from(days) * DAY_MS);
            let mut batch = sled::Batch::default();
            let mut n = 0usize;
            for key in tree.range(..cutoff).keys() {
                let key = key?;
                if open_span.as_deref() == Some(&key[..]) && std::ptr::eq(tree, &self.spans) {
                    continue; // The span still being extended.
                }
                if report.removed as usize + n >= budget {
                    report.more = true;
                    break;
                }
                batch.remove(key);
                n += 1;
            }
            tree.apply_batch(batch)?;
            if std::ptr::eq(tree, &self.classifications) {
                self.adjust_window_count(-(n as i64))?;
            }
            report.removed += n as u64;
            if report.more {
                break;
            }
        }
        if report.removed > 0 {
            self.db.flush()?;
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::classification;
    use super::super::TimeRange;
    use super::*;
    use crate::events::SoundEventRecord;
    use cav_core::ActivityClass::Busy;

    #[test]
    fn removes_only_what_is_older_than_each_trees_age() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let day = 86_400;
        // Windows 10, 5 and 1 days old (seen from day 100), each its own span (gaps).
        for age in [10, 5, 1] {
            let start = (100 - age) * day;
            store
                .put_classification(&classification(start, start + 300, Busy), 60_000, None)
                .unwrap();
            store
                .put_sound_event(
                    &SoundEventRecord {
                        source: "mic".into(),
                        kind: "clap".into(),
                        onset_ms: start * 1000,
                        end_ms: None,
                        score: 0.9,
                    },
                    None,
                )
                .unwrap();
        }
        let r = Retention {
            activities_days: 7,
            spans_days: 0,
            sound_events_days: 2,
            delivered_days: 7,
            dead_letter_days: 30,
        };
        let now = 100 * day * 1000;
        // A budget of 1: one record per pass, and it says there is more.
        let first = store.apply_retention(now, &r, 1).unwrap();
        assert_eq!(
            first,
            RetentionReport {
                removed: 1,
                more: true
            }
        );
        let rest = store.apply_retention(now, &r, 100).unwrap();
        assert_eq!(
            rest,
            RetentionReport {
                removed: 2,
                more: false
            }
        );
        assert_eq!(store.classification_count(), 2);
        assert_eq!(store.sound_event_count(), 1);
        // Spans (kept forever here) and their statistics are untouched.
        assert_eq!(store.spans(TimeRange::all(), None, 10, 0).unwrap().total, 3);
        assert_eq!(store.apply_retention(now, &r, 100).unwrap().removed, 0);
    }
}
