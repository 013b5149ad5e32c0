//! The typed messages that flow through the pipeline (sources → sync → features → classifier →
//! store and dispatch). Control messages that belong to one actor live beside that actor.
//!
//! These are internal types: the JSON that leaves the daemon (HTTP API, external service,
//! store records) has its own DTO types, so the wire formats do not change when these do.

use std::sync::Arc;

use actix::Message;
use cav_core::align::AlignedSpan;
use cav_core::classify::Decision;
use cav_core::features::SpanFeatures;
use cav_core::window::WindowSummary;
use cav_core::{Frame, Timestamp};
use serde::Serialize;

/// Names a source, e.g. `file`.
pub type SourceId = Arc<str>;

/// One picture from a video source, stamped with its capture time.
#[derive(Clone, Debug)]
pub struct VideoFrame {
    pub source: SourceId,
    /// Counts frames of this source from 0; gaps mean frames were dropped before sync.
    pub seq: u64,
    pub captured: Timestamp,
    pub frame: Frame,
}

/// Audio from a source: mono `f32` at 16 kHz, stamped with the capture time of its first sample.
#[derive(Clone, Debug)]
pub struct AudioChunk {
    pub source: SourceId,
    pub captured: Timestamp,
    pub samples: Vec<f32>,
}

/// Tells the sync stage which streams to wait for. `None` leaves that stream's expectation as
/// it is (a source speaks only for the streams it provides).
#[derive(Clone, Copy, Debug, Message)]
#[rtype(result = "()")]
pub struct ExpectStreams {
    pub video: Option<bool>,
    pub audio: Option<bool>,
}

/// Frames and audio of the same time span.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct SyncedSpan(pub AlignedSpan<Frame>);

/// Features of one span.
#[derive(Clone, Debug, Message)]
#[rtype(result = "()")]
pub struct SpanFeaturesMsg(pub SpanFeatures);

/// The verdict on one classification window.
#[derive(Clone, Debug, Serialize, Message)]
#[rtype(result = "()")]
pub struct Classification {
    pub window: WindowSummary,
    pub decision: Decision,
    /// Which classifier decided, e.g. `rules-v1`.
    pub classifier: String,
    /// Where the data came from, e.g. `file`.
    pub source: String,
}

impl Classification {
    pub fn start(&self) -> Timestamp {
        self.window.start
    }

    pub fn end(&self) -> Timestamp {
        self.window.end
    }
}
