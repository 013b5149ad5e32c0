//! Analyses of whole media files, directly or through an OBS media source: `POST /api/analyses`, `GET /api/analyses[/{id}]`,
//! `DELETE /api/analyses/{id}`, `GET /api/analyses/{id}/export?format=csv|json`, and
//! `GET /api/media` (the files that may be analysed).
//!
//! Invariant: a file is read only when its canonical path lies inside a canonical
//! `analysis.media_dirs` folder, so `..`, symlinks and absolute paths cannot reach anything else.

use std::collections::HashMap;
use std::convert::Infallible;
use std::path::{Path, PathBuf};

use cav_actors::analysis::Sampling;
use cav_actors::analysis_obs::{media_input, MEDIA_SOURCE_KIND};
use cav_actors::delivery::iso8601;
use cav_actors::obs::ObsError;
use cav_actors::store::{AnalysisInput, AnalysisRecord, AnalysisStatus};
use cav_core::ActivityClass;
use serde::{Deserialize, Serialize};
use warp::http::{header, HeaderValue, StatusCode};
use warp::{Filter, Rejection, Reply};

use super::{json_error, ApiState, BODY_LIMIT};

type Response = warp::reply::Response;

/// `POST /api/analyses`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAnalysis {
    /// A media file: relative to a media folder, or an absolute path inside one.
    #[serde(default)]
    pub file: Option<String>,
    /// An OBS media source (`ffmpeg_source`) to analyse through OBS: its pictures from OBS,
    /// its sound from its file (the source's `local_file`, or `file` when given, e.g. a copy
    /// of what a remote OBS plays). Either way the file must lie in the media folders.
    #[serde(default)]
    pub source: Option<String>,
    /// Seconds between samples (default `analysis.interval_s`).
    #[serde(default)]
    pub interval_s: Option<f64>,
    /// Analyse one sample at this time instead of the whole file.
    #[serde(default)]
    pub at_s: Option<f64>,
}

/// An analysis as the API shows it.
#[derive(Debug, Serialize)]
pub struct AnalysisDto {
    #[serde(flatten)]
    pub record: AnalysisRecord,
    pub created: String,
    pub elapsed_s: Option<f64>,
    /// Seconds until done, estimated from the progress so far.
    pub eta_s: Option<f64>,
}

impl AnalysisDto {
    fn new(record: AnalysisRecord, now_ms: i64) -> Self {
        let elapsed_s = record
            .started_ms
            .map(|s| (record.finished_ms.unwrap_or(now_ms) - s).max(0) as f64 / 1000.0);
        let eta_s = match (record.status, elapsed_s) {
            (AnalysisStatus::Running, Some(e)) if record.progress > 0.0 => {
                Some(e * (100.0 - record.progress) / record.progress)
            }
            (AnalysisStatus::Done, _) => Some(0.0),
            _ => None,
        };
        Self {
            created: iso8601(record.created_ms),
            record,
            elapsed_s,
            eta_s,
        }
    }
}

#[derive(Debug, Serialize)]
struct MediaFileDto {
    /// Relative to its media folder: what `file` takes.
    file: String,
    folder: String,
    bytes: u64,
}

/// Why a path was refused.
#[derive(Debug, PartialEq)]
pub enum PathRefusal {
    NotFound(String),
    Outside(String),
}

/// Resolves a requested file inside the media folders; see the module invariant.
pub fn resolve_media(dirs: &[PathBuf], requested: &str) -> Result<PathBuf, PathRefusal> {
    let requested_path = Path::new(requested);
    let candidates: Vec<PathBuf> = if requested_path.is_absolute() {
        vec![requested_path.to_path_buf()]
    } else {
        dirs.iter().map(|d| d.join(requested_path)).collect()
    };
    let roots: Vec<PathBuf> = dirs
        .iter()
        .filter_map(|d| std::fs::canonicalize(d).ok())
        .collect();
    let mut outside = false;
    for c in candidates {
        let Ok(real) = std::fs::canonicalize(&c) else {
            continue;
        };
        if !roots.iter().any(|r| real.starts_with(r)) {
            outside = true;
            continue;
        }
        if real.is_file() {
            return Ok(real);
        }
    }
    if outside {
        Err(PathRefusal::Outside(format!(
            "{requested:?} is outside the media folders (analysis.media_dirs)"
        )))
    } else {
        Err(PathRefusal::NotFound(format!(
            "no such file in the media folders: {requested:?}"
        )))
    }
}

