//! Vision (BlazeFace, BlazePose) on the test photos in `tests/data/images/`, against the
//! reference detections in `tests/data/vision/expected.json` with the tolerances of
//! `tests/data/vision/README.md`: posture class of the best person, persons found wherever the
//! reference finds one, faces found where the reference finds them, the same person's angle
//! within ±10°, the best pose score within ±0.1.
//!
//! `cargo test -p cav-models --test vision -- --nocapture` prints a table per image.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use cav_models::vision::{FaceModel, Posture, Vision, VisionError, VisionOptions, VisionResult};
use opencv::core::{Mat, Vec3b};
use opencv::imgcodecs;
use opencv::prelude::*;
use serde_json::Value;

/// Score tolerance of the best pose detection.
const SCORE_TOL: f32 = 0.1;
/// Angle tolerance for the same person.
const ANGLE_TOL: f32 = 10.0;

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data")
}

fn vision() -> &'static Mutex<Vision> {
    static V: OnceLock<Mutex<Vision>> = OnceLock::new();
    V.get_or_init(|| Mutex::new(Vision::embedded().expect("load the vision models")))
}

/// Runs `f` with the shared models set to `options` (restored afterwards).
fn with_vision<T>(options: VisionOptions, f: impl FnOnce(&mut Vision) -> T) -> T {
    let mut v = vision().lock().unwrap_or_else(|e| e.into_inner());
    let saved = *v.options();
    v.set_options(options);
    let out = f(&mut v);
    v.set_options(saved);
    out
}

/// A test image as BGR bytes (greyscale PNGs are replicated to three channels, like the
/// reference's `convert("RGB")`).
fn load_image(name: &str) -> (Vec<u8>, usize, usize) {
    let path = data_dir().join("images").join(name);
    let mat = imgcodecs::imread(path.to_str().unwrap(), imgcodecs::IMREAD_COLOR).unwrap();
    assert!(!mat.empty(), "cannot decode {}", path.display());
    assert_eq!(mat.typ(), Vec3b::opencv_type());
    let (w, h) = (mat.cols() as usize, mat.rows() as usize);
    let bytes = mat.data_bytes().unwrap().to_vec();
    assert_eq!(bytes.len(), w * h * 3);
    (bytes, w, h)
}

fn analyze(name: &str, options: VisionOptions) -> VisionResult {
    let (bgr, w, h) = load_image(name);
    with_vision(options, |v| v.analyze(&bgr, w, h)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn expected() -> &'static BTreeMap<String, Value> {
    static E: OnceLock<BTreeMap<String, Value>> = OnceLock::new();
    E.get_or_init(|| {
        let path = data_dir().join("vision/expected.json");
        let text = std::fs::read_to_string(&path).unwrap();
        serde_json::from_str(&text).unwrap()
    })
}

/// One row of `images/labels.csv`.
struct Label {
    file: String,
    rotation_deg: i32,
    persons_visible: usize,
    posture: Posture,
}

fn labels() -> Vec<Label> {
    let text = std::fs::read_to_string(data_dir().join("images/labels.csv")).unwrap();
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            // The first five columns never hold commas or quotes.
            let f: Vec<&str> = line.splitn(6, ',').collect();
            Label {
                file: f[0].to_string(),
                rotation_deg: f[2].parse().unwrap(),
                persons_visible: f[3].parse().unwrap(),
                posture: match f[4] {
                    "upright" => Posture::Upright,
                    "lying" => Posture::Lying,
                    other => panic!("posture {other}"),
                },
            }
        })
        .collect()
}

fn f(v: &Value) -> f32 {
    v.as_f64().unwrap() as f32
}

fn xy(v: &Value) -> [f32; 2] {
    [f(&v[0]), f(&v[1])]
}

