//! History, statistics, exports and the outbox: `/api/activities`, `/api/spans`,
//! `/api/sound-events`, `/api/statistics`, `/api/export`, `/api/outbox`.
//!
//! Every query parameter is checked by name: an unknown one, or a value that does not parse,
//! is a 400 whose message starts with the parameter's name. Store reads run on the blocking
//! pool (a year of statistics reads tens of thousands of records). Times are accepted as Unix
//! milliseconds, RFC 3339, or a date (local midnight); `tz` (`local`, `UTC`, `+02:00`) sets the
//! zone of dates, hours and days, the host's own by default.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::fmt::Display;

use cav_actors::delivery::iso8601;
use cav_actors::store::{SoundEventFilter, Store, StoreError, StoredClassification, TimeRange};
use cav_core::history::{parse_time, period_range, Period, Span, Statistics};
use cav_core::ActivityClass;
use chrono::{FixedOffset, TimeZone};
use serde::Serialize;
use warp::http::StatusCode;
use warp::{Filter, Rejection, Reply};

use super::{json_error, ApiState};

/// Most items one page may hold.
const MAX_LIMIT: usize = 1000;
const DEFAULT_LIMIT: usize = 100;
/// Dead letters shown by `/api/outbox`.
const DEAD_LETTERS_SHOWN: usize = 20;

type Response = warp::reply::Response;

pub(super) fn bad(param: &str, reason: impl Display) -> Response {
    json_error(StatusCode::BAD_REQUEST, format!("{param}: {reason}"))
}

fn store_failed(e: StoreError) -> Response {
    tracing::error!(error = %e, "store read failed");
    json_error(StatusCode::INTERNAL_SERVER_ERROR, format!("store: {e}"))
}

/// The zone dates and hours are read in.
#[derive(Clone, Copy, Debug)]
pub(super) enum Zone {
    Local,
    Fixed(FixedOffset),
}

impl Zone {
    fn parse(s: &str) -> Result<Self, String> {
        match s.trim() {
            "" | "local" => Ok(Self::Local),
            "Z" | "z" | "UTC" | "utc" => Ok(Self::Fixed(
                FixedOffset::east_opt(0).unwrap_or_else(|| unreachable!()),
            )),
            other => other.parse::<FixedOffset>().map(Self::Fixed).map_err(|_| {
                format!("{other:?} is not a zone; expected local, UTC or an offset like +02:00")
            }),
        }
    }
}

/// Query parameters, checked by name.
pub(super) struct Params(HashMap<String, String>);

impl Params {
    pub(super) fn new(raw: HashMap<String, String>, allowed: &[&str]) -> Result<Self, Response> {
        if let Some(unknown) = raw.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(bad(
                unknown,
                format!(
                    "unknown parameter; this endpoint takes {}",
                    allowed.join(", ")
                ),
            ));
        }
        Ok(Self(raw))
    }

    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    pub(super) fn zone(&self) -> Result<Zone, Response> {
        Zone::parse(self.get("tz").unwrap_or("")).map_err(|e| bad("tz", e))
    }

    fn time<Tz: TimeZone>(&self, name: &str, tz: &Tz) -> Result<Option<i64>, Response> {
        self.get(name)
            .map(|v| parse_time(v, tz).map_err(|e| bad(name, e)))
            .transpose()
    }

    /// `start` and `end` (either may be missing: open-ended); end must come after start.
    pub(super) fn range<Tz: TimeZone>(&self, tz: &Tz) -> Result<TimeRange, Response> {
        let all = TimeRange::all();
        let start = self.time("start", tz)?.unwrap_or(all.start_ms);
        let end = self.time("end", tz)?.unwrap_or(all.end_ms);
        if end <= start {
            return Err(bad("end", "must be later than start"));
        }
        Ok(TimeRange::new(start, end))
    }

    pub(super) fn class(&self) -> Result<Option<ActivityClass>, Response> {
        self.get("class")
            .map(|c| c.parse::<ActivityClass>().map_err(|e| bad("class", e)))
            .transpose()
    }

    fn count(&self, name: &str, default: usize, max: usize) -> Result<usize, Response> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => match v.trim().parse::<usize>() {
                Ok(n) if n <= max => Ok(n),
                Ok(_) => Err(bad(name, format!("at most {max}"))),
                Err(_) => Err(bad(name, format!("{v:?} is not a whole number ≥ 0"))),
            },
        }
    }

    pub(super) fn text(&self, name: &str) -> Option<String> {
        self.get(name)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    }
}

