//! `cav run`: loads the configuration, starts the pipeline and the HTTP API, and waits for
//! SIGINT or SIGTERM to shut down in order (sources, then store, then HTTP).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use cav_actors::actor::file_source::{FileSourceSettings, Streams};
use cav_actors::actor::mqtt::{MqttPublisher, Shutdown as MqttShutdown};
use cav_actors::actor::outbox::OutboxSettings;
use cav_actors::actor::store_writer::StoreSettings;
use cav_actors::actor::sync::SyncSettings;
use cav_actors::delivery::{Backoff, Endpoint};
use cav_actors::health::StatusBoard;
use cav_actors::jobs::{JobSettings, Jobs};
use cav_actors::obs::ObsSettings;
use cav_actors::pipeline::{Pipeline, PipelineSettings};
use cav_actors::store::Store;
use cav_actors::store::{ExternalPolicy, Retention};
use cav_core::{Clock, MonotonicClock};

use crate::api::sources::SourcesState;
use crate::api::{self, ApiState};
use crate::config::{Config, FileStreams, LogFormat};
use crate::config_file::ConfigFile;
use crate::logging;
use crate::systemd;

/// The demo clip, shipped inside the binary so that `cav run` works anywhere.
const DEMO_CLIP: &[u8] = include_bytes!("../data/demo/demo.mp4");

/// The configuration and the file that run-time changes are saved to: the `--config` file, or
/// else `<storage.data_dir>/config.toml` (read at start when it exists).
pub fn load_config(config_path: Option<&Path>) -> anyhow::Result<(Config, ConfigFile)> {
    if let Some(path) = config_path {
        let config = Config::load(Some(path), std::env::vars())?;
        return Ok((config, ConfigFile::new(path.to_path_buf())));
    }
    let defaults = Config::load(None, std::env::vars())?;
    let own = defaults.storage.data_dir.join("config.toml");
    if own.is_file() {
        let config = Config::load(Some(&own), std::env::vars())?;
        Ok((config, ConfigFile::new(own)))
    } else {
        Ok((defaults, ConfigFile::new(own)))
    }
}

pub fn run(config_path: Option<&Path>, log_format: Option<LogFormat>) -> anyhow::Result<()> {
    let (config, config_file) = load_config(config_path)?;
    logging::init(&config.log.level, log_format.unwrap_or(config.log.format));
    let config_path = config_path.map(Path::to_path_buf);
    let system = actix::System::new();
    system.block_on(async move {
        let clock = Arc::new(MonotonicClock::new());
        let started = Instant::now();
        let mut signals = Signals::new()?;
        let store = open_store(&config)?;
        // Jobs outlive reloads (a reload must not orphan a running analysis): they keep the
        // analysis settings the daemon started with.
        let jobs = Jobs::new(store.clone(), job_settings(&config)?)
            .context("cannot read the analyses in the store")?;
        let mut config = config;
        let mut config_file = config_file;
        // `PUT /api/settings` asks for a reload here once it has saved the file; the receiver
        // lives as long as the daemon, each API instance gets a sender.
        let (reload_tx, mut reload_rx) = tokio::sync::mpsc::unbounded_channel::<api::settings::ReloadRequest>();
        loop {
            let running = start(
                &config,
                &config_file,
                store.clone(),
                jobs.clone(),
                clock.clone(),
                started,
                reload_tx.clone(),
            )?;
            systemd::ready(&format!("running; API on {}", running.addr));
            let watchdog = systemd::watchdog_interval()
                .map(|interval| actix_rt::spawn(systemd::watchdog(running.pipeline.probe(), interval)));
            // Wait for a signal; a SIGHUP with a config that does not load is refused and the
            // running configuration stays.
            let next = loop {
                let event = tokio::select! {
                    signal = signals.next() => signal,
                    Some(request) = reload_rx.recv() => {
                        tracing::info!(reason = request.reason, "reload requested by the API");
                        "SIGHUP"
                    }
                };
                match event {
                    "SIGHUP" => match reload(config_path.as_deref(), &config) {
                        Ok(Some(next)) => break Some(next),
                        Ok(None) => tracing::info!("SIGHUP: configuration unchanged"),
                        Err(e) => tracing::error!(error = %format!("{e:#}"), "SIGHUP: configuration refused; keeping the running one"),
                    },
                    signal => {
                        tracing::info!(signal, "shutting down");
                        break None;
                    }
                }
            };
            if let Some(w) = watchdog {
                w.abort();
            }
            match next {
                Some((next, file)) => {
                    systemd::reloading();
                    tracing::info!("SIGHUP: applying the new configuration (pipeline and API restart)");
                    running.stop().await;
                    config = next;
                    config_file = file;
                }
                None => {
                    systemd::stopping();
                    running.stop().await;
                    if let Err(e) = store.flush() {
                        tracing::error!(error = %e, "final store flush failed");
                    }
                    tracing::info!("stopped");
                    return Ok(());
                }
            }
        }
    })
}

