//! Pure geometry of the pre-processing: the letterbox that maps a frame onto a detector's square
//! input (and back), the rotated region of interest the landmark model sees (and back), and the
//! packing of a resampled BGR picture into the models' NCHW RGB float tensor.
//!
//! Pixel convention (as in `mediapipe_ref.py`): a pixel's centre is at `+0.5`, so the continuous
//! coordinate `x` lies in pixel `floor(x)`. The sampling matrices here map an output pixel's
//! *index* to an input pixel *index* (centre-to-centre), which is what OpenCV's `warpAffine` with
//! `WARP_INVERSE_MAP` expects.

use serde::Serialize;

/// A 2×3 affine matrix, row-major: `src = M · [j, i, 1]` for output column `j`, row `i`.
pub type Affine = [[f64; 3]; 2];

/// How a frame of `width × height` sits in the square input of a detector: padded symmetrically
/// with black to a square of side `max(width, height)`, then scaled to the model size.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Letterbox {
    width: f64,
    height: f64,
    side: f64,
}

impl Letterbox {
    /// The letterbox of a `width × height` frame. Zero sizes are treated as 1 (no division by
    /// zero; the caller refuses empty frames anyway).
    pub fn new(width: usize, height: usize) -> Self {
        let width = width.max(1) as f64;
        let height = height.max(1) as f64;
        Self {
            width,
            height,
            side: width.max(height),
        }
    }

    /// Horizontal padding on each side as a fraction of the square (`px` in the README).
    pub fn pad_x(&self) -> f64 {
        (self.side - self.width) / (2.0 * self.side)
    }

    /// Vertical padding on each side as a fraction of the square (`py`).
    pub fn pad_y(&self) -> f64 {
        (self.side - self.height) / (2.0 * self.side)
    }

    /// The frame coordinate (pixels, centres at +0.5) that the centre of model pixel `k` (of
    /// `size`) samples, along x (`horizontal`) or y.
    fn source_coord(&self, size: usize, k: usize, horizontal: bool) -> f64 {
        let scale = self.side / size as f64;
        let pad = if horizontal {
            (self.side - self.width) / 2.0
        } else {
            (self.side - self.height) / 2.0
        };
        (k as f64 + 0.5) * scale - pad
    }

    /// Inverse sampling matrix for a model input of `size × size` (bilinear, pixel centres at
    /// +0.5; the padding is sampled as zero = black).
    pub fn sampling_matrix(&self, size: usize) -> Affine {
        let scale = self.side / size as f64;
        let pad_x = (self.side - self.width) / 2.0;
        let pad_y = (self.side - self.height) / 2.0;
        [
            [scale, 0.0, 0.5 * scale - pad_x - 0.5],
            [0.0, scale, 0.5 * scale - pad_y - 0.5],
        ]
    }

    /// For each model column (`horizontal`) or row, whether its centre falls in the padding
    /// (outside `[0, width]` resp. `[0, height]`). The reference sets such pixels to exactly the
    /// padding value, rather than a blend of the border pixel and black.
    pub fn padding_mask(&self, size: usize, horizontal: bool) -> Vec<bool> {
        let limit = if horizontal { self.width } else { self.height };
        (0..size)
            .map(|k| {
                let c = self.source_coord(size, k, horizontal);
                c < 0.0 || c > limit
            })
            .collect()
    }

    /// A point normalised to the padded square (`[0, 1]²`) in frame pixels:
    /// `x_img = (x − px)/(1 − 2px)·W`, which equals `x·side − (side − W)/2`.
    pub fn to_image(&self, x: f32, y: f32) -> [f32; 2] {
        let fx = x as f64 * self.side - (self.side - self.width) / 2.0;
        let fy = y as f64 * self.side - (self.side - self.height) / 2.0;
        [fx as f32, fy as f32]
    }
}

