//! The OBS source against a real, headless OBS Studio 29 (obs-websocket 5.1), started and
//! stopped by `scripts/obs-harness.sh` (Xvfb + `obs --multi`). Needs the Debian packages
//! obs-studio, xvfb and x11-utils: `scripts/test.sh` installs them. Without them these tests
//! fail (on purpose: a silently skipped test proves nothing).
//!
//! The tests take turns (one OBS at a time): OBS renders with llvmpipe, and several instances
//! side by side would starve each other on a small machine and make the frame-rate checks flaky.

// The turn lock is held across awaits on purpose: every test runs its own runtime on its own
// thread, so the guard only makes the other tests' threads wait, and cannot deadlock.
#![allow(clippy::await_holding_lock)]

mod common;
use common::{free_port, root};

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use actix::prelude::*;
use cav_actors::actor::obs_source::{
    ControlMedia, GetMediaStatus, GetObsState, ListInputs, ObsSource, SetSource,
};
use cav_actors::health::{ActorState, SourceSnapshot, SourceState, StatusBoard};
use cav_actors::messages::VideoFrame;
use cav_actors::obs::{MediaAction, ObsClient, ObsError, ObsSettings};
use cav_actors::queue::{drop_oldest, Drain};
use cav_core::{Frame, MonotonicClock};

const INSTALL_HINT: &str = "OBS Studio and Xvfb are needed for the OBS tests: run scripts/test.sh \
     (it installs obs-studio, xvfb and x11-utils), or apt-get install -y obs-studio xvfb x11-utils";

fn media(name: &str) -> PathBuf {
    root().join("tests/data/video").join(name)
}

/// One OBS at a time (see the module comment).
fn turn() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock().unwrap_or_else(|p| p.into_inner())
}

fn require_obs() {
    for tool in ["obs", "Xvfb"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        assert!(found, "'{tool}' is not installed. {INSTALL_HINT}");
    }
}

/// A running headless OBS; stopped (SIGINT, then Xvfb) when dropped.
struct Obs {
    dir: tempfile::TempDir,
    media: PathBuf,
    port: u16,
    password: Option<String>,
}

impl Obs {
    fn start(media_file: &str, password: Option<&str>) -> Obs {
        require_obs();
        let obs = Obs {
            dir: tempfile::tempdir().expect("temp dir"),
            media: media(media_file),
            port: free_port(),
            password: password.map(str::to_string),
        };
        obs.launch();
        obs
    }

    fn harness(&self, args: &[&str]) {
        common::run_harness("obs-harness.sh", args, INSTALL_HINT);
    }

    fn launch(&self) {
        let dir = self.dir.path().to_string_lossy().to_string();
        let media = self.media.to_string_lossy().to_string();
        let port = self.port.to_string();
        let mut args = vec!["start", &dir, &media, &port];
        if let Some(p) = &self.password {
            args.push(p);
        }
        self.harness(&args);
    }

    fn stop(&self) {
        self.harness(&["stop", &self.dir.path().to_string_lossy()]);
    }

