//! The microphone source against a real PulseAudio server without a sound card, started by
//! `scripts/pulse-harness.sh`: two null sinks, `vsink` and `vsink2`, whose monitors the harness
//! exposes to ALSA (and so to cpal) as the capture devices `vsink_monitor` and `vsink2_monitor`.
//! Tones are played into the sinks with `paplay` and captured from the monitors in real time.
//!
//! Needs the Debian packages pulseaudio, pulseaudio-utils and libasound2-plugins (the ALSA
//! pulse plugin): `apt-get install -y pulseaudio pulseaudio-utils libasound2-plugins`. Without
//! them these tests fail (on purpose: a silently skipped test proves nothing).
//!
//! One PulseAudio serves the whole test binary (ALSA reads its configuration, and with it the
//! harness's devices, once per process, from the environment), and the tests take turns,
//! because they play into the same sinks. A watchdog stops the server when the binary exits.

// The turn lock is held across awaits on purpose: every test runs its own runtime on its own
// thread, so the guard only makes the other tests' threads wait, and cannot deadlock.
#![allow(clippy::await_holding_lock)]

mod common;
use common::root;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use actix::prelude::*;
use cav_actors::actor::mic_source::{
    GetMicState, ListDevices, MicSettings, MicSource, SetDevice, StopMic,
};
use cav_actors::health::{SourceSnapshot, SourceState, StatusBoard};
use cav_actors::messages::AudioChunk;
use cav_actors::mic::{list_devices, resolve, DeviceSelector, MicError};
use cav_actors::queue::{drop_oldest, Drain};
use cav_core::audio_features::AudioAnalyzer;
use cav_core::{Clock, MonotonicClock};

const INSTALL_HINT: &str = "PulseAudio and the ALSA pulse plugin are needed for the microphone \
     tests: apt-get install -y pulseaudio pulseaudio-utils libasound2-plugins";

/// The ALSA devices the harness defines for the two sinks' monitors.
const MONITOR: &str = "vsink_monitor";
const MONITOR2: &str = "vsink2_monitor";

/// One test at a time (see the module comment).
fn turn() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock().unwrap_or_else(|p| p.into_inner())
}

fn require(tool: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(found, "'{tool}' is not installed. {INSTALL_HINT}");
}

/// The test binary's PulseAudio: started on first use, with its environment applied to this
/// process (before anything touches ALSA).
struct Pulse {
    dir: PathBuf,
}

fn pulse() -> &'static Pulse {
    static PULSE: OnceLock<Pulse> = OnceLock::new();
    PULSE.get_or_init(|| {
        for tool in ["pulseaudio", "pactl", "paplay"] {
            require(tool);
        }
        remove_stale_dirs();
        let dir = std::env::temp_dir().join(format!("{DIR_PREFIX}{}", std::process::id()));
        let pulse = Pulse { dir };
        pulse.harness(&["start", &pulse.dir_str(), &std::process::id().to_string()]);
        let env = std::fs::read_to_string(pulse.dir.join("env")).expect("the harness's env file");
        for line in env.lines() {
            if let Some((k, v)) = line.trim().trim_start_matches("export ").split_once('=') {
                std::env::set_var(k, v);
            }
        }
        pulse
    })
}

const DIR_PREFIX: &str = "cav-mic-test-";

/// Removes the server directories of earlier test runs whose process has exited (a test binary
/// cannot clean up after itself), stopping their servers first in case the harness's watchdog
/// has not got round to it yet.
fn remove_stale_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let Some(pid) = name.strip_prefix(DIR_PREFIX) else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            let _ = Command::new(root().join("scripts/pulse-harness.sh"))
                .arg("stop")
                .arg(entry.path())
                .output();
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// The tones, made once and kept between runs (in the target directory).
fn tone_file(hz: f64, amplitude: f64, seconds: f64) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("mic-tones");
    std::fs::create_dir_all(&dir).expect("the tone directory");
    let wav = dir.join(format!("tone-{hz}-{amplitude}-{seconds}.wav"));
    if !wav.exists() {
        // Written aside and renamed, so that a concurrent run never plays half a file.
        let part = dir.join(format!("tone.{}.part", std::process::id()));
        write_tone(&part, hz, amplitude, seconds);
        std::fs::rename(&part, &wav).expect("cannot move the tone into place");
    }
    wav
}

