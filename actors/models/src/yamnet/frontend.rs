//! YAMNet's log-mel frontend, exactly as TensorFlow YAMNet's `features.py` / `params.py`
//! computes it (see `models/README.md`).

use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};

/// Sample rate the frontend expects (mono).
pub const SAMPLE_RATE: u32 = 16_000;
/// STFT frame length in samples (25 ms).
pub const FRAME_LEN: usize = 400;
/// STFT hop in samples (10 ms).
pub const FRAME_HOP: usize = 160;
/// FFT size; each 400-sample frame is zero-padded at the end to this.
pub const FFT_LEN: usize = 512;
/// Number of real-FFT bins (`FFT_LEN / 2 + 1`).
pub const NUM_BINS: usize = FFT_LEN / 2 + 1;
/// Number of mel bands.
pub const NUM_MELS: usize = 64;
/// Lower edge of the mel filterbank in Hz.
pub const MEL_MIN_HZ: f64 = 125.0;
/// Upper edge of the mel filterbank in Hz.
pub const MEL_MAX_HZ: f64 = 7500.0;
/// Added to the mel energies before the natural log.
pub const LOG_OFFSET: f32 = 0.001;
/// Frames per patch (0.96 s).
pub const PATCH_FRAMES: usize = 96;
/// Frames between the starts of consecutive patches (0.48 s).
pub const PATCH_HOP_FRAMES: usize = 48;
/// Samples one patch covers: `(96 − 1)·160 + 400` = 15600 (0.975 s).
pub const PATCH_WINDOW_SAMPLES: usize = (PATCH_FRAMES - 1) * FRAME_HOP + FRAME_LEN;
/// Samples between the starts of consecutive patches: 7680 (0.48 s).
pub const PATCH_HOP_SAMPLES: usize = PATCH_HOP_FRAMES * FRAME_HOP;
/// Values in one patch (96 frames × 64 mel bands).
pub const PATCH_LEN: usize = PATCH_FRAMES * NUM_MELS;

/// One log-mel patch: 96 frames × 64 mel bands, frame-major (the network's `[96, 64]` input).
#[derive(Clone, Debug, PartialEq)]
pub struct Patch {
    // Invariant: exactly PATCH_LEN values.
    data: Vec<f32>,
}

impl Patch {
    /// A patch of zeros.
    pub fn zeros() -> Patch {
        Patch {
            data: vec![0.0; PATCH_LEN],
        }
    }

    /// Wraps 6144 frame-major values; `None` if `data` has another length.
    pub fn from_vec(data: Vec<f32>) -> Option<Patch> {
        (data.len() == PATCH_LEN).then_some(Patch { data })
    }

    /// Builds a patch from exactly 96 frames; `None` for another count.
    pub fn from_frames(frames: &[[f32; NUM_MELS]]) -> Option<Patch> {
        (frames.len() == PATCH_FRAMES).then(|| Patch {
            data: frames.iter().flatten().copied().collect(),
        })
    }

    /// The 6144 values, frame-major.
    pub fn as_slice(&self) -> &[f32] {
        &self.data
    }

    /// The 64 mel values of frame `i` (0..96).
    ///
    /// # Panics
    /// If `i >= 96`.
    pub fn frame(&self, i: usize) -> &[f32] {
        &self.data[i * NUM_MELS..(i + 1) * NUM_MELS]
    }

    /// The values, frame-major.
    pub fn into_vec(self) -> Vec<f32> {
        self.data
    }
}

/// Length of the waveform after TF YAMNet's `pad_waveform`: at least 15600 samples, then a
/// whole number of 7680-sample patch hops beyond that.
pub fn padded_len(num_samples: usize) -> usize {
    let extra = num_samples.saturating_sub(PATCH_WINDOW_SAMPLES);
    PATCH_WINDOW_SAMPLES + PATCH_HOP_SAMPLES * extra.div_ceil(PATCH_HOP_SAMPLES)
}

/// Number of STFT frames of a waveform of `num_samples` samples after padding.
pub fn num_frames(num_samples: usize) -> usize {
    1 + (padded_len(num_samples) - FRAME_LEN) / FRAME_HOP
}

/// Number of patches of a waveform of `num_samples` samples after padding.
pub fn num_patches(num_samples: usize) -> usize {
    1 + (num_frames(num_samples) - PATCH_FRAMES) / PATCH_HOP_FRAMES
}

/// The periodic Hann window `0.5 − 0.5·cos(2πn/len)`, n = 0..len (not the symmetric `/(len−1)`
/// form).
pub fn periodic_hann(len: usize) -> Vec<f32> {
    (0..len)
        .map(|n| {
            let phase = 2.0 * std::f64::consts::PI * n as f64 / len as f64;
            (0.5 - 0.5 * phase.cos()) as f32
        })
        .collect()
}

/// HTK mel scale `1127·ln(1 + f/700)`.
fn hz_to_mel(hz: f64) -> f64 {
    1127.0 * (hz / 700.0).ln_1p()
}

