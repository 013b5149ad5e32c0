//! The durable outbox against a real HTTP receiver (tests/tools/webhook_receiver.py, Python's
//! http.server): a receiver that is down, then failing, then well gets every result exactly once
//! and in order; a receiver that refuses for good dead-letters without blocking; and a daemon
//! killed with SIGKILL while it writes and delivers loses nothing it acknowledged.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use cav_actors::store::{Store, StoredClassification, TimeRange};
use common::{free_port, get_json, wait_for, Daemon, Receiver};
use serde_json::Value;

/// The settings shared by these tests: 1-s windows of the demo clip, every window delivered,
/// fast retries, no hearing (not under test, and it would slow the windows down).
fn env(url: &str) -> Vec<(&'static str, String)> {
    vec![
        ("CAV_CLASSIFIER__WINDOW_S", "1".into()),
        ("CAV_EXTERNAL_SERVICE__URL", url.into()),
        ("CAV_EXTERNAL_SERVICE__INTERVAL_S", "0".into()),
        ("CAV_EXTERNAL_SERVICE__TIMEOUT_S", "2".into()),
        ("CAV_OUTBOX__BACKOFF_INITIAL_S", "0.2".into()),
        ("CAV_OUTBOX__BACKOFF_MAX_S", "1".into()),
        ("CAV_HEARING__ENABLED", "false".into()),
    ]
}

