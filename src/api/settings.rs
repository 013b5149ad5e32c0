//! `GET /api/settings` and `PUT /api/settings`: the settings the web page edits (classifier,
//! vision, hearing and its event rules, external service, OBS, the file source, video, storage,
//! retention), read as currently effective and changed as a whole.
//!
//! A change is checked field by field against a fixed list of editable keys (anything else is
//! "unknown setting"), then the file it would produce is loaded with the daemon's own loader and
//! validation. Every bad field is named by its `section.key` path in one 422; then nothing is
//! written. A good change is written atomically (toml_edit: the user's comments and layout stay),
//! and the daemon is asked to reload, the same path as a SIGHUP: the pipeline and the API restart
//! in-process with the new configuration. Secrets (the external service's token, the OBS
//! password) are written but never shown: the page sees `token_set` / `password_set`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Map, Value};
use warp::http::StatusCode;
use warp::{Filter, Rejection, Reply};

use super::{json_error, ApiState, BODY_LIMIT};
use crate::config::{Config, ConfigError, EVENT_KINDS};
use crate::config_file::set_value;

type Response = warp::reply::Response;

/// A request to reload the configuration file, sent by the API to the daemon loop.
#[derive(Debug)]
pub struct ReloadRequest {
    /// What asked for it, for the log.
    pub reason: &'static str,
}

/// Where reload requests go (the daemon loop, which treats them like a SIGHUP).
pub type ReloadSender = tokio::sync::mpsc::UnboundedSender<ReloadRequest>;

/// How long the reload waits after a saved change, so that the response reaches the browser
/// before the API restarts.
const RELOAD_DELAY: Duration = Duration::from_millis(300);

/// The JSON type of an editable key.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Bool,
    Number,
    /// A whole number ≥ 0 (the loader checks the upper bound of its Rust type).
    Whole,
    Text,
    /// A string that may be unset: `""` or null clears it.
    OptionalText,
    /// Like `OptionalText`, but never shown; `GET` has `<key>_set` instead.
    Secret,
    /// One of the listed strings.
    OneOf(&'static [&'static str]),
}

/// The editable keys, as in the TOML file (`section.key`).
const FIELDS: &[(&str, Kind)] = &[
    ("classifier.window_s", Kind::Number),
    ("classifier.audio_source", Kind::Text),
    ("vision.enabled", Kind::Bool),
    ("vision.fps", Kind::Number),
    (
        "vision.faces",
        Kind::OneOf(&["full_range", "short_range", "both", "off"]),
    ),
    ("vision.landmarks", Kind::Bool),
    ("hearing.enabled", Kind::Bool),
    ("hearing.hop_s", Kind::Number),
    ("hearing.level_gate_dbfs", Kind::Number),
    ("hearing.top_k", Kind::Whole),
    ("hearing.webhook_timeout_s", Kind::Number),
    ("external_service.url", Kind::OptionalText),
    ("external_service.token", Kind::Secret),
    ("external_service.timeout_s", Kind::Number),
    ("external_service.interval_s", Kind::Number),
    ("obs.enabled", Kind::Bool),
    ("obs.host", Kind::Text),
    ("obs.port", Kind::Whole),
    ("obs.password", Kind::Secret),
    ("obs.source", Kind::Text),
    ("obs.fps", Kind::Number),
    ("obs.width", Kind::Whole),
    ("obs.jpeg_quality", Kind::Whole),
    ("file.enabled", Kind::Bool),
    ("file.path", Kind::Text),
    ("file.loop", Kind::Bool),
    ("file.streams", Kind::OneOf(&["both", "video", "audio"])),
    ("file.webhook", Kind::OptionalText),
    ("video.analysis_fps", Kind::Number),
    ("video.analysis_width", Kind::Whole),
    ("video.motion_threshold", Kind::Whole),
    ("storage.span_merge_gap_s", Kind::Number),
    ("analysis.interval_s", Kind::Number),
    ("retention.activities_days", Kind::Whole),
    ("retention.spans_days", Kind::Whole),
    ("retention.sound_events_days", Kind::Whole),
    ("retention.delivered_days", Kind::Whole),
    ("retention.dead_letter_days", Kind::Whole),
];

/// The clap-only key of `[hearing.events.clap]`: the acoustic-only path on or off.
const CLAP_OVER_LOUD_BACKGROUND: &str = "over_loud_background";

