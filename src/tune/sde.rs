//! The memoryless SDE of a flow with α_t = t, β_t = 1−t, in whitened coordinates (p0 = N(0, I)):
//!
//! - noise σ(t) = √(2(1−t)/t) (η_t = β_t(α̇_t β_t/α_t − β̇_t) = (1−t)/t, σ = √(2η_t));
//! - drift b(x, t) = 2 v(x, t) − x/t;
//! - lean adjoint da/dt = −(∂b/∂x)ᵀ a = a/t − 2 (∂v/∂x)ᵀ a, a(1) = −λ ∇r(x_1).
//!
//! Both are stiff at small t through the x/t term, so each step integrates it exactly with the
//! integrating factor t: d(t·X) = 2t·v dt + t·σ dW, so over [t_k, t_{k+1}] with v frozen at t_k
//! `t_{k+1} X_{k+1} = t_k X_k + (t_{k+1}² − t_k²) v + √q ξ`, q = ∫ s²σ(s)² ds
//! = (t_{k+1}² − t_k²) − ⅔(t_{k+1}³ − t_k³). For the adjoint, u = a/t obeys du/dt = −2 Jᵀ u,
//! stepped backward by explicit Euler: `u_k = u_{k+1} + 2h J(x_{k+1}, t_{k+1})ᵀ u_{k+1}`.
//!
//! **Endpoint-form fields** (v = (x̂1 − x)/(1 − t), see `flow::velocity::Parameterization`) are
//! stiff at t → 1 as well: with v frozen over the last step the step above lands near 2x̂1 − x
//! instead of x̂1, and J(x, 1) ∝ 1/MIN_REMAINING blows the adjoint up. For them
//! [`endpoint_step`] freezes the endpoint prediction x̂1 = x + (1 − t)v (read at t_k < 1, never at
//! t = 1) and takes the exact step of the memoryless SDE for a fixed x̂1, which is the DDPM
//! posterior of the interpolant x_t = t x1 + (1 − t) x0: with (α, s) = (t, 1 − t),
//! `x_{k+1} = A x_k + B x̂1 + S ξ`, A = (α_k/α_{k+1}) s_{k+1}² / s_k², B = α_{k+1} s_{k|k+1}² / s_k²,
//! S² = s_{k|k+1}² s_{k+1}² / s_k², s_{k|k+1}² = s_k² − (α_k/α_{k+1})² s_{k+1}². The last step
//! (t_{k+1} = 1) gives exactly x̂1. Its adjoint is the discrete one, with the base field read at
//! (x_k, t_k): `a_k = A a_{k+1} + B (∂x̂1/∂x)ᵀ a_{k+1}`, (∂x̂1/∂x)ᵀ a = a + (1 − t_k) Jᵀ a.

use super::TuneError;
use rand::Rng as _;
use rand_distr::StandardNormal;

/// A time grid t_0 < t_1 < … < t_N = 1 with t_0 > 0.
#[derive(Clone, Debug, PartialEq)]
pub struct Grid {
    /// The N+1 times.
    pub t: Vec<f32>,
}

impl Grid {
    /// N uniform steps from `t0` to 1.
    pub fn uniform(t0: f32, steps: usize) -> Result<Self, TuneError> {
        if !(t0 > 0.0 && t0 < 1.0) || steps == 0 {
            return Err(TuneError::Config(format!(
                "time grid needs 0 < t0 < 1 and ≥ 1 step, got t0 = {t0}, steps = {steps}"
            )));
        }
        let h = (1.0 - t0 as f64) / steps as f64;
        let t = (0..=steps)
            .map(|k| {
                if k == steps {
                    1.0
                } else {
                    (t0 as f64 + h * k as f64) as f32
                }
            })
            .collect();
        Ok(Grid { t })
    }

    /// N steps from `t0` to 1 placed at t_k = t0 + (1 − t0)(k/N)^p: p = 1 is uniform, p > 1 puts
    /// more steps at small t, where σ(t)² = 2(1−t)/t and the adjoint change fastest.
    pub fn power(t0: f32, steps: usize, p: f32) -> Result<Self, TuneError> {
        if !(p.is_finite() && p >= 1.0) {
            return Err(TuneError::Config(format!("grid power must be ≥ 1, got {p}")));
        }
        let mut g = Self::uniform(t0, steps)?;
        let n = steps as f64;
        for (k, t) in g.t.iter_mut().enumerate().take(steps).skip(1) {
            *t = (t0 as f64 + (1.0 - t0 as f64) * (k as f64 / n).powf(p as f64)) as f32;
        }
        Ok(g)
    }

