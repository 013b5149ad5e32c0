//! Hysteresis on the stream of decisions, so the history does not flicker between classes.
//!
//! A new class replaces the current one only with evidence: either it wins
//! `min_windows` windows in a row, or it wins one window by at least `margin` over the current
//! class's score in that same window. Until then the current class stays, and the decision
//! records what the classifier alone would have said (`Decision::unsmoothed`).

use crate::classify::{ActivityClass, Decision};

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SmoothingSettings {
    /// Consecutive windows a new class must win; 1 turns smoothing off.
    pub min_windows: u32,
    /// Score lead (0..1) that switches at once.
    pub margin: f32,
}

impl Default for SmoothingSettings {
    fn default() -> Self {
        Self {
            min_windows: 2,
            margin: 0.25,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Smoother {
    settings: SmoothingSettings,
    current: Option<ActivityClass>,
    /// A challenger and the windows it has won in a row.
    pending: Option<(ActivityClass, u32)>,
}

impl Smoother {
    pub fn new(settings: SmoothingSettings) -> Self {
        Self {
            settings,
            current: None,
            pending: None,
        }
    }

    /// Forgets the history (a gap in the data: the next window starts afresh).
    pub fn reset(&mut self) {
        self.current = None;
        self.pending = None;
    }

    /// The decision to publish for `raw`.
    pub fn apply(&mut self, raw: Decision) -> Decision {
        let winner = raw.activity;
        let Some(current) = self.current else {
            self.current = Some(winner);
            return raw;
        };
        if winner == current {
            self.pending = None;
            return raw;
        }
        let lead = raw.scores.get(winner) - raw.scores.get(current);
        let streak = match self.pending {
            Some((class, n)) if class == winner => n + 1,
            _ => 1,
        };
        if streak >= self.settings.min_windows.max(1) || lead >= self.settings.margin {
            self.current = Some(winner);
            self.pending = None;
            return raw;
        }
        self.pending = Some((winner, streak));
        Decision {
            activity: current,
            confidence: raw.scores.get(current),
            unsmoothed: Some(winner),
            ..raw
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::Scores;
    use ActivityClass::*;

    fn decision(scores: [f32; 7]) -> Decision {
        let scores = Scores::from_evidence(scores);
        let (activity, confidence) = scores.best();
        Decision {
            activity,
            confidence,
            scores,
            drivers: Vec::new(),
            unsmoothed: None,
        }
    }

    // Order: asleep, at_table, reading, on_phone, in_conversation, busy, inactive.
    const READING: [f32; 7] = [0.1, 0.0, 0.5, 0.0, 0.0, 0.0, 0.4];
    const INACTIVE_CLOSE: [f32; 7] = [0.1, 0.0, 0.4, 0.0, 0.0, 0.0, 0.5];
    const BUSY_CLEAR: [f32; 7] = [0.0, 0.0, 0.1, 0.0, 0.0, 0.9, 0.0];

    #[test]
    fn a_single_close_window_does_not_flip_the_class() {
        let mut s = Smoother::new(SmoothingSettings::default());
        assert_eq!(s.apply(decision(READING)).activity, Reading);
        let d = s.apply(decision(INACTIVE_CLOSE));
        assert_eq!(d.activity, Reading);
        assert_eq!(d.unsmoothed, Some(Inactive));
        assert!((d.confidence - 0.4).abs() < 1e-6);
        // Back to reading: the challenger's streak is broken.
        assert_eq!(s.apply(decision(READING)).activity, Reading);
        assert_eq!(s.apply(decision(INACTIVE_CLOSE)).activity, Reading);
        // Two in a row switch.
        let d = s.apply(decision(INACTIVE_CLOSE));
        assert_eq!(d.activity, Inactive);
        assert_eq!(d.unsmoothed, None);
    }

    #[test]
    fn a_clear_lead_switches_at_once_and_min_windows_1_is_off() {
        let mut s = Smoother::new(SmoothingSettings::default());
        s.apply(decision(READING));
        assert_eq!(s.apply(decision(BUSY_CLEAR)).activity, Busy);
        let mut off = Smoother::new(SmoothingSettings {
            min_windows: 1,
            margin: 1.0,
        });
        off.apply(decision(READING));
        assert_eq!(off.apply(decision(INACTIVE_CLOSE)).activity, Inactive);
    }
}
