//! The status board: what every actor and source is doing, shared with the HTTP API.
//!
//! Actors write here; `/api/status` reads. It is a plain `Arc` with short-lived locks and atomic
//! counters rather than a message round-trip, so the status endpoint answers even when an actor
//! is wedged — which is exactly when somebody looks at it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use cav_core::Timestamp;
use serde::Serialize;

use crate::events::{EventBus, LabelsReading, LiveEvent};
use crate::messages::Classification;

/// Lifecycle of a supervised actor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorState {
    Starting,
    Running,
    Restarting,
    Stopped,
}

#[derive(Clone, Debug, Serialize)]
pub struct ActorStatus {
    pub state: ActorState,
    pub restarts: u64,
    pub last_error: Option<String>,
    pub since: Timestamp,
}

/// Lifecycle of a source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceState {
    Starting,
    /// Connecting to a peer (OBS, a stream) for the first time.
    Connecting,
    Running,
    /// Connected, but no data has arrived for a while.
    Stalled,
    /// The connection was lost or refused; retrying with backoff.
    Reconnecting,
    /// A file source reached the end of a file it does not loop.
    Ended,
    /// Failed; it will be retried after a backoff.
    Error,
    Stopped,
}

/// Counters of one source. Atomics, because sources count from their own threads.
#[derive(Debug, Default)]
pub struct SourceCounters {
    pub frames: AtomicU64,
    /// Shared with the source's frame queue, which counts its evictions here.
    pub frames_dropped: Arc<AtomicU64>,
    pub audio_chunks: AtomicU64,
    pub audio_samples: AtomicU64,
    /// Shared with the source's audio queue.
    pub audio_chunks_dropped: Arc<AtomicU64>,
    pub decode_errors: AtomicU64,
    pub loops: AtomicU64,
}

#[derive(Clone, Debug, Serialize)]
pub struct SourceStatus {
    pub kind: String,
    pub state: SourceState,
    pub detail: Option<String>,
    pub last_error: Option<String>,
    pub last_frame_at: Option<Timestamp>,
    pub last_audio_at: Option<Timestamp>,
    pub since: Timestamp,
    /// What this source's own analysis path heard over the last second.
    pub level: Option<LevelReading>,
}

/// The level and pitch of one source over one second (absolute, never normalised).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct LevelReading {
    pub at: Timestamp,
    pub dbfs: f32,
    pub rms: f32,
    pub peak: f32,
    pub dominant_hz: Option<f32>,
}

/// The measured audio/video offset of the pair the classifier uses (see `cav_core::avsync`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AvSyncStatus {
    pub video_source: String,
    pub audio_source: String,
    /// Sound onset − flash onset, median, ms; null until flashes and sounds have coincided.
    pub offset_ms: Option<f64>,
    pub drift_ms_per_min: Option<f64>,
    pub pairs: usize,
    /// Video timing resolution (frame interval), ms.
    pub resolution_ms: Option<f64>,
    pub last_pair_at: Option<Timestamp>,
    /// Seconds of picture and sound kept for clips.
    pub buffer_s: f64,
}

/// What the vision stage saw on the latest frame it analysed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VisionReading {
    pub source: String,
    /// Capture time of the frame.
    pub at: Timestamp,
    /// Size of the analysed frame (boxes are in its pixels).
    pub width: u32,
    pub height: u32,
    pub result: cav_models::vision::VisionResult,
}

/// Counters of the stages after the sources.
#[derive(Debug, Default)]
pub struct PipelineCounters {
    pub spans: AtomicU64,
    pub spans_dropped: AtomicU64,
    pub windows: AtomicU64,
    pub stored: AtomicU64,
    pub store_errors: AtomicU64,
    pub delivered: AtomicU64,
    pub delivery_errors: AtomicU64,
    /// Chunks of the classifier's audio source dropped before the sync stage.
    pub sync_audio_dropped: Arc<AtomicU64>,
    pub sound_events: AtomicU64,
    pub webhooks_sent: AtomicU64,
    pub webhook_errors: AtomicU64,
    /// Deliveries refused for good (4xx other than 408/429).
    pub dead_lettered: AtomicU64,
    /// Frames the vision stage analysed, and frames it skipped because it was busy.
    pub vision_frames: AtomicU64,
    pub vision_skipped: AtomicU64,
}

