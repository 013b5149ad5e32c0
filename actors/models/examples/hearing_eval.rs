//! Runs `Hearing` over the dev set and more_claps and prints expected vs found per clip, with
//! precision/recall of clap events and the time per second of audio.
//!
//! Also prints the engine's clap latency: the time from each clap's onset to the end of the
//! 100 ms push that returned it (the moment a live source would call `push`).
//!
//! `cargo run --release -p cav-models --example hearing_eval [-- FILTER]`; `HOLD=1` for the
//! hold-for-context mode ([`Hearing::set_clap_hold_for_context`]), `TRACE=1` for every onset.
#[path = "../tests/hearing_common/mod.rs"]
mod hc;

use std::sync::Arc;
use std::time::Instant;

use cav_models::hearing::{EventKind, Hearing, HearingConfig, HearingOutput};

fn main() {
    let model = Arc::new(hc::load_model());
    let filter: Option<String> = std::env::args().nth(1);
    let (mut tp, mut fn_, mut fp) = (0, 0, 0);
    let (mut audio_s, mut cpu_s) = (0.0, 0.0);
    let hold = std::env::var("HOLD").is_ok_and(|v| v == "1");
    let mut delays: Vec<f64> = Vec::new();
    println!(
        "{:<40} {:>9} {:>9} {:>4} {:>9} {:<}",
        "clip", "claps exp", "found", "fp", "max|err|", "other events"
    );
    for clip in hc::dev_clips().into_iter().chain(hc::more_clips()) {
        if let Some(f) = &filter {
            if !clip.name.contains(f.as_str()) {
                continue;
            }
        }
        let x = clip.samples();
        let mut h = Hearing::new(model.clone(), HearingConfig::default());
        let trace = std::env::var("TRACE").is_ok();
        h.set_trace(trace);
        h.set_clap_hold_for_context(hold);
        let start = Instant::now();
        let mut out = Vec::new();
        for (i, c) in x.chunks(1600).enumerate() {
            let got = h.push(i as f64 * 0.1, c);
            let now = i as f64 * 0.1 + c.len() as f64 / 16_000.0;
            delays.extend(got.iter().filter_map(|o| match o {
                HearingOutput::Event(e) if e.kind == EventKind::Clap => Some(now - e.onset),
                _ => None,
            }));
            out.extend(got);
        }
        out.extend(h.flush());
        for tr in h.take_trace() {
            let e = &tr.evidence;
            let f = &e.features;
            println!("  {:7.3} {:?} y{:.2} oth{:.2} typ{:.2} L{:.1} j{:.1} bg{:.1} low{:.2} hi{:.2} c{:.0} fl{:.2} a{:.0}", tr.t, tr.decision, e.yamnet_score(), e.other_impulse, e.context_typing, e.level_dbfs, e.jump_db, e.background_dbfs, f.low_share, f.high_share, f.centroid_hz, f.flatness, f.attack_ms);
        }
        cpu_s += start.elapsed().as_secs_f64();
        audio_s += x.len() as f64 / 16000.0;
        let claps: Vec<f64> = out
            .iter()
            .filter_map(|o| match o {
                HearingOutput::Event(e) if e.kind == EventKind::Clap => Some(e.onset),
                _ => None,
            })
            .collect();
        let others: Vec<String> = out
            .iter()
            .filter_map(|o| match o {
                HearingOutput::Event(e) if e.kind != EventKind::Clap => Some(match e.end {
                    Some(end) => format!("{}@{:.2}-{:.2}", e.kind.as_str(), e.onset, end),
                    None => format!("{}@{:.2}({:.2})", e.kind.as_str(), e.onset, e.score),
                }),
                _ => None,
            })
            .collect();
        let (errs, extra) = hc::match_times(&clip.claps, &claps, 0.15);
        let found = errs.iter().filter(|e| e.is_some()).count();
        let max_err = errs.iter().flatten().fold(0.0f64, |m, e| m.max(e.abs()));
        if clip.label != "clapping" {
            tp += found;
            fn_ += clip.claps.len() - found;
            fp += extra.len();
        }
        println!(
            "{:<40} {:>9} {:>9} {:>4} {:>8.0}ms {} {}",
            clip.name,
            clip.claps.len(),
            found,
            extra.len(),
            max_err * 1000.0,
            others.join(" "),
            if extra.is_empty() {
                String::new()
            } else {
                format!("FP at {:?}", extra)
            }
        );
    }
    println!(
        "claps (excluding group clapping): tp {tp} fn {fn_} fp {fp}; recall {:.3} precision {:.3}",
        tp as f64 / (tp + fn_) as f64,
        tp as f64 / (tp + fp).max(1) as f64
    );
    delays.sort_by(f64::total_cmp);
    if !delays.is_empty() {
        println!(
            "clap onset to push returning it ({} claps, 100 ms pushes{}): p50 {:.0} ms, p90 {:.0} ms, max {:.0} ms",
            delays.len(),
            if hold { ", HOLD" } else { "" },
            delays[delays.len() / 2] * 1e3,
            delays[delays.len() * 9 / 10] * 1e3,
            delays[delays.len() - 1] * 1e3
        );
    }
    println!(
        "cost: {:.1} ms per second of audio ({:.1} s audio)",
        cpu_s / audio_s * 1000.0,
        audio_s
    );
}
