//! Neural models run with candle on the CPU.
//!
//! * [`yamnet`]: Google's YAMNet sound-event classifier (521 AudioSet classes) with its exact
//!   TensorFlow log-mel frontend.

pub mod activity_head;
mod error;
pub mod hearing;
pub mod scene;
pub mod vision;
pub mod yamnet;

pub use error::ModelError;
pub use vision::{Posture, Vision, VisionError, VisionResult};
pub use yamnet::{LogMelFrontend, Patch, Yamnet, YamnetOutput};
