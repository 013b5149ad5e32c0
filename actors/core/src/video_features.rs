//! Per-frame video features: brightness, skin-coloured area and motion.
//!
//! These are deliberately cheap pixel statistics that run on every frame of a live stream.
//! They say how lit the scene is, whether something skin-coloured fills the view and how much of
//! the picture changed since the previous frame; interpreting them is the rules' job.

use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};

use crate::frame::{Frame, GrayImage};

/// The luma difference a pixel must exceed to count as moved, by default.
///
/// High enough to ignore sensor noise and compression flicker of a still scene, low enough to
/// catch a hand moving over a similar background.
pub const DEFAULT_MOTION_THRESHOLD: u8 = 25;

/// The Cr (red-difference) values of skin in the classic YCrCb skin rule.
pub const SKIN_CR: RangeInclusive<u8> = 133..=173;

/// The Cb (blue-difference) values of skin in the classic YCrCb skin rule.
pub const SKIN_CB: RangeInclusive<u8> = 77..=127;

/// Fixed-point precision of the colour conversion, as in OpenCV.
const SHIFT: u32 = 14;
/// BT.601 luma weights for B, G, R, scaled by 2^14 (the same as [`Frame::to_gray`]).
const Y_B: i32 = 1868;
const Y_G: i32 = 9617;
const Y_R: i32 = 4899;
/// 0.713 and 0.564 scaled by 2^14: the Cr and Cb factors of OpenCV's `COLOR_BGR2YCrCb`.
const CR_R: i32 = 11682;
const CB_B: i32 = 9241;
/// 128 (the chroma offset) scaled by 2^14, plus one half for rounding.
const CHROMA_DELTA: i32 = (128 << SHIFT) + (1 << (SHIFT - 1));

/// Mean luma of a gray image, 0 (black) to 255 (white); 0 for an empty image.
pub fn brightness(gray: &GrayImage) -> f32 {
    if gray.data.is_empty() {
        return 0.0;
    }
    let sum: u64 = gray.data.iter().map(|&v| u64::from(v)).sum();
    (sum as f64 / gray.data.len() as f64) as f32
}

/// Converts one BGR pixel to `[Y, Cr, Cb]`.
///
/// BT.601 full range in OpenCV's fixed-point arithmetic, so the values match
/// `cv::cvtColor(.., COLOR_BGR2YCrCb)` on 8-bit images exactly:
/// Y = 0.299 R + 0.587 G + 0.114 B, Cr = (R − Y)·0.713 + 128, Cb = (B − Y)·0.564 + 128.
pub fn bgr_to_ycrcb([b, g, r]: [u8; 3]) -> [u8; 3] {
    let (b, g, r) = (i32::from(b), i32::from(g), i32::from(r));
    let y = (b * Y_B + g * Y_G + r * Y_R + (1 << (SHIFT - 1))) >> SHIFT;
    // The shift is arithmetic, so negative products round like OpenCV's `CV_DESCALE`.
    let cr = ((r - y) * CR_R + CHROMA_DELTA) >> SHIFT;
    let cb = ((b - y) * CB_B + CHROMA_DELTA) >> SHIFT;
    [saturate_u8(y), saturate_u8(cr), saturate_u8(cb)]
}

fn saturate_u8(v: i32) -> u8 {
    v.clamp(0, 255) as u8
}

/// Whether a BGR pixel is skin-coloured by the YCrCb rule (`SKIN_CR` and `SKIN_CB`).
pub fn is_skin(bgr: [u8; 3]) -> bool {
    let [_, cr, cb] = bgr_to_ycrcb(bgr);
    SKIN_CR.contains(&cr) && SKIN_CB.contains(&cb)
}

/// Percentage (0 to 100) of the frame's pixels that are skin-coloured (see [`is_skin`]).
///
/// This is a cheap fallback for when no person detector is available, not a person detector:
/// wood, sand, cardboard and warm light all pass the rule, and skin in odd light may not. It says
/// "something skin-coloured fills this much of the view", nothing more.
pub fn skin_percent(frame: &Frame) -> f32 {
    let pixels = frame.bgr().chunks_exact(3);
    let total = pixels.len();
    if total == 0 {
        return 0.0;
    }
    let skin = pixels.filter(|p| is_skin([p[0], p[1], p[2]])).count();
    percent(skin, total)
}

