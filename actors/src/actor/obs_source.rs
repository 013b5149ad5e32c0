//! The OBS Studio video source: captures one OBS source (a camera input, or a whole scene) by
//! polling obs-websocket's `GetSourceScreenshot`, and controls OBS media inputs on request.
//!
//! States on the status board:
//!
//! ```text
//!  Connecting ──connected, first frame──▶ Running ──no frame for 3 s──▶ Stalled
//!      │                                    ▲  │                           │
//!      │                                    └──┼──── frame ◀───────────────┘
//!      ▼                                       ▼
//!  Reconnecting ◀──────── connection lost / refused / timed out (any state)
//!      (backoff 0.5 s doubling to 30 s; the next try is in the detail)
//!  Error: wrong password, or no such source in OBS — retried with the same capped backoff,
//!         because the user may fix OBS (create the source, change the password) at any time.
//! ```
//!
//! OBS being absent never stops the actor or the daemon: it stays in Reconnecting until OBS
//! appears. Screenshots are requested at `fps` with at most one request in flight; a tick that
//! finds the previous request still pending is skipped, so a slow OBS lowers the frame rate
//! instead of piling up requests.
//!
//! **Timestamps.** Each frame is stamped with the clock reading taken when its request was sent.
//! obs-websocket renders the source as it handles the request — on localhost within a
//! millisecond or so of the send — while the reply comes only after rendering and JPEG encoding
//! (7–80 ms, with a long tail). The send time is therefore the closer and steadier estimate of
//! when the picture was current; it is late by at most OBS's own capture latency plus one OBS
//! frame (40 ms at 25 fps).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use cav_core::{Clock, MonotonicClock};
use serde::Serialize;

use crate::health::{ActorState, SourceCounters, SourceState, StatusBoard};
use crate::messages::{SourceId, VideoFrame};
use crate::obs::{MediaAction, MediaStatus, ObsClient, ObsError, ObsInput, ObsSettings};
use crate::queue::DropOldest;

/// No frame for this long while connected makes the source Stalled.
pub const STALL_AFTER: Duration = Duration::from_secs(3);
/// First retry delay after a failure; doubles up to [`BACKOFF_MAX`].
pub const BACKOFF_MIN: Duration = Duration::from_millis(500);
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How often reconnection and stall checks run.
const HOUSEKEEPING: Duration = Duration::from_millis(100);

/// Lists OBS's inputs.
#[derive(Debug, Message)]
#[rtype(result = "Result<Vec<ObsInput>, ObsError>")]
pub struct ListInputs;

/// Reads the playback state of a media input.
#[derive(Debug, Message)]
#[rtype(result = "Result<MediaStatus, ObsError>")]
pub struct GetMediaStatus {
    pub input: String,
}

/// Plays, pauses, restarts, stops or seeks a media input, then answers its status as read
/// after the action has taken effect (or after a short wait if OBS is slow to show it).
///
/// A seek lands on the keyframe at or before the target: OBS's media source does not decode
/// forward to the exact time, and then reports that keyframe + one frame as the cursor (a paused
/// seek to 5000 ms in a file with a keyframe every second reads back 5040 ms). See
/// [`MediaAction::Seek`].
#[derive(Debug, Message)]
#[rtype(result = "Result<MediaStatus, ObsError>")]
pub struct ControlMedia {
    pub input: String,
    pub action: MediaAction,
}

/// Switches the captured OBS source at run time. The name is checked first: an unknown source
/// answers [`ObsError::SourceNotFound`] and capture carries on with the old one.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), ObsError>")]
pub struct SetSource {
    pub source: String,
}

/// Reads the connection state. Never fails (the `Result` keeps all OBS messages alike).
#[derive(Debug, Message)]
#[rtype(result = "Result<ObsStateSnapshot, ObsError>")]
pub struct GetObsState;

/// What [`GetObsState`] answers.
#[derive(Clone, Debug, Serialize)]
pub struct ObsStateSnapshot {
    pub connected: bool,
    /// The websocket address, e.g. `ws://127.0.0.1:4455`.
    pub url: String,
    /// The OBS source being captured.
    pub source: String,
    pub state: SourceState,
    pub last_error: Option<String>,
    /// OBS Studio's version, once connected.
    pub obs_version: Option<String>,
}

