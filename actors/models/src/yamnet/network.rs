//! The YAMNet network (MobileNet v1 body, mean pooling, one dense layer) on candle's CPU device.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};

use super::class_map::parse_class_map;
use super::depthwise::{BiasRelu, Depthwise3x3};
use super::frontend::{Patch, NUM_MELS, PATCH_FRAMES};
use crate::ModelError;

/// Number of output classes (AudioSet ontology subset).
pub const NUM_CLASSES: usize = 521;
/// Length of the embedding (mean of the last conv layer over time and frequency).
pub const EMBEDDING_LEN: usize = 1024;
/// Number of conv layers (`conv00` … `conv26`).
pub const NUM_CONVS: usize = 27;

/// Indices of the convs with stride 2.
const STRIDE2: [usize; 5] = [0, 3, 7, 11, 23];
/// Output channels of the pointwise convs 02, 04, …, 26.
const POINTWISE_OUT: [usize; 13] = [
    64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024,
];

/// What one conv layer is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ConvKind {
    /// conv00: full 3×3, 1 → 32 channels.
    Full,
    /// Odd indices: 3×3, one filter per channel.
    Depthwise,
    /// Even indices from 02: 1×1 across channels.
    Pointwise,
}

/// Output channels of conv `i`.
fn out_channels(i: usize) -> usize {
    match i {
        0 => 32,
        // A depthwise layer keeps the channels of the layer before it.
        i if i % 2 == 1 => out_channels(i - 1),
        i => POINTWISE_OUT[i / 2 - 1],
    }
}

/// The architecture: kind, input channels, output channels, stride of conv `i` (0..27).
fn layer_spec(i: usize) -> (ConvKind, usize, usize, usize) {
    let stride = if STRIDE2.contains(&i) { 2 } else { 1 };
    match i {
        0 => (ConvKind::Full, 1, 32, stride),
        i if i % 2 == 1 => {
            let c = out_channels(i - 1);
            (ConvKind::Depthwise, c, c, stride)
        }
        i => (
            ConvKind::Pointwise,
            out_channels(i - 1),
            out_channels(i),
            stride,
        ),
    }
}

/// How the convs are computed. Both give the same values (a test checks this).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DepthwiseImpl {
    /// Our own CPU ops (the default): depthwise convs as a direct 3×3 loop over each channel
    /// plane, 1×1 convs as one matrix product, bias and ReLU fused in place.
    #[default]
    Direct,
    /// candle's stock ops only: `conv2d` (with `groups = channels` for depthwise: one conv
    /// per channel, slow), then `broadcast_add` and `relu`. The reference for `Direct`.
    CandleGroups,
}

struct ConvLayer {
    kind: ConvKind,
    stride: usize,
    /// OIHW.
    weight: Tensor,
    /// `[1, C, 1, 1]`, to broadcast over N, H, W.
    bias: Tensor,
}

/// YAMNet's outputs for one patch.
#[derive(Clone, Debug, PartialEq)]
pub struct YamnetOutput {
    /// Independent class probabilities (sigmoid of the logits), 521 values.
    pub scores: Vec<f32>,
    /// Classifier logits, 521 values.
    pub logits: Vec<f32>,
    /// Mean of the last conv layer over time and frequency, 1024 values.
    pub embedding: Vec<f32>,
}

/// The YAMNet network with its class names, on the CPU.
pub struct Yamnet {
    convs: Vec<ConvLayer>,
    /// `[1024, 521]` (transposed once at load, for `embedding · W`).
    classifier_weight: Tensor,
    /// `[1, 521]`.
    classifier_bias: Tensor,
    class_names: Vec<String>,
    depthwise: DepthwiseImpl,
}

impl std::fmt::Debug for Yamnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Yamnet")
            .field("classes", &self.class_names.len())
            .field("depthwise", &self.depthwise)
            .finish_non_exhaustive()
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>, ModelError> {
    std::fs::read(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            ModelError::MissingFile {
                path: path.to_path_buf(),
            }
        } else {
            ModelError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    })
}

