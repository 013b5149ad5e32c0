//! Choosing the activity classifier from `[classifier]`: the transparent rules or the learned
//! head (`models/activity_head.safetensors`, written by `cav train`).

use std::sync::Arc;

use anyhow::Context as _;
use cav_core::smooth::SmoothingSettings;
use cav_core::{Classifier, RuleClassifier};
use cav_models::activity_head::ActivityHead;

use crate::config::ClassifierConfig;

/// Which classifier to use, as named in `classifier.model` and `cav eval --classifier`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Choice {
    /// The learned head when its file exists, else the rules.
    Auto,
    Rules,
    Head,
    /// The original project's seven rules (a baseline for `cav eval` only).
    Original,
}

impl Choice {
    pub fn from_config(model: &str) -> Self {
        match model {
            "rules" => Choice::Rules,
            "head" => Choice::Head,
            _ => Choice::Auto,
        }
    }
}

/// The classifier `choice` names (the config's when `None`).
pub fn build(
    config: &ClassifierConfig,
    choice: Option<Choice>,
) -> anyhow::Result<Arc<dyn Classifier>> {
    let choice = choice.unwrap_or_else(|| Choice::from_config(&config.model));
    let head = || -> anyhow::Result<Arc<dyn Classifier>> {
        let head = ActivityHead::load(&config.head_path)
            .with_context(|| "classifier.head_path: the learned head cannot be used")?;
        Ok(Arc::new(head))
    };
    Ok(match choice {
        Choice::Rules => Arc::new(RuleClassifier),
        Choice::Original => Arc::new(cav_core::baseline::OriginalRules),
        Choice::Head => head()?,
        Choice::Auto if config.head_path.is_file() => head()?,
        Choice::Auto => Arc::new(RuleClassifier),
    })
}

pub fn smoothing(config: &ClassifierConfig) -> SmoothingSettings {
    SmoothingSettings {
        min_windows: config.smoothing_windows,
        margin: config.smoothing_margin as f32,
    }
}
