//! History, statistics and exports over HTTP, on a store filled with a hand-built history whose
//! answers are known, served by the real daemon.

mod common;

use std::time::Duration;

use cav_actors::events::SoundEventRecord;
use cav_actors::messages::Classification;
use cav_actors::store::{Store, StoredClassification};
use cav_core::classify::{Classifier, RuleClassifier};
use cav_core::window::WindowSummary;
use cav_core::{ActivityClass, Timestamp};
use common::{get_json, wait_for, Daemon};
use serde_json::Value;

/// 2026-11-20T00:00:00Z.
const DAY0_MS: i64 = 1_795_132_800_000;
const MIN: i64 = 60_000;

fn window(
    start_ms: i64,
    end_ms: i64,
    class: ActivityClass,
    confidence: f32,
) -> StoredClassification {
    let summary = WindowSummary {
        start: Timestamp::from_millis(start_ms),
        end: Timestamp::from_millis(end_ms),
        spans: 10,
        video: None,
        audio: None,
        vision: None,
        sound: None,
        sub_windows: None,
    };
    let c = Classification {
        decision: RuleClassifier.classify(&summary),
        window: summary,
        classifier: "rules-v1".into(),
        source: "file".into(),
    };
    let mut stored = StoredClassification::from(&c);
    stored.activity = class;
    stored.confidence = confidence;
    stored
}

/// Local (+02:00) day 2026-11-20, in 10-minute windows:
/// - 06:00–08:00 local (04:00–06:00 UTC) asleep, 12 windows, confidence 0.8;
/// - 08:00–08:30 at_table, 3 windows, 0.6;
/// - 08:30–09:30 reading, 6 windows, 0.5;
/// - 20:00–20:20 on_phone, 2 windows, 0.9.
fn history() -> Vec<StoredClassification> {
    use ActivityClass::*;
    let local0 = DAY0_MS - 2 * 60 * MIN; // local midnight in UTC ms
    let mut out = Vec::new();
    let mut run = |from_min: i64, n: i64, class, conf| {
        for i in 0..n {
            let s = local0 + (from_min + i * 10) * MIN;
            out.push(window(s, s + 10 * MIN, class, conf));
        }
    };
    run(6 * 60, 12, Asleep, 0.8);
    run(8 * 60, 3, AtTable, 0.6);
    run(8 * 60 + 30, 6, Reading, 0.5);
    run(20 * 60, 2, OnPhone, 0.9);
    out
}

fn seed(data_dir: &std::path::Path) {
    let store = Store::open(&data_dir.join("store")).unwrap();
    store.import_windows(&history(), 60_000).unwrap();
    for (ms, source, kind) in [
        (DAY0_MS + 9 * 60 * MIN, "mic", "clap"),
        (DAY0_MS + 9 * 60 * MIN + 500, "mic", "clap"),
        (DAY0_MS + 10 * 60 * MIN, "kitchen", "dishes"),
    ] {
        store
            .put_sound_event(
                &SoundEventRecord {
                    source: source.into(),
                    kind: kind.into(),
                    onset_ms: ms,
                    end_ms: None,
                    score: 0.7,
                },
                None,
            )
            .unwrap();
    }
}

fn start(dir: &std::path::Path) -> Daemon {
    seed(&dir.join("data"));
    let daemon = Daemon::start(dir, &[("CAV_FILE__ENABLED", "false")]);
    wait_for(Duration::from_secs(30), || {
        get_json(&daemon.url("/api/health")).ok()
    })
    .unwrap_or_else(|| panic!("daemon not up:\n{}", daemon.log_text()));
    daemon
}

fn class<'a>(stats: &'a Value, name: &str) -> &'a Value {
    stats["classes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["class"] == name)
        .unwrap_or_else(|| panic!("no class {name} in {stats}"))
}

