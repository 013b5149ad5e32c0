//! `MqttPublisher`: publishes the current activity, sound events and source states to an MQTT
//! broker, with Home Assistant discovery (topics and payloads: `crate::mqtt::topics`).
//!
//! It listens to the live event bus, so it publishes exactly what `/api/events` streams, after
//! it is on disk. An `activity` event carries only a few fields: the full retained state is the
//! status board's current classification, read when the event arrives. Source states are read
//! from the board every 2 s and published when they change; a source that appears gets its
//! discovery documents, one that is removed has them (and its retained state) deleted.
//!
//! The broker connection lives on a thread of its own (`MqttLink`): nothing here blocks. Its
//! state is this actor's on the status board: `starting` until the first connection, `running`
//! while connected, `restarting` while it reconnects (with the reason as `last_error`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use cav_core::{Clock, MonotonicClock};
use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;

use crate::events::LiveEvent;
use crate::health::{ActorState, StatusBoard};
use crate::mqtt::link::{LinkOptions, LinkState, MqttLink};
use crate::mqtt::topics::{
    ActivityState, Discovery, SoundEventMessage, SourceStateMessage, Topics,
};
use crate::mqtt::MqttSettings;

/// Publishes `offline`, disconnects cleanly and stops the publisher; answers when done, or
/// after [`STOP_WAIT`] at most.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Shutdown;

/// The longest [`Shutdown`] waits for the broker connection to close.
pub const STOP_WAIT: Duration = Duration::from_secs(2);

/// How often source states are compared with what was published.
const SOURCE_POLL: Duration = Duration::from_secs(2);

pub struct MqttPublisher {
    board: StatusBoard,
    clock: Arc<MonotonicClock>,
    settings: MqttSettings,
    topics: Topics,
    discovery: Discovery,
    link: Option<MqttLink>,
    /// What was last published per source.
    sources: BTreeMap<String, SourceStateMessage>,
}

fn json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

impl MqttPublisher {
    pub const NAME: &'static str = "mqtt";

    pub fn new(board: StatusBoard, clock: Arc<MonotonicClock>, settings: MqttSettings) -> Self {
        let topics = Topics::new(
            &settings.node_id,
            &settings.base_topic,
            &settings.discovery_prefix,
        );
        let discovery = Discovery::new(topics.clone(), &settings.version);
        Self {
            board,
            clock,
            settings,
            topics,
            discovery,
            link: None,
            sources: BTreeMap::new(),
        }
    }

    fn link_options(&self) -> LinkOptions {
        let s = &self.settings;
        LinkOptions {
            host: s.host.clone(),
            port: s.port,
            client_id: s.client_id.clone(),
            username: s.username.clone(),
            password: s.password.clone(),
            keepalive: s.keepalive,
            reconnect_max: s.reconnect_max,
            availability: self.topics.availability(),
        }
    }

    fn publish_activity(&self) {
        if let (Some(link), Some(current)) = (&self.link, self.board.current()) {
            link.set_retained(self.topics.activity(), json(&ActivityState::from(&current)));
        }
    }

    fn publish_sound_event(&self, event: &crate::events::SoundEventRecord) {
        let Some(link) = &self.link else { return };
        let payload = json(&SoundEventMessage::from(event));
        let sent = link.publish(&self.topics.sound_event(), payload.clone());
        link.publish(&self.topics.source_event(&event.source), payload);
        if !sent {
            tracing::debug!(kind = %event.kind, source = %event.source, "sound event not published: MQTT is not connected");
        }
    }

    /// Publishes the states that changed since the last poll; adds and removes the sources'
    /// discovery documents.
    fn poll_sources(&mut self) {
        let Some(link) = &self.link else { return };
        let now = self.board.sources();
        let gone: Vec<String> = self
            .sources
            .keys()
            .filter(|id| !now.contains_key(*id))
            .cloned()
            .collect();
        for id in gone {
            self.sources.remove(&id);
            link.set_retained(self.topics.source(&id), Vec::new());
            if self.settings.discovery {
                link.set_discovery(self.topics.source_state_config(&id), Vec::new());
                link.set_discovery(self.topics.source_sound_config(&id), Vec::new());
            }
        }
        for (id, snapshot) in &now {
            let message = SourceStateMessage::from(snapshot);
            if self.sources.get(id) == Some(&message) {
                continue;
            }
            if !self.sources.contains_key(id) && self.settings.discovery {
                link.set_discovery(
                    self.topics.source_state_config(id),
                    json(&self.discovery.source_state_sensor(id)),
                );
                if !self.settings.video_sources.contains(id) {
                    link.set_discovery(
                        self.topics.source_sound_config(id),
                        json(&self.discovery.source_sound_event(id)),
                    );
                }
            }
            link.set_retained(self.topics.source(id), json(&message));
            self.sources.insert(id.clone(), message);
        }
    }
}

