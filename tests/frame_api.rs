//! The model-testing endpoints against the real daemon playing the demo clip:
//! `GET /api/snapshot.jpg` (the newest camera frame as a JPEG), `POST /api/analyze-frame` (vision
//! and frame features on a media file's frame or the live one, confined to the media folders)
//! and `POST /api/classify-now` (the open window's classification, not stored); and what they
//! answer before any frame or span has arrived.

mod common;

use std::time::Duration;

use common::{get_json, post_json, repo, wait_for, Daemon};
use opencv::core::Vector;
use opencv::prelude::*;
use serde_json::{json, Value};

/// GET a URL; returns (status, content type, cache control, body).
fn get_bytes(url: &str) -> (u16, String, String, Vec<u8>) {
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(10))
        .build();
    let r = match agent.get(url).call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{url}: {e}"),
    };
    let status = r.status();
    let ct = r.header("content-type").unwrap_or_default().to_string();
    let cc = r.header("cache-control").unwrap_or_default().to_string();
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut r.into_reader(), &mut body).unwrap();
    (status, ct, cc, body)
}

fn jpeg_size(bytes: &[u8]) -> (i32, i32) {
    let m = opencv::imgcodecs::imdecode(
        &Vector::<u8>::from_slice(bytes),
        opencv::imgcodecs::IMREAD_COLOR,
    )
    .unwrap();
    (m.cols(), m.rows())
}

fn start(dir: &std::path::Path, toml: &str) -> Daemon {
    let config = dir.join("cav.toml");
    std::fs::write(&config, toml).unwrap();
    let d = Daemon::start_with_args(dir, &["--config", config.to_str().unwrap()], &[]);
    wait_for(Duration::from_secs(30), || {
        get_json(&d.url("/api/health")).ok()
    })
    .expect("daemon up");
    d
}

