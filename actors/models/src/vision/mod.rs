//! Seeing: faces, persons, body-axis posture and pose landmarks in one camera frame, from
//! MediaPipe's BlazeFace and BlazePose models (ONNX, run with OpenCV's dnn module).
//!
//! The models, their pre- and post-processing and the expected outputs are specified in
//! `models/README.md` and `tests/data/vision/`; this is a port of the reference
//! `tests/data/vision/reference/mediapipe_ref.py`. Per frame:
//!
//! 1. **Persons:** the BlazePose detector (224×224) on the letterboxed frame; decoded, weighted
//!    NMS, mapped back to frame pixels. Each person's body axis (mid-hip keypoint → full-body
//!    point) gives its [`Posture`]: `|a − 90°| < 45°` → upright, else lying. The detector is made
//!    for the main person; in group photos it finds 1–4 of them.
//! 2. **Faces:** BlazeFace *full range* (192×192, faces up to ~5 m) by default, because the short
//!    range model misses faces that fill ~10 % of a room camera's frame (23 vs 16 of 25 faces on
//!    the test photos). Short range, or both merged by weighted NMS, can be chosen in
//!    [`VisionOptions`]. Faces rotated by 90° are mostly missed, so posture never uses them.
//! 3. **Landmarks** of the best person: the rotated square ROI around the body, cropped with
//!    `warpAffine`, through the BlazePose landmark model (256×256): pose presence, 33 landmarks,
//!    the landmark body axis (mid-hip → mid-shoulder), and the [`hand_near_ear`] cue.
//!
//! The pure parts (anchors, decoding, NMS, geometry, posture) live in their own modules and are
//! unit-tested; this module only moves pixels through OpenCV.
//!
//! ```no_run
//! # fn main() -> Result<(), cav_models::vision::VisionError> {
//! use cav_models::vision::Vision;
//! let mut vision = Vision::embedded()?;
//! let (w, h) = (640, 480);
//! let frame = vec![0u8; w * h * 3]; // BGR, row-major
//! let result = vision.analyze(&frame, w, h)?;
//! if let Some(p) = result.persons.first() {
//!     println!("{:?} ({:.0}°)", p.posture, p.axis_deg);
//! }
//! # Ok(()) }
//! ```

pub mod anchors;
pub mod decode;
pub mod geometry;
pub mod posture;

use std::path::{Path, PathBuf};
use std::time::Instant;

use opencv::core::{Mat, Scalar, Size, ToInputArray, Vec3b, Vector, BORDER_CONSTANT, CV_32F};
use opencv::dnn::Net;
use opencv::imgproc::{warp_affine, INTER_LINEAR, WARP_INVERSE_MAP};
use opencv::prelude::*;
use serde::Serialize;

use anchors::{Anchor, AnchorSpec, FACE_FULL_RANGE, FACE_SHORT_RANGE, POSE_DETECTOR};
use decode::{decode, unletterbox, weighted_nms, Detection, NMS_IOU_THRESHOLD};
use geometry::{pack_nchw, Affine, Letterbox, Roi};
pub use posture::{axis_deg, hand_near_ear, landmark_axis_deg, HandNearEarParams, Posture};

/// File names of the four models in a model directory (`models/` of the workspace).
pub const FACE_SHORT_RANGE_FILE: &str = "face_detection_short_range.onnx";
/// BlazeFace full range.
pub const FACE_FULL_RANGE_FILE: &str = "face_detection_full_range.onnx";
/// BlazePose person detector.
pub const POSE_DETECTOR_FILE: &str = "pose_detection.onnx";
/// BlazePose landmark model "full".
pub const POSE_LANDMARK_FILE: &str = "pose_landmark_full.onnx";

/// Minimum score of a short-range face.
pub const FACE_SHORT_RANGE_MIN_SCORE: f32 = 0.5;
/// Minimum score of a full-range face.
pub const FACE_FULL_RANGE_MIN_SCORE: f32 = 0.6;
/// Minimum score of a pose detection.
pub const POSE_MIN_SCORE: f32 = 0.5;
/// Pose presence below which the landmarks are dropped (MediaPipe's threshold).
pub const POSE_PRESENCE_THRESHOLD: f32 = 0.5;
/// Input side of the landmark model.
pub const LANDMARK_INPUT_SIZE: usize = 256;
/// Largest frame side accepted (OpenCV's warp keeps source coordinates in 16 bits).
pub const MAX_FRAME_SIDE: usize = 32_767;

