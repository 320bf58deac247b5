//! One Adjoint Matching iteration (Domingo-Enrich et al., ICLR 2025, Algorithm 1 with the lean
//! adjoint), in whitened coordinates z (p0 = N(0, I), see [`super::field`]):
//!
//! 1. sample B trajectories of the memoryless SDE driven by the *current fine-tuned* velocity,
//!    from z_{t0} ~ N(0, I) (memoryless: the state at t0 is forgotten after the first step), no
//!    gradient through sampling;
//! 2. a(1) = −λ ∇_z r(x_1) (λ = reward multiplier; ∇_z = β ⊙ ∇_x);
//! 3. the lean adjoint backward with the *base* velocity only, one VJP per step ([`super::sde`]);
//! 4. regression on the chosen steps S: per sample
//!    `L_i = (1/|S|) Σ_{k∈S} ‖(2/σ_k)(v_ft − v_base)(z_k, t_k) + σ_k a_k‖²`;
//!    samples whose loss exceeds an EMA of the batch `clip_quantile` quantile are scaled down to
//!    it (gradient times threshold/L_i, direction kept);
//! 5. one Adam step on the fine-tuned parameters.
//!
//! The fixed point of the regression is v_ft − v_base = −(σ²/2)·E[a(t) | z_t], whose memoryless
//! SDE (and ODE) samples p*(x) ∝ p_base(x)·exp(λ r(x)).

use super::field::{Field, TrainableField, Whitening};
use super::reward::Reward;
use super::sde::{adjoint_step, endpoint_coeffs, endpoint_step, ode_sample, sde_step, sigma, Grid};
use super::{check_finite, check_len, TuneError};
use crate::engine::optim::{OptimConfig, Optimizer};
use crate::engine::rng::stream;
use rand::seq::index::sample as sample_indices;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// Hyperparameters of Adjoint Matching.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AmConfig {
    /// SDE/adjoint steps N on the grid t0 … 1.
    pub steps: usize,
    /// First time of the grid (> 0: σ(0) is infinite).
    pub t0: f32,
    /// Grid spacing t_k = t0 + (1 − t0)(k/N)^p ([`Grid::power`]); 1 = uniform.
    #[serde(default = "one")]
    pub grid_power: f32,
    /// Trajectories per iteration.
    pub batch: usize,
    /// Number of grid steps (drawn per iteration, shared by the batch) in the loss; 0 = all N.
    pub loss_steps: usize,
    /// Reward multiplier λ: the target is p_base·exp(λ r).
    pub reward_scale: f32,
    /// Adam learning rate.
    pub lr: f32,
    /// Iterations over which the learning rate ramps linearly from lr/warmup to lr (0 or 1 = none):
    /// Adam's first steps move every parameter by about lr whatever the signal, which collapses
    /// the generated classifiers before the moment estimates settle.
    #[serde(default)]
    pub warmup: usize,
    /// Quantile of the per-sample losses used for clipping (≥ 1 disables clipping).
    pub clip_quantile: f32,
    /// EMA factor of the clipping threshold.
    pub clip_ema: f32,
    /// Weight the squared residual of coordinate c by β_c² (the loss measured in the flow's own
    /// coordinates, so that coordinates with a tiny source scale do not dominate). The
    /// per-coordinate minimizer is unchanged; with identity whitening this is a no-op.
    pub flow_units_loss: bool,
    /// Step the SDE and the adjoint with a frozen endpoint prediction (exact DDPM-posterior steps,
    /// see `sde`), for endpoint-form fields whose v is stiff at t → 1. The field is never read at t = 1.
    #[serde(default)]
    pub endpoint_steps: bool,
    /// Only grid steps with t_k ≥ this time enter the regression (0 = all).
    #[serde(default)]
    pub loss_t_min: f32,
    /// Weight each loss step by the inverse of an EMA (factor `clip_ema`) of its batch-mean loss,
    /// so that every time carries the same share of the loss. The pointwise minimizer
    /// E[target | z_t] is unchanged (a positive weight per time); only the variance changes: the
    /// small-t terms σ(t)·a(t) are heavy-tailed and otherwise dominate the gradient by 10⁴–10⁶.
    #[serde(default)]
    pub step_normalize: bool,
    /// Which parameters of the fine-tuned field move.
    #[serde(default)]
    pub scope: Scope,
    /// Polyak averaging of the fine-tuned parameters: after every step θ̄ ← ema·θ̄ + (1 − ema)·θ,
    /// and the averaged field is the result ([`AdjointMatching::averaged_params`]); 0 = off.
    /// Sampling during training keeps using the current θ.
    #[serde(default)]
    pub ema: f32,
    /// Return the field of the iteration with the highest smoothed batch-median reward (an EMA
    /// of factor [`BEST_REWARD_EMA`]) instead of the last one ([`super::meta::fine_tune`]). A sharp
    /// tilt can concentrate the law until one Adam step throws the whole batch off (MNIST, λ 300:
    /// batch reward −0.13 ± 0.04 at iteration 89, −39 ± 43 at 90, 4 of 5 classifiers at chance
    /// after 100). The selection uses the training reward only; the kept
    /// field is the one the caller saw at that iteration (the Polyak average when `ema` > 0).
    #[serde(default)]
    pub keep_best: bool,
    /// Run seed.
    pub seed: u64,
}

