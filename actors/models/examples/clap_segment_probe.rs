//! Probe (development): YAMNet's Hands/Clapping on an isolated clap segment as a function of how
//! much of the clap after its onset is kept, where it is placed in the 0.975 s window and what
//! fills the rest of the window (digital silence, or white noise at about −65 dBFS). Answers
//! how early a clap can be judged by YAMNet; first prints the two looks the engine ships.
//! Cases: the Gimme-A-Hand claps of `clap_gah_single` and the first five of `clap_gah_seq_1s`,
//! then another person's five claps (`more_claps/millo_single_claps`).
//! `cargo run --release -p cav-models --example clap_segment_probe`
#[path = "../tests/hearing_common/mod.rs"]
mod hc;

use cav_models::hearing::clap;
use cav_models::yamnet::{LogMelFrontend, PATCH_WINDOW_SAMPLES};

fn main() {
    let model = hc::load_model();
    let hands = model.class_index("Hands").expect("Hands");
    let clapping = model.class_index("Clapping").expect("Clapping");
    let mut fe = LogMelFrontend::new();
    let mut cases: Vec<(String, Vec<f32>, usize)> = Vec::new();
    for name in [
        "clap_gah_single.wav",
        "clap_gah_seq_1s.wav",
        "more_claps/millo_single_claps.wav",
    ] {
        let c = hc::clip(name);
        let x = c.samples();
        for &t in c.claps.iter().take(5) {
            cases.push((
                format!("{name}@{t}"),
                x.clone(),
                (t * 16000.0).round() as usize,
            ));
        }
    }
    // The two looks the hearing engine ships (clap::isolated_window, clap::early_window).
    type Look = fn(&[f32], usize) -> Vec<f32>;
    let shipped: [(&str, Look); 2] = [
        ("full look (250 ms, silence)", clap::isolated_window),
        ("early look (200 ms, noise floor)", clap::early_window),
    ];
    for (name, look) in shipped {
        let mut line = format!("{name:<36}:");
        for (_, x, onset) in &cases {
            let p = fe.patch_for_window(&look(x, *onset));
            let out = model.infer(&[p]).expect("infer");
            let s = &out[0].scores;
            line += &format!(" {:.2}/{:.2}", s[hands], s[clapping]);
        }
        println!("{line}");
    }
    println!(
        "cases: {:?}",
        cases.iter().map(|c| c.0.as_str()).collect::<Vec<_>>()
    );
    let lead = 320usize;
    for place in [400usize, 800, 1200, 1600] {
        for fill in ["zeros", "noise-60"] {
            for post_ms in [150usize, 200, 250] {
                let post = post_ms * 16;
                let mut line = format!("place {place:5} fill {fill:8} post {post_ms:3} ms:");
                for (_, x, onset) in &cases {
                    let mut w = vec![0.0f32; PATCH_WINDOW_SAMPLES];
                    if fill == "noise-60" {
                        let mut state = 1u32;
                        for v in &mut w {
                            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                            *v = ((state >> 8) as f32 / (1u32 << 24) as f32 - 0.5) * 0.002;
                        }
                    }
                    let start = onset - lead;
                    let len = lead + post;
                    for i in 0..len {
                        let Some(dst) = w.get_mut(place + i) else {
                            break;
                        };
                        let g = if i < 80 {
                            i as f32 / 80.0
                        } else if i + 80 > len {
                            (len - i) as f32 / 80.0
                        } else {
                            1.0
                        };
                        *dst += x.get(start + i).copied().unwrap_or(0.0) * g;
                    }
                    let p = fe.patch_for_window(&w);
                    let out = model.infer(&[p]).expect("infer");
                    let s = &out[0].scores;
                    line += &format!(" {:.2}/{:.2}", s[hands], s[clapping]);
                }
                println!("{line}");
            }
        }
    }
}
