//! The fundamental frequency of a voice, to tell two speakers apart.
//!
//! A normalised autocorrelation over 40 ms frames: a frame is voiced when its best
//! correlation at a lag inside the human voice range (70–400 Hz) reaches [`VOICED_NCCF`]. The
//! span's pitch is the median over its voiced frames, so a few octave errors do not move it.
//! Men speak around 85–155 Hz, women around 165–255 Hz: enough to notice that the voice
//! changed between turns, which is all the classifier asks of it.

use crate::stats;

/// Lowest and highest pitch searched, Hz.
pub const MIN_HZ: f32 = 70.0;
pub const MAX_HZ: f32 = 400.0;
/// Normalised cross-correlation a frame needs to count as voiced.
pub const VOICED_NCCF: f32 = 0.6;
/// Frames quieter than this are not examined, dBFS.
pub const MIN_DBFS: f32 = -50.0;
/// Voiced frames a span needs before its pitch is reported.
pub const MIN_VOICED_FRAMES: usize = 4;

/// The median pitch of the voiced frames of `samples` (mono, `rate` Hz), or `None` when fewer
/// than [`MIN_VOICED_FRAMES`] are voiced.
pub fn voice_pitch_hz(samples: &[f32], rate: u32) -> Option<f32> {
    let rate_f = rate as f32;
    let frame = (rate_f * 0.040) as usize;
    let hop = (rate_f * 0.020) as usize;
    let min_lag = (rate_f / MAX_HZ).floor() as usize;
    let max_lag = (rate_f / MIN_HZ).ceil() as usize;
    if frame == 0 || hop == 0 || samples.len() < frame + max_lag {
        return None;
    }
    let min_energy = {
        let rms = 10f32.powf(MIN_DBFS / 20.0);
        rms * rms * frame as f32
    };
    let mut pitches = Vec::new();
    let mut start = 0;
    while start + frame + max_lag <= samples.len() {
        let x = &samples[start..start + frame];
        let e0: f32 = x.iter().map(|v| v * v).sum();
        if e0.is_finite() && e0 >= min_energy {
            if let Some(hz) = frame_pitch(samples, start, frame, min_lag, max_lag, e0, rate_f) {
                pitches.push(hz);
            }
        }
        start += hop;
    }
    if pitches.len() < MIN_VOICED_FRAMES {
        return None;
    }
    stats::quantile(&pitches, 0.5)
}

fn frame_pitch(
    samples: &[f32],
    start: usize,
    frame: usize,
    min_lag: usize,
    max_lag: usize,
    e0: f32,
    rate: f32,
) -> Option<f32> {
    let x = &samples[start..start + frame];
    let mut best = (0usize, 0f32);
    let mut ncc = vec![0f32; max_lag + 1];
    for (lag, slot) in ncc.iter_mut().enumerate().take(max_lag + 1).skip(min_lag) {
        let y = &samples[start + lag..start + lag + frame];
        let mut cross = 0f32;
        let mut e1 = 0f32;
        for (a, b) in x.iter().zip(y) {
            cross += a * b;
            e1 += b * b;
        }
        let v = if e1 > 0.0 {
            cross / (e0 * e1).sqrt()
        } else {
            0.0
        };
        *slot = v;
        if v > best.1 {
            best = (lag, v);
        }
    }
    // A best lag on the search's edge is no pitch in range: low-passed noise correlates most at
    // the shortest lag, hum at the longest.
    if best.1 < VOICED_NCCF || best.0 <= min_lag || best.0 >= max_lag {
        return None;
    }
    // Octave check: prefer the shortest lag whose correlation is nearly as good, since a
    // periodic signal also correlates at two and three times its period.
    let mut lag = best.0;
    for divisor in [3usize, 2] {
        let candidate = best.0 / divisor;
        if candidate >= min_lag {
            let around = candidate.saturating_sub(1)..=(candidate + 1).min(max_lag);
            if let Some(l) = around.max_by(|&a, &b| ncc[a].total_cmp(&ncc[b])) {
                if ncc[l] >= 0.9 * best.1 {
                    lag = l;
                    break;
                }
            }
        }
    }
    Some(rate / lag as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A buzz like a voiced vowel: a fundamental and decaying harmonics.
    fn voice(f0: f32, seconds: f32, amplitude: f32) -> Vec<f32> {
        let n = (16_000.0 * seconds) as usize;
        (0..n)
            .map(|i| {
                let t = i as f32 / 16_000.0;
                (1..=8)
                    .map(|h| (std::f32::consts::TAU * f0 * h as f32 * t).sin() / h as f32)
                    .sum::<f32>()
                    * amplitude
            })
            .collect()
    }

    #[test]
    fn finds_male_and_female_fundamentals() {
        for f0 in [95.0, 120.0, 210.0, 240.0] {
            let hz = voice_pitch_hz(&voice(f0, 1.0, 0.1), 16_000).expect("voiced");
            assert!((hz - f0).abs() < f0 * 0.04, "{f0} Hz read as {hz}");
        }
    }

    #[test]
    fn noise_and_silence_have_no_pitch() {
        let mut seed = 1u32;
        let noise: Vec<f32> = (0..16_000)
            .map(|_| {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
            })
            .collect();
        assert_eq!(voice_pitch_hz(&noise, 16_000), None);
        assert_eq!(voice_pitch_hz(&vec![0.0; 16_000], 16_000), None);
        // Too quiet to examine.
        assert_eq!(voice_pitch_hz(&voice(120.0, 1.0, 0.0005), 16_000), None);
        // Too short.
        assert_eq!(voice_pitch_hz(&voice(120.0, 0.01, 0.1), 16_000), None);
    }
}
