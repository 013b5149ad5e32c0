//! Video decoding through OpenCV's videoio with the FFmpeg backend.

use std::path::{Path, PathBuf};

use cav_core::Frame;
use opencv::core::{Mat, Size};
use opencv::prelude::*;
use opencv::{imgproc, videoio};

use super::MediaError;

/// After this many failed grabs in a row the stream is taken to have ended.
///
/// OpenCV's FFmpeg backend fails a grab both at the end and for a packet the decoder rejects
/// (e.g. "Error splitting the input into NAL units"); the next grab then goes on with the next
/// packet. A damaged stretch of a file can reject many packets in a row, and a grab after the end
/// costs next to nothing, so this is generous.
const MAX_CONSECUTIVE_GRAB_FAILURES: u32 = 256;

/// Slack when comparing timestamps in [`VideoDecoder::next_frame_every`], in seconds, so that
/// frames exactly `min_interval_s` apart are not lost to rounding.
const INTERVAL_SLACK_S: f64 = 1e-4;

/// The properties of a video stream, as its container reports them.
#[derive(Clone, Debug, PartialEq)]
pub struct VideoInfo {
    /// Native frame width in pixels (before any scaling by the decoder).
    pub width: u32,
    /// Native frame height in pixels.
    pub height: u32,
    /// Nominal frame rate; 0 when the container does not say.
    pub fps: f64,
    /// Number of frames, when the container says (FFmpeg may estimate it from the duration).
    pub frame_count: Option<u64>,
    /// `frame_count / fps`, when both are known.
    pub duration_s: Option<f64>,
}

/// A decoded frame and when it is shown.
#[derive(Clone, Debug, PartialEq)]
pub struct TimedFrame {
    /// Presentation time of the frame in seconds from the start of the file.
    pub pts_s: f64,
    /// The pixels, BGR, possibly scaled down (see [`VideoDecoder::open`]).
    pub frame: Frame,
}

/// Reads the frames of a video file one by one.
pub struct VideoDecoder {
    path: PathBuf,
    capture: videoio::VideoCapture,
    info: VideoInfo,
    /// Output size when frames are scaled, `None` for native size.
    scaled_size: Option<(u32, u32)>,
    target_width: Option<u32>,
    /// Index of the next frame to grab.
    next_index: u64,
    /// Set once the backend has reported a zero position for a frame after the first: from then
    /// on timestamps are `index / fps`.
    pts_from_index: bool,
    last_returned_pts: Option<f64>,
    /// The first frame, decoded by `open` and not yet returned.
    pending: Option<TimedFrame>,
    skipped: u64,
    ended: bool,
    mat: Mat,
    scaled: Mat,
    converted: Mat,
}

impl std::fmt::Debug for VideoDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VideoDecoder")
            .field("path", &self.path)
            .field("info", &self.info)
            .field("scaled_size", &self.scaled_size)
            .field("next_index", &self.next_index)
            .field("skipped", &self.skipped)
            .finish_non_exhaustive()
    }
}

fn cv_reason(context: &str, e: opencv::Error) -> String {
    format!("{context}: {e}")
}

fn open_capture(path: &Path) -> Result<videoio::VideoCapture, MediaError> {
    let name = path
        .to_str()
        .ok_or_else(|| MediaError::open(path, "the path is not valid UTF-8"))?;
    let capture = videoio::VideoCapture::from_file(name, videoio::CAP_FFMPEG)
        .map_err(|e| MediaError::open(path, cv_reason("OpenCV cannot open it", e)))?;
    let opened = capture
        .is_opened()
        .map_err(|e| MediaError::open(path, cv_reason("OpenCV cannot open it", e)))?;
    if !opened {
        return Err(MediaError::open(
            path,
            "no video stream that OpenCV (FFmpeg backend) can decode",
        ));
    }
    Ok(capture)
}

/// Reads a capture property; `None` when OpenCV fails or the value is not a positive number.
fn positive_prop(capture: &videoio::VideoCapture, prop: i32) -> Option<f64> {
    capture.get(prop).ok().filter(|v| v.is_finite() && *v > 0.0)
}

fn scaled_size(width: u32, height: u32, target_width: Option<u32>) -> Option<(u32, u32)> {
    let target = target_width?.max(1);
    if width <= target {
        return None;
    }
    let h = (f64::from(height) * f64::from(target) / f64::from(width)).round();
    Some((target, (h as u32).max(1)))
}

