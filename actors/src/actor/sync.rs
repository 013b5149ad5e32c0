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
use cav_core::avsync::{mean_luma, OffsetMonitor};
use cav_core::clipbuf::{Clip, ClipBuffer};
use cav_core::{Clock, Frame, MonotonicClock};

use crate::health::{ActorState, AvSyncStatus, StatusBoard};
use crate::messages::{AudioChunk, ExpectStreams, SyncedSpan, VideoFrame};
use crate::queue::Drain;
use crate::supervise::guarded;

#[derive(Clone, Copy, Debug)]
pub struct SyncSettings {
    pub span: Duration,
    pub max_wait: Duration,
    /// How much picture and sound is kept for saving clips.
    pub buffer: Duration,
}

/// The last `duration` of picture and sound (at most the buffer), or `None` when empty.
#[derive(Debug, Message)]
#[rtype(result = "Option<ClipTake>")]
pub struct TakeClip {
    pub duration: Duration,
}

/// Offers one frame every `every` (by capture time) to the vision stage.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct SetVision {
    pub vision: Recipient<crate::actor::vision::SeeFrame>,
    pub every: Duration,
}

/// A clip and the sources it came from.
#[derive(Debug)]
pub struct ClipTake {
    pub clip: Clip,
    pub video_source: Option<String>,
    pub audio_source: Option<String>,
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
    monitor: OffsetMonitor,
    clips: ClipBuffer,
    video_source: Option<String>,
    audio_source: Option<String>,
    vision: Option<(Recipient<crate::actor::vision::SeeFrame>, Duration)>,
    last_vision: Option<cav_core::Timestamp>,
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
            monitor: OffsetMonitor::new(),
            clips: ClipBuffer::new(settings.buffer),
            settings,
            board,
            clock,
            video_in,
            audio_in,
            features,
            video_source: None,
            audio_source: None,
            vision: None,
            last_vision: None,
        }
    }

    fn fresh_aligner(settings: &SyncSettings, expect: Expect) -> Aligner<Frame> {
        Aligner::new(settings.span, settings.max_wait, expect)
    }

    fn tick(&mut self) {
        for f in self.video_in.drain() {
            if self.video_source.as_deref() != Some(&*f.source) {
                self.video_source = Some(f.source.to_string());
                self.monitor = OffsetMonitor::new();
            }
            self.monitor.push_frame(f.captured, mean_luma(&f.frame));
            self.offer_to_vision(&f);
            self.clips.push_frame(f.captured, f.frame.clone());
            self.aligner.push_frame(f.captured, f.frame);
        }
        for c in self.audio_in.drain() {
            if self.audio_source.as_deref() != Some(&*c.source) {
                self.audio_source = Some(c.source.to_string());
                self.monitor = OffsetMonitor::new();
            }
            self.monitor.push_audio(c.captured, &c.samples);
            self.clips.push_audio(c.captured, &c.samples);
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
        ctx.run_interval(Duration::from_secs(1), |this, _| this.publish_sync());
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

impl SyncActor {
    fn offer_to_vision(&mut self, f: &VideoFrame) {
        let Some((vision, every)) = &self.vision else {
            return;
        };
        let due = self
            .last_vision
            .is_none_or(|last| f.captured.0 - last.0 >= every.as_micros() as i64 - 20_000);
        if !due {
            return;
        }
        self.last_vision = Some(f.captured);
        if vision
            .try_send(crate::actor::vision::SeeFrame(f.clone()))
            .is_err()
        {
            self.board
                .counters()
                .vision_skipped
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Puts the measured A/V offset of the current pair on the status board.
    fn publish_sync(&self) {
        let (Some(video), Some(audio)) = (&self.video_source, &self.audio_source) else {
            return;
        };
        let reading = self.monitor.reading();
        self.board.set_av_sync(AvSyncStatus {
            video_source: video.clone(),
            audio_source: audio.clone(),
            offset_ms: reading.as_ref().map(|r| r.offset_ms),
            drift_ms_per_min: reading.as_ref().and_then(|r| r.drift_ms_per_min),
            pairs: reading.as_ref().map_or(0, |r| r.pairs),
            resolution_ms: reading.as_ref().and_then(|r| r.resolution_ms),
            last_pair_at: reading.as_ref().map(|r| r.last_pair_at),
            buffer_s: self.clips.keep().as_secs_f64(),
        });
    }
}

impl Handler<TakeClip> for SyncActor {
    type Result = Option<ClipTake>;
    fn handle(&mut self, msg: TakeClip, _: &mut Self::Context) -> Option<ClipTake> {
        // What has arrived up to now belongs in the clip.
        self.tick();
        self.clips.last(msg.duration).map(|clip| ClipTake {
            clip,
            video_source: self.video_source.clone(),
            audio_source: self.audio_source.clone(),
        })
    }
}

impl Handler<SetVision> for SyncActor {
    type Result = ();
    fn handle(&mut self, msg: SetVision, _: &mut Self::Context) {
        self.vision = Some((msg.vision, msg.every));
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

/// The newest video frame the sync stage received, or `None` when none is buffered (no camera,
/// or none within the clip buffer's length): what `GET /api/snapshot.jpg` shows.
#[derive(Debug, Message)]
#[rtype(result = "Option<LatestFrameTake>")]
pub struct LatestFrame;

/// A frame taken by [`LatestFrame`] (its pixels are shared, not copied).
#[derive(Clone, Debug)]
pub struct LatestFrameTake {
    pub captured: cav_core::Timestamp,
    pub frame: Frame,
    pub source: Option<String>,
}

impl Handler<LatestFrame> for SyncActor {
    type Result = Option<LatestFrameTake>;
    fn handle(&mut self, _: LatestFrame, _: &mut Self::Context) -> Option<LatestFrameTake> {
        // The queues are drained every 20 ms; a snapshot that old is current enough, and not
        // draining here keeps the request from doing alignment work on the analysis thread.
        self.clips
            .latest_frame()
            .map(|(captured, frame)| LatestFrameTake {
                captured,
                frame,
                source: self.video_source.clone(),
            })
    }
}
