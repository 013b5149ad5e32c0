//! `cav analyze FILE`: the offline analyser's command-line face.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use cav_actors::offline::{
    analyze_file, OfflineModels, OfflineOutput, OfflineSettings, OfflineWindow,
};
use cav_core::ActivityClass;
use serde::Serialize;

use crate::cli::{AnalyzeArgs, OutputFormat};
use crate::config::Config;

/// One output line per window (`--format json`).
#[derive(Debug, Serialize)]
struct ActivityLine<'a> {
    kind: &'static str,
    t_start: f64,
    t_end: f64,
    class: &'a str,
    confidence: f32,
    scores: BTreeMap<&'static str, f32>,
    drivers: &'a [cav_core::classify::Driver],
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

pub fn analyze(args: &AnalyzeArgs, config_path: Option<&Path>) -> anyhow::Result<()> {
    let config = Config::load(config_path, std::env::vars())?;
    let window_s = args.window.unwrap_or(config.classifier.window_s);
    if !(window_s.is_finite() && window_s > 0.0 && window_s <= 86_400.0) {
        anyhow::bail!("--window must be a number of seconds between 0 and 86400, got {window_s}");
    }
    let settings = OfflineSettings {
        window: Duration::from_secs_f64(window_s),
        span: Duration::from_millis(config.sync.span_ms),
        analysis_fps: config.video.analysis_fps,
        analysis_width: config.video.analysis_width,
        motion_threshold: config.video.motion_threshold,
        vision_fps: config.vision.fps,
    };
    let classifier = crate::classifier::build(&config.classifier, args.classifier)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut write_error = None;
    if args.format == OutputFormat::Csv {
        let header: Vec<String> = ["t_start", "t_end", "class", "confidence"]
            .into_iter()
            .map(String::from)
            .chain(ActivityClass::ALL.iter().map(|c| format!("score_{c}")))
            .collect();
        writeln!(out, "{}", header.join(","))?;
    }
    let mut hearing = if config.hearing.enabled && !args.no_hearing {
        let yamnet = crate::hearing::load_yamnet(&config.hearing)?;
        Some(cav_models::hearing::Hearing::new(
            yamnet,
            crate::hearing::hearing_config(&config.hearing),
        ))
    } else {
        None
    };
    if args.interval.is_some() || args.at.is_some() {
        return analyze_sampled(args, &config, hearing.as_mut(), &mut out);
    }
    let mut vision = load_vision(&config, args.no_vision)?;
    let report = analyze_file(
        &args.file,
        &settings,
        classifier.as_ref(),
        OfflineModels {
            hearing: hearing.as_mut(),
            vision: vision.as_mut(),
        },
        |o| {
            if write_error.is_none() {
                let written = match &o {
                    OfflineOutput::Window(w) => write_window(&mut out, w, args.format),
                    OfflineOutput::Event(e) => write_event(&mut out, e, args.format),
                };
                if let Err(e) = written {
                    write_error = Some(e);
                }
            }
        },
    )
    .with_context(|| format!("cannot analyse {}", args.file.display()))?;
    if let Some(e) = write_error {
        return Err(e.into());
    }
    out.flush()?;
    if report.windows == 0 {
        anyhow::bail!("{} has no frames or audio to analyse", args.file.display());
    }
    tracing::debug!(?report, "analysis finished");
    Ok(())
}

/// The vision models, unless `[vision]` is off or `--no-vision` was given.
pub fn load_vision(config: &Config, no_vision: bool) -> anyhow::Result<Option<cav_models::Vision>> {
    if !config.vision.enabled || no_vision {
        return Ok(None);
    }
    let mut v = cav_models::Vision::embedded().context("cannot load the vision models")?;
    v.set_options(config.vision.options());
    Ok(Some(v))
}

/// The summary line of a sampled analysis (`--format json`).
#[derive(Debug, Serialize)]
struct SummaryLine {
    kind: &'static str,
    #[serde(flatten)]
    summary: cav_actors::store::AnalysisSummary,
}

