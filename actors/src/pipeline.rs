//! Wiring: starts the actors in their arbiters, connects them, and shuts them down in order.
//!
//! Threads: the analysis arbiter runs sync, features and classifier (CPU work off the HTTP
//! thread); the store arbiter runs the store writer (fsync must not stall analysis); the file
//! source's decoding runs on its own worker thread; the outbox delivers on a thread per destination.
//! Shutdown stops the sources first, then flushes the store, so nothing in flight is lost
//! except a partial classification window.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use cav_core::{Classifier, Clock, MonotonicClock};

use crate::actor::audio_path::{AudioPath, HearingKit};
use crate::actor::classifier::ClassifierActor;
use crate::actor::features::FeatureActor;
use crate::actor::file_source::{FileSource, FileSourceSettings, StopSource};
use crate::actor::obs_source::ObsSource;
use crate::actor::outbox::{OutboxDispatcher, OutboxSettings};
use crate::actor::source_manager::{AdoptPath, ApplySources, AudioSourceSpec, SourceManager};
use crate::actor::store_writer::{Flush, StoreSettings, StoreWriter};
use crate::actor::sync::{SetVision, SyncActor, SyncSettings};
use crate::actor::vision::VisionActor;
use crate::health::StatusBoard;
use crate::messages::{AudioChunk, Classification, ExpectStreams};
use crate::obs::ObsSettings;
use crate::queue::{drop_oldest, DropOldest};
use crate::store::Store;
use crate::supervise::Alive;

#[derive(Clone, Debug)]
pub struct PipelineSettings {
    pub file_source: Option<FileSourceSettings>,
    /// The OBS video source: its id and settings.
    pub obs: Option<(String, ObsSettings)>,
    /// Id of the audio source the activity classifier hears (`None`: video only).
    pub primary_audio: Option<String>,
    /// The configured audio sources (microphones, RTSP, VBAN streams).
    pub audio_sources: Vec<AudioSourceSpec>,
    /// YAMNet and the event rules; `None` turns hearing off.
    pub hearing: Option<(Arc<cav_models::Yamnet>, cav_models::hearing::HearingConfig)>,
    /// Where the file source's sound events are POSTed.
    pub file_webhook: Option<String>,
    /// Where the VBAN receiver listens (when a VBAN source is enabled).
    pub vban_bind: std::net::SocketAddr,
    pub sync: SyncSettings,
    pub window: Duration,
    /// Hysteresis between consecutive windows' decisions.
    pub smoothing: cav_core::smooth::SmoothingSettings,
    pub motion_threshold: u8,
    pub queue_frames: usize,
    pub queue_chunks: usize,
    /// Spans, the external service's schedule, retention.
    pub store: StoreSettings,
    /// Where deliveries go and how they are retried.
    pub outbox: OutboxSettings,
    /// Frames per second the vision models look at, and what they run; `None`: no vision.
    pub vision: Option<(f64, cav_models::vision::VisionOptions)>,
}

/// Addresses of the running actors.
pub struct Pipeline {
    pub board: StatusBoard,
    pub store: Store,
    pub file_source: Option<Addr<FileSource>>,
    pub obs: Option<Addr<ObsSource>>,
    /// Runs the `[[sources]]` audio sources; changes them at run time.
    pub sources: Addr<SourceManager>,
    pub sync: Addr<SyncActor>,
    pub features: Addr<FeatureActor>,
    pub classifier: Addr<ClassifierActor>,
    pub store_writer: Addr<StoreWriter>,
    pub outbox: Addr<OutboxDispatcher>,
    pub vision: Option<Addr<VisionActor>>,
    /// Analysis paths of the built-in sources' audio.
    pub audio_paths: Vec<Addr<AudioPath>>,
    /// The sync stage's audio queue, for the source the classifier hears.
    pub sync_audio: DropOldest<AudioChunk>,
    arbiters: Vec<Arbiter>,
}

