//! Activity history: the logic behind the store's windows, spans and hour rollups, and behind
//! the statistics and query parameters the HTTP API serves from them.
//!
//! The store (sled, in `cav-actors`) owns the bytes on disk; everything it must get right about
//! time lives here, where it can be tested without a database: merging consecutive windows into
//! spans, cutting time at UTC hour boundaries for the rollups, re-bucketing those rollups into
//! local hours and calendar days, and reading times and periods from query strings.
//!
//! All times are Unix milliseconds, UTC. Rollups are keyed by UTC hour because UTC hours never
//! repeat or vanish; a time zone enters only where a person's calendar does (statistics, dates,
//! periods), so changing the zone or crossing a DST change never invalidates stored data.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use chrono::{
    DateTime, Datelike, Days, MappedLocalTime, Months, NaiveDate, NaiveDateTime, NaiveTime, Offset,
    TimeDelta, TimeZone,
};
use serde::{Deserialize, Serialize};

use crate::classify::ActivityClass;

pub const HOUR_MS: i64 = 3_600_000;

/// How far a window may start before the end of the span it continues. Window times come from a
/// clock that jitters, so consecutive windows can overlap by a few milliseconds; a larger overlap
/// means the window is not the next one (a replay, or a second source).
pub const OVERLAP_TOLERANCE_MS: i64 = 1_000;

/// Ranges longer than this many days get daily rows only for days with data: a request for
/// "everything since 1970" must not build a table of tens of thousands of empty days.
pub const MAX_DAILY_DAYS: i64 = 3_700;

/// Times the calendar functions accept, about ±253,000 years around 1970. chrono cannot
/// represent dates much further out, and no real history reaches there; bounding times here
/// keeps every later date and hour computation free of overflow.
pub const MAX_TIME_MS: i64 = 8_000_000_000_000_000;

/// One classified window as the store keeps it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct WindowRecord {
    pub start_ms: i64,
    pub end_ms: i64,
    pub class: ActivityClass,
    pub confidence: f32,
}

/// Consecutive windows of one class, merged the way ActivityWatch merges heartbeats: the store
/// keeps one record per uninterrupted activity instead of one per window, which is what a
/// timeline shows and what "how long did each reading session last" needs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Span {
    pub start_ms: i64,
    pub end_ms: i64,
    pub class: ActivityClass,
    pub windows: u32,
    pub confidence_sum: f64,
}

impl Span {
    pub fn from_window(w: &WindowRecord) -> Span {
        Span {
            start_ms: w.start_ms,
            end_ms: w.end_ms,
            class: w.class,
            windows: 1,
            confidence_sum: f64::from(w.confidence),
        }
    }

    /// True when `w` continues this span: same class, starts no earlier than
    /// max(span.start_ms, span.end_ms - 1000) (small overlaps from clock jitter allowed), and the
    /// gap between span.end_ms and w.start_ms is <= max_gap_ms. A window that starts before the
    /// span does is out of order and never merged, so spans only grow forward.
    pub fn accepts(&self, w: &WindowRecord, max_gap_ms: i64) -> bool {
        let earliest = self
            .start_ms
            .max(self.end_ms.saturating_sub(OVERLAP_TOLERANCE_MS));
        w.class == self.class
            && w.start_ms >= earliest
            && w.start_ms.saturating_sub(self.end_ms) <= max_gap_ms
    }

    /// Extends end to max(end, w.end_ms), adds the window's confidence. A window swallowed by
    /// jitter overlap still counts as a window, so `windows` matches what was classified.
    pub fn extend(&mut self, w: &WindowRecord) {
        self.end_ms = self.end_ms.max(w.end_ms);
        self.windows = self.windows.saturating_add(1);
        self.confidence_sum += f64::from(w.confidence);
    }

    /// Mean confidence of the span's windows; 0 for a span without windows.
    pub fn mean_confidence(&self) -> f32 {
        if self.windows == 0 {
            return 0.0;
        }
        (self.confidence_sum / f64::from(self.windows)) as f32
    }

    pub fn duration_ms(&self) -> i64 {
        self.end_ms.saturating_sub(self.start_ms).max(0)
    }
}

/// Merges windows given in time order into spans (used by migrations and tests); the store does
/// the same incrementally with [`Span::accepts`] and [`Span::extend`].
pub fn merge_spans(windows: impl IntoIterator<Item = WindowRecord>, max_gap_ms: i64) -> Vec<Span> {
    let mut spans: Vec<Span> = Vec::new();
    for w in windows {
        match spans.last_mut() {
            Some(span) if span.accepts(&w, max_gap_ms) => span.extend(&w),
            _ => spans.push(Span::from_window(&w)),
        }
    }
    spans
}

/// What one class did in one UTC hour. The store keeps one per (hour, class) so that statistics
/// over months read a few thousand small records instead of every window.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct HourTotals {
    pub duration_ms: i64,
    pub windows: u32,
    pub spans_started: u32,
    pub confidence_sum: f64,
}

impl HourTotals {
    /// Size of [`HourTotals::to_bytes`].
    pub const BYTES: usize = 24;

    pub fn add(&mut self, other: &HourTotals) {
        self.duration_ms = self.duration_ms.saturating_add(other.duration_ms);
        self.windows = self.windows.saturating_add(other.windows);
        self.spans_started = self.spans_started.saturating_add(other.spans_started);
        self.confidence_sum += other.confidence_sum;
    }

    /// A fixed little-endian layout (i64 duration, u32 windows, u32 spans started, f64
    /// confidence sum): the store rewrites these on every window, and a fixed layout is both
    /// cheaper than JSON and readable on any machine.
    pub fn to_bytes(&self) -> [u8; 24] {
        let mut b = [0u8; 24];
        b[0..8].copy_from_slice(&self.duration_ms.to_le_bytes());
        b[8..12].copy_from_slice(&self.windows.to_le_bytes());
        b[12..16].copy_from_slice(&self.spans_started.to_le_bytes());
        b[16..24].copy_from_slice(&self.confidence_sum.to_le_bytes());
        b
    }

    /// The inverse of [`HourTotals::to_bytes`]; `None` unless `b` is exactly 24 bytes, so a
    /// record of another kind is never misread as totals.
    pub fn from_bytes(b: &[u8]) -> Option<HourTotals> {
        let b: &[u8; 24] = b.try_into().ok()?;
        let i64_at = |i: usize| i64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        let u32_at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().expect("4 bytes"));
        let f64_at = |i: usize| f64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        Some(HourTotals {
            duration_ms: i64_at(0),
            windows: u32_at(8),
            spans_started: u32_at(12),
            confidence_sum: f64_at(16),
        })
    }
}

/// Floors to the UTC hour. `div_euclid`, not `/`, so that times before 1970 floor downwards
/// like all others.
pub fn hour_start(ms: i64) -> i64 {
    ms.div_euclid(HOUR_MS).saturating_mul(HOUR_MS)
}

/// The pieces of [start_ms, end_ms) in each UTC hour it overlaps: (hour_start_ms,
/// piece_start_ms, piece_ms). Empty for end <= start.
pub fn split_by_hour(start_ms: i64, end_ms: i64) -> Vec<(i64, i64, i64)> {
    let mut pieces = Vec::new();
    let mut t = start_ms;
    while t < end_ms {
        let hour = hour_start(t);
        let next = hour.saturating_add(HOUR_MS).min(end_ms);
        pieces.push((hour, t, next - t));
        t = next;
    }
    pieces
}

