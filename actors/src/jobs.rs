//! Analysis jobs: sampled analyses of media files running in the background, one thread each,
//! with their progress, results and summary in the store.
//!
//! Invariants: a job's record is in the store before `start` returns (so `GET` finds it); its
//! samples are written before the record says how far it got; a job found `running` or `queued`
//! at start-up was cut short by a crash or a stop and is marked failed, never left hanging.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cav_core::Classifier;

use crate::analysis::{analyze_samples, AnalysisError, FileSample, SampleSettings, Sampling};
use crate::analysis_obs::analyze_obs_samples;
use crate::obs::ObsSettings;
use crate::store::{
    AnalysisInput, AnalysisRecord, AnalysisSample, AnalysisStatus, AnalysisSummary,
    SampleSoundEvent, Store, StoreError,
};

/// How often a running job writes its progress.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);
/// Samples written per batch.
const BATCH: usize = 200;

/// What every job is analysed with.
#[derive(Clone)]
pub struct JobSettings {
    pub span: Duration,
    pub analysis_fps: f64,
    pub analysis_width: u32,
    pub motion_threshold: u8,
    pub classifier: Arc<dyn Classifier>,
    /// YAMNet and the event rules, for sound events; `None`: no hearing.
    pub hearing: Option<(Arc<cav_models::Yamnet>, cav_models::hearing::HearingConfig)>,
    /// Where OBS is, for analyses of OBS media sources (`source` and the capture settings are
    /// not used); `None`: such analyses fail.
    pub obs: Option<ObsSettings>,
}

/// Starts, tracks and cancels jobs. Cheap to clone.
#[derive(Clone)]
pub struct Jobs {
    store: Store,
    settings: JobSettings,
    running: Arc<Mutex<HashMap<String, Arc<AtomicBool>>>>,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The main activity and the share of each class among the samples.
pub fn summarize(classes: &BTreeMap<String, u64>, sound_events: u64) -> AnalysisSummary {
    let samples: u64 = classes.values().sum();
    let main_activity = classes
        .iter()
        .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
        .map(|(c, _)| c.clone());
    AnalysisSummary {
        main_activity,
        shares: classes
            .iter()
            .map(|(c, n)| (c.clone(), *n as f64 / samples.max(1) as f64))
            .collect(),
        samples,
        sound_events,
    }
}

/// A file sample as stored.
pub fn stored_sample(s: &FileSample) -> AnalysisSample {
    AnalysisSample {
        index: s.index,
        t_s: s.t_s,
        activity: s.decision.activity.to_string(),
        confidence: s.decision.confidence,
        scores: s
            .decision
            .scores
            .iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        features: serde_json::to_value(&s.summary).unwrap_or(serde_json::Value::Null),
        sound_events: s
            .events
            .iter()
            .map(|e| SampleSoundEvent {
                kind: e.kind.as_str().to_string(),
                onset_s: e.onset,
                score: e.score,
            })
            .collect(),
    }
}

impl Jobs {
    /// The job registry; marks jobs that a previous run left unfinished as failed.
    pub fn new(store: Store, settings: JobSettings) -> Result<Self, StoreError> {
        for mut r in store.analyses(usize::MAX)? {
            if !r.status.finished() {
                r.status = AnalysisStatus::Failed;
                r.error =
                    Some("interrupted: the daemon stopped before the analysis finished".into());
                r.finished_ms = Some(now_ms());
                store.put_analysis(&r)?;
            }
        }
        Ok(Self {
            store,
            settings,
            running: Arc::default(),
        })
    }

    /// Records a job and starts it on a thread of its own.
    pub fn start(
        &self,
        input: AnalysisInput,
        sampling: Sampling,
    ) -> Result<AnalysisRecord, StoreError> {
        let created = now_ms();
        let (interval_s, at_s) = match sampling {
            Sampling::Every { interval_s } => (Some(interval_s), None),
            Sampling::At { t_s } => (None, Some(t_s)),
        };
        let record = AnalysisRecord {
            id: self.store.new_analysis_id(created)?,
            input,
            interval_s,
            at_s,
            status: AnalysisStatus::Queued,
            progress: 0.0,
            duration_s: None,
            created_ms: created,
            started_ms: None,
            finished_ms: None,
            error: None,
            summary: None,
        };
        self.store.put_analysis(&record)?;
        let cancel = Arc::new(AtomicBool::new(false));
        self.lock().insert(record.id.clone(), cancel.clone());
        let job = self.clone();
        let r = record.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("analysis {}", record.id))
            .spawn(move || job.run(r, sampling, cancel));
        if let Err(e) = spawned {
            let mut failed = record.clone();
            failed.status = AnalysisStatus::Failed;
            failed.error = Some(format!("cannot start a thread: {e}"));
            self.store.put_analysis(&failed)?;
            self.lock().remove(&record.id);
            return Ok(failed);
        }
        Ok(record)
    }

    /// Asks a running job to stop; false when it is not running.
    pub fn cancel(&self, id: &str) -> bool {
        match self.lock().get(id) {
            Some(flag) => {
                flag.store(true, Ordering::Relaxed);
                true
            }
            None => false,
        }
    }

