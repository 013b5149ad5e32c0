//! Clap and applause events of `cav_models::hearing` on the audio dev set in
//! `tests/data/audio/` (see its README): claps found at their onsets, hard negatives silent,
//! claps over real backgrounds, other people's claps, applause spans.

mod hearing_common;

use std::sync::{Arc, OnceLock};

use cav_models::hearing::{EventKind, Hearing, HearingConfig, HearingOutput, SoundEvent};
use cav_models::Yamnet;
use hearing_common::{
    clip, dev_clips, load_model, match_times, more_clips, over_background, BACKGROUNDS,
    IMPULSIVE_NEGATIVES,
};

/// Onset tolerance required by the brief (s); the measured errors are ≤ 20 ms.
const TOL: f64 = 0.15;

fn model() -> Arc<Yamnet> {
    static MODEL: OnceLock<Arc<Yamnet>> = OnceLock::new();
    MODEL.get_or_init(|| Arc::new(load_model())).clone()
}

/// All events of a clip fed in 100 ms chunks, as a live source would.
fn events(samples: &[f32]) -> Vec<SoundEvent> {
    events_with(samples, HearingConfig::default())
}

fn events_with(samples: &[f32], config: HearingConfig) -> Vec<SoundEvent> {
    let mut h = Hearing::new(model(), config);
    let mut out = Vec::new();
    for (i, chunk) in samples.chunks(1600).enumerate() {
        out.extend(h.push(100.0 + i as f64 * 0.1, chunk));
    }
    out.extend(h.flush());
    out.into_iter()
        .filter_map(|o| match o {
            HearingOutput::Event(e) => Some(SoundEvent {
                // Back to the clip's own timeline.
                onset: e.onset - 100.0,
                end: e.end.map(|t| t - 100.0),
                ..e
            }),
            HearingOutput::Labels { .. } => None,
        })
        .collect()
}

fn clap_times(events: &[SoundEvent]) -> Vec<f64> {
    events
        .iter()
        .filter(|e| e.kind == EventKind::Clap)
        .map(|e| e.onset)
        .collect()
}

/// Claps the detector is known to miss, with the reason (asserted as missed too, so an
/// improvement shows up as a failing test to update).
const KNOWN_MISSES: [(&str, f64, &str); 7] = [
    (
        "clap_gah_room_far.wav",
        1.0,
        "far reverberant claps: YAMNet Hands ≤ 0.12 on the isolated clap, quiet room",
    ),
    ("clap_gah_room_far.wav", 3.0, "far reverberant clap"),
    ("clap_gah_room_far.wav", 3.4, "far reverberant clap"),
    ("clap_gah_room_far.wav", 6.0, "far reverberant clap"),
    (
        "clap_gah_over_vacuum.wav",
        3.0,
        "softest clap over the vacuum: only +7 dB over the vacuum in the >1 kHz band, below \
         the 10 dB onset jump",
    ),
    (
        "more_claps/millo_single_claps.wav",
        0.5,
        "YAMNet Hands 0.02 on this clap even alone",
    ),
    (
        "more_claps/millo_single_claps.wav",
        1.5,
        "YAMNet Hands 0.09 on this clap even alone",
    ),
];

fn is_known_miss(name: &str, t: f64) -> bool {
    KNOWN_MISSES
        .iter()
        .any(|&(n, k, _)| n == name && (k - t).abs() < 1e-6)
}

