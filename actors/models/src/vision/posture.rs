//! Posture from the BlazePose body axis, and the "hand near ear" cue (a phone call) from the 33
//! pose landmarks. Pure functions over points in frame pixels (y down).
//!
//! The face models miss faces rotated by 90°, so posture never comes from faces: it comes from
//! the angle of the body axis (`models/README.md`, section 2, "Body-axis angle").

use serde::{Deserialize, Serialize};

/// Indices of the BlazePose landmarks this module uses (33 body landmarks; "left" is the
/// subject's left).
pub mod landmark {
    /// Nose.
    pub const NOSE: usize = 0;
    /// Left ear.
    pub const LEFT_EAR: usize = 7;
    /// Right ear.
    pub const RIGHT_EAR: usize = 8;
    /// Left shoulder.
    pub const LEFT_SHOULDER: usize = 11;
    /// Right shoulder.
    pub const RIGHT_SHOULDER: usize = 12;
    /// Left wrist.
    pub const LEFT_WRIST: usize = 15;
    /// Right wrist.
    pub const RIGHT_WRIST: usize = 16;
    /// Left hand: wrist, pinky, index, thumb.
    pub const LEFT_HAND: [usize; 4] = [15, 17, 19, 21];
    /// Right hand: wrist, pinky, index, thumb.
    pub const RIGHT_HAND: [usize; 4] = [16, 18, 20, 22];
    /// Left hip.
    pub const LEFT_HIP: usize = 23;
    /// Right hip.
    pub const RIGHT_HIP: usize = 24;
    /// Number of body landmarks (the model's 39 rows also hold 6 auxiliary ones).
    pub const COUNT: usize = 33;
}

/// Upright (sitting or standing) or lying, from the body axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Posture {
    /// The body axis is within 45° of vertical, head up.
    Upright,
    /// Anything else: horizontal (or upside down).
    Lying,
}

/// Half-width of the "upright" sector around 90°.
pub const UPRIGHT_MAX_DEVIATION_DEG: f32 = 45.0;

/// The angle of the vector `from → to` in degrees in `(−180, 180]`, in image coordinates (y
/// down): 90 = pointing up, 0 = right, ±180 = left, −90 = down.
/// `atan2(−(y1 − y0), x1 − x0)`. Coinciding points give 0.
pub fn axis_deg(from: [f32; 2], to: [f32; 2]) -> f32 {
    let dx = (to[0] - from[0]) as f64;
    // `0 − dy` rather than `−dy`: a horizontal vector to the left gives +180, not −180.
    let up = 0.0 - (to[1] - from[1]) as f64;
    up.atan2(dx).to_degrees() as f32
}

impl Posture {
    /// `|a − 90°| < 45°` → upright, else lying (any angle, normalised first; NaN → lying).
    pub fn from_axis_deg(a: f32) -> Self {
        let d = (a - 90.0).rem_euclid(360.0); // [0, 360)
        let d = d.min(360.0 - d);
        if d < UPRIGHT_MAX_DEVIATION_DEG {
            Posture::Upright
        } else {
            Posture::Lying
        }
    }
}

fn mid(a: [f32; 3], b: [f32; 3]) -> [f32; 2] {
    [(a[0] + b[0]) / 2.0, (a[1] + b[1]) / 2.0]
}

fn dist(a: [f32; 2], b: [f32; 2]) -> f32 {
    (a[0] - b[0]).hypot(a[1] - b[1])
}

fn xy(p: [f32; 3]) -> [f32; 2] {
    [p[0], p[1]]
}

/// The body axis from the landmarks: mid-hip (23, 24) → mid-shoulder (11, 12), in degrees.
/// `points` are `[x, y, visibility]`; `None` with fewer than 33 points.
pub fn landmark_axis_deg(points: &[[f32; 3]]) -> Option<f32> {
    use landmark::*;
    if points.len() < COUNT {
        return None;
    }
    let hip = mid(points[LEFT_HIP], points[RIGHT_HIP]);
    let shoulder = mid(points[LEFT_SHOULDER], points[RIGHT_SHOULDER]);
    Some(axis_deg(hip, shoulder))
}