impl Pulse {
    fn dir_str(&self) -> String {
        self.dir.to_string_lossy().to_string()
    }

    fn harness(&self, args: &[&str]) {
        common::run_harness("pulse-harness.sh", args, INSTALL_HINT);
    }

    /// Plays a sine tone (48 kHz stereo, 16 bit) into `sink` until the returned guard drops.
    fn play(&self, sink: &str, hz: f64, amplitude: f64, seconds: f64) -> Player {
        let wav = tone_file(hz, amplitude, seconds);
        let child = Command::new("paplay")
            .arg(format!("--device={sink}"))
            .arg(&wav)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot run paplay");
        Player(child)
    }
}

/// A running `paplay`; killed when dropped.
struct Player(Child);

impl Drop for Player {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn write_tone(path: &Path, hz: f64, amplitude: f64, seconds: f64) {
    let rate = 48_000u32;
    let frames = (seconds * f64::from(rate)) as u32;
    let mut data = Vec::with_capacity(frames as usize * 4);
    for i in 0..frames {
        let x =
            amplitude * (2.0 * std::f64::consts::PI * hz * f64::from(i) / f64::from(rate)).sin();
        let s = (x * 32_767.0).round() as i16;
        data.extend_from_slice(&s.to_le_bytes());
        data.extend_from_slice(&s.to_le_bytes());
    }
    let mut wav = Vec::new();
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
    wav.extend_from_slice(&2u16.to_le_bytes()); // channels
    wav.extend_from_slice(&rate.to_le_bytes());
    wav.extend_from_slice(&(rate * 4).to_le_bytes()); // bytes per second
    wav.extend_from_slice(&4u16.to_le_bytes()); // bytes per frame
    wav.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&(data.len() as u32).to_le_bytes());
    wav.extend_from_slice(&data);
    std::fs::write(path, wav).expect("cannot write the tone");
}

/// A microphone source actor on its own arbiter (as in the daemon), with its board and queue.
struct Rig {
    addr: Addr<MicSource>,
    board: StatusBoard,
    clock: Arc<MonotonicClock>,
    chunks: Drain<AudioChunk>,
    id: String,
    _arbiter: Arbiter,
}

impl Rig {
    fn start(device: DeviceSelector) -> Rig {
        let board = StatusBoard::new();
        let clock = Arc::new(MonotonicClock::new());
        let id = "mic".to_string();
        let counters = board.register_source(&id, "microphone", clock.now());
        let (tx, chunks) = drop_oldest(1000, counters.audio_chunks_dropped.clone());
        let arbiter = Arbiter::new();
        let addr = {
            let (board, id, clock) = (board.clone(), id.clone(), clock.clone());
            Supervisor::start_in_arbiter(&arbiter.handle(), move |_| {
                MicSource::new(MicSettings { device }, id, board, clock, tx, counters)
            })
        };
        Rig {
            addr,
            board,
            clock,
            chunks,
            id,
            _arbiter: arbiter,
        }
    }

    fn status(&self) -> SourceSnapshot {
        self.board.sources()[&self.id].clone()
    }

    /// Waits (up to `limit`) until the source status satisfies `f`; panics with the status if not.
    async fn wait_for(&self, what: &str, limit: Duration, f: impl Fn(&SourceSnapshot) -> bool) {
        common::wait_for_source(&self.board, &self.id, what, limit, f).await;
    }

    async fn wait_running(&self, device: &str) {
        self.wait_for(
            &format!("running on {device}"),
            Duration::from_secs(10),
            |s| {
                s.status.state == SourceState::Running
                    && s.status
                        .detail
                        .as_deref()
                        .is_some_and(|d| d.starts_with(&format!("{device}: ")))
            },
        )
        .await;
    }

    /// Collects chunks for `d`, with the clock reading when each batch was drained.
    async fn collect(&self, d: Duration) -> Vec<(AudioChunk, cav_core::Timestamp)> {
        let deadline = Instant::now() + d;
        let mut out = Vec::new();
        while Instant::now() < deadline {
            let now = self.clock.now();
            out.extend(self.chunks.drain().into_iter().map(|c| (c, now)));
            actix_rt::time::sleep(Duration::from_millis(20)).await;
        }
        out
    }

