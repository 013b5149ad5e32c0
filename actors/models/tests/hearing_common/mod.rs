//! Helpers shared by the hearing tests (and the `hearing_eval` example): the audio dev set in
//! `tests/data/audio/`, its labels, WAV reading and mixing.

#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};

/// `tests/data/audio/` of the workspace.
pub fn audio_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/audio")
}

// The model loading and WAV reading of the YAMNet tests.
#[path = "../common/mod.rs"]
mod yamnet_common;
pub use yamnet_common::{load_model, read_wav_file as read_wav};

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

/// Backgrounds of the mixtures: the dev set's real recordings of continuous sounds.
pub const BACKGROUNDS: [&str; 7] = [
    "speech_allison.wav",
    "speech_tuxpaint_words.wav",
    "speech_espeak.wav",
    "typing_bucklespring.wav",
    "vacuum_cleaner.wav",
    "washing_machine.wav",
    "kettle.wav",
];

/// The dev set's impulsive negatives: the sounds a clap detector confuses with claps (snaps,
/// an 808-style clap, glass, woodblock, hand drums, drums, dishes, a shutter, knocks, a bite, a
/// bark, a giggle, a phone). Mixed over [`BACKGROUNDS`], every clap found in them is false.
pub const IMPULSIVE_NEGATIVES: [&str; 13] = [
    "fingersnap_gah_seq.wav",
    "tr808_style_clap_synth.wav",
    "waterglass_gah_seq.wav",
    "woodblock_clave_gah_seq.wav",
    "cajon_bongo_gah_seq.wav",
    "drums_gmrock_seq.wav",
    "glass_dishes.wav",
    "camera_shutter.wav",
    "hammer_knock.wav",
    "apple_bite.wav",
    "dog_bark.wav",
    "giggle.wav",
    "phone_ring.wav",
];

/// The clip `foreground` over the background clip `bg_name` the way every mixture of the
/// tests and `hearing_eval` is made: the background looped at −30 dBFS RMS, the foreground's
/// peak `snr_db` above it (see [`mix`]).
pub fn over_background(foreground: &[f32], bg_name: &str, snr_db: f32) -> Vec<f32> {
    mix(
        foreground,
        &clip(bg_name).samples(),
        10f32.powf(-30.0 / 20.0),
        snr_db,
    )
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
