//! `POST /api/analyze-frame`: the vision models and the frame features on one frame — of a
//! media file at a time (`{"media": "<as listed by GET /api/media>", "t": 12.5}`) or the newest
//! camera frame (`{"live": true}`) — with a small JPEG of the frame, so the model-testing page
//! shows exactly what was analysed.
//!
//! Media files are read only inside `analysis.media_dirs` (`resolve_media`). Decoding and the
//! models run on a blocking thread; one frame at a time (the models are shared, and the machine
//! has few cores), the models loaded once on first use.

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use base64::Engine as _;
use cav_actors::actor::sync::LatestFrame;
use cav_actors::health::VisionReading;
use cav_actors::media::VideoDecoder;
use cav_core::video_features::{brightness, skin_percent};
use cav_core::{Frame, Timestamp};
use cav_models::vision::{Vision, VisionOptions};
use serde::{Deserialize, Serialize};
use warp::http::StatusCode;
use warp::{Filter, Rejection, Reply};

use super::analyses::{resolve_media, PathRefusal};
use super::dto::VisionDto;
use super::snapshot::encode_jpeg;
use super::{json_error, ApiState, BODY_LIMIT};

type Response = warp::reply::Response;

/// The snapshot in the answer is at most this wide.
const SNAPSHOT_WIDTH: u32 = 640;

/// `POST /api/analyze-frame`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalyzeFrame {
    /// A media file: relative to a media folder, or an absolute path inside one.
    #[serde(default)]
    pub media: Option<String>,
    /// Seconds from the start of the media file (default 0).
    #[serde(default)]
    pub t: Option<f64>,
    /// The newest camera frame instead of a file.
    #[serde(default)]
    pub live: Option<bool>,
}

#[derive(Debug, Serialize)]
struct FrameFeaturesDto {
    /// Mean luma, 0–255.
    brightness: f32,
    /// Share of skin-coloured pixels, 0–100.
    skin_percent: f32,
}

#[derive(Debug, Serialize)]
struct AnalyzedFrameDto {
    /// `media` or `live`.
    input: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    media: Option<String>,
    /// The frame's time in the file (media) — the first frame at or after the requested `t`.
    #[serde(skip_serializing_if = "Option::is_none")]
    t: Option<f64>,
    /// Capture time (live).
    #[serde(skip_serializing_if = "Option::is_none")]
    captured_at: Option<String>,
    width: u32,
    height: u32,
    /// `/api/status`'s vision shape; a media frame has no capture time (`at`): its place in
    /// the file is `t`.
    vision: VisionDto,
    features: FrameFeaturesDto,
    /// The analysed frame as `data:image/jpeg;base64,…`, at most 640 px wide.
    snapshot: String,
}

/// Where the frame comes from, once the request is checked.
enum Input {
    Media {
        path: PathBuf,
        shown: String,
        t: f64,
    },
    Live,
}

fn bad(field: &str, message: impl std::fmt::Display) -> Response {
    json_error(StatusCode::BAD_REQUEST, format!("{field}: {message}"))
}

fn input(s: &ApiState, body: &AnalyzeFrame) -> Result<Input, Response> {
    match (&body.media, body.live) {
        (Some(_), Some(true)) => Err(bad("live", "give either media (and t) or live, not both")),
        (None, Some(true)) => {
            if body.t.is_some() {
                return Err(bad("t", "only with media"));
            }
            Ok(Input::Live)
        }
        (_, Some(false)) => Err(bad("live", "must be true (or left out and media given)")),
        (None, None) => Err(bad(
            "media",
            "required: a file as listed by GET /api/media (or \"live\": true)",
        )),
        (Some(media), None) => {
            let media = media.trim();
            if media.is_empty() {
                return Err(bad("media", "must not be empty"));
            }
            let t = body.t.unwrap_or(0.0);
            if !t.is_finite() || t < 0.0 {
                return Err(bad("t", format!("{t} must be 0 or more seconds")));
            }
            let path = match resolve_media(&s.analysis.media_dirs, media) {
                Ok(p) => p,
                Err(PathRefusal::NotFound(m)) => {
                    return Err(json_error(StatusCode::NOT_FOUND, format!("media: {m}")))
                }
                Err(PathRefusal::Outside(m)) => {
                    return Err(json_error(StatusCode::FORBIDDEN, format!("media: {m}")))
                }
            };
            Ok(Input::Media {
                path,
                shown: media.to_string(),
                t,
            })
        }
    }
}

