//! A small async client for OBS Studio through obs-websocket 5 (OBS 28+, tested with OBS 29.0.2
//! and obs-websocket 5.1.0): screenshots of a source as [`Frame`]s, the list of inputs, and media
//! playback control. It knows nothing about actix; [`crate::actor::obs_source`] drives it.
//!
//! Built on `obws` 0.11.5, the newest release that accepts OBS 29 (later ones require OBS ≥ 30).
//! Every request has a time limit, because a request sent just after the connection died may
//! otherwise never be answered (obws drops the reply slots only for requests already waiting).

use std::time::Duration;

use cav_core::Frame;
use obws::requests::sources::TakeScreenshot;
use obws::responses::StatusCode;
use opencv::core::{Mat, MatTraitConst, MatTraitConstManual, Vector};
use opencv::imgcodecs;
use serde::Serialize;
use thiserror::Error;

/// obs-websocket's default port.
pub const DEFAULT_PORT: u16 = 4455;
/// Screenshots per second when the configuration does not say.
pub const DEFAULT_FPS: f64 = 5.0;
/// Screenshot width in pixels when the configuration does not say (height keeps the aspect).
pub const DEFAULT_WIDTH: u32 = 640;
/// JPEG quality (0–100) of the screenshots when the configuration does not say.
pub const DEFAULT_JPEG_QUALITY: u8 = 80;
/// How long connecting (TCP, websocket upgrade, Hello/Identify, version check) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one request may take before the connection is considered lost.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// obs-websocket closes the socket with this code when the password is wrong.
const CLOSE_AUTHENTICATION_FAILED: u16 = 4009;

/// Where OBS is and what to capture from it.
#[derive(Clone, PartialEq)]
pub struct ObsSettings {
    pub host: String,
    pub port: u16,
    /// obs-websocket's password; `None` when authentication is off.
    pub password: Option<String>,
    /// The OBS source (an input such as a video capture device, or a scene) to capture.
    pub source: String,
    /// Screenshots per second.
    pub fps: f64,
    /// Screenshot width in pixels; OBS scales the source keeping its aspect ratio.
    pub width: u32,
    /// JPEG quality of the screenshots, 0–100.
    pub jpeg_quality: u8,
}

impl ObsSettings {
    /// The websocket address, e.g. `ws://127.0.0.1:4455`.
    pub fn url(&self) -> String {
        format!("ws://{}:{}", self.host, self.port)
    }
}

// Written by hand so that the password never reaches a log.
impl std::fmt::Debug for ObsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObsSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("source", &self.source)
            .field("fps", &self.fps)
            .field("width", &self.width)
            .field("jpeg_quality", &self.jpeg_quality)
            .finish()
    }
}

/// Why talking to OBS failed.
///
/// Serializes as `{"kind": "source_not_found", "detail": {...}}` (`detail` absent for unit
/// variants); the human message is its `Display`.
#[derive(Clone, Debug, Error, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum ObsError {
    /// Nothing answered at the address, or the connection or handshake timed out.
    #[error(
        "cannot reach OBS at {url}: {reason} (is OBS running with its WebSocket server enabled?)"
    )]
    Unreachable { url: String, reason: String },
    /// obs-websocket refused the password, or wants one and none is configured.
    #[error("OBS refused the connection: authentication failed ({reason}); check the OBS WebSocket password")]
    AuthFailed { reason: String },
    /// OBS has no source (input or scene) with this name (obs-websocket status 600). The field
    /// is `name`, not `source`: thiserror would take a field called `source` for the cause.
    #[error("OBS has no source named '{name}'")]
    SourceNotFound { name: String },
    /// The source exists but OBS could not render a picture of it (obs-websocket status 702).
    #[error("OBS could not render source '{name}': {reason}")]
    SourceNotRendering { name: String, reason: String },
    /// OBS answered a request with an error status that has no variant of its own.
    #[error("OBS rejected {request}: status {code}{}", .comment.as_deref().map(|c| format!(" ({c})")).unwrap_or_default())]
    Rejected {
        request: String,
        code: u16,
        comment: Option<String>,
    },
    /// A request got no answer in time; the connection is treated as lost.
    #[error("OBS did not answer {request} within {after_ms} ms")]
    Timeout { request: String, after_ms: u64 },
    /// OBS answered something this client does not understand (e.g. an unsupported version).
    #[error("unexpected answer from OBS: {0}")]
    Protocol(String),
    /// A screenshot could not be decoded into a frame.
    #[error("cannot decode the screenshot from OBS: {0}")]
    Decode(String),
    /// There is no connection to OBS (never made, or lost).
    #[error("not connected to OBS")]
    Disconnected,
}

