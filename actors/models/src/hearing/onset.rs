//! Transient (onset) detection on high-passed energy, for claps over backgrounds.
//!
//! A hand clap is a short broadband burst: most of its energy above 1 kHz, a rise of a few
//! milliseconds and a decay of a few tens. Continuous backgrounds (speech, a vacuum cleaner, a
//! TV) change slowly by comparison, so a jump of the high-passed energy in 4 ms against the
//! preceding ~130 ms finds claps that YAMNet's 0.96 s patch cannot hear under the background.
//! The detector only proposes onsets; [`super::clap`] decides which ones are claps.

/// Samples per energy block (1 ms at 16 kHz).
pub const BLOCK: usize = 16;
/// Blocks summed for the "fast" energy right after a candidate onset (4 ms).
const FAST_BLOCKS: usize = 4;
/// The background is the mean energy of blocks `[b − BG_FAR, b − BG_NEAR)`: the 27 ms just
/// before, so a clap in a pause between syllables counts against the pause, not the syllable.
const BG_FAR: usize = 30;
const BG_NEAR: usize = 3;
/// Energy floor added to the background so digital silence does not make any click an onset
/// (−90 dBFS mean square).
const ENERGY_FLOOR: f64 = 1e-9;

/// Settings of the transient detector.
#[derive(Clone, Debug, PartialEq)]
pub struct OnsetConfig {
    /// High-pass corner (Hz) of the band whose energy is watched.
    pub highpass_hz: f32,
    /// Minimum jump (dB) of the 4 ms band energy over the background.
    pub jump_db: f32,
    /// Minimum 4 ms band energy (dBFS mean square) of an onset.
    pub min_level_dbfs: f32,
    /// After an onset, no other onset for this long (s): a clap's several micro-transients
    /// (palms meeting unevenly) are one event.
    pub refractory_s: f32,
}

impl Default for OnsetConfig {
    fn default() -> Self {
        OnsetConfig {
            highpass_hz: 1000.0,
            jump_db: 10.0,
            min_level_dbfs: -50.0,
            refractory_s: 0.03,
        }
    }
}

/// Second-order Butterworth high-pass (RBJ biquad), direct form I, with its state.
#[derive(Clone, Debug)]
pub struct HighPass {
    b: [f64; 3],
    a: [f64; 2],
    x: [f64; 2],
    y: [f64; 2],
}

impl HighPass {
    /// A high-pass at `corner_hz` for `sample_rate` Hz.
    pub fn new(corner_hz: f32, sample_rate: f32) -> HighPass {
        let w0 = 2.0 * std::f64::consts::PI * f64::from(corner_hz) / f64::from(sample_rate);
        let (sin, cos) = w0.sin_cos();
        let alpha = sin / (2.0 * std::f64::consts::FRAC_1_SQRT_2);
        let a0 = 1.0 + alpha;
        HighPass {
            b: [
                (1.0 + cos) / 2.0 / a0,
                -(1.0 + cos) / a0,
                (1.0 + cos) / 2.0 / a0,
            ],
            a: [-2.0 * cos / a0, (1.0 - alpha) / a0],
            x: [0.0; 2],
            y: [0.0; 2],
        }
    }

    /// Filters one sample.
    pub fn process(&mut self, x: f32) -> f32 {
        let x = f64::from(if x.is_finite() { x } else { 0.0 });
        let y = self.b[0] * x + self.b[1] * self.x[0] + self.b[2] * self.x[1]
            - self.a[0] * self.y[0]
            - self.a[1] * self.y[1];
        self.x = [x, self.x[0]];
        self.y = [y, self.y[0]];
        y as f32
    }
}

/// A proposed onset.
#[derive(Clone, Debug, PartialEq)]
pub struct Onset {
    /// Absolute sample index of the onset (first sample whose high-passed magnitude reaches
    /// 10 % of the burst's peak, or 3× the background RMS if that is higher).
    pub sample: u64,
    /// Jump of the 4 ms band energy over the background (dB).
    pub jump_db: f32,
    /// 4 ms band energy at the onset (dBFS mean square).
    pub level_dbfs: f32,
    /// Background band energy before the onset (dBFS mean square).
    pub background_dbfs: f32,
}

