//! The real daemon on its embedded default (the demo clip as a live file source), read over
//! HTTP, delivering to a real HTTP receiver, and stopped with a signal.

mod common;

use std::time::Duration;

use common::{cav, get_json, wait_for, Daemon, Receiver, CLASSES};
use serde_json::Value;

#[test]
fn runs_on_the_demo_clip_classifies_stores_delivers_and_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(dir.path(), 200);
    let mut daemon = Daemon::start(
        dir.path(),
        &[
            ("CAV_CLASSIFIER__WINDOW_S", "3"),
            ("CAV_EXTERNAL_SERVICE__URL", &receiver.url),
            ("CAV_EXTERNAL_SERVICE__TOKEN", "s3cret"),
        ],
    );

    // The API is up well within 30 s.
    let status = wait_for(Duration::from_secs(30), || {
        get_json(&daemon.url("/api/status")).ok()
    })
    .unwrap_or_else(|| panic!("no /api/status within 30 s:\n{}", daemon.log_text()));
    assert_eq!(status.0, 200);
    let (code, health) = get_json(&daemon.url("/api/health")).unwrap();
    assert_eq!((code, health["status"].as_str()), (200, Some("ok")));

    // After the first 3 s window, a real classification of the clip.
    let current = wait_for(Duration::from_secs(30), || {
        let (_, c) = get_json(&daemon.url("/api/current-activity")).ok()?;
        (!c["activity"].is_null()).then_some(c)
    })
    .unwrap_or_else(|| panic!("no classification within 30 s:\n{}", daemon.log_text()));
    let activity = current["activity"].as_str().unwrap();
    assert!(CLASSES.contains(&activity), "{activity}");
    let scores = current["scores"].as_object().unwrap();
    assert_eq!(scores.len(), 7);
    let sum: f64 = scores.values().map(|v| v.as_f64().unwrap()).sum();
    assert!((sum - 1.0).abs() < 1e-3, "scores sum to {sum}");
    assert_eq!(
        current["confidence"].as_f64(),
        scores[activity].as_f64(),
        "confidence is the winner's score"
    );
    let span_ms =
        current["window_end_ms"].as_i64().unwrap() - current["window_start_ms"].as_i64().unwrap();
    assert_eq!(span_ms, 3000);
    // The demo opens with two voices talking: the first windows hear speech.
    assert!(!current["drivers"].as_array().unwrap().is_empty());

    // Status shows the actors, the source's counters and the stored result.
    let (_, status) = get_json(&daemon.url("/api/status")).unwrap();
    for actor in [
        "file_source",
        "sync",
        "features",
        "classifier",
        "store_writer",
        "outbox",
        "vision",
    ] {
        assert_eq!(
            status["actors"][actor]["state"], "running",
            "{actor}: {status}"
        );
        assert_eq!(status["actors"][actor]["restarts"], 0);
    }
    let file = &status["sources"]["file"];
    assert_eq!(file["state"], "running", "{status}");
    assert!(file["frames"].as_u64().unwrap() >= 10, "{file}");
    assert!(
        file["audio_samples"].as_u64().unwrap() >= 2 * 16_000,
        "{file}"
    );
    assert!(file["detail"].as_str().unwrap().contains("demo.mp4"));
    // The source's own analysis path measures what it hears (absolute level, in dBFS).
    let level = file["level"]["dbfs"].as_f64().unwrap();
    assert!((-70.0..-5.0).contains(&level), "{file}");
    assert!(status["pipeline"]["windows"].as_u64().unwrap() >= 1);
    assert!(status["stored_classifications"].as_u64().unwrap() >= 1);
    let latest = &status["latest_span"];
    assert!(latest["video"]["frames"].as_u64().unwrap() >= 1, "{latest}");
    assert!(latest["audio"]["dbfs"].as_f64().unwrap() < 0.0, "{latest}");

    // The vision stage sees the demo's portrait: one upright person with a face.
    let vision = wait_for(Duration::from_secs(20), || {
        let (_, s) = get_json(&daemon.url("/api/status")).ok()?;
        let v = s["vision"].clone();
        (!v["persons"].as_array()?.is_empty()).then_some(v)
    })
    .unwrap_or_else(|| panic!("vision saw nobody:\n{}", daemon.log_text()));
    assert_eq!(vision["posture"], "upright", "{vision}");
    assert_eq!(vision["persons"][0]["posture"], "upright", "{vision}");
    assert!(!vision["faces"].as_array().unwrap().is_empty(), "{vision}");
    assert_eq!(
        (vision["width"].as_u64(), vision["source"].as_str()),
        (Some(320), Some("file"))
    );

    // Every window is POSTed to the external service with the token.
    let hook = wait_for(Duration::from_secs(15), || {
        receiver.requests().into_iter().next()
    })
    .unwrap_or_else(|| panic!("nothing delivered:\n{}", daemon.log_text()));
    assert_eq!(hook["method"], "POST");
    assert_eq!(hook["headers"]["Authorization"], "Bearer s3cret");
    let key = hook["headers"]["Idempotency-Key"].as_str().unwrap();
    assert!(key.contains("-window-"), "{key}");
    let body = &hook["json"];
    assert!(
        CLASSES.contains(&body["activity"].as_str().unwrap()),
        "{body}"
    );
    assert!(body["timestamp"].as_i64().unwrap() > 1_600_000_000);
    assert!(body["date_time"].as_str().unwrap().ends_with('Z'));
    assert_eq!(body["scores"].as_object().unwrap().len(), 7);
    assert_eq!(body["source"], "file");
    assert!(
        body["features"]["audio"]["speech_fraction"].is_number(),
        "{body}"
    );

    // Bad requests get JSON errors.
    let (code, err) = get_json(&daemon.url("/api/nope")).unwrap();
    assert_eq!(code, 404);
    assert!(err["error"].is_string());
    let post = ureq::post(&daemon.url("/api/status")).call();
    match post {
        Err(ureq::Error::Status(code, r)) => {
            assert_eq!(code, 405);
            let body: Value = r.into_json().unwrap();
            assert_eq!(body["status"], 405);
        }
        other => panic!("POST /api/status: {other:?}"),
    }

    // SIGTERM: clean exit, store flushed.
    let exit = daemon
        .signal_and_wait("TERM", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("did not exit after SIGTERM:\n{}", daemon.log_text()));
    assert!(exit.success(), "exit {exit:?}:\n{}", daemon.log_text());
    let store = cav_actors::store::Store::open(&dir.path().join("data/store")).unwrap();
    let stored = store.latest_classifications(100).unwrap();
    assert!(!stored.is_empty());
    assert_eq!(stored[0].source, "file");
    assert!(stored.windows(2).all(|w| w[0].start_ms > w[1].start_ms));
}

