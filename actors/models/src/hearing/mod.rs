//! Hearing: live YAMNet labels and sound events from a stream of 16 kHz mono samples.
//!
//! One [`Hearing`] per audio source. [`Hearing::push`] takes samples with the time of their
//! first sample and returns what became known:
//! * [`HearingOutput::Labels`] once per hop: YAMNet's top classes on the 0.975 s window that
//!   starts at `t` (skipped, `gated`, when the window is quieter than the level gate);
//! * [`HearingOutput::Event`] for the configured [`EventRule`]s.
//!
//! How events are found:
//! * **Point events** (speech, phone ring, snoring, dishes, typing): a window whose group score
//!   (the highest of the group's YAMNet classes, see [`EventKind::classes`]) reaches the rule's
//!   threshold gives an event at the window's start, unless the previous event of that kind is
//!   less than `min_gap_s` earlier.
//! * **Applause**: consecutive windows with Applause ≥ threshold, or with Clapping ≥ threshold
//!   and at least 5 transients in the window (group clapping: one person's rhythmic clapping on
//!   the dev set gives ≤ 4), form a burst; bursts less than `min_gap_s` apart are merged. One
//!   event per burst, emitted when it has ended, with `onset` and `end`.
//! * **Claps**: a transient detector ([`onset`]) proposes onsets (±1–5 ms); each is judged by
//!   [`clap::ClapEvidence::decide`]. Every clap of a double or triple clap is its own event.
//!   A clap is emitted as soon as its own evidence is known. Each onset gets two looks: an
//!   early one 200 ms after it ([`clap::EARLY_POST_SAMPLES`]: YAMNet on the shorter segment
//!   over a faint noise floor, and the acoustic test), and the full one at 250 ms
//!   ([`clap::POST_SAMPLES`]); a clap is accepted if either accepts, and emitted by the `push`
//!   that brings the first look that does (so 200–300 ms after the onset with 100 ms pushes;
//!   at a stream's start, not before the first window holding it is scored). Both looks are
//!   computed whatever the chunking, so the claps found do not depend on it. Its context is
//!   what has been heard by then, i.e. the sliding windows that end by that time:
//!   * typing veto (acoustic-only path): typing heard in the windows covering the 1.5 s before
//!     the clap (the windows around and after the clap are not scored yet);
//!   * applause: once applause is established (a window that ended by then heard applause or
//!     group clapping, less than the applause rule's `min_gap_s` + ¾ window before the clap),
//!     further claps are not reported — the burst is, with its start and end. The first claps
//!     of a burst, before its first window is scored (~0.75 s), may already have been emitted
//!     as claps.
//!
//!   With [`Hearing::set_clap_hold_for_context`] the old behaviour is back: each clap is held
//!   until the windows around and after it are scored (~2 s after it), and dropped when it
//!   turns out to lie in an applause burst; the typing veto then uses the windows around it.
//!   Events of one `push` are returned in the order they became known (a window when its last
//!   sample is in, a clap when its 250 ms are), so the chunking does not change their order.
//!
//! Cost: one YAMNet patch per hop plus two per proposed onset (batched), ~7 ms each in
//! release on two cores.

pub mod clap;
pub mod onset;
pub mod transient;

use std::collections::VecDeque;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::yamnet::{LogMelFrontend, Patch, Yamnet, PATCH_WINDOW_SAMPLES};
use clap::{ClapEvidence, ClapPath};
use onset::{Onset, OnsetConfig, OnsetDetector};
use transient::TransientAnalyzer;

/// Sample rate of the input (Hz).
pub const SAMPLE_RATE: u32 = 16_000;
/// Length of one labelled window (s): one YAMNet patch.
pub const WINDOW_S: f64 = PATCH_WINDOW_SAMPLES as f64 / SAMPLE_RATE as f64;

/// Kinds of sound events.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// One person's hand clap (each clap of a double clap is one event).
    Clap,
    /// Applause or group clapping: one event per burst, with its end.
    Applause,
    Speech,
    PhoneRing,
    Snoring,
    Dishes,
    Typing,
}

impl EventKind {
    /// All kinds.
    pub const ALL: [EventKind; 7] = [
        EventKind::Clap,
        EventKind::Applause,
        EventKind::Speech,
        EventKind::PhoneRing,
        EventKind::Snoring,
        EventKind::Dishes,
        EventKind::Typing,
    ];

    /// The snake_case name (as serialised).
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Clap => "clap",
            EventKind::Applause => "applause",
            EventKind::Speech => "speech",
            EventKind::PhoneRing => "phone_ring",
            EventKind::Snoring => "snoring",
            EventKind::Dishes => "dishes",
            EventKind::Typing => "typing",
        }
    }

    /// YAMNet classes (display names) whose highest score is this kind's window score. Claps
    /// are judged per transient instead (see [`clap`]); the names here only label them.
    pub fn classes(self) -> &'static [&'static str] {
        match self {
            EventKind::Clap => &["Hands", "Clapping"],
            EventKind::Applause => &["Applause"],
            EventKind::Speech => &[
                "Speech",
                "Child speech, kid speaking",
                "Conversation",
                "Narration, monologue",
                "Speech synthesizer",
            ],
            EventKind::PhoneRing => &["Telephone", "Telephone bell ringing", "Ringtone"],
            // Breathing is left out: YAMNet gives it to many soft broadband noises.
            EventKind::Snoring => &["Snoring"],
            EventKind::Dishes => &[
                "Dishes, pots, and pans",
                "Cutlery, silverware",
                "Chopping (food)",
            ],
            EventKind::Typing => &["Typing", "Computer keyboard", "Typewriter"],
        }
    }
}