fn create(s: &ApiState, body: NewAnalysis) -> Result<Response, Response> {
    let bad =
        |field: &str, msg: String| json_error(StatusCode::BAD_REQUEST, format!("{field}: {msg}"));
    let source = match body.source.as_deref().map(str::trim) {
        Some("") => return Err(bad("source", "must name an OBS media source".into())),
        other => other,
    };
    let file = body
        .file
        .as_deref()
        .map(str::trim)
        .filter(|f| !f.is_empty());
    if source.is_none() && file.is_none() {
        return Err(bad(
            "file",
            "required: a media file in the media folders (or \"source\": an OBS media source)"
                .into(),
        ));
    }
    let sampling = match (body.at_s, body.interval_s) {
        (Some(_), Some(_)) => {
            return Err(bad(
                "at_s",
                "give either at_s (one sample) or interval_s, not both".into(),
            ))
        }
        (Some(t), None) => {
            if !(t.is_finite() && t >= 0.0) {
                return Err(bad(
                    "at_s",
                    format!("must be a time in seconds ≥ 0, got {t}"),
                ));
            }
            Sampling::At { t_s: t }
        }
        (None, interval) => {
            let i = interval.unwrap_or(s.analysis.interval_s);
            if !(i.is_finite() && (1.0..=86_400.0).contains(&i)) {
                return Err(bad(
                    "interval_s",
                    format!("must be between 1 and 86400 seconds, got {i}"),
                ));
            }
            Sampling::Every { interval_s: i }
        }
    };
    let (field, file) = match (source, file) {
        (Some(source), file) => {
            let played = obs_media_file(s, source)?;
            match file {
                Some(f) => ("file", f.to_string()),
                None => ("source", played),
            }
        }
        (None, Some(f)) => ("file", f.to_string()),
        (None, None) => return Err(bad("file", "required".into())),
    };
    let path = match resolve_media(&s.analysis.media_dirs, &file) {
        Ok(p) => p,
        Err(PathRefusal::NotFound(m)) => {
            return Err(json_error(StatusCode::NOT_FOUND, format!("{field}: {m}")))
        }
        Err(PathRefusal::Outside(m)) => {
            return Err(json_error(StatusCode::FORBIDDEN, format!("{field}: {m}")))
        }
    };
    let path = path.display().to_string();
    let input = match source {
        Some(source) => AnalysisInput::Obs {
            source: source.to_string(),
            path,
        },
        None => AnalysisInput::File { path },
    };
    let record = s
        .jobs
        .start(input, sampling)
        .map_err(|e| json_error(StatusCode::INTERNAL_SERVER_ERROR, format!("store: {e}")))?;
    let dto = AnalysisDto::new(record, chrono::Utc::now().timestamp_millis());
    Ok(warp::reply::with_status(warp::reply::json(&dto), StatusCode::ACCEPTED).into_response())
}

