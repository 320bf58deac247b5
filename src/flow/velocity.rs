//! The velocity network v(x, t, c): a residual SiLU MLP on `[x, φ(t), c]` where φ is a Fourier
//! (sinusoidal) time embedding `φ(t) = [t, sin(2^k π t), cos(2^k π t)]_{k<F}`, and c a context
//! embedding. Forward, parameter gradient and the vector-Jacobian products `uᵀ∂v/∂x`, `uᵀ∂v/∂c`.
//!
//! Two parameterizations of the network output n(x, t, c): the velocity itself (`v = n`), or a
//! prediction of the endpoint x̂1 (`v = (n − x) / (1 − t)`, the conditional expectation form of the
//! straight path, with 1 − t floored at [`MIN_REMAINING`]). The second needs no path from the
//! D-dimensional x through the hidden width to the output, which matters when the width is far
//! below D (a 512-wide MLP cannot carry the source noise of 10,853 coordinates).

use super::mlp::{Mlp, MlpCache, MlpSpec};
use crate::nets::init::InitScheme;
use crate::nets::ParamLayout;
use serde::{Deserialize, Serialize};

/// Floor of 1 − t in the endpoint parameterization.
pub const MIN_REMAINING: f32 = 1e-3;

/// What the network output means.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Parameterization {
    /// The output is v.
    #[default]
    Velocity,
    /// The output is x̂1; v = (x̂1 − x)/(1 − t).
    Endpoint,
}

/// Shape of a [`VelocityMlp`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VelocityConfig {
    /// State dimension (D, or the VAE latent size).
    pub dim: usize,
    /// Context embedding size (0 = unconditional).
    pub ctx_dim: usize,
    /// Number of Fourier frequencies F of the time embedding (0 = raw t only).
    pub time_freqs: usize,
    /// Hidden width.
    pub width: usize,
    /// Number of width → width hidden layers.
    pub depth: usize,
    /// Residual connections around the hidden layers.
    pub residual: bool,
    /// What the output means.
    #[serde(default)]
    pub param: Parameterization,
}

impl VelocityConfig {
    /// Length of the time embedding, 1 + 2F.
    pub fn time_dim(&self) -> usize {
        1 + 2 * self.time_freqs
    }

    /// Input width of the MLP.
    pub fn input_dim(&self) -> usize {
        self.dim + self.time_dim() + self.ctx_dim
    }
}

/// The operations a sampler or fine-tuner needs from a velocity field on batches.
pub trait VelocityField {
    /// State dimension.
    fn dim(&self) -> usize;
    /// Context dimension.
    fn ctx_dim(&self) -> usize;
    /// v(x, t, c) `[B, dim]` for `x [B, dim]`, `t [B]`, `ctx [B, ctx_dim]`.
    fn velocity(&self, x: &[f32], t: &[f32], ctx: &[f32]) -> Vec<f32>;
    /// `uᵀ ∂v/∂x` `[B, dim]` for `u [B, dim]` (row by row).
    fn vjp_x(&self, x: &[f32], t: &[f32], ctx: &[f32], u: &[f32]) -> Vec<f32>;
    /// `(v, uᵀ ∂v/∂x)` at the same points (one forward pass where the field can share it).
    fn velocity_and_vjp_x(&self, x: &[f32], t: &[f32], ctx: &[f32], u: &[f32]) -> (Vec<f32>, Vec<f32>) {
        (self.velocity(x, t, ctx), self.vjp_x(x, t, ctx, u))
    }
}

/// The velocity MLP with its own parameters (a flat vector in the order of [`Self::layout`]).
#[derive(Clone, Debug)]
pub struct VelocityMlp {
    pub config: VelocityConfig,
    pub mlp: Mlp,
    pub params: Vec<f32>,
}

/// Gradients of a loss on v.
#[derive(Clone, Debug)]
pub struct VelocityGrads {
    /// ∂L/∂params.
    pub params: Vec<f32>,
    /// ∂L/∂c `[B, ctx_dim]`.
    pub ctx: Vec<f32>,
}