impl Pipeline {
    /// Starts everything. Must be called inside a running actix `System`.
    /// Starts everything on an open store (it outlives pipelines: a configuration reload stops
    /// one pipeline and starts the next on the same store).
    pub fn start(
        settings: PipelineSettings,
        store: Store,
        board: StatusBoard,
        clock: Arc<MonotonicClock>,
        classifier: Arc<dyn Classifier>,
    ) -> Self {
        let analysis = Arbiter::new();
        let storage = Arbiter::new();

        let outbox = {
            let (board, clock, store) = (board.clone(), clock.clone(), store.clone());
            let outbox_settings = settings.outbox.clone();
            Supervisor::start_in_arbiter(&storage.handle(), move |_| {
                OutboxDispatcher::new(board, clock, store, outbox_settings)
            })
        };
        let store_writer = {
            let (board, clock, store) = (board.clone(), clock.clone(), store.clone());
            let (store_settings, wake) = (settings.store.clone(), outbox.clone().recipient());
            Supervisor::start_in_arbiter(&storage.handle(), move |_| {
                StoreWriter::new(board, clock, store, store_settings, wake)
            })
        };

        let outputs: Vec<Recipient<Classification>> = vec![store_writer.clone().recipient()];
        // Where the window's data came from, e.g. "file" or "obs+file".
        let source_name = {
            let mut ids: Vec<&str> = Vec::new();
            if let Some((id, _)) = &settings.obs {
                ids.push(id);
            }
            if let Some(f) = &settings.file_source {
                ids.push(&f.id);
            }
            if ids.is_empty() {
                "none".to_string()
            } else {
                ids.join("+")
            }
        };
        let classifier_addr = {
            let (board, clock, window) = (board.clone(), clock.clone(), settings.window);
            let smoothing = settings.smoothing;
            Supervisor::start_in_arbiter(&analysis.handle(), move |_| {
                ClassifierActor::new(
                    board,
                    clock,
                    window,
                    source_name,
                    classifier,
                    smoothing,
                    outputs,
                )
            })
        };
        let features = {
            let (board, clock, next) = (
                board.clone(),
                clock.clone(),
                classifier_addr.clone().recipient(),
            );
            let threshold = settings.motion_threshold;
            Supervisor::start_in_arbiter(&analysis.handle(), move |_| {
                FeatureActor::new(board, clock, threshold, next)
            })
        };

        // Which source feeds which stream: OBS (when enabled) is the camera, else the file
        // source's video; the classifier hears one audio source (`primary_audio`), whose
        // analysis path passes its chunks on to sync. Config validation guarantees a single
        // video producer.
        let file_plays = settings
            .file_source
            .as_ref()
            .map(|f| (f.streams.video, f.streams.audio));
        let video_from_obs = settings.obs.is_some();
        let file_counters = settings
            .file_source
            .as_ref()
            .map(|f| board.register_source(&f.id, "file", clock.now()));
        let obs_counters = settings
            .obs
            .as_ref()
            .map(|(id, _)| board.register_source(id, "obs", clock.now()));
        // Each queue counts its evictions into the counters of the source that fills it.
        let video_counters = obs_counters
            .clone()
            .or_else(|| file_counters.clone())
            .unwrap_or_default();
        let (video_tx, video_rx) =
            drop_oldest(settings.queue_frames, video_counters.frames_dropped.clone());
        let (sync_audio_tx, sync_audio_rx) = drop_oldest(
            settings.queue_chunks,
            board.counters().sync_audio_dropped.clone(),
        );
        let sync = {
            let (board, clock, next) = (board.clone(), clock.clone(), features.clone().recipient());
            let sync_settings = settings.sync;
            Supervisor::start_in_arbiter(&analysis.handle(), move |_| {
                SyncActor::new(sync_settings, board, clock, video_rx, sync_audio_rx, next)
            })
        };
        let mut arbiters = vec![analysis, storage];
        let vision = settings.vision.map(|(fps, options)| {
            let arbiter = Arbiter::new();
            let (board, clock) = (board.clone(), clock.clone());
            let observer = classifier_addr.clone().recipient();
            let addr = Supervisor::start_in_arbiter(&arbiter.handle(), move |_| {
                VisionActor::new(board, clock, options, Some(observer))
            });
            sync.do_send(SetVision {
                vision: addr.clone().recipient(),
                every: Duration::from_secs_f64(1.0 / fps),
            });
            arbiters.push(arbiter);
            addr
        });
        sync.do_send(ExpectStreams {
            video: Some(video_from_obs || file_plays.is_some_and(|(v, _)| v)),
            audio: Some(settings.primary_audio.is_some()),
        });
        let hearing = Arbiter::new();
        let kit = settings.hearing.clone().map(|(yamnet, config)| HearingKit {
            yamnet,
            config,
            store: store_writer.clone().recipient(),
            classifier: Some(classifier_addr.clone().recipient()),
        });
        let mut paths = Vec::new();
        let file_id = settings
            .file_source
            .as_ref()
            .map_or_else(|| "file".to_string(), |f| f.id.clone());
        let file_source = match (settings.file_source, file_counters) {
            (Some(fs), Some(counters)) => {
                let (file_audio_tx, file_audio_rx) =
                    drop_oldest(settings.queue_chunks, counters.audio_chunks_dropped.clone());
                if fs.streams.audio {
                    let primary = (settings.primary_audio.as_deref() == Some(fs.id.as_str()))
                        .then(|| sync_audio_tx.clone());
                    let (board, clock, id, kit, webhook) = (
                        board.clone(),
                        clock.clone(),
                        fs.id.clone(),
                        kit.clone(),
                        settings.file_webhook.clone(),
                    );
                    paths.push(Supervisor::start_in_arbiter(&hearing.handle(), move |_| {
                        AudioPath::new(id, board, clock, file_audio_rx, primary, kit, webhook)
                    }));
                }
                let (board, clock, expect) =
                    (board.clone(), clock.clone(), sync.clone().recipient());
                let video_tx = video_tx.clone();
                Some(Supervisor::start(move |_| {
                    FileSource::new(fs, board, clock, video_tx, file_audio_tx, expect, counters)
                }))
            }
            _ => None,
        };
        let obs = match (settings.obs, obs_counters) {
            (Some((id, obs_settings)), Some(counters)) => {
                let (board, clock) = (board.clone(), clock.clone());
                Some(Supervisor::start(move |_| {
                    ObsSource::new(obs_settings, id, board, clock, video_tx, counters)
                }))
            }
            _ => None,
        };

        let sources = {
            let (board, clock, sync_audio, hearing) = (
                board.clone(),
                clock.clone(),
                sync_audio_tx.clone(),
                hearing.handle(),
            );
            let queue_chunks = settings.queue_chunks;
            let vban_bind = settings.vban_bind;
            SourceManager::new(
                board,
                clock,
                queue_chunks,
                sync_audio,
                hearing,
                kit,
                vban_bind,
            )
            .start()
        };
        if let Some(fs_path) = paths.first() {
            sources.do_send(AdoptPath {
                id: file_id.clone(),
                path: fs_path.clone(),
            });
        }
        sources.do_send(ApplySources {
            sources: settings.audio_sources,
            primary: settings.primary_audio.clone(),
        });

        Self {
            board,
            store,
            sources,
            file_source,
            obs,
            sync,
            features,
            classifier: classifier_addr,
            store_writer,
            outbox,
            vision,
            audio_paths: paths,
            sync_audio: sync_audio_tx,
            arbiters: {
                arbiters.push(hearing);
                arbiters
            },
        }
    }

