//! `GET`/`PUT /api/settings` against the real daemon: every bad field is named by its
//! `section.key` path and nothing changes; a good change is saved (comments kept, secrets never
//! shown), applied in-process by the reload path without the process exiting, and still there
//! after a restart.

mod common;

use std::time::Duration;

use common::{get_json, wait_for, Daemon};
use serde_json::{json, Value};

fn put(url: &str, body: Value) -> (u16, String) {
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(20))
        .build();
    match agent.put(url).send_json(body) {
        Ok(r) => (r.status(), r.into_string().unwrap_or_default()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap_or_default()),
        Err(e) => panic!("PUT {url}: {e}"),
    }
}

fn settings(d: &Daemon) -> Value {
    wait_for(Duration::from_secs(30), || {
        get_json(&d.url("/api/settings"))
            .ok()
            .filter(|(code, _)| *code == 200)
    })
    .expect("GET /api/settings")
    .1
}

const SECRET: &str = "s3cret-token-for-the-service";

#[test]
fn settings_are_checked_saved_applied_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cav.toml");
    // Hearing and vision off: this test is about settings, and the machine is small.
    let original = "# my settings\n[classifier]\nwindow_s = 60 # one minute\n\n[hearing]\nenabled = false\n\n[vision]\nenabled = false\n";
    std::fs::write(&config, original).unwrap();
    let config_arg = config.to_str().unwrap().to_string();
    let mut d = Daemon::start_with_args(dir.path(), &["--config", &config_arg], &[]);

    let got = settings(&d);
    assert_eq!(got["file"], json!(config_arg), "{got}");
    assert_eq!(got["overridden"], json!({}), "{got}");
    let s = &got["settings"];
    assert_eq!(s["classifier"]["window_s"], json!(60.0), "{s}");
    assert_eq!(s["vision"]["enabled"], json!(false), "{s}");
    assert_eq!(s["external_service"]["token_set"], json!(false), "{s}");
    assert!(s["external_service"].get("token").is_none(), "{s}");
    assert_eq!(s["obs"]["password_set"], json!(false), "{s}");
    for kind in [
        "clap",
        "applause",
        "speech",
        "phone_ring",
        "snoring",
        "dishes",
        "typing",
    ] {
        let rule = &s["hearing"]["events"][kind];
        assert!(
            rule["threshold"].is_number() && rule["min_gap_s"].is_number(),
            "{kind}: {rule}"
        );
    }
    assert!(s["retention"]["activities_days"].is_number(), "{s}");

    // Every bad field is named by its path; nothing is written.
    let (code, body) = put(
        &d.url("/api/settings"),
        json!({
            "classifier": {"window_s": 0},
            "vision": {"fps": "fast"},
            "obs": {"port": 70000},
            "retention": {"spans_days": -1},
            "nope": {"x": 1},
            "hearing": {"events": {"clap": {"threshold": 1.5}, "whistle": {"threshold": 0.5}}},
            // Unchanged and valid: not an error, and not written either.
            "external_service": {"timeout_s": s["external_service"]["timeout_s"]},
        }),
    );
    assert_eq!(code, 422, "{body}");
    let err: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(err["error"], "invalid settings", "{err}");
    assert_eq!(err["status"], 422, "{err}");
    let fields = err["fields"].as_object().unwrap();
    let mut named: Vec<&str> = fields.keys().map(String::as_str).collect();
    named.sort_unstable();
    assert_eq!(
        named,
        vec![
            "classifier.window_s",
            "hearing.events.clap.threshold",
            "hearing.events.whistle",
            "nope.x",
            "obs.port",
            "retention.spans_days",
            "vision.fps",
        ],
        "{err}"
    );
    assert_eq!(fields["nope.x"], "unknown setting", "{err}");
    assert!(
        fields["classifier.window_s"]
            .as_str()
            .unwrap()
            .contains("out of range"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&config).unwrap(), original);
    assert_eq!(
        settings(&d)["settings"]["classifier"]["window_s"],
        json!(60.0)
    );
    // A body that is not an object is a plain 400.
    let (code, _) = put(&d.url("/api/settings"), json!([1]));
    assert_eq!(code, 400);

    // A valid change: saved, answered with the new settings, applied without exiting.
    let (code, body) = put(
        &d.url("/api/settings"),
        json!({
            "classifier": {"window_s": 120},
            "external_service": {"token": SECRET, "token_set": false},
            "hearing": {"events": {"clap": {"threshold": 0.45}}},
            "retention": {"spans_days": 30},
        }),
    );
    assert_eq!(code, 200, "{body}");
    assert!(!body.contains(SECRET), "the token is never shown: {body}");
    let ok: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(ok["applied"], "live", "{ok}");
    assert_eq!(
        ok["settings"]["classifier"]["window_s"],
        json!(120.0),
        "{ok}"
    );
    assert_eq!(
        ok["settings"]["external_service"]["token_set"],
        json!(true),
        "{ok}"
    );
    let mut changed: Vec<&str> = ok["changed"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    changed.sort_unstable();
    assert_eq!(
        changed,
        vec![
            "classifier.window_s",
            "external_service.token",
            "hearing.events.clap.threshold",
            "retention.spans_days"
        ]
    );

    // The file keeps the user's comments.
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("# my settings"), "{text}");
    assert!(text.contains("window_s = 120.0 # one minute"), "{text}");
    assert!(text.contains("[hearing.events.clap]"), "{text}");

    // The running daemon switches to it (the pipeline and the API restart in-process).
    let applied = wait_for(Duration::from_secs(30), || {
        get_json(&d.url("/api/status"))
            .ok()
            .filter(|(_, st)| st["window_s"] == json!(120.0))
    });
    assert!(applied.is_some(), "not applied: {}", d.log_text());
    assert!(
        d.child.try_wait().unwrap().is_none(),
        "the daemon must not exit"
    );
    let s = settings(&d);
    assert_eq!(s["settings"]["classifier"]["window_s"], json!(120.0));
    assert_eq!(
        s["settings"]["hearing"]["events"]["clap"]["threshold"],
        json!(0.45)
    );
    assert_eq!(s["settings"]["retention"]["spans_days"], json!(30));
    assert!(!s.to_string().contains(SECRET));
    assert!(
        d.log_text().contains("reload requested by the API"),
        "{}",
        d.log_text()
    );

    // A restart keeps it.
    assert!(d
        .signal_and_wait("TERM", Duration::from_secs(20))
        .is_some_and(|s| s.success()));
    // (This time with a key set by the environment, which the file cannot change.)
    let d = Daemon::start_with_args(
        dir.path(),
        &["--config", &config_arg],
        &[("CAV_VISION__FPS", "2")],
    );
    let s = settings(&d);
    assert_eq!(s["settings"]["classifier"]["window_s"], json!(120.0), "{s}");
    assert_eq!(
        s["overridden"],
        json!({"vision.fps": "CAV_VISION__FPS"}),
        "{s}"
    );
    assert_eq!(s["settings"]["vision"]["fps"], json!(2.0), "{s}");
    let (code, body) = put(&d.url("/api/settings"), json!({"vision": {"fps": 3}}));
    assert_eq!(code, 422, "{body}");
    assert!(body.contains("CAV_VISION__FPS"), "{body}");
    assert_eq!(
        s["settings"]["external_service"]["token_set"],
        json!(true),
        "{s}"
    );

    // "" clears a secret.
    let (code, body) = put(
        &d.url("/api/settings"),
        json!({"external_service": {"token": ""}}),
    );
    assert_eq!(code, 200, "{body}");
    let ok: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        ok["settings"]["external_service"]["token_set"],
        json!(false),
        "{ok}"
    );
    // Let the reload it causes finish (the API restarts) before the next request.
    let reloaded = wait_for(Duration::from_secs(30), || {
        (d.log_text()
            .matches("classify-audio-video is running")
            .count()
            >= 2)
            .then_some(())
    });
    assert!(reloaded.is_some(), "{}", d.log_text());
    assert_eq!(
        settings(&d)["settings"]["external_service"]["token_set"],
        json!(false)
    );
    // Nothing to change: nothing written.
    let before = std::fs::read_to_string(&config).unwrap();
    let (code, body) = put(
        &d.url("/api/settings"),
        json!({"classifier": {"window_s": 120.0}}),
    );
    assert_eq!(code, 200, "{body}");
    let ok: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(ok["changed"], json!([]), "{ok}");
    assert_eq!(std::fs::read_to_string(&config).unwrap(), before);
}
