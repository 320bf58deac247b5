//! Timing of the velocity MLP at the reference shapes of `shared/bench/reference_torch.py`:
//! `Sequential(Linear(P+1+C, H), SiLU, Linear(H, H), SiLU, Linear(H, P))`, batch B, one training
//! step = forward + MSE + backward + Adam (`mlp_step_ms`), and `uᵀ∂v/∂x` with frozen weights
//! (`vjp_ms`). Median of `reps` timed runs after one warm-up.

use super::cfm::mse;
use super::opt::{OptSettings, TrainState};
use super::velocity::{VelocityConfig, VelocityField, VelocityMlp};
use crate::engine::rng::stream;
use rand_distr::{Distribution, StandardNormal};
use serde::Serialize;
use std::time::Instant;

/// Result of [`mlp_step`].
#[derive(Clone, Debug, Serialize)]
pub struct MlpBench {
    pub mlp_params: usize,
    pub batch: usize,
    pub threads: usize,
    pub mlp_step_ms: f64,
    pub vjp_ms: f64,
    /// 3·2·B·params / step time.
    pub mlp_step_gflops: f64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Times one training step and one VJP of the MLP `p + 1 + c → h → h → p` at batch `b`.
pub fn mlp_step(p: usize, c: usize, h: usize, b: usize, reps: usize, threads: usize) -> MlpBench {
    let cfg = VelocityConfig {
        dim: p,
        ctx_dim: c,
        time_freqs: 0,
        width: h,
        depth: 1,
        residual: false,
        param: super::velocity::Parameterization::Velocity,
    };
    let mut rng = stream(0, "bench", 0);
    let mut vel = VelocityMlp::new(cfg, threads, &mut rng);
    let mut randn = |n: usize| -> Vec<f32> { (0..n).map(|_| StandardNormal.sample(&mut rng)).collect() };
    let (x, ctx, tgt, u) = (randn(b * p), randn(b * c), randn(b * p), randn(b * p));
    let t: Vec<f32> = (0..b).map(|i| i as f32 / b as f32).collect();
    let mut state = TrainState::new(
        OptSettings {
            lr: 1e-4,
            weight_decay: 0.0,
            warmup: 1,
            clip_norm: 0.0,
            ema_decay: 0.0,
        },
        &vel.params,
    );
    let mut dp = vec![0.0f32; vel.params.len()];
    let mut step = |vel: &mut VelocityMlp| {
        let cache = vel.forward(&x, &t, &ctx);
        let (_, dv) = mse(&cache.out, &tgt);
        // As in `train`: no input gradient without a context encoder (nor in torch's step).
        vel.backward_ctx_into(&cache, &dv, Some(&mut dp), false);
        state.update(&mut vel.params, &mut dp);
    };
    let reps = reps.max(1);
    let mut times = Vec::new();
    for r in 0..=reps {
        let s = Instant::now();
        step(&mut vel);
        if r > 0 {
            times.push(s.elapsed().as_secs_f64() * 1e3);
        }
    }
    let mlp_step_ms = median(times);
    let mut vt = Vec::new();
    for r in 0..=reps {
        let s = Instant::now();
        let g = vel.vjp_x(&x, &t, &ctx, &u);
        std::hint::black_box(g);
        if r > 0 {
            vt.push(s.elapsed().as_secs_f64() * 1e3);
        }
    }
    let params = vel.params.len();
    MlpBench {
        mlp_params: params,
        batch: b,
        threads,
        mlp_step_ms,
        vjp_ms: median(vt),
        mlp_step_gflops: 6.0 * b as f64 * params as f64 / (mlp_step_ms * 1e6),
    }
}

/// One GEMM of the step at the reference shapes, timed through the `gemm` crate wrapper
/// ([`sgemm`], what the MLP used before) and through [`sgemm_wide`] (what it uses now).
#[derive(Clone, Debug, Serialize)]
pub struct GemmRow {
    pub name: &'static str,
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub gflop: f64,
    pub crate_ms: f64,
    pub wide_ms: f64,
}

/// Times the nine GEMMs of a training step plus input VJP of the MLP `p + 1 + c → h → h → p`
/// at batch `b` (forward `x·Wᵀ`, weight gradients `gᵀ·a`, input gradients `g·W`); median of
/// `reps` after one warm-up, wall clock, `threads` threads each.
pub fn gemm_table(p: usize, c: usize, h: usize, b: usize, reps: usize, threads: usize) -> Vec<GemmRow> {
    use crate::engine::gemm::{sgemm, sgemm_wide, Trans};
    let i = p + 1 + c;
    let (no, yes) = (Trans::No, Trans::Yes);
    let shapes = [
        ("fwd0 x·W0ᵀ", b, h, i, no, yes),
        ("fwd1 a·W1ᵀ", b, h, h, no, yes),
        ("fwd2 a·W2ᵀ", b, p, h, no, yes),
        ("dW2 gᵀ·a", p, h, b, yes, no),
        ("da2 g·W2", b, h, p, no, no),
        ("dW1 gᵀ·a", h, h, b, yes, no),
        ("da1 g·W1", b, h, h, no, no),
        ("dW0 gᵀ·x", h, i, b, yes, no),
        ("dx g·W0 (VJP only)", b, i, h, no, no),
    ];
    let mut rng = stream(0, "bench-gemm", 0);
    let mut rows = Vec::new();
    for (name, m, n, k, ta, tb) in shapes {
        let a: Vec<f32> = (0..m * k).map(|_| StandardNormal.sample(&mut rng)).collect();
        let bm: Vec<f32> = (0..k * n).map(|_| StandardNormal.sample(&mut rng)).collect();
        let mut out = vec![0.0f32; m * n];
        let mut time = |wide: bool| {
            let mut ts = Vec::new();
            for r in 0..=reps.max(1) {
                let s = Instant::now();
                if wide {
                    sgemm_wide(m, n, k, &a, ta, &bm, tb, &mut out, false, threads);
                } else {
                    sgemm(m, n, k, &a, ta, &bm, tb, &mut out, false, threads);
                }
                if r > 0 {
                    ts.push(s.elapsed().as_secs_f64() * 1e3);
                }
            }
            median(ts)
        };
        let crate_ms = time(false);
        let wide_ms = time(true);
        rows.push(GemmRow {
            name,
            m,
            n,
            k,
            gflop: 2.0 * (m * n * k) as f64 / 1e9,
            crate_ms,
            wide_ms,
        });
    }
    rows
}

#[cfg(test)]
mod tests {
    #[test]
    fn small_bench_runs() {
        let r = super::mlp_step(50, 4, 32, 8, 2, 1);
        assert_eq!(r.mlp_params, (55 * 32 + 32) + (32 * 32 + 32) + (32 * 50 + 50));
        assert!(r.mlp_step_ms > 0.0 && r.vjp_ms > 0.0);
    }
}
