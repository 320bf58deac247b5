//! Adjoint Matching (Domingo-Enrich et al., ICLR 2025): reward fine-tuning of a flow meta-model,
//! tilting its distribution to p*(x) ∝ p_base(x)·exp(λ·r(x)).
//!
//! - [`field`]: the velocity-field traits the fine-tuner needs (forward, VJP in x, parameter
//!   gradients) and the per-coordinate whitening that makes the source N(0, I).
//! - [`sde`]: the memoryless SDE for α_t = t, β_t = 1−t, its sampler, the lean adjoint step and a
//!   plain ODE sampler.
//! - [`adjoint`]: one Adjoint Matching iteration (sample, reward gradient, adjoint, regression,
//!   loss clipping, Adam) with its timing breakdown.
//! - [`reward`]: the reward trait and the analytic test rewards; [`classify`]: −cross-entropy and
//!   −ℓ_cdc rewards of generated classifiers (through the population engine).
//! - [`gaussian`]: the closed-form Gaussian flow used to verify the method.
//! - [`plot`]: a minimal SVG line plot of the training log.
//! - [`temperature`]: the temperature-calibrated cross-entropy (the `ce-calibrated` reward).
//! - [`tilt`]: what the tilt can reach, by importance weighting of base samples.
//! - [`warm`]: the elite warm start (flow matching onto the best of N base samples).

pub mod adjoint;
pub mod baseline;
pub mod classify;
pub mod field;
pub mod flow_field;
pub mod gaussian;
pub mod meta;
pub mod reward;
pub mod sde;
pub mod temperature;
pub mod tilt;
pub mod warm;

pub use adjoint::{AdjointMatching, AmConfig, IterStats, Scope, Timings};
pub use field::{Field, TrainableField, Whitening};
pub use reward::{LinearReward, QuadraticReward, Reward, ZeroReward};

/// Errors of the fine-tuner.
#[derive(Debug, thiserror::Error)]
pub enum TuneError {
    /// Arrays whose lengths disagree.
    #[error("shape mismatch in {what}: expected {expected} values, got {got}")]
    Shape { what: String, expected: usize, got: usize },
    /// A configuration value out of range.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A NaN or infinity appeared.
    #[error("non-finite value in {0}")]
    NonFinite(String),
    /// An error of the underlying velocity field or decoder.
    #[error("velocity field: {0}")]
    Field(String),
    /// An error of a reward (data, classifier evaluation).
    #[error("reward: {0}")]
    Reward(String),
    /// File input/output.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Checks that `v` holds `expected` values.
pub(crate) fn check_len(what: &str, v: &[f32], expected: usize) -> Result<(), TuneError> {
    if v.len() != expected {
        return Err(TuneError::Shape {
            what: what.into(),
            expected,
            got: v.len(),
        });
    }
    Ok(())
}

/// Checks that all values are finite.
pub(crate) fn check_finite(what: &str, v: &[f32]) -> Result<(), TuneError> {
    if v.iter().any(|x| !x.is_finite()) {
        return Err(TuneError::NonFinite(what.into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
