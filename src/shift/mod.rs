//! Shift detection: statistics, Detectron, Meta-Detectron, classic baselines, experiments.
//!
//! Every detector returns one [`DetectionResult`].

pub mod bank_shards;
pub mod baselines;
pub mod detector;
pub mod detectron;
pub mod experiment;
pub mod figure2;
pub mod grid_shards;
pub mod meta_detectron;
pub mod pipeline;
pub mod result;
pub mod stats;

pub use detector::{Detector, DetectorConfig, FitInputs};
pub use detectron::{
    decide, detectron_test, run_detectron, BaseModel, Budget, DetectronConfig, DetectronRun, Images, NullBank,
};
pub use meta_detectron::{GNoise, MetaDetectronConfig, PLabels};
pub use pipeline::{BankShard, Method, ModelSource, Setup, SetupConfig};
pub use result::DetectionResult;

/// Errors of the shift tests.
#[derive(Debug, thiserror::Error)]
pub enum ShiftError {
    /// An empty sample or set.
    #[error("empty input: {0}")]
    Empty(String),
    /// A NaN or infinite value.
    #[error("non-finite value: {0}")]
    NonFinite(String),
    /// Arrays whose lengths do not fit together.
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// An invalid parameter (significance level, sizes, ...).
    #[error("invalid argument: {0}")]
    Invalid(String),
    /// An architecture or weight problem from the engine.
    #[error(transparent)]
    Net(#[from] crate::nets::NetError),
    /// A file that could not be read or written.
    #[error(transparent)]
    Report(#[from] crate::report::ReportError),
    /// A dataset that could not be loaded.
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    /// A meta-model that could not be loaded or sampled.
    #[error(transparent)]
    Flow(#[from] crate::flow::FlowError),
    /// A zoo or model file that could not be read.
    #[error(transparent)]
    Zoo(#[from] crate::zoo::ZooError),
}