/// The local file that the OBS media source `source` plays. OBS unreachable → 503; no such
/// input → 404; not a media source, or one playing no local file → 400; OBS refusing → 502.
fn obs_media_file(s: &ApiState, source: &str) -> Result<String, Response> {
    let Some(obs) = s.jobs.obs_settings() else {
        return Err(json_error(
            StatusCode::CONFLICT,
            "source: OBS is not configured ([obs] host and port)",
        ));
    };
    let input = media_input(obs, source).map_err(|e| {
        let status = match e {
            ObsError::SourceNotFound { .. } => StatusCode::NOT_FOUND,
            ObsError::Unreachable { .. } | ObsError::Disconnected | ObsError::Timeout { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            _ => StatusCode::BAD_GATEWAY,
        };
        json_error(status, format!("source: {e}"))
    })?;
    if input.kind != MEDIA_SOURCE_KIND {
        return Err(json_error(
            StatusCode::BAD_REQUEST,
            format!(
                "source: OBS input '{source}' is a {} input; only media sources ({MEDIA_SOURCE_KIND}) can be analysed",
                input.kind
            ),
        ));
    }
    input.local_file.ok_or_else(|| {
        json_error(
            StatusCode::BAD_REQUEST,
            format!("source: OBS media source '{source}' plays no local file"),
        )
    })
}

fn find(s: &ApiState, id: &str) -> Result<AnalysisRecord, Response> {
    match s.store.analysis(id) {
        Ok(Some(r)) => Ok(r),
        Ok(None) => Err(json_error(
            StatusCode::NOT_FOUND,
            format!("no analysis {id:?}"),
        )),
        Err(e) => Err(json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("store: {e}"),
        )),
    }
}

fn export(s: &ApiState, id: &str, query: HashMap<String, String>) -> Result<Response, Response> {
    if let Some(k) = query.keys().find(|k| *k != "format") {
        return Err(json_error(
            StatusCode::BAD_REQUEST,
            format!("{k}: unknown parameter; this endpoint takes format"),
        ));
    }
    let csv = match query.get("format").map(String::as_str).unwrap_or("json") {
        "csv" => true,
        "json" => false,
        other => {
            return Err(json_error(
                StatusCode::BAD_REQUEST,
                format!("format: {other:?} is not one of csv, json"),
            ))
        }
    };
    let record = find(s, id)?;
    let samples: Vec<_> = s
        .store
        .iter_analysis_samples(id)
        .collect::<Result<_, _>>()
        .map_err(|e| json_error(StatusCode::INTERNAL_SERVER_ERROR, format!("store: {e}")))?;
    let (body, content_type, ext) = if csv {
        let mut out = String::from("t_s,activity,confidence");
        for c in ActivityClass::ALL {
            out.push_str(&format!(",score_{c}"));
        }
        out.push_str(",sound_events\n");
        for x in &samples {
            out.push_str(&format!("{},{},{}", x.t_s, x.activity, x.confidence));
            for c in ActivityClass::ALL {
                out.push_str(&format!(
                    ",{}",
                    x.scores
                        .get(c.as_str())
                        .map(|v| v.to_string())
                        .unwrap_or_default()
                ));
            }
            let events: Vec<String> = x
                .sound_events
                .iter()
                .map(|e| format!("{}@{:.3}", e.kind, e.onset_s))
                .collect();
            out.push_str(&format!(",{}\n", events.join(" ")));
        }
        (out, "text/csv; charset=utf-8", "csv")
    } else {
        let doc = serde_json::json!({
            "analysis": AnalysisDto::new(record, chrono::Utc::now().timestamp_millis()),
            "samples": samples,
        });
        (doc.to_string(), "application/json", "json")
    };
    let mut r = Response::new(body.into());
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"analysis-{id}.{ext}\"")) {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(r)
}

fn media_files(s: &ApiState) -> Vec<MediaFileDto> {
    let mut out = Vec::new();
    for dir in &s.analysis.media_dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(meta) = e.metadata() else { continue };
            if meta.is_file() {
                out.push(MediaFileDto {
                    file: e.file_name().to_string_lossy().to_string(),
                    folder: dir.display().to_string(),
                    bytes: meta.len(),
                });
            }
        }
    }
    out.sort_by(|a, b| a.file.cmp(&b.file));
    out
}

fn either(r: Result<Response, Response>) -> Response {
    r.unwrap_or_else(|e| e)
}

