//! Activity windows, the spans they merge into, the hourly rollup, and the queries over them.

use cav_core::history::{
    hour_start, window_rollup, HourTotals, Span, Statistics, StatsAccumulator, WindowRecord,
    HOUR_MS,
};
use cav_core::ActivityClass;
use chrono::TimeZone;
use sled::transaction::{ConflictableTransactionError, TransactionalTree};
use sled::Transactional;

use super::outbox::{enqueue, NewDelivery};
use super::{
    decode, key_ms, ms_key, read_i64, read_u64, window_key, Store, StoreError,
    StoredClassification, META_EXTERNAL_LAST_END, META_MAX_WINDOW_MS, META_OPEN_SPAN,
    META_WINDOW_COUNT,
};
use crate::delivery::ExternalPayload;
use crate::messages::Classification;

/// `[start, end)` in Unix milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeRange {
    pub start_ms: i64,
    pub end_ms: i64,
}

impl TimeRange {
    pub fn new(start_ms: i64, end_ms: i64) -> Self {
        Self { start_ms, end_ms }
    }

    /// All of time.
    pub fn all() -> Self {
        Self::new(i64::MIN / 2, i64::MAX / 2)
    }

    fn keys(&self) -> std::ops::Range<[u8; 8]> {
        ms_key(self.start_ms)..ms_key(self.end_ms)
    }
}

/// One page of a newest-first listing, with the number of matches in all pages.
#[derive(Clone, Debug, PartialEq)]
pub struct Page<T> {
    pub total: u64,
    pub items: Vec<T>,
}

/// When a window goes to the external service: every window, or the latest every `interval_ms`
/// when that is longer than a window.
#[derive(Clone, Debug)]
pub struct ExternalPolicy {
    pub url: String,
    pub interval_ms: i64,
}

impl ExternalPolicy {
    pub const DESTINATION: &'static str = "external";

    /// Whether a window ending at `end_ms` is due, the last queued one having ended at `last`.
    /// Half a window of tolerance, so that 300-s windows with a 300-s interval all go even when
    /// their ends jitter by a few milliseconds.
    fn due(&self, last: Option<i64>, start_ms: i64, end_ms: i64) -> bool {
        let tolerance = (end_ms - start_ms).max(0) / 2;
        last.is_none_or(|last| end_ms - last >= self.interval_ms - tolerance)
    }
}

/// What storing a window set in motion.
#[derive(Debug, Default)]
pub struct PutOutcome {
    /// The destination a delivery was queued for, if any.
    pub queued: Option<String>,
}

fn abort(e: impl Into<StoreError>) -> ConflictableTransactionError<StoreError> {
    ConflictableTransactionError::Abort(e.into())
}

fn hourly_key(hour_ms: i64, class: ActivityClass) -> [u8; 9] {
    let mut key = [0u8; 9];
    key[..8].copy_from_slice(&ms_key(hour_ms));
    key[8] = class_index(class);
    key
}

fn class_index(class: ActivityClass) -> u8 {
    ActivityClass::ALL
        .iter()
        .position(|c| *c == class)
        .unwrap_or(0) as u8
}

fn class_at(index: u8) -> Option<ActivityClass> {
    ActivityClass::ALL.get(index as usize).copied()
}

/// Adds a window to the spans inside a transaction; returns whether it started a new span.
fn merge_into_spans(
    spans: &TransactionalTree,
    meta: &TransactionalTree,
    w: &WindowRecord,
    max_gap_ms: i64,
) -> Result<bool, ConflictableTransactionError<StoreError>> {
    let open_key = meta.get(META_OPEN_SPAN)?;
    let open = match &open_key {
        Some(k) => spans
            .get(k)?
            .and_then(|v| serde_json::from_slice::<Span>(&v).ok()),
        None => None,
    };
    if let (Some(k), Some(mut span)) = (&open_key, open.clone()) {
        if span.accepts(w, max_gap_ms) {
            span.extend(w);
            spans.insert(k, serde_json::to_vec(&span).map_err(abort)?)?;
            return Ok(false);
        }
    }
    let span = Span::from_window(w);
    let key = ms_key(w.start_ms);
    spans.insert(&key, serde_json::to_vec(&span).map_err(abort)?)?;
    // A late window (older than the open span) gets a span of its own without closing the open one.
    if open.is_none_or(|o| w.start_ms >= o.start_ms) {
        meta.insert(META_OPEN_SPAN, &key)?;
    }
    Ok(true)
}

