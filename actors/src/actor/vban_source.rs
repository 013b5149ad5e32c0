//! The VBAN receiver: listens on one UDP port (6980 by default) for VBAN audio from
//! Voicemeeter, VBAN senders on phones, other computers, and turns the configured streams into
//! pipeline audio (16 kHz mono [`AudioChunk`]s), one source per stream.
//!
//! Every (sender address, stream name) pair is a stream of its own. A stream is **analysed**
//! when a configured, enabled stream has its name (and, if the config names one, its sender
//! IP): its packets are parsed ([`cav_core::vban`]), downmixed, resampled to 16 kHz (one
//! [`To16k`] per stream, recreated when the stream's rate changes) and pushed into that
//! source's queue. Every other stream is only **listed** ([`ListVbanStreams`]), so that a
//! discovery view can show what is on the network and how to configure it. Malformed,
//! truncated and non-audio packets are counted per sender and per stream and dropped.
//!
//! The socket is read by a thread of its own (a blocking `std::net::UdpSocket` with a 50 ms read
//! timeout, so that the stop flag is honoured quickly); the actor owns that thread, answers
//! questions from the shared tables, and rebinds with backoff (1 s doubling to 30 s) when the
//! port cannot be bound (another program already listens on it) or the thread fails.
//!
//! States of each configured stream on the status board:
//!
//! ```text
//!  Connecting ──first packet──▶ Running ──no packet for 2 s──▶ Stalled ──packet──▶ Running
//!  (listening, waiting)
//!  Error: the port cannot be bound (retried with backoff), or no pipeline queue was given.
//!  Stopped: disabled in the config, or the receiver was stopped.
//! ```
//!
//! **Timestamps.** A packet is sent when its last sample has been captured, so a stream's
//! first packet anchors the timeline: sample 0 was captured at `arrival − samples/rate`. From
//! then on the sample count is trusted, not the arrival time (network jitter would tear the
//! audio): output sample `k` of the resampler is stamped `anchor + k / 16 kHz`. Packets the
//! frame counter says were lost are replaced by silence of the same length (up to 2 s), so
//! that later audio stays at its time. The stream is **re-anchored** on the arrival clock —
//! the old resampler flushed and a new one started — when the sample-count time of a packet's
//! end and its arrival drift apart by more than [`REANCHOR_AFTER`] (a sender whose clock runs
//! slow or fast against ours, a long gap, a sender that paused), when the sender restarts (the
//! counter jumps back), when the sample rate changes, and after a stall. A re-anchor leaves a
//! small gap or overlap, which the aligner turns into counted silence or trims.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use actix::prelude::*;
use cav_core::vban::{self, FrameCounter, FrameStep, SampleFormat, SubProtocol, VbanError};
use cav_core::{Clock, MonotonicClock, Timestamp};
use serde::Serialize;

use crate::actor::file_source::StopSource;
use crate::health::{ActorState, SourceCounters, SourceState, StatusBoard};
use crate::messages::{AudioChunk, SourceId};
use crate::queue::DropOldest;
use crate::resample::{downmix, ResampleError, To16k, OUTPUT_RATE};

/// No packet for this long makes an analysed stream Stalled.
pub const STALL_AFTER: Duration = Duration::from_secs(2);
/// Sample-count time and arrival time further apart than this re-anchor the stream.
pub const REANCHOR_AFTER: Duration = Duration::from_millis(200);
/// Lost packets are filled with silence up to this long; a longer hole re-anchors instead.
pub const MAX_SILENCE_FILL: Duration = Duration::from_secs(2);
/// First retry delay after a bind or receive failure; doubles up to [`BACKOFF_MAX`].
pub const BACKOFF_MIN: Duration = Duration::from_secs(1);
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// The receive thread wakes at least this often to see the stop flag and check for stalls.
const READ_TIMEOUT: Duration = Duration::from_millis(50);
/// How often the receive thread looks for stalls and refreshes the board's details.
const HOUSEKEEPING: Duration = Duration::from_millis(100);
/// How often the actor checks on its thread.
const CHECK: Duration = Duration::from_millis(200);
/// Chunks go out once they hold 20 ms of 16 kHz audio (a 16 kHz stream's packets are 16 ms).
const MIN_CHUNK: usize = 320;
/// The discovery tables keep at most this many streams and senders (the oldest go first), so
/// that garbage from many addresses cannot grow memory without bound.
const MAX_LISTED: usize = 256;
/// Consecutive receive errors (other than timeouts) after which the socket is reopened.
const MAX_RECV_ERRORS: u32 = 50;

/// The receiver's settings: where to listen, and which streams are sources.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VbanSettings {
    /// Where to listen; default `0.0.0.0:6980`.
    pub bind: SocketAddr,
    pub streams: Vec<VbanStreamSettings>,
}

impl Default for VbanSettings {
    fn default() -> Self {
        Self {
            bind: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), vban::DEFAULT_PORT),
            streams: Vec::new(),
        }
    }
}

/// One configured stream, i.e. one source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VbanStreamSettings {
    /// The source id, e.g. `vban:Stream1`.
    pub id: String,
    /// The VBAN stream name (at most 16 bytes), matched exactly.
    pub name: String,
    /// Only packets from this IP address; `None` takes any sender.
    pub sender: Option<IpAddr>,
    /// A disabled stream is listed, shown as Stopped, and not analysed.
    pub enabled: bool,
}