    /// Where OBS is, when analyses of OBS sources are possible.
    pub fn obs_settings(&self) -> Option<&ObsSettings> {
        self.settings.obs.as_ref()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<AtomicBool>>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn run(&self, mut record: AnalysisRecord, sampling: Sampling, cancel: Arc<AtomicBool>) {
        let path = match &record.input {
            AnalysisInput::File { path } | AnalysisInput::Obs { path, .. } => path.clone(),
        };
        record.status = AnalysisStatus::Running;
        record.started_ms = Some(now_ms());
        if let Err(e) = self.store.put_analysis(&record) {
            tracing::error!(id = %record.id, error = %e, "cannot record an analysis");
        }
        tracing::info!(id = %record.id, path = %path, ?sampling, "analysis started");
        let began = Instant::now();
        let settings = SampleSettings {
            sampling,
            span: self.settings.span,
            analysis_fps: self.settings.analysis_fps,
            analysis_width: self.settings.analysis_width,
            motion_threshold: self.settings.motion_threshold,
        };
        let mut hearing = self
            .settings
            .hearing
            .clone()
            .map(|(yamnet, config)| cav_models::hearing::Hearing::new(yamnet, config));
        // Both callbacks update this; they never run at the same time.
        struct Progress {
            classes: BTreeMap<String, u64>,
            events: u64,
            batch: Vec<AnalysisSample>,
            last_write: Instant,
            store_error: Option<StoreError>,
        }
        let progress = std::cell::RefCell::new(Progress {
            classes: BTreeMap::new(),
            events: 0,
            batch: Vec::new(),
            last_write: Instant::now(),
            store_error: None,
        });
        let shared = std::cell::RefCell::new(&mut record);
        let input = shared.borrow().input.clone();
        let on_progress = |done: f64, total: f64| {
            let mut p = progress.borrow_mut();
            let mut r = shared.borrow_mut();
            r.duration_s = Some(total);
            r.progress = if total > 0.0 {
                (done / total * 100.0).clamp(0.0, 100.0)
            } else {
                100.0
            };
            if p.last_write.elapsed() >= PROGRESS_EVERY || p.batch.len() >= BATCH {
                let batch = std::mem::take(&mut p.batch);
                let written = self
                    .store
                    .put_analysis_samples(&r.id, &batch)
                    .and_then(|()| self.store.put_analysis(&r));
                if let Err(e) = written {
                    p.store_error.get_or_insert(e);
                    cancel.store(true, Ordering::Relaxed);
                }
                p.last_write = Instant::now();
            }
        };
        let on_sample = |sample: FileSample| {
            let mut p = progress.borrow_mut();
            *p.classes
                .entry(sample.decision.activity.to_string())
                .or_default() += 1;
            p.events += sample.events.len() as u64;
            p.batch.push(stored_sample(&sample));
        };
        let classifier = self.settings.classifier.as_ref();
        let result = match (&input, self.settings.obs.as_ref()) {
            (AnalysisInput::File { .. }, _) => analyze_samples(
                std::path::Path::new(&path),
                &settings,
                classifier,
                hearing.as_mut(),
                &cancel,
                on_progress,
                on_sample,
            ),
            (AnalysisInput::Obs { source, .. }, Some(obs)) => analyze_obs_samples(
                obs,
                source,
                std::path::Path::new(&path),
                &settings,
                classifier,
                hearing.as_mut(),
                &cancel,
                on_progress,
                on_sample,
            ),
            (AnalysisInput::Obs { .. }, None) => Err(AnalysisError::Invalid(
                "OBS is not configured: set [obs] host and port".into(),
            )),
        };
        let Progress {
            classes,
            events,
            batch,
            mut store_error,
            ..
        } = progress.into_inner();
        let finished = self
            .store
            .put_analysis_samples(&record.id, &batch)
            .map_err(|e| store_error.get_or_insert(e).to_string());
        record.finished_ms = Some(now_ms());
        record.summary = Some(summarize(&classes, events));
        match (result, store_error, finished) {
            (_, Some(e), _) => {
                record.status = AnalysisStatus::Failed;
                record.error = Some(format!("store: {e}"));
            }
            (Ok(n), None, Ok(())) => {
                record.status = AnalysisStatus::Done;
                record.progress = 100.0;
                tracing::info!(id = %record.id, samples = n, elapsed_s = began.elapsed().as_secs_f64(), "analysis done");
            }
            (Err(AnalysisError::Cancelled), None, _) => {
                record.status = AnalysisStatus::Cancelled;
                tracing::info!(id = %record.id, "analysis cancelled");
            }
            (Err(e), None, _) => {
                record.status = AnalysisStatus::Failed;
                record.error = Some(e.to_string());
                tracing::warn!(id = %record.id, error = %e, "analysis failed");
            }
            (Ok(_), None, Err(e)) => {
                record.status = AnalysisStatus::Failed;
                record.error = Some(format!("store: {e}"));
            }
        }
        if let Err(e) = self.store.put_analysis(&record) {
            tracing::error!(id = %record.id, error = %e, "cannot record an analysis' end");
        }
        self.lock().remove(&record.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_names_the_most_frequent_class_and_shares() {
        let classes: BTreeMap<String, u64> = [("busy", 3), ("reading", 1), ("asleep", 3)]
            .into_iter()
            .map(|(c, n)| (c.to_string(), n))
            .collect();
        let s = summarize(&classes, 2);
        // A tie goes to the first in name order.
        assert_eq!(s.main_activity.as_deref(), Some("asleep"));
        assert_eq!(s.samples, 7);
        assert!((s.shares["reading"] - 1.0 / 7.0).abs() < 1e-12);
        assert_eq!(summarize(&BTreeMap::new(), 0).main_activity, None);
    }
}
