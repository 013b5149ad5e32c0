//! The microphone source: captures one input device with cpal into the pipeline's audio queue,
//! and lists and switches input devices on request.
//!
//! States on the status board (source kind `microphone`):
//!
//! ```text
//!  Connecting ──first samples──▶ Running ──no callback for 2 s──▶ Stalled
//!      │                           ▲  │                             │  │
//!      │                           └──┼────── samples ◀─────────────┘  │ still none after 10 s
//!      ▼                              ▼                                ▼
//!  Reconnecting ◀──── device gone, stream failing, cannot open (any state)
//!      (backoff 0.5 s doubling to 30 s; the next try is in the detail)
//!  Error: the selected device does not exist (and has not existed since it was selected) —
//!         retried with the same capped backoff, because it may be plugged in at any time. A
//!         device that was open and then vanished (unplugged, sound server gone) is Reconnecting.
//! ```
//!
//! The detail names the device and its format, e.g. `pulse: 44100 Hz 2 ch f32`.
//!
//! cpal streams are not `Send`, so each stream lives on its own
//! [`CaptureThread`](crate::mic::CaptureThread), which the actor watches every 100 ms; the
//! actor's arbiter never waits on a device. Device enumeration (which opens every device and can
//! take a while) runs on the blocking pool. Audio glitches that cpal reports (overruns, backend
//! errors) are counted in the source's `decode_errors`.
//!
//! **Timestamps.** Each chunk is stamped `anchor + samples / 16 kHz`, where the anchor is the
//! capture time of the stream's first sample (the first callback's arrival minus cpal's capture
//! delay); see [`ChunkAssembler`](crate::mic::ChunkAssembler) for re-anchoring.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use cav_core::{Clock, MonotonicClock};
use serde::Serialize;

use crate::health::{ActorState, SourceCounters, SourceState, StatusBoard};
use crate::messages::{AudioChunk, SourceId};
use crate::mic::{
    list_devices, resolve, AudioDevice, CaptureFormat, CaptureJob, CaptureThread, DeviceSelector,
    MicError,
};
use crate::queue::DropOldest;

/// No callback for this long makes the source Stalled.
pub const STALL_AFTER: Duration = Duration::from_secs(2);
/// Stalled this long (no callback at all: the stream is stuck, not merely quiet — a quiet
/// microphone still delivers zeros) makes the source reopen the device.
pub const REOPEN_AFTER: Duration = Duration::from_secs(10);
/// First retry delay after a failure; doubles up to [`BACKOFF_MAX`].
pub const BACKOFF_MIN: Duration = Duration::from_millis(500);
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How often the capture thread is checked.
const HOUSEKEEPING: Duration = Duration::from_millis(100);
/// How long stopping waits for the capture thread (it normally ends within milliseconds).
const STOP_WAIT: Duration = Duration::from_secs(2);

/// What to capture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MicSettings {
    pub device: DeviceSelector,
}

/// Lists the input devices (see [`list_devices`]); works whatever the capture is doing.
#[derive(Debug, Message)]
#[rtype(result = "Result<Vec<AudioDevice>, MicError>")]
pub struct ListDevices;

/// Switches the captured device at run time. The selector is checked first: one that names no
/// device answers the error ([`MicError::is_unknown_device`]) and the capture carries on
/// unchanged. Otherwise the answer is the device found, and the old stream is stopped and the
/// new one opened on the capture thread (the new device's samples follow within a second or
/// two; the board shows the switch). An index or a name is remembered as the device's name, so
/// that reopening after a failure finds the same device even if the indices have shifted.
#[derive(Debug, Message)]
#[rtype(result = "Result<AudioDevice, MicError>")]
pub struct SetDevice(pub DeviceSelector);

/// Reads the capture state. Never fails (the `Result` keeps the mic messages alike).
#[derive(Debug, Message)]
#[rtype(result = "Result<MicStateSnapshot, MicError>")]
pub struct GetMicState;

/// Stops capturing (waits up to 2 s for the stream to close) and does not reopen.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct StopMic;