/// When to report one kind of event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventRule {
    pub kind: EventKind,
    /// Minimum score (0–1). For claps, the score of [`clap::ClapEvidence::decide`]: YAMNet's
    /// hand evidence on the isolated clap, or [`clap::ACOUSTIC_ONLY_SCORE`] over a loud
    /// background.
    pub threshold: f32,
    /// Minimum time between two events of this kind (s). For applause, bursts closer than this
    /// are merged into one event.
    pub min_gap_s: f32,
}

/// Settings of a [`Hearing`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HearingConfig {
    /// Hop of the sliding 0.975 s window (s), at most 0.24 (the clap and applause context
    /// assumes windows at least this dense).
    pub hop_s: f32,
    /// Windows with an RMS below this (dBFS) are not run through YAMNet (`gated`).
    pub level_gate_dbfs: f32,
    /// Labels per window.
    pub top_k: usize,
    /// Event kinds to report; a kind without a rule is not reported.
    pub events: Vec<EventRule>,
    /// Whether a clap YAMNet cannot hear over a loud background (median ≥ −55 dBFS) may be
    /// accepted on its acoustics alone ([`clap::ClapEvidence::decide`]). On (the default) it
    /// finds most claps over speech and appliances 20 dB above them, and lets through some key
    /// presses and knocks as claps; off, claps are confirmed by YAMNet only: few are found over
    /// loud backgrounds, and almost no false ones (numbers in the README).
    #[serde(default = "yes")]
    pub claps_over_loud_background: bool,
}

fn yes() -> bool {
    true
}

impl Default for HearingConfig {
    fn default() -> Self {
        HearingConfig {
            hop_s: 0.24,
            level_gate_dbfs: -60.0,
            top_k: 5,
            events: HearingConfig::default_rules(),
            claps_over_loud_background: true,
        }
    }
}

impl HearingConfig {
    /// The default rules, from the dev-set measurements (`tests/hearing_*.rs`):
    ///
    /// | kind | threshold | min gap (s) | measured |
    /// |---|---|---|---|
    /// | clap | 0.35 | 0.15 | quiet-room claps 0.36–1.0 (808-style clap ≤ 0.33); claps 0.3 s apart stay separate |
    /// | applause | 0.4 | 1.0 | applause windows 0.65–1.0 at their peak |
    /// | speech | 0.5 | 5.0 | speech clips 0.9–1.0 |
    /// | phone_ring | 0.4 | 5.0 | ringing 0.76 |
    /// | snoring | 0.4 | 10.0 | not measured (no clip) |
    /// | dishes | 0.5 | 3.0 | not measured (no dishes clip; hammer knocks reach 0.40) |
    /// | typing | 0.3 | 5.0 | typing clips 0.5–0.7 |
    pub fn default_rules() -> Vec<EventRule> {
        let rule = |kind, threshold, min_gap_s| EventRule {
            kind,
            threshold,
            min_gap_s,
        };
        vec![
            rule(EventKind::Clap, 0.35, 0.15),
            rule(EventKind::Applause, 0.4, 1.0),
            rule(EventKind::Speech, 0.5, 5.0),
            rule(EventKind::PhoneRing, 0.4, 5.0),
            rule(EventKind::Snoring, 0.4, 10.0),
            rule(EventKind::Dishes, 0.5, 3.0),
            rule(EventKind::Typing, 0.3, 5.0),
        ]
    }
}

/// One YAMNet class and its score.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Label {
    pub index: usize,
    pub name: String,
    pub score: f32,
}

/// A sound event.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SoundEvent {
    pub kind: EventKind,
    /// Start (s, on the caller's timeline). Claps: the clap's onset (±5 ms on the dev set).
    /// Window-based kinds: the start of the first window that reached the threshold.
    pub onset: f64,
    /// Applause: end of the burst. `None` for point events.
    pub end: Option<f64>,
    pub score: f32,
    /// Claps: `yamnet` or `acoustic` (how it was confirmed). Others: the winning class.
    pub detail: Option<String>,
}

/// What [`Hearing::push`] found.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum HearingOutput {
    /// One window: `t` is its start (s); it lasts [`WINDOW_S`]. `top` is empty when gated.
    Labels {
        t: f64,
        level_dbfs: f32,
        gated: bool,
        top: Vec<Label>,
        /// The class groups the activity classifier reads; `None` when gated.
        scene: Option<cav_core::observe::SceneScores>,
    },
    Event(SoundEvent),
}

/// One judged onset (see [`Hearing::set_trace`]).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClapTrace {
    /// Onset time (s).
    pub t: f64,
    pub evidence: ClapEvidence,
    /// Clap score and path, or `None` when rejected at any threshold.
    pub decision: Option<(f32, &'static str)>,
}

