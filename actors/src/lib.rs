//! The classify-audio-video pipeline: typed messages and one actix actor per file, plus the
//! adapters the actors drive (media decoding, the sled store, HTTP delivery) and the offline
//! analyser.
//!
//! Only [`actor`], [`pipeline`], [`messages`] and [`supervise`] know about actix. [`media`],
//! [`store`], [`delivery`], [`queue`], [`health`], [`metrics`] and [`offline`] are plain blocking Rust, and the
//! computing lives in `cav-core`.

pub mod actor;
pub mod analysis;
pub mod analysis_obs;
pub mod delivery;
pub mod events;
pub mod health;
pub mod jobs;
pub mod labelled;
pub mod media;
pub mod messages;
pub mod metrics;
pub mod mic;
pub mod mqtt;
pub mod obs;
pub mod offline;
pub mod pipeline;
pub mod queue;
pub mod resample;
pub mod store;
pub mod supervise;
