//! The source manager: runs the configured audio sources (microphones, VBAN streams, RTSP
//! streams), each with its own queue and analysis path, and changes them at run time.
//!
//! It is declarative: [`ApplySources`] hands it the whole wanted list, and it starts what is
//! new, stops what is gone or disabled, and restarts what changed (compared by the spec's
//! `fingerprint`). Sources are stopped by dropping every address of their actors (a supervisor
//! does not restart an actor nobody can reach), after telling them to stop.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use actix::prelude::*;
use cav_core::{Clock, MonotonicClock};

use crate::actor::audio_path::{AudioPath, HearingKit, SetPrimary, StopPath};
use crate::actor::file_source::StopSource;
use crate::actor::mic_source::{MicSettings, MicSource, StopMic};
use crate::actor::rtsp_source::{RtspSettings, RtspSource, StopRtsp};
use crate::actor::vban_source::{VbanOutput, VbanReceiver, VbanSettings, VbanStreamSettings};
use crate::health::{ActorState, SourceState, StatusBoard};
use crate::messages::AudioChunk;
use crate::queue::{drop_oldest, DropOldest};

/// What kind of source, with its own settings.
#[derive(Clone, Debug, PartialEq)]
pub enum AudioSourceKind {
    Microphone(MicSettings),
    Rtsp(RtspSettings),
    /// A VBAN stream received by the shared VBAN receiver.
    Vban {
        stream: String,
        sender: Option<std::net::IpAddr>,
    },
}

impl AudioSourceKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Microphone(_) => "microphone",
            Self::Rtsp(_) => "rtsp",
            Self::Vban { .. } => "vban",
        }
    }
}

/// One wanted audio source.
#[derive(Clone, Debug, PartialEq)]
pub struct AudioSourceSpec {
    pub id: String,
    pub enabled: bool,
    pub kind: AudioSourceKind,
    /// Where this source's sound events are POSTed.
    pub webhook: Option<String>,
    /// This source's own event rules, when it overrides the global ones.
    pub hearing: Option<cav_models::hearing::HearingConfig>,
}

/// Makes the running sources match `sources`; `primary` is the id of the source the activity
/// classifier hears (it may also be a built-in source such as `file`).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct ApplySources {
    pub sources: Vec<AudioSourceSpec>,
    pub primary: Option<String>,
}

/// The microphone actor of a microphone source (the first microphone when `id` is `None`).
#[derive(Debug, Message)]
#[rtype(result = "Option<(String, Addr<MicSource>)>")]
pub struct GetMic {
    pub id: Option<String>,
}

/// Paths of sources the manager does not own but whose "primary" flag it sets (the file
/// source's audio).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct AdoptPath {
    pub id: String,
    pub path: Addr<AudioPath>,
}

enum Handle {
    Mic(Addr<MicSource>),
    Rtsp(Addr<RtspSource>),
    /// Received by the shared VBAN receiver.
    Vban,
}

struct Running {
    spec: AudioSourceSpec,
    handle: Handle,
    path: Addr<AudioPath>,
}

pub struct SourceManager {
    board: StatusBoard,
    clock: Arc<MonotonicClock>,
    queue_chunks: usize,
    /// The sync stage's audio queue.
    sync_audio: DropOldest<AudioChunk>,
    /// Where analysis paths run (off the HTTP thread).
    hearing: ArbiterHandle,
    /// YAMNet and the event rules, when hearing is enabled.
    kit: Option<HearingKit>,
    running: BTreeMap<String, Running>,
    adopted: BTreeMap<String, Addr<AudioPath>>,
    /// Ids of configured but disabled sources (shown as stopped).
    disabled: Vec<String>,
    /// Where the VBAN receiver listens.
    vban_bind: std::net::SocketAddr,
    /// The one VBAN receiver, while any VBAN source is enabled.
    vban: Option<Addr<VbanReceiver>>,
    primary: Option<String>,
}

impl SourceManager {
    pub const NAME: &'static str = "source_manager";

    pub fn new(
        board: StatusBoard,
        clock: Arc<MonotonicClock>,
        queue_chunks: usize,
        sync_audio: DropOldest<AudioChunk>,
        hearing: ArbiterHandle,
        kit: Option<HearingKit>,
        vban_bind: std::net::SocketAddr,
    ) -> Self {
        Self {
            kit,
            vban_bind,
            vban: None,
            board,
            clock,
            queue_chunks,
            sync_audio,
            hearing,
            running: BTreeMap::new(),
            adopted: BTreeMap::new(),
            disabled: Vec::new(),
            primary: None,
        }
    }

