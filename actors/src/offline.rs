//! The offline analyser: a whole media file through the same features and classifier as the
//! live pipeline, as fast as the machine allows (no pacing, no actors).
//!
//! Times are seconds from the start of the file. The file's streams are aligned with the same
//! [`Aligner`] as live data, fed on a virtual clock where t = 0 is the file's start.

use std::path::Path;
use std::time::Duration;

use cav_core::align::{Aligner, Expect};
use cav_core::classify::Decision;
use cav_core::features::SpanFeatureExtractor;
use cav_core::observe::SoundObservation;
use cav_core::window::{WindowAccumulator, WindowSummary};
use cav_core::{Classifier, Frame, Timestamp};

use crate::media::{self, AudioDecoder, MediaError, VideoDecoder};

#[derive(Clone, Debug)]
pub struct OfflineSettings {
    pub window: Duration,
    pub span: Duration,
    pub analysis_fps: f64,
    pub analysis_width: u32,
    pub motion_threshold: u8,
    /// Frames a second given to the vision models (when `analyze_file` gets them).
    pub vision_fps: f64,
}

/// One classified window of the file.
#[derive(Clone, Debug)]
pub struct OfflineWindow {
    pub t_start: f64,
    pub t_end: f64,
    pub summary: WindowSummary,
    pub decision: Decision,
}

/// What the analysis finds, in the order it is found.
#[derive(Clone, Debug)]
pub enum OfflineOutput {
    /// Boxed: a window (summary and decision) is far larger than an event.
    Window(Box<OfflineWindow>),
    /// A sound event; its times are seconds from the start of the file.
    Event(cav_models::hearing::SoundEvent),
}

/// Counters of a finished analysis.
#[derive(Clone, Debug, Default)]
pub struct OfflineReport {
    pub frames: u64,
    pub audio_samples: u64,
    pub skipped_frames: u64,
    pub skipped_packets: u64,
    pub windows: u64,
    pub sound_events: u64,
    /// Frames the vision models analysed, and those they failed on.
    pub vision_frames: u64,
    pub vision_errors: u64,
}

/// The models the offline analysis may run beside the span features.
#[derive(Default)]
pub struct OfflineModels<'a> {
    /// YAMNet: sound events, and the class groups of each window.
    pub hearing: Option<&'a mut cav_models::hearing::Hearing>,
    /// Persons and posture, on `vision_fps` frames a second.
    pub vision: Option<&'a mut cav_models::Vision>,
}