/// Parameters of [`hand_near_ear`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HandNearEarParams {
    /// A hand point closer to an ear than this many body scales counts as "near".
    pub max_distance_ratio: f32,
    /// Landmarks with a lower visibility are ignored.
    pub min_visibility: f32,
}

impl Default for HandNearEarParams {
    fn default() -> Self {
        Self {
            max_distance_ratio: 0.5,
            min_visibility: 0.5,
        }
    }
}

/// Whether a hand is held at an ear (the pose of a phone call).
///
/// `points` are the 33 landmarks as `[x, y, visibility]` in frame pixels. The body scale is the
/// shoulder width, or the neck length (mid-ears, or the visible ear, to mid-shoulder) when that is
/// larger (a person seen from the side has overlapping shoulders). A hand point (wrist, pinky,
/// index or thumb, either hand) closer to either ear than `max_distance_ratio` scales answers
/// `true`.
///
/// `None` when it cannot be judged: fewer than 33 points, no ear or not both shoulders visible, or
/// a degenerate scale. `Some(false)` when the head and shoulders are seen but no visible hand point
/// is near an ear.
pub fn hand_near_ear(points: &[[f32; 3]], params: &HandNearEarParams) -> Option<bool> {
    use landmark::*;
    if points.len() < COUNT {
        return None;
    }
    let seen = |i: usize| {
        let p = points[i];
        p[2] >= params.min_visibility && p[0].is_finite() && p[1].is_finite()
    };
    let ears: Vec<[f32; 2]> = [LEFT_EAR, RIGHT_EAR]
        .into_iter()
        .filter(|&i| seen(i))
        .map(|i| xy(points[i]))
        .collect();
    if ears.is_empty() || !seen(LEFT_SHOULDER) || !seen(RIGHT_SHOULDER) {
        return None;
    }
    let shoulders = mid(points[LEFT_SHOULDER], points[RIGHT_SHOULDER]);
    let width = dist(xy(points[LEFT_SHOULDER]), xy(points[RIGHT_SHOULDER]));
    let head = [
        ears.iter().map(|e| e[0]).sum::<f32>() / ears.len() as f32,
        ears.iter().map(|e| e[1]).sum::<f32>() / ears.len() as f32,
    ];
    let scale = width.max(dist(head, shoulders));
    if !(scale.is_finite() && scale > 1e-3) {
        return None;
    }
    let limit = params.max_distance_ratio * scale;
    let near = LEFT_HAND
        .into_iter()
        .chain(RIGHT_HAND)
        .filter(|&i| seen(i))
        .any(|i| ears.iter().any(|&e| dist(xy(points[i]), e) < limit));
    Some(near)
}

#[cfg(test)]
mod tests {
    use super::landmark::*;
    use super::*;

    #[test]
    fn axis_angles_follow_image_coordinates() {
        assert!((axis_deg([0.0, 0.0], [0.0, -10.0]) - 90.0).abs() < 1e-5);
        assert!(axis_deg([0.0, 0.0], [10.0, 0.0]).abs() < 1e-5);
        assert!((axis_deg([0.0, 0.0], [-10.0, 0.0]) - 180.0).abs() < 1e-5);
        assert!((axis_deg([0.0, 0.0], [0.0, 10.0]) + 90.0).abs() < 1e-5);
        assert!((axis_deg([5.0, 5.0], [6.0, 4.0]) - 45.0).abs() < 1e-4);
        assert_eq!(axis_deg([1.0, 1.0], [1.0, 1.0]), 0.0);
    }

    #[test]
    fn posture_rule() {
        for a in [90.0, 70.1, 104.3, 46.0, 134.0] {
            assert_eq!(Posture::from_axis_deg(a), Posture::Upright, "{a}");
        }
        for a in [
            45.0,
            135.0,
            0.0,
            -21.4,
            14.2,
            180.0,
            -179.0,
            169.8,
            -90.0,
            f32::NAN,
        ] {
            assert_eq!(Posture::from_axis_deg(a), Posture::Lying, "{a}");
        }
        // Angles outside (−180, 180] are normalised.
        assert_eq!(Posture::from_axis_deg(450.0), Posture::Upright);
        assert_eq!(Posture::from_axis_deg(-270.0), Posture::Upright);
        assert_eq!(
            serde_json::to_string(&Posture::Upright).unwrap(),
            "\"upright\""
        );
    }

