//! JSON shapes of the HTTP API. They are separate from the pipeline's internal types so that
//! the API only changes on purpose.

use std::collections::BTreeMap;

use cav_actors::delivery::iso8601;
use cav_actors::health::{ActorStatus, PipelineSnapshot, SourceSnapshot};
use cav_actors::messages::Classification;
use cav_core::classify::Driver;
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct ErrorDto {
    pub error: String,
    pub status: u16,
}

#[derive(Debug, Serialize)]
pub struct HealthDto {
    pub status: &'static str,
    pub version: &'static str,
}

/// `GET /api/current-activity`. Before the first window closes, `activity` is null and
/// `next_window_end` says when the first result is due.
#[derive(Debug, Serialize)]
pub struct CurrentActivityDto {
    pub activity: Option<String>,
    pub confidence: Option<f32>,
    pub scores: Option<BTreeMap<String, f32>>,
    pub window_start: Option<String>,
    pub window_end: Option<String>,
    pub window_start_ms: Option<i64>,
    pub window_end_ms: Option<i64>,
    pub drivers: Vec<Driver>,
    pub classifier: Option<String>,
    pub source: Option<String>,
}

impl CurrentActivityDto {
    pub fn from_classification(c: Option<&Classification>) -> Self {
        match c {
            None => Self {
                activity: None,
                confidence: None,
                scores: None,
                window_start: None,
                window_end: None,
                window_start_ms: None,
                window_end_ms: None,
                drivers: Vec::new(),
                classifier: None,
                source: None,
            },
            Some(c) => Self {
                activity: Some(c.decision.activity.to_string()),
                confidence: Some(c.decision.confidence),
                scores: Some(
                    c.decision
                        .scores
                        .iter()
                        .map(|(k, v)| (k.to_string(), v))
                        .collect(),
                ),
                window_start: Some(iso8601(c.start().millis())),
                window_end: Some(iso8601(c.end().millis())),
                window_start_ms: Some(c.start().millis()),
                window_end_ms: Some(c.end().millis()),
                drivers: c.decision.drivers.clone(),
                classifier: Some(c.classifier.clone()),
                source: Some(c.source.clone()),
            },
        }
    }
}

#[derive(Debug, Serialize)]
pub struct StatusDto {
    pub version: &'static str,
    pub started_at: String,
    pub uptime_s: f64,
    pub window_s: f64,
    pub actors: BTreeMap<String, ActorStatus>,
    pub sources: BTreeMap<String, SourceSnapshot>,
    pub pipeline: PipelineSnapshot,
    pub stored_classifications: u64,
    pub last_classification: Option<CurrentActivityDto>,
    /// Features of the most recent span (about the last second): what the daemon sees and hears
    /// right now.
    pub latest_span: Option<cav_core::features::SpanFeatures>,
    /// The measured A/V offset of the classifier's video/audio pair.
    pub av_sync: Option<cav_actors::health::AvSyncStatus>,
    /// What the vision stage saw on the latest frame it analysed.
    pub vision: Option<VisionDto>,
}

#[derive(Debug, Serialize)]
pub struct PersonDto {
    pub score: f32,
    /// `[x, y, width, height]` in the analysed frame's pixels (a square around the head).
    pub box_xywh: [f32; 4],
    /// Body axis, degrees; 90 = upright.
    pub axis_deg: f32,
    pub posture: String,
}

#[derive(Debug, Serialize)]
pub struct FaceDto {
    pub score: f32,
    pub box_xywh: [f32; 4],
}

/// `/api/status` → `vision`.
#[derive(Debug, Serialize)]
pub struct VisionDto {
    pub source: String,
    /// When the frame was captured; absent for a frame of a media file (`/api/analyze-frame`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    pub width: u32,
    pub height: u32,
    pub persons: Vec<PersonDto>,
    pub faces: Vec<FaceDto>,
    /// Posture of the best person (from the landmarks when they were found).
    pub posture: Option<String>,
    pub hand_near_ear: Option<bool>,
    pub timings_ms: cav_models::vision::VisionTimings,
}

impl From<cav_actors::health::VisionReading> for VisionDto {
    fn from(v: cav_actors::health::VisionReading) -> Self {
        let posture_name = |p: cav_models::vision::Posture| {
            serde_json::to_value(p)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()
        };
        let r = v.result;
        Self {
            source: v.source,
            at: Some(iso8601(v.at.millis())),
            width: v.width,
            height: v.height,
            posture: r
                .landmarks
                .as_ref()
                .map(|l| l.posture)
                .or_else(|| r.posture())
                .map(posture_name),
            persons: r
                .persons
                .iter()
                .map(|p| PersonDto {
                    score: p.score,
                    box_xywh: p.box_xywh,
                    axis_deg: p.axis_deg,
                    posture: posture_name(p.posture),
                })
                .collect(),
            faces: r
                .faces
                .iter()
                .map(|f| FaceDto {
                    score: f.score,
                    box_xywh: f.box_xywh,
                })
                .collect(),
            hand_near_ear: r.hand_near_ear,
            timings_ms: r.timings,
        }
    }
}
