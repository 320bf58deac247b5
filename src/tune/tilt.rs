//! What a reward tilt can reach, estimated from samples of the base law.
//!
//! Adjoint Matching drives the fine-tuned law to p*(w) ∝ p_base(w)·exp(λ r(w)). It only reweights
//! what the base generates, so the mean of any quantity v (e.g. accuracy) under p* follows from n
//! base samples by self-normalized importance weighting:
//!
//!   E_p*[v] ≈ Σ_i ω_i v_i / Σ_i ω_i,   ω_i = exp(λ (r_i − max_j r_j)),
//!
//! with the effective sample size ESS = (Σ ω)² / Σ ω² saying how many samples carry the estimate
//! (n at λ = 0, → 1 as λ grows). Subtracting max r changes no ratio and keeps every ω in (0, 1].

use super::TuneError;
use serde::{Deserialize, Serialize};

/// The λ values `tune --reach` reports (and `flow sample --tilt-lambdas` defaults to).
pub const REACH_LAMBDAS: [f64; 6] = [1.0, 3.0, 10.0, 30.0, 100.0, 300.0];

/// The tilted mean of one λ.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TiltPoint {
    /// Reward multiplier λ.
    pub lambda: f64,
    /// Self-normalized importance estimate of E_p*[v].
    pub mean: f64,
    /// Effective sample size (Σ ω)² / Σ ω² of the weights, in [1, n].
    pub ess: f64,
}

/// E_p*[v] for p* ∝ p_base·exp(λ r), from base samples with rewards `rewards [n]` and values
/// `values [n]` (see the module doc).
pub fn tilted_mean(rewards: &[f64], values: &[f64], lambda: f64) -> Result<TiltPoint, TuneError> {
    if rewards.is_empty() {
        return Err(TuneError::Config("tilt estimate: no samples".into()));
    }
    if rewards.len() != values.len() {
        return Err(TuneError::Shape {
            what: "tilt estimate values".into(),
            expected: rewards.len(),
            got: values.len(),
        });
    }
    if !(lambda.is_finite() && lambda >= 0.0) {
        return Err(TuneError::Config(format!(
            "tilt estimate: λ must be finite and ≥ 0, got {lambda}"
        )));
    }
    if rewards.iter().chain(values).any(|x| !x.is_finite()) {
        return Err(TuneError::NonFinite("tilt estimate rewards or values".into()));
    }
    let top = rewards.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (mut sum_w, mut sum_w2, mut sum_wv) = (0.0, 0.0, 0.0);
    for (&r, &v) in rewards.iter().zip(values) {
        let w = (lambda * (r - top)).exp(); // ∈ (0, 1], the best sample has 1
        sum_w += w;
        sum_w2 += w * w;
        sum_wv += w * v;
    }
    Ok(TiltPoint {
        lambda,
        mean: sum_wv / sum_w,
        ess: sum_w * sum_w / sum_w2,
    })
}

/// [`tilted_mean`] for each λ of `lambdas`.
pub fn tilt_curve(rewards: &[f64], values: &[f64], lambdas: &[f64]) -> Result<Vec<TiltPoint>, TuneError> {
    lambdas.iter().map(|&l| tilted_mean(rewards, values, l)).collect()
}

/// [`tilt_curve`] for the reward r = −CE: `losses [n]` are the classifiers' mean cross-entropies
/// on the reward data, `accuracies [n]` the values to average.
pub fn cross_entropy_reach(losses: &[f64], accuracies: &[f64], lambdas: &[f64]) -> Result<Vec<TiltPoint>, TuneError> {
    let rewards: Vec<f64> = losses.iter().map(|l| -l).collect();
    tilt_curve(&rewards, accuracies, lambdas)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_distr::{Distribution, StandardNormal};

    #[test]
    fn zero_lambda_is_the_plain_mean_with_full_ess() {
        let r = [0.3, -1.0, 2.0, 0.0];
        let v = [1.0, 2.0, 3.0, 6.0];
        let p = tilted_mean(&r, &v, 0.0).unwrap();
        assert!((p.mean - 3.0).abs() < 1e-12);
        assert!((p.ess - 4.0).abs() < 1e-12);
    }

    /// Closed form: for r ~ N(0, 1) and v = r, the tilt ∝ exp(λ r) is N(λ, 1), so E_p*[v] = λ.
    #[test]
    fn gaussian_tilt_moves_the_mean_by_lambda() {
        let mut rng = crate::engine::rng::stream(0, "tilt-test", 0);
        let r: Vec<f64> = (0..200_000).map(|_| StandardNormal.sample(&mut rng)).collect();
        for lambda in [0.25, 0.5, 1.0] {
            let p = tilted_mean(&r, &r, lambda).unwrap();
            assert!((p.mean - lambda).abs() < 0.02, "λ {lambda}: {p:?}");
            // ESS/n = exp(−λ²) for a Gaussian tilt.
            let want = 200_000.0 * (-lambda * lambda).exp();
            assert!((p.ess / want - 1.0).abs() < 0.05, "λ {lambda}: {p:?} vs ESS {want}");
        }
    }

    #[test]
    fn large_lambda_picks_the_best_sample_and_shifts_do_not_matter() {
        let r = [-0.9, -0.2, -0.5];
        let v = [0.3, 0.8, 0.7];
        let p = tilted_mean(&r, &v, 1e4).unwrap();
        assert!((p.mean - 0.8).abs() < 1e-9 && (p.ess - 1.0).abs() < 1e-9, "{p:?}");
        let shifted: Vec<f64> = r.iter().map(|x| x + 1e3).collect();
        let (a, b) = (
            tilted_mean(&r, &v, 3.0).unwrap(),
            tilted_mean(&shifted, &v, 3.0).unwrap(),
        );
        assert!((a.mean - b.mean).abs() < 1e-12 && (a.ess - b.ess).abs() < 1e-9);
        // The curve is monotone here: a larger λ favours the better classifiers more.
        let c = tilt_curve(&r, &v, &[0.0, 1.0, 10.0]).unwrap();
        assert!(c[0].mean < c[1].mean && c[1].mean < c[2].mean, "{c:?}");
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(tilted_mean(&[], &[], 1.0).is_err());
        assert!(tilted_mean(&[1.0], &[1.0, 2.0], 1.0).is_err());
        assert!(tilted_mean(&[1.0], &[1.0], -1.0).is_err());
        assert!(tilted_mean(&[1.0], &[1.0], f64::NAN).is_err());
        assert!(tilted_mean(&[f64::NAN], &[1.0], 1.0).is_err());
        assert!(tilted_mean(&[1.0], &[f64::INFINITY], 1.0).is_err());
    }
}
