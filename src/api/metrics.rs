//! `GET /metrics`: the Prometheus text exposition (version 0.0.4) of the status board, the
//! metrics beside it, and the outbox.

use std::convert::Infallible;

use cav_actors::health::{ActorState, SourceState};
use cav_actors::metrics::Exposition;
use cav_core::ActivityClass;
use warp::http::{header, HeaderValue};
use warp::{Filter, Rejection};

use super::{ApiState, VERSION};

const SOURCE_STATES: [(SourceState, &str); 8] = [
    (SourceState::Starting, "starting"),
    (SourceState::Connecting, "connecting"),
    (SourceState::Running, "running"),
    (SourceState::Stalled, "stalled"),
    (SourceState::Reconnecting, "reconnecting"),
    (SourceState::Ended, "ended"),
    (SourceState::Error, "error"),
    (SourceState::Stopped, "stopped"),
];

/// Renders every metric.
pub fn render(s: &ApiState) -> String {
    let mut e = Exposition::new();
    e.family("cav_build_info", "gauge", "Version of the running daemon.")
        .sample("cav_build_info", &[("version", VERSION)], 1.0);
    e.family(
        "cav_uptime_seconds",
        "gauge",
        "Seconds since the daemon started.",
    )
    .sample("cav_uptime_seconds", &[], s.started.elapsed().as_secs_f64());

    let sources = s.board.sources();
    type Count = fn(&cav_actors::health::SourceSnapshot) -> u64;
    let per_source: [(&str, &str, Count); 6] = [
        ("cav_source_frames_total", "Video frames captured.", |x| {
            x.frames
        }),
        (
            "cav_source_frames_dropped_total",
            "Frames dropped because the analysis was behind.",
            |x| x.frames_dropped,
        ),
        (
            "cav_source_audio_chunks_total",
            "Audio chunks captured.",
            |x| x.audio_chunks,
        ),
        (
            "cav_source_audio_samples_total",
            "Audio samples captured (16 kHz mono).",
            |x| x.audio_samples,
        ),
        (
            "cav_source_audio_chunks_dropped_total",
            "Audio chunks dropped because the analysis was behind.",
            |x| x.audio_chunks_dropped,
        ),
        (
            "cav_source_decode_errors_total",
            "Undecodable packets or frames, skipped.",
            |x| x.decode_errors,
        ),
    ];
    for (name, help, count) in per_source {
        e.family(name, "counter", help);
        for (id, src) in &sources {
            e.sample(
                name,
                &[("source", id), ("kind", &src.status.kind)],
                count(src) as f64,
            );
        }
    }
    e.family(
        "cav_source_state",
        "gauge",
        "1 for the state each source is in, 0 for the others.",
    );
    for (id, src) in &sources {
        for (state, name) in &SOURCE_STATES {
            let on = if src.status.state == *state { 1.0 } else { 0.0 };
            e.sample("cav_source_state", &[("source", id), ("state", name)], on);
        }
    }
    e.family(
        "cav_source_level_dbfs",
        "gauge",
        "Level of each audio source over its last second, dBFS.",
    );
    for (id, src) in &sources {
        if let Some(level) = &src.status.level {
            e.sample(
                "cav_source_level_dbfs",
                &[("source", id)],
                level.dbfs as f64,
            );
        }
    }

    let p = s.board.counters().snapshot();
    let pipeline: [(&str, &str, u64); 5] = [
        (
            "cav_spans_total",
            "Aligned one-second spans analysed.",
            p.spans,
        ),
        (
            "cav_spans_dropped_total",
            "Spans dropped because the feature stage was behind.",
            p.spans_dropped,
        ),
        (
            "cav_sync_audio_dropped_total",
            "Audio chunks of the classifier's source dropped before sync.",
            p.sync_audio_dropped,
        ),
        (
            "cav_store_errors_total",
            "Failed store writes (retried).",
            p.store_errors,
        ),
        (
            "cav_delivery_errors_total",
            "Failed delivery attempts to the external service (retried).",
            p.delivery_errors,
        ),
    ];
    for (name, help, v) in pipeline {
        e.family(name, "counter", help).sample(name, &[], v as f64);
    }
    e.family(
        "cav_webhook_errors_total",
        "counter",
        "Failed webhook delivery attempts (retried).",
    )
    .sample("cav_webhook_errors_total", &[], p.webhook_errors as f64);

    let windows = s.board.metrics().windows_by_class.snapshot();
    e.family(
        "cav_windows_total",
        "counter",
        "Classification windows stored, by class.",
    );
    for class in ActivityClass::ALL {
        let n = windows
            .get(&vec![class.as_str().to_string()])
            .copied()
            .unwrap_or(0);
        e.sample("cav_windows_total", &[("class", class.as_str())], n as f64);
    }
    e.family(
        "cav_sound_events_total",
        "counter",
        "Sound events heard, by source and kind.",
    );
    for (labels, n) in s.board.metrics().sound_events.snapshot() {
        if let [source, kind] = labels.as_slice() {
            e.sample(
                "cav_sound_events_total",
                &[("source", source), ("kind", kind)],
                n as f64,
            );
        }
    }
    e.family(
        "cav_yamnet_inference_seconds",
        "histogram",
        "Wall time of each YAMNet run (all windows and onsets ready at once), by source.",
    );
    let m = s.board.metrics();
    for (source, h) in &cav_actors::metrics::Metrics::histograms(&m.yamnet_seconds) {
        e.histogram("cav_yamnet_inference_seconds", &[("source", source)], h);
    }
    e.family(
        "cav_vision_inference_seconds",
        "histogram",
        "Wall time of the vision models on one frame (pose_detector, faces, landmarks, total).",
    );
    for (model, h) in &cav_actors::metrics::Metrics::histograms(&m.vision_seconds) {
        e.histogram("cav_vision_inference_seconds", &[("model", model)], h);
    }
    e.family(
        "cav_vision_frames_total",
        "counter",
        "Frames the vision stage analysed.",
    )
    .sample("cav_vision_frames_total", &[], p.vision_frames as f64);
    e.family(
        "cav_vision_skipped_total",
        "counter",
        "Frames offered to the vision stage while it was busy (skipped).",
    )
    .sample("cav_vision_skipped_total", &[], p.vision_skipped as f64);

    match s.store.outbox_summary() {
        Ok(o) => {
            e.family(
                "cav_outbox_pending",
                "gauge",
                "Deliveries waiting in the outbox.",
            )
            .sample("cav_outbox_pending", &[], o.pending as f64);
            e.family(
                "cav_outbox_delivered_total",
                "counter",
                "Deliveries made (all time, from the store).",
            )
            .sample("cav_outbox_delivered_total", &[], o.delivered as f64);
            e.family(
                "cav_outbox_dead_lettered_total",
                "counter",
                "Deliveries refused for good (all time, from the store).",
            )
            .sample(
                "cav_outbox_dead_lettered_total",
                &[],
                o.dead_lettered as f64,
            );
            let now = chrono::Utc::now().timestamp_millis();
            e.family(
                "cav_outbox_oldest_pending_age_seconds",
                "gauge",
                "Age of the oldest pending delivery (0 when none).",
            )
            .sample(
                "cav_outbox_oldest_pending_age_seconds",
                &[],
                o.oldest_pending_ms
                    .map_or(0.0, |t| (now - t).max(0) as f64 / 1000.0),
            );
        }
        Err(err) => tracing::warn!(error = %err, "metrics: cannot read the outbox"),
    }
    e.family(
        "cav_stored_windows",
        "gauge",
        "Classification windows in the store.",
    )
    .sample(
        "cav_stored_windows",
        &[],
        s.store.classification_count() as f64,
    );

    let actors = s.board.actors();
    e.family(
        "cav_actor_restarts_total",
        "counter",
        "Restarts of each supervised actor after a failure.",
    );
    for (name, a) in &actors {
        e.sample(
            "cav_actor_restarts_total",
            &[("actor", name)],
            a.restarts as f64,
        );
    }
    e.family("cav_actor_up", "gauge", "1 when the actor is running.");
    for (name, a) in &actors {
        let up = if a.state == ActorState::Running {
            1.0
        } else {
            0.0
        };
        e.sample("cav_actor_up", &[("actor", name)], up);
    }
    e.finish()
}

pub fn routes(
    state: ApiState,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    warp::path!("metrics")
        .and(warp::get())
        .and(warp::any().map(move || state.clone()))
        .and_then(|s: ApiState| async move {
            let text = tokio::task::spawn_blocking(move || render(&s))
                .await
                .unwrap_or_default();
            let mut r = warp::reply::Response::new(text.into());
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            Ok::<_, Infallible>(r)
        })
}
