//! The HTTP API (warp): `/api/health`, `/api/status`, `/api/current-activity`, and the routes of
//! the submodules (OBS, sources, live events, history and statistics, exports).
//!
//! Every response is JSON, errors included (`{"error": .., "status": ..}` with a 4xx/5xx
//! code). Handlers only read the status board and the store; they never block on an actor.

// Handlers return `Result<T, Response>` so that `?`-style early returns carry a finished error
// response; it is built once per failed request, so boxing it would buy nothing.
#![allow(clippy::result_large_err)]

pub mod analyses;
pub mod auth;
pub mod classify_now;
pub mod clips;
pub mod dto;
pub mod export;
pub mod frame;
pub mod history;
pub mod live;
pub mod metrics;
pub mod obs;
pub mod settings;
pub mod snapshot;
pub mod sources;
pub mod ui;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Instant;

use cav_actors::delivery::iso8601;
use cav_actors::health::StatusBoard;
use cav_actors::store::Store;
use warp::http::StatusCode;
use warp::{Filter, Rejection, Reply};

use dto::{CurrentActivityDto, ErrorDto, HealthDto, StatusDto};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// What the handlers can see.
#[derive(Clone)]
pub struct ApiState {
    pub board: StatusBoard,
    pub store: Store,
    pub started: Instant,
    pub started_at_ms: i64,
    pub window_s: f64,
    /// The OBS source, when enabled.
    pub obs: Option<actix::Addr<cav_actors::actor::obs_source::ObsSource>>,
    /// The configuration and the audio sources it runs.
    pub sources: sources::SourcesState,
    /// The API token, if any.
    pub access: auth::Access,
    /// Origins allowed to call the API from a browser (CORS); empty: CORS off.
    pub cors_origins: Vec<String>,
    /// Background analyses of media files.
    pub jobs: cav_actors::jobs::Jobs,
    pub analysis: crate::config::AnalysisConfig,
    /// The sync stage, which keeps the last seconds for clips.
    pub sync: actix::Addr<cav_actors::actor::sync::SyncActor>,
    /// Where clips are saved.
    pub captures_dir: std::path::PathBuf,
    /// Asks the daemon loop to reload the configuration file (after `PUT /api/settings`);
    /// `None` when no daemon loop listens.
    pub reload: Option<settings::ReloadSender>,
    /// The classifier stage (`POST /api/classify-now`).
    pub classifier: actix::Addr<cav_actors::actor::classifier::ClassifierActor>,
    /// Set when this API instance shuts down (SIGTERM, or a reload that replaces it): open
    /// event streams end then, so that browsers reconnect to the API that replaces it.
    pub shutdown: Shutdown,
}

/// The shutdown of one API instance, seen by its long-lived responses (the SSE streams).
/// `Shutdown::new` gives the trigger (send `true`, or drop it) and the signal.
#[derive(Clone, Debug)]
pub struct Shutdown(tokio::sync::watch::Receiver<bool>);

impl Shutdown {
    pub fn new() -> (tokio::sync::watch::Sender<bool>, Self) {
        let (tx, rx) = tokio::sync::watch::channel(false);
        (tx, Self(rx))
    }

    /// Resolves once the API shuts down (or its trigger is gone).
    pub async fn wait(mut self) {
        let _ = self.0.wait_for(|down| *down).await;
    }
}

/// Largest request body accepted, in bytes.
pub const BODY_LIMIT: u64 = 64 * 1024;

pub(crate) fn json_error(status: StatusCode, error: impl Into<String>) -> warp::reply::Response {
    warp::reply::with_status(
        warp::reply::json(&ErrorDto {
            error: error.into(),
            status: status.as_u16(),
        }),
        status,
    )
    .into_response()
}

