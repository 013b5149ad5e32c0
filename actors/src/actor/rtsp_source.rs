//! The RTSP audio source: captures the audio track of an RTSP stream (an IP camera, a media
//! server) by running `ffmpeg` as a decoder subprocess, and feeds 16 kHz mono chunks into the
//! pipeline.
//!
//! `ffmpeg` does the network and codec work (RTSP/RTP over TCP or UDP, AAC, G.711, Opus, …) and
//! writes raw little-endian `f32` samples, mono, 16 kHz, to its stdout:
//!
//! ```text
//! ffmpeg -nostdin -hide_banner -loglevel error -rtsp_transport tcp|udp -timeout <µs> -i URL \
//!        -vn -af aresample=async=1 -ac 1 -ar 16000 -flush_packets 1 -f f32le -
//! ```
//!
//! * `-timeout` is ffmpeg 5.1's RTSP *socket I/O* timeout in microseconds (it replaced
//!   `-stimeout`, which 5.1 rejects; `-rw_timeout` is not honoured by the RTSP demuxer). It bounds
//!   both a server that accepts the connection but never answers and a stream that stops
//!   mid-way, over TCP and UDP alike.
//! * `aresample=async=1` fills gaps in the RTP timestamps (lost UDP packets) with silence, so the
//!   sample count keeps following the sender's timeline. The level is never normalised: samples
//!   are passed on exactly as decoded, only down-mixed and resampled.
//! * `-flush_packets 1` hands every decoded packet (~21 ms for AAC) to the pipe at once instead
//!   of letting ffmpeg's output buffer collect them.
//!
//! A dedicated thread reads the pipe and cuts 100 ms [`AudioChunk`]s into a [`DropOldest`]
//! queue; another keeps the last lines of ffmpeg's stderr for the error message. The actor polls
//! the subprocess every 100 ms and drives the states on the status board:
//!
//! ```text
//!  Connecting ──first audio──▶ Running ──no audio for 3 s──▶ Stalled ──audio again──▶ Running
//!      │                          │                            │
//!      ▼                          ▼                            ▼
//!  Reconnecting ◀── ffmpeg exited: end of stream, connection refused, 404, timeout, no audio
//!      │            track… (last_error says which; backoff 0.5 s doubling to 30 s, reset after
//!      │            10 s of healthy audio) — or no audio for 10 s (or 2× the timeout) although
//!      │            ffmpeg runs, which makes the actor restart ffmpeg itself
//!      └──first audio──▶ Running
//!  Error: ffmpeg is not installed (or cannot be started) — retried every 30 s.
//! ```
//!
//! **Credentials** in `rtsp://user:password@host/…` URLs never reach logs, the board or errors:
//! everything shown goes through [`redact_url`] / [`redact_text`]. (The URL is on ffmpeg's command
//! line, so local users who can read `/proc/PID/cmdline` can see it; ffmpeg has no other way to
//! take it.)
//!
//! **Timestamps.** Each chunk is stamped `anchor + first_sample / 16 kHz` (see
//! [`CaptureTimeline`]): the sample count is the clock, because the sender's samples are evenly
//! spaced while their arrival is not (ffmpeg's stream probing delivers the first ~1 s in one
//! burst; networks deliver in bursts). The anchor is fixed from the first 0.5 s of reads (no
//! sample can arrive before it was captured), then moved only when arrival and sample-count
//! time drift apart: later when the stream stays more than 300 ms behind the clock for a whole
//! 2 s window (a lost stretch of audio, or a sender clock running slow) — so a burst that
//! catches up never moves it — and earlier as soon as samples arrive more than 50 ms before
//! their stamps (a sender clock running fast). Each move is a counted, logged re-anchor.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, ErrorKind, Read};
use std::path::PathBuf;
use std::process::{Child, ChildStderr, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use actix::prelude::*;
use cav_core::{Clock, MonotonicClock, Timestamp, SAMPLE_RATE};
use serde::{Deserialize, Serialize};

use crate::health::{ActorState, SourceCounters, SourceState, StatusBoard};
use crate::messages::{AudioChunk, SourceId};
use crate::queue::DropOldest;

/// Samples per audio chunk: 100 ms.
pub const CHUNK_SAMPLES: usize = 1600;
/// No audio for this long while ffmpeg runs makes the source Stalled.
pub const STALL_AFTER: Duration = Duration::from_secs(3);
/// First retry delay after a failure; doubles up to [`BACKOFF_MAX`].
pub const BACKOFF_MIN: Duration = Duration::from_millis(500);
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Audio flowing this long without a break resets the backoff to [`BACKOFF_MIN`].
pub const HEALTHY_AFTER: Duration = Duration::from_secs(10);
/// The default socket timeout (ffmpeg's `-timeout`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Arrival and sample-count time may disagree by this much before the anchor is moved later.
pub const REANCHOR_THRESHOLD: Duration = Duration::from_millis(300);
/// The message shown when the ffmpeg binary cannot be found.
pub const FFMPEG_MISSING: &str = "ffmpeg not found (install the ffmpeg package)";

/// How often the subprocess and the stall timer are checked.
const HOUSEKEEPING: Duration = Duration::from_millis(100);
/// No audio for this long (or twice the socket timeout, if longer) while ffmpeg runs — none
/// yet, or none since a stall — and ffmpeg is restarted.
const STALL_RESTART_AFTER: Duration = Duration::from_secs(10);
/// The window over which a sustained lag is measured (see [`CaptureTimeline`]).
const REANCHOR_WINDOW: Duration = Duration::from_secs(2);
/// Lines of ffmpeg's stderr kept for the error message.
const STDERR_LINES: usize = 20;

/// How RTP travels from the server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RtspTransport {
    /// Interleaved in the RTSP TCP connection: works through NAT and firewalls, no loss.
    #[default]
    Tcp,
    /// Separate RTP/RTCP UDP ports: lower latency, but lost packets are lost.
    Udp,
}

