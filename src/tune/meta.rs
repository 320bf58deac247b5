//! Fine-tuning a flow [`MetaModel`] with Adjoint Matching: the whitening of its source, the
//! decoder from its standardized coordinates to weights, and the loop with a per-iteration
//! callback (progress, logging). Used by `weightflow tune` and Meta-Detectron.

use super::adjoint::{AdjointMatching, AmConfig, IterStats};
use super::classify::AffineDecoder;
use super::field::TrainableField;
use super::flow_field::whitening_for;
use super::reward::Reward;
use super::TuneError;
use crate::flow::model::MetaModel;
use crate::flow::VelocityMlp;

/// The decoder w = mean + std ⊙ x of a meta-model's standardization.
pub fn decoder(meta: &MetaModel) -> AffineDecoder {
    AffineDecoder {
        shift: meta.standardizer.mean.clone(),
        scale: meta.standardizer.std.clone(),
    }
}

/// The whitening of `meta`'s source (its coordinates z with p0 = N(0, I)).
fn whitening(meta: &MetaModel, degenerate_scale: f32) -> Result<super::field::Whitening, TuneError> {
    whitening_for(
        meta.config.source,
        &meta.space.layout,
        &meta.standardizer,
        degenerate_scale,
    )
}

/// Whether `meta`'s field is in endpoint form, whose SDE and adjoint steps must freeze the
/// endpoint prediction (it is stiff at t → 1).
pub fn endpoint_form(meta: &MetaModel) -> bool {
    meta.velocity.config.param == crate::flow::velocity::Parameterization::Endpoint
}

/// Fine-tunes a copy of `meta`'s velocity for `iters` iterations with context embedding `ctx`
/// (`[ctx_dim]`, empty when unconditional); `degenerate_scale` whitens constant source
/// coordinates; `on_iter` sees each iteration's statistics and the current fine-tuned field.
/// Returns the fine-tuned velocity and the log.
pub fn fine_tune(
    meta: &MetaModel,
    reward: &mut dyn Reward,
    config: AmConfig,
    ctx: &[f32],
    iters: usize,
    degenerate_scale: f32,
    mut on_iter: impl FnMut(&IterStats, &VelocityMlp) -> Result<(), TuneError>,
) -> Result<(VelocityMlp, Vec<IterStats>), TuneError> {
    let whiten = whitening(meta, degenerate_scale)?;
    let base = &meta.velocity;
    let mut config = config;
    config.endpoint_steps |= endpoint_form(meta);
    let mut am = AdjointMatching::new(base, base.clone(), whiten, config)?;
    let mut log = Vec::with_capacity(iters);
    // The field the caller sees: the current one, or its Polyak average.
    let mut averaged = am.averaged_params().map(|_| am.ft.clone());
    for _ in 0..iters {
        let s = am.step(reward, ctx)?;
        match (&mut averaged, am.averaged_params()) {
            (Some(f), Some(p)) => {
                f.params_mut().copy_from_slice(p);
                on_iter(&s, f)?;
            }
            _ => on_iter(&s, &am.ft)?,
        }
        log.push(s);
    }
    Ok((averaged.unwrap_or(am.ft), log))
}

/// `n` weight vectors `[n, D]` from the memoryless SDE of `field` (the meta-model's own velocity,
/// or a fine-tuned copy of it) on the Adjoint-Matching grid of `config` (steps, t0, grid power),
/// from z_{t0} ~ N(0, I) with `seed`: the sampler Adjoint Matching trains with, whose terminal law
/// is the tilted p* at the fixed point. `ctx` is one context row.
pub fn sample_sde(
    meta: &MetaModel,
    field: &VelocityMlp,
    ctx: &[f32],
    n: usize,
    config: &AmConfig,
    degenerate_scale: f32,
    seed: u64,
) -> Result<Vec<f32>, TuneError> {
    use super::classify::WeightDecoder;
    let whiten = whitening(meta, degenerate_scale)?;
    let cfg = AmConfig {
        batch: n,
        seed,
        endpoint_steps: config.endpoint_steps || endpoint_form(meta),
        ..config.clone()
    };
    let am = AdjointMatching::new(&meta.velocity, field.clone(), whiten, cfg)?;
    let traj = am.sample_trajectories(ctx, &[], 0)?;
    let x = am.whiten.to_x(&traj.z[am.grid.steps()]);
    decoder(meta).decode(&x)
}
