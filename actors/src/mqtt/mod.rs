//! MQTT: the topics and payloads the daemon publishes ([`topics`], pure) and the broker
//! connection ([`link`], a blocking client on a thread of its own). The actor that feeds them is
//! `actor::mqtt::MqttPublisher`.

pub mod link;
pub mod topics;

use std::fmt;
use std::time::Duration;

/// How to reach the broker and what to call this daemon there.
#[derive(Clone, PartialEq, Eq)]
pub struct MqttSettings {
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    /// Never logged ([`fmt::Debug`] hides it).
    pub password: Option<String>,
    pub client_id: String,
    /// One per daemon: names its topics, its Home Assistant device and entities.
    pub node_id: String,
    /// Empty: `classify-audio-video/<node_id>`.
    pub base_topic: String,
    pub discovery_prefix: String,
    /// Publish Home Assistant discovery documents.
    pub discovery: bool,
    pub keepalive: Duration,
    /// Reconnect delays double from 1 s up to this (with jitter).
    pub reconnect_max: Duration,
    /// Sources without audio: they get a state sensor but no sound-event entity.
    pub video_sources: Vec<String>,
    /// The daemon's version, shown in Home Assistant's device page.
    pub version: String,
}

impl fmt::Debug for MqttSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MqttSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("client_id", &self.client_id)
            .field("node_id", &self.node_id)
            .field("base_topic", &self.base_topic)
            .field("discovery_prefix", &self.discovery_prefix)
            .field("discovery", &self.discovery)
            .field("keepalive", &self.keepalive)
            .field("reconnect_max", &self.reconnect_max)
            .field("video_sources", &self.video_sources)
            .finish()
    }
}
