//! The store stage: writes every classification and sound event to sled — with its span, its
//! statistics rollup and its outbox deliveries, in one transaction — and only then shows it:
//! the status board's current activity and the live event come after the write, so whatever the
//! API has shown is on disk.
//!
//! A write that fails is kept and retried every 5 s, so a full disk delays results instead of
//! losing them. Retention runs here too (hourly, in bounded batches), because it writes.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use cav_core::{Clock, MonotonicClock};

use crate::actor::outbox::Wake;
use crate::events::{LiveEvent, SoundEventRecord};
use crate::health::{ActorState, StatusBoard};
use crate::messages::Classification;
use crate::store::{ExternalPolicy, Retention, Store};

/// Stores one sound event; with a webhook URL its POST is queued in the outbox with it.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct StoreSoundEvent {
    pub event: SoundEventRecord,
    pub webhook: Option<String>,
}

/// Writes everything pending and flushes sled; answers with the number still pending.
#[derive(Debug, Message)]
#[rtype(result = "usize")]
pub struct Flush;

/// How results are stored.
#[derive(Clone, Debug)]
pub struct StoreSettings {
    /// Windows further apart than this start a new span even when their class is the same.
    pub span_gap: Duration,
    /// When windows go to the external service (`None`: no external service).
    pub external: Option<ExternalPolicy>,
    pub retention: Retention,
}

/// Records deleted per retention pass, so a pass never holds the writer for long.
const RETENTION_BUDGET: usize = 20_000;
const RETENTION_EVERY: Duration = Duration::from_secs(3600);

pub struct StoreWriter {
    board: StatusBoard,
    clock: Arc<MonotonicClock>,
    store: Store,
    settings: StoreSettings,
    outbox: Recipient<Wake>,
    pending: VecDeque<Classification>,
    pending_events: VecDeque<StoreSoundEvent>,
}

impl StoreWriter {
    pub const NAME: &'static str = "store_writer";

    pub fn new(
        board: StatusBoard,
        clock: Arc<MonotonicClock>,
        store: Store,
        settings: StoreSettings,
        outbox: Recipient<Wake>,
    ) -> Self {
        Self {
            board,
            clock,
            store,
            settings,
            outbox,
            pending: VecDeque::new(),
            pending_events: VecDeque::new(),
        }
    }

    fn failed(&self, e: &crate::store::StoreError, what: &str) {
        self.board
            .counters()
            .store_errors
            .fetch_add(1, Ordering::Relaxed);
        tracing::error!(error = %e, what, pending = self.pending.len() + self.pending_events.len(), "store write failed; will retry");
        self.board.actor_error(Self::NAME, e.to_string());
    }

    fn write_pending(&mut self) {
        while let Some(c) = self.pending.front() {
            let span_gap_ms = self.settings.span_gap.as_millis() as i64;
            match self
                .store
                .put_classification(c, span_gap_ms, self.settings.external.as_ref())
            {
                Ok(outcome) => {
                    self.board.counters().stored.fetch_add(1, Ordering::Relaxed);
                    self.board
                        .metrics()
                        .windows_by_class
                        .inc(&[c.decision.activity.as_str()]);
                    self.board.set_current(c.clone());
                    self.board.bus().publish(LiveEvent::Activity {
                        activity: c.decision.activity.to_string(),
                        confidence: c.decision.confidence,
                        window_start_ms: c.start().millis(),
                        window_end_ms: c.end().millis(),
                    });
                    if let Some(destination) = outcome.queued {
                        self.outbox.do_send(Wake(destination));
                    }
                    self.pending.pop_front();
                }
                Err(e) => return self.failed(&e, "classification"),
            }
        }
        while let Some(msg) = self.pending_events.front() {
            match self
                .store
                .put_sound_event(&msg.event, msg.webhook.as_deref())
            {
                Ok(queued) => {
                    if let Some(destination) = queued {
                        self.outbox.do_send(Wake(destination));
                    }
                    self.pending_events.pop_front();
                }
                Err(e) => return self.failed(&e, "sound event"),
            }
        }
    }

    fn retention(&mut self, ctx: &mut Context<Self>) {
        let now = self.clock.now().millis();
        match self
            .store
            .apply_retention(now, &self.settings.retention, RETENTION_BUDGET)
        {
            Ok(report) => {
                if report.removed > 0 {
                    tracing::info!(
                        removed = report.removed,
                        more = report.more,
                        "retention pass"
                    );
                }
                if report.more {
                    ctx.run_later(Duration::from_secs(1), |this, ctx| this.retention(ctx));
                }
            }
            Err(e) => tracing::error!(error = %e, "retention pass failed"),
        }
    }
}

impl Actor for StoreWriter {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.board
            .actor_state(Self::NAME, ActorState::Running, self.clock.now());
        ctx.run_interval(Duration::from_secs(5), |this, _| this.write_pending());
        ctx.run_later(Duration::from_secs(10), |this, ctx| this.retention(ctx));
        ctx.run_interval(RETENTION_EVERY, |this, ctx| this.retention(ctx));
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
        self.pending_events.push_back(msg);
        self.write_pending();
    }
}

impl Handler<Flush> for StoreWriter {
    type Result = usize;
    fn handle(&mut self, _: Flush, _: &mut Self::Context) -> usize {
        self.write_pending();
        if let Err(e) = self.store.flush() {
            tracing::error!(error = %e, "store flush failed");
        }
        self.pending.len() + self.pending_events.len()
    }
}

crate::impl_alive!(StoreWriter);
