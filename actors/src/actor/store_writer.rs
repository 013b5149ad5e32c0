//! The store stage: writes every classification to sled. A write that fails is kept and
//! retried every 5 s, so a full disk delays results instead of losing them.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use cav_core::{Clock, MonotonicClock};

use crate::events::SoundEventRecord;
use crate::health::{ActorState, StatusBoard};
use crate::messages::Classification;
use crate::store::Store;

/// Stores one sound event.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct StoreSoundEvent(pub SoundEventRecord);

/// Writes everything pending and flushes sled; answers with the number still pending.
#[derive(Debug, Message)]
#[rtype(result = "usize")]
pub struct Flush;

pub struct StoreWriter {
    pub(crate) board: StatusBoard,
    clock: Arc<MonotonicClock>,
    store: Store,
    pending: VecDeque<Classification>,
}

impl StoreWriter {
    pub const NAME: &'static str = "store_writer";

    pub fn new(board: StatusBoard, clock: Arc<MonotonicClock>, store: Store) -> Self {
        Self {
            board,
            clock,
            store,
            pending: VecDeque::new(),
        }
    }

    fn write_pending(&mut self) {
        while let Some(c) = self.pending.front() {
            match self.store.put_classification(c) {
                Ok(()) => {
                    self.board.counters().stored.fetch_add(1, Ordering::Relaxed);
                    self.pending.pop_front();
                }
                Err(e) => {
                    self.board
                        .counters()
                        .store_errors
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::error!(error = %e, pending = self.pending.len(), "store write failed; will retry");
                    self.board.actor_error(Self::NAME, e.to_string());
                    return;
                }
            }
        }
    }
}

impl Actor for StoreWriter {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.board
            .actor_state(Self::NAME, ActorState::Running, self.clock.now());
        ctx.run_interval(Duration::from_secs(5), |this, _| this.write_pending());
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        self.write_pending();
        if let Err(e) = self.store.flush() {
            tracing::error!(error = %e, "store flush at stop failed");
        }
        self.board
            .actor_state(Self::NAME, ActorState::Stopped, self.clock.now());
    }
}

impl Supervised for StoreWriter {
    fn restarting(&mut self, _: &mut Self::Context) {
        // Pending writes survive a restart: they are the point of this actor.
        self.board.actor_restarted(Self::NAME, self.clock.now());
    }
}

impl Handler<Classification> for StoreWriter {
    type Result = ();
    fn handle(&mut self, msg: Classification, _: &mut Self::Context) {
        self.pending.push_back(msg);
        self.write_pending();
    }
}

impl Handler<StoreSoundEvent> for StoreWriter {
    type Result = ();
    fn handle(&mut self, msg: StoreSoundEvent, _: &mut Self::Context) {
        if let Err(e) = self.store.put_sound_event(&msg.0) {
            self.board
                .counters()
                .store_errors
                .fetch_add(1, Ordering::Relaxed);
            tracing::error!(error = %e, source = %msg.0.source, kind = %msg.0.kind, "cannot store a sound event");
            self.board.actor_error(Self::NAME, e.to_string());
        }
    }
}

impl Handler<Flush> for StoreWriter {
    type Result = usize;
    fn handle(&mut self, _: Flush, _: &mut Self::Context) -> usize {
        self.write_pending();
        if let Err(e) = self.store.flush() {
            tracing::error!(error = %e, "store flush failed");
        }
        self.pending.len()
    }
}