fn get_text(url: &str) -> (u16, String, String) {
    match ureq::get(url).call() {
        Ok(r) => {
            let ct = r.header("Content-Type").unwrap_or("").to_string();
            (r.status(), ct, r.into_string().unwrap())
        }
        Err(ureq::Error::Status(code, r)) => (code, String::new(), r.into_string().unwrap()),
        Err(e) => panic!("{url}: {e}"),
    }
}

#[test]
fn statistics_of_a_known_day_in_a_given_zone() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = start(dir.path());
    let (code, stats) =
        get_json(&daemon.url("/api/statistics?period=day&date=2026-11-20&tz=%2B02:00")).unwrap();
    assert_eq!(code, 200, "{stats}");
    assert_eq!(stats["period"], "day");
    assert_eq!(stats["start"], "2026-11-19T22:00:00.000Z");
    assert_eq!(stats["end"], "2026-11-20T22:00:00.000Z");
    assert_eq!(stats["windows"], 23);
    assert_eq!(stats["observed_s"], 230.0 * 60.0);
    assert_eq!(stats["most_frequent"], "asleep");
    assert_eq!(stats["inactive_s"], 120.0 * 60.0);
    assert_eq!(stats["active_s"], 110.0 * 60.0);
    let asleep = class(&stats, "asleep");
    assert_eq!(asleep["total_s"], 7200.0);
    assert_eq!(asleep["spans"], 1);
    assert_eq!(asleep["mean_span_s"], 7200.0);
    assert!((asleep["share"].as_f64().unwrap() - 120.0 / 230.0).abs() < 1e-9);
    assert!((asleep["mean_confidence"].as_f64().unwrap() - 0.8).abs() < 1e-6);
    let reading = class(&stats, "reading");
    assert_eq!(
        (reading["windows"].as_u64(), reading["total_s"].as_f64()),
        (Some(6), Some(3600.0))
    );
    assert_eq!(class(&stats, "busy")["total_s"], 0.0);
    assert!(class(&stats, "busy")["mean_span_s"].is_null());
    // Mean confidence over all 23 windows.
    let mean = (12.0 * 0.8 + 3.0 * 0.6 + 6.0 * 0.5 + 2.0 * 0.9) / 23.0;
    assert!((stats["mean_confidence"].as_f64().unwrap() - mean).abs() < 1e-6);
    // Hours are local: asleep fills 06 and 07; 08 is half at table, half reading; 09 half reading.
    let hourly = stats["hourly"].as_array().unwrap();
    assert_eq!(hourly.len(), 24);
    assert_eq!(hourly[6]["seconds"]["asleep"], 3600.0);
    assert_eq!(hourly[7]["seconds"]["asleep"], 3600.0);
    assert_eq!(hourly[8]["seconds"]["at_table"], 1800.0);
    assert_eq!(hourly[8]["seconds"]["reading"], 1800.0);
    assert_eq!(hourly[9]["seconds"]["reading"], 1800.0);
    assert_eq!(hourly[20]["seconds"]["on_phone"], 1200.0);
    assert_eq!(hourly[4]["seconds"]["asleep"], 0.0);
    // One day × 7 classes.
    let daily = stats["daily"].as_array().unwrap();
    assert_eq!(daily.len(), 7);
    assert!(daily.iter().all(|d| d["date"] == "2026-11-20"));

    // The same history seen from UTC: hours shift by two.
    let (_, utc) = get_json(
        &daemon.url("/api/statistics?start=2026-11-20T00:00:00Z&end=2026-11-21T00:00:00Z&tz=UTC"),
    )
    .unwrap();
    assert!(utc["period"].is_null());
    assert_eq!(utc["hourly"][4]["seconds"]["asleep"], 3600.0);
    assert_eq!(utc["hourly"][18]["seconds"]["on_phone"], 1200.0);

    // A range cutting windows: 07:45–08:45 local = 15 min asleep, 30 at table, 15 reading.
    let from = DAY0_MS - 2 * 60 * MIN + (7 * 60 + 45) * MIN;
    let (_, cut) = get_json(&daemon.url(&format!(
        "/api/statistics?start={from}&end={}&tz=%2B02:00",
        from + 60 * MIN
    )))
    .unwrap();
    assert_eq!(class(&cut, "asleep")["total_s"], 900.0);
    assert_eq!(class(&cut, "at_table")["total_s"], 1800.0);
    assert_eq!(class(&cut, "reading")["total_s"], 900.0);
    assert_eq!(class(&cut, "asleep")["spans"], 1);

    // A week with nothing in it: honest zeros.
    let (_, empty) =
        get_json(&daemon.url("/api/statistics?period=week&date=2020-01-01&tz=UTC")).unwrap();
    assert_eq!(empty["observed_s"], 0.0);
    assert_eq!(empty["windows"], 0);
    assert!(empty["most_frequent"].is_null());
    assert!(empty["mean_confidence"].is_null());
    assert_eq!(empty["hourly"].as_array().unwrap().len(), 24);
    assert_eq!(empty["daily"].as_array().unwrap().len(), 7 * 7);
    assert_eq!(
        empty["start"], "2019-12-30T00:00:00.000Z",
        "weeks start on Monday"
    );
}