/// Keypoints per face (right eye, left eye, nose tip, mouth, right ear, left ear).
const FACE_KEYPOINTS: usize = 6;
/// Keypoints per pose detection (mid-hip, full-body point, mid-shoulder, upper-body point).
const POSE_KEYPOINTS: usize = 4;
/// Rows of the landmark output: 33 body + 6 auxiliary landmarks, 5 values each.
const LANDMARK_ROWS: usize = 39;
const LANDMARK_VALUES: usize = 5;

/// The models built into the crate (`models/*.onnx` of the workspace, see `models/README.md`).
static EMBEDDED: ModelBytes<'static> = ModelBytes {
    face_short_range: include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../models/face_detection_short_range.onnx"
    )),
    face_full_range: include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../models/face_detection_full_range.onnx"
    )),
    pose_detector: include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../models/pose_detection.onnx"
    )),
    pose_landmark: include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../models/pose_landmark_full.onnx"
    )),
};

/// Why the vision models could not be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum VisionError {
    /// A model file could not be read.
    #[error("cannot read model file {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// OpenCV refused a model.
    #[error("cannot load the {model} model: {reason}")]
    Load {
        /// Which model.
        model: &'static str,
        /// OpenCV's message.
        reason: String,
    },
    /// The frame's buffer does not hold `width · height · 3` bytes, or a side is zero.
    #[error("frame {width}×{height} needs {expected} BGR bytes, got {actual}")]
    FrameSize {
        /// Width in pixels.
        width: usize,
        /// Height in pixels.
        height: usize,
        /// `width · height · 3` (0 when that overflows).
        expected: usize,
        /// The buffer's length.
        actual: usize,
    },
    /// The frame is empty (a side is zero) or larger than [`MAX_FRAME_SIDE`].
    #[error("frame {width}×{height} is unusable (each side must be 1…{MAX_FRAME_SIDE})")]
    FrameDimensions {
        /// Width in pixels.
        width: usize,
        /// Height in pixels.
        height: usize,
    },
    /// OpenCV failed while pre-processing or running a model.
    #[error("{stage}: {reason}")]
    OpenCv {
        /// What was being done, e.g. `pose detector: forward`.
        stage: String,
        /// OpenCV's message.
        reason: String,
    },
    /// A model's outputs do not have the expected shapes.
    #[error("the {model} model gave unexpected outputs: {detail}")]
    Outputs {
        /// Which model.
        model: &'static str,
        /// What was wrong.
        detail: String,
    },
}

fn cv_err<'a>(
    model: &'static str,
    what: &'a str,
) -> impl FnOnce(opencv::Error) -> VisionError + 'a {
    move |e| VisionError::OpenCv {
        stage: format!("{model}: {what}"),
        reason: e.message,
    }
}

/// The ONNX bytes of the four models.
#[derive(Clone, Copy, Debug)]
pub struct ModelBytes<'a> {
    /// `face_detection_short_range.onnx`.
    pub face_short_range: &'a [u8],
    /// `face_detection_full_range.onnx`.
    pub face_full_range: &'a [u8],
    /// `pose_detection.onnx`.
    pub pose_detector: &'a [u8],
    /// `pose_landmark_full.onnx`.
    pub pose_landmark: &'a [u8],
}

/// Which face detector(s) [`Vision::analyze`] runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FaceModel {
    /// No face detection.
    Off,
    /// BlazeFace full range, 192×192 (the default: faces up to ~5 m).
    #[default]
    FullRange,
    /// BlazeFace short range, 128×128 (faces near the camera; cheaper).
    ShortRange,
    /// Both, merged by weighted NMS.
    Both,
}

/// What [`Vision::analyze`] does.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VisionOptions {
    /// Which face detector(s) to run.
    pub faces: FaceModel,
    /// Whether to run the landmark model on the best person.
    pub landmarks: bool,
    /// Parameters of the hand-near-ear cue.
    pub hand_near_ear: HandNearEarParams,
}

impl Default for VisionOptions {
    fn default() -> Self {
        Self {
            faces: FaceModel::FullRange,
            landmarks: true,
            hand_near_ear: HandNearEarParams::default(),
        }
    }
}

