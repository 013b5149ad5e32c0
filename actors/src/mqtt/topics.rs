//! What the daemon publishes over MQTT: topic names, the JSON payloads (wire types of their own,
//! so internal types can change without changing the topics' format) and the Home Assistant
//! discovery documents. Pure: no actix, no I/O.
//!
//! Everything lives under one base topic per daemon (`classify-audio-video/<node_id>` unless
//! configured), and every discovery document names the daemon's `node_id`, so several daemons
//! share a broker without their topics or Home Assistant entities colliding.

use std::collections::BTreeMap;

use cav_models::hearing::EventKind;
use serde::{Deserialize, Serialize};

use crate::delivery::iso8601;
use crate::events::SoundEventRecord;
use crate::health::SourceSnapshot;
use crate::messages::Classification;

/// The availability payloads (Home Assistant's defaults).
pub const ONLINE: &str = "online";
pub const OFFLINE: &str = "offline";

/// Who makes the device, in discovery documents.
pub const MANUFACTURER: &str = "classify-audio-video";

/// The states a source can report (`health::SourceState`, serialised), the options of its
/// Home Assistant state sensor.
pub const SOURCE_STATES: [&str; 8] = [
    "starting",
    "connecting",
    "running",
    "stalled",
    "reconnecting",
    "ended",
    "error",
    "stopped",
];

/// The activity classes (the options of the activity sensor).
pub fn activity_classes() -> Vec<String> {
    cav_core::ActivityClass::ALL
        .iter()
        .map(|c| c.as_str().to_string())
        .collect()
}

/// The sound-event kinds (the `event_types` of a source's event entity).
pub fn event_types() -> Vec<String> {
    EventKind::ALL
        .iter()
        .map(|k| k.as_str().to_string())
        .collect()
}

/// A source id as a Home Assistant object id (`[a-zA-Z0-9_-]`): other characters become `_`.
pub fn object_id(source_id: &str) -> String {
    source_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The topic names of one daemon.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topics {
    node_id: String,
    base: String,
    prefix: String,
}

impl Topics {
    /// `base_topic` empty means `classify-audio-video/<node_id>`.
    pub fn new(node_id: &str, base_topic: &str, discovery_prefix: &str) -> Self {
        let base = if base_topic.is_empty() {
            format!("classify-audio-video/{node_id}")
        } else {
            base_topic.trim_end_matches('/').to_string()
        };
        Self {
            node_id: node_id.to_string(),
            base,
            prefix: discovery_prefix.trim_end_matches('/').to_string(),
        }
    }

    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// Retained `online` / `offline`; the broker's last will sets `offline`.
    pub fn availability(&self) -> String {
        format!("{}/availability", self.base)
    }

    /// Retained [`ActivityState`].
    pub fn activity(&self) -> String {
        format!("{}/activity", self.base)
    }

    /// Every [`SoundEventMessage`], not retained.
    pub fn sound_event(&self) -> String {
        format!("{}/sound_event", self.base)
    }

    /// Retained [`SourceStateMessage`] of one source.
    pub fn source(&self, id: &str) -> String {
        format!("{}/source/{id}", self.base)
    }

    /// One source's [`SoundEventMessage`]s, not retained (its Home Assistant event entity).
    pub fn source_event(&self, id: &str) -> String {
        format!("{}/source/{id}/event", self.base)
    }

    fn config(&self, component: &str, object: &str) -> String {
        format!(
            "{}/{component}/{}/{object}/config",
            self.prefix, self.node_id
        )
    }

    pub fn activity_config(&self) -> String {
        self.config("sensor", "activity")
    }

    pub fn confidence_config(&self) -> String {
        self.config("sensor", "activity_confidence")
    }

    pub fn source_state_config(&self, id: &str) -> String {
        self.config("sensor", &format!("{}_state", object_id(id)))
    }

    pub fn source_sound_config(&self, id: &str) -> String {
        self.config("event", &format!("{}_sound", object_id(id)))
    }
}

/// `<base>/activity`: the latest classification window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActivityState {
    pub activity: String,
    pub confidence: f32,
    /// All seven classes.
    pub scores: BTreeMap<String, f32>,
    /// ISO-8601 UTC.
    pub window_start: String,
    pub window_end: String,
    /// Unix milliseconds.
    pub window_start_ms: i64,
    pub window_end_ms: i64,
    /// The audio source the classifier heard.
    pub source: String,
    pub classifier: String,
}