    /// Number of steps N.
    pub fn steps(&self) -> usize {
        self.t.len() - 1
    }
}

/// Memoryless noise level σ(t) = √(2(1−t)/t).
pub fn sigma(t: f32) -> f32 {
    (2.0 * (1.0 - t) / t).max(0.0).sqrt()
}

/// One memoryless-SDE step of every row of `x [B, dim]` from `t0` to `t1` given the velocity
/// `v [B, dim]` at (x, t0); `noise` = false gives the drift only (used in tests).
pub fn sde_step(x: &mut [f32], v: &[f32], t0: f32, t1: f32, rng: &mut crate::engine::rng::Rng, noise: bool) {
    let (a, b) = (t0 as f64, t1 as f64);
    let q = ((b * b - a * a) - 2.0 / 3.0 * (b * b * b - a * a * a)).max(0.0);
    let sq = q.sqrt();
    let dv = b * b - a * a;
    for (xi, &vi) in x.iter_mut().zip(v) {
        let xi_noise: f64 = if noise {
            rng.sample::<f64, _>(StandardNormal)
        } else {
            0.0
        };
        *xi = ((a * *xi as f64 + dv * vi as f64 + sq * xi_noise) / b) as f32;
    }
}

/// One backward lean-adjoint step from `t1` to `t0` (t0 < t1): given a(t1) and
/// `jta = J(x_{t1}, t1)ᵀ a(t1)`, returns a(t0) = (t0/t1)(a + 2(t1 − t0)·jta).
pub fn adjoint_step(a: &[f32], jta: &[f32], t0: f32, t1: f32) -> Vec<f32> {
    let h = t1 - t0;
    let r = t0 / t1;
    a.iter().zip(jta).map(|(&ai, &gi)| r * (ai + 2.0 * h * gi)).collect()
}

/// Coefficients (A, B, S) of [`endpoint_step`] from `t0` to `t1` (see the module doc).
pub fn endpoint_coeffs(t0: f32, t1: f32) -> (f64, f64, f64) {
    let (a0, a1) = (t0 as f64, t1 as f64);
    let (s0, s1) = (1.0 - a0, 1.0 - a1);
    let r = a0 / a1;
    let s01 = (s0 * s0 - r * r * s1 * s1).max(0.0);
    let den = (s0 * s0).max(1e-30);
    (r * s1 * s1 / den, a1 * s01 / den, (s01 * s1 * s1 / den).max(0.0).sqrt())
}

/// One exact memoryless-SDE step of `x [B, dim]` from `t0` to `t1` for a frozen endpoint
/// prediction `xhat [B, dim]`; `noise` = false gives the mean.
pub fn endpoint_step(x: &mut [f32], xhat: &[f32], t0: f32, t1: f32, rng: &mut crate::engine::rng::Rng, noise: bool) {
    let (ca, cb, cs) = endpoint_coeffs(t0, t1);
    for (xi, &ni) in x.iter_mut().zip(xhat) {
        let e: f64 = if noise {
            rng.sample::<f64, _>(StandardNormal)
        } else {
            0.0
        };
        *xi = (ca * *xi as f64 + cb * ni as f64 + cs * e) as f32;
    }
}

