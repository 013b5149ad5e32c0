//! Audio/video synchronisation, measured on a clip whose white flashes and beeps coincide
//! (tests/data/video/av_sync_flash_beep.mp4: a flash on frames k·25 and a beep at k s), played
//! by the real daemon's file source: the offset in `/api/status` is within one frame, and a
//! clip saved with `POST /api/save-clip` has the right length and frame count (ffprobe) and keeps
//! each flash on its beep.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use cav_actors::media::{AudioDecoder, VideoDecoder};
use common::{get_json, post_json, repo, wait_for, Daemon};
use serde_json::Value;

/// ffprobe's duration and frame count of a video file.
fn ffprobe(path: &Path) -> (f64, u64) {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-count_frames",
            "-show_entries",
            "stream=nb_read_frames,duration",
            "-of",
            "json",
        ])
        .arg(path)
        .output()
        .expect("ffprobe (Debian package ffmpeg) is needed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let s = &v["streams"][0];
    (
        s["duration"].as_str().unwrap().parse().unwrap(),
        s["nb_read_frames"].as_str().unwrap().parse().unwrap(),
    )
}

/// Times (s from the start) of the frames that turn white after a dark one.
fn flash_times(video: &Path) -> Vec<f64> {
    let mut d = VideoDecoder::open(video, None).unwrap();
    let mut out = Vec::new();
    // None before the first frame: a flash already on at the clip's start has no onset in the
    // clip (just as a beep cut by the start has none in the WAV).
    let mut was_white: Option<bool> = None;
    while let Some(f) = d.next_frame().unwrap() {
        let white = cav_core::avsync::mean_luma(&f.frame) > 200.0;
        if white && was_white == Some(false) {
            out.push(f.pts_s);
        }
        was_white = Some(white);
    }
    out
}

/// Times (s from the start) where a beep starts in a 16 kHz WAV.
fn beep_times(wav: &Path) -> Vec<f64> {
    let mut d = AudioDecoder::open(wav).unwrap().unwrap();
    let mut samples = Vec::new();
    while let Some(c) = d.next_chunk(16_000).unwrap() {
        samples.extend(c);
    }
    let mut out = Vec::new();
    let mut quiet_since = 0usize;
    for (i, &x) in samples.iter().enumerate() {
        if x.abs() > 0.1 {
            if i - quiet_since > 3200 {
                out.push(i as f64 / 16_000.0);
            }
            quiet_since = i;
        }
    }
    out
}

#[test]
fn the_file_source_measures_sync_within_a_frame_and_saved_clips_keep_it() {
    let dir = tempfile::tempdir().unwrap();
    let clip = repo().join("tests/data/video/av_sync_flash_beep.mp4");
    let daemon = Daemon::start(
        dir.path(),
        &[
            ("CAV_FILE__PATH", clip.to_str().unwrap()),
            ("CAV_HEARING__ENABLED", "false"),
            ("CAV_CLASSIFIER__WINDOW_S", "5"),
        ],
    );
    let sync = wait_for(Duration::from_secs(40), || {
        let (_, s) = get_json(&daemon.url("/api/status")).ok()?;
        let a = s["av_sync"].clone();
        (a["pairs"].as_u64()? >= 6).then_some(a)
    })
    .unwrap_or_else(|| panic!("no A/V sync reading:\n{}", daemon.log_text()));
    println!("file source A/V sync: {sync}");
    assert_eq!(sync["video_source"], "file");
    assert_eq!(sync["audio_source"], "file");
    let offset = sync["offset_ms"].as_f64().unwrap();
    assert!(offset.abs() <= 40.0, "offset {offset} ms: {sync}");
    assert_eq!(sync["resolution_ms"], 200.0);
    assert_eq!(sync["buffer_s"], 30.0);

    // Save the last 6 s.
    let (code, saved) = post_json(
        &daemon.url("/api/save-clip"),
        serde_json::json!({"duration": 6, "prefix": "sync-test", "source": "file"}),
    );
    assert_eq!(code, 201, "{saved}");
    let video = Path::new(saved["video_path"].as_str().unwrap()).to_path_buf();
    let wav = Path::new(saved["audio_path"].as_str().unwrap()).to_path_buf();
    assert!(
        video.starts_with(dir.path().join("data/captures")),
        "{saved}"
    );
    assert!(video
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("sync-test-"));
    let duration = saved["duration_s"].as_f64().unwrap();
    assert!((5.7..=6.0).contains(&duration), "{saved}");
    assert_eq!(saved["fps"], 5.0);
    let (probed_s, probed_frames) = ffprobe(&video);
    assert_eq!(probed_frames, saved["frames"].as_u64().unwrap());
    assert!(
        (probed_s - duration).abs() <= 0.2,
        "ffprobe {probed_s} s vs {duration}"
    );
    assert_eq!(
        saved["samples"].as_u64().unwrap(),
        (duration * 16_000.0).round() as u64
    );
    // Each flash in the video sits on its beep in the WAV.
    let flashes = flash_times(&video);
    let beeps = beep_times(&wav);
    println!("clip flashes {flashes:?}, beeps {beeps:?}");
    assert!(flashes.len() >= 4, "{flashes:?}");
    for f in &flashes {
        let nearest = beeps
            .iter()
            .map(|b| (b - f).abs())
            .fold(f64::INFINITY, f64::min);
        assert!(
            nearest <= 0.04,
            "flash at {f} s has no beep within 40 ms: {beeps:?}"
        );
    }

    // Bad requests.
    for (body, code, field) in [
        (serde_json::json!({"duration": 0}), 400, "duration"),
        (
            serde_json::json!({"duration": 2, "prefix": "../etc/x"}),
            400,
            "prefix",
        ),
        (
            serde_json::json!({"duration": 2, "source": "nope"}),
            404,
            "source",
        ),
    ] {
        let (got, err) = post_json(&daemon.url("/api/save-clip"), body.clone());
        assert_eq!(got, code, "{body}: {err}");
        assert!(
            err["error"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{field}:")),
            "{err}"
        );
    }
}
