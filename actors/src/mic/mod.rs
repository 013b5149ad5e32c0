//! Microphones through cpal: which input devices there are, how one is chosen, and how its
//! samples become the pipeline's audio (mono `f32` at 16 kHz, stamped with capture times).
//!
//! Plain blocking code without actix: the daemon's `cav devices` command calls
//! [`list_devices`] directly, and the [`MicSource`](crate::actor::mic_source::MicSource) actor
//! runs a [`CaptureThread`], which uses [`resolve`] and [`ChunkAssembler`].
//!
//! **Devices** are the input devices of cpal's default host (ALSA on Linux), in cpal's order.
//! A device's index is its position in that list, so it is stable as long as the set of devices
//! is; a name is stable across plugging. Under PulseAudio (with the ALSA pulse plugin from
//! `libasound2-plugins`) ALSA's `default` and `pulse` devices record from PulseAudio's default
//! source. A particular PulseAudio source becomes a device of its own with an ALSA PCM of type
//! `pulse` in `~/.asoundrc` (or a file named in `ALSA_CONFIG_PATH`), for example
//!
//! ```text
//! pcm.desk_mic { type pulse  device "alsa_input.usb-XYZ.analog-stereo"
//!                hint { show on  description "Desk microphone" } }
//! ```
//!
//! which then lists as `desk_mic` (`scripts/pulse-harness.sh` does this for its monitors).
//!
//! cpal's ALSA enumeration opens every device to read its formats: a device that another program
//! (or our own capture) holds exclusively (a raw `hw:` device) is missing from the list while it
//! is busy, and ALSA prints harmless complaints about absent cards and JACK to stderr.

pub mod capture;
pub mod convert;
pub mod stream;

use cpal::traits::{DeviceTrait, HostTrait};
use serde::{Deserialize, Serialize};

pub use capture::{CaptureFormat, ChunkAssembler, CHUNK_SAMPLES, REANCHOR_AFTER};
pub use convert::{choose_config, data_to_f32, is_readable_format};
pub use stream::{CaptureJob, CaptureThread};

use crate::resample::ResampleError;

/// One input device of the default host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AudioDevice {
    /// Position in [`list_devices`]'s list.
    pub index: usize,
    /// cpal's (for ALSA: the PCM's) name, e.g. `default`, `pulse`, `hw:CARD=PCH,DEV=0`.
    pub name: String,
    /// Channels of the device's default input format.
    pub channels: u16,
    /// Sample rate of the device's default input format, in Hz.
    pub default_sample_rate: u32,
    /// True for the host's default input device.
    pub default: bool,
}

/// Which input device to capture from.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum DeviceSelector {
    /// The host's default input device (ALSA: `default`).
    Default,
    /// The device at this position in [`list_devices`]'s list.
    Index(usize),
    /// The device with this name (exact, or else case-insensitive if that is unambiguous).
    Name(String),
}

impl std::fmt::Display for DeviceSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceSelector::Default => f.write_str("the default input device"),
            DeviceSelector::Index(i) => write!(f, "input device #{i}"),
            DeviceSelector::Name(n) => write!(f, "input device '{n}'"),
        }
    }
}

impl std::str::FromStr for DeviceSelector {
    type Err = std::convert::Infallible;

    /// `""` → [`DeviceSelector::Default`], digits → [`DeviceSelector::Index`], anything else →
    /// [`DeviceSelector::Name`] (so `"default"` names ALSA's `default` device, which is the
    /// default device anyway).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        Ok(if s.is_empty() {
            DeviceSelector::Default
        } else if let Ok(i) = s.parse::<usize>() {
            DeviceSelector::Index(i)
        } else {
            DeviceSelector::Name(s.to_string())
        })
    }
}

/// Why a microphone could not be listed, found, opened or read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MicError {
    #[error("cannot list the audio input devices: {0}")]
    Enumerate(String),
    /// `available` holds one `INDEX 'NAME'` entry per device.
    #[error("no input device with index {index} ({})", there_are(available))]
    UnknownIndex {
        index: usize,
        available: Vec<String>,
    },
    #[error("no input device named '{name}' ({})", there_are(available))]
    UnknownName {
        name: String,
        available: Vec<String>,
    },
    #[error("there is no default input device ({})", there_are(available))]
    NoDefault { available: Vec<String> },
    #[error("cannot read the input formats of '{device}': {reason}")]
    Formats { device: String, reason: String },
    #[error("'{device}' offers no sample format this daemon reads (it offers {offered})")]
    UnsupportedFormat { device: String, offered: String },
    #[error("cannot open a capture stream on '{device}' ({format}): {reason}")]
    Build {
        device: String,
        format: String,
        reason: String,
    },
    #[error("cannot start capturing from '{device}': {reason}")]
    Play { device: String, reason: String },
    #[error("the input device '{device}' is no longer available")]
    DeviceGone { device: String },
    #[error("capture from '{device}' keeps failing: {reason}")]
    StreamFailed { device: String, reason: String },
    #[error(transparent)]
    Resample(#[from] ResampleError),
    #[error("{0}")]
    Internal(String),
}

