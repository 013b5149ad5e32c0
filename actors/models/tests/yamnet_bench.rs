//! Timing of the YAMNet frontend and network (not an assertion). Run in release:
//! `cargo test --release -p cav-models --test yamnet_bench -- --ignored --nocapture`

mod common;

use std::time::{Duration, Instant};

use cav_models::yamnet::{DepthwiseImpl, LogMelFrontend, Patch, PATCH_WINDOW_SAMPLES};
use common::{load_model, read_wav};

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

#[test]
#[ignore = "benchmark; run in release with --ignored --nocapture"]
fn bench_yamnet() {
    let wave = read_wav("speech.wav");
    let window = &wave[..PATCH_WINDOW_SAMPLES];
    let mut fe = LogMelFrontend::new();
    let frontend = median_time(101, || {
        std::hint::black_box(fe.patch_for_window(std::hint::black_box(window)));
    });
    println!(
        "frontend: {:.3} ms per 0.975 s patch (patch_for_window)",
        ms(frontend)
    );

    let mut model = load_model();
    let patch = fe.patch_for_window(window);
    let batch: Vec<Patch> = (0..8).map(|_| patch.clone()).collect();
    for imp in [DepthwiseImpl::Direct, DepthwiseImpl::CandleGroups] {
        model.set_depthwise_impl(imp);
        let runs = if imp == DepthwiseImpl::Direct { 51 } else { 11 };
        let single = median_time(runs, || {
            std::hint::black_box(model.infer(std::slice::from_ref(&patch)).unwrap());
        });
        let batched = median_time(runs, || {
            std::hint::black_box(model.infer(&batch).unwrap());
        });
        println!(
            "network ({imp:?} depthwise): single {:.3} ms/patch, batch of 8 {:.3} ms/patch ({:.3} ms per batch)",
            ms(single),
            ms(batched) / 8.0,
            ms(batched)
        );
    }
    println!(
        "threads: candle uses {} (RAYON_NUM_THREADS or the CPU count)",
        candle_core::utils::get_num_threads()
    );
}