impl VideoDecoder {
    /// Opens the file's video stream.
    ///
    /// Frames are scaled down (keeping the aspect ratio, `INTER_AREA`) to `target_width` when the
    /// file is wider; `None` keeps the native size. Odd sizes are allowed.
    ///
    /// The first frame is decoded here to prove that the stream decodes (a corrupt file is an
    /// [`MediaError::Open`]); it is kept and returned by the first call for a frame.
    pub fn open(path: &Path, target_width: Option<u32>) -> Result<Self, MediaError> {
        MediaError::check_exists(path)?;
        let capture = open_capture(path)?;

        let width = positive_prop(&capture, videoio::CAP_PROP_FRAME_WIDTH).unwrap_or(0.0) as u32;
        let height = positive_prop(&capture, videoio::CAP_PROP_FRAME_HEIGHT).unwrap_or(0.0) as u32;
        if width == 0 || height == 0 {
            return Err(MediaError::open(path, "the video stream has no frame size"));
        }
        let fps = positive_prop(&capture, videoio::CAP_PROP_FPS)
            .filter(|f| *f < 1000.0)
            .unwrap_or(0.0);
        let frame_count =
            positive_prop(&capture, videoio::CAP_PROP_FRAME_COUNT).map(|n| n.round() as u64);
        let duration_s = match (frame_count, fps > 0.0) {
            (Some(n), true) => Some(n as f64 / fps),
            _ => None,
        };
        let info = VideoInfo {
            width,
            height,
            fps,
            frame_count,
            duration_s,
        };
        let mut decoder = Self {
            path: path.to_path_buf(),
            capture,
            info,
            scaled_size: scaled_size(width, height, target_width),
            target_width,
            next_index: 0,
            pts_from_index: false,
            last_returned_pts: None,
            pending: None,
            skipped: 0,
            ended: false,
            mat: Mat::default(),
            scaled: Mat::default(),
            converted: Mat::default(),
        };
        // Prove that at least one frame decodes; keep it for the first `next_frame`.
        match decoder.next_frame() {
            Ok(Some(first)) => decoder.pending = Some(first),
            Ok(None) => return Err(MediaError::open(path, "no video frame decodes")),
            Err(e) => return Err(MediaError::open(path, e.reason())),
        }
        Ok(decoder)
    }

    /// The stream's properties (native size, even when frames are scaled).
    pub fn info(&self) -> &VideoInfo {
        &self.info
    }

    /// The size of the frames this decoder returns.
    pub fn output_size(&self) -> (u32, u32) {
        self.scaled_size
            .unwrap_or((self.info.width, self.info.height))
    }

    /// The next decoded frame, or `Ok(None)` at the end of the stream.
    ///
    /// The timestamp is `CAP_PROP_POS_MSEC` read after the grab; when the backend gives 0 for a
    /// frame after the first, it is `index / fps` from then on. A frame that fails to decode
    /// mid-file is counted in [`skipped`](Self::skipped) and passed over.
    pub fn next_frame(&mut self) -> Result<Option<TimedFrame>, MediaError> {
        self.next_frame_every(0.0)
    }

    /// Like [`next_frame`](Self::next_frame), but only returns frames at least `min_interval_s`
    /// after the previously returned one. The frames in between are grabbed but not converted,
    /// which is much cheaper than decoding them fully. Used to sample at e.g. 5 fps with `0.2`.
    pub fn next_frame_every(
        &mut self,
        min_interval_s: f64,
    ) -> Result<Option<TimedFrame>, MediaError> {
        let min_interval_s = if min_interval_s.is_finite() {
            min_interval_s.max(0.0)
        } else {
            0.0
        };
        if let Some(first) = self.pending.take() {
            self.last_returned_pts = Some(first.pts_s);
            return Ok(Some(first));
        }
        loop {
            let Some(pts_s) = self.grab()? else {
                return Ok(None);
            };
            if let Some(last) = self.last_returned_pts {
                if pts_s + INTERVAL_SLACK_S < last + min_interval_s {
                    continue;
                }
            }
            match self.retrieve()? {
                Some(frame) => {
                    self.last_returned_pts = Some(pts_s);
                    return Ok(Some(TimedFrame { pts_s, frame }));
                }
                None => {
                    self.skipped += 1;
                    tracing::debug!(path = %self.path.display(), index = self.next_index - 1, "video frame failed to decode; skipped");
                }
            }
        }
    }