fn iou_xywh(a: [f32; 4], b: [f32; 4]) -> f32 {
    let ix = ((a[0] + a[2]).min(b[0] + b[2]) - a[0].max(b[0])).max(0.0);
    let iy = ((a[1] + a[3]).min(b[1] + b[3]) - a[1].max(b[1])).max(0.0);
    let inter = ix * iy;
    let union = a[2] * a[3] + b[2] * b[3] - inter;
    if union > 0.0 {
        inter / union
    } else {
        0.0
    }
}

fn angle_diff(a: f32, b: f32) -> f32 {
    let d = (a - b).rem_euclid(360.0);
    d.min(360.0 - d)
}

/// The reference pose detection nearest to `kp0` (mid-hip), with its distance.
fn nearest_reference(reference: &[Value], kp0: [f32; 2]) -> Option<(&Value, f32)> {
    reference
        .iter()
        .map(|d| {
            let r = xy(&d["keypoints_px"][0]);
            (d, (r[0] - kp0[0]).hypot(r[1] - kp0[1]))
        })
        .min_by(|a, b| a.1.total_cmp(&b.1))
}

/// Every image through the default options, printed, with the posture and detection checks.
#[test]
fn every_image_posture_persons_and_angles() {
    let mut failures = Vec::new();
    println!(
        "{:<26} {:>7} {:>5} {:>4} {:>7} {:>7} {:>7} {:>7} {:>5} {:>5} {:>7} {:>6}",
        "image",
        "label",
        "pers",
        "ref",
        "best",
        "ref",
        "axis",
        "ref",
        "faces",
        "ref",
        "lm-axis",
        "hand"
    );
    for label in labels() {
        let r = analyze(&label.file, VisionOptions::default());
        let e = &expected()[&label.file];
        let refs = e["pose_detections"].as_array().unwrap();
        let best = r.persons.first();
        println!(
            "{:<26} {:>7} {:>5} {:>4} {:>7} {:>7.4} {:>7} {:>7.1} {:>5} {:>5} {:>7} {:>6}",
            label.file,
            format!("{:?}", label.posture).to_lowercase(),
            r.persons.len(),
            refs.len(),
            best.map_or("-".into(), |p| format!("{:.4}", p.score)),
            f(&refs[0]["score"]),
            best.map_or("-".into(), |p| format!("{:.1}", p.axis_deg)),
            f(&refs[0]["axis_deg_kp0_kp1"]),
            r.faces.len(),
            e["faces_full_range"].as_array().unwrap().len(),
            r.landmarks
                .as_ref()
                .map_or("-".into(), |l| format!("{:.1}", l.axis_deg)),
            format!("{:?}", r.hand_near_ear),
        );
        let Some(best) = best else {
            failures.push(format!(
                "{}: no person (reference has {})",
                label.file,
                refs.len()
            ));
            continue;
        };
        if best.posture != label.posture {
            failures.push(format!(
                "{}: posture {:?} at {:.1}°, label {:?}",
                label.file, best.posture, best.axis_deg, label.posture
            ));
        }
        if let Some(l) = &r.landmarks {
            if l.posture != label.posture {
                failures.push(format!(
                    "{}: landmark posture {:?} at {:.1}°",
                    label.file, l.posture, l.axis_deg
                ));
            }
        }
        let ref_score = f(&refs[0]["score"]);
        if (best.score - ref_score).abs() > SCORE_TOL {
            failures.push(format!(
                "{}: best score {:.4}, reference {ref_score:.4}",
                label.file, best.score
            ));
        }
        // The same person (nearest mid-hip, within a quarter of the body circle) has the same
        // body axis within ±10°.
        for p in &r.persons {
            let radius = {
                let [a, b] = [p.keypoints[0], p.keypoints[1]];
                (a[0] - b[0]).hypot(a[1] - b[1])
            };
            if let Some((d, dist)) = nearest_reference(refs, p.keypoints[0]) {
                if dist < 0.25 * radius {
                    let ref_axis = f(&d["axis_deg_kp0_kp1"]);
                    if angle_diff(p.axis_deg, ref_axis) > ANGLE_TOL {
                        failures.push(format!(
                            "{}: person at {:?} axis {:.1}°, reference {ref_axis:.1}°",
                            label.file, p.keypoints[0], p.axis_deg
                        ));
                    }
                }
            }
        }
        // The reference's best person is among ours.
        let ref_kp0 = xy(&refs[0]["keypoints_px"][0]);
        let ref_radius = {
            let b = xy(&refs[0]["keypoints_px"][1]);
            (ref_kp0[0] - b[0]).hypot(ref_kp0[1] - b[1])
        };
        let found = r.persons.iter().any(|p| {
            let k = p.keypoints[0];
            (k[0] - ref_kp0[0]).hypot(k[1] - ref_kp0[1]) < 0.25 * ref_radius
        });
        if !found {
            failures.push(format!(
                "{}: the reference's best person (hip at {ref_kp0:?}) is not found",
                label.file
            ));
        }
        // Every person reported is in the label's posture (the photos show no mix).
        for p in &r.persons {
            if p.posture != label.posture {
                failures.push(format!(
                    "{}: a person at {:?} has posture {:?} ({:.1}°)",
                    label.file, p.keypoints[0], p.posture, p.axis_deg
                ));
            }
        }
        if label.rotation_deg == 0 && label.posture != Posture::Upright {
            failures.push(format!("{}: labels.csv inconsistent", label.file));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Group photos: persons are counted, between 1 and the number visible.
#[test]
fn group_photos_count_persons() {
    let mut ours_total = 0;
    let mut ref_total = 0;
    for label in labels().into_iter().filter(|l| l.persons_visible >= 2) {
        let r = analyze(&label.file, VisionOptions::default());
        let n_ref = expected()[&label.file]["pose_detections"]
            .as_array()
            .unwrap()
            .len();
        println!(
            "{:<26} visible {} found {} reference {}",
            label.file,
            label.persons_visible,
            r.persons.len(),
            n_ref
        );
        assert!(
            (1..=label.persons_visible).contains(&r.persons.len()),
            "{}: {} persons, {} visible",
            label.file,
            r.persons.len(),
            label.persons_visible
        );
        ours_total += r.persons.len();
        ref_total += n_ref;
    }
    println!("group photos: {ours_total} persons found, reference {ref_total}");
    // Counts near the score threshold may differ (README), but not wholesale.
    assert!(
        ours_total.abs_diff(ref_total) <= ref_total / 5,
        "{ours_total} vs {ref_total}"
    );
}

/// Upright originals: every face the full-range reference finds is found (IoU ≥ 0.5).
#[test]
fn faces_found_where_the_reference_finds_them() {
    let mut failures = Vec::new();
    for label in labels().into_iter().filter(|l| l.rotation_deg == 0) {
        let r = analyze(&label.file, VisionOptions::default());
        let refs = expected()[&label.file]["faces_full_range"]
            .as_array()
            .unwrap();
        println!(
            "{:<18} faces {} reference {} (visible persons {})",
            label.file,
            r.faces.len(),
            refs.len(),
            label.persons_visible
        );
        for rf in refs {
            let b = rf["box_xywh_px"].as_array().unwrap();
            let rb = [f(&b[0]), f(&b[1]), f(&b[2]), f(&b[3])];
            let best = r
                .faces
                .iter()
                .map(|face| (face, iou_xywh(face.box_xywh, rb)))
                .max_by(|a, b| a.1.total_cmp(&b.1));
            match best {
                Some((face, iou)) if iou >= 0.5 => {
                    let ref_score = f(&rf["score"]);
                    if (face.score - ref_score).abs() > SCORE_TOL {
                        failures.push(format!(
                            "{}: face {rb:?} score {:.3}, reference {ref_score:.3}",
                            label.file, face.score
                        ));
                    }
                    assert_eq!(face.keypoints.len(), 6);
                }
                _ => failures.push(format!("{}: reference face {rb:?} missed", label.file)),
            }
        }
        assert!(
            r.faces.len() <= label.persons_visible,
            "{}: {} faces for {} persons",
            label.file,
            r.faces.len(),
            label.persons_visible
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Short range and both models merged also work (short range finds fewer faces at a distance).
#[test]
fn short_range_and_merged_faces() {
    for name in ["sample1.jpg", "sample5.jpg"] {
        let refs = expected()[name]["faces_short_range"]
            .as_array()
            .unwrap()
            .len();
        let short = analyze(
            name,
            VisionOptions {
                faces: FaceModel::ShortRange,
                ..VisionOptions::default()
            },
        );
        let both = analyze(
            name,
            VisionOptions {
                faces: FaceModel::Both,
                ..VisionOptions::default()
            },
        );
        let full = analyze(name, VisionOptions::default());
        println!(
            "{name}: short {} (reference {refs}), full {}, both {}",
            short.faces.len(),
            full.faces.len(),
            both.faces.len()
        );
        assert!(short.faces.len() + 1 >= refs, "{name}");
        assert!(both.faces.len() + 1 >= full.faces.len().max(short.faces.len()));
        let off = analyze(
            name,
            VisionOptions {
                faces: FaceModel::Off,
                landmarks: false,
                ..VisionOptions::default()
            },
        );
        assert!(off.faces.is_empty() && off.landmarks.is_none() && off.hand_near_ear.is_none());
        assert_eq!(off.persons.len(), full.persons.len());
    }
}

/// Landmarks of the best person: presence, and nose/shoulders/hips near the reference's.
#[test]
fn landmarks_of_the_best_person_match_the_reference() {
    let names = [
        ("nose", 0),
        ("left_shoulder", 11),
        ("right_shoulder", 12),
        ("left_hip", 23),
        ("right_hip", 24),
    ];
    let mut checked = 0;
    for label in labels() {
        let r = analyze(&label.file, VisionOptions::default());
        let e = &expected()[&label.file];
        let refs = e["pose_detections"].as_array().unwrap();
        let (Some(best), Some(lm)) = (r.persons.first(), r.landmarks.as_ref()) else {
            panic!("{}: no landmarks", label.file);
        };
        assert_eq!(lm.points.len(), 33);
        assert!(lm.presence >= 0.5 && lm.presence <= 1.0);
        // Compare only where our best person is the reference's best (it may switch).
        let ref_kp0 = xy(&refs[0]["keypoints_px"][0]);
        let k = best.keypoints[0];
        let side = f(&e["pose_landmarks_of_best"]["roi_side_px"]);
        if (k[0] - ref_kp0[0]).hypot(k[1] - ref_kp0[1]) > 0.1 * side {
            println!("{}: best person differs from the reference's", label.file);
            continue;
        }
        let ref_lm = &e["pose_landmarks_of_best"];
        assert!(
            (lm.presence - f(&ref_lm["pose_presence"])).abs() <= SCORE_TOL + 0.1,
            "{}: presence {} vs {}",
            label.file,
            lm.presence,
            ref_lm["pose_presence"]
        );
        let ref_axis = f(&ref_lm["axis_deg_midhip_midshoulder"]);
        assert!(
            angle_diff(lm.axis_deg, ref_axis) <= ANGLE_TOL,
            "{}: landmark axis {} vs {ref_axis}",
            label.file,
            lm.axis_deg
        );
        let mut worst = 0.0f32;
        for (name, i) in names {
            let p = xy(&ref_lm["landmarks_px_vis"][name]);
            let d = (lm.points[i][0] - p[0]).hypot(lm.points[i][1] - p[1]);
            worst = worst.max(d / side);
        }
        println!("{}: landmarks within {:.3} ROI sides", label.file, worst);
        assert!(
            worst < 0.05,
            "{}: a landmark is {worst} ROI sides off",
            label.file
        );
        checked += 1;
    }
    assert!(checked >= 18, "only {checked} images compared");
}

#[test]
fn a_blank_frame_has_no_person_and_no_face() {
    for (w, h, value) in [(640, 480, 0u8), (640, 480, 128), (320, 320, 255)] {
        let frame = vec![value; w * h * 3];
        let r = with_vision(VisionOptions::default(), |v| v.analyze(&frame, w, h)).unwrap();
        assert!(r.persons.is_empty(), "{value}: {:?}", r.persons);
        assert!(r.faces.is_empty(), "{value}: {:?}", r.faces);
        assert!(r.landmarks.is_none() && r.hand_near_ear.is_none());
        assert_eq!(r.posture(), None);
    }
}

#[test]
fn odd_frame_sizes_never_panic() {
    let run = |bgr: &[u8], w: usize, h: usize| {
        with_vision(VisionOptions::default(), |v| v.analyze(bgr, w, h))
    };
    assert!(matches!(
        run(&[], 0, 0),
        Err(VisionError::FrameDimensions { .. })
    ));
    assert!(matches!(
        run(&[0; 3], 1, 0),
        Err(VisionError::FrameDimensions { .. })
    ));
    assert!(matches!(
        run(&[0; 5], 1, 2),
        Err(VisionError::FrameSize { .. })
    ));
    assert!(matches!(
        run(&[0; 3], usize::MAX, 3),
        Err(VisionError::FrameDimensions { .. })
    ));
    for (w, h) in [(1, 1), (2, 1), (5000, 2), (2, 5000), (3, 7)] {
        let frame: Vec<u8> = (0..w * h * 3).map(|i| (i * 37 % 251) as u8).collect();
        let r = run(&frame, w, h).unwrap_or_else(|e| panic!("{w}×{h}: {e}"));
        for p in &r.persons {
            assert!(p.axis_deg.is_finite());
        }
    }
    // A real person in a very wide strip (the photo padded left and right).
    let (bgr, w, h) = load_image("messi5.jpg");
    let wide_w = w * 6;
    let mut wide = vec![0u8; wide_w * h * 3];
    for y in 0..h {
        let dst = (y * wide_w + 2 * w) * 3;
        wide[dst..dst + w * 3].copy_from_slice(&bgr[y * w * 3..(y + 1) * w * 3]);
    }
    let r = run(&wide, wide_w, h).unwrap();
    println!("messi5 in a {wide_w}×{h} strip: {:?}", r.posture());
}

#[test]
fn embedded_and_directory_models_agree_and_serialize() {
    let mut from_dir =
        Vision::from_dir(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models")).unwrap();
    let (bgr, w, h) = load_image("basketball1.png");
    let a = from_dir.analyze(&bgr, w, h).unwrap();
    let b = with_vision(VisionOptions::default(), |v| v.analyze(&bgr, w, h)).unwrap();
    assert_eq!(a.persons, b.persons);
    assert_eq!(a.faces, b.faces);
    assert_eq!(a.landmarks, b.landmarks);
    let json = serde_json::to_value(&a).unwrap();
    assert_eq!(json["persons"][0]["posture"], "upright");
    assert!(json["timings"]["pose_detector_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(json["landmarks"]["points"].as_array().unwrap().len(), 33);
    assert!(matches!(
        Vision::from_dir(&PathBuf::from("/nonexistent")),
        Err(VisionError::Io { .. })
    ));
    // A frame wrapped from an OpenCV Mat works the same way (sanity of the byte layout).
    let mat = Mat::new_rows_cols_with_bytes::<Vec3b>(h as i32, w as i32, &bgr).unwrap();
    assert_eq!(mat.data_bytes().unwrap().len(), bgr.len());
}

#[test]
fn vision_can_move_to_another_thread() {
    fn assert_send<T: Send>() {}
    assert_send::<Vision>();
    assert_send::<VisionResult>();
}
