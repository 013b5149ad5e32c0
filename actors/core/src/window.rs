//! Classification windows: consecutive spans gathered over `window` (default 300 s) and
//! summarised into the numbers the classifier reads.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::features::SpanFeatures;
use crate::observe::{
    summarize_sound, summarize_vision, SoundObservation, SoundSummary, VisionObservation,
    VisionSummary,
};
use crate::stats;
use crate::time::Timestamp;

/// What the camera showed over a window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VideoSummary {
    /// Spans that had at least one frame.
    pub spans: u32,
    pub frames: u32,
    pub motion_mean: f32,
    pub motion_p90: f32,
    pub motion_max: f32,
    pub brightness_mean: f32,
    pub skin_percent_mean: f32,
}

/// What the microphone heard over a window. Levels are absolute, in dBFS.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AudioSummary {
    /// Spans with usable audio.
    pub spans: u32,
    /// Power mean of the span levels.
    pub level_dbfs_mean: f32,
    /// Loud moments (90th percentile of span levels).
    pub level_dbfs_p90: f32,
    /// The room's floor (10th percentile of span levels).
    pub level_dbfs_p10: f32,
    /// Share of spans that sounded like speech, 0..1.
    pub speech_fraction: f32,
    /// Share of spans louder than -30 dBFS, 0..1.
    pub loud_fraction: f32,
    pub zcr_mean: f32,
    /// Median dominant frequency of the non-silent spans.
    pub dominant_hz_median: Option<f32>,
    pub band_low: f32,
    pub band_mid: f32,
    pub band_high: f32,
    /// Median voice pitch over the spans with a voice, Hz.
    #[serde(default)]
    pub pitch_hz_median: Option<f32>,
    /// Changes of voice (low ↔ high pitch, see [`voice_changes`]) per minute: two people
    /// taking turns.
    #[serde(default)]
    pub voice_changes_per_min: f32,
}

/// How the window's sub-windows (`SUB_WINDOW_S` each) behaved: whether something lasted or
/// happened once.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SubWindows {
    pub count: u32,
    /// Share of sub-windows whose mean motion exceeds [`MOVING_PERCENT`].
    pub moving_fraction: f32,
    /// Share of sub-windows in which a person was seen at least once.
    pub presence_fraction: f32,
    /// Share of sub-windows with at least one speech window.
    pub speech_fraction: f32,
}

/// The window's features: the classifier's only input.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WindowSummary {
    pub start: Timestamp,
    pub end: Timestamp,
    pub spans: u32,
    pub video: Option<VideoSummary>,
    pub audio: Option<AudioSummary>,
    /// Persons and posture (the vision stage); absent when vision is off or saw no frame.
    #[serde(default)]
    pub vision: Option<VisionSummary>,
    /// YAMNet class groups and turn-taking (the hearing stage of the classifier's audio source).
    #[serde(default)]
    pub sound: Option<SoundSummary>,
    #[serde(default)]
    pub sub_windows: Option<SubWindows>,
}

/// Length of a sub-window, s.
pub const SUB_WINDOW_S: f64 = 10.0;
/// Mean motion above which a sub-window counts as moving, percent of pixels.
pub const MOVING_PERCENT: f32 = 1.0;

/// Everything gathered over one window, besides the spans.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    pub vision: Vec<VisionObservation>,
    pub sound: Vec<SoundObservation>,
}

/// Loudness above which a span counts as loud, in dBFS.
pub const LOUD_DBFS: f32 = -30.0;

/// Summarises spans only (no model observations).
pub fn summarize(start: Timestamp, end: Timestamp, spans: &[SpanFeatures]) -> WindowSummary {
    summarize_observed(start, end, spans, &Observed::default())
}

