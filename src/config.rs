//! The daemon's configuration: the embedded `config/default.toml`, overlaid by an optional file,
//! overlaid by `CAV_<SECTION>__<KEY>` environment variables, then validated.
//!
//! Invariant: a [`Config`] that exists has passed [`Config::validate`]; every error names the
//! key (`section.key`) and, for environment overrides, the variable that set it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use toml::Value;

/// The built-in configuration, also the documentation of every key.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

/// Prefix of environment overrides.
pub const ENV_PREFIX: &str = "CAV_";

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("config file {path} is not valid TOML: {reason}")]
    Syntax { path: PathBuf, reason: String },
    /// A key is unknown, of the wrong type, or out of range.
    #[error("{key}: {reason}{}", origin.as_ref().map(|o| format!(" (set by {o})")).unwrap_or_default())]
    Invalid {
        key: String,
        reason: String,
        origin: Option<String>,
    },
}

impl ConfigError {
    fn invalid(key: &str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            key: key.to_string(),
            reason: reason.into(),
            origin: None,
        }
    }

    /// The `section.key` the error is about, if it is about one.
    #[cfg(test)]
    pub fn key(&self) -> Option<&str> {
        match self {
            Self::Invalid { key, .. } => Some(key),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub http: HttpConfig,
    pub storage: StorageConfig,
    pub file: FileSourceConfig,
    pub obs: ObsConfig,
    pub video: VideoConfig,
    pub audio: AudioConfig,
    pub sync: SyncConfig,
    pub classifier: ClassifierConfig,
    pub external_service: ExternalServiceConfig,
    pub outbox: OutboxConfig,
    pub retention: RetentionConfig,
    pub analysis: AnalysisConfig,
    pub vision: VisionConfig,
    pub log: LogConfig,
    pub vban: VbanConfig,
    pub hearing: HearingSection,
    pub mqtt: MqttConfig,
    /// Audio sources besides the file source: microphones, VBAN streams, RTSP streams.
    #[serde(default)]
    pub sources: Vec<SourceDef>,
}

/// `[hearing]`: YAMNet on every audio source, live labels and sound events.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HearingSection {
    pub enabled: bool,
    /// Weights file; empty = the YAMNet weights built into the binary.
    pub model: String,
    pub hop_s: f32,
    pub level_gate_dbfs: f32,
    pub top_k: usize,
    /// Seconds before a webhook POST is abandoned (each try).
    pub webhook_timeout_s: f64,
    /// Per event kind overrides of the built-in threshold and minimum gap.
    #[serde(default)]
    pub events: std::collections::BTreeMap<String, EventRuleSection>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EventRuleSection {
    #[serde(default)]
    pub threshold: Option<f32>,
    #[serde(default)]
    pub min_gap_s: Option<f32>,
    /// false turns this kind of event off.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Claps only: whether a clap YAMNet cannot hear over a loud background may be accepted
    /// on its acoustics alone (built in: true).
    #[serde(default)]
    pub over_loud_background: Option<bool>,
}

/// Event kinds `[hearing.events.<kind>]` may name.
pub const EVENT_KINDS: [&str; 7] = [
    "clap",
    "applause",
    "speech",
    "phone_ring",
    "snoring",
    "dishes",
    "typing",
];

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VbanConfig {
    /// UDP address the VBAN receiver listens on when at least one VBAN source is enabled.
    pub bind: String,
}

/// The kinds of audio source that can be listed in `[[sources]]`.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    Microphone,
    Vban,
    Rtsp,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Microphone => "microphone",
            Self::Vban => "vban",
            Self::Rtsp => "rtsp",
        }
    }
}

fn yes() -> bool {
    true
}

/// One `[[sources]]` entry. Fields that belong to another kind are refused by validation, so a
/// typo such as `url` on a microphone does not go unnoticed.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SourceDef {
    /// Unique, stable id: letters, digits, `-`, `_`, `.`; used in the API and in events.
    pub id: String,
    /// A display name; defaults to the id.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    pub kind: SourceKind,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Where this source's sound events are POSTed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<String>,
    /// microphone: "default", a device index ("2") or a device name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// vban: the VBAN stream name (up to 16 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    /// vban: accept the stream only from this IP address (any when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<String>,
    /// rtsp: the stream URL (`rtsp://[user:pass@]host[:port]/path`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// rtsp: `tcp` (default) or `udp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<String>,
    /// This source's overrides of `[hearing.events.<kind>]` (threshold, min_gap_s, enabled).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub events: std::collections::BTreeMap<String, EventRuleSection>,
}

/// Ids taken by the built-in sources.
pub const RESERVED_SOURCE_IDS: [&str; 2] = ["file", "obs"];