    /// A liveness probe over the stages that must keep answering (for the systemd watchdog).
    pub fn probe(&self) -> LivenessProbe {
        let mut stages: Vec<(&'static str, Recipient<Alive>)> = vec![
            (
                crate::actor::sync::SyncActor::NAME,
                self.sync.clone().recipient(),
            ),
            (FeatureActor::NAME, self.features.clone().recipient()),
            (ClassifierActor::NAME, self.classifier.clone().recipient()),
            (StoreWriter::NAME, self.store_writer.clone().recipient()),
            (OutboxDispatcher::NAME, self.outbox.clone().recipient()),
        ];
        for p in &self.audio_paths {
            stages.push(("audio_path", p.clone().recipient()));
        }
        if let Some(v) = &self.vision {
            stages.push((VisionActor::NAME, v.clone().recipient()));
        }
        LivenessProbe { stages }
    }

    /// Stops the sources, flushes the store, and stops the arbiters.
    pub async fn shutdown(self) {
        let _ = self
            .sources
            .send(ApplySources {
                sources: Vec::new(),
                primary: None,
            })
            .await;
        if let Some(fs) = &self.file_source {
            let _ = fs.send(StopSource).await;
        }
        // The OBS source needs no stop: its frames go to a queue nobody drains any more, and
        // its connection closes when the system stops.
        match tokio_timeout(Duration::from_secs(5), self.store_writer.send(Flush)).await {
            Some(Ok(0)) => tracing::info!("store flushed"),
            Some(Ok(pending)) => tracing::error!(pending, "store flush left results unwritten"),
            _ => tracing::error!("store flush did not answer"),
        }
        if let Err(e) = self.store.flush() {
            tracing::error!(error = %e, "final store flush failed");
        }
        for a in &self.arbiters {
            a.stop();
        }
        // Wait (a bounded time) for the arbiter threads to finish the message in hand, so that
        // nothing is still inside OpenCV or sled when the process exits and their static
        // destructors run.
        let arbiters = self.arbiters;
        let joined = tokio::task::spawn_blocking(move || {
            for a in arbiters {
                let _ = a.join();
            }
        });
        if tokio_timeout(Duration::from_secs(3), joined)
            .await
            .is_none()
        {
            tracing::warn!("an analysis thread did not stop within 3 s");
        }
    }
}

/// Asks every stage whether its thread is free; the systemd watchdog is pinged only when all
/// answer in time.
#[derive(Clone)]
pub struct LivenessProbe {
    stages: Vec<(&'static str, Recipient<Alive>)>,
}

impl LivenessProbe {
    /// A probe over these named stages.
    pub fn new(stages: Vec<(&'static str, Recipient<Alive>)>) -> Self {
        Self { stages }
    }

    /// Ok when every stage answered within `within`; else the name of the first that did not.
    pub async fn check(&self, within: Duration) -> Result<(), &'static str> {
        let asks = self
            .stages
            .iter()
            .map(|(name, r)| {
                let ask = r.send(Alive);
                async move { (name, tokio_timeout(within, ask).await) }
            })
            .collect::<Vec<_>>();
        for (name, answer) in futures_util::future::join_all(asks).await {
            if !matches!(answer, Some(Ok(()))) {
                return Err(name);
            }
        }
        Ok(())
    }
}

/// Waits for a future at most `d`.
async fn tokio_timeout<F: std::future::Future>(d: Duration, f: F) -> Option<F::Output> {
    actix_rt::time::timeout(d, f).await.ok()
}
