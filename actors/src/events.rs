//! The live event bus: what `/api/events` streams to browsers and scripts as it happens —
//! each classification, each source's current sound labels, each sound event.
//!
//! A `tokio::sync::broadcast` channel: publishers never block, a subscriber that falls behind
//! loses the oldest events (and is told how many), and with no subscriber nothing is kept.
//! [`LiveEvent`] is a wire type: its JSON is the `/api/events` format.

use serde::Serialize;
use tokio::sync::broadcast;

/// Events kept for a slow subscriber before it starts losing the oldest.
const CAPACITY: usize = 1024;

/// One sound label with its score.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LabelScore {
    pub label: String,
    pub score: f32,
}

/// What a source hears right now.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LabelsReading {
    /// Unix milliseconds of the end of the analysed window.
    pub t_ms: i64,
    pub level_dbfs: f32,
    /// True when the window was below the level gate and was not classified.
    pub gated: bool,
    pub top: Vec<LabelScore>,
}

/// A sound event as stored, streamed and POSTed.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct SoundEventRecord {
    pub source: String,
    /// `clap`, `applause`, `speech`, `phone_ring`, `snoring`, `dishes`, `typing`.
    pub kind: String,
    /// Unix milliseconds of the onset.
    pub onset_ms: i64,
    /// Unix milliseconds of the end, for events with a duration (applause).
    pub end_ms: Option<i64>,
    pub score: f32,
}

#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LiveEvent {
    /// A classification window closed.
    Activity {
        activity: String,
        confidence: f32,
        window_start_ms: i64,
        window_end_ms: i64,
    },
    /// A source's current top sound labels (several times a second per source).
    Labels {
        source: String,
        #[serde(flatten)]
        reading: LabelsReading,
    },
    SoundEvent(SoundEventRecord),
}

impl LiveEvent {
    /// The SSE event name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Activity { .. } => "activity",
            Self::Labels { .. } => "labels",
            Self::SoundEvent(_) => "sound_event",
        }
    }
}

/// Cheap to clone; every clone publishes to the same subscribers.
#[derive(Clone, Debug)]
pub struct EventBus {
    tx: broadcast::Sender<LiveEvent>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBus {
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(CAPACITY);
        Self { tx }
    }

    /// Never blocks; an event nobody listens to is dropped.
    pub fn publish(&self, event: LiveEvent) {
        let _ = self.tx.send(event);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<LiveEvent> {
        self.tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialize_with_their_type() {
        let e = LiveEvent::SoundEvent(SoundEventRecord {
            source: "mic".into(),
            kind: "clap".into(),
            onset_ms: 1_700_000_000_123,
            end_ms: None,
            score: 0.9,
        });
        let j = serde_json::to_value(&e).unwrap();
        assert_eq!(j["type"], "sound_event");
        assert_eq!(j["kind"], "clap");
        assert_eq!(e.name(), "sound_event");
        let l = LiveEvent::Labels {
            source: "mic".into(),
            reading: LabelsReading {
                t_ms: 5,
                level_dbfs: -20.0,
                gated: false,
                top: vec![LabelScore {
                    label: "Speech".into(),
                    score: 0.8,
                }],
            },
        };
        let j = serde_json::to_value(&l).unwrap();
        assert_eq!(
            (j["type"].as_str(), j["top"][0]["label"].as_str()),
            (Some("labels"), Some("Speech"))
        );
    }

    #[test]
    fn a_slow_subscriber_loses_the_oldest_but_publishers_never_block() {
        let bus = EventBus::new();
        let mut rx = bus.subscribe();
        for i in 0..(CAPACITY as i64 + 10) {
            bus.publish(LiveEvent::Activity {
                activity: "reading".into(),
                confidence: 0.5,
                window_start_ms: i,
                window_end_ms: i + 1,
            });
        }
        assert!(matches!(
            rx.try_recv(),
            Err(broadcast::error::TryRecvError::Lagged(10))
        ));
        match rx.try_recv().unwrap() {
            LiveEvent::Activity {
                window_start_ms, ..
            } => assert_eq!(window_start_ms, 10),
            other => panic!("{other:?}"),
        }
    }
}