    /// Kills OBS outright (no clean shutdown, no close frame).
    fn kill(&self) {
        let pid = std::fs::read_to_string(self.dir.path().join("obs.pid")).expect("obs.pid");
        let status = Command::new("kill")
            .args(["-KILL", pid.trim()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    fn settings(&self, source: &str) -> ObsSettings {
        ObsSettings {
            host: "127.0.0.1".into(),
            port: self.port,
            password: self.password.clone(),
            source: source.into(),
            fps: 5.0,
            width: 640,
            jpeg_quality: 80,
        }
    }
}

impl Drop for Obs {
    fn drop(&mut self) {
        let _ = Command::new(root().join("scripts/obs-harness.sh"))
            .args(["stop", &self.dir.path().to_string_lossy()])
            .output();
    }
}

/// An OBS source actor on its own arbiter (as in the daemon), with its board and frame queue.
struct Rig {
    addr: Addr<ObsSource>,
    board: StatusBoard,
    frames: Drain<VideoFrame>,
    id: String,
    _arbiter: Arbiter,
}

impl Rig {
    fn start(settings: ObsSettings) -> Rig {
        let board = StatusBoard::new();
        let clock = Arc::new(MonotonicClock::new());
        let id = "obs".to_string();
        let counters = board.register_source(&id, "obs", cav_core::Clock::now(&*clock));
        let (tx, frames) = drop_oldest(1000, counters.frames_dropped.clone());
        let arbiter = Arbiter::new();
        let addr = {
            let (board, id) = (board.clone(), id.clone());
            Supervisor::start_in_arbiter(&arbiter.handle(), move |_| {
                ObsSource::new(settings, id, board, clock, tx, counters)
            })
        };
        Rig {
            addr,
            board,
            frames,
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

    /// Collects frames for `d`.
    async fn collect(&self, d: Duration) -> Vec<VideoFrame> {
        let deadline = Instant::now() + d;
        let mut out = Vec::new();
        while Instant::now() < deadline {
            out.extend(self.frames.drain());
            actix_rt::time::sleep(Duration::from_millis(20)).await;
        }
        out.extend(self.frames.drain());
        out
    }
}

/// The frame index that frame_counter_gop25.mp4 draws as 10 binary blocks along the top
/// (block b spans x = 64b…64b+63, y = 0…63 at 640 px; scaled for narrower frames). `None` when
/// a block is neither clearly black nor clearly white (not that clip, or a blurred frame).
fn frame_index(f: &Frame) -> Option<u32> {
    let scale = f.width() as f64 / 640.0;
    let mut n = 0;
    for b in 0..10 {
        let x = ((64 * b + 32) as f64 * scale) as usize;
        let y = (32.0 * scale) as usize;
        let i = (y * f.width() as usize + x) * 3;
        let px = &f.bgr()[i..i + 3];
        let luma = (px[0] as u32 + px[1] as u32 + px[2] as u32) / 3;
        match luma {
            0..=60 => {}
            190.. => n |= 1 << b,
            _ => return None,
        }
    }
    Some(n)
}

#[actix_rt::test]
async fn frames_arrive_at_the_configured_rate_and_show_the_media() {
    let _turn = turn();
    let obs = Obs::start("frame_counter_gop25.mp4", None);
    let rig = Rig::start(obs.settings("Media"));
    rig.wait_for("running", Duration::from_secs(10), |s| {
        s.status.state == SourceState::Running
    })
    .await;
    let detail = rig.status().status.detail.unwrap_or_default();
    assert!(
        detail.contains("OBS 29") || detail.contains("OBS "),
        "{detail}"
    );
    rig.frames.drain();

    let window = Duration::from_secs(3);
    let frames = rig.collect(window).await;
    println!("{} frames in {window:?} at 5 fps", frames.len());
    assert!(
        (12..=18).contains(&frames.len()),
        "expected 12..18 frames in 3 s at 5 fps, got {}",
        frames.len()
    );
    for w in frames.windows(2) {
        assert!(w[1].seq > w[0].seq && w[1].captured > w[0].captured);
    }
    let f0 = &frames[0].frame;
    assert_eq!((f0.width(), f0.height()), (640, 480));

    // The pictures are the clip's frames, and they advance with the clip (25 fps): between two
    // screenshots 200 ms apart, about 5 clip frames pass.
    let indexes: Vec<u32> = frames
        .iter()
        .map(|f| frame_index(&f.frame).expect("the frame-counter blocks are readable"))
        .collect();
    println!("clip frame indexes: {indexes:?}");
    // The clip loops every 500 frames (20 s); OBS started < 15 s ago, so no wrap here.
    assert!(indexes.windows(2).all(|w| w[1] >= w[0]), "{indexes:?}");
    let first = (frames[0].captured, indexes[0]);
    let last = (
        frames[frames.len() - 1].captured,
        indexes[indexes.len() - 1],
    );
    let clip_fps = (last.1 - first.1) as f64 / last.0.secs_since(first.0);
    assert!(
        (18.0..=32.0).contains(&clip_fps),
        "the clip advanced at {clip_fps:.1} frames/s between screenshots (25 expected)"
    );

    let counters = rig.status();
    assert!(counters.frames >= frames.len() as u64);
    assert_eq!(rig.board.actors()[ObsSource::NAME].restarts, 0);
    drop(obs);
}

#[actix_rt::test]
async fn a_wrong_password_is_an_authentication_error_not_a_crash() {
    let _turn = turn();
    let obs = Obs::start("frame_counter_gop25.mp4", Some("secret123"));

    // The client reports both a wrong and a missing password as AuthFailed.
    let mut wrong = obs.settings("Media");
    wrong.password = Some("not-the-password".into());
    let err = ObsClient::connect(&wrong).await.unwrap_err();
    assert!(matches!(err, ObsError::AuthFailed { .. }), "{err:?}");
    println!("wrong password: {err}");
    let mut none = obs.settings("Media");
    none.password = None;
    let err = ObsClient::connect(&none).await.unwrap_err();
    assert!(matches!(err, ObsError::AuthFailed { .. }), "{err:?}");
    println!("no password: {err}");
    let good = ObsClient::connect(&obs.settings("Media"))
        .await
        .expect("right password");
    good.screenshot("Media", 320, 80).await.expect("screenshot");

    let rig = Rig::start(wrong);
    rig.wait_for("the error state", Duration::from_secs(10), |s| {
        s.status.state == SourceState::Error
    })
    .await;
    let s = rig.status();
    let last_error = s.status.last_error.unwrap_or_default();
    assert!(last_error.contains("authentication"), "{last_error}");
    assert!(s.status.detail.unwrap_or_default().contains("next try in"));
    // It keeps retrying without crashing: still an error (not a restart) a second later.
    actix_rt::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(rig.status().status.state, SourceState::Error);
    let actor = &rig.board.actors()[ObsSource::NAME];
    assert_eq!((actor.state, actor.restarts), (ActorState::Running, 0));
    let state = rig.addr.send(GetObsState).await.unwrap().unwrap();
    assert!(!state.connected);
    assert!(state.last_error.unwrap().contains("authentication"));
}

/// A trivial actor standing for "the rest of the daemon".
struct Heartbeat(Arc<std::sync::atomic::AtomicU64>);
impl Actor for Heartbeat {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(Duration::from_millis(50), |a, _| {
            a.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        });
    }
}

#[actix_rt::test]
async fn obs_dying_means_reconnecting_and_frames_resume_when_it_returns() {
    let _turn = turn();
    let obs = Obs::start("frame_counter_gop25.mp4", None);
    let beats = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let _heartbeat = Heartbeat(beats.clone()).start();
    let rig = Rig::start(obs.settings("Media"));
    rig.wait_for("running", Duration::from_secs(10), |s| {
        s.status.state == SourceState::Running
    })
    .await;

    obs.kill();
    let killed = Instant::now();
    rig.wait_for("reconnecting", Duration::from_secs(6), |s| {
        s.status.state == SourceState::Reconnecting
    })
    .await;
    println!("reconnecting {:?} after SIGKILL", killed.elapsed());
    let detail = rig.status().status.detail.unwrap_or_default();
    assert!(detail.contains("next try in"), "{detail}");
    // Requests fail promptly while OBS is away.
    let t = Instant::now();
    let r = rig.addr.send(ListInputs).await.unwrap();
    assert!(matches!(r, Err(ObsError::Disconnected)), "{r:?}");
    assert!(t.elapsed() < Duration::from_millis(200));
    // The rest of the system carries on.
    let before = beats.load(std::sync::atomic::Ordering::Relaxed);
    actix_rt::time::sleep(Duration::from_millis(500)).await;
    assert!(beats.load(std::sync::atomic::Ordering::Relaxed) >= before + 5);

    // OBS comes back on the same port: frames flow again, with no actor restart.
    obs.stop(); // reaps the dead OBS's Xvfb
    let frames_before = rig.status().frames;
    obs.launch();
    let relaunched = Instant::now();
    rig.wait_for("running again", Duration::from_secs(15), |s| {
        s.status.state == SourceState::Running && s.frames > frames_before + 3
    })
    .await;
    println!(
        "frames again {:?} after OBS was relaunched",
        relaunched.elapsed()
    );
    let actor = &rig.board.actors()[ObsSource::NAME];
    assert_eq!((actor.state, actor.restarts), (ActorState::Running, 0));
    assert!(rig.addr.send(GetObsState).await.unwrap().unwrap().connected);
}

#[actix_rt::test]
async fn obs_absent_at_start_means_reconnecting_with_backoff() {
    let port = free_port(); // nothing listens there
    let settings = ObsSettings {
        host: "127.0.0.1".into(),
        port,
        password: None,
        source: "Media".into(),
        fps: 5.0,
        width: 640,
        jpeg_quality: 80,
    };
    let err = ObsClient::connect(&settings).await.unwrap_err();
    assert!(matches!(err, ObsError::Unreachable { .. }), "{err:?}");
    println!("{err}");
    let rig = Rig::start(settings);
    rig.wait_for("reconnecting", Duration::from_secs(3), |s| {
        s.status.state == SourceState::Reconnecting
    })
    .await;
    // The backoff grows: 0.5 s, 1 s, 2 s...
    rig.wait_for("a longer backoff", Duration::from_secs(5), |s| {
        s.status
            .detail
            .as_deref()
            .unwrap_or_default()
            .contains("next try in 2.0 s")
    })
    .await;
    let state = rig.addr.send(GetObsState).await.unwrap().unwrap();
    assert!(!state.connected);
    assert_eq!(state.state, SourceState::Reconnecting);
    let r = rig
        .addr
        .send(GetMediaStatus {
            input: "Media".into(),
        })
        .await
        .unwrap();
    assert!(matches!(r, Err(ObsError::Disconnected)), "{r:?}");
    assert_eq!(rig.board.actors()[ObsSource::NAME].restarts, 0);
}

#[actix_rt::test]
async fn media_inputs_can_be_listed_paused_sought_and_played() {
    let _turn = turn();
    let obs = Obs::start("frame_counter_gop25.mp4", None);
    let rig = Rig::start(obs.settings("Media"));
    rig.wait_for("running", Duration::from_secs(10), |s| {
        s.status.state == SourceState::Running
    })
    .await;

    let inputs = rig.addr.send(ListInputs).await.unwrap().unwrap();
    assert!(
        inputs
            .iter()
            .any(|i| i.name == "Media" && i.kind == "ffmpeg_source"),
        "{inputs:?}"
    );
    let control = |action| {
        rig.addr.send(ControlMedia {
            input: "Media".into(),
            action,
        })
    };

    let s = control(MediaAction::Pause).await.unwrap().unwrap();
    assert_eq!(s.state, "paused", "{s:?}");
    assert_eq!(s.duration_ms, Some(20_000));

    // Paused, a seek to a keyframe (every 1 s in this clip) reads back as keyframe + one frame,
    // and shows exactly that frame. Once (1 run in ~15, during a full-suite run) OBS 29 moved
    // the cursor but kept showing the pre-seek picture; the picture check allows one more seek
    // for that race and prints when it happens.
    let mut shown = Vec::new();
    for attempt in 1..=2 {
        let t = Instant::now();
        let s = control(MediaAction::Seek { position_ms: 5000 })
            .await
            .unwrap()
            .unwrap();
        println!("{:?} after a paused seek to 5000 ms: {s:?}", t.elapsed());
        let cursor = s.cursor_ms.unwrap();
        assert!((5000..=5100).contains(&cursor), "{s:?}");
        actix_rt::time::sleep(Duration::from_millis(500)).await;
        rig.frames.drain();
        let frames = rig.collect(Duration::from_millis(600)).await;
        shown = frames
            .iter()
            .filter_map(|f| frame_index(&f.frame))
            .collect();
        println!("frames shown while paused at 5 s: {shown:?}");
        if shown.contains(&125) {
            break;
        }
        println!("attempt {attempt}: OBS kept the old picture after a paused seek");
    }
    assert!(
        !shown.is_empty() && shown.iter().all(|&n| n == 125),
        "{shown:?}"
    );
    let s = rig
        .addr
        .send(GetMediaStatus {
            input: "Media".into(),
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.state, "paused");

    let s = control(MediaAction::Play).await.unwrap().unwrap();
    assert_eq!(s.state, "playing", "{s:?}");
    actix_rt::time::sleep(Duration::from_millis(800)).await;
    rig.frames.drain();
    let frames = rig.collect(Duration::from_millis(600)).await;
    let shown: Vec<_> = frames
        .iter()
        .filter_map(|f| frame_index(&f.frame))
        .collect();
    println!("frames shown after play: {shown:?}");
    assert!(
        shown.iter().all(|&n| n > 125) && shown.windows(2).all(|w| w[1] >= w[0]),
        "{shown:?}"
    );

    // Unknown inputs are reported as such.
    let r = rig
        .addr
        .send(GetMediaStatus {
            input: "Nope".into(),
        })
        .await
        .unwrap();
    assert!(matches!(r, Err(ObsError::SourceNotFound { .. })), "{r:?}");
}

#[actix_rt::test]
async fn the_captured_source_can_be_switched_but_not_to_a_missing_one() {
    let _turn = turn();
    let obs = Obs::start("frame_counter_gop25.mp4", None);

    // Configured with a source OBS does not have: an error state, retried, no crash.
    let rig = Rig::start(obs.settings("Camera"));
    rig.wait_for("the error state", Duration::from_secs(10), |s| {
        s.status.state == SourceState::Error
    })
    .await;
    let s = rig.status();
    let last_error = s.status.last_error.clone().unwrap_or_default();
    assert!(
        last_error.contains("no source named 'Camera'"),
        "{last_error}"
    );
    assert_eq!(s.frames, 0);

    // Switching to a source that exists starts the capture.
    rig.addr
        .send(SetSource {
            source: "Media".into(),
        })
        .await
        .unwrap()
        .unwrap();
    rig.wait_for("running", Duration::from_secs(5), |s| {
        s.status.state == SourceState::Running
    })
    .await;

    // Switching to a missing source is refused, and capture carries on with the old one.
    let r = rig
        .addr
        .send(SetSource {
            source: "Missing".into(),
        })
        .await
        .unwrap();
    assert!(
        matches!(&r, Err(ObsError::SourceNotFound { name }) if name == "Missing"),
        "{r:?}"
    );
    rig.frames.drain();
    let frames = rig.collect(Duration::from_secs(1)).await;
    assert!(frames.len() >= 3, "{} frames", frames.len());
    assert!(frames.iter().all(|f| frame_index(&f.frame).is_some()));
    let state = rig.addr.send(GetObsState).await.unwrap().unwrap();
    assert_eq!(state.source, "Media");
    assert_eq!(state.state, SourceState::Running);

    // A scene is a source too.
    rig.addr
        .send(SetSource {
            source: "Scene".into(),
        })
        .await
        .unwrap()
        .unwrap();
    rig.frames.drain();
    let frames = rig.collect(Duration::from_secs(1)).await;
    assert!(frames.len() >= 3, "{} frames of the scene", frames.len());

    // A hidden input cannot be rendered (OBS 29 answers status 702 "Failed to render
    // screenshot.", the same as for an input outside the active scene or a stopped media
    // input): the source stalls, and recovers when the input is shown again.
    rig.addr
        .send(SetSource {
            source: "Media".into(),
        })
        .await
        .unwrap()
        .unwrap();
    let obs_ws = obws::Client::connect("127.0.0.1", obs.port, None::<&str>)
        .await
        .expect("connect");
    let show = |enabled| obws::requests::scene_items::SetEnabled {
        scene: "Scene",
        item_id: 1,
        enabled,
    };
    obs_ws
        .scene_items()
        .set_enabled(show(false))
        .await
        .expect("hide Media");
    rig.wait_for("stalled", Duration::from_secs(6), |s| {
        s.status.state == SourceState::Stalled
    })
    .await;
    let detail = rig.status().status.detail.unwrap_or_default();
    println!("hidden: {detail}");
    assert!(
        detail.contains("could not render source 'Media'"),
        "{detail}"
    );
    obs_ws
        .scene_items()
        .set_enabled(show(true))
        .await
        .expect("show Media");
    rig.wait_for("running again", Duration::from_secs(5), |s| {
        s.status.state == SourceState::Running
    })
    .await;
}

/// Not a check: prints what one frame costs (request sent → decoded `Frame`) at two widths.
/// Run it with `cargo test --release -p cav-actors --test obs -- --ignored --nocapture`.
#[actix_rt::test]
#[ignore = "benchmark: prints timings, checks nothing"]
async fn screenshot_cost_benchmark() {
    let _turn = turn();
    let obs = Obs::start("av_sync_flash_beep.mp4", None);
    let client = ObsClient::connect(&obs.settings("Media"))
        .await
        .expect("connect");
    client.screenshot("Media", 640, 80).await.expect("warm-up");
    for width in [320u32, 640] {
        let mut request_ms = Vec::new();
        let mut decode_ms = Vec::new();
        let mut total_ms = Vec::new();
        let mut bytes = 0;
        for _ in 0..50 {
            let t0 = Instant::now();
            let jpeg = client
                .screenshot_jpeg("Media", width, 80)
                .await
                .expect("screenshot");
            let t1 = Instant::now();
            let frame = cav_actors::obs::decode_jpeg(&jpeg).expect("decode");
            let t2 = Instant::now();
            assert_eq!(frame.width(), width);
            bytes += jpeg.len();
            request_ms.push((t1 - t0).as_secs_f64() * 1e3);
            decode_ms.push((t2 - t1).as_secs_f64() * 1e3);
            total_ms.push((t2 - t0).as_secs_f64() * 1e3);
        }
        let pct = |v: &mut Vec<f64>, p: f64| {
            v.sort_by(|a, b| a.total_cmp(b));
            v[((v.len() - 1) as f64 * p).round() as usize]
        };
        println!(
            "screenshot jpg q80 {width} px, 50 frames: total p50 {:.1} ms p90 {:.1} ms (request p50 {:.1} / p90 {:.1}, decode p50 {:.2} / p90 {:.2}), {:.1} KB JPEG",
            pct(&mut total_ms, 0.5),
            pct(&mut total_ms, 0.9),
            pct(&mut request_ms, 0.5),
            pct(&mut request_ms, 0.9),
            pct(&mut decode_ms, 0.5),
            pct(&mut decode_ms, 0.9),
            bytes as f64 / 50.0 / 1024.0
        );
    }

    // CPU of this process (the actor's requests and decoding) while capturing at 5 fps, 640 px.
    drop(client);
    let cpu_s = || {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        // Fields after the command name: utime and stime are the 12th and 13th.
        let after = stat.rsplit(')').next().unwrap_or_default();
        let f: Vec<f64> = after
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        (f.get(11).copied().unwrap_or(0.0) + f.get(12).copied().unwrap_or(0.0)) / 100.0
    };
    let rig = Rig::start(obs.settings("Media"));
    rig.wait_for("running", Duration::from_secs(10), |s| {
        s.status.state == SourceState::Running
    })
    .await;
    let (c0, t0) = (cpu_s(), Instant::now());
    let frames = rig.collect(Duration::from_secs(4)).await;
    let cpu = (cpu_s() - c0) / t0.elapsed().as_secs_f64() * 100.0;
    println!(
        "capturing at 5 fps, 640 px: {} frames in 4 s, this process used {cpu:.1}% of one core",
        frames.len()
    );
}