#[test]
fn sigint_also_stops_the_daemon_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::start(dir.path(), &[]);
    wait_for(Duration::from_secs(30), || {
        get_json(&daemon.url("/api/health")).ok()
    })
    .expect("daemon up");
    let exit = daemon
        .signal_and_wait("INT", Duration::from_secs(10))
        .expect("exit after SIGINT");
    assert!(exit.success(), "{}", daemon.log_text());
}

#[test]
fn a_bad_config_is_refused_by_run_and_check_config_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[classifier]\nwindow_s = 300\nwindow_size = 5\n").unwrap();
    for sub in ["run", "check-config"] {
        let mut cmd = cav();
        if sub == "run" {
            cmd.args(["run", "--config"]).arg(&bad);
        } else {
            cmd.arg(sub).arg(&bad);
        }
        let out = cmd.current_dir(dir.path()).output().unwrap();
        assert!(!out.status.success(), "{sub} accepted an unknown key");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("classifier.window_size"), "{sub}: {err}");
    }

    let out = cav()
        .arg("check-config")
        .env("CAV_VIDEO__ANALYSIS_FPS", "1000")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("video.analysis_fps"), "{err}");
    assert!(err.contains("CAV_VIDEO__ANALYSIS_FPS"), "{err}");

    let out = cav()
        .arg("check-config")
        .arg(common::repo().join("config/examples/file.toml"))
        .current_dir(common::repo())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_port_in_use_is_a_clear_error_not_a_hang() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = cav()
        .arg("run")
        .current_dir(dir.path())
        .env("CAV_HTTP__BIND", &addr)
        .env("CAV_STORAGE__DATA_DIR", dir.path().join("data"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("http.bind") && err.contains(&addr), "{err}");
}

#[test]
fn a_file_can_stand_in_for_a_microphone_alone() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(
        dir.path(),
        &[
            ("CAV_CLASSIFIER__WINDOW_S", "2"),
            ("CAV_FILE__STREAMS", "audio"),
        ],
    );
    let current = wait_for(Duration::from_secs(30), || {
        let (_, c) = get_json(&daemon.url("/api/current-activity")).ok()?;
        (!c["activity"].is_null()).then_some(c)
    })
    .unwrap_or_else(|| panic!("no classification:\n{}", daemon.log_text()));
    // Video cues stay neutral: nothing was seen, and nothing is invented.
    for d in current["drivers"].as_array().unwrap() {
        if d["feature"].as_str().unwrap().starts_with("video.") {
            assert!(d["value"].is_null(), "{d}");
        }
    }
    let (_, status) = get_json(&daemon.url("/api/status")).unwrap();
    let file = &status["sources"]["file"];
    assert_eq!(file["frames"], 0, "{file}");
    assert!(file["audio_samples"].as_u64().unwrap() > 16_000, "{file}");
    assert!(
        file["detail"].as_str().unwrap().contains("video: none"),
        "{file}"
    );
    assert!(status["latest_span"]["video"].is_null());
}
