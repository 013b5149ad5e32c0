//! Sampled analysis of a media file: one sample every `interval_s` seconds (or one sample at a
//! given time), each classified from one span of the file (the frames of `[t, t + span)` at the
//! analysis frame rate and the audio of the same span), as fast as the machine allows.
//!
//! This is what analysis jobs (`POST /api/analyses`) and `cav analyze --interval` run. Video is
//! read forward, skipping the frames between samples without converting them; for sparse
//! samples (`interval_s` ≥ [`SEEK_MIN_INTERVAL_S`]) the decoder seeks instead, which skips
//! decoding too. Either way the samples' frames are the same. The video is decoded on a thread
//! of its own, a few samples ahead, while the calling thread decodes the audio (forward, keeping
//! only the samples' spans), hears it and classifies. [`crate::analysis_obs`] takes the pictures
//! from OBS instead and shares the rest (`classify_span`).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use cav_core::align::AlignedSpan;
use cav_core::classify::Decision;
use cav_core::features::SpanFeatureExtractor;
use cav_core::window::{WindowAccumulator, WindowSummary};
use cav_core::{Classifier, Frame, Timestamp, SAMPLE_RATE};

use crate::media::{self, AudioDecoder, MediaError, VideoDecoder};

/// From this interval on, the video decoder seeks between samples rather than reading forward.
///
/// A seek decodes from the keyframe before the sample (on average half a keyframe interval of
/// frames, plus the span); reading on decodes every frame in between. Measured with
/// `examples/analysis_bench.rs` (640×480, 25 fps H.264, 2 cores): with a keyframe every 2 s,
/// seeking wins from about 4 s; with one every 10 s (x264's default of 250 frames), only from
/// about 8 s, and at 4 s it is ~40 % slower than reading on. 6 s keeps the loss either way
/// under ~15 %.
pub const SEEK_MIN_INTERVAL_S: f64 = 6.0;

/// Which times of the file to analyse.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Sampling {
    /// Every `interval_s` seconds from 0.
    Every { interval_s: f64 },
    /// One sample at `t_s`.
    At { t_s: f64 },
}

#[derive(Clone, Debug)]
pub struct SampleSettings {
    pub sampling: Sampling,
    /// Length of the stretch each sample is classified from.
    pub span: Duration,
    pub analysis_fps: f64,
    pub analysis_width: u32,
    pub motion_threshold: u8,
}

/// One classified sample.
#[derive(Clone, Debug)]
pub struct FileSample {
    pub index: u64,
    pub t_s: f64,
    pub summary: WindowSummary,
    pub decision: Decision,
    /// Sound events with an onset in this sample's span.
    pub events: Vec<cav_models::hearing::SoundEvent>,
}

#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    #[error(transparent)]
    Media(#[from] MediaError),
    #[error("{0}")]
    Invalid(String),
    /// Talking to OBS failed while analysing its source `name` (see [`crate::analysis_obs`]).
    #[error("OBS source '{name}': {error}")]
    Obs {
        name: String,
        error: crate::obs::ObsError,
    },
    #[error("cancelled")]
    Cancelled,
}

/// Sample times for a file of `duration_s`.
pub fn sample_times(sampling: Sampling, duration_s: f64, span_s: f64) -> Vec<f64> {
    match sampling {
        Sampling::At { t_s } => vec![t_s],
        Sampling::Every { interval_s } => {
            let n = ((duration_s - span_s * 0.5) / interval_s).floor().max(0.0) as u64 + 1;
            (0..n).map(|k| k as f64 * interval_s).collect()
        }
    }
}

/// Reads the audio forward and hands out the samples of requested spans.
pub(crate) struct AudioCursor {
    decoder: AudioDecoder,
    /// Samples from absolute index `start`.
    buf: Vec<f32>,
    start: u64,
    ended: bool,
}

impl AudioCursor {
    /// The file's audio, when it has a track that decodes.
    pub(crate) fn open(path: &Path, info: &media::MediaInfo) -> Result<Option<Self>, MediaError> {
        Ok(match info.audio {
            Some(_) => AudioDecoder::open(path)?.map(|decoder| AudioCursor {
                decoder,
                buf: Vec::new(),
                start: 0,
                ended: false,
            }),
            None => None,
        })
    }

    /// The samples of the span `[t, end)` (seconds; increasing between calls).
    pub(crate) fn take_span(&mut self, t: f64, end: f64) -> Result<Vec<f32>, MediaError> {
        let sr = f64::from(SAMPLE_RATE);
        self.take((t * sr).round() as u64, (end * sr).round() as u64)
    }