/// The time embedding φ(t) of each entry of `t`, `[B, 1 + 2F]`.
pub fn time_embedding(t: &[f32], freqs: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(t.len() * (1 + 2 * freqs));
    for &tv in t {
        out.push(tv);
        for k in 0..freqs {
            let w = std::f32::consts::PI * (1u64 << k) as f32 * tv;
            out.push(w.sin());
            out.push(w.cos());
        }
    }
    out
}

impl VelocityMlp {
    /// A fresh network: PyTorch default init, the output layer scaled by 0.1 (so v ≈ 0 at start).
    pub fn new(config: VelocityConfig, threads: usize, rng: &mut crate::engine::rng::Rng) -> Self {
        let mut m = Self::zeros(config, threads);
        InitScheme::TorchDefault.fill(&m.mlp.layout, &mut m.params, rng);
        let n = m.mlp.layout.entries.len();
        for e in &m.mlp.layout.entries[n - 2..] {
            m.params[e.range()].iter_mut().for_each(|v| *v *= 0.1);
        }
        m
    }

    /// A network with all parameters zero (to be loaded).
    pub fn zeros(config: VelocityConfig, threads: usize) -> Self {
        let mut sizes = vec![config.input_dim()];
        sizes.extend(std::iter::repeat_n(config.width, config.depth + 1));
        sizes.push(config.dim);
        let mlp = Mlp::new(
            MlpSpec {
                sizes,
                residual: config.residual,
            },
            "velocity.",
            threads,
        );
        let params = vec![0.0; mlp.num_params()];
        VelocityMlp { config, mlp, params }
    }

    /// Tensor names and offsets of [`Self::params`].
    pub fn layout(&self) -> &ParamLayout {
        &self.mlp.layout
    }

    /// The MLP input `[x, φ(t), c]`, `[B, in]`.
    fn input(&self, x: &[f32], t: &[f32], ctx: &[f32]) -> Vec<f32> {
        let c = &self.config;
        let b = t.len();
        assert_eq!(
            x.len(),
            b * c.dim,
            "velocity: x has {} values for {b}×{}",
            x.len(),
            c.dim
        );
        assert_eq!(
            ctx.len(),
            b * c.ctx_dim,
            "velocity: ctx has {} values for {b}×{}",
            ctx.len(),
            c.ctx_dim
        );
        let te = time_embedding(t, c.time_freqs);
        let td = c.time_dim();
        let mut z = Vec::with_capacity(b * c.input_dim());
        for i in 0..b {
            z.extend_from_slice(&x[i * c.dim..(i + 1) * c.dim]);
            z.extend_from_slice(&te[i * td..(i + 1) * td]);
            z.extend_from_slice(&ctx[i * c.ctx_dim..(i + 1) * c.ctx_dim]);
        }
        z
    }

    /// Forward pass of the raw network output n (see [`Parameterization`]) keeping the cache.
    pub fn forward(&self, x: &[f32], t: &[f32], ctx: &[f32]) -> MlpCache {
        let z = self.input(x, t, ctx);
        self.mlp.forward(&self.params, &z, t.len())
    }

    /// From `dv = ∂L/∂n [B, dim]` (the raw output): ∂L/∂params (when `want_params`), ∂L/∂x `[B, dim]` and
    /// ∂L/∂c `[B, ctx_dim]`.
    pub fn backward(&self, cache: &MlpCache, dv: &[f32], want_params: bool) -> (Option<Vec<f32>>, Vec<f32>, Vec<f32>) {
        let mut dp = want_params.then(|| vec![0.0; self.params.len()]);
        let (dx, dc) = self.backward_into(cache, dv, dp.as_deref_mut());
        (dp, dx, dc)
    }

