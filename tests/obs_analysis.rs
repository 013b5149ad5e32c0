//! Analysis jobs of an OBS media source (`POST /api/analyses` with `"source"`) against a real,
//! headless OBS Studio 29 (scripts/obs-harness.sh): the same file analysed through OBS (seek,
//! screenshot; sound from the file) and directly gives the same classes at the same times
//! (every 4 s, every 1 s, and one sample), from the same frames; the OBS-driven speed is printed.
//!
//! The clip is the demo re-encoded with every frame a keyframe (OBS's media source seeks to the
//! keyframe at or before the target, so exact frames need keyframes there) and tagged BT.601
//! (what the decoder assumes for untagged video; OBS would otherwise convert it as BT.709).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use cav_actors::obs::{ObsClient, ObsSettings};
use common::{free_port, get_json, post_json, repo, wait_for, Daemon};
use serde_json::{json, Value};

const INSTALL_HINT: &str = "OBS Studio, Xvfb and ffmpeg are needed: run the test command \
     `bash scripts/test.sh`, which installs them";

struct Obs {
    dir: tempfile::TempDir,
    port: u16,
}

impl Obs {
    fn start(media: &Path) -> Obs {
        let obs = Obs {
            dir: tempfile::tempdir().unwrap(),
            port: free_port(),
        };
        let out = Command::new("bash")
            .arg(repo().join("scripts/obs-harness.sh"))
            .arg("start")
            .arg(obs.dir.path())
            .arg(media)
            .arg(obs.port.to_string())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "OBS did not start ({INSTALL_HINT}): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        obs
    }
}

impl Drop for Obs {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(repo().join("scripts/obs-harness.sh"))
            .arg("stop")
            .arg(self.dir.path())
            .output();
    }
}

fn require(tools: &[&str]) {
    for tool in tools {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(found, "'{tool}' is not installed. {INSTALL_HINT}");
    }
}

/// The demo clip, every frame a keyframe, BT.601-tagged, audio copied.
fn intra_demo(media: &Path) -> PathBuf {
    let out = media.join("demo_intra.mp4");
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i"])
        .arg(repo().join("data/demo/demo.mp4"))
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-crf",
            "20",
            "-g",
            "1",
            "-bf",
            "0",
            "-colorspace",
            "smpte170m",
            "-color_primaries",
            "smpte170m",
            "-color_trc",
            "smpte170m",
            "-color_range",
            "tv",
            "-c:a",
            "copy",
            "-movflags",
            "+faststart",
        ])
        .arg(&out)
        .status()
        .expect("ffmpeg");
    assert!(status.success());
    out
}

/// Runs one analysis to its end; returns the record, its samples and the wall time.
fn analyse(daemon: &Daemon, body: Value) -> (Value, Vec<Value>, f64) {
    let began = Instant::now();
    let (code, job) = post_json(&daemon.url("/api/analyses"), body.clone());
    assert_eq!(code, 202, "{body}: {job}");
    let id = job["id"].as_str().unwrap().to_string();
    let done = wait_for(Duration::from_secs(300), || {
        let (_, a) = get_json(&daemon.url(&format!("/api/analyses/{id}"))).ok()?;
        (a["status"] != "running" && a["status"] != "queued").then_some(a)
    })
    .unwrap_or_else(|| panic!("analysis {body} did not finish:\n{}", daemon.log_text()));
    let wall = began.elapsed().as_secs_f64();
    assert_eq!(
        done["status"],
        "done",
        "{body}: {done}\n{}",
        daemon.log_text()
    );
    let (code, export) = get_json(&daemon.url(&format!("/api/analyses/{id}/export"))).unwrap();
    assert_eq!(code, 200);
    let samples = export["samples"].as_array().unwrap().clone();
    (done, samples, wall)
}

