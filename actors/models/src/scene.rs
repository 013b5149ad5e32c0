//! YAMNet's 521 classes folded into the groups the activity classifier reads
//! ([`cav_core::observe::SceneScores`]).
//!
//! Each group's score for a window is the highest score among its classes: one clear class is
//! enough evidence, and a sum would reward groups that merely have many classes.

use cav_core::observe::SceneScores;

/// The YAMNet classes (display names, as in `models/yamnet_class_map.csv`) of each group.
pub const GROUPS: [(&str, &[&str]); 9] = [
    (
        "speech",
        &[
            "Speech",
            "Child speech, kid speaking",
            "Conversation",
            "Narration, monologue",
            "Speech synthesizer",
            "Whispering",
        ],
    ),
    ("snoring", &["Snoring", "Breathing", "Gasp", "Sigh"]),
    (
        "dishes",
        &[
            "Dishes, pots, and pans",
            "Cutlery, silverware",
            "Chopping (food)",
            "Chewing, mastication",
            "Frying (food)",
            "Glass",
            "Chink, clink",
        ],
    ),
    ("typing", &["Typing", "Typewriter", "Computer keyboard"]),
    (
        "telephone",
        &[
            "Telephone",
            "Telephone bell ringing",
            "Ringtone",
            "Telephone dialing, DTMF",
        ],
    ),
    (
        "paper",
        &["Writing", "Crumpling, crinkling", "Tearing", "Rustle"],
    ),
    ("silence", &["Silence"]),
    (
        "appliance",
        &[
            "Vacuum cleaner",
            "Blender",
            "Hair dryer",
            "Microwave oven",
            "Mechanical fan",
            "Air conditioning",
            "Sewing machine",
            "Water tap, faucet",
            "Sink (filling or washing)",
            "Boiling",
            "Mechanisms",
            "Electric shaver, electric razor",
        ],
    ),
    (
        "music",
        &["Music", "Television", "Radio", "Musical instrument"],
    ),
];

/// Class indices per group, resolved once against the model's class map.
#[derive(Clone, Debug)]
pub struct SceneMap {
    groups: Vec<Vec<usize>>,
}

impl SceneMap {
    /// Resolves [`GROUPS`] against `class_names`; a name the map lacks is skipped (a test
    /// checks that every name resolves against the shipped model).
    pub fn new(class_names: &[String]) -> Self {
        let groups = GROUPS
            .iter()
            .map(|(_, names)| {
                names
                    .iter()
                    .filter_map(|n| class_names.iter().position(|c| c == n))
                    .collect()
            })
            .collect();
        Self { groups }
    }

    /// The names that did not resolve.
    pub fn missing(class_names: &[String]) -> Vec<&'static str> {
        GROUPS
            .iter()
            .flat_map(|(_, names)| names.iter().copied())
            .filter(|n| !class_names.iter().any(|c| c == n))
            .collect()
    }

    /// The group scores of one window's 521 class scores.
    pub fn scores(&self, scores: &[f32]) -> SceneScores {
        let g: Vec<f32> = self
            .groups
            .iter()
            .map(|idx| {
                idx.iter()
                    .filter_map(|&i| scores.get(i).copied())
                    .fold(0.0, f32::max)
            })
            .collect();
        let at = |i: usize| g.get(i).copied().unwrap_or(0.0);
        SceneScores {
            speech: at(0),
            snoring: at(1),
            dishes: at(2),
            typing: at(3),
            telephone: at(4),
            paper: at(5),
            silence: at(6),
            appliance: at(7),
            music: at(8),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_group_class_is_in_the_shipped_class_map() {
        let csv = include_str!("../../../models/yamnet_class_map.csv");
        let names = crate::yamnet::class_map::parse_class_map(csv).expect("class map");
        assert_eq!(SceneMap::missing(&names), Vec::<&str>::new());
        // The order of the groups matches SceneScores::NAMES.
        let order: Vec<&str> = GROUPS.iter().map(|(n, _)| *n).collect();
        assert_eq!(order, SceneScores::NAMES);
        let map = SceneMap::new(&names);
        let mut scores = vec![0.0; names.len()];
        let dishes = names
            .iter()
            .position(|n| n == "Cutlery, silverware")
            .expect("class");
        scores[dishes] = 0.7;
        scores[0] = 0.2;
        let s = map.scores(&scores);
        assert_eq!(s.dishes, 0.7);
        assert_eq!(s.speech, 0.2);
        assert_eq!(s.typing, 0.0);
    }
}