    /// Passes over frames shown before `t_s` without converting them; the first frame at or
    /// after it is returned by the next `next_frame*` call. False at the end of the stream.
    pub fn skip_to(&mut self, t_s: f64) -> Result<bool, MediaError> {
        if let Some(p) = &self.pending {
            if p.pts_s + INTERVAL_SLACK_S >= t_s {
                return Ok(true);
            }
            self.pending = None;
        }
        loop {
            let Some(pts_s) = self.grab()? else {
                return Ok(false);
            };
            if pts_s + INTERVAL_SLACK_S < t_s {
                continue;
            }
            match self.retrieve()? {
                Some(frame) => {
                    // Returned next, whatever the interval asked of next_frame_every.
                    self.last_returned_pts = None;
                    self.pending = Some(TimedFrame { pts_s, frame });
                    return Ok(true);
                }
                None => self.skipped += 1,
            }
        }
    }

    /// Jumps to `t_s` (the backend seeks to the keyframe before it and decodes forward); the
    /// next frame returned is the first at or after `t_s`. Falls back to reading forward when
    /// the backend cannot seek or lands late. False at the end of the stream.
    pub fn seek(&mut self, t_s: f64) -> Result<bool, MediaError> {
        let behind = self.pending.as_ref().map(|p| p.pts_s).unwrap_or(0.0);
        if t_s <= behind {
            return self.skip_to(t_s);
        }
        let sought = self
            .capture
            .set(videoio::CAP_PROP_POS_MSEC, (t_s * 1000.0).max(0.0))
            .unwrap_or(false);
        if sought && !self.pts_from_index {
            self.pending = None;
            self.last_returned_pts = None;
            self.ended = false;
            // The index is unknown after a seek; it only serves the index-based fallback
            // timing, which is off for this file.
            if self.info.fps > 0.0 {
                self.next_index = (t_s * self.info.fps).floor() as u64;
            }
        }
        self.skip_to(t_s)
    }

    /// Frames that failed to decode and were passed over.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Goes back to the start of the file (for looping). Reopens the file when seeking fails.
    pub fn rewind(&mut self) -> Result<(), MediaError> {
        let sought = self
            .capture
            .set(videoio::CAP_PROP_POS_FRAMES, 0.0)
            .unwrap_or(false)
            && self
                .capture
                .get(videoio::CAP_PROP_POS_FRAMES)
                .is_ok_and(|pos| pos == 0.0);
        if !sought {
            tracing::debug!(path = %self.path.display(), "seek to start failed; reopening");
            self.capture = open_capture(&self.path)?;
        }
        self.next_index = 0;
        self.last_returned_pts = None;
        self.pending = None;
        self.ended = false;
        // `pts_from_index` is a property of the backend and file: keep it.
        Ok(())
    }

    /// The width frames are scaled to, as given to [`open`](Self::open).
    pub fn target_width(&self) -> Option<u32> {
        self.target_width
    }

    /// Grabs the next frame; returns its timestamp, `None` at the end.
    fn grab(&mut self) -> Result<Option<f64>, MediaError> {
        if self.ended {
            return Ok(None);
        }
        let mut failures = 0;
        loop {
            match self.capture.grab() {
                Ok(true) => break,
                Ok(false) | Err(_) => {
                    failures += 1;
                    let past_the_last = self
                        .info
                        .frame_count
                        .is_some_and(|n| self.next_index + u64::from(failures) > n);
                    if past_the_last || failures >= MAX_CONSECUTIVE_GRAB_FAILURES {
                        self.ended = true;
                        return Ok(None);
                    }
                }
            }
        }
        // Failed grabs followed by a good one were frames that could not be decoded.
        self.skipped += u64::from(failures);
        self.next_index += u64::from(failures);
        let index = self.next_index;
        self.next_index += 1;
        Ok(Some(self.timestamp(index)))
    }

    fn timestamp(&mut self, index: u64) -> f64 {
        let from_index = || {
            if self.info.fps > 0.0 {
                index as f64 / self.info.fps
            } else {
                0.0
            }
        };
        if self.pts_from_index {
            return from_index();
        }
        let msec = self
            .capture
            .get(videoio::CAP_PROP_POS_MSEC)
            .ok()
            .filter(|v| v.is_finite());
        match msec {
            Some(ms) if ms > 0.0 || index == 0 => ms.max(0.0) / 1000.0,
            _ => {
                if self.info.fps > 0.0 {
                    tracing::debug!(path = %self.path.display(), "backend gives no frame positions; timing frames by index / fps");
                    self.pts_from_index = true;
                }
                from_index()
            }
        }
    }

