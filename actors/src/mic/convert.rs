//! Sample formats: which stream configuration to ask a device for, and how its samples become
//! `f32` in [-1, 1).

use cpal::{SampleFormat, SupportedStreamConfig, SupportedStreamConfigRange};

/// The integer and float formats [`data_to_f32`] converts.
pub fn is_readable_format(format: SampleFormat) -> bool {
    matches!(
        format,
        SampleFormat::I8
            | SampleFormat::U8
            | SampleFormat::I16
            | SampleFormat::U16
            | SampleFormat::I32
            | SampleFormat::U32
            | SampleFormat::F32
            | SampleFormat::F64
    )
}

/// A sample that converts to `f32` full scale: signed integers divide by 2^(bits−1), unsigned
/// ones are first centred on their midpoint, floats pass through.
trait ToF32: Copy {
    fn to_f32(self) -> f32;
}

impl ToF32 for i8 {
    fn to_f32(self) -> f32 {
        f32::from(self) / 128.0
    }
}
impl ToF32 for u8 {
    fn to_f32(self) -> f32 {
        (f32::from(self) - 128.0) / 128.0
    }
}
impl ToF32 for i16 {
    fn to_f32(self) -> f32 {
        f32::from(self) / 32_768.0
    }
}
impl ToF32 for u16 {
    fn to_f32(self) -> f32 {
        (f32::from(self) - 32_768.0) / 32_768.0
    }
}
impl ToF32 for i32 {
    fn to_f32(self) -> f32 {
        // Through f64: an i32 does not fit f32's mantissa, and the subtraction below must be
        // exact for u32.
        (f64::from(self) / 2_147_483_648.0) as f32
    }
}
impl ToF32 for u32 {
    fn to_f32(self) -> f32 {
        ((f64::from(self) - 2_147_483_648.0) / 2_147_483_648.0) as f32
    }
}
impl ToF32 for f32 {
    fn to_f32(self) -> f32 {
        self
    }
}
impl ToF32 for f64 {
    fn to_f32(self) -> f32 {
        self as f32
    }
}

fn extend<T: ToF32>(samples: &[T], out: &mut Vec<f32>) {
    out.extend(samples.iter().map(|s| s.to_f32()));
}

/// Appends the samples of a cpal buffer to `out` as `f32` (interleaved, as they came). False
/// when the buffer's format is not one of [`is_readable_format`]'s (nothing is appended).
pub fn data_to_f32(data: &cpal::Data, out: &mut Vec<f32>) -> bool {
    // `as_slice` answers None only when the type does not match the buffer's format, which the
    // match rules out; a None still appends nothing rather than panicking.
    match data.sample_format() {
        SampleFormat::I8 => data.as_slice::<i8>().map(|s| extend(s, out)).is_some(),
        SampleFormat::U8 => data.as_slice::<u8>().map(|s| extend(s, out)).is_some(),
        SampleFormat::I16 => data.as_slice::<i16>().map(|s| extend(s, out)).is_some(),
        SampleFormat::U16 => data.as_slice::<u16>().map(|s| extend(s, out)).is_some(),
        SampleFormat::I32 => data.as_slice::<i32>().map(|s| extend(s, out)).is_some(),
        SampleFormat::U32 => data.as_slice::<u32>().map(|s| extend(s, out)).is_some(),
        SampleFormat::F32 => data.as_slice::<f32>().map(|s| extend(s, out)).is_some(),
        SampleFormat::F64 => data.as_slice::<f64>().map(|s| extend(s, out)).is_some(),
        _ => false,
    }
}

