//! Alignment of video frames and audio samples by capture time.
//!
//! Sources stamp every frame and every audio chunk (the time of its first sample) on the
//! pipeline's clock. The [`Aligner`] cuts both streams into consecutive spans of equal length
//! (`hop`) and hands out a span only when it is complete: both expected streams have delivered data
//! past its end, or a stream has been silent for longer than `max_wait` (a stalled camera must not
//! hold the microphone's analysis hostage, and vice versa).
//!
//! Audio is kept as one contiguous run of samples. A chunk that starts later than the end of the
//! run by more than `tolerance` leaves a gap, which is filled with silence and counted; a chunk
//! that overlaps the run by more than `tolerance` is trimmed. Within the tolerance the sample count
//! is trusted over the stamp, so clock jitter on chunk stamps does not tear the audio.

use std::collections::VecDeque;
use std::time::Duration;

use crate::time::Timestamp;
use crate::SAMPLE_RATE;

/// Which streams a span is expected to contain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expect {
    pub video: bool,
    pub audio: bool,
}

/// One aligned span: the frames whose capture time falls in `[start, end)` and the audio
/// samples covering exactly the same interval (`None` when no audio was expected or received).
#[derive(Clone, Debug)]
pub struct AlignedSpan<F> {
    pub start: Timestamp,
    pub end: Timestamp,
    pub frames: Vec<(Timestamp, F)>,
    pub audio: Option<Vec<f32>>,
    /// Samples of this span that no chunk covered and were filled with silence.
    pub audio_missing_samples: usize,
}

/// Counters describing how well the streams lined up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AlignStats {
    pub spans: u64,
    pub frames_late: u64,
    pub audio_gap_samples: u64,
    pub audio_overlap_samples: u64,
    pub audio_late_samples: u64,
}

#[derive(Debug)]
pub struct Aligner<F> {
    hop_us: i64,
    max_wait_us: i64,
    tolerance_us: i64,
    expect: Expect,
    next_start: Option<Timestamp>,
    frames: VecDeque<(Timestamp, F)>,
    video_until: Option<Timestamp>,
    audio: VecDeque<f32>,
    /// Capture time of `audio[0]`.
    audio_start: Option<Timestamp>,
    stats: AlignStats,
}

fn samples_to_us(n: usize) -> i64 {
    (n as i64 * 1_000_000) / SAMPLE_RATE as i64
}

fn us_to_samples(us: i64) -> i64 {
    // Rounded to the nearest sample so that repeated cuts do not drift.
    (us * SAMPLE_RATE as i64 + 500_000).div_euclid(1_000_000)
}

impl<F> Aligner<F> {
    pub fn new(hop: Duration, max_wait: Duration, expect: Expect) -> Self {
        Self {
            hop_us: hop.as_micros().max(1) as i64,
            max_wait_us: max_wait.as_micros() as i64,
            tolerance_us: 50_000,
            expect,
            next_start: None,
            frames: VecDeque::new(),
            video_until: None,
            audio: VecDeque::new(),
            audio_start: None,
            stats: AlignStats::default(),
        }
    }

    pub fn stats(&self) -> AlignStats {
        self.stats
    }

    pub fn expect(&self) -> Expect {
        self.expect
    }

    /// Changes which streams are waited for (a source appeared or went away).
    pub fn set_expect(&mut self, expect: Expect) {
        self.expect = expect;
    }

    fn audio_end(&self) -> Option<Timestamp> {
        self.audio_start
            .map(|s| Timestamp(s.0 + samples_to_us(self.audio.len())))
    }

    fn start_at(&mut self, t: Timestamp) {
        if self.next_start.is_none() {
            // Spans start on multiples of the hop so that they line up with wall-clock seconds.
            self.next_start = Some(Timestamp(t.0.div_euclid(self.hop_us) * self.hop_us));
        }
    }

    pub fn push_frame(&mut self, t: Timestamp, frame: F) {
        self.start_at(t);
        if let Some(start) = self.next_start {
            if t < start {
                // Its span was already handed out.
                self.stats.frames_late += 1;
                return;
            }
        }
        self.video_until = Some(self.video_until.map_or(t, |u| u.max(t)));
        // Frames normally arrive in order; keep the queue sorted if one does not.
        let pos = self.frames.partition_point(|(ft, _)| *ft <= t);
        self.frames.insert(pos, (t, frame));
    }