    /// Converts the grabbed frame; `None` when it does not decode.
    fn retrieve(&mut self) -> Result<Option<Frame>, MediaError> {
        match self.capture.retrieve(&mut self.mat, 0) {
            Ok(true) => {}
            Ok(false) | Err(_) => return Ok(None),
        }
        if self.mat.empty() || self.mat.depth() != opencv::core::CV_8U {
            return Ok(None);
        }
        let path = self.path.clone();
        let cv_err =
            |e: opencv::Error| MediaError::decode(&path, cv_reason("converting a frame", e));

        // To BGR.
        let code = match self.mat.channels() {
            3 => None,
            1 => Some(imgproc::COLOR_GRAY2BGR),
            4 => Some(imgproc::COLOR_BGRA2BGR),
            _ => return Ok(None),
        };
        let bgr: &Mat = match code {
            Some(code) => {
                imgproc::cvt_color_def(&self.mat, &mut self.converted, code).map_err(cv_err)?;
                &self.converted
            }
            None => &self.mat,
        };

        let out: &Mat = match self.scaled_size {
            Some((w, h)) if (bgr.cols(), bgr.rows()) != (w as i32, h as i32) => {
                imgproc::resize(
                    bgr,
                    &mut self.scaled,
                    Size::new(w as i32, h as i32),
                    0.0,
                    0.0,
                    imgproc::INTER_AREA,
                )
                .map_err(cv_err)?;
                &self.scaled
            }
            _ => bgr,
        };

        let (w, h) = (out.cols(), out.rows());
        if w <= 0 || h <= 0 {
            return Ok(None);
        }
        let bytes = if out.is_continuous() {
            out.data_bytes().map_err(cv_err)?.to_vec()
        } else {
            let copy = out.try_clone().map_err(cv_err)?;
            copy.data_bytes().map_err(cv_err)?.to_vec()
        };
        match Frame::new(w as u32, h as u32, bytes) {
            Ok(frame) => Ok(Some(frame)),
            Err(e) => Err(MediaError::decode(&self.path, e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_files::*;
    use super::*;

    fn mean(frame: &Frame) -> f64 {
        frame.bgr().iter().map(|&v| f64::from(v)).sum::<f64>() / frame.bgr().len() as f64
    }

    fn sync_clip() -> PathBuf {
        test_video("av_sync_flash_beep.mp4")
    }

    #[test]
    fn sync_clip_info() {
        let decoder = VideoDecoder::open(&sync_clip(), None).unwrap();
        let info = decoder.info();
        assert_eq!((info.width, info.height), (640, 480));
        assert!((info.fps - 25.0).abs() < 1e-6, "fps {}", info.fps);
        let n = info.frame_count.expect("frame count");
        assert!((373..=377).contains(&n), "frame count {n}");
        let d = info.duration_s.expect("duration");
        assert!((d - 15.0).abs() < 0.1, "duration {d}");
    }

    #[test]
    fn flashes_are_at_frames_25_and_26_with_pts_one_second() {
        let mut decoder = VideoDecoder::open(&sync_clip(), None).unwrap();
        let mut frames = Vec::new();
        let start = std::time::Instant::now();
        while let Some(f) = decoder.next_frame().unwrap() {
            frames.push((f.pts_s, mean(&f.frame), f.frame.width(), f.frame.height()));
        }
        eprintln!(
            "decoded {} frames at 640x480 in {:?}",
            frames.len(),
            start.elapsed()
        );
        assert!(
            (373..=377).contains(&frames.len()),
            "{} frames",
            frames.len()
        );
        assert_eq!(decoder.skipped(), 0);
        assert!(frames.iter().all(|f| (f.2, f.3) == (640, 480)));
        for k in 1..=14usize {
            for i in [25 * k, 25 * k + 1] {
                assert!(frames[i].1 > 240.0, "frame {i} mean {}", frames[i].1);
            }
            for i in [25 * k - 1, 25 * k + 2] {
                assert!(frames[i].1 < 200.0, "frame {i} mean {}", frames[i].1);
            }
        }
        assert!(frames[0].0.abs() < 1e-3, "pts of frame 0: {}", frames[0].0);
        assert!(
            (frames[25].0 - 1.0).abs() < 1e-3,
            "pts of frame 25: {}",
            frames[25].0
        );
        assert!(
            (frames[26].0 - 1.04).abs() < 1e-3,
            "pts of frame 26: {}",
            frames[26].0
        );
        for (i, f) in frames.iter().enumerate() {
            assert!(
                (f.0 - i as f64 * 0.04).abs() < 1e-3,
                "pts of frame {i}: {}",
                f.0
            );
        }
    }

    #[test]
    fn frames_are_scaled_to_the_target_width() {
        let mut decoder = VideoDecoder::open(&sync_clip(), Some(320)).unwrap();
        assert_eq!(decoder.info().width, 640);
        assert_eq!(decoder.output_size(), (320, 240));
        for i in 0..30 {
            let f = decoder.next_frame().unwrap().expect("frame");
            assert_eq!((f.frame.width(), f.frame.height()), (320, 240));
            if i == 25 {
                assert!(mean(&f.frame) > 240.0);
            }
        }
        // Not wider than the target: native size.
        let mut decoder = VideoDecoder::open(&sync_clip(), Some(1000)).unwrap();
        let f = decoder.next_frame().unwrap().expect("frame");
        assert_eq!((f.frame.width(), f.frame.height()), (640, 480));
        // Odd sizes are fine.
        let mut decoder = VideoDecoder::open(&sync_clip(), Some(101)).unwrap();
        let f = decoder.next_frame().unwrap().expect("frame");
        assert_eq!((f.frame.width(), f.frame.height()), (101, 76));
    }

    #[test]
    fn sampling_every_200ms_gives_5_fps() {
        let mut decoder = VideoDecoder::open(&sync_clip(), Some(320)).unwrap();
        let start = std::time::Instant::now();
        let mut pts = Vec::new();
        while let Some(f) = decoder.next_frame_every(0.2).unwrap() {
            pts.push(f.pts_s);
        }
        eprintln!(
            "sampled {} frames at 5 fps in {:?}",
            pts.len(),
            start.elapsed()
        );
        assert!((73..=77).contains(&pts.len()), "{} frames", pts.len());
        for pair in pts.windows(2) {
            assert!(pair[1] - pair[0] > 0.2 - 1e-3, "{pair:?}");
        }
        // Every fifth frame: the flash frames 25k are among them.
        assert!((pts[5] - 1.0).abs() < 1e-3, "{pts:?}");
    }

    #[test]
    fn rewind_starts_again() {
        let mut decoder = VideoDecoder::open(&sync_clip(), Some(160)).unwrap();
        let first = decoder.next_frame().unwrap().unwrap();
        for _ in 0..40 {
            decoder.next_frame().unwrap().unwrap();
        }
        decoder.rewind().unwrap();
        let again = decoder.next_frame().unwrap().unwrap();
        assert!(again.pts_s.abs() < 1e-3);
        assert_eq!(first.frame, again.frame);
        let second = decoder.next_frame().unwrap().unwrap();
        assert!((second.pts_s - 0.04).abs() < 1e-3);
    }

    #[test]
    fn frame_counter_clip_decodes_in_order() {
        // Frame n shows n in binary in 10 blocks of 64 px across the top.
        let mut decoder = VideoDecoder::open(&test_video("frame_counter_gop25.mp4"), None).unwrap();
        let mut n = 0u32;
        while let Some(f) = decoder.next_frame_every(0.0).unwrap() {
            let (w, bgr) = (f.frame.width() as usize, f.frame.bgr());
            let shown: u32 = (0..10)
                .map(|b| {
                    let (x, y) = (64 * b + 32, 32);
                    let g = bgr[(y * w + x) * 3 + 1];
                    u32::from(g > 128) << b
                })
                .sum();
            assert_eq!(shown, n, "frame {n} shows {shown}");
            assert!((f.pts_s - f64::from(n) / 25.0).abs() < 1e-3);
            n += 1;
        }
        assert_eq!(n, 500);
    }

    #[test]
    fn demo_clip_video() {
        let mut decoder = VideoDecoder::open(&demo_clip(), None).unwrap();
        let info = decoder.info().clone();
        assert_eq!((info.width, info.height), (480, 360));
        assert!((info.fps - 15.0).abs() < 1e-6);
        let mut count = 0;
        let mut last = 0.0;
        while let Some(f) = decoder.next_frame_every(0.2).unwrap() {
            count += 1;
            last = f.pts_s;
        }
        assert!((195..=205).contains(&count), "{count} frames");
        assert!(last > 39.0, "last pts {last}");
    }

    #[test]
    fn scaled_size_keeps_aspect() {
        assert_eq!(scaled_size(640, 480, Some(320)), Some((320, 240)));
        assert_eq!(scaled_size(640, 480, Some(640)), None);
        assert_eq!(scaled_size(640, 480, None), None);
        assert_eq!(scaled_size(1920, 1080, Some(301)), Some((301, 169)));
    }
}
