//! The learned activity classifier: multinomial logistic regression over a window's
//! [`feature_vector`], in candle, trained by `cav train` and stored as
//! `models/activity_head.safetensors`.
//!
//! The file holds the weights `weight` `[7, F]` and `bias` `[7]`, the standardisation `mean`
//! and `std` `[F]` measured on the training set, and `feature_names` (the names joined with
//! `\n`, as bytes) so a head trained on another feature list is refused rather than misread.
//! A linear model on standardised features keeps the decision readable: each feature's
//! contribution to the winning class is `weight · z`, and the largest ones are the drivers.

use std::path::Path;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use cav_core::classify::{Decision, Driver, Scores};
use cav_core::feature_vector::{feature_vector, FEATURE_NAMES, NUM_FEATURES};
use cav_core::window::WindowSummary;
use cav_core::{ActivityClass, Classifier};

/// Number of classes.
const K: usize = ActivityClass::ALL.len();

#[derive(Debug, thiserror::Error)]
pub enum HeadError {
    #[error("cannot read the activity head {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("the activity head {path} lacks tensor `{name}` or it has the wrong shape")]
    Tensor { path: String, name: &'static str },
    #[error(
        "the activity head {path} was trained on other features ({theirs} names); retrain it \
         with `cav train`"
    )]
    Features { path: String, theirs: usize },
    #[error("training needs at least one example of two classes, got {0}")]
    TooFewExamples(usize),
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
}

/// Training settings.
#[derive(Clone, Copy, Debug)]
pub struct TrainOptions {
    pub epochs: usize,
    pub learning_rate: f64,
    /// L2 penalty on the weights (not the bias).
    pub l2: f64,
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self {
            epochs: 400,
            learning_rate: 0.05,
            l2: 0.02,
        }
    }
}

/// A trained head.
#[derive(Clone, Debug)]
pub struct ActivityHead {
    weight: Vec<[f32; NUM_FEATURES]>,
    bias: [f32; K],
    mean: [f32; NUM_FEATURES],
    std: [f32; NUM_FEATURES],
}

impl ActivityHead {
    /// Trains on `(features, class)` examples.
    pub fn train(
        examples: &[([f32; NUM_FEATURES], ActivityClass)],
        options: TrainOptions,
    ) -> Result<Self, HeadError> {
        let classes: std::collections::BTreeSet<_> = examples.iter().map(|(_, c)| *c).collect();
        if classes.len() < 2 {
            return Err(HeadError::TooFewExamples(examples.len()));
        }
        let n = examples.len();
        let mut mean = [0f32; NUM_FEATURES];
        let mut std = [0f32; NUM_FEATURES];
        for (x, _) in examples {
            for j in 0..NUM_FEATURES {
                mean[j] += x[j] / n as f32;
            }
        }
        for (x, _) in examples {
            for j in 0..NUM_FEATURES {
                std[j] += (x[j] - mean[j]).powi(2) / n as f32;
            }
        }
        // A constant feature gets std 1: its z is 0 and it cannot matter.
        let std = std.map(|v| if v.sqrt() > 1e-6 { v.sqrt() } else { 1.0 });

        let dev = Device::Cpu;
        let z: Vec<f32> = examples
            .iter()
            .flat_map(|(x, _)| (0..NUM_FEATURES).map(move |j| (x[j] - mean[j]) / std[j]))
            .collect();
        let z = Tensor::from_vec(z, (n, NUM_FEATURES), &dev)?;
        let y: Vec<u32> = examples.iter().map(|(_, c)| c.index() as u32).collect();
        let y = Tensor::from_vec(y, n, &dev)?;
        let w = Var::zeros((K, NUM_FEATURES), DType::F32, &dev)?;
        let b = Var::zeros(K, DType::F32, &dev)?;
        let mut opt = AdamW::new(
            vec![w.clone(), b.clone()],
            ParamsAdamW {
                lr: options.learning_rate,
                weight_decay: 0.0,
                ..Default::default()
            },
        )?;
        for _ in 0..options.epochs {
            let logits = z
                .matmul(&w.as_tensor().t()?)?
                .broadcast_add(b.as_tensor())?;
            let loss = candle_nn::loss::cross_entropy(&logits, &y)?;
            let penalty = (w.as_tensor().sqr()?.sum_all()? * options.l2)?;
            let total = (loss + penalty)?;
            opt.backward_step(&total)?;
        }
        let wv: Vec<Vec<f32>> = w.as_tensor().to_vec2()?;
        let bv: Vec<f32> = b.as_tensor().to_vec1()?;
        let mut weight = vec![[0f32; NUM_FEATURES]; K];
        for (row, src) in weight.iter_mut().zip(&wv) {
            row.copy_from_slice(src);
        }
        let mut bias = [0f32; K];
        bias.copy_from_slice(&bv);
        Ok(Self {
            weight,
            bias,
            mean,
            std,
        })
    }