impl From<&Classification> for ActivityState {
    fn from(c: &Classification) -> Self {
        let (start, end) = (c.start().millis(), c.end().millis());
        Self {
            activity: c.decision.activity.as_str().to_string(),
            confidence: c.decision.confidence,
            scores: c
                .decision
                .scores
                .iter()
                .map(|(class, score)| (class.as_str().to_string(), score))
                .collect(),
            window_start: iso8601(start),
            window_end: iso8601(end),
            window_start_ms: start,
            window_end_ms: end,
            source: c.source.clone(),
            classifier: c.classifier.clone(),
        }
    }
}

/// `<base>/sound_event` and `<base>/source/<id>/event`: one sound event. `event_type` is the
/// key Home Assistant's event entities read.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SoundEventMessage {
    /// `clap`, `applause`, `speech`, `phone_ring`, `snoring`, `dishes`, `typing`.
    pub event_type: String,
    pub source: String,
    /// ISO-8601 UTC.
    pub onset: String,
    pub onset_ms: i64,
    /// For events with a duration (applause).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_ms: Option<i64>,
    pub score: f32,
}

impl From<&SoundEventRecord> for SoundEventMessage {
    fn from(e: &SoundEventRecord) -> Self {
        Self {
            event_type: e.kind.clone(),
            source: e.source.clone(),
            onset: iso8601(e.onset_ms),
            onset_ms: e.onset_ms,
            end_ms: e.end_ms,
            score: e.score,
        }
    }
}

/// `<base>/source/<id>`: a source's state, published when it changes (not its counters).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceStateMessage {
    /// One of [`SOURCE_STATES`].
    pub state: String,
    /// `file`, `obs`, `microphone`, `vban`, `rtsp`.
    pub kind: String,
    pub detail: Option<String>,
    pub last_error: Option<String>,
    /// ISO-8601 UTC: when the source entered this state.
    pub since: String,
}

impl From<&SourceSnapshot> for SourceStateMessage {
    fn from(s: &SourceSnapshot) -> Self {
        let state = serde_json::to_value(s.status.state)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        Self {
            state,
            kind: s.status.kind.clone(),
            detail: s.status.detail.clone(),
            last_error: s.status.last_error.clone(),
            since: iso8601(s.status.since.millis()),
        }
    }
}

/// The device every entity of one daemon belongs to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Device {
    pub identifiers: Vec<String>,
    pub name: String,
    pub manufacturer: String,
    pub model: String,
    pub sw_version: String,
}

/// What published the discovery document (Home Assistant shows it in the MQTT info).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Origin {
    pub name: String,
    pub sw_version: String,
}

/// A Home Assistant MQTT `sensor` discovery document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SensorConfig {
    pub name: String,
    pub unique_id: String,
    pub state_topic: String,
    pub value_template: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json_attributes_topic: Option<String>,
    pub availability_topic: String,
    pub payload_available: String,
    pub payload_not_available: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_class: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_of_measurement: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_class: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity_category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon: Option<String>,
    pub device: Device,
    pub origin: Origin,
}

/// A Home Assistant MQTT `event` discovery document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventConfig {
    pub name: String,
    pub unique_id: String,
    pub state_topic: String,
    pub event_types: Vec<String>,
    pub availability_topic: String,
    pub payload_available: String,
    pub payload_not_available: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon: Option<String>,
    pub device: Device,
    pub origin: Origin,
}

/// Builds the discovery documents of one daemon.
#[derive(Clone, Debug)]
pub struct Discovery {
    topics: Topics,
    version: String,
}

impl Discovery {
    pub fn new(topics: Topics, version: &str) -> Self {
        Self {
            topics,
            version: version.to_string(),
        }
    }