fn start(dir: &std::path::Path, env: &[(&'static str, String)]) -> Daemon {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let daemon = Daemon::start(dir, &env);
    wait_for(Duration::from_secs(30), || {
        get_json(&daemon.url("/api/health")).ok()
    })
    .unwrap_or_else(|| panic!("daemon not up:\n{}", daemon.log_text()));
    daemon
}

fn outbox(daemon: &Daemon) -> Value {
    get_json(&daemon.url("/api/outbox")).unwrap().1
}

/// The idempotency key the store gives a window.
fn key(store: &Store, w: &StoredClassification) -> String {
    format!("{}-window-{}-{}", store.instance(), w.start_ms, w.end_ms)
}

/// Stored windows, oldest first.
fn stored_windows(store: &Store) -> Vec<StoredClassification> {
    store
        .iter_activities(TimeRange::all())
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Requests the receiver accepted (2xx), in arrival order.
fn accepted(receiver: &Receiver) -> Vec<Value> {
    receiver
        .requests()
        .into_iter()
        .filter(|r| {
            r["status"]
                .as_u64()
                .is_some_and(|s| (200..300).contains(&s))
        })
        .collect()
}

fn header_key(r: &Value) -> String {
    r["headers"]["Idempotency-Key"]
        .as_str()
        .expect("every delivery has an Idempotency-Key")
        .to_string()
}

#[test]
fn a_receiver_down_then_failing_then_well_gets_every_result_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/in");
    let mut env = env(&url);
    // 40 s of demo, played once: a known number of windows.
    env.push(("CAV_FILE__LOOP", "false".into()));
    let mut daemon = start(dir.path(), &env);

    // Down: nothing listens; results pile up in the outbox with the reason.
    let down = wait_for(Duration::from_secs(30), || {
        let o = outbox(&daemon);
        (o["pending"].as_u64()? >= 3).then_some(o)
    })
    .unwrap_or_else(|| panic!("nothing pending:\n{}", daemon.log_text()));
    let error = down["destinations"][0]["last_error"].as_str().unwrap_or("");
    assert!(error.to_lowercase().contains("refused"), "{down}");
    assert_eq!(down["destinations"][0]["destination"], "external");
    assert!(down["oldest_pending_age_s"].as_f64().unwrap() > 0.0);

    // Up but failing: the first 5 requests get HTTP 500, then all is well.
    let receiver = Receiver::start_with(dir.path(), port, &["--fail-first", "5"]);
    // The clip ends after 40 s; wait until everything is delivered.
    let done = wait_for(Duration::from_secs(120), || {
        let o = outbox(&daemon);
        let (_, page) = get_json(&daemon.url("/api/activities?limit=1")).ok()?;
        let stored = page["total"].as_u64()?;
        let windows =
            get_json(&daemon.url("/api/status")).ok()?.1["pipeline"]["windows"].as_u64()?;
        let finished = get_json(&daemon.url("/api/status")).ok()?.1["sources"]["file"]["state"]
            .as_str()
            .map(str::to_string)?;
        (finished == "ended"
            && stored >= 30
            && stored == windows
            && o["pending"] == 0
            && o["delivered"].as_u64()? == stored)
            .then_some(o)
    })
    .unwrap_or_else(|| {
        panic!(
            "not all delivered: {}\n{}",
            outbox(&daemon),
            daemon.log_text()
        )
    });
    assert_eq!(done["dead_lettered"], 0);
    let exit = daemon
        .signal_and_wait("TERM", Duration::from_secs(10))
        .expect("exit");
    assert!(exit.success());

    let store = Store::open(&dir.path().join("data/store")).unwrap();
    let windows = stored_windows(&store);
    let expected: Vec<String> = windows.iter().map(|w| key(&store, w)).collect();
    let requests = receiver.requests();
    assert_eq!(
        requests.iter().filter(|r| r["status"] == 500).count(),
        5,
        "the receiver failed the first 5"
    );
    let got: Vec<String> = accepted(&receiver).iter().map(header_key).collect();
    assert_eq!(got, expected, "every window once, in order");
    // The failed attempts were retried with the same key.
    for r in requests.iter().filter(|r| r["status"] == 500) {
        assert!(expected.contains(&header_key(r)));
    }
    let first = &accepted(&receiver)[0]["json"];
    assert_eq!(first["activity"], windows[0].activity.to_string());
    assert_eq!(first["window"]["start"].as_str().unwrap().len(), 24);
    assert!(first["features"].is_object());
}

#[test]
fn a_refusing_receiver_dead_letters_each_result_without_blocking_the_queue() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(dir.path(), 422);
    let mut daemon = start(dir.path(), &env(&receiver.url));
    let o = wait_for(Duration::from_secs(40), || {
        let o = outbox(&daemon);
        (o["dead_lettered"].as_u64()? >= 3).then_some(o)
    })
    .unwrap_or_else(|| {
        panic!(
            "no dead letters: {}\n{}",
            outbox(&daemon),
            daemon.log_text()
        )
    });
    let dead = &o["dead_letters"][0];
    assert_eq!(dead["status"], 422);
    assert!(dead["reason"].as_str().unwrap().contains("422"), "{dead}");
    assert_eq!(dead["attempts"], 1, "a 4xx is not retried");
    assert_eq!(o["delivered"], 0);
    // One request per result: nothing retried.
    let keys: Vec<String> = receiver.requests().iter().map(header_key).collect();
    let unique: HashSet<&String> = keys.iter().collect();
    assert_eq!(unique.len(), keys.len());
    daemon.signal_and_wait("TERM", Duration::from_secs(10));
}

#[test]
fn sigkill_while_writing_and_delivering_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    // A slow receiver (0.3 s per request): a kill is likely to land mid-delivery.
    let receiver = Receiver::start_with(dir.path(), 0, &["--delay", "0.3"]);
    let env = env(&receiver.url);
    let mut acknowledged: HashSet<(i64, i64)> = HashSet::new();
    let remember = |daemon: &Daemon, acknowledged: &mut HashSet<(i64, i64)>| {
        if let Ok((200, page)) = get_json(&daemon.url("/api/activities?limit=1000")) {
            for i in page["items"].as_array().unwrap() {
                acknowledged.insert((
                    i["start_ms"].as_i64().unwrap(),
                    i["end_ms"].as_i64().unwrap(),
                ));
            }
        }
    };
    let kills = 2;
    for round in 0..kills {
        let mut daemon = start(dir.path(), &env);
        // Let it write and deliver for a while, reading what the API shows.
        for _ in 0..20 {
            std::thread::sleep(Duration::from_millis(300));
            remember(&daemon, &mut acknowledged);
        }
        assert!(
            !acknowledged.is_empty(),
            "round {round}:\n{}",
            daemon.log_text()
        );
        daemon
            .signal_and_wait("KILL", Duration::from_secs(5))
            .expect("killed");
    }
    // A last run lets the outbox drain, then stops cleanly.
    let mut daemon = start(dir.path(), &env);
    // Everything shown before the kills is still there.
    let (_, page) = get_json(&daemon.url("/api/activities?limit=1000")).unwrap();
    let now: HashSet<(i64, i64)> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["start_ms"].as_i64().unwrap(),
                i["end_ms"].as_i64().unwrap(),
            )
        })
        .collect();
    let lost: Vec<_> = acknowledged.difference(&now).collect();
    assert!(lost.is_empty(), "acknowledged windows lost: {lost:?}");
    let drained = wait_for(Duration::from_secs(60), || {
        let o = outbox(&daemon);
        (o["pending"] == 0 && o["delivered"].as_u64()? > 0).then_some(o)
    });
    // Windows keep coming; stop the source side by stopping the daemon, then count.
    assert!(
        drained.is_some(),
        "outbox did not drain: {}",
        outbox(&daemon)
    );
    daemon.signal_and_wait("TERM", Duration::from_secs(10));

    let store = Store::open(&dir.path().join("data/store")).unwrap();
    let pending = store.outbox_summary().unwrap().pending as usize;
    let windows = stored_windows(&store);
    let expected: Vec<String> = windows.iter().map(|w| key(&store, w)).collect();
    let accepted = accepted(&receiver);
    let first_time: Vec<String> = accepted
        .iter()
        .filter(|r| r["duplicate"] == false)
        .map(header_key)
        .collect();
    // Every stored window was accepted exactly once, in order, except the newest few still
    // pending when the last run stopped (they stay queued for the next start).
    assert_eq!(first_time.len() + pending, expected.len());
    assert_eq!(first_time[..], expected[..first_time.len()]);
    // A kill between a 2xx and its record repeats that one delivery with the same key, which
    // an idempotent receiver ignores: at most one per kill.
    let repeats = accepted.iter().filter(|r| r["duplicate"] == true).count();
    println!(
        "kills: {kills}, windows: {}, delivered: {}, repeated deliveries: {repeats}, pending: {pending}",
        expected.len(),
        first_time.len()
    );
    assert!(
        repeats <= kills,
        "{repeats} repeated deliveries for {kills} kills"
    );
}
