//! Metrics kept beside the status board, and the Prometheus text exposition format (0.0.4).
//!
//! The counters the status board already keeps (per source, per stage) are exported as they
//! are; this module adds what the board has no place for: histograms of inference times and
//! counters by label (windows per class, sound events per source and kind). Everything is
//! atomics or a short lock, updated from any thread.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the inference-time buckets: 1 ms to 2.5 s.
pub const INFERENCE_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// A Prometheus histogram with fixed buckets.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// Non-cumulative counts per bucket, plus one for +Inf.
    counts: Vec<AtomicU64>,
    /// Sum of observations in nanoseconds (for second-valued histograms).
    sum_nanos: AtomicU64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_nanos: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = self
            .bounds
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(self.bounds.len());
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.sum_nanos
            .fetch_add(d.as_nanos().min(u64::MAX as u128) as u64, Ordering::Relaxed);
    }

    /// (cumulative count per bound incl. +Inf, sum in seconds, count).
    fn snapshot(&self) -> (Vec<(String, u64)>, f64, u64) {
        let mut cumulative = 0;
        let mut buckets = Vec::with_capacity(self.counts.len());
        for (i, c) in self.counts.iter().enumerate() {
            cumulative += c.load(Ordering::Relaxed);
            let le = self
                .bounds
                .get(i)
                .map_or_else(|| "+Inf".to_string(), |b| format_float(*b));
            buckets.push((le, cumulative));
        }
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        (buckets, sum, cumulative)
    }
}

/// Counters keyed by label values (e.g. source and kind).
#[derive(Debug, Default)]
pub struct LabeledCounter {
    values: Mutex<BTreeMap<Vec<String>, u64>>,
}

impl LabeledCounter {
    pub fn inc(&self, labels: &[&str]) {
        let mut values = self.values.lock().unwrap_or_else(|p| p.into_inner());
        *values
            .entry(labels.iter().map(|s| s.to_string()).collect())
            .or_insert(0) += 1;
    }

    pub fn snapshot(&self) -> BTreeMap<Vec<String>, u64> {
        self.values
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// The metrics the status board does not keep.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Wall time of each YAMNet run, per source.
    pub yamnet_seconds: Mutex<BTreeMap<String, std::sync::Arc<Histogram>>>,
    /// Wall time of each vision model run, per model.
    pub vision_seconds: Mutex<BTreeMap<String, std::sync::Arc<Histogram>>>,
    /// Stored windows by class.
    pub windows_by_class: LabeledCounter,
    /// Sound events by source and kind.
    pub sound_events: LabeledCounter,
}

impl Metrics {
    /// The YAMNet histogram of a source (created on first use).
    pub fn yamnet(&self, source: &str) -> std::sync::Arc<Histogram> {
        histogram_in(&self.yamnet_seconds, source)
    }

    /// The histogram of a vision model (created on first use).
    pub fn vision(&self, model: &str) -> std::sync::Arc<Histogram> {
        histogram_in(&self.vision_seconds, model)
    }
}

fn histogram_in(
    map: &Mutex<BTreeMap<String, std::sync::Arc<Histogram>>>,
    key: &str,
) -> std::sync::Arc<Histogram> {
    map.lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(key.to_string())
        .or_insert_with(|| std::sync::Arc::new(Histogram::new(&INFERENCE_BUCKETS)))
        .clone()
}

impl Metrics {
    /// A copy of the histograms of one family, by label.
    pub fn histograms(
        map: &Mutex<BTreeMap<String, std::sync::Arc<Histogram>>>,
    ) -> BTreeMap<String, std::sync::Arc<Histogram>> {
        map.lock().map(|h| h.clone()).unwrap_or_default()
    }
}

/// Formats a float the way Prometheus reads it.
pub fn format_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

/// Escapes a label value (backslash, double quote, newline).
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn label_set(labels: &[(&str, &str)]) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let inner: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    format!("{{{}}}", inner.join(","))
}

/// Writes metric families in the Prometheus text format; each family's HELP and TYPE once,
/// then its samples.
#[derive(Debug, Default)]
pub struct Exposition {
    out: String,
}

impl Exposition {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a family (`kind`: counter, gauge, histogram).
    pub fn family(&mut self, name: &str, kind: &str, help: &str) -> &mut Self {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
        self
    }

    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) -> &mut Self {
        let _ = writeln!(
            self.out,
            "{name}{} {}",
            label_set(labels),
            format_float(value)
        );
        self
    }

    /// One histogram's samples (`_bucket`, `_sum`, `_count`) under an already started family.
    pub fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &Histogram) -> &mut Self {
        let (buckets, sum, count) = h.snapshot();
        for (le, c) in buckets {
            let mut with_le: Vec<(&str, &str)> = labels.to_vec();
            with_le.push(("le", &le));
            self.sample(&format!("{name}_bucket"), &with_le, c as f64);
        }
        self.sample(&format!("{name}_sum"), labels, sum);
        self.sample(&format!("{name}_count"), labels, count as f64);
        self
    }

    pub fn finish(self) -> String {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_with_sum_and_count() {
        let h = Histogram::new(&INFERENCE_BUCKETS);
        h.observe(Duration::from_micros(800));
        h.observe(Duration::from_millis(7));
        h.observe(Duration::from_secs(10));
        let mut e = Exposition::new();
        e.family("t_seconds", "histogram", "test")
            .histogram("t_seconds", &[("source", "mic")], &h);
        let text = e.finish();
        assert!(
            text.contains("t_seconds_bucket{source=\"mic\",le=\"0.001\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("t_seconds_bucket{source=\"mic\",le=\"0.005\"} 1\n"));
        assert!(text.contains("t_seconds_bucket{source=\"mic\",le=\"0.01\"} 2\n"));
        assert!(text.contains("t_seconds_bucket{source=\"mic\",le=\"5\"} 2\n"));
        assert!(text.contains("t_seconds_bucket{source=\"mic\",le=\"+Inf\"} 3\n"));
        assert!(text.contains("t_seconds_count{source=\"mic\"} 3\n"));
        assert!(
            text.contains("t_seconds_sum{source=\"mic\"} 10.0078\n"),
            "{text}"
        );
        assert!(text.starts_with("# HELP t_seconds test\n# TYPE t_seconds histogram\n"));
    }

    #[test]
    fn label_values_are_escaped() {
        let mut e = Exposition::new();
        e.sample("x", &[("id", "a\"b\\c\nd")], 1.5);
        assert_eq!(e.finish(), "x{id=\"a\\\"b\\\\c\\nd\"} 1.5\n");
    }

    #[test]
    fn labeled_counters_count_per_label_set() {
        let c = LabeledCounter::default();
        c.inc(&["mic", "clap"]);
        c.inc(&["mic", "clap"]);
        c.inc(&["vban", "clap"]);
        let s = c.snapshot();
        assert_eq!(s[&vec!["mic".to_string(), "clap".to_string()]], 2);
        assert_eq!(s.len(), 2);
    }
}
