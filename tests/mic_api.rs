//! A microphone source in the running daemon, against a real PulseAudio (private server with two
//! null sinks, scripts/pulse-harness.sh): tones played into a sink are heard at the right level
//! and pitch, the device list is served, and the capture device is switched through the HTTP API
//! while running (unknown devices → 400, nothing changes).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{get_json, repo, wait_for, Daemon};
use serde_json::{json, Value};

struct Pulse {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Pulse {
    fn start() -> Pulse {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("bash")
            .arg(repo().join("scripts/pulse-harness.sh"))
            .arg("start")
            .arg(dir.path())
            .arg(std::process::id().to_string())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "PulseAudio did not start (the test command `bash scripts/test.sh` installs it): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let env = std::fs::read_to_string(dir.path().join("env"))
            .unwrap()
            .lines()
            .filter_map(|l| l.strip_prefix("export ")?.split_once('='))
            .map(|(k, v)| {
                (
                    k.to_string(),
                    v.trim_matches('"').trim_matches('\'').to_string(),
                )
            })
            .collect();
        Pulse { dir, env }
    }

    fn play(&self, sink: &str, wav: &Path) -> Player {
        let child = Command::new("paplay")
            .arg(format!("--device={sink}"))
            .arg(wav)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("paplay");
        Player(child)
    }
}

/// A running `paplay`, stopped and reaped when dropped.
struct Player(Child);

impl Drop for Player {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Pulse {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(repo().join("scripts/pulse-harness.sh"))
            .arg("stop")
            .arg(self.dir.path())
            .output();
    }
}

/// A 48 kHz mono 16-bit WAV tone.
fn tone(dir: &Path, hz: f64, amplitude: f64, seconds: f64) -> PathBuf {
    let path = dir.join(format!("tone-{hz}.wav"));
    let n = (48_000.0 * seconds) as u32;
    let mut bytes = Vec::with_capacity(44 + 2 * n as usize);
    let data_len = 2 * n;
    bytes.extend_from_slice(b"RIFF");
    bytes.extend_from_slice(&(36 + data_len).to_le_bytes());
    bytes.extend_from_slice(b"WAVEfmt ");
    bytes.extend_from_slice(&16u32.to_le_bytes());
    bytes.extend_from_slice(&1u16.to_le_bytes()); // PCM
    bytes.extend_from_slice(&1u16.to_le_bytes()); // mono
    bytes.extend_from_slice(&48_000u32.to_le_bytes());
    bytes.extend_from_slice(&96_000u32.to_le_bytes());
    bytes.extend_from_slice(&2u16.to_le_bytes());
    bytes.extend_from_slice(&16u16.to_le_bytes());
    bytes.extend_from_slice(b"data");
    bytes.extend_from_slice(&data_len.to_le_bytes());
    for i in 0..n {
        let x = amplitude * (2.0 * std::f64::consts::PI * hz * i as f64 / 48_000.0).sin();
        bytes.extend_from_slice(&((x * 32767.0) as i16).to_le_bytes());
    }
    std::fs::write(&path, bytes).unwrap();
    path
}

fn post(url: &str, body: Value) -> (u16, Value) {
    match ureq::post(url)
        .timeout(Duration::from_secs(10))
        .send_json(body)
    {
        Ok(r) => (r.status(), r.into_json().unwrap()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_json().unwrap()),
        Err(e) => panic!("POST {url}: {e}"),
    }
}

fn mic_level(d: &Daemon) -> Option<(f64, f64)> {
    let (_, s) = get_json(&d.url("/api/sources/mic")).ok()?;
    let level = &s["status"]["level"];
    Some((level["dbfs"].as_f64()?, level["dominant_hz"].as_f64()?))
}

#[test]
fn a_microphone_is_heard_and_switched_through_the_api() {
    let pulse = Pulse::start();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cav.toml");
    std::fs::write(
        &config,
        "[file]\nstreams = \"video\"\n[classifier]\nwindow_s = 2\n\n[[sources]]\nid = \"mic\"\nkind = \"microphone\"\ndevice = \"vsink_monitor\"\n",
    )
    .unwrap();
    let env: Vec<(&str, &str)> = pulse
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let config_arg = config.to_str().unwrap().to_string();
    let daemon = Daemon::start_with_args(dir.path(), &["--config", &config_arg], &env);
    wait_for(Duration::from_secs(30), || {
        get_json(&daemon.url("/api/health")).ok()
    })
    .expect("daemon up");

    // The devices PulseAudio offers through ALSA.
    let (code, devices) = get_json(&daemon.url("/api/audio-devices")).unwrap();
    assert_eq!(code, 200, "{devices}");
    let names: Vec<&str> = devices
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"vsink_monitor") && names.contains(&"vsink2_monitor"),
        "{names:?}"
    );

    // A 1 kHz tone at amplitude 0.1 (−23 dBFS RMS) into vsink is heard at that level.
    let tones = tempfile::tempdir().unwrap();
    let _a = pulse.play("vsink", &tone(tones.path(), 1000.0, 0.1, 30.0));
    let _b = pulse.play("vsink2", &tone(tones.path(), 440.0, 0.1, 30.0));
    let (dbfs, hz) = wait_for(Duration::from_secs(20), || {
        mic_level(&daemon).filter(|(_, hz)| (hz - 1000.0).abs() < 10.0)
    })
    .unwrap_or_else(|| {
        panic!(
            "no 1 kHz tone: {:?}\n{}",
            mic_level(&daemon),
            daemon.log_text()
        )
    });
    assert!((dbfs - (-23.0)).abs() < 2.0, "level {dbfs} dBFS at {hz} Hz");

    // Unknown devices are refused and capture carries on unchanged.
    let set = daemon.url("/api/set-audio-device");
    let (code, err) = post(&set, json!({"deviceName": "no-such-device"}));
    assert_eq!(code, 400, "{err}");
    assert!(
        err["error"].as_str().unwrap().contains("no-such-device"),
        "{err}"
    );
    let (code, _) = post(&set, json!({"deviceIndex": 99}));
    assert_eq!(code, 400);
    let (code, _) = post(&set, json!({}));
    assert_eq!(code, 400);

    // Switch to the other sink's monitor: the 440 Hz tone is heard, and the choice is saved.
    let (code, switched) = post(&set, json!({"deviceName": "vsink2_monitor"}));
    assert_eq!(code, 200, "{switched}");
    assert_eq!(switched["source"], "mic");
    wait_for(Duration::from_secs(15), || {
        mic_level(&daemon).filter(|(_, hz)| (hz - 440.0).abs() < 10.0)
    })
    .unwrap_or_else(|| panic!("no 440 Hz after switching: {:?}", mic_level(&daemon)));
    let saved = std::fs::read_to_string(&config).unwrap();
    assert!(saved.contains("device = \"vsink2_monitor\""), "{saved}");
    // The video side went on meanwhile.
    let (_, status) = get_json(&daemon.url("/api/status")).unwrap();
    assert_eq!(status["sources"]["file"]["state"], "running");
}