/// Streaming transient detector: feed samples, get onsets once 40 ms after them are known.
#[derive(Clone, Debug)]
pub struct OnsetDetector {
    config: OnsetConfig,
    filter: HighPass,
    /// High-passed samples from absolute index `hp_start`.
    hp: Vec<f32>,
    hp_start: u64,
    /// Running sums of block energies (mean square of the high-passed samples):
    /// `cum[i]` is the sum over blocks `energy_start .. energy_start + i`, so any mean is O(1).
    cum: Vec<f64>,
    energy_start: u64,
    /// Partial block being summed.
    acc: f64,
    acc_len: usize,
    /// Next block to test.
    next_block: u64,
    /// No onset before this block (refractory period).
    quiet_until: u64,
}

/// Blocks after a candidate block needed before it can be judged (peak search, 40 ms).
const LOOKAHEAD_BLOCKS: u64 = 40;
/// Half-width (blocks) of the peak-picking neighbourhood.
const PEAK_BLOCKS: u64 = 30;
/// First block tested: the background needs at least 10 ms of history.
const MIN_BLOCK: u64 = BG_NEAR as u64 + 10;

impl OnsetDetector {
    /// A detector starting at absolute sample 0.
    pub fn new(config: OnsetConfig) -> OnsetDetector {
        OnsetDetector {
            filter: HighPass::new(config.highpass_hz, 16_000.0),
            config,
            hp: Vec::new(),
            hp_start: 0,
            cum: vec![0.0],
            energy_start: 0,
            acc: 0.0,
            acc_len: 0,
            next_block: MIN_BLOCK,
            quiet_until: 0,
        }
    }

    /// Feeds samples that follow the previous ones; returns the onsets that became certain.
    pub fn push(&mut self, samples: &[f32]) -> Vec<Onset> {
        for &x in samples {
            let y = self.filter.process(x);
            self.hp.push(y);
            self.acc += f64::from(y) * f64::from(y);
            self.acc_len += 1;
            if self.acc_len == BLOCK {
                let last = self.cum.last().copied().unwrap_or(0.0);
                self.cum.push(last + self.acc / BLOCK as f64);
                self.acc = 0.0;
                self.acc_len = 0;
            }
        }
        let mut onsets = Vec::new();
        let blocks_end = self.energy_start + self.cum.len() as u64 - 1;
        while self.next_block + LOOKAHEAD_BLOCKS <= blocks_end {
            let b = self.next_block;
            self.next_block += 1;
            if b < self.quiet_until {
                continue;
            }
            if let Some(onset) = self.test_block(b) {
                self.quiet_until = b + (self.config.refractory_s * 1000.0) as u64;
                onsets.push(onset);
            }
        }
        self.trim();
        onsets
    }

