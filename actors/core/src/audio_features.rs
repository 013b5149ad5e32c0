//! Per-window audio features: level, zero-crossing rate, dominant frequency and band energies.
//!
//! The input is a window of mono `f32` samples in [-1, 1] (the pipeline's format, see
//! [`crate::SAMPLE_RATE`]). Levels are absolute, never normalised: whether a room is quiet or loud
//! is exactly what the classifier needs to know.

use std::fmt;
use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};
use serde::{Deserialize, Serialize};

/// The level reported for silence, in dBFS, and the lowest level ever reported.
pub const DBFS_FLOOR: f32 = -120.0;

/// Upper edge of the low band (hum, rumble, footsteps, the fundamental of deep voices), in Hz.
pub const LOW_BAND_MAX_HZ: f32 = 300.0;

/// Upper edge of the mid band, in Hz: 300–3400 Hz is the telephone speech band.
pub const MID_BAND_MAX_HZ: f32 = 3400.0;

/// Windows shorter than this have no spectral features (dominant frequency, bands): their
/// frequency resolution would be too coarse to mean anything.
pub const MIN_SPECTRUM_LEN: usize = 64;

/// RMS below which a window counts as silent and has no spectral features.
pub const SILENT_RMS: f32 = 1e-6;

/// Shares of the spectral energy in the low, mid and high bands.
///
/// The shares add up to 1 when the window has spectral content, and are all 0 when it has none
/// (silence, a constant signal or a window too short to analyse).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BandRatios {
    /// 0 Hz to [`LOW_BAND_MAX_HZ`].
    pub low: f32,
    /// [`LOW_BAND_MAX_HZ`] to [`MID_BAND_MAX_HZ`], the speech band.
    pub mid: f32,
    /// [`MID_BAND_MAX_HZ`] to the Nyquist frequency.
    pub high: f32,
}

/// The features of one window of audio.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AudioFeatures {
    /// Number of samples in the window.
    pub samples: usize,
    /// Root mean square of the samples, absolute (a full-scale square wave is 1).
    pub rms: f32,
    /// `rms` in dB relative to full scale, never below [`DBFS_FLOOR`].
    pub dbfs: f32,
    /// Largest absolute sample.
    pub peak: f32,
    /// Fraction (0 to 1) of adjacent sample pairs whose signs differ.
    pub zcr: f32,
    /// Frequency of the strongest spectral peak in Hz; `None` when the window is silent or
    /// shorter than [`MIN_SPECTRUM_LEN`].
    pub dominant_hz: Option<f32>,
    /// Where the spectral energy lies.
    pub bands: BandRatios,
    /// The voice's fundamental frequency, when the window holds voiced sound (see
    /// [`crate::pitch`]).
    #[serde(default)]
    pub pitch_hz: Option<f32>,
}

/// Converts an RMS level to dBFS: `20·log10(rms)`, clamped below at [`DBFS_FLOOR`].
///
/// Zero, negative and NaN levels give the floor.
pub fn dbfs(rms: f32) -> f32 {
    // `max` returns the floor when the logarithm is NaN (negative input) or −∞ (zero).
    (20.0 * rms.log10()).max(DBFS_FLOOR)
}

/// Computes [`AudioFeatures`] for windows of samples.
///
/// Owns the FFT plan and every buffer the spectrum needs, so that a live stream of equally long
/// windows allocates only for its first window (and again whenever the length changes).
///
/// The FFT covers exactly the window, without zero padding: `realfft` handles any length
/// efficiently, the pipeline's windows have a fixed length so there is one plan, and padding would
/// only interpolate the same spectrum while costing time. The bins are `sample_rate / len` apart;
/// parabolic interpolation locates a peak between them.
pub struct AudioAnalyzer {
    sample_rate: u32,
    planner: RealFftPlanner<f32>,
    /// The plan for the current window length, if any window has been analysed.
    fft: Option<Arc<dyn RealToComplex<f32>>>,
    /// Hann window of the current length.
    window: Vec<f32>,
    input: Vec<f32>,
    spectrum: Vec<Complex<f32>>,
    scratch: Vec<Complex<f32>>,
}