/// Summarises a window's spans and the model observations made during it.
pub fn summarize_observed(
    start: Timestamp,
    end: Timestamp,
    spans: &[SpanFeatures],
    observed: &Observed,
) -> WindowSummary {
    let videos: Vec<_> = spans.iter().filter_map(|s| s.video.as_ref()).collect();
    let video = (!videos.is_empty()).then(|| {
        let motion: Vec<f32> = videos.iter().map(|v| v.motion_mean).collect();
        let brightness: Vec<f32> = videos.iter().map(|v| v.brightness).collect();
        let skin: Vec<f32> = videos.iter().map(|v| v.skin_percent).collect();
        VideoSummary {
            spans: videos.len() as u32,
            frames: videos.iter().map(|v| v.frames).sum(),
            motion_mean: stats::mean(&motion).unwrap_or(0.0),
            motion_p90: stats::quantile(&motion, 0.9).unwrap_or(0.0),
            motion_max: videos.iter().map(|v| v.motion_max).fold(0.0, f32::max),
            brightness_mean: stats::mean(&brightness).unwrap_or(0.0),
            skin_percent_mean: stats::mean(&skin).unwrap_or(0.0),
        }
    });

    let audios: Vec<_> = spans
        .iter()
        .filter_map(|s| s.audio.as_ref().map(|a| (a, s.voice_like)))
        .collect();
    let audio = (!audios.is_empty()).then(|| {
        let n = audios.len() as f32;
        let levels: Vec<f32> = audios.iter().map(|(a, _)| a.dbfs).collect();
        let zcr: Vec<f32> = audios.iter().map(|(a, _)| a.zcr).collect();
        let dominant: Vec<f32> = audios.iter().filter_map(|(a, _)| a.dominant_hz).collect();
        let band = |f: fn(&crate::audio_features::BandRatios) -> f32| {
            stats::mean(&audios.iter().map(|(a, _)| f(&a.bands)).collect::<Vec<_>>()).unwrap_or(0.0)
        };
        AudioSummary {
            spans: audios.len() as u32,
            level_dbfs_mean: stats::mean_db(&levels).unwrap_or(crate::audio_features::DBFS_FLOOR),
            level_dbfs_p90: stats::quantile(&levels, 0.9)
                .unwrap_or(crate::audio_features::DBFS_FLOOR),
            level_dbfs_p10: stats::quantile(&levels, 0.1)
                .unwrap_or(crate::audio_features::DBFS_FLOOR),
            speech_fraction: audios.iter().filter(|(_, v)| *v).count() as f32 / n,
            loud_fraction: levels.iter().filter(|&&l| l > LOUD_DBFS).count() as f32 / n,
            zcr_mean: stats::mean(&zcr).unwrap_or(0.0),
            dominant_hz_median: stats::quantile(&dominant, 0.5),
            band_low: band(|b| b.low),
            band_mid: band(|b| b.mid),
            band_high: band(|b| b.high),
            pitch_hz_median: stats::quantile(&pitches(spans), 0.5),
            voice_changes_per_min: voice_changes(spans) as f32
                / ((end.0 - start.0) as f32 / 60e6).max(1.0 / 60.0),
        }
    });

    WindowSummary {
        start,
        end,
        spans: spans.len() as u32,
        video,
        audio,
        vision: summarize_vision(&observed.vision),
        sound: summarize_sound(&observed.sound),
        sub_windows: sub_windows(start, end, spans, observed),
    }
}

/// Pitches of the spans that had a voice.
fn pitches(spans: &[SpanFeatures]) -> Vec<f32> {
    spans
        .iter()
        .filter_map(|s| s.audio.as_ref().and_then(|a| a.pitch_hz))
        .collect()
}

/// Pitch dividing low (most men) from high (most women and children) voices, Hz.
pub const VOICE_SPLIT_HZ: f32 = 160.0;
/// Voiced spans of one kind needed in a row for a turn by that voice to count.
const VOICE_RUN: usize = 2;

/// Changes between a low and a high voice over the voiced spans: runs of at least
/// [`VOICE_RUN`] spans of one kind, and a change wherever the next such run is of the other
/// kind. One person's voice stays on one side of the split (its pitch varies by a few tens of
/// hertz), so a monologue or a one-sided call counts few changes.
pub fn voice_changes(spans: &[SpanFeatures]) -> usize {
    let mut runs: Vec<(bool, usize)> = Vec::new();
    for high in pitches(spans).into_iter().map(|p| p >= VOICE_SPLIT_HZ) {
        match runs.last_mut() {
            Some((k, n)) if *k == high => *n += 1,
            _ => runs.push((high, 1)),
        }
    }
    let clear: Vec<bool> = runs
        .into_iter()
        .filter(|&(_, n)| n >= VOICE_RUN)
        .map(|(k, _)| k)
        .collect();
    clear.windows(2).filter(|k| k[0] != k[1]).count()
}

