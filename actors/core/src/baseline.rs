//! The original project's classifier, kept as a baseline for `cav eval --classifier original`.
//!
//! The original's code is not available to us; this is a reconstruction from its description
//! in the project's issue: seven hard-coded thresholds over motion, a peak-normalised loudness
//! and a skin-colour percentage, and a fixed confidence of 0.7. The loudness is normalised by
//! the window's own loud moments (mean level relative to its 90th percentile), which is what
//! peak normalisation does: a quiet room and a loud one read alike. The thresholds are the
//! obvious ones for each class; the point of the baseline is its inputs and its structure,
//! which no threshold choice rescues (see the evaluation in the README).

use crate::classify::{ActivityClass, Classifier, Decision, Driver, Scores};
use crate::window::WindowSummary;

#[derive(Clone, Copy, Debug, Default)]
pub struct OriginalRules;

/// The original printed this confidence whatever it decided.
pub const FIXED_CONFIDENCE: f32 = 0.7;

impl OriginalRules {
    /// Peak-normalised loudness of the window, 0..1.
    fn loudness(w: &WindowSummary) -> f32 {
        w.audio.as_ref().map_or(0.0, |a| {
            10f32
                .powf((a.level_dbfs_mean - a.level_dbfs_p90) / 20.0)
                .clamp(0.0, 1.0)
        })
    }

    fn decide(w: &WindowSummary) -> ActivityClass {
        let motion = w.video.as_ref().map_or(0.0, |v| v.motion_mean);
        let skin = w.video.as_ref().map_or(0.0, |v| v.skin_percent_mean);
        let loud = Self::loudness(w);
        use ActivityClass::*;
        if skin < 1.0 {
            Inactive
        } else if motion < 0.5 && loud < 0.3 {
            Asleep
        } else if motion < 1.0 && loud < 0.5 {
            Reading
        } else if loud > 0.8 && motion < 2.0 {
            InConversation
        } else if loud > 0.6 && motion < 1.5 {
            OnPhone
        } else if motion > 5.0 {
            Busy
        } else {
            AtTable
        }
    }
}

impl Classifier for OriginalRules {
    fn name(&self) -> &'static str {
        "original-rules"
    }

    fn classify(&self, window: &WindowSummary) -> Decision {
        let activity = Self::decide(window);
        let rest = (1.0 - FIXED_CONFIDENCE) / 6.0;
        let scores = Scores::from_evidence(std::array::from_fn(|i| {
            if i == activity.index() {
                FIXED_CONFIDENCE
            } else {
                rest
            }
        }));
        Decision {
            activity,
            confidence: FIXED_CONFIDENCE,
            scores,
            drivers: vec![Driver {
                cue: "peak_normalised_loudness".to_string(),
                feature: "audio.level_dbfs_mean-p90".to_string(),
                value: Some(Self::loudness(window)),
                degree: 1.0,
            }],
            unsmoothed: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Timestamp;
    use crate::window::VideoSummary;

    #[test]
    fn always_says_seventy_percent_and_needs_skin() {
        let w = WindowSummary {
            start: Timestamp(0),
            end: Timestamp(1),
            spans: 1,
            video: Some(VideoSummary {
                spans: 1,
                frames: 5,
                motion_mean: 8.0,
                motion_p90: 8.0,
                motion_max: 8.0,
                brightness_mean: 100.0,
                skin_percent_mean: 0.5,
            }),
            audio: None,
            vision: None,
            sound: None,
            sub_windows: None,
        };
        let d = OriginalRules.classify(&w);
        assert_eq!(d.activity, ActivityClass::Inactive);
        assert_eq!(d.confidence, FIXED_CONFIDENCE);
        let mut busy = w.clone();
        if let Some(v) = busy.video.as_mut() {
            v.skin_percent_mean = 5.0;
        }
        let d = OriginalRules.classify(&busy);
        assert_eq!(d.activity, ActivityClass::Busy);
        assert_eq!(d.confidence, FIXED_CONFIDENCE);
    }
}
