//! Analyses of whole media files through the HTTP API (background jobs with progress, results,
//! summary and exports), confined to the media folders; and `cav analyze --interval`, which runs
//! the same sampling.

mod common;

use std::time::Duration;

use common::{cav, delete_json, get_json, post_json, repo, wait_for, Daemon};
use serde_json::Value;

fn start(dir: &std::path::Path) -> Daemon {
    let media = dir.join("media");
    std::fs::create_dir_all(&media).unwrap();
    std::fs::copy(repo().join("data/demo/demo.mp4"), media.join("demo.mp4")).unwrap();
    std::fs::write(dir.join("secret.txt"), "not for you").unwrap();
    let dirs = format!("[\"{}\"]", media.display());
    let daemon = Daemon::start(
        dir,
        &[
            ("CAV_FILE__ENABLED", "false"),
            ("CAV_ANALYSIS__MEDIA_DIRS", &dirs),
        ],
    );
    wait_for(Duration::from_secs(30), || {
        get_json(&daemon.url("/api/health")).ok()
    })
    .unwrap_or_else(|| panic!("daemon not up:\n{}", daemon.log_text()));
    daemon
}

fn wait_done(daemon: &Daemon, id: &str) -> Value {
    wait_for(Duration::from_secs(120), || {
        let (_, a) = get_json(&daemon.url(&format!("/api/analyses/{id}"))).ok()?;
        (a["status"] != "running" && a["status"] != "queued").then_some(a)
    })
    .unwrap_or_else(|| panic!("analysis {id} did not finish:\n{}", daemon.log_text()))
}

#[test]
fn a_whole_file_analysis_runs_in_the_background_and_exports() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = start(dir.path());

    let (code, files) = get_json(&daemon.url("/api/media")).unwrap();
    assert_eq!(code, 200);
    assert_eq!(files["files"][0]["file"], "demo.mp4");

    let (code, job) = post_json(
        &daemon.url("/api/analyses"),
        serde_json::json!({"file": "demo.mp4", "interval_s": 2}),
    );
    assert_eq!(code, 202, "{job}");
    let id = job["id"].as_str().unwrap().to_string();
    assert_eq!(job["interval_s"], 2.0);
    assert!(job["input"]["path"]
        .as_str()
        .unwrap()
        .ends_with("media/demo.mp4"));

    let done = wait_done(&daemon, &id);
    assert_eq!(done["status"], "done", "{done}");
    assert_eq!(done["progress"], 100.0);
    assert!((done["duration_s"].as_f64().unwrap() - 40.0).abs() < 0.5);
    let summary = &done["summary"];
    assert_eq!(summary["samples"], 20);
    // The demo: 24 s of conversation, then 16 s of a quiet, still scene.
    assert_eq!(summary["main_activity"], "in_conversation");
    let conversation = summary["shares"]["in_conversation"].as_f64().unwrap();
    assert!((0.5..0.7).contains(&conversation), "{summary}");
    assert!(
        summary["shares"]["reading"].as_f64().unwrap() > 0.25,
        "{summary}"
    );
    assert!(
        summary["sound_events"].as_u64().unwrap() >= 1,
        "speech is heard: {summary}"
    );

    let (_, list) = get_json(&daemon.url("/api/analyses")).unwrap();
    assert_eq!(list["analyses"][0]["id"], id.as_str());

    let csv = ureq::get(&daemon.url(&format!("/api/analyses/{id}/export?format=csv")))
        .call()
        .unwrap();
    assert!(csv.header("Content-Type").unwrap().starts_with("text/csv"));
    let text = csv.into_string().unwrap();
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(rows.len(), 21);
    assert!(rows[0].starts_with("t_s,activity,confidence,score_asleep"));
    assert!(rows[1].starts_with("0,in_conversation,"), "{}", rows[1]);
    assert!(rows[20].starts_with("38,reading,"), "{}", rows[20]);
    let (_, json) =
        get_json(&daemon.url(&format!("/api/analyses/{id}/export?format=json"))).unwrap();
    let samples = json["samples"].as_array().unwrap();
    assert_eq!(samples.len(), 20);
    assert_eq!(samples[3]["t_s"], 6.0);
    assert_eq!(samples[3]["scores"].as_object().unwrap().len(), 7);
    assert!(samples[3]["features"]["audio"]["speech_fraction"].is_number());

    // One sample at a given time.
    let (code, one) = post_json(
        &daemon.url("/api/analyses"),
        serde_json::json!({"file": "demo.mp4", "at_s": 30}),
    );
    assert_eq!(code, 202, "{one}");
    let one = wait_done(&daemon, one["id"].as_str().unwrap());
    assert_eq!(one["summary"]["samples"], 1);
    assert_eq!(one["summary"]["main_activity"], "reading");

    // Deleting a finished analysis removes it.
    let (code, _) = delete_json(&daemon.url(&format!("/api/analyses/{id}")));
    assert_eq!(code, 200);
    assert_eq!(
        get_json(&daemon.url(&format!("/api/analyses/{id}")))
            .unwrap()
            .0,
        404
    );
}