    /// Discards what is queued, then waits until a chunk's dominant frequency is near `hz`;
    /// returns how long that took.
    async fn wait_for_tone(&self, hz: f32, limit: Duration) -> Duration {
        self.chunks.drain();
        let start = Instant::now();
        let mut analyzer = AudioAnalyzer::new(16_000);
        let mut seen = Vec::new();
        while start.elapsed() < limit {
            for c in self.chunks.drain() {
                let f = analyzer.analyze(&c.samples);
                if f.dbfs > -40.0 && f.dominant_hz.is_some_and(|d| (d - hz).abs() < 20.0) {
                    return start.elapsed();
                }
                seen.push((f.dbfs, f.dominant_hz));
            }
            actix_rt::time::sleep(Duration::from_millis(20)).await;
        }
        let tail: Vec<_> = seen.iter().rev().take(5).collect();
        panic!(
            "no {hz} Hz tone within {limit:?}; last chunks (dBFS, Hz): {tail:?}; status: {:#?}",
            self.status()
        );
    }
}

/// Level and dominant frequency of a run of chunks.
fn analyse(chunks: &[&AudioChunk]) -> (f32, Option<f32>) {
    let samples: Vec<f32> = chunks
        .iter()
        .flat_map(|c| c.samples.iter().copied())
        .collect();
    let f = AudioAnalyzer::new(16_000).analyze(&samples);
    (f.dbfs, f.dominant_hz)
}

#[test]
fn lists_the_pulse_devices_with_sane_fields() {
    let _turn = turn();
    pulse();
    let devices = list_devices().expect("list_devices");
    println!("{devices:#?}");
    for (i, d) in devices.iter().enumerate() {
        assert_eq!(d.index, i);
        assert!(!d.name.is_empty());
        assert!((1..=32).contains(&d.channels), "{d:?}");
        assert!((8_000..=384_000).contains(&d.default_sample_rate), "{d:?}");
    }
    let names: Vec<&str> = devices.iter().map(|d| d.name.as_str()).collect();
    for name in ["default", "pulse", MONITOR, MONITOR2] {
        assert!(names.contains(&name), "no '{name}' among {names:?}");
    }
    let defaults: Vec<_> = devices.iter().filter(|d| d.default).collect();
    assert_eq!(defaults.len(), 1, "{devices:?}");
    assert_eq!(defaults[0].name, "default");

    // Selecting: by index, by name (exact or case-insensitive), the default; clear errors.
    let monitor = devices.iter().find(|d| d.name == MONITOR).unwrap();
    assert_eq!(
        resolve(&DeviceSelector::Index(monitor.index)).unwrap().0,
        *monitor
    );
    assert_eq!(
        resolve(&DeviceSelector::Name("VSINK_MONITOR".into()))
            .unwrap()
            .0
            .name,
        MONITOR
    );
    assert_eq!(resolve(&DeviceSelector::Default).unwrap().0.name, "default");
    let e = resolve(&DeviceSelector::Index(99))
        .err()
        .expect("index 99 is unknown");
    assert!(e.is_unknown_device());
    let msg = e.to_string();
    assert!(
        msg.starts_with(&format!(
            "no input device with index 99 (there are {}: 0 '",
            devices.len()
        )) && msg.contains(&format!("'{MONITOR}'")),
        "{msg}"
    );
    let e = resolve(&DeviceSelector::Name("no-such-mic".into()))
        .err()
        .expect("no-such-mic is unknown");
    assert!(matches!(e, MicError::UnknownName { .. }), "{e:?}");
    assert!(e
        .to_string()
        .contains("no input device named 'no-such-mic'"));
}