impl RtspTransport {
    /// The value of ffmpeg's `-rtsp_transport`.
    pub fn as_str(self) -> &'static str {
        match self {
            RtspTransport::Tcp => "tcp",
            RtspTransport::Udp => "udp",
        }
    }
}

impl std::fmt::Display for RtspTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RtspTransport::Tcp => "TCP",
            RtspTransport::Udp => "UDP",
        })
    }
}

/// What to capture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RtspSettings {
    /// `rtsp://[user:password@]host[:port]/path`.
    pub url: String,
    pub transport: RtspTransport,
    /// Socket I/O timeout: a server silent this long ends the attempt (ffmpeg `-timeout`).
    /// Zero means [`DEFAULT_TIMEOUT`] (ffmpeg itself would wait forever).
    pub timeout: Duration,
}

impl RtspSettings {
    /// TCP transport and [`DEFAULT_TIMEOUT`].
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            transport: RtspTransport::Tcp,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The socket timeout in effect: [`Self::timeout`], or [`DEFAULT_TIMEOUT`] when it is zero.
    pub fn effective_timeout(&self) -> Duration {
        if self.timeout.is_zero() {
            DEFAULT_TIMEOUT
        } else {
            self.timeout
        }
    }
}

/// Stops capturing (kills and reaps ffmpeg) and shows the source as Stopped; the actor stays
/// alive but idle.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct StopRtsp;

/// The running ffmpeg and its two reader threads.
struct Session {
    child: Child,
    shared: Arc<SessionShared>,
    reader: Option<JoinHandle<()>>,
    stderr: Option<JoinHandle<()>>,
    started: Instant,
}