impl Store {
    /// Stores a classification window, extends or starts its span, adds it to the hourly
    /// rollup and, when due, queues it for the external service — all in one transaction —
    /// and waits until it is on disk.
    pub fn put_classification(
        &self,
        c: &Classification,
        span_gap_ms: i64,
        external: Option<&ExternalPolicy>,
    ) -> Result<PutOutcome, StoreError> {
        let stored = StoredClassification::from(c);
        let value = serde_json::to_vec(&stored)?;
        let record = stored.record();
        let key = window_key(stored.start_ms, stored.end_ms);
        let payload = match external {
            Some(_) => Some(serde_json::to_value(ExternalPayload::from(c))?),
            None => None,
        };
        let idempotency_key = format!(
            "{}-window-{}-{}",
            self.instance, stored.start_ms, stored.end_ms
        );
        let queued = (
            &self.classifications,
            &self.spans,
            &self.hourly,
            &self.outbox,
            &self.meta,
        )
            .transaction(|(windows, spans, hourly, outbox, meta)| {
                let fresh = windows.insert(&key, value.as_slice())?.is_none();
                if !fresh {
                    // The same window again (a replay): already counted everywhere.
                    return Ok(None);
                }
                let count = read_u64(meta.get(META_WINDOW_COUNT)?).unwrap_or(0) + 1;
                meta.insert(META_WINDOW_COUNT, &count.to_be_bytes())?;
                let started = merge_into_spans(spans, meta, &record, span_gap_ms)?;
                for (hour, add) in window_rollup(&record, started) {
                    let hkey = hourly_key(hour, record.class);
                    let mut totals = hourly
                        .get(hkey)?
                        .and_then(|v| HourTotals::from_bytes(&v))
                        .unwrap_or_default();
                    totals.add(&add);
                    hourly.insert(&hkey, &totals.to_bytes())?;
                }
                let longest = read_i64(meta.get(META_MAX_WINDOW_MS)?).unwrap_or(0);
                let length = record.end_ms - record.start_ms;
                if length > longest {
                    meta.insert(META_MAX_WINDOW_MS, &length.to_be_bytes())?;
                }
                let mut queued = None;
                if let (Some(policy), Some(payload)) = (external, &payload) {
                    let last = read_i64(meta.get(META_EXTERNAL_LAST_END)?);
                    if policy.due(last, record.start_ms, record.end_ms) {
                        enqueue(
                            outbox,
                            &NewDelivery {
                                destination: ExternalPolicy::DESTINATION,
                                url: &policy.url,
                                idempotency_key: &idempotency_key,
                                payload,
                                created_ms: record.end_ms,
                            },
                        )?;
                        meta.insert(META_EXTERNAL_LAST_END, &record.end_ms.to_be_bytes())?;
                        queued = Some(ExternalPolicy::DESTINATION.to_string());
                    }
                }
                Ok(queued)
            })?;
        self.db.flush()?;
        Ok(PutOutcome { queued })
    }

    /// Stored windows (a counter kept with them, not a walk of the tree).
    pub fn classification_count(&self) -> u64 {
        read_u64(self.meta.get(META_WINDOW_COUNT).ok().flatten()).unwrap_or(0)
    }

    /// Adds `delta` to the stored-window counter (imports, retention).
    pub(super) fn adjust_window_count(&self, delta: i64) -> Result<(), StoreError> {
        self.meta.update_and_fetch(META_WINDOW_COUNT, |old| {
            let n = read_u64(old.map(sled::IVec::from)).unwrap_or(0) as i64;
            Some((n + delta).max(0).to_be_bytes().to_vec())
        })?;
        Ok(())
    }

