//! `/api/events` (Server-Sent Events), `/api/sound/labels`, and `/api/webhooks/test`.

use std::convert::Infallible;
use std::time::Duration;

use cav_actors::delivery::{iso8601, post_json, EventWebhookPayload};
use cav_actors::events::LiveEvent;
use futures_util::stream::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;
use warp::http::StatusCode;
use warp::{Filter, Rejection, Reply};

use super::{json_error, ApiState, BODY_LIMIT};

/// `GET /api/events?types=labels,sound_event,activity&source=ID`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// Comma-separated event types to receive; all when absent.
    #[serde(default)]
    pub types: Option<String>,
    /// Only events of this source (activity events have no source and always pass).
    #[serde(default)]
    pub source: Option<String>,
}

const TYPES: [&str; 3] = ["activity", "labels", "sound_event"];

fn wanted(q: &EventsQuery, e: &LiveEvent) -> bool {
    let type_ok = q
        .types
        .as_deref()
        .is_none_or(|t| t.split(',').any(|t| t.trim() == e.name()));
    let source_ok = match (&q.source, e) {
        (None, _) | (_, LiveEvent::Activity { .. }) => true,
        (Some(want), LiveEvent::Labels { source, .. }) => want == source,
        (Some(want), LiveEvent::SoundEvent(r)) => *want == r.source,
    };
    type_ok && source_ok
}

/// `POST /api/webhooks/test`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookTest {
    pub url: String,
    #[serde(default)]
    pub source: Option<String>,
}

#[derive(Debug, Serialize)]
struct WebhookTestResult {
    url: String,
    status: u16,
}

#[derive(Debug, Serialize)]
struct LabelsDto {
    sources: std::collections::BTreeMap<String, cav_actors::events::LabelsReading>,
}

pub fn routes(
    state: ApiState,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    let st = warp::any().map(move || state.clone());

    let events = warp::path!("api" / "events")
        .and(warp::get())
        .and(warp::query::<EventsQuery>())
        .and(st.clone())
        .map(|q: EventsQuery, state: ApiState| {
            if let Some(bad) = q
                .types
                .as_deref()
                .and_then(|t| t.split(',').map(str::trim).find(|t| !TYPES.contains(t)))
            {
                return json_error(
                    StatusCode::BAD_REQUEST,
                    format!("types: {bad:?} is not one of activity, labels, sound_event"),
                );
            }
            let rx = state.board.bus().subscribe();
            // The stream ends when this API shuts down: a reload starts a new API (with a new
            // pipeline and event bus), and a stream left open here would stay silent forever
            // instead of letting the browser's EventSource reconnect to the new one.
            let shutdown = state.shutdown.clone().wait();
            let stream = futures_util::stream::unfold((rx, q), |(mut rx, q)| async move {
                loop {
                    match rx.recv().await {
                        Ok(e) if wanted(&q, &e) => {
                            let event = warp::sse::Event::default()
                                .event(e.name())
                                .json_data(&e)
                                .unwrap_or_else(|_| {
                                    warp::sse::Event::default().comment("unserialisable event")
                                });
                            return Some((Ok::<_, Infallible>(event), (rx, q)));
                        }
                        Ok(_) => continue,
                        // A slow client is told how many events it missed, then goes on.
                        Err(RecvError::Lagged(n)) => {
                            let event = warp::sse::Event::default()
                                .event("lagged")
                                .data(n.to_string());
                            return Some((Ok(event), (rx, q)));
                        }
                        Err(RecvError::Closed) => return None,
                    }
                }
            });
            warp::sse::reply(
                warp::sse::keep_alive()
                    .interval(Duration::from_secs(15))
                    .stream(stream.take_until(shutdown).boxed()),
            )
            .into_response()
        });

    let labels = warp::path!("api" / "sound" / "labels")
        .and(warp::get())
        .and(st)
        .map(|state: ApiState| {
            warp::reply::json(&LabelsDto {
                sources: state.board.labels(),
            })
            .into_response()
        });

    let test = warp::path!("api" / "webhooks" / "test")
        .and(warp::post())
        .and(warp::body::content_length_limit(BODY_LIMIT))
        .and(warp::body::json::<WebhookTest>())
        .then(|body: WebhookTest| async move {
            if !(body.url.starts_with("http://") || body.url.starts_with("https://")) {
                return json_error(
                    StatusCode::BAD_REQUEST,
                    format!("url: {:?} is not an http:// or https:// URL", body.url),
                );
            }
            let now = chrono::Utc::now().timestamp_millis();
            let payload = EventWebhookPayload {
                event: "test".into(),
                source: body.source.unwrap_or_else(|| "test".into()),
                timestamp: iso8601(now),
                onset_ms: now,
                score: 1.0,
                end_ms: None,
            };
            let url = body.url.clone();
            let sent = actix_rt::task::spawn_blocking(move || {
                let agent = ureq::AgentBuilder::new()
                    .timeout(Duration::from_secs(10))
                    .build();
                post_json(&agent, &url, &payload)
            })
            .await;
            match sent {
                Ok(Ok(status)) => warp::reply::json(&WebhookTestResult {
                    url: body.url,
                    status,
                })
                .into_response(),
                Ok(Err(cav_actors::delivery::DeliveryError::Status { status, .. })) => {
                    warp::reply::with_status(
                        warp::reply::json(&WebhookTestResult {
                            url: body.url,
                            status,
                        }),
                        StatusCode::BAD_GATEWAY,
                    )
                    .into_response()
                }
                Ok(Err(e)) => json_error(StatusCode::BAD_GATEWAY, e.to_string()),
                Err(_) => json_error(StatusCode::INTERNAL_SERVER_ERROR, "the test request failed"),
            }
        });

    events.or(labels).unify().or(test).unify()
}
