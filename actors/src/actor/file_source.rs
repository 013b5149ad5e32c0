//! The media-file source: plays a file's frames and audio into the pipeline as if they came
//! from a live camera and microphone, paced in real time, optionally looping.
//!
//! The actor owns a worker thread (decoding is blocking OpenCV/Symphonia work) and supervises
//! it: when the worker fails, the error is shown in `/api/status` and the file is retried with
//! exponential backoff (1 s doubling to 60 s). The worker stamps frame `k` with
//! `anchor + pts(k)` and each audio chunk with `anchor + first_sample / 16 kHz`, where the anchor
//! is the clock reading when playback (or a loop) began, so both streams share one timeline.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use actix::prelude::*;
use cav_core::{Clock, MonotonicClock, Timestamp};

use crate::health::{ActorState, SourceCounters, SourceState, StatusBoard};
use crate::media::{AudioDecoder, MediaError, VideoDecoder};
use crate::messages::{AudioChunk, ExpectStreams, SourceId, VideoFrame};
use crate::queue::DropOldest;

/// Samples per audio chunk: 50 ms, like a sound card's period. Short chunks keep sound events
/// (a clap's webhook) prompt: a chunk is only delivered once all of it has been "captured".
pub const CHUNK_SAMPLES: usize = 800;

#[derive(Clone, Debug)]
pub struct FileSourceSettings {
    pub id: String,
    pub path: PathBuf,
    pub looping: bool,
    /// Which of the file's streams to play (a file can stand in for a camera, a microphone,
    /// or both).
    pub streams: Streams,
    pub analysis_fps: f64,
    pub analysis_width: u32,
}

/// Which streams of a file a source plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Streams {
    pub video: bool,
    pub audio: bool,
}

/// Stops the worker and waits (up to a few seconds) for it to finish.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct StopSource;

struct Worker {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Result<(), MediaError>>,
}

pub struct FileSource {
    settings: FileSourceSettings,
    pub(crate) board: StatusBoard,
    clock: Arc<MonotonicClock>,
    video_out: DropOldest<VideoFrame>,
    audio_out: DropOldest<AudioChunk>,
    sync: Recipient<ExpectStreams>,
    counters: Arc<SourceCounters>,
    worker: Option<Worker>,
    backoff: Duration,
    retry_at: Option<Instant>,
    stopped: bool,
}

impl FileSource {
    pub const NAME: &'static str = "file_source";

    pub fn new(
        settings: FileSourceSettings,
        board: StatusBoard,
        clock: Arc<MonotonicClock>,
        video_out: DropOldest<VideoFrame>,
        audio_out: DropOldest<AudioChunk>,
        sync: Recipient<ExpectStreams>,
        counters: Arc<SourceCounters>,
    ) -> Self {
        Self {
            settings,
            board,
            clock,
            video_out,
            audio_out,
            sync,
            counters,
            worker: None,
            backoff: Duration::from_secs(1),
            retry_at: None,
            stopped: false,
        }
    }

    fn spawn_worker(&mut self) {
        let stop = Arc::new(AtomicBool::new(false));
        let job = PlayJob {
            settings: self.settings.clone(),
            stop: stop.clone(),
            board: self.board.clone(),
            clock: self.clock.clone(),
            video_out: self.video_out.clone(),
            audio_out: self.audio_out.clone(),
            sync: self.sync.clone(),
            counters: self.counters.clone(),
        };
        let spawned = std::thread::Builder::new()
            .name(format!("source-{}", self.settings.id))
            .spawn(move || job.run());
        match spawned {
            Ok(handle) => self.worker = Some(Worker { stop, handle }),
            Err(e) => self.fail(format!("cannot start the decoder thread: {e}")),
        }
    }

    fn fail(&mut self, error: String) {
        tracing::warn!(source = %self.settings.id, error = %error, retry_in_s = self.backoff.as_secs(), "file source failed");
        self.board
            .source_error(&self.settings.id, error, self.clock.now());
        self.retry_at = Some(Instant::now() + self.backoff);
        self.backoff = (self.backoff * 2).min(Duration::from_secs(60));
    }

