//! Features of one aligned span (typically 1 s): what the frames showed and what the audio held.

use serde::{Deserialize, Serialize};

use crate::align::AlignedSpan;
use crate::audio_features::{AudioAnalyzer, AudioFeatures};
use crate::frame::Frame;
use crate::stats;
use crate::time::Timestamp;
use crate::video_features::FrameAnalyzer;
use crate::SAMPLE_RATE;

/// The frames of one span, reduced to a few numbers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VideoSpanStats {
    pub frames: u32,
    /// Mean and largest share of pixels that changed between consecutive frames, in percent.
    pub motion_mean: f32,
    pub motion_max: f32,
    /// Mean luma, 0..255.
    pub brightness: f32,
    /// Mean share of skin-coloured pixels, in percent.
    pub skin_percent: f32,
}

/// Everything the classifier knows about one span.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpanFeatures {
    pub start: Timestamp,
    pub end: Timestamp,
    pub video: Option<VideoSpanStats>,
    pub audio: Option<AudioFeatures>,
    /// Whether the audio looks like someone speaking (see [`is_voice_like`]).
    pub voice_like: bool,
}

/// Loudness above which a span can count as speech, in dBFS. Speech at conversational level
/// picked up by a room microphone sits around -40..-20 dBFS.
pub const VOICE_MIN_DBFS: f32 = -45.0;

/// A cheap voice cue for the first classifier: loud enough, energy mostly in the speech band,
/// and a zero-crossing rate in the range of voiced and unvoiced speech. Tones in the speech band
/// (a beep, a 440 Hz test tone) also pass; the YAMNet-based speech detector replaces this.
pub fn is_voice_like(a: &AudioFeatures) -> bool {
    a.dbfs >= VOICE_MIN_DBFS && a.bands.mid >= 0.5 && (0.01..=0.35).contains(&a.zcr)
}

/// Computes [`SpanFeatures`], keeping the previous frame across spans so motion is continuous.
pub struct SpanFeatureExtractor {
    frames: FrameAnalyzer,
    audio: AudioAnalyzer,
}

impl SpanFeatureExtractor {
    pub fn new(motion_threshold: u8) -> Self {
        Self {
            frames: FrameAnalyzer::new(motion_threshold),
            audio: AudioAnalyzer::new(SAMPLE_RATE),
        }
    }

    /// Forgets the previous frame (a source restarted or a file looped).
    pub fn reset_motion(&mut self) {
        self.frames.reset();
    }

    pub fn extract(&mut self, span: &AlignedSpan<Frame>) -> SpanFeatures {
        let per_frame: Vec<_> = span
            .frames
            .iter()
            .map(|(_, f)| self.frames.analyze(f))
            .collect();
        let video = if per_frame.is_empty() {
            None
        } else {
            let motion: Vec<f32> = per_frame.iter().filter_map(|f| f.motion_percent).collect();
            let brightness: Vec<f32> = per_frame.iter().map(|f| f.brightness).collect();
            let skin: Vec<f32> = per_frame.iter().map(|f| f.skin_percent).collect();
            Some(VideoSpanStats {
                frames: per_frame.len() as u32,
                motion_mean: stats::mean(&motion).unwrap_or(0.0),
                motion_max: motion.iter().copied().fold(0.0, f32::max),
                brightness: stats::mean(&brightness).unwrap_or(0.0),
                skin_percent: stats::mean(&skin).unwrap_or(0.0),
            })
        };
        // A span whose audio is mostly missing says nothing about the room.
        let audio = span.audio.as_ref().and_then(|samples| {
            let covered = samples.len().saturating_sub(span.audio_missing_samples);
            (covered * 2 >= samples.len() && !samples.is_empty())
                .then(|| self.audio.analyze(samples))
        });
        let voice_like = audio.as_ref().is_some_and(is_voice_like);
        SpanFeatures {
            start: span.start,
            end: span.end,
            video,
            audio,
            voice_like,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span_with(frames: Vec<Frame>, audio: Option<Vec<f32>>) -> AlignedSpan<Frame> {
        let n = frames.len() as i64;
        AlignedSpan {
            start: Timestamp(0),
            end: Timestamp(1_000_000),
            frames: frames
                .into_iter()
                .enumerate()
                .map(|(i, f)| (Timestamp(i as i64 * 1_000_000 / n.max(1)), f))
                .collect(),
            audio,
            audio_missing_samples: 0,
        }
    }

    fn square(x: usize) -> Frame {
        let (w, h) = (100usize, 100usize);
        let mut px = vec![0u8; w * h * 3];
        for row in 40..50 {
            for col in x..x + 10 {
                let i = (row * w + col) * 3;
                px[i..i + 3].copy_from_slice(&[255, 255, 255]);
            }
        }
        Frame::new(w as u32, h as u32, px).unwrap()
    }

    #[test]
    fn motion_of_a_moving_square_and_a_spoken_like_tone() {
        let mut ex = SpanFeatureExtractor::new(25);
        let tone: Vec<f32> = (0..16_000)
            .map(|n| 0.1 * (2.0 * std::f32::consts::PI * 500.0 * n as f32 / 16_000.0).sin())
            .collect();
        let f = ex.extract(&span_with(
            vec![square(0), square(20), square(40)],
            Some(tone),
        ));
        let v = f.video.unwrap();
        assert_eq!(v.frames, 3);
        // Each move of 20 px uncovers 100 and covers 100 pixels out of 10 000.
        assert!((v.motion_mean - 2.0).abs() < 1e-4, "{}", v.motion_mean);
        assert!((v.brightness - 2.55).abs() < 0.01);
        let a = f.audio.unwrap();
        assert!((a.dbfs - (-23.01)).abs() < 0.1);
        assert!(f.voice_like);
        // The next span continues the motion from the last frame.
        let g = ex.extract(&span_with(vec![square(40)], None));
        assert_eq!(g.video.unwrap().motion_mean, 0.0);
        assert!(g.audio.is_none());
        assert!(!g.voice_like);
    }

    #[test]
    fn quiet_or_mostly_missing_audio_is_not_voice() {
        let mut ex = SpanFeatureExtractor::new(25);
        let quiet: Vec<f32> = (0..16_000)
            .map(|n| 0.001 * (2.0 * std::f32::consts::PI * 500.0 * n as f32 / 16_000.0).sin())
            .collect();
        let f = ex.extract(&span_with(vec![], Some(quiet)));
        assert!(f.video.is_none());
        assert!(!f.voice_like);
        let mut missing = span_with(vec![], Some(vec![0.0; 16_000]));
        missing.audio_missing_samples = 12_000;
        assert!(ex.extract(&missing).audio.is_none());
    }
}
