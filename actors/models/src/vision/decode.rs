//! Turning a detector's raw outputs into detections: box and keypoint decoding against the
//! anchors, the clamped sigmoid score, MediaPipe's weighted non-maximum suppression, and undoing
//! the letterbox (`models/README.md`, section 2; `decode`, `weighted_nms` and `unletterbox` of
//! `mediapipe_ref.py`).

use super::anchors::Anchor;
use super::geometry::Letterbox;

/// IoU above which MediaPipe's NMS merges two detections.
pub const NMS_IOU_THRESHOLD: f32 = 0.3;

/// One detection: a box and keypoints, in whatever coordinates the caller works in
/// (normalised to the detector's square after [`decode`], frame pixels after [`unletterbox`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Detection {
    /// Probability in `[0, 1]`.
    pub score: f32,
    /// `[xmin, ymin, xmax, ymax]`.
    pub bbox: [f32; 4],
    /// `(x, y)` pairs, in the model's order.
    pub keypoints: Vec<[f32; 2]>,
}

impl Detection {
    /// The box as `[x, y, width, height]`.
    pub fn box_xywh(&self) -> [f32; 4] {
        let [x0, y0, x1, y1] = self.bbox;
        [x0, y0, x1 - x0, y1 - y0]
    }
}

/// The raw outputs do not have the layout a detector's anchors need.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{what}: expected {expected} values, got {actual}")]
pub struct ShapeError {
    /// Which output.
    pub what: &'static str,
    /// How many values the anchors and keypoints need.
    pub expected: usize,
    /// How many there were.
    pub actual: usize,
}

/// `1 / (1 + e^(−clamp(z, −100, 100)))`, as MediaPipe (`score_clipping_thresh` 100). NaN gives 0.
pub fn sigmoid_clamped(z: f32) -> f32 {
    if z.is_nan() {
        return 0.0;
    }
    let z = z.clamp(-100.0, 100.0) as f64;
    (1.0 / (1.0 + (-z).exp())) as f32
}

/// Decodes every anchor whose score reaches `min_score`.
///
/// `regressors` holds one row of `4 + 2·num_keypoints` values per anchor or more (a row may be
/// longer than needed; its length is `regressors.len() / anchors.len()`), `scores` one logit per
/// anchor. With `S = input_size`: centre `(r0/S + ax, r1/S + ay)`, size `(r2/S, r3/S)`, keypoint k
/// `(r[4+2k]/S + ax, r[5+2k]/S + ay)`; all normalised to the padded square. Rows with a value that
/// is not finite are skipped.
pub fn decode(
    regressors: &[f32],
    scores: &[f32],
    anchors: &[Anchor],
    input_size: usize,
    num_keypoints: usize,
    min_score: f32,
) -> Result<Vec<Detection>, ShapeError> {
    let n = anchors.len();
    let needed = 4 + 2 * num_keypoints;
    if scores.len() != n {
        return Err(ShapeError {
            what: "scores",
            expected: n,
            actual: scores.len(),
        });
    }
    let row = regressors.len().checked_div(n).unwrap_or(needed);
    if row < needed || row * n != regressors.len() {
        return Err(ShapeError {
            what: "regressors",
            expected: n * needed,
            actual: regressors.len(),
        });
    }
    let s = input_size.max(1) as f32;
    let mut out = Vec::new();
    for (i, (a, &logit)) in anchors.iter().zip(scores).enumerate() {
        let score = sigmoid_clamped(logit);
        if score < min_score {
            continue;
        }
        let r = &regressors[i * row..i * row + needed];
        if !r.iter().all(|v| v.is_finite()) {
            continue;
        }
        let (cx, cy) = (r[0] / s + a.x, r[1] / s + a.y);
        let (w, h) = (r[2] / s, r[3] / s);
        let keypoints = (0..num_keypoints)
            .map(|k| [r[4 + 2 * k] / s + a.x, r[5 + 2 * k] / s + a.y])
            .collect();
        out.push(Detection {
            score,
            bbox: [cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0],
            keypoints,
        });
    }
    Ok(out)
}

/// Intersection over union of two `[xmin, ymin, xmax, ymax]` boxes; 0 when the union is empty.
pub fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let ix = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let iy = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = ix * iy;
    let union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
    if union > 0.0 {
        inter / union
    } else {
        0.0
    }
}

