//! The web interface: the pages of `web/` (HTML, ES modules, CSS), built into the binary and
//! served at `/`, `/dashboard`, `/statistics`, `/history`, `/testing`, `/analyses`,
//! `/settings` (one application; it routes in the browser), `/assets/…`, the login page, and
//! `/media/{file}` (the media files of `analysis.media_dirs`, with byte ranges, for the model
//! testing page's video player).
//!
//! These routes sit outside the API's token guard and check the token themselves: without it a
//! page redirects to `/login` instead of answering a JSON 401. `/login` and `/assets/…` are
//! public (static code, no data). `POST /login` checks the token and stores it in the
//! `cav_token` cookie (HttpOnly, SameSite=Strict) that the API accepts.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;

use warp::http::{header, HeaderValue, StatusCode};
use warp::{Filter, Rejection};

use super::analyses::{resolve_media, PathRefusal};
use super::auth::Access;
use super::{json_error, ApiState, BODY_LIMIT};

type Response = warp::reply::Response;

/// One file of `web/`.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $ct:literal) => {
        Asset {
            name: $name,
            content_type: $ct,
            body: include_bytes!(concat!("../../web/", $name)),
        }
    };
}

/// Everything under `/assets/`.
const ASSETS: &[Asset] = &[
    asset!("app.js", "text/javascript; charset=utf-8"),
    asset!("api.js", "text/javascript; charset=utf-8"),
    asset!("i18n.js", "text/javascript; charset=utf-8"),
    asset!("charts.js", "text/javascript; charset=utf-8"),
    asset!("ui.js", "text/javascript; charset=utf-8"),
    asset!("login.js", "text/javascript; charset=utf-8"),
    asset!("pages/dashboard.js", "text/javascript; charset=utf-8"),
    asset!("pages/statistics.js", "text/javascript; charset=utf-8"),
    asset!("pages/history.js", "text/javascript; charset=utf-8"),
    asset!("pages/testing.js", "text/javascript; charset=utf-8"),
    asset!("pages/analyses.js", "text/javascript; charset=utf-8"),
    asset!("pages/settings.js", "text/javascript; charset=utf-8"),
    asset!("style.css", "text/css; charset=utf-8"),
    asset!("favicon.svg", "image/svg+xml"),
];

const INDEX: &[u8] = include_bytes!("../../web/index.html");
const LOGIN: &[u8] = include_bytes!("../../web/login.html");

/// The application's pages (all served by `index.html`).
pub const PAGES: [&str; 6] = [
    "dashboard",
    "statistics",
    "history",
    "testing",
    "analyses",
    "settings",
];

/// What the pages may load: only this origin (no CDN), images also as `data:` (snapshots of
/// analysed frames) and `blob:`.
const CSP: &str = "default-src 'self'; img-src 'self' data: blob:; media-src 'self'; \
    style-src 'self' 'unsafe-inline'; script-src 'self'; connect-src 'self'; \
    frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// Bytes of a media file sent per range request at most (the browser asks for the rest).
const MEDIA_RANGE_MAX: u64 = 4 * 1024 * 1024;
const MEDIA_CHUNK: usize = 64 * 1024;

