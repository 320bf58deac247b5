//! Fine-tuning a flow [`MetaModel`] with Adjoint Matching: the whitening of its source, the
//! decoder from its standardized coordinates to weights, and the loop with a per-iteration
//! callback (progress, logging), and the choice of the iterate returned. Used by `weightflow
//! tune` and Meta-Detectron.

use super::adjoint::{AdjointMatching, AmConfig, IterStats, BEST_REWARD_EMA};
use super::classify::AffineDecoder;
use super::field::TrainableField;
use super::flow_field::whitening_for;
use super::reward::Reward;
use super::warm::{distill, WarmStartConfig};
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

/// The iterate with the highest smoothed reward seen so far: an EMA (factor `ema`) of each
/// iteration's batch-median reward, its maximum and where it was reached.
#[derive(Clone, Debug, PartialEq)]
pub struct BestReward {
    ema: f32,
    smoothed: Option<f32>,
    /// Highest smoothed reward so far and its iteration.
    pub best: Option<(f32, u64)>,
}

impl BestReward {
    /// A tracker with EMA factor `ema` in [0, 1).
    pub fn new(ema: f32) -> Self {
        BestReward {
            ema,
            smoothed: None,
            best: None,
        }
    }

    /// Records iteration `iter`'s batch-median reward; true when the smoothed reward is a new
    /// maximum (the first iteration always is). Non-finite rewards count as −∞.
    pub fn observe(&mut self, iter: u64, median: f32) -> bool {
        let r = if median.is_finite() { median } else { f32::NEG_INFINITY };
        let s = match self.smoothed {
            Some(prev) if prev.is_finite() => self.ema * prev + (1.0 - self.ema) * r,
            _ => r,
        };
        self.smoothed = Some(s);
        let better = match self.best {
            None => true,
            Some((b, _)) => s > b,
        };
        if better {
            self.best = Some((s, iter));
        }
        better
    }
}

/// What [`fine_tune`] returns.
pub struct Tuned {
    /// The fine-tuned velocity: the last iterate's (or its Polyak average), or with
    /// `keep_best` the one of the iteration in `best_iter`.
    pub velocity: VelocityMlp,
    /// Every iteration's statistics.
    pub log: Vec<IterStats>,
    /// With `keep_best`: the iteration whose field was kept.
    pub best_iter: Option<u64>,
}

/// Fine-tunes a copy of `meta`'s velocity for `iters` iterations with context embedding `ctx`
/// (`[ctx_dim]`, empty when unconditional); `degenerate_scale` whitens constant source
/// coordinates; `on_iter` sees each iteration's statistics and the current fine-tuned field.
/// Returns the fine-tuned velocity (see [`AmConfig::keep_best`]) and the log.
pub fn fine_tune(
    meta: &MetaModel,
    reward: &mut dyn Reward,
    config: AmConfig,
    ctx: &[f32],
    iters: usize,
    degenerate_scale: f32,
    on_iter: impl FnMut(&IterStats, &VelocityMlp) -> Result<(), TuneError>,
) -> Result<Tuned, TuneError> {
    let start = meta.velocity.clone();
    fine_tune_from(meta, start, reward, config, ctx, iters, degenerate_scale, on_iter)
}

/// [`fine_tune`] with the fine-tuned copy starting at `start` (e.g. [`warm_start`]'s field)
/// instead of the base velocity; the tilt is still of the base law.
#[allow(clippy::too_many_arguments)]
pub fn fine_tune_from(
    meta: &MetaModel,
    start: VelocityMlp,
    reward: &mut dyn Reward,
    config: AmConfig,
    ctx: &[f32],
    iters: usize,
    degenerate_scale: f32,
    mut on_iter: impl FnMut(&IterStats, &VelocityMlp) -> Result<(), TuneError>,
) -> Result<Tuned, TuneError> {
    let whiten = whitening(meta, degenerate_scale)?;
    let base = &meta.velocity;
    let mut config = config;
    config.endpoint_steps |= endpoint_form(meta);
    let keep_best = config.keep_best;
    let mut am = AdjointMatching::new(base, start, whiten, config)?;
    let mut log = Vec::with_capacity(iters);
    // The field the caller sees: the current one, or its Polyak average.
    let mut averaged = am.averaged_params().map(|_| am.ft.clone());
    let mut tracker = BestReward::new(BEST_REWARD_EMA);
    let mut kept: Option<VelocityMlp> = None;
    for _ in 0..iters {
        let s = am.step(reward, ctx)?;
        let seen = match (&mut averaged, am.averaged_params()) {
            (Some(f), Some(p)) => {
                f.params_mut().copy_from_slice(p);
                &*f
            }
            _ => &am.ft,
        };
        on_iter(&s, seen)?;
        if keep_best && tracker.observe(s.iter, s.reward_median) {
            kept = Some(seen.clone());
        }
        log.push(s);
    }
    let last = averaged.unwrap_or(am.ft);
    Ok(Tuned {
        velocity: kept.unwrap_or(last),
        log,
        best_iter: if keep_best { tracker.best.map(|(_, i)| i) } else { None },
    })
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
    let x = sample_sde_flow_coords(meta, field, ctx, n, config, degenerate_scale, seed)?;
    decoder(meta).decode(&x)
}