/// The rotated square region of a pose detection that the landmark model looks at (MediaPipe's
/// `AlignmentPointsRectsCalculator` from keypoint 0 to 1, target angle 90°, then
/// `RectTransformationCalculator` with scale 1.25, square).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Roi {
    /// Centre in frame pixels (detector keypoint 0, the mid-hip).
    pub center: [f32; 2],
    /// Side of the square in frame pixels: `2·|kp1 − kp0|·1.25`.
    pub side: f32,
    /// Rotation θ in degrees, in `[−180, 180)`: `90° − axis angle`.
    pub rotation_deg: f32,
}

/// The ROI scale MediaPipe applies around the body circle.
pub const ROI_SCALE: f64 = 1.25;

impl Roi {
    /// The ROI of a detection with mid-hip `kp0` and full-body point `kp1` (frame pixels).
    /// `None` when a coordinate is not finite or the two points coincide (no direction, no size).
    pub fn from_keypoints(kp0: [f32; 2], kp1: [f32; 2]) -> Option<Self> {
        let (x0, y0) = (kp0[0] as f64, kp0[1] as f64);
        let (x1, y1) = (kp1[0] as f64, kp1[1] as f64);
        let side = 2.0 * (x1 - x0).hypot(y1 - y0) * ROI_SCALE;
        if !(side.is_finite() && side > 0.0 && x0.is_finite() && y0.is_finite()) {
            return None;
        }
        let pi = std::f64::consts::PI;
        let rot = pi / 2.0 - (-(y1 - y0)).atan2(x1 - x0);
        let rot = rot - 2.0 * pi * ((rot + pi) / (2.0 * pi)).floor();
        Some(Self {
            center: kp0,
            side: side as f32,
            rotation_deg: rot.to_degrees() as f32,
        })
    }

    fn cos_sin(&self) -> (f64, f64) {
        let r = (self.rotation_deg as f64).to_radians();
        (r.cos(), r.sin())
    }

    /// Inverse sampling matrix for a `size × size` crop: output pixel `(i, j)` has
    /// `u = (j+0.5)/size − 0.5`, `v = (i+0.5)/size − 0.5` and samples the frame at
    /// `centre + R(θ)·(u·side, v·side)` (continuous coordinates; −0.5 to a pixel index).
    pub fn sampling_matrix(&self, size: usize) -> Affine {
        let (c, s) = self.cos_sin();
        let side = self.side as f64;
        let k = side / size as f64;
        let off = 0.5 * k - 0.5 * side;
        let (x0, y0) = (self.center[0] as f64, self.center[1] as f64);
        [
            [c * k, -s * k, x0 - 0.5 + (c - s) * off],
            [s * k, c * k, y0 - 0.5 + (s + c) * off],
        ]
    }

    /// A point of the `size`-pixel crop (the landmark model's x, y) in frame pixels.
    pub fn to_image(&self, x: f32, y: f32, size: usize) -> [f32; 2] {
        let (c, s) = self.cos_sin();
        let side = self.side as f64;
        let u = x as f64 / size as f64 - 0.5;
        let v = y as f64 / size as f64 - 0.5;
        [
            (self.center[0] as f64 + (c * u - s * v) * side) as f32,
            (self.center[1] as f64 + (s * u + c * v) * side) as f32,
        ]
    }
}