/// What [`GetMicState`] answers.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MicStateSnapshot {
    /// What is asked for.
    pub selector: DeviceSelector,
    /// The open device, once open.
    pub device: Option<AudioDevice>,
    pub format: Option<CaptureFormat>,
    pub state: SourceState,
    pub last_error: Option<String>,
    /// Times the capture timeline was re-anchored (lost samples or clock drift), all streams.
    pub reanchors: u64,
    /// Times the capture was retried after a failure or a stall.
    pub reopens: u64,
}

pub struct MicSource {
    settings: MicSettings,
    id: String,
    source_id: SourceId,
    pub(crate) board: StatusBoard,
    clock: Arc<MonotonicClock>,
    audio_out: DropOldest<AudioChunk>,
    counters: Arc<SourceCounters>,
    capture: Option<CaptureThread>,
    /// A capture stopped by a restart, handed to the next one to wait for.
    retiring: Option<CaptureThread>,
    capture_started: Option<Instant>,
    /// The open device and format of the current capture (kept after a failure for the detail).
    opened: Option<(AudioDevice, CaptureFormat)>,
    retry_at: Option<Instant>,
    backoff: Duration,
    state: SourceState,
    last_error: Option<String>,
    /// Re-anchors of earlier streams, plus the current one's.
    reanchors_done: u64,
    reanchors_seen: u64,
    reopens: u64,
    /// The selected device has been open since it was selected: if it cannot be found now, it
    /// went away (Reconnecting), rather than never having existed (Error).
    device_seen: bool,
    stopped: bool,
}

impl MicSource {
    pub const NAME: &'static str = "mic_source";

    pub fn new(
        settings: MicSettings,
        id: String,
        board: StatusBoard,
        clock: Arc<MonotonicClock>,
        audio_out: DropOldest<AudioChunk>,
        counters: Arc<SourceCounters>,
    ) -> Self {
        Self {
            source_id: Arc::from(id.as_str()),
            settings,
            id,
            board,
            clock,
            audio_out,
            counters,
            capture: None,
            retiring: None,
            capture_started: None,
            opened: None,
            retry_at: None,
            backoff: BACKOFF_MIN,
            state: SourceState::Starting,
            last_error: None,
            reanchors_done: 0,
            reanchors_seen: 0,
            reopens: 0,
            device_seen: false,
            stopped: false,
        }
    }

    /// Shows a state on the board (and logs it when it changes).
    fn set_state(&mut self, state: SourceState, detail: String) {
        if self.state != state {
            tracing::info!(source = %self.id, from = ?self.state, to = ?state, detail = %detail, "microphone state");
        }
        self.state = state;
        self.board
            .source_state(&self.id, state, Some(detail), self.clock.now());
    }