/// Scores of one window that events need later.
#[derive(Clone, Debug)]
struct WindowInfo {
    start: u64,
    typing: f32,
    /// The window heard applause or group clapping (the applause rule's test).
    applause: bool,
}

/// A proposed onset waiting for its samples and context.
#[derive(Clone, Debug)]
struct PendingOnset {
    onset: Onset,
    /// The early look ([`clap::EARLY_POST_SAMPLES`]), filled once those samples are in and
    /// taken when it is judged.
    early: Option<ClapEvidence>,
    /// The early look has been computed (judged or waiting to be).
    early_done: bool,
    /// The full look ([`clap::POST_SAMPLES`]), filled once the samples after it are in.
    evidence: Option<ClapEvidence>,
}

/// Applause burst being built.
#[derive(Clone, Copy, Debug)]
struct Burst {
    start: u64,
    end: u64,
    score: f32,
}

/// A window-based event tracker state.
#[derive(Clone, Debug, Default)]
struct KindState {
    last_onset: Option<f64>,
}

/// Live hearing for one audio source. See the module docs.
pub struct Hearing {
    yamnet: Arc<Yamnet>,
    config: HearingConfig,
    frontend: LogMelFrontend,
    analyzer: TransientAnalyzer,
    detector: OnsetDetector,
    /// Samples from absolute index `buf_start`.
    buf: Vec<f32>,
    buf_start: u64,
    /// Absolute index of the next sample to arrive.
    total: u64,
    /// Time (s) of absolute sample 0 on the caller's timeline.
    t0: Option<f64>,
    hop: u64,
    next_window: u64,
    pending: Vec<PendingOnset>,
    /// Recent windows (for the clap context).
    windows: VecDeque<WindowInfo>,
    /// Starts of recent transients (any kind), to count them per window.
    transients: VecDeque<u64>,
    /// Class indices per event kind.
    class_idx: Vec<(EventKind, Vec<usize>)>,
    hands_idx: [Option<usize>; 4],
    other_idx: Vec<usize>,
    typing_idx: Vec<usize>,
    clapping_idx: Option<usize>,
    kind_state: Vec<(EventKind, KindState)>,
    burst: Option<Burst>,
    /// RMS (dBFS) of consecutive 50 ms frames from absolute sample `frames_start`, to place
    /// applause bursts more precisely than the windows do.
    frames: VecDeque<f32>,
    frames_start: u64,
    /// Applause bursts already closed (for dropping claps inside them).
    closed_bursts: VecDeque<(u64, u64)>,
    /// Claps decided but held until the applause around them is known.
    held_claps: Vec<(u64, SoundEvent)>,
    last_clap: Option<f64>,
    /// Hold claps until the windows after them are scored (see the module docs).
    clap_hold: bool,
    /// Every judged onset, when tracing is on.
    trace: Option<Vec<ClapTrace>>,
    /// YAMNet classes grouped for the activity classifier.
    scene: crate::scene::SceneMap,
    errors: u64,
    last_error: Option<String>,
    /// Wall time of each YAMNet run since the last `take_inference_times` (for metrics).
    inference_times: Vec<std::time::Duration>,
}

impl std::fmt::Debug for Hearing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hearing")
            .field("config", &self.config)
            .field("samples", &self.total)
            .finish_non_exhaustive()
    }
}

const SR: f64 = SAMPLE_RATE as f64;
/// Timestamps may drift from the sample count by this much before the timeline is re-anchored
/// (s): within it, the sample count is trusted (stamp jitter).
const REANCHOR_S: f64 = 0.5;
/// How long typing heard in a window keeps vetoing group clapping (1.5 s).
const TYPING_MEMORY: u64 = 24_000;
/// Level frame for placing applause (50 ms).
const FRAME: usize = 800;
/// Minimum transients in a window for Clapping to count as group clapping.
const GROUP_CLAP_TRANSIENTS: usize = 5;