pub struct ObsSource {
    settings: ObsSettings,
    id: String,
    source_id: SourceId,
    pub(crate) board: StatusBoard,
    clock: Arc<MonotonicClock>,
    video_out: DropOldest<VideoFrame>,
    counters: Arc<SourceCounters>,
    /// The live connection, if any.
    client: Option<ObsClient>,
    /// Bumped whenever the connection is dropped or replaced, so that replies to requests made
    /// on an older connection are ignored.
    generation: u64,
    connecting: bool,
    /// A screenshot request is pending.
    in_flight: bool,
    /// When the next connection attempt is due (while disconnected).
    retry_at: Option<Instant>,
    /// While connected but the source is missing: no screenshot before this.
    hold_until: Option<Instant>,
    backoff: Duration,
    connected_at: Option<Instant>,
    last_frame: Option<Instant>,
    /// Why the latest screenshot failed (cleared by a good one), for the Stalled detail.
    last_shot_error: Option<ObsError>,
    state: SourceState,
    last_error: Option<String>,
    obs_version: Option<String>,
    seq: u64,
    skipped_ticks: u64,
}

impl ObsSource {
    pub const NAME: &'static str = "obs_source";

    pub fn new(
        settings: ObsSettings,
        id: String,
        board: StatusBoard,
        clock: Arc<MonotonicClock>,
        video_out: DropOldest<VideoFrame>,
        counters: Arc<SourceCounters>,
    ) -> Self {
        Self {
            source_id: Arc::from(id.as_str()),
            settings,
            id,
            board,
            clock,
            video_out,
            counters,
            client: None,
            generation: 0,
            connecting: false,
            in_flight: false,
            retry_at: None,
            hold_until: None,
            backoff: BACKOFF_MIN,
            connected_at: None,
            last_frame: None,
            last_shot_error: None,
            state: SourceState::Starting,
            last_error: None,
            obs_version: None,
            seq: 0,
            skipped_ticks: 0,
        }
    }

    fn frame_period(&self) -> Duration {
        let fps = if self.settings.fps.is_finite() && self.settings.fps > 0.0 {
            self.settings.fps.min(60.0)
        } else {
            crate::obs::DEFAULT_FPS
        };
        Duration::from_secs_f64(1.0 / fps)
    }

    /// Shows a state on the board (and logs it when it changes).
    fn set_state(&mut self, state: SourceState, detail: String) {
        if self.state != state {
            tracing::info!(source = %self.id, obs = %self.settings.url(), from = ?self.state, to = ?state, detail = %detail, "OBS source state");
        }
        self.state = state;
        self.board
            .source_state(&self.id, state, Some(detail), self.clock.now());
    }

    /// Shows the Error state with `error` as its last error.
    fn set_error(&mut self, error: &ObsError, detail: String) {
        let message = error.to_string();
        if self.state != SourceState::Error || self.last_error.as_deref() != Some(&message) {
            tracing::warn!(source = %self.id, obs = %self.settings.url(), error = %message, detail = %detail, "OBS source error");
        }
        self.state = SourceState::Error;
        self.last_error = Some(message.clone());
        let now = self.clock.now();
        self.board.source_error(&self.id, message, now);
        self.board
            .source_state(&self.id, SourceState::Error, Some(detail), now);
    }

    /// The current backoff, then doubles it for next time.
    fn next_backoff(&mut self) -> Duration {
        let d = self.backoff;
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
        d
    }

    fn running_detail(&self) -> String {
        format!(
            "capturing '{}' from OBS {} at {} ({:.1} fps, {} px wide)",
            self.settings.source,
            self.obs_version.as_deref().unwrap_or("?"),
            self.settings.url(),
            1.0 / self.frame_period().as_secs_f64(),
            self.settings.width,
        )
    }

