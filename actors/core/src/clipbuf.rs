//! The last seconds of picture and sound, kept for saving clips (`POST /api/save-clip`).
//!
//! Frames are kept with their capture times; audio as one contiguous run timed by its sample
//! count from an anchor (small gaps are filled with silence so that the run stays in time; a
//! large gap or a step back restarts it). Everything older than the buffer length is dropped.

use std::collections::VecDeque;
use std::time::Duration;

use crate::frame::Frame;
use crate::time::Timestamp;
use crate::SAMPLE_RATE;

/// Gaps in the audio up to this long are filled with silence; longer ones restart the run.
const MAX_FILL_US: i64 = 1_000_000;
/// Stamp jitter below this is ignored in favour of the sample count.
const JITTER_US: i64 = 20_000;

/// A stretch taken from the buffer.
#[derive(Clone, Debug)]
pub struct Clip {
    pub start: Timestamp,
    pub end: Timestamp,
    pub frames: Vec<(Timestamp, Frame)>,
    /// 16 kHz mono, starting at `start` (empty when there was no audio).
    pub audio: Vec<f32>,
}

#[derive(Debug)]
pub struct ClipBuffer {
    keep_us: i64,
    frames: VecDeque<(Timestamp, Frame)>,
    audio: VecDeque<f32>,
    audio_start: Option<Timestamp>,
}

fn samples_to_us(n: usize) -> i64 {
    n as i64 * 1_000_000 / i64::from(SAMPLE_RATE)
}

fn us_to_samples(us: i64) -> usize {
    (us.max(0) as i128 * i128::from(SAMPLE_RATE) / 1_000_000) as usize
}

impl ClipBuffer {
    pub fn new(keep: Duration) -> Self {
        Self {
            keep_us: keep.as_micros().min(i64::MAX as u128) as i64,
            frames: VecDeque::new(),
            audio: VecDeque::new(),
            audio_start: None,
        }
    }

    pub fn keep(&self) -> Duration {
        Duration::from_micros(self.keep_us as u64)
    }

    fn audio_end(&self) -> Option<Timestamp> {
        self.audio_start
            .map(|s| Timestamp(s.0 + samples_to_us(self.audio.len())))
    }

