//! Decoding of media files: video frames through OpenCV's videoio (FFmpeg backend), audio through
//! symphonia, resampled to 16 kHz mono with rubato.
//!
//! This is plain blocking code without actix: a source actor's thread and the offline analyser both
//! drive it. Every error that file data can provoke is a [`MediaError`], never a panic.

use std::path::{Path, PathBuf};

mod audio;
pub mod clip;
mod video;

pub use audio::{decode_all, AudioDecoder, AudioInfo, OUTPUT_SAMPLE_RATE};
pub use video::{TimedFrame, VideoDecoder, VideoInfo};

/// Why a media file cannot be opened or decoded.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// The path does not exist.
    #[error("media file {path} not found")]
    NotFound {
        /// The path asked for.
        path: PathBuf,
    },
    /// The file exists but cannot be opened: corrupt, unsupported, or without usable streams.
    #[error("cannot open {path}: {reason}")]
    Open {
        /// The file.
        path: PathBuf,
        /// What went wrong, in words.
        reason: String,
    },
    /// The file was opened but decoding failed in a way that cannot be skipped.
    #[error("error decoding {path}: {reason}")]
    Decode {
        /// The file.
        path: PathBuf,
        /// What went wrong, in words.
        reason: String,
    },
}

impl MediaError {
    pub(crate) fn open(path: &Path, reason: impl Into<String>) -> Self {
        MediaError::Open {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }

    pub(crate) fn decode(path: &Path, reason: impl Into<String>) -> Self {
        MediaError::Decode {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }

    /// The reason alone, without the path.
    pub(crate) fn reason(&self) -> String {
        match self {
            MediaError::NotFound { .. } => "not found".to_owned(),
            MediaError::Open { reason, .. } | MediaError::Decode { reason, .. } => reason.clone(),
        }
    }

    /// `NotFound` when the path does not name an existing file.
    pub(crate) fn check_exists(path: &Path) -> Result<(), Self> {
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_file() => Ok(()),
            Ok(_) => Err(Self::open(path, "not a regular file")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(MediaError::NotFound {
                path: path.to_path_buf(),
            }),
            Err(e) => Err(Self::open(path, e.to_string())),
        }
    }
}

/// The streams a media file holds, as found by [`probe`].
#[derive(Clone, Debug, PartialEq)]
pub struct MediaInfo {
    /// The file probed.
    pub path: PathBuf,
    /// The video stream, when there is one that OpenCV can decode.
    pub video: Option<VideoInfo>,
    /// The first audio track that symphonia can decode.
    pub audio: Option<AudioInfo>,
    /// The longer of the two streams' durations, when known.
    pub duration_s: Option<f64>,
}

/// Probes a file: which streams it has.
///
/// The video stream is checked by opening it and decoding its first frame; the audio track by
/// opening it and decoding its first packets. Errors when the file is missing
/// ([`MediaError::NotFound`]), or has neither a decodable video nor a decodable audio stream
/// ([`MediaError::Open`], e.g. a corrupt or truncated file).
pub fn probe(path: &Path) -> Result<MediaInfo, MediaError> {
    MediaError::check_exists(path)?;

    let (video, video_err) = match VideoDecoder::open(path, None) {
        Ok(decoder) => (Some(decoder.info().clone()), None),
        Err(e @ MediaError::NotFound { .. }) => return Err(e),
        Err(e) => (None, Some(e)),
    };
    let (audio, audio_err) = match AudioDecoder::open(path) {
        Ok(decoder) => (decoder.map(|d| d.info().clone()), None),
        Err(e @ MediaError::NotFound { .. }) => return Err(e),
        Err(e) => (None, Some(e)),
    };

    if video.is_none() && audio.is_none() {
        let mut reasons = Vec::new();
        if let Some(e) = video_err {
            reasons.push(format!("video: {}", e.reason()));
        }
        if let Some(e) = audio_err {
            reasons.push(format!("audio: {}", e.reason()));
        }
        if reasons.is_empty() {
            reasons.push("no video or audio stream".to_owned());
        }
        return Err(MediaError::open(path, reasons.join("; ")));
    }
    if let Some(e) = audio_err {
        tracing::warn!(path = %path.display(), error = %e, "ignoring the audio of a file whose video decodes");
    }

    let duration_s = [
        video.as_ref().and_then(|v| v.duration_s),
        audio.as_ref().and_then(|a| a.duration_s),
    ]
    .into_iter()
    .flatten()
    .reduce(f64::max);

    Ok(MediaInfo {
        path: path.to_path_buf(),
        video,
        audio,
        duration_s,
    })
}

#[cfg(test)]
pub(crate) mod test_files {
    use std::path::PathBuf;

    /// `tests/data/video/<name>` in the workspace.
    pub fn test_video(name: &str) -> PathBuf {
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/video")).join(name)
    }

    /// The project's demo clip.
    pub fn demo_clip() -> PathBuf {
        PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../data/demo/demo.mp4"
        ))
    }

