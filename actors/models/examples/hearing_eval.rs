//! Runs `Hearing` over the dev set and more_claps and prints expected vs found per clip, with
//! precision/recall of clap events and the time per second of audio; then (unless `NOMIX=1`)
//! claps mixed over the real backgrounds of the dev set at +20/+15/+10 dB peak-to-background,
//! with two foregrounds: the Gimme-A-Hand double claps (the dev set's one clap recording) and
//! another person's single claps (`more_claps/millo_single_claps.wav`, held out from tuning).
//!
//! Also prints the engine's clap latency: the time from each clap's onset to the end of the
//! push that returned it (the moment a live source would call `push`); pushes of `CHUNK_MS`
//! (default 100 ms).
//!
//! Then the dev set's impulsive negatives (snaps, 808 clap, glass, woodblock, drums, knocks…)
//! mixed over the same backgrounds: every clap found there is false.
//!
//! `cargo run --release -p cav-models --example hearing_eval [-- FILTER]`; `HOLD=1` for the
//! hold-for-context mode ([`Hearing::set_clap_hold_for_context`]), `TRACE=1` for every onset,
//! `OVER_LOUD=0` for claps confirmed by YAMNet only
//! ([`HearingConfig::claps_over_loud_background`] off).
#[path = "../tests/hearing_common/mod.rs"]
mod hc;

use std::sync::Arc;
use std::time::Instant;

use cav_models::hearing::{EventKind, Hearing, HearingConfig, HearingOutput, SoundEvent};
use cav_models::Yamnet;

/// One clip run through a fresh `Hearing` in 100 ms pushes.
struct Run {
    events: Vec<SoundEvent>,
    /// Onset → end of the push that returned it (s), per clap emitted before `flush`.
    delays: Vec<f64>,
    cpu_s: f64,
    trace: Vec<cav_models::hearing::ClapTrace>,
}

fn run(model: &Arc<Yamnet>, x: &[f32], hold: bool, trace: bool) -> Run {
    let config = HearingConfig {
        claps_over_loud_background: std::env::var("OVER_LOUD").map_or(true, |v| v != "0"),
        ..HearingConfig::default()
    };
    let mut h = Hearing::new(model.clone(), config);
    h.set_trace(trace);
    h.set_clap_hold_for_context(hold);
    let start = Instant::now();
    let mut out = Vec::new();
    let mut delays = Vec::new();
    let chunk = chunk_samples();
    for (i, c) in x.chunks(chunk).enumerate() {
        let t = (i * chunk) as f64 / 16_000.0;
        let got = h.push(t, c);
        let now = t + c.len() as f64 / 16_000.0;
        delays.extend(got.iter().filter_map(|o| match o {
            HearingOutput::Event(e) if e.kind == EventKind::Clap => Some(now - e.onset),
            _ => None,
        }));
        out.extend(got);
    }
    out.extend(h.flush());
    let cpu_s = start.elapsed().as_secs_f64();
    let traces = h.take_trace();
    for tr in traces
        .iter()
        .filter(|_| trace && std::env::var("DUMP").is_err())
    {
        let e = &tr.evidence;
        let f = &e.features;
        println!(
            "  {:7.3} {:?} y{:.2} oth{:.2} typ{:.2} L{:.1} j{:.1} bg{:.1} low{:.2} hi{:.2} c{:.0} fl{:.2} a{:.0} d{:.0} snr{:.1} body{:.1} burst{:.0}",
            tr.t,
            tr.decision,
            e.yamnet_score(),
            e.other_impulse,
            e.context_typing,
            e.level_dbfs,
            e.jump_db,
            e.background_dbfs,
            f.low_share,
            f.high_share,
            f.centroid_hz,
            f.flatness,
            f.attack_ms,
            f.decay_ms,
            f.snr_db,
            f.body_db,
            f.burst_ms
        );
    }
    let events = out
        .into_iter()
        .filter_map(|o| match o {
            HearingOutput::Event(e) => Some(e),
            HearingOutput::Labels { .. } => None,
        })
        .collect();
    Run {
        events,
        delays,
        cpu_s,
        trace: traces,
    }
}