/// The vision models, loaded on first use and shared by requests (one at a time).
fn models() -> &'static Mutex<Option<Vision>> {
    static MODELS: OnceLock<Mutex<Option<Vision>>> = OnceLock::new();
    MODELS.get_or_init(|| Mutex::new(None))
}

/// Why a frame could not be analysed: a client error (the request's field) or ours.
enum Failure {
    Field(StatusCode, String),
    Internal(String),
}

/// How far past the last frame's start a requested time may be and still mean the last frame: a
/// player paused at the end reports the video's duration, which is after the last frame starts.
const END_SLACK_S: f64 = 0.1;

/// Decodes the frame at `t` of `path` (the first at or after `t`; the last one for a `t` at the
/// very end), scaled like the live pipeline's frames.
fn media_frame(path: &std::path::Path, t: f64, width: u32) -> Result<(f64, Frame), Failure> {
    let open = || {
        VideoDecoder::open(path, Some(width)).map_err(|e| {
            Failure::Field(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("media: cannot read video from the file: {e}"),
            )
        })
    };
    let mut decoder = open()?;
    let duration = decoder.info().duration_s;
    if let Some(f) = frame_at(&mut decoder, t)? {
        return Ok(f);
    }
    if let Some(d) = duration.filter(|d| t <= d + END_SLACK_S) {
        // At the end: the last frame, read forward from a second before it.
        let mut decoder = open()?;
        let mut last = frame_at(&mut decoder, (d - 1.0).max(0.0))?;
        while let Some(f) = decoder
            .next_frame()
            .map_err(|e| Failure::Internal(format!("cannot decode the file: {e}")))?
        {
            last = Some((f.pts_s, f.frame));
        }
        if let Some(f) = last {
            return Ok(f);
        }
    }
    Err(Failure::Field(
        StatusCode::BAD_REQUEST,
        match duration {
            Some(d) => format!("t: {t} s is past the end of the video ({d:.2} s)"),
            None => format!("t: {t} s is past the end of the video"),
        },
    ))
}

/// The first frame at or after `t`, or `None` past the end.
fn frame_at(decoder: &mut VideoDecoder, t: f64) -> Result<Option<(f64, Frame)>, Failure> {
    if !decoder
        .seek(t)
        .map_err(|e| Failure::Internal(format!("cannot seek in the file: {e}")))?
    {
        return Ok(None);
    }
    Ok(decoder
        .next_frame()
        .map_err(|e| Failure::Internal(format!("cannot decode the file: {e}")))?
        .map(|f| (f.pts_s, f.frame)))
}

/// Runs the models and the features on `frame`; blocking (tens to hundreds of ms).
fn analyze(frame: &Frame, options: VisionOptions) -> Result<(VisionReadingParts, String), Failure> {
    let mut guard = models().lock().unwrap_or_else(|poisoned| {
        // A request panicked inside the models: load them afresh rather than trust their state.
        let mut guard = poisoned.into_inner();
        *guard = None;
        guard
    });
    if guard.is_none() {
        let vision = Vision::embedded()
            .map_err(|e| Failure::Internal(format!("cannot load the vision models: {e}")))?;
        *guard = Some(vision);
    }
    let Some(vision) = guard.as_mut() else {
        return Err(Failure::Internal("the vision models are not loaded".into()));
    };
    vision.set_options(options);
    let result = vision
        .analyze(frame.bgr(), frame.width() as usize, frame.height() as usize)
        .map_err(|e| Failure::Internal(format!("vision failed on the frame: {e}")))?;
    drop(guard);
    let gray = frame.to_gray();
    let features = FrameFeaturesDto {
        brightness: brightness(&gray),
        skin_percent: skin_percent(frame),
    };
    let jpeg = encode_jpeg(frame, Some(SNAPSHOT_WIDTH))
        .map_err(|e| Failure::Internal(format!("cannot encode the snapshot: {e:#}")))?;
    let snapshot = format!(
        "data:image/jpeg;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(jpeg)
    );
    Ok(((result, features), snapshot))
}