#[test]
fn listings_page_and_filter_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = start(dir.path());

    let (code, page) = get_json(&daemon.url("/api/activities?limit=5")).unwrap();
    assert_eq!(code, 200);
    assert_eq!(page["total"], 23);
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 5);
    assert_eq!(items[0]["activity"], "on_phone");
    let starts: Vec<i64> = items
        .iter()
        .map(|i| i["start_ms"].as_i64().unwrap())
        .collect();
    assert!(starts.windows(2).all(|w| w[0] > w[1]), "{starts:?}");
    assert_eq!(items[0]["scores"].as_object().unwrap().len(), 7);
    assert!(items[0]["start"].as_str().unwrap().ends_with('Z'));

    let (_, reading) =
        get_json(&daemon.url("/api/activities?class=reading&limit=2&offset=4")).unwrap();
    assert_eq!(reading["total"], 6);
    assert_eq!(reading["items"].as_array().unwrap().len(), 2);
    assert_eq!(reading["offset"], 4);
    // Newest first: offsets 4 and 5 are the first two reading windows, 08:30 and 08:40 local.
    let local0 = DAY0_MS - 2 * 60 * MIN;
    assert_eq!(
        reading["items"][1]["start_ms"],
        local0 + (8 * 60 + 30) * MIN
    );

    // A time range in ISO-8601 and one in Unix ms.
    let (_, morning) =
        get_json(&daemon.url(
            "/api/activities?start=2026-11-20T06:00:00%2B02:00&end=2026-11-20T08:00:00%2B02:00",
        ))
        .unwrap();
    assert_eq!(morning["total"], 12);
    let (_, same) = get_json(&daemon.url(&format!(
        "/api/activities?start={}&end={}",
        local0 + 6 * 60 * MIN,
        local0 + 8 * 60 * MIN
    )))
    .unwrap();
    assert_eq!(same["total"], 12);

    let (_, spans) = get_json(&daemon.url("/api/spans")).unwrap();
    assert_eq!(spans["total"], 4);
    let first = &spans["items"][3];
    assert_eq!(first["activity"], "asleep");
    assert_eq!(first["duration_s"], 7200.0);
    assert_eq!(first["windows"], 12);
    let (_, late) =
        get_json(&daemon.url(&format!("/api/spans?start={}", local0 + (9 * 60) * MIN))).unwrap();
    // Reading (until 09:30) overlaps 09:00; on_phone comes later.
    assert_eq!(late["total"], 2);

    let (_, claps) = get_json(&daemon.url("/api/sound-events?label=clap&source=mic")).unwrap();
    assert_eq!(claps["total"], 2);
    assert_eq!(claps["items"][0]["onset_ms"], DAY0_MS + 9 * 60 * MIN + 500);
    assert_eq!(claps["items"][0]["label"], "clap");
    let (_, kitchen) = get_json(&daemon.url("/api/sound-events?source=kitchen")).unwrap();
    assert_eq!(kitchen["total"], 1);
    assert_eq!(kitchen["items"][0]["label"], "dishes");
}

