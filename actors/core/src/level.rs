//! Per-second level measurement of a stream: what each audio source's analysis path reports
//! as the source's level and pitch.

use crate::audio_features::{AudioAnalyzer, AudioFeatures};
use crate::time::Timestamp;
use crate::SAMPLE_RATE;

/// Cuts a stamped stream into whole seconds and analyses each one.
#[derive(Debug)]
pub struct LevelMeter {
    analyzer: AudioAnalyzer,
    /// Samples of the second being filled, and the capture time of its first sample.
    second: Vec<f32>,
    second_start: Option<Timestamp>,
}

impl Default for LevelMeter {
    fn default() -> Self {
        Self::new()
    }
}

impl LevelMeter {
    pub fn new() -> Self {
        Self {
            analyzer: AudioAnalyzer::new(SAMPLE_RATE),
            second: Vec::with_capacity(SAMPLE_RATE as usize),
            second_start: None,
        }
    }

    /// Adds samples whose first is at `t`; returns each second completed, with its start.
    pub fn push(&mut self, t: Timestamp, samples: &[f32]) -> Vec<(Timestamp, AudioFeatures)> {
        let mut out = Vec::new();
        let mut t = t;
        let mut rest = samples;
        while !rest.is_empty() {
            let start = *self.second_start.get_or_insert(t);
            let room = SAMPLE_RATE as usize - self.second.len();
            let take = room.min(rest.len());
            self.second.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            t = Timestamp(t.0 + take as i64 * 1_000_000 / SAMPLE_RATE as i64);
            if self.second.len() == SAMPLE_RATE as usize {
                out.push((start, self.analyzer.analyze(&self.second)));
                self.reset();
            }
        }
        out
    }

    /// Drops a partly filled second (the stream was interrupted).
    pub fn reset(&mut self) {
        self.second.clear();
        self.second_start = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_each_whole_second_with_its_start() {
        let mut m = LevelMeter::new();
        let sine: Vec<f32> = (0..24_000)
            .map(|n| 0.5 * (2.0 * std::f32::consts::PI * 1000.0 * n as f32 / 16_000.0).sin())
            .collect();
        // 1.5 s in 100 ms chunks from t = 10 s: one second is complete, half of the next.
        let mut got = Vec::new();
        for (i, chunk) in sine.chunks(1600).enumerate() {
            got.extend(m.push(Timestamp(10_000_000 + i as i64 * 100_000), chunk));
        }
        assert_eq!(got.len(), 1);
        let (start, f) = &got[0];
        assert_eq!(*start, Timestamp(10_000_000));
        assert!((f.dbfs - (-9.03)).abs() < 0.05, "{}", f.dbfs);
        assert!((f.dominant_hz.unwrap() - 1000.0).abs() < 2.0);
        // The next second starts where the first ended, and a reset forgets the half.
        let next = m.push(Timestamp(11_500_000), &sine[..8_000]);
        assert_eq!(next[0].0, Timestamp(11_000_000));
        m.push(Timestamp(12_000_000), &sine[..8_000]);
        m.reset();
        assert!(m.push(Timestamp(20_000_000), &sine[..8_000]).is_empty());
    }
}
