//! Loading YAMNet (built into the binary unless `hearing.model` names a file) and turning
//! `[hearing]` into the hearing engine's configuration.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use cav_models::hearing::HearingConfig;
use cav_models::Yamnet;

use crate::config::HearingSection;

/// YAMNet's weights and class map, shipped inside the binary (see models/README.md).
const YAMNET_WEIGHTS: &[u8] = include_bytes!("../models/yamnet.safetensors");
const YAMNET_CLASSES: &str = include_str!("../models/yamnet_class_map.csv");

pub fn load_yamnet(section: &HearingSection) -> anyhow::Result<Arc<Yamnet>> {
    let model = if section.model.is_empty() {
        Yamnet::from_bytes(YAMNET_WEIGHTS, YAMNET_CLASSES)
            .context("cannot load the built-in YAMNet weights")?
    } else {
        let weights = Path::new(&section.model);
        let classes = weights.with_file_name("yamnet_class_map.csv");
        Yamnet::load(weights, &classes)
            .with_context(|| format!("cannot load hearing.model = {}", section.model))?
    };
    Ok(Arc::new(model))
}

/// The engine's configuration: built-in rules with the `[hearing.events.*]` overrides applied.
pub fn hearing_config(section: &HearingSection) -> HearingConfig {
    let mut rules = HearingConfig::default_rules();
    rules.retain_mut(|rule| {
        let Some(o) = section.events.get(rule.kind.as_str()) else {
            return true;
        };
        if let Some(t) = o.threshold {
            rule.threshold = t;
        }
        if let Some(g) = o.min_gap_s {
            rule.min_gap_s = g;
        }
        o.enabled != Some(false)
    });
    HearingConfig {
        hop_s: section.hop_s,
        level_gate_dbfs: section.level_gate_dbfs,
        top_k: section.top_k,
        events: rules,
    }
}
