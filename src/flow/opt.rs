//! Training-state of one large network: Adam (`engine::optim::Optimizer`, K = 1) with linear
//! warmup of the learning rate, global-norm gradient clipping and an exponential moving average
//! of the weights. The flat parameter vector is cut into fixed chunks updated in parallel; each
//! chunk's arithmetic is independent of the thread count, so results are reproducible.

use crate::engine::optim::{OptimConfig, Optimizer};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Chunk length of the parallel update.
const CHUNK: usize = 1 << 18;

/// Schedule and regularization of [`TrainState`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct OptSettings {
    /// Peak learning rate.
    pub lr: f32,
    /// Adam weight decay (L2).
    pub weight_decay: f32,
    /// Steps of linear warmup from lr/warmup to lr.
    pub warmup: usize,
    /// Clip the gradient to this global L2 norm (≤ 0: off).
    pub clip_norm: f32,
    /// EMA decay of the weights (≤ 0: no EMA is kept; the final weights are the current ones).
    pub ema_decay: f32,
}

/// Adam moments (per chunk) and the EMA weights.
#[derive(Clone, Debug)]
pub struct TrainState {
    pub settings: OptSettings,
    chunks: Vec<Optimizer>,
    /// EMA of the parameters (empty when the EMA is off).
    pub ema: Vec<f32>,
    /// Steps taken.
    pub step: usize,
}

/// Global L2 norm of `g` (chunked, summed in chunk order).
pub fn global_norm(g: &[f32]) -> f32 {
    let parts: Vec<f64> = g.par_chunks(CHUNK).map(sum_sq).collect();
    parts.iter().sum::<f64>().sqrt() as f32
}

/// Σ v² in f64 over 16 interleaved partial sums (one serial chain of f64 adds would bound this
/// memory-speed pass by the add latency), combined in a fixed order.
fn sum_sq(c: &[f32]) -> f64 {
    const L: usize = 16;
    let mut acc = [0.0f64; L];
    let mut it = c.chunks_exact(L);
    for ch in &mut it {
        for (a, &v) in acc.iter_mut().zip(ch) {
            *a += v as f64 * v as f64;
        }
    }
    let tail: f64 = it.remainder().iter().map(|&v| v as f64 * v as f64).sum();
    acc.iter().sum::<f64>() + tail
}

impl TrainState {
    /// Fresh state for `params`.
    pub fn new(settings: OptSettings, params: &[f32]) -> Self {
        let cfg = OptimConfig::adam(settings.lr, settings.weight_decay);
        let chunks = params.chunks(CHUNK).map(|c| Optimizer::new(cfg, c.len())).collect();
        TrainState {
            settings,
            chunks,
            ema: if settings.ema_decay > 0.0 {
                params.to_vec()
            } else {
                Vec::new()
            },
            step: 0,
        }
    }

    /// The learning rate at the next step.
    pub fn lr(&self) -> f32 {
        let w = self.settings.warmup.max(1);
        self.settings.lr * ((self.step + 1).min(w) as f32 / w as f32)
    }

    /// One step: clip `grad` (in place) to the global norm, Adam update of `params`, EMA update.
    /// Returns the gradient norm before clipping.
    pub fn update(&mut self, params: &mut [f32], grad: &mut [f32]) -> f32 {
        let norm = global_norm(grad);
        let s = self.settings;
        if s.clip_norm > 0.0 && norm > s.clip_norm {
            let f = s.clip_norm / norm;
            grad.par_iter_mut().for_each(|g| *g *= f);
        }
        let lr = self.lr();
        params
            .par_chunks_mut(CHUNK)
            .zip(grad.par_chunks(CHUNK))
            .zip(self.chunks.par_iter_mut())
            .for_each(|((p, g), o)| o.update_with_lr(p, g, lr));
        let d = s.ema_decay;
        if d > 0.0 {
            self.update_ema(params, d);
        }
        self.step += 1;
        norm
    }

    /// The weights to keep after training: the EMA, or `params` when the EMA is off.
    pub fn final_params(self, params: Vec<f32>) -> Vec<f32> {
        if self.ema.is_empty() {
            params
        } else {
            self.ema
        }
    }

    fn update_ema(&mut self, params: &[f32], d: f32) {
        self.ema
            .par_chunks_mut(CHUNK)
            .zip(params.par_chunks(CHUNK))
            .for_each(|(e, p)| e.iter_mut().zip(p).for_each(|(e, &p)| *e = d * *e + (1.0 - d) * p));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_clip_and_ema() {
        let s = OptSettings {
            lr: 0.1,
            weight_decay: 0.0,
            warmup: 4,
            clip_norm: 1.0,
            ema_decay: 0.5,
        };
        let mut p = vec![1.0f32; 3];
        let mut st = TrainState::new(s, &p);
        assert!((st.lr() - 0.025).abs() < 1e-7);
        let mut g = vec![3.0f32, 4.0, 0.0];
        let n = st.update(&mut p, &mut g);
        assert!((n - 5.0).abs() < 1e-6);
        assert!((g[0] - 0.6).abs() < 1e-6 && (g[1] - 0.8).abs() < 1e-6);
        // First Adam step moves each coordinate with a nonzero gradient by lr·sign(g).
        assert!((p[0] - 0.975).abs() < 1e-5 && (p[2] - 1.0).abs() < 1e-7);
        assert!((st.ema[0] - 0.9875).abs() < 1e-5);
        for _ in 0..5 {
            st.update(&mut p, &mut [0.1, 0.1, 0.1]);
        }
        assert!((st.lr() - 0.1).abs() < 1e-7);
    }
}
