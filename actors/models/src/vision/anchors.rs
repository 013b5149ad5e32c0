//! SSD anchors of the BlazeFace / BlazePose detectors (MediaPipe's `SsdAnchorsCalculator` with
//! `fixed_anchor_size: true`, one aspect ratio 1.0 and `anchor_offset` 0.5), as in
//! `models/README.md`, section 2, and `anchors()` of the reference `mediapipe_ref.py`.

/// The anchor layout of one detector model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnchorSpec {
    /// Square model input size `S` in pixels.
    pub input_size: usize,
    /// Stride of each feature layer, in order. Consecutive layers with the same stride share one
    /// grid.
    pub strides: &'static [usize],
    /// Whether each layer adds the interpolated-scale anchor (2 anchors per layer and cell) or
    /// not (1).
    pub interpolated_scale: bool,
}

/// BlazeFace short range: 128×128, strides 8, 16, 16, 16 → 16²·2 + 8²·6 = 896 anchors.
pub const FACE_SHORT_RANGE: AnchorSpec = AnchorSpec {
    input_size: 128,
    strides: &[8, 16, 16, 16],
    interpolated_scale: true,
};

/// BlazeFace full range: 192×192, stride 4, one anchor per cell → 48² = 2304 anchors.
pub const FACE_FULL_RANGE: AnchorSpec = AnchorSpec {
    input_size: 192,
    strides: &[4],
    interpolated_scale: false,
};

/// BlazePose detector: 224×224, strides 8, 16, 32, 32, 32 → 28²·2 + 14²·2 + 7²·6 = 2254 anchors.
pub const POSE_DETECTOR: AnchorSpec = AnchorSpec {
    input_size: 224,
    strides: &[8, 16, 32, 32, 32],
    interpolated_scale: true,
};

/// One anchor centre, normalised to the model input (both in `[0, 1]`). Width and height are
/// always 1 (`fixed_anchor_size`), so only the centre is kept.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Anchor {
    /// Centre x.
    pub x: f32,
    /// Centre y.
    pub y: f32,
}

/// The anchors of `spec` in the order the model's output rows use: stride groups in turn; in a
/// group, rows (y) outer and columns (x) inner; the anchors of one cell consecutive.
pub fn generate(spec: &AnchorSpec) -> Vec<Anchor> {
    let mut out = Vec::with_capacity(count(spec));
    let strides = spec.strides;
    let mut i = 0;
    while i < strides.len() {
        let stride = strides[i].max(1);
        let mut j = i;
        while j < strides.len() && strides[j] == strides[i] {
            j += 1;
        }
        let per_cell = (j - i) * if spec.interpolated_scale { 2 } else { 1 };
        let f = spec.input_size.div_ceil(stride);
        for y in 0..f {
            for x in 0..f {
                let a = Anchor {
                    x: (x as f32 + 0.5) / f as f32,
                    y: (y as f32 + 0.5) / f as f32,
                };
                for _ in 0..per_cell {
                    out.push(a);
                }
            }
        }
        i = j;
    }
    out
}

/// How many anchors [`generate`] gives for `spec` (the number of rows the model outputs).
pub fn count(spec: &AnchorSpec) -> usize {
    let per_layer = if spec.interpolated_scale { 2 } else { 1 };
    spec.strides
        .iter()
        .map(|&s| spec.input_size.div_ceil(s.max(1)).pow(2) * per_layer)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_match_the_models() {
        assert_eq!(generate(&FACE_SHORT_RANGE).len(), 896);
        assert_eq!(generate(&FACE_FULL_RANGE).len(), 2304);
        assert_eq!(generate(&POSE_DETECTOR).len(), 2254);
        for spec in [FACE_SHORT_RANGE, FACE_FULL_RANGE, POSE_DETECTOR] {
            assert_eq!(count(&spec), generate(&spec).len());
        }
    }

    #[test]
    fn order_is_groups_then_rows_then_columns() {
        let a = generate(&FACE_SHORT_RANGE);
        // First group: stride 8, 16×16 cells, 2 anchors each.
        assert_eq!(a[0], a[1]);
        assert_eq!(
            a[0],
            Anchor {
                x: 0.5 / 16.0,
                y: 0.5 / 16.0
            }
        );
        assert_eq!(
            a[2],
            Anchor {
                x: 1.5 / 16.0,
                y: 0.5 / 16.0
            }
        );
        assert_eq!(
            a[32],
            Anchor {
                x: 0.5 / 16.0,
                y: 1.5 / 16.0
            }
        );
        assert_eq!(
            a[511],
            Anchor {
                x: 15.5 / 16.0,
                y: 15.5 / 16.0
            }
        );
        // Second group: the three stride-16 layers merged, 8×8 cells, 6 anchors each.
        let cell = Anchor {
            x: 0.5 / 8.0,
            y: 0.5 / 8.0,
        };
        assert!(a[512..518].iter().all(|&k| k == cell));
        assert_eq!(
            a[518],
            Anchor {
                x: 1.5 / 8.0,
                y: 0.5 / 8.0
            }
        );
        assert_eq!(
            a[895],
            Anchor {
                x: 7.5 / 8.0,
                y: 7.5 / 8.0
            }
        );
    }

    #[test]
    fn full_range_has_one_anchor_per_cell() {
        let a = generate(&FACE_FULL_RANGE);
        assert_eq!(
            a[0],
            Anchor {
                x: 0.5 / 48.0,
                y: 0.5 / 48.0
            }
        );
        assert_eq!(
            a[1],
            Anchor {
                x: 1.5 / 48.0,
                y: 0.5 / 48.0
            }
        );
        assert_eq!(
            a[48],
            Anchor {
                x: 0.5 / 48.0,
                y: 1.5 / 48.0
            }
        );
    }

    #[test]
    fn pose_groups_have_ceil_grids() {
        let a = generate(&POSE_DETECTOR);
        // 28²·2 = 1568 anchors of stride 8, then 14²·2 = 392 of stride 16, then 7²·6 = 294.
        assert_eq!(
            a[1567],
            Anchor {
                x: 27.5 / 28.0,
                y: 27.5 / 28.0
            }
        );
        assert_eq!(
            a[1568],
            Anchor {
                x: 0.5 / 14.0,
                y: 0.5 / 14.0
            }
        );
        assert_eq!(
            a[1960],
            Anchor {
                x: 0.5 / 7.0,
                y: 0.5 / 7.0
            }
        );
        assert_eq!(
            a[1965],
            Anchor {
                x: 0.5 / 7.0,
                y: 0.5 / 7.0
            }
        );
        assert_eq!(
            a[1966],
            Anchor {
                x: 1.5 / 7.0,
                y: 0.5 / 7.0
            }
        );
        // A size that is not a multiple of the stride rounds the grid up.
        let odd = AnchorSpec {
            input_size: 30,
            strides: &[8],
            interpolated_scale: false,
        };
        assert_eq!(generate(&odd).len(), 16);
    }
}