fn sub_windows(
    start: Timestamp,
    end: Timestamp,
    spans: &[SpanFeatures],
    observed: &Observed,
) -> Option<SubWindows> {
    let length_s = (end.0 - start.0) as f64 / 1e6;
    if length_s <= 0.0 {
        return None;
    }
    let count = (length_s / SUB_WINDOW_S).ceil().max(1.0) as usize;
    let index = |t: Timestamp| {
        let i = ((t.0 - start.0) as f64 / 1e6 / SUB_WINDOW_S).floor();
        (i >= 0.0 && (i as usize) < count).then_some(i as usize)
    };
    let mut motion = vec![Vec::new(); count];
    for s in spans {
        if let (Some(i), Some(v)) = (index(s.start), s.video.as_ref()) {
            motion[i].push(v.motion_mean);
        }
    }
    let mut present = vec![false; count];
    for o in &observed.vision {
        if let Some(i) = index(o.t) {
            present[i] |= o.persons > 0 || o.faces > 0;
        }
    }
    let mut speech = vec![false; count];
    for o in &observed.sound {
        if let (Some(i), Some(scene)) = (index(o.t), o.scene.as_ref()) {
            speech[i] |= scene.speech >= crate::observe::SPEECH_ON;
        }
    }
    let n = count as f32;
    let share = |v: &[bool]| v.iter().filter(|&&x| x).count() as f32 / n;
    let moving: Vec<bool> = motion
        .iter()
        .map(|m| stats::mean(m).is_some_and(|x| x > MOVING_PERCENT))
        .collect();
    Some(SubWindows {
        count: count as u32,
        moving_fraction: share(&moving),
        presence_fraction: share(&present),
        speech_fraction: share(&speech),
    })
}

/// Gathers spans until a window is full. The first window starts with the first span, so the
/// first result comes one window length after data starts flowing.
#[derive(Debug)]
pub struct WindowAccumulator {
    window_us: i64,
    start: Option<Timestamp>,
    spans: Vec<SpanFeatures>,
    observed: Observed,
}

/// Observations kept at most, per kind, while no span comes (bounds memory when video or audio
/// stops but a model keeps reporting).
const MAX_OBSERVATIONS: usize = 20_000;

impl WindowAccumulator {
    pub fn new(window: Duration) -> Self {
        Self {
            window_us: window.as_micros().max(1) as i64,
            start: None,
            spans: Vec::new(),
            observed: Observed::default(),
        }
    }

    /// Adds what the vision stage saw in a frame.
    pub fn push_vision(&mut self, o: VisionObservation) {
        if self.observed.vision.len() >= MAX_OBSERVATIONS {
            self.observed.vision.remove(0);
        }
        self.observed.vision.push(o);
    }

    /// Adds what the hearing stage heard in one of its windows.
    pub fn push_sound(&mut self, o: SoundObservation) {
        if self.observed.sound.len() >= MAX_OBSERVATIONS {
            self.observed.sound.remove(0);
        }
        self.observed.sound.push(o);
    }

    /// The summary of the window being filled, from what it holds so far (nothing is taken).
    pub fn peek(&self) -> Option<WindowSummary> {
        let start = self.start?;
        let end = self.spans.last().map(|s| s.end)?;
        let observed = Observed {
            vision: in_range(&self.observed.vision, |o| o.t, start, end),
            sound: in_range(&self.observed.sound, |o| o.t, start, end),
        };
        Some(summarize_observed(start, end, &self.spans, &observed))
    }

    /// The end of the window being filled, if one has started.
    pub fn current_window_end(&self) -> Option<Timestamp> {
        self.start.map(|s| Timestamp(s.0 + self.window_us))
    }

    /// Adds a span; returns the summary of the window it completed, if any.
    pub fn push(&mut self, span: SpanFeatures) -> Option<WindowSummary> {
        let start = *self.start.get_or_insert(span.start);
        let end = Timestamp(start.0 + self.window_us);
        if span.start >= end {
            // A jump past the window (the source stalled longer than a window): close the
            // window with what it has and start the next one with this span.
            let done = self.take(start, end);
            self.start = Some(span.start);
            self.spans.push(span);
            return done;
        }
        let reached = span.end >= end;
        self.spans.push(span);
        if reached {
            let done = self.take(start, end);
            self.start = Some(end);
            done
        } else {
            None
        }
    }

    /// Closes the current window early with what it holds (end of a file).
    pub fn flush(&mut self) -> Option<WindowSummary> {
        let start = self.start?;
        let end = self.spans.last().map(|s| s.end)?;
        let done = self.take(start, end);
        self.start = None;
        done
    }

