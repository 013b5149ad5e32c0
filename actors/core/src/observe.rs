//! What the models saw and heard, as timed observations the window summary folds in.
//!
//! The vision stage (BlazeFace/BlazePose, 1–2 frames a second) and the hearing stage (YAMNet,
//! one 0.975 s window every hop) run beside the span pipeline, at their own pace. They send
//! their readings here as [`VisionObservation`]s and [`SoundObservation`]s stamped with the
//! capture time of what they analysed; the window accumulator keeps those that fall inside each
//! window. This module only holds the plain data and its reductions ([`VisionSummary`],
//! [`SoundSummary`] with turn-taking); the models live in `cav-models`.

use serde::{Deserialize, Serialize};

use crate::stats;
use crate::time::Timestamp;

/// One analysed camera frame.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VisionObservation {
    pub t: Timestamp,
    pub faces: u32,
    pub persons: u32,
    /// Whether the most confident person lies (body axis near horizontal); `None` without one.
    pub lying: Option<bool>,
    /// A wrist near an ear of that person (a phone held to the ear), when landmarks ran.
    pub hand_near_ear: Option<bool>,
}

/// The scores of the YAMNet class groups the activity classifier reads, each the highest score
/// among the group's classes in one window (see `cav_models::hearing::scene` for the classes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SceneScores {
    pub speech: f32,
    pub snoring: f32,
    pub dishes: f32,
    pub typing: f32,
    pub telephone: f32,
    pub paper: f32,
    pub silence: f32,
    pub appliance: f32,
    pub music: f32,
}

impl SceneScores {
    /// The group names, in the order of [`SceneScores::values`].
    pub const NAMES: [&'static str; 9] = [
        "speech",
        "snoring",
        "dishes",
        "typing",
        "telephone",
        "paper",
        "silence",
        "appliance",
        "music",
    ];

    pub fn values(&self) -> [f32; 9] {
        [
            self.speech,
            self.snoring,
            self.dishes,
            self.typing,
            self.telephone,
            self.paper,
            self.silence,
            self.appliance,
            self.music,
        ]
    }

    fn from_values(v: [f32; 9]) -> Self {
        Self {
            speech: v[0],
            snoring: v[1],
            dishes: v[2],
            typing: v[3],
            telephone: v[4],
            paper: v[5],
            silence: v[6],
            appliance: v[7],
            music: v[8],
        }
    }
}

/// One hearing window (0.975 s starting at `t`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SoundObservation {
    pub t: Timestamp,
    pub level_dbfs: f32,
    /// `None` when the window was under the level gate and YAMNet did not run: it was quiet.
    pub scene: Option<SceneScores>,
}

/// What the person detector found over a window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VisionSummary {
    /// Analysed frames.
    pub frames: u32,
    /// Share of frames with a person (pose) or a face, 0..1.
    pub presence_fraction: f32,
    pub face_fraction: f32,
    pub persons_mean: f32,
    pub persons_max: u32,
    /// Among frames with a person: share lying, share upright.
    pub lying_fraction: f32,
    pub upright_fraction: f32,
    /// Among frames with a person: share with a hand at an ear.
    pub hand_near_ear_fraction: f32,
}

/// How speech alternates with silence over a window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TurnTaking {
    /// Speech turns (runs of consecutive speech windows).
    pub turns: u32,
    pub turns_per_min: f32,
    pub mean_turn_s: f32,
    /// Mean silence between turns, s (0 with fewer than two turns).
    pub mean_gap_s: f32,
    /// Share of the gaps between turns that last at least [`LISTEN_GAP_S`]: the pauses of a
    /// phone call, while the other side talks.
    pub long_gap_fraction: f32,
}

/// What YAMNet heard over a window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SoundSummary {
    /// Hearing windows (including gated ones).
    pub windows: u32,
    /// Share of windows under the level gate.
    pub gated_fraction: f32,
    /// Group means over all windows (a gated window counts as silence).
    pub mean: SceneScores,
    /// Group maxima.
    pub max: SceneScores,
    /// Share of windows whose speech score reaches [`SPEECH_ON`].
    pub speech_fraction: f32,
    pub turns: TurnTaking,
}

/// A hearing window counts as speech from this score.
pub const SPEECH_ON: f32 = 0.5;
/// A gap between turns at least this long is a listening pause, s.
pub const LISTEN_GAP_S: f64 = 2.0;
/// Length of a YAMNet window, s.
const WINDOW_S: f64 = 0.975;