type VisionReadingParts = (cav_models::vision::VisionResult, FrameFeaturesDto);

async fn analyze_frame(s: ApiState, body: AnalyzeFrame) -> Response {
    let input = match input(&s, &body) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let (options, width) = {
        let config = s.sources.config.lock().await;
        (config.vision.options(), config.video.analysis_width)
    };
    let live = match &input {
        Input::Live => match s.sync.send(LatestFrame).await {
            Ok(Some(t)) => Some(t),
            Ok(None) => return json_error(StatusCode::NOT_FOUND, "live: no video frame yet"),
            Err(e) => {
                tracing::warn!(error = %e, "the sync stage did not answer for a frame");
                return json_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the pipeline is not running (restarting?)",
                );
            }
        },
        Input::Media { .. } => None,
    };
    let started = std::time::Instant::now();
    let job = {
        let live = live.clone();
        let media = match &input {
            Input::Media { path, t, .. } => Some((path.clone(), *t)),
            Input::Live => None,
        };
        move || -> Result<_, Failure> {
            let (pts, frame) = match (media, live) {
                (Some((path, t)), _) => {
                    let (pts, frame) = media_frame(&path, t, width)?;
                    (Some(pts), frame)
                }
                (None, Some(l)) => (None, l.frame),
                (None, None) => return Err(Failure::Internal("no frame to analyse".into())),
            };
            let (parts, snapshot) = analyze(&frame, options)?;
            Ok((pts, frame.width(), frame.height(), parts, snapshot))
        }
    };
    let (pts, w, h, (result, features), snapshot) = match tokio::task::spawn_blocking(job).await {
        Ok(Ok(done)) => done,
        Ok(Err(Failure::Field(status, m))) => return json_error(status, m),
        Ok(Err(Failure::Internal(m))) => {
            tracing::error!(error = %m, "analyze-frame failed");
            return json_error(StatusCode::INTERNAL_SERVER_ERROR, m);
        }
        Err(e) => {
            tracing::error!(error = %e, "analyze-frame worker failed");
            return json_error(StatusCode::INTERNAL_SERVER_ERROR, "the analysis failed");
        }
    };
    let (source, at, media) = match (&input, &live) {
        (Input::Media { shown, .. }, _) => (shown.clone(), None, Some(shown.clone())),
        (Input::Live, Some(l)) => (
            l.source.clone().unwrap_or_else(|| "camera".into()),
            Some(l.captured),
            None,
        ),
        (Input::Live, None) => ("camera".into(), None, None),
    };
    tracing::info!(
        input = if media.is_some() { "media" } else { "live" },
        t = pts,
        persons = result.persons.len(),
        faces = result.faces.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "analyzed one frame"
    );
    let mut vision = VisionDto::from(VisionReading {
        source,
        at: at.unwrap_or(Timestamp(0)),
        width: w,
        height: h,
        result,
    });
    if at.is_none() {
        vision.at = None;
    }
    let captured_at = vision.at.clone();
    warp::reply::json(&AnalyzedFrameDto {
        input: if media.is_some() { "media" } else { "live" },
        media,
        t: pts,
        captured_at,
        width: w,
        height: h,
        vision,
        features,
        snapshot,
    })
    .into_response()
}

pub fn routes(state: ApiState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "analyze-frame")
        .and(warp::post())
        .and(warp::body::content_length_limit(BODY_LIMIT))
        .and(warp::body::json())
        .and(warp::any().map(move || state.clone()))
        .and_then(|body: AnalyzeFrame, s: ApiState| async move {
            Ok::<_, Infallible>(analyze_frame(s, body).await)
        })
}
