//! The temperature-calibrated cross-entropy of a classifier on a minibatch,
//!
//! `CE*(f) = min_{s ∈ [s_lo, s_hi]} (1/n) Σ_i [logsumexp(s·f_i) − s·f_{i,y_i}]`,
//!
//! the cross-entropy after the best rescaling s of the logits f `[n, C]` (Guo et al. 2017's
//! temperature scaling, T = 1/s, fitted on the same minibatch). Accuracy does not depend on s, and
//! neither does CE* while s* stays inside the bounds, so −CE* does not reward shrinking the logits:
//! from a base law of confidently wrong classifiers (CE above ln C) plain −CE is raised fastest by
//! flattening the output toward the uniform predictor (CE = ln C), a trap Adjoint Matching falls
//! into on CIFAR-10 (RESULTS.md, the reach of fine-tuning).
//!
//! The objective is convex in s: g'(s) = (1/n) Σ_i (E_{p_s}[f_i] − f_{i,y_i}),
//! g''(s) = (1/n) Σ_i Var_{p_s}[f_i] ≥ 0, with p_s = softmax(s f_i); s* is found by bisection on
//! g'. By the envelope theorem ∇_w CE* = ∇_w CE(s* f(w)) at fixed s*.

/// Mean cross-entropy of the logits `[n, classes]` scaled by `s`, and its derivative in s.
pub fn scaled_ce(logits: &[f32], labels: &[u32], classes: usize, s: f64) -> (f64, f64) {
    let n = labels.len().max(1);
    let (mut ce, mut slope) = (0.0f64, 0.0f64);
    for (row, &y) in logits.chunks(classes).zip(labels) {
        let m = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
        // with s ≥ 0 the largest scaled logit is s·m
        let (mut z, mut ef) = (0.0f64, 0.0f64);
        for &f in row {
            let e = (s * (f as f64 - m)).exp();
            z += e;
            ef += e * f as f64;
        }
        let fy = row[y as usize] as f64;
        ce += s * m + z.ln() - s * fy;
        slope += ef / z - fy;
    }
    (ce / n as f64, slope / n as f64)
}

/// The scale s* ∈ [lo, hi] minimizing [`scaled_ce`] (bisection on its derivative, to a relative
/// width of 1e-6), with 0 ≤ lo < hi.
pub fn optimal_scale(logits: &[f32], labels: &[u32], classes: usize, lo: f64, hi: f64) -> f64 {
    let slope = |s: f64| scaled_ce(logits, labels, classes, s).1;
    if slope(lo) >= 0.0 {
        return lo;
    }
    if slope(hi) <= 0.0 {
        return hi;
    }
    let (mut a, mut b) = (lo, hi);
    while b - a > 1e-6 * b.max(1e-3) {
        let mid = 0.5 * (a + b);
        if slope(mid) < 0.0 {
            a = mid;
        } else {
            b = mid;
        }
    }
    0.5 * (a + b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logits() -> (Vec<f32>, Vec<u32>) {
        // 6 samples, 3 classes: mostly right, two wrong
        let l = vec![
            2.0, 0.1, -1.0, //
            0.3, 1.5, 0.2, //
            -0.5, 0.0, 1.0, //
            1.0, 0.9, -2.0, //
            0.2, 2.5, 0.1, // wrong (label 0)
            1.2, -0.3, 0.4, // wrong (label 2)
        ];
        (l, vec![0, 1, 2, 0, 0, 2])
    }

    #[test]
    fn the_optimal_scale_matches_a_fine_grid_and_the_slope_matches_differences() {
        let (l, y) = logits();
        let s = optimal_scale(&l, &y, 3, 1e-3, 100.0);
        let best_grid = (1..20_000)
            .map(|i| i as f64 * 1e-3)
            .min_by(|a, b| scaled_ce(&l, &y, 3, *a).0.total_cmp(&scaled_ce(&l, &y, 3, *b).0))
            .unwrap();
        assert!((s - best_grid).abs() < 2e-3, "bisection {s}, grid {best_grid}");
        assert!(s > 0.1 && s < 10.0, "{s}");
        for s0 in [0.3, 1.0, 2.5] {
            let fd = (scaled_ce(&l, &y, 3, s0 + 1e-5).0 - scaled_ce(&l, &y, 3, s0 - 1e-5).0) / 2e-5;
            assert!((fd - scaled_ce(&l, &y, 3, s0).1).abs() < 1e-6);
        }
        // s = 0: the uniform predictor, CE = ln C
        assert!((scaled_ce(&l, &y, 3, 0.0).0 - 3f64.ln()).abs() < 1e-12);
    }

    #[test]
    fn separable_logits_take_the_upper_bound_and_reversed_ones_the_lower() {
        let l = vec![3.0, 0.0, 0.0, 3.0];
        assert_eq!(optimal_scale(&l, &[0, 1], 2, 0.01, 50.0), 50.0);
        assert_eq!(optimal_scale(&l, &[1, 0], 2, 0.01, 50.0), 0.01);
    }

    #[test]
    fn the_calibrated_ce_does_not_change_when_the_logits_are_rescaled() {
        let (l, y) = logits();
        let ce = |l: &[f32]| scaled_ce(l, &y, 3, optimal_scale(l, &y, 3, 1e-3, 1e3)).0;
        let doubled: Vec<f32> = l.iter().map(|v| 2.0 * v).collect();
        assert!((ce(&l) - ce(&doubled)).abs() < 1e-6);
        assert!(ce(&l) < scaled_ce(&l, &y, 3, 1.0).0);
    }
}