fn take_tensor(
    tensors: &mut HashMap<String, Tensor>,
    name: &str,
    expected: &[usize],
) -> Result<Tensor, ModelError> {
    let tensor = tensors
        .remove(name)
        .ok_or_else(|| ModelError::MissingTensor {
            name: name.to_string(),
        })?;
    if tensor.dims() != expected {
        return Err(ModelError::TensorShape {
            name: name.to_string(),
            expected: expected.to_vec(),
            actual: tensor.dims().to_vec(),
        });
    }
    Ok(tensor.to_dtype(DType::F32)?.contiguous()?)
}

impl Yamnet {
    /// Loads the weights (`yamnet.safetensors`) and the class map (`yamnet_class_map.csv`).
    pub fn load(weights: &Path, class_map: &Path) -> Result<Yamnet, ModelError> {
        let weight_bytes = read_file(weights)?;
        let csv_bytes = read_file(class_map)?;
        let csv = String::from_utf8(csv_bytes).map_err(|e| ModelError::Io {
            path: class_map.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        })?;
        Yamnet::from_bytes(&weight_bytes, &csv)
    }

    /// Builds the network from safetensors bytes and the class-map CSV text.
    pub fn from_bytes(weights: &[u8], class_map_csv: &str) -> Result<Yamnet, ModelError> {
        let tensors = candle_core::safetensors::load_buffer(weights, &Device::Cpu)?;
        let class_names = parse_class_map(class_map_csv)?;
        Yamnet::from_tensors(tensors, class_names)
    }

    fn from_tensors(
        mut tensors: HashMap<String, Tensor>,
        class_names: Vec<String>,
    ) -> Result<Yamnet, ModelError> {
        if class_names.len() != NUM_CLASSES {
            return Err(ModelError::ClassMap(format!(
                "{} classes, the network has {NUM_CLASSES}",
                class_names.len()
            )));
        }
        let mut convs = Vec::with_capacity(NUM_CONVS);
        for i in 0..NUM_CONVS {
            let (kind, c_in, c_out, stride) = layer_spec(i);
            let shape = match kind {
                ConvKind::Full => [c_out, c_in, 3, 3],
                ConvKind::Depthwise => [c_out, 1, 3, 3],
                ConvKind::Pointwise => [c_out, c_in, 1, 1],
            };
            let weight = take_tensor(&mut tensors, &format!("conv{i:02}.weight"), &shape)?;
            let bias = take_tensor(&mut tensors, &format!("conv{i:02}.bias"), &[c_out])?
                .reshape((1, c_out, 1, 1))?;
            convs.push(ConvLayer {
                kind,
                stride,
                weight,
                bias,
            });
        }
        let classifier_weight = take_tensor(
            &mut tensors,
            "classifier.weight",
            &[NUM_CLASSES, EMBEDDING_LEN],
        )?
        .t()?
        .contiguous()?;
        let classifier_bias = take_tensor(&mut tensors, "classifier.bias", &[NUM_CLASSES])?
            .reshape((1, NUM_CLASSES))?;
        Ok(Yamnet {
            convs,
            classifier_weight,
            classifier_bias,
            class_names,
            depthwise: DepthwiseImpl::default(),
        })
    }

    /// Chooses how depthwise convs are computed (for checking; the default is fastest).
    pub fn set_depthwise_impl(&mut self, depthwise: DepthwiseImpl) {
        self.depthwise = depthwise;
    }

