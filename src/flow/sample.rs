//! Sampling from a [`MetaModel`]: embed a context set, draw sources, integrate the learned ODE
//! from t = 0 to 1, undo the standardization.

use super::model::MetaModel;
use super::solve::{integrate, Solver};
use super::source::sample_source;
use super::train::context_set;
use super::velocity::VelocityField;
use super::FlowError;
use crate::engine::rng::stream;

/// Generated vectors and the cost of generating them.
#[derive(Clone, Debug)]
pub struct Samples {
    /// `[n, D]` in the original (weight) coordinates.
    pub x: Vec<f32>,
    /// Function evaluations (each one a batch of n).
    pub nfe: usize,
}

/// The context embedding `[ctx_dim]` of `items` (a random set of `context_k` of them, drawn
/// from `seed`); empty for an unconditional model.
pub fn embed_context(meta: &MetaModel, items: &[f32], seed: u64) -> Result<Vec<f32>, FlowError> {
    match &meta.encoder {
        None => Ok(Vec::new()),
        Some(enc) => {
            let il = enc.config.items.item_len();
            if items.is_empty() || !items.len().is_multiple_of(il) {
                return Err(FlowError::Shape(format!(
                    "context: {} values are not items of {il} values",
                    items.len()
                )));
            }
            let set = context_set(items, il, meta.config.context_k, &mut stream(seed, "flow-context", 0));
            Ok(enc.forward(&set)?.0)
        }
    }
}

/// `n` vectors `[n, D]` generated for the dataset whose items are `context_items`.
pub fn sample(
    meta: &MetaModel,
    context_items: &[f32],
    n: usize,
    steps: usize,
    solver: Solver,
    seed: u64,
) -> Result<Samples, FlowError> {
    let c = embed_context(meta, context_items, seed)?;
    let ctx: Vec<f32> = c.iter().cycle().take(n * c.len()).copied().collect();
    let x0 = sample_source(
        meta.config.source,
        &meta.space.layout,
        &meta.standardizer,
        n,
        &mut stream(seed, "flow-source", 0),
    );
    let v = &meta.velocity;
    let sol = integrate(
        solver,
        |t, x| v.velocity(x, &vec![t as f32; n], &ctx),
        &x0,
        0.0,
        1.0,
        steps,
    );
    let mut x = sol.x;
    if let Some((i, val)) = x.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(FlowError::Invalid(format!(
            "sampling produced a non-finite value {val} at {i}"
        )));
    }
    meta.standardizer.inverse(&mut x);
    Ok(Samples { x, nfe: sol.nfe })
}
