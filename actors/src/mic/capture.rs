//! From a device's callbacks to the pipeline's chunks: downmix, resample to 16 kHz, cut into
//! 100 ms chunks, and stamp each chunk with the capture time of its first sample.
//!
//! **Timestamps.** A sound card's samples are evenly spaced in time, while callbacks arrive with
//! jitter, so chunks are stamped by sample count: `anchor + samples / 16 kHz`. The anchor is
//! the capture time of the first sample, estimated at the first callback; the estimate for
//! every callback is passed to [`ChunkAssembler::push`] (the capture thread computes it from
//! the callback's arrival time and cpal's capture timestamp). The estimate is an upper bound —
//! a buffer's first frame cannot have been captured later than `arrival − buffer length` — but
//! not a tight one: delivery can be late. So the two disagreements are treated differently:
//!
//! * sample-count time *later* than the estimate by more than [`REANCHOR_AFTER`] is impossible
//!   (the card's clock runs fast, or the first anchor was late): the anchor moves back at once;
//! * sample-count time *earlier* than the estimate by more than [`REANCHOR_AFTER`] means samples
//!   were lost (an overrun) — or only that delivery is late: a frozen PulseAudio, on resuming,
//!   delivers the missed seconds in a burst (measured), and then the two agree again. The anchor
//!   moves forward only when every estimate for [`REANCHOR_CONFIRM`] agrees, by the smallest
//!   disagreement seen (the loss; any delivery delay only adds to it).
//!
//! Each move is counted. It shows in the pipeline as a gap (counted silence) or an overlap
//! (trimmed). Chunks handed out while a loss is being confirmed are stamped early by the loss.

use std::time::Duration;

use cav_core::Timestamp;
use serde::Serialize;

use crate::resample::{downmix, ResampleError, To16k, OUTPUT_RATE};

/// Samples per chunk: 100 ms at 16 kHz.
pub const CHUNK_SAMPLES: usize = 1600;

/// The largest disagreement between sample-count time and callback time that is put down to
/// jitter; beyond it the timeline is re-anchored.
pub const REANCHOR_AFTER: Duration = Duration::from_millis(200);

/// How long sample-count time must stay behind the estimates before the anchor moves forward.
pub const REANCHOR_CONFIRM: Duration = Duration::from_secs(1);

/// The format a capture stream was opened with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CaptureFormat {
    pub sample_rate: u32,
    pub channels: u16,
    /// cpal's name for it: `f32`, `i16`, `u16`, `i32`, …
    pub sample_format: String,
}

impl std::fmt::Display for CaptureFormat {
    /// `44100 Hz 2 ch f32`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} Hz {} ch {}",
            self.sample_rate, self.channels, self.sample_format
        )
    }
}

/// A chunk ready for the pipeline: the capture time of its first sample, and 16 kHz mono samples.
pub type StampedChunk = (Timestamp, Vec<f32>);

/// Turns interleaved `f32` callbacks of one stream into stamped 16 kHz mono chunks.
pub struct ChunkAssembler {
    rate_in: u32,
    channels: usize,
    resampler: To16k,
    /// 16 kHz samples not yet handed out; `pending[0]` is output sample `emitted`.
    pending: Vec<f32>,
    emitted: u64,
    /// Capture time of output sample 0 (and of input frame 0); moved by re-anchoring.
    anchor: Option<Timestamp>,
    frames_in: u64,
    reanchors: u64,
    last_drift_us: i64,
    /// While sample-count time is behind by more than [`REANCHOR_AFTER`]: since when (the
    /// estimate of the first such callback), and the smallest lag seen.
    behind: Option<(Timestamp, i64)>,
}

impl std::fmt::Debug for ChunkAssembler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkAssembler")
            .field("rate_in", &self.rate_in)
            .field("channels", &self.channels)
            .field("frames_in", &self.frames_in)
            .field("reanchors", &self.reanchors)
            .finish()
    }
}

