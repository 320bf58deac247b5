//! A plain (optionally residual) SiLU MLP over a flat parameter slice: forward with a cache,
//! backward giving parameter gradients and the input gradient (vector-Jacobian product).
//!
//! Layers `i = 0..L`, `sizes = [in, h_1, …, h_{L-1}, out]`, weights `[out, in]` row-major as in
//! `torch.nn.Linear`, parameter names `{prefix}layers.{i}.weight|bias`:
//! `h_1 = x W_0ᵀ + b_0`; for `l = 1..L-1`: `z_l = silu(h_l) W_lᵀ + b_l`, and
//! `h_{l+1} = z_l + h_l` (residual, when the block is width → width and `residual` is on) or
//! `h_{l+1} = z_l`; the output is `z_{L-1}`. With `residual = false` and `sizes = [i, H, H, o]` this
//! is exactly `Sequential(Linear, SiLU, Linear, SiLU, Linear)`.

use crate::engine::gemm::{sgemm_wide as sgemm, Trans};
use crate::nets::ParamLayout;
use serde::{Deserialize, Serialize};

/// The shape of an [`Mlp`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MlpSpec {
    /// `[in, hidden…, out]`, at least two entries.
    pub sizes: Vec<usize>,
    /// Residual connections around hidden width → width layers.
    pub residual: bool,
}

/// An MLP structure (parameters live outside, in a flat slice described by [`Mlp::layout`]).
#[derive(Clone, Debug)]
pub struct Mlp {
    pub spec: MlpSpec,
    /// Where each tensor lives inside this MLP's parameter slice (offsets from 0).
    pub layout: ParamLayout,
    /// Worker threads for the GEMMs.
    pub threads: usize,
}

/// What the backward pass needs from a forward pass.
#[derive(Clone, Debug)]
pub struct MlpCache {
    /// Batch size.
    pub batch: usize,
    /// The input `[B, in]`.
    pub input: Vec<f32>,
    /// Pre-activations `h_l` for `l = 1..L` (`[B, sizes[l]]` each).
    pub pre: Vec<Vec<f32>>,
    /// The output `[B, out]`.
    pub out: Vec<f32>,
}

/// SiLU `x·σ(x)`.
#[inline]
pub fn silu(x: f32) -> f32 {
    x / (1.0 + (-x).exp())
}

/// d silu / dx = σ(x)·(1 + x·(1 − σ(x))).
#[inline]
pub fn silu_grad(x: f32) -> f32 {
    let s = 1.0 / (1.0 + (-x).exp());
    s * (1.0 + x * (1.0 - s))
}

impl Mlp {
    /// An MLP of `spec` whose tensor names start with `prefix` (e.g. `"velocity."`).
    pub fn new(spec: MlpSpec, prefix: &str, threads: usize) -> Self {
        let mut layout = ParamLayout::default();
        for (i, w) in spec.sizes.windows(2).enumerate() {
            layout.push(format!("{prefix}layers.{i}.weight"), vec![w[1], w[0]]);
            layout.push(format!("{prefix}layers.{i}.bias"), vec![w[1]]);
        }
        Mlp {
            spec,
            layout,
            threads: threads.max(1),
        }
    }

    /// Number of parameters.
    pub fn num_params(&self) -> usize {
        self.layout.dim()
    }

    /// Input width.
    pub fn input_dim(&self) -> usize {
        self.spec.sizes[0]
    }

    /// Output width.
    pub fn output_dim(&self) -> usize {
        *self.spec.sizes.last().unwrap_or(&0)
    }

    fn layers(&self) -> usize {
        self.spec.sizes.len() - 1
    }