/// The keys of one `[hearing.events.<kind>]` table.
const EVENT_FIELDS: &[(&str, Kind)] = &[
    ("threshold", Kind::Number),
    ("min_gap_s", Kind::Number),
    ("enabled", Kind::Bool),
];

fn kind_of(path: &str) -> Option<Kind> {
    if let Some(&(_, kind)) = FIELDS.iter().find(|(p, _)| *p == path) {
        return Some(kind);
    }
    let rest = path.strip_prefix("hearing.events.")?;
    let (event, field) = rest.split_once('.')?;
    if !EVENT_KINDS.contains(&event) {
        return None;
    }
    if event == "clap" && field == CLAP_OVER_LOUD_BACKGROUND {
        return Some(Kind::Bool);
    }
    EVENT_FIELDS
        .iter()
        .find(|(f, _)| *f == field)
        .map(|&(_, kind)| kind)
}

/// Keys `GET` shows that cannot be set (a page may send its copy back; they are ignored).
fn read_only(path: &str) -> bool {
    matches!(path, "external_service.token_set" | "obs.password_set")
}

/// Whether `path` names a table that holds editable keys (so a scalar there is a type error,
/// not an unknown key).
fn is_table(path: &str) -> bool {
    let prefix = format!("{path}.");
    FIELDS.iter().any(|(p, _)| p.starts_with(&prefix))
        || path == "hearing.events"
        || path
            .strip_prefix("hearing.events.")
            .is_some_and(|k| EVENT_KINDS.contains(&k))
}

/// The environment variable that overrides `path`, when one is set: a value saved to the file
/// would not take effect.
fn env_override(path: &str) -> Option<String> {
    let (section, key) = path.split_once('.')?;
    if key.contains('.') {
        return None;
    }
    let name = format!(
        "{}{}__{}",
        crate::config::ENV_PREFIX,
        section.to_ascii_uppercase(),
        key.to_ascii_uppercase()
    );
    std::env::var_os(&name).map(|_| name)
}

fn get_path<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |v, k| v.get(k))
}

fn put_path(v: &mut Value, path: &str, leaf: Value) {
    let mut keys: Vec<&str> = path.split('.').collect();
    let Some(last) = keys.pop() else { return };
    let mut at = v;
    for k in keys {
        if !at.is_object() {
            *at = Value::Object(Map::new());
        }
        let Some(obj) = at.as_object_mut() else {
            return;
        };
        at = obj
            .entry(k.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    if let Some(obj) = at.as_object_mut() {
        obj.insert(last.to_string(), leaf);
    }
}

/// Numbers as the page should see them: an `f32` setting (`0.45f32`) widened to `f64` reads
/// 0.44999998807907104, so a number that is exactly an `f32` is shown by its shortest `f32`
/// spelling. Other numbers pass unchanged.
fn tidy(v: Value) -> Value {
    match v.as_f64() {
        Some(x) if v.is_f64() && f64::from(x as f32) == x => format!("{}", x as f32)
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or(v, Value::Number),
        _ => v,
    }
}

/// The settings as the page shows them: every editable key with its effective value.
pub fn view(config: &Config) -> Value {
    let all = serde_json::to_value(config).unwrap_or(Value::Null);
    let mut out = Value::Object(Map::new());
    for &(path, kind) in FIELDS {
        let value = get_path(&all, path).cloned().unwrap_or(Value::Null);
        if kind == Kind::Secret {
            put_path(
                &mut out,
                &format!("{path}_set"),
                Value::Bool(!value.is_null()),
            );
        } else {
            put_path(&mut out, path, tidy(value));
        }
    }
    // Every event kind with the rule in force: the built-in one, as overridden by the file.
    let defaults = cav_models::hearing::HearingConfig::default_rules();
    let mut events = Map::new();
    for kind in EVENT_KINDS {
        let rule = defaults.iter().find(|r| r.kind.as_str() == kind);
        let section = config.hearing.events.get(kind);
        let threshold = section
            .and_then(|s| s.threshold)
            .or(rule.map(|r| r.threshold));
        let min_gap_s = section
            .and_then(|s| s.min_gap_s)
            .or(rule.map(|r| r.min_gap_s));
        let enabled = section.and_then(|s| s.enabled).unwrap_or(rule.is_some());
        let mut fields = json!({
            "threshold": tidy(json!(threshold)),
            "min_gap_s": tidy(json!(min_gap_s)),
            "enabled": enabled,
        });
        if kind == "clap" {
            fields[CLAP_OVER_LOUD_BACKGROUND] =
                json!(section.and_then(|s| s.over_loud_background).unwrap_or(
                    cav_models::hearing::HearingConfig::default().claps_over_loud_background
                ));
        }
        events.insert(kind.to_string(), fields);
    }
    put_path(&mut out, "hearing.events", Value::Object(events));
    out
}

/// The secret's current value, for telling whether a PUT changes it.
fn secret(config: &Config, path: &str) -> Option<String> {
    match path {
        "external_service.token" => config.external_service.token.clone(),
        "obs.password" => config.obs.password.clone(),
        _ => None,
    }
}

/// Leaves of a JSON object as (`a.b.c`, value); objects are walked, everything else is a leaf.
fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Object(map) if !map.is_empty() || prefix.is_empty() => {
            for (k, v) in map {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&path, v, out);
            }
        }
        // `{"classifier": {}}` asks for nothing.
        Value::Object(_) => {}
        _ => out.push((prefix.to_string(), v.clone())),
    }
}