    /// `cav_<node_id>`: the device's identifier, and the prefix of every unique id.
    fn id(&self) -> String {
        format!("cav_{}", self.topics.node_id)
    }

    fn device(&self) -> Device {
        Device {
            identifiers: vec![self.id()],
            name: format!("classify-audio-video {}", self.topics.node_id),
            manufacturer: MANUFACTURER.to_string(),
            model: "cav".to_string(),
            sw_version: self.version.clone(),
        }
    }

    fn origin(&self) -> Origin {
        Origin {
            name: MANUFACTURER.to_string(),
            sw_version: self.version.clone(),
        }
    }

    fn sensor(
        &self,
        name: String,
        object: &str,
        state_topic: String,
        template: &str,
    ) -> SensorConfig {
        SensorConfig {
            name,
            unique_id: format!("{}_{object}", self.id()),
            state_topic,
            value_template: template.to_string(),
            json_attributes_topic: None,
            availability_topic: self.topics.availability(),
            payload_available: ONLINE.to_string(),
            payload_not_available: OFFLINE.to_string(),
            device_class: None,
            options: None,
            unit_of_measurement: None,
            state_class: None,
            entity_category: None,
            icon: None,
            device: self.device(),
            origin: self.origin(),
        }
    }

    /// The activity (one of seven) with the whole [`ActivityState`] as attributes.
    pub fn activity_sensor(&self) -> SensorConfig {
        SensorConfig {
            json_attributes_topic: Some(self.topics.activity()),
            device_class: Some("enum".into()),
            options: Some(activity_classes()),
            icon: Some("mdi:account-eye".into()),
            ..self.sensor(
                "Activity".into(),
                "activity",
                self.topics.activity(),
                "{{ value_json.activity }}",
            )
        }
    }

    /// The winner's score, in percent.
    pub fn confidence_sensor(&self) -> SensorConfig {
        SensorConfig {
            unit_of_measurement: Some("%".into()),
            state_class: Some("measurement".into()),
            icon: Some("mdi:percent".into()),
            ..self.sensor(
                "Activity confidence".into(),
                "activity_confidence",
                self.topics.activity(),
                "{{ (value_json.confidence * 100) | round(0) }}",
            )
        }
    }

    /// A source's state (diagnostic), with its detail and last error as attributes.
    pub fn source_state_sensor(&self, source_id: &str) -> SensorConfig {
        let object = format!("{}_state", object_id(source_id));
        SensorConfig {
            json_attributes_topic: Some(self.topics.source(source_id)),
            device_class: Some("enum".into()),
            options: Some(SOURCE_STATES.iter().map(|s| s.to_string()).collect()),
            entity_category: Some("diagnostic".into()),
            icon: Some("mdi:microphone-settings".into()),
            ..self.sensor(
                format!("{source_id} state"),
                &object,
                self.topics.source(source_id),
                "{{ value_json.state }}",
            )
        }
    }