/// FNV-1a: a strong enough validator for files that only change with the binary.
fn etag(body: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in body {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("\"{h:016x}\"")
}

/// A static file, revalidated by ETag on every use (`no-cache`), so a new binary's assets are
/// picked up at once and unchanged ones cost a 304.
fn static_reply(
    body: &'static [u8],
    content_type: &'static str,
    if_none_match: Option<&str>,
) -> Response {
    let tag = etag(body);
    let mut r = if if_none_match.is_some_and(|v| v.split(',').any(|t| t.trim() == tag)) {
        let mut r = Response::new(warp::hyper::Body::empty());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        let mut r = Response::new(body.into());
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        r
    };
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(&tag) {
        h.insert(header::ETAG, v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

fn html(body: &'static [u8], if_none_match: Option<&str>) -> Response {
    let mut r = static_reply(body, "text/html; charset=utf-8", if_none_match);
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    r
}

fn redirect(to: &str) -> Response {
    let mut r = Response::new(warp::hyper::Body::empty());
    *r.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Only local paths of this application are followed after a login (no open redirect).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                && n.chars().all(|c| c.is_ascii_graphic()) =>
        {
            n.to_string()
        }
        _ => "/".to_string(),
    }
}

fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// The request's credentials, as the API guard reads them.
#[derive(Debug)]
struct Credentials {
    path: String,
    authorization: Option<String>,
    cookie: Option<String>,
}

impl Credentials {
    fn allowed(&self, access: &Access) -> bool {
        access
            .check(
                &self.path,
                self.authorization.as_deref(),
                self.cookie.as_deref(),
            )
            .is_ok()
    }
}

fn credentials() -> impl Filter<Extract = (Credentials,), Error = Rejection> + Clone {
    warp::path::full()
        .and(warp::header::optional::<String>("authorization"))
        .and(warp::header::optional::<String>("cookie"))
        .map(
            |path: warp::path::FullPath, authorization, cookie| Credentials {
                path: path.as_str().to_string(),
                authorization,
                cookie,
            },
        )
}

/// A page of the application; without the token, the login page.
fn page(access: &Access, c: &Credentials, if_none_match: Option<&str>) -> Response {
    if c.allowed(access) {
        html(INDEX, if_none_match)
    } else {
        redirect(&format!("/login?next={}", encode(&c.path)))
    }
}

/// The cookie that carries the token (no `Secure`: the daemon speaks plain HTTP; put a TLS
/// proxy in front of it when it leaves the LAN).
fn token_cookie(token: &str, max_age_s: u64) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!(
        "cav_token={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_s}"
    ))
    .ok()
}

fn login(access: &Access, form: &HashMap<String, String>) -> Response {
    let next = safe_next(form.get("next").map(String::as_str));
    let Some(token) = access.token.as_deref() else {
        return redirect(&next);
    };
    let given = form.get("token").map(|t| t.trim()).unwrap_or("");
    let ok = access
        .check("/", Some(&format!("Bearer {given}")), None)
        .is_ok();
    if !ok {
        return redirect(&format!("/login?error=1&next={}", encode(&next)));
    }
    let mut r = redirect(&next);
    match token_cookie(token, 400 * 24 * 3600) {
        Some(v) => {
            r.headers_mut().insert(header::SET_COOKIE, v);
            r
        }
        None => redirect(&format!("/login?error=2&next={}", encode(&next))),
    }
}

fn logout() -> Response {
    let mut r = redirect("/login");
    if let Some(v) = token_cookie("", 0) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// A byte range of a file of `len` bytes: `bytes=a-b`, `bytes=a-` or `bytes=-n` (one range).
fn parse_range(h: &str, len: u64) -> Option<(u64, u64)> {
    let spec = h.trim().strip_prefix("bytes=")?;
    if spec.contains(',') || len == 0 {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (start, end) = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: u64 = n.parse().ok()?;
            (len.saturating_sub(n), len - 1)
        }
        (a, "") => (a.parse().ok()?, len - 1),
        (a, b) => (a.parse().ok()?, b.parse::<u64>().ok()?.min(len - 1)),
    };
    (start <= end && start < len).then_some((start, end))
}

fn content_type_of(path: &std::path::Path) -> &'static str {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("mp4" | "m4v") => "video/mp4",
        Some("webm") => "video/webm",
        Some("mkv") => "video/x-matroska",
        Some("mov") => "video/quicktime",
        Some("ogv") => "video/ogg",
        Some("mp3") => "audio/mpeg",
        Some("wav") => "audio/wav",
        Some("ogg" | "oga") => "audio/ogg",
        Some("flac") => "audio/flac",
        Some("m4a" | "aac") => "audio/mp4",
        _ => "application/octet-stream",
    }
}

/// `GET /media/{file}`: a media file from the media folders (the same check as analyses:
/// its canonical path must lie in a media folder), whole or by range.
fn media(dirs: &[PathBuf], requested: &str, range: Option<&str>) -> Response {
    let path = match resolve_media(dirs, requested) {
        Ok(p) => p,
        Err(PathRefusal::NotFound(m)) => return json_error(StatusCode::NOT_FOUND, m),
        Err(PathRefusal::Outside(m)) => return json_error(StatusCode::FORBIDDEN, m),
    };
    let opened = std::fs::File::open(&path).and_then(|f| f.metadata().map(|m| (f, m.len())));
    let (mut file, len) = match opened {
        Ok(x) => x,
        Err(e) => return json_error(StatusCode::NOT_FOUND, format!("{requested:?}: {e}")),
    };
    let content_type = content_type_of(&path);
    let mut r = match range {
        Some(h) => {
            let Some((start, end)) = parse_range(h, len) else {
                let mut r = Response::new(warp::hyper::Body::empty());
                *r.status_mut() = StatusCode::RANGE_NOT_SATISFIABLE;
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                    r.headers_mut().insert(header::CONTENT_RANGE, v);
                }
                return r;
            };
            let end = end.min(start + MEDIA_RANGE_MAX - 1);
            let mut buf = vec![0u8; (end - start + 1) as usize];
            if let Err(e) = file
                .seek(SeekFrom::Start(start))
                .and_then(|_| file.read_exact(&mut buf))
            {
                return json_error(StatusCode::INTERNAL_SERVER_ERROR, format!("read: {e}"));
            }
            let mut r = Response::new(buf.into());
            *r.status_mut() = StatusCode::PARTIAL_CONTENT;
            if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{end}/{len}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            r
        }
        None => {
            // The whole file, read on a blocking thread in chunks through a small channel.
            let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
            tokio::task::spawn_blocking(move || loop {
                let mut buf = vec![0u8; MEDIA_CHUNK];
                match file.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        buf.truncate(n);
                        if tx.blocking_send(Ok(buf)).is_err() {
                            break;
                        }
                    }
                    Err(e) => {
                        let _ = tx.blocking_send(Err(e));
                        break;
                    }
                }
            });
            let stream = futures_util::stream::unfold(rx, |mut rx| async move {
                rx.recv().await.map(|chunk| (chunk, rx))
            });
            let mut r = Response::new(warp::hyper::Body::wrap_stream(stream));
            if let Ok(v) = HeaderValue::from_str(&len.to_string()) {
                r.headers_mut().insert(header::CONTENT_LENGTH, v);
            }
            r
        }
    };
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