    fn take(&mut self, start: Timestamp, end: Timestamp) -> Option<WindowSummary> {
        // Observations before `end` belong to this window (or are too late for any); later ones
        // wait for the next.
        let observed = Observed {
            vision: split_before(&mut self.observed.vision, |o| o.t, end),
            sound: split_before(&mut self.observed.sound, |o| o.t, end),
        };
        if self.spans.is_empty() {
            return None;
        }
        let spans = std::mem::take(&mut self.spans);
        let observed = Observed {
            vision: in_range(&observed.vision, |o| o.t, start, end),
            sound: in_range(&observed.sound, |o| o.t, start, end),
        };
        Some(summarize_observed(start, end, &spans, &observed))
    }
}

/// Removes and returns the items stamped before `end`.
fn split_before<T>(items: &mut Vec<T>, t: impl Fn(&T) -> Timestamp, end: Timestamp) -> Vec<T> {
    let (before, after): (Vec<T>, Vec<T>) =
        std::mem::take(items).into_iter().partition(|o| t(o) < end);
    *items = after;
    before
}

fn in_range<T: Clone>(
    items: &[T],
    t: impl Fn(&T) -> Timestamp,
    start: Timestamp,
    end: Timestamp,
) -> Vec<T> {
    let mut v: Vec<T> = items
        .iter()
        .filter(|o| (start..end).contains(&t(o)))
        .cloned()
        .collect();
    v.sort_by_key(|o| t(o));
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio_features::{AudioFeatures, BandRatios};
    use crate::features::VideoSpanStats;

    fn span(i: i64, motion: f32, dbfs: f32, voice: bool) -> SpanFeatures {
        SpanFeatures {
            start: Timestamp(i * 1_000_000),
            end: Timestamp((i + 1) * 1_000_000),
            video: Some(VideoSpanStats {
                frames: 5,
                motion_mean: motion,
                motion_max: motion * 2.0,
                brightness: 100.0,
                skin_percent: 10.0,
            }),
            audio: Some(AudioFeatures {
                samples: 16_000,
                rms: 10f32.powf(dbfs / 20.0),
                dbfs,
                peak: 0.5,
                zcr: 0.1,
                dominant_hz: Some(200.0),
                bands: BandRatios {
                    low: 0.2,
                    mid: 0.7,
                    high: 0.1,
                },
                pitch_hz: None,
            }),
            voice_like: voice,
        }
    }

    #[test]
    fn summarizes_known_spans() {
        let spans = vec![span(0, 1.0, -20.0, true), span(1, 3.0, -40.0, false)];
        let s = summarize(Timestamp(0), Timestamp(2_000_000), &spans);
        let v = s.video.unwrap();
        assert_eq!((v.spans, v.frames), (2, 10));
        assert_eq!(v.motion_mean, 2.0);
        assert_eq!(v.motion_max, 6.0);
        let a = s.audio.unwrap();
        assert_eq!(a.speech_fraction, 0.5);
        assert_eq!(a.loud_fraction, 0.5);
        assert!((a.level_dbfs_mean - (-22.96)).abs() < 0.01);
        assert_eq!(a.band_mid, 0.7);
    }

    #[test]
    fn windows_close_on_time() {
        let mut acc = WindowAccumulator::new(Duration::from_secs(3));
        assert!(acc.push(span(10, 1.0, -30.0, false)).is_none());
        assert!(acc.push(span(11, 1.0, -30.0, false)).is_none());
        let w = acc.push(span(12, 1.0, -30.0, false)).unwrap();
        assert_eq!((w.start.0, w.end.0, w.spans), (10_000_000, 13_000_000, 3));
        assert_eq!(acc.current_window_end(), Some(Timestamp(16_000_000)));
        // A stall: the next span is two windows later.
        assert!(acc.push(span(13, 1.0, -30.0, false)).is_none());
        let w = acc.push(span(30, 1.0, -30.0, false)).unwrap();
        assert_eq!((w.start.0, w.end.0, w.spans), (13_000_000, 16_000_000, 1));
        let tail = acc.flush().unwrap();
        assert_eq!(
            (tail.start.0, tail.end.0, tail.spans),
            (30_000_000, 31_000_000, 1)
        );
        assert!(acc.flush().is_none());
    }
}