    fn wb<'p>(&self, params: &'p [f32], i: usize) -> (&'p [f32], &'p [f32]) {
        let w = &self.layout.entries[2 * i];
        let b = &self.layout.entries[2 * i + 1];
        (&params[w.range()], &params[b.range()])
    }

    fn has_residual(&self, l: usize) -> bool {
        // Layer l (1 ≤ l < L−1) maps h_l to h_{l+1}.
        self.spec.residual && l >= 1 && l + 1 < self.layers() && self.spec.sizes[l] == self.spec.sizes[l + 1]
    }

    /// `y[B, out] = a[B, in] · Wᵀ + b`.
    fn linear(&self, params: &[f32], i: usize, a: &[f32], batch: usize) -> Vec<f32> {
        let (w, b) = self.wb(params, i);
        let (nin, nout) = (self.spec.sizes[i], self.spec.sizes[i + 1]);
        let mut y = vec![0.0f32; batch * nout];
        for row in y.chunks_mut(nout) {
            row.copy_from_slice(b);
        }
        sgemm(
            batch,
            nout,
            nin,
            a,
            Trans::No,
            w,
            Trans::Yes,
            &mut y,
            true,
            self.threads,
        );
        y
    }

    /// Forward pass over `x [B, in]`, keeping what backward needs.
    pub fn forward(&self, params: &[f32], x: &[f32], batch: usize) -> MlpCache {
        debug_assert_eq!(params.len(), self.num_params());
        debug_assert_eq!(x.len(), batch * self.input_dim());
        let layers = self.layers();
        let mut pre = Vec::with_capacity(layers);
        let mut h = self.linear(params, 0, x, batch);
        for l in 1..layers {
            let a: Vec<f32> = h.iter().map(|&v| silu(v)).collect();
            let mut z = self.linear(params, l, &a, batch);
            if self.has_residual(l) {
                z.iter_mut().zip(&h).for_each(|(z, h)| *z += h);
            }
            pre.push(std::mem::replace(&mut h, z));
        }
        MlpCache {
            batch,
            input: x.to_vec(),
            pre,
            out: h,
        }
    }

    /// Output only.
    pub fn apply(&self, params: &[f32], x: &[f32], batch: usize) -> Vec<f32> {
        self.forward(params, x, batch).out
    }

    /// Backward pass from `dout = ∂L/∂out [B, out]`: writes `∂L/∂params` into `dparams` when
    /// given (every value is overwritten), returns `∂L/∂x [B, in]` when `want_dx`.
    pub fn backward(
        &self,
        params: &[f32],
        cache: &MlpCache,
        dout: &[f32],
        dparams: Option<&mut [f32]>,
        want_dx: bool,
    ) -> Option<Vec<f32>> {
        let cols = want_dx.then(|| 0..self.input_dim());
        self.backward_cols(params, cache, dout, dparams, cols)
    }

    /// Like [`Self::backward`], returning only the input columns `cols` of `∂L/∂x`
    /// (`[B, cols.len()]`), so a caller that needs a few inputs' gradients (or none) does not pay
    /// for a `B × out × in` product over all of them.
    pub fn backward_cols(
        &self,
        params: &[f32],
        cache: &MlpCache,
        dout: &[f32],
        mut dparams: Option<&mut [f32]>,
        cols: Option<std::ops::Range<usize>>,
    ) -> Option<Vec<f32>> {
        let batch = cache.batch;
        let layers = self.layers();
        let mut g = dout.to_vec(); // ∂L/∂z_l, [B, sizes[l+1]]
        for l in (0..layers).rev() {
            let (nin, nout) = (self.spec.sizes[l], self.spec.sizes[l + 1]);
            let act: Vec<f32>;
            let a: &[f32] = if l == 0 {
                &cache.input
            } else {
                act = cache.pre[l - 1].iter().map(|&v| silu(v)).collect();
                &act
            };
            if let Some(dp) = dparams.as_deref_mut() {
                let we = &self.layout.entries[2 * l];
                let be = &self.layout.entries[2 * l + 1];
                // dW[out, in] = gᵀ[out, B] · a[B, in]
                sgemm(
                    nout,
                    nin,
                    batch,
                    &g,
                    Trans::Yes,
                    a,
                    Trans::No,
                    &mut dp[we.range()],
                    false,
                    self.threads,
                );
                let db = &mut dp[be.range()];
                db.fill(0.0);
                for row in g.chunks(nout) {
                    db.iter_mut().zip(row).for_each(|(d, v)| *d += v);
                }
            }
            if l == 0 {
                let cols = cols?;
                let (w, _) = self.wb(params, 0);
                let nc = cols.len();
                // dx[B, cols] = g[B, out] · W[out, cols] (all of W when every column is wanted)
                let picked: Vec<f32>;
                let ws: &[f32] = if nc == nin {
                    w
                } else {
                    picked = w.chunks(nin).flat_map(|row| &row[cols.clone()]).copied().collect();
                    &picked
                };
                let mut dx = vec![0.0f32; batch * nc];
                sgemm(
                    batch,
                    nc,
                    nout,
                    &g,
                    Trans::No,
                    ws,
                    Trans::No,
                    &mut dx,
                    false,
                    self.threads,
                );
                return Some(dx);
            }
            let (w, _) = self.wb(params, l);
            // da[B, in] = g[B, out] · W[out, in]
            let mut da = vec![0.0f32; batch * nin];
            sgemm(
                batch,
                nin,
                nout,
                &g,
                Trans::No,
                w,
                Trans::No,
                &mut da,
                false,
                self.threads,
            );
            let h = &cache.pre[l - 1];
            da.iter_mut().zip(h).for_each(|(d, &hv)| *d *= silu_grad(hv));
            if self.has_residual(l) {
                da.iter_mut().zip(&g).for_each(|(d, gv)| *d += gv);
            }
            g = da;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::rng::stream;
    use crate::nets::init::InitScheme;
    use rand_distr::{Distribution, StandardNormal};

    fn randn(n: usize, seed: u64) -> Vec<f32> {
        let mut r = stream(seed, "test", 0);
        (0..n).map(|_| StandardNormal.sample(&mut r)).collect()
    }

    /// L = Σ u ⊙ out, evaluated in f64 from an f32 forward.
    fn loss(m: &Mlp, p: &[f32], x: &[f32], u: &[f32], b: usize) -> f64 {
        m.apply(p, x, b).iter().zip(u).map(|(o, u)| *o as f64 * *u as f64).sum()
    }

    #[test]
    fn gradients_match_finite_differences() {
        for residual in [false, true] {
            let m = Mlp::new(
                MlpSpec {
                    sizes: vec![5, 8, 8, 8, 4],
                    residual,
                },
                "",
                1,
            );
            let mut p = vec![0.0; m.num_params()];
            InitScheme::TorchDefault.fill(&m.layout, &mut p, &mut stream(1, "init", 0));
            let b = 3;
            let x = randn(b * 5, 2);
            let u = randn(b * 4, 3);
            let cache = m.forward(&p, &x, b);
            let mut dp = vec![0.0; p.len()];
            let dx = m.backward(&p, &cache, &u, Some(&mut dp), true).unwrap();
            let eps = 1e-2f32;
            for i in (0..p.len()).step_by(7) {
                let mut pp = p.clone();
                pp[i] += eps;
                let lp = loss(&m, &pp, &x, &u, b);
                pp[i] -= 2.0 * eps;
                let lm = loss(&m, &pp, &x, &u, b);
                let fd = (lp - lm) / (2.0 * eps as f64);
                assert!(
                    (fd - dp[i] as f64).abs() < 2e-3 * (1.0 + fd.abs()),
                    "param {i}: fd {fd} vs {}",
                    dp[i]
                );
            }
            for i in 0..x.len() {
                let mut xx = x.clone();
                xx[i] += eps;
                let lp = loss(&m, &p, &xx, &u, b);
                xx[i] -= 2.0 * eps;
                let lm = loss(&m, &p, &xx, &u, b);
                let fd = (lp - lm) / (2.0 * eps as f64);
                assert!(
                    (fd - dx[i] as f64).abs() < 2e-3 * (1.0 + fd.abs()),
                    "x {i}: fd {fd} vs {}",
                    dx[i]
                );
            }
        }
    }

    #[test]
    fn input_gradient_columns_match_the_full_one() {
        let m = Mlp::new(
            MlpSpec {
                sizes: vec![7, 8, 8, 4],
                residual: false,
            },
            "",
            2,
        );
        let mut p = vec![0.0; m.num_params()];
        InitScheme::TorchDefault.fill(&m.layout, &mut p, &mut stream(4, "init", 0));
        let b = 3;
        let (x, u) = (randn(b * 7, 5), randn(b * 4, 6));
        let cache = m.forward(&p, &x, b);
        let (mut dp, mut dp2) = (vec![0.0; p.len()], vec![1.0; p.len()]);
        let full = m.backward(&p, &cache, &u, Some(&mut dp), true).unwrap();
        let part = m.backward_cols(&p, &cache, &u, Some(&mut dp2), Some(2..5)).unwrap();
        assert_eq!(dp, dp2);
        for (i, row) in full.chunks(7).enumerate() {
            for (j, v) in row[2..5].iter().enumerate() {
                assert!((v - part[i * 3 + j]).abs() < 1e-6);
            }
        }
        assert!(m.backward_cols(&p, &cache, &u, None, None).is_none());
    }

    #[test]
    fn plain_mlp_matches_a_hand_computation() {
        let m = Mlp::new(
            MlpSpec {
                sizes: vec![2, 2, 1],
                residual: false,
            },
            "v.",
            1,
        );
        assert_eq!(m.layout.entries[0].name, "v.layers.0.weight");
        // W0 = [[1, 2], [3, 4]], b0 = [0.5, -1], W1 = [[1, -1]], b1 = [0.25]
        let p = [1.0, 2.0, 3.0, 4.0, 0.5, -1.0, 1.0, -1.0, 0.25];
        let y = m.apply(&p, &[1.0, -1.0], 1);
        let h = [1.0 - 2.0 + 0.5, 3.0 - 4.0 - 1.0];
        let want = silu(h[0]) - silu(h[1]) + 0.25;
        assert!((y[0] - want).abs() < 1e-6);
    }
}
