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
use cav_core::audio_features::AudioAnalyzer;
use cav_core::{Clock, MonotonicClock, Timestamp, SAMPLE_RATE};

use crate::health::{ActorState, LevelReading, StatusBoard};
use crate::messages::AudioChunk;
use crate::queue::{Drain, DropOldest};
use crate::supervise::guarded;

/// How often the queue is drained.
const TICK: Duration = Duration::from_millis(50);

/// Makes this path feed (or stop feeding) the activity classifier.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct SetPrimary(pub Option<DropOldest<AudioChunk>>);

/// Stops the path (its source was removed or disabled).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct StopPath;

pub struct AudioPath {
    id: String,
    pub(crate) board: StatusBoard,
    clock: Arc<MonotonicClock>,
    input: Drain<AudioChunk>,
    /// The sync stage's audio queue, when this source is the one the classifier hears.
    primary: Option<DropOldest<AudioChunk>>,
    analyzer: AudioAnalyzer,
    /// Samples of the second being measured, and the capture time of the first.
    second: Vec<f32>,
    second_start: Option<Timestamp>,
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
    ) -> Self {
        Self {
            id,
            board,
            clock,
            input,
            primary,
            analyzer: AudioAnalyzer::new(SAMPLE_RATE),
            second: Vec::with_capacity(SAMPLE_RATE as usize),
            second_start: None,
        }
    }

    fn tick(&mut self) {
        for chunk in self.input.drain() {
            self.measure(&chunk);
            if let Some(primary) = &self.primary {
                primary.push(chunk);
            }
        }
    }

    fn measure(&mut self, chunk: &AudioChunk) {
        let mut t = chunk.captured;
        let mut rest = &chunk.samples[..];
        while !rest.is_empty() {
            let start = *self.second_start.get_or_insert(t);
            let room = SAMPLE_RATE as usize - self.second.len();
            let take = room.min(rest.len());
            self.second.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            t = t + Duration::from_micros(take as u64 * 1_000_000 / SAMPLE_RATE as u64);
            if self.second.len() == SAMPLE_RATE as usize {
                let f = self.analyzer.analyze(&self.second);
                self.board.source_level(
                    &self.id,
                    LevelReading {
                        at: start,
                        dbfs: f.dbfs,
                        rms: f.rms,
                        peak: f.peak,
                        dominant_hz: f.dominant_hz,
                    },
                );
                self.second.clear();
                self.second_start = None;
            }
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
        self.second.clear();
        self.second_start = None;
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
