//! YAMNet: Google's sound-event classifier (MobileNet v1 on 0.96 s log-mel patches, 521
//! AudioSet classes), with the exact TensorFlow frontend. The model and the frontend are
//! specified in `models/README.md`.
//!
//! ```no_run
//! # fn main() -> Result<(), cav_models::ModelError> {
//! use cav_models::yamnet::{LogMelFrontend, Yamnet};
//! let model = Yamnet::load("models/yamnet.safetensors".as_ref(), "models/yamnet_class_map.csv".as_ref())?;
//! let mut frontend = LogMelFrontend::new();
//! let waveform = vec![0.0f32; 16_000]; // 16 kHz mono in [-1, 1]
//! let outputs = model.infer(&frontend.patches(&waveform))?;
//! for (class, score) in Yamnet::top_k(&outputs[0].scores, 3) {
//!     println!("{} {score:.3}", model.class_name(class));
//! }
//! # Ok(()) }
//! ```

pub(crate) mod class_map;
mod depthwise;
mod frontend;
mod network;

pub use frontend::{
    mel_weight_matrix, num_frames, num_patches, padded_len, periodic_hann, LogMelFrontend, Patch,
    FFT_LEN, FRAME_HOP, FRAME_LEN, LOG_OFFSET, MEL_MAX_HZ, MEL_MIN_HZ, NUM_BINS, NUM_MELS,
    PATCH_FRAMES, PATCH_HOP_FRAMES, PATCH_HOP_SAMPLES, PATCH_LEN, PATCH_WINDOW_SAMPLES,
    SAMPLE_RATE,
};
pub use network::{DepthwiseImpl, Yamnet, YamnetOutput, EMBEDDING_LEN, NUM_CLASSES, NUM_CONVS};
