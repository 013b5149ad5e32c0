//! The daemon as a service: the systemd unit passes `systemd-analyze verify`; readiness,
//! watchdog and stopping notifications reach a socket standing in for systemd's
//! `NOTIFY_SOCKET`; `/metrics` parses with Prometheus' own parser and its counters move; a
//! configured API token is enforced; SIGHUP reloads a valid config and refuses a bad one.

mod common;

use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{get_json, repo, wait_for, Daemon};

fn up(daemon: &Daemon) {
    wait_for(Duration::from_secs(30), || {
        get_json(&daemon.url("/api/health")).ok()
    })
    .unwrap_or_else(|| panic!("daemon not up:\n{}", daemon.log_text()));
}

#[test]
fn the_unit_file_passes_systemd_analyze_verify() {
    let dir = tempfile::tempdir().unwrap();
    // verify checks that ExecStart exists: point it at the binary under test.
    let unit = std::fs::read_to_string(repo().join("config/classify-audio-video.service")).unwrap();
    assert!(unit.contains("Type=notify"));
    assert!(unit.contains("WatchdogSec="));
    let unit = unit.replace("/usr/local/bin/cav", env!("CARGO_BIN_EXE_cav"));
    let path = dir.path().join("classify-audio-video.service");
    std::fs::write(&path, unit).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze (Debian package systemd) is needed");
    let stderr = String::from_utf8_lossy(&out.stderr);
    // verify only warns (exit 0) about unknown directives and values: any output is a failure.
    assert!(out.status.success() && stderr.trim().is_empty(), "{stderr}");
}

#[test]
fn tells_systemd_it_is_ready_pings_the_watchdog_and_says_it_stops() {
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut daemon = Daemon::start(
        dir.path(),
        &[
            ("NOTIFY_SOCKET", socket_path.to_str().unwrap()),
            ("WATCHDOG_USEC", "1000000"),
            ("CAV_HEARING__ENABLED", "false"),
        ],
    );
    let mut messages: Vec<String> = Vec::new();
    let read_until =
        |messages: &mut Vec<String>, pred: &dyn Fn(&[String]) -> bool, within: Duration| {
            let deadline = Instant::now() + within;
            let mut buf = [0u8; 4096];
            while Instant::now() < deadline && !pred(messages) {
                if let Ok(n) = socket.recv(&mut buf) {
                    messages.push(String::from_utf8_lossy(&buf[..n]).to_string());
                }
            }
            pred(messages)
        };
    let ready = read_until(
        &mut messages,
        &|m| m.iter().any(|s| s.lines().any(|l| l == "READY=1")),
        Duration::from_secs(30),
    );
    assert!(ready, "no READY=1: {messages:?}\n{}", daemon.log_text());
    // The API answers once READY=1 has been sent.
    assert_eq!(get_json(&daemon.url("/api/health")).unwrap().0, 200);
    // A 1-s watchdog is pinged every 0.5 s while the pipeline answers.
    let since = messages.len();
    let pinged = read_until(
        &mut messages,
        &|m| {
            m[since..]
                .iter()
                .filter(|s| s.contains("WATCHDOG=1"))
                .count()
                >= 4
        },
        Duration::from_secs(5),
    );
    assert!(pinged, "watchdog pings: {:?}", &messages[since..]);
    daemon.signal_and_wait("TERM", Duration::from_secs(10));
    let stopping = read_until(
        &mut messages,
        &|m| m.iter().any(|s| s.contains("STOPPING=1")),
        Duration::from_secs(2),
    );
    assert!(stopping, "{messages:?}");
}

