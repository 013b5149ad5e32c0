//! Loading YAMNet (built into the binary unless `hearing.model` names a file) and turning
//! `[hearing]` into the hearing engine's configuration.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use cav_models::hearing::{EventKind, HearingConfig};
use cav_models::Yamnet;

use std::collections::BTreeMap;

use crate::config::{EventRuleSection, HearingSection};

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
    hearing_config_for(section, &BTreeMap::new())
}

/// The same, with one source's own overrides applied after the global ones.
pub fn hearing_config_for(
    section: &HearingSection,
    source: &BTreeMap<String, EventRuleSection>,
) -> HearingConfig {
    let mut rules = HearingConfig::default_rules();
    // The source's own setting wins over the global one, which wins over the built-in one.
    let claps_over_loud_background = [source, &section.events]
        .into_iter()
        .find_map(|o| o.get(EventKind::Clap.as_str())?.over_loud_background)
        .unwrap_or(HearingConfig::default().claps_over_loud_background);
    rules.retain_mut(|rule| {
        let mut keep = true;
        for overrides in [&section.events, source] {
            let Some(o) = overrides.get(rule.kind.as_str()) else {
                continue;
            };
            if let Some(t) = o.threshold {
                rule.threshold = t;
            }
            if let Some(g) = o.min_gap_s {
                rule.min_gap_s = g;
            }
            if let Some(enabled) = o.enabled {
                keep = enabled;
            }
        }
        keep
    });
    HearingConfig {
        hop_s: section.hop_s,
        level_gate_dbfs: section.level_gate_dbfs,
        top_k: section.top_k,
        events: rules,
        claps_over_loud_background,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn rule(c: &HearingConfig, kind: EventKind) -> Option<(f32, f32)> {
        c.events
            .iter()
            .find(|r| r.kind == kind)
            .map(|r| (r.threshold, r.min_gap_s))
    }

    #[test]
    fn source_overrides_apply_after_global_ones() {
        let mut config = Config::load(None, Vec::new()).unwrap();
        let builtin = hearing_config(&config.hearing);
        let (clap_t, clap_gap) = rule(&builtin, EventKind::Clap).unwrap();
        config.hearing.events.insert(
            "clap".into(),
            EventRuleSection {
                threshold: Some(0.8),
                min_gap_s: None,
                enabled: None,
                over_loud_background: Some(false),
            },
        );
        config.hearing.events.insert(
            "typing".into(),
            EventRuleSection {
                threshold: None,
                min_gap_s: None,
                enabled: Some(false),
                over_loud_background: None,
            },
        );
        let global = hearing_config(&config.hearing);
        assert_eq!(rule(&global, EventKind::Clap), Some((0.8, clap_gap)));
        assert_eq!(rule(&global, EventKind::Typing), None, "typing turned off");
        assert!(builtin.claps_over_loud_background);
        assert!(!global.claps_over_loud_background);
        let mut own = BTreeMap::new();
        own.insert(
            "clap".to_string(),
            EventRuleSection {
                threshold: None,
                min_gap_s: Some(0.5),
                enabled: None,
                over_loud_background: Some(true),
            },
        );
        own.insert(
            "typing".to_string(),
            EventRuleSection {
                threshold: None,
                min_gap_s: None,
                enabled: Some(true),
                over_loud_background: None,
            },
        );
        let mine = hearing_config_for(&config.hearing, &own);
        assert_eq!(rule(&mine, EventKind::Clap), Some((0.8, 0.5)));
        assert!(
            mine.claps_over_loud_background,
            "turned back on for this source"
        );
        assert!(
            rule(&mine, EventKind::Typing).is_some(),
            "turned back on for this source"
        );
        assert_ne!(clap_t, 0.8);
    }
}