/// A copy of [`PipelineCounters`] at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PipelineSnapshot {
    pub spans: u64,
    pub spans_dropped: u64,
    pub windows: u64,
    pub stored: u64,
    pub store_errors: u64,
    pub delivered: u64,
    pub delivery_errors: u64,
    pub sync_audio_dropped: u64,
    pub sound_events: u64,
    pub webhooks_sent: u64,
    pub webhook_errors: u64,
    pub dead_lettered: u64,
    pub vision_frames: u64,
    pub vision_skipped: u64,
}

impl PipelineCounters {
    pub fn snapshot(&self) -> PipelineSnapshot {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        PipelineSnapshot {
            spans: load(&self.spans),
            spans_dropped: load(&self.spans_dropped),
            windows: load(&self.windows),
            stored: load(&self.stored),
            store_errors: load(&self.store_errors),
            delivered: load(&self.delivered),
            delivery_errors: load(&self.delivery_errors),
            sync_audio_dropped: load(&self.sync_audio_dropped),
            sound_events: load(&self.sound_events),
            webhooks_sent: load(&self.webhooks_sent),
            webhook_errors: load(&self.webhook_errors),
            dead_lettered: load(&self.dead_lettered),
            vision_frames: load(&self.vision_frames),
            vision_skipped: load(&self.vision_skipped),
        }
    }
}

#[derive(Debug)]
struct SourceEntry {
    status: SourceStatus,
    counters: Arc<SourceCounters>,
}

#[derive(Debug, Default)]
struct Inner {
    labels: BTreeMap<String, LabelsReading>,
    actors: BTreeMap<String, ActorStatus>,
    sources: BTreeMap<String, SourceEntry>,
    current: Option<Classification>,
    latest_span: Option<cav_core::features::SpanFeatures>,
    av_sync: Option<AvSyncStatus>,
    vision: Option<VisionReading>,
}

/// Shared, cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct StatusBoard {
    inner: Arc<Mutex<Inner>>,
    counters: Arc<PipelineCounters>,
    metrics: Arc<crate::metrics::Metrics>,
    bus: EventBus,
}

/// A copy of one source's status and counters.
#[derive(Clone, Debug, Serialize)]
pub struct SourceSnapshot {
    #[serde(flatten)]
    pub status: SourceStatus,
    pub frames: u64,
    pub frames_dropped: u64,
    pub audio_chunks: u64,
    pub audio_samples: u64,
    pub audio_chunks_dropped: u64,
    pub decode_errors: u64,
    pub loops: u64,
}

impl StatusBoard {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding this lock cannot leave it half-updated (every update is one
        // assignment), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn counters(&self) -> &PipelineCounters {
        &self.counters
    }

    /// Histograms and labelled counters for `/metrics`.
    pub fn metrics(&self) -> &crate::metrics::Metrics {
        &self.metrics
    }

    /// The live event bus (`/api/events`).
    pub fn bus(&self) -> &EventBus {
        &self.bus
    }

    /// Records what a source hears now and streams it.
    pub fn set_labels(&self, source: &str, reading: LabelsReading) {
        self.lock()
            .labels
            .insert(source.to_string(), reading.clone());
        self.bus.publish(LiveEvent::Labels {
            source: source.to_string(),
            reading,
        });
    }

    /// The latest labels of every source.
    pub fn labels(&self) -> BTreeMap<String, LabelsReading> {
        self.lock().labels.clone()
    }

    pub fn actor_state(&self, name: &str, state: ActorState, now: Timestamp) {
        let mut inner = self.lock();
        let entry = inner
            .actors
            .entry(name.to_string())
            .or_insert_with(|| ActorStatus {
                state,
                restarts: 0,
                last_error: None,
                since: now,
            });
        if entry.state != state {
            entry.since = now;
        }
        entry.state = state;
    }

    pub fn actor_restarted(&self, name: &str, now: Timestamp) {
        let mut inner = self.lock();
        if let Some(entry) = inner.actors.get_mut(name) {
            entry.restarts += 1;
            entry.state = ActorState::Restarting;
            entry.since = now;
        }
    }

    pub fn actor_error(&self, name: &str, error: String) {
        let mut inner = self.lock();
        if let Some(entry) = inner.actors.get_mut(name) {
            entry.last_error = Some(error);
        }
    }