#[test]
fn a_running_analysis_can_be_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = start(dir.path());
    // Dense sampling of the whole clip takes a while: time to cancel.
    let (_, job) = post_json(
        &daemon.url("/api/analyses"),
        serde_json::json!({"file": "demo.mp4", "interval_s": 1}),
    );
    let id = job["id"].as_str().unwrap();
    let (code, cancelled) = delete_json(&daemon.url(&format!("/api/analyses/{id}")));
    assert_eq!(code, 200, "{cancelled}");
    let end = wait_done(&daemon, id);
    assert!(
        end["status"] == "cancelled" || end["status"] == "done",
        "{end}"
    );
    if end["status"] == "cancelled" {
        assert!(end["summary"]["samples"].as_u64().unwrap() < 40);
    }
}

#[test]
fn bad_requests_and_files_outside_the_media_folders_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = start(dir.path());
    let url = daemon.url("/api/analyses");
    for (body, code, field) in [
        (serde_json::json!({}), 400, "file"),
        (
            serde_json::json!({"file": "demo.mp4", "interval_s": 0.5}),
            400,
            "interval_s",
        ),
        (
            serde_json::json!({"file": "demo.mp4", "at_s": -1}),
            400,
            "at_s",
        ),
        (
            serde_json::json!({"file": "demo.mp4", "at_s": 1, "interval_s": 2}),
            400,
            "at_s",
        ),
        // No OBS listens on the configured port: the source cannot be looked up.
        (serde_json::json!({"source": "Media Source"}), 503, "source"),
        (serde_json::json!({"file": "nope.mp4"}), 404, "file"),
        (serde_json::json!({"file": "../secret.txt"}), 403, "file"),
        (
            serde_json::json!({"file": dir.path().join("secret.txt").to_str().unwrap()}),
            403,
            "file",
        ),
    ] {
        let (got, err) = post_json(&url, body.clone());
        assert_eq!(got, code, "{body}: {err}");
        assert!(
            err["error"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{field}:")),
            "{body}: {err}"
        );
    }
    let (code, err) = post_json(&url, serde_json::json!({"file": "demo.mp4", "colour": 1}));
    assert_eq!(code, 400, "{err}");
    assert_eq!(
        get_json(&daemon.url("/api/analyses/a-nope")).unwrap().0,
        404
    );
    let (code, _) = get_json(&daemon.url("/api/analyses")).unwrap();
    assert_eq!(code, 200);
}

#[test]
fn cav_analyze_with_an_interval_samples_the_file_like_the_jobs() {
    let out = cav()
        .args(["analyze", "--interval", "2", "--no-hearing"])
        .arg(repo().join("data/demo/demo.mp4"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let samples: Vec<&Value> = lines.iter().filter(|l| l["kind"] == "activity").collect();
    assert_eq!(samples.len(), 20);
    assert_eq!(samples[1]["t_start"], 2.0);
    assert_eq!(samples[1]["t_end"], 3.0);
    let summary = lines.last().unwrap();
    assert_eq!(summary["kind"], "summary");
    assert_eq!(summary["main_activity"], "in_conversation");
    assert_eq!(summary["samples"], 20);
}
