//! `cav analyze`: offline analysis of real media files through the same features and
//! classifier as the daemon.

mod common;

use common::{cav, repo};
use serde_json::Value;

fn analyze(args: &[&str]) -> (bool, String, String) {
    let out = cav()
        .arg("analyze")
        .args(args)
        .current_dir(repo())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_demo_clip_is_a_conversation_then_a_quiet_still_scene() {
    let (ok, stdout, stderr) = analyze(&["data/demo/demo.mp4", "--window", "4"]);
    assert!(ok, "{stderr}");
    let all: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    let lines: Vec<&Value> = all.iter().filter(|l| l["kind"] == "activity").collect();
    assert_eq!(lines.len(), 10, "40 s in 4 s windows");
    // YAMNet hears the two voices: speech events during the conversation, none in the quiet
    // part.
    let speech: Vec<f64> = all
        .iter()
        .filter(|l| l["kind"] == "sound_event" && l["label"] == "speech")
        .map(|l| l["t"].as_f64().unwrap())
        .collect();
    assert!(!speech.is_empty(), "no speech event: {stdout}");
    assert!(
        speech.iter().all(|&t| t < 25.0),
        "speech after 24 s: {speech:?}"
    );
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(l["kind"], "activity");
        assert_eq!(l["t_start"].as_f64().unwrap(), 4.0 * i as f64);
        assert_eq!(l["t_end"].as_f64().unwrap(), 4.0 * (i + 1) as f64);
        assert_eq!(l["scores"].as_object().unwrap().len(), 7);
        let c = l["confidence"].as_f64().unwrap();
        assert!(c > 0.0 && c <= 1.0);
    }
    // The clip's script (data/demo/README.md): two voices until 24 s, then a quiet, still room
    // with the person in view.
    let classes: Vec<&str> = lines.iter().map(|l| l["class"].as_str().unwrap()).collect();
    assert_eq!(&classes[..6], &["in_conversation"; 6], "{classes:?}");
    assert_eq!(&classes[6..], &["reading"; 4], "{classes:?}");
}

#[test]
fn csv_output_has_a_header_and_a_row_per_window() {
    let (ok, stdout, stderr) =
        analyze(&["data/demo/demo.mp4", "--window", "10", "--format", "csv"]);
    assert!(ok, "{stderr}");
    let rows: Vec<&str> = stdout.lines().collect();
    assert_eq!(rows.len(), 5);
    assert!(rows[0].starts_with("t_start,t_end,class,confidence,score_asleep,"));
    assert_eq!(rows[0].split(',').count(), 11);
    assert!(
        rows[1].starts_with("0.000,10.000,in_conversation,"),
        "{}",
        rows[1]
    );
}

#[test]
fn a_video_without_audio_is_analysed_from_its_pictures() {
    // 20 s, no audio track; a moving bar and changing bit blocks.
    let (ok, stdout, stderr) =
        analyze(&["tests/data/video/frame_counter_gop25.mp4", "--window", "5"]);
    assert!(ok, "{stderr}");
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    let drivers = lines[0]["drivers"].as_array().unwrap();
    // Audio cues stay neutral (no value) instead of being invented.
    assert!(drivers
        .iter()
        .filter(|d| d["feature"].as_str().unwrap().starts_with("audio."))
        .all(|d| d["value"].is_null()));
}

#[test]
fn a_missing_file_fails_with_a_clear_message() {
    let (ok, stdout, stderr) = analyze(&["/no/such/clip.mp4"]);
    assert!(!ok);
    assert!(stdout.is_empty());
    assert!(
        stderr.contains("/no/such/clip.mp4") && stderr.contains("not found"),
        "{stderr}"
    );
}

#[test]
fn a_corrupt_file_fails_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("broken.mp4");
    // The first 3 KB of a real MP4: a header with no decodable media behind it.
    let real = std::fs::read(repo().join("data/demo/demo.mp4")).unwrap();
    std::fs::write(&bad, &real[..3000]).unwrap();
    let (ok, _, stderr) = analyze(&[bad.to_str().unwrap()]);
    assert!(!ok);
    assert!(stderr.contains("broken.mp4"), "{stderr}");
    let junk = dir.path().join("junk.mp4");
    std::fs::write(&junk, b"this is not a video file at all").unwrap();
    let (ok, _, stderr) = analyze(&[junk.to_str().unwrap()]);
    assert!(!ok);
    assert!(stderr.contains("junk.mp4"), "{stderr}");
}

#[test]
fn a_bad_window_is_refused() {
    let (ok, _, stderr) = analyze(&["data/demo/demo.mp4", "--window", "0"]);
    assert!(!ok);
    assert!(stderr.contains("--window"), "{stderr}");
}