/// Runs a store read on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Response> + Send + 'static,
) -> Result<T, Response> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("store read failed: {e}"),
        ))
    })
}

fn scores_map(scores: &cav_core::Scores) -> BTreeMap<String, f32> {
    scores.iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// One classification window.
#[derive(Debug, Serialize)]
pub struct ActivityDto {
    pub start: String,
    pub end: String,
    pub start_ms: i64,
    pub end_ms: i64,
    pub activity: String,
    pub confidence: f32,
    pub scores: BTreeMap<String, f32>,
    pub drivers: Vec<cav_core::classify::Driver>,
    pub features: serde_json::Value,
    pub classifier: String,
    pub source: String,
}

impl From<StoredClassification> for ActivityDto {
    fn from(c: StoredClassification) -> Self {
        Self {
            start: iso8601(c.start_ms),
            end: iso8601(c.end_ms),
            start_ms: c.start_ms,
            end_ms: c.end_ms,
            activity: c.activity.to_string(),
            confidence: c.confidence,
            scores: scores_map(&c.scores),
            drivers: c.drivers,
            features: serde_json::to_value(&c.features).unwrap_or(serde_json::Value::Null),
            classifier: c.classifier,
            source: c.source,
        }
    }
}

/// Consecutive windows of one class.
#[derive(Debug, Serialize)]
pub struct SpanDto {
    pub start: String,
    pub end: String,
    pub start_ms: i64,
    pub end_ms: i64,
    pub activity: String,
    pub duration_s: f64,
    pub windows: u32,
    pub mean_confidence: f32,
}

impl From<Span> for SpanDto {
    fn from(s: Span) -> Self {
        Self {
            start: iso8601(s.start_ms),
            end: iso8601(s.end_ms),
            start_ms: s.start_ms,
            end_ms: s.end_ms,
            activity: s.class.to_string(),
            duration_s: s.duration_ms() as f64 / 1000.0,
            windows: s.windows,
            mean_confidence: s.mean_confidence(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct SoundEventDto {
    pub onset: String,
    pub onset_ms: i64,
    pub end_ms: Option<i64>,
    pub source: String,
    pub label: String,
    pub score: f32,
}

impl From<cav_actors::events::SoundEventRecord> for SoundEventDto {
    fn from(e: cav_actors::events::SoundEventRecord) -> Self {
        Self {
            onset: iso8601(e.onset_ms),
            onset_ms: e.onset_ms,
            end_ms: e.end_ms,
            source: e.source,
            label: e.kind,
            score: e.score,
        }
    }
}

/// A newest-first page.
#[derive(Debug, Serialize)]
pub struct PageDto<T> {
    pub total: u64,
    pub offset: usize,
    pub limit: usize,
    pub items: Vec<T>,
}

#[derive(Debug, Serialize)]
pub struct ClassStatsDto {
    pub class: String,
    pub windows: u64,
    pub spans: u64,
    pub total_s: f64,
    pub mean_span_s: Option<f64>,
    pub share: f64,
    pub mean_confidence: Option<f32>,
}

#[derive(Debug, Serialize)]
pub struct HourDto {
    pub hour: u8,
    pub seconds: BTreeMap<String, f64>,
}

#[derive(Debug, Serialize)]
pub struct DayDto {
    pub date: String,
    pub class: String,
    pub seconds: f64,
    pub windows: u64,
}

/// `GET /api/statistics`.
#[derive(Debug, Serialize)]
pub struct StatisticsDto {
    pub period: Option<String>,
    pub timezone: String,
    pub start: String,
    pub end: String,
    pub start_ms: i64,
    pub end_ms: i64,
    pub observed_s: f64,
    /// At table, reading, on the phone, in conversation, busy.
    pub active_s: f64,
    /// Inactive or asleep.
    pub inactive_s: f64,
    pub windows: u64,
    pub mean_confidence: Option<f32>,
    pub most_frequent: Option<String>,
    pub classes: Vec<ClassStatsDto>,
    pub hourly: Vec<HourDto>,
    pub daily: Vec<DayDto>,
}

impl StatisticsDto {
    fn new(s: Statistics, period: Option<String>, timezone: String) -> Self {
        Self {
            period,
            timezone,
            start: iso8601(s.start_ms),
            end: iso8601(s.end_ms),
            start_ms: s.start_ms,
            end_ms: s.end_ms,
            observed_s: s.observed_s,
            active_s: s.active_s,
            inactive_s: s.inactive_s,
            windows: s.windows,
            mean_confidence: s.mean_confidence,
            most_frequent: s.most_frequent.map(|c| c.to_string()),
            classes: s
                .classes
                .into_iter()
                .map(|c| ClassStatsDto {
                    class: c.class.to_string(),
                    windows: c.windows,
                    spans: c.spans,
                    total_s: c.total_s,
                    mean_span_s: c.mean_span_s,
                    share: c.share,
                    mean_confidence: c.mean_confidence,
                })
                .collect(),
            hourly: s
                .hourly
                .into_iter()
                .map(|h| HourDto {
                    hour: h.hour,
                    seconds: ActivityClass::ALL
                        .iter()
                        .map(|&c| (c.to_string(), h.seconds.get(c)))
                        .collect(),
                })
                .collect(),
            daily: s
                .daily
                .into_iter()
                .map(|d| DayDto {
                    date: d.date.to_string(),
                    class: d.class.to_string(),
                    seconds: d.seconds,
                    windows: d.windows,
                })
                .collect(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct DestinationDto {
    pub destination: String,
    pub pending: u64,
    pub oldest_pending: Option<String>,
    pub attempts: u32,
    pub next_attempt: Option<String>,
    pub last_error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct DeadLetterDto {
    pub destination: String,
    pub url: String,
    pub idempotency_key: String,
    pub created: String,
    pub dead_lettered: String,
    pub attempts: u32,
    pub status: Option<u16>,
    pub reason: Option<String>,
}

/// `GET /api/outbox`.
#[derive(Debug, Serialize)]
pub struct OutboxDto {
    pub pending: u64,
    pub delivered: u64,
    pub dead_lettered: u64,
    pub oldest_pending: Option<String>,
    pub oldest_pending_age_s: Option<f64>,
    pub destinations: Vec<DestinationDto>,
    pub dead_letters: Vec<DeadLetterDto>,
}

fn outbox_dto(store: &Store, now_ms: i64) -> Result<OutboxDto, StoreError> {
    let s = store.outbox_summary()?;
    let dead = store.dead_letters(DEAD_LETTERS_SHOWN)?;
    Ok(OutboxDto {
        pending: s.pending,
        delivered: s.delivered,
        dead_lettered: s.dead_lettered,
        oldest_pending: s.oldest_pending_ms.map(iso8601),
        oldest_pending_age_s: s
            .oldest_pending_ms
            .map(|t| ((now_ms - t).max(0)) as f64 / 1000.0),
        destinations: s
            .destinations
            .into_iter()
            .map(|d| DestinationDto {
                destination: d.destination,
                pending: d.pending,
                oldest_pending: d.oldest_pending_ms.map(iso8601),
                attempts: d.attempts,
                next_attempt: d.next_attempt_ms.map(iso8601),
                last_error: d.last_error,
            })
            .collect(),
        dead_letters: dead
            .into_iter()
            .map(|d| DeadLetterDto {
                destination: d.entry.destination,
                url: d.entry.url,
                idempotency_key: d.entry.idempotency_key,
                created: iso8601(d.entry.created_ms),
                dead_lettered: iso8601(d.at_ms),
                attempts: d.entry.attempts,
                status: d.status,
                reason: d.reason,
            })
            .collect(),
    })
}

fn activities<Tz: TimeZone>(
    store: &Store,
    p: &Params,
    tz: &Tz,
) -> Result<PageDto<ActivityDto>, Response> {
    let range = p.range(tz)?;
    let class = p.class()?;
    let limit = p.count("limit", DEFAULT_LIMIT, MAX_LIMIT)?;
    let offset = p.count("offset", 0, usize::MAX)?;
    let page = store
        .activities(range, class, limit, offset)
        .map_err(store_failed)?;
    Ok(PageDto {
        total: page.total,
        offset,
        limit,
        items: page.items.into_iter().map(ActivityDto::from).collect(),
    })
}

fn spans<Tz: TimeZone>(store: &Store, p: &Params, tz: &Tz) -> Result<PageDto<SpanDto>, Response> {
    let range = p.range(tz)?;
    let class = p.class()?;
    let limit = p.count("limit", DEFAULT_LIMIT, MAX_LIMIT)?;
    let offset = p.count("offset", 0, usize::MAX)?;
    let page = store
        .spans(range, class, limit, offset)
        .map_err(store_failed)?;
    Ok(PageDto {
        total: page.total,
        offset,
        limit,
        items: page.items.into_iter().map(SpanDto::from).collect(),
    })
}

fn sound_events<Tz: TimeZone>(
    store: &Store,
    p: &Params,
    tz: &Tz,
) -> Result<PageDto<SoundEventDto>, Response> {
    let range = p.range(tz)?;
    let filter = SoundEventFilter {
        label: p.text("label"),
        source: p.text("source"),
    };
    let limit = p.count("limit", DEFAULT_LIMIT, MAX_LIMIT)?;
    let offset = p.count("offset", 0, usize::MAX)?;
    let page = store
        .sound_events(range, &filter, limit, offset)
        .map_err(store_failed)?;
    Ok(PageDto {
        total: page.total,
        offset,
        limit,
        items: page.items.into_iter().map(SoundEventDto::from).collect(),
    })
}

fn statistics<Tz: TimeZone>(
    store: &Store,
    p: &Params,
    tz: Tz,
    now_ms: i64,
) -> Result<StatisticsDto, Response>
where
    Tz::Offset: Display,
{
    let period = p
        .get("period")
        .map(|v| v.parse::<Period>().map_err(|e| bad("period", e)))
        .transpose()?;
    let explicit = p.get("start").is_some() || p.get("end").is_some();
    if period.is_some() && explicit {
        return Err(bad(
            "period",
            "give either period (and date) or start and end, not both",
        ));
    }
    if p.get("date").is_some() && explicit {
        return Err(bad("date", "goes with period, not with start and end"));
    }
    let range = if explicit {
        let range = p.range(&tz)?;
        if p.get("start").is_none() || p.get("end").is_none() {
            return Err(bad(
                if p.get("start").is_none() {
                    "start"
                } else {
                    "end"
                },
                "statistics need both start and end (or a period)",
            ));
        }
        range
    } else {
        let at = p.time("date", &tz)?.unwrap_or(now_ms);
        let (start, end) = period_range(period.unwrap_or(Period::Day), at, &tz);
        TimeRange::new(start, end)
    };
    let zone_name = tz
        .timestamp_millis_opt(range.start_ms)
        .single()
        .map(|t| t.offset().to_string())
        .unwrap_or_default();
    let stats = store.statistics(range, tz).map_err(store_failed)?;
    let period_name = (!explicit).then(|| {
        match period.unwrap_or(Period::Day) {
            Period::Day => "day",
            Period::Week => "week",
            Period::Month => "month",
            Period::Year => "year",
        }
        .to_string()
    });
    Ok(StatisticsDto::new(stats, period_name, zone_name))
}

/// Evaluates `$body` with `$tz` bound to the zone the request asked for.
macro_rules! in_zone {
    ($zone:expr, |$tz:ident| $body:expr) => {
        match $zone {
            Zone::Local => {
                let $tz = chrono::Local;
                $body
            }
            Zone::Fixed(offset) => {
                let $tz: chrono::FixedOffset = offset;
                $body
            }
        }
    };
}
pub(super) use in_zone;

fn reply<T: Serialize>(r: Result<T, Response>) -> Response {
    match r {
        Ok(v) => warp::reply::json(&v).into_response(),
        Err(e) => e,
    }
}

/// A GET endpoint: its handler gets the query and reads the store on the blocking pool; the
/// answer is its value as JSON, or its error response.
fn json_get<T: Serialize + Send + 'static>(
    path: impl Filter<Extract = (), Error = Rejection> + Clone,
    state: ApiState,
    handler: fn(&ApiState, HashMap<String, String>) -> Result<T, Response>,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    path.and(warp::get())
        .and(warp::query::<HashMap<String, String>>())
        .and(warp::any().map(move || state.clone()))
        .and_then(move |q, s: ApiState| async move {
            Ok::<_, Infallible>(reply(blocking(move || handler(&s, q)).await))
        })
}

fn get_activities(
    s: &ApiState,
    q: HashMap<String, String>,
) -> Result<PageDto<ActivityDto>, Response> {
    let p = Params::new(q, &["start", "end", "class", "limit", "offset", "tz"])?;
    in_zone!(p.zone()?, |tz| activities(&s.store, &p, &tz))
}

fn get_spans(s: &ApiState, q: HashMap<String, String>) -> Result<PageDto<SpanDto>, Response> {
    let p = Params::new(q, &["start", "end", "class", "limit", "offset", "tz"])?;
    in_zone!(p.zone()?, |tz| spans(&s.store, &p, &tz))
}

fn get_sound_events(
    s: &ApiState,
    q: HashMap<String, String>,
) -> Result<PageDto<SoundEventDto>, Response> {
    let p = Params::new(
        q,
        &["start", "end", "label", "source", "limit", "offset", "tz"],
    )?;
    in_zone!(p.zone()?, |tz| sound_events(&s.store, &p, &tz))
}

fn get_statistics(s: &ApiState, q: HashMap<String, String>) -> Result<StatisticsDto, Response> {
    let p = Params::new(q, &["period", "date", "start", "end", "tz"])?;
    let now = chrono::Utc::now().timestamp_millis();
    in_zone!(p.zone()?, |tz| statistics(&s.store, &p, tz, now))
}

fn get_outbox(s: &ApiState, q: HashMap<String, String>) -> Result<OutboxDto, Response> {
    Params::new(q, &[])?;
    outbox_dto(&s.store, chrono::Utc::now().timestamp_millis()).map_err(store_failed)
}

pub fn routes(state: ApiState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let activities = json_get(
        warp::path!("api" / "activities"),
        state.clone(),
        get_activities,
    );
    let spans = json_get(warp::path!("api" / "spans"), state.clone(), get_spans);
    let sound_events = json_get(
        warp::path!("api" / "sound-events"),
        state.clone(),
        get_sound_events,
    );
    let statistics = json_get(
        warp::path!("api" / "statistics"),
        state.clone(),
        get_statistics,
    );
    let outbox = json_get(warp::path!("api" / "outbox"), state.clone(), get_outbox);
    let query = warp::query::<HashMap<String, String>>();
    let st = warp::any().map(move || state.clone());

    let export = warp::path!("api" / "export")
        .and(warp::get())
        .and(query)
        .and(st)
        .map(|q, s: ApiState| match super::export::start(&s.store, q) {
            Ok(r) => r,
            Err(e) => e,
        });

    activities
        .or(spans)
        .unify()
        .or(sound_events)
        .unify()
        .or(statistics)
        .unify()
        .or(outbox)
        .unify()
        .or(export)
        .unify()
}
