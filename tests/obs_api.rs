//! The daemon with a real, headless OBS Studio as its camera (scripts/obs-harness.sh) and the
//! demo clip's sound as its microphone: the OBS API, and OBS going away and coming back while
//! the audio keeps being analysed.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{get_json, repo, wait_for, Daemon};
use serde_json::{json, Value};

struct Obs {
    dir: tempfile::TempDir,
    port: u16,
}

impl Obs {
    fn start(media: &str) -> Obs {
        let have = |bin: &str| {
            Command::new("sh")
                .args(["-c", &format!("command -v {bin}")])
                .output()
                .is_ok_and(|o| o.status.success())
        };
        assert!(
            have("obs") && have("Xvfb"),
            "OBS Studio and Xvfb are needed: run the test command `bash scripts/test.sh`, which installs them"
        );
        let obs = Obs {
            dir: tempfile::tempdir().unwrap(),
            port: common::free_port(),
        };
        obs.launch(media);
        obs
    }

    fn launch(&self, media: &str) {
        let out = Command::new("bash")
            .arg(repo().join("scripts/obs-harness.sh"))
            .arg("start")
            .arg(self.dir.path())
            .arg(repo().join(media))
            .arg(self.port.to_string())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "OBS did not start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn stop(&self) {
        let _ = Command::new("bash")
            .arg(repo().join("scripts/obs-harness.sh"))
            .arg("stop")
            .arg(self.dir.path())
            .output();
    }
}

impl Drop for Obs {
    fn drop(&mut self) {
        self.stop();
    }
}

fn post(url: &str, body: &Value) -> (u16, Value) {
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(15))
        .build();
    match agent.post(url).send_json(body.clone()) {
        Ok(r) => (r.status(), r.into_json().unwrap()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_json().unwrap()),
        Err(e) => panic!("POST {url}: {e}"),
    }
}

fn obs_status(d: &Daemon) -> Value {
    get_json(&d.url("/api/status")).unwrap().1
}

