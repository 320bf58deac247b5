//! Classic shift tests users know, on plain matrices (no models):
//! - **BBSD** (black-box shift detection, Lipton et al. 2018; Rabanser et al. 2019): one KS test per
//!   class on the base model's softmax outputs, Bonferroni-corrected.
//! - **MMD** (Gretton et al. 2012): unbiased MMD² with a Gaussian kernel whose bandwidth is the
//!   median pairwise distance, p-value by seeded permutations, `(1 + #{perm ≥ obs}) / (1 + B)`.

use super::stats::{ks_2samp, ks_critical_value, quantile, KsMethod};
use super::{DetectionResult, ShiftError};
use crate::engine::rng::stream;
use rand::seq::SliceRandom;

/// Checks `x` is a finite `[n, cols]` matrix with n ≥ `min_rows`, returns n.
fn rows(x: &[f32], cols: usize, min_rows: usize, what: &str) -> Result<usize, ShiftError> {
    if cols == 0 {
        return Err(ShiftError::Invalid(format!("{what}: zero columns")));
    }
    if !x.len().is_multiple_of(cols) {
        return Err(ShiftError::Shape(format!(
            "{what}: {} values are not a whole number of rows of {cols}",
            x.len()
        )));
    }
    let n = x.len() / cols;
    if n < min_rows {
        return Err(ShiftError::Empty(format!("{what}: {n} rows, need at least {min_rows}")));
    }
    if let Some((i, v)) = x.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(ShiftError::NonFinite(format!(
            "{what}: row {}, column {} is {v}",
            i / cols,
            i % cols
        )));
    }
    Ok(n)
}

fn check_alpha(alpha: f64) -> Result<(), ShiftError> {
    if !(alpha > 0.0 && alpha < 1.0) {
        return Err(ShiftError::Invalid(format!(
            "significance level {alpha} is not in (0, 1)"
        )));
    }
    Ok(())
}

/// BBSD: per-class two-sample KS tests between the softmax outputs `reference [n_ref, classes]`
/// and `query [n_q, classes]`, Bonferroni over the classes.
///
/// Result: `statistic` = the largest per-class KS statistic, `p_value` = min(1, C · min_c p_c),
/// `threshold` = the smallest KS statistic significant at α/C (NaN when none is), `shift` ⇔
/// `p_value ≤ α`; `extra`: `alpha`, `ks_statistics`, `ks_p_values` (per class).
pub fn bbsd(
    reference: &[f32],
    query: &[f32],
    classes: usize,
    alpha: f64,
    seed: u64,
) -> Result<DetectionResult, ShiftError> {
    check_alpha(alpha)?;
    let nr = rows(reference, classes, 1, "BBSD reference softmax")?;
    let nq = rows(query, classes, 1, "BBSD query softmax")?;
    let column = |x: &[f32], n: usize, c: usize| (0..n).map(|i| x[i * classes + c] as f64).collect::<Vec<_>>();
    let mut ds = Vec::with_capacity(classes);
    let mut ps = Vec::with_capacity(classes);
    for c in 0..classes {
        let r = ks_2samp(&column(reference, nr, c), &column(query, nq, c), KsMethod::Auto)?;
        ds.push(r.statistic);
        ps.push(r.p_value);
    }
    let d_max = ds.iter().copied().fold(0.0, f64::max);
    let p_min = ps.iter().copied().fold(1.0, f64::min);
    let p_value = (p_min * classes as f64).min(1.0);
    let threshold = ks_critical_value(nr, nq, alpha / classes as f64, KsMethod::Auto).unwrap_or(f64::NAN);
    Ok(
        DetectionResult::new("bbsd", d_max, threshold, p_value, p_value <= alpha, nq, seed)
            .with("alpha", alpha)
            .with("ks_statistics", ds)
            .with("ks_p_values", ps),
    )
}

/// Squared Euclidean distances of all pairs of rows of `z [n, dim]`, `[n, n]`.
fn sq_distances(z: &[f32], n: usize, dim: usize) -> Vec<f64> {
    let mut d = vec![0f64; n * n];
    for i in 0..n {
        for j in i + 1..n {
            let s: f64 = z[i * dim..(i + 1) * dim]
                .iter()
                .zip(&z[j * dim..(j + 1) * dim])
                .map(|(&a, &b)| {
                    let t = a as f64 - b as f64;
                    t * t
                })
                .sum();
            d[i * n + j] = s;
            d[j * n + i] = s;
        }
    }
    d
}

/// Unbiased MMD² between the rows `idx[..m]` and `idx[m..]` of the pooled kernel matrix `k [n, n]`:
/// `1/(m(m−1)) Σ_{i≠j} k(x_i,x_j) + 1/(q(q−1)) Σ_{i≠j} k(y_i,y_j) − 2/(mq) Σ k(x_i,y_j)`.
fn mmd2_unbiased(k: &[f64], n: usize, idx: &[usize], m: usize) -> f64 {
    let q = idx.len() - m;
    let (x, y) = idx.split_at(m);
    let sum_within = |s: &[usize]| {
        let mut t = 0.0;
        for (a, &i) in s.iter().enumerate() {
            for &j in &s[a + 1..] {
                t += k[i * n + j];
            }
        }
        2.0 * t
    };
    let mut cross = 0.0;
    for &i in x {
        for &j in y {
            cross += k[i * n + j];
        }
    }
    sum_within(x) / (m * (m - 1)) as f64 + sum_within(y) / (q * (q - 1)) as f64 - 2.0 * cross / (m * q) as f64
}