    /// Shows the Error state with `error` as its last error.
    fn set_error(&mut self, error: &MicError, detail: String) {
        let message = error.to_string();
        if self.state != SourceState::Error || self.last_error.as_deref() != Some(&message) {
            tracing::warn!(source = %self.id, error = %message, detail = %detail, "microphone error");
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

    /// `pulse: 44100 Hz 2 ch f32`, or what is asked for while nothing is open.
    fn device_detail(&self) -> String {
        match &self.opened {
            Some((device, format)) => format!("{}: {format}", device.name),
            None => self.settings.device.to_string(),
        }
    }

    /// Starts a capture thread for the current selector (after `previous`, if any, has ended).
    fn start_capture(&mut self, previous: Option<CaptureThread>) {
        self.retry_at = None;
        self.opened = None;
        let job = CaptureJob {
            selector: self.settings.device.clone(),
            source: self.source_id.clone(),
            clock: self.clock.clone(),
            audio_out: self.audio_out.clone(),
            counters: self.counters.clone(),
            board: self.board.clone(),
            previous,
        };
        match CaptureThread::spawn(job) {
            Ok(capture) => {
                self.capture = Some(capture);
                self.capture_started = Some(Instant::now());
                self.reanchors_seen = 0;
            }
            Err(e) => self.capture_failed(e),
        }
    }

    /// Drops the capture's bookkeeping (keeping its re-anchor count) and returns it.
    fn take_capture(&mut self) -> Option<CaptureThread> {
        self.reanchors_done += self.reanchors_seen;
        self.reanchors_seen = 0;
        self.capture_started = None;
        self.capture.take()
    }

    /// Schedules the next attempt after a failed or broken capture.
    fn capture_failed(&mut self, error: MicError) {
        let delay = self.next_backoff();
        self.retry_at = Some(Instant::now() + delay);
        let detail = format!(
            "{}: {error}; next try in {:.1} s",
            self.device_detail(),
            delay.as_secs_f64()
        );
        if error.is_unknown_device() && !self.device_seen {
            // Nothing to reconnect to; but the device may be plugged in, so keep looking.
            self.set_error(&error, detail);
        } else {
            self.last_error = Some(error.to_string());
            self.set_state(SourceState::Reconnecting, detail);
        }
    }

    /// Reaps a finished capture, reopens when due, and tracks Running / Stalled.
    fn housekeeping(&mut self) {
        if self.stopped {
            return;
        }
        let now = Instant::now();
        if self.capture.as_ref().is_some_and(|c| c.is_finished()) {
            if let Some(capture) = self.take_capture() {
                let error = capture.join().err().unwrap_or_else(|| {
                    MicError::Internal("the capture thread ended by itself".into())
                });
                self.capture_failed(error);
            }
        }
        let Some((reanchors, opened, last_data)) = self
            .capture
            .as_ref()
            .map(|c| (c.reanchors(), c.opened(), c.last_data()))
        else {
            if self.retry_at.is_none_or(|t| now >= t) {
                self.reopens += 1;
                let stuck = self.retiring.take();
                self.start_capture(stuck);
            }
            return;
        };

        if reanchors > self.reanchors_seen {
            tracing::info!(source = %self.id, reanchors = self.reanchors_done + reanchors, "capture timeline re-anchored (samples lost or clock drift)");
            self.reanchors_seen = reanchors;
        }
        if self.opened.is_none() && opened.is_some() {
            self.opened = opened;
            self.device_seen = true;
            let detail = format!("{}; waiting for the first samples", self.device_detail());
            self.set_state(SourceState::Connecting, detail);
        }
        let last_data = last_data.map(|t| self.clock.instant_of(t));
        let since = match (last_data, self.capture_started) {
            (Some(d), Some(s)) => d.max(s),
            (d, s) => d.or(s).unwrap_or(now),
        };
        let quiet = now.saturating_duration_since(since);
        if last_data.is_some() && quiet <= STALL_AFTER {
            if self.state != SourceState::Running {
                self.backoff = BACKOFF_MIN;
                self.last_error = None;
                let detail = self.device_detail();
                self.set_state(SourceState::Running, detail);
            }
        } else if quiet > REOPEN_AFTER {
            let error = MicError::StreamFailed {
                device: self
                    .opened
                    .as_ref()
                    .map_or_else(|| self.settings.device.to_string(), |(d, _)| d.name.clone()),
                reason: format!("no audio for {} s", quiet.as_secs()),
            };
            // The stuck stream is stopped, and waited for by the next one.
            let stuck = self.take_capture();
            if let Some(c) = &stuck {
                c.request_stop();
            }
            self.retiring = stuck;
            self.capture_failed(error);
        } else if quiet > STALL_AFTER && self.state != SourceState::Stalled {
            let detail = format!(
                "{}: no audio for over {} s",
                self.device_detail(),
                STALL_AFTER.as_secs()
            );
            self.set_state(SourceState::Stalled, detail);
        }
    }

    /// Starts capturing from a device already checked to exist.
    fn switch_to(&mut self, device: &AudioDevice, selector: DeviceSelector) {
        let remembered = match selector {
            DeviceSelector::Default => DeviceSelector::Default,
            DeviceSelector::Index(_) | DeviceSelector::Name(_) => {
                DeviceSelector::Name(device.name.clone())
            }
        };
        tracing::info!(source = %self.id, from = %self.settings.device, to = %remembered, device = %device.name, index = device.index, "switching the microphone");
        self.settings.device = remembered;
        self.device_seen = false;
        self.backoff = BACKOFF_MIN;
        self.stopped = false;
        let previous = self.take_capture().or_else(|| self.retiring.take());
        if let Some(p) = &previous {
            p.request_stop();
        }
        self.start_capture(previous);
        let detail = format!("switching to '{}'", device.name);
        self.set_state(SourceState::Connecting, detail);
    }

    fn snapshot(&self) -> MicStateSnapshot {
        MicStateSnapshot {
            selector: self.settings.device.clone(),
            device: self.opened.as_ref().map(|(d, _)| d.clone()),
            format: self.opened.as_ref().map(|(_, f)| f.clone()),
            state: self.state,
            last_error: self.last_error.clone(),
            reanchors: self.reanchors_done + self.reanchors_seen,
            reopens: self.reopens,
        }
    }

    fn stop_capture(&mut self) {
        self.stopped = true;
        for capture in [self.take_capture(), self.retiring.take()]
            .into_iter()
            .flatten()
        {
            if !capture.stop_and_wait(STOP_WAIT) {
                tracing::warn!(source = %self.id, "the capture thread did not stop in time; left to finish on its own");
            }
        }
        self.board
            .source_state(&self.id, SourceState::Stopped, None, self.clock.now());
        self.state = SourceState::Stopped;
    }
}

impl Actor for MicSource {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.board
            .actor_state(Self::NAME, ActorState::Running, self.clock.now());
        if !self.stopped {
            let detail = format!("opening {}", self.settings.device);
            self.set_state(SourceState::Connecting, detail);
            let previous = self.retiring.take();
            self.start_capture(previous);
        }
        ctx.run_interval(HOUSEKEEPING, |act, _| act.housekeeping());
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        self.stop_capture();
        self.board
            .actor_state(Self::NAME, ActorState::Stopped, self.clock.now());
    }
}

impl Supervised for MicSource {
    fn restarting(&mut self, _: &mut Self::Context) {
        self.board.actor_restarted(Self::NAME, self.clock.now());
        // `stopped` has closed the stream; a restart opens it afresh.
        self.stopped = false;
        self.backoff = BACKOFF_MIN;
        self.retry_at = None;
        self.opened = None;
    }
}

crate::impl_inject_panic!(MicSource);

/// Runs blocking device work on the blocking pool, so the arbiter keeps serving.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, MicError> + Send + 'static,
) -> Result<T, MicError> {
    actix_rt::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(MicError::Internal(format!("device query failed: {e}"))))
}

