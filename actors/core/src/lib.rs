//! The pure core of classify-audio-video.
//!
//! Everything here is plain Rust: no actors, no threads, no I/O, no OpenCV. Sources and actors
//! (crate `cav-actors`) feed it pixel buffers and sample slices and get numbers back, and the
//! offline analyser (`cav analyze`) drives the very same functions without actors. That is what
//! makes the DSP, the rules and the time alignment unit-testable with synthetic inputs.
//!
//! The data flows through the modules in this order:
//! [`align`] (frames + samples → aligned spans) → [`features`] (span → numbers, using
//! [`video_features`] and [`audio_features`]) → [`window`] (spans → window summary) →
//! [`classify`] (summary → decision).

pub mod align;
pub mod audio_features;
pub mod avsync;
pub mod baseline;
pub mod classify;
pub mod clipbuf;
pub mod feature_vector;
pub mod features;
pub mod frame;
pub mod history;
pub mod level;
pub mod observe;
pub mod pitch;
pub mod smooth;
pub mod stats;
pub mod time;
pub mod vban;
pub mod video_features;
pub mod window;

pub use classify::{ActivityClass, Classifier, Decision, RuleClassifier, Scores};
pub use frame::{Frame, FrameError, GrayImage};
pub use time::{Clock, ManualClock, MonotonicClock, Timestamp};

/// The pipeline's audio format: mono `f32` samples in [-1, 1] at this rate.
pub const SAMPLE_RATE: u32 = 16_000;