    pub fn actors(&self) -> BTreeMap<String, ActorStatus> {
        self.lock().actors.clone()
    }

    /// Registers a source (or returns the counters of one already registered).
    pub fn register_source(&self, id: &str, kind: &str, now: Timestamp) -> Arc<SourceCounters> {
        let mut inner = self.lock();
        let entry = inner
            .sources
            .entry(id.to_string())
            .or_insert_with(|| SourceEntry {
                status: SourceStatus {
                    kind: kind.to_string(),
                    state: SourceState::Starting,
                    detail: None,
                    last_error: None,
                    last_frame_at: None,
                    last_audio_at: None,
                    since: now,
                    level: None,
                },
                counters: Arc::default(),
            });
        entry.counters.clone()
    }

    pub fn source_state(
        &self,
        id: &str,
        state: SourceState,
        detail: Option<String>,
        now: Timestamp,
    ) {
        let mut inner = self.lock();
        if let Some(entry) = inner.sources.get_mut(id) {
            if entry.status.state != state {
                entry.status.since = now;
            }
            entry.status.state = state;
            if detail.is_some() {
                entry.status.detail = detail;
            }
        }
    }

    pub fn source_error(&self, id: &str, error: String, now: Timestamp) {
        let mut inner = self.lock();
        if let Some(entry) = inner.sources.get_mut(id) {
            if entry.status.state != SourceState::Error {
                entry.status.since = now;
            }
            entry.status.state = SourceState::Error;
            entry.status.last_error = Some(error);
        }
    }

    /// Records why a source is not delivering, without changing its state (e.g. while it
    /// reconnects).
    pub fn source_last_error(&self, id: &str, error: String) {
        if let Some(entry) = self.lock().sources.get_mut(id) {
            entry.status.last_error = Some(error);
        }
    }

    pub fn source_frame_at(&self, id: &str, t: Timestamp) {
        if let Some(entry) = self.lock().sources.get_mut(id) {
            entry.status.last_frame_at = Some(t);
        }
    }

    pub fn source_audio_at(&self, id: &str, t: Timestamp) {
        if let Some(entry) = self.lock().sources.get_mut(id) {
            entry.status.last_audio_at = Some(t);
        }
    }

    pub fn source_level(&self, id: &str, level: LevelReading) {
        if let Some(entry) = self.lock().sources.get_mut(id) {
            entry.status.level = Some(level);
        }
    }

    /// Forgets a source that was removed from the configuration.
    pub fn remove_source(&self, id: &str) {
        let mut inner = self.lock();
        inner.sources.remove(id);
        inner.labels.remove(id);
    }

    pub fn sources(&self) -> BTreeMap<String, SourceSnapshot> {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        self.lock()
            .sources
            .iter()
            .map(|(id, e)| {
                let c = &e.counters;
                (
                    id.clone(),
                    SourceSnapshot {
                        status: e.status.clone(),
                        frames: load(&c.frames),
                        frames_dropped: load(&c.frames_dropped),
                        audio_chunks: load(&c.audio_chunks),
                        audio_samples: load(&c.audio_samples),
                        audio_chunks_dropped: load(&c.audio_chunks_dropped),
                        decode_errors: load(&c.decode_errors),
                        loops: load(&c.loops),
                    },
                )
            })
            .collect()
    }

    pub fn set_vision(&self, v: VisionReading) {
        self.lock().vision = Some(v);
    }

    pub fn vision(&self) -> Option<VisionReading> {
        self.lock().vision.clone()
    }

    pub fn set_av_sync(&self, s: AvSyncStatus) {
        self.lock().av_sync = Some(s);
    }

    pub fn av_sync(&self) -> Option<AvSyncStatus> {
        self.lock().av_sync.clone()
    }

    pub fn set_current(&self, c: Classification) {
        self.lock().current = Some(c);
    }

    pub fn current(&self) -> Option<Classification> {
        self.lock().current.clone()
    }

    pub fn set_latest_span(&self, f: cav_core::features::SpanFeatures) {
        self.lock().latest_span = Some(f);
    }

    pub fn latest_span(&self) -> Option<cav_core::features::SpanFeatures> {
        self.lock().latest_span.clone()
    }
}