#[test]
fn dev_claps_found_at_their_onsets_and_hard_negatives_silent() {
    let (mut tp, mut fn_, mut fp) = (0usize, 0usize, 0usize);
    let mut failures = Vec::new();
    println!(
        "{:<32} {:>5} {:>5} {:>3} {:>8}",
        "clip", "claps", "found", "fp", "max|err|"
    );
    for c in dev_clips() {
        let ev = events(&c.samples());
        let found = clap_times(&ev);
        let (errors, extra) = match_times(&c.claps, &found, TOL);
        let n_found = errors.iter().flatten().count();
        let max_err = errors.iter().flatten().fold(0.0f64, |m, e| m.max(e.abs()));
        println!(
            "{:<32} {:>5} {:>5} {:>3} {:>6.0}ms",
            c.name,
            c.claps.len(),
            n_found,
            extra.len(),
            max_err * 1e3
        );
        tp += n_found;
        fn_ += c.claps.len() - n_found;
        fp += extra.len();
        for (&t, e) in c.claps.iter().zip(&errors) {
            match (e.is_some(), is_known_miss(&c.name, t)) {
                (false, false) => failures.push(format!("{}: clap at {t} missed", c.name)),
                (true, true) => failures.push(format!(
                    "{}: clap at {t} is now found; remove it from KNOWN_MISSES",
                    c.name
                )),
                _ => {}
            }
        }
        if !extra.is_empty() {
            failures.push(format!(
                "{} ({}): clap events at {extra:?}",
                c.name, c.label
            ));
        }
        if c.label != "clap" {
            assert!(c.claps.is_empty());
        }
    }
    println!(
        "dev set: {tp} of {} claps found, {fp} false; recall {:.3}, precision {:.3}",
        tp + fn_,
        tp as f64 / (tp + fn_) as f64,
        tp as f64 / (tp + fp).max(1) as f64
    );
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Claps of `fg` mixed over each background at `snr_db` (peak-to-background; backgrounds looped
/// at −30 dBFS RMS): returns the claps found per background, and fails on any false clap.
fn mixture_counts(fg: &str, snr_db: f32, failures: &mut Vec<String>) -> Vec<usize> {
    let claps = clip(fg);
    let x_fg = claps.samples();
    BACKGROUNDS
        .iter()
        .map(|bg_name| {
            let x = over_background(&x_fg, bg_name, snr_db);
            let found = clap_times(&events(&x));
            let (errors, extra) = match_times(&claps.claps, &found, TOL);
            let n = errors.iter().flatten().count();
            println!(
                "{fg} over {bg_name} at +{snr_db} dB: {n}/{} found, false {extra:?}, errors {:?}",
                claps.claps.len(),
                errors
                    .iter()
                    .map(|e| e.map(|v| (v * 1e3).round()))
                    .collect::<Vec<_>>()
            );
            if !extra.is_empty() {
                failures.push(format!("{fg} over {bg_name} +{snr_db} dB: false {extra:?}"));
            }
            n
        })
        .collect()
}

#[test]
fn claps_over_real_backgrounds_are_found() {
    // Foreground: the three double claps (6 claps, 0.30–0.45 s apart) of the dev set. The
    // expected counts (per background, in the order of BACKGROUNDS) are what the detector
    // achieves today, measured with `examples/hearing_eval.rs`: a regression guard, not a
    // target. Claps at +10 dB over the vacuum, washing machine and kettle, and claps over dense
    // typing, are still missed (see `hearing::clap`). No mixture may give a false clap.
    let mut failures = Vec::new();
    let mut totals = Vec::new();
    for (snr_db, min_found) in [
        (20.0, [5, 4, 6, 1, 4, 6, 3]),
        (15.0, [4, 4, 2, 0, 1, 4, 1]),
        (10.0, [2, 4, 2, 0, 0, 0, 0]),
    ] {
        let found = mixture_counts("clap_gah_double.wav", snr_db, &mut failures);
        for ((bg, &n), &min) in BACKGROUNDS.iter().zip(&found).zip(&min_found) {
            if n < min {
                failures.push(format!("{bg} +{snr_db} dB: {n} found, need {min}"));
            }
        }
        totals.push(format!("+{snr_db} dB {}/42", found.iter().sum::<usize>()));
    }
    println!("mixtures: {}", totals.join(", "));
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn claps_over_a_loud_background_can_be_left_to_yamnet_alone() {
    // Over the washing machine at +20 dB the acoustic-only path finds the claps YAMNet cannot
    // hear (6 of 6 today); with `claps_over_loud_background` off only YAMNet-confirmed claps
    // remain (none here), and what is found is still at a clap.
    let fg = clip("clap_gah_double.wav");
    let x = over_background(&fg.samples(), "washing_machine.wav", 20.0);
    let count = |over_loud_background: bool| {
        let config = HearingConfig {
            claps_over_loud_background: over_loud_background,
            ..HearingConfig::default()
        };
        let found = clap_times(&events_with(&x, config));
        let (errors, extra) = match_times(&fg.claps, &found, TOL);
        assert!(extra.is_empty(), "false claps {extra:?}");
        errors.iter().flatten().count()
    };
    let (on, off) = (count(true), count(false));
    println!(
        "claps over the washing machine at +20 dB: {on} with the acoustic path, {off} without"
    );
    assert!(on >= 5, "{on}");
    assert!(off < on, "off {off}, on {on}");
}

#[test]
fn impulsive_negatives_over_real_backgrounds_give_few_false_claps() {
    // KNOWN PROBLEM, guarded against getting worse: each impulsive negative over each
    // background at +15 dB peak-to-background (as the claps above) should give no clap. Today
    // 3 false claps come out of these 91 mixtures (hearing_eval: +20 dB 4, +10 dB 2; before
    // the time-shape and flatness tests 50 / 42 / 29): key presses of the typing background
    // once a louder foreground hides the typing from YAMNet's windows, and at +20 dB a hammer
    // knock over speech. The target is 0; lower the ceiling when it improves.
    const CEILING: usize = 3;
    let mut total = 0;
    for fg in IMPULSIVE_NEGATIVES {
        let x_fg = clip(fg).samples();
        for bg_name in BACKGROUNDS {
            let x = over_background(&x_fg, bg_name, 15.0);
            let found = clap_times(&events(&x));
            if !found.is_empty() {
                println!("{fg} over {bg_name} +15 dB: false claps {found:?}");
            }
            total += found.len();
        }
    }
    println!("false claps in negatives over backgrounds at +15 dB: {total} (ceiling {CEILING})");
    assert!(total <= CEILING, "{total} false claps, ceiling {CEILING}");
}

#[test]
fn another_persons_claps_over_real_backgrounds() {
    // Held out: these claps (another person, another recording) were not used to tune the
    // detector. At +20 dB peak-to-background most are still missed — the acoustic-only path's
    // spectral tests were tuned on the one Gimme-A-Hand clap — so this guards what is found
    // today (4 of 35) and that nothing false is.
    let mut failures = Vec::new();
    let found = mixture_counts("more_claps/millo_single_claps.wav", 20.0, &mut failures);
    let min_found = [0, 3, 0, 0, 0, 0, 1];
    for ((bg, &n), &min) in BACKGROUNDS.iter().zip(&found).zip(&min_found) {
        if n < min {
            failures.push(format!("{bg} +20 dB: {n} found, need {min}"));
        }
    }
    println!(
        "held-out mixtures at +20 dB: {}/35",
        found.iter().sum::<usize>()
    );
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn another_persons_single_claps_are_found() {
    let c = clip("more_claps/millo_single_claps.wav");
    let ev = events(&c.samples());
    let found = clap_times(&ev);
    let (errors, extra) = match_times(&c.claps, &found, TOL);
    println!("millo: expected {:?}, found {found:?}", c.claps);
    assert!(extra.is_empty(), "false claps {extra:?}");
    for (&t, e) in c.claps.iter().zip(&errors) {
        assert_eq!(
            e.is_some(),
            !is_known_miss(&c.name, t),
            "clap at {t}: found {e:?}"
        );
    }
}

#[test]
fn applause_gives_one_event_per_burst_covering_its_span_and_no_clap_storm() {
    for c in more_clips() {
        if c.label == "clap" {
            continue;
        }
        let ev = events(&c.samples());
        let applause: Vec<&SoundEvent> = ev
            .iter()
            .filter(|e| e.kind == EventKind::Applause)
            .collect();
        let claps = clap_times(&ev);
        // Group clapping (supertux) is applause too; its span is its first to last burst.
        let (start, end) = c.applause.unwrap_or_else(|| {
            (
                c.claps.first().copied().unwrap_or(0.0),
                c.claps.last().copied().unwrap_or(0.0),
            )
        });
        println!(
            "{}: expected applause {start:.2}–{end:.2}; events {:?}; claps {claps:?}",
            c.name,
            applause
                .iter()
                .map(|e| (e.onset, e.end, e.score))
                .collect::<Vec<_>>()
        );
        assert_eq!(applause.len(), 1, "{}: {applause:?}", c.name);
        let e = applause[0];
        let e_end = e.end.expect("applause has an end");
        assert!(
            (e.onset - start).abs() <= 0.5,
            "{}: onset {}",
            c.name,
            e.onset
        );
        assert!((e_end - end).abs() <= 0.5, "{}: end {e_end}", c.name);
        // Claps inside applause are the applause; at most a stray one outside it.
        assert!(claps.len() <= 1, "{}: clap storm {claps:?}", c.name);
    }
}

#[test]
fn claps_are_emitted_as_soon_as_their_evidence_is_in() {
    // Fed in 10 ms pushes, so the push granularity hardly adds: each clap must come out of the
    // push that brings the 200 ms after its onset (the early look; these claps all pass it), not
    // at the full look's 250 ms nor after the following windows. The hold-for-context mode
    // finds the same claps, ~2 s later.
    let c = clip("clap_gah_seq_1s.wav");
    let x = c.samples();
    let mut delays = Vec::new();
    let mut found = Vec::new();
    for hold in [false, true] {
        let mut h = Hearing::new(model(), HearingConfig::default());
        h.set_clap_hold_for_context(hold);
        let mut d = Vec::new();
        let mut onsets = Vec::new();
        for (i, chunk) in x.chunks(160).enumerate() {
            let now = (i * 160 + chunk.len()) as f64 / 16_000.0;
            for o in h.push(i as f64 * 0.01, chunk) {
                if let HearingOutput::Event(e) = o {
                    if e.kind == EventKind::Clap {
                        d.push(now - e.onset);
                        onsets.push(e.onset);
                    }
                }
            }
        }
        for o in h.flush() {
            if let HearingOutput::Event(e) = o {
                if e.kind == EventKind::Clap {
                    d.push(f64::INFINITY);
                    onsets.push(e.onset);
                }
            }
        }
        println!("hold {hold}: onsets {onsets:?}, delays {d:?}");
        delays.push(d);
        found.push(onsets);
    }
    assert_eq!(found[0].len(), c.claps.len(), "{:?}", found[0]);
    assert_eq!(found[0], found[1]);
    for &d in &delays[0] {
        assert!((0.2..=0.215).contains(&d), "early delays {:?}", delays[0]);
    }
    assert!(
        delays[1].iter().all(|&d| d > 1.0),
        "held delays {:?}",
        delays[1]
    );
}