    /// Runs the network on a batch of patches (one `[N,1,96,64]` tensor) and returns one output
    /// per patch, in order.
    pub fn infer(&self, patches: &[Patch]) -> Result<Vec<YamnetOutput>, ModelError> {
        if patches.is_empty() {
            return Ok(Vec::new());
        }
        let x = self.body(patches_tensor(patches)?, |_, _| Ok(()))?;
        let embedding = x.mean((2, 3))?;
        let logits = embedding
            .matmul(&self.classifier_weight)?
            .broadcast_add(&self.classifier_bias)?;
        let embedding = embedding.to_vec2::<f32>()?;
        let logits = logits.to_vec2::<f32>()?;
        Ok(embedding
            .into_iter()
            .zip(logits)
            .map(|(embedding, logits)| YamnetOutput {
                scores: logits.iter().map(|&z| sigmoid(z)).collect(),
                logits,
                embedding,
            })
            .collect())
    }

    /// Every conv layer's output (after bias and ReLU) for one patch, as flat `[C, H, W]`
    /// values: 27 entries, `conv00` first. For checking the network layer by layer.
    pub fn layer_outputs(&self, patch: &Patch) -> Result<Vec<Vec<f32>>, ModelError> {
        let mut layers = Vec::with_capacity(NUM_CONVS);
        self.body(patches_tensor(std::slice::from_ref(patch))?, |_, t| {
            layers.push(t.flatten_all()?.to_vec1::<f32>()?);
            Ok(())
        })?;
        Ok(layers)
    }

    /// The 27 conv layers; `inspect` sees each layer's output.
    fn body(
        &self,
        mut x: Tensor,
        mut inspect: impl FnMut(usize, &Tensor) -> Result<(), ModelError>,
    ) -> Result<Tensor, ModelError> {
        for (i, layer) in self.convs.iter().enumerate() {
            x = match self.depthwise {
                DepthwiseImpl::Direct => {
                    let y = self.conv(&x, layer)?.contiguous()?;
                    y.inplace_op2(&layer.bias, &BiasRelu)?;
                    y
                }
                DepthwiseImpl::CandleGroups => {
                    self.conv(&x, layer)?.broadcast_add(&layer.bias)?.relu()?
                }
            };
            inspect(i, &x)?;
        }
        Ok(x)
    }

    /// One conv with TF "SAME" padding, without bias and activation.
    fn conv(&self, x: &Tensor, layer: &ConvLayer) -> Result<Tensor, ModelError> {
        // TF SAME for a 3×3 kernel: stride 1 pads 1 all round; stride 2 on an even size pads
        // 0 top/left and 1 bottom/right (not the symmetric padding candle's conv2d offers).
        let pad = if layer.stride == 2 {
            (0, 0, 1, 1)
        } else {
            (1, 1, 1, 1)
        };
        Ok(match (layer.kind, self.depthwise) {
            // A 1×1 conv is a matrix product over the channels, without conv2d's unfold copy:
            // [Cout, Cin] × [Cin, N·H·W], one product for the whole batch (the activations are
            // moved channel-first and back, which is cheap next to the weights).
            (ConvKind::Pointwise, DepthwiseImpl::Direct) => {
                let (n, c, h, w) = x.dims4()?;
                let cout = layer.weight.dim(0)?;
                let w2 = layer.weight.reshape((cout, c))?;
                if n == 1 {
                    w2.matmul(&x.reshape((c, h * w))?)?
                        .reshape((1, cout, h, w))?
                } else {
                    let cols = x
                        .reshape((n, c, h * w))?
                        .transpose(0, 1)?
                        .contiguous()?
                        .reshape((c, n * h * w))?;
                    w2.matmul(&cols)?
                        .reshape((cout, n, h * w))?
                        .transpose(0, 1)?
                        .contiguous()?
                        .reshape((n, cout, h, w))?
                }
            }
            (ConvKind::Pointwise, _) => x.conv2d(&layer.weight, 0, 1, 1, 1)?,
            // The first layer (one input channel) is the same sum as a depthwise conv.
            (ConvKind::Depthwise | ConvKind::Full, DepthwiseImpl::Direct) => {
                x.contiguous()?.apply_op2_no_bwd(
                    &layer.weight,
                    &Depthwise3x3 {
                        stride: layer.stride,
                        pad,
                    },
                )?
            }
            (kind, _) => {
                let groups = if kind == ConvKind::Depthwise {
                    x.dim(1)?
                } else {
                    1
                };
                let padded = x
                    .pad_with_zeros(2, pad.0, pad.2)?
                    .pad_with_zeros(3, pad.1, pad.3)?;
                padded.conv2d(&layer.weight, 0, layer.stride, 1, groups)?
            }
        })
    }