#[actix_rt::test]
async fn captures_a_tone_in_real_time_at_the_right_level_and_pitch() {
    let _turn = turn();
    let pulse = pulse();
    let rig = Rig::start(DeviceSelector::Name(MONITOR.into()));
    rig.wait_running(MONITOR).await;
    let detail = rig.status().status.detail.unwrap_or_default();
    println!("detail: {detail}");

    // A 1 kHz sine at amplitude 0.1414 (−20 dBFS RMS: 0.1414/√2 = 0.1).
    let played_at = rig.clock.now();
    let _player = pulse.play("vsink", 1000.0, 0.1414, 8.0);
    let took = rig.wait_for_tone(1000.0, Duration::from_secs(5)).await;
    println!("tone heard {took:?} after paplay started");

    let window = Duration::from_secs(4);
    let t0 = Instant::now();
    let got = rig.collect(window).await;
    let elapsed = t0.elapsed().as_secs_f64();
    let samples: usize = got.iter().map(|(c, _)| c.samples.len()).sum();
    let rate = samples as f64 / elapsed;
    println!(
        "{} chunks, {samples} samples in {elapsed:.2} s = {rate:.0} per second",
        got.len()
    );
    assert!(
        (rate - 16_000.0).abs() < 1_600.0,
        "not real time: {rate:.0} samples per second"
    );
    assert!(got
        .iter()
        .all(|(c, _)| c.samples.len() == 1600 && &*c.source == "mic"));

    // Stamped by sample count: consecutive chunks are exactly 100 ms apart (barring a
    // re-anchor), and each chunk's stamp is before it arrived, by the capture latency.
    let reanchors = rig.addr.send(GetMicState).await.unwrap().unwrap().reanchors;
    for w in got.windows(2) {
        let step = w[1].0.captured.micros() - w[0].0.captured.micros();
        assert!(
            step == 100_000 || reanchors > 0,
            "chunk stamps {step} µs apart"
        );
    }
    let latencies: Vec<f64> = got
        .iter()
        .map(|(c, drained)| drained.secs_since(c.captured) - 0.1)
        .collect();
    let (min, max) = latencies
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), &l| (lo.min(l), hi.max(l)));
    println!(
        "latency from a chunk's end to its arrival: {min:.3} … {max:.3} s; reanchors {reanchors}"
    );
    assert!(
        min > -0.02,
        "a chunk arrived before its last sample was captured: {min:.3} s"
    );
    assert!(max < 0.6, "chunks arrive {max:.3} s after capture");
    let first = got[0].0.captured;
    assert!(
        first > played_at,
        "tone chunk stamped before paplay started"
    );

    let chunks: Vec<&AudioChunk> = got.iter().map(|(c, _)| c).collect();
    let (dbfs, hz) = analyse(&chunks);
    println!("captured level {dbfs:.2} dBFS, dominant {hz:?} Hz");
    assert!(
        (dbfs + 20.0).abs() < 2.0,
        "level {dbfs:.2} dBFS, played −20 dBFS"
    );
    let hz = hz.expect("a dominant frequency");
    assert!((hz - 1000.0).abs() < 5.0, "dominant {hz} Hz");

    let status = rig.status();
    assert_eq!(status.status.kind, "microphone");
    assert_eq!(status.audio_chunks_dropped, 0);
    assert!(status.audio_chunks >= got.len() as u64);
    assert!(status.status.last_audio_at.is_some());
    rig.addr.send(StopMic).await.unwrap();
    assert_eq!(rig.status().status.state, SourceState::Stopped);
}