impl AudioAnalyzer {
    /// An analyser for samples at `sample_rate` Hz (normally [`crate::SAMPLE_RATE`]).
    pub fn new(sample_rate: u32) -> Self {
        Self {
            sample_rate,
            planner: RealFftPlanner::new(),
            fft: None,
            window: Vec::new(),
            input: Vec::new(),
            spectrum: Vec::new(),
            scratch: Vec::new(),
        }
    }

    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// The features of one window.
    ///
    /// Non-finite samples (NaN, ±∞, from a broken source or decoder) count as 0, so every result
    /// is finite. An empty window gives zeros, the dBFS floor and no dominant frequency.
    pub fn analyze(&mut self, samples: &[f32]) -> AudioFeatures {
        let level = Level::measure(samples);
        let spectral = self.spectral(samples, level.mean);
        AudioFeatures {
            samples: samples.len(),
            rms: level.rms,
            dbfs: dbfs(level.rms),
            peak: level.peak,
            zcr: level.zcr,
            dominant_hz: spectral.and_then(|s| s.dominant_hz),
            bands: spectral.map(|s| s.bands).unwrap_or_default(),
            pitch_hz: crate::pitch::voice_pitch_hz(samples, self.sample_rate),
        }
    }

    /// The spectral features, or `None` when the window is too short or has no AC content.
    ///
    /// The window's mean is removed first: a microphone's DC offset is not sound, and left in it
    /// would fill the low band and could win the peak search.
    fn spectral(&mut self, samples: &[f32], mean: f64) -> Option<Spectral> {
        let n = samples.len();
        if n < MIN_SPECTRUM_LEN {
            return None;
        }
        self.prepare(n);

        // Mean-removed samples, with their energy and peak, computed in f64 so that even samples
        // near f32::MAX cannot overflow.
        let mut ac_energy = 0.0f64;
        let mut ac_peak = 0.0f64;
        for &x in samples {
            let ac = f64::from(finite_or_zero(x)) - mean;
            ac_energy += ac * ac;
            ac_peak = ac_peak.max(ac.abs());
        }
        let ac_rms = (ac_energy / n as f64).sqrt();
        if ac_rms < f64::from(SILENT_RMS) {
            return None;
        }
        // Scaling by the peak keeps the FFT far from overflow; the band shares and the peak's
        // position do not depend on the scale.
        let scale = 1.0 / ac_peak;
        for ((slot, &x), &w) in self.input.iter_mut().zip(samples).zip(&self.window) {
            *slot = ((f64::from(finite_or_zero(x)) - mean) * scale) as f32 * w;
        }

        let fft = self.fft.as_ref()?;
        fft.process_with_scratch(&mut self.input, &mut self.spectrum, &mut self.scratch)
            .ok()?;

        let bin_hz = f64::from(self.sample_rate) / n as f64;
        Some(Spectral {
            dominant_hz: dominant_hz(&self.spectrum, bin_hz),
            bands: band_ratios(&self.spectrum, n, bin_hz),
        })
    }

    /// Plans the FFT and sizes the buffers for windows of `n` samples, unless already done.
    fn prepare(&mut self, n: usize) {
        if self.fft.as_ref().is_some_and(|fft| fft.len() == n) {
            return;
        }
        let fft = self.planner.plan_fft_forward(n);
        // Periodic Hann: the DFT-even form, whose leakage the interpolation in
        // `dominant_hz` is tuned for.
        self.window.clear();
        self.window.extend((0..n).map(|i| {
            let phase = 2.0 * std::f64::consts::PI * i as f64 / n as f64;
            (0.5 - 0.5 * phase.cos()) as f32
        }));
        self.input = fft.make_input_vec();
        self.spectrum = fft.make_output_vec();
        self.scratch = fft.make_scratch_vec();
        self.fft = Some(fft);
    }
}

impl Default for AudioAnalyzer {
    /// An analyser at the pipeline's [`crate::SAMPLE_RATE`].
    fn default() -> Self {
        Self::new(crate::SAMPLE_RATE)
    }
}

impl fmt::Debug for AudioAnalyzer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AudioAnalyzer")
            .field("sample_rate", &self.sample_rate)
            .field("fft_len", &self.fft.as_ref().map(|fft| fft.len()))
            .finish_non_exhaustive()
    }
}

/// The time-domain measurements of a window.
struct Level {
    mean: f64,
    rms: f32,
    peak: f32,
    zcr: f32,
}