impl ObsError {
    /// True when the connection is gone (or unusable) and a new one must be made.
    pub fn is_connection_lost(&self) -> bool {
        matches!(
            self,
            ObsError::Disconnected | ObsError::Timeout { .. } | ObsError::Unreachable { .. }
        )
    }
}

/// Versions reported by the connected OBS.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ObsVersion {
    /// OBS Studio, e.g. `29.0.2`.
    pub obs: String,
    /// The obs-websocket plugin, e.g. `5.1.0`.
    pub websocket: String,
    pub rpc: u32,
}

/// One OBS input.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ObsInput {
    pub name: String,
    /// The input kind, e.g. `ffmpeg_source` (media file), `v4l2_input` (camera).
    pub kind: String,
}

/// Playback state of a media input.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MediaStatus {
    /// `none`, `playing`, `opening`, `buffering`, `paused`, `stopped`, `ended`, `error` or
    /// `unknown`.
    pub state: String,
    /// Length of the media; `None` when OBS does not know it (e.g. nothing loaded).
    pub duration_ms: Option<i64>,
    /// Playback position; `None` when OBS does not know it.
    pub cursor_ms: Option<i64>,
}

/// A playback command for a media input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum MediaAction {
    Play,
    Pause,
    /// Back to the start, playing.
    Restart,
    /// Stops playback; the position goes back to the start.
    Stop,
    /// Moves the playback position. OBS's media source (`ffmpeg_source`) lands on the keyframe at
    /// or before the target and then reports that keyframe + one frame as its cursor, so exact
    /// positions need media with frequent keyframes (e.g. one per second) and whole-second
    /// targets.
    Seek {
        position_ms: i64,
    },
}

/// A connection to obs-websocket. Cheap to clone: clones share the connection, and requests
/// from several clones may run at the same time.
#[derive(Clone)]
pub struct ObsClient {
    inner: std::sync::Arc<obws::Client>,
    url: String,
    version: ObsVersion,
}

impl std::fmt::Debug for ObsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObsClient")
            .field("url", &self.url)
            .field("version", &self.version)
            .finish()
    }
}

