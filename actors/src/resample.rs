//! Conversion of any source's audio to the pipeline's format: mono `f32` at 16 kHz.
//!
//! Every audio source (media files, microphones, VBAN, RTSP) goes through [`To16k`]:
//! [`downmix`] averages the channels (never normalising the level: absolute loudness is a
//! feature), and the resampler (rubato's FFT resampler) changes the rate. The resampler's own
//! delay is dropped from the start of the output, so a sound at input time t comes out at output
//! time t, and [`To16k::flush`] pushes the tail out so that the output has exactly
//! `round(n · 16000 / rate_in)` samples.

use rubato::{FftFixedIn, Resampler};

/// The pipeline's sample rate.
pub const OUTPUT_RATE: u32 = cav_core::SAMPLE_RATE;

/// Input samples per resampler block: 1024 (21 ms at 48 kHz) keeps latency low for live
/// sources and the FFT efficient.
const BLOCK: usize = 1024;

#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum ResampleError {
    #[error("sample rate 0 is not a rate")]
    ZeroRate,
    #[error("cannot resample {rate_in} Hz to 16 kHz: {reason}")]
    Setup { rate_in: u32, reason: String },
    #[error("resampling failed: {0}")]
    Process(String),
}

/// Averages interleaved frames of `channels` channels into mono. A trailing partial frame is
/// ignored; `channels == 0` gives nothing.
pub fn downmix(interleaved: &[f32], channels: usize) -> Vec<f32> {
    match channels {
        0 => Vec::new(),
        1 => interleaved.to_vec(),
        n => interleaved
            .chunks_exact(n)
            .map(|frame| frame.iter().sum::<f32>() / n as f32)
            .collect(),
    }
}

/// A streaming mono resampler to 16 kHz (a pass-through at 16 kHz).
pub struct To16k {
    rate_in: u32,
    inner: Option<Fft>,
}

struct Fft {
    resampler: FftFixedIn<f32>,
    pending: Vec<f32>,
    /// Leading output samples still to drop (the resampler's delay).
    delay_left: usize,
    total_in: u64,
    total_out: u64,
}

impl std::fmt::Debug for To16k {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("To16k")
            .field("rate_in", &self.rate_in)
            .finish()
    }
}

impl To16k {
    pub fn new(rate_in: u32) -> Result<Self, ResampleError> {
        if rate_in == 0 {
            return Err(ResampleError::ZeroRate);
        }
        if rate_in == OUTPUT_RATE {
            return Ok(Self {
                rate_in,
                inner: None,
            });
        }
        let resampler = FftFixedIn::<f32>::new(rate_in as usize, OUTPUT_RATE as usize, BLOCK, 1, 1)
            .map_err(|e| ResampleError::Setup {
                rate_in,
                reason: e.to_string(),
            })?;
        let delay_left = resampler.output_delay();
        Ok(Self {
            rate_in,
            inner: Some(Fft {
                resampler,
                pending: Vec::with_capacity(2 * BLOCK),
                delay_left,
                total_in: 0,
                total_out: 0,
            }),
        })
    }

    pub fn rate_in(&self) -> u32 {
        self.rate_in
    }

    /// Feeds mono samples; appends whatever 16 kHz output is ready to `out`.
    pub fn push(
        &mut self,
        samples: &[f32],
        out: &mut impl Extend<f32>,
    ) -> Result<(), ResampleError> {
        let Some(r) = self.inner.as_mut() else {
            out.extend(samples.iter().copied());
            return Ok(());
        };
        r.total_in += samples.len() as u64;
        r.pending.extend_from_slice(samples);
        let mut start = 0;
        while r.pending.len() - start >= BLOCK {
            let block = &r.pending[start..start + BLOCK];
            let resampled = r
                .resampler
                .process(&[block], None)
                .map_err(|e| ResampleError::Process(e.to_string()))?;
            start += BLOCK;
            r.emit(&resampled, u64::MAX, out);
        }
        r.pending.drain(..start);
        Ok(())
    }