/// One face, in frame pixels.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Face {
    /// Detector score in `[0, 1]`.
    pub score: f32,
    /// `[x, y, width, height]`.
    pub box_xywh: [f32; 4],
    /// Six `[x, y]`: right eye, left eye, nose tip, mouth centre, right ear, left ear (the
    /// subject's right).
    pub keypoints: Vec<[f32; 2]>,
}

/// One person found by the BlazePose detector, in frame pixels.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Person {
    /// Detector score in `[0, 1]`.
    pub score: f32,
    /// `[x, y, width, height]`: a square around the head, not the body.
    pub box_xywh: [f32; 4],
    /// Four `[x, y]`: mid-hip, full-body point (on the axis towards the head, at the radius of
    /// the circle around the body), mid-shoulder, upper-body point.
    pub keypoints: Vec<[f32; 2]>,
    /// Body-axis angle mid-hip → full-body point, degrees in `(−180, 180]`; 90 = head up.
    pub axis_deg: f32,
    /// Posture from `axis_deg`.
    pub posture: Posture,
}

/// The landmark model's view of the best person.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PoseLandmarks {
    /// Pose presence (a probability; at least [`POSE_PRESENCE_THRESHOLD`] here).
    pub presence: f32,
    /// Body axis mid-hip → mid-shoulder from the landmarks, degrees.
    pub axis_deg: f32,
    /// Posture from the landmark axis.
    pub posture: Posture,
    /// The region the landmark model looked at.
    pub roi: Roi,
    /// The 33 body landmarks (see [`posture::landmark`]) as `[x, y, visibility]`: frame pixels
    /// and a probability.
    pub points: Vec<[f32; 3]>,
}

/// Time spent per model (pre-processing, inference and decoding), in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct VisionTimings {
    /// BlazePose detector.
    pub pose_detector_ms: f32,
    /// Face detector(s).
    pub face_detector_ms: f32,
    /// Landmark model (0 when not run).
    pub landmark_ms: f32,
    /// The whole call.
    pub total_ms: f32,
}

/// What one frame shows.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VisionResult {
    /// Faces, best first.
    pub faces: Vec<Face>,
    /// Persons, best first.
    pub persons: Vec<Person>,
    /// Landmarks of the best person, when the landmark model ran and found a pose.
    pub landmarks: Option<PoseLandmarks>,
    /// Whether the best person holds a hand at an ear (see [`hand_near_ear`]); `None` without
    /// landmarks or when head and shoulders are not seen.
    pub hand_near_ear: Option<bool>,
    /// Time per model.
    pub timings: VisionTimings,
}

impl VisionResult {
    /// The posture of the best person, if any.
    pub fn posture(&self) -> Option<Posture> {
        self.persons.first().map(|p| p.posture)
    }
}

/// One SSD detector: its net, anchors and scratch buffers.
struct Detector {
    name: &'static str,
    net: Net,
    out_names: Vector<String>,
    spec: AnchorSpec,
    anchors: Vec<Anchor>,
    num_keypoints: usize,
    min_score: f32,
    warped: Mat,
    blob: Mat,
}

fn load_net(model: &'static str, bytes: &[u8]) -> Result<(Net, Vector<String>), VisionError> {
    let load_err = |e: opencv::Error| VisionError::Load {
        model,
        reason: e.message,
    };
    let buffer = Vector::<u8>::from_slice(bytes);
    let net = opencv::dnn::read_net_from_onnx_buffer(&buffer).map_err(load_err)?;
    if net.empty().map_err(load_err)? {
        return Err(VisionError::Load {
            model,
            reason: "the network is empty".into(),
        });
    }
    let names = net.get_unconnected_out_layers_names().map_err(load_err)?;
    Ok((net, names))
}

fn nchw_blob(model: &'static str, size: usize) -> Result<Mat, VisionError> {
    let s = size as i32;
    Mat::new_nd_with_default(&[1, 3, s, s], CV_32F, Scalar::all(0.0))
        .map_err(cv_err(model, "allocating the input"))
}

fn affine_mat(model: &'static str, m: &Affine) -> Result<Mat, VisionError> {
    Mat::from_slice_2d(m).map_err(cv_err(model, "affine matrix"))
}