/// Euler integration of the ODE dx/dt = v(x, t) for `x [B, dim]` from t = 0 to 1 in `steps`
/// steps (midpoint when `midpoint`), with `vel(x, t_row)` giving the velocity.
pub fn ode_sample<F>(x: &mut [f32], batch: usize, steps: usize, midpoint: bool, mut vel: F) -> Result<(), TuneError>
where
    F: FnMut(&[f32], &[f32]) -> Result<Vec<f32>, TuneError>,
{
    let h = 1.0 / steps.max(1) as f32;
    for k in 0..steps.max(1) {
        let t = k as f32 * h;
        let v = vel(x, &vec![t; batch])?;
        if midpoint {
            let xm: Vec<f32> = x.iter().zip(&v).map(|(a, b)| a + 0.5 * h * b).collect();
            let vm = vel(&xm, &vec![t + 0.5 * h; batch])?;
            x.iter_mut().zip(&vm).for_each(|(a, b)| *a += h * b);
        } else {
            x.iter_mut().zip(&v).for_each(|(a, b)| *a += h * b);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_and_sigma() {
        let g = Grid::uniform(0.01, 4).unwrap();
        assert_eq!(g.steps(), 4);
        assert_eq!(g.t[4], 1.0);
        assert!((g.t[1] - 0.2575).abs() < 1e-6);
        assert!(Grid::uniform(0.0, 4).is_err());
        assert!(Grid::uniform(0.1, 0).is_err());
        assert_eq!(Grid::power(0.01, 4, 1.0).unwrap(), g);
        let p = Grid::power(0.01, 4, 2.0).unwrap();
        assert!((p.t[1] - (0.01 + 0.99 / 16.0)).abs() < 1e-6 && p.t[0] == 0.01 && p.t[4] == 1.0);
        assert!(p.t.windows(2).all(|w| w[0] < w[1]));
        assert!(Grid::power(0.01, 4, 0.5).is_err());
        assert_eq!(sigma(1.0), 0.0);
        assert!((sigma(0.5) - 2f32.sqrt()).abs() < 1e-6);
    }

    /// With v = 0 the SDE is dX = −X/t dt + σ dW started at N(0, I) at t0: the exact law at t
    /// is N(0, (1 − t)² + ... ) — compare the one-step variance formula against its integral
    /// computed by quadrature: Var(t1 X1) = t0² Var X0 + q.
    #[test]
    fn step_noise_variance_matches_the_integral() {
        let (a, b) = (0.1f64, 0.6f64);
        let n = 200_000;
        let quad: f64 = (0..n)
            .map(|i| {
                let s = a + (b - a) * (i as f64 + 0.5) / n as f64;
                s * s * 2.0 * (1.0 - s) / s
            })
            .sum::<f64>()
            * (b - a)
            / n as f64;
        let q = (b * b - a * a) - 2.0 / 3.0 * (b * b * b - a * a * a);
        assert!((quad - q).abs() < 1e-9, "{quad} vs {q}");
        // Monte Carlo: X0 = 0, v = 0 → Var X1 = q / b².
        let mut rng = crate::engine::rng::stream(1, "sde-test", 0);
        let mut x = vec![0.0f32; 100_000];
        let v = vec![0.0f32; x.len()];
        sde_step(&mut x, &v, a as f32, b as f32, &mut rng, true);
        let var = x.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / x.len() as f64;
        assert!((var / (q / (b * b)) - 1.0).abs() < 0.02, "var {var}");
    }

    /// The endpoint step lands on x̂1 at t = 1, and for small steps agrees with the
    /// integrating-factor step to first order (same SDE).
    #[test]
    fn endpoint_step_matches_the_sde() {
        let (a, b, s) = endpoint_coeffs(0.9, 1.0);
        assert!(
            a.abs() < 1e-12 && (b - 1.0).abs() < 1e-12 && s.abs() < 1e-9,
            "{a} {b} {s}"
        );
        let (t0, t1) = (0.5f32, 0.501f32);
        let (x0, n) = (0.3f32, 1.2f32);
        let v = (n - x0) / (1.0 - t0);
        let mut rng = crate::engine::rng::stream(1, "sde-test", 1);
        let mut xe = vec![x0];
        endpoint_step(&mut xe, &[n], t0, t1, &mut rng, false);
        let mut xs = vec![x0];
        sde_step(&mut xs, &[v], t0, t1, &mut rng, false);
        let h = (t1 - t0) as f64;
        assert!(((xe[0] - xs[0]) as f64).abs() < 5.0 * h * h, "{} vs {}", xe[0], xs[0]);
        let (_, _, s) = endpoint_coeffs(t0, t1);
        let q = (((t1 * t1 - t0 * t0) as f64) - 2.0 / 3.0 * ((t1.powi(3) - t0.powi(3)) as f64)) / (t1 * t1) as f64;
        assert!((s * s / q - 1.0).abs() < 0.01, "{} vs {q}", s * s);
    }

    #[test]
    fn adjoint_step_solves_the_linear_case() {
        // J = c·I (v = c x): u = a/t obeys du/dt = −2c u → a(t) = t·u(1)·e^{2c(1−t)}.
        let c = 0.7f32;
        let steps = 4000;
        let g = Grid::uniform(0.05, steps).unwrap();
        let mut a = vec![1.0f32];
        for k in (0..steps).rev() {
            let jta = vec![c * a[0]];
            a = adjoint_step(&a, &jta, g.t[k], g.t[k + 1]);
        }
        let t0 = 0.05f32;
        let want = t0 * (2.0 * c * (1.0 - t0)).exp();
        assert!((a[0] / want - 1.0).abs() < 2e-3, "{} vs {want}", a[0]);
    }
}
