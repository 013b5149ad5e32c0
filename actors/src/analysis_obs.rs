//! Sampled analysis of a media source loaded in OBS Studio: the pictures come from OBS (the
//! source is paused, moved to each frame with `SetMediaInputCursor` and photographed with
//! `GetSourceScreenshot`), the sound from the media file itself. The samples, their spans and
//! their classification are exactly those of [`crate::analysis::analyze_samples`], so both give
//! the same classes at the same times for the same file.
//!
//! How a frame is taken: the frames of a span are the ones the direct analysis would decode
//! (the file's frame grid at its nominal rate, one every `1 / analysis_fps` s), each sought at
//! the middle of its frame interval. OBS's media source (`ffmpeg_source`) lands on the keyframe
//! at or before the target and then reports that keyframe + one frame as its cursor, so the
//! picture is exact only where the sampled frames are keyframes (an all-intra file, or one with
//! a keyframe every `1 / analysis_fps` s); other landings are counted and logged as inexact.
//! After a seek the cursor and the picture change asynchronously: a frame is taken once the
//! cursor has moved (or [`SAME_POSITION_WAIT`] has passed, for a seek that lands where the source
//! already was) and two screenshots [`STABLE_FOR`] apart are the same. A screenshot identical to
//! the previous frame's after the cursor moved is OBS keeping a stale picture (seen with OBS 29,
//! rarely): the seek is repeated up to [`STALE_RESEEKS`] times (still footage pays for that with
//! one extra seek per frame). The first frame after pausing a playing source may be one that
//! playback had queued (1 run in 4 with OBS 29.0.2): it is taken again until two takes agree
//! ([`VERIFY_TAKES`]). Measured with the tests' headless OBS: ~65–110 ms a frame, i.e. about
//! 2× real time at one sample a second and 7× at one every 4 s. Screenshots are taken at the
//! file's own width and scaled like the decoder scales (`INTER_AREA`), so both paths see the
//! same pixels up to JPEG and colour-conversion noise.
//!
//! The analysis takes over the source's playback; when it ends (done, failed or cancelled) the
//! source is put back where it was (position, and playing or stopped).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use cav_core::{Classifier, Frame, Timestamp};
use opencv::core::{Mat, MatTraitConst, MatTraitConstManual, Size, Vector};
use opencv::{imgcodecs, imgproc};

use crate::analysis::{
    check_interval, checked_duration, classify_span, sample_times, AnalysisError, AudioCursor,
    FileSample, SampleSettings,
};
use crate::media;
use crate::obs::{MediaAction, MediaStatus, ObsClient, ObsError, ObsSettings};

/// The OBS input kind of a media file source, the only kind that can be analysed.
pub const MEDIA_SOURCE_KIND: &str = "ffmpeg_source";
/// How long one frame may take to show after its seek before the analysis fails.
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(5);
/// Two identical screenshots this far apart (or 1.25 OBS render frames, if longer) mean the
/// picture has settled: a picture changes at most once per render frame.
pub const STABLE_FOR: Duration = Duration::from_millis(50);
/// How long to wait for a cursor that does not move (a seek to where the source already is).
pub const SAME_POSITION_WAIT: Duration = Duration::from_millis(150);
/// Extra seeks when OBS keeps showing the previous picture after the cursor moved.
pub const STALE_RESEEKS: u32 = 1;
/// Most takes of the first frame after a pause, until two agree.
pub const VERIFY_TAKES: u32 = 4;
/// JPEG quality of the screenshots.
pub const JPEG_QUALITY: u8 = 95;
/// Pause between status and screenshot polls.
const POLL: Duration = Duration::from_millis(5);
/// Frame times within this of each other are the same frame (as in the video decoder).
const SLACK_S: f64 = 1e-4;

/// An OBS input as an analysis request needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObsMediaInput {
    pub name: String,
    /// The input kind; only [`MEDIA_SOURCE_KIND`] can be analysed.
    pub kind: String,
    /// The file the input plays (`local_file`), when it plays a local file.
    pub local_file: Option<String>,
}

