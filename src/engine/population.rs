//! Population forward and backward over `W[K, D]` for any [`ArchSpec`].
//! (Interface fixed; implementation in progress.)

use crate::engine::loss::Objective;
use crate::nets::{ArchSpec, NetError};

/// Input images, NCHW f32 (already normalized).
#[derive(Clone, Copy, Debug)]
pub enum Input<'a> {
    /// One batch `[N, C, H, W]` seen by every model.
    Shared(&'a [f32]),
    /// One batch per model `[K, N, C, H, W]`.
    PerModel(&'a [f32]),
}

/// Evaluation (dropout off) or training (dropout on, masks seeded per model and call).
#[derive(Clone, Copy, Debug)]
pub enum Mode<'a> {
    Eval,
    /// `seeds[k]` seeds model k's dropout masks for this call.
    Train {
        seeds: &'a [u64],
    },
}

/// Result of [`Population::gradient`].
#[derive(Clone, Debug, Default)]
pub struct Gradients {
    /// Loss per model `[K]`.
    pub loss: Vec<f32>,
    /// ∂L_k/∂W_k `[K, D]`.
    pub dw: Vec<f32>,
    /// ∂L_k/∂x for each model, `[K, N, C, H, W]`, when asked.
    pub dx: Option<Vec<f32>>,
    /// Logits `[K, N, classes]`.
    pub logits: Vec<f32>,
}

/// K models of one architecture, weights borrowed as `W[K, D]`.
pub struct Population<'a> {
    pub spec: &'a ArchSpec,
    pub weights: &'a [f32],
    pub models: usize,
    /// Worker threads (≥ 1).
    pub threads: usize,
}

impl<'a> Population<'a> {
    /// Wraps `weights` after checking their length is K·D and all are finite.
    pub fn new(spec: &'a ArchSpec, weights: &'a [f32], models: usize, threads: usize) -> Result<Self, NetError> {
        spec.shapes()?;
        crate::nets::validate_weights(spec, weights, models, "population weights")?;
        Ok(Population {
            spec,
            weights,
            models,
            threads: threads.max(1),
        })
    }

    /// Logits `[K, N, classes]` for `n` samples (evaluation mode).
    pub fn logits(&self, input: Input<'_>, n: usize) -> Result<Vec<f32>, NetError> {
        let _ = (input, n);
        todo!("population forward")
    }

    /// Loss per model, ∂L/∂W `[K, D]` (and ∂L/∂x when `want_dx`) for `n` samples.
    pub fn gradient(
        &self,
        input: Input<'_>,
        n: usize,
        objective: &Objective<'_>,
        mode: Mode<'_>,
        want_dx: bool,
    ) -> Result<Gradients, NetError> {
        let _ = (input, n, objective, mode, want_dx);
        todo!("population backward")
    }
}
