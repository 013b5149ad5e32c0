//! Time per 640×480 frame of each vision model (pre-processing, inference and decoding, as
//! reported in `VisionResult::timings`), medians over many frames.
//!
//! `cargo run --release -p cav-models --example vision_bench [-- RUNS [THREADS]]`
//! (THREADS sets OpenCV's thread count; default: OpenCV's own choice).

use std::path::PathBuf;
use std::time::Instant;

use cav_models::vision::{FaceModel, Vision, VisionOptions, VisionResult};
use opencv::core::{Mat, Size};
use opencv::prelude::*;
use opencv::{imgcodecs, imgproc};

fn median(mut v: Vec<f32>) -> f32 {
    v.sort_by(f32::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let runs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(30);
    if let Some(threads) = args.next().and_then(|a| a.parse().ok()) {
        opencv::core::set_num_threads(threads).unwrap();
    }
    println!(
        "OpenCV {} threads, {runs} runs per setting",
        opencv::core::get_num_threads().unwrap()
    );

    // sample4.jpg (4 people standing, 1920×1448 ≈ 4:3) scaled to 640×480.
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/images/sample4.jpg");
    let img = imgcodecs::imread(path.to_str().unwrap(), imgcodecs::IMREAD_COLOR).unwrap();
    let mut frame = Mat::default();
    imgproc::resize(
        &img,
        &mut frame,
        Size::new(640, 480),
        0.0,
        0.0,
        imgproc::INTER_AREA,
    )
    .unwrap();
    let bgr = frame.data_bytes().unwrap().to_vec();

    let t = Instant::now();
    let mut vision = Vision::embedded().unwrap();
    println!(
        "loading the four models: {:.0} ms",
        t.elapsed().as_secs_f64() * 1e3
    );

    let settings = [
        (
            "full-range faces + landmarks (default)",
            FaceModel::FullRange,
        ),
        ("short-range faces + landmarks", FaceModel::ShortRange),
        ("both face models + landmarks", FaceModel::Both),
        ("no faces + landmarks", FaceModel::Off),
    ];
    println!(
        "{:<40} {:>9} {:>9} {:>9} {:>9}   (median ms per 640×480 frame)",
        "setting", "pose det", "faces", "landmark", "total"
    );
    for (label, faces) in settings {
        vision.set_options(VisionOptions {
            faces,
            ..VisionOptions::default()
        });
        let mut results: Vec<VisionResult> = Vec::with_capacity(runs);
        for _ in 0..2 {
            vision.analyze(&bgr, 640, 480).unwrap(); // warm-up
        }
        for _ in 0..runs {
            results.push(vision.analyze(&bgr, 640, 480).unwrap());
        }
        let col = |f: fn(&VisionResult) -> f32| median(results.iter().map(f).collect());
        println!(
            "{:<40} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
            label,
            col(|r| r.timings.pose_detector_ms),
            col(|r| r.timings.face_detector_ms),
            col(|r| r.timings.landmark_ms),
            col(|r| r.timings.total_ms),
        );
        let last = results.last().unwrap();
        println!(
            "{:<40} persons {}, faces {}, posture {:?}, hand near ear {:?}",
            "",
            last.persons.len(),
            last.faces.len(),
            last.posture(),
            last.hand_near_ear
        );
    }
}
