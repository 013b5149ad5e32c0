//! The outbox dispatcher: delivers what the store queued, in order per destination, until each
//! delivery is made or refused for good.
//!
//! One worker thread per destination (the HTTP client blocks; one slow or dead receiver must not
//! hold up the others). A worker takes its queue's head from the store, POSTs it, and records
//! the fate: 2xx → delivered; 408, 429, 5xx, timeouts and refused connections → retried after an
//! exponential backoff with jitter; any other answer → dead-lettered with the reason. The actor
//! starts workers for the destinations found pending at start (deliveries resume after a
//! crash), wakes them when the store queues more, and restarts one whose thread died.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use actix::prelude::*;
use cav_core::{Clock, MonotonicClock};
use crossbeam_channel::{Receiver, Sender};

use crate::delivery::{Backoff, Endpoint};
use crate::health::{ActorState, StatusBoard};
use crate::store::{ExternalPolicy, OutboxEntry, Store};

/// The store queued a delivery for this destination.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Wake(pub String);

/// How to reach the destinations.
#[derive(Clone, Debug)]
pub struct OutboxSettings {
    /// The external service: its URL and token override what the entries recorded.
    pub external: Option<Endpoint>,
    /// Per-try timeout of webhook POSTs.
    pub webhook_timeout: Duration,
    pub backoff: Backoff,
}

impl OutboxSettings {
    fn endpoint(&self, destination: &str) -> Endpoint {
        match (&self.external, destination) {
            (Some(e), ExternalPolicy::DESTINATION) => e.clone(),
            _ => Endpoint::new(None, None, self.webhook_timeout),
        }
    }
}

struct Worker {
    wake: Sender<()>,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

pub struct OutboxDispatcher {
    board: StatusBoard,
    clock: Arc<MonotonicClock>,
    store: Store,
    settings: OutboxSettings,
    workers: HashMap<String, Worker>,
}

impl OutboxDispatcher {
    pub const NAME: &'static str = "outbox";

    pub fn new(
        board: StatusBoard,
        clock: Arc<MonotonicClock>,
        store: Store,
        settings: OutboxSettings,
    ) -> Self {
        Self {
            board,
            clock,
            store,
            settings,
            workers: HashMap::new(),
        }
    }

    /// Wakes the destination's worker, starting it first if it is not running.
    fn wake(&mut self, destination: &str) {
        let alive = self
            .workers
            .get(destination)
            .is_some_and(|w| !w.thread.is_finished());
        if !alive {
            if let Some(dead) = self.workers.remove(destination) {
                tracing::error!(destination, "outbox worker died; restarting it");
                self.board
                    .actor_error(Self::NAME, format!("worker for {destination} died"));
                let _ = dead.thread.join();
                self.board.actor_restarted(Self::NAME, self.clock.now());
            }
            match self.spawn(destination) {
                Ok(w) => {
                    self.workers.insert(destination.to_string(), w);
                }
                Err(e) => {
                    tracing::error!(destination, error = %e, "cannot start an outbox worker");
                    return;
                }
            }
        }
        if let Some(w) = self.workers.get(destination) {
            let _ = w.wake.try_send(());
        }
    }

    fn spawn(&self, destination: &str) -> std::io::Result<Worker> {
        // One pending wake is enough: the worker re-reads its queue each time it wakes.
        let (wake, wakes) = crossbeam_channel::bounded(1);
        let stop = Arc::new(AtomicBool::new(false));
        let job = DeliveryLoop {
            destination: destination.to_string(),
            endpoint: self.settings.endpoint(destination),
            backoff: self.settings.backoff,
            store: self.store.clone(),
            board: self.board.clone(),
            clock: self.clock.clone(),
            stop: stop.clone(),
            wakes,
        };
        let thread = std::thread::Builder::new()
            .name(format!("outbox {destination}"))
            .spawn(move || job.run())?;
        Ok(Worker { wake, stop, thread })
    }