impl ChunkAssembler {
    pub fn new(rate_in: u32, channels: u16) -> Result<Self, ResampleError> {
        Ok(Self {
            rate_in,
            channels: usize::from(channels.max(1)),
            resampler: To16k::new(rate_in)?,
            pending: Vec::with_capacity(2 * CHUNK_SAMPLES),
            emitted: 0,
            anchor: None,
            frames_in: 0,
            reanchors: 0,
            last_drift_us: 0,
            behind: None,
        })
    }

    /// Feeds one callback's samples (interleaved, whole frames), whose first frame was captured
    /// at about `captured`. Returns the chunks completed by it, oldest first.
    pub fn push(
        &mut self,
        interleaved: &[f32],
        captured: Timestamp,
    ) -> Result<Vec<StampedChunk>, ResampleError> {
        let frames = interleaved.len() / self.channels;
        let anchor = match self.anchor {
            None => captured,
            Some(anchor) => {
                let predicted = anchor.micros() + self.input_micros(self.frames_in);
                let drift = captured.micros() - predicted;
                self.last_drift_us = drift;
                let limit = REANCHOR_AFTER.as_micros() as i64;
                let shift = if drift < -limit {
                    self.behind = None;
                    Some(drift)
                } else if drift > limit {
                    let (since, least) = self.behind.unwrap_or((captured, drift));
                    let least = least.min(drift);
                    let confirmed =
                        captured.micros() - since.micros() >= REANCHOR_CONFIRM.as_micros() as i64;
                    self.behind = if confirmed {
                        None
                    } else {
                        Some((since, least))
                    };
                    confirmed.then_some(least)
                } else {
                    self.behind = None;
                    None
                };
                match shift {
                    Some(shift) => {
                        self.reanchors += 1;
                        tracing::debug!(shift_ms = shift / 1000, "capture timeline re-anchored");
                        Timestamp::from_micros(anchor.micros() + shift)
                    }
                    None => anchor,
                }
            }
        };
        self.anchor = Some(anchor);
        self.frames_in += frames as u64;
        let mono = downmix(&interleaved[..frames * self.channels], self.channels);
        self.resampler.push(&mono, &mut self.pending)?;

        let mut chunks = Vec::new();
        let mut start = 0;
        while self.pending.len() - start >= CHUNK_SAMPLES {
            let stamp = Timestamp::from_micros(
                anchor.micros() + (self.emitted as i64 * 1_000_000) / i64::from(OUTPUT_RATE),
            );
            chunks.push((stamp, self.pending[start..start + CHUNK_SAMPLES].to_vec()));
            start += CHUNK_SAMPLES;
            self.emitted += CHUNK_SAMPLES as u64;
        }
        self.pending.drain(..start);
        Ok(chunks)
    }

    /// Microseconds spanned by `frames` input frames.
    fn input_micros(&self, frames: u64) -> i64 {
        (frames as i128 * 1_000_000 / i128::from(self.rate_in)) as i64
    }

    /// How often the timeline was re-anchored.
    pub fn reanchors(&self) -> u64 {
        self.reanchors
    }

    /// The latest callback's `estimate − sample-count time`, in microseconds (0 before the
    /// second callback).
    pub fn last_drift_us(&self) -> i64 {
        self.last_drift_us
    }