pub fn summarize_vision(obs: &[VisionObservation]) -> Option<VisionSummary> {
    if obs.is_empty() {
        return None;
    }
    let n = obs.len() as f32;
    let with_person: Vec<_> = obs.iter().filter(|o| o.persons > 0).collect();
    let present = obs.iter().filter(|o| o.persons > 0 || o.faces > 0).count();
    let share = |f: &dyn Fn(&VisionObservation) -> bool| {
        if with_person.is_empty() {
            0.0
        } else {
            with_person.iter().filter(|o| f(o)).count() as f32 / with_person.len() as f32
        }
    };
    Some(VisionSummary {
        frames: obs.len() as u32,
        presence_fraction: present as f32 / n,
        face_fraction: obs.iter().filter(|o| o.faces > 0).count() as f32 / n,
        persons_mean: obs.iter().map(|o| o.persons as f32).sum::<f32>() / n,
        persons_max: obs.iter().map(|o| o.persons).max().unwrap_or(0),
        lying_fraction: share(&|o| o.lying == Some(true)),
        upright_fraction: share(&|o| o.lying == Some(false)),
        hand_near_ear_fraction: share(&|o| o.hand_near_ear == Some(true)),
    })
}

pub fn summarize_sound(obs: &[SoundObservation]) -> Option<SoundSummary> {
    if obs.is_empty() {
        return None;
    }
    let n = obs.len() as f32;
    let quiet = SceneScores {
        silence: 1.0,
        ..SceneScores::default()
    };
    let scenes: Vec<SceneScores> = obs.iter().map(|o| o.scene.unwrap_or(quiet)).collect();
    let mut sum = [0f32; 9];
    let mut max = [0f32; 9];
    for s in &scenes {
        for (i, v) in s.values().into_iter().enumerate() {
            sum[i] += v;
            max[i] = max[i].max(v);
        }
    }
    Some(SoundSummary {
        windows: obs.len() as u32,
        gated_fraction: obs.iter().filter(|o| o.scene.is_none()).count() as f32 / n,
        mean: SceneScores::from_values(sum.map(|s| s / n)),
        max: SceneScores::from_values(max),
        speech_fraction: scenes.iter().filter(|s| s.speech >= SPEECH_ON).count() as f32 / n,
        turns: turn_taking(obs),
    })
}

/// A speech turn, in estimated real times (see [`turn_taking`]).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Turn {
    start: f64,
    end: f64,
}

/// Speech turns and the gaps between them, from the hop-by-hop speech scores. `obs` must be in
/// time order.
///
/// A YAMNet window hears speech anywhere in its 0.975 s, so runs of speech windows overstate
/// turns: the first speech window starts about a window length (less a hop) before the voice,
/// and the last ends a window length after it. A turn is therefore taken to run from its first
/// speech window's start plus `window - hop` to its last one's start plus `hop`, which makes
/// the gaps between turns close to the real silences. A silence shorter than a window leaves
/// no speech-free window and cannot be seen at all, so quick exchanges merge into one turn
/// (the window summary counts changes of voice pitch for that reason).
pub fn turn_taking(obs: &[SoundObservation]) -> TurnTaking {
    let hop = typical_hop(obs);
    let mut turns: Vec<Turn> = Vec::new();
    let mut last_speech: Option<f64> = None;
    for o in obs {
        let t = o.t.secs_f64();
        if !o.scene.is_some_and(|s| s.speech >= SPEECH_ON) {
            continue;
        }
        match (turns.last_mut(), last_speech) {
            // The previous window was speech too: the same turn.
            (Some(turn), Some(prev)) if t - prev <= 1.5 * hop => turn.end = t + hop,
            _ => turns.push(Turn {
                start: t + (WINDOW_S - hop).max(0.0),
                end: t + hop,
            }),
        }
        last_speech = Some(t);
    }
    let span_s = match (obs.first(), obs.last()) {
        (Some(a), Some(b)) => (b.t.secs_f64() - a.t.secs_f64() + WINDOW_S).max(WINDOW_S),
        _ => WINDOW_S,
    };
    let minutes = (span_s / 60.0) as f32;
    let gaps: Vec<f32> = turns
        .windows(2)
        .map(|w| (w[1].start - w[0].end).max(0.0) as f32)
        .collect();
    let lengths: Vec<f32> = turns
        .iter()
        .map(|t| (t.end - t.start).max(hop) as f32)
        .collect();
    TurnTaking {
        turns: turns.len() as u32,
        turns_per_min: turns.len() as f32 / minutes,
        mean_turn_s: stats::mean(&lengths).unwrap_or(0.0),
        mean_gap_s: stats::mean(&gaps).unwrap_or(0.0),
        long_gap_fraction: if gaps.is_empty() {
            0.0
        } else {
            gaps.iter()
                .filter(|&&g| f64::from(g) >= LISTEN_GAP_S)
                .count() as f32
                / gaps.len() as f32
        },
    }
}

