//! Acoustic description of one transient: spectrum shape after removing the background,
//! attack and decay. Claps are broadband noise bursts; drums, wood and glass are tonal or
//! low; snaps and hi-hats are higher and shorter.

use std::sync::Arc;

use realfft::{RealFftPlanner, RealToComplex};

use super::onset::{HighPass, BLOCK};

const SR: f32 = 16_000.0;
const FFT: usize = 512;

/// Numbers describing a transient (all finite).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct TransientFeatures {
    /// Share of the burst's energy (background removed) below 500 Hz.
    pub low_share: f32,
    /// Share above 5 kHz.
    pub high_share: f32,
    /// Spectral centroid (Hz) of the burst.
    pub centroid_hz: f32,
    /// Spectral flatness (geometric / arithmetic mean power) over 700 Hz – 6 kHz, in 1/3-octave
    /// bands: near 1 for noise, low for tonal sounds.
    pub flatness: f32,
    /// Time from the onset to the peak of the 1 ms high-passed energy (ms).
    pub attack_ms: f32,
    /// Time from that peak until the band energy stays 20 dB below it (ms, at most 300).
    pub decay_ms: f32,
    /// Burst energy over background energy in the first 32 ms (dB, full band).
    pub snr_db: f32,
    /// Mean above-1 kHz energy 20–60 ms after the onset relative to the loudest 4 ms block of
    /// the first 32 ms (dB, ≤ 0): a clap has a body of noise after its first crack (palms,
    /// the air between them, the room); a key press or a click is over in a few ms.
    pub body_db: f32,
    /// Time (ms) within the first 60 ms after the onset that the above-1 kHz energy of 4 ms
    /// blocks is within 10 dB of that peak: a clap is one burst; a bark, a ring, a giggle or a
    /// drum machine's clap (several bursts and a tail) stays loud longer.
    pub burst_ms: f32,
}

/// Measures transients; keeps its FFT plan.
pub struct TransientAnalyzer {
    fft: Arc<dyn RealToComplex<f32>>,
    window: Vec<f32>,
}

impl std::fmt::Debug for TransientAnalyzer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransientAnalyzer").finish_non_exhaustive()
    }
}

impl Default for TransientAnalyzer {
    fn default() -> Self {
        Self::new()
    }
}

impl TransientAnalyzer {
    pub fn new() -> TransientAnalyzer {
        TransientAnalyzer {
            fft: RealFftPlanner::<f32>::new().plan_fft_forward(FFT),
            window: (0..FFT)
                .map(|i| 0.5 - 0.5 * (2.0 * std::f32::consts::PI * i as f32 / FFT as f32).cos())
                .collect(),
        }
    }

    /// Power spectrum (257 bins) of `x[start..start + 512]` (zeros outside `x`).
    fn power(&self, x: &[f32], start: isize) -> Vec<f32> {
        let mut input = self.fft.make_input_vec();
        for (i, v) in input.iter_mut().enumerate() {
            let s = start + i as isize;
            let sample = if s >= 0 {
                x.get(s as usize).copied().unwrap_or(0.0)
            } else {
                0.0
            };
            *v = sample * self.window[i];
        }
        let mut out = self.fft.make_output_vec();
        // The buffers come from the plan, so the transform cannot fail.
        let _ = self.fft.process(&mut input, &mut out);
        out.iter().map(|c| c.norm_sqr()).collect()
    }