/// What analysis jobs analyse with: the live pipeline's span, frame rate and rules, and YAMNet.
fn job_settings(config: &Config) -> anyhow::Result<JobSettings> {
    Ok(JobSettings {
        span: Duration::from_millis(config.sync.span_ms),
        analysis_fps: config.video.analysis_fps,
        analysis_width: config.video.analysis_width,
        motion_threshold: config.video.motion_threshold,
        classifier: crate::classifier::build(&config.classifier, None)?,
        hearing: if config.hearing.enabled {
            Some((
                crate::hearing::load_yamnet(&config.hearing)?,
                crate::hearing::hearing_config(&config.hearing),
            ))
        } else {
            None
        },
        // OBS sources can be analysed whether or not OBS is the live camera.
        obs: Some(obs_settings(config)),
    })
}

/// The `[obs]` connection and capture settings.
fn obs_settings(config: &Config) -> ObsSettings {
    ObsSettings {
        host: config.obs.host.clone(),
        port: config.obs.port,
        password: config.obs.password.clone(),
        source: config.obs.source.clone(),
        fps: config.obs.fps,
        width: config.obs.width,
        jpeg_quality: config.obs.jpeg_quality,
    }
}

/// Opens the store in `storage.data_dir` (created if needed).
fn open_store(config: &Config) -> anyhow::Result<Store> {
    let dir = &config.storage.data_dir;
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create storage.data_dir {}", dir.display()))?;
    Store::open(&dir.join("store")).context("cannot open the store")
}

/// The configuration to switch to after a SIGHUP: `Ok(None)` when it is unchanged.
fn reload(
    config_path: Option<&Path>,
    running: &Config,
) -> anyhow::Result<Option<(Config, ConfigFile)>> {
    let (next, file) = load_config(config_path)?;
    if next == *running {
        return Ok(None);
    }
    if next.storage.data_dir != running.storage.data_dir {
        anyhow::bail!(
            "storage.data_dir: cannot change while running ({} → {}); restart the daemon",
            running.storage.data_dir.display(),
            next.storage.data_dir.display()
        );
    }
    // Everything that needs building (the demo clip, YAMNet) is checked before the running
    // pipeline is stopped.
    pipeline_settings(&next)?;
    Ok(Some((next, file)))
}

/// How long a stopping API may take to finish the requests in flight.
const HTTP_DRAIN: Duration = Duration::from_secs(5);

/// A running pipeline and the API in front of it.
struct Running {
    pipeline: Pipeline,
    addr: std::net::SocketAddr,
    /// Shuts the API down: it stops accepting, and its event streams end.
    stop_http: tokio::sync::watch::Sender<bool>,
    server: actix_rt::task::JoinHandle<()>,
    mqtt: Option<actix::Addr<MqttPublisher>>,
}