/// Shows the connection's state as this actor's on the status board.
fn report(board: &StatusBoard, clock: &MonotonicClock, state: &LinkState) {
    let name = MqttPublisher::NAME;
    match state {
        LinkState::Connected => board.actor_state(name, ActorState::Running, clock.now()),
        LinkState::Disconnected {
            error,
            was_connected,
            ..
        } => {
            let state = if *was_connected {
                ActorState::Restarting
            } else {
                ActorState::Starting
            };
            board.actor_state(name, state, clock.now());
            board.actor_error(name, error.clone());
        }
        LinkState::Stopped => board.actor_state(name, ActorState::Stopped, clock.now()),
    }
}

impl Actor for MqttPublisher {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.board
            .actor_state(Self::NAME, ActorState::Starting, self.clock.now());
        let (board, clock) = (self.board.clone(), self.clock.clone());
        match MqttLink::start(self.link_options(), move |state| {
            report(&board, &clock, state)
        }) {
            Ok(link) => self.link = Some(link),
            Err(e) => {
                tracing::error!(error = %e, "cannot start the MQTT connection thread");
                self.board.actor_error(Self::NAME, e.to_string());
                ctx.stop();
                return;
            }
        }
        tracing::info!(
            broker = %format!("{}:{}", self.settings.host, self.settings.port),
            base_topic = self.topics.base(),
            node_id = %self.settings.node_id,
            discovery = self.settings.discovery,
            "MQTT publisher started"
        );
        if let (Some(link), true) = (&self.link, self.settings.discovery) {
            link.set_discovery(
                self.topics.activity_config(),
                json(&self.discovery.activity_sensor()),
            );
            link.set_discovery(
                self.topics.confidence_config(),
                json(&self.discovery.confidence_sensor()),
            );
        }
        self.publish_activity();
        self.poll_sources();
        ctx.run_interval(SOURCE_POLL, |this, _| this.poll_sources());
        let rx = self.board.bus().subscribe();
        ctx.add_stream(futures_util::stream::unfold(rx, |mut rx| async move {
            loop {
                match rx.recv().await {
                    // Several a second per source, and not published.
                    Ok(LiveEvent::Labels { .. }) => continue,
                    Ok(event) => return Some((event, rx)),
                    Err(RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "the MQTT publisher fell behind the live events")
                    }
                    Err(RecvError::Closed) => return None,
                }
            }
        }));
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        // Without a `Shutdown` first (the system stopping): `offline` and DISCONNECT are handed
        // to the connection thread, which may or may not get them out.
        if let Some(mut link) = self.link.take() {
            let _ = link.shutdown();
        }
    }
}

impl StreamHandler<LiveEvent> for MqttPublisher {
    fn handle(&mut self, event: LiveEvent, _: &mut Self::Context) {
        match event {
            LiveEvent::Activity { .. } => self.publish_activity(),
            LiveEvent::SoundEvent(record) => self.publish_sound_event(&record),
            LiveEvent::Labels { .. } => {}
        }
    }

    fn finished(&mut self, _: &mut Self::Context) {
        // The bus lives as long as the status board: nothing to do (and no reason to stop).
    }
}

impl Handler<Shutdown> for MqttPublisher {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: Shutdown, ctx: &mut Self::Context) -> Self::Result {
        let done = self.link.as_mut().and_then(MqttLink::shutdown);
        ctx.stop();
        Box::pin(async move {
            if let Some(done) = done {
                if actix_rt::time::timeout(STOP_WAIT, done).await.is_err() {
                    tracing::warn!("the MQTT connection did not close within 2 s");
                } else {
                    tracing::info!("MQTT disconnected");
                }
            }
        })
    }
}