pub fn routes(state: ApiState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let st = warp::any().map(move || state.clone());
    let now = || chrono::Utc::now().timestamp_millis();

    let create = warp::path!("api" / "analyses")
        .and(warp::post())
        .and(warp::body::content_length_limit(BODY_LIMIT))
        .and(warp::body::json())
        .and(st.clone())
        .and_then(|body: NewAnalysis, s: ApiState| async move {
            Ok::<_, Infallible>(either(
                tokio::task::spawn_blocking(move || create(&s, body))
                    .await
                    .unwrap_or_else(|e| {
                        Err(json_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
                    }),
            ))
        });
    let list = warp::path!("api" / "analyses")
        .and(warp::get())
        .and(st.clone())
        .map(move |s: ApiState| match s.store.analyses(100) {
            Ok(rs) => {
                let items: Vec<AnalysisDto> =
                    rs.into_iter().map(|r| AnalysisDto::new(r, now())).collect();
                warp::reply::json(&serde_json::json!({ "analyses": items })).into_response()
            }
            Err(e) => json_error(StatusCode::INTERNAL_SERVER_ERROR, format!("store: {e}")),
        });
    let one = warp::path!("api" / "analyses" / String)
        .and(warp::get())
        .and(st.clone())
        .map(move |id: String, s: ApiState| {
            either(
                find(&s, &id)
                    .map(|r| warp::reply::json(&AnalysisDto::new(r, now())).into_response()),
            )
        });
    let delete = warp::path!("api" / "analyses" / String)
        .and(warp::delete())
        .and(st.clone())
        .map(move |id: String, s: ApiState| {
            either(find(&s, &id).and_then(|r| {
                if s.jobs.cancel(&id) {
                    // Running: cancelled; the job records it within a sample.
                    let mut shown = r;
                    shown.status = AnalysisStatus::Cancelled;
                    return Ok(warp::reply::json(&AnalysisDto::new(shown, now())).into_response());
                }
                s.store
                    .delete_analysis(&id)
                    .map(|_| {
                        warp::reply::json(&serde_json::json!({"id": id, "deleted": true}))
                            .into_response()
                    })
                    .map_err(|e| {
                        json_error(StatusCode::INTERNAL_SERVER_ERROR, format!("store: {e}"))
                    })
            }))
        });
    let export = warp::path!("api" / "analyses" / String / "export")
        .and(warp::get())
        .and(warp::query::<HashMap<String, String>>())
        .and(st.clone())
        .map(|id: String, q, s: ApiState| either(export(&s, &id, q)));
    let media = warp::path!("api" / "media")
        .and(warp::get())
        .and(st)
        .map(|s: ApiState| {
            warp::reply::json(&serde_json::json!({ "files": media_files(&s) })).into_response()
        });

    create
        .or(list)
        .unify()
        .or(export)
        .unify()
        .or(one)
        .unify()
        .or(delete)
        .unify()
        .or(media)
        .unify()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_files_inside_the_media_folders_resolve() {
        let root = tempfile::tempdir().unwrap();
        let media = root.path().join("media");
        std::fs::create_dir_all(media.join("sub")).unwrap();
        std::fs::write(media.join("a.mp4"), b"x").unwrap();
        std::fs::write(media.join("sub/b.mp4"), b"x").unwrap();
        std::fs::write(root.path().join("secret.txt"), b"x").unwrap();
        std::os::unix::fs::symlink(root.path().join("secret.txt"), media.join("link.mp4")).unwrap();
        let dirs = vec![media.clone()];
        assert!(resolve_media(&dirs, "a.mp4").is_ok());
        assert!(resolve_media(&dirs, "sub/b.mp4").is_ok());
        assert!(resolve_media(&dirs, media.join("a.mp4").to_str().unwrap()).is_ok());
        for bad in ["../secret.txt", "sub/../../secret.txt", "link.mp4"] {
            assert!(
                matches!(resolve_media(&dirs, bad), Err(PathRefusal::Outside(_))),
                "{bad}"
            );
        }
        let abs = root.path().join("secret.txt");
        assert!(matches!(
            resolve_media(&dirs, abs.to_str().unwrap()),
            Err(PathRefusal::Outside(_))
        ));
        assert!(matches!(
            resolve_media(&dirs, "nope.mp4"),
            Err(PathRefusal::NotFound(_))
        ));
        assert!(matches!(
            resolve_media(&dirs, "sub"),
            Err(PathRefusal::NotFound(_))
        ));
    }
}
