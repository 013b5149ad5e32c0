//! `/api/sources`: list, add, change and remove audio sources at run time, and
//! `/api/audio-devices`, `/api/set-audio-device` for the microphone.
//!
//! Every change is validated as part of the whole configuration first (a bad definition is a 400
//! naming the field, and nothing changes), then saved atomically to the configuration file, then
//! applied to the running pipeline. Changes are serialised by the configuration lock.

use std::sync::Arc;

use actix::Addr;
use cav_actors::actor::mic_source::SetDevice;
use cav_actors::actor::source_manager::{ApplySources, GetMic, SourceManager};
use cav_actors::health::SourceSnapshot;
use cav_actors::mic::{self, DeviceSelector};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use warp::http::StatusCode;
use warp::{Filter, Rejection, Reply};

use super::{json_error, ApiState, BODY_LIMIT};
use crate::config::{redact_url, Config, ConfigError, SourceDef, SourceKind};
use crate::config_file::ConfigFile;

/// What the source routes need besides the status board.
#[derive(Clone)]
pub struct SourcesState {
    pub config: Arc<Mutex<Config>>,
    pub file: ConfigFile,
    pub manager: Addr<SourceManager>,
}

/// A source as the API shows it. Passwords in URLs are hidden.
#[derive(Debug, Serialize)]
pub struct SourceDto {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub enabled: bool,
    /// Built-in sources (`file`, `obs`) are configured in their own sections, not here.
    pub builtin: bool,
    /// Whether the activity classifier hears this source.
    pub primary: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sender: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transport: Option<String>,
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub events: std::collections::BTreeMap<String, crate::config::EventRuleSection>,
    /// Live state and counters; absent for a source that has never run.
    pub status: Option<SourceSnapshot>,
}

#[derive(Debug, Serialize)]
struct SourcesDto {
    sources: Vec<SourceDto>,
}

/// The body of `POST /api/sources` and `PUT /api/sources/{id}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceBody {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    pub kind: SourceKind,
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub webhook: Option<String>,
    #[serde(default)]
    pub device: Option<String>,
    #[serde(default)]
    pub stream: Option<String>,
    #[serde(default)]
    pub sender: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub transport: Option<String>,
    /// Overrides of the event rules for this source (`{"clap": {"threshold": 0.5}}`).
    #[serde(default)]
    pub events: std::collections::BTreeMap<String, crate::config::EventRuleSection>,
}

impl SourceBody {
    fn into_def(self, id: String) -> SourceDef {
        SourceDef {
            id,
            name: self.name.unwrap_or_default(),
            kind: self.kind,
            enabled: self.enabled.unwrap_or(true),
            webhook: self.webhook.filter(|w| !w.is_empty()),
            device: self.device,
            stream: self.stream,
            sender: self.sender.filter(|s| !s.is_empty()),
            url: self.url,
            transport: self.transport,
            events: self.events,
        }
    }
}

/// `POST /api/set-audio-device`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SetDeviceBody {
    #[serde(default)]
    pub device_index: Option<usize>,
    #[serde(default)]
    pub device_name: Option<String>,
    /// Which microphone source; the first one when absent.
    #[serde(default)]
    pub source_id: Option<String>,
}

#[derive(Debug, Serialize)]
struct DeviceSetDto {
    source: String,
    device: mic::AudioDevice,
}

fn field_error(status: StatusCode, field: &str, message: String) -> warp::reply::Response {
    #[derive(Serialize)]
    struct FieldError<'a> {
        error: String,
        field: &'a str,
        status: u16,
    }
    warp::reply::with_status(
        warp::reply::json(&FieldError {
            error: message,
            field,
            status: status.as_u16(),
        }),
        status,
    )
    .into_response()
}

/// A configuration error as a 400 naming the source's field (`sources[2].url` → `url`).
fn config_error(e: ConfigError) -> warp::reply::Response {
    match &e {
        ConfigError::Invalid { key, reason, .. } => {
            let field = key.rsplit('.').next().unwrap_or(key);
            field_error(StatusCode::BAD_REQUEST, field, format!("{field}: {reason}"))
        }
        other => json_error(StatusCode::BAD_REQUEST, other.to_string()),
    }
}

