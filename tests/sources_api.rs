//! `/api/sources` against the real daemon and a real RTSP server (GStreamer's gst-rtsp-server):
//! a source added at run time is captured and measured; bad definitions are refused naming the
//! field and change nothing; changes are saved to the configuration file atomically and survive
//! a restart; sources can be disabled and removed.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{get_json, repo, wait_for, Daemon};
use serde_json::{json, Value};

struct RtspServer {
    dir: tempfile::TempDir,
    port: u16,
}

impl RtspServer {
    fn start(media: &str) -> RtspServer {
        let server = RtspServer {
            dir: tempfile::tempdir().unwrap(),
            port: common::free_port(),
        };
        let out = Command::new("bash")
            .arg(repo().join("scripts/rtsp-harness.sh"))
            .arg("start")
            .arg(server.dir.path())
            .arg(repo().join(media))
            .arg(server.port.to_string())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "the RTSP server did not start (the test command `bash scripts/test.sh` installs \
             gst-rtsp-server): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        server
    }

    fn url(&self) -> String {
        format!("rtsp://127.0.0.1:{}/cam1", self.port)
    }
}

impl Drop for RtspServer {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(repo().join("scripts/rtsp-harness.sh"))
            .arg("stop")
            .arg(self.dir.path())
            .output();
    }
}

fn send(method: &str, url: &str, body: Option<Value>) -> (u16, Value) {
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(10))
        .build();
    let req = agent.request(method, url);
    let res = match body {
        Some(b) => req.send_json(b),
        None => req.call(),
    };
    match res {
        Ok(r) => (r.status(), r.into_json().unwrap_or(Value::Null)),
        Err(ureq::Error::Status(code, r)) => (code, r.into_json().unwrap_or(Value::Null)),
        Err(e) => panic!("{method} {url}: {e}"),
    }
}

fn source(d: &Daemon, id: &str) -> Value {
    get_json(&d.url(&format!("/api/sources/{id}"))).unwrap().1
}