impl Hearing {
    /// A hearing engine with its own frontend and detector; the model is shared.
    pub fn new(yamnet: Arc<Yamnet>, config: HearingConfig) -> Self {
        let hop = ((f64::from(config.hop_s.clamp(0.01, 0.24)) * SR).round() as u64).max(1);
        let idx = |name: &str| yamnet.class_index(name);
        let class_idx = EventKind::ALL
            .iter()
            .map(|&k| (k, k.classes().iter().filter_map(|n| idx(n)).collect()))
            .collect();
        let hands_idx = [
            idx(clap::HANDS),
            idx(clap::CLAPPING),
            idx(clap::SLAP),
            idx(clap::FINGER_SNAPPING),
        ];
        let other_idx = clap::OTHER_IMPULSES.iter().filter_map(|n| idx(n)).collect();
        let typing_idx = ["Typing", "Computer keyboard"]
            .iter()
            .filter_map(|n| idx(n))
            .collect();
        let clapping_idx = idx(clap::CLAPPING);
        Hearing {
            frontend: LogMelFrontend::new(),
            analyzer: TransientAnalyzer::new(),
            detector: OnsetDetector::new(OnsetConfig::default()),
            buf: Vec::new(),
            buf_start: 0,
            total: 0,
            t0: None,
            hop,
            next_window: 0,
            pending: Vec::new(),
            windows: VecDeque::new(),
            transients: VecDeque::new(),
            class_idx,
            hands_idx,
            other_idx,
            typing_idx,
            clapping_idx,
            kind_state: EventKind::ALL
                .iter()
                .map(|&k| (k, KindState::default()))
                .collect(),
            burst: None,
            closed_bursts: VecDeque::new(),
            frames: VecDeque::new(),
            frames_start: 0,
            held_claps: Vec::new(),
            last_clap: None,
            clap_hold: false,
            trace: None,
            scene: crate::scene::SceneMap::new(yamnet.class_names()),
            errors: 0,
            last_error: None,
            inference_times: Vec::new(),
            yamnet,
            config,
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &HearingConfig {
        &self.config
    }

    /// How long each YAMNet run took since the last call (one run scores every window and onset
    /// that became ready in one `push`).
    pub fn take_inference_times(&mut self) -> Vec<std::time::Duration> {
        std::mem::take(&mut self.inference_times)
    }

    /// How many YAMNet runs failed (their windows were reported with no labels), and the last
    /// error.
    pub fn errors(&self) -> (u64, Option<&str>) {
        (self.errors, self.last_error.as_deref())
    }

    /// `true`: holds each clap until the windows around and after it are scored (~2 s),
    /// to drop claps of an applause burst and veto claps over typing with the windows around
    /// them. `false` (the default): a clap is emitted as soon as its own evidence is in
    /// (250–350 ms after its onset with 100 ms pushes), judged on the context heard before it.
    /// See the module docs.
    pub fn set_clap_hold_for_context(&mut self, hold: bool) {
        self.clap_hold = hold;
    }

    /// Turns on recording of every judged onset (for tuning and debugging); see
    /// [`take_trace`](Self::take_trace).
    pub fn set_trace(&mut self, on: bool) {
        self.trace = on.then(Vec::new);
    }

    /// The onsets judged since the last call (empty when tracing is off).
    pub fn take_trace(&mut self) -> Vec<ClapTrace> {
        self.trace.as_mut().map(std::mem::take).unwrap_or_default()
    }

    fn rule(&self, kind: EventKind) -> Option<&EventRule> {
        self.config.events.iter().find(|r| r.kind == kind)
    }

    fn time(&self, sample: u64) -> f64 {
        self.t0.unwrap_or(0.0) + sample as f64 / SR
    }

    fn sample_at(&self, s: u64) -> f32 {
        s.checked_sub(self.buf_start)
            .and_then(|i| self.buf.get(i as usize))
            .copied()
            .unwrap_or(0.0)
    }

    /// Samples `[from, to)` (zeros outside what is held).
    fn samples(&self, from: u64, to: u64) -> Vec<f32> {
        (from..to).map(|s| self.sample_at(s)).collect()
    }

    /// Feeds samples whose first sample is at `t` seconds on the caller's timeline (any
    /// monotonic seconds). Consecutive pushes are taken as one contiguous stream; only when
    /// `t` differs from the sample count's time by more than 0.5 s (a gap, a clock step) is the
    /// timeline re-anchored at `t`. Non-finite samples count as silence. Returns what became
    /// known.
    pub fn push(&mut self, t: f64, samples: &[f32]) -> Vec<HearingOutput> {
        match self.t0 {
            None => self.t0 = Some(if t.is_finite() { t } else { 0.0 }),
            Some(_) if t.is_finite() && (t - self.time(self.total)).abs() > REANCHOR_S => {
                self.t0 = Some(t - self.total as f64 / SR);
            }
            Some(_) => {}
        }
        let clean: Vec<f32> = samples
            .iter()
            .map(|&v| {
                if v.is_finite() {
                    v.clamp(-1.0, 1.0)
                } else {
                    0.0
                }
            })
            .collect();
        self.buf.extend_from_slice(&clean);
        self.total += clean.len() as u64;
        let frames_end = self.frames_start + (self.frames.len() * FRAME) as u64;
        let mut f = frames_end;
        while f + FRAME as u64 <= self.total {
            let ms = self
                .samples(f, f + FRAME as u64)
                .iter()
                .map(|v| v * v)
                .sum::<f32>()
                / FRAME as f32;
            self.frames
                .push_back((10.0 * (ms + 1e-12).log10()).clamp(-120.0, 0.0));
            f += FRAME as u64;
        }
        let onsets = self.detector.push(&clean);
        self.accept_onsets(onsets);
        let out = self.process(false);
        self.trim();
        out
    }

    /// End of stream: scores the last (zero-padded) windows and the pending onsets, and closes
    /// an open applause burst.
    pub fn flush(&mut self) -> Vec<HearingOutput> {
        let onsets = self.detector.flush();
        self.accept_onsets(onsets);
        let out = self.process(true);
        self.trim();
        out
    }

    fn accept_onsets(&mut self, onsets: Vec<Onset>) {
        for onset in onsets {
            self.transients.push_back(onset.sample);
            self.pending.push(PendingOnset {
                onset,
                early: None,
                early_done: false,
                evidence: None,
            });
        }
    }

    /// Runs YAMNet on every ready window and onset (one batch), then decides events.
    fn process(&mut self, end: bool) -> Vec<HearingOutput> {
        let win = PATCH_WINDOW_SAMPLES as u64;
        // Windows ready: complete ones, and at the end those at least half filled.
        let mut windows = Vec::new();
        while self.next_window + win <= self.total
            || (end && self.next_window + win / 2 < self.total)
            || (end && windows.is_empty() && self.next_window == 0 && self.total > 0)
        {
            windows.push(self.next_window);
            self.next_window += self.hop;
        }
        // Onset looks ready (pending index, early look?): their samples are in (or the stream
        // ended). Both looks are always computed once their samples are in, whatever the
        // chunking, so that the decision (either look accepts) does not depend on it.
        let mut ready: Vec<(usize, bool)> = Vec::new();
        for (i, p) in self.pending.iter().enumerate() {
            if p.evidence.is_some() {
                continue;
            }
            let s = p.onset.sample;
            if !p.early_done && (end || s + clap::EARLY_POST_SAMPLES as u64 <= self.total) {
                ready.push((i, true));
            }
            if end || s + clap::POST_SAMPLES as u64 <= self.total {
                ready.push((i, false));
            }
        }

        let mut patches: Vec<Patch> = Vec::new();
        let mut window_meta = Vec::with_capacity(windows.len());
        for &start in &windows {
            let w = self.samples(start, start + win);
            let filled = (self.total.min(start + win) - start.min(self.total)) as usize;
            let ms = w.iter().map(|v| v * v).sum::<f32>() / filled.max(1) as f32;
            let level = (10.0 * (ms + 1e-12).log10()).clamp(-120.0, 0.0);
            let gated = level < self.config.level_gate_dbfs;
            if !gated {
                patches.push(self.frontend.patch_for_window(&w));
            }
            window_meta.push((start, level, gated));
        }
        let n_window_patches = patches.len();
        let mut onset_meta = Vec::with_capacity(ready.len());
        for &(i, early) in &ready {
            let s = self.pending[i].onset.sample;
            let from = s.saturating_sub(clap::PRE_SAMPLES as u64);
            let post = if early {
                clap::EARLY_POST_SAMPLES
            } else {
                clap::POST_SAMPLES
            };
            let local = self.samples(from, s + post as u64);
            let at = (s - from) as usize;
            let features = self.analyzer.measure(&local, at);
            let background = (
                clap::background_dbfs(&local, at),
                clap::band_background_dbfs(&local, at),
            );
            let window = if early {
                clap::early_window(&local, at)
            } else {
                clap::isolated_window(&local, at)
            };
            patches.push(self.frontend.patch_for_window(&window));
            onset_meta.push((i, early, features, background));
        }
        let scores: Option<Vec<Vec<f32>>> = if patches.is_empty() {
            Some(Vec::new())
        } else {
            let began = std::time::Instant::now();
            let result = self.yamnet.infer(&patches);
            if self.inference_times.len() < 1024 {
                self.inference_times.push(began.elapsed());
            }
            match result {
                Ok(outs) => Some(outs.into_iter().map(|o| o.scores).collect()),
                Err(e) => {
                    self.errors += 1;
                    self.last_error = Some(e.to_string());
                    None
                }
            }
        };

        // Outputs keyed by the sample at which they became known, so that one push returns
        // them in the order a sample-by-sample stream would.
        let mut keyed: Vec<(u64, HearingOutput)> = Vec::new();
        let mut next_patch = 0;
        for (start, level, gated) in window_meta {
            let window_scores = if gated {
                None
            } else {
                next_patch += 1;
                scores
                    .as_ref()
                    .and_then(|s| s.get(next_patch - 1))
                    .map(Vec::as_slice)
            };
            let top = window_scores
                .map(|s| {
                    Yamnet::top_k(s, self.config.top_k)
                        .into_iter()
                        .map(|(index, score)| Label {
                            index,
                            name: self.yamnet.class_name(index).to_string(),
                            score,
                        })
                        .collect()
                })
                .unwrap_or_default();
            let scene = window_scores.map(|s| self.scene.scores(s));
            let mut out = vec![HearingOutput::Labels {
                t: self.time(start),
                level_dbfs: level,
                gated,
                top,
                scene,
            }];
            let owned = window_scores.map(<[f32]>::to_vec);
            self.window_events(start, owned.as_deref(), &mut out);
            keyed.extend(out.into_iter().map(|o| (start + win, o)));
        }
        for (k, (i, early, features, background)) in onset_meta.into_iter().enumerate() {
            let s = scores
                .as_ref()
                .and_then(|s| s.get(n_window_patches + k))
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            let get = |idx: Option<usize>| idx.and_then(|j| s.get(j)).copied().unwrap_or(0.0);
            let onset = &self.pending[i].onset;
            let evidence = Some(ClapEvidence {
                hands: get(self.hands_idx[0]),
                clapping: get(self.hands_idx[1]),
                slap: get(self.hands_idx[2]),
                finger_snapping: get(self.hands_idx[3]),
                other_impulse: self
                    .other_idx
                    .iter()
                    .map(|&j| get(Some(j)))
                    .fold(0.0, f32::max),
                context_typing: 0.0,
                level_dbfs: onset.level_dbfs,
                jump_db: onset.jump_db,
                background_dbfs: background.0,
                band_background_dbfs: background.1,
                features,
            });
            let p = &mut self.pending[i];
            if early {
                p.early = evidence;
                p.early_done = true;
            } else {
                p.evidence = evidence;
            }
        }
        self.decide_claps(end, &mut keyed);
        if end {
            if let Some(b) = self.burst.take() {
                let mut out = Vec::new();
                self.close_burst(b, &mut out);
                keyed.extend(out.into_iter().map(|o| (u64::MAX, o)));
            }
            self.release_claps(true, &mut keyed);
        }
        // Stable: windows before claps that became known at the same sample.
        keyed.sort_by_key(|(k, _)| *k);
        keyed.into_iter().map(|(_, o)| o).collect()
    }

    /// Point events and applause from one window's scores (`None`: gated or failed).
    fn window_events(&mut self, start: u64, scores: Option<&[f32]>, out: &mut Vec<HearingOutput>) {
        let group = |kind: EventKind| -> (f32, Option<usize>) {
            let Some(s) = scores else { return (0.0, None) };
            self.class_idx
                .iter()
                .find(|(k, _)| *k == kind)
                .map(|(_, idx)| {
                    idx.iter().fold((0.0f32, None), |(best, bi), &j| {
                        let v = s.get(j).copied().unwrap_or(0.0);
                        if v > best {
                            (v, Some(j))
                        } else {
                            (best, bi)
                        }
                    })
                })
                .unwrap_or((0.0, None))
        };
        let typing = self
            .typing_idx
            .iter()
            .map(|&j| scores.and_then(|s| s.get(j)).copied().unwrap_or(0.0))
            .fold(0.0, f32::max);
        self.windows.push_back(WindowInfo {
            start,
            typing,
            applause: false,
        });

        let t = self.time(start);
        for kind in [
            EventKind::Speech,
            EventKind::PhoneRing,
            EventKind::Snoring,
            EventKind::Dishes,
            EventKind::Typing,
        ] {
            let Some(rule) = self.rule(kind).cloned() else {
                continue;
            };
            let (score, class) = group(kind);
            if score < rule.threshold || score <= 0.0 {
                continue;
            }
            let Some((_, state)) = self.kind_state.iter_mut().find(|(k, _)| *k == kind) else {
                continue;
            };
            if state
                .last_onset
                .is_some_and(|last| t - last < f64::from(rule.min_gap_s))
            {
                continue;
            }
            state.last_onset = Some(t);
            out.push(HearingOutput::Event(SoundEvent {
                kind,
                onset: t,
                end: None,
                score,
                detail: class.map(|j| self.yamnet.class_name(j).to_string()),
            }));
        }

        // Applause: the window is applause if Applause reaches the threshold, or Clapping does
        // with enough transients in it (group clapping).
        if let Some(rule) = self.rule(EventKind::Applause).cloned() {
            let win = PATCH_WINDOW_SAMPLES as u64;
            let applause = group(EventKind::Applause).0;
            let clapping = self
                .clapping_idx
                .and_then(|j| scores.and_then(|s| s.get(j)))
                .copied()
                .unwrap_or(0.0);
            let n_transients = self
                .transients
                .iter()
                .filter(|&&s| s >= start && s < start + win)
                .count();
            // Key presses are dense transients too, and YAMNet's Clapping rises on claps
            // over typing: no group clapping while it hears typing (in this window or the
            // 1.5 s before; typing dips in the windows a clap dominates).
            let recent_typing = self
                .windows
                .iter()
                .filter(|w| w.start + TYPING_MEMORY >= start)
                .map(|w| w.typing)
                .fold(0.0, f32::max);
            let score = if n_transients >= GROUP_CLAP_TRANSIENTS && recent_typing < 0.3 {
                applause.max(clapping)
            } else {
                applause
            };
            // The applause is taken to fill the middle of the windows that hear it: a window
            // hears applause that covers about half of it.
            let (b_start, b_end) = (start + win / 4, start + win - win / 4);
            let gap = (f64::from(rule.min_gap_s) * SR) as u64;
            if score >= rule.threshold {
                if let Some(w) = self.windows.back_mut() {
                    w.applause = true;
                }
                match &mut self.burst {
                    Some(b) if b_start <= b.end + gap => {
                        b.end = b.end.max(b_end);
                        b.score = b.score.max(score);
                    }
                    _ => {
                        if let Some(b) = self.burst.take() {
                            self.close_burst(b, out);
                        }
                        self.burst = Some(Burst {
                            start: b_start,
                            end: b_end,
                            score,
                        });
                    }
                }
            } else if let Some(b) = self.burst {
                if b_start > b.end + gap {
                    self.burst = None;
                    self.close_burst(b, out);
                }
            }
        }
    }

    fn close_burst(&mut self, b: Burst, out: &mut Vec<HearingOutput>) {
        let b = self.refine_burst(b);
        self.closed_bursts.push_back((b.start, b.end));
        out.push(HearingOutput::Event(SoundEvent {
            kind: EventKind::Applause,
            onset: self.time(b.start),
            end: Some(self.time(b.end)),
            score: b.score,
            detail: Some("Applause".to_string()),
        }));
    }

    /// Moves a burst's ends to the first and last 50 ms frame within 20 dB of its loudest
    /// frame, searching one window beyond the window-based ends (the definition of the
    /// applause spans in the dev set).
    fn refine_burst(&self, b: Burst) -> Burst {
        let win = PATCH_WINDOW_SAMPLES as u64;
        let frame_of = |s: u64| (s.saturating_sub(self.frames_start) / FRAME as u64) as usize;
        let lo = frame_of(b.start.saturating_sub(win / 2));
        let hi = frame_of(b.end + win / 2).min(self.frames.len());
        if lo >= hi {
            return b;
        }
        let levels: Vec<(usize, f32)> = (lo..hi)
            .filter_map(|i| self.frames.get(i).map(|&l| (i, l)))
            .collect();
        let Some(max) = levels.iter().map(|&(_, l)| l).reduce(f32::max) else {
            return b;
        };
        let loud = |&&(_, l): &&(usize, f32)| l >= max - 20.0;
        let first = levels.iter().find(loud).map(|&(i, _)| i);
        let last = levels.iter().rev().find(loud).map(|&(i, _)| i);
        match (first, last) {
            (Some(f), Some(l)) => Burst {
                start: self.frames_start + (f * FRAME) as u64,
                end: self.frames_start + ((l + 1) * FRAME) as u64,
                score: b.score,
            },
            _ => b,
        }
    }

    /// Decides onsets whose evidence (and, when holding, context) is known. Early (default):
    /// emits accepted claps at once, keyed by the sample their evidence was complete at.
    /// Holding: holds them until the applause state around them is known.
    fn decide_claps(&mut self, end: bool, out: &mut Vec<(u64, HearingOutput)>) {
        let Some(rule) = self.rule(EventKind::Clap).cloned() else {
            self.pending
                .retain(|p| p.evidence.is_none() && p.early.is_none());
            self.release_claps(end, out);
            return;
        };
        let mut i = 0;
        while i < self.pending.len() {
            let s = self.pending[i].onset.sample;
            // The early look first: a clap it accepts is emitted then; one it rejects waits
            // for the full look.
            let early_ready = self.ready_at(s, clap::EARLY_POST_SAMPLES as u64);
            if self.pending[i].early.is_some() && self.context_known(s, early_ready, end) {
                let ev = self.pending[i].early.take();
                if let Some(decision) = ev.and_then(|ev| self.judge(s, ev, early_ready, &rule)) {
                    self.pending.remove(i);
                    self.emit_clap(s, early_ready, decision, &rule, out);
                    continue;
                }
            }
            let ready_at = self.ready_at(s, clap::POST_SAMPLES as u64);
            if self.pending[i].evidence.is_none() || !self.context_known(s, ready_at, end) {
                i += 1;
                continue;
            }
            let p = self.pending.remove(i);
            let Some(ev) = p.evidence else { continue };
            if let Some(decision) = self.judge(s, ev, ready_at, &rule) {
                self.emit_clap(s, ready_at, decision, &rule, out);
            }
        }
        self.release_claps(end, out);
    }

    /// Sample at which a look needing `post` samples after the onset at `s` is decided (early
    /// mode): its samples are in and, at the stream's start, a window holding the onset has
    /// been scored, so there is a context to judge it in. Later the windows that ended by
    /// then cover the 1.5 s before the onset; they are the same whatever the chunking.
    fn ready_at(&self, s: u64, post: u64) -> u64 {
        if s < PATCH_WINDOW_SAMPLES as u64 {
            (s + post).max(self.first_window_end_holding(s))
        } else {
            s + post
        }
    }

    /// Whether the context for judging the onset at `s` is known: holding, once the window
    /// starting at or after the onset has been scored; early, at `ready_at`.
    fn context_known(&self, s: u64, ready_at: u64, end: bool) -> bool {
        end || if self.clap_hold {
            self.next_window > s
        } else {
            self.total >= ready_at
        }
    }

    /// Judges one look at the onset at `s` in its context (see [`Self::ready_at`]): the clap
    /// score and path when it reaches the rule's threshold. Traced either way.
    fn judge(
        &mut self,
        s: u64,
        mut ev: ClapEvidence,
        ready_at: u64,
        rule: &EventRule,
    ) -> Option<(f32, ClapPath)> {
        let win = PATCH_WINDOW_SAMPLES as u64;
        ev.context_typing = if self.clap_hold {
            self.windows
                .iter()
                .filter(|w| w.start <= s && s < w.start + win)
                .map(|w| w.typing)
                .fold(0.0, f32::max)
        } else {
            // Only the windows that had ended at `ready_at`, covering the 1.5 s before.
            self.windows
                .iter()
                .filter(|w| w.start + win <= ready_at)
                .filter(|w| w.start + win + TYPING_MEMORY > s)
                .map(|w| w.typing)
                .fold(0.0, f32::max)
        };
        let decision = ev.decide(self.config.claps_over_loud_background);
        if let Some(trace) = &mut self.trace {
            trace.push(ClapTrace {
                t: self.t0.unwrap_or(0.0) + s as f64 / SR,
                evidence: ev,
                decision: decision.map(|(score, path)| (score, path.as_str())),
            });
        }
        decision.filter(|&(score, _)| score >= rule.threshold)
    }

    /// Emits (early mode) or holds an accepted clap, unless another clap came less than
    /// `min_gap_s` before it or (early mode) applause is established around it.
    fn emit_clap(
        &mut self,
        s: u64,
        ready_at: u64,
        (score, path): (f32, ClapPath),
        rule: &EventRule,
        out: &mut Vec<(u64, HearingOutput)>,
    ) {
        let win = PATCH_WINDOW_SAMPLES as u64;
        let t = self.time(s);
        if self
            .last_clap
            .is_some_and(|last| t - last < f64::from(rule.min_gap_s))
        {
            return;
        }
        self.last_clap = Some(t);
        let event = SoundEvent {
            kind: EventKind::Clap,
            onset: t,
            end: None,
            score,
            detail: Some(path_detail(path)),
        };
        if self.clap_hold {
            self.held_claps.push((s, event));
            return;
        }
        // Applause established: a window that ended by now heard it, and the clap is within
        // the burst's merge gap of the applause that window places.
        let applause_gap = self
            .rule(EventKind::Applause)
            .map_or(0, |r| (f64::from(r.min_gap_s) * SR) as u64);
        let in_applause = self.windows.iter().any(|w| {
            w.start + win <= ready_at && w.applause && s <= w.start + win - win / 4 + applause_gap
        });
        if !in_applause {
            out.push((ready_at, HearingOutput::Event(event)));
        }
    }

    /// End (exclusive sample) of the first sliding window that holds sample `s`.
    fn first_window_end_holding(&self, s: u64) -> u64 {
        let win = PATCH_WINDOW_SAMPLES as u64;
        // First k with k·hop + win > s.
        let k = if s < win { 0 } else { (s - win) / self.hop + 1 };
        k * self.hop + win
    }

    /// Emits held claps that are outside applause; drops those inside (holding mode).
    fn release_claps(&mut self, end: bool, out: &mut Vec<(u64, HearingOutput)>) {
        let win = PATCH_WINDOW_SAMPLES as u64;
        let gap = self
            .rule(EventKind::Applause)
            .map_or(0, |r| (f64::from(r.min_gap_s) * SR) as u64);
        let mut keep = Vec::new();
        for (s, ev) in std::mem::take(&mut self.held_claps) {
            let in_closed = self
                .closed_bursts
                .iter()
                .any(|&(a, b)| s + win / 4 >= a && s <= b + win / 4);
            let in_open = self
                .burst
                .is_some_and(|b| s + win / 4 >= b.start && s <= b.end + gap);
            if in_closed || in_open {
                continue;
            }
            // Wait until windows well past the clap are scored: applause starting with it
            // shows up within about one window.
            if end || self.next_window > s + win {
                out.push((self.total, HearingOutput::Event(ev)));
            } else {
                keep.push((s, ev));
            }
        }
        self.held_claps = keep;
    }

    /// Drops samples and history nothing will read again.
    fn trim(&mut self) {
        let oldest_pending = self
            .pending
            .iter()
            .map(|p| p.onset.sample)
            .min()
            .unwrap_or(u64::MAX);
        let keep_from = self
            .next_window
            .min(self.total.saturating_sub(clap::PRE_SAMPLES as u64 + 4800))
            .min(oldest_pending.saturating_sub(clap::PRE_SAMPLES as u64));
        if keep_from > self.buf_start + 16_000 {
            let drop = ((keep_from - self.buf_start) as usize).min(self.buf.len());
            self.buf.drain(..drop);
            self.buf_start += drop as u64;
        }
        let horizon = self
            .next_window
            .saturating_sub(4 * PATCH_WINDOW_SAMPLES as u64);
        while self.windows.front().is_some_and(|w| w.start < horizon) {
            self.windows.pop_front();
        }
        while self.transients.front().is_some_and(|&s| s < horizon) {
            self.transients.pop_front();
        }
        while self
            .closed_bursts
            .front()
            .is_some_and(|&(_, e)| e < horizon)
        {
            self.closed_bursts.pop_front();
        }
        // Keep the level frames an open burst (or one about to open) may need.
        let frames_from = self
            .burst
            .map_or(horizon, |b| {
                b.start.saturating_sub(PATCH_WINDOW_SAMPLES as u64)
            })
            .min(horizon);
        while self.frames_start + (FRAME as u64) <= frames_from && !self.frames.is_empty() {
            self.frames.pop_front();
            self.frames_start += FRAME as u64;
        }
    }
}

fn path_detail(path: ClapPath) -> String {
    path.as_str().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_serialise_snake_case() {
        for k in EventKind::ALL {
            let json = serde_json::to_string(&k).unwrap();
            assert_eq!(json, format!("\"{}\"", k.as_str()));
        }
        let rules = HearingConfig::default_rules();
        assert_eq!(rules.len(), EventKind::ALL.len());
    }

    #[test]
    fn hearing_is_send() {
        fn send<T: Send>() {}
        send::<Hearing>();
        send::<HearingOutput>();
    }
}