/// Looks an input up in OBS: its kind and the local file it plays. Blocking (runs its own
/// runtime); [`ObsError::SourceNotFound`] when OBS has no input of that name.
pub fn media_input(obs: &ObsSettings, name: &str) -> Result<ObsMediaInput, ObsError> {
    let rt = actix_rt::Runtime::new()
        .map_err(|e| ObsError::Protocol(format!("cannot start the OBS client: {e}")))?;
    rt.block_on(async {
        let client = ObsClient::connect(obs).await?;
        let input = client
            .inputs()
            .await?
            .into_iter()
            .find(|i| i.name == name)
            .ok_or_else(|| ObsError::SourceNotFound {
                name: name.to_string(),
            })?;
        let local_file = if input.kind == MEDIA_SOURCE_KIND {
            input_local_file(obs, name).await?
        } else {
            None
        };
        Ok(ObsMediaInput {
            name: input.name,
            kind: input.kind,
            local_file,
        })
    })
}

/// A plain obws connection, for the few requests [`ObsClient`] does not make.
async fn raw_client(obs: &ObsSettings) -> Result<obws::Client, ObsError> {
    let url = obs.url();
    let connecting = obws::Client::connect(obs.host.as_str(), obs.port, obs.password.as_deref());
    match tokio::time::timeout(crate::obs::CONNECT_TIMEOUT, connecting).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(ObsError::Unreachable {
            url,
            reason: e.to_string(),
        }),
        Err(_) => Err(ObsError::Unreachable {
            url,
            reason: "no answer in time".into(),
        }),
    }
}

/// One OBS render frame (from the canvas frame rate), when OBS says.
async fn canvas_frame(obs: &ObsSettings) -> Option<Duration> {
    let client = raw_client(obs).await.ok()?;
    let config = client.config();
    let v = tokio::time::timeout(crate::obs::REQUEST_TIMEOUT, config.video_settings())
        .await
        .ok()?
        .ok()?;
    let fps = f64::from(v.fps_numerator) / f64::from(v.fps_denominator.max(1));
    (fps.is_finite() && fps >= 1.0).then(|| Duration::from_secs_f64(1.0 / fps))
}

/// `local_file` of a media source's settings (`None` when it plays a URL or nothing). The
/// [`ObsClient`] has no request for input settings, so this asks through obws directly.
async fn input_local_file(obs: &ObsSettings, name: &str) -> Result<Option<String>, ObsError> {
    let client = raw_client(obs).await?;
    let inputs = client.inputs();
    let request = inputs.settings::<serde_json::Value>(name);
    let answer = match tokio::time::timeout(crate::obs::REQUEST_TIMEOUT, request).await {
        Ok(Ok(a)) => a,
        Ok(Err(obws::Error::Api { code, message })) => {
            return Err(match code {
                obws::responses::StatusCode::ResourceNotFound => ObsError::SourceNotFound {
                    name: name.to_string(),
                },
                code => ObsError::Rejected {
                    request: format!("GetInputSettings for '{name}'"),
                    code: code as u16,
                    comment: message,
                },
            })
        }
        Ok(Err(e)) => return Err(ObsError::Protocol(format!("GetInputSettings: {e}"))),
        Err(_) => {
            return Err(ObsError::Timeout {
                request: "GetInputSettings".into(),
                after_ms: crate::obs::REQUEST_TIMEOUT.as_millis() as u64,
            })
        }
    };
    // OBS leaves defaults out: a media source plays a local file unless told otherwise.
    let local = answer.settings["is_local_file"].as_bool().unwrap_or(true);
    Ok(answer.settings["local_file"]
        .as_str()
        .filter(|f| local && !f.is_empty())
        .map(str::to_string))
}

/// The frames of the span `[t, end)` that the decoder would hand out at `analysis_fps`: the
/// first frame at or after `t`, then each first frame at least `1 / analysis_fps` after the one
/// before, on the grid of a `video_fps` file of `frame_count` frames.
pub fn span_frame_times(
    t: f64,
    end: f64,
    analysis_fps: f64,
    video_fps: f64,
    frame_count: Option<u64>,
) -> Vec<f64> {
    let step = if analysis_fps > 0.0 {
        1.0 / analysis_fps
    } else {
        0.0
    };
    let mut out = Vec::new();
    if !(video_fps.is_finite() && video_fps > 0.0) {
        // No grid known: the nominal times themselves.
        let mut k = 0u32;
        while step > 0.0 || k == 0 {
            let p = t + f64::from(k) * step;
            if p >= end - SLACK_S || k > 10_000 {
                break;
            }
            out.push(p);
            k += 1;
        }
        return out;
    }
    let mut index = ((t - SLACK_S) * video_fps).ceil().max(0.0) as u64;
    loop {
        if frame_count.is_some_and(|n| index >= n) {
            break;
        }
        let p = index as f64 / video_fps;
        if p >= end || out.len() > 10_000 {
            break;
        }
        out.push(p);
        let next = ((p + step - SLACK_S) * video_fps).ceil() as u64;
        index = next.max(index + 1);
    }
    out
}