pub fn routes(state: ApiState) -> warp::filters::BoxedFilter<(warp::reply::Response,)> {
    let guard = auth::guard(state.access.clone());
    let cors_origins = state.cors_origins.clone();
    let metrics_routes = metrics::routes(state.clone());
    let analysis_routes = analyses::routes(state.clone());
    let clip_routes = clips::routes(state.clone());
    let obs_routes = obs::routes(state.clone());
    let source_routes = sources::routes(state.clone());
    let live_routes = live::routes(state.clone());
    let history_routes = history::routes(state.clone());
    let ui_routes = ui::routes(state.clone());
    let settings_routes = settings::routes(state.clone());
    let snapshot_routes = snapshot::routes(state.clone());
    let frame_routes = frame::routes(state.clone());
    let classify_now_routes = classify_now::routes(state.clone());
    let with_state = warp::any().map(move || state.clone());

    let health = warp::path!("api" / "health").and(warp::get()).map(|| {
        warp::reply::json(&HealthDto {
            status: "ok",
            version: VERSION,
        })
    });

    let current = warp::path!("api" / "current-activity")
        .and(warp::get())
        .and(with_state.clone())
        .map(|s: ApiState| {
            warp::reply::json(&CurrentActivityDto::from_classification(
                s.board.current().as_ref(),
            ))
        });

    let status = warp::path!("api" / "status")
        .and(warp::get())
        .and(with_state)
        .map(|s: ApiState| warp::reply::json(&status_dto(&s)));

    // The web pages check the token themselves (a login page instead of a JSON 401).
    let all = ui_routes
        .or(guard.and(
            health
                .or(current)
                .or(status)
                .or(obs_routes)
                .or(source_routes)
                .or(live_routes)
                .or(history_routes)
                .or(metrics_routes)
                .or(analysis_routes)
                .or(clip_routes)
                .or(settings_routes)
                .or(snapshot_routes)
                .or(frame_routes)
                .or(classify_now_routes),
        ))
        .recover(handle_rejection)
        .with(warp::log::custom(|info| {
            tracing::debug!(method = %info.method(), path = info.path(), status = info.status().as_u16(), "http");
        }))
        .map(warp::reply::Reply::into_response);
    if cors_origins.is_empty() {
        all.boxed()
    } else {
        let cors = warp::cors()
            .allow_origins(cors_origins.iter().map(String::as_str))
            .allow_methods(["GET", "POST", "PUT", "DELETE"])
            .allow_headers(["authorization", "content-type"]);
        all.with(cors)
            .map(warp::reply::Reply::into_response)
            .boxed()
    }
}

fn status_dto(s: &ApiState) -> StatusDto {
    StatusDto {
        version: VERSION,
        started_at: iso8601(s.started_at_ms),
        uptime_s: s.started.elapsed().as_secs_f64(),
        window_s: s.window_s,
        actors: s.board.actors(),
        sources: s.board.sources(),
        pipeline: s.board.counters().snapshot(),
        stored_classifications: s.store.classification_count(),
        last_classification: s
            .board
            .current()
            .as_ref()
            .map(|c| CurrentActivityDto::from_classification(Some(c))),
        latest_span: s.board.latest_span(),
        av_sync: s.board.av_sync(),
        vision: s.board.vision().map(dto::VisionDto::from),
    }
}

async fn handle_rejection(err: Rejection) -> Result<warp::reply::Response, Infallible> {
    // Order matters: warp merges the rejections of every route that was tried, so a body error
    // on the POST route must win over the GET route's "method not allowed".
    let reply = if let Some(e) = err.find::<auth::Unauthorized>() {
        let mut r = json_error(StatusCode::UNAUTHORIZED, e.reason);
        r.headers_mut().insert(
            warp::http::header::WWW_AUTHENTICATE,
            warp::http::HeaderValue::from_static("Bearer"),
        );
        r
    } else if let Some(e) = err.find::<warp::filters::body::BodyDeserializeError>() {
        json_error(StatusCode::BAD_REQUEST, format!("invalid body: {e}"))
    } else if err.find::<warp::reject::PayloadTooLarge>().is_some() {
        json_error(StatusCode::PAYLOAD_TOO_LARGE, "request body too large")
    } else if err.find::<warp::reject::UnsupportedMediaType>().is_some() {
        json_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the body as JSON (Content-Type: application/json)",
        )
    } else if err.find::<warp::reject::LengthRequired>().is_some() {
        json_error(
            StatusCode::LENGTH_REQUIRED,
            "a Content-Length header is required",
        )
    } else if let Some(e) = err.find::<warp::reject::InvalidQuery>() {
        json_error(StatusCode::BAD_REQUEST, format!("invalid query: {e}"))
    } else if err.is_not_found() {
        json_error(StatusCode::NOT_FOUND, "no such endpoint")
    } else if err.find::<warp::reject::MethodNotAllowed>().is_some() {
        json_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed for this endpoint",
        )
    } else {
        tracing::warn!(rejection = ?err, "unhandled rejection");
        json_error(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
    };
    Ok(reply)
}

/// Binds the API; errors (address in use, permission) are returned, not panicked on. The server
/// stops accepting when `state.shutdown` fires, and its future ends once the requests in flight
/// are answered (the event streams end on the same signal).
pub fn bind(
    addr: SocketAddr,
    state: ApiState,
) -> Result<(SocketAddr, impl std::future::Future<Output = ()>), warp::Error> {
    let shutdown = state.shutdown.clone().wait();
    warp::serve(routes(state)).try_bind_with_graceful_shutdown(addr, shutdown)
}