    /// Loads a head written by [`ActivityHead::save`].
    pub fn load(path: &Path) -> Result<Self, HeadError> {
        let p = path.display().to_string();
        let tensors =
            candle_core::safetensors::load(path, &Device::Cpu).map_err(|e| HeadError::Read {
                path: p.clone(),
                reason: e.to_string(),
            })?;
        let get = |name: &'static str| {
            tensors.get(name).ok_or_else(|| HeadError::Tensor {
                path: p.clone(),
                name,
            })
        };
        let names: Vec<u8> = get("feature_names")?.to_vec1()?;
        let names = String::from_utf8_lossy(&names).to_string();
        let theirs: Vec<&str> = names.split('\n').collect();
        if theirs != FEATURE_NAMES {
            return Err(HeadError::Features {
                path: p,
                theirs: theirs.len(),
            });
        }
        let bad = |name| HeadError::Tensor {
            path: p.clone(),
            name,
        };
        let wv: Vec<Vec<f32>> = get("weight")?.to_vec2().map_err(|_| bad("weight"))?;
        let bv: Vec<f32> = get("bias")?.to_vec1().map_err(|_| bad("bias"))?;
        let mv: Vec<f32> = get("mean")?.to_vec1().map_err(|_| bad("mean"))?;
        let sv: Vec<f32> = get("std")?.to_vec1().map_err(|_| bad("std"))?;
        if wv.len() != K
            || wv.iter().any(|r| r.len() != NUM_FEATURES)
            || bv.len() != K
            || mv.len() != NUM_FEATURES
            || sv.len() != NUM_FEATURES
            || sv.iter().any(|s| !(s.is_finite() && *s > 0.0))
        {
            return Err(bad("weight"));
        }
        let mut weight = vec![[0f32; NUM_FEATURES]; K];
        for (row, src) in weight.iter_mut().zip(&wv) {
            row.copy_from_slice(src);
        }
        let mut bias = [0f32; K];
        bias.copy_from_slice(&bv);
        let mut mean = [0f32; NUM_FEATURES];
        mean.copy_from_slice(&mv);
        let mut std = [0f32; NUM_FEATURES];
        std.copy_from_slice(&sv);
        Ok(Self {
            weight,
            bias,
            mean,
            std,
        })
    }

    /// Writes the head as safetensors.
    pub fn save(&self, path: &Path) -> Result<(), HeadError> {
        let dev = Device::Cpu;
        let flat: Vec<f32> = self.weight.iter().flatten().copied().collect();
        let names = FEATURE_NAMES.join("\n").into_bytes();
        let n = names.len();
        let tensors = [
            ("weight", Tensor::from_vec(flat, (K, NUM_FEATURES), &dev)?),
            ("bias", Tensor::from_vec(self.bias.to_vec(), K, &dev)?),
            (
                "mean",
                Tensor::from_vec(self.mean.to_vec(), NUM_FEATURES, &dev)?,
            ),
            (
                "std",
                Tensor::from_vec(self.std.to_vec(), NUM_FEATURES, &dev)?,
            ),
            ("feature_names", Tensor::from_vec(names, n, &dev)?),
        ];
        let map: std::collections::HashMap<String, Tensor> = tensors
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        candle_core::safetensors::save(&map, path)?;
        Ok(())
    }

    /// The most probable class of a feature vector, with its probability.
    pub fn predict(&self, x: &[f32; NUM_FEATURES]) -> (ActivityClass, f32) {
        let (p, _) = self.evaluate(x);
        let best = (0..K).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap_or(0);
        (ActivityClass::ALL[best], p[best])
    }

    /// Class probabilities and each feature's contribution to each class's logit.
    fn evaluate(&self, x: &[f32; NUM_FEATURES]) -> ([f32; K], Vec<[f32; NUM_FEATURES]>) {
        let z: [f32; NUM_FEATURES] = std::array::from_fn(|j| (x[j] - self.mean[j]) / self.std[j]);
        let contributions: Vec<[f32; NUM_FEATURES]> = self
            .weight
            .iter()
            .map(|w| std::array::from_fn(|j| w[j] * z[j]))
            .collect();
        let logits: [f32; K] =
            std::array::from_fn(|c| self.bias[c] + contributions[c].iter().sum::<f32>());
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let exp = logits.map(|l| (l - max).exp());
        let sum: f32 = exp.iter().sum();
        (exp.map(|e| e / sum), contributions)
    }
}