#[test]
fn sources_are_added_refused_saved_disabled_and_removed_at_run_time() {
    let server = RtspServer::start("tests/data/video/av_sync_flash_beep.mp4");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cav.toml");
    std::fs::write(&config, "# kept as written\n[classifier]\nwindow_s = 2\n").unwrap();
    let config_arg = config.to_str().unwrap().to_string();
    let mut daemon = Daemon::start_with_args(dir.path(), &["--config", &config_arg], &[]);
    wait_for(Duration::from_secs(30), || {
        get_json(&daemon.url("/api/health")).ok()
    })
    .expect("daemon up");

    // The built-in sources are listed.
    let (_, all) = get_json(&daemon.url("/api/sources")).unwrap();
    let ids: Vec<&str> = all["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["file", "obs"]);

    // Bad definitions: 400 naming the field; nothing saved.
    let sources = daemon.url("/api/sources");
    let cases = [
        (
            json!({"id": "cam", "kind": "rtsp", "url": "http://x/y"}),
            "url",
        ),
        (json!({"id": "cam", "kind": "rtsp"}), "url"),
        (
            json!({"id": "cam", "kind": "microphone", "url": "rtsp://x/y"}),
            "url",
        ),
        (
            json!({"id": "c am", "kind": "rtsp", "url": "rtsp://h/p"}),
            "id",
        ),
        (json!({"kind": "rtsp", "url": "rtsp://h/p"}), "id"),
        (
            json!({"id": "v", "kind": "vban", "stream": "x", "sender": "nobody"}),
            "sender",
        ),
        (
            json!({"id": "cam", "kind": "rtsp", "url": "rtsp://h/p", "webhook": "mailto:a"}),
            "webhook",
        ),
    ];
    for (body, field) in cases {
        let (code, err) = send("POST", &sources, Some(body.clone()));
        assert_eq!(code, 400, "{body} → {err}");
        assert_eq!(err["field"], field, "{body} → {err}");
    }
    let (code, _) = send(
        "POST",
        &sources,
        Some(json!({"id": "x", "kind": "speaker"})),
    );
    assert_eq!(code, 400);
    let (code, _) = send(
        "POST",
        &sources,
        Some(json!({"id": "file", "kind": "microphone"})),
    );
    assert_eq!(code, 409);
    let saved = std::fs::read_to_string(&config).unwrap();
    assert!(!saved.contains("[[sources]]"), "{saved}");

    // A real RTSP source added at run time is captured and measured.
    let (code, created) = send(
        "POST",
        &sources,
        Some(json!({"id": "door", "name": "Front door", "kind": "rtsp", "url": server.url()})),
    );
    assert_eq!(code, 201, "{created}");
    assert_eq!(created["name"], "Front door");
    // The clip is silence with an 80 ms, 1 kHz beep of amplitude 0.5 each second from 1 s on:
    // a second holding one beep measures about -20 dBFS (silence alone is below -80).
    let running = wait_for(Duration::from_secs(30), || {
        let s = source(&daemon, "door");
        let level = s["status"]["level"]["dbfs"].as_f64()?;
        (s["status"]["state"] == "running" && level > -30.0).then_some(s)
    })
    .unwrap_or_else(|| {
        panic!(
            "RTSP source not running or not heard: {}\n{}",
            source(&daemon, "door"),
            daemon.log_text()
        )
    });
    assert_eq!(running["kind"], "rtsp");
    let level = &running["status"]["level"];
    assert!(level["dbfs"].as_f64().unwrap() < -15.0, "{running}");
    let hz = level["dominant_hz"].as_f64().unwrap();
    assert!((hz - 1000.0).abs() < 20.0, "{running}");
    let saved = std::fs::read_to_string(&config).unwrap();
    assert!(saved.starts_with("# kept as written"), "{saved}");
    assert!(
        saved.contains("id = \"door\"") && saved.contains("[[sources]]"),
        "{saved}"
    );

    // Duplicate id → 409.
    let (code, _) = send(
        "POST",
        &sources,
        Some(json!({"id": "door", "kind": "rtsp", "url": server.url()})),
    );
    assert_eq!(code, 409);

    // Disable it: it stops, and stays listed.
    let door = daemon.url("/api/sources/door");
    let (code, changed) = send(
        "PUT",
        &door,
        Some(json!({"name": "Front door", "kind": "rtsp", "url": server.url(), "enabled": false})),
    );
    assert_eq!(code, 200, "{changed}");
    assert!(
        wait_for(Duration::from_secs(10), || {
            (source(&daemon, "door")["status"]["state"] == "stopped").then_some(())
        })
        .is_some(),
        "{}",
        source(&daemon, "door")
    );
    // A bad change is refused and the source keeps its saved definition.
    let (code, err) = send(
        "PUT",
        &door,
        Some(json!({"kind": "rtsp", "url": "rtsp://"})),
    );
    assert_eq!((code, err["field"].as_str()), (400, Some("url")), "{err}");
    assert_eq!(source(&daemon, "door")["enabled"], false);

    // Restart the daemon: the saved configuration brings the source back as it was.
    let exit = daemon
        .signal_and_wait("TERM", Duration::from_secs(10))
        .unwrap();
    assert!(exit.success());
    let mut daemon = Daemon::start_with_args(dir.path(), &["--config", &config_arg], &[]);
    wait_for(Duration::from_secs(30), || {
        get_json(&daemon.url("/api/health")).ok()
    })
    .expect("daemon up again");
    let again = source(&daemon, "door");
    assert_eq!(
        (again["enabled"].as_bool(), again["name"].as_str()),
        (Some(false), Some("Front door")),
        "{again}"
    );

    // Remove it.
    let door = daemon.url("/api/sources/door");
    let (code, _) = send("DELETE", &door, None);
    assert_eq!(code, 200);
    let (code, _) = get_json(&door).unwrap();
    assert_eq!(code, 404);
    let (code, _) = send("DELETE", &door, None);
    assert_eq!(code, 404);
    let saved = std::fs::read_to_string(&config).unwrap();
    assert!(!saved.contains("door"), "{saved}");
    assert!(dir.path().join("cav.toml.bak").exists());
    let exit = daemon
        .signal_and_wait("TERM", Duration::from_secs(10))
        .unwrap();
    assert!(exit.success(), "exit {exit:?}:\n{}", daemon.log_text());
}

#[test]
fn without_a_config_file_changes_go_to_the_data_folder() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(dir.path(), &[]);
    wait_for(Duration::from_secs(30), || {
        get_json(&daemon.url("/api/health")).ok()
    })
    .expect("daemon up");
    let (code, body) = send(
        "POST",
        &daemon.url("/api/sources"),
        Some(
            json!({"id": "cam", "kind": "rtsp", "url": "rtsp://127.0.0.1:9/none", "enabled": false}),
        ),
    );
    assert_eq!(code, 201, "{body}");
    let saved = std::fs::read_to_string(dir.path().join("data/config.toml")).unwrap();
    assert!(saved.contains("id = \"cam\""), "{saved}");
}