/// What the reader threads report to the actor.
#[derive(Default)]
struct SessionShared {
    /// Samples received in this session.
    samples: AtomicU64,
    /// When the latest samples arrived.
    last_audio: Mutex<Option<Instant>>,
    /// The last lines of ffmpeg's stderr, credentials redacted.
    stderr_tail: Mutex<VecDeque<String>>,
    /// Why reading ffmpeg's stdout failed, if it did.
    read_error: Mutex<Option<String>>,
    /// Re-anchors of this session's timeline (see [`CaptureTimeline`]).
    reanchors: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Each update is a single assignment or push, so a poisoned lock holds consistent data.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Session {
    /// Kills ffmpeg (if still running), reaps it, and waits briefly for the reader threads,
    /// which end when the pipes close.
    fn shutdown(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.join_readers(Duration::from_secs(1));
    }

    /// Joins the reader threads that finish within `limit`; any still running are left to end
    /// on their own when their pipe closes.
    fn join_readers(&mut self, limit: Duration) {
        let deadline = Instant::now() + limit;
        for slot in [&mut self.reader, &mut self.stderr] {
            if let Some(h) = slot.take() {
                while !h.is_finished() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(5));
                }
                if h.is_finished() {
                    let _ = h.join();
                }
            }
        }
    }

    fn stderr_tail(&self) -> Vec<String> {
        lock(&self.shared.stderr_tail).iter().cloned().collect()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Never leave an ffmpeg behind, whatever path dropped the session.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct RtspSource {
    settings: RtspSettings,
    id: String,
    source_id: SourceId,
    /// The URL with any password replaced by `***`: the only form that is ever shown.
    shown_url: String,
    pub(crate) board: StatusBoard,
    clock: Arc<MonotonicClock>,
    audio_out: DropOldest<AudioChunk>,
    counters: Arc<SourceCounters>,
    ffmpeg: PathBuf,
    session: Option<Session>,
    /// When the next attempt is due (while no ffmpeg runs).
    retry_at: Option<Instant>,
    backoff: Duration,
    state: SourceState,
    /// Since when audio has flowed without a stall (for the backoff reset).
    healthy_since: Option<Instant>,
    /// Sessions started, for the detail and logs.
    attempts: u64,
    /// The session's re-anchor count as last shown in the detail.
    shown_reanchors: u64,
    /// Set by [`StopRtsp`]: no more attempts until the actor is recreated.
    halted: bool,
}

impl RtspSource {
    pub const NAME: &'static str = "rtsp_source";
    /// The source kind to register on the status board.
    pub const KIND: &'static str = "rtsp";

    pub fn new(
        settings: RtspSettings,
        id: String,
        board: StatusBoard,
        clock: Arc<MonotonicClock>,
        audio_out: DropOldest<AudioChunk>,
        counters: Arc<SourceCounters>,
    ) -> Self {
        Self {
            source_id: Arc::from(id.as_str()),
            shown_url: redact_url(&settings.url),
            settings,
            id,
            board,
            clock,
            audio_out,
            counters,
            ffmpeg: PathBuf::from("ffmpeg"),
            session: None,
            retry_at: None,
            backoff: BACKOFF_MIN,
            state: SourceState::Starting,
            healthy_since: None,
            attempts: 0,
            shown_reanchors: 0,
            halted: false,
        }
    }

    /// Runs this program instead of `ffmpeg` from `PATH` (a path, or a name looked up in
    /// `PATH`).
    pub fn with_ffmpeg(mut self, program: impl Into<PathBuf>) -> Self {
        self.ffmpeg = program.into();
        self
    }

    /// The arguments ffmpeg is started with (the URL included, unredacted).
    pub fn ffmpeg_args(settings: &RtspSettings) -> Vec<String> {
        let timeout_us = settings
            .effective_timeout()
            .as_micros()
            .min(i64::MAX as u128);
        [
            "-nostdin",
            "-hide_banner",
            "-loglevel",
            "error",
            "-rtsp_transport",
            settings.transport.as_str(),
            "-timeout",
            &timeout_us.to_string(),
            "-i",
            &settings.url,
            "-vn",
            "-af",
            "aresample=async=1",
            "-ac",
            "1",
            "-ar",
            &SAMPLE_RATE.to_string(),
            "-flush_packets",
            "1",
            "-f",
            "f32le",
            "-",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    /// Shows a state on the board (and logs it when it changes).
    fn set_state(&mut self, state: SourceState, detail: String) {
        if self.state != state {
            tracing::info!(source = %self.id, url = %self.shown_url, from = ?self.state, to = ?state, detail = %detail, "RTSP source state");
        }
        self.state = state;
        self.board
            .source_state(&self.id, state, Some(detail), self.clock.now());
    }

    /// Records `error` as the source's last error and shows `state` with `detail`.
    fn set_failed(&mut self, state: SourceState, error: &str, detail: String) {
        tracing::warn!(source = %self.id, url = %self.shown_url, state = ?state, error = %error, detail = %detail, "RTSP source failed");
        self.state = state;
        let now = self.clock.now();
        // `source_error` also shows the Error state; `source_state` then sets the real one.
        self.board.source_error(&self.id, error.to_string(), now);
        self.board.source_state(&self.id, state, Some(detail), now);
    }

    /// The current backoff, then doubles it for next time.
    fn next_backoff(&mut self) -> Duration {
        let d = self.backoff;
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
        d
    }

    fn running_detail(&self) -> String {
        let mut detail = format!(
            "receiving audio from {} over {} (16 kHz mono via ffmpeg)",
            self.shown_url, self.settings.transport
        );
        if self.shown_reanchors > 0 {
            detail.push_str(&format!(
                "; timestamps re-anchored to the clock {} times",
                self.shown_reanchors
            ));
        }
        detail
    }

    /// Starts ffmpeg and its reader threads.
    fn start_session(&mut self) {
        self.retry_at = None;
        self.attempts += 1;
        let args = Self::ffmpeg_args(&self.settings);
        tracing::debug!(source = %self.id, url = %self.shown_url, transport = self.settings.transport.as_str(), attempt = self.attempts, "starting ffmpeg");
        let spawned = Command::new(&self.ffmpeg)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) => {
                let error = if e.kind() == ErrorKind::NotFound {
                    FFMPEG_MISSING.to_string()
                } else {
                    format!("cannot start ffmpeg ({}): {e}", self.ffmpeg.display())
                };
                // Retrying soon cannot help until somebody installs or fixes ffmpeg.
                self.backoff = BACKOFF_MAX;
                let delay = self.next_backoff();
                self.retry_at = Some(Instant::now() + delay);
                let detail = format!(
                    "cannot capture {}: {error}; next try in {:.1} s",
                    self.shown_url,
                    delay.as_secs_f64()
                );
                self.set_failed(SourceState::Error, &error, detail);
                return;
            }
        };
        let shared = Arc::new(SessionShared::default());
        let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
        let reader = stdout.and_then(|out| {
            let job = ReadJob {
                source: self.source_id.clone(),
                board: self.board.clone(),
                clock: self.clock.clone(),
                audio_out: self.audio_out.clone(),
                counters: self.counters.clone(),
                shared: shared.clone(),
                shown_url: self.shown_url.clone(),
            };
            std::thread::Builder::new()
                .name(format!("rtsp-{}", self.id))
                .spawn(move || job.run(out))
                .map_err(|e| tracing::error!(source = %self.id, error = %e, "cannot start the RTSP reader thread"))
                .ok()
        });
        let stderr = stderr.and_then(|err| {
            let (shared, url) = (shared.clone(), self.settings.url.clone());
            std::thread::Builder::new()
                .name(format!("rtsp-{}-log", self.id))
                .spawn(move || collect_stderr(err, &url, &shared))
                .map_err(|e| tracing::warn!(source = %self.id, error = %e, "cannot start the thread that reads ffmpeg's messages; errors will be less specific"))
                .ok()
        });
        let mut session = Session {
            child,
            shared,
            reader,
            stderr,
            started: Instant::now(),
        };
        if session.reader.is_none() {
            session.shutdown();
            let delay = self.next_backoff();
            self.retry_at = Some(Instant::now() + delay);
            let error = "cannot start the thread that reads ffmpeg's output";
            let detail = format!("{error}; next try in {:.1} s", delay.as_secs_f64());
            self.set_failed(SourceState::Error, error, detail);
            return;
        }
        self.session = Some(session);
        let detail = match self.state {
            SourceState::Reconnecting | SourceState::Error | SourceState::Stalled => format!(
                "reconnecting to {} over {} (attempt {})",
                self.shown_url, self.settings.transport, self.attempts
            ),
            _ => format!(
                "connecting to {} over {}",
                self.shown_url, self.settings.transport
            ),
        };
        let state = match self.state {
            SourceState::Starting | SourceState::Connecting | SourceState::Stopped => {
                SourceState::Connecting
            }
            _ => SourceState::Reconnecting,
        };
        self.set_state(state, detail);
    }

    /// Kills the running ffmpeg, if any.
    fn stop_session(&mut self) {
        if let Some(mut s) = self.session.take() {
            s.shutdown();
            tracing::debug!(source = %self.id, "ffmpeg stopped");
        }
        self.healthy_since = None;
    }

    /// Handles ffmpeg's exit (or a restart the actor decided on): why, and when to retry.
    fn session_ended(
        &mut self,
        mut session: Session,
        status: Option<ExitStatus>,
        why: Option<String>,
    ) {
        session.shutdown();
        let got_audio = session.shared.samples.load(Ordering::Relaxed) > 0;
        let tail = session.stderr_tail();
        let read_error = lock(&session.shared.read_error).clone();
        let error = why.unwrap_or_else(|| {
            explain_exit(
                status,
                &tail,
                got_audio,
                session.started.elapsed(),
                self.settings.effective_timeout(),
                read_error.as_deref(),
            )
        });
        if !tail.is_empty() {
            tracing::debug!(source = %self.id, stderr = %tail.join(" | "), "ffmpeg's last messages");
        }
        self.healthy_since = None;
        let delay = self.next_backoff();
        self.retry_at = Some(Instant::now() + delay);
        let detail = format!(
            "{error} ({}); next try in {:.1} s",
            self.shown_url,
            delay.as_secs_f64()
        );
        self.set_failed(SourceState::Reconnecting, &error, detail);
    }

    /// Reaps ffmpeg, follows the audio (Running / Stalled), and reconnects when due.
    fn housekeeping(&mut self) {
        if self.halted {
            return;
        }
        let now = Instant::now();
        let Some(session) = self.session.as_mut() else {
            if self.retry_at.is_none_or(|t| now >= t) {
                self.start_session();
            }
            return;
        };
        match session.child.try_wait() {
            Ok(None) => {}
            Ok(Some(status)) => {
                if let Some(mut s) = self.session.take() {
                    // The reader may still be emptying the pipe (milliseconds): let it finish
                    // first, so that the last chunks go out before the state changes.
                    s.join_readers(Duration::from_millis(500));
                    self.session_ended(s, Some(status), None);
                }
                return;
            }
            Err(e) => {
                if let Some(s) = self.session.take() {
                    self.session_ended(s, None, Some(format!("cannot watch ffmpeg: {e}")));
                }
                return;
            }
        }
        let got_audio = session.shared.samples.load(Ordering::Relaxed) > 0;
        let reanchors = session.shared.reanchors.load(Ordering::Relaxed);
        let last_audio = *lock(&session.shared.last_audio);
        let started = session.started;
        let silent_for = now.duration_since(last_audio.unwrap_or(started).max(started));
        // ffmpeg's own timeout does not fire while other data (video) keeps the connection
        // busy, so a session that never yields audio, or stops yielding it, is restarted here.
        let restart_after = STALL_RESTART_AFTER.max(self.settings.effective_timeout() * 2);
        match self.state {
            _ if !got_audio => {
                if silent_for > restart_after {
                    if let Some(s) = self.session.take() {
                        let why = format!(
                            "ffmpeg connected, but no audio arrived within {} s",
                            silent_for.as_secs()
                        );
                        self.session_ended(s, None, Some(why));
                    }
                }
            }
            SourceState::Running => {
                if silent_for > STALL_AFTER {
                    self.healthy_since = None;
                    let detail = format!(
                        "ffmpeg is connected to {}, but no audio has arrived for over {} s",
                        self.shown_url,
                        STALL_AFTER.as_secs()
                    );
                    self.set_state(SourceState::Stalled, detail);
                } else {
                    if self
                        .healthy_since
                        .is_some_and(|t| now.duration_since(t) >= HEALTHY_AFTER)
                    {
                        self.backoff = BACKOFF_MIN;
                    }
                    if reanchors != self.shown_reanchors {
                        self.shown_reanchors = reanchors;
                        let detail = self.running_detail();
                        self.set_state(SourceState::Running, detail);
                    }
                }
            }
            SourceState::Stalled => {
                if silent_for <= STALL_AFTER {
                    self.healthy_since = Some(now);
                    let detail = self.running_detail();
                    self.set_state(SourceState::Running, detail);
                } else if silent_for > restart_after {
                    if let Some(s) = self.session.take() {
                        let why = format!(
                            "no audio for {} s although ffmpeg stayed connected; restarting it",
                            silent_for.as_secs()
                        );
                        self.session_ended(s, None, Some(why));
                    }
                }
            }
            _ => {
                // First audio of this session.
                self.healthy_since = Some(now);
                self.shown_reanchors = reanchors;
                let detail = self.running_detail();
                self.set_state(SourceState::Running, detail);
            }
        }
    }
}

impl Actor for RtspSource {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.board
            .actor_state(Self::NAME, ActorState::Running, self.clock.now());
        if !self.halted {
            self.start_session();
        }
        ctx.run_interval(HOUSEKEEPING, |act, _| act.housekeeping());
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        self.stop_session();
        self.state = SourceState::Stopped;
        self.board
            .source_state(&self.id, SourceState::Stopped, None, self.clock.now());
        self.board
            .actor_state(Self::NAME, ActorState::Stopped, self.clock.now());
    }
}