impl ObsClient {
    /// Connects and identifies (with the password, if any), giving up after [`CONNECT_TIMEOUT`].
    pub async fn connect(settings: &ObsSettings) -> Result<ObsClient, ObsError> {
        let url = settings.url();
        let connecting = obws::Client::connect(
            settings.host.as_str(),
            settings.port,
            settings.password.as_deref(),
        );
        let client = match actix_rt::time::timeout(CONNECT_TIMEOUT, connecting).await {
            Ok(Ok(client)) => client,
            Ok(Err(e)) => return Err(connect_error(&url, e)),
            Err(_) => {
                return Err(ObsError::Unreachable {
                    url,
                    reason: format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()),
                })
            }
        };
        let v = limit("GetVersion", client.general().version())
            .await
            .map_err(|e| request_error("GetVersion", None, e))?;
        let version = ObsVersion {
            obs: v.obs_version.to_string(),
            websocket: v.obs_web_socket_version.to_string(),
            rpc: v.rpc_version,
        };
        tracing::debug!(url = %url, obs = %version.obs, websocket = %version.websocket, "connected to OBS");
        Ok(ObsClient {
            inner: std::sync::Arc::new(client),
            url,
            version,
        })
    }

    /// The websocket address this client is connected to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The versions OBS reported when the connection was made.
    pub fn connected_version(&self) -> &ObsVersion {
        &self.version
    }

    /// Asks OBS for its versions (also a cheap liveness check).
    pub async fn version(&self) -> Result<ObsVersion, ObsError> {
        let v = limit("GetVersion", self.inner.general().version())
            .await
            .map_err(|e| request_error("GetVersion", None, e))?;
        Ok(ObsVersion {
            obs: v.obs_version.to_string(),
            websocket: v.obs_web_socket_version.to_string(),
            rpc: v.rpc_version,
        })
    }

    /// A JPEG screenshot of `source` scaled to `width` pixels (aspect kept), decoded to BGR.
    ///
    /// OBS renders the source's current picture when it handles the request, so the picture is
    /// from (within one OBS frame of) the moment the request arrives.
    pub async fn screenshot(
        &self,
        source: &str,
        width: u32,
        quality: u8,
    ) -> Result<Frame, ObsError> {
        let data = self.screenshot_jpeg(source, width, quality).await?;
        decode_jpeg(&data)
    }

    /// The raw JPEG bytes of a screenshot (see [`ObsClient::screenshot`]).
    pub async fn screenshot_jpeg(
        &self,
        source: &str,
        width: u32,
        quality: u8,
    ) -> Result<Vec<u8>, ObsError> {
        let request = TakeScreenshot {
            source,
            format: "jpg",
            width: Some(width.max(8)),
            height: None,
            compression_quality: Some(i32::from(quality.min(100))),
        };
        let uri = limit(
            "GetSourceScreenshot",
            self.inner.sources().take_screenshot(request),
        )
        .await
        .map_err(|e| request_error("GetSourceScreenshot", Some(source), e))?;
        decode_data_uri(&uri)
    }

    /// All inputs (not scenes), in OBS's order.
    pub async fn inputs(&self) -> Result<Vec<ObsInput>, ObsError> {
        let list = limit("GetInputList", self.inner.inputs().list(None))
            .await
            .map_err(|e| request_error("GetInputList", None, e))?;
        Ok(list
            .into_iter()
            .map(|i| ObsInput {
                name: i.name,
                kind: i.kind,
            })
            .collect())
    }

    /// Whether OBS has a source (input or scene) with this name.
    pub async fn source_exists(&self, name: &str) -> Result<bool, ObsError> {
        match limit("GetSourceActive", self.inner.sources().active(name)).await {
            Ok(_) => Ok(true),
            Err(e) => match request_error("GetSourceActive", Some(name), e) {
                ObsError::SourceNotFound { .. } => Ok(false),
                other => Err(other),
            },
        }
    }

    /// Playback state, length and position of a media input.
    pub async fn media_status(&self, input: &str) -> Result<MediaStatus, ObsError> {
        let s = limit(
            "GetMediaInputStatus",
            self.inner.media_inputs().status(input),
        )
        .await
        .map_err(|e| request_error("GetMediaInputStatus", Some(input), e))?;
        Ok(MediaStatus {
            state: media_state_name(s.state).to_string(),
            duration_ms: s.duration.map(|d| clamp_ms(d.whole_milliseconds())),
            cursor_ms: s.cursor.map(|d| clamp_ms(d.whole_milliseconds())),
        })
    }

    /// Plays, pauses, restarts, stops or seeks a media input. See [`MediaAction::Seek`] for
    /// where a seek really lands.
    pub async fn media_action(&self, input: &str, action: MediaAction) -> Result<(), ObsError> {
        use obws::common::MediaAction as Obs;
        let obs_action = match action {
            MediaAction::Play => Obs::Play,
            MediaAction::Pause => Obs::Pause,
            MediaAction::Restart => Obs::Restart,
            MediaAction::Stop => Obs::Stop,
            MediaAction::Seek { position_ms } => {
                let Some(cursor) = status_with_cursor(position_ms.max(0))?.cursor else {
                    return Err(ObsError::Protocol("no media position".into()));
                };
                return limit(
                    "SetMediaInputCursor",
                    self.inner.media_inputs().set_cursor(input, cursor),
                )
                .await
                .map_err(|e| request_error("SetMediaInputCursor", Some(input), e));
            }
        };
        limit(
            "TriggerMediaInputAction",
            self.inner.media_inputs().trigger_action(input, obs_action),
        )
        .await
        .map_err(|e| request_error("TriggerMediaInputAction", Some(input), e))
    }
}

/// A time-limited obws request; a timeout is reported as [`LimitError::Timeout`].
async fn limit<T>(
    request: &'static str,
    fut: impl std::future::Future<Output = obws::Result<T>>,
) -> Result<T, LimitError> {
    match actix_rt::time::timeout(REQUEST_TIMEOUT, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(LimitError::Obs(e)),
        Err(_) => Err(LimitError::Timeout(request)),
    }
}

