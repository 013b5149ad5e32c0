//! Labelled media files (`cav train LABELS.csv`, `cav eval LABELS.csv`): each file is analysed
//! whole, as one window, through the same features and models as `cav analyze`, and its summary
//! is compared with the label or used to train the activity head.
//!
//! `LABELS.csv` has a header with the columns `file` and `class` (others are ignored); file
//! paths are relative to the CSV's folder.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cav_core::window::WindowSummary;
use cav_core::{ActivityClass, Classifier};

use crate::offline::{analyze_file, OfflineModels, OfflineOutput, OfflineSettings};

#[derive(Debug, thiserror::Error)]
pub enum LabelsError {
    #[error("cannot read {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("{path}: the header must have the columns `file` and `class`, got `{header}`")]
    Header { path: PathBuf, header: String },
    #[error("{path} line {line}: {reason}")]
    Line {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("{path} lists no files")]
    Empty { path: PathBuf },
    #[error("cannot analyse {path}: {reason}")]
    Analyse { path: PathBuf, reason: String },
}

/// One labelled file.
#[derive(Clone, Debug, PartialEq)]
pub struct Labelled {
    pub file: PathBuf,
    pub class: ActivityClass,
}

/// Reads a labels file.
pub fn read_labels(path: &Path) -> Result<Vec<Labelled>, LabelsError> {
    let text = std::fs::read_to_string(path).map_err(|e| LabelsError::Read {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let header: Vec<String> = match lines.next() {
        Some((_, h)) => h.split(',').map(|c| c.trim().to_lowercase()).collect(),
        None => {
            return Err(LabelsError::Empty {
                path: path.to_path_buf(),
            })
        }
    };
    let col = |name: &str| header.iter().position(|c| c == name);
    let (Some(file_col), Some(class_col)) = (col("file"), col("class")) else {
        return Err(LabelsError::Header {
            path: path.to_path_buf(),
            header: header.join(","),
        });
    };
    let mut out = Vec::new();
    for (i, line) in lines {
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        let bad = |reason: String| LabelsError::Line {
            path: path.to_path_buf(),
            line: i + 1,
            reason,
        };
        let (Some(file), Some(class)) = (cells.get(file_col), cells.get(class_col)) else {
            return Err(bad(format!(
                "expected at least {} columns",
                file_col.max(class_col) + 1
            )));
        };
        let class: ActivityClass = class.parse().map_err(|_| {
            bad(format!(
                "unknown class `{class}` (one of {})",
                ActivityClass::ALL.map(|c| c.as_str()).join(", ")
            ))
        })?;
        let file = base.join(file);
        if !file.is_file() {
            return Err(bad(format!("{} is not a file", file.display())));
        }
        out.push(Labelled { file, class });
    }
    if out.is_empty() {
        return Err(LabelsError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(out)
}

/// The summary of a whole file as one window.
pub fn summarize_file(
    path: &Path,
    settings: &OfflineSettings,
    models: OfflineModels<'_>,
) -> Result<WindowSummary, LabelsError> {
    // One window longer than any file: the file's end closes it.
    let settings = OfflineSettings {
        window: Duration::from_secs(7 * 24 * 3600),
        ..settings.clone()
    };
    let mut summary = None;
    // The classifier is not consulted here; any one will do for the window callback.
    analyze_file(path, &settings, &cav_core::RuleClassifier, models, |o| {
        if let OfflineOutput::Window(w) = o {
            summary = Some(w.summary);
        }
    })
    .map_err(|e| LabelsError::Analyse {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    summary.ok_or_else(|| LabelsError::Analyse {
        path: path.to_path_buf(),
        reason: "no frames or audio".to_string(),
    })
}

/// Rows: the true class; columns: the predicted one (both in [`ActivityClass::ALL`] order).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Confusion {
    pub counts: [[u32; 7]; 7],
}

impl Confusion {
    pub fn add(&mut self, truth: ActivityClass, predicted: ActivityClass) {
        self.counts[truth.index()][predicted.index()] += 1;
    }

    pub fn total(&self) -> u32 {
        self.counts.iter().flatten().sum()
    }

    pub fn correct(&self) -> u32 {
        (0..7).map(|i| self.counts[i][i]).sum()
    }

    pub fn accuracy(&self) -> f32 {
        self.correct() as f32 / self.total().max(1) as f32
    }

    /// Recall of each class that has examples.
    pub fn per_class(&self) -> BTreeMap<&'static str, f32> {
        ActivityClass::ALL
            .iter()
            .filter_map(|c| {
                let row = &self.counts[c.index()];
                let n: u32 = row.iter().sum();
                (n > 0).then(|| (c.as_str(), row[c.index()] as f32 / n as f32))
            })
            .collect()
    }

    /// The matrix as aligned text.
    pub fn render(&self) -> String {
        const SHORT: [&str; 7] = [
            "asleep", "table", "reading", "phone", "convers", "busy", "inactive",
        ];
        let mut s = format!("{:>16} |", "true \\ predicted");
        for h in SHORT {
            s += &format!(" {h:>8}");
        }
        s += "\n";
        for c in ActivityClass::ALL {
            s += &format!("{:>16} |", c.as_str());
            for n in self.counts[c.index()] {
                s += &format!(" {n:>8}");
            }
            s += "\n";
        }
        s
    }
}

/// One file's verdict.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Verdict {
    pub file: String,
    pub truth: ActivityClass,
    pub predicted: ActivityClass,
    pub confidence: f32,
    pub drivers: Vec<String>,
}

/// Classifies each summary and compares with its label.
pub fn evaluate(
    classifier: &dyn Classifier,
    examples: &[(Labelled, WindowSummary)],
) -> (Confusion, Vec<Verdict>) {
    let mut confusion = Confusion::default();
    let mut verdicts = Vec::new();
    for (l, w) in examples {
        let d = classifier.classify(w);
        confusion.add(l.class, d.activity);
        verdicts.push(Verdict {
            file: l.file.display().to_string(),
            truth: l.class,
            predicted: d.activity,
            confidence: d.confidence,
            drivers: d
                .drivers
                .iter()
                .take(3)
                .map(|dr| match dr.value {
                    Some(v) => format!("{}={v:.3}", dr.feature),
                    None => format!("{}=none", dr.feature),
                })
                .collect(),
        });
    }
    (confusion, verdicts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_errors_name_the_line_and_the_problem() {
        let dir = std::env::temp_dir().join(format!("cav-labels-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join("a.mp4"), b"x").expect("write");
        let csv = dir.join("labels.csv");
        std::fs::write(&csv, "file,class\na.mp4,reading\n").expect("write");
        let l = read_labels(&csv).expect("labels");
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].class, ActivityClass::Reading);
        assert_eq!(l[0].file, dir.join("a.mp4"));

        std::fs::write(&csv, "file,class\na.mp4,sleeping\n").expect("write");
        let e = read_labels(&csv).expect_err("bad class").to_string();
        assert!(e.contains("line 2") && e.contains("sleeping"), "{e}");
        std::fs::write(&csv, "file,class\nb.mp4,busy\n").expect("write");
        let e = read_labels(&csv).expect_err("missing file").to_string();
        assert!(e.contains("b.mp4") && e.contains("not a file"), "{e}");
        std::fs::write(&csv, "name,label\n").expect("write");
        let e = read_labels(&csv).expect_err("header").to_string();
        assert!(e.contains("header"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn confusion_counts_and_renders() {
        let mut c = Confusion::default();
        c.add(ActivityClass::Busy, ActivityClass::Busy);
        c.add(ActivityClass::Busy, ActivityClass::AtTable);
        c.add(ActivityClass::Asleep, ActivityClass::Asleep);
        assert_eq!(c.total(), 3);
        assert_eq!(c.correct(), 2);
        assert!((c.accuracy() - 2.0 / 3.0).abs() < 1e-6);
        assert_eq!(c.per_class()["busy"], 0.5);
        let text = c.render();
        assert!(text.lines().count() == 8, "{text}");
    }
}
