//! `GET /api/snapshot.jpg[?max_width=N]`: the newest video frame the pipeline received (the
//! sync stage's clip buffer), as a JPEG. The dashboard polls it, so it is never cached.

use cav_actors::actor::sync::LatestFrame;
use cav_core::Frame;
use opencv::core::{Mat, Size, Vec3b, Vector};
use opencv::prelude::*;
use serde::Deserialize;
use warp::http::{header, HeaderValue, StatusCode};
use warp::{Filter, Rejection};

use super::{json_error, ApiState};

type Response = warp::reply::Response;

/// JPEG quality of snapshots: small enough to poll, sharp enough to see a person.
const QUALITY: i32 = 80;

/// Widest `max_width` honoured and smallest accepted.
const MIN_WIDTH: u32 = 16;
const MAX_WIDTH: u32 = 3840;

/// Encodes `frame` as a JPEG, scaled down (never up, aspect kept) to at most `max_width`.
pub fn encode_jpeg(frame: &Frame, max_width: Option<u32>) -> anyhow::Result<Vec<u8>> {
    let (w, h) = (frame.width(), frame.height());
    let src = Mat::new_rows_cols_with_bytes::<Vec3b>(h as i32, w as i32, frame.bgr())?;
    let mut jpeg = Vector::<u8>::new();
    let params = Vector::<i32>::from_slice(&[opencv::imgcodecs::IMWRITE_JPEG_QUALITY, QUALITY]);
    let encoded = match max_width {
        Some(max) if max < w => {
            let new_h = ((u64::from(h) * u64::from(max)) / u64::from(w)).max(1) as i32;
            let mut scaled = Mat::default();
            opencv::imgproc::resize(
                &src,
                &mut scaled,
                Size::new(max as i32, new_h),
                0.0,
                0.0,
                // Area averaging: the sharpest way down without aliasing.
                opencv::imgproc::INTER_AREA,
            )?;
            opencv::imgcodecs::imencode(".jpg", &scaled, &mut jpeg, &params)?
        }
        _ => opencv::imgcodecs::imencode(".jpg", &src, &mut jpeg, &params)?,
    };
    if !encoded {
        anyhow::bail!("OpenCV could not encode a {w}x{h} frame as JPEG");
    }
    Ok(jpeg.to_vec())
}

/// The query. Other parameters are ignored, not refused: pages add one (`?t=<now>`) so that no
/// cache between them and the daemon hands out an old picture.
#[derive(Debug, Deserialize)]
struct SnapshotQuery {
    #[serde(default)]
    max_width: Option<u32>,
}

fn jpeg_response(jpeg: Vec<u8>, source: Option<&str>, captured_ms: i64) -> Response {
    let mut r = warp::reply::Response::new(jpeg.into());
    let headers = r.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // Which camera and when, for pages that show it under the picture.
    if let Ok(v) = HeaderValue::from_str(&captured_ms.to_string()) {
        headers.insert("x-captured-ms", v);
    }
    if let Some(v) = source.and_then(|s| HeaderValue::from_str(s).ok()) {
        headers.insert("x-source", v);
    }
    r
}

async fn snapshot(s: ApiState, q: SnapshotQuery) -> Response {
    if let Some(w) = q.max_width {
        if !(MIN_WIDTH..=MAX_WIDTH).contains(&w) {
            return json_error(
                StatusCode::BAD_REQUEST,
                format!("max_width: {w} is out of range {MIN_WIDTH}..={MAX_WIDTH}"),
            );
        }
    }
    let taken = match s.sync.send(LatestFrame).await {
        Ok(Some(t)) => t,
        Ok(None) => return json_error(StatusCode::NOT_FOUND, "no video frame yet"),
        Err(e) => {
            tracing::warn!(error = %e, "the sync stage did not answer for a snapshot");
            return json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the pipeline is not running (restarting?)",
            );
        }
    };
    // Encoding a large frame takes milliseconds of CPU: off the async executor.
    let frame = taken.frame.clone();
    let encoded = tokio::task::spawn_blocking(move || encode_jpeg(&frame, q.max_width)).await;
    match encoded {
        Ok(Ok(jpeg)) => jpeg_response(jpeg, taken.source.as_deref(), taken.captured.millis()),
        Ok(Err(e)) => {
            tracing::error!(error = %format!("{e:#}"), "cannot encode the snapshot");
            json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot encode the snapshot: {e:#}"),
            )
        }
        Err(e) => {
            tracing::error!(error = %e, "the snapshot encoder failed");
            json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot encode the snapshot",
            )
        }
    }
}

pub fn routes(state: ApiState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "snapshot.jpg")
        .and(warp::get())
        .and(warp::query::<SnapshotQuery>())
        .and(warp::any().map(move || state.clone()))
        .then(|q: SnapshotQuery, s: ApiState| snapshot(s, q))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_encoded_and_scaled_down_only() {
        let frame = Frame::filled(64, 48, [10, 200, 30]).unwrap();
        for (max, want_w, want_h) in [(None, 64, 48), (Some(32), 32, 24), (Some(640), 64, 48)] {
            let jpeg = encode_jpeg(&frame, max).unwrap();
            assert_eq!(&jpeg[..2], &[0xFF, 0xD8], "a JPEG starts with SOI");
            let decoded = opencv::imgcodecs::imdecode(
                &Vector::<u8>::from_slice(&jpeg),
                opencv::imgcodecs::IMREAD_COLOR,
            )
            .unwrap();
            assert_eq!(
                (decoded.cols(), decoded.rows()),
                (want_w, want_h),
                "{max:?}"
            );
        }
    }
}