    /// The newest `limit` classifications, newest first.
    pub fn latest_classifications(
        &self,
        limit: usize,
    ) -> Result<Vec<StoredClassification>, StoreError> {
        Ok(self.activities(TimeRange::all(), None, limit, 0)?.items)
    }

    /// The longest stored window, in ms.
    fn max_window_ms(&self) -> Result<i64, StoreError> {
        Ok(read_i64(self.meta.get(META_MAX_WINDOW_MS)?).unwrap_or(0))
    }

    /// Windows that start in `range`, newest first, optionally of one class.
    pub fn activities(
        &self,
        range: TimeRange,
        class: Option<ActivityClass>,
        limit: usize,
        offset: usize,
    ) -> Result<Page<StoredClassification>, StoreError> {
        let mut items = Vec::new();
        let mut matched = 0usize;
        for item in self.classifications.range(range.keys()).rev() {
            if items.len() >= limit {
                break;
            }
            let (key, value) = item?;
            let Some(c) = decode::<StoredClassification>(&key, &value, "classification") else {
                continue;
            };
            if class.is_some_and(|want| want != c.activity) {
                continue;
            }
            matched += 1;
            if matched > offset {
                items.push(c);
            }
        }
        let total = self.count_windows(range, class)?;
        Ok(Page { total, items })
    }

    /// Windows that start in `range` (of one class): whole hours from the rollup, the partial
    /// hours at either end by scanning.
    fn count_windows(
        &self,
        range: TimeRange,
        class: Option<ActivityClass>,
    ) -> Result<u64, StoreError> {
        let mut total = 0u64;
        let (full, edges) = split_range(range);
        if let Some((from, to)) = full {
            for item in self.hourly.range(ms_key(from)..ms_key(to)) {
                let (key, value) = item?;
                let of_class = key.get(8).and_then(|&i| class_at(i));
                if class.is_some() && of_class != class {
                    continue;
                }
                if let Some(t) = HourTotals::from_bytes(&value) {
                    total += u64::from(t.windows);
                }
            }
        }
        for (from, to) in edges {
            for item in self.classifications.range(ms_key(from)..ms_key(to)) {
                let (key, value) = item?;
                match class {
                    None => total += 1,
                    Some(want) => {
                        if decode::<StoredClassification>(&key, &value, "classification")
                            .is_some_and(|c| c.activity == want)
                        {
                            total += 1;
                        }
                    }
                }
            }
        }
        Ok(total)
    }

    /// Spans that overlap `range`, newest first, optionally of one class.
    pub fn spans(
        &self,
        range: TimeRange,
        class: Option<ActivityClass>,
        limit: usize,
        offset: usize,
    ) -> Result<Page<Span>, StoreError> {
        let mut items = Vec::new();
        let mut total = 0u64;
        for item in self.spans.range(..ms_key(range.end_ms)).rev() {
            let (key, value) = item?;
            let Some(span) = decode::<Span>(&key, &value, "span") else {
                continue;
            };
            if span.end_ms <= range.start_ms {
                // Spans do not overlap each other: every older one ends earlier still.
                break;
            }
            if class.is_some_and(|want| want != span.class) {
                continue;
            }
            total += 1;
            if total as usize > offset && items.len() < limit {
                items.push(span);
            }
        }
        Ok(Page { total, items })
    }