impl Supervised for RtspSource {
    fn restarting(&mut self, _: &mut Self::Context) {
        self.board.actor_restarted(Self::NAME, self.clock.now());
        // A fresh start: `stopped` has killed ffmpeg; connect again right away.
        self.stop_session();
        self.retry_at = None;
        self.backoff = BACKOFF_MIN;
    }
}

impl Handler<StopRtsp> for RtspSource {
    type Result = ();
    fn handle(&mut self, _: StopRtsp, _: &mut Self::Context) {
        self.halted = true;
        self.retry_at = None;
        self.stop_session();
        self.set_state(
            SourceState::Stopped,
            format!("stopped ({})", self.shown_url),
        );
    }
}

crate::impl_inject_panic!(RtspSource);

/// A one-line reason for ffmpeg's exit, from its stderr (credentials already redacted) and exit
/// status. `ran_for` and `timeout` tell a silent server from other failures.
fn explain_exit(
    status: Option<ExitStatus>,
    stderr: &[String],
    got_audio: bool,
    ran_for: Duration,
    timeout: Duration,
    read_error: Option<&str>,
) -> String {
    let has = |needle: &str| stderr.iter().any(|l| l.contains(needle));
    let last_line = stderr.last().map(String::as_str).unwrap_or("");
    if has("does not contain any stream") || has("matches no streams") {
        return "the stream has no audio track".into();
    }
    if has("Connection refused") {
        return "connection refused".into();
    }
    if has("404 Not Found") {
        return "the server has no such stream (404 Not Found)".into();
    }
    if has("401 Unauthorized") {
        return "the server refused the credentials (401 Unauthorized)".into();
    }
    if has("403 Forbidden") {
        return "the server refused access (403 Forbidden)".into();
    }
    if has("Failed to resolve hostname") {
        return "cannot resolve the host name".into();
    }
    if has("No route to host") || has("Network is unreachable") {
        return "the host cannot be reached".into();
    }
    if has("Connection timed out") {
        return format!(
            "the server sent nothing for {:.1} s (connection timed out)",
            timeout.as_secs_f64()
        );
    }
    if has("Connection reset by peer") {
        return "the server closed the connection (connection reset)".into();
    }
    if !got_audio && has("Invalid data found when processing input") && ran_for >= timeout {
        // ffmpeg 5.1 reports a server that never answers DESCRIBE/PLAY this way.
        return format!(
            "no answer from the server within {:.1} s",
            timeout.as_secs_f64()
        );
    }
    if let Some(e) = read_error {
        return format!("cannot read ffmpeg's output: {e}");
    }
    match status {
        Some(s) if s.success() && stderr.is_empty() => {
            if got_audio {
                // ffmpeg cannot tell the media's end from a server that went away.
                "end of stream (the server ended the stream or closed the connection)".into()
            } else {
                "the stream ended before any audio arrived".into()
            }
        }
        Some(s) if s.success() => format!("the stream ended: {last_line}"),
        Some(s) => match s.code() {
            Some(code) if last_line.is_empty() => format!("ffmpeg exited with status {code}"),
            Some(code) => format!("ffmpeg exited with status {code}: {last_line}"),
            None => "ffmpeg was killed by a signal".into(),
        },
        None => "ffmpeg stopped".into(),
    }
}

