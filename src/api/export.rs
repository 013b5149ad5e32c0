//! `GET /api/export?kind=activities|spans|sound-events&format=csv|json&start&end`: streams the
//! records of a time range, oldest first, as CSV (one header row) or as one JSON array.
//!
//! The store is read on a blocking thread that hands ~64 KB chunks to the response through a
//! small bounded channel, so an export of a year never sits in memory and a client that stops
//! reading stops the reader.

use std::collections::HashMap;
use std::fmt::Write as _;

use cav_actors::store::{Store, StoreError, StoredClassification, TimeRange};
use cav_core::ActivityClass;
use serde::Serialize;
use warp::http::{header, HeaderValue, StatusCode};

use super::history::{bad, in_zone, ActivityDto, Params, SoundEventDto, SpanDto, Zone};

type Response = warp::reply::Response;

/// Bytes gathered before a chunk is sent.
const CHUNK: usize = 64 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Activities,
    Spans,
    SoundEvents,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Csv,
    Json,
}

/// Quotes a CSV field when it needs it (RFC 4180).
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

fn activity_header() -> String {
    let mut h = String::from("start,end,start_ms,end_ms,activity,confidence");
    for c in ActivityClass::ALL {
        let _ = write!(h, ",score_{c}");
    }
    h.push_str(",source,classifier,video_frames,motion_mean,motion_p90,brightness_mean,skin_percent_mean,level_dbfs_mean,level_dbfs_p90,speech_fraction,loud_fraction,drivers\n");
    h
}

fn activity_row(c: &StoredClassification) -> String {
    let d = ActivityDto::from(c.clone());
    let mut row = format!(
        "{},{},{},{},{},{}",
        d.start, d.end, d.start_ms, d.end_ms, d.activity, d.confidence
    );
    for class in ActivityClass::ALL {
        let _ = write!(row, ",{}", opt(d.scores.get(class.as_str())));
    }
    let v = c.features.video.as_ref();
    let a = c.features.audio.as_ref();
    let drivers: Vec<String> = c
        .drivers
        .iter()
        .map(|d| format!("{}={}", d.cue, opt(d.value)))
        .collect();
    let _ = writeln!(
        row,
        ",{},{},{},{},{},{},{},{},{},{},{},{}",
        csv_field(&d.source),
        csv_field(&d.classifier),
        opt(v.map(|v| v.frames)),
        opt(v.map(|v| v.motion_mean)),
        opt(v.map(|v| v.motion_p90)),
        opt(v.map(|v| v.brightness_mean)),
        opt(v.map(|v| v.skin_percent_mean)),
        opt(a.map(|a| a.level_dbfs_mean)),
        opt(a.map(|a| a.level_dbfs_p90)),
        opt(a.map(|a| a.speech_fraction)),
        opt(a.map(|a| a.loud_fraction)),
        csv_field(&drivers.join("; ")),
    );
    row
}

fn span_row(s: &SpanDto) -> String {
    format!(
        "{},{},{},{},{},{},{},{}\n",
        s.start,
        s.end,
        s.start_ms,
        s.end_ms,
        s.activity,
        s.duration_s,
        s.windows,
        s.mean_confidence
    )
}

fn event_row(e: &SoundEventDto) -> String {
    format!(
        "{},{},{},{},{},{}\n",
        e.onset,
        e.onset_ms,
        opt(e.end_ms),
        csv_field(&e.source),
        csv_field(&e.label),
        e.score
    )
}

/// Gathers rows into chunks and sends them; false once the client has gone.
struct Sink {
    tx: tokio::sync::mpsc::Sender<Result<Vec<u8>, std::io::Error>>,
    buf: Vec<u8>,
    format: Format,
    rows: u64,
}

impl Sink {
    fn row(&mut self, csv: impl FnOnce() -> String, json: impl Serialize) -> bool {
        match self.format {
            Format::Csv => self.buf.extend_from_slice(csv().as_bytes()),
            Format::Json => {
                self.buf
                    .extend_from_slice(if self.rows == 0 { b"\n" } else { b",\n" });
                if let Err(e) = serde_json::to_writer(&mut self.buf, &json) {
                    tracing::error!(error = %e, "cannot serialise an export row");
                }
            }
        }
        self.rows += 1;
        self.buf.len() < CHUNK || self.send()
    }

    fn send(&mut self) -> bool {
        let chunk = std::mem::take(&mut self.buf);
        self.tx.blocking_send(Ok(chunk)).is_ok()
    }

    fn fail(&mut self, e: StoreError) {
        tracing::error!(error = %e, "export stopped by a store error");
        let _ = self.send();
        let _ = self
            .tx
            .blocking_send(Err(std::io::Error::other(e.to_string())));
    }
}