/// `tf.signal.linear_to_mel_weight_matrix(64, 257, 16000, 125, 7500)` as `[257][64]`:
/// triangles linear in mel, row 0 (DC) all zero, no area normalisation.
pub fn mel_weight_matrix() -> Vec<[f32; NUM_MELS]> {
    let lo = hz_to_mel(MEL_MIN_HZ);
    let hi = hz_to_mel(MEL_MAX_HZ);
    let step = (hi - lo) / (NUM_MELS + 1) as f64;
    // Same construction as numpy's linspace (start + i·step, last value exactly `hi`), so the
    // f32 weights agree with TF/numpy to the last bit in practice.
    let edges: Vec<f64> = (0..NUM_MELS + 2)
        .map(|i| {
            if i == NUM_MELS + 1 {
                hi
            } else {
                lo + i as f64 * step
            }
        })
        .collect();
    let bin_hz = f64::from(SAMPLE_RATE) / 2.0 / (NUM_BINS - 1) as f64;
    let mut rows = vec![[0.0f32; NUM_MELS]; NUM_BINS];
    for (k, row) in rows.iter_mut().enumerate().skip(1) {
        let m = hz_to_mel(k as f64 * bin_hz);
        for (j, w) in row.iter_mut().enumerate() {
            let (lower, centre, upper) = (edges[j], edges[j + 1], edges[j + 2]);
            let rising = (m - lower) / (centre - lower);
            let falling = (upper - m) / (upper - centre);
            *w = rising.min(falling).max(0.0) as f32;
        }
    }
    rows
}

/// The nonzero run of one mel band's column of the weight matrix.
#[derive(Clone, Debug)]
struct MelBand {
    first_bin: usize,
    weights: Vec<f32>,
}

/// Turns 16 kHz mono audio into YAMNet log-mel frames and 96×64 patches.
///
/// Holds the window, the mel matrix, the FFT plan and its buffers, so computing frames allocates
/// nothing beyond the returned values.
pub struct LogMelFrontend {
    window: Vec<f32>,
    mel: Vec<[f32; NUM_MELS]>,
    bands: Vec<MelBand>,
    fft: Arc<dyn RealToComplex<f64>>,
    fft_in: Vec<f64>,
    fft_out: Vec<Complex<f64>>,
    fft_scratch: Vec<Complex<f64>>,
    magnitude: Vec<f32>,
}

impl Default for LogMelFrontend {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for LogMelFrontend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogMelFrontend").finish_non_exhaustive()
    }
}

impl LogMelFrontend {
    /// Precomputes the window, the mel matrix and the FFT plan.
    pub fn new() -> LogMelFrontend {
        let mel = mel_weight_matrix();
        let bands = (0..NUM_MELS)
            .map(|j| {
                let nonzero: Vec<usize> = (0..NUM_BINS).filter(|&k| mel[k][j] != 0.0).collect();
                match (nonzero.first(), nonzero.last()) {
                    (Some(&first), Some(&last)) => MelBand {
                        first_bin: first,
                        weights: (first..=last).map(|k| mel[k][j]).collect(),
                    },
                    _ => MelBand {
                        first_bin: 0,
                        weights: Vec::new(),
                    },
                }
            })
            .collect();
        // f64 FFT: the reference (numpy) transforms in double precision; single precision costs
        // up to 1e-3 of log-mel in deep spectral valleys, and the f64 transform is cheap here.
        let fft = RealFftPlanner::<f64>::new().plan_fft_forward(FFT_LEN);
        let fft_in = fft.make_input_vec();
        let fft_out = fft.make_output_vec();
        let fft_scratch = fft.make_scratch_vec();
        LogMelFrontend {
            window: periodic_hann(FRAME_LEN),
            mel,
            bands,
            fft,
            fft_in,
            fft_out,
            fft_scratch,
            magnitude: vec![0.0; NUM_BINS],
        }
    }

    /// The periodic Hann window (400 values).
    pub fn window(&self) -> &[f32] {
        &self.window
    }

    /// The mel weight matrix, `[257][64]`.
    pub fn mel_matrix(&self) -> &[[f32; NUM_MELS]] {
        &self.mel
    }

    /// `|rfft512|` (257 values) of the frame starting at `start`; samples past the end of
    /// `samples` count as zeros (the TF padding).
    fn frame_magnitude(&mut self, samples: &[f32], start: usize) -> &[f32] {
        let end = (start + FRAME_LEN).min(samples.len());
        let available = samples.get(start..end).unwrap_or(&[]);
        self.fft_in.fill(0.0);
        for ((dst, &x), &w) in self.fft_in.iter_mut().zip(available).zip(&self.window) {
            // The product is rounded to f32 as in the reference, which windows in f32.
            *dst = f64::from(x * w);
        }
        // The buffers have the plan's own lengths, so the transform cannot fail.
        let _ = self.fft.process_with_scratch(
            &mut self.fft_in,
            &mut self.fft_out,
            &mut self.fft_scratch,
        );
        for (m, c) in self.magnitude.iter_mut().zip(&self.fft_out) {
            *m = c.norm() as f32;
        }
        &self.magnitude
    }