/// Checks one leaf's JSON type; returns the TOML value to write.
fn to_toml(kind: Kind, v: &Value) -> Result<toml_edit::Value, String> {
    match kind {
        Kind::Bool => v
            .as_bool()
            .map(toml_edit::Value::from)
            .ok_or_else(|| "must be true or false".to_string()),
        Kind::Number => v
            .as_f64()
            .filter(|x| x.is_finite())
            .map(toml_edit::Value::from)
            .ok_or_else(|| "must be a number".to_string()),
        Kind::Whole => v
            .as_u64()
            .and_then(|x| i64::try_from(x).ok())
            .map(toml_edit::Value::from)
            .ok_or_else(|| "must be a whole number, 0 or more".to_string()),
        Kind::Text => v
            .as_str()
            .map(toml_edit::Value::from)
            .ok_or_else(|| "must be a string".to_string()),
        // The loader reads an empty string as unset (TOML has no null).
        Kind::OptionalText | Kind::Secret => match v {
            Value::Null => Ok("".into()),
            Value::String(s) => Ok(s.trim().into()),
            _ => Err("must be a string (\"\" clears it)".to_string()),
        },
        Kind::OneOf(options) => v
            .as_str()
            .filter(|s| options.contains(s))
            .map(toml_edit::Value::from)
            .ok_or_else(|| format!("must be one of {}", options.join(", "))),
    }
}

/// Whether the requested value is the one in force (numbers compare by value; an unset
/// optional string equals "" and null).
fn same(kind: Kind, current: Option<&Value>, requested: &Value) -> bool {
    let blank = |v: Option<&Value>| match v {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.trim().is_empty(),
        _ => false,
    };
    match kind {
        Kind::OptionalText if blank(current) || blank(Some(requested)) => {
            blank(current) && blank(Some(requested))
        }
        Kind::Number | Kind::Whole => {
            current.and_then(Value::as_f64).is_some()
                && current.and_then(Value::as_f64) == requested.as_f64()
        }
        _ => current == Some(requested),
    }
}

#[derive(Debug, Serialize)]
struct FieldErrors {
    error: &'static str,
    status: u16,
    fields: BTreeMap<String, String>,
}

fn field_errors(fields: BTreeMap<String, String>) -> Response {
    let status = StatusCode::UNPROCESSABLE_ENTITY;
    warp::reply::with_status(
        warp::reply::json(&FieldErrors {
            error: "invalid settings",
            status: status.as_u16(),
            fields,
        }),
        status,
    )
    .into_response()
}

/// A requested change that passed the type check.
struct Change {
    path: String,
    value: toml_edit::Value,
}

/// What a valid PUT produces.
struct Accepted {
    config: Config,
    text: Option<String>,
    changed: Vec<String>,
}