    /// Reaps a finished worker and restarts it when due.
    fn check(&mut self) {
        if self.stopped {
            return;
        }
        if let Some(w) = self.worker.as_ref() {
            if !w.handle.is_finished() {
                return;
            }
            if let Some(w) = self.worker.take() {
                match w.handle.join() {
                    Ok(Ok(())) => {
                        self.board.source_state(
                            &self.settings.id,
                            SourceState::Ended,
                            Some("end of file".into()),
                            self.clock.now(),
                        );
                        self.stopped = true;
                    }
                    Ok(Err(e)) => self.fail(e.to_string()),
                    Err(_) => self.fail("the decoder thread panicked".into()),
                }
            }
            return;
        }
        if self.retry_at.is_some_and(|t| Instant::now() >= t) {
            self.retry_at = None;
            self.spawn_worker();
        }
    }

    /// Stops the worker thread. `halt` also keeps it from being started again (a requested stop);
    /// without it (the actor itself is stopping, e.g. to be restarted after a crash) the next
    /// start of the actor starts a new worker.
    fn stop_worker(&mut self, halt: bool) {
        if halt {
            self.stopped = true;
        }
        if let Some(w) = self.worker.take() {
            w.stop.store(true, Ordering::SeqCst);
            // The worker checks the flag at least every 50 ms.
            let deadline = Instant::now() + Duration::from_secs(3);
            while !w.handle.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if w.handle.is_finished() {
                let _ = w.handle.join();
            }
        }
        self.board.source_state(
            &self.settings.id,
            SourceState::Stopped,
            None,
            self.clock.now(),
        );
    }
}

impl Actor for FileSource {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.board
            .actor_state(Self::NAME, ActorState::Running, self.clock.now());
        if self.worker.is_none() && !self.stopped {
            self.spawn_worker();
        }
        ctx.run_interval(Duration::from_millis(200), |this, _| this.check());
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        self.stop_worker(false);
        self.board
            .actor_state(Self::NAME, ActorState::Stopped, self.clock.now());
    }
}

impl Supervised for FileSource {
    fn restarting(&mut self, _: &mut Self::Context) {
        self.board.actor_restarted(Self::NAME, self.clock.now());
    }
}

impl Handler<StopSource> for FileSource {
    type Result = ();
    fn handle(&mut self, _: StopSource, _: &mut Self::Context) {
        self.stop_worker(true);
    }
}

crate::impl_inject_panic!(FileSource);

/// Everything the worker thread needs.
struct PlayJob {
    settings: FileSourceSettings,
    stop: Arc<AtomicBool>,
    board: StatusBoard,
    clock: Arc<MonotonicClock>,
    video_out: DropOldest<VideoFrame>,
    audio_out: DropOldest<AudioChunk>,
    sync: Recipient<ExpectStreams>,
    counters: Arc<SourceCounters>,
}

enum Next {
    Frame(f64),
    Audio(f64),
}

impl PlayJob {
    /// Sleeps until `t`, waking every 50 ms to honour the stop flag. False when stopped.
    fn sleep_until(&self, t: Timestamp) -> bool {
        let target = self.clock.instant_of(t);
        loop {
            if self.stop.load(Ordering::SeqCst) {
                return false;
            }
            let now = Instant::now();
            if now >= target {
                return true;
            }
            std::thread::sleep((target - now).min(Duration::from_millis(50)));
        }
    }

