//! Verification of Adjoint Matching on the closed-form Gaussian flow ([`super::gaussian`]).

use super::adjoint::{AdjointMatching, AmConfig};
use super::field::{TrainableField, Whitening};
use super::gaussian::{Corrected, GaussianFlow};
use super::reward::{LinearReward, Reward, ZeroReward};

fn flow3() -> GaussianFlow {
    GaussianFlow::new(
        vec![1.0, -0.5, 0.3],
        vec![0.8, 0.3, 0.0, 0.3, 0.6, -0.1, 0.0, -0.1, 0.5],
    )
    .unwrap()
}

/// Adjoint Matching on the 3-D Gaussian flow `base`, fine-tuning a [`Corrected`] copy of it with
/// `hidden` correction units, in identity whitening.
fn am3(base: &GaussianFlow, hidden: usize, cfg: AmConfig) -> AdjointMatching<'_, GaussianFlow, Corrected> {
    AdjointMatching::new(base, Corrected::new(base.clone(), hidden), Whitening::identity(3), cfg).unwrap()
}

fn moments(x: &[f32], d: usize) -> (Vec<f64>, Vec<f64>) {
    let n = x.len() / d;
    let mut m = vec![0f64; d];
    for r in x.chunks(d) {
        r.iter().enumerate().for_each(|(i, v)| m[i] += *v as f64 / n as f64);
    }
    let mut c = vec![0f64; d * d];
    for r in x.chunks(d) {
        for i in 0..d {
            for j in 0..d {
                c[i * d + j] += (r[i] as f64 - m[i]) * (r[j] as f64 - m[j]) / (n - 1) as f64;
            }
        }
    }
    (m, c)
}

fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
}

#[test]
fn whitened_vjp_and_param_grad_match_finite_differences() {
    let base = flow3();
    let mut ft = Corrected::new(base.clone(), 3);
    ft.theta
        .iter_mut()
        .enumerate()
        .for_each(|(i, v)| *v = ((i * 7 % 5) as f32 - 2.0) * 0.1);
    let w = Whitening {
        alpha: vec![0.1, -0.2, 0.05],
        beta: vec![0.5, 2.0, 1.5],
    };
    let z = [0.3f32, -0.7, 1.1];
    let t = [0.4f32];
    let u = [0.2f32, -1.0, 0.5];
    let g = w.vjp(&ft, &z, &t, &[], &u).unwrap();
    let f = |zz: &[f32]| -> f64 {
        let v = w.velocity(&ft, zz, &t, &[]).unwrap();
        v.iter().zip(&u).map(|(a, b)| (*a as f64) * (*b as f64)).sum()
    };
    for k in 0..3 {
        let (mut zp, mut zm) = (z, z);
        zp[k] += 1e-2;
        zm[k] -= 1e-2;
        let fd = (f(&zp) - f(&zm)) / 2e-2;
        assert!(
            (fd - g[k] as f64).abs() < 1e-3 * (1.0 + fd.abs()),
            "vjp {k}: {fd} vs {}",
            g[k]
        );
    }
    let pg = w.param_grad(&ft, &z, &t, &[], &u).unwrap();
    for p in [0usize, 4, 11, 20, 30] {
        let mut fp = ft.clone();
        fp.theta[p] += 1e-2;
        let mut fm = ft.clone();
        fm.theta[p] -= 1e-2;
        let val = |m: &Corrected| -> f64 {
            let v = w.velocity(m, &z, &t, &[]).unwrap();
            v.iter().zip(&u).map(|(a, b)| (*a as f64) * (*b as f64)).sum()
        };
        let fd = (val(&fp) - val(&fm)) / 2e-2;
        assert!(
            (fd - pg[p] as f64).abs() < 1e-3 * (1.0 + fd.abs()),
            "param {p}: {fd} vs {}",
            pg[p]
        );
    }
}

