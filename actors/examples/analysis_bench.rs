//! Speed of sampled file analysis (`analyze_samples`, what analysis jobs run) in multiples of
//! real time: media seconds / wall seconds.
//!
//! Makes a 640×480, 25 fps, 120 s H.264 + AAC clip with ffmpeg (testsrc2 + a sine, a keyframe
//! every 2 s) in a temporary folder, then analyses it every 1, 2, 4, 6, 8 and 10 s, reading forward
//! and seeking, with and without hearing (`CAV_BENCH_HEARING=0`: without only) (YAMNet from `models/`), with the daemon's defaults
//! (1 s spans, 5 analysed frames per span at 320 px).
//!
//! ```sh
//! cargo run --release -p cav-actors --example analysis_bench [-- SECONDS [FILE]]
//! ```
//!
//! `SECONDS` sets the clip's length (default 120); `FILE` analyses that file instead.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cav_actors::analysis::{
    analyze_samples_with, SampleSettings, Sampling, VideoAccess, SEEK_MIN_INTERVAL_S,
};
use cav_core::RuleClassifier;
use cav_models::hearing::{Hearing, HearingConfig};
use cav_models::Yamnet;

fn make_clip(dir: &Path, seconds: u32) -> PathBuf {
    let out = dir.join("bench_640x480.mp4");
    let d = seconds.to_string();
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("testsrc2=s=640x480:r=25:d={d}"))
        .args(["-f", "lavfi", "-i"])
        .arg(format!("sine=frequency=440:sample_rate=48000:duration={d}"))
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-g",
            "50",
            "-keyint_min",
            "50",
            "-sc_threshold",
            "0",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-b:a",
            "128k",
            "-shortest",
            "-movflags",
            "+faststart",
        ])
        .arg(&out)
        .status()
        .expect("ffmpeg is needed to make the benchmark clip");
    assert!(status.success(), "ffmpeg failed");
    out
}

fn yamnet() -> Option<Arc<Yamnet>> {
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models");
    match Yamnet::load(
        &models.join("yamnet.safetensors"),
        &models.join("yamnet_class_map.csv"),
    ) {
        Ok(y) => Some(Arc::new(y)),
        Err(e) => {
            eprintln!("no YAMNet ({e}): runs without hearing only");
            None
        }
    }
}

struct Run {
    samples: u64,
    wall: Duration,
    duration_s: f64,
}

fn run(path: &Path, interval_s: f64, access: VideoAccess, yamnet: Option<&Arc<Yamnet>>) -> Run {
    let settings = SampleSettings {
        sampling: Sampling::Every { interval_s },
        span: Duration::from_secs(1),
        analysis_fps: 5.0,
        analysis_width: 320,
        motion_threshold: 25,
    };
    let mut hearing = yamnet.map(|y| Hearing::new(y.clone(), HearingConfig::default()));
    let mut duration_s = 0.0;
    let began = Instant::now();
    let samples = analyze_samples_with(
        path,
        &settings,
        access,
        &RuleClassifier,
        hearing.as_mut(),
        &AtomicBool::new(false),
        |_, total| duration_s = total,
        |_| {},
    )
    .expect("analysis");
    Run {
        samples,
        wall: began.elapsed(),
        duration_s,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let seconds: u32 = args.first().and_then(|s| s.parse().ok()).unwrap_or(120);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = match args.get(1) {
        Some(f) => PathBuf::from(f),
        None => {
            let t = Instant::now();
            let p = make_clip(dir.path(), seconds);
            println!(
                "clip: {} ({:.1} s to make)",
                p.display(),
                t.elapsed().as_secs_f64()
            );
            p
        }
    };
    let yamnet = match std::env::var("CAV_BENCH_HEARING").as_deref() {
        Ok("0") => None,
        _ => yamnet(),
    };
    println!(
        "SEEK_MIN_INTERVAL_S = {SEEK_MIN_INTERVAL_S}; threads: {}",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "{:>10} {:>8} {:>8} {:>8} {:>9} {:>10}",
        "interval", "access", "hearing", "samples", "wall s", "x realtime"
    );
    for interval_s in [1.0, 2.0, 4.0, 6.0, 8.0, 10.0] {
        for access in [VideoAccess::Forward, VideoAccess::Seek] {
            for hearing in [false, true] {
                if hearing && yamnet.is_none() {
                    continue;
                }
                let r = run(
                    &path,
                    interval_s,
                    access,
                    if hearing { yamnet.as_ref() } else { None },
                );
                println!(
                    "{:>10} {:>8} {:>8} {:>8} {:>9.3} {:>10.1}",
                    format!("{interval_s} s"),
                    format!("{access:?}").to_lowercase(),
                    if hearing { "yamnet" } else { "off" },
                    r.samples,
                    r.wall.as_secs_f64(),
                    r.duration_s / r.wall.as_secs_f64(),
                );
            }
        }
    }
}
