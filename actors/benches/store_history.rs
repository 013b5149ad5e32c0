//! How the sled store copes with a year of history: import time, size on disk, reopen time and
//! the HTTP API's queries (statistics, activities, spans) over a year, a month and a day.
//!
//! Two synthetic histories, each one year long in UTC+1: 300-s windows (the default, 105,120
//! windows) and 10-s windows (3,153,600 windows). The classes follow a daily schedule with a
//! deterministic ~3% flip to a neighbouring class, and every window carries the video and audio
//! summaries and rule scores the live daemon stores.
//!
//! Run: `cargo bench -p cav-actors --bench store_history`. Environment:
//! - `CAV_BENCH_HISTORIES=300,10`: which window lengths (seconds) to run; default both.
//! - `CAV_BENCH_QUICK=1`: histories with windows under 300 s cover 30 days instead of a year.
//! - `CAV_BENCH_DIR`: where the temporary stores go (default: the system temp dir).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cav_actors::messages::Classification;
use cav_actors::store::{Store, StoreError, StoredClassification, TimeRange};
use cav_core::window::{AudioSummary, VideoSummary, WindowSummary};
use cav_core::{ActivityClass, Classifier, RuleClassifier, Timestamp};
use chrono::FixedOffset;

use ActivityClass::*;

/// 2023-01-01T00:00:00Z: a non-leap year, so 365 days of windows.
const YEAR_START_MS: i64 = 1_672_531_200_000;
const DAY_MS: i64 = 86_400_000;
const MINUTE_MS: i64 = 60_000;
/// The person's zone (UTC+1): the schedule and the statistics use it.
const TZ_OFFSET_S: i32 = 3600;
const SPAN_GAP_MS: i64 = 60_000;
/// Windows built and imported per `import_windows` call.
const CHUNK: usize = 100_000;
/// Timed runs per query (after one warm-up); the median is reported.
const RUNS: usize = 5;

/// A tiny deterministic generator (Knuth's MMIX LCG); the high bits are the usable ones.
struct Lcg(u64);

impl Lcg {
    fn next_u32(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) as u32
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f32 {
        (self.next_u32() >> 8) as f32 / (1u32 << 23) as f32
    }
}

/// The class the schedule gives a local minute of the day.
fn scheduled(minute: i64) -> ActivityClass {
    const SCHEDULE: &[(i64, ActivityClass)] = &[
        // (start minute, class) in order; each runs until the next one starts.
        (0, Asleep),
        (7 * 60, AtTable),
        (7 * 60 + 30, Busy),
        (8 * 60 + 15, Inactive),
        (9 * 60 + 30, Reading),
        (10 * 60 + 30, OnPhone),
        (10 * 60 + 45, Inactive),
        (12 * 60, AtTable),
        (12 * 60 + 45, InConversation),
        (13 * 60 + 15, Inactive),
        (15 * 60, OnPhone),
        (15 * 60 + 20, Reading),
        (16 * 60 + 30, Busy),
        (17 * 60 + 30, Inactive),
        (19 * 60, AtTable),
        (19 * 60 + 45, InConversation),
        (20 * 60 + 30, OnPhone),
        (20 * 60 + 45, Reading),
        (22 * 60 + 30, Busy),
        (23 * 60, Asleep),
    ];
    SCHEDULE
        .iter()
        .rev()
        .find(|(start, _)| *start <= minute)
        .map(|&(_, c)| c)
        .unwrap_or(Asleep)
}

/// A class the classifier plausibly confuses with `class`.
fn neighbour(class: ActivityClass, pick: bool) -> ActivityClass {
    let (a, b) = match class {
        Asleep => (Inactive, Inactive),
        AtTable => (InConversation, Busy),
        Reading => (Inactive, OnPhone),
        OnPhone => (Reading, InConversation),
        InConversation => (AtTable, OnPhone),
        Busy => (Inactive, AtTable),
        Inactive => (Reading, Busy),
    };
    if pick {
        a
    } else {
        b
    }
}