impl VbanSettings {
    /// Checks what the types cannot: names fit VBAN's 16 bytes, ids are unique, and no two
    /// enabled streams claim the same (name, sender). The message names the key, e.g.
    /// `streams[1].name`.
    pub fn validate(&self) -> Result<(), String> {
        for (i, s) in self.streams.iter().enumerate() {
            if s.id.trim().is_empty() {
                return Err(format!("streams[{i}].id: a source id is required"));
            }
            if s.name.is_empty() || s.name.len() > vban::STREAM_NAME_LEN {
                return Err(format!(
                    "streams[{i}].name: '{}' must be 1 to {} bytes long (a VBAN stream name)",
                    s.name,
                    vban::STREAM_NAME_LEN
                ));
            }
            if s.name.contains('\0') {
                return Err(format!("streams[{i}].name: must not contain NUL"));
            }
            for (j, t) in self.streams[..i].iter().enumerate() {
                if t.id == s.id {
                    return Err(format!(
                        "streams[{i}].id: '{}' is already the id of streams[{j}]",
                        s.id
                    ));
                }
                let same_sender = match (s.sender, t.sender) {
                    (Some(a), Some(b)) => a.to_canonical() == b.to_canonical(),
                    _ => true,
                };
                if s.enabled && t.enabled && s.name == t.name && same_sender {
                    return Err(format!(
                        "streams[{i}].name: stream '{}' is also claimed by streams[{j}] ('{}'); give them different senders",
                        s.name, t.id
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Where one analysed stream's audio goes: its queue into the pipeline, and the counters of its
/// source (from [`StatusBoard::register_source`] with kind `"vban"`).
#[derive(Clone, Debug)]
pub struct VbanOutput {
    pub audio: DropOldest<AudioChunk>,
    pub counters: Arc<SourceCounters>,
}

/// Lists every stream seen on the port (configured or not), sorted by name, then sender.
#[derive(Debug, Message)]
#[rtype(result = "Vec<VbanStreamInfo>")]
pub struct ListVbanStreams;

/// The receiver's own state: where it listens and what it has received.
#[derive(Debug, Message)]
#[rtype(result = "VbanReceiverStatus")]
pub struct GetVbanStatus;

/// What the receiver does with a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamRole {
    /// A configured, enabled source: its audio goes into the pipeline.
    Analysed,
    /// No configured stream has this name.
    NotConfigured,
    /// A configured stream has this name, but only from another sender.
    SenderNotAllowed,
    /// Configured, but disabled.
    Disabled,
    /// Configured for any sender, and another sender is feeding it right now.
    OtherSenderActive,
    /// Configured and enabled, but no pipeline queue was given for it (a wiring bug).
    NotWired,
    /// The stream's latest packet was VBAN, but not audio (serial, text or service).
    NotAudio,
}

/// One stream in the discovery table.
#[derive(Clone, Debug, Serialize)]
pub struct VbanStreamInfo {
    /// The sender's address and port.
    pub sender: SocketAddr,
    /// The VBAN stream name.
    pub name: String,
    /// Of the latest packet with a readable header.
    pub sub_protocol: SubProtocol,
    /// From the latest good audio packet; `None` until one arrives.
    pub sample_rate: Option<u32>,
    pub channels: Option<usize>,
    /// `uint8`, `int16`, `int24`, `int32`, `float32` or `float64`.
    pub format: Option<String>,
    pub samples_per_frame: Option<usize>,
    /// Good audio packets.
    pub packets: u64,
    /// Packets with this stream's header that could not be used (bad format, truncated, not
    /// audio).
    pub malformed: u64,
    /// Packets missing according to the frame counter.
    pub frames_lost: u64,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    /// A packet arrived within the last 2 s.
    pub active: bool,
    pub role: StreamRole,
    /// The configured source this stream matches, if any.
    pub source: Option<String>,
}

/// What [`GetVbanStatus`] answers.
#[derive(Clone, Debug, Serialize)]
pub struct VbanReceiverStatus {
    /// The configured address.
    pub bind: SocketAddr,
    /// The address actually bound (the real port when the configured one is 0); `None` while
    /// not listening.
    pub local_addr: Option<SocketAddr>,
    /// Why the receiver is not listening (or the latest receive error).
    pub last_error: Option<String>,
    /// Datagrams received.
    pub packets: u64,
    /// Datagrams dropped because they were not usable VBAN audio (includes `not_audio`).
    pub malformed: u64,
    /// Of those, valid VBAN packets of another sub-protocol.
    pub not_audio: u64,
    pub senders: Vec<VbanSenderInfo>,
}

/// Datagrams from one address.
#[derive(Clone, Debug, Serialize)]
pub struct VbanSenderInfo {
    pub sender: SocketAddr,
    pub packets: u64,
    pub malformed: u64,
    /// Why the latest malformed packet was dropped.
    pub last_error: Option<String>,
    pub last_seen: Timestamp,
}

/// The tables the receive thread fills and the actor reads.
#[derive(Debug, Default)]
struct Shared {
    local_addr: Option<SocketAddr>,
    last_error: Option<String>,
    packets: u64,
    malformed: u64,
    not_audio: u64,
    /// By sender, then by stream name (a sender has few streams: a short list is quickest).
    streams: HashMap<SocketAddr, Vec<Listed>>,
    senders: HashMap<SocketAddr, VbanSenderInfo>,
}

#[derive(Debug)]
struct Listed {
    info: VbanStreamInfo,
    frames: FrameCounter,
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    // Every update is a few plain assignments, so a poisoned lock is still consistent.
    shared.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    fn stream_count(&self) -> usize {
        self.streams.values().map(Vec::len).sum()
    }

    /// The entry of (sender, name), created (evicting the stalest when full) if new.
    fn listed(&mut self, from: SocketAddr, name: &str, now: Timestamp) -> &mut Listed {
        let exists = self
            .streams
            .get(&from)
            .is_some_and(|v| v.iter().any(|l| l.info.name == name));
        if !exists {
            if self.stream_count() >= MAX_LISTED {
                self.evict_stalest_stream();
            }
            tracing::info!(sender = %from, stream = name, "new VBAN stream");
            self.streams.entry(from).or_default().push(Listed {
                info: VbanStreamInfo {
                    sender: from,
                    name: name.to_string(),
                    sub_protocol: SubProtocol::Audio,
                    sample_rate: None,
                    channels: None,
                    format: None,
                    samples_per_frame: None,
                    packets: 0,
                    malformed: 0,
                    frames_lost: 0,
                    first_seen: now,
                    last_seen: now,
                    active: true,
                    role: StreamRole::NotConfigured,
                    source: None,
                },
                frames: FrameCounter::default(),
            });
        }
        let list = self.streams.entry(from).or_default();
        // Found, or the one just pushed (the list is never empty here).
        let i = list
            .iter()
            .position(|l| l.info.name == name)
            .unwrap_or(list.len().saturating_sub(1));
        &mut list[i]
    }

    fn evict_stalest_stream(&mut self) {
        let stalest = self
            .streams
            .iter()
            .flat_map(|(a, v)| {
                v.iter()
                    .map(move |l| (l.info.last_seen, *a, l.info.name.clone()))
            })
            .min();
        if let Some((_, addr, name)) = stalest {
            if let Some(v) = self.streams.get_mut(&addr) {
                v.retain(|l| l.info.name != name);
                if v.is_empty() {
                    self.streams.remove(&addr);
                }
            }
        }
    }

    fn sender(&mut self, from: SocketAddr, now: Timestamp) -> &mut VbanSenderInfo {
        if !self.senders.contains_key(&from) && self.senders.len() >= MAX_LISTED {
            let stalest = self
                .senders
                .values()
                .min_by_key(|s| s.last_seen)
                .map(|s| s.sender);
            if let Some(a) = stalest {
                self.senders.remove(&a);
            }
        }
        self.senders.entry(from).or_insert_with(|| VbanSenderInfo {
            sender: from,
            packets: 0,
            malformed: 0,
            last_error: None,
            last_seen: now,
        })
    }
}

/// A chunk ready for the queue: capture time of its first sample, 16 kHz mono samples.
type Chunk = (Timestamp, Vec<f32>);

/// One analysed stream's time line: a resampler and the sample counts that stamp its output.
struct Timeline {
    rate: u32,
    resampler: To16k,
    /// Capture time of input sample 0.
    anchor: Timestamp,
    /// Input samples (per channel) fed since the anchor, silence fill included.
    in_samples: u64,
    /// 16 kHz samples produced since the anchor but not yet sent.
    pending: Vec<f32>,
    /// Index (since the anchor) of `pending[0]`.
    pending_start: u64,
}

impl Timeline {
    fn new(rate: u32, anchor: Timestamp) -> Result<Self, ResampleError> {
        Ok(Self {
            rate,
            resampler: To16k::new(rate)?,
            anchor,
            in_samples: 0,
            pending: Vec::new(),
            pending_start: 0,
        })
    }

    /// The capture time of input sample `n` since the anchor.
    fn input_time(&self, n: u64) -> Timestamp {
        let us = u128::from(n) * 1_000_000 / u128::from(self.rate.max(1));
        Timestamp(
            self.anchor
                .0
                .saturating_add(i64::try_from(us).unwrap_or(i64::MAX)),
        )
    }

    fn output_time(&self, k: u64) -> Timestamp {
        let us = u128::from(k) * 1_000_000 / u128::from(OUTPUT_RATE);
        Timestamp(
            self.anchor
                .0
                .saturating_add(i64::try_from(us).unwrap_or(i64::MAX)),
        )
    }

    fn feed(&mut self, mono: &[f32], chunks: &mut Vec<Chunk>) -> Result<(), ResampleError> {
        self.in_samples += mono.len() as u64;
        self.resampler.push(mono, &mut self.pending)?;
        if self.pending.len() >= MIN_CHUNK {
            self.emit(chunks);
        }
        Ok(())
    }

    fn emit(&mut self, chunks: &mut Vec<Chunk>) {
        if self.pending.is_empty() {
            return;
        }
        let samples = std::mem::take(&mut self.pending);
        let t = self.output_time(self.pending_start);
        self.pending_start += samples.len() as u64;
        chunks.push((t, samples));
    }

    /// Flushes the resampler's tail and sends what is left.
    fn finish(mut self, chunks: &mut Vec<Chunk>) -> Result<(), ResampleError> {
        let flushed = self.resampler.flush(&mut self.pending);
        self.emit(chunks);
        flushed
    }
}

/// One configured, enabled and wired stream.
struct Analysed {
    id: String,
    source: SourceId,
    name: String,
    out: VbanOutput,
    /// The address feeding it now.
    peer: Option<SocketAddr>,
    last_packet: Option<Timestamp>,
    frames: FrameCounter,
    timeline: Option<Timeline>,
    state: SourceState,
    /// Rate, channels and format of the latest packet.
    format: Option<(u32, usize, SampleFormat)>,
    lost: u64,
    restarts: u64,
    reanchors: u64,
    /// The board's detail is out of date.
    dirty: bool,
}

impl Analysed {
    fn new(cfg: &VbanStreamSettings, out: VbanOutput) -> Self {
        Self {
            id: cfg.id.clone(),
            source: Arc::from(cfg.id.as_str()),
            name: cfg.name.clone(),
            out,
            peer: None,
            last_packet: None,
            frames: FrameCounter::default(),
            timeline: None,
            state: SourceState::Connecting,
            format: None,
            lost: 0,
            restarts: 0,
            reanchors: 0,
            dirty: false,
        }
    }

    /// Whether a packet from `from` may feed this stream: the current sender, or any sender
    /// once the current one has been silent for [`STALL_AFTER`] (e.g. it restarted on another
    /// port).
    fn accepts(&self, from: SocketAddr, now: Timestamp) -> bool {
        match (self.peer, self.last_packet) {
            (Some(p), Some(last)) if p != from => stalled(last, now),
            _ => true,
        }
    }

    fn detail(&self) -> String {
        let Some((rate, channels, format)) = self.format else {
            return format!("waiting for VBAN stream '{}'", self.name);
        };
        let peer = self.peer.map_or_else(|| "?".to_string(), |p| p.to_string());
        format!(
            "{rate} Hz {channels} ch {format} from {peer} (stream '{}'); frames lost: {}, sender restarts: {}, re-anchored: {}",
            self.name, self.lost, self.restarts, self.reanchors
        )
    }

    /// Ends the current time line (its tail goes out); the next packet starts a new one.
    fn end_timeline(&mut self, chunks: &mut Vec<Chunk>) {
        if let Some(t) = self.timeline.take() {
            if let Err(e) = t.finish(chunks) {
                tracing::warn!(source = %self.id, error = %e, "VBAN resampler flush failed");
            }
        }
    }

    /// Switches to a new sender: a new time line and frame counter.
    fn switch_peer(&mut self, from: SocketAddr, chunks: &mut Vec<Chunk>) {
        if let Some(old) = self.peer {
            tracing::info!(source = %self.id, stream = %self.name, from = %old, to = %from, "VBAN stream switched sender");
        }
        self.end_timeline(chunks);
        self.frames.reset();
        self.peer = Some(from);
        self.dirty = true;
    }

    /// Takes one good audio packet that arrived at `now`.
    fn on_packet(
        &mut self,
        p: &vban::VbanPacket<'_>,
        now: Timestamp,
        chunks: &mut Vec<Chunk>,
    ) -> Result<(), ResampleError> {
        self.last_packet = Some(now);
        let fmt = (p.sample_rate, p.channels, p.format);
        if self.format != Some(fmt) {
            self.format = Some(fmt);
            self.dirty = true;
        }
        match self.frames.observe(p.frame_counter) {
            FrameStep::Duplicate | FrameStep::Late => return Ok(()),
            FrameStep::Restart => {
                tracing::info!(source = %self.id, counter = p.frame_counter, "VBAN sender restarted (frame counter jumped); re-anchoring");
                self.restarts += 1;
                self.dirty = true;
                self.end_timeline(chunks);
            }
            FrameStep::Lost { lost } => {
                self.lost += u64::from(lost);
                self.dirty = true;
                let fill = u64::from(lost) * p.samples_per_frame as u64;
                let too_long =
                    fill as f64 / f64::from(p.sample_rate.max(1)) > MAX_SILENCE_FILL.as_secs_f64();
                match self.timeline.as_mut() {
                    Some(t) if !too_long && t.rate == p.sample_rate => {
                        tracing::debug!(source = %self.id, lost, "VBAN packets lost; filled with silence");
                        t.feed(&vec![0.0; fill as usize], chunks)?;
                    }
                    _ => self.end_timeline(chunks),
                }
            }
            FrameStep::First | FrameStep::Next => {}
        }
        let frames = p.frames() as u64;
        if self
            .timeline
            .as_ref()
            .is_some_and(|t| t.rate != p.sample_rate)
        {
            tracing::info!(source = %self.id, rate = p.sample_rate, "VBAN stream changed its sample rate; new resampler");
            self.end_timeline(chunks);
        }
        if let Some(t) = self.timeline.as_ref() {
            let end = t.input_time(t.in_samples + frames);
            let drift_us = now.0 - end.0;
            if drift_us.unsigned_abs() > REANCHOR_AFTER.as_micros() as u64 {
                tracing::info!(source = %self.id, drift_ms = drift_us / 1000, "VBAN stream drifted from the clock; re-anchoring");
                self.reanchors += 1;
                self.dirty = true;
                self.end_timeline(chunks);
            }
        }
        let timeline = match self.timeline.as_mut() {
            Some(t) => t,
            None => {
                let length_us = frames * 1_000_000 / u64::from(p.sample_rate.max(1));
                let anchor = Timestamp(now.0 - length_us as i64);
                self.timeline.insert(Timeline::new(p.sample_rate, anchor)?)
            }
        };
        let mono = downmix(&p.samples_f32(), p.channels);
        timeline.feed(&mono, chunks)
    }

    /// Sends chunks to the queue and counts them.
    fn send(&self, chunks: Vec<Chunk>, board: &StatusBoard) {
        let Some(last) = chunks.last().map(|c| c.0) else {
            return;
        };
        for (captured, samples) in chunks {
            self.out
                .counters
                .audio_chunks
                .fetch_add(1, Ordering::Relaxed);
            self.out
                .counters
                .audio_samples
                .fetch_add(samples.len() as u64, Ordering::Relaxed);
            self.out.audio.push(AudioChunk {
                source: self.source.clone(),
                captured,
                samples,
            });
        }
        board.source_audio_at(&self.id, last);
    }
}

fn stalled(last: Timestamp, now: Timestamp) -> bool {
    now.0 - last.0 > STALL_AFTER.as_micros() as i64
}

/// The receive thread's packet logic, apart from the socket (so tests can drive it with
/// made-up times).
struct Demux {
    local: SocketAddr,
    configured: Vec<VbanStreamSettings>,
    /// Parallel to `configured`: `Some` for enabled streams with an output.
    analysed: Vec<Option<Analysed>>,
    board: StatusBoard,
    shared: Arc<Mutex<Shared>>,
    last_housekeeping: Option<Timestamp>,
}

/// Where a stream's packets go.
struct Route {
    role: StreamRole,
    /// The index of the matching configured stream.
    index: Option<usize>,
}

impl Demux {
    /// Builds the table of sources and shows them on the board as waiting.
    fn new(
        local: SocketAddr,
        configured: Vec<VbanStreamSettings>,
        outputs: &HashMap<String, VbanOutput>,
        board: StatusBoard,
        shared: Arc<Mutex<Shared>>,
        now: Timestamp,
    ) -> Self {
        let analysed = configured
            .iter()
            .map(|cfg| {
                let out = outputs.get(&cfg.id).filter(|_| cfg.enabled)?;
                board.source_state(
                    &cfg.id,
                    SourceState::Connecting,
                    Some(format!(
                        "listening on {local}; waiting for VBAN stream '{}'{}",
                        cfg.name,
                        cfg.sender.map_or(String::new(), |ip| format!(" from {ip}"))
                    )),
                    now,
                );
                Some(Analysed::new(cfg, out.clone()))
            })
            .collect();
        Self {
            local,
            configured,
            analysed,
            board,
            shared,
            last_housekeeping: None,
        }
    }

    fn route(&self, name: &str, from: SocketAddr, now: Timestamp) -> Route {
        let mut name_matched = false;
        for (i, cfg) in self.configured.iter().enumerate() {
            if cfg.name != name {
                continue;
            }
            name_matched = true;
            if cfg.sender.is_some_and(|ip| ip.to_canonical() != from.ip()) {
                continue;
            }
            let role = if !cfg.enabled {
                StreamRole::Disabled
            } else {
                match &self.analysed[i] {
                    None => StreamRole::NotWired,
                    Some(a) if a.accepts(from, now) => StreamRole::Analysed,
                    Some(_) => StreamRole::OtherSenderActive,
                }
            };
            return Route {
                role,
                index: Some(i),
            };
        }
        Route {
            role: if name_matched {
                StreamRole::SenderNotAllowed
            } else {
                StreamRole::NotConfigured
            },
            index: None,
        }
    }

    /// Takes one datagram that arrived from `from` at `now`.
    fn on_datagram(&mut self, bytes: &[u8], from: SocketAddr, now: Timestamp) {
        // An IPv4 sender on an IPv6 socket shows as ::ffff:a.b.c.d; compare as IPv4.
        let from = SocketAddr::new(from.ip().to_canonical(), from.port());
        match vban::parse(bytes) {
            Ok(p) => self.on_audio(&p, from, now),
            Err(e) => self.on_bad(bytes, from, now, e),
        }
    }

    fn on_audio(&mut self, p: &vban::VbanPacket<'_>, from: SocketAddr, now: Timestamp) {
        let route = self.route(&p.stream_name, from, now);
        let mut chunks = Vec::new();
        if let (StreamRole::Analysed, Some(i)) = (route.role, route.index) {
            if let Some(a) = self.analysed[i].as_mut() {
                if a.peer != Some(from) {
                    a.switch_peer(from, &mut chunks);
                }
                if let Err(e) = a.on_packet(p, now, &mut chunks) {
                    // Cannot happen for the rates in the VBAN table; counted, not fatal.
                    tracing::warn!(source = %a.id, error = %e, "VBAN resampling failed; restarting the stream's time line");
                    a.out.counters.decode_errors.fetch_add(1, Ordering::Relaxed);
                    a.timeline = None;
                }
                if a.state != SourceState::Running {
                    a.state = SourceState::Running;
                    a.dirty = false;
                    let detail = a.detail();
                    tracing::info!(source = %a.id, detail = %detail, "VBAN source running");
                    self.board
                        .source_state(&a.id, SourceState::Running, Some(detail), now);
                }
                a.send(chunks, &self.board);
            }
        }
        let source = route.index.map(|i| self.configured[i].id.clone());
        let mut shared = lock(&self.shared);
        shared.packets += 1;
        let s = shared.sender(from, now);
        s.packets += 1;
        s.last_seen = now;
        let l = shared.listed(from, &p.stream_name, now);
        let lost_before = l.frames.lost();
        l.frames.observe(p.frame_counter);
        let i = &mut l.info;
        i.frames_lost += l.frames.lost() - lost_before;
        i.sub_protocol = SubProtocol::Audio;
        i.sample_rate = Some(p.sample_rate);
        i.channels = Some(p.channels);
        if i.format.as_deref() != Some(p.format.name()) {
            i.format = Some(p.format.name().to_string());
        }
        i.samples_per_frame = Some(p.samples_per_frame);
        i.packets += 1;
        i.last_seen = now;
        i.role = route.role;
        i.source = source;
    }

    fn on_bad(&mut self, bytes: &[u8], from: SocketAddr, now: Timestamp, error: VbanError) {
        let not_audio = matches!(error, VbanError::NotAudio { .. });
        let name = vban::stream_name(bytes);
        let route = name.as_deref().map(|n| self.route(n, from, now));
        if !not_audio {
            // A broken packet of an analysed stream is a decode error of that source.
            if let Some(Route {
                role: StreamRole::Analysed,
                index: Some(i),
            }) = route
            {
                if let Some(a) = self.analysed[i].as_ref() {
                    a.out.counters.decode_errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        let mut shared = lock(&self.shared);
        shared.packets += 1;
        shared.malformed += 1;
        if not_audio {
            shared.not_audio += 1;
        }
        let message = error.to_string();
        let s = shared.sender(from, now);
        s.packets += 1;
        s.malformed += 1;
        s.last_seen = now;
        if s.malformed == 1 {
            tracing::warn!(sender = %from, len = bytes.len(), error = %message, "dropping a packet on the VBAN port that is not usable VBAN audio (further ones are logged at debug level)");
        } else {
            tracing::debug!(sender = %from, len = bytes.len(), error = %message, "dropped a VBAN packet");
        }
        s.last_error = Some(message);
        if let (Some(name), Some(route)) = (name, route) {
            let source = route.index.map(|i| self.configured[i].id.clone());
            let sub = vban::sub_protocol(bytes).unwrap_or(SubProtocol::Audio);
            let l = shared.listed(from, &name, now);
            l.info.malformed += 1;
            l.info.last_seen = now;
            l.info.sub_protocol = sub;
            l.info.role = if not_audio {
                StreamRole::NotAudio
            } else {
                route.role
            };
            l.info.source = source;
        }
    }

    /// Flags stalls (flushing the stalled stream's tail) and refreshes the board's details.
    /// Cheap; runs at most every [`HOUSEKEEPING`].
    fn housekeeping(&mut self, now: Timestamp) {
        if self
            .last_housekeeping
            .is_some_and(|t| now.0 - t.0 < HOUSEKEEPING.as_micros() as i64)
        {
            return;
        }
        self.last_housekeeping = Some(now);
        for a in self.analysed.iter_mut().flatten() {
            let Some(last) = a.last_packet else { continue };
            if a.state == SourceState::Running && stalled(last, now) {
                let mut chunks = Vec::new();
                a.end_timeline(&mut chunks);
                a.frames.reset();
                a.send(chunks, &self.board);
                a.state = SourceState::Stalled;
                a.dirty = false;
                let detail = format!(
                    "no VBAN packet for over {} s; last: {}",
                    STALL_AFTER.as_secs(),
                    a.detail()
                );
                tracing::info!(source = %a.id, detail = %detail, "VBAN source stalled");
                self.board
                    .source_state(&a.id, SourceState::Stalled, Some(detail), now);
            } else if a.dirty && a.state == SourceState::Running {
                a.dirty = false;
                self.board
                    .source_state(&a.id, SourceState::Running, Some(a.detail()), now);
            }
        }
    }
}

/// The receive thread: reads datagrams until told to stop.
fn receive(
    socket: UdpSocket,
    stop: Arc<AtomicBool>,
    mut demux: Demux,
    clock: Arc<MonotonicClock>,
) -> Result<(), String> {
    // Whole datagrams: a larger-than-VBAN one must be seen at its real length (and rejected),
    // not silently cut to a plausible size.
    let mut buf = vec![0u8; 65_536];
    let mut errors = 0u32;
    tracing::info!(local = %demux.local, "VBAN receiver listening");
    while !stop.load(Ordering::SeqCst) {
        match socket.recv_from(&mut buf) {
            Ok((len, from)) => {
                errors = 0;
                let now = clock.now();
                demux.on_datagram(&buf[..len], from, now);
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            // An ICMP "port unreachable" for something we never sent (Windows reports these on
            // UDP sockets), or a signal: nothing is wrong with the socket.
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::Interrupted
                        | ErrorKind::ConnectionReset
                        | ErrorKind::ConnectionRefused
                ) => {}
            Err(e) => {
                errors += 1;
                tracing::warn!(local = %demux.local, error = %e, errors, "VBAN receive failed");
                if errors >= MAX_RECV_ERRORS {
                    return Err(format!("receiving on {} keeps failing: {e}", demux.local));
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        demux.housekeeping(clock.now());
    }
    Ok(())
}

struct Worker {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Result<(), String>>,
}

/// The VBAN receiver actor (one per daemon, for all VBAN sources).
pub struct VbanReceiver {
    settings: VbanSettings,
    pub(crate) board: StatusBoard,
    clock: Arc<MonotonicClock>,
    outputs: HashMap<String, VbanOutput>,
    shared: Arc<Mutex<Shared>>,
    worker: Option<Worker>,
    backoff: Duration,
    retry_at: Option<Instant>,
    /// Stopped on request ([`StopSource`]): no more binding.
    stopped: bool,
}

impl VbanReceiver {
    pub const NAME: &'static str = "vban_receiver";

    /// `outputs` maps the id of each configured, enabled stream to its queue and counters.
    /// Every configured stream is registered on the board as a source of kind `"vban"`
    /// (registering again returns the same counters, so the caller may register first to get
    /// them).
    pub fn new(
        settings: VbanSettings,
        board: StatusBoard,
        clock: Arc<MonotonicClock>,
        outputs: HashMap<String, VbanOutput>,
    ) -> Self {
        let now = clock.now();
        for (i, s) in settings.streams.iter().enumerate() {
            board.register_source(&s.id, "vban", now);
            if !s.enabled {
                board.source_state(
                    &s.id,
                    SourceState::Stopped,
                    Some(format!(
                        "disabled in the config (VBAN stream '{}', streams[{i}].enabled = false)",
                        s.name
                    )),
                    now,
                );
            } else if !outputs.contains_key(&s.id) {
                let message = format!(
                    "no pipeline queue was given for VBAN source '{}' (a wiring bug); its stream is only listed",
                    s.id
                );
                tracing::error!(source = %s.id, "{message}");
                board.source_error(&s.id, message, now);
            }
        }
        if let Err(e) = settings.validate() {
            tracing::warn!(error = %e, "VBAN settings are inconsistent; the first matching stream wins");
        }
        Self {
            settings,
            board,
            clock,
            outputs,
            shared: Arc::default(),
            worker: None,
            backoff: BACKOFF_MIN,
            retry_at: None,
            stopped: false,
        }
    }

    fn enabled_ids(&self) -> Vec<String> {
        self.settings
            .streams
            .iter()
            .filter(|s| s.enabled && self.outputs.contains_key(&s.id))
            .map(|s| s.id.clone())
            .collect()
    }

    fn open(&self) -> Result<UdpSocket, String> {
        let bind = self.settings.bind;
        let socket = UdpSocket::bind(bind).map_err(|e| {
            let hint = if e.kind() == ErrorKind::AddrInUse {
                " (another program, e.g. another VBAN receiver, already listens there; stop it or change the VBAN bind address)"
            } else {
                ""
            };
            format!("cannot listen for VBAN on {bind}: {e}{hint}")
        })?;
        socket
            .set_read_timeout(Some(READ_TIMEOUT))
            .map_err(|e| format!("cannot set a read timeout on the VBAN socket {bind}: {e}"))?;
        Ok(socket)
    }

    fn start_worker(&mut self) {
        self.retry_at = None;
        let socket = match self.open() {
            Ok(s) => s,
            Err(e) => return self.fail(e),
        };
        let local = socket.local_addr().unwrap_or(self.settings.bind);
        {
            let mut shared = lock(&self.shared);
            shared.local_addr = Some(local);
            shared.last_error = None;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let demux = Demux::new(
            local,
            self.settings.streams.clone(),
            &self.outputs,
            self.board.clone(),
            self.shared.clone(),
            self.clock.now(),
        );
        let (thread_stop, clock) = (stop.clone(), self.clock.clone());
        let spawned = std::thread::Builder::new()
            .name("vban-receiver".into())
            .spawn(move || receive(socket, thread_stop, demux, clock));
        match spawned {
            Ok(handle) => {
                self.backoff = BACKOFF_MIN;
                self.worker = Some(Worker { stop, handle });
            }
            Err(e) => self.fail(format!("cannot start the VBAN receive thread: {e}")),
        }
    }

    /// Shows the failure on every enabled source and schedules the next try.
    fn fail(&mut self, error: String) {
        let delay = self.backoff;
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
        self.retry_at = Some(Instant::now() + delay);
        tracing::warn!(bind = %self.settings.bind, error = %error, retry_in_s = delay.as_secs_f64(), "VBAN receiver failed");
        {
            let mut shared = lock(&self.shared);
            shared.local_addr = None;
            shared.last_error = Some(error.clone());
        }
        let now = self.clock.now();
        let detail = format!("{error}; next try in {:.1} s", delay.as_secs_f64());
        for id in self.enabled_ids() {
            self.board.source_error(&id, error.clone(), now);
            self.board
                .source_state(&id, SourceState::Error, Some(detail.clone()), now);
        }
    }

    /// Reaps a finished thread; (re)binds when due.
    fn check(&mut self) {
        if self.stopped {
            return;
        }
        if let Some(w) = self.worker.as_ref() {
            if !w.handle.is_finished() {
                return;
            }
            if let Some(w) = self.worker.take() {
                match w.handle.join() {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => self.fail(e),
                    Err(_) => self.fail("the VBAN receive thread panicked".into()),
                }
            }
            return;
        }
        let due = match self.retry_at {
            Some(t) => Instant::now() >= t,
            None => true,
        };
        if due {
            self.start_worker();
        }
    }

    /// Stops the thread (it sees the flag within 50 ms) and shows the sources as Stopped.
    fn halt(&mut self) {
        if let Some(w) = self.worker.take() {
            w.stop.store(true, Ordering::SeqCst);
            let deadline = Instant::now() + Duration::from_secs(2);
            while !w.handle.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            if w.handle.is_finished() {
                let _ = w.handle.join();
            } else {
                tracing::warn!("the VBAN receive thread did not stop in time; leaving it");
            }
        }
        lock(&self.shared).local_addr = None;
        let now = self.clock.now();
        for s in &self.settings.streams {
            self.board
                .source_state(&s.id, SourceState::Stopped, None, now);
        }
    }
}

impl Actor for VbanReceiver {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.board
            .actor_state(Self::NAME, ActorState::Running, self.clock.now());
        if !self.stopped && self.worker.is_none() {
            self.start_worker();
        }
        ctx.run_interval(CHECK, |act, _| act.check());
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        self.halt();
        self.board
            .actor_state(Self::NAME, ActorState::Stopped, self.clock.now());
    }
}

impl Supervised for VbanReceiver {
    fn restarting(&mut self, _: &mut Self::Context) {
        self.board.actor_restarted(Self::NAME, self.clock.now());
        // `stopped` already ended the thread; `started` binds again at once.
        self.backoff = BACKOFF_MIN;
        self.retry_at = None;
    }
}

crate::impl_inject_panic!(VbanReceiver);

impl Handler<StopSource> for VbanReceiver {
    type Result = ();
    fn handle(&mut self, _: StopSource, _: &mut Self::Context) {
        self.stopped = true;
        self.halt();
    }
}

impl Handler<ListVbanStreams> for VbanReceiver {
    type Result = MessageResult<ListVbanStreams>;
    fn handle(&mut self, _: ListVbanStreams, _: &mut Self::Context) -> Self::Result {
        let now = self.clock.now();
        let mut list: Vec<VbanStreamInfo> = lock(&self.shared)
            .streams
            .values()
            .flatten()
            .map(|l| {
                let mut info = l.info.clone();
                info.active = !stalled(info.last_seen, now);
                info
            })
            .collect();
        list.sort_by(|a, b| (&a.name, a.sender).cmp(&(&b.name, b.sender)));
        MessageResult(list)
    }
}

impl Handler<GetVbanStatus> for VbanReceiver {
    type Result = MessageResult<GetVbanStatus>;
    fn handle(&mut self, _: GetVbanStatus, _: &mut Self::Context) -> Self::Result {
        let shared = lock(&self.shared);
        let mut senders: Vec<VbanSenderInfo> = shared.senders.values().cloned().collect();
        senders.sort_by_key(|s| s.sender);
        MessageResult(VbanReceiverStatus {
            bind: self.settings.bind,
            local_addr: shared.local_addr,
            last_error: shared.last_error.clone(),
            packets: shared.packets,
            malformed: shared.malformed,
            not_audio: shared.not_audio,
            senders,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::{drop_oldest, Drain};

    const SENDER: &str = "192.0.2.7:50123";

    fn cfg(id: &str, name: &str, sender: Option<&str>, enabled: bool) -> VbanStreamSettings {
        VbanStreamSettings {
            id: id.into(),
            name: name.into(),
            sender: sender.map(|s| s.parse().unwrap()),
            enabled,
        }
    }

    /// A demux with the given streams, each wired to a queue.
    fn demux(streams: Vec<VbanStreamSettings>) -> (Demux, HashMap<String, Drain<AudioChunk>>) {
        let board = StatusBoard::new();
        let mut outputs = HashMap::new();
        let mut drains = HashMap::new();
        for s in &streams {
            let counters = board.register_source(&s.id, "vban", Timestamp(0));
            let (tx, rx) = drop_oldest(10_000, counters.audio_chunks_dropped.clone());
            outputs.insert(
                s.id.clone(),
                VbanOutput {
                    audio: tx,
                    counters,
                },
            );
            drains.insert(s.id.clone(), rx);
        }
        let d = Demux::new(
            "0.0.0.0:6980".parse().unwrap(),
            streams,
            &outputs,
            board,
            Arc::default(),
            Timestamp(0),
        );
        (d, drains)
    }

    /// A 16-bit mono packet of `n` samples of value `v` at `rate_index`.
    fn packet(name: &str, rate_index: u8, n: usize, counter: u32, v: i16) -> Vec<u8> {
        let mut p = b"VBAN".to_vec();
        p.extend_from_slice(&[rate_index, (n - 1) as u8, 0, 0x01]);
        let mut nm = [0u8; 16];
        nm[..name.len()].copy_from_slice(name.as_bytes());
        p.extend_from_slice(&nm);
        p.extend_from_slice(&counter.to_le_bytes());
        for _ in 0..n {
            p.extend_from_slice(&v.to_le_bytes());
        }
        p
    }

    fn from() -> SocketAddr {
        SENDER.parse().unwrap()
    }

    /// All chunks, checked to be contiguous: each starts where the previous ended (±1 µs of
    /// rounding). Returns (first stamp, samples).
    fn contiguous(chunks: Vec<AudioChunk>) -> (Timestamp, Vec<f32>) {
        let first = chunks.first().map(|c| c.captured).unwrap_or_default();
        let mut samples: Vec<f32> = Vec::new();
        for c in chunks {
            let expected = first.0 + (samples.len() as i64 * 1_000_000) / 16_000;
            assert!(
                (c.captured.0 - expected).abs() <= 1,
                "chunk at {} expected at {expected}",
                c.captured.0
            );
            samples.extend(c.samples);
        }
        (first, samples)
    }

    #[test]
    fn stamps_from_the_first_packet_and_then_the_sample_count() {
        let (mut d, q) = demux(vec![cfg("vban:s", "s", None, true)]);
        // 16 kHz, 160 samples (10 ms) a packet, arriving with ±3 ms of jitter.
        let t0 = 1_000_000_000i64;
        for k in 0..100u32 {
            let jitter = [0, 3000, -2000, 1000][k as usize % 4];
            let now = Timestamp(t0 + i64::from(k) * 10_000 + jitter);
            d.on_datagram(&packet("s", 8, 160, k, 1000), from(), now);
        }
        let (first, samples) = contiguous(q["vban:s"].drain());
        // The first packet ended at t0: its first sample was captured 10 ms earlier.
        assert_eq!(first, Timestamp(t0 - 10_000));
        assert!(samples.len() >= 15_680, "{}", samples.len());
        assert!(samples.iter().all(|&x| (x - 1000.0 / 32768.0).abs() < 1e-6));
    }

    #[test]
    fn lost_packets_become_silence_of_the_same_length() {
        let (mut d, q) = demux(vec![cfg("vban:s", "s", None, true)]);
        let t0 = 5_000_000i64;
        for k in (0..50u32).filter(|k| !(20..25).contains(k)) {
            let now = Timestamp(t0 + i64::from(k) * 10_000);
            d.on_datagram(&packet("s", 8, 160, k, 8192), from(), now);
        }
        d.housekeeping(Timestamp(t0 + 10_000_000)); // stall: flushes the tail
        let (_, samples) = contiguous(q["vban:s"].drain());
        assert_eq!(samples.len(), 50 * 160);
        assert!(samples[20 * 160..25 * 160].iter().all(|&x| x == 0.0));
        assert!(samples[25 * 160..].iter().all(|&x| x == 0.25));
        let a = d.analysed[0].as_ref().unwrap();
        assert_eq!(a.lost, 5);
        assert!(a
            .detail()
            .starts_with("16000 Hz 1 ch int16 from 192.0.2.7:50123"));
        assert!(a.detail().contains("frames lost: 5"), "{}", a.detail());
        let listed = &lock(&d.shared).streams[&from()][0].info;
        assert_eq!(listed.frames_lost, 5);
        assert_eq!(listed.role, StreamRole::Analysed);
    }

    #[test]
    fn a_sender_restart_re_anchors_instead_of_filling_years_of_silence() {
        let (mut d, q) = demux(vec![cfg("vban:s", "s", None, true)]);
        let t0 = 5_000_000i64;
        for k in 0..30u32 {
            d.on_datagram(
                &packet("s", 8, 160, 1000 + k, 100),
                from(),
                Timestamp(t0 + i64::from(k) * 10_000),
            );
        }
        // Restart: counter back to 1, 100 ms later than the old timeline would continue.
        let t1 = t0 + 30 * 10_000 + 100_000;
        for k in 0..30u32 {
            d.on_datagram(
                &packet("s", 8, 160, 1 + k, 100),
                from(),
                Timestamp(t1 + i64::from(k) * 10_000),
            );
        }
        let chunks = q["vban:s"].drain();
        let total: usize = chunks.iter().map(|c| c.samples.len()).sum();
        assert!(total <= 60 * 160, "{total}");
        // The second run is stamped from its own first packet.
        let second = chunks
            .iter()
            .find(|c| c.captured.0 >= t1 - 10_000 - 1)
            .expect("audio after the restart");
        assert_eq!(second.captured, Timestamp(t1 - 10_000));
        let a = d.analysed[0].as_ref().unwrap();
        assert_eq!((a.restarts, a.lost), (1, 0));
    }

    #[test]
    fn drift_beyond_200_ms_re_anchors_on_the_clock() {
        let (mut d, q) = demux(vec![cfg("vban:s", "s", None, true)]);
        let t0 = 5_000_000i64;
        // Packets carry 10 ms each but arrive every 11 ms: the sender's clock is 10 % slow, and
        // the drift passes 200 ms at the 201st packet.
        for k in 0..300u32 {
            d.on_datagram(
                &packet("s", 8, 160, k, 100),
                from(),
                Timestamp(t0 + i64::from(k) * 11_000),
            );
        }
        let a = d.analysed[0].as_ref().unwrap();
        assert_eq!(a.reanchors, 1, "{}", a.detail());
        // After the re-anchor the stamps follow the arrival clock again.
        let last = q["vban:s"].drain().into_iter().last().unwrap();
        let end = last.captured.0 + last.samples.len() as i64 * 1_000_000 / 16_000;
        // (≤ 99 ms of drift since the re-anchor, ≤ 20 ms of audio still pending.)
        assert!((end - (t0 + 299 * 11_000)).abs() < 150_000, "end {end}");
    }

    #[test]
    fn resamples_48k_and_recreates_the_resampler_on_a_rate_change() {
        let (mut d, q) = demux(vec![cfg("vban:s", "s", None, true)]);
        let mut t = 1_000_000i64;
        let mut counter = 0;
        // 1 s at 48 kHz (index 3), 240 samples a packet, then 1 s at 16 kHz.
        for _ in 0..200 {
            t += 5_000;
            d.on_datagram(&packet("s", 3, 240, counter, 16384), from(), Timestamp(t));
            counter += 1;
        }
        for _ in 0..100 {
            t += 10_000;
            d.on_datagram(&packet("s", 8, 160, counter, 16384), from(), Timestamp(t));
            counter += 1;
        }
        d.housekeeping(Timestamp(t + 5_000_000));
        let chunks = q["vban:s"].drain();
        let total: usize = chunks.iter().map(|c| c.samples.len()).sum();
        assert_eq!(total, 32_000);
        let a = d.analysed[0].as_ref().unwrap();
        assert_eq!(a.format, Some((16_000, 1, SampleFormat::I16)));
        assert_eq!(a.state, SourceState::Stalled);
    }

    #[test]
    fn routes_by_name_and_sender_and_lists_the_rest() {
        let (mut d, q) = demux(vec![
            cfg("vban:a", "A", None, true),
            cfg("vban:b", "B", Some("192.0.2.99"), true),
            cfg("vban:c", "C", None, false),
        ]);
        let now = Timestamp(1_000_000);
        // Two packets of 160 samples each: 20 ms, one chunk.
        for name in ["A", "B", "C", "D"] {
            for counter in [0, 1] {
                d.on_datagram(&packet(name, 8, 160, counter, 1), from(), now);
            }
        }
        // A second sender of "A" while the first is active is listed, not mixed in.
        let other: SocketAddr = "192.0.2.8:6000".parse().unwrap();
        for counter in [0, 1] {
            d.on_datagram(&packet("A", 8, 160, counter, 1), other, now);
        }
        assert_eq!(
            q["vban:a"]
                .drain()
                .iter()
                .map(|c| c.samples.len())
                .sum::<usize>(),
            320
        );
        assert!(q["vban:b"].is_empty() && q["vban:c"].is_empty());
        let shared = lock(&d.shared);
        let role = |addr: &SocketAddr, name: &str| {
            shared.streams[addr]
                .iter()
                .find(|l| l.info.name == name)
                .map(|l| l.info.role)
        };
        assert_eq!(role(&from(), "A"), Some(StreamRole::Analysed));
        assert_eq!(role(&from(), "B"), Some(StreamRole::SenderNotAllowed));
        assert_eq!(role(&from(), "C"), Some(StreamRole::Disabled));
        assert_eq!(role(&from(), "D"), Some(StreamRole::NotConfigured));
        assert_eq!(role(&other, "A"), Some(StreamRole::OtherSenderActive));
    }

    #[test]
    fn a_new_sender_takes_over_once_the_old_one_is_silent() {
        let (mut d, q) = demux(vec![cfg("vban:a", "A", None, true)]);
        for counter in [5, 6] {
            d.on_datagram(
                &packet("A", 8, 160, counter, 1),
                from(),
                Timestamp(1_000_000),
            );
        }
        // The first sender went quiet; another one (a restart on a new port) takes over.
        let other: SocketAddr = "192.0.2.8:6000".parse().unwrap();
        for counter in [1, 2] {
            d.on_datagram(
                &packet("A", 8, 160, counter, 1),
                other,
                Timestamp(4_000_000),
            );
        }
        assert_eq!(q["vban:a"].drain().len(), 2);
        assert_eq!(d.analysed[0].as_ref().unwrap().peer, Some(other));
    }

    #[test]
    fn malformed_packets_are_counted_per_sender_and_stream() {
        let (mut d, q) = demux(vec![cfg("vban:a", "A", None, true)]);
        let now = Timestamp(1_000_000);
        d.on_datagram(b"hello", from(), now);
        let good = packet("A", 8, 160, 0, 1);
        d.on_datagram(&good[..good.len() - 3], from(), now);
        let mut text = packet("A", 8, 4, 0, 1);
        text[4] = 0x40;
        d.on_datagram(&text, from(), now);
        d.on_datagram(&good, from(), now);
        d.on_datagram(&packet("A", 8, 160, 1, 1), from(), now);
        assert_eq!(q["vban:a"].drain().len(), 1);
        let shared = lock(&d.shared);
        assert_eq!(
            (shared.packets, shared.malformed, shared.not_audio),
            (5, 3, 1)
        );
        let s = &shared.senders[&from()];
        assert_eq!((s.packets, s.malformed), (5, 3));
        let l = &shared.streams[&from()][0].info;
        assert_eq!((l.packets, l.malformed), (2, 2));
        // The truncated packet of an analysed stream is a decode error of that source.
        let a = d.analysed[0].as_ref().unwrap();
        assert_eq!(a.out.counters.decode_errors.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn validate_names_the_key() {
        let mut s = VbanSettings {
            streams: vec![cfg("vban:a", "A", None, true)],
            ..VbanSettings::default()
        };
        assert_eq!(s.validate(), Ok(()));
        s.streams
            .push(cfg("vban:b", "seventeen_chars_x", None, true));
        assert!(s.validate().unwrap_err().starts_with("streams[1].name"));
        s.streams[1] = cfg("vban:a", "B", None, true);
        assert!(s.validate().unwrap_err().starts_with("streams[1].id"));
        s.streams[1] = cfg("vban:b", "A", None, true);
        assert!(s.validate().unwrap_err().starts_with("streams[1].name"));
        s.streams[1] = cfg("vban:b", "A", None, false);
        assert_eq!(s.validate(), Ok(()));
        assert_eq!(VbanSettings::default().bind.port(), 6980);
    }
}
