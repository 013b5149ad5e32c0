//! Helpers shared by the YAMNet tests: paths and raw test-vector readers.

#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};

use cav_models::Yamnet;

/// `tests/data/yamnet/` of the workspace.
pub fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/yamnet")
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

/// Raw little-endian f32 values.
pub fn read_f32(rel: &str) -> Vec<f32> {
    let path = data_dir().join(rel);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(bytes.len() % 4, 0, "{}", path.display());
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// `tests/data/yamnet/<rel>`, a 16 kHz mono PCM16 WAV, as `int16 / 32768` (bit for bit the
/// clips' `.f32` waveforms).
pub fn read_wav(rel: &str) -> Vec<f32> {
    read_wav_file(&data_dir().join(rel))
}

/// A 16 kHz mono PCM16 WAV as `int16 / 32768`.
pub fn read_wav_file(path: &Path) -> Vec<f32> {
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

/// Largest |a − b|, checking the lengths agree.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "lengths differ");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// The four clips and their patch counts.
pub const CLIPS: [(&str, usize); 4] = [("silence", 4), ("sine440", 4), ("speech", 6), ("clap", 5)];