fn dto(def: &SourceDef, primary: Option<&str>, status: Option<SourceSnapshot>) -> SourceDto {
    SourceDto {
        id: def.id.clone(),
        name: def.display_name().to_string(),
        kind: def.kind.as_str().to_string(),
        enabled: def.enabled,
        builtin: false,
        primary: primary == Some(def.id.as_str()),
        webhook: def.webhook.clone(),
        device: def.device.clone(),
        stream: def.stream.clone(),
        sender: def.sender.clone(),
        url: def.url.as_deref().map(redact_url),
        transport: def.transport.clone(),
        events: def.events.clone(),
        status,
    }
}

fn builtin(
    id: &str,
    kind: &str,
    enabled: bool,
    primary: Option<&str>,
    status: Option<SourceSnapshot>,
) -> SourceDto {
    SourceDto {
        id: id.into(),
        name: id.into(),
        kind: kind.into(),
        enabled,
        builtin: true,
        primary: primary == Some(id),
        webhook: None,
        device: None,
        stream: None,
        sender: None,
        url: None,
        transport: None,
        events: Default::default(),
        status,
    }
}

fn list(config: &Config, state: &ApiState) -> SourcesDto {
    let live = state.board.sources();
    let primary = crate::daemon::primary_audio(config);
    let primary = primary.as_deref();
    let mut out = vec![
        builtin(
            "file",
            "file",
            config.file.enabled,
            primary,
            live.get("file").cloned(),
        ),
        builtin(
            "obs",
            "obs",
            config.obs.enabled,
            primary,
            live.get("obs").cloned(),
        ),
    ];
    out.extend(
        config
            .sources
            .iter()
            .map(|d| dto(d, primary, live.get(&d.id).cloned())),
    );
    SourcesDto { sources: out }
}

/// Validates `next`, saves its sources, applies them, and makes it the current configuration.
async fn commit(
    s: &SourcesState,
    current: &mut Config,
    next: Config,
) -> Result<(), warp::reply::Response> {
    next.validate().map_err(config_error)?;
    if let Err(e) = s.file.save_sources(&next.sources) {
        tracing::error!(error = %format!("{e:#}"), path = %s.file.path().display(), "cannot save the configuration");
        return Err(json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot save the configuration: {e:#}"),
        ));
    }
    s.manager.do_send(ApplySources {
        sources: crate::sources::specs(&next),
        primary: crate::daemon::primary_audio(&next),
    });
    tracing::info!(path = %s.file.path().display(), sources = next.sources.len(), "sources changed");
    *current = next;
    Ok(())
}