/// What one window adds to the hour rollups: every overlapped hour gets its piece's duration;
/// the hour containing start_ms also gets windows += 1 and confidence_sum += confidence;
/// spans_started += 1 there too when `starts_span`. Counting a window once, where it starts,
/// keeps window counts exact when hours are summed. A window without duration still yields its
/// start hour, so that it is counted.
pub fn window_rollup(w: &WindowRecord, starts_span: bool) -> Vec<(i64, HourTotals)> {
    let mut out: Vec<(i64, HourTotals)> = split_by_hour(w.start_ms, w.end_ms)
        .into_iter()
        .map(|(hour, _, piece_ms)| {
            let totals = HourTotals {
                duration_ms: piece_ms,
                ..HourTotals::default()
            };
            (hour, totals)
        })
        .collect();
    if out.is_empty() {
        out.push((hour_start(w.start_ms), HourTotals::default()));
    }
    let first = &mut out[0].1;
    first.windows = 1;
    first.confidence_sum = f64::from(w.confidence);
    first.spans_started = u32::from(starts_span);
    out
}

/// Seconds per class, serialised as a map from class name with all seven keys.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ClassSeconds(pub [f64; 7]);

impl ClassSeconds {
    pub fn get(&self, class: ActivityClass) -> f64 {
        self.0[index(class)]
    }
}

impl Serialize for ClassSeconds {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(7))?;
        for c in ActivityClass::ALL {
            map.serialize_entry(c.as_str(), &self.get(c))?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for ClassSeconds {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = BTreeMap::<String, f64>::deserialize(d)?;
        let mut out = [0.0; 7];
        for (k, v) in map {
            let c = ActivityClass::from_str(&k).map_err(serde::de::Error::custom)?;
            out[index(c)] = v;
        }
        Ok(Self(out))
    }
}

/// One local hour of the day (0..23) with the time each class took in it, over the whole range.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HourBucket {
    pub hour: u8,
    pub seconds: ClassSeconds,
}