/// Resamples `src` through the inverse map `m` into a `size × size` BGR picture (bilinear,
/// black outside the frame).
fn warp(
    model: &'static str,
    src: &impl ToInputArray,
    m: &Affine,
    size: usize,
    dst: &mut Mat,
) -> Result<(), VisionError> {
    let m = affine_mat(model, m)?;
    let s = size as i32;
    warp_affine(
        src,
        dst,
        &m,
        Size::new(s, s),
        INTER_LINEAR | WARP_INVERSE_MAP,
        BORDER_CONSTANT,
        Scalar::all(0.0),
    )
    .map_err(cv_err(model, "warpAffine"))
}

/// Runs `net` on `blob` and returns its outputs.
fn forward(
    model: &'static str,
    net: &mut Net,
    names: &Vector<String>,
    blob: &Mat,
) -> Result<Vector<Mat>, VisionError> {
    net.set_input(blob, "", 1.0, Scalar::default())
        .map_err(cv_err(model, "setInput"))?;
    let mut outs = Vector::<Mat>::new();
    net.forward(&mut outs, names)
        .map_err(cv_err(model, "forward"))?;
    Ok(outs)
}

/// The values of the output with exactly `len` elements.
fn output_with_len(
    model: &'static str,
    outs: &Vector<Mat>,
    len: usize,
) -> Result<Vec<f32>, VisionError> {
    for m in outs.iter() {
        if m.total() == len {
            return m
                .data_typed::<f32>()
                .map(<[f32]>::to_vec)
                .map_err(cv_err(model, "reading outputs"));
        }
    }
    let sizes: Vec<usize> = outs.iter().map(|m| m.total()).collect();
    Err(VisionError::Outputs {
        model,
        detail: format!("no output with {len} values (outputs have {sizes:?})"),
    })
}

impl Detector {
    fn new(
        name: &'static str,
        bytes: &[u8],
        spec: AnchorSpec,
        num_keypoints: usize,
        min_score: f32,
    ) -> Result<Self, VisionError> {
        let (net, out_names) = load_net(name, bytes)?;
        Ok(Self {
            name,
            net,
            out_names,
            spec,
            anchors: anchors::generate(&spec),
            num_keypoints,
            min_score,
            warped: Mat::default(),
            blob: nchw_blob(name, spec.input_size)?,
        })
    }

    /// Letterbox, run, decode, NMS, back to frame pixels. Best first.
    fn detect(
        &mut self,
        src: &impl ToInputArray,
        lb: &Letterbox,
    ) -> Result<Vec<Detection>, VisionError> {
        let size = self.spec.input_size;
        warp(
            self.name,
            src,
            &lb.sampling_matrix(size),
            size,
            &mut self.warped,
        )?;
        let pixels = self
            .warped
            .data_bytes()
            .map_err(cv_err(self.name, "reading the resampled frame"))?;
        let tensor = self
            .blob
            .data_typed_mut::<f32>()
            .map_err(cv_err(self.name, "writing the input"))?;
        pack_nchw(
            pixels,
            size,
            -1.0,
            1.0,
            &lb.padding_mask(size, true),
            &lb.padding_mask(size, false),
            tensor,
        );
        let outs = forward(self.name, &mut self.net, &self.out_names, &self.blob)?;
        // Outputs are picked by size (boxes `[1, N, 4 + 2K]`, scores `[1, N, 1]`), never by
        // position: OpenCV returns the short-range outputs in the other order.
        let n = self.anchors.len();
        let row = 4 + 2 * self.num_keypoints;
        let scores = output_with_len(self.name, &outs, n)?;
        let regressors = output_with_len(self.name, &outs, n * row)?;
        let dets = decode(
            &regressors,
            &scores,
            &self.anchors,
            size,
            self.num_keypoints,
            self.min_score,
        )
        .map_err(|e| VisionError::Outputs {
            model: self.name,
            detail: e.to_string(),
        })?;
        Ok(weighted_nms(dets, NMS_IOU_THRESHOLD)
            .iter()
            .map(|d| unletterbox(d, lb))
            .collect())
    }
}