    /// Like [`Self::backward`], writing ∂L/∂params into a caller-owned buffer (overwritten) so a
    /// training loop does not allocate D·width values per step. Returns (∂L/∂x, ∂L/∂c).
    pub fn backward_into(&self, cache: &MlpCache, dv: &[f32], dparams: Option<&mut [f32]>) -> (Vec<f32>, Vec<f32>) {
        let dz = self
            .mlp
            .backward(&self.params, cache, dv, dparams, true)
            .unwrap_or_default();
        let c = &self.config;
        let (nin, off) = (c.input_dim(), c.dim + c.time_dim());
        let mut dx = Vec::with_capacity(cache.batch * c.dim);
        let mut dc = Vec::with_capacity(cache.batch * c.ctx_dim);
        for row in dz.chunks(nin) {
            dx.extend_from_slice(&row[..c.dim]);
            dc.extend_from_slice(&row[off..]);
        }
        (dx, dc)
    }

    /// Like [`Self::backward_into`] for a training step: ∂L/∂params into `dparams` and, only when
    /// `want_ctx`, ∂L/∂c `[B, ctx_dim]` (else empty); ∂L/∂x is not computed.
    pub fn backward_ctx_into(
        &self,
        cache: &MlpCache,
        dv: &[f32],
        dparams: Option<&mut [f32]>,
        want_ctx: bool,
    ) -> Vec<f32> {
        let c = &self.config;
        let off = c.dim + c.time_dim();
        let cols = (want_ctx && c.ctx_dim > 0).then(|| off..off + c.ctx_dim);
        self.mlp
            .backward_cols(&self.params, cache, dv, dparams, cols)
            .unwrap_or_default()
    }

    /// ∂L/∂params and ∂L/∂c for a loss L whose gradient on v(x, t, c) is `dv [B, dim]`.
    pub fn param_grad(&self, x: &[f32], t: &[f32], ctx: &[f32], dv: &[f32]) -> VelocityGrads {
        let cache = self.forward(x, t, ctx);
        let (dp, _, dc) = self.backward(&cache, &self.output_grad(dv, t), true);
        VelocityGrads {
            params: dp.unwrap_or_default(),
            ctx: dc,
        }
    }

    /// `uᵀ ∂v/∂c` `[B, ctx_dim]`.
    pub fn vjp_ctx(&self, x: &[f32], t: &[f32], ctx: &[f32], u: &[f32]) -> Vec<f32> {
        let cache = self.forward(x, t, ctx);
        self.backward(&cache, &self.output_grad(u, t), false).2
    }
}

impl VelocityMlp {
    /// 1/(1 − t) per row for the endpoint form, 1 for the velocity form.
    fn row_scale(&self, t: &[f32]) -> Vec<f32> {
        match self.config.param {
            Parameterization::Velocity => vec![1.0; t.len()],
            Parameterization::Endpoint => t.iter().map(|&t| 1.0 / (1.0 - t).max(MIN_REMAINING)).collect(),
        }
    }

    /// v from the raw output `out [B, dim]`.
    pub fn velocity_from_output(&self, out: Vec<f32>, x: &[f32], t: &[f32]) -> Vec<f32> {
        if self.config.param == Parameterization::Velocity {
            return out;
        }
        let d = self.config.dim;
        let sc = self.row_scale(t);
        let mut v = out;
        for (i, row) in v.chunks_mut(d).enumerate() {
            let xr = &x[i * d..(i + 1) * d];
            row.iter_mut().zip(xr).for_each(|(o, &xv)| *o = (*o - xv) * sc[i]);
        }
        v
    }

    /// ∂L/∂out from ∂L/∂v (rows scaled by 1/(1 − t) in the endpoint form).
    pub fn output_grad(&self, dv: &[f32], t: &[f32]) -> Vec<f32> {
        let d = self.config.dim;
        let sc = self.row_scale(t);
        let mut g = dv.to_vec();
        for (i, row) in g.chunks_mut(d).enumerate() {
            row.iter_mut().for_each(|v| *v *= sc[i]);
        }
        g
    }
}

impl VelocityField for VelocityMlp {
    fn dim(&self) -> usize {
        self.config.dim
    }

    fn ctx_dim(&self) -> usize {
        self.config.ctx_dim
    }

    fn velocity(&self, x: &[f32], t: &[f32], ctx: &[f32]) -> Vec<f32> {
        let out = self.forward(x, t, ctx).out;
        self.velocity_from_output(out, x, t)
    }

