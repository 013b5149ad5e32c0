//! The actors: one per file, each with its own control messages. Actors move messages, own
//! state and handle failure; the computing is done by `cav-core`.

pub mod audio_path;
pub mod classifier;
pub mod features;
pub mod file_source;
pub mod mic_source;
pub mod mqtt;
pub mod obs_source;
pub mod outbox;
pub mod rtsp_source;
pub mod source_manager;
pub mod store_writer;
pub mod sync;
pub mod vban_source;
pub mod vision;