/// `--interval` / `--at`: the analysis jobs' sampling, on the command line.
fn analyze_sampled(
    args: &AnalyzeArgs,
    config: &Config,
    hearing: Option<&mut cav_models::hearing::Hearing>,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    use cav_actors::analysis::{analyze_samples, SampleSettings, Sampling};
    let sampling = match (args.interval, args.at) {
        (Some(interval_s), _) => Sampling::Every { interval_s },
        (None, Some(t_s)) => Sampling::At { t_s },
        (None, None) => anyhow::bail!("--interval or --at is needed"),
    };
    let settings = SampleSettings {
        sampling,
        span: Duration::from_millis(config.sync.span_ms),
        analysis_fps: config.video.analysis_fps,
        analysis_width: config.video.analysis_width,
        motion_threshold: config.video.motion_threshold,
    };
    let mut classes: BTreeMap<String, u64> = BTreeMap::new();
    let mut events = 0u64;
    let mut write_error = None;
    let cancel = std::sync::atomic::AtomicBool::new(false);
    let classifier = crate::classifier::build(&config.classifier, args.classifier)?;
    analyze_samples(
        &args.file,
        &settings,
        classifier.as_ref(),
        hearing,
        &cancel,
        |_, _| {},
        |sample| {
            *classes
                .entry(sample.decision.activity.to_string())
                .or_default() += 1;
            events += sample.events.len() as u64;
            let window = OfflineWindow {
                t_start: sample.t_s,
                t_end: sample.t_s + settings.span.as_secs_f64(),
                summary: sample.summary,
                decision: sample.decision,
            };
            let written = write_window(out, &window, args.format).and_then(|()| {
                sample
                    .events
                    .iter()
                    .try_for_each(|e| write_event(out, e, args.format))
            });
            if let Err(e) = written {
                write_error.get_or_insert(e);
            }
        },
    )
    .with_context(|| format!("cannot analyse {}", args.file.display()))?;
    if let Some(e) = write_error {
        return Err(e.into());
    }
    if args.format == OutputFormat::Json {
        let line = SummaryLine {
            kind: "summary",
            summary: cav_actors::jobs::summarize(&classes, events),
        };
        writeln!(out, "{}", serde_json::to_string(&line)?)?;
    }
    out.flush()?;
    Ok(())
}

/// One output line per sound event (`--format json`); in CSV, events are not written (the CSV
/// has one row per window).
#[derive(Debug, Serialize)]
struct EventLine<'a> {
    kind: &'static str,
    t: f64,
    label: &'a str,
    score: f32,
    #[serde(skip_serializing_if = "Option::is_none")]
    t_end: Option<f64>,
}

fn write_event(
    out: &mut impl Write,
    e: &cav_models::hearing::SoundEvent,
    format: OutputFormat,
) -> std::io::Result<()> {
    if format != OutputFormat::Json {
        return Ok(());
    }
    let line = EventLine {
        kind: "sound_event",
        t: round3(e.onset),
        label: e.kind.as_str(),
        score: e.score,
        t_end: e.end.map(round3),
    };
    let json = serde_json::to_string(&line).map_err(std::io::Error::other)?;
    writeln!(out, "{json}")
}

fn write_window(
    out: &mut impl Write,
    w: &OfflineWindow,
    format: OutputFormat,
) -> std::io::Result<()> {
    let d = &w.decision;
    match format {
        OutputFormat::Json => {
            let line = ActivityLine {
                kind: "activity",
                t_start: round3(w.t_start),
                t_end: round3(w.t_end),
                class: d.activity.as_str(),
                confidence: d.confidence,
                scores: d.scores.iter().map(|(c, s)| (c.as_str(), s)).collect(),
                drivers: &d.drivers,
            };
            let json = serde_json::to_string(&line).map_err(std::io::Error::other)?;
            writeln!(out, "{json}")
        }
        OutputFormat::Csv => {
            let mut row = vec![
                format!("{:.3}", w.t_start),
                format!("{:.3}", w.t_end),
                d.activity.to_string(),
                format!("{:.4}", d.confidence),
            ];
            row.extend(d.scores.iter().map(|(_, s)| format!("{s:.4}")));
            writeln!(out, "{}", row.join(","))
        }
    }
}
