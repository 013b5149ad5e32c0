//! `/api/obs/...`: the OBS connection's inputs, media playback control, and the captured source.
//!
//! Handlers forward to the OBS source actor (which owns the connection) and map its errors to
//! HTTP codes: unknown source → 404; OBS not enabled → 409; OBS unreachable or not answering →
//! 503; OBS refusing a request → 502; a malformed request → 400 naming the field.

use std::time::Duration;

use actix::Addr;
use cav_actors::actor::obs_source::{
    ControlMedia, GetMediaStatus, GetObsState, ListInputs, ObsSource, SetSource,
};
use cav_actors::obs::{MediaAction, ObsError};
use serde::{Deserialize, Serialize};
use warp::http::StatusCode;
use warp::{Filter, Rejection, Reply};

use super::{json_error, ApiState, BODY_LIMIT};

/// `POST /api/obs/media/{input}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaControlRequest {
    pub action: String,
    #[serde(default)]
    pub position_ms: Option<i64>,
}

/// `POST /api/obs/source`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetSourceRequest {
    pub source: String,
}

#[derive(Debug, Serialize)]
struct InputDto {
    name: String,
    kind: String,
}

#[derive(Debug, Serialize)]
struct InputsDto {
    inputs: Vec<InputDto>,
}

#[derive(Debug, Serialize)]
struct MediaDto {
    input: String,
    state: String,
    duration_ms: Option<i64>,
    cursor_ms: Option<i64>,
}

#[derive(Debug, Serialize)]
struct SourceDto {
    source: String,
}

/// How long an OBS request may take before the API gives up on it.
const OBS_TIMEOUT: Duration = Duration::from_secs(8);

fn parse_action(req: &MediaControlRequest) -> Result<MediaAction, String> {
    let action = match req.action.as_str() {
        "play" => MediaAction::Play,
        "pause" => MediaAction::Pause,
        "restart" => MediaAction::Restart,
        "stop" => MediaAction::Stop,
        "seek" => match req.position_ms {
            Some(ms) if ms >= 0 => MediaAction::Seek { position_ms: ms },
            Some(ms) => return Err(format!("position_ms: {ms} is negative")),
            None => return Err("position_ms: required for seek".into()),
        },
        other => {
            return Err(format!(
                "action: {other:?} is not one of play, pause, restart, stop, seek"
            ))
        }
    };
    if !matches!(action, MediaAction::Seek { .. }) && req.position_ms.is_some() {
        return Err("position_ms: only allowed with action \"seek\"".into());
    }
    Ok(action)
}

fn obs_error(e: &ObsError) -> warp::reply::Response {
    let status = match e {
        ObsError::SourceNotFound { .. } => StatusCode::NOT_FOUND,
        ObsError::Unreachable { .. } | ObsError::Disconnected | ObsError::Timeout { .. } => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        _ => StatusCode::BAD_GATEWAY,
    };
    json_error(status, e.to_string())
}

/// Sends a message to the OBS actor and turns every failure into a JSON error response.
async fn ask<M, T>(obs: Option<Addr<ObsSource>>, msg: M) -> Result<T, warp::reply::Response>
where
    M: actix::Message<Result = Result<T, ObsError>> + Send + 'static,
    T: Send + 'static,
    ObsSource: actix::Handler<M>,
{
    let Some(obs) = obs else {
        return Err(json_error(
            StatusCode::CONFLICT,
            "the OBS source is not enabled (obs.enabled = false)",
        ));
    };
    match actix_rt::time::timeout(OBS_TIMEOUT, obs.send(msg)).await {
        Ok(Ok(Ok(v))) => Ok(v),
        Ok(Ok(Err(e))) => Err(obs_error(&e)),
        Ok(Err(_)) => Err(json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the OBS source actor is restarting; try again",
        )),
        Err(_) => Err(json_error(
            StatusCode::GATEWAY_TIMEOUT,
            "OBS did not answer in time",
        )),
    }
}

fn reply<T: Serialize>(r: Result<T, warp::reply::Response>) -> warp::reply::Response {
    match r {
        Ok(v) => warp::reply::json(&v).into_response(),
        Err(resp) => resp,
    }
}