/// Analyses `path`, calling `on_output` for each window as soon as it is classified and, when
/// `models.hearing` is given, for each sound event.
pub fn analyze_file(
    path: &Path,
    settings: &OfflineSettings,
    classifier: &dyn Classifier,
    models: OfflineModels<'_>,
    mut on_output: impl FnMut(OfflineOutput),
) -> Result<OfflineReport, MediaError> {
    let OfflineModels {
        mut hearing,
        mut vision,
    } = models;
    let vision_interval = 1.0 / settings.vision_fps.max(1e-3);
    let mut next_vision_t = 0.0f64;
    let info = media::probe(path)?;
    let mut video = match info.video {
        Some(_) => Some(VideoDecoder::open(path, Some(settings.analysis_width))?),
        None => None,
    };
    let mut audio = match info.audio {
        Some(_) => AudioDecoder::open(path)?,
        None => None,
    };
    let expect = Expect {
        video: video.is_some(),
        audio: audio.is_some(),
    };
    let mut aligner: Aligner<Frame> = Aligner::new(settings.span, Duration::ZERO, expect);
    let mut extractor = SpanFeatureExtractor::new(settings.motion_threshold);
    let mut windows = WindowAccumulator::new(settings.window);
    let mut report = OfflineReport::default();
    let interval = 1.0 / settings.analysis_fps;

    let mut emit = |out: OfflineOutput, report: &mut OfflineReport| {
        match &out {
            OfflineOutput::Window(_) => report.windows += 1,
            OfflineOutput::Event(_) => report.sound_events += 1,
        }
        on_output(out);
    };
    let window = |summary: WindowSummary| {
        let decision = classifier.classify(&summary);
        OfflineOutput::Window(Box::new(OfflineWindow {
            t_start: summary.start.secs_f64(),
            t_end: summary.end.secs_f64(),
            summary,
            decision,
        }))
    };
    // Events go out; the class groups of each hearing window go into the window being filled.
    let heard = |outputs: Vec<cav_models::hearing::HearingOutput>,
                 windows: &mut WindowAccumulator| {
        outputs
            .into_iter()
            .filter_map(|o| match o {
                cav_models::hearing::HearingOutput::Event(e) => Some(OfflineOutput::Event(e)),
                cav_models::hearing::HearingOutput::Labels {
                    t,
                    level_dbfs,
                    scene,
                    ..
                } => {
                    windows.push_sound(SoundObservation {
                        t: Timestamp::from_secs_f64(t.max(0.0)),
                        level_dbfs,
                        scene,
                    });
                    None
                }
            })
            .collect::<Vec<_>>()
    };

    // Feed both streams in media-time order so the aligner never holds more than a span or two.
    let mut next_frame = match video.as_mut() {
        Some(v) => v.next_frame_every(interval)?,
        None => None,
    };
    let mut audio_pos = 0u64;
    let mut next_chunk = match audio.as_mut() {
        Some(a) => a.next_chunk(cav_core::SAMPLE_RATE as usize / 2)?,
        None => None,
    };
    loop {
        let frame_t = next_frame.as_ref().map(|f| f.pts_s);
        let chunk_t = next_chunk
            .as_ref()
            .map(|_| audio_pos as f64 / cav_core::SAMPLE_RATE as f64);
        let take_frame = match (frame_t, chunk_t) {
            (Some(f), Some(a)) => f <= a,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        if take_frame {
            let Some(f) = next_frame.take() else { break };
            let t = Timestamp::from_secs_f64(f.pts_s.max(0.0));
            if let Some(v) = vision.as_deref_mut() {
                if f.pts_s >= next_vision_t {
                    next_vision_t = f.pts_s + vision_interval;
                    let fr = &f.frame;
                    match v.analyze(fr.bgr(), fr.width() as usize, fr.height() as usize) {
                        Ok(result) => {
                            windows.push_vision(result.observation(t));
                            report.vision_frames += 1;
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, t_s = f.pts_s, "vision failed on a frame");
                            report.vision_errors += 1;
                        }
                    }
                }
            }
            aligner.push_frame(t, f.frame);
            report.frames += 1;
            next_frame = match video.as_mut() {
                Some(v) => v.next_frame_every(interval)?,
                None => None,
            };
        } else {
            let Some(samples) = next_chunk.take() else {
                break;
            };
            let t = Timestamp::from_secs_f64(audio_pos as f64 / cav_core::SAMPLE_RATE as f64);
            if let Some(h) = hearing.as_deref_mut() {
                for out in heard(h.push(t.secs_f64(), &samples), &mut windows) {
                    emit(out, &mut report);
                }
            }
            aligner.push_audio(t, &samples);
            audio_pos += samples.len() as u64;
            report.audio_samples += samples.len() as u64;
            next_chunk = match audio.as_mut() {
                Some(a) => a.next_chunk(cav_core::SAMPLE_RATE as usize / 2)?,
                None => None,
            };
        }
        // Offline nothing is ever late: with the clock held at the beginning of time, a span is
        // cut only once every expected stream has passed its end.
        for span in aligner.poll(Timestamp(i64::MIN / 2)) {
            if let Some(w) = windows.push(extractor.extract(&span)) {
                emit(window(w), &mut report);
            }
        }
    }
    if let Some(h) = hearing {
        for out in heard(h.flush(), &mut windows) {
            emit(out, &mut report);
        }
    }
    for span in aligner.flush() {
        if let Some(w) = windows.push(extractor.extract(&span)) {
            emit(window(w), &mut report);
        }
    }
    if let Some(w) = windows.flush() {
        emit(window(w), &mut report);
    }
    report.skipped_frames = video.as_ref().map_or(0, |v| v.skipped());
    report.skipped_packets = audio.as_ref().map_or(0, |a| a.skipped_packets());
    Ok(report)
}