    /// The samples of `[from, to)` (absolute sample indices, increasing between calls); short
    /// at the end of the stream.
    fn take(&mut self, from: u64, to: u64) -> Result<Vec<f32>, MediaError> {
        while !self.ended && self.start + (self.buf.len() as u64) < to {
            match self.decoder.next_chunk(SAMPLE_RATE as usize)? {
                Some(chunk) => self.buf.extend_from_slice(&chunk),
                None => self.ended = true,
            }
            // Drop what lies before `from`: only the samples' spans are kept.
            let stale = from.saturating_sub(self.start).min(self.buf.len() as u64) as usize;
            if stale > 0 {
                self.buf.drain(..stale);
                self.start += stale as u64;
            }
        }
        let lo = from.saturating_sub(self.start) as usize;
        let hi = (to.saturating_sub(self.start) as usize).min(self.buf.len());
        Ok(self
            .buf
            .get(lo..hi)
            .map(<[f32]>::to_vec)
            .unwrap_or_default())
    }
}

/// Refuses an interval shorter than the span (or not a number).
pub(crate) fn check_interval(settings: &SampleSettings) -> Result<(), AnalysisError> {
    let span_s = settings.span.as_secs_f64();
    if let Sampling::Every { interval_s } = settings.sampling {
        if !(interval_s.is_finite() && interval_s >= span_s) {
            return Err(AnalysisError::Invalid(format!(
                "interval_s must be at least the span ({span_s} s), got {interval_s}"
            )));
        }
    }
    Ok(())
}

/// The file's duration, and a refusal of a single-sample time outside it.
pub(crate) fn checked_duration(
    info: &media::MediaInfo,
    settings: &SampleSettings,
) -> Result<f64, AnalysisError> {
    let duration_s = info
        .duration_s
        .ok_or_else(|| AnalysisError::Invalid("the file does not say how long it is".into()))?;
    if let Sampling::At { t_s } = settings.sampling {
        if !(t_s.is_finite() && t_s >= 0.0 && t_s < duration_s) {
            return Err(AnalysisError::Invalid(format!(
                "at_s must lie within the file (0 to {duration_s:.3} s), got {t_s}"
            )));
        }
    }
    Ok(duration_s)
}

/// Classifies one sample from the frames and audio of its span `[t, t + span)`: hears the audio
/// (events with an onset in the span), builds the aligned span (audio padded with counted
/// silence at the end of the file) and classifies it as a window of its own. Each sample stands
/// alone: motion compares the frames inside its span only.
pub(crate) fn classify_span(
    index: u64,
    t: f64,
    frames: Vec<(Timestamp, Frame)>,
    samples: Option<Vec<f32>>,
    settings: &SampleSettings,
    classifier: &dyn Classifier,
    hearing: Option<&mut cav_models::hearing::Hearing>,
) -> Result<FileSample, AnalysisError> {
    let span_s = settings.span.as_secs_f64();
    let end = t + span_s;
    let mut events = Vec::new();
    if let (Some(h), Some(s)) = (hearing, samples.as_ref()) {
        for out in h.push(t, s) {
            if let cav_models::hearing::HearingOutput::Event(e) = out {
                events.push(e);
            }
        }
    }
    let expected = (span_s * f64::from(SAMPLE_RATE)).round() as usize;
    let audio_missing = samples
        .as_ref()
        .map_or(0, |s| expected.saturating_sub(s.len()));
    let span = AlignedSpan {
        start: Timestamp::from_secs_f64(t),
        end: Timestamp::from_secs_f64(end),
        frames,
        audio: samples.map(|mut s| {
            s.resize(expected, 0.0);
            s
        }),
        audio_missing_samples: audio_missing,
    };
    let mut extractor = SpanFeatureExtractor::new(settings.motion_threshold);
    let mut window = WindowAccumulator::new(settings.span);
    let features = extractor.extract(&span);
    let summary = window
        .push(features)
        .or_else(|| window.flush())
        .ok_or_else(|| AnalysisError::Invalid("a span made no window".into()))?;
    let decision = classifier.classify(&summary);
    Ok(FileSample {
        index,
        t_s: t,
        summary,
        decision,
        events,
    })
}

/// How the video decoder gets from one sample to the next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VideoAccess {
    /// Seek from [`SEEK_MIN_INTERVAL_S`] on (and for a single sample), else read forward.
    Auto,
    /// Read forward, skipping the frames between samples without converting them.
    Forward,
    /// Seek to each sample.
    Seek,
}

