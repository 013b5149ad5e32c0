//! `GET`/`PUT /api/settings` against the real daemon: every bad field is named by its
//! `section.key` path and nothing changes; a good change is saved (comments kept, secrets never
//! shown), applied in-process by the reload path without the process exiting, and still there
//! after a restart. Also what a reload must not break: the live event streams of the API it
//! replaces end (so browsers reconnect to the new one), and a source saved back as the API
//! shows it (its RTSP password hidden as `***`) keeps its password.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{get_json, post_json, wait_for, Daemon};
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
    // The clap-only switch of the acoustic-only path, on by default; no other kind has it.
    assert_eq!(
        s["hearing"]["events"]["clap"]["over_loud_background"],
        json!(true),
        "{s}"
    );
    assert!(s["hearing"]["events"]["speech"]
        .get("over_loud_background")
        .is_none());

    // Every bad field is named by its path; nothing is written.
    let (code, body) = put(
        &d.url("/api/settings"),
        json!({
            "classifier": {"window_s": 0},
            "vision": {"fps": "fast"},
            "obs": {"port": 70000},
            "retention": {"spans_days": -1},
            "nope": {"x": 1},
            "hearing": {"events": {
                "clap": {"threshold": 1.5},
                "whistle": {"threshold": 0.5},
                "speech": {"over_loud_background": false},
            }},
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
            "hearing.events.speech.over_loud_background",
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
            "hearing": {"events": {"clap": {"threshold": 0.45, "over_loud_background": false}}},
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
            "hearing.events.clap.over_loud_background",
            "hearing.events.clap.threshold",
            "retention.spans_days"
        ]
    );

    // The file keeps the user's comments.
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("# my settings"), "{text}");
    assert!(text.contains("window_s = 120.0 # one minute"), "{text}");
    assert!(text.contains("[hearing.events.clap]"), "{text}");
    assert!(text.contains("over_loud_background = false"), "{text}");
    assert_eq!(
        ok["settings"]["hearing"]["events"]["clap"]["over_loud_background"],
        json!(false),
        "{ok}"
    );

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

/// What an open `/api/events` stream delivers.
#[derive(Debug, PartialEq)]
enum Sse {
    /// An event of this type.
    Event(String),
    /// The server ended the stream (the connection closed).
    End,
}

/// Opens `GET /api/events` on a plain socket and forwards what arrives on a channel. A socket of
/// our own: the test must see exactly when the server ends the response.
fn open_events(d: &Daemon) -> mpsc::Receiver<Sse> {
    let host = d.base.trim_start_matches("http://").to_string();
    let mut socket = TcpStream::connect(&host).expect("connect for /api/events");
    write!(
        socket,
        "GET /api/events HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(socket);
        let mut line = String::new();
        let mut first = true;
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => {
                    let _ = tx.send(Sse::End);
                    return;
                }
                Ok(_) => {}
            }
            if first {
                assert!(line.starts_with("HTTP/1.1 200"), "/api/events: {line}");
                first = false;
            }
            if let Some(name) = line.trim_end().strip_prefix("event:") {
                if tx.send(Sse::Event(name.trim().to_string())).is_err() {
                    return;
                }
            }
        }
    });
    rx
}

/// Waits for an event of type `name` on `rx`; false if the stream ends or `timeout` passes.
fn next_event(rx: &mpsc::Receiver<Sse>, name: &str, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(Sse::Event(e)) if e == name => return true,
            Ok(Sse::Event(_)) => {}
            Ok(Sse::End) | Err(_) => return false,
        }
    }
    false
}

/// Waits until the server ends the stream (events before the end are skipped); false if it
/// is still open after `timeout`.
fn ends_within(rx: &mpsc::Receiver<Sse>, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(Sse::End) => return true,
            Ok(Sse::Event(_)) => {}
            Err(mpsc::RecvTimeoutError::Timeout) => return false,
            Err(mpsc::RecvTimeoutError::Disconnected) => return true,
        }
    }
    false
}

/// Waits until the API answers with `window_s` (the reload that sets it has happened).
fn wait_window(d: &Daemon, window_s: f64) {
    let applied = wait_for(Duration::from_secs(30), || {
        get_json(&d.url("/api/status"))
            .ok()
            .filter(|(_, st)| st["window_s"] == json!(window_s))
    });
    assert!(
        applied.is_some(),
        "window_s = {window_s} not applied: {}",
        d.log_text()
    );
}

#[test]
fn event_streams_end_when_a_reload_replaces_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cav.toml");
    // The demo clip's sound gives `labels` events several times a second; no vision (small
    // machine).
    std::fs::write(
        &config,
        "[classifier]\nwindow_s = 60\n\n[vision]\nenabled = false\n",
    )
    .unwrap();
    let config_arg = config.to_str().unwrap().to_string();
    let mut d = Daemon::start_with_args(dir.path(), &["--config", &config_arg], &[]);
    wait_window(&d, 60.0);

    // A stream that is live...
    let first = open_events(&d);
    assert!(
        next_event(&first, "labels", Duration::from_secs(30)),
        "no labels event: {}",
        d.log_text()
    );
    // ...ends when a saved setting restarts the API,
    let (code, body) = put(
        &d.url("/api/settings"),
        json!({"classifier": {"window_s": 61}}),
    );
    assert_eq!(code, 200, "{body}");
    assert!(
        ends_within(&first, Duration::from_secs(15)),
        "the old API's event stream is still open after the reload: {}",
        d.log_text()
    );
    // and the new API streams again.
    wait_window(&d, 61.0);
    let second = open_events(&d);
    assert!(
        next_event(&second, "labels", Duration::from_secs(30)),
        "no labels event after the reload: {}",
        d.log_text()
    );

    // The same for a SIGHUP with a changed file.
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace("window_s = 61", "window_s = 62")).unwrap();
    let _ = std::process::Command::new("kill")
        .args(["-HUP", &d.child.id().to_string()])
        .status();
    assert!(
        ends_within(&second, Duration::from_secs(15)),
        "the event stream is still open after SIGHUP: {}",
        d.log_text()
    );
    wait_window(&d, 62.0);
    let third = open_events(&d);
    assert!(
        next_event(&third, "labels", Duration::from_secs(30)),
        "no labels event after SIGHUP: {}",
        d.log_text()
    );

    // And at the end: SIGTERM ends it too, and the daemon exits cleanly.
    let status = d.signal_and_wait("TERM", Duration::from_secs(20));
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}: {}",
        d.log_text()
    );
    assert!(ends_within(&third, Duration::from_secs(5)));
}