    pub fn push_audio(&mut self, t: Timestamp, samples: &[f32]) {
        if samples.is_empty() {
            return;
        }
        self.start_at(t);
        let mut samples = samples;
        let mut t = t;
        // Drop what falls before spans already handed out.
        if let Some(start) = self.next_start {
            if t < start {
                let late = us_to_samples(start.0 - t.0).clamp(0, samples.len() as i64) as usize;
                self.stats.audio_late_samples += late as u64;
                samples = &samples[late..];
                t = Timestamp(t.0 + samples_to_us(late));
                if samples.is_empty() {
                    return;
                }
            }
        }
        match self.audio_end() {
            None => {
                self.audio_start = Some(t);
                self.audio.extend(samples);
            }
            Some(end) => {
                let delta = t.0 - end.0;
                if delta > self.tolerance_us {
                    let gap = us_to_samples(delta) as usize;
                    self.stats.audio_gap_samples += gap as u64;
                    self.audio.extend(std::iter::repeat_n(0.0, gap));
                    self.audio.extend(samples);
                } else if delta < -self.tolerance_us {
                    let overlap = us_to_samples(-delta).clamp(0, samples.len() as i64) as usize;
                    self.stats.audio_overlap_samples += overlap as u64;
                    self.audio.extend(&samples[overlap..]);
                } else {
                    self.audio.extend(samples);
                }
            }
        }
    }

    /// Hands out every span that is complete at time `now`.
    pub fn poll(&mut self, now: Timestamp) -> Vec<AlignedSpan<F>> {
        let mut out = Vec::new();
        while let Some(span) = self.try_cut(now, false) {
            out.push(span);
        }
        out
    }

    /// Hands out all buffered data, including a final partial span (end of a file).
    pub fn flush(&mut self) -> Vec<AlignedSpan<F>> {
        let mut out = Vec::new();
        while let Some(span) = self.try_cut(Timestamp(i64::MAX), true) {
            out.push(span);
        }
        out
    }

    fn has_buffered(&self, end: Timestamp) -> bool {
        let video_left = self.frames.front().is_some_and(|(t, _)| *t < end);
        let audio_left = self.audio_start.is_some_and(|s| s < end) && !self.audio.is_empty();
        video_left || audio_left
    }

    fn try_cut(&mut self, now: Timestamp, flushing: bool) -> Option<AlignedSpan<F>> {
        let start = self.next_start?;
        let end = Timestamp(start.0 + self.hop_us);
        if flushing {
            if !self.has_buffered(end) && !self.has_buffered(Timestamp(i64::MAX)) {
                return None;
            }
        } else {
            let waited_out = now.0 >= end.0 + self.max_wait_us;
            let video_ready =
                !self.expect.video || waited_out || self.video_until.is_some_and(|u| u >= end);
            let audio_ready =
                !self.expect.audio || waited_out || self.audio_end().is_some_and(|e| e >= end);
            let anything = self.video_until.is_some() || self.audio_start.is_some();
            if !(video_ready && audio_ready && anything) {
                return None;
            }
        }

        let mut frames = Vec::new();
        while self.frames.front().is_some_and(|(t, _)| *t < end) {
            if let Some(f) = self.frames.pop_front() {
                frames.push(f);
            }
        }

        let (audio, missing) = self.cut_audio(start, end);
        self.next_start = Some(end);
        self.stats.spans += 1;
        Some(AlignedSpan {
            start,
            end,
            frames,
            audio,
            audio_missing_samples: missing,
        })
    }