    fn primary_queue(&self, id: &str) -> Option<DropOldest<AudioChunk>> {
        (self.primary.as_deref() == Some(id)).then(|| self.sync_audio.clone())
    }

    /// Starts a source's path; returns the queue its source fills.
    fn start(&mut self, spec: AudioSourceSpec) -> Option<VbanOutput> {
        let id = spec.id.clone();
        let counters = self
            .board
            .register_source(&id, spec.kind.as_str(), self.clock.now());
        let (tx, rx) = drop_oldest(self.queue_chunks, counters.audio_chunks_dropped.clone());
        let path = {
            let (board, clock, id, primary, kit, webhook) = (
                self.board.clone(),
                self.clock.clone(),
                id.clone(),
                self.primary_queue(&spec.id),
                self.kit.clone().map(|mut kit| {
                    if let Some(own) = &spec.hearing {
                        kit.config = own.clone();
                    }
                    kit
                }),
                spec.webhook.clone(),
            );
            Supervisor::start_in_arbiter(&self.hearing, move |_| {
                AudioPath::new(id, board, clock, rx, primary, kit, webhook)
            })
        };
        let (board, clock) = (self.board.clone(), self.clock.clone());
        let handle = match spec.kind.clone() {
            AudioSourceKind::Microphone(settings) => {
                let id = id.clone();
                Handle::Mic(Supervisor::start(move |_| {
                    MicSource::new(settings, id, board, clock, tx, counters)
                }))
            }
            AudioSourceKind::Rtsp(settings) => {
                let id = id.clone();
                Handle::Rtsp(Supervisor::start(move |_| {
                    RtspSource::new(settings, id, board, clock, tx, counters)
                }))
            }
            AudioSourceKind::Vban { .. } => {
                tracing::info!(source = %id, "VBAN stream source started");
                self.running.insert(
                    id,
                    Running {
                        spec,
                        handle: Handle::Vban,
                        path,
                    },
                );
                return Some(VbanOutput {
                    audio: tx,
                    counters,
                });
            }
        };
        tracing::info!(source = %id, kind = spec.kind.as_str(), "audio source started");
        self.running.insert(id, Running { spec, handle, path });
        None
    }

    /// (Re)starts the VBAN receiver for the enabled VBAN sources (or stops it when there are
    /// none). The receiver owns one socket for all streams, so any change of the VBAN set
    /// restarts it; the streams' paths and queues are new too.
    fn restart_vban(&mut self, specs: &[AudioSourceSpec]) {
        if let Some(old) = self.vban.take() {
            old.do_send(StopSource);
        }
        let vban_ids: Vec<String> = self
            .running
            .iter()
            .filter(|(_, r)| matches!(r.handle, Handle::Vban))
            .map(|(id, _)| id.clone())
            .collect();
        for id in &vban_ids {
            self.stop(id);
        }
        let wanted: Vec<AudioSourceSpec> = specs
            .iter()
            .filter(|s| s.enabled && matches!(s.kind, AudioSourceKind::Vban { .. }))
            .cloned()
            .collect();
        if wanted.is_empty() {
            return;
        }
        let mut outputs = HashMap::new();
        let mut streams = Vec::new();
        for spec in wanted {
            if let AudioSourceKind::Vban { stream, sender } = &spec.kind {
                streams.push(VbanStreamSettings {
                    id: spec.id.clone(),
                    name: stream.clone(),
                    sender: *sender,
                    enabled: true,
                });
            }
            let id = spec.id.clone();
            if let Some(out) = self.start(spec) {
                outputs.insert(id, out);
            }
        }
        let settings = VbanSettings {
            bind: self.vban_bind,
            streams,
        };
        let (board, clock) = (self.board.clone(), self.clock.clone());
        self.vban = Some(Supervisor::start(move |_| {
            VbanReceiver::new(settings, board, clock, outputs)
        }));
    }

    fn stop(&mut self, id: &str) {
        if let Some(r) = self.running.remove(id) {
            match &r.handle {
                Handle::Mic(a) => a.do_send(StopMic),
                Handle::Rtsp(a) => a.do_send(StopRtsp),
                // The receiver is stopped as a whole by `restart_vban`.
                Handle::Vban => {}
            }
            r.path.do_send(StopPath);
            tracing::info!(source = %id, "audio source stopped");
            // Dropping `r` drops the last addresses: the supervisors let the actors end.
        }
    }

