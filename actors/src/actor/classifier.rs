//! The classifier stage: gathers span features into windows and classifies each full window.
//!
//! The decision itself comes from a [`cav_core::Classifier`]; this actor publishes it to the
//! status board (what `/api/current-activity` shows) and to the store and dispatch stages.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use cav_core::smooth::{Smoother, SmoothingSettings};
use cav_core::window::WindowAccumulator;
use cav_core::{Classifier, Clock, MonotonicClock};

use crate::health::{ActorState, StatusBoard};
use crate::messages::{Classification, SpanFeaturesMsg};
use crate::supervise::guarded;

/// A model's reading for the window being filled: what the vision stage saw in a frame, or
/// what the hearing stage of the classifier's audio source heard in one of its windows.
#[derive(Clone, Debug, Message)]
#[rtype(result = "()")]
pub enum Observe {
    Vision(cav_core::observe::VisionObservation),
    Sound(cav_core::observe::SoundObservation),
}

pub struct ClassifierActor {
    pub(crate) board: StatusBoard,
    clock: Arc<MonotonicClock>,
    window: Duration,
    source: String,
    accumulator: WindowAccumulator,
    classifier: Arc<dyn Classifier>,
    /// Hysteresis between windows (see `cav_core::smooth`).
    smoother: Smoother,
    smoothing: SmoothingSettings,
    outputs: Vec<Recipient<Classification>>,
}

impl ClassifierActor {
    pub const NAME: &'static str = "classifier";

    pub fn new(
        board: StatusBoard,
        clock: Arc<MonotonicClock>,
        window: Duration,
        source: String,
        classifier: Arc<dyn Classifier>,
        smoothing: SmoothingSettings,
        outputs: Vec<Recipient<Classification>>,
    ) -> Self {
        Self {
            board,
            clock,
            window,
            source,
            accumulator: WindowAccumulator::new(window),
            classifier,
            smoother: Smoother::new(smoothing),
            smoothing,
            outputs,
        }
    }
}

impl Actor for ClassifierActor {
    type Context = Context<Self>;

    fn started(&mut self, _: &mut Self::Context) {
        self.board
            .actor_state(Self::NAME, ActorState::Running, self.clock.now());
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        self.board
            .actor_state(Self::NAME, ActorState::Stopped, self.clock.now());
    }
}

impl Supervised for ClassifierActor {
    fn restarting(&mut self, _: &mut Self::Context) {
        self.board.actor_restarted(Self::NAME, self.clock.now());
        self.accumulator = WindowAccumulator::new(self.window);
        self.smoother = Smoother::new(self.smoothing);
    }
}

impl Handler<SpanFeaturesMsg> for ClassifierActor {
    type Result = ();
    fn handle(&mut self, msg: SpanFeaturesMsg, ctx: &mut Self::Context) {
        let board = self.board.clone();
        guarded(self, ctx, Self::NAME, &board, |this, _| {
            let Some(window) = this.accumulator.push(msg.0) else {
                return;
            };
            let decision = this.smoother.apply(this.classifier.classify(&window));
            tracing::info!(
                activity = %decision.activity,
                confidence = decision.confidence,
                window_start_ms = window.start.millis(),
                window_end_ms = window.end.millis(),
                "classified window"
            );
            let c = Classification {
                window,
                decision,
                classifier: this.classifier.name().to_string(),
                source: this.source.clone(),
            };
            this.board
                .counters()
                .windows
                .fetch_add(1, Ordering::Relaxed);
            // The store writer shows it (status board, live events) once it is on disk.
            for out in &this.outputs {
                out.do_send(c.clone());
            }
        });
    }
}

impl Handler<Observe> for ClassifierActor {
    type Result = ();
    fn handle(&mut self, msg: Observe, _: &mut Self::Context) {
        match msg {
            Observe::Vision(o) => self.accumulator.push_vision(o),
            Observe::Sound(o) => self.accumulator.push_sound(o),
        }
    }
}

crate::impl_inject_panic!(ClassifierActor);

crate::impl_alive!(ClassifierActor);

/// Classifies what the window being filled holds so far, without closing the window, storing
/// or publishing anything (`POST /api/classify-now`); `None` before the window has a span.
#[derive(Debug, Message)]
#[rtype(result = "Option<Classification>")]
pub struct ClassifyNow;

impl Handler<ClassifyNow> for ClassifierActor {
    type Result = Option<Classification>;
    fn handle(&mut self, _: ClassifyNow, _: &mut Self::Context) -> Option<Classification> {
        let window = self.accumulator.peek()?;
        let decision = self.classifier.classify(&window);
        Some(Classification {
            window,
            decision,
            classifier: self.classifier.name().to_string(),
            source: self.source.clone(),
        })
    }
}