/// EMA factor of the batch-median reward that `keep_best` maximizes.
pub const BEST_REWARD_EMA: f32 = 0.8;

/// The parameters Adjoint Matching updates (the others keep the base values). The regression
/// target E[a | x_t] is a state-dependent field over a D-dimensional space; with a handful of
/// trajectories per iteration the whole network fits each trajectory's own adjoint (mostly the
/// individual classifier's gradient), while the output layer can only follow what the
/// trajectories share, and the output bias only the state-independent (mean) part. The fixed point
/// of a restricted scope is the L2 projection of the optimal control onto what the scope can express.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    /// Every parameter (the paper's setting).
    #[default]
    All,
    /// The output layer (weight and bias).
    Output,
    /// The output layer's bias: a state-independent shift of the field's output.
    OutputBias,
}

impl std::str::FromStr for Scope {
    type Err = TuneError;
    fn from_str(s: &str) -> Result<Self, TuneError> {
        match s {
            "all" => Ok(Scope::All),
            "output" => Ok(Scope::Output),
            "output-bias" => Ok(Scope::OutputBias),
            other => Err(TuneError::Config(format!(
                "fine-tuning scope must be all, output or output-bias, got `{other}`"
            ))),
        }
    }
}

fn one() -> f32 {
    1.0
}

impl Default for AmConfig {
    fn default() -> Self {
        AmConfig {
            steps: 40,
            t0: 1e-3,
            grid_power: 1.0,
            batch: 16,
            loss_steps: 0,
            reward_scale: 1.0,
            lr: 1e-4,
            warmup: 0,
            loss_t_min: 0.0,
            step_normalize: false,
            clip_quantile: 0.9,
            clip_ema: 0.9,
            flow_units_loss: true,
            endpoint_steps: false,
            scope: Scope::All,
            ema: 0.0,
            keep_best: false,
            seed: 0,
        }
    }
}

/// Wall time of one iteration by phase, in seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    pub sampling: f64,
    pub reward: f64,
    pub adjoint: f64,
    pub regression: f64,
    pub total: f64,
}

/// What one iteration measured.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct IterStats {
    pub iter: u64,
    /// Mean and std of r(x_1) over the batch (without the multiplier).
    pub reward_mean: f32,
    pub reward_std: f32,
    /// Median of r(x_1) over the batch: unlike the mean, not moved by one exploded sample.
    #[serde(default)]
    pub reward_median: f32,
    /// Mean per-sample regression loss (before clipping).
    pub loss: f32,
    /// Fraction of samples scaled down by clipping.
    pub clipped: f32,
    /// Norm of the parameter gradient.
    pub grad_norm: f32,
    /// Mean per-sample loss term of each loss step (`[|S|]`, in the order of `loss_times`):
    /// shows which times dominate the regression.
    #[serde(default)]
    pub loss_by_step: Vec<f32>,
    /// The grid times of the loss steps.
    #[serde(default)]
    pub loss_times: Vec<f32>,
    pub time: Timings,
}

/// Trajectories of one batch in whitened coordinates.
#[derive(Clone, Debug)]
pub struct Trajectories {
    /// z at every grid time, `[N+1][B·dim]`.
    pub z: Vec<Vec<f32>>,
    /// Fine-tuned velocity at the steps in `keep`, `[|keep|][B·dim]` (whitened).
    pub v_ft: Vec<Vec<f32>>,
    /// The steps whose velocity was kept.
    pub keep: Vec<usize>,
}