/// The four BlazeFace / BlazePose models, ready to analyse frames. Owns OpenCV nets and scratch
/// buffers, so `analyze` takes `&mut self`; it is `Send`, so one thread (or actor) can own it.
pub struct Vision {
    face_short: Detector,
    face_full: Detector,
    pose: Detector,
    landmark_net: Net,
    landmark_out_names: Vector<String>,
    landmark_crop: Mat,
    landmark_blob: Mat,
    options: VisionOptions,
}

impl std::fmt::Debug for Vision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vision")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Vision {
    /// The models built into the crate.
    pub fn embedded() -> Result<Self, VisionError> {
        Self::from_bytes(&EMBEDDED)
    }

    /// The models in `dir`, under their usual names ([`FACE_SHORT_RANGE_FILE`] …).
    pub fn from_dir(dir: &Path) -> Result<Self, VisionError> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read(&path).map_err(|source| VisionError::Io { path, source })
        };
        let face_short_range = read(FACE_SHORT_RANGE_FILE)?;
        let face_full_range = read(FACE_FULL_RANGE_FILE)?;
        let pose_detector = read(POSE_DETECTOR_FILE)?;
        let pose_landmark = read(POSE_LANDMARK_FILE)?;
        Self::from_bytes(&ModelBytes {
            face_short_range: &face_short_range,
            face_full_range: &face_full_range,
            pose_detector: &pose_detector,
            pose_landmark: &pose_landmark,
        })
    }

    /// The models from their ONNX bytes.
    pub fn from_bytes(models: &ModelBytes<'_>) -> Result<Self, VisionError> {
        let face_short = Detector::new(
            "face short range",
            models.face_short_range,
            FACE_SHORT_RANGE,
            FACE_KEYPOINTS,
            FACE_SHORT_RANGE_MIN_SCORE,
        )?;
        let face_full = Detector::new(
            "face full range",
            models.face_full_range,
            FACE_FULL_RANGE,
            FACE_KEYPOINTS,
            FACE_FULL_RANGE_MIN_SCORE,
        )?;
        let pose = Detector::new(
            "pose detector",
            models.pose_detector,
            POSE_DETECTOR,
            POSE_KEYPOINTS,
            POSE_MIN_SCORE,
        )?;
        let (landmark_net, landmark_out_names) = load_net("pose landmark", models.pose_landmark)?;
        Ok(Self {
            face_short,
            face_full,
            pose,
            landmark_net,
            landmark_out_names,
            landmark_crop: Mat::default(),
            landmark_blob: nchw_blob("pose landmark", LANDMARK_INPUT_SIZE)?,
            options: VisionOptions::default(),
        })
    }

    /// What `analyze` does.
    pub fn options(&self) -> &VisionOptions {
        &self.options
    }

    /// Changes what `analyze` does.
    pub fn set_options(&mut self, options: VisionOptions) {
        self.options = options;
    }

    /// Analyses one frame: `bgr` holds `width · height` pixels, 3 bytes each (B, G, R), row by
    /// row without padding (a [`cav_core::frame::Frame`]'s layout).
    pub fn analyze(
        &mut self,
        bgr: &[u8],
        width: usize,
        height: usize,
    ) -> Result<VisionResult, VisionError> {
        let start = Instant::now();
        if width == 0 || height == 0 || width > MAX_FRAME_SIDE || height > MAX_FRAME_SIDE {
            return Err(VisionError::FrameDimensions { width, height });
        }
        let expected = width.checked_mul(height).and_then(|n| n.checked_mul(3));
        if expected != Some(bgr.len()) {
            return Err(VisionError::FrameSize {
                width,
                height,
                expected: expected.unwrap_or(0),
                actual: bgr.len(),
            });
        }
        let src = Mat::new_rows_cols_with_bytes::<Vec3b>(height as i32, width as i32, bgr)
            .map_err(cv_err("frame", "wrapping the pixels"))?;
        let lb = Letterbox::new(width, height);
        let mut timings = VisionTimings::default();

        let t = Instant::now();
        let persons: Vec<Person> = self
            .pose
            .detect(&src, &lb)?
            .into_iter()
            .map(|d| {
                let axis = axis_deg(d.keypoints[0], d.keypoints[1]);
                Person {
                    score: d.score,
                    box_xywh: d.box_xywh(),
                    keypoints: d.keypoints,
                    axis_deg: axis,
                    posture: Posture::from_axis_deg(axis),
                }
            })
            .collect();
        timings.pose_detector_ms = ms_since(t);

        let t = Instant::now();
        let faces = self.faces(&src, &lb)?;
        timings.face_detector_ms = ms_since(t);

        let mut landmarks = None;
        if self.options.landmarks {
            if let Some(best) = persons.first() {
                let t = Instant::now();
                landmarks = self.landmarks(&src, best)?;
                timings.landmark_ms = ms_since(t);
            }
        }
        let hand_near_ear = landmarks
            .as_ref()
            .and_then(|l| hand_near_ear(&l.points, &self.options.hand_near_ear));
        timings.total_ms = ms_since(start);
        Ok(VisionResult {
            faces,
            persons,
            landmarks,
            hand_near_ear,
            timings,
        })
    }

    fn faces(&mut self, src: &impl ToInputArray, lb: &Letterbox) -> Result<Vec<Face>, VisionError> {
        let dets = match self.options.faces {
            FaceModel::Off => Vec::new(),
            FaceModel::FullRange => self.face_full.detect(src, lb)?,
            FaceModel::ShortRange => self.face_short.detect(src, lb)?,
            FaceModel::Both => {
                // Merged in frame pixels: the letterbox scales both axes alike, so IoUs agree.
                let mut all = self.face_full.detect(src, lb)?;
                all.extend(self.face_short.detect(src, lb)?);
                weighted_nms(all, NMS_IOU_THRESHOLD)
            }
        };
        Ok(dets
            .into_iter()
            .map(|d| Face {
                score: d.score,
                box_xywh: d.box_xywh(),
                keypoints: d.keypoints,
            })
            .collect())
    }

    /// The landmark model on the ROI of `person`; `None` when the ROI is degenerate or the pose
    /// presence is below [`POSE_PRESENCE_THRESHOLD`].
    fn landmarks(
        &mut self,
        src: &impl ToInputArray,
        person: &Person,
    ) -> Result<Option<PoseLandmarks>, VisionError> {
        const MODEL: &str = "pose landmark";
        let Some(roi) = Roi::from_keypoints(person.keypoints[0], person.keypoints[1]) else {
            return Ok(None);
        };
        let size = LANDMARK_INPUT_SIZE;
        warp(
            MODEL,
            src,
            &roi.sampling_matrix(size),
            size,
            &mut self.landmark_crop,
        )?;
        let pixels = self
            .landmark_crop
            .data_bytes()
            .map_err(cv_err(MODEL, "reading the crop"))?;
        let tensor = self
            .landmark_blob
            .data_typed_mut::<f32>()
            .map_err(cv_err(MODEL, "writing the input"))?;
        pack_nchw(pixels, size, 0.0, 1.0, &[], &[], tensor);
        let outs = forward(
            MODEL,
            &mut self.landmark_net,
            &self.landmark_out_names,
            &self.landmark_blob,
        )?;
        let raw = output_with_len(MODEL, &outs, LANDMARK_ROWS * LANDMARK_VALUES)?;
        let presence = output_with_len(MODEL, &outs, 1)?[0];
        if presence.is_nan() || presence < POSE_PRESENCE_THRESHOLD {
            return Ok(None);
        }
        let points: Vec<[f32; 3]> = raw
            .chunks_exact(LANDMARK_VALUES)
            .take(posture::landmark::COUNT)
            .map(|r| {
                let p = roi.to_image(r[0], r[1], size);
                [p[0], p[1], decode::sigmoid_clamped(r[3])]
            })
            .collect();
        let axis = landmark_axis_deg(&points).unwrap_or(f32::NAN);
        Ok(Some(PoseLandmarks {
            presence,
            axis_deg: axis,
            posture: Posture::from_axis_deg(axis),
            roi,
            points,
        }))
    }
}

fn ms_since(t: Instant) -> f32 {
    (t.elapsed().as_secs_f64() * 1e3) as f32
}

impl VisionResult {
    /// What the activity classifier keeps of this frame's result, stamped with the frame's
    /// capture time.
    pub fn observation(&self, t: cav_core::Timestamp) -> cav_core::observe::VisionObservation {
        cav_core::observe::VisionObservation {
            t,
            faces: self.faces.len() as u32,
            persons: self.persons.len() as u32,
            lying: self.posture().map(|p| p == Posture::Lying),
            hand_near_ear: self.hand_near_ear,
        }
    }
}