/// Checks `body` against `current` and the file; `Err` is the finished 4xx/5xx response.
fn accept(s: &ApiState, current: &Config, body: &Value) -> Result<Accepted, Response> {
    if !body.is_object() {
        return Err(json_error(
            StatusCode::BAD_REQUEST,
            "the body must be a JSON object of settings, e.g. {\"classifier\": {\"window_s\": 120}}",
        ));
    }
    let shown = view(current);
    let mut leaves = Vec::new();
    flatten("", body, &mut leaves);
    let mut errors = BTreeMap::new();
    let mut changes = Vec::new();
    for (path, value) in leaves {
        if read_only(&path) {
            continue;
        }
        let Some(kind) = kind_of(&path) else {
            let reason = if is_table(&path) {
                "must be an object".to_string()
            } else if let Some(kind) = path
                .strip_prefix("hearing.events.")
                .and_then(|r| r.split('.').next())
                .filter(|k| !EVENT_KINDS.contains(k))
            {
                errors.insert(
                    format!("hearing.events.{kind}"),
                    format!(
                        "unknown event kind; expected one of {}",
                        EVENT_KINDS.join(", ")
                    ),
                );
                continue;
            } else {
                "unknown setting".to_string()
            };
            errors.insert(path, reason);
            continue;
        };
        let toml_value = match to_toml(kind, &value) {
            Ok(v) => v,
            Err(reason) => {
                errors.insert(path, reason);
                continue;
            }
        };
        let unchanged = if kind == Kind::Secret {
            let requested = value.as_str().map(str::trim).filter(|s| !s.is_empty());
            secret(current, &path).as_deref() == requested
        } else {
            same(kind, get_path(&shown, &path), &value)
        };
        if unchanged {
            continue;
        }
        if let Some(var) = env_override(&path) {
            errors.insert(
                path,
                format!("set by the environment variable {var}, which overrides the file; change it there"),
            );
            continue;
        }
        changes.push(Change {
            path,
            value: toml_value,
        });
    }

    let file = &s.sources.file;
    let original = file.read_document().map_err(|e| {
        tracing::error!(error = %format!("{e:#}"), path = %file.path().display(), "cannot read the configuration file");
        json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot read the configuration file: {e:#}"),
        )
    })?;
    // Load what the file would become; a field the loader refuses is reported and taken out,
    // then the rest is tried again, so that one answer names every bad field.
    let mut outcome = None;
    for _ in 0..=changes.len() {
        let mut doc = original.clone();
        for c in &changes {
            let keys: Vec<&str> = c.path.split('.').collect();
            if let Err(e) = set_value(&mut doc, &keys, c.value.clone()) {
                errors.insert(c.path.clone(), format!("{e:#}"));
            }
        }
        let text = doc.to_string();
        let loaded = file.check_text(&text).map_err(|e| {
            tracing::error!(error = %format!("{e:#}"), "cannot check the new configuration");
            json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot check the new configuration: {e:#}"),
            )
        })?;
        match loaded {
            Ok(config) => {
                outcome = Some((config, text));
                break;
            }
            Err(ConfigError::Invalid { key, reason, .. }) => {
                let before = changes.len();
                changes.retain(|c| c.path != key && !c.path.starts_with(&format!("{key}.")));
                errors.insert(key, reason);
                if changes.len() == before {
                    // Not one of the requested keys (a consequence of one, or a problem already
                    // in the file): it is reported; the others cannot be told apart from it.
                    break;
                }
            }
            Err(other) => {
                return Err(json_error(StatusCode::BAD_REQUEST, other.to_string()));
            }
        }
    }
    if !errors.is_empty() {
        return Err(field_errors(errors));
    }
    let Some((config, text)) = outcome else {
        return Err(json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the new configuration could not be checked",
        ));
    };
    if changes.is_empty() {
        return Ok(Accepted {
            config: current.clone(),
            text: None,
            changed: Vec::new(),
        });
    }
    if config.storage.data_dir != current.storage.data_dir {
        // Not editable here, but the file may have been edited by hand meanwhile.
        return Err(field_errors(BTreeMap::from([(
            "storage.data_dir".to_string(),
            "cannot change while running; restart the daemon".to_string(),
        )])));
    }
    Ok(Accepted {
        config,
        text: Some(text),
        changed: changes.into_iter().map(|c| c.path).collect(),
    })
}

