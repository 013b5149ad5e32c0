//! Errors of loading and running the models.

use std::path::PathBuf;

/// Why a model could not be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A model file (weights, class map) does not exist.
    #[error("model file {} not found", path.display())]
    MissingFile {
        /// The path that was looked for.
        path: PathBuf,
    },
    /// A model file exists but could not be read.
    #[error("cannot read model file {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The weights lack a tensor the network needs.
    #[error("tensor `{name}` is missing from the weights")]
    MissingTensor {
        /// The tensor's name, e.g. `conv03.weight`.
        name: String,
    },
    /// A tensor in the weights has another shape than the network needs.
    #[error("tensor `{name}` has shape {actual:?}, expected {expected:?}")]
    TensorShape {
        /// The tensor's name.
        name: String,
        /// The shape the network needs.
        expected: Vec<usize>,
        /// The shape in the file.
        actual: Vec<usize>,
    },
    /// The class map is malformed or does not fit the network.
    #[error("class map: {0}")]
    ClassMap(String),
    /// Candle failed (bad safetensors data, an op error).
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
}