    /// Statistics over `range`, with hours and days in `tz`.
    pub fn statistics<Tz: TimeZone>(
        &self,
        range: TimeRange,
        tz: Tz,
    ) -> Result<Statistics, StoreError> {
        let mut acc = StatsAccumulator::new(range.start_ms, range.end_ms, tz);
        let (full, edges) = split_range(range);
        if let Some((from, to)) = full {
            for item in self.hourly.range(ms_key(from)..ms_key(to)) {
                let (key, value) = item?;
                let (Some(hour), Some(class), Some(totals)) = (
                    key_ms(&key),
                    key.get(8).and_then(|&i| class_at(i)),
                    HourTotals::from_bytes(&value),
                ) else {
                    tracing::warn!(key = ?key, "skipping an unreadable hourly rollup");
                    continue;
                };
                acc.add_hour(hour, class, &totals);
            }
        }
        let lookback = self.max_window_ms()?;
        for &(from, to) in &edges {
            for item in self
                .classifications
                .range(ms_key(from - lookback)..ms_key(to))
            {
                let (key, value) = item?;
                if let Some(c) = decode::<StoredClassification>(&key, &value, "classification") {
                    acc.add_window_clipped(&c.record(), from, to);
                }
            }
            // Spans that start in a partial hour (whole hours count theirs in the rollup).
            for item in self.spans.range(ms_key(from)..ms_key(to)) {
                let (key, value) = item?;
                if let Some(span) = decode::<Span>(&key, &value, "span") {
                    acc.add_spans(span.class, 1);
                }
            }
        }
        // The span already running when the range starts.
        if let Some(item) = self.spans.range(..ms_key(range.start_ms)).next_back() {
            let (key, value) = item?;
            if let Some(span) = decode::<Span>(&key, &value, "span") {
                if span.end_ms > range.start_ms {
                    acc.add_spans(span.class, 1);
                }
            }
        }
        Ok(acc.finish())
    }

    /// Windows that start in `range`, oldest first (for exports).
    pub fn iter_activities(
        &self,
        range: TimeRange,
    ) -> impl Iterator<Item = Result<StoredClassification, StoreError>> {
        self.classifications
            .range(range.keys())
            .filter_map(|item| match item {
                Ok((k, v)) => decode(&k, &v, "classification").map(Ok),
                Err(e) => Some(Err(e.into())),
            })
    }

    /// Spans that start in `range`, oldest first (for exports).
    pub fn iter_spans(&self, range: TimeRange) -> impl Iterator<Item = Result<Span, StoreError>> {
        self.spans
            .range(range.keys())
            .filter_map(|item| match item {
                Ok((k, v)) => decode(&k, &v, "span").map(Ok),
                Err(e) => Some(Err(e.into())),
            })
    }

    /// Writes windows in bulk without the outbox or a flush per window: for migrations and
    /// benchmarks that build a history, not for live results. Windows must come in time order.
    pub fn import_windows<'a>(
        &self,
        windows: impl IntoIterator<Item = &'a StoredClassification>,
        span_gap_ms: i64,
    ) -> Result<u64, StoreError> {
        let mut count = 0u64;
        let mut open: Option<(Vec<u8>, Span)> = match self.meta.get(META_OPEN_SPAN)? {
            Some(k) => self
                .spans
                .get(&k)?
                .and_then(|v| serde_json::from_slice::<Span>(&v).ok())
                .map(|s| (k.to_vec(), s)),
            None => None,
        };
        let mut rollup: std::collections::BTreeMap<[u8; 9], HourTotals> = Default::default();
        let mut longest = self.max_window_ms()?;
        let mut batch = sled::Batch::default();
        let mut span_batch = sled::Batch::default();
        let mut fresh = 0i64;
        for stored in windows {
            let record = stored.record();
            if !self
                .classifications
                .contains_key(window_key(stored.start_ms, stored.end_ms))?
            {
                fresh += 1;
            }
            batch.insert(
                &window_key(stored.start_ms, stored.end_ms),
                serde_json::to_vec(stored)?,
            );
            let started = match &mut open {
                Some((key, span)) if span.accepts(&record, span_gap_ms) => {
                    span.extend(&record);
                    span_batch.insert(key.as_slice(), serde_json::to_vec(span)?);
                    false
                }
                _ => {
                    let span = Span::from_window(&record);
                    let key = ms_key(record.start_ms).to_vec();
                    span_batch.insert(key.as_slice(), serde_json::to_vec(&span)?);
                    open = Some((key, span));
                    true
                }
            };
            for (hour, add) in window_rollup(&record, started) {
                rollup
                    .entry(hourly_key(hour, record.class))
                    .or_default()
                    .add(&add);
            }
            longest = longest.max(record.end_ms - record.start_ms);
            count += 1;
            if count.is_multiple_of(10_000) {
                self.classifications
                    .apply_batch(std::mem::take(&mut batch))?;
                self.spans.apply_batch(std::mem::take(&mut span_batch))?;
            }
        }
        self.classifications.apply_batch(batch)?;
        self.spans.apply_batch(span_batch)?;
        for (key, add) in rollup {
            let mut totals = self
                .hourly
                .get(key)?
                .and_then(|v| HourTotals::from_bytes(&v))
                .unwrap_or_default();
            totals.add(&add);
            self.hourly.insert(key, &totals.to_bytes())?;
        }
        if let Some((key, _)) = open {
            self.meta.insert(META_OPEN_SPAN, key)?;
        }
        self.meta
            .insert(META_MAX_WINDOW_MS, &longest.to_be_bytes())?;
        self.adjust_window_count(fresh)?;
        self.db.flush()?;
        Ok(count)
    }
}