    /// Log-mel of the frame starting at sample `start` of `samples`, into `out`.
    fn frame_log_mel(&mut self, samples: &[f32], start: usize, out: &mut [f32]) {
        self.frame_magnitude(samples, start);
        for (o, band) in out.iter_mut().zip(&self.bands) {
            let mags = &self.magnitude[band.first_bin..band.first_bin + band.weights.len()];
            let energy: f64 = mags
                .iter()
                .zip(&band.weights)
                .map(|(&m, &w)| f64::from(m) * f64::from(w))
                .sum();
            *o = (energy as f32 + LOG_OFFSET).ln();
        }
    }

    /// `|rfft512|` of the Hann-windowed frame at `samples[start..start + 400]` (zeros past the
    /// end); 257 values. Exposed for checking the frontend step by step.
    pub fn magnitude_spectrum(&mut self, samples: &[f32], start: usize) -> Vec<f32> {
        self.frame_magnitude(samples, start).to_vec()
    }

    /// Log-mel frames (`ln(mel + 0.001)`) of the whole waveform after TF padding:
    /// `num_frames(waveform.len())` frames of 64 bands.
    pub fn log_mel(&mut self, waveform: &[f32]) -> Vec<[f32; NUM_MELS]> {
        let mut frames = vec![[0.0f32; NUM_MELS]; num_frames(waveform.len())];
        for (t, frame) in frames.iter_mut().enumerate() {
            self.frame_log_mel(waveform, t * FRAME_HOP, frame);
        }
        frames
    }

    /// All 96×64 patches of the waveform (hop 48 frames = 0.48 s); patch `i` covers samples
    /// `[7680·i, 7680·i + 15600)` of the padded waveform.
    pub fn patches(&mut self, waveform: &[f32]) -> Vec<Patch> {
        let frames = self.log_mel(waveform);
        let count = 1 + (frames.len() - PATCH_FRAMES) / PATCH_HOP_FRAMES;
        (0..count)
            .map(|i| {
                let start = i * PATCH_HOP_FRAMES;
                Patch {
                    data: frames[start..start + PATCH_FRAMES]
                        .iter()
                        .flatten()
                        .copied()
                        .collect(),
                }
            })
            .collect()
    }

    /// Exactly one patch from one 15600-sample (0.975 s) window, for a live sliding window.
    ///
    /// Gives the same values as the matching patch of [`patches`](Self::patches) when `window`
    /// is `padded[7680·i .. 7680·i + 15600]`. A shorter window is zero-padded at the end (like
    /// the TF padding); samples beyond 15600 are ignored.
    pub fn patch_for_window(&mut self, window: &[f32]) -> Patch {
        let window = &window[..window.len().min(PATCH_WINDOW_SAMPLES)];
        let mut data = vec![0.0f32; PATCH_LEN];
        for (t, frame) in data.chunks_exact_mut(NUM_MELS).enumerate() {
            self.frame_log_mel(window, t * FRAME_HOP, frame);
        }
        Patch { data }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_and_counts_follow_tf() {
        assert_eq!(padded_len(0), 15600);
        assert_eq!(padded_len(15600), 15600);
        assert_eq!(padded_len(15601), 15600 + 7680);
        assert_eq!(padded_len(32000), 38640);
        assert_eq!(padded_len(48000), 54000);
        assert_eq!(num_frames(32000), 240);
        assert_eq!(num_patches(32000), 4);
        assert_eq!(num_patches(48000), 6);
        assert_eq!(num_patches(40000), 5);
        assert_eq!(num_patches(100), 1);
    }

    #[test]
    fn short_input_gives_one_patch() {
        let mut fe = LogMelFrontend::new();
        let patches = fe.patches(&[0.1; 1000]);
        assert_eq!(patches.len(), 1);
        assert_eq!(patches[0].as_slice().len(), PATCH_LEN);
        assert!(patches[0].as_slice().iter().all(|v| v.is_finite()));
    }

    #[test]
    fn silence_is_log_offset() {
        let mut fe = LogMelFrontend::new();
        let p = fe.patch_for_window(&[0.0; PATCH_WINDOW_SAMPLES]);
        let expected = LOG_OFFSET.ln();
        assert!(p.as_slice().iter().all(|&v| v == expected));
    }

    #[test]
    fn patch_constructors_check_length() {
        assert!(Patch::from_vec(vec![0.0; 10]).is_none());
        assert!(Patch::from_vec(vec![0.0; PATCH_LEN]).is_some());
        assert!(Patch::from_frames(&[[0.0; NUM_MELS]; 95]).is_none());
        assert_eq!(
            Patch::from_frames(&[[0.0; NUM_MELS]; 96]),
            Some(Patch::zeros())
        );
    }
}