    /// Features of the transient whose onset is `x[onset]`; `x` should hold at least 200 ms
    /// before and 300 ms after the onset (missing samples count as zeros).
    pub fn measure(&self, x: &[f32], onset: usize) -> TransientFeatures {
        let onset_i = onset as isize;
        // Burst: 32 ms from 2 ms before the onset. Background: mean of three frames ending
        // 20 ms before the onset (a previous clap's tail may leak in; that only lowers SNR).
        let burst = self.power(x, onset_i - 32);
        let mut bg = vec![0.0f32; burst.len()];
        for k in 0..3 {
            let p = self.power(x, onset_i - 20 * 16 - FFT as isize * (k + 1));
            for (b, v) in bg.iter_mut().zip(p) {
                *b += v / 3.0;
            }
        }
        let clean: Vec<f32> = burst
            .iter()
            .zip(&bg)
            .map(|(&p, &n)| (p - 2.0 * n).max(0.0))
            .collect();
        let hz = |k: usize| k as f32 * SR / FFT as f32;
        let total: f32 = clean.iter().skip(1).sum::<f32>() + 1e-12;
        let low: f32 = (1..FFT / 2 + 1)
            .filter(|&k| hz(k) < 500.0)
            .map(|k| clean[k])
            .sum();
        let high: f32 = (1..FFT / 2 + 1)
            .filter(|&k| hz(k) >= 5000.0)
            .map(|k| clean[k])
            .sum();
        let centroid = (1..FFT / 2 + 1).map(|k| hz(k) * clean[k]).sum::<f32>() / total;
        // 1/3-octave bands from 700 Hz to 6 kHz: band powers' flatness (robust to the bin
        // scatter of a noise spectrum, still low for a few partials).
        let mut bands = Vec::new();
        let mut lo = 700.0f32;
        while lo < 6000.0 {
            let hi = lo * 2f32.powf(1.0 / 3.0);
            let (sum, n) = (1..FFT / 2 + 1)
                .filter(|&k| hz(k) >= lo && hz(k) < hi)
                .fold((0.0f32, 0usize), |(s, n), k| (s + clean[k], n + 1));
            if n > 0 {
                bands.push(sum / n as f32);
            }
            lo = hi;
        }
        let eps = total / FFT as f32 * 1e-3;
        let arith = bands.iter().sum::<f32>() / bands.len().max(1) as f32 + eps;
        let geo =
            (bands.iter().map(|b| (b + eps).ln()).sum::<f32>() / bands.len().max(1) as f32).exp();
        let flatness = geo / arith;
        let bg_total: f32 = bg.iter().skip(1).sum::<f32>() + 1e-12;
        let burst_total: f32 = burst.iter().skip(1).sum::<f32>() + 1e-12;

        // Envelope of the high-passed signal in 1 ms blocks from 10 ms before the onset.
        let mut hp = HighPass::new(1000.0, SR);
        let from = onset.saturating_sub(160);
        let to = (onset + 300 * BLOCK).min(x.len());
        let env: Vec<f32> = x
            .get(from..to)
            .unwrap_or(&[])
            .chunks(BLOCK)
            .map(|c| {
                c.iter()
                    .map(|&s| {
                        let y = hp.process(s);
                        y * y
                    })
                    .sum::<f32>()
                    / BLOCK as f32
            })
            .collect();
        let first = (onset - from) / BLOCK;
        let peak_i = env
            .iter()
            .enumerate()
            .skip(first)
            .take(30)
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map_or(first, |(i, _)| i);
        let peak = env.get(peak_i).copied().unwrap_or(0.0);
        let last_loud = env
            .iter()
            .enumerate()
            .skip(peak_i)
            .rfind(|(_, &e)| e >= peak * 0.01)
            .map_or(peak_i, |(i, _)| i);
        // 4 ms blocks from the onset: the body and the burst length.
        let blocks: Vec<f32> = env
            .get(first..)
            .unwrap_or(&[])
            .chunks_exact(4)
            .map(|c| c.iter().sum::<f32>() / 4.0)
            .collect();
        let block_peak = blocks.iter().take(8).fold(0.0f32, |m, &e| m.max(e));
        let body = blocks.iter().skip(5).take(10).sum::<f32>() / 10.0;
        let body_db = (10.0 * ((body + 1e-20) / (block_peak + 1e-20)).log10()).clamp(-120.0, 0.0);
        let burst_ms = 4.0
            * blocks
                .iter()
                .take(15)
                .filter(|&&e| e > 0.1 * block_peak)
                .count() as f32;
        let finite = |v: f32| if v.is_finite() { v } else { 0.0 };
        TransientFeatures {
            low_share: finite(low / total),
            high_share: finite(high / total),
            centroid_hz: finite(centroid),
            flatness: finite(flatness),
            attack_ms: (peak_i.saturating_sub(first)) as f32,
            decay_ms: (last_loud - peak_i) as f32,
            snr_db: finite(10.0 * (burst_total / bg_total).log10()).clamp(-60.0, 120.0),
            body_db: finite(body_db),
            burst_ms,
        }
    }
}
