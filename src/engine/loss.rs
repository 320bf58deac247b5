//! Losses on logits, per sample, with per-sample weights: cross-entropy, Detectron's
//! disagreement cross-entropy (DCE) and MSE. A population loss is
//! `L_k = (1/N) Σ_i w_i ℓ(logits_{k,i}, target_i)` for each model k.

use serde::{Deserialize, Serialize};

/// Which loss a sample contributes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SampleLoss {
    /// Cross-entropy to the label: −log softmax_y.
    CrossEntropy,
    /// Disagreement cross-entropy (Ginsberg et al. 2023): cross-entropy to the uniform
    /// distribution over the classes other than the label,
    /// `−(1/(C−1)) Σ_{c≠y} log softmax_c`.
    Disagreement,
}

/// Numerically stable log-softmax of one row into `out`.
pub fn log_softmax(logits: &[f32], out: &mut [f32]) {
    let m = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let lse = m + logits.iter().map(|&z| (z - m).exp()).sum::<f32>().ln();
    for (o, &z) in out.iter_mut().zip(logits) {
        *o = z - lse;
    }
}

/// Softmax of one row into `out`.
pub fn softmax(logits: &[f32], out: &mut [f32]) {
    log_softmax(logits, out);
    out.iter_mut().for_each(|v| *v = v.exp());
}

/// Cross-entropy of one row; adds `scale·∂ℓ/∂z` to `grad` (∂ℓ/∂z = softmax − onehot).
pub fn cross_entropy_row(logits: &[f32], label: usize, scale: f32, grad: &mut [f32]) -> f32 {
    with_log_softmax(logits, |lp| {
        let loss = -lp[label];
        for (j, g) in grad.iter_mut().enumerate() {
            *g += scale * (lp[j].exp() - if j == label { 1.0 } else { 0.0 });
        }
        loss
    })
}

/// DCE of one row (see [`SampleLoss::Disagreement`]); adds `scale·∂ℓ/∂z` to `grad`:
/// ∂ℓ/∂z_j = softmax_j − [j≠y]/(C−1).
pub fn disagreement_row(logits: &[f32], label: usize, scale: f32, grad: &mut [f32]) -> f32 {
    let c = logits.len();
    with_log_softmax(logits, |lp| {
        let inv = 1.0 / (c as f32 - 1.0).max(1.0);
        let loss = -inv
            * lp.iter()
                .enumerate()
                .filter(|(j, _)| *j != label)
                .map(|(_, v)| v)
                .sum::<f32>();
        for (j, g) in grad.iter_mut().enumerate() {
            *g += scale * (lp[j].exp() - if j == label { 0.0 } else { inv });
        }
        loss
    })
}

/// Runs `f` on the log-softmax of one row, in a stack buffer for up to 64 classes.
fn with_log_softmax<R>(logits: &[f32], f: impl FnOnce(&[f32]) -> R) -> R {
    let c = logits.len();
    let mut stack = [0f32; 64];
    let mut heap;
    let lp: &mut [f32] = if c <= 64 {
        &mut stack[..c]
    } else {
        heap = vec![0.0; c];
        &mut heap
    };
    log_softmax(logits, lp);
    f(lp)
}

/// Mean squared error of one row, `(1/C) Σ_j (z_j − t_j)²`; adds `scale·∂ℓ/∂z` to `grad`.
pub fn mse_row(out: &[f32], target: &[f32], scale: f32, grad: &mut [f32]) -> f32 {
    let c = out.len() as f32;
    let mut loss = 0.0;
    for ((g, &z), &t) in grad.iter_mut().zip(out).zip(target) {
        let d = z - t;
        loss += d * d;
        *g += scale * 2.0 * d / c;
    }
    loss / c
}

/// What a population is trained or scored against. Index conventions: samples `i ∈ 0..N`;
/// "shared" arrays have N entries (or N·C), "per-model" arrays K·N (or K·N·C).
#[derive(Clone, Copy, Debug)]
pub enum Objective<'a> {
    /// Classification: labels `[N]` shared or `[K·N]` per model; optional per-sample loss
    /// kinds `[N]` (default all cross-entropy) and weights `[N]` or `[K·N]` (default 1).
    Classify {
        labels: &'a [u32],
        kinds: Option<&'a [SampleLoss]>,
        weights: Option<&'a [f32]>,
    },
    /// Regression of the logits onto targets `[N·C]` or `[K·N·C]`, optional weights.
    Mse {
        targets: &'a [f32],
        weights: Option<&'a [f32]>,
    },
}

impl Objective<'_> {
    /// Loss of model `k` on samples `start..start+n`, whose logits are `logits [n, C=classes]`; writes
    /// `∂L_k/∂logits` (with the 1/N mean factor of `total_n`) into `grad [n, C]` (overwritten)
    /// and returns `Σ_i w_i ℓ_i / total_n` over these samples.
    pub fn apply(
        &self,
        k: usize,
        start: usize,
        total_n: usize,
        classes: usize,
        logits: &[f32],
        grad: &mut [f32],
    ) -> f32 {
        grad.fill(0.0);
        let c = classes;
        let n = logits.len() / c;
        let pick = |arr: &[f32], i: usize| {
            if arr.len() == total_n {
                arr[i]
            } else {
                arr[k * total_n + i]
            }
        };
        let mut sum = 0.0;
        for r in 0..n {
            let i = start + r;
            let z = &logits[r * c..(r + 1) * c];
            let g = &mut grad[r * c..(r + 1) * c];
            match self {
                Objective::Classify { labels, kinds, weights } => {
                    let w = weights.map(|ws| pick(ws, i)).unwrap_or(1.0);
                    let y = if labels.len() == total_n {
                        labels[i]
                    } else {
                        labels[k * total_n + i]
                    } as usize;
                    let scale = w / total_n as f32;
                    let kind = kinds.map(|ks| ks[i]).unwrap_or(SampleLoss::CrossEntropy);
                    let l = match kind {
                        SampleLoss::CrossEntropy => cross_entropy_row(z, y, scale, g),
                        SampleLoss::Disagreement => disagreement_row(z, y, scale, g),
                    };
                    sum += w * l;
                }
                Objective::Mse { targets, weights } => {
                    let w = weights.map(|ws| pick(ws, i)).unwrap_or(1.0);
                    let off = if targets.len() == total_n * c {
                        i * c
                    } else {
                        (k * total_n + i) * c
                    };
                    sum += w * mse_row(z, &targets[off..off + c], w / total_n as f32, g);
                }
            }
        }
        sum / total_n as f32
    }
}