pub fn routes(state: ApiState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let access = state.access.clone();
    let dirs = state.analysis.media_dirs.clone();
    let acc = warp::any().map(move || access.clone());
    let inm = warp::header::optional::<String>("if-none-match");

    let root = warp::path::end()
        .and(warp::get())
        .and(acc.clone())
        .and(credentials())
        .and(inm)
        .map(|a: Access, c: Credentials, t: Option<String>| page(&a, &c, t.as_deref()));
    let pages = warp::path::param::<String>()
        .and(warp::path::end())
        .and(warp::get())
        .and(acc.clone())
        .and(credentials())
        .and(inm)
        .and_then(
            |name: String, a: Access, c: Credentials, t: Option<String>| async move {
                if PAGES.contains(&name.as_str()) {
                    Ok(page(&a, &c, t.as_deref()))
                } else {
                    Err(warp::reject::not_found())
                }
            },
        );
    let login_page = warp::path!("login")
        .and(warp::get())
        .and(acc.clone())
        .and(warp::query::<HashMap<String, String>>())
        .and(inm)
        .map(|a: Access, q: HashMap<String, String>, t: Option<String>| {
            if a.token.is_none() {
                redirect(&safe_next(q.get("next").map(String::as_str)))
            } else {
                html(LOGIN, t.as_deref())
            }
        });
    let login_post = warp::path!("login")
        .and(warp::post())
        .and(acc.clone())
        .and(warp::body::content_length_limit(BODY_LIMIT))
        .and(warp::body::form::<HashMap<String, String>>())
        .map(|a: Access, form: HashMap<String, String>| login(&a, &form));
    let logout_post = warp::path!("logout").and(warp::post()).map(logout);
    let assets = warp::path("assets")
        .and(warp::path::tail())
        .and(warp::get())
        .and(inm)
        .and_then(|tail: warp::path::Tail, t: Option<String>| async move {
            match ASSETS.iter().find(|a| a.name == tail.as_str()) {
                Some(a) => Ok(static_reply(a.body, a.content_type, t.as_deref())),
                None => Err(warp::reject::not_found()),
            }
        });
    let favicon = warp::path!("favicon.ico")
        .and(warp::get())
        .and(inm)
        .map(|t: Option<String>| {
            static_reply(
                include_bytes!("../../web/favicon.svg"),
                "image/svg+xml",
                t.as_deref(),
            )
        });
    let media_file = warp::path("media")
        .and(warp::path::tail())
        .and(warp::get())
        .and(acc)
        .and(credentials())
        .and(warp::header::optional::<String>("range"))
        .and_then(
            move |tail: warp::path::Tail, a: Access, c: Credentials, range: Option<String>| {
                let dirs = dirs.clone();
                async move {
                    if !c.allowed(&a) {
                        return Ok::<_, Rejection>(json_error(
                            StatusCode::UNAUTHORIZED,
                            "this file needs the API token",
                        ));
                    }
                    let name = percent_encoding::percent_decode_str(tail.as_str())
                        .decode_utf8_lossy()
                        .to_string();
                    Ok(
                        tokio::task::spawn_blocking(move || media(&dirs, &name, range.as_deref()))
                            .await
                            .unwrap_or_else(|e| {
                                json_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
                            }),
                    )
                }
            },
        );

    root.or(pages)
        .unify()
        .or(login_page)
        .unify()
        .or(login_post)
        .unify()
        .or(logout_post)
        .unify()
        .or(assets)
        .unify()
        .or(favicon)
        .unify()
        .or(media_file)
        .unify()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_parsed_and_clamped() {
        assert_eq!(parse_range("bytes=0-", 100), Some((0, 99)));
        assert_eq!(parse_range("bytes=10-19", 100), Some((10, 19)));
        assert_eq!(parse_range("bytes=90-500", 100), Some((90, 99)));
        assert_eq!(parse_range("bytes=-10", 100), Some((90, 99)));
        assert_eq!(parse_range("bytes=100-", 100), None);
        assert_eq!(parse_range("bytes=5-1", 100), None);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), None);
        assert_eq!(parse_range("items=0-1", 100), None);
    }

    #[test]
    fn only_local_paths_are_followed_after_login() {
        assert_eq!(
            safe_next(Some("/history?class=reading")),
            "/history?class=reading"
        );
        assert_eq!(safe_next(Some("//evil.example")), "/");
        assert_eq!(safe_next(Some("https://evil.example")), "/");
        assert_eq!(safe_next(Some("/\\evil")), "/");
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn every_asset_has_a_content_type_and_an_etag() {
        for a in ASSETS {
            assert!(!a.body.is_empty(), "{}", a.name);
            assert!(a.content_type.contains('/'));
        }
        assert_ne!(etag(b"a"), etag(b"b"));
        let r = static_reply(
            ASSETS[0].body,
            ASSETS[0].content_type,
            Some(&etag(ASSETS[0].body)),
        );
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    }
}