/// What the OBS analysis logged (frame by frame, at debug level).
fn obs_log(daemon: &Daemon) -> String {
    daemon
        .log_text()
        .lines()
        .filter(|l| l.contains("analysis_obs"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Compares two runs sample by sample; prints every difference with the features behind it.
/// Returns (same class at the same time, total).
fn compare(what: &str, obs: &[Value], direct: &[Value]) -> (usize, usize) {
    assert_eq!(obs.len(), direct.len(), "{what}: sample counts differ");
    let mut same = 0;
    for (o, d) in obs.iter().zip(direct) {
        assert_eq!(o["t_s"], d["t_s"], "{what}: sample times differ");
        let vo = &o["features"]["video"];
        let vd = &d["features"]["video"];
        println!(
            "{what} t={:>5}: obs {:<16} {:.3} | direct {:<16} {:.3} | motion {:.4}/{:.4} light {:.1}/{:.1} skin {:.2}/{:.2} frames {}/{}",
            o["t_s"],
            o["activity"].as_str().unwrap(),
            o["confidence"].as_f64().unwrap(),
            d["activity"].as_str().unwrap(),
            d["confidence"].as_f64().unwrap(),
            vo["motion_mean"].as_f64().unwrap_or(f64::NAN),
            vd["motion_mean"].as_f64().unwrap_or(f64::NAN),
            vo["brightness_mean"].as_f64().unwrap_or(f64::NAN),
            vd["brightness_mean"].as_f64().unwrap_or(f64::NAN),
            vo["skin_percent_mean"].as_f64().unwrap_or(f64::NAN),
            vd["skin_percent_mean"].as_f64().unwrap_or(f64::NAN),
            vo["frames"],
            vd["frames"],
        );
        if o["activity"] == d["activity"] {
            same += 1;
        }
        // The same frames: motion (% of pixels changed) agrees closely; a wrong frame (e.g. one
        // OBS had queued before the seek) moves it by more than a point.
        let dm = vo["motion_mean"].as_f64().unwrap() - vd["motion_mean"].as_f64().unwrap();
        assert!(
            dm.abs() < 1.0,
            "{what}: motion differs by {dm:.3} at {} (not the same frames)",
            o["t_s"]
        );
        // The sound comes from the file either way.
        assert_eq!(
            o["features"]["audio"], d["features"]["audio"],
            "{what}: audio features differ at {}",
            o["t_s"]
        );
        assert_eq!(o["sound_events"], d["sound_events"], "{what}");
    }
    println!(
        "{what}: {same} of {} samples have the same class",
        obs.len()
    );
    (same, obs.len())
}

#[test]
fn an_obs_media_source_and_its_file_give_the_same_classes_at_the_same_times() {
    require(&["obs", "Xvfb", "ffmpeg"]);
    let dir = tempfile::tempdir().unwrap();
    let media = dir.path().join("media");
    std::fs::create_dir_all(&media).unwrap();
    let clip = intra_demo(&media);
    let obs = Obs::start(&clip);
    let port = obs.port.to_string();
    let dirs = format!("[\"{}\"]", media.display());
    let daemon = Daemon::start(
        dir.path(),
        &[
            ("CAV_FILE__ENABLED", "false"),
            ("CAV_ANALYSIS__MEDIA_DIRS", &dirs),
            ("CAV_OBS__PORT", &port),
            ("CAV_LOG__LEVEL", "info,cav_actors::analysis_obs=debug"),
        ],
    );
    wait_for(Duration::from_secs(30), || {
        get_json(&daemon.url("/api/health")).ok()
    })
    .unwrap_or_else(|| panic!("daemon not up:\n{}", daemon.log_text()));

    // Bad requests: no such input → 404; a bad interval → 400; a file outside the folders → 403.
    let url = daemon.url("/api/analyses");
    for (body, code) in [
        (json!({"source": "No Such Source"}), 404),
        (json!({"source": "Media", "interval_s": 0.5}), 400),
        (json!({"source": "Media", "at_s": 1, "interval_s": 4}), 400),
        (json!({"source": ""}), 400),
        (json!({"source": "Media", "file": "/etc/hostname"}), 403),
    ] {
        let (got, err) = post_json(&url, body.clone());
        assert_eq!(got, code, "{body}: {err}");
        let msg = err["error"].as_str().unwrap();
        assert!(
            ["source:", "interval_s:", "at_s:", "file:"]
                .iter()
                .any(|f| msg.starts_with(f)),
            "{body}: {err}"
        );
        if code == 404 {
            assert!(msg.contains("No Such Source"), "{err}");
        }
    }

    // The whole file every 4 s, through OBS and directly.
    let (job, via_obs, obs_wall) = analyse(&daemon, json!({"source": "Media", "interval_s": 4}));
    assert_eq!(job["input"]["kind"], "obs", "{job}");
    assert_eq!(job["input"]["source"], "Media", "{job}");
    assert!(job["input"]["path"]
        .as_str()
        .unwrap()
        .ends_with("demo_intra.mp4"));
    let duration = job["duration_s"].as_f64().unwrap();
    let obs_elapsed = job["elapsed_s"].as_f64().unwrap();
    let (_, direct, direct_wall) =
        analyse(&daemon, json!({"file": "demo_intra.mp4", "interval_s": 4}));
    let (same, total) = compare("every 4 s", &via_obs, &direct);
    println!(
        "OBS-driven analysis: {duration:.1} media s in {obs_elapsed:.2} s = {:.1}x real time \
         ({} samples, {} frames; request to done {obs_wall:.2} s); direct: request to done \
         {direct_wall:.2} s",
        duration / obs_elapsed,
        total,
        total * 5,
    );
    assert_eq!(total, 10);
    // The demo's script: conversation until 24 s, then a still, quiet scene.
    assert_eq!(direct[1]["activity"], "in_conversation");
    assert_eq!(
        same,
        total,
        "classes differ (see the lines above); the OBS analysis' log:\n{}",
        obs_log(&daemon)
    );

    // Every second: spans back to back (the direct analysis reads forward).
    let (job, dense_obs, _) = analyse(&daemon, json!({"source": "Media", "interval_s": 1}));
    let (_, dense_direct, _) = analyse(&daemon, json!({"file": "demo_intra.mp4", "interval_s": 1}));
    let (same, total) = compare("every 1 s", &dense_obs, &dense_direct);
    let elapsed = job["elapsed_s"].as_f64().unwrap();
    println!(
        "OBS-driven analysis every 1 s: {duration:.1} media s in {elapsed:.2} s = {:.1}x real time",
        duration / elapsed
    );
    assert_eq!(total, 40);
    assert_eq!(same, total, "{}", obs_log(&daemon));

    // One sample at a given time, through OBS and directly.
    let (_, one_obs, _) = analyse(&daemon, json!({"source": "Media", "at_s": 13}));
    let (_, one_direct, _) = analyse(&daemon, json!({"file": "demo_intra.mp4", "at_s": 13}));
    assert_eq!(one_obs.len(), 1);
    assert_eq!(
        compare("at 13 s", &one_obs, &one_direct),
        (1, 1),
        "{}",
        obs_log(&daemon)
    );

    // The source is given back playing, as it was.
    let rt = actix_rt::Runtime::new().unwrap();
    let state = rt.block_on(async {
        let client = ObsClient::connect(&ObsSettings {
            host: "127.0.0.1".into(),
            port: obs.port,
            password: None,
            source: "Media".into(),
            fps: 5.0,
            width: 320,
            jpeg_quality: 80,
        })
        .await
        .unwrap();
        client.media_status("Media").await.unwrap().state
    });
    assert_eq!(state, "playing");
    for l in daemon
        .log_text()
        .lines()
        .filter(|l| l.contains("analysis_obs"))
    {
        println!("{l}");
    }
}