async fn put(body: Value, s: ApiState) -> Result<Response, Rejection> {
    let mut current = s.sources.config.lock().await;
    let accepted = match accept(&s, &current, &body) {
        Ok(a) => a,
        Err(response) => return Ok(response),
    };
    if let Some(text) = &accepted.text {
        if let Err(e) = s.sources.file.save_text(text) {
            tracing::error!(error = %format!("{e:#}"), path = %s.sources.file.path().display(), "cannot save the settings");
            return Ok(json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot save the settings: {e:#}"),
            ));
        }
        *current = accepted.config.clone();
        tracing::info!(changed = ?accepted.changed, path = %s.sources.file.path().display(), "settings saved");
    }
    let applied = match (&s.reload, accepted.changed.is_empty()) {
        (_, true) => "live",
        (Some(reload), false) => {
            let reload = reload.clone();
            // After the response is on its way: the reload stops this API.
            tokio::spawn(async move {
                tokio::time::sleep(RELOAD_DELAY).await;
                if reload
                    .send(ReloadRequest {
                        reason: "PUT /api/settings",
                    })
                    .is_err()
                {
                    tracing::warn!("the daemon is not listening for reloads; the settings apply at the next start");
                }
            });
            "live"
        }
        // No daemon loop to reload (not the case under `cav run`): saved for the next start.
        (None, false) => "restart",
    };
    Ok(warp::reply::json(&json!({
        "settings": view(&accepted.config),
        "applied": applied,
        "changed": accepted.changed,
    }))
    .into_response())
}

async fn get(s: ApiState) -> Result<Response, Rejection> {
    let current = s.sources.config.lock().await;
    let file = s.sources.file.path();
    // Keys set by the environment win over the file: the page shows them as not editable.
    let overridden: BTreeMap<&str, String> = FIELDS
        .iter()
        .filter_map(|(path, _)| env_override(path).map(|var| (*path, var)))
        .collect();
    Ok(warp::reply::json(&json!({
        "file": std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf()).display().to_string(),
        "settings": view(&current),
        "overridden": overridden,
    }))
    .into_response())
}

pub fn routes(state: ApiState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let with_state = warp::any().map(move || state.clone());
    let read = warp::path!("api" / "settings")
        .and(warp::get())
        .and(with_state.clone())
        .and_then(get);
    let write = warp::path!("api" / "settings")
        .and(warp::put())
        .and(warp::body::content_length_limit(BODY_LIMIT))
        .and(warp::body::json::<Value>())
        .and(with_state)
        .and_then(put);
    read.or(write).unify()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_key_is_a_key_of_the_configuration() {
        let config = Config::load(None, Vec::<(String, String)>::new()).unwrap();
        let all = serde_json::to_value(&config).unwrap();
        for (path, _) in FIELDS {
            assert!(get_path(&all, path).is_some(), "{path}");
        }
        let shown = view(&config);
        assert_eq!(shown["external_service"]["token_set"], json!(false));
        assert!(shown["external_service"].get("token").is_none());
        for kind in EVENT_KINDS {
            assert!(
                shown["hearing"]["events"][kind]["threshold"].is_number(),
                "{kind}"
            );
        }
    }

    #[test]
    fn leaves_are_typed_and_unknown_ones_named() {
        assert_eq!(kind_of("hearing.events.clap.threshold"), Some(Kind::Number));
        assert_eq!(kind_of("hearing.events.whistle.threshold"), None);
        assert_eq!(
            kind_of("hearing.events.clap.over_loud_background"),
            Some(Kind::Bool)
        );
        assert_eq!(kind_of("hearing.events.speech.over_loud_background"), None);
        assert_eq!(kind_of("classifier.window_seconds"), None);
        assert!(is_table("hearing.events.clap") && is_table("obs") && !is_table("obs.port"));
        assert!(to_toml(Kind::Whole, &json!(-1)).is_err());
        assert!(to_toml(Kind::Number, &json!("fast")).is_err());
        assert!(to_toml(Kind::OneOf(&["a"]), &json!("b")).is_err());
        assert_eq!(
            to_toml(Kind::Secret, &json!(null)).unwrap().as_str(),
            Some("")
        );
        assert!(same(Kind::Number, Some(&json!(60.0)), &json!(60)));
        assert!(same(Kind::OptionalText, Some(&json!(null)), &json!("")));
        assert!(!same(
            Kind::OptionalText,
            Some(&json!(null)),
            &json!("http://x")
        ));
        let mut leaves = Vec::new();
        flatten("", &json!({"a": {"b": 1, "c": {}}, "d": [1]}), &mut leaves);
        assert_eq!(
            leaves,
            vec![("a.b".to_string(), json!(1)), ("d".to_string(), json!([1]))]
        );
    }
}
