//! The vision stage: BlazePose and BlazeFace (`cav_models::vision`) on at most `fps` frames a
//! second of the camera, so the live daemon stays cheap (one frame costs ~70–110 ms of CPU).
//!
//! The sync stage offers it frames with `try_send` into a mailbox of one: while a frame is being
//! analysed, newer ones are skipped (counted), never queued. The models are loaded on this
//! actor's own thread when it starts; if they cannot be, the stage reports the error and stays
//! idle rather than taking the pipeline down.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use cav_core::{Clock, MonotonicClock};
use cav_models::vision::{Vision, VisionOptions};

use crate::health::{ActorState, StatusBoard, VisionReading};
use crate::messages::VideoFrame;
use crate::supervise::guarded;

/// A frame to look at.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct SeeFrame(pub VideoFrame);

pub struct VisionActor {
    pub(crate) board: StatusBoard,
    clock: Arc<MonotonicClock>,
    options: VisionOptions,
    vision: Option<Vision>,
    /// Where each result goes as a presence/posture observation for the activity classifier.
    observer: Option<Recipient<crate::actor::classifier::Observe>>,
}

impl VisionActor {
    pub const NAME: &'static str = "vision";

    pub fn new(
        board: StatusBoard,
        clock: Arc<MonotonicClock>,
        options: VisionOptions,
        observer: Option<Recipient<crate::actor::classifier::Observe>>,
    ) -> Self {
        Self {
            board,
            clock,
            options,
            vision: None,
            observer,
        }
    }
}

impl Actor for VisionActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(1);
        match Vision::embedded() {
            Ok(mut v) => {
                v.set_options(self.options);
                self.vision = Some(v);
                self.board
                    .actor_state(Self::NAME, ActorState::Running, self.clock.now());
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot load the vision models; vision is off");
                self.board
                    .actor_state(Self::NAME, ActorState::Stopped, self.clock.now());
                self.board.actor_error(Self::NAME, e.to_string());
            }
        }
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        self.board
            .actor_state(Self::NAME, ActorState::Stopped, self.clock.now());
    }
}

impl Supervised for VisionActor {
    fn restarting(&mut self, _: &mut Self::Context) {
        self.board.actor_restarted(Self::NAME, self.clock.now());
    }
}

impl Handler<SeeFrame> for VisionActor {
    type Result = ();
    fn handle(&mut self, msg: SeeFrame, ctx: &mut Self::Context) {
        let board = self.board.clone();
        guarded(self, ctx, Self::NAME, &board, |this, _| {
            let Some(vision) = this.vision.as_mut() else {
                return;
            };
            let f = &msg.0.frame;
            match vision.analyze(f.bgr(), f.width() as usize, f.height() as usize) {
                Ok(result) => {
                    let m = this.board.metrics();
                    let ms = |x: f32| Duration::from_secs_f64(f64::from(x.max(0.0)) / 1000.0);
                    m.vision("pose_detector")
                        .observe(ms(result.timings.pose_detector_ms));
                    if result.timings.face_detector_ms > 0.0 {
                        m.vision("faces")
                            .observe(ms(result.timings.face_detector_ms));
                    }
                    if result.timings.landmark_ms > 0.0 {
                        m.vision("landmarks")
                            .observe(ms(result.timings.landmark_ms));
                    }
                    m.vision("total").observe(ms(result.timings.total_ms));
                    this.board
                        .counters()
                        .vision_frames
                        .fetch_add(1, Ordering::Relaxed);
                    if let Some(observer) = &this.observer {
                        observer.do_send(crate::actor::classifier::Observe::Vision(
                            result.observation(msg.0.captured),
                        ));
                    }
                    this.board.set_vision(VisionReading {
                        source: msg.0.source.to_string(),
                        at: msg.0.captured,
                        width: f.width(),
                        height: f.height(),
                        result,
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "vision failed on a frame");
                    this.board.actor_error(Self::NAME, e.to_string());
                }
            }
        });
    }
}

crate::impl_inject_panic!(VisionActor);
crate::impl_alive!(VisionActor);