/// The records an export keeps, from the same parameters as the history lists: `class` for
/// activities and spans, `label` and `source` for sound events.
#[derive(Default)]
struct Filter {
    class: Option<ActivityClass>,
    label: Option<String>,
    source: Option<String>,
}

impl Filter {
    fn event(&self, e: &SoundEventDto) -> bool {
        self.label.as_ref().is_none_or(|l| *l == e.label)
            && self.source.as_ref().is_none_or(|s| *s == e.source)
    }

    fn class(&self, c: ActivityClass) -> bool {
        self.class.is_none_or(|want| want == c)
    }
}

fn produce(
    store: Store,
    kind: Kind,
    format: Format,
    range: TimeRange,
    filter: Filter,
    mut sink: Sink,
) {
    if format == Format::Csv {
        let header = match kind {
            Kind::Activities => activity_header(),
            Kind::Spans => {
                "start,end,start_ms,end_ms,activity,duration_s,windows,mean_confidence\n".into()
            }
            Kind::SoundEvents => "onset,onset_ms,end_ms,source,label,score\n".into(),
        };
        sink.buf.extend_from_slice(header.as_bytes());
    } else {
        sink.buf.push(b'[');
    }
    let completed = match kind {
        Kind::Activities => each(store.iter_activities(range), &mut sink, |sink, c| {
            !filter.class(c.activity) || sink.row(|| activity_row(&c), ActivityDto::from(c.clone()))
        }),
        Kind::Spans => each(store.iter_spans(range), &mut sink, |sink, s| {
            if !filter.class(s.class) {
                return true;
            }
            let dto = SpanDto::from(s);
            sink.row(|| span_row(&dto), &dto)
        }),
        Kind::SoundEvents => each(store.iter_sound_events(range), &mut sink, |sink, e| {
            let dto = SoundEventDto::from(e);
            !filter.event(&dto) || sink.row(|| event_row(&dto), &dto)
        }),
    };
    if completed {
        if format == Format::Json {
            sink.buf.extend_from_slice(b"\n]\n");
        }
        let _ = sink.send();
    }
}

/// Feeds every record to `row` until the client goes or the store fails; true when all went.
fn each<T>(
    items: impl Iterator<Item = Result<T, StoreError>>,
    sink: &mut Sink,
    mut row: impl FnMut(&mut Sink, T) -> bool,
) -> bool {
    for item in items {
        match item {
            Ok(record) => {
                if !row(sink, record) {
                    return false;
                }
            }
            Err(e) => {
                sink.fail(e);
                return false;
            }
        }
    }
    true
}

/// Checks the request and starts streaming; a bad request gets a 400 naming the parameter.
pub fn start(store: &Store, query: HashMap<String, String>) -> Result<Response, Response> {
    let p = Params::new(
        query,
        &[
            "kind", "format", "start", "end", "tz", "class", "label", "source",
        ],
    )?;
    let kind = match p.get("kind") {
        Some("activities") => Kind::Activities,
        Some("spans") => Kind::Spans,
        Some("sound-events") => Kind::SoundEvents,
        Some(other) => {
            return Err(bad(
                "kind",
                format!("{other:?} is not one of activities, spans, sound-events"),
            ))
        }
        None => return Err(bad("kind", "required: activities, spans or sound-events")),
    };
    let format = match p.get("format").unwrap_or("json") {
        "csv" => Format::Csv,
        "json" => Format::Json,
        other => return Err(bad("format", format!("{other:?} is not one of csv, json"))),
    };
    let range = in_zone!(p.zone()?, |tz| p.range(&tz))?;
    let filter = match kind {
        Kind::Activities | Kind::Spans => {
            if let Some(name) = ["label", "source"].into_iter().find(|n| p.get(n).is_some()) {
                return Err(bad(name, "filters sound events only (kind=sound-events)"));
            }
            Filter {
                class: p.class()?,
                ..Filter::default()
            }
        }
        Kind::SoundEvents => {
            if p.get("class").is_some() {
                return Err(bad("class", "filters activities and spans only"));
            }
            Filter {
                label: p.text("label"),
                source: p.text("source"),
                ..Filter::default()
            }
        }
    };
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let sink = Sink {
        tx,
        buf: Vec::with_capacity(CHUNK + 4096),
        format,
        rows: 0,
    };
    let store = store.clone();
    tokio::task::spawn_blocking(move || produce(store, kind, format, range, filter, sink));
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    let mut response = warp::reply::Response::new(warp::hyper::Body::wrap_stream(stream));
    let (content_type, ext) = match format {
        Format::Csv => ("text/csv; charset=utf-8", "csv"),
        Format::Json => ("application/json", "json"),
    };
    let name = match kind {
        Kind::Activities => "activities",
        Kind::Spans => "spans",
        Kind::SoundEvents => "sound-events",
    };
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}.{ext}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    *response.status_mut() = StatusCode::OK;
    Ok(response)
}
