//! The capture thread: opens a device with cpal, owns its stream (cpal streams are not `Send`),
//! and feeds the pipeline's audio queue from the stream's callbacks until told to stop or until
//! the stream breaks.
//!
//! The thread knows nothing of actors. Its owner reads how it is doing from [`CaptureThread`]
//! (the device and format once opened, the time of the latest samples) and, when it has ended,
//! why ([`CaptureThread::join`]): `Ok` after a stop request, an error when the device could not
//! be opened or went away.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cav_core::{Clock, MonotonicClock, Timestamp};
use cpal::traits::{DeviceTrait, StreamTrait};
use crossbeam_channel::{Receiver, Sender};

use super::capture::{CaptureFormat, ChunkAssembler};
use super::convert::{choose_config, data_to_f32};
use super::{resolve, AudioDevice, DeviceSelector, MicError};
use crate::health::{SourceCounters, StatusBoard};
use crate::messages::{AudioChunk, SourceId};
use crate::queue::DropOldest;

/// This many stream errors within [`ERROR_WINDOW`] mean the stream is broken, not glitching:
/// cpal's ALSA backend reports a failing poll (a PulseAudio server that went away) once per
/// loop, thousands of times a second, without ever ending the stream.
const ERROR_STORM: u32 = 20;
const ERROR_WINDOW: Duration = Duration::from_secs(1);
/// A capture age (cpal's `callback − capture`) above this is not believed.
const MAX_BELIEVABLE_AGE: Duration = Duration::from_secs(2);

/// What the capture thread needs.
pub struct CaptureJob {
    pub selector: DeviceSelector,
    /// The pipeline source these chunks belong to (also the status board's key).
    pub source: SourceId,
    pub clock: Arc<MonotonicClock>,
    pub audio_out: DropOldest<AudioChunk>,
    pub counters: Arc<SourceCounters>,
    pub board: StatusBoard,
    /// A capture being replaced: the new thread waits for it to end before opening its device,
    /// so that the two never hold a device at once (raw ALSA devices are exclusive) and their
    /// chunks do not interleave.
    pub previous: Option<CaptureThread>,
}

/// What the thread shares with its owner.
#[derive(Debug, Default)]
struct Shared {
    opened: Mutex<Option<(AudioDevice, CaptureFormat)>>,
    /// Clock time (µs) of the latest callback; 0 before the first.
    last_data_us: AtomicI64,
    reanchors: AtomicI64,
}

/// A running capture thread. Dropping it stops the thread without waiting for it.
#[derive(Debug)]
pub struct CaptureThread {
    stop: Sender<()>,
    handle: JoinHandle<Result<(), MicError>>,
    shared: Arc<Shared>,
    selector: DeviceSelector,
}

impl CaptureThread {
    /// Starts a thread capturing from `job.selector`'s device.
    pub fn spawn(job: CaptureJob) -> Result<Self, MicError> {
        let (stop, stop_rx) = crossbeam_channel::bounded(1);
        let shared = Arc::new(Shared::default());
        let selector = job.selector.clone();
        let handle = std::thread::Builder::new()
            .name(format!("mic-{}", job.source))
            .spawn({
                let shared = shared.clone();
                move || run(job, stop_rx, shared)
            })
            .map_err(|e| MicError::Internal(format!("cannot start the capture thread: {e}")))?;
        Ok(Self {
            stop,
            handle,
            shared,
            selector,
        })
    }

    /// What this thread was asked to capture.
    pub fn selector(&self) -> &DeviceSelector {
        &self.selector
    }

    /// Asks the thread to stop (it drops the stream and ends within milliseconds).
    pub fn request_stop(&self) {
        let _ = self.stop.try_send(());
    }

    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }

    /// Waits for the thread to end: `Ok` when it was stopped, else why it failed.
    pub fn join(self) -> Result<(), MicError> {
        self.handle
            .join()
            .unwrap_or_else(|_| Err(MicError::Internal("the capture thread panicked".into())))
    }

    /// Stops the thread and waits up to `limit` for it; false if it did not end in time (it is
    /// then left to end on its own).
    pub fn stop_and_wait(self, limit: Duration) -> bool {
        self.request_stop();
        let deadline = Instant::now() + limit;
        while !self.handle.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        if self.handle.is_finished() {
            let _ = self.join();
            true
        } else {
            false
        }
    }

    /// The device and format, once the stream is open.
    pub fn opened(&self) -> Option<(AudioDevice, CaptureFormat)> {
        self.shared
            .opened
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// When the latest callback came, if any has.
    pub fn last_data(&self) -> Option<Timestamp> {
        match self.shared.last_data_us.load(Ordering::Relaxed) {
            0 => None,
            us => Some(Timestamp::from_micros(us)),
        }
    }

    /// How often this stream's timeline was re-anchored (see [`ChunkAssembler`]).
    pub fn reanchors(&self) -> u64 {
        self.shared.reanchors.load(Ordering::Relaxed).max(0) as u64
    }
}