    /// Pseudo-random bytes (xorshift), reproducible.
    pub fn noise_bytes(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::test_files::*;
    use super::*;
    use std::io::Write;

    #[test]
    fn probe_finds_both_streams_of_the_sync_clip() {
        let info = probe(&test_video("av_sync_flash_beep.mp4")).unwrap();
        let video = info.video.expect("video stream");
        assert_eq!((video.width, video.height), (640, 480));
        let audio = info.audio.expect("audio stream");
        assert_eq!(audio.sample_rate, 48_000);
        assert_eq!(audio.channels, 1);
        let duration = info.duration_s.expect("duration");
        assert!((duration - 15.0).abs() < 0.1, "duration {duration}");
    }

    #[test]
    fn probe_finds_both_streams_of_the_demo_clip() {
        let info = probe(&demo_clip()).unwrap();
        let video = info.video.expect("video stream");
        assert_eq!((video.width, video.height), (480, 360));
        let audio = info.audio.expect("audio stream");
        assert_eq!(audio.sample_rate, 16_000);
        assert_eq!(audio.codec, "aac");
    }

    #[test]
    fn probe_of_a_video_only_file_has_no_audio() {
        let info = probe(&test_video("frame_counter_gop25.mp4")).unwrap();
        assert!(info.video.is_some());
        assert!(info.audio.is_none());
    }

    #[test]
    fn decoders_can_move_to_another_thread() {
        fn is_send<T: Send>() {}
        is_send::<VideoDecoder>();
        is_send::<AudioDecoder>();
        is_send::<MediaError>();
        is_send::<MediaInfo>();
    }

    #[test]
    fn a_missing_file_is_not_found() {
        let missing = test_video("no_such_file.mp4");
        assert!(matches!(probe(&missing), Err(MediaError::NotFound { .. })));
        assert!(matches!(
            VideoDecoder::open(&missing, None),
            Err(MediaError::NotFound { .. })
        ));
        assert!(matches!(
            AudioDecoder::open(&missing),
            Err(MediaError::NotFound { .. })
        ));
        assert!(matches!(
            decode_all(&missing),
            Err(MediaError::NotFound { .. })
        ));
    }

    fn temp_file_with(bytes: &[u8], suffix: &str) -> tempfile::NamedTempFile {
        let mut file = tempfile::Builder::new().suffix(suffix).tempfile().unwrap();
        file.write_all(bytes).unwrap();
        file.flush().unwrap();
        file
    }

    fn assert_corrupt(file: &Path) {
        let probed = probe(file);
        assert!(
            matches!(probed, Err(MediaError::Open { .. })),
            "probe: {probed:?}"
        );
        let video = VideoDecoder::open(file, None);
        assert!(
            matches!(video, Err(MediaError::Open { .. })),
            "video: {:?}",
            video.err()
        );
        let audio = AudioDecoder::open(file);
        assert!(
            matches!(audio, Err(MediaError::Open { .. })),
            "audio: {:?}",
            audio.err()
        );
    }

    #[test]
    fn random_bytes_are_corrupt() {
        // Seed 12 makes symphonia's ADTS reader panic (integer overflow) in debug builds.
        for seed in [1u64, 2, 3, 12, 0x5eed] {
            for suffix in ["", ".mp4"] {
                let file = temp_file_with(&noise_bytes(4096, seed), suffix);
                assert_corrupt(file.path());
            }
        }
    }

    #[test]
    fn a_truncated_mp4_is_corrupt() {
        let real = std::fs::read(test_video("av_sync_flash_beep.mp4")).unwrap();
        let file = temp_file_with(&real[..2048], ".mp4");
        assert_corrupt(file.path());
        let real = std::fs::read(demo_clip()).unwrap();
        let file = temp_file_with(&real[..2048], ".mp4");
        assert_corrupt(file.path());
    }

    #[test]
    fn damage_inside_a_file_is_skipped_and_timing_kept() {
        // 3000 bytes of noise at two places of the interleaved audio/video data.
        let mut bytes = std::fs::read(test_video("av_sync_flash_beep.mp4")).unwrap();
        for (seed, at) in [(99u64, 60_000usize), (103, 250_000)] {
            bytes[at..at + 3000].copy_from_slice(&noise_bytes(3000, seed));
        }
        let file = temp_file_with(&bytes, ".mp4");

        let mut video = VideoDecoder::open(file.path(), None).unwrap();
        let (mut frames, mut last_pts) = (0, 0.0);
        while let Some(f) = video.next_frame().unwrap() {
            let i = (f.pts_s * 25.0).round() as u64;
            let phase = i % 25;
            let mean = f.frame.bgr().iter().map(|&v| u64::from(v)).sum::<u64>()
                / f.frame.bgr().len() as u64;
            if i >= 75 && (phase == 0 || phase == 2) {
                // Flash frames 25k (and frames 25k+2, not flashing) after the first damage are
                // where they belong in time.
                assert_eq!(
                    mean > 240,
                    phase == 0,
                    "frame at {} s: mean {mean}",
                    f.pts_s
                );
            }
            frames += 1;
            last_pts = f.pts_s;
        }
        eprintln!(
            "damaged video: {frames} frames, {} skipped",
            video.skipped()
        );
        assert!(video.skipped() > 0);
        assert!(frames + video.skipped() >= 365, "{frames} frames");
        assert!((last_pts - 14.96).abs() < 1e-3, "last pts {last_pts}");

        let mut audio = AudioDecoder::open(file.path()).unwrap().unwrap();
        let mut samples = Vec::new();
        while let Some(chunk) = audio.next_chunk(4096).unwrap() {
            samples.extend_from_slice(&chunk);
        }
        eprintln!("damaged audio: {} packets skipped", audio.skipped_packets());
        assert!(audio.skipped_packets() > 0);
        // Lost packets became silence: the length and the later beeps keep their time.
        assert_eq!(samples.len(), 15 * 16_000);
        for k in 3..=14 {
            let from = k * 16_000 - 800;
            let onset = from + samples[from..].iter().position(|x| x.abs() > 0.1).unwrap();
            let off_ms = (onset as f64 / 16_000.0 - k as f64) * 1000.0;
            assert!(off_ms.abs() < 5.0, "beep {k} off by {off_ms} ms");
        }
    }

    #[test]
    fn an_empty_file_is_corrupt() {
        let file = temp_file_with(&[], ".mp4");
        assert_corrupt(file.path());
    }
}