/// MediaPipe's weighted NMS (`NonMaxSuppressionCalculator`, algorithm WEIGHTED, IoU):
/// take the best remaining detection, gather every remaining one with IoU > `threshold` to it,
/// output the score-weighted mean of their boxes and keypoints with the best one's score; repeat.
/// The result is sorted best first. The best detection always belongs to its own group (even
/// with an empty box, where the IoU is 0), so the loop always ends.
pub fn weighted_nms(mut dets: Vec<Detection>, threshold: f32) -> Vec<Detection> {
    // Stable, like Python's `sorted`: equal scores keep their anchor order.
    dets.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut out = Vec::new();
    let mut rest = dets;
    while !rest.is_empty() {
        let top = rest.remove(0);
        let (mut group, others): (Vec<Detection>, Vec<Detection>) = rest
            .into_iter()
            .partition(|d| iou(&top.bbox, &d.bbox) > threshold);
        rest = others;
        group.insert(0, top.clone());
        let wsum: f32 = group.iter().map(|d| d.score).sum();
        if wsum.is_nan() || wsum <= 0.0 {
            out.push(top);
            continue;
        }
        let mut bbox = [0.0f32; 4];
        let mut keypoints = vec![[0.0f32; 2]; top.keypoints.len()];
        for d in &group {
            let w = d.score / wsum;
            for (b, v) in bbox.iter_mut().zip(d.bbox) {
                *b += w * v;
            }
            for (k, p) in keypoints.iter_mut().zip(&d.keypoints) {
                k[0] += w * p[0];
                k[1] += w * p[1];
            }
        }
        out.push(Detection {
            score: top.score,
            bbox,
            keypoints,
        });
    }
    out
}