    /// Starts workers for every destination with pending deliveries; restarts dead ones.
    fn check(&mut self) {
        match self.store.outbox_destinations() {
            Ok(pending) => {
                for d in pending {
                    self.wake(&d);
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot read the outbox"),
        }
    }
}

impl Actor for OutboxDispatcher {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.board
            .actor_state(Self::NAME, ActorState::Running, self.clock.now());
        self.check();
        ctx.run_interval(Duration::from_secs(5), |this, _| this.check());
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        for w in self.workers.values() {
            w.stop.store(true, Ordering::Relaxed);
            let _ = w.wake.try_send(());
        }
        self.board
            .actor_state(Self::NAME, ActorState::Stopped, self.clock.now());
    }
}

impl Supervised for OutboxDispatcher {
    fn restarting(&mut self, _: &mut Self::Context) {
        self.board.actor_restarted(Self::NAME, self.clock.now());
    }
}

impl Handler<Wake> for OutboxDispatcher {
    type Result = ();
    fn handle(&mut self, msg: Wake, _: &mut Self::Context) {
        self.wake(&msg.0);
    }
}

/// What became of one attempt.
enum Fate {
    Delivered(u16),
    Retry(String),
    Dead(Option<u16>, String),
}

/// One destination's worker: runs on its own thread until told to stop.
struct DeliveryLoop {
    destination: String,
    endpoint: Endpoint,
    backoff: Backoff,
    store: Store,
    board: StatusBoard,
    clock: Arc<MonotonicClock>,
    stop: Arc<AtomicBool>,
    wakes: Receiver<()>,
}

impl DeliveryLoop {
    /// Longest sleep with nothing to do; new work wakes the worker sooner.
    const IDLE: Duration = Duration::from_secs(30);

    fn run(self) {
        tracing::debug!(destination = %self.destination, "outbox worker started");
        while !self.stop.load(Ordering::Relaxed) {
            let head = match self.store.outbox_head(&self.destination) {
                Ok(head) => head,
                Err(e) => {
                    tracing::error!(destination = %self.destination, error = %e, "cannot read the outbox");
                    self.sleep(Duration::from_secs(1));
                    continue;
                }
            };
            let Some(entry) = head else {
                self.sleep(Self::IDLE);
                continue;
            };
            let now = self.clock.now().millis();
            if entry.next_attempt_ms > now {
                self.sleep(Duration::from_millis((entry.next_attempt_ms - now) as u64));
                continue;
            }
            let fate = self.attempt(&entry);
            if let Err(e) = self.record(&entry, fate) {
                tracing::error!(destination = %self.destination, error = %e, "cannot record a delivery's fate");
                self.sleep(Duration::from_secs(1));
            }
        }
        tracing::debug!(destination = %self.destination, "outbox worker stopped");
    }

    fn sleep(&self, d: Duration) {
        let _ = self.wakes.recv_timeout(d.min(Self::IDLE));
    }

    fn attempt(&self, entry: &OutboxEntry) -> Fate {
        match self
            .endpoint
            .post(&entry.url, &entry.idempotency_key, &entry.payload)
        {
            Ok(status) => Fate::Delivered(status),
            Err(e) if e.is_transient() => Fate::Retry(e.to_string()),
            Err(e) => Fate::Dead(e.status(), e.to_string()),
        }
    }

    fn record(&self, entry: &OutboxEntry, fate: Fate) -> Result<(), crate::store::StoreError> {
        let now = self.clock.now().millis();
        let counters = self.board.counters();
        let webhook = entry.destination != ExternalPolicy::DESTINATION;
        let url = self.endpoint.url_for(&entry.url);
        match fate {
            Fate::Delivered(status) => {
                self.store.outbox_finish(entry, now, Some(status), None)?;
                let counter = if webhook {
                    &counters.webhooks_sent
                } else {
                    &counters.delivered
                };
                counter.fetch_add(1, Ordering::Relaxed);
                tracing::info!(destination = %entry.destination, url, status, seq = entry.seq, attempts = entry.attempts + 1, "delivered");
            }
            Fate::Retry(error) => {
                let delay = self.backoff.delay(entry.attempts + 1, fastrand::f64());
                self.store
                    .outbox_retry_later(entry, &error, now + delay.as_millis() as i64)?;
                let counter = if webhook {
                    &counters.webhook_errors
                } else {
                    &counters.delivery_errors
                };
                counter.fetch_add(1, Ordering::Relaxed);
                self.board
                    .actor_error(OutboxDispatcher::NAME, error.clone());
                tracing::warn!(destination = %entry.destination, url, %error, attempts = entry.attempts + 1, retry_in_ms = delay.as_millis() as u64, "delivery failed; will retry");
            }
            Fate::Dead(status, reason) => {
                self.store
                    .outbox_finish(entry, now, status, Some(&reason))?;
                counters.dead_lettered.fetch_add(1, Ordering::Relaxed);
                self.board
                    .actor_error(OutboxDispatcher::NAME, reason.clone());
                tracing::error!(destination = %entry.destination, url, %reason, seq = entry.seq, "delivery refused; dead-lettered");
            }
        }
        Ok(())
    }
}

crate::impl_alive!(OutboxDispatcher);
