//! The sync stage: drains the sources' queues and cuts frames and audio into aligned spans.
//!
//! The alignment itself is [`cav_core::align::Aligner`]; this actor only moves data. It polls
//! its queues every 20 ms (cheap, and it bounds the added latency), and hands spans to the
//! feature stage with `try_send`: if that stage's mailbox is full, the span is dropped and
//! counted rather than queued without bound.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use cav_core::align::{Aligner, Expect};
use cav_core::{Clock, Frame, MonotonicClock};

use crate::health::{ActorState, StatusBoard};
use crate::messages::{AudioChunk, ExpectStreams, SyncedSpan, VideoFrame};
use crate::queue::Drain;
use crate::supervise::guarded;

#[derive(Clone, Copy, Debug)]
pub struct SyncSettings {
    pub span: Duration,
    pub max_wait: Duration,
}

/// How often the queues are drained.
const TICK: Duration = Duration::from_millis(20);

pub struct SyncActor {
    settings: SyncSettings,
    pub(crate) board: StatusBoard,
    clock: Arc<MonotonicClock>,
    video_in: Drain<VideoFrame>,
    audio_in: Drain<AudioChunk>,
    aligner: Aligner<Frame>,
    features: Recipient<SyncedSpan>,
}

impl SyncActor {
    pub const NAME: &'static str = "sync";

    pub fn new(
        settings: SyncSettings,
        board: StatusBoard,
        clock: Arc<MonotonicClock>,
        video_in: Drain<VideoFrame>,
        audio_in: Drain<AudioChunk>,
        features: Recipient<SyncedSpan>,
    ) -> Self {
        Self {
            aligner: Self::fresh_aligner(
                &settings,
                Expect {
                    video: true,
                    audio: true,
                },
            ),
            settings,
            board,
            clock,
            video_in,
            audio_in,
            features,
        }
    }

    fn fresh_aligner(settings: &SyncSettings, expect: Expect) -> Aligner<Frame> {
        Aligner::new(settings.span, settings.max_wait, expect)
    }

    fn tick(&mut self) {
        for f in self.video_in.drain() {
            self.aligner.push_frame(f.captured, f.frame);
        }
        for c in self.audio_in.drain() {
            self.aligner.push_audio(c.captured, &c.samples);
        }
        for span in self.aligner.poll(self.clock.now()) {
            if self.features.try_send(SyncedSpan(span)).is_err() {
                self.board
                    .counters()
                    .spans_dropped
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

impl Actor for SyncActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.board
            .actor_state(Self::NAME, ActorState::Running, self.clock.now());
        ctx.run_interval(TICK, |this, ctx| {
            let board = this.board.clone();
            guarded(this, ctx, Self::NAME, &board, |this, _| this.tick());
        });
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        self.board
            .actor_state(Self::NAME, ActorState::Stopped, self.clock.now());
    }
}

impl Supervised for SyncActor {
    fn restarting(&mut self, _: &mut Self::Context) {
        self.board.actor_restarted(Self::NAME, self.clock.now());
        // Whatever was half-aligned may be inconsistent after a crash: start clean.
        self.aligner = Self::fresh_aligner(&self.settings, self.aligner.expect());
    }
}

impl Handler<ExpectStreams> for SyncActor {
    type Result = ();
    fn handle(&mut self, msg: ExpectStreams, _: &mut Self::Context) {
        let now = self.aligner.expect();
        self.aligner.set_expect(Expect {
            video: msg.video.unwrap_or(now.video),
            audio: msg.audio.unwrap_or(now.audio),
        });
    }
}

crate::impl_inject_panic!(SyncActor);

crate::impl_alive!(SyncActor);