/// One class on one local calendar day.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DailyRow {
    /// Serialised as "YYYY-MM-DD".
    pub date: NaiveDate,
    pub class: ActivityClass,
    pub seconds: f64,
    pub windows: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassStats {
    pub class: ActivityClass,
    pub windows: u64,
    pub spans: u64,
    pub total_s: f64,
    /// total_s / spans; `None` without spans.
    pub mean_span_s: Option<f64>,
    /// Share of the observed time, 0..1; 0 when nothing was observed.
    pub share: f64,
    /// `None` without windows.
    pub mean_confidence: Option<f32>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Statistics {
    pub start_ms: i64,
    pub end_ms: i64,
    /// One entry per class, always all 7, in ActivityClass::ALL order.
    pub classes: Vec<ClassStats>,
    /// 24 entries, local hour 0..23.
    pub hourly: Vec<HourBucket>,
    /// One row per local calendar day in the range (every day from the range start's local date
    /// to the local date of end-1ms, including days with no data, as zeros) and per class, by
    /// date then in ALL order. Days outside the range that nonetheless got data are listed too.
    /// For ranges over [`MAX_DAILY_DAYS`] days only days with data get rows.
    pub daily: Vec<DailyRow>,
    /// The class with the most time (ties: the earlier in ALL order); None when no time at all.
    pub most_frequent: Option<ActivityClass>,
    pub observed_s: f64,
    /// Awake activities (at_table, reading, on_phone, in_conversation, busy).
    pub active_s: f64,
    /// inactive + asleep.
    pub inactive_s: f64,
    /// Mean confidence over all windows, None without windows.
    pub mean_confidence: Option<f32>,
    pub windows: u64,
}

#[derive(Clone, Copy, Debug, Default)]
struct DayTotals {
    time_ms: [i64; 7],
    windows: [u64; 7],
}

/// Gathers stored hours, windows and span counts into [`Statistics`] in the person's time zone.
/// The store decides what to read (whole hour buckets inside the range, clipped windows at its
/// edges); this only adds up, so both paths count the same way.
#[derive(Clone, Debug)]
pub struct StatsAccumulator<Tz: TimeZone> {
    start_ms: i64,
    end_ms: i64,
    tz: Tz,
    time_ms: [i64; 7],
    windows: [u64; 7],
    spans: [u64; 7],
    confidence_sum: [f64; 7],
    hourly_ms: [[i64; 7]; 24],
    days: BTreeMap<NaiveDate, DayTotals>,
}

impl<Tz: TimeZone> StatsAccumulator<Tz> {
    pub fn new(range_start_ms: i64, range_end_ms: i64, tz: Tz) -> Self {
        Self {
            start_ms: range_start_ms,
            end_ms: range_end_ms,
            tz,
            time_ms: [0; 7],
            windows: [0; 7],
            spans: [0; 7],
            confidence_sum: [0.0; 7],
            hourly_ms: [[0; 7]; 24],
            days: BTreeMap::new(),
        }
    }

    /// Time of `class` that lies within one UTC hour (`piece_start_ms` .. +duration). Adds to
    /// class total, hourly distribution (local hour), daily trend (local date). The piece is cut
    /// again at local hour boundaries, so zones with half-hour offsets (India, +05:30) split a
    /// UTC hour between two local hours instead of crediting it all to one; any duration works.
    pub fn add_time(&mut self, class: ActivityClass, piece_start_ms: i64, duration_ms: i64) {
        if duration_ms <= 0 {
            return;
        }
        let i = index(class);
        let end = clamp_time(piece_start_ms.saturating_add(duration_ms));
        let mut t = clamp_time(piece_start_ms);
        while t < end {
            let offset = offset_ms(&self.tz, t);
            let local = t + offset;
            let local_hour = local.div_euclid(HOUR_MS);
            let next = ((local_hour + 1) * HOUR_MS - offset).min(end).max(t + 1);
            let ms = next - t;
            self.time_ms[i] += ms;
            self.hourly_ms[local_hour.rem_euclid(24) as usize][i] += ms;
            self.days.entry(date_of(local)).or_default().time_ms[i] += ms;
            t = next;
        }
    }

    /// Windows (count and confidence sum) of `class` that started at/around `at_ms`; adds to
    /// windows per class, daily trend window counts (local date of `at_ms`), mean confidence.
    /// From an hour bucket `at_ms` is the hour's start, which in zones with half-hour offsets can
    /// put a window from the first half hour of a day on the day before.
    pub fn add_windows(
        &mut self,
        class: ActivityClass,
        at_ms: i64,
        count: u32,
        confidence_sum: f64,
    ) {
        if count == 0 {
            return;
        }
        let i = index(class);
        self.windows[i] += u64::from(count);
        self.confidence_sum[i] += confidence_sum;
        let date = local_date(&self.tz, at_ms);
        self.days.entry(date).or_default().windows[i] += u64::from(count);
    }

    /// Spans of `class` that overlap the range.
    pub fn add_spans(&mut self, class: ActivityClass, count: u32) {
        self.spans[index(class)] += u64::from(count);
    }

    /// Convenience: a whole stored hour bucket (caller guarantees the hour lies inside the
    /// range): add_time(class, hour_start, totals.duration_ms) + add_windows(..) +
    /// add_spans(class, totals.spans_started).
    pub fn add_hour(&mut self, hour_start_ms: i64, class: ActivityClass, totals: &HourTotals) {
        self.add_time(class, hour_start_ms, totals.duration_ms);
        self.add_windows(class, hour_start_ms, totals.windows, totals.confidence_sum);
        self.add_spans(class, totals.spans_started);
    }

    /// A stored window clipped to [clip_start, clip_end) (used for hours only partly inside the
    /// range): its time inside the clip split by hour via add_time; counted as a window only if
    /// its start lies in [clip_start, clip_end), so a window straddling the edge of a range is
    /// counted in exactly one of two adjacent ranges. Spans are not counted here: the caller
    /// knows which spans overlap the range and reports them with [`Self::add_spans`].
    pub fn add_window_clipped(&mut self, w: &WindowRecord, clip_start_ms: i64, clip_end_ms: i64) {
        let start = w.start_ms.max(clip_start_ms);
        let end = w.end_ms.min(clip_end_ms);
        for (_, piece_start, piece_ms) in split_by_hour(start, end) {
            self.add_time(w.class, piece_start, piece_ms);
        }
        if (clip_start_ms..clip_end_ms).contains(&w.start_ms) {
            self.add_windows(w.class, w.start_ms, 1, f64::from(w.confidence));
        }
    }

    pub fn finish(self) -> Statistics {
        let observed_ms: i64 = self.time_ms.iter().sum();
        let classes = ActivityClass::ALL
            .into_iter()
            .map(|class| {
                let i = index(class);
                let total_s = ms_to_s(self.time_ms[i]);
                ClassStats {
                    class,
                    windows: self.windows[i],
                    spans: self.spans[i],
                    total_s,
                    mean_span_s: (self.spans[i] > 0).then(|| total_s / self.spans[i] as f64),
                    share: if observed_ms > 0 {
                        self.time_ms[i] as f64 / observed_ms as f64
                    } else {
                        0.0
                    },
                    mean_confidence: (self.windows[i] > 0)
                        .then(|| (self.confidence_sum[i] / self.windows[i] as f64) as f32),
                }
            })
            .collect();

        let hourly = self
            .hourly_ms
            .iter()
            .enumerate()
            .map(|(hour, ms)| HourBucket {
                hour: hour as u8,
                seconds: ClassSeconds(ms.map(ms_to_s)),
            })
            .collect();

        let daily = self
            .row_dates()
            .into_iter()
            .flat_map(|date| {
                let day = self.days.get(&date).copied().unwrap_or_default();
                ActivityClass::ALL.into_iter().map(move |class| DailyRow {
                    date,
                    class,
                    seconds: ms_to_s(day.time_ms[index(class)]),
                    windows: day.windows[index(class)],
                })
            })
            .collect();

        let most_frequent = ActivityClass::ALL
            .into_iter()
            .map(|c| (c, self.time_ms[index(c)]))
            .filter(|&(_, ms)| ms > 0)
            .fold(
                None,
                |best: Option<(ActivityClass, i64)>, (c, ms)| match best {
                    Some((_, best_ms)) if best_ms >= ms => best,
                    _ => Some((c, ms)),
                },
            )
            .map(|(c, _)| c);

        let sum_s = |awake: bool| {
            ms_to_s(
                ActivityClass::ALL
                    .into_iter()
                    .filter(|&c| is_awake_activity(c) == awake)
                    .map(|c| self.time_ms[index(c)])
                    .sum(),
            )
        };
        let windows: u64 = self.windows.iter().sum();
        let confidence_sum: f64 = self.confidence_sum.iter().sum();

        Statistics {
            start_ms: self.start_ms,
            end_ms: self.end_ms,
            classes,
            hourly,
            daily,
            most_frequent,
            observed_s: ms_to_s(observed_ms),
            active_s: sum_s(true),
            inactive_s: sum_s(false),
            mean_confidence: (windows > 0).then(|| (confidence_sum / windows as f64) as f32),
            windows,
        }
    }

    /// The days that get daily rows: the range's local days (unless there are too many), plus
    /// any day that got data.
    fn row_dates(&self) -> BTreeSet<NaiveDate> {
        let mut dates: BTreeSet<NaiveDate> = self.days.keys().copied().collect();
        if self.end_ms > self.start_ms {
            let first = local_date(&self.tz, self.start_ms);
            let last = local_date(&self.tz, self.end_ms - 1);
            if (last - first).num_days() < MAX_DAILY_DAYS {
                dates.extend(first.iter_days().take_while(|d| *d <= last));
            }
        }
        dates
    }
}

/// Sitting, reading, phoning, talking, busy: the person is up and doing something.
fn is_awake_activity(class: ActivityClass) -> bool {
    !matches!(class, ActivityClass::Asleep | ActivityClass::Inactive)
}

/// Position in [`ActivityClass::ALL`]; the enum's discriminants follow that order (a test checks).
fn index(class: ActivityClass) -> usize {
    class as usize
}

fn ms_to_s(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

fn clamp_time(ms: i64) -> i64 {
    ms.clamp(-MAX_TIME_MS, MAX_TIME_MS)
}

/// The UTC calendar time of `ms` (clamped to [`MAX_TIME_MS`]).
fn naive_utc(ms: i64) -> NaiveDateTime {
    DateTime::from_timestamp_millis(clamp_time(ms))
        .expect("MAX_TIME_MS is within chrono's range")
        .naive_utc()
}

/// The date of a "local milliseconds" value: UTC ms shifted by the zone's offset.
fn date_of(local_ms: i64) -> NaiveDate {
    naive_utc(local_ms).date()
}

/// The zone's offset from UTC at the instant `ms`, in milliseconds.
fn offset_ms<Tz: TimeZone>(tz: &Tz, ms: i64) -> i64 {
    let offset = tz.offset_from_utc_datetime(&naive_utc(ms)).fix();
    i64::from(offset.local_minus_utc()) * 1000
}

/// The local calendar date at the instant `ms`.
fn local_date<Tz: TimeZone>(tz: &Tz, ms: i64) -> NaiveDate {
    tz.from_utc_datetime(&naive_utc(ms)).date_naive()
}

/// The earliest instant of a local time, or `None` where it does not exist (a DST gap).
fn earliest_ms<Tz: TimeZone>(local: MappedLocalTime<DateTime<Tz>>) -> Option<i64> {
    match local {
        MappedLocalTime::Single(t) => Some(t.timestamp_millis()),
        MappedLocalTime::Ambiguous(a, b) => Some(a.timestamp_millis().min(b.timestamp_millis())),
        MappedLocalTime::None => None,
    }
}

/// The first instant of a local calendar day. Midnight can repeat (clocks went back over it:
/// take the first) or not exist (clocks jumped over it, as in zones that change at 00:00: take
/// the first local minute that exists, which is the instant of the jump). Samoa once skipped a
/// whole day, so the search covers two days.
fn local_midnight<Tz: TimeZone>(date: NaiveDate, tz: &Tz) -> i64 {
    let midnight = date.and_time(NaiveTime::MIN);
    (0..=2 * 24 * 60)
        .find_map(|minute| {
            earliest_ms(tz.from_local_datetime(&(midnight + TimeDelta::minutes(minute))))
        })
        // No zone has such a gap; fall back to reading the date as UTC.
        .unwrap_or_else(|| midnight.and_utc().timestamp_millis())
}

const TIME_FORMATS: &str = "Unix milliseconds (1700000000000), an RFC 3339 time with an offset \
     (2026-11-21T10:00:00Z or 2026-11-21T10:00:00+01:00) or a date (2026-11-21, local midnight)";

/// Why a query parameter was rejected; the message says what was expected, because it goes back
/// to the person who typed the URL.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ParamError {
    #[error("empty time; expected {formats}", formats = TIME_FORMATS)]
    EmptyTime,
    #[error("unrecognised time {0:?}; expected {formats}", formats = TIME_FORMATS)]
    BadTime(String),
    #[error("time {0:?} has no UTC offset; add one, as in {0}Z or {0}+01:00")]
    MissingOffset(String),
    #[error(
        "invalid time {input:?} ({reason}); expected an RFC 3339 time such as 2026-11-21T10:00:00Z"
    )]
    InvalidTime { input: String, reason: String },
    #[error("invalid date {0:?}; expected a calendar date YYYY-MM-DD such as 2026-11-21")]
    InvalidDate(String),
    #[error(
        "time {0:?} is out of range; expected Unix milliseconds within ±{max}",
        max = MAX_TIME_MS
    )]
    OutOfRange(String),
    #[error("unknown period {0:?}; expected one of day, week, month, year")]
    UnknownPeriod(String),
}

