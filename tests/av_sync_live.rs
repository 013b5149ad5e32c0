//! A/V sync measured live across two real clocks: a headless OBS Studio plays the flash-and-beep
//! clip (tests/data/video/av_sync_flash_beep.mp4) as the camera, and a real PulseAudio null sink
//! plays the same clip's sound into the daemon's microphone source. Both playbacks are started
//! together, so the offset the daemon reports is the two capture paths' latency difference plus
//! the start skew of the two players; the test checks that it is measured and printed.
//!
//! OBS gets a copy of the clip whose flashes last 200 ms instead of 80 ms (same onsets, same
//! sound). The daemon samples OBS at 10 fps, one screenshot per 100 ms, so an 80-ms flash is only
//! seen when a screenshot happens to fall on it; and OBS shows a media frame only if its
//! graphics thread renders while that frame is current, which under CPU load (software rendering
//! competing with other processes for two cores) skips the two white frames: measured, a run in
//! which the microphone heard every beep but the screenshots held 2 flashes in 26 s, and no
//! pairs. A flash longer than a screenshot interval plus a late render is still seen.

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

/// Stops OBS cleanly and returns its render-timing summary (how often its graphics thread ran
/// late), which it logs when it exits.
fn obs_render_stats(obs: &Harness) -> String {
    let _ = Command::new("bash")
        .arg(repo().join(obs.script))
        .arg("stop")
        .arg(obs.dir.path())
        .output();
    std::fs::read_to_string(obs.dir.path().join("obs.log"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("obs_graphics_thread"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Runs an ffmpeg command to its end; fails the test with ffmpeg's message if it fails.
fn ffmpeg(command: &mut Command) {
    let out = command
        .output()
        .expect("ffmpeg (Debian package ffmpeg) is needed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
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
    let original = repo().join("tests/data/video/av_sync_flash_beep.mp4");
    let work = tempfile::tempdir().unwrap();
    // The clip for OBS: frames 25k…25k+4 white (200 ms from k s) instead of 25k, 25k+1.
    let clip = work.path().join("flash_beep_200ms.mp4");
    ffmpeg(
        Command::new("ffmpeg")
            .args(["-v", "error", "-i"])
            .arg(&original)
            .args([
                "-vf",
                "drawbox=x=0:y=0:w=iw:h=ih:color=white:t=fill:enable='gte(n,25)*lt(mod(n,25),5)'",
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-g",
                "25",
                "-bf",
                "0",
                "-pix_fmt",
                "yuv420p",
                "-c:a",
                "copy",
            ])
            .arg(&clip),
    );
    // The clip's sound as a 48 kHz WAV for paplay, four times over (60 s).
    let wav = work.path().join("beeps.wav");
    ffmpeg(
        Command::new("ffmpeg")
            .args(["-v", "error", "-stream_loop", "3", "-i"])
            .arg(&original)
            .args(["-vn", "-ac", "1", "-ar", "48000", "-c:a", "pcm_s16le"])
            .arg(&wav),
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
    // What each side delivered, once a second: screenshots, and the microphone's level and pitch
    // (the beeps read about −20 dBFS at 1000 Hz), to tell a deaf microphone from a blind camera.
    let mut trace = Vec::new();
    let sync = wait_for(Duration::from_secs(50), || {
        let (_, s) = get_json(&daemon.url("/api/status")).ok()?;
        if trace.len() < (started.elapsed().as_secs() + 1) as usize {
            let mic = &s["sources"]["mic"];
            trace.push(format!(
                "{:4.1} s: obs frames {}, mic {} chunks {} level {} dBFS at {} Hz",
                started.elapsed().as_secs_f64(),
                s["sources"]["obs"]["frames"],
                mic["state"],
                mic["audio_chunks"],
                mic["level"]["dbfs"],
                mic["level"]["dominant_hz"]
            ));
        }
        let a = s["av_sync"].clone();
        (a["pairs"].as_u64()? >= 5).then_some(a)
    })
    .unwrap_or_else(|| {
        panic!(
            "no A/V pairs after {:?}: {}\n{}\nOBS: {}\n{}",
            started.elapsed(),
            get_json(&daemon.url("/api/status")).unwrap().1["av_sync"],
            trace.join("\n"),
            obs_render_stats(&obs),
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