impl Level {
    fn measure(samples: &[f32]) -> Self {
        if samples.is_empty() {
            return Self {
                mean: 0.0,
                rms: 0.0,
                peak: 0.0,
                zcr: 0.0,
            };
        }
        let n = samples.len() as f64;
        let mut sum = 0.0f64;
        let mut energy = 0.0f64;
        let mut peak = 0.0f32;
        let mut crossings = 0usize;
        let mut prev_negative = None;
        for x in samples.iter().map(|&x| finite_or_zero(x)) {
            let x64 = f64::from(x);
            sum += x64;
            energy += x64 * x64;
            peak = peak.max(x.abs());
            // Zero counts as positive, so a signal touching zero is not counted twice.
            let negative = x < 0.0;
            if prev_negative.is_some_and(|p| p != negative) {
                crossings += 1;
            }
            prev_negative = Some(negative);
        }
        let pairs = samples.len() - 1;
        Self {
            mean: sum / n,
            rms: (energy / n).sqrt() as f32,
            peak,
            zcr: if pairs == 0 {
                0.0
            } else {
                (crossings as f64 / pairs as f64) as f32
            },
        }
    }
}

/// The frequency-domain features of a window.
#[derive(Clone, Copy)]
struct Spectral {
    dominant_hz: Option<f32>,
    bands: BandRatios,
}

fn finite_or_zero(x: f32) -> f32 {
    if x.is_finite() {
        x
    } else {
        0.0
    }
}

fn power(c: Complex<f32>) -> f64 {
    let (re, im) = (f64::from(c.re), f64::from(c.im));
    re * re + im * im
}

/// The frequency of the strongest bin above DC, refined between bins.
///
/// The refinement fits a parabola through the log power of the peak bin and its neighbours: a
/// Hann window's main lobe is close to a parabola in dB, so its vertex lands within a few
/// hundredths of a bin of the true frequency.
fn dominant_hz(spectrum: &[Complex<f32>], bin_hz: f64) -> Option<f32> {
    let (k, peak) = spectrum
        .iter()
        .enumerate()
        .skip(1)
        .map(|(k, &c)| (k, power(c)))
        .fold(None, |best: Option<(usize, f64)>, (k, p)| match best {
            Some((_, best_p)) if best_p >= p => best,
            _ => Some((k, p)),
        })?;
    if peak <= 0.0 {
        return None;
    }
    let offset = match spectrum.get(k + 1) {
        Some(&next) => {
            // `max` keeps the logarithms finite where a neighbour is exactly zero.
            let log_power = |p: f64| p.max(f64::MIN_POSITIVE).ln();
            let (a, b, c) = (
                log_power(power(spectrum[k - 1])),
                log_power(peak),
                log_power(power(next)),
            );
            let curvature = a - 2.0 * b + c;
            if curvature < 0.0 {
                (0.5 * (a - c) / curvature).clamp(-0.5, 0.5)
            } else {
                0.0
            }
        }
        // The peak is at Nyquist: nothing above it to interpolate with.
        None => 0.0,
    };
    Some(((k as f64 + offset) * bin_hz) as f32)
}