/// Percentage (0 to 100) of pixels whose luma changed by more than `threshold` between two images.
///
/// `None` when the images differ in size, since no pixel then has a counterpart.
pub fn motion_percent(prev: &GrayImage, cur: &GrayImage, threshold: u8) -> Option<f32> {
    // The fields are public, so check the buffers as well as the declared sizes.
    if (prev.width, prev.height) != (cur.width, cur.height) || prev.data.len() != cur.data.len() {
        return None;
    }
    if cur.data.is_empty() {
        return Some(0.0);
    }
    let moved = prev
        .data
        .iter()
        .zip(&cur.data)
        .filter(|(&a, &b)| a.abs_diff(b) > threshold)
        .count();
    Some(percent(moved, cur.data.len()))
}

fn percent(count: usize, total: usize) -> f32 {
    (count as f64 * 100.0 / total as f64) as f32
}

/// Frame-to-frame motion: remembers the previous gray image and compares each new one with it.
#[derive(Clone, Debug)]
pub struct MotionDetector {
    threshold: u8,
    prev: Option<GrayImage>,
}

impl MotionDetector {
    /// A detector that counts a pixel as moved when its luma changes by more than `threshold`.
    pub fn new(threshold: u8) -> Self {
        Self {
            threshold,
            prev: None,
        }
    }

    pub fn threshold(&self) -> u8 {
        self.threshold
    }

    /// The motion percentage of `gray` against the previous image, which `gray` then replaces.
    ///
    /// `None` on the first image and when the size changed (the camera was reconfigured): that
    /// image starts a new sequence.
    pub fn update(&mut self, gray: GrayImage) -> Option<f32> {
        let motion = self
            .prev
            .as_ref()
            .and_then(|prev| motion_percent(prev, &gray, self.threshold));
        self.prev = Some(gray);
        motion
    }

    /// Forgets the previous image, so that the next update starts a new sequence.
    pub fn reset(&mut self) {
        self.prev = None;
    }
}

impl Default for MotionDetector {
    fn default() -> Self {
        Self::new(DEFAULT_MOTION_THRESHOLD)
    }
}

/// The features of one video frame.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FrameFeatures {
    /// Mean luma, 0 to 255.
    pub brightness: f32,
    /// Percentage of skin-coloured pixels, 0 to 100.
    pub skin_percent: f32,
    /// Percentage of pixels changed since the previous frame, 0 to 100; `None` for the first
    /// frame of a sequence.
    pub motion_percent: Option<f32>,
}

/// Computes [`FrameFeatures`] for a stream of frames, keeping the state that motion needs.
#[derive(Clone, Debug, Default)]
pub struct FrameAnalyzer {
    motion: MotionDetector,
}

impl FrameAnalyzer {
    /// An analyser whose motion uses the given luma threshold (see [`MotionDetector::new`]).
    pub fn new(motion_threshold: u8) -> Self {
        Self {
            motion: MotionDetector::new(motion_threshold),
        }
    }

    /// The features of the next frame of the stream.
    pub fn analyze(&mut self, frame: &Frame) -> FrameFeatures {
        let gray = frame.to_gray();
        FrameFeatures {
            brightness: brightness(&gray),
            skin_percent: skin_percent(frame),
            motion_percent: self.motion.update(gray),
        }
    }