    fn start_connect(&mut self, ctx: &mut Context<Self>) {
        self.connecting = true;
        self.retry_at = None;
        let settings = self.settings.clone();
        let generation = self.generation;
        tracing::debug!(source = %self.id, obs = %settings.url(), "connecting to OBS");
        ctx.spawn(
            async move { ObsClient::connect(&settings).await }
                .into_actor(self)
                .map(move |result, act, ctx| act.on_connect(generation, result, ctx)),
        );
    }

    fn on_connect(
        &mut self,
        generation: u64,
        result: Result<ObsClient, ObsError>,
        ctx: &mut Context<Self>,
    ) {
        if generation != self.generation {
            return;
        }
        self.connecting = false;
        match result {
            Ok(client) => {
                self.obs_version = Some(client.connected_version().obs.clone());
                self.client = Some(client);
                self.connected_at = Some(Instant::now());
                self.last_shot_error = None;
                self.hold_until = None;
                self.backoff = BACKOFF_MIN;
                self.set_state(
                    SourceState::Connecting,
                    format!(
                        "connected to OBS {} at {}; waiting for the first frame of '{}'",
                        self.obs_version.as_deref().unwrap_or("?"),
                        self.settings.url(),
                        self.settings.source
                    ),
                );
                self.tick(ctx);
            }
            Err(e) => self.connection_failed(e),
        }
    }

    /// Drops the connection (if any) and schedules the next attempt.
    fn connection_failed(&mut self, error: ObsError) {
        self.drop_connection();
        let delay = self.next_backoff();
        self.retry_at = Some(Instant::now() + delay);
        let detail = format!("{error}; next try in {:.1} s", delay.as_secs_f64());
        match error {
            // Retrying cannot help until the user fixes OBS or the config, but either may
            // happen at any time, so keep trying at the (capped) backoff.
            ObsError::AuthFailed { .. } | ObsError::Protocol(_) => self.set_error(&error, detail),
            _ => {
                // Keep the reason visible in /api/status while reconnecting.
                let message = error.to_string();
                self.last_error = Some(message.clone());
                self.board.source_last_error(&self.id, message);
                self.set_state(SourceState::Reconnecting, detail)
            }
        }
    }

    fn drop_connection(&mut self) {
        self.client = None;
        self.generation += 1;
        self.in_flight = false;
        self.connecting = false;
        self.connected_at = None;
        self.hold_until = None;
    }

    /// One frame tick: requests a screenshot unless one is pending.
    fn tick(&mut self, ctx: &mut Context<Self>) {
        let Some(client) = self.client.clone() else {
            return;
        };
        if self.in_flight {
            self.skipped_ticks += 1;
            return;
        }
        if self.hold_until.is_some_and(|t| Instant::now() < t) {
            return;
        }
        self.in_flight = true;
        let generation = self.generation;
        let source = self.settings.source.clone();
        let (width, quality) = (self.settings.width, self.settings.jpeg_quality);
        let sent = self.clock.now();
        ctx.spawn(
            {
                let source = source.clone();
                async move { client.screenshot(&source, width, quality).await }
            }
            .into_actor(self)
            .map(move |result, act, _| {
                if generation != act.generation {
                    return;
                }
                act.in_flight = false;
                match result {
                    Ok(frame) => {
                        act.video_out.push(VideoFrame {
                            source: act.source_id.clone(),
                            seq: act.seq,
                            captured: sent,
                            frame,
                        });
                        act.seq += 1;
                        act.counters.frames.fetch_add(1, Ordering::Relaxed);
                        act.board.source_frame_at(&act.id, sent);
                        act.last_frame = Some(Instant::now());
                        act.last_shot_error = None;
                        act.hold_until = None;
                        act.backoff = BACKOFF_MIN;
                        if act.state != SourceState::Running {
                            act.last_error = None;
                            let detail = act.running_detail();
                            act.set_state(SourceState::Running, detail);
                        }
                    }
                    Err(e) => act.on_shot_error(&source, e),
                }
            }),
        );
    }