impl Running {
    /// Stops the sources, flushes the store, then stops the API.
    async fn stop(self) {
        self.pipeline.shutdown().await;
        if let Some(mqtt) = &self.mqtt {
            // Publishes "offline" and disconnects (at most 2 s).
            let _ = mqtt.send(MqttShutdown).await;
        }
        // The API stops accepting and its event streams end; requests in flight are answered.
        let _ = self.stop_http.send(true);
        if actix_rt::time::timeout(HTTP_DRAIN, self.server)
            .await
            .is_err()
        {
            // A response still streaming (a large export) finishes on its own connection; the
            // listener is already closed, so a new API can bind the address.
            tracing::warn!("the API still has requests in flight; not waiting for them");
        }
    }
}

fn start(
    config: &Config,
    config_file: &ConfigFile,
    store: Store,
    jobs: Jobs,
    clock: Arc<MonotonicClock>,
    started: Instant,
    reload: api::settings::ReloadSender,
) -> anyhow::Result<Running> {
    let settings = pipeline_settings(config)?;
    let bind = config.bind_addr();
    let window_s = config.classifier.window_s;
    let board = StatusBoard::new();
    match store.latest_classifications(1) {
        Ok(latest) => {
            if let Some(c) = latest.first() {
                board.set_current(c.to_classification());
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot read the newest stored window"),
    }
    let pipeline = Pipeline::start(
        settings,
        store,
        board.clone(),
        clock.clone(),
        crate::classifier::build(&config.classifier, None)?,
    );
    let sources = SourcesState {
        config: Arc::new(tokio::sync::Mutex::new(config.clone())),
        file: config_file.clone(),
        manager: pipeline.sources.clone(),
    };
    let (stop_http, shutdown) = api::Shutdown::new();
    let state = ApiState {
        sources,
        board,
        store: pipeline.store.clone(),
        started,
        started_at_ms: clock.now().millis() - started.elapsed().as_millis() as i64,
        window_s,
        obs: pipeline.obs.clone(),
        access: api::auth::Access {
            token: config.http.token.as_deref().map(Into::into),
            public_status: config.http.public_status,
        },
        cors_origins: config.cors_origins(),
        jobs,
        analysis: config.analysis.clone(),
        sync: pipeline.sync.clone(),
        captures_dir: config.storage.data_dir.join("captures"),
        reload: Some(reload),
        classifier: pipeline.classifier.clone(),
        shutdown,
    };
    let (addr, server) = match api::bind(bind, state) {
        Ok(bound) => bound,
        Err(e) => {
            // Stop what was started (in the background: this is not async) and report.
            actix_rt::spawn(pipeline.shutdown());
            anyhow::bail!("cannot listen on http.bind = {bind}: {e}");
        }
    };
    let server = actix_rt::spawn(server);
    let mqtt = config.mqtt.enabled.then(|| {
        let publisher = MqttPublisher::new(pipeline.board.clone(), clock, config.mqtt_settings());
        actix::Actor::start(publisher)
    });
    tracing::info!(%addr, window_s, config = %config_file.path().display(), "classify-audio-video is running");
    Ok(Running {
        pipeline,
        addr,
        stop_http,
        server,
        mqtt,
    })
}

/// The signals the daemon handles, listened to once for its whole life (so that none arriving
/// between two waits is lost).
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> anyhow::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Self {
            term: signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?,
            int: signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?,
            hup: signal(SignalKind::hangup()).context("cannot listen for SIGHUP")?,
        })
    }

    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
            _ = self.hup.recv() => "SIGHUP",
        }
    }
}