    /// Starts a new sequence: the next frame has no motion value.
    pub fn reset(&mut self) {
        self.motion.reset();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLACK: [u8; 3] = [0, 0, 0];
    const WHITE: [u8; 3] = [255, 255, 255];
    /// A warm skin tone: Y 165, Cr 160, Cb 103.
    const SKIN: [u8; 3] = [120, 150, 210];
    const BLUE: [u8; 3] = [255, 0, 0];

    /// A `width`×`height` frame of `background` with a `size`×`size` square of `fill` at (x, y).
    fn frame_with_square(
        width: u32,
        height: u32,
        background: [u8; 3],
        fill: [u8; 3],
        (x, y, size): (u32, u32, u32),
    ) -> Frame {
        let mut bgr = background.repeat(width as usize * height as usize);
        for row in y..y + size {
            for col in x..x + size {
                let i = (row * width + col) as usize * 3;
                bgr[i..i + 3].copy_from_slice(&fill);
            }
        }
        Frame::new(width, height, bgr).unwrap()
    }

    fn gray(width: u32, height: u32, value: u8) -> GrayImage {
        GrayImage {
            width,
            height,
            data: vec![value; width as usize * height as usize],
        }
    }

    #[test]
    fn brightness_is_the_mean_luma() {
        assert_eq!(brightness(&gray(8, 6, 0)), 0.0);
        assert_eq!(brightness(&gray(8, 6, 200)), 200.0);
        assert_eq!(
            brightness(&Frame::filled(5, 5, WHITE).unwrap().to_gray()),
            255.0
        );
        // A quarter white on black.
        let frame = frame_with_square(20, 20, BLACK, WHITE, (0, 0, 10));
        assert!((brightness(&frame.to_gray()) - 63.75).abs() < 1e-4);
        let empty = GrayImage {
            width: 0,
            height: 0,
            data: vec![],
        };
        assert_eq!(brightness(&empty), 0.0);
    }

    #[test]
    fn ycrcb_matches_opencv() {
        assert_eq!(bgr_to_ycrcb(BLACK), [0, 128, 128]);
        assert_eq!(bgr_to_ycrcb(WHITE), [255, 128, 128]);
        // cv::cvtColor of pure red and pure blue, BGR2YCrCb.
        assert_eq!(bgr_to_ycrcb([0, 0, 255]), [76, 255, 85]);
        assert_eq!(bgr_to_ycrcb(BLUE), [29, 107, 255]);
        assert_eq!(bgr_to_ycrcb(SKIN), [165, 160, 103]);
    }

    #[test]
    fn skin_rule_accepts_skin_tones_and_rejects_others() {
        assert!(is_skin(SKIN));
        assert!(is_skin([100, 130, 180])); // a darker tone: Cr 155, Cb 104
        assert!(!is_skin(BLUE));
        assert!(!is_skin(BLACK));
        assert!(!is_skin(WHITE));
        assert!(!is_skin([0, 200, 0]));
    }

    #[test]
    fn skin_percent_of_a_half_skin_frame_is_fifty() {
        let (width, height) = (10, 8);
        let bgr: Vec<u8> = (0..width * height)
            .flat_map(|i| if i % width < width / 2 { SKIN } else { BLUE })
            .collect();
        let frame = Frame::new(width, height, bgr).unwrap();
        assert_eq!(skin_percent(&frame), 50.0);
        assert_eq!(skin_percent(&Frame::filled(4, 4, SKIN).unwrap()), 100.0);
        assert_eq!(skin_percent(&Frame::filled(4, 4, BLUE).unwrap()), 0.0);
    }

    #[test]
    fn a_square_moved_clear_of_itself_changes_both_places() {
        let before = frame_with_square(100, 100, BLACK, WHITE, (10, 10, 10)).to_gray();
        let after = frame_with_square(100, 100, BLACK, WHITE, (30, 10, 10)).to_gray();
        // 100 pixels went dark and 100 lit up, out of 10 000.
        assert_eq!(
            motion_percent(&before, &after, DEFAULT_MOTION_THRESHOLD),
            Some(2.0)
        );
    }

    #[test]
    fn a_square_moved_onto_itself_changes_only_the_non_overlap() {
        let before = frame_with_square(100, 100, BLACK, WHITE, (10, 10, 10)).to_gray();
        let after = frame_with_square(100, 100, BLACK, WHITE, (15, 10, 10)).to_gray();
        // The squares overlap in 5×10 pixels; 50 went dark and 50 lit up.
        assert_eq!(
            motion_percent(&before, &after, DEFAULT_MOTION_THRESHOLD),
            Some(1.0)
        );
    }

    #[test]
    fn identical_frames_have_no_motion() {
        let frame = frame_with_square(40, 30, BLACK, WHITE, (5, 5, 10)).to_gray();
        assert_eq!(motion_percent(&frame, &frame, 0), Some(0.0));
    }

    #[test]
    fn motion_counts_only_changes_above_the_threshold() {
        let before = gray(10, 10, 100);
        assert_eq!(motion_percent(&before, &gray(10, 10, 125), 25), Some(0.0));
        assert_eq!(motion_percent(&before, &gray(10, 10, 126), 25), Some(100.0));
        assert_eq!(motion_percent(&before, &gray(10, 10, 74), 25), Some(100.0));
    }

    #[test]
    fn motion_of_different_sizes_is_none() {
        assert_eq!(motion_percent(&gray(10, 10, 0), &gray(10, 20, 0), 25), None);
        assert_eq!(motion_percent(&gray(20, 10, 0), &gray(10, 20, 0), 25), None);
    }

    #[test]
    fn detector_compares_each_image_with_the_previous_one() {
        let mut detector = MotionDetector::default();
        assert_eq!(detector.threshold(), DEFAULT_MOTION_THRESHOLD);
        assert_eq!(detector.update(gray(10, 10, 0)), None);
        assert_eq!(detector.update(gray(10, 10, 0)), Some(0.0));
        assert_eq!(detector.update(gray(10, 10, 255)), Some(100.0));
        assert_eq!(detector.update(gray(10, 10, 255)), Some(0.0));
    }

    #[test]
    fn detector_restarts_after_a_size_change_or_reset() {
        let mut detector = MotionDetector::new(10);
        assert_eq!(detector.update(gray(10, 10, 0)), None);
        assert_eq!(detector.update(gray(20, 10, 255)), None);
        // The resized image is the new reference.
        assert_eq!(detector.update(gray(20, 10, 255)), Some(0.0));
        detector.reset();
        assert_eq!(detector.update(gray(20, 10, 0)), None);
        assert_eq!(detector.update(gray(20, 10, 0)), Some(0.0));
    }

    #[test]
    fn analyzer_reports_all_features_per_frame() {
        let mut analyzer = FrameAnalyzer::new(DEFAULT_MOTION_THRESHOLD);
        let first = frame_with_square(100, 100, BLACK, WHITE, (10, 10, 10));
        let second = frame_with_square(100, 100, BLACK, WHITE, (30, 10, 10));

        let features = analyzer.analyze(&first);
        assert_eq!(
            features,
            FrameFeatures {
                brightness: 2.55, // 1 % of the pixels at 255
                skin_percent: 0.0,
                motion_percent: None,
            }
        );
        assert_eq!(analyzer.analyze(&second).motion_percent, Some(2.0));
        analyzer.reset();
        assert_eq!(analyzer.analyze(&first).motion_percent, None);

        let skin = Frame::filled(100, 100, SKIN).unwrap();
        let features = analyzer.analyze(&skin);
        assert_eq!(features.skin_percent, 100.0);
        assert_eq!(features.brightness, 165.0);
        assert_eq!(features.motion_percent, Some(100.0));
        // A resized camera starts a new sequence.
        let small = Frame::filled(10, 10, SKIN).unwrap();
        assert_eq!(analyzer.analyze(&small).motion_percent, None);
        assert_eq!(analyzer.analyze(&small).motion_percent, Some(0.0));
    }

    #[test]
    fn frame_features_round_trip_through_json() {
        let features = FrameFeatures {
            brightness: 12.5,
            skin_percent: 3.25,
            motion_percent: None,
        };
        let json = serde_json::to_string(&features).unwrap();
        assert_eq!(
            serde_json::from_str::<FrameFeatures>(&json).unwrap(),
            features
        );
    }
}
