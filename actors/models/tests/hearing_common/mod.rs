//! Helpers shared by the hearing tests (and the `hearing_eval` example): the audio dev set in
//! `tests/data/audio/`, its labels, WAV reading and mixing.

#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};

use cav_models::Yamnet;

/// `tests/data/audio/` of the workspace.
pub fn audio_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/audio")
}

/// `models/` of the workspace.
pub fn models_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models")
}

pub fn load_model() -> Yamnet {
    let dir = models_dir();
    Yamnet::load(
        &dir.join("yamnet.safetensors"),
        &dir.join("yamnet_class_map.csv"),
    )
    .expect("load YAMNet")
}

/// A 16 kHz mono PCM16 WAV as `int16 / 32768`.
pub fn read_wav(path: &Path) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&bytes[0..4], b"RIFF", "{}", path.display());
    assert_eq!(&bytes[8..12], b"WAVE", "{}", path.display());
    let mut pos = 12;
    let mut format_ok = false;
    while pos + 8 <= bytes.len() {
        let id = &bytes[pos..pos + 4];
        let len = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().unwrap()) as usize;
        let body = &bytes[pos + 8..(pos + 8 + len).min(bytes.len())];
        match id {
            b"fmt " => {
                let format = u16::from_le_bytes([body[0], body[1]]);
                let channels = u16::from_le_bytes([body[2], body[3]]);
                let rate = u32::from_le_bytes(body[4..8].try_into().unwrap());
                let bits = u16::from_le_bytes([body[14], body[15]]);
                assert_eq!(
                    (format, channels, rate, bits),
                    (1, 1, 16_000, 16),
                    "{}",
                    path.display()
                );
                format_ok = true;
            }
            b"data" => {
                assert!(format_ok, "data before fmt in {}", path.display());
                return body
                    .chunks_exact(2)
                    .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0)
                    .collect();
            }
            _ => {}
        }
        pos += 8 + len + (len & 1);
    }
    panic!("no data chunk in {}", path.display());
}

/// Splits one CSV line (double quotes may enclose commas; no escaped quotes in our files).
fn split_csv(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(String::new()),
            _ => fields.last_mut().unwrap().push(c),
        }
    }
    fields
}

/// Rows of a CSV file as maps from header to value.
fn read_csv(path: &Path) -> Vec<std::collections::HashMap<String, String>> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header = split_csv(lines.next().unwrap());
    lines
        .map(|l| header.iter().cloned().zip(split_csv(l)).collect())
        .collect()
}

fn times(field: &str) -> Vec<f64> {
    field
        .split(';')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse().unwrap())
        .collect()
}

/// One labelled clip.
#[derive(Clone, Debug)]
pub struct Clip {
    /// Path relative to `tests/data/audio/`.
    pub name: String,
    /// `clap`, a negative's category, or (more_claps) `clapping` / `applause`.
    pub label: String,
    /// Clap onsets (s).
    pub claps: Vec<f64>,
    /// Other impulsive events (s).
    pub others: Vec<f64>,
    /// Applause span (s), for `applause` clips.
    pub applause: Option<(f64, f64)>,
}

impl Clip {
    pub fn samples(&self) -> Vec<f32> {
        read_wav(&audio_dir().join(&self.name))
    }
}

/// The 31 dev clips of `tests/data/audio/labels.csv`.
pub fn dev_clips() -> Vec<Clip> {
    read_csv(&audio_dir().join("labels.csv"))
        .into_iter()
        .map(|r| Clip {
            name: r["file"].clone(),
            label: r["label"].clone(),
            claps: times(&r["clap_onsets_s"]),
            others: times(&r["other_event_onsets_s"]),
            applause: None,
        })
        .collect()
}

/// The 6 clips of `tests/data/audio/more_claps/labels.csv`. For `clapping` (a small group) the
/// onsets are clap bursts, in `claps`.
pub fn more_clips() -> Vec<Clip> {
    read_csv(&audio_dir().join("more_claps/labels.csv"))
        .into_iter()
        .map(|r| {
            let onsets = times(&r["onsets_s"]);
            let kind = r["kind"].clone();
            let applause = (kind == "applause").then(|| (onsets[0], r["end_s"].parse().unwrap()));
            Clip {
                name: format!("more_claps/{}", r["file"]),
                claps: if kind == "applause" {
                    Vec::new()
                } else {
                    onsets
                },
                label: kind,
                others: Vec::new(),
                applause,
            }
        })
        .collect()
}

pub fn clip(name: &str) -> Clip {
    dev_clips()
        .into_iter()
        .chain(more_clips())
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no clip {name}"))
}

pub fn rms(x: &[f32]) -> f32 {
    (x.iter().map(|v| v * v).sum::<f32>() / x.len().max(1) as f32).sqrt()
}

/// `background` (looped to `len`) scaled to `bg_rms` plus `foreground` scaled so its peak is
/// `snr_db` above the background RMS ("peak-to-background").
pub fn mix(foreground: &[f32], background: &[f32], bg_rms: f32, snr_db: f32) -> Vec<f32> {
    let peak = foreground.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let bg_gain = bg_rms / rms(background);
    let fg_gain = bg_rms * 10f32.powf(snr_db / 20.0) / peak;
    (0..foreground.len())
        .map(|i| foreground[i] * fg_gain + background[i % background.len()] * bg_gain)
        .collect()
}

/// Matches found times to expected times within `tol` (greedy, in time order): returns
/// (matched expected count, unmatched found times, per-expected error or None).
pub fn match_times(expected: &[f64], found: &[f64], tol: f64) -> (Vec<Option<f64>>, Vec<f64>) {
    let mut used = vec![false; found.len()];
    let errors = expected
        .iter()
        .map(|&e| {
            let best = found
                .iter()
                .enumerate()
                .filter(|(i, &f)| !used[*i] && (f - e).abs() <= tol)
                .min_by(|a, b| (a.1 - e).abs().total_cmp(&(b.1 - e).abs()));
            best.map(|(i, &f)| {
                used[i] = true;
                f - e
            })
        })
        .collect();
    let extra = found
        .iter()
        .zip(&used)
        .filter(|(_, u)| !**u)
        .map(|(f, _)| *f)
        .collect();
    (errors, extra)
}
