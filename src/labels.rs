//! `cav eval LABELS.csv` and `cav train LABELS.csv`: the classifiers measured on labelled media
//! files, and the learned head trained on them (see `cav_actors::labelled`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use cav_actors::labelled::{evaluate, read_labels, summarize_file, Confusion, Labelled};
use cav_actors::offline::{OfflineModels, OfflineSettings};
use cav_core::feature_vector::{feature_vector, NUM_FEATURES};
use cav_core::window::WindowSummary;
use cav_core::ActivityClass;
use cav_models::activity_head::{ActivityHead, TrainOptions};
use serde::{Deserialize, Serialize};

use crate::classifier::Choice;
use crate::config::Config;

#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// CSV with the columns `file` and `class`; paths relative to its folder.
    pub labels: PathBuf,
    /// Classifiers to measure, comma-separated (default: classifier.model).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub classifier: Vec<Choice>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Keep the files' features in this JSON file and reuse them while the files are unchanged.
    #[arg(long, value_name = "FILE")]
    pub cache: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// CSV with the columns `file` and `class`; paths relative to its folder.
    pub labels: PathBuf,
    /// Where to write the head.
    #[arg(long, default_value = "models/activity_head.safetensors")]
    pub out: PathBuf,
    /// Cross-validation folds (default: leave one file out).
    #[arg(long)]
    pub folds: Option<usize>,
    #[arg(long, default_value_t = TrainOptions::default().epochs)]
    pub epochs: usize,
    /// L2 penalty on the weights.
    #[arg(long, default_value_t = TrainOptions::default().l2)]
    pub l2: f64,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// As for `cav eval`.
    #[arg(long, value_name = "FILE")]
    pub cache: Option<PathBuf>,
}

/// A cached summary, valid while the file's size and modification time are unchanged.
#[derive(Debug, Serialize, Deserialize)]
struct Cached {
    size: u64,
    modified_ms: u128,
    summary: WindowSummary,
}

fn file_stamp(path: &Path) -> Option<(u64, u128)> {
    let meta = std::fs::metadata(path).ok()?;
    let modified = meta
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    Some((meta.len(), modified.as_millis()))
}

/// Every labelled file's summary (analysed now, or from the cache).
fn summaries(
    config: &Config,
    labels: &Path,
    cache: Option<&Path>,
) -> anyhow::Result<Vec<(Labelled, WindowSummary)>> {
    let labelled = read_labels(labels)?;
    let mut cached: BTreeMap<String, Cached> = match cache {
        Some(p) if p.is_file() => std::fs::read_to_string(p)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default(),
        _ => BTreeMap::new(),
    };
    let settings = OfflineSettings {
        window: Duration::from_secs(1),
        span: Duration::from_millis(config.sync.span_ms),
        analysis_fps: config.video.analysis_fps,
        analysis_width: config.video.analysis_width,
        motion_threshold: config.video.motion_threshold,
        vision_fps: config.vision.fps,
    };
    let yamnet = if config.hearing.enabled {
        Some(crate::hearing::load_yamnet(&config.hearing)?)
    } else {
        None
    };
    let mut vision = crate::offline::load_vision(config, false)?;
    let mut out = Vec::new();
    for (i, l) in labelled.into_iter().enumerate() {
        let key = l.file.display().to_string();
        let stamp = file_stamp(&l.file);
        let hit = cached
            .get(&key)
            .filter(|c| Some((c.size, c.modified_ms)) == stamp)
            .map(|c| c.summary.clone());
        let summary = match hit {
            Some(s) => s,
            None => {
                eprintln!("analysing {key} ({})", i + 1);
                let mut hearing = yamnet.clone().map(|y| {
                    cav_models::hearing::Hearing::new(
                        y,
                        crate::hearing::hearing_config(&config.hearing),
                    )
                });
                let s = summarize_file(
                    &l.file,
                    &settings,
                    OfflineModels {
                        hearing: hearing.as_mut(),
                        vision: vision.as_mut(),
                    },
                )?;
                if let Some((size, modified_ms)) = stamp {
                    cached.insert(
                        key,
                        Cached {
                            size,
                            modified_ms,
                            summary: s.clone(),
                        },
                    );
                }
                s
            }
        };
        out.push((l, summary));
    }
    if let Some(p) = cache {
        std::fs::write(p, serde_json::to_string(&cached)?)
            .with_context(|| format!("cannot write the cache {}", p.display()))?;
    }
    Ok(out)
}

#[derive(Serialize)]
struct EvalReport<'a> {
    classifier: &'static str,
    files: usize,
    correct: u32,
    accuracy: f32,
    per_class: BTreeMap<&'static str, f32>,
    classes: [&'static str; 7],
    confusion: &'a Confusion,
    verdicts: Vec<cav_actors::labelled::Verdict>,
}