/// Analyses the samples of `path`, calling `on_sample` for each and `on_progress` with the
/// media seconds done and the total. Stops with [`AnalysisError::Cancelled`] when `cancel` is set.
pub fn analyze_samples(
    path: &Path,
    settings: &SampleSettings,
    classifier: &dyn Classifier,
    hearing: Option<&mut cav_models::hearing::Hearing>,
    cancel: &AtomicBool,
    on_progress: impl FnMut(f64, f64),
    on_sample: impl FnMut(FileSample),
) -> Result<u64, AnalysisError> {
    analyze_samples_with(
        path,
        settings,
        VideoAccess::Auto,
        classifier,
        hearing,
        cancel,
        on_progress,
        on_sample,
    )
}

/// [`analyze_samples`] with the video access chosen (for benchmarks and tuning
/// [`SEEK_MIN_INTERVAL_S`]; both give the same samples).
#[allow(clippy::too_many_arguments)]
pub fn analyze_samples_with(
    path: &Path,
    settings: &SampleSettings,
    access: VideoAccess,
    classifier: &dyn Classifier,
    mut hearing: Option<&mut cav_models::hearing::Hearing>,
    cancel: &AtomicBool,
    mut on_progress: impl FnMut(f64, f64),
    mut on_sample: impl FnMut(FileSample),
) -> Result<u64, AnalysisError> {
    let span_s = settings.span.as_secs_f64();
    check_interval(settings)?;
    let info = media::probe(path)?;
    let duration_s = checked_duration(&info, settings)?;
    let mut video = match info.video {
        Some(_) => Some(VideoDecoder::open(path, Some(settings.analysis_width))?),
        None => None,
    };
    let mut audio = AudioCursor::open(path, &info)?;
    let seek = match (access, settings.sampling) {
        (VideoAccess::Forward, _) => false,
        (VideoAccess::Seek, _) | (VideoAccess::Auto, Sampling::At { .. }) => true,
        (VideoAccess::Auto, Sampling::Every { interval_s }) => interval_s >= SEEK_MIN_INTERVAL_S,
    };
    let frame_interval = 1.0 / settings.analysis_fps;
    let times = sample_times(settings.sampling, duration_s, span_s);
    // The video is decoded on a thread of its own, a few samples ahead, while this one reads
    // the audio, hears and classifies.
    std::thread::scope(|scope| {
        let (tx, frames_rx) =
            std::sync::mpsc::sync_channel::<Result<SpanFrames, MediaError>>(VIDEO_AHEAD);
        let video = video.take().map(|decoder| {
            let times = &times;
            let mut reader = SpanReader {
                decoder,
                carry: None,
            };
            std::thread::Builder::new()
                .name("analysis video".into())
                .spawn_scoped(scope, move || {
                    for &t in times {
                        let frames = reader.span(t, t + span_s, seek, frame_interval);
                        let failed = frames.is_err();
                        // A closed channel: the analysis ended early (cancelled, failed).
                        if tx.send(frames).is_err() || failed {
                            return;
                        }
                    }
                })
        });
        let video = match video {
            Some(Ok(_)) => true,
            Some(Err(e)) => {
                return Err(AnalysisError::Invalid(format!(
                    "cannot start the video thread: {e}"
                )))
            }
            None => false,
        };
        let mut count = 0u64;
        for (index, &t) in times.iter().enumerate() {
            if cancel.load(Ordering::Relaxed) {
                return Err(AnalysisError::Cancelled);
            }
            let end = t + span_s;
            let samples = match audio.as_mut() {
                Some(a) => Some(a.take_span(t, end)?),
                None => None,
            };
            let frames = if video {
                frames_rx.recv().map_err(|_| {
                    AnalysisError::Invalid("the video decoding thread stopped".into())
                })??
            } else {
                Vec::new()
            };
            let sample = classify_span(
                index as u64,
                t,
                frames,
                samples,
                settings,
                classifier,
                hearing.as_deref_mut(),
            )?;
            on_sample(sample);
            count += 1;
            on_progress(end.min(duration_s), duration_s);
        }
        Ok(count)
    })
}

/// The frames of one sample's span.
type SpanFrames = Vec<(Timestamp, Frame)>;

/// Samples the video thread may decode ahead of the classification.
const VIDEO_AHEAD: usize = 4;

/// Frame times within this of each other are the same time (as in the video decoder).
const FRAME_SLACK_S: f64 = 1e-4;

/// The video decoder with the frame that ended the previous span, which may start the next.
struct SpanReader {
    decoder: VideoDecoder,
    carry: Option<crate::media::TimedFrame>,
}