    fn latest(&self) -> Option<Timestamp> {
        let f = self.frames.back().map(|(t, _)| *t);
        match (f, self.audio_end()) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    fn trim(&mut self) {
        let Some(latest) = self.latest() else { return };
        let cutoff = latest.0 - self.keep_us;
        while self.frames.front().is_some_and(|(t, _)| t.0 < cutoff) {
            self.frames.pop_front();
        }
        if let Some(start) = self.audio_start {
            let drop = us_to_samples(cutoff - start.0).min(self.audio.len());
            if drop > 0 {
                self.audio.drain(..drop);
                self.audio_start = Some(Timestamp(start.0 + samples_to_us(drop)));
            }
        }
    }

    pub fn push_frame(&mut self, t: Timestamp, frame: Frame) {
        if self.frames.back().is_some_and(|(last, _)| t.0 <= last.0) {
            return; // Out of order: a clip's frames must be in time order.
        }
        self.frames.push_back((t, frame));
        self.trim();
    }

    pub fn push_audio(&mut self, t: Timestamp, samples: &[f32]) {
        match self.audio_end() {
            Some(end) if (t.0 - end.0).abs() <= JITTER_US => {}
            Some(end) if t.0 > end.0 && t.0 - end.0 <= MAX_FILL_US => {
                let gap = us_to_samples(t.0 - end.0);
                self.audio.extend(std::iter::repeat_n(0.0, gap));
            }
            _ => {
                self.audio.clear();
                self.audio_start = Some(t);
            }
        }
        self.audio.extend(samples.iter().copied());
        self.trim();
    }

    /// The newest frame and its capture time, if a frame is buffered (`GET /api/snapshot.jpg`).
    pub fn latest_frame(&self) -> Option<(Timestamp, Frame)> {
        self.frames.back().cloned()
    }

    /// The last `duration` (at most the buffer length) up to the newest data, or `None` when
    /// nothing is buffered.
    pub fn last(&self, duration: Duration) -> Option<Clip> {
        let end = self.latest()?;
        let want = (duration.as_micros().min(i64::MAX as u128) as i64).min(self.keep_us);
        let oldest = [self.frames.front().map(|(t, _)| *t), self.audio_start]
            .into_iter()
            .flatten()
            .min()?;
        let start = Timestamp((end.0 - want).max(oldest.0));
        let frames: Vec<(Timestamp, Frame)> = self
            .frames
            .iter()
            .filter(|(t, _)| t.0 >= start.0 && t.0 < end.0)
            .cloned()
            .collect();
        // A clip with pictures starts on its first picture, so that the video's frame grid
        // falls on the capture times and a flash stays on the beep that went with it.
        let start = frames.first().map_or(start, |(t, _)| *t);
        let audio = match self.audio_start {
            Some(a) => {
                // Silence before the audio run began, then the run from `start` to `end`.
                let lead = us_to_samples(a.0 - start.0);
                let from = us_to_samples(start.0 - a.0);
                let n = us_to_samples(end.0 - start.0);
                let mut out = vec![0.0; lead.min(n)];
                out.extend(self.audio.iter().skip(from).take(n - out.len()));
                out.resize(n, 0.0);
                out
            }
            None => Vec::new(),
        };
        Some(Clip {
            start,
            end,
            frames,
            audio,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame() -> Frame {
        Frame::filled(2, 2, [1, 2, 3]).unwrap()
    }

    #[test]
    fn keeps_only_the_buffer_length_and_cuts_clips_in_time() {
        let mut b = ClipBuffer::new(Duration::from_secs(10));
        // 30 s of 5-fps frames and 20-ms audio chunks.
        for i in 0..1500 {
            let t = Timestamp(i * 20_000);
            if i % 10 == 0 {
                b.push_frame(t, frame());
            }
            b.push_audio(t, &[0.1; 320]);
        }
        let all = b.last(Duration::from_secs(60)).unwrap();
        assert_eq!(all.end, Timestamp(30_000_000));
        assert_eq!(all.start, Timestamp(20_000_000), "clamped to the buffer");
        assert_eq!(all.frames.len(), 50);
        assert_eq!(all.audio.len(), 160_000);
        let clip = b.last(Duration::from_secs(3)).unwrap();
        assert_eq!(clip.start, Timestamp(27_000_000));
        assert_eq!(clip.frames.len(), 15);
        assert_eq!(clip.frames[0].0, Timestamp(27_000_000));
        assert_eq!(clip.audio.len(), 48_000);
    }

    #[test]
    fn audio_gaps_become_silence_and_jumps_restart_the_run() {
        let mut b = ClipBuffer::new(Duration::from_secs(10));
        b.push_audio(Timestamp(0), &[1.0; 1600]); // 0-100 ms
        b.push_audio(Timestamp(200_000), &[1.0; 1600]); // gap of 100 ms
        let c = b.last(Duration::from_secs(1)).unwrap();
        assert_eq!(c.audio.len(), 4800);
        assert!(c.audio[1600..3200].iter().all(|&x| x == 0.0));
        assert!(c.audio[3200..].iter().all(|&x| x == 1.0));
        // A jump of 5 s restarts the run there.
        b.push_audio(Timestamp(5_300_000), &[0.5; 160]);
        let c = b.last(Duration::from_millis(10)).unwrap();
        assert_eq!(c.start, Timestamp(5_300_000));
        assert!(c.audio.iter().all(|&x| x == 0.5));
    }

    #[test]
    fn an_empty_buffer_has_no_clip() {
        assert!(ClipBuffer::new(Duration::from_secs(5))
            .last(Duration::from_secs(1))
            .is_none());
    }
}
