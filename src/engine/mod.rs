//! The population compute core. The weights of K models of one architecture are one matrix
//! `W[K, D]`; the engine evaluates and differentiates all K at once.
//!
//! Two input modes: [`Input::Shared`] (one batch seen by every model: evaluation, Detectron,
//! rewards) and [`Input::PerModel`] (one batch per model: zoo training).

pub mod gemm;
pub mod layers;
pub mod loss;
pub mod optim;
pub mod population;
pub mod rng;

pub use loss::{Objective, SampleLoss};
pub use optim::{OptimConfig, Optimizer};
pub use population::{Gradients, Input, Mode, Population};