/// Reads ffmpeg's stderr line by line into the session's tail, with credentials redacted.
fn collect_stderr(stderr: ChildStderr, url: &str, shared: &SessionShared) {
    let mut reader = BufReader::new(stderr);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => return,
            Ok(_) => {
                let text = String::from_utf8_lossy(&line);
                let text = redact_text(text.trim_end(), url);
                if text.is_empty() {
                    continue;
                }
                let mut tail = lock(&shared.stderr_tail);
                if tail.len() == STDERR_LINES {
                    tail.pop_front();
                }
                tail.push_back(text);
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// Everything the stdout reader thread needs.
struct ReadJob {
    source: SourceId,
    board: StatusBoard,
    clock: Arc<MonotonicClock>,
    audio_out: DropOldest<AudioChunk>,
    counters: Arc<SourceCounters>,
    shared: Arc<SessionShared>,
    shown_url: String,
}

impl ReadJob {
    /// Reads raw `f32le` samples until ffmpeg closes its stdout, cutting them into stamped
    /// chunks. The samples are passed on unchanged (no gain, no normalisation).
    fn run(self, mut stdout: ChildStdout) {
        // 16 KiB: 256 ms of audio per read at most, far more than ffmpeg writes at once.
        let mut buf = vec![0u8; 16 * 1024];
        // Bytes of an incomplete sample left over from the previous read (a pipe read can end
        // anywhere).
        let mut carry = 0usize;
        let mut pending: Vec<f32> = Vec::with_capacity(CHUNK_SAMPLES * 2);
        // Index (in this session) of `pending[0]`.
        let mut pending_start = 0u64;
        let mut total = 0u64;
        let mut timeline = CaptureTimeline::default();
        loop {
            let n = match stdout.read(&mut buf[carry..]) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    *lock(&self.shared.read_error) = Some(e.to_string());
                    break;
                }
            };
            let arrival = self.clock.now();
            let filled = carry + n;
            let whole = filled - filled % 4;
            let mut bad = 0u64;
            pending.extend(buf[..whole].chunks_exact(4).map(|b| {
                let v = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                if v.is_finite() {
                    v
                } else {
                    bad += 1;
                    0.0
                }
            }));
            if bad > 0 {
                self.counters
                    .decode_errors
                    .fetch_add(bad, Ordering::Relaxed);
            }
            buf.copy_within(whole..filled, 0);
            carry = filled - whole;
            let received = (whole / 4) as u64;
            if received == 0 {
                continue;
            }
            total += received;
            if let Some(shift) = timeline.on_arrival(arrival, total) {
                self.shared
                    .reanchors
                    .store(timeline.reanchors(), Ordering::Relaxed);
                tracing::info!(source = %self.source, url = %self.shown_url, shift_ms = shift.micros() / 1000, reanchors = timeline.reanchors(), "RTSP audio re-anchored to the clock");
            }
            self.shared.samples.store(total, Ordering::Relaxed);
            *lock(&self.shared.last_audio) = Some(Instant::now());
            // Until the anchor settles, samples wait (at most 0.5 s, once per session).
            while timeline.settled() && pending.len() >= CHUNK_SAMPLES {
                let rest = pending.split_off(CHUNK_SAMPLES);
                let samples = std::mem::replace(&mut pending, rest);
                self.emit(timeline.stamp(pending_start), samples);
                pending_start += CHUNK_SAMPLES as u64;
            }
        }
        // The end of the stream: hand on what is left, the last chunk possibly short (and
        // stamped with the anchor as it stands if the stream ended while settling).
        for samples in pending.chunks(CHUNK_SAMPLES) {
            self.emit(timeline.stamp(pending_start), samples.to_vec());
            pending_start += samples.len() as u64;
        }
    }

    fn emit(&self, captured: Timestamp, samples: Vec<f32>) {
        self.counters.audio_chunks.fetch_add(1, Ordering::Relaxed);
        self.counters
            .audio_samples
            .fetch_add(samples.len() as u64, Ordering::Relaxed);
        self.board.source_audio_at(&self.source, captured);
        self.audio_out.push(AudioChunk {
            source: self.source.clone(),
            captured,
            samples,
        });
    }
}