/// The fine-tuner: a frozen base field, a trainable copy, the whitening and Adam.
pub struct AdjointMatching<'b, B: Field + ?Sized, F: TrainableField> {
    pub base: &'b B,
    pub ft: F,
    pub whiten: Whitening,
    pub config: AmConfig,
    pub grid: Grid,
    opt: Optimizer,
    clip_threshold: Option<f32>,
    /// EMA of the batch-mean loss of each grid step (`step_normalize`).
    step_scale: Vec<Option<f64>>,
    /// θ̄ when `config.ema > 0`.
    average: Option<Vec<f32>>,
    iter: u64,
}

impl<'b, B: Field + ?Sized, F: TrainableField> AdjointMatching<'b, B, F> {
    /// A fine-tuner starting from `ft` (normally a copy of the base).
    pub fn new(base: &'b B, ft: F, whiten: Whitening, config: AmConfig) -> Result<Self, TuneError> {
        if base.dim() != ft.dim() || whiten.dim() != base.dim() || base.ctx_dim() != ft.ctx_dim() {
            return Err(TuneError::Config(format!(
                "base (dim {}, ctx {}), fine-tuned (dim {}, ctx {}) and whitening (dim {}) disagree",
                base.dim(),
                base.ctx_dim(),
                ft.dim(),
                ft.ctx_dim(),
                whiten.dim()
            )));
        }
        if config.batch == 0 || config.lr.is_nan() || config.lr <= 0.0 || !config.reward_scale.is_finite() {
            return Err(TuneError::Config(format!(
                "batch must be ≥ 1, lr > 0 and the reward multiplier finite: {config:?}"
            )));
        }
        if !(0.0..1.0).contains(&config.ema) {
            return Err(TuneError::Config(format!(
                "the parameter average's decay must be in [0, 1), got {}",
                config.ema
            )));
        }
        if !(0.0..1.0).contains(&config.clip_ema) || config.clip_quantile.is_nan() || config.clip_quantile <= 0.0 {
            return Err(TuneError::Config(format!(
                "clip_ema must be in [0, 1) and clip_quantile > 0: {config:?}"
            )));
        }
        let grid = Grid::power(config.t0, config.steps, config.grid_power)?;
        let opt = Optimizer::new(OptimConfig::adam(config.lr, 0.0), ft.params().len());
        let average = (config.ema > 0.0).then(|| ft.params().to_vec());
        Ok(AdjointMatching {
            base,
            ft,
            whiten,
            step_scale: vec![None; config.steps + 1],
            config,
            grid,
            opt,
            clip_threshold: None,
            average,
            iter: 0,
        })
    }

    /// The Polyak average θ̄ of the fine-tuned parameters (`None` when `config.ema` is 0).
    pub fn averaged_params(&self) -> Option<&[f32]> {
        self.average.as_deref()
    }

    /// Iterations done.
    pub fn iterations(&self) -> u64 {
        self.iter
    }

    /// Context rows `[B, ctx_dim]` from one context vector or B of them.
    fn ctx_rows(&self, ctx: &[f32], b: usize) -> Result<Vec<f32>, TuneError> {
        let c = self.base.ctx_dim();
        if ctx.len() == b * c {
            Ok(ctx.to_vec())
        } else if ctx.len() == c {
            Ok((0..b).flat_map(|_| ctx.iter().copied()).collect())
        } else {
            Err(TuneError::Shape {
                what: "context (one row or one per trajectory)".into(),
                expected: b * c,
                got: ctx.len(),
            })
        }
    }

    /// Samples B memoryless-SDE trajectories from the fine-tuned field (whitened), keeping its
    /// velocity at the steps `keep`.
    pub fn sample_trajectories(&self, ctx: &[f32], keep: &[usize], seed_index: u64) -> Result<Trajectories, TuneError> {
        let (b, d) = (self.config.batch, self.base.dim());
        let ctx = self.ctx_rows(ctx, b)?;
        let mut rng = stream(self.config.seed, "am-sde", seed_index);
        let mut z: Vec<f32> = (0..b * d).map(|_| StandardNormal.sample(&mut rng)).collect();
        let mut traj = Vec::with_capacity(self.grid.steps() + 1);
        let mut v_keep = Vec::with_capacity(keep.len());
        for k in 0..self.grid.steps() {
            let (t0, t1) = (self.grid.t[k], self.grid.t[k + 1]);
            let v = self.whiten.velocity(&self.ft, &z, &vec![t0; b], &ctx)?;
            check_finite("fine-tuned velocity during sampling", &v)?;
            traj.push(z.clone());
            if self.config.endpoint_steps {
                let xhat: Vec<f32> = z.iter().zip(&v).map(|(x, v)| x + (1.0 - t0) * v).collect();
                endpoint_step(&mut z, &xhat, t0, t1, &mut rng, true);
            } else {
                sde_step(&mut z, &v, t0, t1, &mut rng, true);
            }
            if keep.contains(&k) {
                v_keep.push(v);
            }
        }
        traj.push(z);
        Ok(Trajectories {
            z: traj,
            v_ft: v_keep,
            keep: keep.to_vec(),
        })
    }