#[test]
fn an_rtsp_password_shown_hidden_is_kept_when_saved_back() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cav.toml");
    std::fs::write(
        &config,
        "[hearing]\nenabled = false\n\n[vision]\nenabled = false\n\n[file]\nenabled = false\n",
    )
    .unwrap();
    let config_arg = config.to_str().unwrap().to_string();
    let d = Daemon::start_with_args(dir.path(), &["--config", &config_arg], &[]);
    wait_for(Duration::from_secs(30), || {
        get_json(&d.url("/api/health")).ok()
    })
    .expect("daemon up");

    const PASSWORD: &str = "hunter2-s3cret";
    let real = format!("rtsp://cam:{PASSWORD}@127.0.0.1:9/live");
    let (code, created) = post_json(
        &d.url("/api/sources"),
        json!({"id": "door", "kind": "rtsp", "url": real, "enabled": false}),
    );
    assert_eq!(code, 201, "{created}");
    let shown = created["url"].as_str().unwrap().to_string();
    assert_eq!(shown, "rtsp://cam:***@127.0.0.1:9/live");
    let saved = || std::fs::read_to_string(&config).unwrap();
    assert!(saved().contains(&real), "{}", saved());

    // Saved back as shown (what the settings page's toggle and dialog send): the password stays.
    let (code, changed) = put(
        &d.url("/api/sources/door"),
        json!({"kind": "rtsp", "url": shown, "enabled": true, "name": "Front door"}),
    );
    assert_eq!(code, 200, "{changed}");
    let changed: Value = serde_json::from_str(&changed).unwrap();
    assert_eq!(changed["url"], json!(shown), "{changed}");
    assert_eq!(changed["enabled"], json!(true), "{changed}");
    let text = saved();
    assert!(text.contains(&real), "the password was lost: {text}");
    assert!(!text.contains("***"), "{text}");
    let (_, listed) = get_json(&d.url("/api/sources/door")).unwrap();
    assert_eq!(listed["url"], json!(shown), "{listed}");
    assert!(!listed.to_string().contains(PASSWORD), "{listed}");

    // Another host with the hidden password keeps it too; a new password replaces it.
    let (code, body) = put(
        &d.url("/api/sources/door"),
        json!({"kind": "rtsp", "url": "rtsp://cam:***@127.0.0.2:9/live", "enabled": false}),
    );
    assert_eq!(code, 200, "{body}");
    assert!(
        saved().contains(&format!("rtsp://cam:{PASSWORD}@127.0.0.2:9/live")),
        "{}",
        saved()
    );
    let (code, body) = put(
        &d.url("/api/sources/door"),
        json!({"kind": "rtsp", "url": "rtsp://cam:n3w-pass@127.0.0.2:9/live", "enabled": false}),
    );
    assert_eq!(code, 200, "{body}");
    let text = saved();
    assert!(
        text.contains("rtsp://cam:n3w-pass@127.0.0.2:9/live"),
        "{text}"
    );
    assert!(!text.contains(PASSWORD), "{text}");
}

#[test]
fn the_current_activity_survives_a_reload() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cav.toml");
    std::fs::write(
        &config,
        "[classifier]\nwindow_s = 3\n\n[vision]\nenabled = false\n",
    )
    .unwrap();
    let config_arg = config.to_str().unwrap().to_string();
    let d = Daemon::start_with_args(dir.path(), &["--config", &config_arg], &[]);
    let before = wait_for(Duration::from_secs(60), || {
        get_json(&d.url("/api/current-activity"))
            .ok()
            .map(|(_, c)| c)
            .filter(|c| !c["activity"].is_null())
    })
    .unwrap_or_else(|| panic!("no classification: {}", d.log_text()));
    // A long window: the reloaded pipeline will not close one during the test.
    let (code, body) = put(
        &d.url("/api/settings"),
        json!({"classifier": {"window_s": 600}}),
    );
    assert_eq!(code, 200, "{body}");
    wait_window(&d, 600.0);
    // The reloaded daemon shows the newest stored window, not nothing.
    let (_, after) = get_json(&d.url("/api/current-activity")).unwrap();
    assert!(!after["activity"].is_null(), "{after}: {}", d.log_text());
    assert!(
        after["window_end_ms"].as_i64() >= before["window_end_ms"].as_i64(),
        "{before} then {after}"
    );
    let (_, stored) = get_json(&d.url("/api/activities?limit=1")).unwrap();
    assert_eq!(
        after["window_end_ms"], stored["items"][0]["end_ms"],
        "{stored}"
    );
}