/// Writes the embedded demo clip into the data folder (once) and returns its path.
fn materialize_demo(data_dir: &Path) -> anyhow::Result<PathBuf> {
    let dir = data_dir.join("demo");
    let path = dir.join("demo.mp4");
    let up_to_date = std::fs::metadata(&path).is_ok_and(|m| m.len() == DEMO_CLIP.len() as u64);
    if !up_to_date {
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        // Write then rename, so a crash never leaves a truncated clip that looks current.
        let tmp = dir.join("demo.mp4.tmp");
        std::fs::write(&tmp, DEMO_CLIP)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(path)
}

/// The audio source the activity classifier hears: the configured one, else the file source when
/// it plays audio, else the first enabled `[[sources]]` entry.
pub fn primary_audio(config: &Config) -> Option<String> {
    if !config.classifier.audio_source.is_empty() {
        return Some(config.classifier.audio_source.clone());
    }
    if config.file.enabled && config.file.streams != FileStreams::Video {
        return Some("file".into());
    }
    config
        .sources
        .iter()
        .find(|s| s.enabled)
        .map(|s| s.id.clone())
}

fn pipeline_settings(config: &Config) -> anyhow::Result<PipelineSettings> {
    let file_source = if config.file.enabled {
        let path = if config.file.path.is_empty() {
            materialize_demo(&config.storage.data_dir)?
        } else {
            PathBuf::from(&config.file.path)
        };
        Some(FileSourceSettings {
            id: "file".into(),
            path,
            looping: config.file.looping,
            streams: Streams {
                video: config.file.streams != FileStreams::Audio,
                audio: config.file.streams != FileStreams::Video,
            },
            analysis_fps: config.video.analysis_fps,
            analysis_width: config.video.analysis_width,
        })
    } else {
        None
    };
    let external = &config.external_service;
    let store = StoreSettings {
        span_gap: Duration::from_secs_f64(config.storage.span_merge_gap_s),
        external: external.url.clone().map(|url| ExternalPolicy {
            url,
            interval_ms: (external.interval_s * 1000.0).round() as i64,
        }),
        retention: retention(config),
    };
    let outbox = OutboxSettings {
        external: external.url.clone().map(|url| {
            Endpoint::new(
                Some(url),
                external.token.clone(),
                Duration::from_secs_f64(external.timeout_s),
            )
        }),
        webhook_timeout: Duration::from_secs_f64(config.hearing.webhook_timeout_s),
        backoff: Backoff {
            initial: Duration::from_secs_f64(config.outbox.backoff_initial_s),
            max: Duration::from_secs_f64(config.outbox.backoff_max_s),
        },
    };
    let obs = config
        .obs
        .enabled
        .then(|| ("obs".to_string(), obs_settings(config)));
    let hearing = if config.hearing.enabled {
        Some((
            crate::hearing::load_yamnet(&config.hearing)?,
            crate::hearing::hearing_config(&config.hearing),
        ))
    } else {
        None
    };
    Ok(PipelineSettings {
        hearing,
        file_webhook: config.file.webhook.clone(),
        // Validated in `Config::validate`.
        vban_bind: config
            .vban
            .bind
            .parse()
            .unwrap_or(std::net::SocketAddr::from(([0, 0, 0, 0], 6980))),
        primary_audio: primary_audio(config),
        audio_sources: crate::sources::specs(config),
        file_source,
        obs,
        sync: SyncSettings {
            span: Duration::from_millis(config.sync.span_ms),
            max_wait: Duration::from_millis(config.sync.max_wait_ms),
            buffer: Duration::from_secs_f64(config.sync.buffer_s),
        },
        window: config.window(),
        smoothing: crate::classifier::smoothing(&config.classifier),
        motion_threshold: config.video.motion_threshold,
        queue_frames: config.video.queue_frames,
        queue_chunks: config.audio.queue_chunks,
        store,
        outbox,
        vision: config
            .vision
            .enabled
            .then(|| (config.vision.fps, config.vision.options())),
    })
}

fn retention(config: &Config) -> Retention {
    let r = &config.retention;
    Retention {
        activities_days: r.activities_days,
        spans_days: r.spans_days,
        sound_events_days: r.sound_events_days,
        delivered_days: r.delivered_days,
        dead_letter_days: r.dead_letter_days,
    }
}