impl MicError {
    /// True when the selector named no device (an index, name or default that does not exist):
    /// the caller's mistake (HTTP 400), not a failure of the device.
    pub fn is_unknown_device(&self) -> bool {
        matches!(
            self,
            MicError::UnknownIndex { .. }
                | MicError::UnknownName { .. }
                | MicError::NoDefault { .. }
        )
    }
}

fn there_are(available: &[String]) -> String {
    match available.len() {
        0 => "there are none".to_string(),
        1 => format!("there is 1: {}", available.join(", ")),
        n => format!("there are {n}: {}", available.join(", ")),
    }
}

/// The input devices of cpal's default host, in cpal's order (see the module docs). A device
/// whose default input format cannot be read is left out: it could not be captured from anyway.
pub fn list_devices() -> Result<Vec<AudioDevice>, MicError> {
    Ok(enumerate()?.into_iter().map(|(d, _)| d).collect())
}

/// Finds the device a selector names, with cpal's handle to open it.
pub fn resolve(selector: &DeviceSelector) -> Result<(AudioDevice, cpal::Device), MicError> {
    let mut devices = enumerate()?;
    let available = || {
        devices
            .iter()
            .map(|(d, _)| format!("{} '{}'", d.index, d.name))
            .collect::<Vec<_>>()
    };
    let position =
        match selector {
            DeviceSelector::Default => devices.iter().position(|(d, _)| d.default),
            DeviceSelector::Index(i) => devices.iter().position(|(d, _)| d.index == *i),
            DeviceSelector::Name(name) => devices
                .iter()
                .position(|(d, _)| d.name == *name)
                .or_else(|| {
                    let mut matches = devices
                        .iter()
                        .enumerate()
                        .filter(|(_, (d, _))| d.name.eq_ignore_ascii_case(name));
                    match (matches.next(), matches.next()) {
                        (Some((i, _)), None) => Some(i),
                        _ => None,
                    }
                }),
        };
    match position {
        Some(p) => Ok(devices.swap_remove(p)),
        None => Err(match selector {
            DeviceSelector::Default => MicError::NoDefault {
                available: available(),
            },
            DeviceSelector::Index(index) => MicError::UnknownIndex {
                index: *index,
                available: available(),
            },
            DeviceSelector::Name(name) => MicError::UnknownName {
                name: name.clone(),
                available: available(),
            },
        }),
    }
}

fn enumerate() -> Result<Vec<(AudioDevice, cpal::Device)>, MicError> {
    let host = cpal::default_host();
    let default_name = host.default_input_device().and_then(|d| d.name().ok());
    let devices = host
        .input_devices()
        .map_err(|e| MicError::Enumerate(e.to_string()))?;
    let mut out = Vec::new();
    for device in devices {
        let Ok(name) = device.name() else {
            continue;
        };
        let config = match device.default_input_config() {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(device = %name, error = %e, "input device without a readable default format; not listed");
                continue;
            }
        };
        let info = AudioDevice {
            index: out.len(),
            default: default_name.as_deref() == Some(name.as_str()),
            name,
            channels: config.channels(),
            default_sample_rate: config.sample_rate().0,
        };
        out.push((info, device));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_parse_and_print() {
        assert_eq!("".parse::<DeviceSelector>(), Ok(DeviceSelector::Default));
        assert_eq!(
            " 3 ".parse::<DeviceSelector>(),
            Ok(DeviceSelector::Index(3))
        );
        assert_eq!(
            "pulse".parse::<DeviceSelector>(),
            Ok(DeviceSelector::Name("pulse".into()))
        );
        assert_eq!(DeviceSelector::Index(2).to_string(), "input device #2");
    }

    #[test]
    fn unknown_device_errors_list_the_devices() {
        let e = MicError::UnknownIndex {
            index: 7,
            available: vec!["0 'default'".into(), "1 'pulse'".into(), "2 'x'".into()],
        };
        assert_eq!(
            e.to_string(),
            "no input device with index 7 (there are 3: 0 'default', 1 'pulse', 2 'x')"
        );
        assert!(e.is_unknown_device());
        let e = MicError::UnknownName {
            name: "usb".into(),
            available: vec![],
        };
        assert_eq!(
            e.to_string(),
            "no input device named 'usb' (there are none)"
        );
        assert!(!MicError::DeviceGone { device: "x".into() }.is_unknown_device());
    }
}