    fn run(self) -> Result<(), MediaError> {
        let s = &self.settings;
        let source: SourceId = Arc::from(s.id.as_str());
        let id = s.id.as_str();
        let info = crate::media::probe(&s.path)?;
        let mut video = match info.video {
            Some(_) if s.streams.video => {
                Some(VideoDecoder::open(&s.path, Some(s.analysis_width))?)
            }
            _ => None,
        };
        let mut audio = match info.audio {
            Some(_) if s.streams.audio => AudioDecoder::open(&s.path)?,
            _ => None,
        };
        if video.is_none() && audio.is_none() {
            return Err(MediaError::Open {
                path: s.path.clone(),
                reason: format!(
                    "the file has none of the streams this source plays (video: {}, audio: {})",
                    s.streams.video, s.streams.audio
                ),
            });
        }
        let _ = self.sync.try_send(ExpectStreams {
            video: s.streams.video.then_some(video.is_some()),
            audio: s.streams.audio.then_some(audio.is_some()),
        });
        let detail = format!(
            "{} (video: {}, audio: {})",
            s.path.display(),
            video.as_ref().map_or("none".to_string(), |v| {
                let (w, h) = v.output_size();
                format!("{w}x{h} at {:.1} fps", s.analysis_fps.min(v.info().fps))
            }),
            audio.as_ref().map_or("none".to_string(), |a| {
                format!(
                    "{} Hz {} ch {}",
                    a.info().sample_rate,
                    a.info().channels,
                    a.info().codec
                )
            }),
        );
        self.board
            .source_state(id, SourceState::Running, Some(detail), self.clock.now());
        tracing::info!(source = id, path = %s.path.display(), "file source playing");

        let interval = 1.0 / s.analysis_fps;
        let mut anchor = self.clock.now();
        let mut seq = 0u64;
        loop {
            let mut next_frame = match video.as_mut() {
                Some(v) => v.next_frame_every(interval)?,
                None => None,
            };
            let mut chunk_start = audio.as_ref().map_or(0, |a| a.position_samples());
            let mut next_chunk = match audio.as_mut() {
                Some(a) => a.next_chunk(CHUNK_SAMPLES)?,
                None => None,
            };
            let mut media_end = 0.0f64;
            while next_frame.is_some() || next_chunk.is_some() {
                let frame_t = next_frame.as_ref().map(|f| f.pts_s);
                // A chunk is delivered once its last sample has been "captured".
                let chunk_t = next_chunk
                    .as_ref()
                    .map(|c| (chunk_start + c.len() as u64) as f64 / cav_core::SAMPLE_RATE as f64);
                let next = match (frame_t, chunk_t) {
                    (Some(f), Some(a)) if f <= a => Next::Frame(f),
                    (Some(f), None) => Next::Frame(f),
                    (_, Some(a)) => Next::Audio(a),
                    (None, None) => break,
                };
                match next {
                    Next::Frame(pts) => {
                        if !self.sleep_until(anchor + Duration::from_secs_f64(pts.max(0.0))) {
                            return Ok(());
                        }
                        if let Some(f) = next_frame.take() {
                            let captured = anchor + Duration::from_secs_f64(f.pts_s.max(0.0));
                            self.video_out.push(VideoFrame {
                                source: source.clone(),
                                seq,
                                captured,
                                frame: f.frame,
                            });
                            seq += 1;
                            self.counters.frames.fetch_add(1, Ordering::Relaxed);
                            self.board.source_frame_at(id, captured);
                            media_end = media_end.max(pts + interval);
                        }
                        next_frame = match video.as_mut() {
                            Some(v) => v.next_frame_every(interval)?,
                            None => None,
                        };
                    }
                    Next::Audio(end) => {
                        if !self.sleep_until(anchor + Duration::from_secs_f64(end)) {
                            return Ok(());
                        }
                        if let Some(samples) = next_chunk.take() {
                            let captured = anchor
                                + Duration::from_secs_f64(
                                    chunk_start as f64 / cav_core::SAMPLE_RATE as f64,
                                );
                            self.counters.audio_chunks.fetch_add(1, Ordering::Relaxed);
                            self.counters
                                .audio_samples
                                .fetch_add(samples.len() as u64, Ordering::Relaxed);
                            self.board.source_audio_at(id, captured);
                            self.audio_out.push(AudioChunk {
                                source: source.clone(),
                                captured,
                                samples,
                            });
                            media_end = media_end.max(end);
                        }
                        chunk_start = audio.as_ref().map_or(0, |a| a.position_samples());
                        next_chunk = match audio.as_mut() {
                            Some(a) => a.next_chunk(CHUNK_SAMPLES)?,
                            None => None,
                        };
                    }
                }
            }
            self.counters.decode_errors.store(
                video.as_ref().map_or(0, |v| v.skipped())
                    + audio.as_ref().map_or(0, |a| a.skipped_packets()),
                Ordering::Relaxed,
            );
            if !s.looping {
                return Ok(());
            }
            if media_end <= 0.0 {
                return Err(MediaError::Decode {
                    path: s.path.clone(),
                    reason: "the file has no frames or samples to play".into(),
                });
            }
            // The next pass continues the timeline right where this one ended.
            anchor = anchor + Duration::from_secs_f64(media_end);
            self.counters.loops.fetch_add(1, Ordering::Relaxed);
            if let Some(v) = video.as_mut() {
                v.rewind()?;
            }
            if let Some(a) = audio.as_mut() {
                a.rewind()?;
            }
        }
    }
}