#[test]
fn snapshots_frames_and_classify_now_on_the_demo() {
    let dir = tempfile::tempdir().unwrap();
    let media = repo().join("tests/data/video");
    // A long window: classify-now must answer from a partial one. Hearing off: the test is
    // about pictures, and the machine is small.
    let d = start(
        dir.path(),
        &format!(
            "[classifier]\nwindow_s = 600\n\n[hearing]\nenabled = false\n\n[vision]\nenabled = false\n\n[analysis]\nmedia_dirs = [{media:?}]\n"
        ),
    );

    // The snapshot: the newest frame, never cached, optionally scaled down.
    let (code, ct, cc, jpeg) = wait_for(Duration::from_secs(30), || {
        Some(get_bytes(&d.url("/api/snapshot.jpg"))).filter(|r| r.0 == 200)
    })
    .expect("a snapshot once the demo plays");
    assert_eq!(
        (code, ct.as_str(), cc.as_str()),
        (200, "image/jpeg", "no-store")
    );
    let (w, h) = jpeg_size(&jpeg);
    assert!(w > 64 && h > 0, "{w}x{h}");
    let (code, _, _, small) = get_bytes(&d.url("/api/snapshot.jpg?max_width=64"));
    assert_eq!(code, 200);
    assert_eq!(jpeg_size(&small).0, 64);
    // A cache-busting parameter from a page is ignored, not refused.
    let (code, ct, _, busted) = get_bytes(&d.url("/api/snapshot.jpg?max_width=64&t=1732212345678"));
    assert_eq!((code, ct.as_str()), (200, "image/jpeg"));
    assert_eq!(jpeg_size(&busted).0, 64);
    let (code, ct, _, body) = get_bytes(&d.url("/api/snapshot.jpg?max_width=2"));
    assert_eq!((code, ct.as_str()), (400, "application/json"));
    let err: Value = serde_json::from_slice(&body).unwrap();
    assert!(
        err["error"].as_str().unwrap().starts_with("max_width"),
        "{err}"
    );

    // Classify now: the open window so far, marked partial, not stored.
    let (code, now) = wait_for(Duration::from_secs(30), || {
        Some(post_json(&d.url("/api/classify-now"), json!({}))).filter(|r| r.0 == 200)
    })
    .expect("classify-now once a span has arrived");
    assert_eq!(code, 200);
    assert_eq!(now["partial"], json!(true), "{now}");
    assert!(now["activity"].is_string(), "{now}");
    assert!(now["spans"].as_u64().unwrap() >= 1, "{now}");
    assert!(
        now["scores"].is_object() && now["window_start_ms"].is_i64(),
        "{now}"
    );
    let (_, current) = get_json(&d.url("/api/current-activity")).unwrap();
    assert_eq!(current["activity"], Value::Null, "not stored: {current}");

    // A frame of a media file, by its name under the media folder.
    let url = d.url("/api/analyze-frame");
    let (code, a) = post_json(&url, json!({"media": "av_sync_flash_beep.mp4", "t": 1.0}));
    assert_eq!(code, 200, "{a}");
    assert_eq!(a["input"], "media");
    assert_eq!(a["media"], "av_sync_flash_beep.mp4");
    let t = a["t"].as_f64().unwrap();
    assert!((1.0..1.2).contains(&t), "{a}");
    assert!(a["width"].as_u64().unwrap() > 0, "{a}");
    let v = &a["vision"];
    assert!(v["persons"].is_array() && v["faces"].is_array(), "{a}");
    assert!(v["timings_ms"]["total_ms"].as_f64().unwrap() > 0.0, "{a}");
    assert!(v.get("at").is_none(), "{a}");
    assert!(a["features"]["brightness"].is_number(), "{a}");
    assert!(a["features"]["skin_percent"].is_number(), "{a}");
    let snapshot = a["snapshot"].as_str().unwrap();
    assert!(snapshot.starts_with("data:image/jpeg;base64,"), "{a}");
    assert!(a.get("captured_at").is_none(), "{a}");

    // A player paused at the end reports the duration (15 s, 25 fps): that is the last frame.
    let (code, a) = post_json(&url, json!({"media": "av_sync_flash_beep.mp4", "t": 15.0}));
    assert_eq!(code, 200, "{a}");
    let t = a["t"].as_f64().unwrap();
    assert!(
        (14.9..15.0).contains(&t),
        "the last frame starts at 14.96 s: {a}"
    );

    // The live frame.
    let (code, a) = post_json(&url, json!({"live": true}));
    assert_eq!(code, 200, "{a}");
    assert_eq!(a["input"], "live");
    assert!(a["captured_at"].is_string(), "{a}");
    assert_eq!(a["vision"]["at"], a["captured_at"], "{a}");
    assert!(a.get("t").is_none(), "{a}");
    assert_eq!(a["vision"]["source"], "file", "{a}");

    // Bad requests name the field; nothing outside the media folders is read.
    let cases = [
        (json!({"media": "../../../Cargo.toml"}), 403, "media"),
        (json!({"media": "/etc/passwd"}), 403, "media"),
        (json!({"media": "no-such.mp4"}), 404, "media"),
        (
            json!({"media": "av_sync_flash_beep.mp4", "t": -1}),
            400,
            "t",
        ),
        (
            json!({"media": "av_sync_flash_beep.mp4", "t": 1e6}),
            400,
            "t",
        ),
        (json!({}), 400, "media"),
        (
            json!({"media": "av_sync_flash_beep.mp4", "live": true}),
            400,
            "live",
        ),
        (json!({"live": false}), 400, "live"),
        (json!({"live": true, "t": 3}), 400, "t"),
    ];
    for (body, status, field) in cases {
        let (code, err) = post_json(&url, body.clone());
        assert_eq!(code, status, "{body} → {err}");
        assert!(
            err["error"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{field}:")),
            "{body} → {err}"
        );
        assert_eq!(err["status"], status, "{err}");
    }
    let (code, err) = post_json(&url, json!({"medium": "x"}));
    assert_eq!(code, 400, "{err}");
    assert!(err["error"].as_str().unwrap().contains("medium"), "{err}");
    drop(d);

    // No camera and no sound: nothing to show or classify yet.
    let dir = tempfile::tempdir().unwrap();
    let d = start(
        dir.path(),
        "[file]\nenabled = false\n\n[hearing]\nenabled = false\n\n[vision]\nenabled = false\n",
    );
    let (code, ct, _, body) = get_bytes(&d.url("/api/snapshot.jpg"));
    assert_eq!((code, ct.as_str()), (404, "application/json"));
    let err: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(err, json!({"error": "no video frame yet", "status": 404}));
    let (code, err) = post_json(&d.url("/api/classify-now"), json!({}));
    assert_eq!(code, 409, "{err}");
    assert_eq!(err["status"], 409);
    let (code, err) = post_json(&d.url("/api/analyze-frame"), json!({"live": true}));
    assert_eq!(code, 404, "{err}");
}
