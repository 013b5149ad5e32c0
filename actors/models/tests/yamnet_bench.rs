//! YAMNet in candle against the same network in OpenCV dnn.
//!
//! The ONNX is not committed: `scripts/export-yamnet-onnx.py` writes it from
//! `models/yamnet.safetensors` at test time (Python with the PyPI packages `onnx` and `numpy`:
//! `scripts/setup.sh --test` installs them into `~/.cache/cav-test-venv`).
//!
//! * `onnx_export_runs_in_opencv_dnn_and_matches_the_reference_vectors` (a normal test): the
//!   exported network, run by OpenCV dnn on the reference log-mel patches, gives the reference
//!   embeddings and scores within 1e-4, as candle does. Skipped, with the reason printed, only
//!   when no Python with `onnx` and `numpy` is found.
//! * `bench_yamnet` (ignored; a measurement, not an assertion): time per 0.975 s patch of the
//!   candle frontend, the candle network and the OpenCV dnn network, side by side in one process:
//!   `cargo test --release -p cav-models --test yamnet_bench -- --ignored --nocapture`
//!   (both use candle's thread count: `RAYON_NUM_THREADS=1` for one core each).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use cav_models::yamnet::{DepthwiseImpl, LogMelFrontend, Patch, PATCH_LEN, PATCH_WINDOW_SAMPLES};
use common::{load_model, read_f32, read_wav};
use opencv::core::{Mat, Scalar, Vector, CV_32F};
use opencv::dnn::Net;
use opencv::prelude::*;

/// Median of `runs` timings of `f`, after two warm-up calls.
fn median_time(runs: usize, mut f: impl FnMut()) -> Duration {
    f();
    f();
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    times[runs / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A Python that has `onnx` and `numpy`: `CAV_ONNX_PYTHON`, `CAV_TEST_PYTHON`, the test venv
/// of `scripts/setup.sh --test`, or `python3`; `Err` says what was tried.
fn onnx_python() -> Result<PathBuf, String> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let candidates: Vec<PathBuf> = ["CAV_ONNX_PYTHON", "CAV_TEST_PYTHON"]
        .iter()
        .filter_map(|v| std::env::var_os(v).map(PathBuf::from))
        .chain(home.map(|h| h.join(".cache/cav-test-venv/bin/python")))
        .chain(std::iter::once(PathBuf::from("python3")))
        .collect();
    for python in &candidates {
        let ok = Command::new(python)
            .args(["-c", "import onnx, numpy"])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return Ok(python.clone());
        }
    }
    Err(format!(
        "no Python with the onnx and numpy packages among {candidates:?} (run scripts/setup.sh --test)"
    ))
}

/// Exports YAMNet with a static batch of `batch` into the test's temp folder. `Err`: no
/// suitable Python (the only reason to skip); an export that fails panics.
fn export_onnx(batch: usize) -> Result<PathBuf, String> {
    let python = onnx_python()?;
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("yamnet_b{batch}.onnx"));
    let result = Command::new(&python)
        .arg(repo_root().join("scripts/export-yamnet-onnx.py"))
        .arg("--batch")
        .arg(batch.to_string())
        .arg(&out)
        .output()
        .expect("run the export script");
    assert!(
        result.status.success(),
        "{} scripts/export-yamnet-onnx.py failed: {}",
        python.display(),
        String::from_utf8_lossy(&result.stderr)
    );
    Ok(out)
}

/// YAMNet in OpenCV dnn, for one static batch size.
struct OpenCvYamnet {
    net: Net,
    blob: Mat,
    out_names: Vector<String>,
    batch: usize,
}

impl OpenCvYamnet {
    fn load(path: &Path, batch: usize) -> OpenCvYamnet {
        let path = path.to_str().expect("UTF-8 temp path");
        let mut net = opencv::dnn::read_net_from_onnx(path).expect("OpenCV reads the ONNX");
        net.set_preferable_backend(opencv::dnn::DNN_BACKEND_OPENCV)
            .expect("backend");
        net.set_preferable_target(opencv::dnn::DNN_TARGET_CPU)
            .expect("target");
        let blob = Mat::new_nd_with_default(&[batch as i32, 1, 96, 64], CV_32F, Scalar::all(0.0))
            .expect("input blob");
        // OpenCV names each layer after its node's first output, so the graph's output tensor
        // names are the layers to fetch.
        let out_names = Vector::<String>::from_iter(["scores", "embedding"]);
        OpenCvYamnet {
            net,
            blob,
            out_names,
            batch,
        }
    }