/// The memoryless SDE driven by the base velocity reproduces the base target N(μ, Σ).
#[test]
fn memoryless_sde_samples_the_base_distribution() {
    let base = flow3();
    let cfg = AmConfig {
        steps: 100,
        batch: 20_000,
        ..AmConfig::default()
    };
    let am = am3(&base, 1, cfg);
    let tr = am.sample_trajectories(&[], &[], 0).unwrap();
    let (m, c) = moments(&tr.z[100], 3);
    // Tolerance: Monte-Carlo se ≈ 0.007 (mean), ≈ 0.008 (cov), plus the O(h) step error.
    assert!(max_abs_diff(&m, &base.mu) < 0.04, "mean {m:?}");
    assert!(max_abs_diff(&c, &base.cov) < 0.05, "cov {c:?}");
}

/// The discrete lean adjoint matches the closed form a(t) = −t S(t)⁻¹ Σc, and a(1) = −λ∇r
/// (including the whitening factor β).
#[test]
fn lean_adjoint_matches_the_closed_form() {
    let base = flow3();
    let c = [0.5f32, -1.0, 0.8];
    let cfg = AmConfig {
        steps: 400,
        batch: 2,
        t0: 0.01,
        ..AmConfig::default()
    };
    let am = am3(&base, 1, cfg);
    let tr = am.sample_trajectories(&[], &[], 0).unwrap();
    let a1: Vec<f32> = (0..2).flat_map(|_| c.iter().map(|v| -v)).collect();
    let want = [0usize, 100, 200, 399, 400];
    let adj = am.lean_adjoint(&tr.z, &[], &a1, &want).unwrap();
    assert_eq!(adj[4], a1);
    for (j, &k) in want.iter().enumerate() {
        let t = am.grid.t[k] as f64;
        let exact = base.adjoint_linear(&[0.5, -1.0, 0.8], t);
        let got: Vec<f64> = adj[j][..3].iter().map(|&v| v as f64).collect();
        assert!(max_abs_diff(&got, &exact) < 0.01, "t = {t}: {got:?} vs {exact:?}");
    }
    // a(1) = −λ β ⊙ ∇_x r through the whitening and the multiplier, as step() builds it.
    let w = Whitening {
        alpha: vec![0.0; 3],
        beta: vec![2.0, 0.5, 1.0],
    };
    let mut r = LinearReward { c: c.to_vec() };
    let (_, mut g) = r.value_and_grad(&[0.0, 0.0, 0.0]).unwrap();
    w.scale_by_beta(&mut g);
    assert_eq!(g, vec![1.0, -0.5, 0.8]);
}

#[test]
fn zero_reward_leaves_the_model_unchanged() {
    let base = flow3();
    let cfg = AmConfig {
        steps: 20,
        batch: 8,
        lr: 1e-2,
        ..AmConfig::default()
    };
    let mut am = am3(&base, 3, cfg);
    let before = am.ft.params().to_vec();
    for _ in 0..5 {
        let s = am.step(&mut ZeroReward { dim: 3 }, &[]).unwrap();
        assert_eq!(s.loss, 0.0);
    }
    assert_eq!(am.ft.params(), &before[..]);
    // …while a non-zero reward moves it.
    am.step(&mut LinearReward { c: vec![1.0, 0.0, 0.0] }, &[]).unwrap();
    assert_ne!(am.ft.params(), &before[..]);
}

/// Fine-tunes the Gaussian flow with r(x) = ⟨c, x⟩ under `cfg` and checks the tilt
/// N(μ, Σ) → N(μ + Σc, Σ) of the fine-tuned ODE's samples.
fn check_linear_tilt(cfg: AmConfig) {
    let base = flow3();
    let c = [0.6f64, -0.8, 0.5];
    let mut am = am3(&base, 5, cfg.clone());
    let mut r = LinearReward {
        c: c.iter().map(|&v| v as f32).collect(),
    };
    for _ in 0..600 {
        am.step(&mut r, &[]).unwrap();
    }
    let x = am.sample_ode(20_000, &[], 100, 9, false).unwrap();
    let (m, cv) = moments(&x, 3);
    let sc = base.cov_times(&c);
    let want: Vec<f64> = base.mu.iter().zip(&sc).map(|(a, b)| a + b).collect();
    eprintln!("{cfg:?}\nmean {m:?} want {want:?}\ncov {cv:?} want {:?}", base.cov);
    // Stated tolerance: 0.06 on the mean (the tilt moves it by up to 0.66), 0.08 on the covariance.
    assert!(max_abs_diff(&m, &want) < 0.06, "mean {m:?} vs {want:?}");
    assert!(max_abs_diff(&cv, &base.cov) < 0.08, "cov {cv:?} vs {:?}", base.cov);
}

