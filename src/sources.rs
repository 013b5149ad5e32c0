//! From `[[sources]]` entries to the pipeline's source specs.

use cav_actors::actor::mic_source::MicSettings;
use cav_actors::actor::rtsp_source::{RtspSettings, RtspTransport};
use cav_actors::actor::source_manager::{AudioSourceKind, AudioSourceSpec};
use cav_actors::mic::DeviceSelector;

use crate::config::{Config, SourceDef, SourceKind};

/// "default", a number (an index in `cav devices`), or a device name.
pub fn device_selector(device: Option<&str>) -> DeviceSelector {
    match device.map(str::trim) {
        None | Some("") | Some("default") => DeviceSelector::Default,
        Some(d) => match d.parse::<usize>() {
            Ok(i) => DeviceSelector::Index(i),
            Err(_) => DeviceSelector::Name(d.to_string()),
        },
    }
}

/// The spec of one validated entry.
pub fn spec(def: &SourceDef, config: &Config) -> Option<AudioSourceSpec> {
    let kind = match def.kind {
        SourceKind::Microphone => AudioSourceKind::Microphone(MicSettings {
            device: device_selector(def.device.as_deref()),
        }),
        SourceKind::Rtsp => {
            let mut settings = RtspSettings::new(def.url.clone().unwrap_or_default());
            if def.transport.as_deref() == Some("udp") {
                settings.transport = RtspTransport::Udp;
            }
            AudioSourceKind::Rtsp(settings)
        }
        SourceKind::Vban => AudioSourceKind::Vban {
            stream: def.stream.clone().unwrap_or_default(),
            // Validated as an IP address.
            sender: def.sender.as_deref().and_then(|s| s.parse().ok()),
        },
    };
    Some(AudioSourceSpec {
        id: def.id.clone(),
        enabled: def.enabled,
        kind,
        webhook: def.webhook.clone(),
        hearing: (!def.events.is_empty())
            .then(|| crate::hearing::hearing_config_for(&config.hearing, &def.events)),
    })
}

pub fn specs(config: &Config) -> Vec<AudioSourceSpec> {
    config
        .sources
        .iter()
        .filter_map(|d| spec(d, config))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_strings_select_devices() {
        assert_eq!(device_selector(None), DeviceSelector::Default);
        assert_eq!(device_selector(Some("default")), DeviceSelector::Default);
        assert_eq!(device_selector(Some("2")), DeviceSelector::Index(2));
        assert_eq!(
            device_selector(Some("pulse")),
            DeviceSelector::Name("pulse".into())
        );
    }
}
