//! NM-CFM: the conditional flow-matching meta-model over weight vectors.
//!
//! Owns the permutation alignment of the targets ([`align`]), the velocity network ([`velocity`], on the hand-written MLP of [`mlp`]), its training
//! state ([`opt`]), an optional latent-space VAE ([`vae`]), flow-matching paths and minibatch couplings ([`cfm`], [`coupling`]), the
//! source distribution and standardization ([`source`]), ODE solvers ([`solve`]), the set
//! encoder of the conditioning images ([`context`]), training and sampling of a [`MetaModel`]
//! ([`train`], [`sample`], [`model`]) and the MLP step benchmark ([`bench`]).

pub mod align;
pub mod bench;
pub mod cfm;
pub mod context;
pub mod coupling;
pub mod mlp;
pub mod model;
pub mod opt;
pub mod sample;
pub mod solve;
pub mod source;
pub mod train;
pub mod vae;
pub mod velocity;

pub use model::{FlowConfig, MetaModel, TargetSpace};
pub use sample::{sample, Samples};
pub use solve::Solver;
pub use train::{train, TargetGroup};

pub use velocity::{VelocityConfig, VelocityField, VelocityMlp};

/// Errors of the flow module.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    /// Inputs whose sizes do not fit together.
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// An invalid setting or value.
    #[error("invalid: {0}")]
    Invalid(String),
    /// A file that cannot be read or written.
    #[error("{path}: {msg}")]
    Io { path: String, msg: String },
    /// Training diverged.
    #[error("training diverged at step {step}: loss {loss}")]
    Diverged { step: usize, loss: f32 },
}