/// Plausible camera and microphone summaries of a window of `class` lasting `window_s`
/// (1-s spans, 5 analysed frames a second).
fn summaries(class: ActivityClass, window_s: i64) -> (VideoSummary, AudioSummary) {
    // motion mean, brightness, skin %, level mean/p90/p10 dBFS, speech, loud, zcr, Hz, bands
    #[allow(clippy::type_complexity)]
    let (motion, bright, skin, lvl, p90, p10, speech, loud, zcr, hz, bands): (
        f32,
        f32,
        f32,
        f32,
        f32,
        f32,
        f32,
        f32,
        f32,
        Option<f32>,
        [f32; 3],
    ) = match class {
        Asleep => (
            0.21,
            14.6,
            1.8,
            -61.7,
            -55.2,
            -67.9,
            0.0,
            0.0,
            0.048,
            Some(61.3),
            [0.71, 0.24, 0.05],
        ),
        AtTable => (
            4.47,
            121.3,
            13.9,
            -37.6,
            -27.8,
            -50.3,
            0.34,
            0.12,
            0.121,
            Some(221.4),
            [0.31, 0.59, 0.10],
        ),
        Reading => (
            0.93,
            134.8,
            8.2,
            -52.1,
            -45.3,
            -60.4,
            0.02,
            0.0,
            0.063,
            None,
            [0.52, 0.39, 0.09],
        ),
        OnPhone => (
            1.62,
            109.5,
            11.3,
            -36.2,
            -27.1,
            -48.7,
            0.55,
            0.08,
            0.138,
            Some(189.7),
            [0.24, 0.66, 0.10],
        ),
        InConversation => (
            3.04,
            124.9,
            12.4,
            -32.3,
            -24.2,
            -45.1,
            0.71,
            0.26,
            0.152,
            Some(178.2),
            [0.26, 0.64, 0.10],
        ),
        Busy => (
            9.12,
            139.7,
            9.1,
            -34.8,
            -21.9,
            -49.6,
            0.11,
            0.31,
            0.204,
            Some(812.5),
            [0.29, 0.45, 0.26],
        ),
        Inactive => (
            0.31,
            95.2,
            0.6,
            -57.9,
            -50.4,
            -63.8,
            0.0,
            0.0,
            0.071,
            Some(52.0),
            [0.62, 0.29, 0.09],
        ),
    };
    let spans = window_s as u32;
    let video = VideoSummary {
        spans,
        frames: spans * 5,
        motion_mean: motion,
        motion_p90: motion * 1.83,
        motion_max: motion * 3.71,
        brightness_mean: bright,
        skin_percent_mean: skin,
    };
    let audio = AudioSummary {
        spans,
        level_dbfs_mean: lvl,
        level_dbfs_p90: p90,
        level_dbfs_p10: p10,
        speech_fraction: speech,
        loud_fraction: loud,
        zcr_mean: zcr,
        dominant_hz_median: hz,
        band_low: bands[0],
        band_mid: bands[1],
        band_high: bands[2],
        pitch_hz_median: None,
        voice_changes_per_min: 0.0,
    };
    (video, audio)
}

/// One stored window per class, as the live daemon writes it: the rules scored over full
/// summaries, then relabelled.
fn templates(window_s: i64) -> Vec<StoredClassification> {
    ActivityClass::ALL
        .into_iter()
        .map(|class| {
            let (video, audio) = summaries(class, window_s);
            let window = WindowSummary {
                start: Timestamp(YEAR_START_MS * 1000),
                end: Timestamp((YEAR_START_MS + window_s * 1000) * 1000),
                spans: window_s as u32,
                video: Some(video),
                audio: Some(audio),
                vision: None,
                sound: None,
                sub_windows: None,
            };
            let mut decision = RuleClassifier.classify(&window);
            decision.activity = class;
            let c = Classification {
                decision,
                window,
                classifier: RuleClassifier.name().into(),
                source: "live".into(),
            };
            StoredClassification::from(&c)
        })
        .collect()
}