/// Maps sample indices of one ffmpeg session to capture times on the pipeline clock.
///
/// Sample `n` is stamped `anchor + n / 16 kHz`. Samples cannot arrive before they were
/// captured, so every read gives an upper bound on the anchor: `arrival - received / 16 kHz`.
///
/// * **Settling.** For [`SETTLE`] after the first read nothing is stamped, and the anchor is the
///   smallest bound seen. ffmpeg delivers the first ~1 s of a stream in one burst (what it
///   buffered while probing the stream), then real time; the reads after the burst show how
///   late the burst was. Anchoring at the first read instead would stamp that second of audio
///   up to a second too late, and correcting it chunk by chunk would make consecutive chunks
///   overlap.
/// * **Then** a read's *lag* (its arrival minus the stamp of its newest sample) is normally
///   positive: network and decoder latency, and bursts after a network hiccup, which catch up.
///   Only when even the smallest lag over a [`REANCHOR_WINDOW`] exceeds [`REANCHOR_THRESHOLD`]
///   is the stream really behind the clock (audio lost without a timestamp gap, a sender clock
///   running slow), and the anchor moves later by that smallest lag. A lag below
///   -[`EARLY_TOLERANCE`] (samples arriving before their stamp: a sender clock running fast)
///   moves the anchor earlier at once. Both moves are counted as re-anchors; within these
///   bounds the sample count alone decides, which is what the aligner wants (it ignores stamp
///   jitter within 50 ms in favour of the sample count).
#[derive(Clone, Debug, Default)]
pub struct CaptureTimeline {
    anchor: Option<Timestamp>,
    first_arrival: Option<Timestamp>,
    settled: bool,
    window_start: Timestamp,
    window_min_lag_us: Option<i64>,
    reanchors: u64,
}

/// How long the first reads of a session are watched before the anchor is fixed.
pub const SETTLE: Duration = Duration::from_millis(500);
/// Samples may arrive this much "before" their stamp before the anchor moves earlier.
pub const EARLY_TOLERANCE: Duration = Duration::from_millis(50);

impl CaptureTimeline {
    /// Microseconds spanned by `samples` at 16 kHz.
    fn span_us(samples: u64) -> i64 {
        (samples.saturating_mul(1_000_000) / u64::from(SAMPLE_RATE)) as i64
    }

