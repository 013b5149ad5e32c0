//! Measuring audio/video synchronisation from the content: sudden light changes in the picture
//! (a flash, a lamp switched on, a clapperboard) and sudden sounds (a beep, a clap) that happen
//! together are paired, and the time between them is the offset between the two streams as the
//! pipeline stamped them.
//!
//! [`OffsetMonitor`] finds both kinds of onset, pairs each visual onset with the nearest sound
//! onset within [`PAIR_WINDOW`], and reports the median offset (audio − video; positive means the
//! sound is stamped later than the picture), the drift (least-squares slope of the offsets over
//! time) and the timing resolution (the frame interval: a flash is only seen on the frames that
//! were analysed). Content without such events gives no reading, never an invented one.

use std::collections::VecDeque;

use crate::frame::Frame;
use crate::time::Timestamp;

/// A rise of the frame's mean luma by at least this much (0–255) is a visual onset.
pub const FLASH_RISE: f32 = 40.0;
/// A 5-ms block at least this many dB louder than the quietest of the previous 100 ms, and
/// louder than [`SOUND_FLOOR_DBFS`], is a sound onset.
pub const SOUND_RISE_DB: f32 = 20.0;
pub const SOUND_FLOOR_DBFS: f32 = -40.0;
/// Onsets closer together than this are one event.
const REFRACTORY_US: i64 = 300_000;
/// Largest |offset| that still pairs a flash with a sound.
pub const PAIR_WINDOW: i64 = 500_000;
/// Pairs kept for the reading.
const KEEP_PAIRS: usize = 64;
const BLOCK: usize = 80; // 5 ms at 16 kHz
const HISTORY_BLOCKS: usize = 20; // 100 ms

/// Mean luma (BT.601) of a BGR frame, 0–255.
pub fn mean_luma(frame: &Frame) -> f32 {
    let px = frame.bgr();
    let n = px.len() / 3;
    if n == 0 {
        return 0.0;
    }
    // Every 4th pixel is plenty for a mean and keeps this cheap on large frames.
    let (mut sum, mut count) = (0f64, 0u64);
    for p in px.chunks_exact(3).step_by(4) {
        sum += 0.114 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.299 * f64::from(p[2]);
        count += 1;
    }
    (sum / count.max(1) as f64) as f32
}

/// The measured synchronisation of one video/audio pair.
#[derive(Clone, Debug, PartialEq)]
pub struct SyncReading {
    /// Median of (sound onset − flash onset), ms.
    pub offset_ms: f64,
    /// Change of the offset per minute (ms/min), when the pairs span at least 30 s.
    pub drift_ms_per_min: Option<f64>,
    pub pairs: usize,
    /// The video timing resolution (median frame interval), ms.
    pub resolution_ms: Option<f64>,
    /// When the last pair was seen.
    pub last_pair_at: Timestamp,
}

#[derive(Debug, Default)]
pub struct OffsetMonitor {
    last_luma: Option<f32>,
    last_frame_at: Option<Timestamp>,
    frame_intervals: VecDeque<i64>,
    last_flash: Option<Timestamp>,
    flashes: VecDeque<Timestamp>,
    /// Audio not yet cut into blocks, and the time of its first sample.
    pending: Vec<f32>,
    pending_at: Option<Timestamp>,
    history: VecDeque<f32>,
    last_sound: Option<Timestamp>,
    sounds: VecDeque<Timestamp>,
    pairs: VecDeque<(Timestamp, i64)>,
}

fn dbfs(block: &[f32]) -> f32 {
    let power = block
        .iter()
        .map(|&x| f64::from(x) * f64::from(x))
        .sum::<f64>()
        / block.len().max(1) as f64;
    (10.0 * power.max(1e-12).log10()) as f32
}

impl OffsetMonitor {
    pub fn new() -> Self {
        Self::default()
    }

    /// A frame's capture time and mean luma.
    pub fn push_frame(&mut self, t: Timestamp, luma: f32) {
        if let Some(prev) = self.last_frame_at {
            let dt = t.0 - prev.0;
            if dt > 0 {
                self.frame_intervals.push_back(dt);
                if self.frame_intervals.len() > 50 {
                    self.frame_intervals.pop_front();
                }
            }
        }
        let rise = self.last_luma.is_some_and(|l| luma - l >= FLASH_RISE);
        let fresh = self.last_flash.is_none_or(|f| t.0 - f.0 >= REFRACTORY_US);
        if rise && fresh {
            self.last_flash = Some(t);
            self.flashes.push_back(t);
            self.pair();
        }
        self.last_luma = Some(luma);
        self.last_frame_at = Some(t);
    }

