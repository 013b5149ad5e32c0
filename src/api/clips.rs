//! `POST /api/save-clip` `{"duration":S,"prefix":"clip","source":ID}`: saves the last S seconds
//! of picture and sound (up to `sync.buffer_s`) into `<data_dir>/captures/` as
//! `<prefix>-<UTC time>.mp4` and `.wav`.

use std::convert::Infallible;
use std::time::Duration;

use cav_actors::actor::sync::TakeClip;
use cav_actors::delivery::iso8601;
use cav_actors::media::clip::write_clip;
use serde::{Deserialize, Serialize};
use warp::http::StatusCode;
use warp::{Filter, Rejection, Reply};

use super::{json_error, ApiState, BODY_LIMIT};

type Response = warp::reply::Response;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SaveClip {
    pub duration: f64,
    #[serde(default)]
    pub prefix: Option<String>,
    /// The video or audio source the clip must come from (default: what the classifier uses).
    #[serde(default)]
    pub source: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct SavedClip {
    pub video_path: Option<String>,
    pub audio_path: Option<String>,
    pub start: String,
    pub end: String,
    pub start_ms: i64,
    pub end_ms: i64,
    pub duration_s: f64,
    pub frames: u64,
    pub fps: f64,
    pub samples: u64,
    pub video_source: Option<String>,
    pub audio_source: Option<String>,
}

/// A file-name prefix: 1–64 letters, digits, `-` or `_` (no path characters).
fn valid_prefix(p: &str) -> bool {
    !p.is_empty()
        && p.len() <= 64
        && p.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

async fn save(s: ApiState, req: SaveClip) -> Result<Response, Response> {
    let bad =
        |field: &str, msg: String| json_error(StatusCode::BAD_REQUEST, format!("{field}: {msg}"));
    if !(req.duration.is_finite() && req.duration > 0.0) {
        return Err(bad(
            "duration",
            format!("must be a number of seconds > 0, got {}", req.duration),
        ));
    }
    let prefix = req.prefix.unwrap_or_else(|| "clip".into());
    if !valid_prefix(&prefix) {
        return Err(bad(
            "prefix",
            format!("{prefix:?}: use 1-64 letters, digits, '-' or '_' (no path characters)"),
        ));
    }
    let take = s
        .sync
        .send(TakeClip {
            duration: Duration::from_secs_f64(req.duration.min(86_400.0)),
        })
        .await
        .map_err(|e| json_error(StatusCode::SERVICE_UNAVAILABLE, format!("sync stage: {e}")))?
        .ok_or_else(|| {
            json_error(
                StatusCode::CONFLICT,
                "nothing buffered yet: no picture or sound has arrived",
            )
        })?;
    if let Some(src) = &req.source {
        if take.video_source.as_ref() != Some(src) && take.audio_source.as_ref() != Some(src) {
            return Err(json_error(
                StatusCode::NOT_FOUND,
                format!(
                    "source: {src:?} is not buffered; clips come from {}",
                    [take.video_source.clone(), take.audio_source.clone()]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join(" and ")
                ),
            ));
        }
    }
    let stamp = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(take.clip.end.millis())
        .map(|t| t.format("%Y%m%d-%H%M%S%.3f").to_string())
        .unwrap_or_default();
    let stem = format!("{prefix}-{stamp}");
    let dir = s.captures_dir.clone();
    let clip = take.clip;
    let (start, end) = (clip.start.millis(), clip.end.millis());
    let files = tokio::task::spawn_blocking(move || write_clip(&clip, &dir, &stem))
        .await
        .map_err(|e| json_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| json_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    tracing::info!(video = ?files.video_path, audio = ?files.audio_path, frames = files.frames, samples = files.samples, "clip saved");
    let saved = SavedClip {
        video_path: files.video_path.map(|p| p.display().to_string()),
        audio_path: files.audio_path.map(|p| p.display().to_string()),
        start: iso8601(start),
        end: iso8601(end),
        start_ms: start,
        end_ms: end,
        duration_s: (end - start) as f64 / 1000.0,
        frames: files.frames,
        fps: files.fps,
        samples: files.samples,
        video_source: take.video_source,
        audio_source: take.audio_source,
    };
    Ok(warp::reply::with_status(warp::reply::json(&saved), StatusCode::CREATED).into_response())
}

pub fn routes(state: ApiState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "save-clip")
        .and(warp::post())
        .and(warp::body::content_length_limit(BODY_LIMIT))
        .and(warp::body::json())
        .and(warp::any().map(move || state.clone()))
        .and_then(|req: SaveClip, s: ApiState| async move {
            Ok::<_, Infallible>(save(s, req).await.unwrap_or_else(|e| e))
        })
}

#[cfg(test)]
mod tests {
    use super::valid_prefix;

    #[test]
    fn prefixes_cannot_carry_paths() {
        for ok in ["clip", "kitchen_2", "a-b"] {
            assert!(valid_prefix(ok), "{ok}");
        }
        for bad in ["", "../x", "a/b", "a\\b", ".hidden", "x y", &"x".repeat(65)] {
            assert!(!valid_prefix(bad), "{bad}");
        }
    }
}
