//! A window's features as one fixed-length vector of named numbers: the input of the learned
//! classifier head (`cav train`), and the list a decision's drivers are named from.
//!
//! Every entry is defined for every window: a stream that is missing gives 0 with its
//! `has_*` indicator at 0, so the head learns what absence means instead of reading garbage.
//! The order is part of the head's file format: a head records the names it was trained on
//! and refuses a different list.

use crate::window::WindowSummary;

/// The names, in vector order.
pub const FEATURE_NAMES: [&str; 34] = [
    "has_video",
    "video.motion_mean",
    "video.motion_p90",
    "video.brightness_mean",
    "video.skin_percent_mean",
    "has_vision",
    "vision.presence_fraction",
    "vision.face_fraction",
    "vision.persons_mean",
    "vision.lying_fraction",
    "vision.upright_fraction",
    "vision.hand_near_ear_fraction",
    "has_audio",
    "audio.level_dbfs_mean",
    "audio.level_dbfs_p90",
    "audio.level_dbfs_p10",
    "audio.loud_fraction",
    "audio.speech_fraction",
    "audio.band_high",
    "audio.voice_changes_per_min",
    "has_sound",
    "sound.speech_fraction",
    "sound.mean.snoring",
    "sound.mean.dishes",
    "sound.mean.typing",
    "sound.max.telephone",
    "sound.mean.paper",
    "sound.mean.silence",
    "sound.mean.appliance",
    "sound.mean.music",
    "sound.turns.turns_per_min",
    "sound.turns.mean_turn_s",
    "sound.turns.long_gap_fraction",
    "sub_windows.moving_fraction",
];

/// Number of features.
pub const NUM_FEATURES: usize = FEATURE_NAMES.len();

/// The vector of `w`. Levels are in dBFS shifted by +90 (0 = silence floor) and scaled to
/// tens of dB, motion stays in percent of pixels; the head standardises them anyway, the
/// scaling only keeps them readable.
pub fn feature_vector(w: &WindowSummary) -> [f32; NUM_FEATURES] {
    let mut v = [0f32; NUM_FEATURES];
    let mut i = 0;
    let mut put = |x: f32| {
        v[i] = if x.is_finite() { x } else { 0.0 };
        i += 1;
    };
    let flag = |b: bool| if b { 1.0 } else { 0.0 };
    let db = |x: f32| (x + 90.0) / 10.0;

    let video = w.video.as_ref();
    put(flag(video.is_some()));
    put(video.map_or(0.0, |v| v.motion_mean));
    put(video.map_or(0.0, |v| v.motion_p90));
    put(video.map_or(0.0, |v| v.brightness_mean / 255.0));
    put(video.map_or(0.0, |v| v.skin_percent_mean));

    let vision = w.vision.as_ref();
    put(flag(vision.is_some()));
    put(vision.map_or(0.0, |v| v.presence_fraction));
    put(vision.map_or(0.0, |v| v.face_fraction));
    put(vision.map_or(0.0, |v| v.persons_mean));
    put(vision.map_or(0.0, |v| v.lying_fraction));
    put(vision.map_or(0.0, |v| v.upright_fraction));
    put(vision.map_or(0.0, |v| v.hand_near_ear_fraction));

    let audio = w.audio.as_ref();
    put(flag(audio.is_some()));
    put(audio.map_or(0.0, |a| db(a.level_dbfs_mean)));
    put(audio.map_or(0.0, |a| db(a.level_dbfs_p90)));
    put(audio.map_or(0.0, |a| db(a.level_dbfs_p10)));
    put(audio.map_or(0.0, |a| a.loud_fraction));
    put(audio.map_or(0.0, |a| a.speech_fraction));
    put(audio.map_or(0.0, |a| a.band_high));
    put(audio.map_or(0.0, |a| a.voice_changes_per_min));

    let sound = w.sound.as_ref();
    put(flag(sound.is_some()));
    put(sound.map_or(0.0, |s| s.speech_fraction));
    put(sound.map_or(0.0, |s| s.mean.snoring));
    put(sound.map_or(0.0, |s| s.mean.dishes));
    put(sound.map_or(0.0, |s| s.mean.typing));
    put(sound.map_or(0.0, |s| s.max.telephone));
    put(sound.map_or(0.0, |s| s.mean.paper));
    put(sound.map_or(0.0, |s| s.mean.silence));
    put(sound.map_or(0.0, |s| s.mean.appliance));
    put(sound.map_or(0.0, |s| s.mean.music));
    put(sound.map_or(0.0, |s| s.turns.turns_per_min));
    put(sound.map_or(0.0, |s| s.turns.mean_turn_s));
    put(sound.map_or(0.0, |s| s.turns.long_gap_fraction));

    put(w.sub_windows.as_ref().map_or(0.0, |s| s.moving_fraction));
    debug_assert_eq!(i, NUM_FEATURES);
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Timestamp;

    #[test]
    fn an_empty_window_is_all_zeros_and_names_are_unique() {
        let w = WindowSummary {
            start: Timestamp(0),
            end: Timestamp(1),
            spans: 0,
            video: None,
            audio: None,
            vision: None,
            sound: None,
            sub_windows: None,
        };
        assert!(feature_vector(&w).iter().all(|&x| x == 0.0));
        let mut names = FEATURE_NAMES.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), NUM_FEATURES);
    }
}