    /// Scores and embeddings (flat, batch-major) of exactly `batch` patches.
    fn infer(&mut self, patches: &[Patch]) -> (Vec<f32>, Vec<f32>) {
        assert_eq!(patches.len(), self.batch);
        let data = self.blob.data_typed_mut::<f32>().expect("blob data");
        for (dst, p) in data.chunks_exact_mut(PATCH_LEN).zip(patches) {
            dst.copy_from_slice(p.as_slice());
        }
        self.net
            .set_input(&self.blob, "", 1.0, Scalar::default())
            .expect("setInput");
        let mut outs = Vector::<Mat>::new();
        self.net
            .forward(&mut outs, &self.out_names)
            .expect("forward");
        let values = |i: usize| -> Vec<f32> {
            let m = outs.get(i).expect("output");
            m.data_typed::<f32>().expect("f32 output").to_vec()
        };
        (values(0), values(1))
    }
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn onnx_export_runs_in_opencv_dnn_and_matches_the_reference_vectors() {
    let path = match export_onnx(1) {
        Ok(p) => p,
        Err(reason) => {
            println!("SKIPPED: {reason}");
            return;
        }
    };
    let mut cv = OpenCvYamnet::load(&path, 1);
    let candle = load_model();
    for clip in ["silence", "sine440", "speech", "clap"] {
        let patches: Vec<Patch> = read_f32(&format!("{clip}.logmel.f32"))
            .chunks_exact(PATCH_LEN)
            .filter_map(|p| Patch::from_vec(p.to_vec()))
            .collect();
        let ref_scores = read_f32(&format!("{clip}.scores.f32"));
        let ref_emb = read_f32(&format!("{clip}.embedding.f32"));
        let (mut scores, mut emb) = (Vec::new(), Vec::new());
        for p in &patches {
            let (s, e) = cv.infer(std::slice::from_ref(p));
            scores.extend(s);
            emb.extend(e);
        }
        let candle_out = candle.infer(&patches).expect("candle");
        let candle_scores: Vec<f32> = candle_out.iter().flat_map(|o| o.scores.clone()).collect();
        let d_scores = max_abs_diff(&scores, &ref_scores);
        let d_emb = max_abs_diff(&emb, &ref_emb);
        let d_candle = max_abs_diff(&scores, &candle_scores);
        println!(
            "{clip}: {} patches; OpenCV dnn vs reference: scores {d_scores:e}, embedding {d_emb:e}; vs candle: scores {d_candle:e}",
            patches.len()
        );
        assert!(d_scores <= 1e-4, "{clip}: scores differ by {d_scores}");
        assert!(d_emb <= 1e-4, "{clip}: embedding differs by {d_emb}");
    }
}

#[test]
#[ignore = "benchmark; run in release with --ignored --nocapture"]
fn bench_yamnet() {
    // The same number of threads for both: candle's (RAYON_NUM_THREADS or the CPU count) for
    // OpenCV too, so `RAYON_NUM_THREADS=1` compares one core against one core.
    let threads = candle_core::utils::get_num_threads();
    opencv::core::set_num_threads(i32::try_from(threads).unwrap_or(1))
        .expect("OpenCV thread count");
    let wave = read_wav("speech.wav");
    let window = &wave[..PATCH_WINDOW_SAMPLES];
    let mut fe = LogMelFrontend::new();
    let frontend = median_time(101, || {
        std::hint::black_box(fe.patch_for_window(std::hint::black_box(window)));
    });
    let patch = fe.patch_for_window(window);
    let batch: Vec<Patch> = (0..8).map(|_| patch.clone()).collect();

    let mut rows = vec![(
        "candle frontend (log-mel, patch_for_window)".to_string(),
        ms(frontend),
        None,
    )];
    let mut model = load_model();
    for imp in [DepthwiseImpl::Direct, DepthwiseImpl::CandleGroups] {
        model.set_depthwise_impl(imp);
        let runs = if imp == DepthwiseImpl::Direct { 51 } else { 11 };
        let single = median_time(runs, || {
            std::hint::black_box(model.infer(std::slice::from_ref(&patch)).expect("infer"));
        });
        let batched = median_time(runs, || {
            std::hint::black_box(model.infer(&batch).expect("infer"));
        });
        rows.push((
            format!("candle network ({imp:?} depthwise)"),
            ms(single),
            Some(ms(batched) / 8.0),
        ));
    }
    match (export_onnx(1), export_onnx(8)) {
        (Ok(p1), Ok(p8)) => {
            let mut cv1 = OpenCvYamnet::load(&p1, 1);
            let mut cv8 = OpenCvYamnet::load(&p8, 8);
            let single = median_time(51, || {
                std::hint::black_box(cv1.infer(std::slice::from_ref(&patch)));
            });
            let batched = median_time(51, || {
                std::hint::black_box(cv8.infer(&batch));
            });
            rows.push((
                "OpenCV dnn network (same ONNX weights)".to_string(),
                ms(single),
                Some(ms(batched) / 8.0),
            ));
        }
        (Err(reason), _) | (_, Err(reason)) => println!("OpenCV dnn not measured: {reason}"),
    }
    println!(
        "{:<46} {:>16} {:>22}",
        "YAMNet, per 0.975 s patch", "single (ms)", "batch of 8 (ms/patch)"
    );
    for (name, single, batched) in rows {
        println!(
            "{name:<46} {single:>16.3} {:>22}",
            batched.map_or("-".to_string(), |b| format!("{b:.3}"))
        );
    }
    println!(
        "threads: candle {threads} (RAYON_NUM_THREADS or the CPU count), OpenCV {}; {}",
        opencv::core::get_num_threads().unwrap_or(-1),
        if cfg!(debug_assertions) {
            "DEBUG build: run with --release for real numbers"
        } else {
            "release build"
        }
    );
}