/// A time given as Unix milliseconds ("1700000000000", may be negative), RFC 3339 / ISO-8601
/// with offset ("2026-11-21T10:00:00Z", "2026-11-21T10:00:00+01:00", fractional seconds
/// allowed), or a date "2026-11-21" (local midnight in tz). A date and time without an offset is
/// refused rather than guessed: on the day clocks go back it names two instants.
pub fn parse_time<Tz: TimeZone>(s: &str, tz: &Tz) -> Result<i64, ParamError> {
    let s = s.trim();
    if s.is_empty() {
        return Err(ParamError::EmptyTime);
    }
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return match s.parse::<i64>() {
            Ok(ms) if (-MAX_TIME_MS..=MAX_TIME_MS).contains(&ms) => Ok(ms),
            _ => Err(ParamError::OutOfRange(s.to_string())),
        };
    }
    let date_part = s.get(..10).unwrap_or(s);
    if !looks_like_date(date_part) {
        return Err(ParamError::BadTime(s.to_string()));
    }
    if s.len() == date_part.len() {
        let date = NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map_err(|_| ParamError::InvalidDate(s.to_string()))?;
        return Ok(local_midnight(date, tz));
    }
    if !matches!(s.as_bytes()[10], b'T' | b't' | b' ') {
        return Err(ParamError::BadTime(s.to_string()));
    }
    match DateTime::parse_from_rfc3339(s) {
        Ok(t) => Ok(t.timestamp_millis()),
        Err(e) => {
            let naive = [
                "%Y-%m-%dT%H:%M:%S%.f",
                "%Y-%m-%d %H:%M:%S%.f",
                "%Y-%m-%dT%H:%M",
            ]
            .iter()
            .any(|f| NaiveDateTime::parse_from_str(s, f).is_ok());
            if naive {
                Err(ParamError::MissingOffset(s.to_string()))
            } else {
                Err(ParamError::InvalidTime {
                    input: s.to_string(),
                    reason: e.to_string(),
                })
            }
        }
    }
}

/// `dddd-dd-dd`: shaped like a date, whether or not it is a real one.
fn looks_like_date(s: &str) -> bool {
    s.len() == 10
        && s.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            _ => b.is_ascii_digit(),
        })
}

/// A calendar period, as in "this week".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Period {
    Day,
    Week,
    Month,
    Year,
}

impl FromStr for Period {
    type Err = ParamError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "day" => Ok(Self::Day),
            "week" => Ok(Self::Week),
            "month" => Ok(Self::Month),
            "year" => Ok(Self::Year),
            _ => Err(ParamError::UnknownPeriod(s.to_string())),
        }
    }
}