    fn show_disabled(&mut self, specs: &[AudioSourceSpec]) {
        for spec in specs.iter().filter(|s| !s.enabled) {
            self.board
                .register_source(&spec.id, spec.kind.as_str(), self.clock.now());
            self.board.source_state(
                &spec.id,
                SourceState::Stopped,
                Some("disabled".into()),
                self.clock.now(),
            );
        }
    }
}

impl Actor for SourceManager {
    type Context = Context<Self>;

    fn started(&mut self, _: &mut Self::Context) {
        self.board
            .actor_state(Self::NAME, ActorState::Running, self.clock.now());
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        if let Some(vban) = self.vban.take() {
            vban.do_send(StopSource);
        }
        let ids: Vec<String> = self.running.keys().cloned().collect();
        for id in ids {
            self.stop(&id);
        }
        self.board
            .actor_state(Self::NAME, ActorState::Stopped, self.clock.now());
    }
}

impl Handler<ApplySources> for SourceManager {
    type Result = ();
    fn handle(&mut self, msg: ApplySources, _: &mut Self::Context) {
        let primary_changed = self.primary != msg.primary;
        self.primary = msg.primary;
        let wanted: BTreeMap<&str, &AudioSourceSpec> = msg
            .sources
            .iter()
            .filter(|s| s.enabled)
            .map(|s| (s.id.as_str(), s))
            .collect();
        // VBAN streams share one receiver: restart it when their set changed.
        let is_vban = |s: &AudioSourceSpec| matches!(s.kind, AudioSourceKind::Vban { .. });
        let vban_now: Vec<AudioSourceSpec> = self
            .running
            .values()
            .map(|r| r.spec.clone())
            .filter(is_vban)
            .collect();
        let vban_wanted: Vec<AudioSourceSpec> = wanted
            .values()
            .map(|s| (*s).clone())
            .filter(is_vban)
            .collect();
        let vban_changed = vban_now != vban_wanted;
        // Stop what is gone, disabled or changed (VBAN streams are handled below).
        let stale: Vec<String> = self
            .running
            .iter()
            .filter(|(_, r)| !matches!(r.handle, Handle::Vban))
            .filter(|(id, r)| wanted.get(id.as_str()) != Some(&&r.spec))
            .map(|(id, _)| id.clone())
            .collect();
        for id in &stale {
            self.stop(id);
        }
        // Forget sources that are no longer configured at all.
        let configured: Vec<&str> = msg.sources.iter().map(|s| s.id.as_str()).collect();
        for id in std::mem::take(&mut self.disabled) {
            if !configured.contains(&id.as_str()) {
                self.board.remove_source(&id);
            }
        }
        for id in &stale {
            if !configured.contains(&id.as_str()) {
                self.board.remove_source(id);
            }
        }
        let gone_vban: Vec<String> = vban_now
            .iter()
            .filter(|s| !configured.contains(&s.id.as_str()))
            .map(|s| s.id.clone())
            .collect();
        for spec in wanted.values() {
            if !is_vban(spec) && !self.running.contains_key(&spec.id) {
                self.start((*spec).clone());
            }
        }
        if vban_changed {
            let all = msg.sources.clone();
            self.restart_vban(&all);
            for id in gone_vban {
                self.board.remove_source(&id);
            }
        }
        self.disabled = msg
            .sources
            .iter()
            .filter(|s| !s.enabled)
            .map(|s| s.id.clone())
            .collect();
        self.show_disabled(&msg.sources);
        if primary_changed {
            for (id, r) in &self.running {
                r.path.do_send(SetPrimary(self.primary_queue(id)));
            }
            for (id, path) in &self.adopted {
                path.do_send(SetPrimary(self.primary_queue(id)));
            }
        }
    }
}

impl Handler<AdoptPath> for SourceManager {
    type Result = ();
    fn handle(&mut self, msg: AdoptPath, _: &mut Self::Context) {
        self.adopted.insert(msg.id, msg.path);
    }
}

impl Handler<GetMic> for SourceManager {
    type Result = Option<(String, Addr<MicSource>)>;
    fn handle(&mut self, msg: GetMic, _: &mut Self::Context) -> Self::Result {
        self.running.iter().find_map(|(id, r)| match &r.handle {
            Handle::Mic(a) if msg.id.as_deref().is_none_or(|want| want == id) => {
                Some((id.clone(), a.clone()))
            }
            _ => None,
        })
    }
}
