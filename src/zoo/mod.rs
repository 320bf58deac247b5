//! Model zoos: K classifiers of one architecture trained together in the population engine,
//! every epoch kept (epoch 0 = the initialization), stored on disk as `manifest.json` plus one
//! safetensors checkpoint `W[K, D]` per epoch, and resumable after a crash with bit-identical
//! results.
//!
//! Files: [`manifest`] (the JSON manifest, metrics, configuration identity), [`store`] (atomic
//! writes, checkpoint and optimizer-state files, [`Zoo::open`]), [`train`] (the training loop and
//! resume), [`eval`] (population evaluation on a dataset in chunks), [`export`] (one model as a
//! PyTorch state_dict plus the matching `nn.Sequential` snippet), [`shards`] (a zoo trained as
//! `--shard I/N` parts in `shard-I-of-N` folders, and their merge into the whole zoo).

pub mod eval;
pub mod export;
pub mod manifest;
pub mod shards;
pub mod store;
pub mod train;

pub use eval::{evaluate, EvalResult};
pub use manifest::{EpochRecord, Manifest, ModelMetrics, FORMAT_NAME, FORMAT_VERSION};
pub use shards::{merge, ShardPart};
pub use store::Zoo;
pub use train::{train, train_shard, TrainConfig, TrainEvent};

use std::path::PathBuf;

/// Errors of the zoo: each names the file or argument at fault.
#[derive(Debug, thiserror::Error)]
pub enum ZooError {
    /// A file could not be read, written or renamed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A manifest or checkpoint that is malformed (truncated, wrong shape, NaN, bad JSON, …).
    #[error("{}: {reason}", path.display())]
    Format { path: PathBuf, reason: String },
    /// An existing zoo was trained with a different configuration than the one requested.
    #[error("{}: existing zoo has {field} = {existing}, but this run asks for {requested} (use another --out, or the same settings to resume)", path.display())]
    Mismatch {
        path: PathBuf,
        field: String,
        existing: String,
        requested: String,
    },
    /// A dataset could not be loaded or does not fit.
    #[error("dataset {spec}: {reason}")]
    Data { spec: String, reason: String },
    /// The engine rejected weights or inputs.
    #[error(transparent)]
    Net(#[from] crate::nets::NetError),
    /// An invalid argument.
    #[error("{0}")]
    Invalid(String),
}

impl ZooError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ZooError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn format(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        ZooError::Format {
            path: path.into(),
            reason: reason.into(),
        }
    }
}