enum LimitError {
    Obs(obws::Error),
    Timeout(&'static str),
}

/// Maps a failed request. `subject` names the source or input the request was about.
fn request_error(request: &str, subject: Option<&str>, e: LimitError) -> ObsError {
    let e = match e {
        LimitError::Timeout(r) => {
            return ObsError::Timeout {
                request: r.to_string(),
                after_ms: REQUEST_TIMEOUT.as_millis() as u64,
            }
        }
        LimitError::Obs(e) => e,
    };
    match e {
        obws::Error::Api { code, message } => {
            let subject = subject.unwrap_or_default().to_string();
            match code {
                StatusCode::ResourceNotFound if !subject.is_empty() => {
                    ObsError::SourceNotFound { name: subject }
                }
                StatusCode::RequestProcessingFailed if request == "GetSourceScreenshot" => {
                    ObsError::SourceNotRendering {
                        name: subject,
                        reason: message.unwrap_or_else(|| "no reason given".into()),
                    }
                }
                code => ObsError::Rejected {
                    request: match subject.is_empty() {
                        true => request.to_string(),
                        false => format!("{request} for '{subject}'"),
                    },
                    code: code as u16,
                    comment: message,
                },
            }
        }
        // The socket is closed or the reader task is gone: the reply can never come.
        obws::Error::Send(_) | obws::Error::ReceiveMessage(_) | obws::Error::Disconnected => {
            ObsError::Disconnected
        }
        other => ObsError::Protocol(format!("{request}: {}", error_chain(&other))),
    }
}

/// Maps a failed `obws::Client::connect`.
fn connect_error(url: &str, e: obws::Error) -> ObsError {
    use obws::client::HandshakeError;
    match e {
        obws::Error::Connect(_) => ObsError::Unreachable {
            url: url.to_string(),
            reason: io_reason(&e).unwrap_or_else(|| error_chain(&e)),
        },
        obws::Error::NoPassword => ObsError::AuthFailed {
            reason: "OBS requires a password and none is configured".into(),
        },
        obws::Error::Handshake(HandshakeError::ConnectionClosed(Some(ref details)))
            if u16::from(details.code) == CLOSE_AUTHENTICATION_FAILED =>
        {
            ObsError::AuthFailed {
                reason: format!(
                    "OBS closed the connection with code 4009: {}",
                    details.reason
                ),
            }
        }
        obws::Error::Handshake(HandshakeError::ConnectionClosed(_))
        | obws::Error::Handshake(HandshakeError::Receive(_))
        | obws::Error::Handshake(HandshakeError::Send(_)) => ObsError::Unreachable {
            url: url.to_string(),
            reason: format!(
                "the connection closed during the handshake: {}",
                error_chain(&e)
            ),
        },
        obws::Error::ObsStudioVersion(..)
        | obws::Error::ObsWebsocketVersion(..)
        | obws::Error::RpcVersion { .. } => ObsError::Protocol(format!(
            "unsupported OBS version: {e} (OBS 28 or newer with obs-websocket 5 is needed)"
        )),
        // The version check after the handshake is a request like any other.
        other => request_error("GetVersion", None, LimitError::Obs(other)),
    }
}

/// The I/O error at the root of a connect failure, in words (e.g. "Connection refused").
fn io_reason(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return Some(match io.kind() {
                std::io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
                _ => io.to_string(),
            });
        }
        cur = err.source();
    }
    None
}

/// An error and its causes, joined with ": ".
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(err) = cur {
        out.push_str(": ");
        out.push_str(&err.to_string());
        cur = err.source();
    }
    out
}

fn media_state_name(state: obws::responses::media_inputs::MediaState) -> &'static str {
    use obws::responses::media_inputs::MediaState as S;
    match state {
        S::None => "none",
        S::Playing => "playing",
        S::Opening => "opening",
        S::Buffering => "buffering",
        S::Paused => "paused",
        S::Stopped => "stopped",
        S::Ended => "ended",
        S::Error => "error",
        _ => "unknown",
    }
}

fn clamp_ms(ms: i128) -> i64 {
    ms.clamp(i64::MIN as i128, i64::MAX as i128) as i64
}

/// A media status whose `cursor` is `ms`.
///
/// `obws` 0.11 takes cursor positions as `time::Duration`, from a crate this workspace does not
/// depend on directly; the value is made by deserializing obs-websocket's own millisecond field,
/// which is exactly what goes back on the wire.
fn status_with_cursor(ms: i64) -> Result<obws::responses::media_inputs::MediaStatus, ObsError> {
    let bad = |why: String| {
        ObsError::Protocol(format!("cannot express {ms} ms as a media position: {why}"))
    };
    let status: obws::responses::media_inputs::MediaStatus =
        serde_json::from_value(serde_json::json!({
            "mediaState": "OBS_MEDIA_STATE_NONE",
            "mediaDuration": null,
            "mediaCursor": ms,
        }))
        .map_err(|e| bad(e.to_string()))?;
    if status.cursor.is_none() {
        return Err(bad("no cursor".into()));
    }
    Ok(status)
}