/// Builds the windows of one history in time order, `CHUNK` at a time.
struct History {
    window_ms: i64,
    windows: u64,
    next: u64,
    rng: Lcg,
    templates: Vec<StoredClassification>,
}

impl History {
    fn new(window_s: i64, days: i64) -> Self {
        Self {
            window_ms: window_s * 1000,
            windows: (days * DAY_MS / (window_s * 1000)) as u64,
            next: 0,
            rng: Lcg(0x5eed_0000 + window_s as u64),
            templates: templates(window_s),
        }
    }

    fn next_chunk(&mut self) -> Vec<StoredClassification> {
        let n = (self.windows - self.next).min(CHUNK as u64);
        let mut out = Vec::with_capacity(n as usize);
        for i in self.next..self.next + n {
            let start_ms = YEAR_START_MS + i as i64 * self.window_ms;
            let local_minute =
                (start_ms + i64::from(TZ_OFFSET_S) * 1000).rem_euclid(DAY_MS) / MINUTE_MS;
            let mut class = scheduled(local_minute);
            if self.rng.next_u32() % 100 < 3 {
                class = neighbour(class, self.rng.next_u32().is_multiple_of(2));
            }
            let mut w = self.templates[ActivityClass::ALL
                .iter()
                .position(|c| *c == class)
                .expect("a class")]
            .clone();
            w.start_ms = start_ms;
            w.end_ms = start_ms + self.window_ms;
            w.features.start = Timestamp(start_ms * 1000);
            w.features.end = Timestamp(w.end_ms * 1000);
            w.activity = class;
            w.confidence = 0.42 + 0.55 * self.rng.unit();
            // Measured numbers vary from window to window (and print with all their digits).
            let jitter = 0.8 + 0.4 * self.rng.unit();
            if let Some(v) = &mut w.features.video {
                v.motion_mean *= jitter;
                v.motion_p90 *= jitter;
                v.motion_max *= jitter;
                v.brightness_mean += 6.0 * self.rng.unit() - 3.0;
            }
            if let Some(a) = &mut w.features.audio {
                let shift = 6.0 * self.rng.unit() - 3.0;
                a.level_dbfs_mean += shift;
                a.level_dbfs_p90 += shift;
                a.level_dbfs_p10 += shift;
                a.zcr_mean *= jitter;
            }
            out.push(w);
        }
        self.next += n;
        out
    }
}

/// Bytes of all files under `dir`.
fn dir_bytes(dir: &Path) -> std::io::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() {
            dir_bytes(&entry.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}

/// Median time of `RUNS` runs after one warm-up, and the warm-up's result.
fn timed<T>(mut f: impl FnMut() -> Result<T, StoreError>) -> Result<(Duration, T), StoreError> {
    let result = f()?;
    let mut times = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let t = Instant::now();
        std::hint::black_box(f()?);
        times.push(t.elapsed());
    }
    times.sort();
    Ok((times[RUNS / 2], result))
}