/// [`sample_sde`] before the decoder: `[n, D]` in the flow's (standardized) coordinates.
pub fn sample_sde_flow_coords(
    meta: &MetaModel,
    field: &VelocityMlp,
    ctx: &[f32],
    n: usize,
    config: &AmConfig,
    degenerate_scale: f32,
    seed: u64,
) -> Result<Vec<f32>, TuneError> {
    let whiten = whitening(meta, degenerate_scale)?;
    let cfg = AmConfig {
        batch: n,
        seed,
        endpoint_steps: config.endpoint_steps || endpoint_form(meta),
        ..config.clone()
    };
    let am = AdjointMatching::new(&meta.velocity, field.clone(), whiten, cfg)?;
    let traj = am.sample_trajectories(ctx, &[], 0)?;
    Ok(am.whiten.to_x(&traj.z[am.grid.steps()]))
}

/// The elite warm start ([`super::warm`]): a copy of `meta`'s velocity moved by flow matching
/// onto the endpoints `elite_x [k, D]` (flow coordinates, e.g. the best rows of
/// [`sample_sde_flow_coords`]) with context row `ctx`; `on_iter(i, loss)` sees every iteration.
/// Returns the field and the loss per iteration; `cfg.endpoint_weight` is set from the
/// meta-model's parameterization.
pub fn warm_start(
    meta: &MetaModel,
    elite_x: &[f32],
    ctx: &[f32],
    cfg: &WarmStartConfig,
    degenerate_scale: f32,
    on_iter: impl FnMut(usize, f32),
) -> Result<(VelocityMlp, Vec<f32>), TuneError> {
    let whiten = whitening(meta, degenerate_scale)?;
    let cfg = WarmStartConfig {
        endpoint_weight: endpoint_form(meta),
        ..cfg.clone()
    };
    let mut field = meta.velocity.clone();
    let losses = distill(&mut field, &whiten, &whiten.to_z(elite_x), ctx, &cfg, on_iter)?;
    Ok((field, losses))
}

#[cfg(test)]
mod tests {
    use super::BestReward;

    #[test]
    fn best_reward_keeps_the_peak_of_the_smoothed_median() {
        // Rises, peaks at iteration 3, then collapses (the λ-300 failure) with a NaN batch.
        let medians = [-2.0, -1.0, -0.5, -0.2, -5.0, f32::NAN, -1.5, -0.3];
        let mut t = BestReward::new(0.5);
        let news: Vec<bool> = medians
            .iter()
            .enumerate()
            .map(|(i, &m)| t.observe(i as u64, m))
            .collect();
        // Smoothed: −2, −1.5, −1, −0.6, −2.8, −∞, −1.5, −0.9.
        assert_eq!(news, [true, true, true, true, false, false, false, false]);
        let (best, at) = t.best.expect("a best iterate");
        assert_eq!(at, 3);
        assert!((best + 0.6).abs() < 1e-6, "smoothed best {best}");
    }

    #[test]
    fn one_bad_batch_delays_but_does_not_block_a_later_best() {
        // Factor 0.8: a batch at −6 after −1s drops the smoothed value to −2; a plateau at −0.9
        // then overtakes the old best (−1) after 11 iterations: −0.9 − 1.1·0.8ⁿ > −1 ⇔ n ≥ 11.
        let mut t = BestReward::new(0.8);
        let medians: Vec<f32> = [vec![-1.0; 3], vec![-6.0], vec![-0.9; 12]].concat();
        let mut news = Vec::new();
        for (i, m) in medians.iter().enumerate() {
            if t.observe(i as u64, *m) {
                news.push(i);
            }
        }
        assert_eq!(news, [0, 14, 15]);
    }
}