/// The calendar period containing the local time `at_ms`: day = local midnight..next midnight,
/// week = Monday 00:00 .. next Monday, month = 1st .. 1st of next month, year = Jan 1 .. next
/// Jan 1; returned as (start_ms, end_ms) UTC ms. Both ends come from the zone's own offsets at
/// those midnights, so a day with a DST change is 23 or 25 hours long; a midnight that does not
/// exist starts the day at the earliest valid instant after it. Times beyond [`MAX_TIME_MS`] are
/// clamped.
pub fn period_range<Tz: TimeZone>(period: Period, at_ms: i64, tz: &Tz) -> (i64, i64) {
    let date = local_date(tz, at_ms);
    let (first, next) = match period {
        Period::Day => (date, date + Days::new(1)),
        Period::Week => {
            let monday = date - Days::new(u64::from(date.weekday().num_days_from_monday()));
            (monday, monday + Days::new(7))
        }
        Period::Month => {
            let first = date.with_day(1).expect("every month has a 1st");
            (first, first + Months::new(1))
        }
        Period::Year => {
            let first = date.with_ordinal(1).expect("every year has a day 1");
            (first, first + Months::new(12))
        }
    };
    (local_midnight(first, tz), local_midnight(next, tz))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::FixedOffset;
    use ActivityClass::*;

    const MIN: i64 = 60_000;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> i64 {
        NaiveDate::from_ymd_opt(y, mo, d)
            .unwrap()
            .and_hms_opt(h, mi, 0)
            .unwrap()
            .and_utc()
            .timestamp_millis()
    }

    fn win(start_ms: i64, end_ms: i64, class: ActivityClass, confidence: f32) -> WindowRecord {
        WindowRecord {
            start_ms,
            end_ms,
            class,
            confidence,
        }
    }

    fn east(hours: i32) -> FixedOffset {
        FixedOffset::east_opt(hours * 3600).unwrap()
    }

    fn approx(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-6
    }

    #[test]
    fn class_indices_follow_all_order() {
        for (i, c) in ActivityClass::ALL.into_iter().enumerate() {
            assert_eq!(index(c), i, "{c}");
        }
    }

    #[test]
    fn contiguous_windows_of_one_class_merge() {
        let spans = merge_spans(
            [
                win(0, 10_000, Reading, 0.5),
                win(10_000, 20_000, Reading, 0.7),
                win(20_000, 30_000, Reading, 0.9),
            ],
            1_000,
        );
        assert_eq!(spans.len(), 1);
        let s = &spans[0];
        assert_eq!(
            (s.start_ms, s.end_ms, s.class, s.windows),
            (0, 30_000, Reading, 3)
        );
        assert_eq!(s.duration_ms(), 30_000);
        assert!((s.mean_confidence() - 0.7).abs() < 1e-6);
    }

    #[test]
    fn class_change_and_long_gap_start_new_spans() {
        let spans = merge_spans(
            [
                win(0, 10_000, Reading, 0.5),
                win(10_000, 20_000, Busy, 0.5),
                // 5 s gap, allowed gap 2 s.
                win(25_000, 35_000, Busy, 0.5),
                // 2 s gap: allowed.
                win(37_000, 47_000, Busy, 0.5),
            ],
            2_000,
        );
        let shape: Vec<_> = spans
            .iter()
            .map(|s| (s.class, s.start_ms, s.end_ms, s.windows))
            .collect();
        assert_eq!(
            shape,
            vec![
                (Reading, 0, 10_000, 1),
                (Busy, 10_000, 20_000, 1),
                (Busy, 25_000, 47_000, 2),
            ]
        );
    }

    #[test]
    fn small_overlap_is_tolerated_but_out_of_order_is_not() {
        let span = Span::from_window(&win(10_000, 20_000, Asleep, 0.8));
        // Starts 400 ms before the span ends: clock jitter.
        assert!(span.accepts(&win(19_600, 29_600, Asleep, 0.8), 0));
        // Starts exactly 1 s before: still jitter.
        assert!(span.accepts(&win(19_000, 29_000, Asleep, 0.8), 0));
        // 1.5 s overlap: not the next window.
        assert!(!span.accepts(&win(18_500, 28_500, Asleep, 0.8), 0));
        // Starts before the span itself: out of order.
        assert!(!span.accepts(&win(9_000, 19_000, Asleep, 0.8), 60_000));
        // A short span (500 ms): the jitter allowance must not reach before its start.
        let short = Span::from_window(&win(10_000, 10_500, Asleep, 0.8));
        assert!(!short.accepts(&win(9_800, 10_800, Asleep, 0.8), 0));

        let mut span = span;
        span.extend(&win(19_600, 29_600, Asleep, 0.4));
        assert_eq!(
            (span.start_ms, span.end_ms, span.windows),
            (10_000, 29_600, 2)
        );
        assert!((span.mean_confidence() - 0.6).abs() < 1e-6);
        // A window inside the span does not shrink it.
        span.extend(&win(20_000, 25_000, Asleep, 0.6));
        assert_eq!((span.end_ms, span.windows), (29_600, 3));
    }

    #[test]
    fn empty_span_has_zero_mean_confidence() {
        let mut span = Span::from_window(&win(0, 1, Busy, 0.3));
        span.windows = 0;
        assert_eq!(span.mean_confidence(), 0.0);
    }

    #[test]
    fn hour_start_floors_negative_times() {
        assert_eq!(hour_start(0), 0);
        assert_eq!(hour_start(HOUR_MS - 1), 0);
        assert_eq!(hour_start(HOUR_MS), HOUR_MS);
        assert_eq!(hour_start(-1), -HOUR_MS);
        assert_eq!(hour_start(-HOUR_MS), -HOUR_MS);
        assert_eq!(hour_start(-HOUR_MS - 1), -2 * HOUR_MS);
        // 2026-11-21 10:37 UTC.
        assert_eq!(hour_start(1_795_255_200_000 + 37 * MIN), 1_795_255_200_000);
    }

    #[test]
    fn split_by_hour_cuts_at_utc_hours() {
        let h = HOUR_MS;
        // Inside one hour.
        assert_eq!(
            split_by_hour(10 * MIN, 20 * MIN),
            vec![(0, 10 * MIN, 10 * MIN)]
        );
        // Across two hours: 00:50..01:10.
        assert_eq!(
            split_by_hour(50 * MIN, h + 10 * MIN),
            vec![(0, 50 * MIN, 10 * MIN), (h, h, 10 * MIN)]
        );
        // Across three hours: 00:30..02:15.
        assert_eq!(
            split_by_hour(30 * MIN, 2 * h + 15 * MIN),
            vec![(0, 30 * MIN, 30 * MIN), (h, h, h), (2 * h, 2 * h, 15 * MIN)]
        );
        // Exact boundaries: no empty pieces.
        assert_eq!(split_by_hour(h, 2 * h), vec![(h, h, h)]);
        assert_eq!(split_by_hour(h, 3 * h), vec![(h, h, h), (2 * h, 2 * h, h)]);
        // Before 1970: 23:30..00:30 around the epoch.
        assert_eq!(
            split_by_hour(-1_800_000, 1_800_000),
            vec![(-h, -1_800_000, 30 * MIN), (0, 0, 30 * MIN)]
        );
        // Empty and reversed ranges.
        assert!(split_by_hour(h, h).is_empty());
        assert!(split_by_hour(2 * h, h).is_empty());
    }

    #[test]
    fn window_rollup_counts_windows_in_the_start_hour_only() {
        let h = HOUR_MS;
        // 00:55..01:05 (10 min), 5 minutes in each hour.
        let w = win(55 * MIN, h + 5 * MIN, OnPhone, 0.75);
        let started = window_rollup(&w, true);
        assert_eq!(
            started,
            vec![
                (
                    0,
                    HourTotals {
                        duration_ms: 5 * MIN,
                        windows: 1,
                        spans_started: 1,
                        confidence_sum: 0.75,
                    }
                ),
                (
                    h,
                    HourTotals {
                        duration_ms: 5 * MIN,
                        ..HourTotals::default()
                    }
                ),
            ]
        );
        let continued = window_rollup(&w, false);
        assert_eq!(continued[0].1.spans_started, 0);
        assert_eq!(continued[0].1.windows, 1);
        // A window without duration is still one window in its start hour.
        let empty = window_rollup(&win(h + 1, h + 1, OnPhone, 0.5), false);
        assert_eq!(
            empty,
            vec![(
                h,
                HourTotals {
                    windows: 1,
                    confidence_sum: 0.5,
                    ..HourTotals::default()
                }
            )]
        );
    }

    #[test]
    fn hour_totals_add_and_round_trip_bytes() {
        let mut a = HourTotals {
            duration_ms: 1_200_000,
            windows: 2,
            spans_started: 1,
            confidence_sum: 1.25,
        };
        a.add(&HourTotals {
            duration_ms: -5,
            windows: 3,
            spans_started: 0,
            confidence_sum: 0.5,
        });
        assert_eq!(
            a,
            HourTotals {
                duration_ms: 1_199_995,
                windows: 5,
                spans_started: 1,
                confidence_sum: 1.75,
            }
        );
        let bytes = a.to_bytes();
        assert_eq!(&bytes[0..8], &1_199_995i64.to_le_bytes());
        assert_eq!(&bytes[8..12], &[5, 0, 0, 0]);
        assert_eq!(&bytes[12..16], &[1, 0, 0, 0]);
        assert_eq!(&bytes[16..24], &1.75f64.to_le_bytes());
        assert_eq!(HourTotals::from_bytes(&bytes), Some(a));
        assert_eq!(HourTotals::from_bytes(&bytes[..23]), None);
        assert_eq!(HourTotals::from_bytes(&[0; 25]), None);
    }

    /// A day in +02:00 (local 2026-11-21), 10-minute windows:
    /// 08:00–09:30 at_table (9 windows, 0.8), 09:30–10:00 reading (3, 0.5), 10:00–10:20 inactive
    /// (2, 0.6), 23:00–00:00 asleep (6, 0.9), a 10-minute hole, 00:10–01:10 asleep (6, 0.9).
    fn day_history() -> Vec<WindowRecord> {
        let mut out = Vec::new();
        let mut run = |start: i64, n: i64, class, conf| {
            for k in 0..n {
                out.push(win(
                    start + k * 10 * MIN,
                    start + (k + 1) * 10 * MIN,
                    class,
                    conf,
                ));
            }
        };
        run(utc(2026, 11, 21, 6, 0), 9, AtTable, 0.8);
        run(utc(2026, 11, 21, 7, 30), 3, Reading, 0.5);
        run(utc(2026, 11, 21, 8, 0), 2, Inactive, 0.6);
        run(utc(2026, 11, 21, 21, 0), 6, Asleep, 0.9);
        run(utc(2026, 11, 21, 22, 10), 6, Asleep, 0.9);
        out
    }

    /// Local 2026-11-21 00:00 .. 2026-11-24 00:00 in +02:00: three days, the last one empty.
    fn day_range() -> (i64, i64) {
        (utc(2026, 11, 20, 22, 0), utc(2026, 11, 23, 22, 0))
    }

    /// Feeds the history the way the store does: windows into hour rollups, rollups into the
    /// accumulator.
    fn stats_from_rollups(windows: &[WindowRecord]) -> Statistics {
        let mut hours: BTreeMap<(i64, ActivityClass), HourTotals> = BTreeMap::new();
        let mut span: Option<Span> = None;
        for w in windows {
            let starts_span = match &mut span {
                Some(s) if s.accepts(w, 60_000) => {
                    s.extend(w);
                    false
                }
                _ => {
                    span = Some(Span::from_window(w));
                    true
                }
            };
            for (hour, totals) in window_rollup(w, starts_span) {
                hours.entry((hour, w.class)).or_default().add(&totals);
            }
        }
        let (start, end) = day_range();
        let mut acc = StatsAccumulator::new(start, end, east(2));
        for ((hour, class), totals) in &hours {
            acc.add_hour(*hour, *class, totals);
        }
        acc.finish()
    }

    #[test]
    fn statistics_of_a_hand_built_day() {
        let st = stats_from_rollups(&day_history());
        let (start, end) = day_range();
        assert_eq!((st.start_ms, st.end_ms), (start, end));

        let class = |c: ActivityClass| st.classes[index(c)].clone();
        assert_eq!(st.classes.len(), 7);
        let asleep = class(Asleep);
        assert_eq!(
            (asleep.windows, asleep.spans, asleep.total_s),
            (12, 2, 7200.0)
        );
        assert_eq!(asleep.mean_span_s, Some(3600.0));
        assert!(approx(asleep.share, 7200.0 / 15600.0));
        assert!((asleep.mean_confidence.unwrap() - 0.9).abs() < 1e-6);
        let at_table = class(AtTable);
        assert_eq!(
            (at_table.windows, at_table.spans, at_table.total_s),
            (9, 1, 5400.0)
        );
        assert_eq!(at_table.mean_span_s, Some(5400.0));
        assert!(approx(at_table.share, 9.0 / 26.0));
        let reading = class(Reading);
        assert_eq!(
            (reading.windows, reading.spans, reading.total_s),
            (3, 1, 1800.0)
        );
        assert!((reading.mean_confidence.unwrap() - 0.5).abs() < 1e-6);
        let inactive = class(Inactive);
        assert_eq!((inactive.windows, inactive.total_s), (2, 1200.0));
        assert!(approx(inactive.share, 1.0 / 13.0));
        let busy = class(Busy);
        assert_eq!(
            (busy.windows, busy.spans, busy.total_s, busy.share),
            (0, 0, 0.0, 0.0)
        );
        assert_eq!((busy.mean_span_s, busy.mean_confidence), (None, None));

        assert_eq!(st.observed_s, 15600.0);
        assert_eq!(st.active_s, 7200.0);
        assert_eq!(st.inactive_s, 8400.0);
        assert_eq!(st.most_frequent, Some(Asleep));
        assert_eq!(st.windows, 26);
        // (12·0.9 + 9·0.8 + 3·0.5 + 2·0.6) / 26 = 20.7 / 26
        assert!((st.mean_confidence.unwrap() - 20.7 / 26.0).abs() < 1e-6);

        // Hourly, in local hours: UTC 06:00 is local 08:00.
        assert_eq!(st.hourly.len(), 24);
        let hour = |h: usize, c: ActivityClass| st.hourly[h].seconds.get(c);
        assert!(st
            .hourly
            .iter()
            .enumerate()
            .all(|(i, b)| b.hour as usize == i));
        assert_eq!(hour(8, AtTable), 3600.0);
        assert_eq!((hour(9, AtTable), hour(9, Reading)), (1800.0, 1800.0));
        assert_eq!(hour(10, Inactive), 1200.0);
        assert_eq!(hour(23, Asleep), 3600.0);
        assert_eq!(hour(0, Asleep), 3000.0);
        assert_eq!(hour(1, Asleep), 600.0);
        let filled = [0, 1, 8, 9, 10, 23];
        for (h, bucket) in st.hourly.iter().enumerate() {
            if !filled.contains(&h) {
                assert_eq!(bucket.seconds, ClassSeconds::default(), "hour {h}");
            }
        }

        // Daily, in local dates: the night is split at local midnight, not UTC midnight.
        assert_eq!(st.daily.len(), 3 * 7);
        let day = |d: u32| -> Vec<(ActivityClass, f64, u64)> {
            let date = NaiveDate::from_ymd_opt(2026, 11, d).unwrap();
            st.daily
                .iter()
                .filter(|r| r.date == date)
                .map(|r| (r.class, r.seconds, r.windows))
                .collect()
        };
        assert_eq!(
            day(21),
            vec![
                (Asleep, 3600.0, 6),
                (AtTable, 5400.0, 9),
                (Reading, 1800.0, 3),
                (OnPhone, 0.0, 0),
                (InConversation, 0.0, 0),
                (Busy, 0.0, 0),
                (Inactive, 1200.0, 2),
            ]
        );
        assert_eq!(day(22)[0], (Asleep, 3600.0, 6));
        assert!(day(22)[1..].iter().all(|&(_, s, w)| s == 0.0 && w == 0));
        let empty: Vec<_> = ActivityClass::ALL.iter().map(|&c| (c, 0.0, 0)).collect();
        assert_eq!(day(23), empty);
        // Rows are ordered by date, then in ALL order.
        let order: Vec<_> = st.daily.iter().map(|r| (r.date, index(r.class))).collect();
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(order, sorted);
    }

    #[test]
    fn clipped_windows_count_like_hour_rollups() {
        let history = day_history();
        let (start, end) = day_range();
        let mut acc = StatsAccumulator::new(start, end, east(2));
        for w in &history {
            acc.add_window_clipped(w, start, end);
        }
        for s in merge_spans(history.iter().copied(), 60_000) {
            acc.add_spans(s.class, 1);
        }
        let direct = acc.finish();
        let rolled = stats_from_rollups(&history);
        assert_eq!(direct.hourly, rolled.hourly);
        assert_eq!(direct.daily, rolled.daily);
        assert_eq!(direct.windows, rolled.windows);
        for (a, b) in direct.classes.iter().zip(&rolled.classes) {
            assert_eq!(
                (a.windows, a.spans, a.total_s),
                (b.windows, b.spans, b.total_s)
            );
        }
        let (a, b) = (
            direct.mean_confidence.unwrap(),
            rolled.mean_confidence.unwrap(),
        );
        assert!((a - b).abs() < 1e-6);
    }

    #[test]
    fn empty_accumulator_gives_zeros() {
        let st = StatsAccumulator::new(utc(2026, 11, 20, 22, 0), utc(2026, 11, 21, 22, 0), east(2))
            .finish();
        assert_eq!(st.classes.len(), 7);
        for (c, s) in ActivityClass::ALL.into_iter().zip(&st.classes) {
            assert_eq!(s.class, c);
            assert_eq!((s.windows, s.spans, s.total_s, s.share), (0, 0, 0.0, 0.0));
            assert_eq!((s.mean_span_s, s.mean_confidence), (None, None));
        }
        assert_eq!(st.hourly.len(), 24);
        assert!(st
            .hourly
            .iter()
            .all(|b| b.seconds == ClassSeconds::default()));
        assert_eq!(st.daily.len(), 7);
        let date = NaiveDate::from_ymd_opt(2026, 11, 21).unwrap();
        assert!(st
            .daily
            .iter()
            .all(|r| r.date == date && r.seconds == 0.0 && r.windows == 0));
        assert_eq!(st.most_frequent, None);
        assert_eq!(st.mean_confidence, None);
        assert_eq!(
            (st.observed_s, st.active_s, st.inactive_s, st.windows),
            (0.0, 0.0, 0.0, 0)
        );
    }

    #[test]
    fn most_frequent_tie_goes_to_the_earlier_class() {
        let mut acc = StatsAccumulator::new(0, HOUR_MS, east(0));
        acc.add_time(OnPhone, 0, MIN);
        acc.add_time(Reading, MIN, MIN);
        assert_eq!(acc.finish().most_frequent, Some(Reading));
    }

    #[test]
    fn add_window_clipped_counts_time_inside_and_window_at_start() {
        let h = HOUR_MS;
        // 10:50..11:10 UTC, in UTC.
        let w = win(10 * h + 50 * MIN, 11 * h + 10 * MIN, Busy, 0.4);

        // The later hour only: 10 minutes of time, but the window started before the clip.
        let mut acc = StatsAccumulator::new(11 * h, 12 * h, east(0));
        acc.add_window_clipped(&w, 11 * h, 12 * h);
        let st = acc.finish();
        assert_eq!(st.classes[index(Busy)].total_s, 600.0);
        assert_eq!(st.hourly[11].seconds.get(Busy), 600.0);
        assert_eq!(st.hourly[10].seconds.get(Busy), 0.0);
        assert_eq!((st.windows, st.mean_confidence), (0, None));

        // The earlier hour: 10 minutes, and the window.
        let mut acc = StatsAccumulator::new(10 * h, 11 * h, east(0));
        acc.add_window_clipped(&w, 10 * h, 11 * h);
        let st = acc.finish();
        assert_eq!(st.hourly[10].seconds.get(Busy), 600.0);
        assert_eq!(st.hourly[11].seconds.get(Busy), 0.0);
        assert_eq!(st.classes[index(Busy)].windows, 1);
        assert!((st.mean_confidence.unwrap() - 0.4).abs() < 1e-6);

        // A clip wider than the window: all of it, split across the two hours.
        let mut acc = StatsAccumulator::new(0, 24 * h, east(0));
        acc.add_window_clipped(&w, 0, 24 * h);
        let st = acc.finish();
        assert_eq!(st.observed_s, 1200.0);
        assert_eq!(st.windows, 1);

        // Disjoint: nothing.
        let mut acc = StatsAccumulator::new(12 * h, 13 * h, east(0));
        acc.add_window_clipped(&w, 12 * h, 13 * h);
        let st = acc.finish();
        assert_eq!((st.observed_s, st.windows), (0.0, 0));
    }

    #[test]
    fn half_hour_offsets_split_utc_hours_between_local_hours() {
        // +05:30: UTC 10:00–11:00 is local 15:30–16:30.
        let tz = FixedOffset::east_opt(5 * 3600 + 1800).unwrap();
        let mut acc = StatsAccumulator::new(0, 24 * HOUR_MS, tz);
        acc.add_time(Reading, 10 * HOUR_MS, HOUR_MS);
        let st = acc.finish();
        assert_eq!(st.hourly[15].seconds.get(Reading), 1800.0);
        assert_eq!(st.hourly[16].seconds.get(Reading), 1800.0);
        assert_eq!(st.hourly[10].seconds.get(Reading), 0.0);
    }

    #[test]
    fn long_ranges_list_only_days_with_data() {
        // 1970-01-01 .. 1981-01-01 (4018 days) in UTC, with data on one day.
        let end = utc(1981, 1, 1, 0, 0);
        let mut acc = StatsAccumulator::new(0, end, east(0));
        acc.add_time(Busy, utc(1975, 6, 1, 12, 0), MIN);
        let st = acc.finish();
        assert_eq!(st.daily.len(), 7);
        assert!(st
            .daily
            .iter()
            .all(|r| r.date == NaiveDate::from_ymd_opt(1975, 6, 1).unwrap()));
        assert_eq!(st.daily[index(Busy)].seconds, 60.0);

        // 3700 days exactly still get every day.
        let days = 3_700;
        let st = StatsAccumulator::new(0, days * 24 * HOUR_MS, east(0)).finish();
        assert_eq!(st.daily.len(), 3_700 * 7);
    }

    #[test]
    fn statistics_serialise_to_documented_shape() {
        let mut acc = StatsAccumulator::new(0, 24 * HOUR_MS, east(0));
        acc.add_hour(
            0,
            Asleep,
            &HourTotals {
                duration_ms: 90_000,
                windows: 2,
                spans_started: 1,
                confidence_sum: 1.5,
            },
        );
        let st = acc.finish();
        let json = serde_json::to_value(&st).unwrap();
        assert_eq!(
            json["hourly"][0],
            serde_json::json!({"hour": 0, "seconds": {
                "asleep": 90.0, "at_table": 0.0, "reading": 0.0, "on_phone": 0.0,
                "in_conversation": 0.0, "busy": 0.0, "inactive": 0.0}})
        );
        assert_eq!(
            json["daily"][0],
            serde_json::json!({
                "date": "1970-01-01", "class": "asleep", "seconds": 90.0, "windows": 2})
        );
        assert_eq!(
            json["classes"][0],
            serde_json::json!({"class": "asleep", "windows": 2, "spans": 1, "total_s": 90.0,
                "mean_span_s": 90.0, "share": 1.0, "mean_confidence": 0.75})
        );
        assert_eq!(json["classes"][1]["mean_span_s"], serde_json::Value::Null);
        assert_eq!(json["most_frequent"], "asleep");
        assert_eq!(json["mean_confidence"], 0.75);
        let back: Statistics = serde_json::from_value(json).unwrap();
        assert_eq!(back, st);
    }

    #[test]
    fn parse_time_reads_each_format() {
        let tz = east(2);
        assert_eq!(parse_time("1700000000000", &tz), Ok(1_700_000_000_000));
        assert_eq!(parse_time("-5", &tz), Ok(-5));
        assert_eq!(parse_time(" 0 ", &tz), Ok(0));
        assert_eq!(
            parse_time("2026-11-21T10:00:00Z", &tz),
            Ok(1_795_255_200_000)
        );
        assert_eq!(
            parse_time("2026-11-21T10:00:00+01:00", &tz),
            Ok(1_795_255_200_000 - HOUR_MS)
        );
        assert_eq!(
            parse_time("2026-11-21T10:00:00.250Z", &tz),
            Ok(1_795_255_200_250)
        );
        assert_eq!(
            parse_time("2026-11-21 10:00:00-00:30", &tz),
            Ok(1_795_255_200_000 + 30 * MIN)
        );
        // A date is local midnight: 2026-11-21 00:00 +02:00 = 2026-11-20 22:00 UTC.
        assert_eq!(parse_time("2026-11-21", &tz), Ok(1_795_212_000_000));
        assert_eq!(parse_time("2026-11-21", &east(0)), Ok(1_795_219_200_000));
    }

    #[test]
    fn parse_time_explains_errors() {
        let tz = east(0);
        assert_eq!(parse_time("", &tz), Err(ParamError::EmptyTime));
        assert_eq!(
            parse_time("yesterday", &tz),
            Err(ParamError::BadTime("yesterday".into()))
        );
        assert_eq!(
            parse_time("2026-13-01", &tz),
            Err(ParamError::InvalidDate("2026-13-01".into()))
        );
        assert_eq!(
            parse_time("2026-11-21T10:00:00", &tz),
            Err(ParamError::MissingOffset("2026-11-21T10:00:00".into()))
        );
        assert!(matches!(
            parse_time("2026-11-21T25:00:00Z", &tz),
            Err(ParamError::InvalidTime { .. })
        ));
        assert_eq!(
            parse_time("9223372036854775807", &tz),
            Err(ParamError::OutOfRange("9223372036854775807".into()))
        );
        assert_eq!(
            parse_time("99999999999999999999", &tz),
            Err(ParamError::OutOfRange("99999999999999999999".into()))
        );
        for bad in [
            "",
            "yesterday",
            "2026-13-01",
            "2026-11-21T10:00:00",
            "2026-11-21x",
        ] {
            let msg = parse_time(bad, &tz).unwrap_err().to_string();
            assert!(msg.contains("expected") || msg.contains("add one"), "{msg}");
        }
        let msg = parse_time("yesterday", &tz).unwrap_err().to_string();
        assert!(
            msg.contains("RFC 3339") && msg.contains("2026-11-21"),
            "{msg}"
        );
    }

    #[test]
    fn periods_parse_by_name() {
        assert_eq!("day".parse(), Ok(Period::Day));
        assert_eq!("week".parse(), Ok(Period::Week));
        assert_eq!("month".parse(), Ok(Period::Month));
        assert_eq!("year".parse(), Ok(Period::Year));
        let err = "fortnight".parse::<Period>().unwrap_err();
        assert_eq!(err, ParamError::UnknownPeriod("fortnight".into()));
        assert_eq!(
            err.to_string(),
            "unknown period \"fortnight\"; expected one of day, week, month, year"
        );
    }

    #[test]
    fn period_range_in_a_fixed_offset() {
        let tz = east(2);
        // Saturday 2026-11-21 10:00 local.
        let at = utc(2026, 11, 21, 8, 0);
        assert_eq!(
            period_range(Period::Day, at, &tz),
            (utc(2026, 11, 20, 22, 0), utc(2026, 11, 21, 22, 0))
        );
        // Week: Monday 16th .. Monday 23rd.
        assert_eq!(
            period_range(Period::Week, at, &tz),
            (utc(2026, 11, 15, 22, 0), utc(2026, 11, 22, 22, 0))
        );
        assert_eq!(
            period_range(Period::Month, at, &tz),
            (utc(2026, 10, 31, 22, 0), utc(2026, 11, 30, 22, 0))
        );
        assert_eq!(
            period_range(Period::Year, at, &tz),
            (utc(2025, 12, 31, 22, 0), utc(2026, 12, 31, 22, 0))
        );
        // Local Monday 00:00 is UTC Sunday 22:00: the week is the one starting that Monday.
        let monday = utc(2026, 11, 15, 22, 0);
        assert_eq!(
            period_range(Period::Week, monday, &tz),
            (monday, utc(2026, 11, 22, 22, 0))
        );
        // One millisecond earlier it is still Sunday, the previous week.
        assert_eq!(
            period_range(Period::Week, monday - 1, &tz),
            (utc(2026, 11, 8, 22, 0), monday)
        );
        // December rolls into next year; UTC Dec 31 23:00 is already January in +02:00.
        assert_eq!(
            period_range(Period::Month, utc(2026, 12, 15, 0, 0), &tz),
            (utc(2026, 11, 30, 22, 0), utc(2026, 12, 31, 22, 0))
        );
        assert_eq!(
            period_range(Period::Year, utc(2026, 12, 31, 23, 0), &tz),
            (utc(2026, 12, 31, 22, 0), utc(2027, 12, 31, 22, 0))
        );
        // Before 1970 and in a negative offset.
        assert_eq!(
            period_range(Period::Day, -1, &east(-5)),
            (utc(1969, 12, 31, 5, 0), utc(1970, 1, 1, 5, 0))
        );
        // Far-out times are clamped, not a panic.
        let (s, e) = period_range(Period::Year, i64::MAX, &tz);
        assert!(s < e && e > MAX_TIME_MS - 366 * 24 * HOUR_MS);
    }

    /// A zone that changes its clocks at midnight (as some zones do): +01:00, then +02:00 from
    /// 2026-03-29 00:00 local (clocks jump to 01:00), back to +01:00 at 2026-10-25 01:00 local
    /// (clocks go back to 00:00, so that midnight happens twice). chrono's `Local` depends on
    /// the machine, so DST is tested with this deterministic zone instead.
    #[derive(Clone, Debug)]
    struct MidnightDst;

    impl MidnightDst {
        fn offset_at(utc_ms: i64) -> FixedOffset {
            let summer = utc(2026, 3, 28, 23, 0)..utc(2026, 10, 24, 23, 0);
            east(if summer.contains(&utc_ms) { 2 } else { 1 })
        }
    }

    impl TimeZone for MidnightDst {
        type Offset = FixedOffset;

        fn from_offset(_: &FixedOffset) -> Self {
            MidnightDst
        }

        fn offset_from_local_date(&self, local: &NaiveDate) -> MappedLocalTime<FixedOffset> {
            self.offset_from_local_datetime(&local.and_time(NaiveTime::MIN))
        }

        fn offset_from_local_datetime(
            &self,
            local: &NaiveDateTime,
        ) -> MappedLocalTime<FixedOffset> {
            let local_ms = local.and_utc().timestamp_millis();
            let fits: Vec<FixedOffset> = [east(1), east(2)]
                .into_iter()
                .filter(|o| Self::offset_at(local_ms - i64::from(o.local_minus_utc()) * 1000) == *o)
                .collect();
            match fits[..] {
                [o] => MappedLocalTime::Single(o),
                [a, b] => MappedLocalTime::Ambiguous(a, b),
                _ => MappedLocalTime::None,
            }
        }

        fn offset_from_utc_date(&self, utc: &NaiveDate) -> FixedOffset {
            self.offset_from_utc_datetime(&utc.and_time(NaiveTime::MIN))
        }

        fn offset_from_utc_datetime(&self, utc: &NaiveDateTime) -> FixedOffset {
            Self::offset_at(utc.and_utc().timestamp_millis())
        }
    }

    #[test]
    fn period_range_across_dst_changes() {
        let tz = MidnightDst;
        // Spring: local 2026-03-29 00:00 does not exist; the day starts at the jump
        // (UTC 03-28 23:00 = local 01:00 +02:00) and is 23 hours long.
        let (s, e) = period_range(Period::Day, utc(2026, 3, 29, 10, 0), &tz);
        assert_eq!((s, e), (utc(2026, 3, 28, 23, 0), utc(2026, 3, 29, 22, 0)));
        assert_eq!(e - s, 23 * HOUR_MS);
        // The day before is a normal 24 hours, ending where the short day starts.
        assert_eq!(
            period_range(Period::Day, utc(2026, 3, 28, 10, 0), &tz),
            (utc(2026, 3, 27, 23, 0), utc(2026, 3, 28, 23, 0))
        );
        assert_eq!(parse_time("2026-03-29", &tz), Ok(utc(2026, 3, 28, 23, 0)));
        // Autumn: local 2026-10-25 00:00 happens twice; the day starts at the first
        // (UTC 10-24 22:00, +02:00) and is 25 hours long.
        let (s, e) = period_range(Period::Day, utc(2026, 10, 25, 10, 0), &tz);
        assert_eq!((s, e), (utc(2026, 10, 24, 22, 0), utc(2026, 10, 25, 23, 0)));
        assert_eq!(e - s, 25 * HOUR_MS);
        // March: 1st at +01:00, April 1st at +02:00.
        assert_eq!(
            period_range(Period::Month, utc(2026, 3, 15, 0, 0), &tz),
            (utc(2026, 2, 28, 23, 0), utc(2026, 3, 31, 22, 0))
        );
    }

    #[test]
    fn statistics_follow_dst_offsets() {
        let tz = MidnightDst;
        // UTC 03-28 22:00–23:30: local 23:00–24:00 on the 28th (+01:00), then the clocks jump
        // and UTC 23:00–23:30 is local 01:00–01:30 on the 29th (+02:00).
        let (start, end) = (utc(2026, 3, 27, 23, 0), utc(2026, 3, 29, 22, 0));
        let mut acc = StatsAccumulator::new(start, end, tz);
        let w = win(
            utc(2026, 3, 28, 22, 0),
            utc(2026, 3, 28, 23, 30),
            Asleep,
            1.0,
        );
        acc.add_window_clipped(&w, start, end);
        let st = acc.finish();
        assert_eq!(st.hourly[23].seconds.get(Asleep), 3600.0);
        assert_eq!(st.hourly[0].seconds.get(Asleep), 0.0);
        assert_eq!(st.hourly[1].seconds.get(Asleep), 1800.0);
        assert_eq!(st.daily.len(), 2 * 7);
        assert_eq!(
            st.daily[index(Asleep)].date,
            NaiveDate::from_ymd_opt(2026, 3, 28).unwrap()
        );
        assert_eq!(
            (
                st.daily[index(Asleep)].seconds,
                st.daily[index(Asleep)].windows
            ),
            (3600.0, 1)
        );
        assert_eq!(st.daily[7 + index(Asleep)].seconds, 1800.0);
    }
}