    /// Running sum up to (not including) block `b`, clamped to the stored range.
    fn cum_at(&self, b: u64) -> f64 {
        let i = b.saturating_sub(self.energy_start) as usize;
        self.cum
            .get(i.min(self.cum.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0.0)
    }

    fn mean_energy(&self, from: u64, to: u64) -> f64 {
        if to <= from {
            return 0.0;
        }
        ((self.cum_at(to) - self.cum_at(from)) / (to - from) as f64).max(0.0)
    }

    fn hp_at(&self, s: u64) -> f32 {
        s.checked_sub(self.hp_start)
            .and_then(|i| self.hp.get(i as usize))
            .copied()
            .unwrap_or(0.0)
    }

    /// Onset strength of block `b`: jump (dB) of the 4 ms band energy over the background,
    /// and the 4 ms energy.
    fn strength(&self, b: u64) -> (f32, f64, f64) {
        let fast = self.mean_energy(b, b + FAST_BLOCKS as u64);
        let bg = self.mean_energy(
            b.saturating_sub(BG_FAR as u64),
            b.saturating_sub(BG_NEAR as u64),
        ) + ENERGY_FLOOR;
        ((10.0 * (fast / bg).log10()) as f32, fast, bg)
    }

    fn test_block(&self, b: u64) -> Option<Onset> {
        let (jump_db, fast, bg) = self.strength(b);
        let level_dbfs = (10.0 * (fast + 1e-20).log10()) as f32;
        if jump_db < self.config.jump_db || level_dbfs < self.config.min_level_dbfs {
            return None;
        }
        // Peak picking: a background onset (a syllable, a key) just before a clap must not
        // hide it, so only the strongest jump within ±PEAK_BLOCKS is kept.
        let lo = b.saturating_sub(PEAK_BLOCKS).max(MIN_BLOCK);
        if (lo..b).any(|c| self.strength(c).0 >= jump_db)
            || (b + 1..=b + PEAK_BLOCKS).any(|c| self.strength(c).0 > jump_db)
        {
            return None;
        }
        // The burst's peak within 30 ms, then the first sample (from 10 ms before the block)
        // reaching 10 % of it: the dev set's onset definition, taken on the band signal.
        let start = b * BLOCK as u64;
        let search_from = start.saturating_sub(160);
        let peak = (start..start + 480)
            .map(|s| self.hp_at(s).abs())
            .fold(0.0f32, f32::max);
        let bg_rms = bg.sqrt() as f32;
        let threshold = (0.1 * peak).max(3.0 * bg_rms);
        let sample = (search_from..start + 480)
            .find(|&s| self.hp_at(s).abs() >= threshold)
            .unwrap_or(start);
        Some(Onset {
            sample,
            jump_db,
            level_dbfs,
            background_dbfs: (10.0 * bg.log10()) as f32,
        })
    }

    /// Drops history no test will read again.
    fn trim(&mut self) {
        let keep_from_block = self.next_block.saturating_sub(BG_FAR as u64 + 1);
        if keep_from_block > self.energy_start + 4096 {
            let drop = (keep_from_block - self.energy_start) as usize;
            self.cum.drain(..drop);
            // Rebase so the sums stay small and precise over a long stream.
            let base = self.cum.first().copied().unwrap_or(0.0);
            for c in &mut self.cum {
                *c -= base;
            }
            self.energy_start = keep_from_block;
            let keep_from_sample = keep_from_block * BLOCK as u64;
            let drop = (keep_from_sample.saturating_sub(self.hp_start) as usize).min(self.hp.len());
            self.hp.drain(..drop);
            self.hp_start += drop as u64;
        }
    }

    /// Pads the end with silence so the last onsets are judged (end of stream).
    pub fn flush(&mut self) -> Vec<Onset> {
        self.push(&[0.0; (LOOKAHEAD_BLOCKS as usize + 1) * BLOCK])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn click_in_silence_is_found_at_its_sample() {
        let mut x = vec![0.0f32; 16_000];
        for (i, v) in x[8000..8400].iter_mut().enumerate() {
            // A decaying alternating burst: broadband, high-frequency energy.
            *v = 0.5 * (-(i as f32) / 60.0).exp() * if i % 2 == 0 { 1.0 } else { -1.0 };
        }
        let mut det = OnsetDetector::new(OnsetConfig::default());
        let mut onsets = det.push(&x);
        onsets.extend(det.flush());
        assert_eq!(onsets.len(), 1, "{onsets:?}");
        assert!((onsets[0].sample as i64 - 8000).abs() <= 16, "{onsets:?}");
    }

    #[test]
    fn steady_noise_gives_no_onset_and_chunking_does_not_matter() {
        // Deterministic white-ish noise from an LCG.
        let mut state = 12345u32;
        let x: Vec<f32> = (0..32_000)
            .map(|_| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (state >> 8) as f32 / (1u32 << 24) as f32 * 0.2 - 0.1
            })
            .collect();
        let mut whole = OnsetDetector::new(OnsetConfig::default());
        let a = whole.push(&x);
        let mut chunked = OnsetDetector::new(OnsetConfig::default());
        let b: Vec<Onset> = x.chunks(333).flat_map(|c| chunked.push(c)).collect();
        assert_eq!(a, b);
        assert!(a.is_empty(), "{a:?}");
    }
}