impl SpanReader {
    /// The frames of `[t, end)` at one every `frame_interval` s, reached by seeking or reading
    /// on. Reading on, the frame that ended the previous span starts this one when it lies in
    /// it (spans back to back), exactly as a seek to `t` would find it.
    fn span(
        &mut self,
        t: f64,
        end: f64,
        seek: bool,
        frame_interval: f64,
    ) -> Result<SpanFrames, MediaError> {
        let v = &mut self.decoder;
        let mut frames = Vec::new();
        let carried = self
            .carry
            .take()
            .filter(|f| !seek && f.pts_s + FRAME_SLACK_S >= t && f.pts_s < end);
        let found = match carried {
            // The decoder returned it last: the next frame is spaced from it.
            Some(f) => {
                frames.push((Timestamp::from_secs_f64(f.pts_s), f.frame));
                true
            }
            None if seek => v.seek(t)?,
            None => v.skip_to(t)?,
        };
        if found {
            while let Some(f) = v.next_frame_every(frame_interval)? {
                if f.pts_s >= end {
                    self.carry = Some(f);
                    break;
                }
                frames.push((Timestamp::from_secs_f64(f.pts_s), f.frame));
            }
        }
        Ok(frames)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::test_files::demo_clip;
    use cav_core::RuleClassifier;

    fn settings(sampling: Sampling) -> SampleSettings {
        SampleSettings {
            sampling,
            span: Duration::from_secs(1),
            analysis_fps: 5.0,
            analysis_width: 320,
            motion_threshold: 25,
        }
    }

    #[test]
    fn sample_times_cover_the_file() {
        assert_eq!(
            sample_times(Sampling::Every { interval_s: 10.0 }, 40.0, 1.0),
            vec![0.0, 10.0, 20.0, 30.0]
        );
        assert_eq!(
            sample_times(Sampling::Every { interval_s: 1.0 }, 3.2, 1.0),
            vec![0.0, 1.0, 2.0]
        );
        assert_eq!(
            sample_times(Sampling::At { t_s: 7.5 }, 40.0, 1.0),
            vec![7.5]
        );
    }

    fn classes(sampling: Sampling) -> Vec<(f64, String, usize)> {
        let mut out = Vec::new();
        analyze_samples(
            &demo_clip(),
            &settings(sampling),
            &RuleClassifier,
            None,
            &AtomicBool::new(false),
            |_, _| {},
            |s| {
                let frames = s.summary.video.as_ref().map_or(0, |v| v.frames as usize);
                out.push((s.t_s, s.decision.activity.to_string(), frames))
            },
        )
        .unwrap();
        out
    }

    #[test]
    fn reading_forward_and_seeking_classify_the_same_samples_alike() {
        // The demo: 24 s of conversation, then a quiet, still scene.
        let forward = classes(Sampling::Every { interval_s: 3.0 });
        assert_eq!(forward.len(), 14);
        assert!(
            forward.iter().all(|(_, _, frames)| *frames == 5),
            "{forward:?}"
        );
        assert_eq!(forward[1].1, "in_conversation");
        assert_eq!(forward[12].1, "reading");
        let sparse = classes(Sampling::Every { interval_s: 6.0 });
        assert_eq!(sparse.len(), 7);
        // Samples at the same times agree, whether reached by reading on or by seeking.
        for (t, class, frames) in &sparse {
            let same = forward.iter().find(|(ft, _, _)| ft == t).unwrap();
            assert_eq!((&same.1, same.2), (class, *frames), "at {t} s");
        }
        let one = classes(Sampling::At { t_s: 30.0 });
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].1, forward[10].1);
    }

    #[test]
    fn back_to_back_spans_read_forward_have_the_frames_a_seek_finds() {
        let run = |access| {
            let mut out = Vec::new();
            analyze_samples_with(
                &demo_clip(),
                &settings(Sampling::Every { interval_s: 1.0 }),
                access,
                &RuleClassifier,
                None,
                &AtomicBool::new(false),
                |_, _| {},
                |s| out.push(serde_json::to_value(&s.summary).unwrap()),
            )
            .unwrap();
            out
        };
        let forward = run(VideoAccess::Forward);
        let sought = run(VideoAccess::Seek);
        assert_eq!(forward.len(), 40);
        for (i, (f, s)) in forward.iter().zip(&sought).enumerate() {
            assert_eq!(f["video"], s["video"], "sample {i}");
        }
    }

    #[test]
    fn bad_requests_and_cancellation_are_errors() {
        let run = |sampling, cancel: bool| {
            analyze_samples(
                &demo_clip(),
                &settings(sampling),
                &RuleClassifier,
                None,
                &AtomicBool::new(cancel),
                |_, _| {},
                |_| {},
            )
        };
        assert!(matches!(
            run(Sampling::Every { interval_s: 0.5 }, false),
            Err(AnalysisError::Invalid(_))
        ));
        assert!(matches!(
            run(Sampling::At { t_s: 99.0 }, false),
            Err(AnalysisError::Invalid(_))
        ));
        assert!(matches!(
            run(Sampling::Every { interval_s: 5.0 }, true),
            Err(AnalysisError::Cancelled)
        ));
    }
}