    fn on_shot_error(&mut self, source: &str, error: ObsError) {
        if error.is_connection_lost() {
            self.connection_failed(error);
            return;
        }
        if source != self.settings.source {
            // The capture moved to another source while this request was out.
            return;
        }
        match error {
            ObsError::SourceNotFound { .. } => {
                let delay = self.next_backoff();
                self.hold_until = Some(Instant::now() + delay);
                let detail = format!(
                    "connected to {}, but OBS has no source '{}' (create it in OBS, or pick another); next check in {:.1} s",
                    self.settings.url(),
                    source,
                    delay.as_secs_f64()
                );
                self.set_error(&error, detail);
            }
            _ => {
                // Not rendering, undecodable or refused: keep polling; the housekeeping tick
                // turns a long run of these into Stalled.
                if self.last_shot_error.as_ref() != Some(&error) {
                    tracing::debug!(source = %self.id, error = %error, "OBS screenshot failed");
                }
                if matches!(error, ObsError::Decode(_)) {
                    self.counters.decode_errors.fetch_add(1, Ordering::Relaxed);
                }
                self.last_shot_error = Some(error);
            }
        }
    }

    /// Reconnects when due; flags a stall.
    fn housekeeping(&mut self, ctx: &mut Context<Self>) {
        let now = Instant::now();
        if self.client.is_none() {
            let due = match self.retry_at {
                Some(t) => now >= t,
                None => true,
            };
            if !self.connecting && due {
                self.start_connect(ctx);
            }
            return;
        }
        if matches!(self.state, SourceState::Running | SourceState::Connecting) {
            let since = match (self.last_frame, self.connected_at) {
                (Some(f), Some(c)) => f.max(c),
                (f, c) => f.or(c).unwrap_or(now),
            };
            if now.duration_since(since) > STALL_AFTER {
                let why = self
                    .last_shot_error
                    .as_ref()
                    .map_or("no reply to screenshot requests".to_string(), |e| {
                        e.to_string()
                    });
                let detail = format!(
                    "connected to {}, but no frame of '{}' for over {} s: {why}",
                    self.settings.url(),
                    self.settings.source,
                    STALL_AFTER.as_secs()
                );
                self.set_state(SourceState::Stalled, detail);
            }
        }
    }

    fn snapshot(&self) -> ObsStateSnapshot {
        ObsStateSnapshot {
            connected: self.client.is_some(),
            url: self.settings.url(),
            source: self.settings.source.clone(),
            state: self.state,
            last_error: self.last_error.clone(),
            obs_version: self.obs_version.clone(),
        }
    }
}

impl Actor for ObsSource {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.board
            .actor_state(Self::NAME, ActorState::Running, self.clock.now());
        let url = self.settings.url();
        self.set_state(
            SourceState::Connecting,
            format!("connecting to OBS at {url}"),
        );
        self.start_connect(ctx);
        ctx.run_interval(self.frame_period(), |act, ctx| act.tick(ctx));
        ctx.run_interval(HOUSEKEEPING, |act, ctx| act.housekeeping(ctx));
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        self.drop_connection();
        self.board
            .source_state(&self.id, SourceState::Stopped, None, self.clock.now());
        self.board
            .actor_state(Self::NAME, ActorState::Stopped, self.clock.now());
    }
}

impl Supervised for ObsSource {
    fn restarting(&mut self, _: &mut Self::Context) {
        self.board.actor_restarted(Self::NAME, self.clock.now());
        // A fresh start: new connection, no pending replies, first retry soon.
        self.drop_connection();
        self.retry_at = None;
        self.backoff = BACKOFF_MIN;
        self.last_frame = None;
        self.last_shot_error = None;
    }
}

crate::impl_inject_panic!(ObsSource);

impl Handler<ListInputs> for ObsSource {
    type Result = ResponseFuture<Result<Vec<ObsInput>, ObsError>>;
    fn handle(&mut self, _: ListInputs, _: &mut Context<Self>) -> Self::Result {
        let client = self.client.clone();
        Box::pin(async move { client.ok_or(ObsError::Disconnected)?.inputs().await })
    }
}