    /// A source's sound events (clap, speech...) as an event entity.
    pub fn source_sound_event(&self, source_id: &str) -> EventConfig {
        EventConfig {
            name: format!("{source_id} sound"),
            unique_id: format!("{}_{}_sound", self.id(), object_id(source_id)),
            state_topic: self.topics.source_event(source_id),
            event_types: event_types(),
            availability_topic: self.topics.availability(),
            payload_available: ONLINE.to_string(),
            payload_not_available: OFFLINE.to_string(),
            icon: Some("mdi:hand-clap".into()),
            device: self.device(),
            origin: self.origin(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::{SourceState, SourceStatus};
    use cav_core::{ActivityClass, Decision, Scores, Timestamp};
    use serde_json::Value;

    fn topics() -> Topics {
        Topics::new("living_room", "", "homeassistant")
    }

    #[test]
    fn topics_live_under_the_node_and_the_discovery_prefix() {
        let t = topics();
        assert_eq!(t.base(), "classify-audio-video/living_room");
        assert_eq!(
            t.availability(),
            "classify-audio-video/living_room/availability"
        );
        assert_eq!(t.activity(), "classify-audio-video/living_room/activity");
        assert_eq!(
            t.sound_event(),
            "classify-audio-video/living_room/sound_event"
        );
        assert_eq!(
            t.source("mic.1"),
            "classify-audio-video/living_room/source/mic.1"
        );
        assert_eq!(
            t.source_event("mic.1"),
            "classify-audio-video/living_room/source/mic.1/event"
        );
        assert_eq!(
            t.activity_config(),
            "homeassistant/sensor/living_room/activity/config"
        );
        assert_eq!(
            t.source_sound_config("mic.1"),
            "homeassistant/event/living_room/mic_1_sound/config"
        );
        assert_eq!(
            t.source_state_config("file"),
            "homeassistant/sensor/living_room/file_state/config"
        );
        let custom = Topics::new("k", "home/cav/", "ha/");
        assert_eq!(custom.availability(), "home/cav/availability");
        assert_eq!(custom.activity_config(), "ha/sensor/k/activity/config");
    }

    #[test]
    fn object_ids_keep_only_what_home_assistant_accepts() {
        assert_eq!(object_id("living-room_2"), "living-room_2");
        assert_eq!(object_id("vm.stream 1"), "vm_stream_1");
    }

    #[test]
    fn the_activity_state_carries_all_seven_scores_and_iso_times() {
        let at = |class| ActivityClass::ALL.iter().position(|c| *c == class).unwrap();
        let mut raw = [0.0; 7];
        raw[at(ActivityClass::Reading)] = 3.0;
        raw[at(ActivityClass::Busy)] = 1.0;
        let scores = Scores::from_evidence(raw);
        let c = Classification {
            window: cav_core::window::summarize(
                Timestamp::from_millis(1_700_000_000_000),
                Timestamp::from_millis(1_700_000_010_000),
                &[],
            ),
            decision: Decision {
                activity: ActivityClass::Reading,
                confidence: scores.get(ActivityClass::Reading),
                scores,
                drivers: Vec::new(),
                unsmoothed: None,
            },
            classifier: "rules-v1".into(),
            source: "file".into(),
        };
        let j = serde_json::to_value(ActivityState::from(&c)).unwrap();
        assert_eq!(j["activity"], "reading");
        assert_eq!(j["confidence"].as_f64(), Some(0.75));
        assert_eq!(j["scores"].as_object().unwrap().len(), 7);
        assert_eq!(j["scores"]["busy"].as_f64(), Some(0.25));
        assert_eq!(j["window_start"], "2023-11-14T22:13:20.000Z");
        assert_eq!(j["window_end"], "2023-11-14T22:13:30.000Z");
        assert_eq!(j["window_end_ms"], 1_700_000_010_000i64);
        assert_eq!(
            (j["source"].as_str(), j["classifier"].as_str()),
            (Some("file"), Some("rules-v1"))
        );
        let back: ActivityState = serde_json::from_value(j).unwrap();
        assert_eq!(back.activity, "reading");
    }

    #[test]
    fn sound_events_name_their_event_type() {
        let e = SoundEventRecord {
            source: "mic".into(),
            kind: "clap".into(),
            onset_ms: 1_700_000_000_250,
            end_ms: None,
            score: 0.9,
        };
        let j = serde_json::to_value(SoundEventMessage::from(&e)).unwrap();
        assert_eq!(j["event_type"], "clap");
        assert_eq!(j["onset"], "2023-11-14T22:13:20.250Z");
        assert_eq!(j["onset_ms"], 1_700_000_000_250i64);
        assert!(j.get("end_ms").is_none(), "{j}");
        let applause = SoundEventRecord {
            kind: "applause".into(),
            end_ms: Some(1_700_000_003_000),
            ..e
        };
        let j = serde_json::to_value(SoundEventMessage::from(&applause)).unwrap();
        assert_eq!(j["end_ms"], 1_700_000_003_000i64);
    }

    #[test]
    fn source_states_are_the_documented_names() {
        let snapshot = |state| SourceSnapshot {
            status: SourceStatus {
                kind: "microphone".into(),
                state,
                detail: Some("default".into()),
                last_error: None,
                last_frame_at: None,
                last_audio_at: None,
                since: Timestamp::from_millis(1_700_000_000_000),
                level: None,
            },
            frames: 0,
            frames_dropped: 0,
            audio_chunks: 5,
            audio_samples: 0,
            audio_chunks_dropped: 0,
            decode_errors: 0,
            loops: 0,
        };
        for state in [
            SourceState::Starting,
            SourceState::Connecting,
            SourceState::Running,
            SourceState::Stalled,
            SourceState::Reconnecting,
            SourceState::Ended,
            SourceState::Error,
            SourceState::Stopped,
        ] {
            let m = SourceStateMessage::from(&snapshot(state));
            assert!(SOURCE_STATES.contains(&m.state.as_str()), "{state:?}");
        }
        let m = SourceStateMessage::from(&snapshot(SourceState::Running));
        let j = serde_json::to_value(&m).unwrap();
        assert_eq!(j["state"], "running");
        assert_eq!(j["kind"], "microphone");
        assert_eq!(j["since"], "2023-11-14T22:13:20.000Z");
        assert!(j["last_error"].is_null());
    }

    #[test]
    fn discovery_documents_point_at_the_topics_and_share_one_device() {
        let d = Discovery::new(topics(), "0.1.0");
        let a: Value = serde_json::to_value(d.activity_sensor()).unwrap();
        assert_eq!(
            a["state_topic"],
            "classify-audio-video/living_room/activity"
        );
        assert_eq!(a["json_attributes_topic"], a["state_topic"]);
        assert_eq!(a["value_template"], "{{ value_json.activity }}");
        assert_eq!(a["unique_id"], "cav_living_room_activity");
        assert_eq!(
            a["availability_topic"],
            "classify-audio-video/living_room/availability"
        );
        assert_eq!(a["device_class"], "enum");
        assert_eq!(a["options"].as_array().unwrap().len(), 7);
        assert_eq!(a["device"]["identifiers"][0], "cav_living_room");
        assert_eq!(a["device"]["manufacturer"], "classify-audio-video");
        assert_eq!(a["device"]["sw_version"], "0.1.0");
        assert!(a.get("unit_of_measurement").is_none(), "{a}");

        let c: Value = serde_json::to_value(d.confidence_sensor()).unwrap();
        assert_eq!(c["unique_id"], "cav_living_room_activity_confidence");
        assert_eq!(c["unit_of_measurement"], "%");

        let e: Value = serde_json::to_value(d.source_sound_event("vm.1")).unwrap();
        assert_eq!(e["unique_id"], "cav_living_room_vm_1_sound");
        assert_eq!(
            e["state_topic"],
            "classify-audio-video/living_room/source/vm.1/event"
        );
        let types: Vec<&str> = e["event_types"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(
            types,
            [
                "clap",
                "applause",
                "speech",
                "phone_ring",
                "snoring",
                "dishes",
                "typing"
            ]
        );
        assert_eq!(e["device"], a["device"]);

        let s: Value = serde_json::to_value(d.source_state_sensor("file")).unwrap();
        assert_eq!(
            s["state_topic"],
            "classify-audio-video/living_room/source/file"
        );
        assert_eq!(s["entity_category"], "diagnostic");
        assert_eq!(s["options"].as_array().unwrap().len(), SOURCE_STATES.len());
    }

    #[test]
    fn two_daemons_never_share_a_topic_or_an_id() {
        let a = Discovery::new(Topics::new("kitchen", "", "homeassistant"), "0.1.0");
        let b = Discovery::new(Topics::new("bedroom", "", "homeassistant"), "0.1.0");
        assert_ne!(a.topics.activity(), b.topics.activity());
        assert_ne!(a.topics.activity_config(), b.topics.activity_config());
        assert_ne!(a.activity_sensor().unique_id, b.activity_sensor().unique_id);
        assert_ne!(
            a.source_sound_event("file").unique_id,
            b.source_sound_event("file").unique_id
        );
        assert_ne!(a.activity_sensor().device, b.activity_sensor().device);
    }
}