impl SourceDef {
    /// Checks one entry; `at` is its key prefix, e.g. `sources[2]`.
    pub fn validate(&self, at: &str) -> Result<(), ConfigError> {
        let key = |field: &str| format!("{at}.{field}");
        let bad = |field: &str, reason: String| ConfigError::invalid(&key(field), reason);
        let id_ok = !self.id.is_empty()
            && self.id.len() <= 64
            && self
                .id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !id_ok {
            return Err(bad(
                "id",
                format!(
                    "{:?} must be 1-64 letters, digits, '-', '_' or '.'",
                    self.id
                ),
            ));
        }
        if RESERVED_SOURCE_IDS.contains(&self.id.as_str()) {
            return Err(bad(
                "id",
                format!("{:?} is reserved for the built-in source", self.id),
            ));
        }
        if let Some(url) = &self.webhook {
            if !is_http_url(url) {
                return Err(bad(
                    "webhook",
                    format!("{url:?} is not an http:// or https:// URL"),
                ));
            }
        }
        validate_event_rules(&key("events"), &self.events)?;
        let fields: [(&str, bool, &[SourceKind]); 5] = [
            ("device", self.device.is_some(), &[SourceKind::Microphone]),
            ("stream", self.stream.is_some(), &[SourceKind::Vban]),
            ("sender", self.sender.is_some(), &[SourceKind::Vban]),
            ("url", self.url.is_some(), &[SourceKind::Rtsp]),
            ("transport", self.transport.is_some(), &[SourceKind::Rtsp]),
        ];
        for (field, present, kinds) in fields {
            if present && !kinds.contains(&self.kind) {
                return Err(bad(
                    field,
                    format!("not a setting of a {} source", self.kind.as_str()),
                ));
            }
        }
        match self.kind {
            SourceKind::Microphone => {
                if self.device.as_deref().is_some_and(|d| d.trim().is_empty()) {
                    return Err(bad("device", "must not be empty (use \"default\")".into()));
                }
            }
            SourceKind::Vban => {
                let stream = self.stream.as_deref().unwrap_or("");
                if stream.is_empty() || stream.len() > 16 || !stream.is_ascii() {
                    return Err(bad(
                        "stream",
                        format!("{stream:?} must be a VBAN stream name of 1-16 ASCII characters"),
                    ));
                }
                if let Some(sender) = &self.sender {
                    if sender.parse::<std::net::IpAddr>().is_err() {
                        return Err(bad("sender", format!("{sender:?} is not an IP address")));
                    }
                }
            }
            SourceKind::Rtsp => {
                let url = self.url.as_deref().unwrap_or("");
                let rest = url
                    .strip_prefix("rtsp://")
                    .or_else(|| url.strip_prefix("rtsps://"));
                if !rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/')) {
                    return Err(bad(
                        "url",
                        format!("{:?} is not an rtsp:// URL with a host", redact_url(url)),
                    ));
                }
                if let Some(t) = &self.transport {
                    if t != "tcp" && t != "udp" {
                        return Err(bad("transport", format!("{t:?} is not tcp or udp")));
                    }
                }
            }
        }
        Ok(())
    }

    pub fn display_name(&self) -> &str {
        if self.name.is_empty() {
            &self.id
        } else {
            &self.name
        }
    }
}

/// Checks `[hearing.events.<kind>]`-style overrides; `at` is their key prefix.
fn validate_event_rules(
    at: &str,
    rules: &std::collections::BTreeMap<String, EventRuleSection>,
) -> Result<(), ConfigError> {
    for (kind, rule) in rules {
        let at = format!("{at}.{kind}");
        if !EVENT_KINDS.contains(&kind.as_str()) {
            return Err(ConfigError::invalid(
                &at,
                format!(
                    "unknown event kind; expected one of {}",
                    EVENT_KINDS.join(", ")
                ),
            ));
        }
        if let Some(t) = rule.threshold {
            range(&format!("{at}.threshold"), t as f64, 0.0, 1.0)?;
        }
        if let Some(g) = rule.min_gap_s {
            range(&format!("{at}.min_gap_s"), g as f64, 0.0, 3600.0)?;
        }
        if rule.over_loud_background.is_some() && kind != "clap" {
            return Err(ConfigError::invalid(
                &format!("{at}.over_loud_background"),
                "only claps have this setting (hearing.events.clap.over_loud_background)",
            ));
        }
    }
    Ok(())
}

fn is_http_url(url: &str) -> bool {
    (url.starts_with("http://") || url.starts_with("https://")) && url.len() >= 10
}

/// Hides the password of a `scheme://user:pass@host/...` URL (the RTSP source's redaction, so
/// the API and the source's own messages hide the same thing).
pub use cav_actors::actor::rtsp_source::redact_url;

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    pub bind: String,
    /// API token; empty: none.
    #[serde(default)]
    pub token: Option<String>,
    /// `/api/status` answers without the token.
    pub public_status: bool,
    /// Comma-separated origins allowed to call the API from other web pages; empty: none.
    pub cors_origins: String,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    pub data_dir: PathBuf,
    /// Windows of one class further apart than this start a new span.
    pub span_merge_gap_s: f64,
}

/// `[retention]`: days to keep each kind of record; 0 keeps it forever.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    pub activities_days: u32,
    pub spans_days: u32,
    pub sound_events_days: u32,
    pub delivered_days: u32,
    pub dead_letter_days: u32,
}

/// `[vision]`: persons, faces and posture from the BlazePose and BlazeFace models.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VisionConfig {
    pub enabled: bool,
    /// Frames per second analysed (each costs ~70–110 ms of CPU).
    pub fps: f64,
    /// Face detector: full_range, short_range, both or off.
    pub faces: String,
    /// The landmark model on the best person (posture from the landmarks, hand near ear).
    pub landmarks: bool,
}

/// `[analysis]`: analyses of media files (`POST /api/analyses`).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AnalysisConfig {
    /// Folders whose files analyses may read; nothing outside them is read.
    pub media_dirs: Vec<PathBuf>,
    /// Seconds between samples when a request does not say.
    pub interval_s: f64,
}

