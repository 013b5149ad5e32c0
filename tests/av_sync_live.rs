//! A/V sync measured live across two real clocks: a headless OBS Studio plays the flash-and-beep
//! clip (tests/data/video/av_sync_flash_beep.mp4) as the camera, and a real PulseAudio null sink
//! plays the same clip's sound into the daemon's microphone source. Both playbacks are started
//! together, so the offset the daemon reports is the two capture paths' latency difference plus
//! the start skew of the two players; the test checks that it is measured and printed.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{get_json, post_json, repo, wait_for, Daemon};
use serde_json::json;

struct Harness {
    script: &'static str,
    dir: tempfile::TempDir,
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(repo().join(self.script))
            .arg("stop")
            .arg(self.dir.path())
            .output();
    }
}

fn run(script: &'static str, args: &[&str]) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("bash")
        .arg(repo().join(script))
        .arg("start")
        .arg(dir.path())
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script} failed (the test command `bash scripts/test.sh` installs OBS and PulseAudio): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Harness { script, dir }
}

struct Player(Child);

impl Drop for Player {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn obs_video_and_a_pulseaudio_microphone_playing_one_clip_report_their_offset() {
    let clip = repo().join("tests/data/video/av_sync_flash_beep.mp4");
    let work = tempfile::tempdir().unwrap();
    // The clip's sound as a 48 kHz WAV for paplay, four times over (60 s).
    let wav = work.path().join("beeps.wav");
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-stream_loop", "3", "-i"])
        .arg(&clip)
        .args(["-vn", "-ac", "1", "-ar", "48000", "-c:a", "pcm_s16le"])
        .arg(&wav)
        .output()
        .expect("ffmpeg");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let obs_port = common::free_port();
    let obs = run(
        "scripts/obs-harness.sh",
        &[clip.to_str().unwrap(), &obs_port.to_string()],
    );
    let pulse = run(
        "scripts/pulse-harness.sh",
        &[&std::process::id().to_string()],
    );
    let pulse_env: Vec<(String, String)> = std::fs::read_to_string(pulse.dir.path().join("env"))
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("export ")?.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim_matches(['"', '\'']).to_string()))
        .collect();

    let config = work.path().join("cav.toml");
    std::fs::write(
        &config,
        format!(
            "[file]\nenabled = false\n[obs]\nenabled = true\nport = {obs_port}\nsource = \"Media\"\n\
             fps = 10.0\nwidth = 320\n[video]\nanalysis_fps = 10.0\n[hearing]\nenabled = false\n\
             [vision]\nenabled = false\n[classifier]\nwindow_s = 5\naudio_source = \"mic\"\n\n\
             [[sources]]\nid = \"mic\"\nkind = \"microphone\"\ndevice = \"vsink_monitor\"\n"
        ),
    )
    .unwrap();
    let mut env: Vec<(&str, &str)> = pulse_env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    env.push(("CAV_LOG__LEVEL", "info"));
    let daemon =
        Daemon::start_with_args(work.path(), &["--config", config.to_str().unwrap()], &env);
    wait_for(Duration::from_secs(40), || {
        let (_, s) = get_json(&daemon.url("/api/status")).ok()?;
        (s["sources"]["obs"]["frames"].as_u64()? >= 10 && s["sources"]["mic"]["state"] == "running")
            .then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "OBS and the microphone did not both run:\n{}",
            daemon.log_text()
        )
    });

    // Start both playbacks together: the OBS media source from its start, paplay from its start.
    let (code, restarted) = post_json(
        &daemon.url("/api/obs/media/Media"),
        json!({"action": "restart"}),
    );
    assert_eq!(code, 200, "{restarted}");
    let player = Player(
        Command::new("paplay")
            .arg("--device=vsink")
            .arg(&wav)
            .envs(pulse_env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("paplay"),
    );
    let started = Instant::now();
    let sync = wait_for(Duration::from_secs(50), || {
        let (_, s) = get_json(&daemon.url("/api/status")).ok()?;
        let a = s["av_sync"].clone();
        (a["pairs"].as_u64()? >= 5).then_some(a)
    })
    .unwrap_or_else(|| {
        panic!(
            "no A/V pairs after {:?}: {}\n{}",
            started.elapsed(),
            get_json(&daemon.url("/api/status")).unwrap().1["av_sync"],
            daemon.log_text()
        )
    });
    println!("OBS video + PulseAudio microphone, A/V sync: {sync}");
    assert_eq!(sync["video_source"], "obs");
    assert_eq!(sync["audio_source"], "mic");
    // A number is reported (its size is bounded by the ±500 ms pairing window by construction,
    // so bounding it here would check nothing).
    assert!(sync["offset_ms"].as_f64().is_some(), "{sync}");
    let resolution = sync["resolution_ms"].as_f64().unwrap();
    assert!(
        (90.0..=130.0).contains(&resolution),
        "10 fps screenshots: {sync}"
    );
    drop(player);
    drop(obs);
}