/// Path segments arrive percent-encoded ("My%20Camera"); OBS names are plain text.
fn decode_segment(raw: &str) -> Result<String, warp::reply::Response> {
    percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| json_error(StatusCode::BAD_REQUEST, "input: not valid UTF-8"))
}

pub fn routes(
    state: ApiState,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    let obs = warp::any().map(move || state.obs.clone());

    let inputs = warp::path!("api" / "obs" / "inputs")
        .and(warp::get())
        .and(obs.clone())
        .then(|obs| async move {
            reply(ask(obs, ListInputs).await.map(|inputs| {
                InputsDto {
                    inputs: inputs
                        .into_iter()
                        .map(|i| InputDto {
                            name: i.name,
                            kind: i.kind,
                        })
                        .collect(),
                }
            }))
        });

    let state_route = warp::path!("api" / "obs")
        .and(warp::get())
        .and(obs.clone())
        .then(|obs| async move { reply(ask(obs, GetObsState).await) });

    let media_get = warp::path!("api" / "obs" / "media" / String)
        .and(warp::get())
        .and(obs.clone())
        .then(|raw: String, obs| async move {
            let input = match decode_segment(&raw) {
                Ok(i) => i,
                Err(resp) => return resp,
            };
            let status = ask(
                obs,
                GetMediaStatus {
                    input: input.clone(),
                },
            )
            .await;
            reply(status.map(|s| MediaDto {
                input,
                state: s.state,
                duration_ms: s.duration_ms,
                cursor_ms: s.cursor_ms,
            }))
        });

    let media_post = warp::path!("api" / "obs" / "media" / String)
        .and(warp::post())
        .and(warp::body::content_length_limit(BODY_LIMIT))
        .and(warp::body::json())
        .and(obs.clone())
        .then(|raw: String, req: MediaControlRequest, obs| async move {
            let input = match decode_segment(&raw) {
                Ok(i) => i,
                Err(resp) => return resp,
            };
            let action = match parse_action(&req) {
                Ok(a) => a,
                Err(e) => return json_error(StatusCode::BAD_REQUEST, e),
            };
            let status = ask(
                obs,
                ControlMedia {
                    input: input.clone(),
                    action,
                },
            )
            .await;
            reply(status.map(|s| MediaDto {
                input,
                state: s.state,
                duration_ms: s.duration_ms,
                cursor_ms: s.cursor_ms,
            }))
        });

    let source = warp::path!("api" / "obs" / "source")
        .and(warp::post())
        .and(warp::body::content_length_limit(BODY_LIMIT))
        .and(warp::body::json())
        .and(obs)
        .then(|req: SetSourceRequest, obs| async move {
            if req.source.trim().is_empty() {
                return json_error(StatusCode::BAD_REQUEST, "source: must not be empty");
            }
            let name = req.source.clone();
            reply(
                ask(obs, SetSource { source: req.source })
                    .await
                    .map(|()| SourceDto { source: name }),
            )
        });

    inputs
        .or(state_route)
        .unify()
        .or(media_get)
        .unify()
        .or(media_post)
        .unify()
        .or(source)
        .unify()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(action: &str, position_ms: Option<i64>) -> MediaControlRequest {
        MediaControlRequest {
            action: action.into(),
            position_ms,
        }
    }

    #[test]
    fn actions_are_validated_naming_the_field() {
        assert_eq!(parse_action(&req("play", None)), Ok(MediaAction::Play));
        assert_eq!(
            parse_action(&req("seek", Some(5000))),
            Ok(MediaAction::Seek { position_ms: 5000 })
        );
        assert!(parse_action(&req("seek", None))
            .unwrap_err()
            .starts_with("position_ms"));
        assert!(parse_action(&req("seek", Some(-1)))
            .unwrap_err()
            .starts_with("position_ms"));
        assert!(parse_action(&req("rewind", None))
            .unwrap_err()
            .starts_with("action"));
        assert!(parse_action(&req("play", Some(3)))
            .unwrap_err()
            .starts_with("position_ms"));
    }
}