    fn vjp_x(&self, x: &[f32], t: &[f32], ctx: &[f32], u: &[f32]) -> Vec<f32> {
        self.velocity_and_vjp_x(x, t, ctx, u).1
    }

    fn velocity_and_vjp_x(&self, x: &[f32], t: &[f32], ctx: &[f32], u: &[f32]) -> (Vec<f32>, Vec<f32>) {
        let cache = self.forward(x, t, ctx);
        let g = self.output_grad(u, t);
        let mut dx = self.backward(&cache, &g, false).1;
        if self.config.param == Parameterization::Endpoint {
            // v = (n − x)/(1 − t): the −x term adds −u/(1 − t).
            dx.iter_mut().zip(&g).for_each(|(d, gv)| *d -= gv);
        }
        (self.velocity_from_output(cache.out, x, t), dx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::rng::stream;
    use rand_distr::{Distribution, StandardNormal};

    fn randn(n: usize, seed: u64) -> Vec<f32> {
        let mut r = stream(seed, "test", 0);
        (0..n).map(|_| StandardNormal.sample(&mut r)).collect()
    }

    fn dot(v: &[f32], u: &[f32]) -> f64 {
        v.iter().zip(u).map(|(a, b)| *a as f64 * *b as f64).sum()
    }

    #[test]
    fn vjps_and_param_grad_match_finite_differences() {
        for param in [Parameterization::Velocity, Parameterization::Endpoint] {
            check_vjps(param);
        }
    }

    fn check_vjps(param: Parameterization) {
        let cfg = VelocityConfig {
            param,
            dim: 4,
            ctx_dim: 3,
            time_freqs: 2,
            width: 16,
            depth: 2,
            residual: true,
        };
        let mut v = VelocityMlp::new(cfg, 1, &mut stream(0, "init", 0));
        // Scale the output layer up again so the test sees a non-trivial function.
        v.params.iter_mut().for_each(|p| *p *= 1.5);
        let b = 3;
        let (x, c, u) = (randn(b * 4, 1), randn(b * 3, 2), randn(b * 4, 3));
        let t = vec![0.1, 0.5, 0.9];
        let gx = v.vjp_x(&x, &t, &c, &u);
        let gc = v.vjp_ctx(&x, &t, &c, &u);
        let gp = v.param_grad(&x, &t, &c, &u);
        assert_eq!(gp.ctx, gc);
        let eps = 1e-2;
        let fd = |f: &dyn Fn(f32) -> f64| (f(eps) - f(-eps)) / (2.0 * eps as f64);
        for i in 0..x.len() {
            let d = fd(&|e| {
                let mut xx = x.clone();
                xx[i] += e;
                dot(&v.velocity(&xx, &t, &c), &u)
            });
            assert!(
                (d - gx[i] as f64).abs() < 2e-3 * (1.0 + d.abs()),
                "x{i}: {d} vs {}",
                gx[i]
            );
        }
        for i in 0..c.len() {
            let d = fd(&|e| {
                let mut cc = c.clone();
                cc[i] += e;
                dot(&v.velocity(&x, &t, &cc), &u)
            });
            assert!(
                (d - gc[i] as f64).abs() < 2e-3 * (1.0 + d.abs()),
                "c{i}: {d} vs {}",
                gc[i]
            );
        }
        for i in (0..v.params.len()).step_by(13) {
            let d = fd(&|e| {
                let mut w = v.clone();
                w.params[i] += e;
                dot(&w.velocity(&x, &t, &c), &u)
            });
            assert!(
                (d - gp.params[i] as f64).abs() < 2e-3 * (1.0 + d.abs()),
                "p{i}: {d} vs {}",
                gp.params[i]
            );
        }
    }

    #[test]
    fn time_embedding_values() {
        let e = time_embedding(&[0.5], 2);
        let want = [0.5, 1.0, 0.0, 0.0, -1.0];
        for (a, b) in e.iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{e:?}");
        }
    }
}
