//! Small descriptive statistics over `f32` samples, NaN-safe.

/// Arithmetic mean; `None` for an empty slice.
pub fn mean(xs: &[f32]) -> Option<f32> {
    if xs.is_empty() {
        None
    } else {
        Some((xs.iter().map(|&x| x as f64).sum::<f64>() / xs.len() as f64) as f32)
    }
}

/// Population standard deviation; `None` for an empty slice.
pub fn std_dev(xs: &[f32]) -> Option<f32> {
    let m = mean(xs)? as f64;
    let var = xs.iter().map(|&x| (x as f64 - m).powi(2)).sum::<f64>() / xs.len() as f64;
    Some(var.sqrt() as f32)
}

/// The `q`-quantile (0..=1) with linear interpolation between order statistics.
/// Non-finite values are ignored.
pub fn quantile(xs: &[f32], q: f32) -> Option<f32> {
    let mut v: Vec<f32> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f32::total_cmp);
    let pos = q.clamp(0.0, 1.0) * (v.len() - 1) as f32;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let frac = pos - lo as f32;
    Some(v[lo] + (v[hi] - v[lo]) * frac)
}

/// Mean of levels given in dB, taken over power (so -10 dB and -30 dB average to -12.96 dB,
/// not -20 dB: loud moments dominate, as they do for the ear).
pub fn mean_db(dbs: &[f32]) -> Option<f32> {
    if dbs.is_empty() {
        return None;
    }
    let p = dbs
        .iter()
        .map(|&d| 10f64.powf(d as f64 / 10.0))
        .sum::<f64>()
        / dbs.len() as f64;
    Some((10.0 * p.log10()) as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        assert_eq!(mean(&[1.0, 2.0, 3.0, 6.0]), Some(3.0));
        assert_eq!(mean(&[]), None);
        assert_eq!(quantile(&[4.0, 1.0, 3.0, 2.0, 5.0], 0.5), Some(3.0));
        assert_eq!(quantile(&[0.0, 10.0], 0.9), Some(9.0));
        assert_eq!(quantile(&[f32::NAN, 2.0], 0.0), Some(2.0));
        assert!((std_dev(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]).unwrap() - 2.0).abs() < 1e-6);
        assert!((mean_db(&[-10.0, -30.0]).unwrap() - (-12.967)).abs() < 1e-3);
    }
}