fn run(job: CaptureJob, stop: Receiver<()>, shared: Arc<Shared>) -> Result<(), MicError> {
    if let Some(previous) = job.previous {
        previous.request_stop();
        let _ = previous.join();
    }
    if stop.try_recv().is_ok() {
        return Ok(());
    }
    let (info, device) = resolve(&job.selector)?;
    let name = info.name.clone();
    let supported: Vec<_> = device
        .supported_input_configs()
        .map_err(|e| MicError::Formats {
            device: name.clone(),
            reason: e.to_string(),
        })?
        .collect();
    let config =
        choose_config(device.default_input_config().ok(), &supported).ok_or_else(|| {
            MicError::UnsupportedFormat {
                device: name.clone(),
                offered: offered(&supported),
            }
        })?;
    let format = CaptureFormat {
        sample_rate: config.sample_rate().0,
        channels: config.channels(),
        sample_format: config.sample_format().to_string(),
    };
    let mut assembler = ChunkAssembler::new(format.sample_rate, format.channels)?;

    let (errors_tx, errors) = crossbeam_channel::bounded::<cpal::StreamError>(256);
    // Errors are counted where they are received, not here: a broken stream reports thousands
    // a second until it is recognised as broken, and those are one failure, not glitches.
    let on_error = move |e: cpal::StreamError| {
        let _ = errors_tx.try_send(e);
    };

    let on_data = {
        let (clock, audio_out, counters, board, source) = (
            job.clock.clone(),
            job.audio_out.clone(),
            job.counters.clone(),
            job.board.clone(),
            job.source.clone(),
        );
        let shared = shared.clone();
        let (rate, channels) = (format.sample_rate, usize::from(format.channels));
        let mut buffer: Vec<f32> = Vec::new();
        let mut callbacks = 0u64;
        move |data: &cpal::Data, cb: &cpal::InputCallbackInfo| {
            let now = clock.now();
            shared.last_data_us.store(now.micros(), Ordering::Relaxed);
            buffer.clear();
            if !data_to_f32(data, &mut buffer) {
                counters.decode_errors.fetch_add(1, Ordering::Relaxed);
                return;
            }
            let frames = buffer.len() / channels.max(1);
            let captured = now - capture_age(cb, frames, rate);
            callbacks += 1;
            if callbacks <= 3 {
                let ts = cb.timestamp();
                tracing::debug!(
                    source = %source,
                    frames,
                    age_us = ts.callback.duration_since(&ts.capture).map_or(-1, |d| d.as_micros() as i64),
                    "capture callback"
                );
            }
            match assembler.push(&buffer, captured) {
                Ok(chunks) => {
                    for (stamp, samples) in chunks {
                        counters.audio_chunks.fetch_add(1, Ordering::Relaxed);
                        counters
                            .audio_samples
                            .fetch_add(samples.len() as u64, Ordering::Relaxed);
                        board.source_audio_at(&source, stamp);
                        audio_out.push(AudioChunk {
                            source: source.clone(),
                            captured: stamp,
                            samples,
                        });
                    }
                }
                Err(e) => {
                    counters.decode_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(source = %source, error = %e, "cannot resample captured audio");
                }
            }
            shared
                .reanchors
                .store(assembler.reanchors() as i64, Ordering::Relaxed);
        }
    };

    let stream = device
        .build_input_stream_raw(
            &config.config(),
            config.sample_format(),
            on_data,
            on_error,
            None,
        )
        .map_err(|e| MicError::Build {
            device: name.clone(),
            format: format.to_string(),
            reason: e.to_string(),
        })?;
    stream.play().map_err(|e| MicError::Play {
        device: name.clone(),
        reason: e.to_string(),
    })?;
    tracing::info!(source = %job.source, device = %name, index = info.index, format = %format, "capture stream open");
    *shared.opened.lock().unwrap_or_else(|p| p.into_inner()) = Some((info, format));

    let mut window_start = Instant::now();
    let mut window_errors = 0u32;
    let outcome = loop {
        crossbeam_channel::select! {
            // A stop request, or the owner dropped its handle.
            recv(stop) -> _ => break Ok(()),
            recv(errors) -> e => match e {
                Ok(cpal::StreamError::DeviceNotAvailable) => {
                    break Err(MicError::DeviceGone { device: name.clone() });
                }
                Ok(cpal::StreamError::BackendSpecific { err }) => {
                    job.counters.decode_errors.fetch_add(1, Ordering::Relaxed);
                    if window_start.elapsed() > ERROR_WINDOW {
                        window_start = Instant::now();
                        window_errors = 0;
                    }
                    window_errors += 1;
                    if window_errors == 1 {
                        tracing::warn!(source = %job.source, device = %name, error = %err, "capture stream error");
                    }
                    if window_errors >= ERROR_STORM {
                        break Err(MicError::StreamFailed {
                            device: name.clone(),
                            reason: err.to_string(),
                        });
                    }
                }
                // Cannot happen while the stream (which owns the sender) lives.
                Err(_) => break Ok(()),
            },
        }
    };
    // Dropping the stream stops cpal's worker thread (and with it the callbacks).
    drop(stream);
    if let Err(e) = &outcome {
        tracing::warn!(source = %job.source, device = %name, error = %e, "capture stream ended");
    }
    outcome
}

/// How long before the callback the first frame of its buffer was captured: cpal's
/// `callback − capture` (ALSA's delay: what the device has queued, this buffer included) when
/// believable, else the buffer's own length (the least it can be). Through the ALSA pulse
/// plugin the delay always reads 0 (measured), so there the buffer's length is what is used;
/// the stamps then run late by PulseAudio's own capture latency (a few tens of ms).
fn capture_age(cb: &cpal::InputCallbackInfo, frames: usize, rate: u32) -> Duration {
    let buffer = Duration::from_secs_f64(frames as f64 / f64::from(rate.max(1)));
    let ts = cb.timestamp();
    match ts.callback.duration_since(&ts.capture) {
        Some(age) if age <= MAX_BELIEVABLE_AGE => age.max(buffer),
        _ => buffer,
    }
}

fn offered(supported: &[cpal::SupportedStreamConfigRange]) -> String {
    if supported.is_empty() {
        return "nothing".into();
    }
    supported
        .iter()
        .map(|r| {
            format!(
                "{} {}–{} Hz {} ch",
                r.sample_format(),
                r.min_sample_rate().0,
                r.max_sample_rate().0,
                r.channels()
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}