    /// A frontal person, upright, shoulders 100 px apart, ears 60 px above the shoulder line,
    /// hands down at the hips.
    fn person() -> Vec<[f32; 3]> {
        let mut p = vec![[0.0, 0.0, 0.0]; 39];
        p[NOSE] = [200.0, 80.0, 1.0];
        p[LEFT_EAR] = [225.0, 85.0, 1.0];
        p[RIGHT_EAR] = [175.0, 85.0, 1.0];
        p[LEFT_SHOULDER] = [250.0, 150.0, 1.0];
        p[RIGHT_SHOULDER] = [150.0, 150.0, 1.0];
        p[LEFT_HIP] = [235.0, 300.0, 1.0];
        p[RIGHT_HIP] = [165.0, 300.0, 1.0];
        for (k, &i) in LEFT_HAND.iter().enumerate() {
            p[i] = [260.0, 310.0 + 5.0 * k as f32, 0.9];
        }
        for (k, &i) in RIGHT_HAND.iter().enumerate() {
            p[i] = [140.0, 310.0 + 5.0 * k as f32, 0.9];
        }
        p
    }

    #[test]
    fn landmark_axis_is_hip_to_shoulder() {
        let p = person();
        assert!((landmark_axis_deg(&p).unwrap() - 90.0).abs() < 1e-4);
        assert_eq!(landmark_axis_deg(&p[..20]), None);
    }

    #[test]
    fn hands_down_are_not_near_the_ear() {
        assert_eq!(
            hand_near_ear(&person(), &HandNearEarParams::default()),
            Some(false)
        );
    }

    #[test]
    fn a_hand_at_the_ear_is_found() {
        let mut p = person();
        // Right hand raised: index 30 px from the right ear (limit 0.5 · 100 px).
        p[RIGHT_WRIST] = [160.0, 130.0, 0.9];
        p[20] = [165.0, 113.0, 0.9];
        assert_eq!(hand_near_ear(&p, &HandNearEarParams::default()), Some(true));
        // The same hand, but invisible: not counted.
        for i in RIGHT_HAND {
            p[i][2] = 0.1;
        }
        assert_eq!(
            hand_near_ear(&p, &HandNearEarParams::default()),
            Some(false)
        );
    }

    #[test]
    fn side_view_uses_the_neck_as_scale() {
        let mut p = person();
        // Shoulders overlap (width 4 px); one ear visible 70 px above them.
        p[LEFT_SHOULDER] = [202.0, 150.0, 1.0];
        p[RIGHT_SHOULDER] = [198.0, 150.0, 1.0];
        p[LEFT_EAR][2] = 0.0;
        p[RIGHT_EAR] = [200.0, 80.0, 1.0];
        p[RIGHT_WRIST] = [215.0, 100.0, 0.9]; // 25 px from the ear < 0.5 · 70
        assert_eq!(hand_near_ear(&p, &HandNearEarParams::default()), Some(true));
        p[RIGHT_WRIST] = [260.0, 100.0, 0.9]; // 63 px
        assert_eq!(
            hand_near_ear(&p, &HandNearEarParams::default()),
            Some(false)
        );
    }

    #[test]
    fn unjudgeable_without_head_or_shoulders() {
        let params = HandNearEarParams::default();
        let mut p = person();
        p[LEFT_EAR][2] = 0.2;
        p[RIGHT_EAR][2] = 0.2;
        assert_eq!(hand_near_ear(&p, &params), None);
        let mut p = person();
        p[LEFT_SHOULDER][2] = 0.0;
        assert_eq!(hand_near_ear(&p, &params), None);
        assert_eq!(hand_near_ear(&person()[..10], &params), None);
        // Everything on one spot: no scale.
        let p = vec![[5.0, 5.0, 1.0]; 33];
        assert_eq!(hand_near_ear(&p, &params), None);
    }
}
