//! The feature stage: turns each aligned span into numbers (motion, light, skin, level,
//! spectrum), using [`cav_core::features::SpanFeatureExtractor`].

use std::sync::atomic::Ordering;
use std::sync::Arc;

use actix::prelude::*;
use cav_core::features::SpanFeatureExtractor;
use cav_core::{Clock, MonotonicClock};

use crate::health::{ActorState, StatusBoard};
use crate::messages::{SpanFeaturesMsg, SyncedSpan};
use crate::supervise::{guarded, Ping};

/// Spans waiting in this actor's mailbox before the sync stage starts dropping them.
pub const MAILBOX: usize = 16;

pub struct FeatureActor {
    pub(crate) board: StatusBoard,
    clock: Arc<MonotonicClock>,
    motion_threshold: u8,
    extractor: SpanFeatureExtractor,
    next: Recipient<SpanFeaturesMsg>,
    handled: u64,
}

impl FeatureActor {
    pub const NAME: &'static str = "features";

    pub fn new(
        board: StatusBoard,
        clock: Arc<MonotonicClock>,
        motion_threshold: u8,
        next: Recipient<SpanFeaturesMsg>,
    ) -> Self {
        Self {
            board,
            clock,
            motion_threshold,
            extractor: SpanFeatureExtractor::new(motion_threshold),
            next,
            handled: 0,
        }
    }
}

impl Actor for FeatureActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(MAILBOX);
        self.board
            .actor_state(Self::NAME, ActorState::Running, self.clock.now());
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        self.board
            .actor_state(Self::NAME, ActorState::Stopped, self.clock.now());
    }
}

impl Supervised for FeatureActor {
    fn restarting(&mut self, _: &mut Self::Context) {
        self.board.actor_restarted(Self::NAME, self.clock.now());
        self.extractor = SpanFeatureExtractor::new(self.motion_threshold);
        self.handled = 0;
    }
}

impl Handler<SyncedSpan> for FeatureActor {
    type Result = ();
    fn handle(&mut self, msg: SyncedSpan, ctx: &mut Self::Context) {
        let board = self.board.clone();
        guarded(self, ctx, Self::NAME, &board, |this, _| {
            let features = this.extractor.extract(&msg.0);
            this.handled += 1;
            this.board.counters().spans.fetch_add(1, Ordering::Relaxed);
            this.board.set_latest_span(features.clone());
            this.next.do_send(SpanFeaturesMsg(features));
        });
    }
}

impl Handler<Ping> for FeatureActor {
    type Result = u64;
    fn handle(&mut self, _: Ping, _: &mut Self::Context) -> u64 {
        self.handled
    }
}

crate::impl_inject_panic!(FeatureActor);

crate::impl_alive!(FeatureActor);