#[actix_rt::test]
async fn switches_devices_live_and_refuses_unknown_ones() {
    let _turn = turn();
    let pulse = pulse();
    let _tone1 = pulse.play("vsink", 1000.0, 0.2, 30.0);
    let _tone2 = pulse.play("vsink2", 440.0, 0.2, 30.0);
    let rig = Rig::start(DeviceSelector::Name(MONITOR.into()));
    rig.wait_running(MONITOR).await;
    rig.wait_for_tone(1000.0, Duration::from_secs(5)).await;

    // Unknown devices: an error, and the capture goes on as it was.
    let e = rig
        .addr
        .send(SetDevice(DeviceSelector::Index(1000)))
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(e, MicError::UnknownIndex { index: 1000, .. }),
        "{e}"
    );
    assert!(e.to_string().contains(MONITOR2), "{e}");
    let e = rig
        .addr
        .send(SetDevice(DeviceSelector::Name("usb-mic".into())))
        .await
        .unwrap()
        .unwrap_err();
    assert!(e.is_unknown_device(), "{e}");
    assert_eq!(rig.status().status.state, SourceState::Running);
    rig.wait_for_tone(1000.0, Duration::from_secs(1)).await;

    // Switch by name to the other monitor: the 440 Hz tone follows.
    let t = Instant::now();
    let device = rig
        .addr
        .send(SetDevice(DeviceSelector::Name(MONITOR2.into())))
        .await
        .unwrap()
        .expect("switch to the second monitor");
    println!("SetDevice answered in {:?}: {device:?}", t.elapsed());
    assert_eq!(device.name, MONITOR2);
    rig.wait_running(MONITOR2).await;
    let took = rig.wait_for_tone(440.0, Duration::from_secs(5)).await;
    println!(
        "440 Hz after the switch: {:?} from the answer",
        took + t.elapsed()
    );
    let state = rig.addr.send(GetMicState).await.unwrap().unwrap();
    assert_eq!(state.selector, DeviceSelector::Name(MONITOR2.into()));
    assert_eq!(state.device.map(|d| d.name), Some(MONITOR2.to_string()));

    // And back, by index (from the actor's own list).
    let devices = rig.addr.send(ListDevices).await.unwrap().unwrap();
    let index = devices.iter().find(|d| d.name == MONITOR).unwrap().index;
    let device = rig
        .addr
        .send(SetDevice(DeviceSelector::Index(index)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(device.name, MONITOR);
    rig.wait_running(MONITOR).await;
    rig.wait_for_tone(1000.0, Duration::from_secs(5)).await;
    // Only one stream feeds the queue: no 440 Hz chunks interleave any more.
    let got = rig.collect(Duration::from_secs(1)).await;
    let mut analyzer = AudioAnalyzer::new(16_000);
    for (c, _) in &got {
        let hz = analyzer.analyze(&c.samples).dominant_hz.unwrap_or(0.0);
        assert!(
            (hz - 1000.0).abs() < 20.0,
            "a chunk at {hz} Hz after switching back"
        );
    }
}

#[actix_rt::test]
async fn an_unknown_configured_device_is_an_error_and_capture_starts_when_set() {
    let _turn = turn();
    let pulse = pulse();
    let rig = Rig::start(DeviceSelector::Name("not-plugged-in".into()));
    rig.wait_for("error", Duration::from_secs(10), |s| {
        s.status.state == SourceState::Error
    })
    .await;
    let s = rig.status().status;
    assert!(
        s.last_error
            .as_deref()
            .is_some_and(|e| e.contains("no input device named 'not-plugged-in'")),
        "{s:?}"
    );
    assert!(
        s.detail
            .as_deref()
            .is_some_and(|d| d.contains("next try in")),
        "{s:?}"
    );

    let _tone = pulse.play("vsink2", 440.0, 0.2, 20.0);
    rig.addr
        .send(SetDevice(DeviceSelector::Name(MONITOR2.into())))
        .await
        .unwrap()
        .unwrap();
    rig.wait_running(MONITOR2).await;
    rig.wait_for_tone(440.0, Duration::from_secs(5)).await;
}

#[actix_rt::test]
async fn reconnects_when_the_sound_server_comes_back() {
    let _turn = turn();
    let pulse = pulse();
    let rig = Rig::start(DeviceSelector::Name(MONITOR.into()));
    rig.wait_running(MONITOR).await;

    pulse.harness(&["stop", &pulse.dir_str()]);
    rig.wait_for(
        "reconnecting after the server went away",
        Duration::from_secs(20),
        |s| s.status.state == SourceState::Reconnecting,
    )
    .await;
    println!("while away: {:#?}", rig.status());
    actix_rt::time::sleep(Duration::from_secs(2)).await;
    // The device it had open is gone, not unknown: still Reconnecting, not Error.
    let s = rig.status();
    assert_eq!(s.status.state, SourceState::Reconnecting, "{s:#?}");
    assert!(
        s.decode_errors <= 100,
        "a broken stream counted as {} glitches",
        s.decode_errors
    );

    pulse.harness(&["start", &pulse.dir_str(), &std::process::id().to_string()]);
    let _tone = pulse.play("vsink", 1000.0, 0.2, 30.0);
    rig.wait_for("running again", Duration::from_secs(40), |s| {
        s.status.state == SourceState::Running
    })
    .await;
    rig.wait_for_tone(1000.0, Duration::from_secs(5)).await;
    let state = rig.addr.send(GetMicState).await.unwrap().unwrap();
    println!("after reconnecting: {state:?}; status {:#?}", rig.status());
    assert!(state.reopens >= 1);
}

#[actix_rt::test]
async fn a_crashed_actor_is_restarted_and_captures_again() {
    let _turn = turn();
    let pulse = pulse();
    let _tone = pulse.play("vsink", 1000.0, 0.2, 20.0);
    let rig = Rig::start(DeviceSelector::Name(MONITOR.into()));
    rig.wait_running(MONITOR).await;
    rig.wait_for_tone(1000.0, Duration::from_secs(5)).await;

    rig.addr
        .send(cav_actors::supervise::InjectPanic)
        .await
        .unwrap();
    let board = rig.board.clone();
    rig.wait_for("a restart", Duration::from_secs(5), move |_| {
        board.actors()[MicSource::NAME].restarts == 1
    })
    .await;
    rig.wait_running(MONITOR).await;
    rig.wait_for_tone(1000.0, Duration::from_secs(5)).await;
    let state = rig.addr.send(GetMicState).await.unwrap().unwrap();
    assert_eq!(state.selector, DeviceSelector::Name(MONITOR.into()));
}

#[actix_rt::test]
async fn a_frozen_sound_server_shows_as_stalled_until_it_resumes() {
    let _turn = turn();
    let pulse = pulse();
    let rig = Rig::start(DeviceSelector::Name(MONITOR.into()));
    rig.wait_running(MONITOR).await;

    // SIGSTOP freezes PulseAudio: no callbacks, and no errors either.
    let pid = std::fs::read_to_string(pulse.dir.join("pulse.pid")).expect("pulse.pid");
    let signal = |sig: &str| {
        let ok = Command::new("kill")
            .args([sig, pid.trim()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill {sig} {pid}");
    };
    signal("-STOP");
    let frozen = Instant::now();
    let stalled =
        std::panic::AssertUnwindSafe(rig.wait_for("stalled", Duration::from_secs(5), |s| {
            s.status.state == SourceState::Stalled
        }));
    let result = catch_panic(stalled).await;
    let took = frozen.elapsed();
    signal("-CONT");
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
    println!("stalled {took:?} after the server froze");
    // The last callback came up to one buffer (50 ms) before the freeze.
    assert!(
        took >= Duration::from_millis(1800),
        "stalled after only {took:?}"
    );
    let detail = rig.status().status.detail.unwrap_or_default();
    assert!(detail.contains("no audio for over 2 s"), "{detail}");
    rig.wait_running(MONITOR).await;
    // On resuming, PulseAudio delivers the frozen seconds of the sink in a burst (nothing was
    // lost), so the timeline must go on by sample count, not jump: no re-anchor, and the
    // newest chunks are stamped in real time again.
    rig.chunks.drain();
    let got = rig.collect(Duration::from_millis(500)).await;
    let state = rig.addr.send(GetMicState).await.unwrap().unwrap();
    println!("after resuming: {state:?}");
    assert_eq!(state.reanchors, 0, "{state:?}");
    let (last, drained) = got.last().expect("chunks after resuming");
    let lag = drained.secs_since(last.captured);
    assert!(
        (0.0..0.6).contains(&lag),
        "the newest chunk is stamped {lag:.3} s before it arrived"
    );
}

/// Runs a future, catching a panic in it (so the test can resume the server before failing).
async fn catch_panic<F: std::future::Future + std::panic::UnwindSafe>(
    f: F,
) -> std::thread::Result<F::Output> {
    let mut f = Box::pin(f);
    std::future::poll_fn(move |cx| {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f.as_mut().poll(cx))) {
            Ok(std::task::Poll::Ready(v)) => std::task::Poll::Ready(Ok(v)),
            Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
            Err(panic) => std::task::Poll::Ready(Err(panic)),
        }
    })
    .await
}