    /// The lean adjoint a(t_k) for the steps `want` (ascending), from a(1) = `a1` (whitened),
    /// integrated backward along `traj` with the base field. Returns `[|want|][B·dim]`.
    pub fn lean_adjoint(
        &self,
        traj: &[Vec<f32>],
        ctx: &[f32],
        a1: &[f32],
        want: &[usize],
    ) -> Result<Vec<Vec<f32>>, TuneError> {
        Ok(self.lean_adjoint_and_base_velocity(traj, ctx, a1, want)?.0)
    }

    /// [`Self::lean_adjoint`], and with `endpoint_steps` also the base velocity v_base(z_k, t_k)
    /// of every wanted step k < N, which the step's VJP computes anyway (the regression needs
    /// exactly these; `None` in the other scheme, whose VJPs sit at t_{k+1}).
    #[allow(clippy::type_complexity)]
    fn lean_adjoint_and_base_velocity(
        &self,
        traj: &[Vec<f32>],
        ctx: &[f32],
        a1: &[f32],
        want: &[usize],
    ) -> Result<(Vec<Vec<f32>>, Option<Vec<Vec<f32>>>), TuneError> {
        let b = self.config.batch;
        let ctx = self.ctx_rows(ctx, b)?;
        let n = self.grid.steps();
        check_len("adjoint: trajectory length", &vec![0.0; traj.len()], n + 1)?;
        let mut out = vec![Vec::new(); want.len()];
        let mut v_base = vec![Vec::new(); want.len()];
        let lowest = want.iter().copied().min().unwrap_or(n);
        let mut a = a1.to_vec();
        for k in (lowest..n).rev() {
            let (t0, t1) = (self.grid.t[k], self.grid.t[k + 1]);
            let slot = want.iter().position(|&w| w == k);
            if self.config.endpoint_steps {
                let (v, jta) = self
                    .whiten
                    .velocity_and_vjp(self.base, &traj[k], &vec![t0; b], &ctx, &a)?;
                if let Some(i) = slot {
                    v_base[i] = v;
                }
                let (ca, cb, _) = endpoint_coeffs(t0, t1);
                let s = 1.0 - t0;
                a = a
                    .iter()
                    .zip(&jta)
                    .map(|(&ai, &gi)| (ca * ai as f64 + cb * (ai + s * gi) as f64) as f32)
                    .collect();
            } else {
                let jta = self.whiten.vjp(self.base, &traj[k + 1], &vec![t1; b], &ctx, &a)?;
                a = adjoint_step(&a, &jta, t0, t1);
            }
            check_finite("lean adjoint", &a)?;
            if let Some(i) = slot {
                out[i] = a.clone();
            }
        }
        if let Some(i) = want.iter().position(|&w| w == n) {
            out[i] = a1.to_vec();
        }
        let complete = self.config.endpoint_steps && v_base.iter().all(|v| !v.is_empty());
        Ok((out, complete.then_some(v_base)))
    }