fn fmt_count(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

fn fmt_time(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 1.0 {
        format!("{s:.2} s")
    } else if s >= 1e-3 {
        format!("{:.2} ms", s * 1e3)
    } else {
        format!("{:.1} µs", s * 1e6)
    }
}

fn fmt_bytes(b: u64) -> String {
    let mib = b as f64 / (1024.0 * 1024.0);
    if mib >= 1024.0 {
        format!("{:.2} GiB", mib / 1024.0)
    } else {
        format!("{mib:.1} MiB")
    }
}

/// One column of the table.
struct Column {
    title: String,
    rows: Vec<(String, String)>,
}

impl Column {
    fn row(&mut self, name: &str, value: String) {
        eprintln!("  {name:<40} {value}");
        self.rows.push((name.to_string(), value));
    }
}

fn run_history(base: &Path, window_s: i64, days: i64) -> Result<Column, StoreError> {
    let mut col = Column {
        title: format!("{window_s}-s windows, {days} d"),
        rows: Vec::new(),
    };
    eprintln!("== {}", col.title);
    let tmp = tempfile::Builder::new()
        .prefix("cav-store-bench-")
        .tempdir_in(base)
        .expect("a temporary directory");
    let dir: PathBuf = tmp.path().to_path_buf();
    let tz = FixedOffset::east_opt(TZ_OFFSET_S).expect("a valid offset");
    let year_end = YEAR_START_MS + days * DAY_MS;

    let mut history = History::new(window_s, days);
    let store = Store::open(&dir)?;
    let (mut build, mut import) = (Duration::ZERO, Duration::ZERO);
    let mut imported = 0u64;
    let mut expected_ms = 0i64;
    let mut json_bytes = None;
    while history.next < history.windows {
        let t = Instant::now();
        let chunk = history.next_chunk();
        build += t.elapsed();
        if json_bytes.is_none() {
            let bytes: usize = chunk
                .iter()
                .map(|w| serde_json::to_vec(w).map(|v| v.len()))
                .sum::<Result<usize, _>>()?;
            json_bytes = Some(bytes as f64 / chunk.len().max(1) as f64);
        }
        expected_ms += chunk.iter().map(|w| w.end_ms - w.start_ms).sum::<i64>();
        let t = Instant::now();
        imported += store.import_windows(&chunk, SPAN_GAP_MS)?;
        import += t.elapsed();
        if imported.is_multiple_of(10 * CHUNK as u64) {
            eprintln!(
                "  … {} windows imported in {}",
                fmt_count(imported),
                fmt_time(import)
            );
        }
    }
    col.row("windows", fmt_count(history.windows));
    col.row("build windows (memory, not stored)", fmt_time(build));
    col.row(
        "record JSON bytes per window (mean)",
        format!("{:.0}", json_bytes.unwrap_or(0.0)),
    );
    col.row("import_windows", fmt_time(import));
    col.row(
        "import rate",
        format!(
            "{} windows/s",
            fmt_count((imported as f64 / import.as_secs_f64()) as u64)
        ),
    );
    store.flush()?;
    col.row("size_on_disk()", fmt_bytes(store.size_on_disk()?));
    col.row(
        "directory bytes",
        fmt_bytes(dir_bytes(&dir).expect("the store directory")),
    );
    col.row(
        "bytes per window (directory)",
        format!(
            "{:.0}",
            dir_bytes(&dir).expect("the store directory") as f64 / imported as f64
        ),
    );
    let count: u64 = store.classification_count();
    drop(store);

    let t = Instant::now();
    let store = Store::open(&dir)?;
    col.row("reopen (Store::open)", fmt_time(t.elapsed()));

    let all = TimeRange::all();
    let year = TimeRange::new(YEAR_START_MS, year_end);
    // Mid-history, cut 17 minutes into an hour at both ends.
    let month_start = YEAR_START_MS + (days - 30).max(0) / 2 * DAY_MS + 17 * MINUTE_MS;
    let month = TimeRange::new(month_start, month_start + 30 * DAY_MS);
    let day_start = YEAR_START_MS + days / 2 * DAY_MS + 17 * MINUTE_MS;
    let day = TimeRange::new(day_start, day_start + DAY_MS);

    let (t, spans_all) = timed(|| store.spans(all, None, 0, 0))?;
    col.row("spans (all)", fmt_count(spans_all.total));
    col.row("  spans(all, limit 0) time", fmt_time(t));

    let (t, stats_year) = timed(|| store.statistics(year, tz))?;
    col.row("statistics(whole history)", fmt_time(t));
    let (t, stats_month) = timed(|| store.statistics(month, tz))?;
    col.row("statistics(month, :17 edges)", fmt_time(t));
    let (t, stats_day) = timed(|| store.statistics(day, tz))?;
    col.row("statistics(day, :17 edges)", fmt_time(t));
    let (t, act_day) = timed(|| store.activities(day, None, 100, 0))?;
    col.row("activities(day, 100)", fmt_time(t));
    let (t, act_reading) = timed(|| store.activities(year, Some(Reading), 100, 0))?;
    col.row("activities(year, reading, 100)", fmt_time(t));
    let (t, spans_month) = timed(|| store.spans(month, None, 100, 0))?;
    col.row("spans(month, 100)", fmt_time(t));
    col.row(
        "  totals: act day / reading / spans mo",
        format!(
            "{} / {} / {}",
            fmt_count(act_day.total),
            fmt_count(act_reading.total),
            fmt_count(spans_month.total)
        ),
    );
    col.row(
        "  windows: stats month / day",
        format!(
            "{} / {}",
            fmt_count(stats_month.windows),
            fmt_count(stats_day.windows)
        ),
    );

    // Sanity: the rollups account for every window and every second.
    let expected_s = expected_ms as f64 / 1000.0;
    let observed_ok = (stats_year.observed_s - expected_s).abs() <= 1.0;
    let windows_ok = stats_year.windows == count && count == imported;
    col.row(
        "check: observed_s = Σ durations",
        format!(
            "{} ({:.0} s vs {expected_s:.0} s)",
            if observed_ok { "ok" } else { "FAIL" },
            stats_year.observed_s
        ),
    );
    col.row(
        "check: stats windows = count",
        format!(
            "{} ({} vs {})",
            if windows_ok { "ok" } else { "FAIL" },
            fmt_count(stats_year.windows),
            fmt_count(count)
        ),
    );
    let reading_share = stats_year
        .classes
        .iter()
        .find(|c| c.class == Reading)
        .map(|c| c.share)
        .unwrap_or(0.0);
    col.row(
        "  most frequent / reading share",
        format!(
            "{} / {:.1}%",
            stats_year.most_frequent.map(|c| c.as_str()).unwrap_or("-"),
            reading_share * 100.0
        ),
    );
    assert!(
        observed_ok,
        "observed_s {} != {expected_s}",
        stats_year.observed_s
    );
    assert!(
        windows_ok,
        "windows: statistics {}, stored {count}, imported {imported}",
        stats_year.windows
    );
    drop(store);
    drop(tmp);
    Ok(col)
}

fn main() -> Result<(), StoreError> {
    let quick = std::env::var("CAV_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
    let histories: Vec<i64> = std::env::var("CAV_BENCH_HISTORIES")
        .unwrap_or_else(|_| "300,10".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .filter(|&s: &i64| s > 0)
        .collect();
    let base = std::env::var_os("CAV_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    eprintln!(
        "store_history: histories {histories:?} s{}, stores under {}",
        if quick { " (quick)" } else { "" },
        base.display()
    );

    let mut columns = Vec::new();
    for &window_s in &histories {
        let days = if quick && window_s < 300 { 30 } else { 365 };
        columns.push(run_history(&base, window_s, days)?);
    }

    println!();
    println!(
        "store_history (sled store; queries: median of {RUNS} after a warm-up; tz UTC+1{})",
        if quick { "; QUICK" } else { "" }
    );
    let width = columns
        .iter()
        .flat_map(|c| {
            c.rows
                .iter()
                .map(|(_, v)| v.chars().count())
                .chain([c.title.chars().count()])
        })
        .max()
        .unwrap_or(10);
    let mut header = format!("{:<40}", "");
    for c in &columns {
        header += &format!(" | {:>width$}", c.title);
    }
    println!("{header}");
    println!("{}", "-".repeat(header.chars().count()));
    let names: Vec<&String> = columns
        .first()
        .map(|c| c.rows.iter().map(|(n, _)| n).collect())
        .unwrap_or_default();
    for (i, name) in names.iter().enumerate() {
        let mut line = format!("{name:<40}");
        for c in &columns {
            let v = c.rows.get(i).map(|(_, v)| v.as_str()).unwrap_or("");
            line += &format!(" | {v:>width$}");
        }
        println!("{line}");
    }
    Ok(())
}
