//! Analyses of whole media files: the job record (`analyses`) and its samples
//! (`analysis_samples`, keyed by job id then sample index, so one prefix scan reads a job's
//! samples in time order).

use serde::{Deserialize, Serialize};

use super::{decode, Store, StoreError};

/// What an analysis job reads.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AnalysisInput {
    /// A local media file (decoded directly).
    File { path: String },
    /// A media source loaded in OBS (seeked and screenshotted), with the file it plays.
    Obs { source: String, path: String },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnalysisStatus {
    Queued,
    Running,
    Done,
    Failed,
    Cancelled,
}

impl AnalysisStatus {
    pub fn finished(self) -> bool {
        matches!(self, Self::Done | Self::Failed | Self::Cancelled)
    }
}

/// Main activity of an analysis and the share of samples of each class.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AnalysisSummary {
    pub main_activity: Option<String>,
    /// Class → share of the samples, 0..1 (classes with no sample are absent).
    pub shares: std::collections::BTreeMap<String, f64>,
    pub samples: u64,
    pub sound_events: u64,
}

/// One analysis job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AnalysisRecord {
    pub id: String,
    pub input: AnalysisInput,
    /// Seconds between samples; `None` for a single-frame analysis at `at_s`.
    pub interval_s: Option<f64>,
    pub at_s: Option<f64>,
    pub status: AnalysisStatus,
    /// 0..100.
    pub progress: f64,
    /// Media duration in seconds, once known.
    pub duration_s: Option<f64>,
    pub created_ms: i64,
    pub started_ms: Option<i64>,
    pub finished_ms: Option<i64>,
    pub error: Option<String>,
    pub summary: Option<AnalysisSummary>,
}

/// One analysed sample of a file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AnalysisSample {
    pub index: u64,
    /// Seconds from the start of the file.
    pub t_s: f64,
    pub activity: String,
    pub confidence: f32,
    pub scores: std::collections::BTreeMap<String, f32>,
    pub features: serde_json::Value,
    /// Sound events heard in this sample: (kind, onset seconds from the start, score).
    pub sound_events: Vec<SampleSoundEvent>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SampleSoundEvent {
    pub kind: String,
    pub onset_s: f64,
    pub score: f32,
}

fn sample_key(id: &str, index: u64) -> Vec<u8> {
    let mut key = id.as_bytes().to_vec();
    key.push(0);
    key.extend_from_slice(&index.to_be_bytes());
    key
}

fn sample_prefix(id: &str) -> Vec<u8> {
    let mut key = id.as_bytes().to_vec();
    key.push(0);
    key
}

impl Store {
    /// A new, time-ordered analysis id.
    pub fn new_analysis_id(&self, now_ms: i64) -> Result<String, StoreError> {
        Ok(format!("a{:013}-{}", now_ms.max(0), self.db.generate_id()?))
    }

    /// Writes (creates or updates) an analysis record; flushed, as the API shows it.
    pub fn put_analysis(&self, r: &AnalysisRecord) -> Result<(), StoreError> {
        self.analyses
            .insert(r.id.as_bytes(), serde_json::to_vec(r)?)?;
        self.db.flush()?;
        Ok(())
    }

    pub fn analysis(&self, id: &str) -> Result<Option<AnalysisRecord>, StoreError> {
        Ok(match self.analyses.get(id.as_bytes())? {
            Some(v) => decode(id.as_bytes(), &v, "analysis"),
            None => None,
        })
    }

    /// Analyses, newest first.
    pub fn analyses(&self, limit: usize) -> Result<Vec<AnalysisRecord>, StoreError> {
        let mut out = Vec::new();
        for item in self.analyses.iter().rev().take(limit) {
            let (k, v) = item?;
            if let Some(r) = decode(&k, &v, "analysis") {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// Stores a batch of samples (not flushed: the record's update that follows is).
    pub fn put_analysis_samples(
        &self,
        id: &str,
        samples: &[AnalysisSample],
    ) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for s in samples {
            batch.insert(sample_key(id, s.index), serde_json::to_vec(s)?);
        }
        self.analysis_samples.apply_batch(batch)?;
        Ok(())
    }

    /// A job's samples, in time order.
    pub fn iter_analysis_samples(
        &self,
        id: &str,
    ) -> impl Iterator<Item = Result<AnalysisSample, StoreError>> {
        self.analysis_samples
            .scan_prefix(sample_prefix(id))
            .filter_map(|item| match item {
                Ok((k, v)) => decode(&k, &v, "analysis sample").map(Ok),
                Err(e) => Some(Err(e.into())),
            })
    }

    /// Deletes an analysis and its samples.
    pub fn delete_analysis(&self, id: &str) -> Result<bool, StoreError> {
        let existed = self.analyses.remove(id.as_bytes())?.is_some();
        let mut batch = sled::Batch::default();
        for key in self.analysis_samples.scan_prefix(sample_prefix(id)).keys() {
            batch.remove(key?);
        }
        self.analysis_samples.apply_batch(batch)?;
        self.db.flush()?;
        Ok(existed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str) -> AnalysisRecord {
        AnalysisRecord {
            id: id.into(),
            input: AnalysisInput::File {
                path: "/m/a.mp4".into(),
            },
            interval_s: Some(1.0),
            at_s: None,
            status: AnalysisStatus::Running,
            progress: 0.0,
            duration_s: None,
            created_ms: 1,
            started_ms: None,
            finished_ms: None,
            error: None,
            summary: None,
        }
    }

    #[test]
    fn records_and_samples_round_trip_and_delete_together() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let a = store.new_analysis_id(1_000).unwrap();
        let b = store.new_analysis_id(2_000).unwrap();
        assert!(a < b, "ids sort by time");
        store.put_analysis(&record(&a)).unwrap();
        store.put_analysis(&record(&b)).unwrap();
        let samples: Vec<AnalysisSample> = (0..300)
            .map(|i| AnalysisSample {
                index: i,
                t_s: i as f64,
                activity: "busy".into(),
                confidence: 0.5,
                scores: Default::default(),
                features: serde_json::Value::Null,
                sound_events: vec![],
            })
            .collect();
        store.put_analysis_samples(&a, &samples).unwrap();
        store.put_analysis_samples(&b, &samples[..2]).unwrap();
        let got: Vec<f64> = store
            .iter_analysis_samples(&a)
            .map(|s| s.unwrap().t_s)
            .collect();
        assert_eq!(got.len(), 300);
        assert!(
            got.windows(2).all(|w| w[0] < w[1]),
            "in time order past 255"
        );
        assert_eq!(store.analyses(10).unwrap()[0].id, b, "newest first");
        assert!(store.delete_analysis(&a).unwrap());
        assert_eq!(store.iter_analysis_samples(&a).count(), 0);
        assert_eq!(store.iter_analysis_samples(&b).count(), 2);
        assert!(store.analysis(&a).unwrap().is_none());
    }
}