    fn cut_audio(&mut self, start: Timestamp, end: Timestamp) -> (Option<Vec<f32>>, usize) {
        let want = us_to_samples(end.0 - start.0).max(0) as usize;
        let Some(audio_start) = self.audio_start else {
            return if self.expect.audio {
                (Some(vec![0.0; want]), want)
            } else {
                (None, 0)
            };
        };
        if audio_start >= end {
            // The buffered audio begins after this span.
            return (Some(vec![0.0; want]), want);
        }
        let mut out = Vec::with_capacity(want);
        let mut missing = 0;
        // Silence for the part of the span before the first buffered sample.
        let lead = us_to_samples(audio_start.0 - start.0).clamp(0, want as i64) as usize;
        out.extend(std::iter::repeat_n(0.0, lead));
        missing += lead;
        // Samples buffered before `start` belong to no span any more.
        let stale = us_to_samples(start.0 - audio_start.0).max(0) as usize;
        let stale = stale.min(self.audio.len());
        self.audio.drain(..stale);
        let take = (want - lead).min(self.audio.len());
        out.extend(self.audio.drain(..take));
        let tail = want - out.len();
        out.extend(std::iter::repeat_n(0.0, tail));
        missing += tail;
        // Whatever is left starts exactly where this span ends.
        self.audio_start = Some(end);
        (Some(out), missing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: i64 = 1_000_000;

    fn both() -> Expect {
        Expect {
            video: true,
            audio: true,
        }
    }

    #[test]
    fn cuts_frames_and_audio_of_the_same_second() {
        let mut a: Aligner<u32> =
            Aligner::new(Duration::from_secs(1), Duration::from_secs(2), both());
        // 5 fps frames and 100 ms audio chunks from t = 10 s to 12 s.
        for i in 0..10 {
            a.push_frame(Timestamp(10 * SEC + i * 200_000), i as u32);
        }
        for i in 0..20 {
            let t = Timestamp(10 * SEC + i * 100_000);
            let v = if i < 10 { 0.25 } else { 0.5 };
            a.push_audio(t, &vec![v; 1600]);
        }
        // Video has reached only 11.8 s: the first second is complete, the second is not.
        let spans = a.poll(Timestamp(12 * SEC));
        assert_eq!(spans.len(), 1);
        let s = &spans[0];
        assert_eq!((s.start, s.end), (Timestamp(10 * SEC), Timestamp(11 * SEC)));
        assert_eq!(
            s.frames.iter().map(|f| f.1).collect::<Vec<_>>(),
            vec![0, 1, 2, 3, 4]
        );
        let audio = s.audio.as_ref().unwrap();
        assert_eq!(audio.len(), 16_000);
        assert!(
            audio.iter().all(|&x| x == 0.25),
            "the second second's audio leaked in"
        );
        assert_eq!(s.audio_missing_samples, 0);

        a.push_frame(Timestamp(12 * SEC), 10);
        let spans = a.poll(Timestamp(12 * SEC));
        assert_eq!(spans.len(), 1);
        assert!(spans[0].audio.as_ref().unwrap().iter().all(|&x| x == 0.5));
        assert_eq!(spans[0].frames.len(), 5);
    }

    #[test]
    fn a_stalled_stream_is_waited_for_only_max_wait() {
        let mut a: Aligner<()> =
            Aligner::new(Duration::from_secs(1), Duration::from_millis(1500), both());
        for i in 0..30 {
            a.push_audio(Timestamp(i * 100_000), &[0.1; 1600]);
        }
        // No video at all: nothing until 1 s + 1.5 s.
        assert!(a.poll(Timestamp(2 * SEC)).is_empty());
        let spans = a.poll(Timestamp(2_500_000));
        assert_eq!(spans.len(), 1);
        assert!(spans[0].frames.is_empty());
        assert_eq!(spans[0].audio.as_ref().unwrap().len(), 16_000);
    }

    #[test]
    fn audio_gaps_are_filled_with_counted_silence() {
        let mut a: Aligner<()> = Aligner::new(
            Duration::from_secs(1),
            Duration::from_secs(5),
            Expect {
                video: false,
                audio: true,
            },
        );
        a.push_audio(Timestamp(0), &[1.0; 4000]); // 0 .. 0.25 s
        a.push_audio(Timestamp(500_000), &[1.0; 12000]); // 0.5 .. 1.25 s
        let spans = a.poll(Timestamp(SEC));
        assert_eq!(spans.len(), 1);
        let audio = spans[0].audio.as_ref().unwrap();
        assert_eq!(audio.len(), 16_000);
        assert_eq!(audio.iter().filter(|&&x| x == 0.0).count(), 4000);
        assert_eq!(audio[4000], 0.0);
        assert_eq!(audio[8000], 1.0);
        assert_eq!(a.stats().audio_gap_samples, 4000);
    }

    #[test]
    fn small_stamp_jitter_does_not_tear_audio() {
        let mut a: Aligner<()> = Aligner::new(
            Duration::from_secs(1),
            Duration::from_secs(5),
            Expect {
                video: false,
                audio: true,
            },
        );
        for i in 0..20i64 {
            // The first chunk is on time; later stamps wobble by ±3 ms.
            let jitter = match i {
                0 => 0,
                _ if i % 2 == 0 => 3_000,
                _ => -3_000,
            };
            a.push_audio(Timestamp(i * 100_000 + jitter), &[0.5; 1600]);
        }
        // Two seconds of audio: two whole spans, nothing filled in or cut away.
        let spans = a.poll(Timestamp(3 * SEC));
        assert_eq!(spans.len(), 2);
        assert_eq!(a.stats().audio_gap_samples, 0);
        assert_eq!(a.stats().audio_overlap_samples, 0);
        assert!(spans.iter().all(|s| s.audio_missing_samples == 0));
    }

    #[test]
    fn video_only_spans_carry_no_audio_and_flush_keeps_the_tail() {
        let mut a: Aligner<u8> = Aligner::new(
            Duration::from_secs(1),
            Duration::from_secs(5),
            Expect {
                video: true,
                audio: false,
            },
        );
        for i in 0..7 {
            a.push_frame(Timestamp(i * 250_000), i as u8);
        }
        let spans = a.poll(Timestamp(0));
        assert_eq!(spans.len(), 1);
        assert!(spans[0].audio.is_none());
        let rest = a.flush();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].frames.len(), 3);
        assert!(a.flush().is_empty());
    }

    #[test]
    fn late_frames_are_counted_and_dropped() {
        let mut a: Aligner<u8> = Aligner::new(
            Duration::from_secs(1),
            Duration::from_secs(5),
            Expect {
                video: true,
                audio: false,
            },
        );
        a.push_frame(Timestamp(100_000), 1);
        a.push_frame(Timestamp(1_100_000), 2);
        assert_eq!(a.poll(Timestamp(0)).len(), 1);
        a.push_frame(Timestamp(500_000), 3);
        assert_eq!(a.stats().frames_late, 1);
    }
}
