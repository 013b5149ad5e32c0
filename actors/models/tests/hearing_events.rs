//! Labels and window-based events of `cav_models::hearing` (speech, phone ring, typing), the
//! rules' thresholds and gaps, gating, chunking and the caller's timeline.

mod hearing_common;

use std::sync::{Arc, OnceLock};

use cav_models::hearing::{
    EventKind, EventRule, Hearing, HearingConfig, HearingOutput, SoundEvent, WINDOW_S,
};
use cav_models::Yamnet;
use hearing_common::{clip, load_model};

fn model() -> Arc<Yamnet> {
    static MODEL: OnceLock<Arc<Yamnet>> = OnceLock::new();
    MODEL.get_or_init(|| Arc::new(load_model())).clone()
}

/// Everything `Hearing` says about `samples` fed in `chunk`-sample pieces, the first at `t0`.
fn run(config: HearingConfig, samples: &[f32], chunk: usize, t0: f64) -> Vec<HearingOutput> {
    let mut h = Hearing::new(model(), config);
    let mut out = Vec::new();
    for (i, c) in samples.chunks(chunk).enumerate() {
        out.extend(h.push(t0 + (i * chunk) as f64 / 16_000.0, c));
    }
    out.extend(h.flush());
    out
}

fn events_of(out: &[HearingOutput], kind: EventKind) -> Vec<SoundEvent> {
    out.iter()
        .filter_map(|o| match o {
            HearingOutput::Event(e) if e.kind == kind => Some(e.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn phone_speech_and_typing_clips_give_their_events() {
    for (name, kind) in [
        ("phone_ring.wav", EventKind::PhoneRing),
        ("speech_allison.wav", EventKind::Speech),
        ("speech_espeak.wav", EventKind::Speech),
        ("speech_tuxpaint_words.wav", EventKind::Speech),
        ("typing_bucklespring.wav", EventKind::Typing),
    ] {
        let out = run(HearingConfig::default(), &clip(name).samples(), 1600, 0.0);
        let ev = events_of(&out, kind);
        println!("{name}: {ev:?}");
        assert!(!ev.is_empty(), "{name}: no {} event", kind.as_str());
        assert!(ev[0].onset < 1.0, "{name}: first event at {}", ev[0].onset);
        // No event of another window-based kind on these clean clips.
        for other in [
            EventKind::PhoneRing,
            EventKind::Speech,
            EventKind::Typing,
            EventKind::Dishes,
            EventKind::Snoring,
            EventKind::Applause,
            EventKind::Clap,
        ] {
            if other != kind {
                let e = events_of(&out, other);
                assert!(e.is_empty(), "{name}: unexpected {e:?}");
            }
        }
    }
}

#[test]
fn thresholds_and_min_gaps_are_honoured() {
    let x = clip("speech_tuxpaint_words.wav").samples();
    let rule = |threshold, min_gap_s| HearingConfig {
        events: vec![EventRule {
            kind: EventKind::Speech,
            threshold,
            min_gap_s,
        }],
        ..HearingConfig::default()
    };
    // Dense: an event at most every 0.5 s.
    let dense = events_of(&run(rule(0.5, 0.5), &x, 1600, 0.0), EventKind::Speech);
    // Sparse: every 3 s.
    let sparse = events_of(&run(rule(0.5, 3.0), &x, 1600, 0.0), EventKind::Speech);
    // Unreachable threshold.
    let none = events_of(&run(rule(1.01, 0.5), &x, 1600, 0.0), EventKind::Speech);
    println!(
        "dense {}, sparse {}, none {}",
        dense.len(),
        sparse.len(),
        none.len()
    );
    for (evs, gap) in [(&dense, 0.5), (&sparse, 3.0)] {
        for pair in evs.windows(2) {
            assert!(pair[1].onset - pair[0].onset >= gap - 1e-9, "{pair:?}");
        }
        assert!(evs.iter().all(|e| e.score >= 0.5));
    }
    assert!(
        dense.len() > sparse.len() && sparse.len() >= 3,
        "{dense:?} {sparse:?}"
    );
    assert!(none.is_empty());

    // Claps: the fast clip's claps are ~0.3 s apart; a 0.5 s gap keeps every other one, and a
    // threshold above every score keeps none.
    let claps = clip("clap_gah_fast.wav").samples();
    let clap_rule = |threshold, min_gap_s| HearingConfig {
        events: vec![EventRule {
            kind: EventKind::Clap,
            threshold,
            min_gap_s,
        }],
        ..HearingConfig::default()
    };
    let all = events_of(
        &run(clap_rule(0.35, 0.15), &claps, 1600, 0.0),
        EventKind::Clap,
    );
    let gapped = events_of(
        &run(clap_rule(0.35, 0.5), &claps, 1600, 0.0),
        EventKind::Clap,
    );
    let strict = events_of(
        &run(clap_rule(1.01, 0.15), &claps, 1600, 0.0),
        EventKind::Clap,
    );
    println!(
        "claps: all {}, gapped {}, strict {}",
        all.len(),
        gapped.len(),
        strict.len()
    );
    assert_eq!(all.len(), 12);
    assert!(gapped.len() >= 5 && gapped.len() <= 7, "{gapped:?}");
    for pair in gapped.windows(2) {
        assert!(pair[1].onset - pair[0].onset >= 0.5, "{pair:?}");
    }
    assert!(strict.is_empty());
}

#[test]
fn labels_every_hop_with_gating_and_the_callers_timeline() {
    let mut x = vec![0.0f32; 32_000]; // 2 s of digital silence
    x.extend(clip("phone_ring.wav").samples());
    let t0 = 1_700_000_000.0;
    let out = run(HearingConfig::default(), &x, 555, t0);
    let labels: Vec<(f64, f32, bool, usize)> = out
        .iter()
        .filter_map(|o| match o {
            HearingOutput::Labels {
                t,
                level_dbfs,
                gated,
                top,
                ..
            } => Some((*t, *level_dbfs, *gated, top.len())),
            HearingOutput::Event(_) => None,
        })
        .collect();
    // One window per 0.24 s hop from the first sample.
    for (i, l) in labels.iter().enumerate() {
        assert!((l.0 - (t0 + i as f64 * 0.24)).abs() < 1e-6, "{i}: {l:?}");
        assert!(l.1.is_finite());
        assert_eq!(l.3, if l.2 { 0 } else { 5 }, "{l:?}");
    }
    let duration = x.len() as f64 / 16_000.0;
    assert!(
        labels.len() as f64 >= (duration - WINDOW_S) / 0.24,
        "{}",
        labels.len()
    );
    // The silent start is gated; windows on the ringing are not.
    assert!(labels[0].2 && labels[0].1 <= -100.0);
    assert!(labels.iter().any(|l| !l.2));
    let ring = events_of(&out, EventKind::PhoneRing);
    assert!(!ring.is_empty());
    assert!(
        ring[0].onset >= t0 + 1.0 && ring[0].onset < t0 + 2.5,
        "{:?}",
        ring[0]
    );
}

#[test]
fn chunk_size_does_not_change_the_events() {
    let x = clip("clap_gah_over_speech.wav").samples();
    let strip = |out: Vec<HearingOutput>| -> Vec<(String, i64)> {
        out.into_iter()
            .filter_map(|o| match o {
                HearingOutput::Event(e) => Some((
                    e.kind.as_str().to_string(),
                    (e.onset * 1000.0).round() as i64,
                )),
                HearingOutput::Labels { .. } => None,
            })
            .collect()
    };
    let a = strip(run(HearingConfig::default(), &x, 160, 0.0));
    let b = strip(run(HearingConfig::default(), &x, 16_000, 0.0));
    println!("{a:?}");
    assert_eq!(a, b);
    assert_eq!(a.iter().filter(|e| e.0 == "clap").count(), 3);
}

#[test]
fn outputs_serialise() {
    let out = run(
        HearingConfig::default(),
        &clip("clap_gah_single.wav").samples(),
        1600,
        0.0,
    );
    let json = serde_json::to_string(&out).unwrap();
    assert!(json.contains("\"kind\":\"clap\""), "{json}");
    assert!(json.contains("\"type\":\"labels\""));
}