/// Where to seek for the frame at `pts_s`: the middle of its frame interval, in ms.
fn seek_target_ms(pts_s: f64, video_fps: f64) -> i64 {
    let half = if video_fps > 0.0 {
        0.5 / video_fps
    } else {
        0.001
    };
    ((pts_s + half) * 1000.0).floor() as i64
}

/// Decodes a screenshot and scales it to `target_width` like the video decoder does.
fn decode_scaled(jpeg: &[u8], target_width: u32) -> Result<Frame, ObsError> {
    let cv = |what: &str, e: opencv::Error| ObsError::Decode(format!("{what}: {e}"));
    let mat = imgcodecs::imdecode(&Vector::<u8>::from_slice(jpeg), imgcodecs::IMREAD_COLOR)
        .map_err(|e| cv("imdecode", e))?;
    if mat.empty() || mat.channels() != 3 {
        return Err(ObsError::Decode(format!(
            "{} bytes are not a colour image",
            jpeg.len()
        )));
    }
    let (w, h) = (mat.cols().max(1) as u32, mat.rows().max(1) as u32);
    let target = target_width.max(1);
    let out = if w > target {
        let th = ((f64::from(h) * f64::from(target) / f64::from(w)).round() as i32).max(1);
        let mut scaled = Mat::default();
        imgproc::resize(
            &mat,
            &mut scaled,
            Size::new(target as i32, th),
            0.0,
            0.0,
            imgproc::INTER_AREA,
        )
        .map_err(|e| cv("resize", e))?;
        scaled
    } else {
        mat
    };
    let out = if out.is_continuous() {
        out
    } else {
        out.try_clone().map_err(|e| cv("copy", e))?
    };
    let bytes = out.data_bytes().map_err(|e| cv("pixels", e))?.to_vec();
    Frame::new(out.cols() as u32, out.rows() as u32, bytes)
        .map_err(|e| ObsError::Decode(e.to_string()))
}

/// Drives one media source: pauses it, shows frames, puts it back.
struct Player<'a> {
    client: ObsClient,
    obs: &'a ObsSettings,
    source: &'a str,
    /// Screenshot width (the file's own) and the analysis width.
    shot_width: u32,
    analysis_width: u32,
    video_fps: f64,
    stable_for: Duration,
    initial: MediaStatus,
    last_shot: Option<Vec<u8>>,
    last_cursor: Option<i64>,
    /// Take the next frame twice (the first after a pause).
    verify_next: bool,
    /// Frames whose seek landed on an earlier keyframe.
    inexact: u64,
    frames: u64,
    reseeks: u64,
    retakes: u64,
}