    /// Pushes the rest through (end of stream); the total output then has exactly
    /// `round(total_in · 16000 / rate_in)` samples.
    pub fn flush(&mut self, out: &mut impl Extend<f32>) -> Result<(), ResampleError> {
        let rate_in = self.rate_in;
        let Some(r) = self.inner.as_mut() else {
            return Ok(());
        };
        let expected =
            (r.total_in as f64 * f64::from(OUTPUT_RATE) / f64::from(rate_in)).round() as u64;
        let err = |e: rubato::ResampleError| ResampleError::Process(e.to_string());
        if !r.pending.is_empty() {
            let pending = std::mem::take(&mut r.pending);
            let resampled = r
                .resampler
                .process_partial(Some(&[&pending[..]]), None)
                .map_err(err)?;
            r.emit(&resampled, expected, out);
        }
        // Zeros push the delayed tail out; each round yields at least one FFT block.
        let mut rounds = 0;
        while r.total_out < expected && rounds < 64 {
            let resampled = r
                .resampler
                .process_partial(None::<&[&[f32]]>, None)
                .map_err(err)?;
            r.emit(&resampled, expected, out);
            rounds += 1;
        }
        Ok(())
    }
}

impl Fft {
    fn emit(&mut self, resampled: &[Vec<f32>], cap: u64, out: &mut impl Extend<f32>) {
        let Some(channel) = resampled.first() else {
            return;
        };
        let mut s = &channel[..];
        let drop = self.delay_left.min(s.len());
        self.delay_left -= drop;
        s = &s[drop..];
        let room = cap.saturating_sub(self.total_out).min(s.len() as u64) as usize;
        s = &s[..room];
        self.total_out += s.len() as u64;
        out.extend(s.iter().copied());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(rate: u32, hz: f32, amp: f32, n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| amp * (2.0 * std::f32::consts::PI * hz * i as f32 / rate as f32).sin())
            .collect()
    }

    #[test]
    fn downmix_averages_channels() {
        assert_eq!(downmix(&[1.0, 0.0, 0.5, 0.5, 9.0], 2), vec![0.5, 0.5]);
        assert_eq!(downmix(&[0.25, 0.5], 1), vec![0.25, 0.5]);
        assert!(downmix(&[1.0], 0).is_empty());
    }

    #[test]
    fn keeps_frequency_level_length_and_timing() {
        for rate in [8_000u32, 22_050, 44_100, 48_000, 96_000] {
            // 1 s of silence, then a 1 kHz tone at amplitude 0.5 for 1 s, fed in odd-sized pieces.
            let mut input = vec![0.0; rate as usize];
            input.extend(sine(rate, 1000.0, 0.5, rate as usize));
            let mut r = To16k::new(rate).unwrap();
            let mut out = Vec::new();
            for piece in input.chunks(997) {
                r.push(piece, &mut out).unwrap();
            }
            r.flush(&mut out).unwrap();
            assert_eq!(out.len(), 32_000, "{rate} Hz");
            let onset = out.iter().position(|x| x.abs() > 0.1).unwrap();
            assert!(
                (onset as i64 - 16_000).abs() <= 3,
                "{rate} Hz: onset at {onset}"
            );
            let tone = &out[17_000..31_000];
            let rms = (tone.iter().map(|x| x * x).sum::<f32>() / tone.len() as f32).sqrt();
            assert!((rms - 0.3536).abs() < 0.01, "{rate} Hz: rms {rms}");
            let crossings = tone
                .windows(2)
                .filter(|w| (w[0] < 0.0) != (w[1] < 0.0))
                .count();
            let hz = crossings as f32 / 2.0 / (tone.len() as f32 / 16_000.0);
            assert!((hz - 1000.0).abs() < 5.0, "{rate} Hz: {hz} Hz");
        }
    }

    #[test]
    fn sixteen_khz_passes_through() {
        let mut r = To16k::new(16_000).unwrap();
        let mut out = Vec::new();
        r.push(&[0.1, 0.2], &mut out).unwrap();
        r.flush(&mut out).unwrap();
        assert_eq!(out, vec![0.1, 0.2]);
        assert_eq!(To16k::new(0).unwrap_err(), ResampleError::ZeroRate);
    }
}