impl Handler<ListDevices> for MicSource {
    type Result = ResponseFuture<Result<Vec<AudioDevice>, MicError>>;
    fn handle(&mut self, _: ListDevices, _: &mut Context<Self>) -> Self::Result {
        Box::pin(blocking(list_devices))
    }
}

impl Handler<SetDevice> for MicSource {
    type Result = ResponseActFuture<Self, Result<AudioDevice, MicError>>;
    fn handle(&mut self, msg: SetDevice, _: &mut Context<Self>) -> Self::Result {
        let selector = msg.0;
        let check = selector.clone();
        Box::pin(
            blocking(move || resolve(&check).map(|(device, _)| device))
                .into_actor(self)
                .map(move |found, act, _| {
                    let device = found.inspect_err(|e| {
                        tracing::info!(source = %act.id, requested = %selector, error = %e, "no such input device; capture unchanged");
                    })?;
                    act.switch_to(&device, selector);
                    Ok(device)
                }),
        )
    }
}

impl Handler<GetMicState> for MicSource {
    type Result = Result<MicStateSnapshot, MicError>;
    fn handle(&mut self, _: GetMicState, _: &mut Context<Self>) -> Self::Result {
        Ok(self.snapshot())
    }
}

impl Handler<StopMic> for MicSource {
    type Result = ();
    fn handle(&mut self, _: StopMic, _: &mut Context<Self>) {
        self.stop_capture();
    }
}