    /// Audio (16 kHz mono) whose first sample was captured at `t`.
    pub fn push_audio(&mut self, t: Timestamp, samples: &[f32]) {
        let sr = crate::SAMPLE_RATE as i64;
        // Re-anchor on a gap or overlap larger than a block; otherwise the sample count rules.
        let expected = self
            .pending_at
            .map(|at| Timestamp(at.0 + self.pending.len() as i64 * 1_000_000 / sr));
        if expected.is_none_or(|e| (e.0 - t.0).abs() > 5_000) {
            self.pending.clear();
            self.pending_at = Some(t);
        }
        self.pending.extend_from_slice(samples);
        let mut offset = 0;
        while self.pending.len() - offset >= BLOCK {
            let block = &self.pending[offset..offset + BLOCK];
            let at = self
                .pending_at
                .map(|p| Timestamp(p.0 + offset as i64 * 1_000_000 / sr))
                .unwrap_or(t);
            let level = dbfs(block);
            let quietest = self.history.iter().copied().fold(f32::INFINITY, f32::min);
            let full = self.history.len() >= HISTORY_BLOCKS;
            if full
                && level >= SOUND_FLOOR_DBFS
                && level - quietest >= SOUND_RISE_DB
                && self.last_sound.is_none_or(|s| at.0 - s.0 >= REFRACTORY_US)
            {
                // The onset is the first sample that reaches a tenth of the block's peak.
                let peak = block.iter().fold(0f32, |m, &x| m.max(x.abs()));
                let first = block
                    .iter()
                    .position(|&x| x.abs() >= 0.1 * peak)
                    .unwrap_or(0);
                let onset = Timestamp(at.0 + first as i64 * 1_000_000 / sr);
                self.last_sound = Some(onset);
                self.sounds.push_back(onset);
                self.pair();
            }
            self.history.push_back(level);
            if self.history.len() > HISTORY_BLOCKS {
                self.history.pop_front();
            }
            offset += BLOCK;
        }
        self.pending.drain(..offset);
        if let Some(at) = self.pending_at.as_mut() {
            at.0 += offset as i64 * 1_000_000 / sr;
        }
    }

    /// Pairs flashes with sounds once both sides of the window have been seen.
    fn pair(&mut self) {
        while let Some(&flash) = self.flashes.front() {
            // Sounds too old for this flash can go.
            while self
                .sounds
                .front()
                .is_some_and(|s| s.0 < flash.0 - PAIR_WINDOW)
            {
                self.sounds.pop_front();
            }
            let horizon = self.last_sound.map_or(i64::MIN, |s| s.0);
            let nearest = self
                .sounds
                .iter()
                .filter(|s| (s.0 - flash.0).abs() <= PAIR_WINDOW)
                .min_by_key(|s| (s.0 - flash.0).abs())
                .copied();
            let decided =
                horizon >= flash.0 + PAIR_WINDOW || nearest.is_some_and(|n| n.0 >= flash.0);
            if !decided && self.flashes.len() < 8 {
                return;
            }
            self.flashes.pop_front();
            if let Some(s) = nearest {
                self.sounds.retain(|x| *x != s);
                self.pairs.push_back((flash, s.0 - flash.0));
                if self.pairs.len() > KEEP_PAIRS {
                    self.pairs.pop_front();
                }
            }
        }
    }

