//! Hearing in the running daemon: a real clap recording (tests/data/audio/clap_gah_seq_1s.wav:
//! seven claps, one a second from 1 s) played as a live source. Its labels appear in
//! `/api/sound/labels`, its claps stream on `/api/events`, are stored, and are POSTed to the
//! source's webhook (a real HTTP receiver) with the documented payload. The time from each clap's
//! onset to the receiver getting the POST is printed (a measurement, not a check).

mod common;

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use common::{get_json, repo, wait_for, Daemon, Receiver};

#[test]
fn claps_reach_labels_events_store_and_webhook() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(dir.path(), 200);
    let clip = repo().join("tests/data/audio/clap_gah_seq_1s.wav");
    let clip = clip.to_str().unwrap().to_string();
    let mut daemon = Daemon::start(
        dir.path(),
        &[
            ("CAV_FILE__PATH", clip.as_str()),
            ("CAV_FILE__LOOP", "false"),
            ("CAV_FILE__WEBHOOK", receiver.url.as_str()),
            ("CAV_CLASSIFIER__WINDOW_S", "4"),
        ],
    );
    wait_for(Duration::from_secs(30), || {
        get_json(&daemon.url("/api/health")).ok()
    })
    .expect("daemon up");

    // Listen to the live stream of sound events while the clip plays.
    let events_url = daemon.url("/api/events?types=sound_event");
    let sse = std::thread::spawn(move || {
        let resp = ureq::get(&events_url)
            .timeout(Duration::from_secs(20))
            .call()
            .expect("SSE stream");
        assert_eq!(resp.content_type(), "text/event-stream");
        let mut events = Vec::new();
        let started = Instant::now();
        for line in BufReader::new(resp.into_reader()).lines() {
            let Ok(line) = line else { break };
            if let Some(data) = line.strip_prefix("data:") {
                events.push(serde_json::from_str::<serde_json::Value>(data.trim()).unwrap());
            }
            if events.len() >= 3 || started.elapsed() > Duration::from_secs(15) {
                break;
            }
        }
        events
    });

    // What the source hears, live.
    let labels = wait_for(Duration::from_secs(15), || {
        let (_, l) = get_json(&daemon.url("/api/sound/labels")).ok()?;
        let file = l["sources"]["file"].clone();
        (!file["top"].as_array()?.is_empty()).then_some(file)
    })
    .unwrap_or_else(|| panic!("no labels:\n{}", daemon.log_text()));
    assert!(labels["level_dbfs"].as_f64().unwrap() < 0.0, "{labels}");
    assert!(labels["top"].as_array().unwrap().len() <= 5);

    let streamed = sse.join().unwrap();
    assert!(
        streamed
            .iter()
            .any(|e| e["kind"] == "clap" && e["source"] == "file"),
        "no clap on /api/events: {streamed:?}\n{}",
        daemon.log_text()
    );

    // The webhook gets each clap with the documented payload.
    let hooks = wait_for(Duration::from_secs(15), || {
        let hooks: Vec<_> = receiver
            .requests()
            .into_iter()
            .filter(|r| r["json"]["event"] == "clap")
            .collect();
        (hooks.len() >= 5).then_some(hooks)
    })
    .unwrap_or_else(|| {
        panic!(
            "claps not delivered: {:?}\n{}",
            receiver.requests(),
            daemon.log_text()
        )
    });
    let body = &hooks[0]["json"];
    assert_eq!(body["source"], "file");
    assert!(body["timestamp"].as_str().unwrap().ends_with('Z'), "{body}");
    assert!(body["score"].as_f64().unwrap() > 0.0);
    let onsets: Vec<i64> = hooks
        .iter()
        .map(|h| h["json"]["onset_ms"].as_i64().unwrap())
        .collect();
    // The claps are 1 s apart in the recording, so their onsets are too (±150 ms).
    for pair in onsets.windows(2) {
        let gap = pair[1] - pair[0];
        assert!((850..=1150).contains(&gap), "clap onsets {onsets:?}");
    }
    // Clap-to-webhook latency, from the onset on the capture clock to the receiver's clock.
    common::print_webhook_latency("clap-to-webhook", &hooks);

    // Stored, and kept after a clean stop.
    let exit = daemon
        .signal_and_wait("TERM", Duration::from_secs(10))
        .unwrap();
    assert!(exit.success());
    let store = cav_actors::store::Store::open(&dir.path().join("data/store")).unwrap();
    let stored = store.latest_sound_events(100).unwrap();
    assert!(
        stored.iter().filter(|e| e.kind == "clap").count() >= 5,
        "{stored:?}"
    );
}