    /// One iteration; `ctx` is one context row or one per trajectory.
    pub fn step(&mut self, reward: &mut dyn Reward, ctx: &[f32]) -> Result<IterStats, TuneError> {
        let start = Instant::now();
        let (b, d, n) = (self.config.batch, self.base.dim(), self.grid.steps());
        if reward.dim() != d {
            return Err(TuneError::Config(format!(
                "reward dimension {} differs from the flow's {d}",
                reward.dim()
            )));
        }
        // Loss steps S: all, or `loss_steps` distinct steps drawn for this iteration.
        let mut rng = stream(self.config.seed, "am-loss-steps", self.iter);
        let mut keep: Vec<usize> = if self.config.loss_steps == 0 || self.config.loss_steps >= n {
            (0..n).collect()
        } else {
            sample_indices(&mut rng, n, self.config.loss_steps).into_vec()
        };
        keep.retain(|&k| self.grid.t[k] >= self.config.loss_t_min);
        if keep.is_empty() {
            return Err(TuneError::Config(format!(
                "no grid step has t ≥ loss_t_min = {}",
                self.config.loss_t_min
            )));
        }
        keep.sort_unstable();
        let traj = self.sample_trajectories(ctx, &keep, self.iter)?;
        let t_sample = start.elapsed().as_secs_f64();

        let x1 = self.whiten.to_x(&traj.z[n]);
        let (vals, mut g) = reward.value_and_grad(&x1)?;
        check_len("reward values", &vals, b)?;
        check_len("reward gradient", &g, b * d)?;
        check_finite("reward gradient", &g)?;
        self.whiten.scale_by_beta(&mut g);
        let a1: Vec<f32> = g.iter().map(|v| -self.config.reward_scale * v).collect();
        let t_reward = start.elapsed().as_secs_f64();

        let (adj, v_base_steps) = self.lean_adjoint_and_base_velocity(&traj.z, ctx, &a1, &keep)?;
        let t_adjoint = start.elapsed().as_secs_f64();

        // Regression: stack the kept steps into one batch [|S|·B, dim].
        let s = keep.len();
        let ctx_b = self.ctx_rows(ctx, b)?;
        let mut zs = Vec::with_capacity(s * b * d);
        let mut ts = Vec::with_capacity(s * b);
        let mut cs = Vec::with_capacity(s * ctx_b.len());
        for &k in &keep {
            zs.extend_from_slice(&traj.z[k]);
            ts.extend(std::iter::repeat_n(self.grid.t[k], b));
            cs.extend_from_slice(&ctx_b);
        }
        let v_base = match v_base_steps {
            Some(steps) => steps.concat(),
            None => self.whiten.velocity(self.base, &zs, &ts, &cs)?,
        };
        let cw: Vec<f32> = if self.config.flow_units_loss {
            self.whiten.beta.iter().map(|b| b * b).collect()
        } else {
            vec![1.0; d]
        };
        let mut resid = vec![0f32; s * b * d];
        // Squared residual of every (step j, sample i): acc[j·B + i].
        let mut acc = vec![0f64; s * b];
        for (j, &k) in keep.iter().enumerate() {
            let sg = sigma(self.grid.t[k]);
            for i in 0..b {
                let off = (j * b + i) * d;
                let mut sum = 0f64;
                for c in 0..d {
                    let vf = traj.v_ft[j][i * d + c];
                    let r = 2.0 / sg * (vf - v_base[off + c]) + sg * adj[j][i * d + c];
                    resid[off + c] = r;
                    sum += (cw[c] * r * r) as f64;
                }
                acc[j * b + i] = sum;
            }
        }
        let by_step: Vec<f64> = acc.chunks(b).map(|row| row.iter().sum::<f64>() / b as f64).collect();
        // Step weights: 1, or the inverse of each step's running mean loss.
        let step_w: Vec<f64> = if self.config.step_normalize {
            let e = self.config.clip_ema as f64;
            keep.iter()
                .zip(&by_step)
                .map(|(&k, &m)| {
                    let ema = match self.step_scale[k] {
                        Some(prev) => e * prev + (1.0 - e) * m,
                        None => m,
                    };
                    self.step_scale[k] = Some(ema);
                    if ema > 0.0 {
                        1.0 / ema
                    } else {
                        1.0
                    }
                })
                .collect()
        } else {
            vec![1.0; s]
        };
        let mut per_sample = vec![0f64; b];
        for (j, w) in step_w.iter().enumerate() {
            for (i, p) in per_sample.iter_mut().enumerate() {
                *p += w * acc[j * b + i] / s as f64;
            }
        }
        // Clipping threshold: EMA of the batch quantile.
        let mut sorted = per_sample.clone();
        sorted.sort_by(f64::total_cmp);
        let q = self.config.clip_quantile;
        let clip_on = q < 1.0;
        let qv = sorted[((q.min(1.0) * (b - 1) as f32).round() as usize).min(b - 1)] as f32;
        let thr = match self.clip_threshold {
            Some(c) => self.config.clip_ema * c + (1.0 - self.config.clip_ema) * qv,
            None => qv,
        };
        self.clip_threshold = Some(thr);
        let mut clipped = 0usize;
        let scale: Vec<f32> = per_sample
            .iter()
            .map(|&l| {
                if clip_on && (l as f32) > thr && thr > 0.0 {
                    clipped += 1;
                    thr / l as f32
                } else {
                    1.0
                }
            })
            .collect();
        // dL/dv_ft = (1/B)(1/|S|)·w_j·2·(2/σ)·residual·scale_i.
        for (j, &k) in keep.iter().enumerate() {
            let f = 4.0 / sigma(self.grid.t[k]) / (b * s) as f32 * step_w[j] as f32;
            for (i, &sc) in scale.iter().enumerate() {
                let off = (j * b + i) * d;
                resid[off..off + d]
                    .iter_mut()
                    .zip(&cw)
                    .for_each(|(r, w)| *r *= f * sc * w);
            }
        }
        let mut grad = self.whiten.param_grad(&self.ft, &zs, &ts, &cs, &resid)?;
        let (out_layer, out_bias) = self.ft.output_ranges();
        let keep_range = match self.config.scope {
            Scope::All => 0..grad.len(),
            Scope::Output => out_layer,
            Scope::OutputBias => out_bias,
        };
        grad[..keep_range.start].fill(0.0);
        grad[keep_range.end..].fill(0.0);
        check_len("parameter gradient", &grad, self.ft.params().len())?;
        check_finite("parameter gradient", &grad)?;
        let grad_norm = grad.iter().map(|g| (*g as f64).powi(2)).sum::<f64>().sqrt() as f32;
        let ramp = ((self.iter + 1) as f32 / self.config.warmup.max(1) as f32).min(1.0);
        self.opt
            .update_with_lr(self.ft.params_mut(), &grad, self.config.lr * ramp);
        if let Some(avg) = self.average.as_mut() {
            let e = self.config.ema;
            avg.iter_mut()
                .zip(self.ft.params())
                .for_each(|(a, &p)| *a = e * *a + (1.0 - e) * p);
        }
        let t_end = start.elapsed().as_secs_f64();

        let mean = vals.iter().sum::<f32>() / b as f32;
        let var = vals.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / b as f32;
        let mut by_value = vals.clone();
        by_value.sort_by(f32::total_cmp);
        let median = if b % 2 == 1 {
            by_value[b / 2]
        } else {
            0.5 * (by_value[b / 2 - 1] + by_value[b / 2])
        };
        let stats = IterStats {
            iter: self.iter,
            reward_mean: mean,
            reward_std: var.sqrt(),
            reward_median: median,
            loss: (per_sample.iter().sum::<f64>() / b as f64) as f32,
            clipped: clipped as f32 / b as f32,
            grad_norm,
            loss_by_step: by_step.iter().map(|&v| v as f32).collect(),
            loss_times: keep.iter().map(|&k| self.grid.t[k]).collect(),
            time: Timings {
                sampling: t_sample,
                reward: t_reward - t_sample,
                adjoint: t_adjoint - t_reward,
                regression: t_end - t_adjoint,
                total: t_end,
            },
        };
        self.iter += 1;
        Ok(stats)
    }

    /// `n` samples in the flow's coordinates from the ODE of the fine-tuned (or, with `base`,
    /// the base) field, started from z0 ~ N(0, I) (midpoint, `steps` steps).
    pub fn sample_ode(
        &self,
        n: usize,
        ctx: &[f32],
        steps: usize,
        seed: u64,
        base: bool,
    ) -> Result<Vec<f32>, TuneError> {
        let d = self.base.dim();
        let c = self.base.ctx_dim();
        let ctx = if ctx.len() == c {
            (0..n).flat_map(|_| ctx.iter().copied()).collect()
        } else {
            ctx.to_vec()
        };
        check_len("ODE sampling context", &ctx, n * c)?;
        let mut rng = stream(seed, "am-ode", 0);
        let mut z: Vec<f32> = (0..n * d).map(|_| StandardNormal.sample(&mut rng)).collect();
        ode_sample(&mut z, n, steps, true, |zz, t| {
            if base {
                self.whiten.velocity(self.base, zz, t, &ctx)
            } else {
                self.whiten.velocity(&self.ft, zz, t, &ctx)
            }
        })?;
        Ok(self.whiten.to_x(&z))
    }
}