impl<'a> Player<'a> {
    async fn open(
        obs: &'a ObsSettings,
        source: &'a str,
        file_duration_s: f64,
        video: &media::VideoInfo,
        analysis_width: u32,
    ) -> Result<Player<'a>, AnalysisError> {
        let err = |error| AnalysisError::Obs {
            name: source.to_string(),
            error,
        };
        let client = ObsClient::connect(obs).await.map_err(err)?;
        let initial = client.media_status(source).await.map_err(err)?;
        if initial.state == "error" {
            return Err(AnalysisError::Invalid(format!(
                "OBS source '{source}' cannot play its media (state: error)"
            )));
        }
        if let Some(d) = initial.duration_ms {
            let obs_s = d as f64 / 1000.0;
            if (obs_s - file_duration_s).abs() > (0.01 * file_duration_s).max(1.0) {
                return Err(AnalysisError::Invalid(format!(
                    "OBS source '{source}' plays media of {obs_s:.3} s, but the file is \
                     {file_duration_s:.3} s long: not the same media"
                )));
            }
        }
        let stable_for = canvas_frame(obs)
            .await
            .map_or(STABLE_FOR, |f| STABLE_FOR.max(f.mul_f64(1.25)));
        let mut player = Player {
            client,
            obs,
            source,
            shot_width: video.width.max(8),
            analysis_width,
            video_fps: video.fps,
            stable_for,
            initial,
            last_shot: None,
            last_cursor: None,
            verify_next: true,
            inexact: 0,
            frames: 0,
            reseeks: 0,
            retakes: 0,
        };
        player.pause_and_settle().await?;
        Ok(player)
    }

    /// Pauses the source and waits for its picture to settle; that picture is the one a first
    /// seek must change (see [`STALE_RESEEKS`]).
    async fn pause_and_settle(&mut self) -> Result<(), AnalysisError> {
        self.pause().await?;
        let (cursor, shot, _) = self.settle(Some(i64::MIN)).await.map_err(|e| self.err(e))?;
        self.last_cursor = Some(cursor);
        self.last_shot = Some(shot);
        self.verify_next = true;
        Ok(())
    }

    fn err(&self, error: ObsError) -> AnalysisError {
        AnalysisError::Obs {
            name: self.source.to_string(),
            error,
        }
    }

    /// Brings the source to `paused` (starting it first when it is stopped or ended).
    async fn pause(&mut self) -> Result<(), AnalysisError> {
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        let mut asked_play = false;
        let mut asked_pause = false;
        loop {
            let s = self
                .client
                .media_status(self.source)
                .await
                .map_err(|e| self.err(e))?;
            match s.state.as_str() {
                "paused" => {
                    self.last_cursor = s.cursor_ms;
                    return Ok(());
                }
                "playing" if !asked_pause => {
                    self.action(MediaAction::Pause).await?;
                    asked_pause = true;
                }
                "stopped" | "ended" | "none" if !asked_play => {
                    self.action(MediaAction::Play).await?;
                    asked_play = true;
                }
                "error" => {
                    return Err(AnalysisError::Invalid(format!(
                        "OBS source '{}' cannot play its media (state: error)",
                        self.source
                    )))
                }
                _ => {}
            }
            if Instant::now() > deadline {
                return Err(AnalysisError::Invalid(format!(
                    "OBS source '{}' did not pause within {} s (state: {})",
                    self.source,
                    SETTLE_TIMEOUT.as_secs(),
                    s.state
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn action(&self, action: MediaAction) -> Result<(), AnalysisError> {
        self.client
            .media_action(self.source, action)
            .await
            .map_err(|e| self.err(e))
    }

    /// The picture of the frame at `pts_s`, scaled for analysis. Reconnects once when the
    /// connection is lost.
    async fn frame(&mut self, pts_s: f64) -> Result<Frame, AnalysisError> {
        match self.try_frame(pts_s).await {
            Err(e) if e.is_connection_lost() => {
                tracing::warn!(source = self.source, error = %e, "OBS connection lost during an analysis; reconnecting");
                self.client = ObsClient::connect(self.obs)
                    .await
                    .map_err(|e| self.err(e))?;
                self.pause_and_settle().await?;
                self.try_frame(pts_s).await.map_err(|e| self.err(e))
            }
            other => other.map_err(|e| self.err(e)),
        }
    }

    async fn try_frame(&mut self, pts_s: f64) -> Result<Frame, ObsError> {
        let target = seek_target_ms(pts_s, self.video_fps);
        let (mut cursor, mut shot) = self.take(target).await?;
        if self.verify_next {
            // The first seek after a pause may show a frame that playback had queued: take the
            // frame again until two takes agree.
            for _ in 1..VERIFY_TAKES {
                let again = self.take(target).await?;
                let agree = again.1 == shot;
                (cursor, shot) = again;
                if agree {
                    break;
                }
                self.retakes += 1;
                tracing::debug!(
                    source = self.source,
                    target,
                    "the first frame after pausing changed on a second take"
                );
            }
            self.verify_next = false;
        }
        self.frames += 1;
        // The cursor reads keyframe + one frame: below the target's middle, the seek landed on
        // an earlier keyframe.
        if cursor < target {
            self.inexact += 1;
            if self.inexact == 1 {
                tracing::warn!(
                    source = self.source,
                    wanted_ms = (pts_s * 1000.0).round() as i64,
                    cursor_ms = cursor,
                    "OBS could not show this frame exactly (no keyframe there): use media with a keyframe at every analysed frame"
                );
            }
        }
        decode_scaled(&shot, self.analysis_width)
    }

    /// Seeks to `target` ms and waits for the picture (seeking again once when OBS keeps the
    /// previous picture although the cursor moved). Returns the cursor and the JPEG.
    async fn take(&mut self, target: i64) -> Result<(i64, Vec<u8>), ObsError> {
        let mut attempt = 0;
        loop {
            let before = self.last_cursor;
            self.client
                .media_action(
                    self.source,
                    MediaAction::Seek {
                        position_ms: target,
                    },
                )
                .await?;
            let settling = Instant::now();
            let (cursor, shot, pictures) = self.settle(before).await?;
            tracing::debug!(
                source = self.source,
                target,
                ?before,
                cursor,
                pictures,
                settle_ms = settling.elapsed().as_millis() as u64,
                "frame shown"
            );
            let moved = Some(cursor) != before;
            let stale = moved && self.last_shot.as_ref() == Some(&shot);
            self.last_cursor = Some(cursor);
            self.last_shot = Some(shot.clone());
            if stale && attempt < STALE_RESEEKS {
                attempt += 1;
                self.reseeks += 1;
                tracing::debug!(
                    source = self.source,
                    target,
                    "OBS kept the previous picture after a seek; seeking again"
                );
                // Seek again from where the source now is.
                self.last_cursor = before;
                continue;
            }
            return Ok((cursor, shot));
        }
    }

    /// Waits until the seek has shown: the cursor moved from `before` (or it had no need to) and
    /// the picture is the same in two screenshots [`STABLE_FOR`] apart. Returns the cursor and the picture.
    async fn settle(&self, before: Option<i64>) -> Result<(i64, Vec<u8>, u32), ObsError> {
        let started = Instant::now();
        let mut pictures = 0u32;
        let mut candidate: Option<(i64, Vec<u8>, Instant)> = None;
        loop {
            if started.elapsed() > SETTLE_TIMEOUT {
                return Err(ObsError::Timeout {
                    request: "a seek to show its picture".into(),
                    after_ms: SETTLE_TIMEOUT.as_millis() as u64,
                });
            }
            let status = self.client.media_status(self.source).await?;
            let Some(cursor) = status.cursor_ms else {
                return Err(ObsError::Protocol(format!(
                    "source '{}' reports no media position (state: {})",
                    self.source, status.state
                )));
            };
            if Some(cursor) == before && started.elapsed() < SAME_POSITION_WAIT {
                tokio::time::sleep(POLL).await;
                continue;
            }
            let shot = self
                .client
                .screenshot_jpeg(self.source, self.shot_width, JPEG_QUALITY)
                .await?;
            match &candidate {
                Some((c, s, since)) if *c == cursor && *s == shot => {
                    if since.elapsed() >= self.stable_for {
                        return Ok((cursor, shot, pictures));
                    }
                }
                _ => {
                    pictures += 1;
                    candidate = Some((cursor, shot, Instant::now()));
                }
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Puts the source back where it was before the analysis (best effort).
    async fn restore(&self) {
        let mut actions = Vec::new();
        if let Some(c) = self.initial.cursor_ms {
            actions.push(MediaAction::Seek { position_ms: c });
        }
        match self.initial.state.as_str() {
            "playing" | "opening" | "buffering" => actions.push(MediaAction::Play),
            "stopped" | "ended" | "none" => actions = vec![MediaAction::Stop],
            _ => {}
        }
        for a in actions {
            if let Err(e) = self.client.media_action(self.source, a).await {
                tracing::warn!(source = self.source, error = %e, "cannot put the OBS source back as it was");
                return;
            }
        }
    }
}

/// Analyses the samples of the media source `source` in OBS, which plays the file `path` (the
/// sound is read from `path`). Same sampling, spans, callbacks and results as
/// [`crate::analysis::analyze_samples`]. Blocking: runs its own runtime for the OBS client.
#[allow(clippy::too_many_arguments)]
pub fn analyze_obs_samples(
    obs: &ObsSettings,
    source: &str,
    path: &Path,
    settings: &SampleSettings,
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
    let Some(video) = info.video.clone() else {
        return Err(AnalysisError::Invalid(format!(
            "{} has no video: analyse the file directly",
            path.display()
        )));
    };
    let mut audio = AudioCursor::open(path, &info)?;
    let rt = actix_rt::Runtime::new()
        .map_err(|e| AnalysisError::Invalid(format!("cannot start the OBS client: {e}")))?;
    let began = Instant::now();
    let mut player = rt.block_on(Player::open(
        obs,
        source,
        duration_s,
        &video,
        settings.analysis_width,
    ))?;
    let times = sample_times(settings.sampling, duration_s, span_s);
    let mut run = || -> Result<u64, AnalysisError> {
        let mut count = 0u64;
        for (index, &t) in times.iter().enumerate() {
            let end = t + span_s;
            let mut frames = Vec::new();
            for pts in span_frame_times(t, end, settings.analysis_fps, video.fps, video.frame_count)
            {
                if cancel.load(Ordering::Relaxed) {
                    return Err(AnalysisError::Cancelled);
                }
                let frame = rt.block_on(player.frame(pts))?;
                frames.push((Timestamp::from_secs_f64(pts), frame));
            }
            let samples = match audio.as_mut() {
                Some(a) => Some(a.take_span(t, end)?),
                None => None,
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
    };
    let result = run();
    rt.block_on(player.restore());
    tracing::info!(
        source,
        frames = player.frames,
        inexact = player.inexact,
        reseeks = player.reseeks,
        retakes = player.retakes,
        elapsed_s = began.elapsed().as_secs_f64(),
        "OBS analysis finished"
    );
    if player.inexact > 0 {
        tracing::warn!(
            source,
            inexact = player.inexact,
            frames = player.frames,
            "some frames were shown from an earlier keyframe"
        );
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn span_frames_follow_the_decoders_choice() {
        // 15 fps at 5 fps: every third frame.
        let f = span_frame_times(5.0, 6.0, 5.0, 15.0, Some(600));
        let want = [5.0, 5.2, 5.4, 5.6, 5.8];
        assert_eq!(f.len(), 5, "{f:?}");
        for (a, b) in f.iter().zip(want) {
            assert!((a - b).abs() < 1e-9, "{f:?}");
        }
        // 24 fps: the first frame at least 0.2 s after the previous one.
        let f = span_frame_times(0.0, 1.0, 5.0, 24.0, None);
        let idx: Vec<i64> = f.iter().map(|p| (p * 24.0).round() as i64).collect();
        assert_eq!(idx, vec![0, 5, 10, 15, 20]);
        // The end of the file cuts the span short.
        assert_eq!(span_frame_times(39.5, 40.5, 5.0, 15.0, Some(600)).len(), 3);
        // Unknown frame rate: nominal times.
        assert_eq!(span_frame_times(2.0, 3.0, 5.0, 0.0, None).len(), 5);
    }

    #[test]
    fn seeks_aim_at_the_middle_of_the_frame() {
        assert_eq!(seek_target_ms(5.0, 15.0), 5033);
        assert_eq!(seek_target_ms(5.2, 25.0), 5220);
        assert_eq!(seek_target_ms(0.0, 0.0), 1);
    }

    #[test]
    fn screenshots_are_scaled_like_decoded_frames() {
        let mat = Mat::new_rows_cols_with_default(
            360,
            480,
            opencv::core::CV_8UC3,
            opencv::core::Scalar::new(10.0, 120.0, 200.0, 0.0),
        )
        .unwrap();
        let mut jpeg = Vector::<u8>::new();
        imgcodecs::imencode(".jpg", &mat, &mut jpeg, &Vector::new()).unwrap();
        let f = decode_scaled(jpeg.as_slice(), 320).unwrap();
        assert_eq!((f.width(), f.height()), (320, 240));
        let f = decode_scaled(jpeg.as_slice(), 640).unwrap();
        assert_eq!((f.width(), f.height()), (480, 360));
        assert!(decode_scaled(b"nope", 320).is_err());
    }
}