/// Median of the pairwise (i < j) Euclidean distances of the pooled rows (1 if that is 0).
fn median_bandwidth(d2: &[f64], n: usize) -> f64 {
    let mut v: Vec<f64> = (0..n)
        .flat_map(|i| (i + 1..n).map(move |j| (i, j)))
        .map(|(i, j)| d2[i * n + j].sqrt())
        .collect();
    v.sort_by(|a, b| a.total_cmp(b));
    let len = v.len();
    let med = if len % 2 == 1 {
        v[len / 2]
    } else {
        0.5 * (v[len / 2 - 1] + v[len / 2])
    };
    if med > 0.0 {
        med
    } else {
        1.0
    }
}

/// MMD two-sample test between `reference [n_ref, dim]` and `query [n_q, dim]` (both ≥ 2 rows):
/// Gaussian kernel `k(x,y) = exp(−‖x−y‖²/(2σ²))`, σ = median pairwise distance of the pooled rows,
/// statistic = unbiased MMD², `permutations` random relabellings of the pooled sample drawn from
/// `stream(seed, "mmd-permutation", b)`.
///
/// Result: `threshold` = (1−α) quantile of the permutation statistics, `p_value` =
/// (1 + #{perm ≥ obs}) / (1 + B), `shift` ⇔ `p_value ≤ α`; `extra`: `alpha`, `sigma`, `permutations`.
pub fn mmd(
    reference: &[f32],
    query: &[f32],
    dim: usize,
    permutations: usize,
    alpha: f64,
    seed: u64,
) -> Result<DetectionResult, ShiftError> {
    check_alpha(alpha)?;
    if permutations == 0 {
        return Err(ShiftError::Invalid("MMD needs at least one permutation".into()));
    }
    let nr = rows(reference, dim, 2, "MMD reference features")?;
    let nq = rows(query, dim, 2, "MMD query features")?;
    let n = nr + nq;
    let pooled: Vec<f32> = reference.iter().chain(query).copied().collect(); // [n, dim]
    let d2 = sq_distances(&pooled, n, dim);
    let sigma = median_bandwidth(&d2, n);
    let k: Vec<f64> = d2.iter().map(|&v| (-v / (2.0 * sigma * sigma)).exp()).collect(); // [n, n]
    let mut idx: Vec<usize> = (0..n).collect();
    let observed = mmd2_unbiased(&k, n, &idx, nr);
    let mut null = Vec::with_capacity(permutations);
    for b in 0..permutations {
        let mut rng = stream(seed, "mmd-permutation", b as u64);
        idx.shuffle(&mut rng);
        null.push(mmd2_unbiased(&k, n, &idx, nr));
    }
    let ge = null.iter().filter(|&&v| v >= observed).count();
    let p_value = (1 + ge) as f64 / (1 + permutations) as f64;
    let threshold = quantile(&null, 1.0 - alpha)?;
    Ok(
        DetectionResult::new("mmd", observed, threshold, p_value, p_value <= alpha, nq, seed)
            .with("alpha", alpha)
            .with("sigma", sigma)
            .with("permutations", permutations),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    // 8 reference and 6 query softmax rows over 3 classes.
    const REF: [f32; 24] = [
        0.7, 0.2, 0.1, 0.6, 0.3, 0.1, 0.8, 0.1, 0.1, 0.5, 0.4, 0.1, 0.65, 0.25, 0.1, 0.55, 0.35, 0.1, 0.75, 0.15, 0.1,
        0.62, 0.28, 0.1,
    ];
    const QRY: [f32; 18] = [
        0.2, 0.3, 0.5, 0.1, 0.6, 0.3, 0.3, 0.3, 0.4, 0.15, 0.25, 0.6, 0.58, 0.3, 0.12, 0.25, 0.45, 0.3,
    ];

    /// Reference (scipy; f32 values widened exactly as numpy does):
    /// ```python
    /// import numpy as np; from scipy.stats import ks_2samp
    /// R=np.array(REF,dtype=np.float32).reshape(8,3).astype(np.float64); Q=np.array(QRY,dtype=np.float32).reshape(6,3).astype(np.float64)
    /// rs=[ks_2samp(R[:,c],Q[:,c],method='exact') for c in range(3)]
    /// print([r.statistic for r in rs], [r.pvalue for r in rs], min(1,3*min(r.pvalue for r in rs)))
    /// ```
    #[test]
    fn bbsd_matches_scipy_per_class_and_bonferroni() {
        let r = bbsd(&REF, &QRY, 3, 0.05, 1).unwrap();
        let ds = r.extra["ks_statistics"].as_array().unwrap();
        let ps = r.extra["ks_p_values"].as_array().unwrap();
        for c in 0..3 {
            let (d, p) = (ds[c].as_f64().unwrap(), ps[c].as_f64().unwrap());
            assert!((d - BBSD_D[c]).abs() < 1e-12, "class {c}: D {d} vs {}", BBSD_D[c]);
            assert!(
                (p - BBSD_P[c]).abs() < 1e-9 * BBSD_P[c].max(1e-3),
                "class {c}: p {p} vs {}",
                BBSD_P[c]
            );
        }
        assert!((r.p_value - BBSD_BONF).abs() < 1e-9, "{}", r.p_value);
        assert_eq!(r.shift, BBSD_BONF <= 0.05);
        assert_eq!(
            r.shift,
            r.statistic >= r.threshold,
            "critical value agrees with the p-value"
        );
        assert!(bbsd(&REF, &QRY[..17], 3, 0.05, 1).is_err());
    }

    const BBSD_D: [f64; 3] = [0.8333333333333334, 0.4583333333333333, 1.0];
    const BBSD_P: [f64; 3] = [0.009324009324009322, 0.3762903762903763, 0.0006660006660006659];
    const BBSD_BONF: f64 = 0.0019980019980019976;

    /// Reference (numpy/scipy), continuing the BBSD snippet with X=R, Y=Q as features:
    /// ```python
    /// from scipy.spatial.distance import pdist, cdist
    /// Z=np.vstack([R,Q]); s=np.median(pdist(Z)); K=np.exp(-cdist(Z,Z,'sqeuclidean')/(2*s*s)); m,n=8,6
    /// Kxx=K[:m,:m]; Kyy=K[m:,m:]; Kxy=K[:m,m:]
    /// mmd=(Kxx.sum()-np.trace(Kxx))/(m*(m-1))+(Kyy.sum()-np.trace(Kyy))/(n*(n-1))-2*Kxy.mean()
    /// print(s, mmd)   # 0.37416575221790394 0.6832603290871132
    /// ```
    #[test]
    fn mmd_statistic_and_bandwidth_match_numpy() {
        let r = mmd(&REF, &QRY, 3, 200, 0.05, 9).unwrap();
        assert!((r.extra["sigma"].as_f64().unwrap() - 0.37416575221790394).abs() < 1e-6);
        assert!((r.statistic - 0.6832603290871132).abs() < 1e-6, "{}", r.statistic);
        assert!(r.p_value > 0.0 && r.p_value <= 1.0);
        // Seeded: the same seed gives the same p-value.
        assert_eq!(mmd(&REF, &QRY, 3, 200, 0.05, 9).unwrap().p_value, r.p_value);
    }

    fn gaussian(n: usize, dim: usize, shift: f32, seed: u64) -> Vec<f32> {
        let mut rng = stream(seed, "test-data", 0);
        (0..n * dim)
            .map(|_| {
                let u: f32 = (0..12).map(|_| rng.gen::<f32>()).sum::<f32>() - 6.0; // ≈ N(0, 1)
                u + shift
            })
            .collect()
    }

    #[test]
    fn mmd_detects_a_mean_shift_and_not_the_null() {
        let x = gaussian(40, 4, 0.0, 1);
        let y = gaussian(30, 4, 1.0, 2);
        let r = mmd(&x, &y, 4, 199, 0.05, 0).unwrap();
        assert!(r.shift && r.p_value == 1.0 / 200.0, "{r:?}");
        assert!(r.statistic > r.threshold);
        // Under the null, p-values over seeds are spread (not all tiny).
        let mut rejections = 0;
        for s in 0..10 {
            let y0 = gaussian(30, 4, 0.0, 100 + s);
            rejections += mmd(&x, &y0, 4, 99, 0.05, s).unwrap().shift as usize;
        }
        assert!(rejections <= 3, "{rejections} of 10 null tests rejected");
    }

    #[test]
    fn bbsd_detects_a_shift_in_softmax_outputs() {
        let x = gaussian(200, 3, 0.0, 3);
        let y = gaussian(50, 3, 0.8, 4);
        // Rows as pseudo-softmax values: any numbers work for the KS tests.
        let r = bbsd(&x, &y, 3, 0.05, 0).unwrap();
        assert!(r.shift, "{r:?}");
        let y0 = gaussian(50, 3, 0.0, 5);
        assert!(!bbsd(&x, &y0, 3, 0.05, 0).unwrap().shift);
    }

    #[test]
    fn baselines_reject_bad_input() {
        assert!(matches!(
            mmd(&REF, &QRY[..3], 3, 10, 0.05, 0),
            Err(ShiftError::Empty(_))
        ));
        let mut bad = QRY;
        bad[4] = f32::NAN;
        assert!(matches!(mmd(&REF, &bad, 3, 10, 0.05, 0), Err(ShiftError::NonFinite(_))));
        assert!(bbsd(&REF, &QRY, 3, 1.5, 0).is_err());
        assert!(mmd(&REF, &QRY, 3, 0, 0.05, 0).is_err());
    }
}