/// The byte range of the password in a URL's userinfo (`scheme://user:PASSWORD@host/...`).
fn password_range(url: &str) -> Option<std::ops::Range<usize>> {
    let start = url.find("://")? + 3;
    let rest = &url[start..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let at = authority.rfind('@')?;
    let colon = authority[..at].find(':')?;
    Some(start + colon + 1..start + at)
}

/// The password the API shows in place of a URL's real one (see `redact_url`).
const HIDDEN: &str = "***";

/// `url` as sent back by a client, with a password shown hidden (`***`) replaced by the one in
/// `stored`, so that saving a source as `GET` showed it does not overwrite its password. A URL
/// with a password of its own, or none, is kept as it is.
fn keep_hidden_password(url: &str, stored: &str) -> String {
    match (password_range(url), password_range(stored)) {
        (Some(hidden), Some(real)) if &url[hidden.clone()] == HIDDEN => {
            format!(
                "{}{}{}",
                &url[..hidden.start],
                &stored[real],
                &url[hidden.end..]
            )
        }
        _ => url.to_string(),
    }
}

fn is_builtin(id: &str) -> bool {
    crate::config::RESERVED_SOURCE_IDS.contains(&id)
}

pub fn routes(
    state: ApiState,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    let st = warp::any().map(move || state.clone());
    let json_body =
        || warp::body::content_length_limit(BODY_LIMIT).and(warp::body::json::<SourceBody>());

    let get_all = warp::path!("api" / "sources")
        .and(warp::get())
        .and(st.clone())
        .then(|state: ApiState| async move {
            let config = state.sources.config.lock().await;
            warp::reply::json(&list(&config, &state)).into_response()
        });

    let get_one = warp::path!("api" / "sources" / String)
        .and(warp::get())
        .and(st.clone())
        .then(|id: String, state: ApiState| async move {
            let config = state.sources.config.lock().await;
            match list(&config, &state)
                .sources
                .into_iter()
                .find(|s| s.id == id)
            {
                Some(s) => warp::reply::json(&s).into_response(),
                None => json_error(StatusCode::NOT_FOUND, format!("no source with id {id:?}")),
            }
        });

    let post = warp::path!("api" / "sources")
        .and(warp::post())
        .and(json_body())
        .and(st.clone())
        .then(|body: SourceBody, state: ApiState| async move {
            let Some(id) = body.id.clone().filter(|i| !i.is_empty()) else {
                return field_error(StatusCode::BAD_REQUEST, "id", "id: required".into());
            };
            let mut config = state.sources.config.lock().await;
            if is_builtin(&id) || config.sources.iter().any(|s| s.id == id) {
                return field_error(
                    StatusCode::CONFLICT,
                    "id",
                    format!("id: {id:?} is already used by another source"),
                );
            }
            let mut next = config.clone();
            next.sources.push(body.into_def(id.clone()));
            if let Err(resp) = commit(&state.sources, &mut config, next).await {
                return resp;
            }
            let created = list(&config, &state)
                .sources
                .into_iter()
                .find(|s| s.id == id);
            warp::reply::with_status(warp::reply::json(&created), StatusCode::CREATED)
                .into_response()
        });

    let put = warp::path!("api" / "sources" / String)
        .and(warp::put())
        .and(json_body())
        .and(st.clone())
        .then(|id: String, body: SourceBody, state: ApiState| async move {
            if is_builtin(&id) {
                return json_error(
                    StatusCode::CONFLICT,
                    format!("the built-in source {id:?} is configured in its own [{id}] section"),
                );
            }
            if body.id.as_deref().is_some_and(|b| b != id) {
                return field_error(
                    StatusCode::BAD_REQUEST,
                    "id",
                    "id: does not match the id in the path (ids cannot be changed)".into(),
                );
            }
            let mut config = state.sources.config.lock().await;
            let Some(at) = config.sources.iter().position(|s| s.id == id) else {
                return json_error(StatusCode::NOT_FOUND, format!("no source with id {id:?}"));
            };
            let mut next = config.clone();
            let mut def = body.into_def(id.clone());
            // The URL as GET showed it (password hidden as `***`) keeps the stored password.
            if let (Some(url), Some(stored)) = (&def.url, &config.sources[at].url) {
                def.url = Some(keep_hidden_password(url, stored));
            }
            next.sources[at] = def;
            if let Err(resp) = commit(&state.sources, &mut config, next).await {
                return resp;
            }
            let changed = list(&config, &state)
                .sources
                .into_iter()
                .find(|s| s.id == id);
            warp::reply::json(&changed).into_response()
        });

    let delete = warp::path!("api" / "sources" / String)
        .and(warp::delete())
        .and(st.clone())
        .then(|id: String, state: ApiState| async move {
            if is_builtin(&id) {
                return json_error(
                    StatusCode::CONFLICT,
                    format!("the built-in source {id:?} cannot be removed; disable it in [{id}]"),
                );
            }
            let mut config = state.sources.config.lock().await;
            let Some(at) = config.sources.iter().position(|s| s.id == id) else {
                return json_error(StatusCode::NOT_FOUND, format!("no source with id {id:?}"));
            };
            let mut next = config.clone();
            next.sources.remove(at);
            if next.classifier.audio_source == id {
                // The classifier falls back to the automatic choice.
                next.classifier.audio_source.clear();
            }
            if let Err(resp) = commit(&state.sources, &mut config, next).await {
                return resp;
            }
            #[derive(Serialize)]
            struct Deleted {
                deleted: String,
            }
            warp::reply::json(&Deleted { deleted: id }).into_response()
        });

    let devices = warp::path!("api" / "audio-devices")
        .and(warp::get())
        .then(|| async move {
            // Enumerating devices blocks (ALSA probes each one).
            match actix_rt::task::spawn_blocking(mic::list_devices).await {
                Ok(Ok(list)) => warp::reply::json(&list).into_response(),
                Ok(Err(e)) => json_error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
                Err(_) => json_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "device enumeration failed",
                ),
            }
        });

    let set_device = warp::path!("api" / "set-audio-device")
        .and(warp::post())
        .and(warp::body::content_length_limit(BODY_LIMIT))
        .and(warp::body::json::<SetDeviceBody>())
        .and(st)
        .then(|body: SetDeviceBody, state: ApiState| async move {
            let selector = match (body.device_index, body.device_name) {
                (Some(i), None) => DeviceSelector::Index(i),
                (None, Some(n)) if !n.trim().is_empty() => DeviceSelector::Name(n),
                _ => {
                    return field_error(
                        StatusCode::BAD_REQUEST,
                        "deviceIndex",
                        "give exactly one of deviceIndex or deviceName".into(),
                    )
                }
            };
            let mut config = state.sources.config.lock().await;
            let mic = state
                .sources
                .manager
                .send(GetMic {
                    id: body.source_id.clone(),
                })
                .await
                .ok()
                .flatten();
            let Some((source, addr)) = mic else {
                return json_error(
                    StatusCode::CONFLICT,
                    match body.source_id {
                        Some(id) => format!("no running microphone source with id {id:?}"),
                        None => {
                            "no microphone source is running; add one with POST /api/sources".into()
                        }
                    },
                );
            };
            let device = match addr.send(SetDevice(selector)).await {
                Ok(Ok(device)) => device,
                Ok(Err(e)) if e.is_unknown_device() => {
                    return field_error(StatusCode::BAD_REQUEST, "device", e.to_string())
                }
                Ok(Err(e)) => return json_error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
                Err(_) => {
                    return json_error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "the microphone source is restarting; try again",
                    )
                }
            };
            // Remember the choice by name: indexes change when devices come and go.
            let mut next = config.clone();
            if let Some(def) = next.sources.iter_mut().find(|s| s.id == source) {
                def.device = Some(device.name.clone());
            }
            if let Err(resp) = commit(&state.sources, &mut config, next).await {
                return resp;
            }
            warp::reply::json(&DeviceSetDto { source, device }).into_response()
        });

    get_all
        .or(get_one)
        .unify()
        .or(post)
        .unify()
        .or(put)
        .unify()
        .or(delete)
        .unify()
        .or(devices)
        .unify()
        .or(set_device)
        .unify()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hidden_password_keeps_the_stored_one() {
        let stored = "rtsp://bob:p%40ss:w@cam:554/live?x=1";
        assert_eq!(redact_url(stored), "rtsp://bob:***@cam:554/live?x=1");
        // Sent back as shown, or with another path or host: the stored password stays.
        assert_eq!(keep_hidden_password(&redact_url(stored), stored), stored);
        assert_eq!(
            keep_hidden_password("rtsp://bob:***@cam2/other", stored),
            "rtsp://bob:p%40ss:w@cam2/other"
        );
        // A new password, or none, is what the client asked for.
        assert_eq!(
            keep_hidden_password("rtsp://bob:new@cam/live", stored),
            "rtsp://bob:new@cam/live"
        );
        assert_eq!(
            keep_hidden_password("rtsp://cam/live", stored),
            "rtsp://cam/live"
        );
        // Nothing stored to keep: `***` is taken as typed.
        assert_eq!(
            keep_hidden_password("rtsp://bob:***@cam/live", "rtsp://cam/live"),
            "rtsp://bob:***@cam/live"
        );
        assert_eq!(password_range("rtsp://cam/a@b"), None);
    }
}