impl Handler<GetMediaStatus> for ObsSource {
    type Result = ResponseFuture<Result<MediaStatus, ObsError>>;
    fn handle(&mut self, msg: GetMediaStatus, _: &mut Context<Self>) -> Self::Result {
        let client = self.client.clone();
        Box::pin(async move {
            client
                .ok_or(ObsError::Disconnected)?
                .media_status(&msg.input)
                .await
        })
    }
}

impl Handler<ControlMedia> for ObsSource {
    type Result = ResponseFuture<Result<MediaStatus, ObsError>>;
    fn handle(&mut self, msg: ControlMedia, _: &mut Context<Self>) -> Self::Result {
        let client = self.client.clone();
        Box::pin(async move {
            let client = client.ok_or(ObsError::Disconnected)?;
            let before = client.media_status(&msg.input).await?;
            client.media_action(&msg.input, msg.action).await?;
            settled_status(&client, &msg.input, msg.action, &before).await
        })
    }
}

/// How long [`ControlMedia`] waits for OBS to show the effect of an action.
const SETTLE_LIMIT: Duration = Duration::from_millis(1000);
const SETTLE_POLL: Duration = Duration::from_millis(25);

/// The media status once the action shows in it (OBS applies media actions on its media
/// thread, a little after acknowledging the request), or the last status read after
/// [`SETTLE_LIMIT`]. `before` is the status read just before the action.
async fn settled_status(
    client: &ObsClient,
    input: &str,
    action: MediaAction,
    before: &MediaStatus,
) -> Result<MediaStatus, ObsError> {
    let deadline = Instant::now() + SETTLE_LIMIT;
    loop {
        let status = client.media_status(input).await?;
        let settled = match action {
            MediaAction::Play | MediaAction::Restart => status.state == "playing",
            MediaAction::Pause => status.state == "paused",
            MediaAction::Stop => matches!(status.state.as_str(), "stopped" | "none" | "ended"),
            // The cursor moves towards the target: it lands on the keyframe at or before it
            // (up to a GOP early), so "clearly closer than before" is the sign, not equality.
            MediaAction::Seek { position_ms } => match (before.cursor_ms, status.cursor_ms) {
                (Some(b), Some(c)) => (c - position_ms).abs() + 500 < (b - position_ms).abs(),
                _ => true,
            },
        };
        if settled || Instant::now() >= deadline {
            return Ok(status);
        }
        actix_rt::time::sleep(SETTLE_POLL).await;
    }
}

impl Handler<SetSource> for ObsSource {
    type Result = ResponseActFuture<Self, Result<(), ObsError>>;
    fn handle(&mut self, msg: SetSource, _: &mut Context<Self>) -> Self::Result {
        let Some(client) = self.client.clone() else {
            return Box::pin(fut::ready(Err(ObsError::Disconnected)));
        };
        let source = msg.source;
        Box::pin(
            {
                let source = source.clone();
                async move { client.source_exists(&source).await }
            }
            .into_actor(self)
            .map(move |exists, act, ctx| {
                if !exists? {
                    tracing::info!(source = %act.id, requested = %source, "OBS has no such source; capture unchanged");
                    return Err(ObsError::SourceNotFound { name: source });
                }
                tracing::info!(source = %act.id, from = %act.settings.source, to = %source, "switching the captured OBS source");
                act.settings.source = source;
                act.hold_until = None;
                act.backoff = BACKOFF_MIN;
                act.last_shot_error = None;
                // Report the switch now; the next frame confirms it (or the error shows).
                act.last_frame = Some(Instant::now());
                if act.client.is_some() {
                    let state = match act.state {
                        SourceState::Error => SourceState::Connecting,
                        s => s,
                    };
                    let detail = act.running_detail();
                    act.set_state(state, detail);
                    act.tick(ctx);
                }
                Ok(())
            }),
        )
    }
}

impl Handler<GetObsState> for ObsSource {
    type Result = Result<ObsStateSnapshot, ObsError>;
    fn handle(&mut self, _: GetObsState, _: &mut Context<Self>) -> Self::Result {
        Ok(self.snapshot())
    }
}