/// A detection normalised to the letterboxed square, in frame pixels.
pub fn unletterbox(det: &Detection, letterbox: &Letterbox) -> Detection {
    let [x0, y0, x1, y1] = det.bbox;
    let a = letterbox.to_image(x0, y0);
    let b = letterbox.to_image(x1, y1);
    Detection {
        score: det.score,
        bbox: [a[0], a[1], b[0], b[1]],
        keypoints: det
            .keypoints
            .iter()
            .map(|p| letterbox.to_image(p[0], p[1]))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(score: f32, bbox: [f32; 4], kp: [f32; 2]) -> Detection {
        Detection {
            score,
            bbox,
            keypoints: vec![kp],
        }
    }

    #[test]
    fn sigmoid_is_clamped_and_nan_safe() {
        assert!((sigmoid_clamped(0.0) - 0.5).abs() < 1e-7);
        assert!((sigmoid_clamped(2.0) - 0.880_797).abs() < 1e-6);
        assert_eq!(sigmoid_clamped(1e30), sigmoid_clamped(100.0));
        assert_eq!(sigmoid_clamped(f32::INFINITY), 1.0);
        assert!(sigmoid_clamped(-1e30) >= 0.0);
        assert_eq!(sigmoid_clamped(f32::NAN), 0.0);
    }

    #[test]
    fn decodes_boxes_and_keypoints_relative_to_anchors() {
        let anchors = [Anchor { x: 0.25, y: 0.75 }, Anchor { x: 0.5, y: 0.5 }];
        let s = 100usize;
        // Row: cx, cy, w, h, kp0 x, kp0 y (one keypoint), then a spare column.
        let reg = [
            10.0, -5.0, 20.0, 40.0, 1.0, 2.0, 99.0, //
            0.0, 0.0, 10.0, 10.0, 0.0, 0.0, 99.0,
        ];
        let scores = [2.0, -3.0];
        let d = decode(&reg, &scores, &anchors, s, 1, 0.5).unwrap();
        assert_eq!(d.len(), 1, "only the first anchor passes 0.5");
        let d = &d[0];
        assert!((d.score - 0.880_797).abs() < 1e-6);
        let want = [0.35 - 0.1, 0.70 - 0.2, 0.35 + 0.1, 0.70 + 0.2];
        for (a, b) in d.bbox.iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{:?}", d.bbox);
        }
        assert!((d.keypoints[0][0] - 0.26).abs() < 1e-6);
        assert!((d.keypoints[0][1] - 0.77).abs() < 1e-6);
        // Everything with min_score 0.
        assert_eq!(decode(&reg, &scores, &anchors, s, 1, 0.0).unwrap().len(), 2);
    }

    #[test]
    fn decode_refuses_wrong_shapes_and_skips_non_finite_rows() {
        let anchors = [Anchor { x: 0.5, y: 0.5 }; 2];
        assert!(decode(&[0.0; 12], &[0.0], &anchors, 10, 1, 0.0).is_err());
        assert!(decode(&[0.0; 11], &[0.0; 2], &anchors, 10, 1, 0.0).is_err());
        assert!(decode(&[0.0; 8], &[0.0; 2], &anchors, 10, 1, 0.0).is_err());
        let mut reg = [0.0; 12];
        reg[2] = f32::NAN;
        let d = decode(&reg, &[5.0, 5.0], &anchors, 10, 1, 0.5).unwrap();
        assert_eq!(d.len(), 1);
        assert!(decode(&[], &[], &[], 10, 1, 0.5).unwrap().is_empty());
    }

    #[test]
    fn iou_of_simple_boxes() {
        let a = [0.0, 0.0, 2.0, 2.0];
        assert!((iou(&a, &a) - 1.0).abs() < 1e-7);
        assert!((iou(&a, &[1.0, 0.0, 3.0, 2.0]) - 1.0 / 3.0).abs() < 1e-6);
        assert_eq!(iou(&a, &[5.0, 5.0, 6.0, 6.0]), 0.0);
        assert_eq!(iou(&[1.0, 1.0, 1.0, 1.0], &[1.0, 1.0, 1.0, 1.0]), 0.0);
    }

    #[test]
    fn weighted_nms_averages_overlapping_boxes_by_score() {
        let dets = vec![
            det(0.6, [0.1, 0.0, 1.1, 1.0], [1.0, 1.0]),
            det(0.9, [0.0, 0.0, 1.0, 1.0], [0.0, 0.0]),
            det(0.8, [5.0, 5.0, 6.0, 6.0], [5.0, 5.0]),
            // Overlaps the first group's best with IoU 0.25 only: a group of its own.
            det(0.7, [0.6, 0.0, 1.6, 1.0], [9.0, 9.0]),
        ];
        let out = weighted_nms(dets, NMS_IOU_THRESHOLD);
        assert_eq!(out.len(), 3);
        // Group 1: 0.9 and 0.6 (IoU 0.82); weights 0.6 and 0.4.
        assert_eq!(out[0].score, 0.9);
        assert!((out[0].bbox[0] - 0.04).abs() < 1e-6, "{:?}", out[0].bbox);
        assert!((out[0].bbox[2] - 1.04).abs() < 1e-6);
        assert!((out[0].keypoints[0][0] - 0.4).abs() < 1e-6);
        assert_eq!(out[1].score, 0.8);
        assert_eq!(out[1].bbox, [5.0, 5.0, 6.0, 6.0]);
        assert_eq!(out[2].score, 0.7);
        assert_eq!(out[2].keypoints[0], [9.0, 9.0]);
    }

    #[test]
    fn weighted_nms_ends_on_empty_boxes() {
        let dets = vec![
            det(0.9, [1.0, 1.0, 1.0, 1.0], [0.0, 0.0]),
            det(0.8, [1.0, 1.0, 1.0, 1.0], [0.0, 0.0]),
        ];
        assert_eq!(weighted_nms(dets, 0.3).len(), 2);
        assert!(weighted_nms(Vec::new(), 0.3).is_empty());
    }

    #[test]
    fn unletterbox_maps_to_frame_pixels() {
        // 200×100 frame: the square is 200 wide, the frame occupies y ∈ [0.25, 0.75].
        let lb = Letterbox::new(200, 100);
        let d = det(0.7, [0.25, 0.25, 0.75, 0.75], [0.5, 0.5]);
        let u = unletterbox(&d, &lb);
        assert_eq!(u.bbox, [50.0, 0.0, 150.0, 100.0]);
        assert_eq!(u.keypoints[0], [100.0, 50.0]);
        assert_eq!(u.box_xywh(), [50.0, 0.0, 100.0, 100.0]);
        assert_eq!(u.score, 0.7);
    }
}
