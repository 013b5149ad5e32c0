//! One audio source's own analysis path.
//!
//! Every audio source (file, microphone, VBAN stream, RTSP stream) fills its own bounded queue;
//! its `AudioPath` drains it, measures what the source hears (level and pitch, once a second,
//! shown per source in `/api/status` and `/api/sources`), and — for the one source the activity
//! classifier listens to — passes the chunks on to the sync stage. Sources never share a queue,
//! so a flood on one cannot starve another.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use cav_core::level::LevelMeter;
use cav_core::{Clock, MonotonicClock};

use crate::actor::store_writer::StoreSoundEvent;
use crate::events::{LabelScore, LabelsReading, LiveEvent, SoundEventRecord};
use crate::health::{ActorState, LevelReading, StatusBoard};
use crate::messages::AudioChunk;
use crate::queue::{Drain, DropOldest};
use crate::supervise::guarded;

/// How often the queue is drained: short, because a clap's webhook waits on it.
const TICK: Duration = Duration::from_millis(20);

/// Makes this path feed (or stop feeding) the activity classifier.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct SetPrimary(pub Option<DropOldest<AudioChunk>>);

/// Stops the path (its source was removed or disabled).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct StopPath;

/// What a path needs to hear: the model and rules, and where events go.
#[derive(Clone)]
pub struct HearingKit {
    pub yamnet: Arc<cav_models::Yamnet>,
    pub config: cav_models::hearing::HearingConfig,
    pub store: Recipient<StoreSoundEvent>,
    /// The activity classifier, which reads the class groups of the primary source's windows.
    pub classifier: Option<Recipient<crate::actor::classifier::Observe>>,
}

impl std::fmt::Debug for HearingKit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HearingKit").finish_non_exhaustive()
    }
}

pub struct AudioPath {
    id: String,
    kit: Option<HearingKit>,
    hearing: Option<cav_models::hearing::Hearing>,
    /// Where this source's sound events are POSTed.
    webhook: Option<String>,
    pub(crate) board: StatusBoard,
    clock: Arc<MonotonicClock>,
    input: Drain<AudioChunk>,
    /// The sync stage's audio queue, when this source is the one the classifier hears.
    primary: Option<DropOldest<AudioChunk>>,
    /// The source's level, second by second.
    level: LevelMeter,
}

impl AudioPath {
    pub fn name(id: &str) -> String {
        format!("audio_path:{id}")
    }

    pub fn new(
        id: String,
        board: StatusBoard,
        clock: Arc<MonotonicClock>,
        input: Drain<AudioChunk>,
        primary: Option<DropOldest<AudioChunk>>,
        kit: Option<HearingKit>,
        webhook: Option<String>,
    ) -> Self {
        let hearing = kit
            .as_ref()
            .map(|k| cav_models::hearing::Hearing::new(k.yamnet.clone(), k.config.clone()));
        Self {
            id,
            kit,
            hearing,
            webhook,
            board,
            clock,
            input,
            primary,
            level: LevelMeter::new(),
        }
    }

    fn tick(&mut self) {
        for chunk in self.input.drain() {
            self.measure(&chunk);
            self.hear(&chunk);
            if let Some(primary) = &self.primary {
                primary.push(chunk);
            }
        }
    }

    /// Runs YAMNet and the event rules on the chunk; publishes labels and events.
    fn hear(&mut self, chunk: &AudioChunk) {
        use cav_models::hearing::HearingOutput;
        let Some(hearing) = self.hearing.as_mut() else {
            return;
        };
        // The hearing engine works in seconds; the pipeline clock is Unix time.
        let outputs = hearing.push(chunk.captured.secs_f64(), &chunk.samples);
        let times = hearing.take_inference_times();
        if !times.is_empty() {
            let histogram = self.board.metrics().yamnet(&self.id);
            for t in times {
                histogram.observe(t);
            }
        }
        for out in outputs {
            match out {
                HearingOutput::Labels {
                    t,
                    level_dbfs,
                    gated,
                    top,
                    scene,
                } => {
                    // Only the source the classifier hears describes the classified scene.
                    if let (Some(_), Some(to)) = (
                        &self.primary,
                        self.kit.as_ref().and_then(|k| k.classifier.as_ref()),
                    ) {
                        to.do_send(crate::actor::classifier::Observe::Sound(
                            cav_core::observe::SoundObservation {
                                t: cav_core::Timestamp::from_secs_f64(t),
                                level_dbfs,
                                scene,
                            },
                        ));
                    }
                    self.board.set_labels(
                        &self.id,
                        LabelsReading {
                            t_ms: (t * 1000.0).round() as i64,
                            level_dbfs,
                            gated,
                            top: top
                                .into_iter()
                                .map(|l| LabelScore {
                                    label: l.name,
                                    score: l.score,
                                })
                                .collect(),
                        },
                    );
                }
                HearingOutput::Event(e) => {
                    let record = SoundEventRecord {
                        source: self.id.clone(),
                        kind: e.kind.as_str().to_string(),
                        onset_ms: (e.onset * 1000.0).round() as i64,
                        end_ms: e.end.map(|end| (end * 1000.0).round() as i64),
                        score: e.score,
                    };
                    tracing::info!(source = %self.id, kind = %record.kind, onset_ms = record.onset_ms, score = record.score, "sound event");
                    self.board
                        .counters()
                        .sound_events
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    self.board
                        .metrics()
                        .sound_events
                        .inc(&[&self.id, &record.kind]);
                    self.board
                        .bus()
                        .publish(LiveEvent::SoundEvent(record.clone()));
                    if let Some(kit) = &self.kit {
                        kit.store.do_send(StoreSoundEvent {
                            event: record,
                            webhook: self.webhook.clone(),
                        });
                    }
                }
            }
        }
    }

    fn measure(&mut self, chunk: &AudioChunk) {
        for (at, f) in self.level.push(chunk.captured, &chunk.samples) {
            self.board.source_level(
                &self.id,
                LevelReading {
                    at,
                    dbfs: f.dbfs,
                    rms: f.rms,
                    peak: f.peak,
                    dominant_hz: f.dominant_hz,
                },
            );
        }
    }
}

impl Actor for AudioPath {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.board
            .actor_state(&Self::name(&self.id), ActorState::Running, self.clock.now());
        ctx.run_interval(TICK, |this, ctx| {
            let (board, name) = (this.board.clone(), Self::name(&this.id));
            guarded(this, ctx, &name, &board, |this, _| this.tick());
        });
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        self.board
            .actor_state(&Self::name(&self.id), ActorState::Stopped, self.clock.now());
    }
}

impl Supervised for AudioPath {
    fn restarting(&mut self, _: &mut Self::Context) {
        self.board
            .actor_restarted(&Self::name(&self.id), self.clock.now());
        self.level.reset();
        self.hearing = self
            .kit
            .as_ref()
            .map(|k| cav_models::hearing::Hearing::new(k.yamnet.clone(), k.config.clone()));
    }
}

impl Handler<SetPrimary> for AudioPath {
    type Result = ();
    fn handle(&mut self, msg: SetPrimary, _: &mut Self::Context) {
        self.primary = msg.0;
    }
}

impl Handler<StopPath> for AudioPath {
    type Result = ();
    fn handle(&mut self, _: StopPath, ctx: &mut Self::Context) {
        // The supervisor restarts a stopped actor only while someone still holds its address;
        // whoever sends this drops its address too, so the path ends for good.
        ctx.stop();
    }
}

crate::impl_alive!(AudioPath);
