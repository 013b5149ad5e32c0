//! The VBAN receiver against a real third-party VBAN sender: the PyPI package `aiovban`
//! (tested with 1.1.1), driven by `tests/tools/vban_aiovban_send.py`. Without it these tests
//! fail (on purpose: a silently skipped test proves nothing) and say how to install it:
//! `python3 -m pip install aiovban==1.1.1`. `CAV_TEST_PYTHON` picks another interpreter.
//!
//! Every test listens on its own free port on 127.0.0.1, so they run side by side.

mod common;
use common::root;

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use cav_actors::actor::vban_source::{
    GetVbanStatus, ListVbanStreams, StreamRole, VbanOutput, VbanReceiver, VbanReceiverStatus,
    VbanSettings, VbanStreamSettings,
};
use cav_actors::health::{SourceSnapshot, SourceState, StatusBoard};
use cav_actors::messages::AudioChunk;
use cav_actors::queue::{drop_oldest, Drain};
use cav_actors::supervise::InjectPanic;
use cav_core::{Clock, MonotonicClock, Timestamp};

const INSTALL_HINT: &str = "the VBAN tests send with the third-party Python package aiovban: \
     python3 -m pip install aiovban==1.1.1 (or set CAV_TEST_PYTHON to a python that has it)";

fn python() -> String {
    std::env::var("CAV_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn require_aiovban() {
    let out = Command::new(python())
        .args([
            "-c",
            "import aiovban, importlib.metadata as m; print(m.version('aiovban'))",
        ])
        .output();
    match out {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!(
            "aiovban is not importable ({}). {INSTALL_HINT}",
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Err(e) => panic!("cannot run '{}': {e}. {INSTALL_HINT}", python()),
    }
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("no free UDP port")
}

fn stream(id: &str, name: &str) -> VbanStreamSettings {
    VbanStreamSettings {
        id: id.into(),
        name: name.into(),
        sender: None,
        enabled: true,
    }
}

/// A receiver on a free port with one queue per configured, enabled stream.
struct Rig {
    addr: Addr<VbanReceiver>,
    board: StatusBoard,
    queues: HashMap<String, Drain<AudioChunk>>,
    port: u16,
    clock: Arc<MonotonicClock>,
}

impl Rig {
    /// Must run inside an actix system.
    fn start(streams: Vec<VbanStreamSettings>) -> Self {
        Self::start_on(free_udp_port(), streams)
    }

    fn start_on(port: u16, streams: Vec<VbanStreamSettings>) -> Self {
        let board = StatusBoard::new();
        let clock = Arc::new(MonotonicClock::new());
        let mut outputs = HashMap::new();
        let mut queues = HashMap::new();
        for s in streams.iter().filter(|s| s.enabled) {
            // As the pipeline does: register first, and let the queue count into the source.
            let counters = board.register_source(&s.id, "vban", clock.now());
            let (tx, rx) = drop_oldest(10_000, counters.audio_chunks_dropped.clone());
            outputs.insert(
                s.id.clone(),
                VbanOutput {
                    audio: tx,
                    counters,
                },
            );
            queues.insert(s.id.clone(), rx);
        }
        let settings = VbanSettings {
            bind: SocketAddr::from(([127, 0, 0, 1], port)),
            streams,
        };
        let (b, c) = (board.clone(), clock.clone());
        let addr = Supervisor::start(move |_| VbanReceiver::new(settings, b, c, outputs));
        Self {
            addr,
            board,
            queues,
            port,
            clock,
        }
    }

    fn source(&self, id: &str) -> SourceSnapshot {
        self.board
            .sources()
            .get(id)
            .cloned()
            .unwrap_or_else(|| panic!("source {id} is not on the board"))
    }

    async fn wait_state(&self, id: &str, state: SourceState, limit: Duration) -> SourceSnapshot {
        let deadline = Instant::now() + limit;
        loop {
            let s = self.source(id);
            if s.status.state == state {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "{id} did not become {state:?} within {limit:?}: {s:?}"
            );
            actix_rt::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn wait_listening(&self) -> SocketAddr {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let s = self.status().await;
            if let Some(a) = s.local_addr {
                return a;
            }
            assert!(Instant::now() < deadline, "receiver not listening: {s:?}");
            actix_rt::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn status(&self) -> VbanReceiverStatus {
        self.addr.send(GetVbanStatus).await.expect("receiver gone")
    }

    fn chunks(&self, id: &str) -> Vec<AudioChunk> {
        self.queues[id].drain()
    }
}

/// What the sender script reports.
#[derive(Debug)]
struct Sent {
    packets: u64,
    samples_per_packet: u64,
    rate: u64,
}

impl Sent {
    /// Samples this stream should become at 16 kHz.
    fn samples_16k(&self) -> f64 {
        (self.packets * self.samples_per_packet) as f64 * 16_000.0 / self.rate as f64
    }
}

fn spawn_sender(port: u16, args: &[&str]) -> Child {
    let script = root().join("tests/tools/vban_aiovban_send.py");
    Command::new(python())
        .arg(&script)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}. {INSTALL_HINT}", script.display()))
}

/// Waits for the sender without blocking the actix runtime, and reads its summary.
async fn finish(mut child: Child) -> Sent {
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("sender wait failed").is_none() {
        assert!(Instant::now() < deadline, "the VBAN sender did not finish");
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
    let out = child.wait_with_output().expect("sender output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the aiovban sender failed ({}): {}{}\n{INSTALL_HINT}",
        out.status,
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout.lines().last().unwrap_or_default();
    let v: serde_json::Value =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("bad summary {line:?}: {e}"));
    let field = |k: &str| {
        v[k].as_u64()
            .unwrap_or_else(|| panic!("summary without {k}: {line}"))
    };
    Sent {
        packets: field("packets"),
        samples_per_packet: field("samples_per_packet"),
        rate: field("rate"),
    }
}

/// The samples of consecutive chunks, checked to follow each other without gaps or overlaps
/// (each chunk starts within 1 ms of where the previous ended). Returns the first stamp too.
fn contiguous(chunks: &[AudioChunk]) -> (Timestamp, Vec<f32>) {
    let first = chunks.first().expect("no audio arrived").captured;
    let mut samples = Vec::new();
    for c in chunks {
        let expected = first.0 + samples.len() as i64 * 1_000_000 / 16_000;
        assert!(
            (c.captured.0 - expected).abs() <= 1_000,
            "chunk stamped {} µs after the first, expected {} µs",
            c.captured.0 - first.0,
            expected - first.0
        );
        samples.extend_from_slice(&c.samples);
    }
    (first, samples)
}

/// Frequency (by zero crossings) and RMS of the middle of a tone, leaving out 250 ms at each
/// end (the resampler's edges).
fn tone(samples: &[f32]) -> (f64, f64) {
    assert!(
        samples.len() > 16_000,
        "only {} samples arrived",
        samples.len()
    );
    let mid = &samples[4_000..samples.len() - 4_000];
    let crossings = mid
        .windows(2)
        .filter(|w| (w[0] < 0.0) != (w[1] < 0.0))
        .count();
    let hz = crossings as f64 / 2.0 / (mid.len() as f64 / 16_000.0);
    let rms = (mid
        .iter()
        .map(|&x| f64::from(x) * f64::from(x))
        .sum::<f64>()
        / mid.len() as f64)
        .sqrt();
    (hz, rms)
}

fn assert_tone(what: &str, samples: &[f32], hz: f64, amplitude: f64) {
    let (got_hz, got_rms) = tone(samples);
    let rms = amplitude / 2f64.sqrt();
    assert!(
        (got_hz - hz).abs() <= 5.0,
        "{what}: {got_hz:.1} Hz, expected {hz} Hz"
    );
    assert!(
        (got_rms - rms).abs() <= 0.1 * rms,
        "{what}: RMS {got_rms:.4}, expected {rms:.4} ± 10 %"
    );
}

/// Checks a whole stream that has ended (and stalled, so its tail was flushed).
fn assert_stream(what: &str, chunks: &[AudioChunk], sent: &Sent, hz: f64, amplitude: f64) {
    let (_, samples) = contiguous(chunks);
    let expected = sent.samples_16k();
    assert!(
        (samples.len() as f64 - expected).abs() <= 2.0,
        "{what}: {} samples at 16 kHz, expected {expected:.1}",
        samples.len()
    );
    assert_tone(what, &samples, hz, amplitude);
}

#[actix_rt::test]
async fn int16_stereo_48k_from_aiovban_arrives_as_16k_mono_with_its_tone() {
    require_aiovban();
    let rig = Rig::start(vec![stream("vban:Stream1", "Stream1")]);
    rig.wait_listening().await;
    assert_eq!(
        rig.source("vban:Stream1").status.state,
        SourceState::Connecting
    );
    let before = rig.clock.now();
    let sender = spawn_sender(
        rig.port,
        &[
            "--stream",
            "Stream1",
            "--rate",
            "48000",
            "--channels",
            "2",
            "--format",
            "int16",
            "--freq",
            "1000",
            "--amp",
            "0.5",
            "--seconds",
            "3",
        ],
    );
    let running = rig
        .wait_state(
            "vban:Stream1",
            SourceState::Running,
            Duration::from_secs(10),
        )
        .await;
    let detail = running.status.detail.unwrap_or_default();
    assert!(
        detail.starts_with("48000 Hz 2 ch int16 from 127.0.0.1:"),
        "{detail}"
    );
    let sent = finish(sender).await;
    let after = rig.clock.now();
    let stalled = rig
        .wait_state("vban:Stream1", SourceState::Stalled, Duration::from_secs(5))
        .await;
    let chunks = rig.chunks("vban:Stream1");
    assert_stream("int16 stereo 48 kHz", &chunks, &sent, 1000.0, 0.5);

    // Stamped on the daemon's clock: the first sample after the sender started, the last one
    // before it finished.
    let first = chunks[0].captured;
    let total: usize = chunks.iter().map(|c| c.samples.len()).sum();
    let end = first.0 + total as i64 * 1_000_000 / 16_000;
    assert!(first > before, "first sample stamped before the sender ran");
    assert!(
        end <= after.0 + 50_000,
        "audio ends {} µs after the sender",
        end - after.0
    );

    assert_eq!(stalled.audio_samples, total as u64);
    assert_eq!(stalled.audio_chunks, chunks.len() as u64);
    assert_eq!(stalled.decode_errors, 0);
    assert!(stalled.status.last_audio_at.is_some());
    let detail = stalled.status.detail.unwrap_or_default();
    assert!(detail.contains("frames lost: 0"), "{detail}");

    let listed = rig.addr.send(ListVbanStreams).await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    let s = &listed[0];
    assert_eq!(s.name, "Stream1");
    assert_eq!(s.role, StreamRole::Analysed);
    assert_eq!(s.source.as_deref(), Some("vban:Stream1"));
    assert_eq!(
        (
            s.sample_rate,
            s.channels,
            s.format.as_deref(),
            s.samples_per_frame
        ),
        (Some(48_000), Some(2), Some("int16"), Some(256))
    );
    assert_eq!(
        (s.packets, s.malformed, s.frames_lost),
        (sent.packets, 0, 0)
    );
    assert_eq!(s.sender.ip().to_string(), "127.0.0.1");
    assert!(!s.active, "the stream ended over 2 s ago");
}

#[actix_rt::test]
async fn float32_stereo_44k1_from_aiovban_keeps_its_tone() {
    require_aiovban();
    let rig = Rig::start(vec![stream("vban:float", "Float32")]);
    rig.wait_listening().await;
    let sender = spawn_sender(
        rig.port,
        &[
            "--stream",
            "Float32",
            "--rate",
            "44100",
            "--channels",
            "2",
            "--format",
            "float32",
            "--freq",
            "440",
            "--amp",
            "0.3",
            "--seconds",
            "2.5",
        ],
    );
    let sent = finish(sender).await;
    // 179 samples of 2 × 4 bytes: the most that fits a VBAN packet.
    assert_eq!(sent.samples_per_packet, 179);
    let stalled = rig
        .wait_state("vban:float", SourceState::Stalled, Duration::from_secs(5))
        .await;
    let detail = stalled.status.detail.unwrap_or_default();
    assert!(
        detail.contains("44100 Hz 2 ch float32 from 127.0.0.1:"),
        "{detail}"
    );
    assert_stream(
        "float32 stereo 44.1 kHz",
        &rig.chunks("vban:float"),
        &sent,
        440.0,
        0.3,
    );
}

#[actix_rt::test]
async fn two_senders_with_different_stream_names_stay_separate() {
    require_aiovban();
    let rig = Rig::start(vec![
        stream("vban:A", "StreamA"),
        stream("vban:B", "StreamB"),
    ]);
    rig.wait_listening().await;
    let a = spawn_sender(
        rig.port,
        &[
            "--stream",
            "StreamA",
            "--rate",
            "48000",
            "--channels",
            "2",
            "--freq",
            "1000",
            "--amp",
            "0.5",
            "--seconds",
            "2.5",
        ],
    );
    let b = spawn_sender(
        rig.port,
        &[
            "--stream",
            "StreamB",
            "--rate",
            "16000",
            "--channels",
            "1",
            "--freq",
            "440",
            "--amp",
            "0.2",
            "--seconds",
            "2.5",
        ],
    );
    let (sent_a, sent_b) = (finish(a).await, finish(b).await);
    rig.wait_state("vban:A", SourceState::Stalled, Duration::from_secs(5))
        .await;
    rig.wait_state("vban:B", SourceState::Stalled, Duration::from_secs(5))
        .await;
    assert_stream("StreamA", &rig.chunks("vban:A"), &sent_a, 1000.0, 0.5);
    assert_stream("StreamB", &rig.chunks("vban:B"), &sent_b, 440.0, 0.2);
    let listed = rig.addr.send(ListVbanStreams).await.unwrap();
    let names: Vec<_> = listed.iter().map(|s| (s.name.as_str(), s.role)).collect();
    assert_eq!(
        names,
        [
            ("StreamA", StreamRole::Analysed),
            ("StreamB", StreamRole::Analysed)
        ]
    );
    // Two senders: aiovban sends each stream from its own port.
    assert_ne!(listed[0].sender, listed[1].sender);
}

#[actix_rt::test]
async fn an_unconfigured_stream_is_listed_but_not_analysed() {
    require_aiovban();
    let rig = Rig::start(vec![stream("vban:Stream1", "Stream1")]);
    rig.wait_listening().await;
    let sender = spawn_sender(
        rig.port,
        &[
            "--stream",
            "Unknown9",
            "--rate",
            "48000",
            "--channels",
            "2",
            "--seconds",
            "1",
        ],
    );
    let sent = finish(sender).await;
    actix_rt::time::sleep(Duration::from_millis(200)).await;
    let listed = rig.addr.send(ListVbanStreams).await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    let s = &listed[0];
    assert_eq!(s.name, "Unknown9");
    assert_eq!(s.role, StreamRole::NotConfigured);
    assert_eq!(s.source, None);
    assert_eq!(s.packets, sent.packets);
    assert_eq!(
        (s.sample_rate, s.channels, s.format.as_deref()),
        (Some(48_000), Some(2), Some("int16"))
    );
    assert!(rig.chunks("vban:Stream1").is_empty());
    let source = rig.source("vban:Stream1");
    assert_eq!(source.status.state, SourceState::Connecting);
    assert_eq!(source.audio_samples, 0);
    let status = rig.status().await;
    assert_eq!((status.packets, status.malformed), (sent.packets, 0));
}

#[actix_rt::test]
async fn garbage_is_counted_as_malformed_and_the_receiver_keeps_working() {
    require_aiovban();
    let rig = Rig::start(vec![stream("vban:Stream1", "Stream1")]);
    let local = rig.wait_listening().await;
    // aiovban first sends one VBAN text packet (a valid packet, but not audio), then audio.
    let sender = spawn_sender(
        rig.port,
        &[
            "--stream",
            "Stream1",
            "--rate",
            "48000",
            "--channels",
            "2",
            "--freq",
            "1000",
            "--amp",
            "0.5",
            "--seconds",
            "2.5",
            "--text",
            "Strip[0].Mute = 1;",
        ],
    );
    // Once the stream runs, garbage from another socket: noise, a bare magic, a header cut short, a
    // truncated payload, an oversized datagram, an unknown codec.
    rig.wait_state(
        "vban:Stream1",
        SourceState::Running,
        Duration::from_secs(10),
    )
    .await;
    let junk = UdpSocket::bind("127.0.0.1:0").unwrap();
    let junk_addr = junk.local_addr().unwrap();
    let mut header = b"VBAN".to_vec();
    header.extend_from_slice(&[0x03, 0xFF, 0x01, 0x01]);
    header.extend_from_slice(b"Stream1\0\0\0\0\0\0\0\0\0");
    header.extend_from_slice(&1u32.to_le_bytes());
    let mut truncated = header.clone();
    truncated.extend_from_slice(&[0u8; 1000]);
    let mut oversized = header.clone();
    oversized.extend_from_slice(&[0u8; 3000]);
    let mut codec = header.clone();
    codec[7] = 0x21;
    codec.extend_from_slice(&[0u8; 1024]);
    let mut seed = 0x1234_5678_9ABC_DEF0u64;
    let noise: Vec<u8> = (0..700)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect();
    let garbage: [&[u8]; 7] = [
        &noise,
        b"VBAN",
        &header[..20],
        &truncated,
        &oversized,
        &codec,
        &[],
    ];
    let mut sent_junk = 0u64;
    for _ in 0..20 {
        for g in garbage {
            junk.send_to(g, local).unwrap();
            sent_junk += 1;
        }
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
    let sent = finish(sender).await;
    let stalled = rig
        .wait_state("vban:Stream1", SourceState::Stalled, Duration::from_secs(5))
        .await;
    assert_stream(
        "Stream1 among garbage",
        &rig.chunks("vban:Stream1"),
        &sent,
        1000.0,
        0.5,
    );
    // Garbage from another address does not count against the stream.
    assert_eq!(stalled.decode_errors, 0);

    let status = rig.status().await;
    assert_eq!(status.malformed, sent_junk + 1, "{status:?}");
    assert_eq!(status.not_audio, 1);
    assert_eq!(status.packets, sent_junk + 1 + sent.packets);
    let junk_sender = status
        .senders
        .iter()
        .find(|s| s.sender == junk_addr)
        .expect("the garbage sender is listed");
    assert_eq!(
        (junk_sender.packets, junk_sender.malformed),
        (sent_junk, sent_junk)
    );
    assert!(junk_sender.last_error.is_some());
    // The garbage with a readable header (truncated, oversized, codec) is listed under its
    // (sender, stream), as another sender of a stream that is already fed.
    let listed = rig.addr.send(ListVbanStreams).await.unwrap();
    let junk_stream = listed
        .iter()
        .find(|s| s.sender == junk_addr)
        .expect("garbage with a VBAN header is listed");
    assert_eq!(junk_stream.packets, 0);
    assert_eq!(junk_stream.malformed, 3 * 20);
    assert_eq!(junk_stream.role, StreamRole::OtherSenderActive);
    let real = listed
        .iter()
        .find(|s| s.role == StreamRole::Analysed)
        .expect("the aiovban stream is analysed");
    assert_eq!(real.packets, sent.packets);
}

/// A 16 kHz mono int16 packet of 160 samples.
fn packet(name: &str, counter: u32) -> Vec<u8> {
    let mut p = b"VBAN".to_vec();
    p.extend_from_slice(&[8, 159, 0, 0x01]);
    let mut n = [0u8; 16];
    n[..name.len()].copy_from_slice(name.as_bytes());
    p.extend_from_slice(&n);
    p.extend_from_slice(&counter.to_le_bytes());
    p.extend_from_slice(&[0u8; 320]);
    p
}

async fn send_packets(to: SocketAddr, name: &str, counters: std::ops::Range<u32>) {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    for c in counters {
        s.send_to(&packet(name, c), to).unwrap();
        actix_rt::time::sleep(Duration::from_millis(10)).await;
    }
}

#[actix_rt::test]
async fn a_port_in_use_is_an_error_retried_until_it_is_free() {
    let blocker = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = blocker.local_addr().unwrap().port();
    let rig = Rig::start_on(port, vec![stream("vban:s", "s")]);
    let error = rig
        .wait_state("vban:s", SourceState::Error, Duration::from_secs(2))
        .await;
    let message = error.status.last_error.unwrap_or_default();
    assert!(
        message.contains("cannot listen for VBAN on 127.0.0.1:") && message.contains("in use"),
        "{message}"
    );
    assert!(
        error
            .status
            .detail
            .unwrap_or_default()
            .contains("next try in"),
        "the retry is shown"
    );
    let status = rig.status().await;
    assert_eq!(status.local_addr, None);
    assert!(status.last_error.is_some());

    drop(blocker);
    // Retries after 1 s, then 2 s.
    let local = rig.wait_listening().await;
    assert_eq!(local.port(), port);
    rig.wait_state("vban:s", SourceState::Connecting, Duration::from_secs(1))
        .await;
    send_packets(local, "s", 0..10).await;
    rig.wait_state("vban:s", SourceState::Running, Duration::from_secs(2))
        .await;
    assert!(!rig.chunks("vban:s").is_empty());
}

#[actix_rt::test]
async fn a_crashed_receiver_is_restarted_and_listens_again() {
    let rig = Rig::start(vec![stream("vban:s", "s")]);
    let local = rig.wait_listening().await;
    send_packets(local, "s", 0..4).await;
    rig.wait_state("vban:s", SourceState::Running, Duration::from_secs(2))
        .await;
    rig.addr.do_send(InjectPanic);
    let deadline = Instant::now() + Duration::from_secs(5);
    while rig.board.actors()[VbanReceiver::NAME].restarts == 0 {
        assert!(Instant::now() < deadline, "not restarted");
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
    // The same port again, and audio flows again.
    assert_eq!(rig.wait_listening().await, local);
    rig.chunks("vban:s");
    send_packets(local, "s", 100..110).await;
    rig.wait_state("vban:s", SourceState::Running, Duration::from_secs(2))
        .await;
    let samples: usize = rig.chunks("vban:s").iter().map(|c| c.samples.len()).sum();
    assert!(samples >= 1_280, "{samples} samples after the restart");
}
