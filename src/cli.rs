//! Command-line interface.

use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::{Config, LogFormat};

#[derive(Debug, Parser)]
#[command(
    name = "cav",
    version,
    about = "Watches a person through a camera and a microphone and says what they are doing."
)]
pub struct Cli {
    /// Configuration file laid over the built-in defaults (config/default.toml).
    #[arg(long, short, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Log format; overrides log.format.
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormat>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon (the default).
    Run,
    /// Check a configuration file (and CAV_* environment overrides); exit non-zero naming the bad key.
    CheckConfig {
        /// The file to check; without it, the built-in defaults and the environment.
        path: Option<PathBuf>,
    },
    /// List the audio input devices (microphones) with their index, as /api/audio-devices does.
    Devices,
    /// Analyse a media file offline, as fast as possible, printing one line per window.
    Analyze(AnalyzeArgs),
    /// Measure classifiers on labelled media files: accuracy and confusion matrix.
    Eval(crate::labels::EvalArgs),
    /// Train the learned activity head on labelled media files (cross-validated).
    Train(crate::labels::TrainArgs),
}

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// The video or audio file.
    pub file: PathBuf,
    /// Window length in seconds (default: classifier.window_s).
    #[arg(long, value_name = "SECONDS")]
    pub window: Option<f64>,
    #[arg(long, value_enum, default_value_t = OutputFormat::Json)]
    pub format: OutputFormat,
    /// Skip YAMNet and sound events (faster; activity windows only).
    #[arg(long)]
    pub no_hearing: bool,
    /// Skip the person and posture models (faster; no presence or posture features).
    #[arg(long)]
    pub no_vision: bool,
    /// The classifier (default: classifier.model).
    #[arg(long, value_enum)]
    pub classifier: Option<crate::classifier::Choice>,
    /// Sample the file every N seconds instead of classifying consecutive windows: each sample
    /// is classified from one span (as the analyses of `POST /api/analyses` are), then a summary.
    #[arg(long, value_name = "SECONDS", conflicts_with_all = ["window", "at"])]
    pub interval: Option<f64>,
    /// Classify one sample at this time (seconds from the start).
    #[arg(long, value_name = "SECONDS", conflicts_with = "window")]
    pub at: Option<f64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// One JSON object per line.
    Json,
    /// A header line, then one row per window.
    Csv,
}

pub fn devices() -> anyhow::Result<()> {
    let devices = cav_actors::mic::list_devices()?;
    if devices.is_empty() {
        println!("no audio input devices");
    }
    for d in devices {
        println!(
            "{:>3}  {}{}  ({} ch, {} Hz)",
            d.index,
            d.name,
            if d.default { "  [default]" } else { "" },
            d.channels,
            d.default_sample_rate
        );
    }
    Ok(())
}

pub fn check_config(path: Option<&Path>) -> anyhow::Result<()> {
    let config = Config::load(path, std::env::vars())?;
    println!(
        "configuration OK{}: http.bind = {}, classifier.window_s = {}, file source {}",
        path.map(|p| format!(" ({})", p.display()))
            .unwrap_or_default(),
        config.http.bind,
        config.classifier.window_s,
        if config.file.enabled {
            if config.file.path.is_empty() {
                "on the built-in demo clip".to_string()
            } else {
                config.file.path.clone()
            }
        } else {
            "disabled".to_string()
        }
    );
    Ok(())
}
