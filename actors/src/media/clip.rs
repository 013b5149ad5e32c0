//! Writing a [`Clip`] to disk: the frames as a video whose timing follows the capture times, and
//! the audio as a 16 kHz mono 16-bit WAV of exactly the same span.
//!
//! The video is written at a constant rate (the frames' median rate, at most 30 fps): slot `i`
//! shows the newest frame captured at or before `start + i / fps`, so a frame appears when it
//! was captured even if frames came irregularly or some were dropped, and the video lasts exactly
//! as long as the WAV.

use std::path::{Path, PathBuf};

use cav_core::clipbuf::Clip;
use opencv::core::{Mat, Size};
use opencv::prelude::*;
use opencv::videoio;

use super::MediaError;

/// What was written.
#[derive(Clone, Debug, PartialEq)]
pub struct ClipFiles {
    pub video_path: Option<PathBuf>,
    pub audio_path: Option<PathBuf>,
    pub frames: u64,
    pub fps: f64,
    pub samples: u64,
}

/// The frame rate a clip is written at: the median interval of its frames, within 1–30 fps.
pub fn clip_fps(clip: &Clip) -> f64 {
    let mut iv: Vec<i64> = clip
        .frames
        .windows(2)
        .map(|w| w[1].0 .0 - w[0].0 .0)
        .filter(|d| *d > 0)
        .collect();
    if iv.is_empty() {
        return 5.0;
    }
    iv.sort_unstable();
    (1e6 / iv[iv.len() / 2] as f64).clamp(1.0, 30.0).round()
}

/// Which captured frame each output slot shows (see the module docs).
pub fn slot_frames(clip: &Clip, fps: f64) -> Vec<usize> {
    let duration_us = (clip.end.0 - clip.start.0).max(0);
    let slots = (duration_us as f64 * fps / 1e6).round() as usize;
    let mut out = Vec::with_capacity(slots);
    let mut j = 0usize;
    for i in 0..slots {
        let at = clip.start.0 + (i as f64 * 1e6 / fps).round() as i64;
        while j + 1 < clip.frames.len() && clip.frames[j + 1].0 .0 <= at {
            j += 1;
        }
        out.push(j);
    }
    out
}

/// Writes `<dir>/<stem>.mp4` (when there are frames) and `<dir>/<stem>.wav` (when there is
/// audio).
pub fn write_clip(clip: &Clip, dir: &Path, stem: &str) -> Result<ClipFiles, MediaError> {
    std::fs::create_dir_all(dir).map_err(|e| MediaError::open(dir, e.to_string()))?;
    let mut files = ClipFiles {
        video_path: None,
        audio_path: None,
        frames: 0,
        fps: 0.0,
        samples: 0,
    };
    if let Some((_, first)) = clip.frames.first() {
        let path = dir.join(format!("{stem}.mp4"));
        let fps = clip_fps(clip);
        let (w, h) = (first.width() as i32, first.height() as i32);
        let err = |what: &str, e: opencv::Error| MediaError::open(&path, format!("{what}: {e}"));
        let fourcc =
            videoio::VideoWriter::fourcc('m', 'p', '4', 'v').map_err(|e| err("codec", e))?;
        let mut writer =
            videoio::VideoWriter::new(&path.to_string_lossy(), fourcc, fps, Size::new(w, h), true)
                .map_err(|e| err("opening the video writer", e))?;
        if !writer.is_opened().unwrap_or(false) {
            return Err(MediaError::open(
                &path,
                "OpenCV cannot write MPEG-4 video here",
            ));
        }
        let mats: Vec<Option<Mat>> = clip
            .frames
            .iter()
            .map(|(_, f)| {
                // Frames of another size than the first (a source changed) are skipped.
                if f.width() as i32 != w || f.height() as i32 != h {
                    return None;
                }
                let flat = Mat::from_slice(f.bgr()).ok()?;
                flat.reshape(3, h).ok()?.try_clone().ok()
            })
            .collect();
        for j in slot_frames(clip, fps) {
            if let Some(Some(m)) = mats.get(j) {
                writer.write(m).map_err(|e| err("writing a frame", e))?;
                files.frames += 1;
            }
        }
        writer.release().map_err(|e| err("closing the video", e))?;
        files.video_path = Some(path);
        files.fps = fps;
    }
    if !clip.audio.is_empty() {
        let path = dir.join(format!("{stem}.wav"));
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: cav_core::SAMPLE_RATE,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let err = |e: hound::Error| MediaError::open(&path, e.to_string());
        let mut w = hound::WavWriter::create(&path, spec).map_err(err)?;
        for &x in &clip.audio {
            let v = (x.clamp(-1.0, 1.0) * 32767.0).round() as i16;
            w.write_sample(v).map_err(err)?;
        }
        w.finalize().map_err(err)?;
        files.samples = clip.audio.len() as u64;
        files.audio_path = Some(path);
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cav_core::{Frame, Timestamp};

    fn clip(times_ms: &[i64], end_ms: i64) -> Clip {
        Clip {
            start: Timestamp::from_millis(times_ms[0]),
            end: Timestamp::from_millis(end_ms),
            frames: times_ms
                .iter()
                .map(|&t| {
                    (
                        Timestamp::from_millis(t),
                        Frame::filled(64, 48, [t as u8, 0, 0]).unwrap(),
                    )
                })
                .collect(),
            audio: vec![0.25; ((end_ms - times_ms[0]) * 16) as usize],
        }
    }

    #[test]
    fn slots_follow_capture_times() {
        // 5 fps with one frame missing (at 400 ms): its slot repeats the frame before.
        let c = clip(&[0, 200, 600, 800], 1000);
        assert_eq!(clip_fps(&c), 5.0);
        assert_eq!(slot_frames(&c, 5.0), vec![0, 1, 1, 2, 3]);
    }

    #[test]
    fn writes_a_video_and_a_wav_of_the_same_length() {
        let dir = tempfile::tempdir().unwrap();
        let c = clip(&[0, 200, 400, 600, 800, 1000, 1200, 1400, 1600, 1800], 2000);
        let files = write_clip(&c, dir.path(), "clip-test").unwrap();
        assert_eq!(files.frames, 10);
        assert_eq!(files.samples, 32_000);
        let video = files.video_path.unwrap();
        let info = crate::media::probe(&video).unwrap();
        let v = info.video.unwrap();
        assert_eq!((v.width, v.height), (64, 48));
        assert_eq!(v.frame_count, Some(10));
        let wav = hound::WavReader::open(files.audio_path.unwrap()).unwrap();
        assert_eq!(wav.spec().sample_rate, 16_000);
        assert_eq!(wav.len(), 32_000);
    }
}