fn tilt_config() -> AmConfig {
    AmConfig {
        steps: 30,
        t0: 1e-3,
        batch: 64,
        loss_steps: 10,
        lr: 2e-2,
        clip_quantile: 0.95,
        seed: 3,
        ..AmConfig::default()
    }
}

/// Fine-tuning with r(x) = ⟨c, x⟩ tilts N(μ, Σ) to N(μ + Σc, Σ).
#[test]
fn linear_reward_tilts_the_gaussian_to_the_closed_form() {
    check_linear_tilt(tilt_config());
}

/// The same with the endpoint-form steps of the SDE and the adjoint (used for endpoint-form
/// meta-models): the discretization changes, the target does not.
#[test]
fn linear_tilt_with_endpoint_steps() {
    check_linear_tilt(AmConfig {
        endpoint_steps: true,
        ..tilt_config()
    });
}

/// Per-time loss weights (`step_normalize`) change the variance of the regression, not its
/// pointwise minimizer: the tilt is the same closed form.
#[test]
fn linear_tilt_with_step_normalization() {
    check_linear_tilt(AmConfig {
        step_normalize: true,
        ..tilt_config()
    });
}

/// `loss_t_min` keeps only the later steps in the loss, and rejects a time past the grid.
#[test]
fn loss_t_min_selects_the_late_steps() {
    let base = flow3();
    let cfg = AmConfig {
        steps: 10,
        batch: 4,
        loss_t_min: 0.5,
        ..AmConfig::default()
    };
    let mut am = am3(&base, 3, cfg.clone());
    let s = am.step(&mut LinearReward { c: vec![1.0, 0.0, 0.0] }, &[]).unwrap();
    assert!(
        !s.loss_times.is_empty() && s.loss_times.iter().all(|&t| t >= 0.5),
        "{:?}",
        s.loss_times
    );
    assert_eq!(s.loss_times.len(), s.loss_by_step.len());
    let late = AmConfig { loss_t_min: 1.5, ..cfg };
    let mut am = am3(&base, 3, late);
    assert!(am.step(&mut LinearReward { c: vec![1.0, 0.0, 0.0] }, &[]).is_err());
}

/// With `ema`, the averaged parameters follow θ̄ ← ema·θ̄ + (1 − ema)·θ from θ̄₀ = θ₀.
#[test]
fn parameter_average_follows_the_recursion() {
    let base = flow3();
    let cfg = AmConfig {
        steps: 20,
        batch: 8,
        lr: 1e-2,
        ema: 0.75,
        ..AmConfig::default()
    };
    let mut am = am3(&base, 3, cfg);
    let mut want: Vec<f64> = am.ft.params().iter().map(|&v| v as f64).collect();
    for _ in 0..4 {
        am.step(
            &mut LinearReward {
                c: vec![1.0, -0.5, 0.0],
            },
            &[],
        )
        .unwrap();
        want.iter_mut()
            .zip(am.ft.params())
            .for_each(|(w, &p)| *w = 0.75 * *w + 0.25 * p as f64);
    }
    let avg = am.averaged_params().unwrap();
    assert!(
        avg.iter().zip(am.ft.params()).any(|(a, p)| a != p),
        "the average lags the parameters"
    );
    for (a, w) in avg.iter().zip(&want) {
        assert!((*a as f64 - w).abs() < 1e-6, "{a} vs {w}");
    }
    let bad = AmConfig {
        ema: 1.0,
        ..AmConfig::default()
    };
    assert!(AdjointMatching::new(&base, Corrected::new(base.clone(), 3), Whitening::identity(3), bad).is_err());
}