#[test]
fn obs_camera_with_file_microphone_survives_obs_restarts_and_controls_media() {
    let obs = Obs::start("tests/data/video/frame_counter_gop25.mp4");
    let dir = tempfile::tempdir().unwrap();
    let port = obs.port.to_string();
    let daemon = Daemon::start(
        dir.path(),
        &[
            ("CAV_OBS__ENABLED", "true"),
            ("CAV_OBS__PORT", &port),
            ("CAV_OBS__SOURCE", "Media"),
            ("CAV_OBS__WIDTH", "320"),
            ("CAV_FILE__STREAMS", "audio"),
            ("CAV_CLASSIFIER__WINDOW_S", "2"),
        ],
    );
    let running = wait_for(Duration::from_secs(30), || {
        let s = get_json(&daemon.url("/api/status")).ok()?.1;
        (s["sources"]["obs"]["state"] == "running" && s["sources"]["obs"]["frames"].as_u64()? >= 5)
            .then_some(s)
    })
    .unwrap_or_else(|| panic!("no OBS frames:\n{}", daemon.log_text()));
    assert_eq!(running["sources"]["obs"]["kind"], "obs");

    // Inputs, with their kinds.
    let (code, inputs) = get_json(&daemon.url("/api/obs/inputs")).unwrap();
    assert_eq!(code, 200, "{inputs}");
    assert!(
        inputs["inputs"]
            .as_array()
            .unwrap()
            .contains(&json!({"name": "Media", "kind": "ffmpeg_source"})),
        "{inputs}"
    );
    let (_, state) = get_json(&daemon.url("/api/obs")).unwrap();
    assert_eq!(state["connected"], true, "{state}");

    // Media control: pause, seek (lands on the 1 s keyframe), play.
    let media = daemon.url("/api/obs/media/Media");
    let (code, paused) = post(&media, &json!({"action": "pause"}));
    assert_eq!(
        (code, paused["state"].as_str()),
        (200, Some("paused")),
        "{paused}"
    );
    let (code, sought) = post(&media, &json!({"action": "seek", "position_ms": 5000}));
    assert_eq!(code, 200, "{sought}");
    let cursor = sought["cursor_ms"].as_i64().unwrap();
    assert!(
        (5000..=5100).contains(&cursor),
        "cursor after seek: {cursor}"
    );
    assert_eq!(sought["duration_ms"].as_i64(), Some(20_000));
    let (_, read) = get_json(&media).unwrap();
    assert_eq!(read["state"], "paused");
    let (code, playing) = post(&media, &json!({"action": "play"}));
    assert_eq!(
        (code, playing["state"].as_str()),
        (200, Some("playing")),
        "{playing}"
    );

    // Bad requests are 4xx JSON errors naming what is wrong.
    let (code, err) = post(&media, &json!({"action": "rewind"}));
    assert_eq!(code, 400);
    assert!(
        err["error"].as_str().unwrap().starts_with("action"),
        "{err}"
    );
    let (code, err) = post(&media, &json!({"action": "seek"}));
    assert_eq!(code, 400);
    assert!(
        err["error"].as_str().unwrap().starts_with("position_ms"),
        "{err}"
    );
    let (code, _) = post(&media, &json!({"action": "play", "speed": 2}));
    assert_eq!(code, 400);

    // Switching to a missing source is refused and capture carries on.
    let (code, err) = post(
        &daemon.url("/api/obs/source"),
        &json!({"source": "No Such Camera"}),
    );
    assert_eq!(code, 404, "{err}");
    let before = obs_status(&daemon)["sources"]["obs"]["frames"]
        .as_u64()
        .unwrap();
    assert!(
        wait_for(Duration::from_secs(10), || {
            (obs_status(&daemon)["sources"]["obs"]["frames"].as_u64()? > before + 3).then_some(())
        })
        .is_some(),
        "capture stopped after a refused switch"
    );
    let (code, ok) = post(&daemon.url("/api/obs/source"), &json!({"source": "Media"}));
    assert_eq!((code, ok["source"].as_str()), (200, Some("Media")), "{ok}");

    // OBS goes away: its state says so, the daemon and the audio analysis carry on.
    obs.stop();
    let gone = wait_for(Duration::from_secs(15), || {
        let s = obs_status(&daemon);
        (s["sources"]["obs"]["state"] == "reconnecting").then_some(s)
    })
    .unwrap_or_else(|| panic!("no reconnecting state:\n{}", daemon.log_text()));
    assert!(gone["sources"]["obs"]["last_error"].is_string(), "{gone}");
    let (code, _) = get_json(&daemon.url("/api/obs/inputs")).unwrap();
    assert_eq!(code, 503);
    let windows = gone["pipeline"]["windows"].as_u64().unwrap();
    let samples = gone["sources"]["file"]["audio_samples"].as_u64().unwrap();
    assert!(
        wait_for(Duration::from_secs(15), || {
            let s = obs_status(&daemon);
            (s["pipeline"]["windows"].as_u64()? >= windows + 2
                && s["sources"]["file"]["audio_samples"].as_u64()? > samples + 32_000)
                .then_some(())
        })
        .is_some(),
        "analysis stalled while OBS was away:\n{}",
        obs_status(&daemon)
    );

    // OBS comes back on the same port: frames flow again without restarting the daemon.
    obs.launch("tests/data/video/frame_counter_gop25.mp4");
    let frames = obs_status(&daemon)["sources"]["obs"]["frames"]
        .as_u64()
        .unwrap();
    assert!(
        wait_for(Duration::from_secs(45), || {
            let s = obs_status(&daemon);
            (s["sources"]["obs"]["state"] == "running"
                && s["sources"]["obs"]["frames"].as_u64()? > frames + 5)
                .then_some(())
        })
        .is_some(),
        "frames did not resume:\n{}",
        obs_status(&daemon)
    );
    assert_eq!(obs_status(&daemon)["actors"]["obs_source"]["restarts"], 0);
}

#[test]
fn the_obs_api_says_when_obs_is_not_enabled() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(dir.path(), &[]);
    wait_for(Duration::from_secs(30), || {
        get_json(&daemon.url("/api/health")).ok()
    })
    .expect("daemon up");
    let (code, err) = get_json(&daemon.url("/api/obs/inputs")).unwrap();
    assert_eq!(code, 409);
    assert!(
        err["error"].as_str().unwrap().contains("obs.enabled"),
        "{err}"
    );
}
