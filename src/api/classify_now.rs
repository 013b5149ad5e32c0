//! `POST /api/classify-now`: the classification of what the current, still open window holds
//! so far — the spans gathered since it started — without closing the window or storing the
//! result (the model-testing page's "classify now").

use std::convert::Infallible;

use cav_actors::actor::classifier::ClassifyNow;
use warp::http::StatusCode;
use warp::{Filter, Rejection, Reply};

use super::dto::CurrentActivityDto;
use super::{json_error, ApiState};

type Response = warp::reply::Response;

async fn classify_now(s: ApiState) -> Response {
    let c = match s.classifier.send(ClassifyNow).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            return json_error(
                StatusCode::CONFLICT,
                "no span gathered yet in the current window; try again in a second",
            )
        }
        Err(e) => {
            tracing::warn!(error = %e, "the classifier did not answer classify-now");
            return json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the pipeline is not running (restarting?)",
            );
        }
    };
    let spans = c.window.spans;
    let mut body =
        serde_json::to_value(CurrentActivityDto::from_classification(Some(&c))).unwrap_or_default();
    if let Some(o) = body.as_object_mut() {
        o.insert("partial".into(), true.into());
        o.insert("spans".into(), spans.into());
    }
    warp::reply::json(&body).into_response()
}

pub fn routes(state: ApiState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "classify-now")
        .and(warp::post())
        .and(warp::any().map(move || state.clone()))
        .and_then(|s: ApiState| async move { Ok::<_, Infallible>(classify_now(s).await) })
}