/// `[outbox]`: how failed deliveries are retried.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OutboxConfig {
    pub backoff_initial_s: f64,
    pub backoff_max_s: f64,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileSourceConfig {
    pub enabled: bool,
    /// Empty: the embedded demo clip.
    pub path: String,
    #[serde(rename = "loop")]
    pub looping: bool,
    pub streams: FileStreams,
    /// Where the file source's sound events are POSTed.
    #[serde(default)]
    pub webhook: Option<String>,
}

/// Which streams of the file the file source plays.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FileStreams {
    Both,
    Video,
    Audio,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ObsConfig {
    pub enabled: bool,
    pub host: String,
    pub port: u16,
    #[serde(default)]
    pub password: Option<String>,
    pub source: String,
    pub fps: f64,
    pub width: u32,
    pub jpeg_quality: u8,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VideoConfig {
    pub analysis_fps: f64,
    pub analysis_width: u32,
    pub motion_threshold: u8,
    pub queue_frames: usize,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AudioConfig {
    pub queue_chunks: usize,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SyncConfig {
    pub span_ms: u64,
    pub max_wait_ms: u64,
    /// Seconds of picture and sound kept for `POST /api/save-clip`.
    pub buffer_s: f64,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClassifierConfig {
    pub window_s: f64,
    /// The audio source whose sound feeds the activity classifier; empty = the file source when
    /// it plays audio, else the first enabled source.
    pub audio_source: String,
    /// `rules`, `head` or `auto`.
    pub model: String,
    pub head_path: PathBuf,
    pub smoothing_windows: u32,
    pub smoothing_margin: f64,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ExternalServiceConfig {
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub token: Option<String>,
    pub timeout_s: f64,
    /// One POST per window, or the latest result every `interval_s` when that is longer.
    pub interval_s: f64,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    pub level: String,
    pub format: LogFormat,
}

/// `[mqtt]`: publishing to an MQTT broker, with Home Assistant discovery.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MqttConfig {
    pub enabled: bool,
    pub host: String,
    pub port: u16,
    /// Empty or unset: no authentication.
    #[serde(default)]
    pub username: Option<String>,
    /// Never logged.
    #[serde(default)]
    pub password: Option<String>,
    /// Empty: `cav-<node_id>`.
    pub client_id: String,
    /// This daemon's name on the broker and in Home Assistant: one per room or home.
    pub node_id: String,
    /// Empty: `classify-audio-video/<node_id>`.
    pub base_topic: String,
    pub discovery_prefix: String,
    /// Publish Home Assistant discovery configurations.
    pub discovery: bool,
    pub keepalive_s: u64,
    /// Reconnect delays double from 1 s up to this.
    pub reconnect_max_s: u64,
}

impl MqttConfig {
    /// The publisher's settings, defaults resolved; `video_sources` are the ids of sources
    /// without audio (they get no sound-event entity).
    pub fn settings(&self, video_sources: Vec<String>) -> cav_actors::mqtt::MqttSettings {
        cav_actors::mqtt::MqttSettings {
            host: self.host.clone(),
            port: self.port,
            username: self.username.clone(),
            password: self.password.clone(),
            client_id: if self.client_id.is_empty() {
                format!("cav-{}", self.node_id)
            } else {
                self.client_id.clone()
            },
            node_id: self.node_id.clone(),
            base_topic: self.base_topic.clone(),
            discovery_prefix: self.discovery_prefix.clone(),
            discovery: self.discovery,
            keepalive: Duration::from_secs(self.keepalive_s),
            reconnect_max: Duration::from_secs(self.reconnect_max_s),
            video_sources,
            version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let node_ok = !self.node_id.is_empty()
            && self.node_id.len() <= 64
            && self
                .node_id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-'));
        if !node_ok {
            return Err(ConfigError::invalid(
                "mqtt.node_id",
                format!(
                    "{:?} must be 1-64 characters a-z, 0-9, '_' or '-'",
                    self.node_id
                ),
            ));
        }
        for (key, topic, may_be_empty) in [
            ("mqtt.base_topic", &self.base_topic, true),
            ("mqtt.discovery_prefix", &self.discovery_prefix, false),
        ] {
            if topic.is_empty() && may_be_empty {
                continue;
            }
            let ok = !topic.is_empty()
                && topic.len() <= 200
                && !topic.starts_with('$')
                && !topic.starts_with('/')
                && !topic.ends_with('/')
                && !topic.contains(['+', '#', '\0'])
                && !topic.split('/').any(str::is_empty);
            if !ok {
                return Err(ConfigError::invalid(
                    key,
                    format!(
                        "{topic:?} is not a topic prefix like \"home/cav\" (no wildcards, no empty levels)"
                    ),
                ));
            }
        }
        if self.client_id.starts_with(' ') || self.client_id.len() > 128 {
            return Err(ConfigError::invalid(
                "mqtt.client_id",
                "must not start with a space, at most 128 bytes",
            ));
        }
        if self.enabled {
            if self.host.trim().is_empty() {
                return Err(ConfigError::invalid("mqtt.host", "must not be empty"));
            }
            if self.port == 0 {
                return Err(ConfigError::invalid("mqtt.port", "0 is not a port"));
            }
            if self.password.is_some() && self.username.is_none() {
                return Err(ConfigError::invalid(
                    "mqtt.password",
                    "a password needs mqtt.username",
                ));
            }
        }
        range("mqtt.keepalive_s", self.keepalive_s as f64, 1.0, 65_535.0)?;
        range(
            "mqtt.reconnect_max_s",
            self.reconnect_max_s as f64,
            1.0,
            3600.0,
        )?;
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

impl VisionConfig {
    /// The models' options this section asks for.
    pub fn options(&self) -> cav_models::vision::VisionOptions {
        cav_models::vision::VisionOptions {
            faces: self
                .face_model()
                .unwrap_or(cav_models::vision::FaceModel::FullRange),
            landmarks: self.landmarks,
            ..Default::default()
        }
    }

    pub fn face_model(&self) -> Option<cav_models::vision::FaceModel> {
        use cav_models::vision::FaceModel;
        match self.faces.as_str() {
            "full_range" => Some(FaceModel::FullRange),
            "short_range" => Some(FaceModel::ShortRange),
            "both" => Some(FaceModel::Both),
            "off" => Some(FaceModel::Off),
            _ => None,
        }
    }
}

impl Config {
    /// The embedded defaults, overlaid by `file` (if any) and by the given environment.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut merged: Value = toml::from_str(DEFAULT_TOML).map_err(|e| ConfigError::Syntax {
            path: "config/default.toml (embedded)".into(),
            reason: e.to_string(),
        })?;
        let defaults = merged.clone();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
            let overlay: Value = toml::from_str(&text).map_err(|e| ConfigError::Syntax {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
            merge(&mut merged, overlay);
        }
        let origins = apply_env(&mut merged, &defaults, env)?;
        let config: Config = serde_path_to_error::deserialize(merged).map_err(
            |e: serde_path_to_error::Error<toml::de::Error>| {
                let key = e.path().to_string();
                let reason = e.inner().message().to_string();
                let origin = origins.get(&key).cloned();
                // Name the unknown key itself, whether or not the path already ends with it.
                let key = match unknown_field(&reason) {
                    Some(field) if key == "." => field,
                    Some(field) if key != field && !key.ends_with(&format!(".{field}")) => {
                        format!("{key}.{field}")
                    }
                    _ => key,
                };
                let origin = origin.or_else(|| origins.get(&key).cloned());
                ConfigError::Invalid {
                    key,
                    reason,
                    origin,
                }
            },
        )?;
        let config = config.normalized();
        config.validate().map_err(|e| match e {
            ConfigError::Invalid { key, reason, .. } => {
                let origin = origins.get(&key).cloned();
                ConfigError::Invalid {
                    key,
                    reason,
                    origin,
                }
            }
            other => other,
        })?;
        Ok(config)
    }

    /// Empty optional strings mean "not set" (TOML has no null, and an env var can only be
    /// emptied, not removed, in many service managers).
    fn normalized(mut self) -> Self {
        let blank = |o: &mut Option<String>| {
            if o.as_deref().is_some_and(|s| s.trim().is_empty()) {
                *o = None;
            }
        };
        blank(&mut self.external_service.url);
        blank(&mut self.external_service.token);
        blank(&mut self.http.token);
        blank(&mut self.obs.password);
        blank(&mut self.file.webhook);
        blank(&mut self.mqtt.username);
        blank(&mut self.mqtt.password);
        self
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        self.http.bind.parse::<SocketAddr>().map_err(|_| {
            ConfigError::invalid(
                "http.bind",
                format!("{:?} is not an address like 127.0.0.1:5000", self.http.bind),
            )
        })?;
        if let Some(token) = &self.http.token {
            if token.len() < 8 || token.chars().any(|c| c.is_whitespace() || c == ';') {
                return Err(ConfigError::invalid(
                    "http.token",
                    "use at least 8 characters, without spaces or ';'",
                ));
            }
        }
        for origin in self.cors_origins() {
            if !is_http_url(&origin) {
                return Err(ConfigError::invalid(
                    "http.cors_origins",
                    format!("{origin:?} is not an origin like https://dash.example.org"),
                ));
            }
        }
        if self.storage.data_dir.as_os_str().is_empty() {
            return Err(ConfigError::invalid(
                "storage.data_dir",
                "must not be empty",
            ));
        }
        if self.file.enabled && !self.file.path.is_empty() && !Path::new(&self.file.path).is_file()
        {
            return Err(ConfigError::invalid(
                "file.path",
                format!("no such file: {}", self.file.path),
            ));
        }
        if self.obs.enabled {
            if self.obs.host.trim().is_empty() {
                return Err(ConfigError::invalid("obs.host", "must not be empty"));
            }
            if self.obs.port == 0 {
                return Err(ConfigError::invalid("obs.port", "0 is not a port"));
            }
            if self.obs.source.trim().is_empty() {
                return Err(ConfigError::invalid(
                    "obs.source",
                    "name the OBS source to capture (an input or a scene)",
                ));
            }
            if self.file.enabled && self.file.streams != FileStreams::Audio {
                return Err(ConfigError::invalid(
                    "obs.enabled",
                    "only one video source at a time: set file.enabled = false, or file.streams = \"audio\"",
                ));
            }
        }
        if let Some(url) = &self.file.webhook {
            if !is_http_url(url) {
                return Err(ConfigError::invalid(
                    "file.webhook",
                    format!("{url:?} is not an http:// or https:// URL"),
                ));
            }
        }
        range("obs.fps", self.obs.fps, 0.1, 30.0)?;
        range("obs.width", self.obs.width as f64, 32.0, 3840.0)?;
        range("obs.jpeg_quality", self.obs.jpeg_quality as f64, 1.0, 100.0)?;
        range("video.analysis_fps", self.video.analysis_fps, 0.1, 60.0)?;
        range(
            "video.analysis_width",
            self.video.analysis_width as f64,
            32.0,
            3840.0,
        )?;
        range(
            "video.motion_threshold",
            self.video.motion_threshold as f64,
            1.0,
            254.0,
        )?;
        range(
            "video.queue_frames",
            self.video.queue_frames as f64,
            1.0,
            1000.0,
        )?;
        range(
            "audio.queue_chunks",
            self.audio.queue_chunks as f64,
            1.0,
            100_000.0,
        )?;
        range("sync.span_ms", self.sync.span_ms as f64, 100.0, 10_000.0)?;
        range("sync.buffer_s", self.sync.buffer_s, 1.0, 600.0)?;
        range(
            "sync.max_wait_ms",
            self.sync.max_wait_ms as f64,
            0.0,
            60_000.0,
        )?;
        range(
            "classifier.window_s",
            self.classifier.window_s,
            1.0,
            86_400.0,
        )?;
        if !["rules", "head", "auto"].contains(&self.classifier.model.as_str()) {
            return Err(ConfigError::invalid(
                "classifier.model",
                format!(
                    "{:?} is not one of rules, head, auto",
                    self.classifier.model
                ),
            ));
        }
        range(
            "classifier.smoothing_windows",
            f64::from(self.classifier.smoothing_windows),
            1.0,
            100.0,
        )?;
        range(
            "classifier.smoothing_margin",
            self.classifier.smoothing_margin,
            0.0,
            1.0,
        )?;
        if self.classifier.window_s * 1000.0 < self.sync.span_ms as f64 {
            return Err(ConfigError::invalid(
                "classifier.window_s",
                format!(
                    "{} s is shorter than one span (sync.span_ms = {})",
                    self.classifier.window_s, self.sync.span_ms
                ),
            ));
        }
        if let Some(url) = &self.external_service.url {
            if !is_http_url(url) {
                return Err(ConfigError::invalid(
                    "external_service.url",
                    format!("{url:?} is not an http:// or https:// URL"),
                ));
            }
        }
        range(
            "external_service.timeout_s",
            self.external_service.timeout_s,
            0.1,
            300.0,
        )?;
        range(
            "external_service.interval_s",
            self.external_service.interval_s,
            0.0,
            86_400.0,
        )?;
        range(
            "storage.span_merge_gap_s",
            self.storage.span_merge_gap_s,
            0.0,
            86_400.0,
        )?;
        range(
            "analysis.interval_s",
            self.analysis.interval_s,
            1.0,
            86_400.0,
        )?;
        for (i, dir) in self.analysis.media_dirs.iter().enumerate() {
            if dir.as_os_str().is_empty() {
                return Err(ConfigError::invalid(
                    &format!("analysis.media_dirs[{i}]"),
                    "must not be empty",
                ));
            }
        }
        range(
            "outbox.backoff_initial_s",
            self.outbox.backoff_initial_s,
            0.01,
            3600.0,
        )?;
        range(
            "outbox.backoff_max_s",
            self.outbox.backoff_max_s,
            self.outbox.backoff_initial_s,
            86_400.0,
        )?;
        self.vban.bind.parse::<SocketAddr>().map_err(|_| {
            ConfigError::invalid(
                "vban.bind",
                format!("{:?} is not an address like 0.0.0.0:6980", self.vban.bind),
            )
        })?;
        range("hearing.hop_s", self.hearing.hop_s as f64, 0.02, 0.975)?;
        range(
            "hearing.level_gate_dbfs",
            self.hearing.level_gate_dbfs as f64,
            -120.0,
            0.0,
        )?;
        range("hearing.top_k", self.hearing.top_k as f64, 1.0, 521.0)?;
        range(
            "hearing.webhook_timeout_s",
            self.hearing.webhook_timeout_s,
            0.1,
            60.0,
        )?;
        if !self.hearing.model.is_empty() && !Path::new(&self.hearing.model).is_file() {
            return Err(ConfigError::invalid(
                "hearing.model",
                format!("no such file: {}", self.hearing.model),
            ));
        }
        validate_event_rules("hearing.events", &self.hearing.events)?;
        // The vision stage offers a frame every 1/fps seconds: 0 or a negative rate is no
        // interval at all.
        range("vision.fps", self.vision.fps, 0.01, 30.0)?;
        if self.vision.face_model().is_none() {
            return Err(ConfigError::invalid(
                "vision.faces",
                format!(
                    "{:?} is not full_range, short_range, both or off",
                    self.vision.faces
                ),
            ));
        }
        self.mqtt.validate()?;
        let mut seen = std::collections::BTreeSet::new();
        for (i, source) in self.sources.iter().enumerate() {
            let at = format!("sources[{i}]");
            source.validate(&at)?;
            if !seen.insert(source.id.as_str()) {
                return Err(ConfigError::invalid(
                    &format!("{at}.id"),
                    format!("{:?} is used by another source", source.id),
                ));
            }
        }
        if !self.classifier.audio_source.is_empty() {
            let known = self.classifier.audio_source == "file"
                || self
                    .sources
                    .iter()
                    .any(|s| s.id == self.classifier.audio_source);
            if !known {
                return Err(ConfigError::invalid(
                    "classifier.audio_source",
                    format!("no source with id {:?}", self.classifier.audio_source),
                ));
            }
        }
        tracing_subscriber::EnvFilter::try_new(&self.log.level)
            .map_err(|e| ConfigError::invalid("log.level", format!("{:?}: {e}", self.log.level)))?;
        Ok(())
    }

    pub fn bind_addr(&self) -> SocketAddr {
        // Validated in `validate`.
        self.http
            .bind
            .parse()
            .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 5000)))
    }

    /// `http.cors_origins` as a list.
    pub fn cors_origins(&self) -> Vec<String> {
        self.http
            .cors_origins
            .split(',')
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .map(str::to_string)
            .collect()
    }

    /// The MQTT publisher's settings; the built-in sources without audio get no sound entity.
    pub fn mqtt_settings(&self) -> cav_actors::mqtt::MqttSettings {
        let mut video = Vec::new();
        if self.obs.enabled {
            video.push("obs".to_string());
        }
        if self.file.enabled && self.file.streams == FileStreams::Video {
            video.push("file".to_string());
        }
        self.mqtt.settings(video)
    }

    pub fn window(&self) -> Duration {
        Duration::from_secs_f64(self.classifier.window_s)
    }
}

fn range(key: &str, v: f64, lo: f64, hi: f64) -> Result<(), ConfigError> {
    if v.is_finite() && (lo..=hi).contains(&v) {
        Ok(())
    } else {
        Err(ConfigError::invalid(
            key,
            format!("{v} is out of range {lo}..={hi}"),
        ))
    }
}

/// Extracts `x` from serde's "unknown field `x`, expected ...".
fn unknown_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    Some(rest.split('`').next()?.to_string())
}

/// Lays `overlay` over `base`, table by table.
fn merge(base: &mut Value, overlay: Value) {
    match (base, overlay) {
        (Value::Table(b), Value::Table(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

/// Applies `CAV_SECTION__KEY=value` overrides. Returns which variable set which key.
///
/// The value is read with the type of the default it replaces (so `CAV_FILE__PATH=2024` stays a
/// string); keys with no default (optional strings) are taken as strings.
fn apply_env(
    merged: &mut Value,
    defaults: &Value,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut origins = BTreeMap::new();
    for (name, raw) in env {
        let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let Some((section, key)) = rest.split_once("__") else {
            continue;
        };
        let (section, key) = (section.to_ascii_lowercase(), key.to_ascii_lowercase());
        let path = format!("{section}.{key}");
        let Some(Value::Table(default_section)) = defaults.get(&section) else {
            return Err(ConfigError::Invalid {
                key: path,
                reason: "unknown section".into(),
                origin: Some(name),
            });
        };
        let value =
            match default_section.get(&key) {
                Some(Value::String(_)) | None => Value::String(raw.clone()),
                Some(Value::Integer(_)) => {
                    raw.trim().parse::<i64>().map(Value::Integer).map_err(|_| {
                        ConfigError::Invalid {
                            key: path.clone(),
                            reason: format!("{raw:?} is not an integer"),
                            origin: Some(name.clone()),
                        }
                    })?
                }
                Some(Value::Float(_)) => {
                    raw.trim().parse::<f64>().map(Value::Float).map_err(|_| {
                        ConfigError::Invalid {
                            key: path.clone(),
                            reason: format!("{raw:?} is not a number"),
                            origin: Some(name.clone()),
                        }
                    })?
                }
                Some(Value::Boolean(_)) => {
                    raw.trim()
                        .parse::<bool>()
                        .map(Value::Boolean)
                        .map_err(|_| ConfigError::Invalid {
                            key: path.clone(),
                            reason: format!("{raw:?} is not true or false"),
                            origin: Some(name.clone()),
                        })?
                }
                Some(_) => toml::from_str::<BTreeMap<String, Value>>(&format!("v = {raw}"))
                    .ok()
                    .and_then(|mut m| m.remove("v"))
                    .unwrap_or(Value::String(raw.clone())),
            };
        if let Some(Value::Table(t)) = merged.get_mut(&section) {
            t.insert(key, value);
        }
        origins.insert(path, name);
    }
    Ok(origins)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn load_str(toml: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, toml).unwrap();
        Config::load(Some(&path), env(vars))
    }

    #[test]
    fn the_embedded_default_is_valid_and_safe() {
        let c = Config::load(None, env(&[])).unwrap();
        assert_eq!(c.http.bind, "127.0.0.1:5000");
        assert_eq!(c.classifier.window_s, 300.0);
        assert!(c.file.enabled && c.file.path.is_empty());
        assert_eq!(c.external_service.url, None);
    }

    #[test]
    fn every_example_is_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/examples");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            // Examples use paths relative to the repository root.
            let cwd = std::env::current_dir().unwrap();
            assert_eq!(cwd, Path::new(env!("CARGO_MANIFEST_DIR")));
            Config::load(Some(&path), env(&[]))
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            n += 1;
        }
        assert!(n >= 1);
    }

    #[test]
    fn environment_overrides_use_the_documented_names() {
        let c = Config::load(
            None,
            env(&[
                ("CAV_HTTP__BIND", "127.0.0.1:5711"),
                ("CAV_STORAGE__DATA_DIR", "/tmp/x"),
                ("CAV_CLASSIFIER__WINDOW_S", "10"),
                ("CAV_EXTERNAL_SERVICE__URL", "http://127.0.0.1:9/hook"),
                ("CAV_EXTERNAL_SERVICE__TOKEN", "12345"),
                ("PATH", "/usr/bin"),
                ("CAV_CONFIG", "ignored: not a section__key"),
            ]),
        )
        .unwrap();
        assert_eq!(c.http.bind, "127.0.0.1:5711");
        assert_eq!(c.storage.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(c.classifier.window_s, 10.0);
        assert_eq!(
            c.external_service.url.as_deref(),
            Some("http://127.0.0.1:9/hook")
        );
        assert_eq!(c.external_service.token.as_deref(), Some("12345"));
        let c = Config::load(
            None,
            env(&[
                ("CAV_OBS__ENABLED", "true"),
                ("CAV_OBS__PORT", "4460"),
                ("CAV_OBS__SOURCE", "Media"),
                ("CAV_OBS__PASSWORD", "secret123"),
                ("CAV_FILE__STREAMS", "audio"),
            ]),
        )
        .unwrap();
        assert!(c.obs.enabled);
        assert_eq!((c.obs.port, c.obs.source.as_str()), (4460, "Media"));
        assert_eq!(c.obs.password.as_deref(), Some("secret123"));
    }

    #[test]
    fn mqtt_is_off_by_default_and_resolves_its_names() {
        let c = Config::load(None, env(&[])).unwrap();
        assert!(!c.mqtt.enabled);
        assert_eq!(
            (c.mqtt.username.as_deref(), c.mqtt.password.as_deref()),
            (None, None)
        );
        let s = c.mqtt.settings(Vec::new());
        assert_eq!(
            (s.client_id.as_str(), s.node_id.as_str()),
            ("cav-cav", "cav")
        );
        let c = Config::load(
            None,
            env(&[
                ("CAV_MQTT__ENABLED", "true"),
                ("CAV_MQTT__PORT", "1884"),
                ("CAV_MQTT__NODE_ID", "living_room"),
                ("CAV_MQTT__USERNAME", "cav"),
                ("CAV_MQTT__PASSWORD", "pw"),
                ("CAV_MQTT__KEEPALIVE_S", "2"),
            ]),
        )
        .unwrap();
        let s = c.mqtt.settings(vec!["obs".into()]);
        assert_eq!((s.port, s.client_id.as_str()), (1884, "cav-living_room"));
        assert_eq!(s.password.as_deref(), Some("pw"));
        assert_eq!(s.keepalive, Duration::from_secs(2));
        assert!(!format!("{s:?}").contains("pw"), "{s:?}");
        let e = Config::load(None, env(&[("CAV_MQTT__NODE_ID", "Küche")])).unwrap_err();
        assert_eq!(e.key(), Some("mqtt.node_id"));
        assert!(e.to_string().contains("CAV_MQTT__NODE_ID"), "{e}");
    }

    #[test]
    fn a_file_overrides_only_what_it_sets() {
        let c = load_str("[classifier]\nwindow_s = 42\n", &[]).unwrap();
        assert_eq!(c.classifier.window_s, 42.0);
        assert_eq!(c.video.analysis_fps, 5.0);
    }

    #[test]
    fn unknown_keys_are_refused_by_name() {
        let e = load_str("[classifier]\nwindow_seconds = 42\n", &[]).unwrap_err();
        assert_eq!(e.key(), Some("classifier.window_seconds"), "{e}");
        let e = load_str("[clasifier]\nwindow_s = 42\n", &[]).unwrap_err();
        assert_eq!(e.key(), Some("clasifier"), "{e}");
        let e = Config::load(None, env(&[("CAV_CLASSIFIER__WINDOWS", "3")])).unwrap_err();
        assert_eq!(e.key(), Some("classifier.windows"), "{e}");
        assert!(e.to_string().contains("CAV_CLASSIFIER__WINDOWS"), "{e}");
        let e = Config::load(None, env(&[("CAV_NOPE__X", "3")])).unwrap_err();
        assert!(e.to_string().contains("CAV_NOPE__X"), "{e}");
    }

    #[test]
    fn out_of_range_and_ill_typed_values_name_the_key() {
        let cases: &[(&str, &str)] = &[
            ("[classifier]\nwindow_s = 0\n", "classifier.window_s"),
            ("[classifier]\nwindow_s = \"long\"\n", "classifier.window_s"),
            ("[video]\nanalysis_fps = 500.0\n", "video.analysis_fps"),
            (
                "[video]\nmotion_threshold = 300\n",
                "video.motion_threshold",
            ),
            ("[http]\nbind = \"localhost\"\n", "http.bind"),
            (
                "[external_service]\nurl = \"ftp://x\"\n",
                "external_service.url",
            ),
            ("[file]\npath = \"/no/such/file.mp4\"\n", "file.path"),
            ("[log]\nformat = \"xml\"\n", "log.format"),
            ("[file]\nstreams = \"subtitles\"\n", "file.streams"),
            ("[obs]\nenabled = true\nsource = \"Cam\"\n", "obs.enabled"),
            (
                "[obs]\nenabled = true\nsource = \"\"\n[file]\nenabled = false\n",
                "obs.source",
            ),
            ("[obs]\nport = 70000\n", "obs.port"),
            ("[obs]\njpeg_quality = 0\n", "obs.jpeg_quality"),
            ("[hearing]\nhop_s = 2.0\n", "hearing.hop_s"),
            (
                "[hearing.events.whistle]\nthreshold = 0.5\n",
                "hearing.events.whistle",
            ),
            (
                "[hearing.events.clap]\nthreshold = 1.5\n",
                "hearing.events.clap.threshold",
            ),
            (
                "[hearing.events.clap]\nloudness = 1\n",
                "hearing.events.clap.loudness",
            ),
            (
                "[hearing.events.speech]\nover_loud_background = false\n",
                "hearing.events.speech.over_loud_background",
            ),
            (
                "[sync]\nspan_ms = 5000\n[classifier]\nwindow_s = 2\n",
                "classifier.window_s",
            ),
            ("[mqtt]\nnode_id = \"Living Room\"\n", "mqtt.node_id"),
            ("[mqtt]\nbase_topic = \"home/#\"\n", "mqtt.base_topic"),
            ("[mqtt]\ndiscovery_prefix = \"\"\n", "mqtt.discovery_prefix"),
            ("[mqtt]\nkeepalive_s = 0\n", "mqtt.keepalive_s"),
            ("[mqtt]\nenabled = true\nhost = \" \"\n", "mqtt.host"),
            ("[mqtt]\nbrokers = 2\n", "mqtt.brokers"),
        ];
        for (toml, key) in cases {
            let e = load_str(toml, &[]).unwrap_err();
            assert_eq!(e.key(), Some(*key), "{toml:?} gave {e}");
        }
        let e = Config::load(None, env(&[("CAV_CLASSIFIER__WINDOW_S", "soon")])).unwrap_err();
        assert_eq!(e.key(), Some("classifier.window_s"));
        let e = Config::load(None, env(&[("CAV_CLASSIFIER__WINDOW_S", "-4")])).unwrap_err();
        assert!(
            e.to_string().contains("(set by CAV_CLASSIFIER__WINDOW_S)"),
            "{e}"
        );
    }

    #[test]
    fn sources_are_checked_field_by_field() {
        let ok = load_str(
            r#"
[[sources]]
id = "mic"
kind = "microphone"
device = "2"
[[sources]]
id = "vm.stream-1"
kind = "vban"
stream = "Stream1"
sender = "192.168.1.20"
webhook = "http://127.0.0.1:9/hook"
[[sources]]
id = "cam"
kind = "rtsp"
url = "rtsp://user:pw@cam.local:554/audio"
enabled = false
[classifier]
audio_source = "cam"
"#,
            &[],
        )
        .unwrap();
        assert_eq!(ok.sources.len(), 3);
        assert!(ok.sources[0].enabled, "enabled defaults to true");
        assert!(!ok.sources[2].enabled);
        let cases: &[(&str, &str)] = &[
            ("id = \"a b\"\nkind = \"microphone\"", "sources[0].id"),
            ("id = \"file\"\nkind = \"microphone\"", "sources[0].id"),
            (
                "id = \"m\"\nkind = \"microphone\"\nurl = \"rtsp://x/y\"",
                "sources[0].url",
            ),
            ("id = \"m\"\nkind = \"speaker\"", "sources[0].kind"),
            ("id = \"v\"\nkind = \"vban\"", "sources[0].stream"),
            (
                "id = \"v\"\nkind = \"vban\"\nstream = \"a-name-longer-than-16\"",
                "sources[0].stream",
            ),
            (
                "id = \"v\"\nkind = \"vban\"\nstream = \"S\"\nsender = \"host\"",
                "sources[0].sender",
            ),
            (
                "id = \"r\"\nkind = \"rtsp\"\nurl = \"http://cam/a\"",
                "sources[0].url",
            ),
            (
                "id = \"r\"\nkind = \"rtsp\"\nurl = \"rtsp://c/a\"\ntransport = \"sctp\"",
                "sources[0].transport",
            ),
            (
                "id = \"r\"\nkind = \"rtsp\"\nurl = \"rtsp://c/a\"\nwebhook = \"ftp://x\"",
                "sources[0].webhook",
            ),
            (
                "id = \"m\"\nkind = \"microphone\"\nvolume = 3",
                "sources[0].volume",
            ),
            (
                "id = \"m\"\nkind = \"microphone\"\nevents = { clap = { threshold = 2.0 } }",
                "sources[0].events.clap.threshold",
            ),
            (
                "id = \"m\"\nkind = \"microphone\"\nevents = { whistle = { threshold = 0.5 } }",
                "sources[0].events.whistle",
            ),
        ];
        for (body, key) in cases {
            let e = load_str(&format!("[[sources]]\n{body}\n"), &[]).unwrap_err();
            assert_eq!(e.key(), Some(*key), "{body:?} gave {e}");
        }
        let dup = "[[sources]]\nid = \"m\"\nkind = \"microphone\"\n[[sources]]\nid = \"m\"\nkind = \"microphone\"\n";
        assert_eq!(load_str(dup, &[]).unwrap_err().key(), Some("sources[1].id"));
        let e = load_str("[classifier]\naudio_source = \"nope\"\n", &[]).unwrap_err();
        assert_eq!(e.key(), Some("classifier.audio_source"));
        let e = load_str("[vban]\nbind = \"6980\"\n", &[]).unwrap_err();
        assert_eq!(e.key(), Some("vban.bind"));
    }

    #[test]
    fn passwords_in_urls_are_redacted() {
        assert_eq!(
            redact_url("rtsp://bob:hunter2@cam:554/a"),
            "rtsp://bob:***@cam:554/a"
        );
        assert_eq!(redact_url("rtsp://cam/a@b"), "rtsp://cam/a@b");
        assert_eq!(redact_url("not a url"), "not a url");
    }

    #[test]
    fn syntax_errors_and_missing_files_are_reported() {
        let e = load_str("[classifier\n", &[]).unwrap_err();
        assert!(matches!(e, ConfigError::Syntax { .. }), "{e}");
        let e = Config::load(Some(Path::new("/no/such.toml")), env(&[])).unwrap_err();
        assert!(matches!(e, ConfigError::Read { .. }), "{e}");
    }
}
