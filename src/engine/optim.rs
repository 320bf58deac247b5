//! Optimizers over a population: parameters and state are flat `[K·D]` vectors, updated
//! elementwise, so one optimizer serves K models (or one large network with K = 1).
//!
//! Adam follows `torch.optim.Adam` (L2 `weight_decay` added to the gradient), AdamW follows
//! `torch.optim.AdamW` (decoupled decay `w ← w − lr·λ·w`), SGD follows `torch.optim.SGD` with
//! momentum (dampening 0, no Nesterov).

use serde::{Deserialize, Serialize};

/// Optimizer hyperparameters.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum OptimConfig {
    Adam {
        lr: f32,
        beta1: f32,
        beta2: f32,
        eps: f32,
        weight_decay: f32,
    },
    AdamW {
        lr: f32,
        beta1: f32,
        beta2: f32,
        eps: f32,
        weight_decay: f32,
    },
    Sgd {
        lr: f32,
        momentum: f32,
        weight_decay: f32,
    },
}

impl OptimConfig {
    /// Adam with PyTorch defaults (betas 0.9/0.999, eps 1e-8).
    pub fn adam(lr: f32, weight_decay: f32) -> Self {
        OptimConfig::Adam {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay,
        }
    }

    /// The learning rate.
    pub fn lr(&self) -> f32 {
        match *self {
            OptimConfig::Adam { lr, .. } | OptimConfig::AdamW { lr, .. } | OptimConfig::Sgd { lr, .. } => lr,
        }
    }

    /// The weight decay (L2 or decoupled).
    pub fn weight_decay(&self) -> f32 {
        match *self {
            OptimConfig::Adam { weight_decay, .. }
            | OptimConfig::AdamW { weight_decay, .. }
            | OptimConfig::Sgd { weight_decay, .. } => weight_decay,
        }
    }
}

/// Optimizer state for `len` parameters (e.g. K·D).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Optimizer {
    pub config: OptimConfig,
    /// Steps taken so far (Adam bias correction uses it).
    pub step: u64,
    /// First moment (Adam) or momentum buffer (SGD).
    pub m: Vec<f32>,
    /// Second moment (Adam); empty for SGD.
    pub v: Vec<f32>,
}

impl Optimizer {
    /// Fresh state for `len` parameters.
    pub fn new(config: OptimConfig, len: usize) -> Self {
        let v = if matches!(config, OptimConfig::Sgd { .. }) {
            Vec::new()
        } else {
            vec![0.0; len]
        };
        Optimizer {
            config,
            step: 0,
            m: vec![0.0; len],
            v,
        }
    }

    /// One update of `params` with gradient `grad` (same length as the state).
    pub fn update(&mut self, params: &mut [f32], grad: &[f32]) {
        self.update_with_lr(params, grad, self.config.lr());
    }

    /// One update with an explicit learning rate (for schedules such as warmup).
    pub fn update_with_lr(&mut self, params: &mut [f32], grad: &[f32], lr: f32) {
        assert_eq!(params.len(), self.m.len(), "optimizer: parameter count changed");
        assert_eq!(
            grad.len(),
            self.m.len(),
            "optimizer: gradient length differs from parameters"
        );
        self.step += 1;
        let t = self.step as i32;
        match self.config {
            OptimConfig::Adam {
                beta1,
                beta2,
                eps,
                weight_decay,
                ..
            }
            | OptimConfig::AdamW {
                beta1,
                beta2,
                eps,
                weight_decay,
                ..
            } => {
                let decoupled = matches!(self.config, OptimConfig::AdamW { .. });
                let bc1 = 1.0 - beta1.powi(t);
                let bc2 = 1.0 - beta2.powi(t);
                let step_size = lr / bc1;
                let bc2_sqrt = bc2.sqrt();
                for (((p, &g0), m), v) in params
                    .iter_mut()
                    .zip(grad)
                    .zip(self.m.iter_mut())
                    .zip(self.v.iter_mut())
                {
                    let g = if decoupled {
                        *p *= 1.0 - lr * weight_decay;
                        g0
                    } else {
                        g0 + weight_decay * *p
                    };
                    *m = beta1 * *m + (1.0 - beta1) * g;
                    *v = beta2 * *v + (1.0 - beta2) * g * g;
                    let denom = v.sqrt() / bc2_sqrt + eps;
                    *p -= step_size * *m / denom;
                }
            }
            OptimConfig::Sgd {
                momentum, weight_decay, ..
            } => {
                for ((p, &g0), buf) in params.iter_mut().zip(grad).zip(self.m.iter_mut()) {
                    let g = g0 + weight_decay * *p;
                    *buf = if t == 1 { g } else { momentum * *buf + g };
                    *p -= lr * if momentum != 0.0 { *buf } else { g };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values from torch 2.x: p = [1.0, -2.0], grads g1 = [0.5, -0.25], g2 = [0.1, 0.3],
    /// `torch.optim.Adam([p], lr=0.1, weight_decay=0.01)` two steps → computed by hand from
    /// the documented update rule (same formula as torch's single-tensor path).
    #[test]
    fn adam_two_steps_match_the_torch_rule() {
        let mut p = vec![1.0f32, -2.0];
        let mut opt = Optimizer::new(OptimConfig::adam(0.1, 0.01), 2);
        opt.update(&mut p, &[0.5, -0.25]);
        // step 1: g = g0 + 0.01 p; m = 0.1 g; v = 0.001 g²; p -= 0.1 · (m/0.1) / (√(v/0.001) + eps) ≈ p − 0.1·sign(g)
        assert!((p[0] - 0.9).abs() < 1e-6 && (p[1] + 1.9).abs() < 1e-6, "{p:?}");
        opt.update(&mut p, &[0.1, 0.3]);
        let g1 = [0.5 + 0.01 * 1.0f64, -0.25 + 0.01 * -2.0];
        let g2 = [0.1 + 0.01 * 0.9f64, 0.3 + 0.01 * -1.9];
        for j in 0..2 {
            let m = 0.9 * 0.1 * g1[j] + 0.1 * g2[j];
            let v = 0.999 * 0.001 * g1[j] * g1[j] + 0.001 * g2[j] * g2[j];
            let (bc1, bc2) = (1.0 - 0.81, 1.0 - 0.999f64.powi(2));
            let p1 = [0.9, -1.9][j];
            let want = p1 - 0.1 / bc1 * m / ((v / bc2).sqrt() + 1e-8);
            assert!((p[j] as f64 - want).abs() < 1e-5, "{j}: {} vs {want}", p[j]);
        }
    }

    #[test]
    fn adamw_decouples_decay_and_sgd_momentum() {
        let mut p = vec![1.0f32];
        let mut opt = Optimizer::new(
            OptimConfig::AdamW {
                lr: 0.1,
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
                weight_decay: 0.5,
            },
            1,
        );
        opt.update(&mut p, &[0.0]);
        assert!((p[0] - 0.95).abs() < 1e-6);
        let mut q = vec![1.0f32];
        let mut sgd = Optimizer::new(
            OptimConfig::Sgd {
                lr: 0.1,
                momentum: 0.9,
                weight_decay: 0.0,
            },
            1,
        );
        sgd.update(&mut q, &[1.0]);
        sgd.update(&mut q, &[1.0]);
        assert!((q[0] - (1.0 - 0.1 - 0.19)).abs() < 1e-6);
    }
}