/// The share of the spectrum's energy in each band.
fn band_ratios(spectrum: &[Complex<f32>], n: usize, bin_hz: f64) -> BandRatios {
    let (low_max, mid_max) = (f64::from(LOW_BAND_MAX_HZ), f64::from(MID_BAND_MAX_HZ));
    let mut energy = [0.0f64; 3];
    for (k, &c) in spectrum.iter().enumerate() {
        // The one-sided spectrum stands for the negative frequencies too, except at DC and at
        // Nyquist (present when the length is even), which have no mirror image.
        let mirrored = k != 0 && 2 * k != n;
        let p = power(c) * if mirrored { 2.0 } else { 1.0 };
        let hz = k as f64 * bin_hz;
        let band = if hz < low_max {
            0
        } else if hz < mid_max {
            1
        } else {
            2
        };
        energy[band] += p;
    }
    let total: f64 = energy.iter().sum();
    if total <= 0.0 || !total.is_finite() {
        return BandRatios::default();
    }
    BandRatios {
        low: (energy[0] / total) as f32,
        mid: (energy[1] / total) as f32,
        high: (energy[2] / total) as f32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SAMPLE_RATE;

    const SR: f64 = SAMPLE_RATE as f64;
    /// One second at the pipeline's rate.
    const SECOND: usize = SAMPLE_RATE as usize;

    fn sine(hz: f64, amplitude: f64, len: usize) -> Vec<f32> {
        (0..len)
            .map(|i| (amplitude * (2.0 * std::f64::consts::PI * hz * i as f64 / SR).sin()) as f32)
            .collect()
    }

    fn analyze(samples: &[f32]) -> AudioFeatures {
        AudioAnalyzer::new(SAMPLE_RATE).analyze(samples)
    }

    fn assert_close(actual: f32, expected: f32, tolerance: f32) {
        assert!(
            (actual - expected).abs() <= tolerance,
            "{actual} is not within {tolerance} of {expected}"
        );
    }

    fn assert_all_finite(f: &AudioFeatures) {
        let values = [
            f.rms,
            f.dbfs,
            f.peak,
            f.zcr,
            f.dominant_hz.unwrap_or(0.0),
            f.bands.low,
            f.bands.mid,
            f.bands.high,
        ];
        assert!(values.iter().all(|v| v.is_finite()), "{f:?}");
    }

    fn silent(samples: usize) -> AudioFeatures {
        AudioFeatures {
            samples,
            rms: 0.0,
            dbfs: DBFS_FLOOR,
            peak: 0.0,
            zcr: 0.0,
            dominant_hz: None,
            bands: BandRatios::default(),
            pitch_hz: None,
        }
    }

    #[test]
    fn dbfs_of_known_levels() {
        assert_eq!(dbfs(1.0), 0.0);
        assert_close(dbfs(0.5), -6.0206, 1e-3);
        assert_close(dbfs(std::f32::consts::FRAC_1_SQRT_2), -3.0103, 1e-3);
        assert_eq!(dbfs(0.0), DBFS_FLOOR);
        assert_eq!(dbfs(1e-9), DBFS_FLOOR);
        assert_eq!(dbfs(-1.0), DBFS_FLOOR);
        assert_eq!(dbfs(f32::NAN), DBFS_FLOOR);
    }

    #[test]
    fn a_1khz_sine_at_half_scale() {
        let f = analyze(&sine(1000.0, 0.5, SECOND));
        assert_eq!(f.samples, SECOND);
        assert_close(f.rms, 0.353_553, 1e-4);
        assert_close(f.dbfs, -9.0309, 1e-3);
        assert_close(f.peak, 0.5, 1e-6);
        assert_close(f.zcr, (2.0 * 1000.0 / SR) as f32, 2e-3);
        assert_close(f.dominant_hz.unwrap(), 1000.0, 2.0);
    }

    #[test]
    fn full_scale_sine_is_minus_3_dbfs_and_full_square_is_0() {
        assert_close(analyze(&sine(1000.0, 1.0, SECOND)).dbfs, -3.0103, 1e-3);
        let square: Vec<f32> = (0..SECOND)
            .map(|i| if (i / 8) % 2 == 0 { 1.0 } else { -1.0 })
            .collect();
        let f = analyze(&square);
        assert_eq!(f.rms, 1.0);
        assert_eq!(f.dbfs, 0.0);
        assert_eq!(f.peak, 1.0);
        // A square of period 16 samples is a 1 kHz fundamental.
        assert_close(f.dominant_hz.unwrap(), 1000.0, 2.0);
    }

    #[test]
    fn level_is_absolute_not_normalised() {
        let f = analyze(&sine(1000.0, 0.01, SECOND));
        assert_close(f.rms, 0.007_071, 1e-5);
        assert_close(f.dbfs, -43.0103, 1e-2);
        // Quiet or loud, the same tone is found.
        assert_close(f.dominant_hz.unwrap(), 1000.0, 2.0);
    }

    #[test]
    fn dominant_frequency_of_various_tones() {
        for hz in [440.0, 1234.5, 97.3, 6789.1] {
            let f = analyze(&sine(hz, 0.3, SECOND));
            assert_close(f.dominant_hz.unwrap(), hz as f32, 2.0);
            assert_close(f.zcr, (2.0 * hz / SR) as f32, 2e-3);
        }
    }

    #[test]
    fn dominant_frequency_is_refined_between_bins() {
        // 1000 samples give 16 Hz bins; 1234.5 Hz lies 0.16 bins from bin 77 and 1242 Hz 0.63
        // bins, so plain bin centres would miss both by 2.5 Hz or more.
        let mut analyzer = AudioAnalyzer::new(SAMPLE_RATE);
        for hz in [1234.5, 1242.0, 440.0] {
            let f = analyzer.analyze(&sine(hz, 0.5, 1000));
            assert_close(f.dominant_hz.unwrap(), hz as f32, 1.0);
        }
    }

    #[test]
    fn bands_follow_the_tone() {
        let low = analyze(&sine(100.0, 0.5, SECOND)).bands;
        assert!(low.low > 0.95, "{low:?}");
        let mid = analyze(&sine(1000.0, 0.5, SECOND)).bands;
        assert!(mid.mid > 0.95, "{mid:?}");
        let high = analyze(&sine(5000.0, 0.5, SECOND)).bands;
        assert!(high.high > 0.95, "{high:?}");
        for bands in [low, mid, high] {
            assert_close(bands.low + bands.mid + bands.high, 1.0, 1e-5);
        }
    }

    #[test]
    fn bands_split_a_mixture_by_energy() {
        // Equal amplitudes, so equal energies in the low and high bands.
        let mix: Vec<f32> = sine(100.0, 0.3, SECOND)
            .iter()
            .zip(sine(5000.0, 0.3, SECOND))
            .map(|(a, b)| a + b)
            .collect();
        let bands = analyze(&mix).bands;
        assert_close(bands.low, 0.5, 0.01);
        assert_close(bands.mid, 0.0, 0.01);
        assert_close(bands.high, 0.5, 0.01);
    }

    #[test]
    fn silence_has_the_floor_and_no_spectrum() {
        assert_eq!(analyze(&vec![0.0; SECOND]), silent(SECOND));
        let whisper = analyze(&sine(1000.0, 1e-8, SECOND));
        assert_eq!(whisper.dbfs, DBFS_FLOOR);
        assert_eq!(whisper.dominant_hz, None);
        assert_eq!(whisper.bands, BandRatios::default());
    }

    #[test]
    fn empty_and_tiny_windows_are_well_defined() {
        assert_eq!(analyze(&[]), silent(0));
        let one = analyze(&[0.5]);
        assert_eq!((one.rms, one.peak, one.zcr), (0.5, 0.5, 0.0));
        let short = analyze(&sine(1000.0, 0.5, MIN_SPECTRUM_LEN - 1));
        assert!(short.rms > 0.3);
        assert_eq!(short.dominant_hz, None);
        assert_eq!(short.bands, BandRatios::default());
        assert!(analyze(&sine(1000.0, 0.5, MIN_SPECTRUM_LEN))
            .dominant_hz
            .is_some());
    }

    #[test]
    fn dc_offset_is_level_but_not_spectrum() {
        let constant = analyze(&vec![0.5; 4000]);
        assert_eq!(constant.rms, 0.5);
        assert_eq!(constant.dominant_hz, None);
        assert_eq!(constant.bands, BandRatios::default());

        let offset: Vec<f32> = sine(440.0, 0.1, SECOND).iter().map(|x| x + 0.3).collect();
        let f = analyze(&offset);
        assert_close(f.dominant_hz.unwrap(), 440.0, 2.0);
        assert!(f.bands.mid > 0.95, "{:?}", f.bands);
    }

    #[test]
    fn non_finite_samples_count_as_zero() {
        let mut samples = sine(1000.0, 0.5, SECOND);
        samples[10] = f32::NAN;
        samples[20] = f32::INFINITY;
        samples[30] = f32::NEG_INFINITY;
        let f = analyze(&samples);
        assert_all_finite(&f);
        assert_close(f.rms, 0.353_553, 1e-3);
        assert_close(f.dominant_hz.unwrap(), 1000.0, 2.0);

        assert_eq!(analyze(&vec![f32::NAN; 1000]), silent(1000));
        assert_eq!(analyze(&[f32::INFINITY; 3]), silent(3));
    }

    #[test]
    fn extreme_samples_give_finite_results() {
        let samples: Vec<f32> = (0..1000)
            .map(|i| if i % 3 == 0 { f32::MAX } else { -f32::MAX })
            .collect();
        let f = analyze(&samples);
        assert_all_finite(&f);
        assert_eq!(f.peak, f32::MAX);
        assert!(f.dominant_hz.is_some());
    }

    #[test]
    fn reused_analyzer_matches_a_fresh_one_across_lengths() {
        let mut analyzer = AudioAnalyzer::default();
        assert_eq!(analyzer.sample_rate(), SAMPLE_RATE);
        let windows = [
            sine(440.0, 0.5, 1024),
            sine(3000.0, 0.2, 8000),
            vec![0.0; 512],
            sine(440.0, 0.5, 1024),
            sine(150.0, 0.9, 8000),
        ];
        for window in &windows {
            assert_eq!(analyzer.analyze(window), analyze(window));
        }
    }

    #[test]
    fn audio_features_round_trip_through_json() {
        let f = analyze(&sine(440.0, 0.5, 4000));
        let json = serde_json::to_string(&f).unwrap();
        assert_eq!(serde_json::from_str::<AudioFeatures>(&json).unwrap(), f);
    }
}