/// Push size: `CHUNK_MS` (default 100 ms, as the live sources; the file source uses 50).
fn chunk_samples() -> usize {
    std::env::var("CHUNK_MS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .map_or(1600, |ms| (ms * 16).max(1))
}

fn clap_times(events: &[SoundEvent]) -> Vec<f64> {
    events
        .iter()
        .filter(|e| e.kind == EventKind::Clap)
        .map(|e| e.onset)
        .collect()
}

fn main() {
    let model = Arc::new(hc::load_model());
    let filter: Option<String> = std::env::args().nth(1);
    let (mut tp, mut fn_, mut fp) = (0, 0, 0);
    let (mut audio_s, mut cpu_s) = (0.0, 0.0);
    let hold = std::env::var("HOLD").is_ok_and(|v| v == "1");
    let trace = std::env::var("TRACE").is_ok();
    let mut delays: Vec<f64> = Vec::new();
    // `MIX=FG:BG:SNR` (file names, dB): that one mixture only, with the trace.
    if let Ok(spec) = std::env::var("MIX") {
        let parts: Vec<&str> = spec.split(':').collect();
        let [fg_name, bg_name, snr] = parts[..] else {
            panic!("MIX=FG:BG:SNR")
        };
        let fg_clip = hc::clip(fg_name);
        let snr: f32 = snr.parse().expect("MIX: SNR in dB");
        let x = hc::over_background(&fg_clip.samples(), bg_name, snr);
        let r = run(&model, &x, hold, true);
        let (errs, extra) = hc::match_times(&fg_clip.claps, &clap_times(&r.events), 0.15);
        println!(
            "expected {:?}\nerrors {errs:?}\nfalse {extra:?}",
            fg_clip.claps
        );
        return;
    }
    if let Ok(path) = std::env::var("DUMP") {
        dump(&model, &path);
        return;
    }
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
        let r = run(&model, &x, hold, trace);
        delays.extend(&r.delays);
        cpu_s += r.cpu_s;
        audio_s += x.len() as f64 / 16000.0;
        let claps = clap_times(&r.events);
        let others: Vec<String> = r
            .events
            .iter()
            .filter(|e| e.kind != EventKind::Clap)
            .map(|e| match e.end {
                Some(end) => format!("{}@{:.2}-{:.2}", e.kind.as_str(), e.onset, end),
                None => format!("{}@{:.2}({:.2})", e.kind.as_str(), e.onset, e.score),
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
        tp as f64 / (tp + fn_).max(1) as f64,
        tp as f64 / (tp + fp).max(1) as f64
    );
    delays.sort_by(f64::total_cmp);
    if !delays.is_empty() {
        println!(
            "clap onset to push returning it ({} claps, {} ms pushes{}): p50 {:.0} ms, p90 {:.0} ms, max {:.0} ms",
            delays.len(),
            chunk_samples() / 16,
            if hold { ", HOLD" } else { "" },
            delays[delays.len() / 2] * 1e3,
            delays[delays.len() * 9 / 10] * 1e3,
            delays[delays.len() - 1] * 1e3
        );
    }
    println!(
        "cost: {:.1} ms per second of audio ({:.1} s audio)",
        cpu_s / audio_s.max(1e-9) * 1000.0,
        audio_s
    );
    if std::env::var("NOMIX").is_ok_and(|v| v == "1") || filter.is_some() {
        return;
    }
    // Mixtures: backgrounds at −30 dBFS RMS, claps scaled to SNR dB peak-to-background.
    let backgrounds = hc::BACKGROUNDS;
    for fg_name in ["clap_gah_double.wav", "more_claps/millo_single_claps.wav"] {
        let fg_clip = hc::clip(fg_name);
        let fg = fg_clip.samples();
        let mut by_snr = Vec::new();
        for snr in [20.0f32, 15.0, 10.0] {
            let (mut found_n, mut total, mut false_n) = (0, 0, 0);
            for bg_name in backgrounds {
                let x = hc::over_background(&fg, bg_name, snr);
                let r = run(&model, &x, hold, trace);
                let (errs, extra) = hc::match_times(&fg_clip.claps, &clap_times(&r.events), 0.15);
                let n = errs.iter().flatten().count();
                println!(
                    "  {fg_name} over {bg_name} +{snr} dB: {n}/{} false {extra:?}",
                    fg_clip.claps.len()
                );
                found_n += n;
                total += fg_clip.claps.len();
                false_n += extra.len();
            }
            by_snr.push(format!("+{snr} dB {found_n}/{total} (false {false_n})"));
        }
        println!("mixtures of {fg_name}: {}", by_snr.join(", "));
    }
    // Impulsive negatives over the same backgrounds: any clap is false.
    let mut by_snr = Vec::new();
    for snr in [20.0f32, 15.0, 10.0] {
        let mut false_n = 0;
        for fg_name in hc::IMPULSIVE_NEGATIVES {
            let fg = hc::clip(fg_name).samples();
            for bg_name in backgrounds {
                let x = hc::over_background(&fg, bg_name, snr);
                let r = run(&model, &x, hold, trace);
                let claps = clap_times(&r.events);
                if !claps.is_empty() {
                    println!("  {fg_name} over {bg_name} +{snr} dB: false claps {claps:?}");
                }
                false_n += claps.len();
            }
        }
        by_snr.push(format!("+{snr} dB {false_n}"));
    }
    println!(
        "false claps in {} impulsive negatives over {} backgrounds: {}",
        hc::IMPULSIVE_NEGATIVES.len(),
        backgrounds.len(),
        by_snr.join(", ")
    );
}

/// `DUMP=FILE`: every judged onset of the dev set, more_claps and the mixtures as CSV, with
/// whether a labelled clap is within 50 ms (for designing the clap decision).
fn dump(model: &Arc<Yamnet>, path: &str) {
    use std::fmt::Write as _;
    let mut csv = String::from("set,clip,t,is_clap,hands,clapping,slap,snap,other,typing,level,jump,bg,low,high,centroid,flatness,attack,decay,snr,bandbg,path,body,burst\n");
    let mut add = |set: &str, name: &str, x: &[f32], claps: &[f64]| {
        let r = run(model, x, false, true);
        for tr in &r.trace {
            let e = &tr.evidence;
            let f = &e.features;
            let is_clap = claps.iter().any(|&c| (c - tr.t).abs() <= 0.05);
            let _ = writeln!(
                csv,
                "{set},{name},{:.4},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
                tr.t,
                u8::from(is_clap),
                e.hands,
                e.clapping,
                e.slap,
                e.finger_snapping,
                e.other_impulse,
                e.context_typing,
                e.level_dbfs,
                e.jump_db,
                e.background_dbfs,
                f.low_share,
                f.high_share,
                f.centroid_hz,
                f.flatness,
                f.attack_ms,
                f.decay_ms,
                f.snr_db,
                e.band_background_dbfs,
                tr.decision.map_or("", |(_, p)| p),
                f.body_db,
                f.burst_ms
            );
        }
        // Claps with no judged onset within 50 ms: never proposed.
        for &c in claps {
            if !r.trace.iter().any(|tr| (c - tr.t).abs() <= 0.05) {
                let _ = writeln!(csv, "{set},{name},{c:.4},2,,,,,,,,,,,,,,,,,,,,");
            }
        }
    };
    for clip in hc::dev_clips().into_iter().chain(hc::more_clips()) {
        add("clip", &clip.name, &clip.samples(), &clip.claps);
    }
    let backgrounds = hc::BACKGROUNDS;
    for fg_name in ["clap_gah_double.wav", "more_claps/millo_single_claps.wav"] {
        let fg_clip = hc::clip(fg_name);
        let fg = fg_clip.samples();
        for snr in [20.0f32, 15.0, 10.0] {
            for bg_name in backgrounds {
                let x = hc::over_background(&fg, bg_name, snr);
                add(
                    &format!("mix{snr}"),
                    &format!("{fg_name}+{bg_name}"),
                    &x,
                    &fg_clip.claps,
                );
            }
        }
    }
    for fg_name in hc::IMPULSIVE_NEGATIVES {
        let fg = hc::clip(fg_name).samples();
        for snr in [20.0f32, 15.0, 10.0] {
            for bg_name in backgrounds {
                let x = hc::over_background(&fg, bg_name, snr);
                add(
                    &format!("neg{snr}"),
                    &format!("{fg_name}+{bg_name}"),
                    &x,
                    &[],
                );
            }
        }
    }
    std::fs::write(path, csv).expect("write the dump");
}