#[test]
fn exports_stream_csv_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = start(dir.path());
    let (code, ct, csv) = get_text(&daemon.url("/api/export?kind=activities&format=csv"));
    assert_eq!(code, 200);
    assert!(ct.starts_with("text/csv"), "{ct}");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 24, "{csv}");
    assert!(lines[0].starts_with("start,end,start_ms,end_ms,activity,confidence,score_asleep"));
    assert!(lines[1].contains(",asleep,0.8,"), "{}", lines[1]);
    let header_cols = lines[0].split(',').count();
    assert!(lines[1..]
        .iter()
        .all(|l| l.split(',').count() == header_cols));

    let (code, ct, json) = get_text(&daemon.url(
        "/api/export?kind=spans&format=json&start=2026-11-20T00:00:00Z&end=2026-11-21T00:00:00Z",
    ));
    assert_eq!(code, 200);
    assert_eq!(ct, "application/json");
    let spans: Vec<Value> = serde_json::from_str(&json).unwrap();
    assert_eq!(spans.len(), 4);
    assert_eq!(spans[0]["activity"], "asleep", "oldest first");

    let (_, _, events) = get_text(&daemon.url("/api/export?kind=sound-events&format=csv"));
    assert_eq!(events.lines().count(), 4);
    assert_eq!(
        events.lines().next(),
        Some("onset,onset_ms,end_ms,source,label,score")
    );

    // The history page's filters apply to its exports.
    let (_, _, asleep) =
        get_text(&daemon.url("/api/export?kind=activities&format=csv&class=asleep"));
    let rows: Vec<&str> = asleep.lines().skip(1).collect();
    assert!(!rows.is_empty() && rows.len() < 23, "{asleep}");
    assert!(rows.iter().all(|l| l.contains(",asleep,")), "{asleep}");
    let (_, _, claps) =
        get_text(&daemon.url("/api/export?kind=sound-events&format=json&label=clap"));
    let claps: Vec<Value> = serde_json::from_str(&claps).unwrap();
    assert_eq!(claps.len(), 2);
    assert!(claps.iter().all(|e| e["label"] == "clap"));

    let (_, _, nothing) = get_text(&daemon.url("/api/export?kind=activities&start=0&end=1"));
    assert_eq!(
        serde_json::from_str::<Vec<Value>>(&nothing).unwrap().len(),
        0
    );
}

#[test]
fn bad_query_parameters_get_400_naming_the_parameter() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = start(dir.path());
    for (path, param) in [
        ("/api/activities?start=yesterday", "start"),
        ("/api/activities?start=2026-11-20T10:00:00", "start"),
        ("/api/activities?end=2026-13-01", "end"),
        ("/api/activities?start=100&end=50", "end"),
        ("/api/activities?class=sleeping", "class"),
        ("/api/activities?limit=5000", "limit"),
        ("/api/activities?offset=-1", "offset"),
        ("/api/activities?colour=red", "colour"),
        ("/api/spans?tz=Mars", "tz"),
        ("/api/sound-events?limit=x", "limit"),
        ("/api/statistics?period=decade", "period"),
        ("/api/statistics?period=day&start=0&end=10", "period"),
        ("/api/statistics?start=0", "end"),
        ("/api/export?format=csv", "kind"),
        ("/api/export?kind=everything", "kind"),
        ("/api/export?kind=spans&format=xml", "format"),
        ("/api/export?kind=spans&class=sleeping", "class"),
        ("/api/export?kind=spans&label=clap", "label"),
        ("/api/export?kind=sound-events&class=asleep", "class"),
    ] {
        let (code, body) = get_json(&daemon.url(path)).unwrap();
        assert_eq!(code, 400, "{path}: {body}");
        assert_eq!(body["status"], 400);
        let msg = body["error"].as_str().unwrap();
        assert!(msg.starts_with(&format!("{param}:")), "{path}: {msg}");
    }
}
