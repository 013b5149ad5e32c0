//! Wiring: starts the actors in their arbiters, connects them, and shuts them down in order.
//!
//! Threads: the analysis arbiter runs sync, features and classifier (CPU work off the HTTP
//! thread); the store arbiter runs the store writer (fsync must not stall analysis); the file
//! source's decoding runs on its own worker thread; the dispatcher on a sync-arbiter thread.
//! Shutdown stops the sources first, then flushes the store, so nothing in flight is lost
//! except a partial classification window.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use cav_core::{Classifier, Clock, MonotonicClock};

use crate::actor::classifier::ClassifierActor;
use crate::actor::dispatcher::Dispatcher;
use crate::actor::features::FeatureActor;
use crate::actor::file_source::{FileSource, FileSourceSettings, StopSource};
use crate::actor::store_writer::{Flush, StoreWriter};
use crate::actor::sync::{SyncActor, SyncSettings};
use crate::delivery::ExternalService;
use crate::health::{ActorState, StatusBoard};
use crate::messages::Classification;
use crate::queue::drop_oldest;
use crate::store::{Store, StoreError};

#[derive(Clone, Debug)]
pub struct PipelineSettings {
    pub file_source: Option<FileSourceSettings>,
    pub sync: SyncSettings,
    pub window: Duration,
    pub motion_threshold: u8,
    pub queue_frames: usize,
    pub queue_chunks: usize,
    pub store_dir: PathBuf,
    pub external: Option<ExternalService>,
}

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Addresses of the running actors.
pub struct Pipeline {
    pub board: StatusBoard,
    pub store: Store,
    pub file_source: Option<Addr<FileSource>>,
    pub sync: Addr<SyncActor>,
    pub features: Addr<FeatureActor>,
    pub classifier: Addr<ClassifierActor>,
    pub store_writer: Addr<StoreWriter>,
    pub dispatcher: Option<Addr<Dispatcher>>,
    arbiters: Vec<Arbiter>,
}

impl Pipeline {
    /// Starts everything. Must be called inside a running actix `System`.
    pub fn start(
        settings: PipelineSettings,
        board: StatusBoard,
        clock: Arc<MonotonicClock>,
        classifier: Arc<dyn Classifier>,
    ) -> Result<Self, PipelineError> {
        let store = Store::open(&settings.store_dir)?;
        let analysis = Arbiter::new();
        let storage = Arbiter::new();

        let store_writer = {
            let (board, clock, store) = (board.clone(), clock.clone(), store.clone());
            Supervisor::start_in_arbiter(&storage.handle(), move |_| {
                StoreWriter::new(board, clock, store)
            })
        };
        let dispatcher = settings.external.clone().map(|service| {
            let board = board.clone();
            board.actor_state(Dispatcher::NAME, ActorState::Running, clock.now());
            SyncArbiter::start(1, move || Dispatcher::new(board.clone(), service.clone()))
        });

        let mut outputs: Vec<Recipient<Classification>> = vec![store_writer.clone().recipient()];
        if let Some(d) = &dispatcher {
            outputs.push(d.clone().recipient());
        }
        let source_name = settings
            .file_source
            .as_ref()
            .map_or_else(|| "none".to_string(), |s| s.id.clone());
        let classifier_addr = {
            let (board, clock, window) = (board.clone(), clock.clone(), settings.window);
            Supervisor::start_in_arbiter(&analysis.handle(), move |_| {
                ClassifierActor::new(board, clock, window, source_name, classifier, outputs)
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

        let source_id = settings
            .file_source
            .as_ref()
            .map_or("file".to_string(), |s| s.id.clone());
        let counters = board.register_source(&source_id, "file", clock.now());
        // The queues count their evictions straight into the source's counters.
        let (video_tx, video_rx) =
            drop_oldest(settings.queue_frames, counters.frames_dropped.clone());
        let (audio_tx, audio_rx) =
            drop_oldest(settings.queue_chunks, counters.audio_chunks_dropped.clone());
        let sync = {
            let (board, clock, next) = (board.clone(), clock.clone(), features.clone().recipient());
            let sync_settings = settings.sync;
            Supervisor::start_in_arbiter(&analysis.handle(), move |_| {
                SyncActor::new(sync_settings, board, clock, video_rx, audio_rx, next)
            })
        };
        let file_source = match settings.file_source {
            Some(fs) => {
                let (board, clock, expect) =
                    (board.clone(), clock.clone(), sync.clone().recipient());
                Some(Supervisor::start(move |_| {
                    FileSource::new(fs, board, clock, video_tx, audio_tx, expect, counters)
                }))
            }
            None => {
                board.source_state(
                    &source_id,
                    crate::health::SourceState::Stopped,
                    Some("disabled in the configuration".into()),
                    clock.now(),
                );
                None
            }
        };

        Ok(Self {
            board,
            store,
            file_source,
            sync,
            features,
            classifier: classifier_addr,
            store_writer,
            dispatcher,
            arbiters: vec![analysis, storage],
        })
    }

    /// Stops the sources, flushes the store, and stops the arbiters.
    pub async fn shutdown(self) {
        if let Some(fs) = &self.file_source {
            let _ = fs.send(StopSource).await;
        }
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
    }
}

/// Waits for a future at most `d`.
async fn tokio_timeout<F: std::future::Future>(d: Duration, f: F) -> Option<F::Output> {
    actix_rt::time::timeout(d, f).await.ok()
}