    /// Notes that samples up to `received` (a running total) arrived at `arrival`. Returns the
    /// anchor's shift when this was a re-anchor.
    pub fn on_arrival(&mut self, arrival: Timestamp, received: u64) -> Option<Timestamp> {
        let bound = Timestamp(arrival.0 - Self::span_us(received));
        let first = *self.first_arrival.get_or_insert(arrival);
        let anchor = match self.anchor {
            Some(a) if self.settled => a,
            _ => {
                let a = self.anchor.map_or(bound, |a| a.min(bound));
                self.anchor = Some(a);
                if arrival.0 - first.0 >= SETTLE.as_micros() as i64 {
                    self.settled = true;
                    self.restart_window(arrival);
                }
                return None;
            }
        };
        let lag = bound.0 - anchor.0;
        if lag < -(EARLY_TOLERANCE.as_micros() as i64) {
            self.anchor = Some(bound);
            self.reanchors += 1;
            self.restart_window(arrival);
            return Some(Timestamp(lag));
        }
        let min_lag = self.window_min_lag_us.map_or(lag, |m| m.min(lag));
        self.window_min_lag_us = Some(min_lag);
        if arrival.0 - self.window_start.0 >= REANCHOR_WINDOW.as_micros() as i64 {
            self.restart_window(arrival);
            if min_lag > REANCHOR_THRESHOLD.as_micros() as i64 {
                self.anchor = Some(Timestamp(anchor.0 + min_lag));
                self.reanchors += 1;
                return Some(Timestamp(min_lag));
            }
        }
        None
    }

    fn restart_window(&mut self, at: Timestamp) {
        self.window_start = at;
        self.window_min_lag_us = None;
    }

    /// Whether the anchor is fixed, so that chunks can be stamped.
    pub fn settled(&self) -> bool {
        self.settled
    }

    /// The capture time of sample `index` (on the clock's epoch before any read).
    pub fn stamp(&self, index: u64) -> Timestamp {
        let anchor = self.anchor.unwrap_or_default();
        Timestamp(anchor.0 + Self::span_us(index))
    }

    /// How many times the anchor has moved since it settled.
    pub fn reanchors(&self) -> u64 {
        self.reanchors
    }
}

/// `url` with the password (if any) replaced by `***`: `rtsp://user:***@host/path`.
pub fn redact_url(url: &str) -> String {
    redact_text(url, url)
}

/// `text` with every credential hidden: the password of `url` (raw and percent-decoded), and
/// the password part of anything in it that looks like `scheme://user:password@`.
pub fn redact_text(text: &str, url: &str) -> String {
    let mut out = redact_userinfo(text);
    if let Some(pw) = password_of(url) {
        // Four characters at least: replacing shorter strings would mangle ordinary text, and
        // ffmpeg only ever prints the password inside the URL, which is handled above.
        for secret in [pw.to_string(), percent_decode(pw)] {
            if secret.chars().count() >= 4 {
                out = out.replace(&secret, "***");
            }
        }
    }
    out
}