/// The stream configuration to open: the device's default when its format is readable (the
/// default is what the device does best, and the resampler takes any rate), otherwise the best
/// readable one of `supported` — f32, then i32, i16, u16, the rest; fewest channels above zero;
/// a rate of 48 kHz, 44.1 kHz or 16 kHz when the range allows, else the range's top.
/// `None` when nothing is readable.
pub fn choose_config(
    default: Option<SupportedStreamConfig>,
    supported: &[SupportedStreamConfigRange],
) -> Option<SupportedStreamConfig> {
    if let Some(d) = default {
        if is_readable_format(d.sample_format()) && d.channels() > 0 && d.sample_rate().0 > 0 {
            return Some(d);
        }
    }
    let rank = |f: SampleFormat| match f {
        SampleFormat::F32 => 0,
        SampleFormat::I32 => 1,
        SampleFormat::I16 => 2,
        SampleFormat::U16 => 3,
        _ => 4,
    };
    let best = supported
        .iter()
        .filter(|r| is_readable_format(r.sample_format()) && r.channels() > 0)
        .filter(|r| r.max_sample_rate().0 > 0)
        .min_by_key(|r| (rank(r.sample_format()), r.channels()))?;
    let rate = [48_000, 44_100, 16_000]
        .into_iter()
        .find(|&hz| best.min_sample_rate().0 <= hz && hz <= best.max_sample_rate().0)
        .map_or(best.max_sample_rate(), cpal::SampleRate);
    (*best).try_with_sample_rate(rate)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cpal::{SampleRate, SupportedBufferSize};

    fn range(
        format: SampleFormat,
        channels: u16,
        min: u32,
        max: u32,
    ) -> SupportedStreamConfigRange {
        SupportedStreamConfigRange::new(
            channels,
            SampleRate(min),
            SampleRate(max),
            SupportedBufferSize::Unknown,
            format,
        )
    }

    #[test]
    fn integer_formats_scale_to_full_scale() {
        assert_eq!(i16::MIN.to_f32(), -1.0);
        assert_eq!(0i16.to_f32(), 0.0);
        assert!((i16::MAX.to_f32() - 1.0).abs() < 1e-4);
        assert_eq!(u16::MIN.to_f32(), -1.0);
        assert_eq!(32_768u16.to_f32(), 0.0);
        assert_eq!(i32::MIN.to_f32(), -1.0);
        assert_eq!((i32::MAX / 2 + 1).to_f32(), 0.5);
        assert_eq!(u32::MIN.to_f32(), -1.0);
        assert_eq!(0x8000_0000u32.to_f32(), 0.0);
        assert_eq!(0u8.to_f32(), -1.0);
        assert_eq!((-64i8).to_f32(), -0.5);
        assert_eq!(0.25f64.to_f32(), 0.25);
    }

    #[test]
    fn converts_slices_of_each_format() {
        let mut out = Vec::new();
        extend(&[16_384i16, -16_384], &mut out);
        extend(&[49_152u16], &mut out);
        extend(&[1_073_741_824i32], &mut out);
        extend(&[0.125f32], &mut out);
        assert_eq!(out, vec![0.5, -0.5, 0.5, 0.5, 0.125]);
    }

    #[test]
    fn prefers_the_default_then_f32_and_a_common_rate() {
        let default = range(SampleFormat::I16, 2, 44_100, 44_100).with_max_sample_rate();
        let supported = [
            range(SampleFormat::I16, 2, 8_000, 96_000),
            range(SampleFormat::F32, 6, 8_000, 96_000),
            range(SampleFormat::F32, 2, 8_000, 96_000),
        ];
        assert_eq!(
            choose_config(Some(default.clone()), &supported),
            Some(default)
        );
        let odd_default = range(SampleFormat::I64, 2, 48_000, 48_000).with_max_sample_rate();
        let chosen = choose_config(Some(odd_default), &supported).unwrap();
        assert_eq!(chosen.sample_format(), SampleFormat::F32);
        assert_eq!(chosen.channels(), 2);
        assert_eq!(chosen.sample_rate().0, 48_000);

        let only_high = [range(SampleFormat::U16, 1, 96_000, 192_000)];
        assert_eq!(
            choose_config(None, &only_high).map(|c| c.sample_rate().0),
            Some(192_000)
        );
        assert_eq!(
            choose_config(None, &[range(SampleFormat::I64, 2, 8_000, 48_000)]),
            None
        );
    }
}