    pub fn frames_in(&self) -> u64 {
        self.frames_in
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stereo_sine(rate: u32, hz: f32, amp: f32, frames: usize, from: usize) -> Vec<f32> {
        (from..from + frames)
            .flat_map(|i| {
                let x = amp * (2.0 * std::f32::consts::PI * hz * i as f32 / rate as f32).sin();
                [x, x]
            })
            .collect()
    }

    #[test]
    fn chunks_are_stamped_by_sample_count_despite_jitter() {
        let rate = 44_100;
        let mut a = ChunkAssembler::new(rate, 2).unwrap();
        let t0 = Timestamp::from_secs_f64(1000.0);
        let mut chunks = Vec::new();
        let mut frame = 0usize;
        for k in 0..100 {
            // 441-frame callbacks (10 ms) with ±30 ms of arrival jitter.
            let jitter = [0i64, 30_000, -30_000, 12_000][k % 4];
            let captured = Timestamp::from_micros(
                t0.micros() + (frame as i64 * 1_000_000) / i64::from(rate) + jitter,
            );
            chunks.extend(
                a.push(&stereo_sine(rate, 1000.0, 0.5, 441, frame), captured)
                    .unwrap(),
            );
            frame += 441;
        }
        assert_eq!(a.reanchors(), 0);
        assert!(chunks.len() >= 9, "{} chunks", chunks.len());
        for (i, (stamp, samples)) in chunks.iter().enumerate() {
            assert_eq!(samples.len(), CHUNK_SAMPLES);
            assert_eq!(stamp.micros() - t0.micros(), i as i64 * 100_000);
        }
        let rms = (chunks[5].1.iter().map(|x| x * x).sum::<f32>() / CHUNK_SAMPLES as f32).sqrt();
        assert!((rms - 0.3536).abs() < 0.01, "rms {rms}");
    }

    /// Feeds 100 ms mono callbacks at 16 kHz, the k-th with estimate `estimate(k)`; returns
    /// the stamps of the chunks (one per callback), in seconds.
    fn stamps(
        a: &mut ChunkAssembler,
        from: usize,
        to: usize,
        estimate: impl Fn(usize) -> f64,
    ) -> Vec<f64> {
        let silence = vec![0.0f32; 1600];
        (from..to)
            .flat_map(|k| {
                a.push(&silence, Timestamp::from_secs_f64(estimate(k)))
                    .unwrap()
            })
            .map(|(t, _)| t.secs_f64())
            .collect()
    }

    fn close(a: &[f64], b: &[f64]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5)
    }

    #[test]
    fn lost_samples_move_the_anchor_forward_once_confirmed() {
        let mut a = ChunkAssembler::new(16_000, 1).unwrap();
        assert!(close(
            &stamps(&mut a, 0, 3, |k| 50.0 + 0.1 * k as f64),
            &[50.0, 50.1, 50.2]
        ));
        // 0.5 s of samples went missing (an overrun): from callback 3 on, each buffer was
        // captured 0.5 s later than the sample count says. Until that has held for 1 s the
        // stamps go on by sample count; then the timeline jumps by the loss.
        let lost = |k: usize| 50.5 + 0.1 * k as f64;
        let got = stamps(&mut a, 3, 20, lost);
        assert_eq!(a.reanchors(), 1);
        let expected: Vec<f64> = (3..20)
            .map(|k| {
                if k < 13 {
                    50.0 + 0.1 * k as f64
                } else {
                    lost(k)
                }
            })
            .collect();
        assert!(close(&got, &expected), "{got:?}");
    }

    #[test]
    fn late_delivery_followed_by_a_burst_keeps_the_timeline() {
        let mut a = ChunkAssembler::new(16_000, 1).unwrap();
        // Callbacks 0–9 on time; then nothing for 2 s (the server froze), and the missed
        // buffers arrive together when it resumes, each estimated at the burst's time.
        let estimate = |k: usize| match k {
            0..=9 => 10.0 + 0.1 * k as f64,
            10..=29 => 13.0 - 0.1,
            _ => 10.0 + 0.1 * k as f64,
        };
        let got = stamps(&mut a, 0, 40, estimate);
        assert_eq!(a.reanchors(), 0);
        let expected: Vec<f64> = (0..40).map(|k| 10.0 + 0.1 * k as f64).collect();
        assert!(close(&got, &expected), "{got:?}");
    }

    #[test]
    fn a_timeline_ahead_of_the_clock_moves_back_at_once() {
        let mut a = ChunkAssembler::new(16_000, 1).unwrap();
        stamps(&mut a, 0, 2, |k| 20.0 + 0.1 * k as f64);
        // The card delivers faster than the clock (or the first estimate was late): by
        // callback 2 its samples claim to be 0.3 s newer than they can be.
        let got = stamps(&mut a, 2, 4, |k| 19.7 + 0.1 * k as f64);
        assert_eq!(a.reanchors(), 1);
        assert!(close(&got, &[19.9, 20.0]), "{got:?}");
    }

    #[test]
    fn formats_read_like_the_board_detail() {
        let f = CaptureFormat {
            sample_rate: 44_100,
            channels: 2,
            sample_format: "f32".into(),
        };
        assert_eq!(f.to_string(), "44100 Hz 2 ch f32");
    }
}