/// Drivers listed with a decision.
const TOP_DRIVERS: usize = 4;

impl Classifier for ActivityHead {
    fn name(&self) -> &'static str {
        "head-v1"
    }

    fn classify(&self, window: &WindowSummary) -> Decision {
        let x = feature_vector(window);
        let (p, contributions) = self.evaluate(&x);
        let scores = Scores::from_evidence(p);
        let (activity, confidence) = scores.best();
        let c = &contributions[activity.index()];
        let mut order: Vec<usize> = (0..NUM_FEATURES).filter(|&j| c[j] > 0.0).collect();
        order.sort_by(|&a, &b| c[b].total_cmp(&c[a]));
        let total: f32 = order.iter().map(|&j| c[j]).sum::<f32>().max(1e-6);
        let drivers = order
            .into_iter()
            .take(TOP_DRIVERS)
            .map(|j| Driver {
                cue: "learned".to_string(),
                feature: FEATURE_NAMES[j].to_string(),
                value: Some(x[j]),
                degree: c[j] / total,
            })
            .collect();
        Decision {
            activity,
            confidence,
            scores,
            drivers,
            unsmoothed: None,
        }
    }
}

/// Share of `examples` whose most probable class is their label.
pub fn accuracy(head: &ActivityHead, examples: &[([f32; NUM_FEATURES], ActivityClass)]) -> f32 {
    let right = examples
        .iter()
        .filter(|(x, c)| {
            let (p, _) = head.evaluate(x);
            let best = (0..K)
                .max_by(|&a, &b| p[a].total_cmp(&p[b]))
                .unwrap_or_default();
            best == c.index()
        })
        .count();
    right as f32 / examples.len().max(1) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two features separate three classes; the head must learn them and survive a save/load.
    #[test]
    fn learns_separable_classes_and_round_trips() {
        let mut examples = Vec::new();
        for i in 0..30 {
            let jitter = (i % 5) as f32 * 0.05;
            let mut a = [0f32; NUM_FEATURES];
            a[1] = 5.0 + jitter; // motion: busy
            examples.push((a, ActivityClass::Busy));
            let mut b = [0f32; NUM_FEATURES];
            b[9] = 0.9 - jitter; // lying: asleep
            examples.push((b, ActivityClass::Asleep));
            let mut c = [0f32; NUM_FEATURES];
            c[21] = 0.8 + jitter; // speech: conversation
            examples.push((c, ActivityClass::InConversation));
        }
        let head = ActivityHead::train(&examples, TrainOptions::default()).expect("train");
        assert_eq!(accuracy(&head, &examples), 1.0);

        let dir = std::env::temp_dir().join(format!("cav-head-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("head.safetensors");
        head.save(&path).expect("save");
        let loaded = ActivityHead::load(&path).expect("load");
        assert_eq!(accuracy(&loaded, &examples), 1.0);
        let (p1, _) = head.evaluate(&examples[0].0);
        let (p2, _) = loaded.evaluate(&examples[0].0);
        assert_eq!(p1, p2);

        // A file that is not a head is refused with its path in the message.
        std::fs::write(&path, b"not safetensors").expect("write");
        let e = ActivityHead::load(&path).expect_err("refused");
        assert!(e.to_string().contains("head.safetensors"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn one_class_is_not_enough() {
        let examples = vec![([0f32; NUM_FEATURES], ActivityClass::Busy); 3];
        assert!(matches!(
            ActivityHead::train(&examples, TrainOptions::default()),
            Err(HeadError::TooFewExamples(3))
        ));
    }
}