/// Parses `/metrics` with prometheus_client's parser; returns {name{labels}: value} lines.
fn parse_metrics(text: &str) -> Vec<(String, f64)> {
    let python = std::env::var("CAV_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = r#"
import sys
from prometheus_client.parser import text_string_to_metric_families
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
        print(f"{s.name}{{{labels}}} {s.value}")
"#;
    let mut child = Command::new(python)
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the Prometheus parser refused /metrics (pip install prometheus-client; scripts/setup.sh --test does):\n{}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

fn value(samples: &[(String, f64)], key: &str) -> f64 {
    samples
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| *v)
        .unwrap_or_else(|| panic!("no sample {key}"))
}

fn get_metrics(daemon: &Daemon, token: &str) -> String {
    ureq::get(&daemon.url("/metrics"))
        .set("Authorization", &format!("Bearer {token}"))
        .call()
        .unwrap()
        .into_string()
        .unwrap()
}

#[test]
fn metrics_parse_and_move_and_the_token_is_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let token = "correct-horse-battery";
    let daemon = Daemon::start(
        dir.path(),
        &[
            ("CAV_CLASSIFIER__WINDOW_S", "2"),
            ("CAV_HTTP__TOKEN", token),
        ],
    );
    up(&daemon);

    // Without the token: 401 JSON with a Bearer challenge; health stays public.
    match ureq::get(&daemon.url("/api/status")).call() {
        Err(ureq::Error::Status(401, r)) => {
            assert_eq!(r.header("WWW-Authenticate"), Some("Bearer"));
            let body: serde_json::Value = r.into_json().unwrap();
            assert_eq!(body["status"], 401);
        }
        other => panic!("expected 401, got {other:?}"),
    }
    for path in ["/metrics", "/api/activities", "/api/nope"] {
        let r = ureq::get(&daemon.url(path))
            .set("Authorization", "Bearer wrong-token-123")
            .call();
        assert!(
            matches!(r, Err(ureq::Error::Status(401, _))),
            "{path}: {r:?}"
        );
    }
    assert_eq!(get_json(&daemon.url("/api/health")).unwrap().0, 200);
    let with_cookie = ureq::get(&daemon.url("/api/status"))
        .set("Cookie", &format!("lang=fr; cav_token={token}"))
        .call()
        .unwrap();
    assert_eq!(with_cookie.status(), 200);

    let first = parse_metrics(&get_metrics(&daemon, token));
    // Wait for a few windows, then the counters have moved.
    std::thread::sleep(Duration::from_secs(6));
    let later = parse_metrics(&get_metrics(&daemon, token));
    let frames = "cav_source_frames_total{kind=file,source=file}";
    assert!(value(&later, frames) > value(&first, frames));
    let windows: f64 = later
        .iter()
        .filter(|(k, _)| k.starts_with("cav_windows_total{"))
        .map(|(_, v)| v)
        .sum();
    assert!(windows >= 2.0, "{windows}");
    assert_eq!(
        later
            .iter()
            .filter(|(k, _)| k.starts_with("cav_windows_total{"))
            .count(),
        7,
        "one series per class"
    );
    assert_eq!(
        value(&later, "cav_source_state{source=file,state=running}"),
        1.0
    );
    assert_eq!(
        value(&later, "cav_source_state{source=file,state=error}"),
        0.0
    );
    let inferences = value(&later, "cav_yamnet_inference_seconds_count{source=file}");
    let before = first
        .iter()
        .find(|(k, _)| k == "cav_yamnet_inference_seconds_count{source=file}")
        .map_or(0.0, |(_, v)| *v);
    assert!(inferences > before, "{inferences} vs {before}");
    assert_eq!(
        value(
            &later,
            "cav_yamnet_inference_seconds_bucket{le=+Inf,source=file}"
        ),
        inferences
    );
    assert!(value(&later, "cav_vision_inference_seconds_count{model=total}") >= 2.0);
    assert!(value(&later, "cav_vision_frames_total{}") >= 2.0);
    assert_eq!(value(&later, "cav_actor_up{actor=classifier}"), 1.0);
    assert_eq!(
        value(&later, "cav_actor_restarts_total{actor=classifier}"),
        0.0
    );
    assert_eq!(value(&later, "cav_outbox_pending{}"), 0.0);
    assert!(value(&later, "cav_stored_windows{}") >= 2.0);
}

#[test]
fn sighup_reloads_a_valid_config_and_refuses_a_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cav.toml");
    std::fs::write(&config, "[classifier]\nwindow_s = 2\n").unwrap();
    let mut daemon = Daemon::start_with_args(
        dir.path(),
        &["--config", config.to_str().unwrap()],
        &[("CAV_HEARING__ENABLED", "false")],
    );
    up(&daemon);
    let window = |d: &Daemon| {
        get_json(&d.url("/api/status"))
            .ok()
            .map(|(_, s)| s["window_s"].clone())
    };
    assert_eq!(window(&daemon), Some(serde_json::json!(2.0)));

    // A bad config: refused, the old one keeps running.
    std::fs::write(&config, "[classifier]\nwindow_s = 2\nwindow_sz = 3\n").unwrap();
    daemon.signal_and_wait("HUP", Duration::from_millis(1500));
    assert!(
        daemon.child.try_wait().unwrap().is_none(),
        "the daemon died"
    );
    let log = daemon.log_text();
    assert!(log.contains("classifier.window_sz"), "{log}");
    assert_eq!(window(&daemon), Some(serde_json::json!(2.0)));

    // A good one: applied without a new process.
    std::fs::write(&config, "[classifier]\nwindow_s = 3\n").unwrap();
    daemon.signal_and_wait("HUP", Duration::from_millis(200));
    let reloaded = wait_for(Duration::from_secs(20), || {
        (window(&daemon)? == serde_json::json!(3.0)).then_some(())
    });
    assert!(reloaded.is_some(), "{}", daemon.log_text());
    assert!(daemon.child.try_wait().unwrap().is_none());
    // And it classifies with the new window.
    let current = wait_for(Duration::from_secs(20), || {
        let (_, c) = get_json(&daemon.url("/api/current-activity")).ok()?;
        let span = c["window_end_ms"].as_i64()? - c["window_start_ms"].as_i64()?;
        (span == 3000).then_some(c)
    });
    assert!(current.is_some(), "{}", daemon.log_text());
    let exit = daemon
        .signal_and_wait("TERM", Duration::from_secs(10))
        .unwrap();
    assert!(exit.success());
}
