//! Architecture specifications (CNN3, the ModelZoo small CNN, MLPs) as layer lists with a
//! [`ParamLayout`], and their initializers. The population compute lives in `engine`.

pub mod arch;
pub mod init;
pub mod layout;

pub use arch::{Activation, ArchSpec, LayerSpec, Padding};
pub use layout::{ParamEntry, ParamLayout};

/// Errors about architectures and weight vectors.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// A weight matrix whose length does not match K·D.
    #[error("{what}: expected {expected} weights ({models} models × D={dim}), got {got}")]
    WrongLength {
        what: String,
        expected: usize,
        models: usize,
        dim: usize,
        got: usize,
    },
    /// A NaN or infinite weight.
    #[error("{what}: weight {index} (model {model}, {param}) is {value}, not finite")]
    NonFinite {
        what: String,
        index: usize,
        model: usize,
        param: String,
        value: f32,
    },
    /// An input whose shape does not match the architecture.
    #[error("input shape mismatch: {0}")]
    InputShape(String),
    /// An invalid architecture description.
    #[error("invalid architecture: {0}")]
    Invalid(String),
}

/// Checks that `w` holds `models` finite weight vectors of `spec`; `what` names the source
/// (a file or argument) in the error.
pub fn validate_weights(spec: &ArchSpec, w: &[f32], models: usize, what: &str) -> Result<(), NetError> {
    let layout = spec.layout();
    let dim = layout.dim();
    if w.len() != models * dim {
        return Err(NetError::WrongLength {
            what: what.into(),
            expected: models * dim,
            models,
            dim,
            got: w.len(),
        });
    }
    if let Some((i, v)) = w.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        let off = i % dim;
        let param = layout
            .entries
            .iter()
            .find(|e| e.range().contains(&off))
            .map(|e| e.name.clone())
            .unwrap_or_default();
        return Err(NetError::NonFinite {
            what: what.into(),
            index: i,
            model: i / dim,
            param,
            value: *v,
        });
    }
    Ok(())
}