fn print_report(r: &EvalReport<'_>, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(r)?);
        return Ok(());
    }
    println!(
        "== {}: {}/{} files right, accuracy {:.1} %",
        r.classifier,
        r.correct,
        r.files,
        r.accuracy * 100.0
    );
    for v in &r.verdicts {
        let mark = if v.truth == v.predicted { "ok " } else { "BAD" };
        println!(
            "  {mark} {:<40} {:>16} -> {:<16} {:.2}  [{}]",
            Path::new(&v.file)
                .file_name()
                .map_or(v.file.clone(), |n| n.to_string_lossy().to_string()),
            v.truth.as_str(),
            v.predicted.as_str(),
            v.confidence,
            v.drivers.join(", ")
        );
    }
    print!("{}", r.confusion.render());
    println!();
    Ok(())
}

pub fn eval(args: &EvalArgs, config_path: Option<&Path>) -> anyhow::Result<()> {
    let config = Config::load(config_path, std::env::vars())?;
    let examples = summaries(&config, &args.labels, args.cache.as_deref())?;
    let choices = if args.classifier.is_empty() {
        vec![Choice::from_config(&config.classifier.model)]
    } else {
        args.classifier.clone()
    };
    for choice in choices {
        let classifier = crate::classifier::build(&config.classifier, Some(choice))?;
        let (confusion, verdicts) = evaluate(classifier.as_ref(), &examples);
        print_report(
            &EvalReport {
                classifier: classifier.name(),
                files: examples.len(),
                correct: confusion.correct(),
                accuracy: confusion.accuracy(),
                per_class: confusion.per_class(),
                classes: ActivityClass::ALL.map(|c| c.as_str()),
                confusion: &confusion,
                verdicts,
            },
            args.json,
        )?;
    }
    Ok(())
}

#[derive(Serialize)]
struct TrainReport<'a> {
    files: usize,
    folds: usize,
    cv_correct: u32,
    cv_accuracy: f32,
    cv_per_class: BTreeMap<&'static str, f32>,
    classes: [&'static str; 7],
    cv_confusion: &'a Confusion,
    training_accuracy: f32,
    out: String,
}

pub fn train(args: &TrainArgs, config_path: Option<&Path>) -> anyhow::Result<()> {
    let config = Config::load(config_path, std::env::vars())?;
    let examples = summaries(&config, &args.labels, args.cache.as_deref())?;
    let data: Vec<([f32; NUM_FEATURES], ActivityClass)> = examples
        .iter()
        .map(|(l, w)| (feature_vector(w), l.class))
        .collect();
    let options = TrainOptions {
        epochs: args.epochs,
        l2: args.l2,
        ..TrainOptions::default()
    };
    let n = data.len();
    let folds = args.folds.unwrap_or(n).clamp(2, n.max(2));
    // Fold of each example: stratified by class, so every fold sees every class it can.
    let mut fold_of = vec![0usize; n];
    let mut seen: BTreeMap<ActivityClass, usize> = BTreeMap::new();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| data[i].1);
    for (k, &i) in order.iter().enumerate() {
        let c = seen.entry(data[i].1).or_default();
        fold_of[i] = if folds >= n { k } else { (*c + k) % folds };
        *c += 1;
    }
    let mut confusion = Confusion::default();
    for f in 0..folds {
        let train: Vec<_> = (0..n)
            .filter(|&i| fold_of[i] != f)
            .map(|i| data[i])
            .collect();
        let test: Vec<_> = (0..n).filter(|&i| fold_of[i] == f).collect();
        if test.is_empty() {
            continue;
        }
        let head = ActivityHead::train(&train, options)?;
        for i in test {
            let (class, _) = head.predict(&data[i].0);
            confusion.add(data[i].1, class);
        }
    }
    let head = ActivityHead::train(&data, options)?;
    let training_accuracy = cav_models::activity_head::accuracy(&head, &data);
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    head.save(&args.out)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    let report = TrainReport {
        files: n,
        folds,
        cv_correct: confusion.correct(),
        cv_accuracy: confusion.accuracy(),
        cv_per_class: confusion.per_class(),
        classes: ActivityClass::ALL.map(|c| c.as_str()),
        cv_confusion: &confusion,
        training_accuracy,
        out: args.out.display().to_string(),
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "cross-validated ({} folds over {} files): {}/{} right, accuracy {:.1} %",
            folds,
            n,
            report.cv_correct,
            n,
            report.cv_accuracy * 100.0
        );
        print!("{}", confusion.render());
        println!(
            "head trained on all {} files (training accuracy {:.1} %) written to {}",
            n,
            training_accuracy * 100.0,
            report.out
        );
    }
    Ok(())
}