    pub fn reading(&self) -> Option<SyncReading> {
        let last = self.pairs.back()?.0;
        let mut offsets: Vec<i64> = self.pairs.iter().map(|p| p.1).collect();
        offsets.sort_unstable();
        let median = offsets[offsets.len() / 2] as f64 / 1000.0;
        let first = self.pairs.front()?.0;
        let drift = if self.pairs.len() >= 3 && last.0 - first.0 >= 30_000_000 {
            let n = self.pairs.len() as f64;
            let xs: Vec<f64> = self
                .pairs
                .iter()
                .map(|p| (p.0 .0 - first.0) as f64 / 60e6)
                .collect();
            let ys: Vec<f64> = self.pairs.iter().map(|p| p.1 as f64 / 1000.0).collect();
            let mx = xs.iter().sum::<f64>() / n;
            let my = ys.iter().sum::<f64>() / n;
            let sxx: f64 = xs.iter().map(|x| (x - mx).powi(2)).sum();
            let sxy: f64 = xs.iter().zip(&ys).map(|(x, y)| (x - mx) * (y - my)).sum();
            (sxx > 0.0).then(|| sxy / sxx)
        } else {
            None
        };
        let resolution_ms = if self.frame_intervals.is_empty() {
            None
        } else {
            let mut iv: Vec<i64> = self.frame_intervals.iter().copied().collect();
            iv.sort_unstable();
            Some(iv[iv.len() / 2] as f64 / 1000.0)
        };
        Some(SyncReading {
            offset_ms: median,
            drift_ms_per_min: drift,
            pairs: self.pairs.len(),
            resolution_ms,
            last_pair_at: last,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `seconds` of 5-fps frames (flash at each whole second from 1 s) and 16-kHz audio
    /// (an 80-ms beep at each whole second + `audio_late_ms`), in 20-ms chunks.
    fn run(seconds: i64, audio_late_ms: i64, drift_ms_per_s: f64) -> OffsetMonitor {
        let mut m = OffsetMonitor::new();
        let sr = 16_000i64;
        let chunk = 320;
        let total = seconds * sr;
        let mut next_frame = 0i64;
        let mut n = 0i64;
        while n < total {
            let t_us = n * 1_000_000 / sr;
            while next_frame <= t_us {
                let whole = next_frame % 1_000_000 == 0 && next_frame > 0;
                m.push_frame(Timestamp(next_frame), if whole { 250.0 } else { 80.0 });
                next_frame += 200_000;
            }
            let samples: Vec<f32> = (n..n + chunk)
                .map(|i| {
                    let t_s = i as f64 / sr as f64;
                    // The beep of second k starts at k + lateness (which may be negative).
                    let k = (t_s + 0.5).floor();
                    let late = (audio_late_ms as f64 + drift_ms_per_s * k) / 1000.0;
                    let into = t_s - k - late;
                    if k >= 1.0 && (0.0..0.08).contains(&into) {
                        0.5 * (2.0 * std::f64::consts::PI * 1000.0 * into).sin() as f32
                    } else {
                        0.0
                    }
                })
                .collect();
            m.push_audio(Timestamp(t_us), &samples);
            n += chunk;
        }
        m
    }

    #[test]
    fn coincident_flashes_and_beeps_read_zero_offset() {
        let r = run(10, 0, 0.0).reading().unwrap();
        assert!(r.offset_ms.abs() <= 1.0, "{r:?}");
        assert!(r.pairs >= 8, "{r:?}");
        assert_eq!(r.resolution_ms, Some(200.0));
        assert_eq!(r.drift_ms_per_min, None, "10 s is too short for a drift");
    }

    #[test]
    fn late_sound_reads_as_a_positive_offset() {
        let r = run(10, 120, 0.0).reading().unwrap();
        assert!((r.offset_ms - 120.0).abs() <= 2.0, "{r:?}");
        let early = run(10, -150, 0.0).reading().unwrap();
        assert!((early.offset_ms + 150.0).abs() <= 2.0, "{early:?}");
    }

    #[test]
    fn drift_is_the_slope_of_the_offsets() {
        // 1 ms later each second = 60 ms per minute.
        let r = run(40, 0, 1.0).reading().unwrap();
        let d = r.drift_ms_per_min.unwrap();
        assert!((d - 60.0).abs() < 3.0, "{r:?}");
    }

    #[test]
    fn content_without_events_gives_no_reading() {
        let mut m = OffsetMonitor::new();
        for i in 0..50 {
            m.push_frame(Timestamp(i * 200_000), 100.0 + (i % 3) as f32);
            m.push_audio(Timestamp(i * 200_000), &vec![0.01; 3200]);
        }
        assert_eq!(m.reading(), None);
    }

    #[test]
    fn mean_luma_of_white_and_black() {
        let white = Frame::new(4, 2, vec![255; 24]).unwrap();
        let black = Frame::new(4, 2, vec![0; 24]).unwrap();
        assert!((mean_luma(&white) - 255.0).abs() < 0.01);
        assert_eq!(mean_luma(&black), 0.0);
    }
}