/// The password in a URL's userinfo, if any.
fn password_of(url: &str) -> Option<&str> {
    let start = url.find("://")? + 3;
    let rest = &url[start..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let at = authority.rfind('@')?;
    let userinfo = &authority[..at];
    let colon = userinfo.find(':')?;
    Some(&userinfo[colon + 1..])
}

/// Replaces the password of every `scheme://user:password@host` in `text` with `***`.
fn redact_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("://") {
        let start = pos + 3;
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        // The authority ends at the path, the query, or anything that ends a URL in prose.
        let end = tail
            .find(|c: char| {
                matches!(c, '/' | '?' | '#') || c.is_whitespace() || c == '"' || c == '\''
            })
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@').and_then(|at| {
            let colon = authority[..at].find(':')?;
            Some((colon, at))
        }) {
            Some((colon, at)) => {
                out.push_str(&authority[..=colon]);
                out.push_str("***");
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// Decodes `%XX` escapes (invalid ones are kept as they are).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted_everywhere() {
        let url = "rtsp://admin:s3cr%40t!@cam.local:554/stream1";
        assert_eq!(redact_url(url), "rtsp://admin:***@cam.local:554/stream1");
        let line = format!("{url}: Connection refused; tried s3cr@t! and s3cr%40t!");
        let red = redact_text(&line, url);
        assert!(!red.contains("s3cr"), "{red}");
        assert!(red.starts_with("rtsp://admin:***@cam.local:554/stream1: Connection refused"));
        // Other URLs in the text lose their passwords too.
        assert_eq!(
            redact_text("[tcp @ 0x1] to rtsp://u:pw@h/x failed", "rtsp://h/x"),
            "[tcp @ 0x1] to rtsp://u:***@h/x failed"
        );
        // Nothing to hide: unchanged.
        for s in [
            "rtsp://cam/x",
            "rtsp://user@cam/x",
            "no url here",
            "a://",
            "://@:",
        ] {
            assert_eq!(redact_url(s), s);
        }
        assert_eq!(redact_url("rtsp://u:p@h"), "rtsp://u:***@h");
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%41%zz%"), "A%zz%");
    }

    #[test]
    fn ffmpeg_arguments() {
        let mut s = RtspSettings::new("rtsp://h/x");
        s.transport = RtspTransport::Udp;
        s.timeout = Duration::from_millis(2500);
        let args = RtspSource::ffmpeg_args(&s).join(" ");
        assert!(
            args.contains("-rtsp_transport udp -timeout 2500000 -i rtsp://h/x -vn"),
            "{args}"
        );
        assert!(
            args.ends_with("-ac 1 -ar 16000 -flush_packets 1 -f f32le -"),
            "{args}"
        );
        s.timeout = Duration::ZERO;
        assert!(RtspSource::ffmpeg_args(&s)
            .join(" ")
            .contains("-timeout 5000000 "));
    }

    fn ts(ms: i64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    /// A timeline fed 100 ms reads in real time from `start_ms` after a settled start.
    fn settled_at(start_ms: i64, n: &mut u64, now: &mut i64) -> CaptureTimeline {
        let mut t = CaptureTimeline::default();
        *now = start_ms;
        while !t.settled() {
            *n += 1600;
            assert_eq!(t.on_arrival(ts(*now), *n), None);
            *now += 100;
        }
        t
    }

    #[test]
    fn the_first_burst_is_stamped_from_the_reads_after_it() {
        let mut t = CaptureTimeline::default();
        // ffmpeg's start-up burst: 1 s of audio in four reads within 3 ms, 30 ms late...
        let mut n = 0;
        for k in 0..4 {
            n += 4000;
            assert_eq!(t.on_arrival(ts(10_030 + k), n), None);
            assert!(!t.settled());
        }
        // ...then real time, 0–40 ms late.
        for k in 1..=6u64 {
            n += 1600;
            let late = ((k as i64 - 1) * 17) % 40;
            assert_eq!(t.on_arrival(ts(10_000 + k as i64 * 100 + late), n), None);
        }
        assert!(t.settled());
        // The burst was captured during [9 s, 10 s).
        assert_eq!(t.stamp(0), ts(9_000));
        for k in 7..=50u64 {
            n += 1600;
            let late = (k as i64 * 7) % 40;
            assert_eq!(t.on_arrival(ts(10_000 + k as i64 * 100 + late), n), None);
        }
        assert_eq!(t.stamp(0), ts(9_000));
        assert_eq!(t.reanchors(), 0);
    }

    #[test]
    fn a_fast_sender_pulls_the_anchor_back() {
        let (mut n, mut now) = (0, 0);
        let mut t = settled_at(1_000, &mut n, &mut now);
        let anchor = t.stamp(0);
        // Samples arriving 40 ms "early" are within tolerance; 60 ms early move the anchor.
        n += 1600 + 640;
        assert_eq!(t.on_arrival(ts(now), n), None);
        assert_eq!(t.stamp(0), anchor);
        n += 1600 + 320;
        let shift = t.on_arrival(ts(now + 100), n);
        assert_eq!(shift, Some(Timestamp::from_millis(-60)));
        assert_eq!(t.stamp(0), Timestamp(anchor.0 - 60_000));
        assert_eq!(t.reanchors(), 1);
    }

    #[test]
    fn a_burst_does_not_move_the_anchor_but_lost_audio_does() {
        let (mut n, mut now) = (0, 0);
        let mut t = settled_at(0, &mut n, &mut now);
        let anchor = t.stamp(0);
        for _ in 0..10 {
            n += 1600;
            assert_eq!(t.on_arrival(ts(now), n), None);
            now += 100;
        }
        // The network holds 800 ms back, then delivers it all at once and catches up.
        now += 800;
        n += 9 * 1600;
        assert_eq!(t.on_arrival(ts(now), n), None);
        for _ in 0..30 {
            now += 100;
            n += 1600;
            assert_eq!(t.on_arrival(ts(now), n), None);
        }
        assert_eq!(t.stamp(0), anchor);
        // Now 1 s of audio is lost for good: the stream stays 1 s behind the clock.
        now += 1000;
        let mut shifts = Vec::new();
        for _ in 0..40 {
            now += 100;
            n += 1600;
            shifts.extend(t.on_arrival(ts(now), n));
        }
        assert_eq!(shifts, vec![Timestamp::from_millis(1000)]);
        assert_eq!(t.reanchors(), 1);
        assert_eq!(
            t.stamp(n),
            Timestamp(anchor.0 + 1_000_000 + CaptureTimeline::span_us(n))
        );
    }

    fn explain(stderr: &[&str], success: bool, got_audio: bool, ran_for_s: u64) -> String {
        use std::os::unix::process::ExitStatusExt;
        let status = ExitStatus::from_raw(if success { 0 } else { 1 << 8 });
        let lines: Vec<String> = stderr.iter().map(|s| s.to_string()).collect();
        explain_exit(
            Some(status),
            &lines,
            got_audio,
            Duration::from_secs(ran_for_s),
            Duration::from_secs(2),
            None,
        )
    }

    #[test]
    fn ffmpeg_exits_are_explained() {
        // Lines as ffmpeg 5.1 prints them.
        assert!(explain(&[], true, true, 15).starts_with("end of stream"));
        assert_eq!(
            explain(
                &["Output file #0 does not contain any stream"],
                false,
                false,
                1
            ),
            "the stream has no audio track"
        );
        assert_eq!(
            explain(
                &[
                    "[tcp @ 0x55bc5b4568c0] Connection to tcp://127.0.0.1:18999?timeout=2000000 failed: Connection refused",
                    "rtsp://127.0.0.1:18999/cam1: Connection refused"
                ],
                false,
                false,
                0
            ),
            "connection refused"
        );
        assert_eq!(
            explain(
                &[
                    "[rtsp @ 0x1] method DESCRIBE failed: 404 Not Found",
                    "x: Server returned 404 Not Found"
                ],
                false,
                false,
                0
            ),
            "the server has no such stream (404 Not Found)"
        );
        assert_eq!(
            explain(
                &["rtsp://h/x: Invalid data found when processing input"],
                false,
                false,
                2
            ),
            "no answer from the server within 2.0 s"
        );
        assert!(
            explain(&["rtsp://h/x: Connection timed out"], true, true, 9).contains("timed out")
        );
        assert_eq!(
            explain(&["something odd"], false, false, 0),
            "ffmpeg exited with status 1: something odd"
        );
    }
}