/// `[from, to)` in Unix ms.
type Interval = (i64, i64);

/// Splits a range into the whole UTC hours inside it and the partial hours at its ends.
fn split_range(range: TimeRange) -> (Option<Interval>, Vec<Interval>) {
    if range.end_ms <= range.start_ms {
        return (None, Vec::new());
    }
    let first_full = {
        let h = hour_start(range.start_ms);
        if h == range.start_ms {
            h
        } else {
            h.saturating_add(HOUR_MS)
        }
    };
    let last_full_end = hour_start(range.end_ms);
    if first_full >= last_full_end {
        return (None, vec![(range.start_ms, range.end_ms)]);
    }
    let edges = [(range.start_ms, first_full), (last_full_end, range.end_ms)]
        .into_iter()
        .filter(|(a, b)| b > a)
        .collect();
    (Some((first_full, last_full_end)), edges)
}

#[cfg(test)]
mod tests {
    use super::super::tests::classification;
    use super::*;
    use chrono::FixedOffset;
    use ActivityClass::*;

    const T0: i64 = 1_700_000_000 - 1_700_000_000 % 86_400; // a UTC midnight

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        (dir, store)
    }

    fn put(store: &Store, windows: &[(i64, i64, ActivityClass)]) {
        for &(s, e, class) in windows {
            store
                .put_classification(&classification(T0 + s, T0 + e, class), 60_000, None)
                .unwrap();
        }
    }

    #[test]
    fn consecutive_windows_of_a_class_merge_into_spans() {
        let (_dir, store) = store();
        put(
            &store,
            &[
                (0, 600, AtTable),
                (600, 1200, AtTable),
                (1200, 1800, Reading),
                // A gap of 2 minutes (> 60 s): a new span even though the class is the same.
                (1920, 2520, Reading),
                (2520, 3120, Reading),
            ],
        );
        let page = store.spans(TimeRange::all(), None, 10, 0).unwrap();
        let got: Vec<(i64, i64, ActivityClass, u32)> = page
            .items
            .iter()
            .map(|s| {
                (
                    s.start_ms / 1000 - T0,
                    s.end_ms / 1000 - T0,
                    s.class,
                    s.windows,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (1920, 3120, Reading, 2),
                (1200, 1800, Reading, 1),
                (0, 1200, AtTable, 2),
            ]
        );
        assert_eq!(page.total, 3);
        // Only spans overlapping the range, filtered by class.
        let reading = store
            .spans(
                TimeRange::new((T0 + 1500) * 1000, (T0 + 2000) * 1000),
                Some(Reading),
                10,
                0,
            )
            .unwrap();
        assert_eq!(reading.total, 2);
    }

    #[test]
    fn storing_the_same_window_twice_counts_it_once() {
        let (_dir, store) = store();
        put(&store, &[(0, 600, Busy), (0, 600, Busy)]);
        assert_eq!(store.classification_count(), 1);
        let stats = store
            .statistics(TimeRange::all(), FixedOffset::east_opt(0).unwrap())
            .unwrap();
        assert_eq!(stats.windows, 1);
        assert_eq!(
            store.spans(TimeRange::all(), None, 10, 0).unwrap().items[0].windows,
            1
        );
    }

    #[test]
    fn pages_newest_first_with_class_filter_and_total() {
        let (_dir, store) = store();
        let windows: Vec<(i64, i64, ActivityClass)> = (0..20)
            .map(|i| {
                (
                    i * 600,
                    (i + 1) * 600,
                    if i % 2 == 0 { Busy } else { Reading },
                )
            })
            .collect();
        put(&store, &windows);
        let page = store.activities(TimeRange::all(), None, 5, 0).unwrap();
        assert_eq!(page.total, 20);
        let starts: Vec<i64> = page.items.iter().map(|c| c.start_ms / 1000 - T0).collect();
        assert_eq!(starts, vec![11400, 10800, 10200, 9600, 9000]);
        let busy = store
            .activities(TimeRange::all(), Some(Busy), 3, 2)
            .unwrap();
        assert_eq!(busy.total, 10);
        let starts: Vec<i64> = busy.items.iter().map(|c| c.start_ms / 1000 - T0).collect();
        assert_eq!(starts, vec![8400, 7200, 6000]);
        // A range with partial hours at both ends: windows starting in [1000 s, 5000 s).
        let part = store
            .activities(
                TimeRange::new((T0 + 1000) * 1000, (T0 + 5000) * 1000),
                None,
                100,
                0,
            )
            .unwrap();
        assert_eq!(part.total, 7);
        assert_eq!(part.items.len(), 7);
        let part_busy = store
            .activities(
                TimeRange::new((T0 + 1000) * 1000, (T0 + 5000) * 1000),
                Some(Busy),
                100,
                0,
            )
            .unwrap();
        assert_eq!(part_busy.total, part_busy.items.len() as u64);
        assert_eq!(part_busy.total, 4);
    }

    #[test]
    fn statistics_match_a_direct_count_for_ranges_cutting_hours() {
        let (_dir, store) = store();
        // 4 hours of 10-minute windows alternating in runs of 3.
        let classes = [AtTable, Reading, Busy, Inactive];
        let windows: Vec<(i64, i64, ActivityClass)> = (0..24)
            .map(|i| (i * 600, (i + 1) * 600, classes[(i / 3) as usize % 4]))
            .collect();
        put(&store, &windows);
        let tz = FixedOffset::east_opt(2 * 3600).unwrap();
        // From 00:25 to 03:05 UTC: partial first and last hours, two whole hours between.
        let (from, to) = (T0 + 1500, T0 + 11100);
        let stats = store
            .statistics(TimeRange::new(from * 1000, to * 1000), tz)
            .unwrap();
        let mut expect = std::collections::BTreeMap::new();
        for &(s, e, c) in &windows {
            let overlap = (e.min(to - T0) - s.max(from - T0)).max(0);
            *expect.entry(c).or_insert(0i64) += overlap;
        }
        for cs in &stats.classes {
            let want = expect.get(&cs.class).copied().unwrap_or(0) as f64;
            assert!(
                (cs.total_s - want).abs() < 1e-6,
                "{:?}: {} vs {want}",
                cs.class,
                cs.total_s
            );
        }
        assert!((stats.observed_s - 9600.0).abs() < 1e-6);
        // Windows starting in the range: 1800, 2400, ..., 10800 s → 16.
        assert_eq!(stats.windows, 16);
        // Spans overlapping: runs of 3 windows = 30 min each, 8 runs; [1500, 11100) touches
        // runs 0 (0-1800) … 6 (10800-12600) → 7.
        let spans: u64 = stats.classes.iter().map(|c| c.spans).sum();
        assert_eq!(spans, 7);
    }
}