/// Removes the `data:image/jpg;base64,` prefix (everything up to the first comma) and decodes
/// the base64 payload.
pub fn decode_data_uri(uri: &str) -> Result<Vec<u8>, ObsError> {
    use base64::Engine as _;
    let payload = match uri.split_once(',') {
        Some((head, rest)) if head.starts_with("data:") => rest,
        // obs-websocket always sends a data URI; accept bare base64 too rather than fail.
        _ => uri,
    };
    base64::engine::general_purpose::STANDARD
        .decode(payload.trim())
        .map_err(|e| ObsError::Decode(format!("bad base64 in the screenshot: {e}")))
}

/// Decodes JPEG (or PNG) bytes into a BGR [`Frame`].
pub fn decode_jpeg(data: &[u8]) -> Result<Frame, ObsError> {
    let cv = |what: &str, e: opencv::Error| ObsError::Decode(format!("{what}: {e}"));
    let buf = Vector::<u8>::from_slice(data);
    let mat = imgcodecs::imdecode(&buf, imgcodecs::IMREAD_COLOR).map_err(|e| cv("imdecode", e))?;
    if mat.empty() {
        return Err(ObsError::Decode(format!(
            "{} bytes are not an image OpenCV can read",
            data.len()
        )));
    }
    if mat.channels() != 3 || mat.depth() != opencv::core::CV_8U {
        return Err(ObsError::Decode(format!(
            "expected 8-bit BGR, got {} channels of depth {}",
            mat.channels(),
            mat.depth()
        )));
    }
    let (w, h) = (mat.cols(), mat.rows());
    let bytes = if mat.is_continuous() {
        mat.data_bytes()
            .map_err(|e| cv("reading pixels", e))?
            .to_vec()
    } else {
        let copy: Mat = mat.try_clone().map_err(|e| cv("copying pixels", e))?;
        copy.data_bytes()
            .map_err(|e| cv("reading pixels", e))?
            .to_vec()
    };
    Frame::new(w.max(0) as u32, h.max(0) as u32, bytes).map_err(|e| ObsError::Decode(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_uri_prefix_is_stripped() {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(b"hello");
        assert_eq!(
            decode_data_uri(&format!("data:image/jpg;base64,{b64}")).unwrap(),
            b"hello"
        );
        assert_eq!(decode_data_uri(&b64).unwrap(), b"hello");
        assert!(matches!(
            decode_data_uri("data:image/jpg;base64,@@@"),
            Err(ObsError::Decode(_))
        ));
    }

    #[test]
    fn a_jpeg_decodes_to_a_bgr_frame() {
        let mat = Mat::new_rows_cols_with_default(
            48,
            64,
            opencv::core::CV_8UC3,
            opencv::core::Scalar::new(200.0, 100.0, 50.0, 0.0),
        )
        .unwrap();
        let mut jpeg = Vector::<u8>::new();
        imgcodecs::imencode(".jpg", &mat, &mut jpeg, &Vector::new()).unwrap();
        let frame = decode_jpeg(jpeg.as_slice()).unwrap();
        assert_eq!((frame.width(), frame.height()), (64, 48));
        let px = &frame.bgr()[..3];
        assert!(
            (px[0] as i32 - 200).abs() < 4 && (px[2] as i32 - 50).abs() < 4,
            "{px:?}"
        );
        assert!(matches!(
            decode_jpeg(b"not a jpeg"),
            Err(ObsError::Decode(_))
        ));
    }

    #[test]
    fn a_seek_position_converts_exactly() {
        let d = status_with_cursor(5000).unwrap().cursor.unwrap();
        assert_eq!(d.whole_milliseconds(), 5000);
    }

    #[test]
    fn errors_serialize_with_their_kind() {
        let json = |e: ObsError| serde_json::to_value(e).unwrap();
        assert_eq!(
            json(ObsError::Protocol("x".into())),
            serde_json::json!({"kind": "protocol", "detail": "x"})
        );
        assert_eq!(
            json(ObsError::Disconnected),
            serde_json::json!({"kind": "disconnected"})
        );
        let v = json(ObsError::SourceNotFound { name: "Cam".into() });
        assert_eq!(v["kind"], "source_not_found");
        assert_eq!(v["detail"]["name"], "Cam");
    }

    #[test]
    fn the_password_is_not_in_debug_output() {
        let s = ObsSettings {
            host: "h".into(),
            port: 1,
            password: Some("secret123".into()),
            source: "Media".into(),
            fps: 5.0,
            width: 640,
            jpeg_quality: 80,
        };
        assert!(!format!("{s:?}").contains("secret123"));
    }
}