    /// The class names, in output order.
    pub fn class_names(&self) -> &[String] {
        &self.class_names
    }

    /// Display name of class `idx` (e.g. 0 → "Speech"); `""` for an index out of range.
    pub fn class_name(&self, idx: usize) -> &str {
        self.class_names.get(idx).map_or("", String::as_str)
    }

    /// Index of the class with this display name (exact match).
    pub fn class_index(&self, name: &str) -> Option<usize> {
        self.class_names.iter().position(|n| n == name)
    }

    /// The `k` highest scores as `(class index, score)`, best first; ties keep index order.
    pub fn top_k(scores: &[f32], k: usize) -> Vec<(usize, f32)> {
        let mut ranked: Vec<(usize, f32)> = scores.iter().copied().enumerate().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        ranked.truncate(k);
        ranked
    }
}

/// `[N, 1, 96, 64]` from the patches.
fn patches_tensor(patches: &[Patch]) -> Result<Tensor, ModelError> {
    let data: Vec<f32> = patches
        .iter()
        .flat_map(|p| p.as_slice().iter().copied())
        .collect();
    Ok(Tensor::from_vec(
        data,
        (patches.len(), 1, PATCH_FRAMES, NUM_MELS),
        &Device::Cpu,
    )?)
}

/// Logistic function, in f64 so large |z| neither overflows nor loses the small tail.
fn sigmoid(z: f32) -> f32 {
    let z = f64::from(z);
    let e = (-z.abs()).exp();
    (if z >= 0.0 {
        1.0 / (1.0 + e)
    } else {
        e / (1.0 + e)
    }) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn architecture_matches_the_weights_table() {
        let expected = [
            (ConvKind::Full, 1, 32, 2),
            (ConvKind::Depthwise, 32, 32, 1),
            (ConvKind::Pointwise, 32, 64, 1),
            (ConvKind::Depthwise, 64, 64, 2),
            (ConvKind::Pointwise, 64, 128, 1),
        ];
        for (i, e) in expected.iter().enumerate() {
            assert_eq!(layer_spec(i), *e, "conv{i:02}");
        }
        assert_eq!(layer_spec(11), (ConvKind::Depthwise, 256, 256, 2));
        assert_eq!(layer_spec(12), (ConvKind::Pointwise, 256, 512, 1));
        assert_eq!(layer_spec(23), (ConvKind::Depthwise, 512, 512, 2));
        assert_eq!(layer_spec(24), (ConvKind::Pointwise, 512, 1024, 1));
        assert_eq!(layer_spec(25), (ConvKind::Depthwise, 1024, 1024, 1));
        assert_eq!(layer_spec(26), (ConvKind::Pointwise, 1024, 1024, 1));
    }

    #[test]
    fn top_k_orders_by_score_then_index() {
        let scores = [0.1, 0.9, 0.5, 0.9];
        assert_eq!(
            Yamnet::top_k(&scores, 3),
            vec![(1, 0.9), (3, 0.9), (2, 0.5)]
        );
        assert_eq!(Yamnet::top_k(&scores, 10).len(), 4);
    }

    #[test]
    fn sigmoid_is_stable() {
        assert_eq!(sigmoid(0.0), 0.5);
        assert!(sigmoid(-200.0) >= 0.0 && sigmoid(-200.0) < 1e-30);
        assert_eq!(sigmoid(200.0), 1.0);
    }

    #[test]
    fn model_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Yamnet>();
    }
}