/// Packs a `size × size` BGR picture (row-major, 3 bytes a pixel) into an NCHW RGB tensor
/// `[1, 3, size, size]` with `value = lo + byte·(hi − lo)/255`. Pixels whose column or row is
/// marked in the masks (the letterbox padding) get exactly `lo`. Empty masks mark nothing.
/// `out` should hold `3·size²` values; a shorter one is only filled with `lo`, and pixels
/// missing from a short `bgr` stay `lo`.
pub fn pack_nchw(
    bgr: &[u8],
    size: usize,
    lo: f32,
    hi: f32,
    pad_cols: &[bool],
    pad_rows: &[bool],
    out: &mut [f32],
) {
    let plane = size * size;
    out.fill(lo);
    if out.len() < 3 * plane {
        return;
    }
    let scale = (hi - lo) / 255.0;
    let masked = |mask: &[bool], k: usize| mask.get(k).copied().unwrap_or(false);
    for i in 0..size {
        if masked(pad_rows, i) {
            continue;
        }
        for j in 0..size {
            if masked(pad_cols, j) {
                continue;
            }
            let p = (i * size + j) * 3;
            let Some(px) = bgr.get(p..p + 3) else {
                continue;
            };
            let o = i * size + j;
            out[o] = lo + px[2] as f32 * scale; // R
            out[plane + o] = lo + px[1] as f32 * scale; // G
            out[2 * plane + o] = lo + px[0] as f32 * scale; // B
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(m: &Affine, j: f64, i: f64) -> (f64, f64) {
        (
            m[0][0] * j + m[0][1] * i + m[0][2],
            m[1][0] * j + m[1][1] * i + m[1][2],
        )
    }

    #[test]
    fn letterbox_of_a_wide_frame() {
        let lb = Letterbox::new(200, 100);
        assert!((lb.pad_x() - 0.0).abs() < 1e-12);
        assert!((lb.pad_y() - 0.25).abs() < 1e-12);
        // Model pixel 0 of 100 samples the frame at continuous (1, 1 − 50) → index (0.5, −49.5).
        let m = lb.sampling_matrix(100);
        let (x, y) = apply(&m, 0.0, 0.0);
        assert!(
            (x - 0.5).abs() < 1e-12 && (y + 49.5).abs() < 1e-12,
            "{x} {y}"
        );
        // The middle rows are the image; a quarter at top and bottom is padding.
        let rows = lb.padding_mask(100, false);
        assert_eq!(rows.iter().filter(|&&p| p).count(), 50);
        assert!(rows[0] && rows[24] && !rows[25] && !rows[74] && rows[75]);
        assert!(lb.padding_mask(100, true).iter().all(|&p| !p));
        // Back: the square's centre is the frame's centre, its top edge is y = −50.
        assert_eq!(lb.to_image(0.5, 0.5), [100.0, 50.0]);
        assert_eq!(lb.to_image(0.0, 0.0), [0.0, -50.0]);
        assert_eq!(lb.to_image(1.0, 0.75), [200.0, 100.0]);
    }

    #[test]
    fn letterbox_matches_the_readme_formula() {
        let (w, h) = (640usize, 1000usize);
        let lb = Letterbox::new(w, h);
        let px = lb.pad_x();
        for x in [0.0f32, 0.2, 0.5, 0.93] {
            let readme = (x as f64 - px) / (1.0 - 2.0 * px) * w as f64;
            assert!((lb.to_image(x, 0.5)[0] as f64 - readme).abs() < 1e-3);
        }
    }

    #[test]
    fn letterbox_survives_odd_sizes() {
        for (w, h) in [(0, 0), (1, 1), (10_000, 1), (1, 10_000)] {
            let lb = Letterbox::new(w, h);
            let m = lb.sampling_matrix(224);
            assert!(m.iter().flatten().all(|v| v.is_finite()));
            let p = lb.to_image(0.5, 0.5);
            assert!(p[0].is_finite() && p[1].is_finite());
        }
    }

    #[test]
    fn roi_of_an_upright_person_is_not_rotated() {
        // Hip at (100, 300), body point straight above at (100, 200): axis 90°, θ = 0.
        let roi = Roi::from_keypoints([100.0, 300.0], [100.0, 200.0]).unwrap();
        assert!(roi.rotation_deg.abs() < 1e-4);
        assert!((roi.side - 250.0).abs() < 1e-3);
        // The crop's centre maps to the hip; its top-left corner to the square's corner.
        let c = roi.to_image(128.0, 128.0, 256);
        assert!((c[0] - 100.0).abs() < 1e-3 && (c[1] - 300.0).abs() < 1e-3);
        let tl = roi.to_image(0.0, 0.0, 256);
        assert!(
            (tl[0] + 25.0).abs() < 1e-3 && (tl[1] - 175.0).abs() < 1e-3,
            "{tl:?}"
        );
        // The sampling matrix agrees with to_image at pixel centres (index = coord − 0.5).
        let m = roi.sampling_matrix(256);
        let (x, y) = apply(&m, 10.0, 20.0);
        let p = roi.to_image(10.5, 20.5, 256);
        assert!((x + 0.5 - p[0] as f64).abs() < 1e-3 && (y + 0.5 - p[1] as f64).abs() < 1e-3);
    }

    #[test]
    fn roi_of_a_lying_person_is_rotated() {
        // Head to the right: axis 0°, θ = 90°; the crop's "up" (v < 0) points to +x in the frame.
        let roi = Roi::from_keypoints([100.0, 100.0], [180.0, 100.0]).unwrap();
        assert!((roi.rotation_deg - 90.0).abs() < 1e-4);
        let up = roi.to_image(128.0, 0.0, 256);
        assert!(
            (up[0] - 200.0).abs() < 1e-3 && (up[1] - 100.0).abs() < 1e-3,
            "{up:?}"
        );
        // Head to the left: axis 180°, θ = −90° (normalised into [−180, 180)).
        let roi = Roi::from_keypoints([100.0, 100.0], [20.0, 100.0]).unwrap();
        assert!((roi.rotation_deg + 90.0).abs() < 1e-4);
        // Upside down: axis −90°, θ = 180° → −180.
        let roi = Roi::from_keypoints([100.0, 100.0], [100.0, 180.0]).unwrap();
        assert!((roi.rotation_deg + 180.0).abs() < 1e-4);
        let m = roi.sampling_matrix(256);
        let (x, y) = apply(&m, 37.0, 99.0);
        let p = roi.to_image(37.5, 99.5, 256);
        assert!((x + 0.5 - p[0] as f64).abs() < 1e-3 && (y + 0.5 - p[1] as f64).abs() < 1e-3);
    }

    #[test]
    fn degenerate_roi_is_refused() {
        assert!(Roi::from_keypoints([5.0, 5.0], [5.0, 5.0]).is_none());
        assert!(Roi::from_keypoints([f32::NAN, 5.0], [5.0, 9.0]).is_none());
        assert!(Roi::from_keypoints([0.0, 0.0], [f32::INFINITY, 9.0]).is_none());
    }

    #[test]
    fn packing_swaps_channels_normalises_and_masks() {
        // 2×2 picture: BGR (0, 0, 255) red, (255, 255, 255) white, black, grey 51.
        let bgr = [0, 0, 255, 255, 255, 255, 0, 0, 0, 51, 51, 51];
        let mut t = vec![9.0; 12];
        pack_nchw(&bgr, 2, -1.0, 1.0, &[], &[], &mut t);
        let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-6);
        assert!(close(&t[0..4], &[1.0, 1.0, -1.0, -0.6]), "R {t:?}");
        assert!(close(&t[4..8], &[-1.0, 1.0, -1.0, -0.6]), "G {t:?}");
        assert!(close(&t[8..12], &[-1.0, 1.0, -1.0, -0.6]), "B {t:?}");
        pack_nchw(&bgr, 2, 0.0, 1.0, &[false, true], &[], &mut t);
        assert_eq!(&t[0..4], &[1.0, 0.0, 0.0, 0.0]);
        assert!((t[3 + 8] - 0.0).abs() < 1e-7);
        // A short buffer leaves the rest at `lo` instead of panicking.
        pack_nchw(&bgr[..3], 2, -1.0, 1.0, &[], &[], &mut t);
        assert_eq!(t[1], -1.0);
        let mut short = vec![9.0; 5];
        pack_nchw(&bgr, 2, -1.0, 1.0, &[], &[], &mut short);
        assert_eq!(short, vec![-1.0; 5]);
    }
}