/// The spacing of the hearing windows: the median step between observations (0.24 s when
/// there are too few to tell).
fn typical_hop(obs: &[SoundObservation]) -> f64 {
    let steps: Vec<f32> = obs
        .windows(2)
        .map(|w| (w[1].t.secs_f64() - w[0].t.secs_f64()) as f32)
        .filter(|&d| d > 0.0)
        .collect();
    stats::quantile(&steps, 0.5).map_or(0.24, f64::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hop(i: i64, speech: f32) -> SoundObservation {
        SoundObservation {
            t: Timestamp(i * 240_000),
            level_dbfs: -30.0,
            scene: Some(SceneScores {
                speech,
                ..SceneScores::default()
            }),
        }
    }

    #[test]
    fn one_sided_call_has_long_gaps_and_no_voice_changes() {
        // 60 s: 3 s of one male voice, then 4 s of silence, repeated.
        let obs: Vec<_> = (0..250)
            .map(|i| {
                let t = i as f64 * 0.24;
                let talking = t % 7.0 < 3.0;
                hop(i, if talking { 0.9 } else { 0.0 })
            })
            .collect();
        let tt = turn_taking(&obs);
        assert!((8..=10).contains(&tt.turns), "{tt:?}");
        // Windows see 3 s of speech as 13 windows; the estimate takes the overlap back off.
        assert!((2.0..3.5).contains(&tt.mean_turn_s), "{tt:?}");
        assert!((3.0..5.0).contains(&tt.mean_gap_s), "{tt:?}");
        assert_eq!(tt.long_gap_fraction, 1.0, "{tt:?}");
    }

    #[test]
    fn quick_turns_have_short_gaps() {
        // Turns of 10 windows, one speech-free window between (a real gap of about a second).
        let obs: Vec<_> = (0..250)
            .map(|i| hop(i, if i % 11 < 10 { 0.8 } else { 0.1 }))
            .collect();
        let tt = turn_taking(&obs);
        assert!(tt.turns >= 20, "{tt:?}");
        assert!(tt.mean_gap_s < 1.5, "{tt:?}");
        assert_eq!(tt.long_gap_fraction, 0.0, "{tt:?}");
        // The same talk with no gap at all is one turn.
        let merged: Vec<_> = (0..250).map(|i| hop(i, 0.8)).collect();
        assert_eq!(turn_taking(&merged).turns, 1);
    }

    #[test]
    fn gated_windows_count_as_silence() {
        let obs = vec![
            SoundObservation {
                t: Timestamp(0),
                level_dbfs: -70.0,
                scene: None,
            },
            hop(1, 0.0),
        ];
        let s = summarize_sound(&obs).expect("summary");
        assert_eq!(s.gated_fraction, 0.5);
        assert_eq!(s.mean.silence, 0.5);
        assert_eq!(s.speech_fraction, 0.0);
        assert_eq!(s.turns.turns, 0);
    }

    #[test]
    fn vision_fractions_are_over_frames_with_a_person() {
        let o = |persons, faces, lying| VisionObservation {
            t: Timestamp(0),
            faces,
            persons,
            lying,
            hand_near_ear: None,
        };
        let s = summarize_vision(&[
            o(1, 0, Some(true)),
            o(1, 1, Some(true)),
            o(2, 1, Some(false)),
            o(0, 0, None),
        ])
        .expect("summary");
        assert_eq!(s.frames, 4);
        assert_eq!(s.presence_fraction, 0.75);
        assert_eq!(s.face_fraction, 0.5);
        assert_eq!(s.persons_max, 2);
        assert!((s.lying_fraction - 2.0 / 3.0).abs() < 1e-6);
        assert!((s.upright_fraction - 1.0 / 3.0).abs() < 1e-6);
        assert!(summarize_vision(&[]).is_none());
    }
}
