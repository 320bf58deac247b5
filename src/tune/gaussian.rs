//! A flow with a closed form, to verify Adjoint Matching: the independent linear path from
//! N(0, I) to N(μ, Σ) has the exact marginal velocity, affine in x,
//! `v(x, t) = μ + M(t)(x − tμ)`, `M(t) = (tΣ − (1−t)I) S(t)⁻¹`, `S(t) = (1−t)²I + t²Σ`
//! (x_t = (1−t)x0 + t x1 is Gaussian with mean tμ and covariance S(t); v = E[x1 − x0 | x_t]).
//! With r(x) = ⟨c, x⟩ the tilted target is N(μ + Σc, Σ); its velocity differs from the base by
//! `Δ(t) = (1−t) S(t)⁻¹ Σ c` (independent of x), and the lean adjoint is
//! `a(t) = −t S(t)⁻¹ Σ c` (so that Δ = −(σ²/2) a).
//!
//! [`Corrected`] is a trainable field v_base + Δ_θ(x, t), Δ_θ = Σ_j φ_j(t)(W_j x + b_j) with
//! φ_j(t) = (2t − 1)^j, which can represent the tilt (up to the polynomial fit of Δ(t)).

use super::field::{Field, TrainableField};
use super::{check_len, TuneError};

/// d×d matrix inverse (Gauss–Jordan with partial pivoting), row-major f64.
pub fn inverse(a: &[f64], d: usize) -> Result<Vec<f64>, TuneError> {
    let mut m = a.to_vec();
    let mut inv: Vec<f64> = (0..d * d).map(|i| if i / d == i % d { 1.0 } else { 0.0 }).collect();
    for col in 0..d {
        let p = (col..d)
            .max_by(|&i, &j| m[i * d + col].abs().total_cmp(&m[j * d + col].abs()))
            .unwrap_or(col);
        if m[p * d + col].abs() < 1e-12 {
            return Err(TuneError::Config("singular matrix".into()));
        }
        for j in 0..d {
            m.swap(col * d + j, p * d + j);
            inv.swap(col * d + j, p * d + j);
        }
        let piv = m[col * d + col];
        for j in 0..d {
            m[col * d + j] /= piv;
            inv[col * d + j] /= piv;
        }
        for i in 0..d {
            if i != col {
                let f = m[i * d + col];
                for j in 0..d {
                    m[i * d + j] -= f * m[col * d + j];
                    inv[i * d + j] -= f * inv[col * d + j];
                }
            }
        }
    }
    Ok(inv)
}

/// Row-major product of d×d matrices.
pub fn matmul(a: &[f64], b: &[f64], d: usize) -> Vec<f64> {
    let mut c = vec![0.0; d * d];
    for i in 0..d {
        for k in 0..d {
            for j in 0..d {
                c[i * d + j] += a[i * d + k] * b[k * d + j];
            }
        }
    }
    c
}

/// The exact flow N(0, I) → N(μ, Σ).
#[derive(Clone, Debug)]
pub struct GaussianFlow {
    pub mu: Vec<f64>,
    /// Σ, row-major d×d, symmetric positive definite.
    pub cov: Vec<f64>,
}

impl GaussianFlow {
    pub fn new(mu: Vec<f64>, cov: Vec<f64>) -> Result<Self, TuneError> {
        let d = mu.len();
        if cov.len() != d * d {
            return Err(TuneError::Shape {
                what: "Gaussian flow covariance".into(),
                expected: d * d,
                got: cov.len(),
            });
        }
        inverse(&cov, d)?;
        Ok(GaussianFlow { mu, cov })
    }

    fn d(&self) -> usize {
        self.mu.len()
    }

    /// S(t) = (1−t)²I + t²Σ.
    pub fn s(&self, t: f64) -> Vec<f64> {
        let d = self.d();
        (0..d * d)
            .map(|i| t * t * self.cov[i] + if i / d == i % d { (1.0 - t).powi(2) } else { 0.0 })
            .collect()
    }

    /// M(t) = (tΣ − (1−t)I) S(t)⁻¹ (the Jacobian ∂v/∂x).
    pub fn m(&self, t: f64) -> Vec<f64> {
        let d = self.d();
        let a: Vec<f64> = (0..d * d)
            .map(|i| t * self.cov[i] - if i / d == i % d { 1.0 - t } else { 0.0 })
            .collect();
        // S is SPD for t in [0, 1]; inverse cannot fail there.
        let sinv = inverse(&self.s(t), d).unwrap_or_else(|_| vec![0.0; d * d]);
        matmul(&a, &sinv, d)
    }

    /// Σc.
    pub fn cov_times(&self, c: &[f64]) -> Vec<f64> {
        let d = self.d();
        (0..d)
            .map(|i| (0..d).map(|j| self.cov[i * d + j] * c[j]).sum())
            .collect()
    }

    /// The exact lean adjoint for r = ⟨c, x⟩: a(t) = −t S(t)⁻¹ Σc.
    pub fn adjoint_linear(&self, c: &[f64], t: f64) -> Vec<f64> {
        let d = self.d();
        let sinv = inverse(&self.s(t), d).unwrap_or_else(|_| vec![0.0; d * d]);
        let sc = self.cov_times(c);
        (0..d)
            .map(|i| -t * (0..d).map(|j| sinv[i * d + j] * sc[j]).sum::<f64>())
            .collect()
    }
}

fn rows_t(x: &[f32], t: &[f32], d: usize) -> Result<usize, TuneError> {
    check_len("Gaussian flow x (rows × dim)", x, t.len() * d)?;
    Ok(t.len())
}

impl Field for GaussianFlow {
    fn dim(&self) -> usize {
        self.d()
    }
    fn ctx_dim(&self) -> usize {
        0
    }
    fn velocity(&self, x: &[f32], t: &[f32], _ctx: &[f32]) -> Result<Vec<f32>, TuneError> {
        let d = self.d();
        let b = rows_t(x, t, d)?;
        let mut out = vec![0f32; b * d];
        for r in 0..b {
            let tt = t[r] as f64;
            let m = self.m(tt);
            for i in 0..d {
                let mut v = self.mu[i];
                for j in 0..d {
                    v += m[i * d + j] * (x[r * d + j] as f64 - tt * self.mu[j]);
                }
                out[r * d + i] = v as f32;
            }
        }
        Ok(out)
    }
    fn vjp_x(&self, x: &[f32], t: &[f32], _ctx: &[f32], u: &[f32]) -> Result<Vec<f32>, TuneError> {
        let d = self.d();
        let b = rows_t(x, t, d)?;
        check_len("Gaussian flow vjp u", u, b * d)?;
        let mut out = vec![0f32; b * d];
        for r in 0..b {
            let m = self.m(t[r] as f64);
            for j in 0..d {
                out[r * d + j] = (0..d).map(|i| m[i * d + j] * u[r * d + i] as f64).sum::<f64>() as f32;
            }
        }
        Ok(out)
    }
}

/// v_base + Δ_θ(x, t), Δ_θ = Σ_j φ_j(t)(W_j x + b_j), φ_j(t) = (2t−1)^j, j < `basis`.
/// Parameters: for each j, W_j (d×d row-major) then b_j (d); all zero at start.
#[derive(Clone, Debug)]
pub struct Corrected {
    pub base: GaussianFlow,
    pub basis: usize,
    pub theta: Vec<f32>,
}

impl Corrected {
    pub fn new(base: GaussianFlow, basis: usize) -> Self {
        let d = base.mu.len();
        Corrected {
            base,
            basis,
            theta: vec![0.0; basis * (d * d + d)],
        }
    }

    fn phi(&self, t: f32) -> Vec<f32> {
        let s = 2.0 * t - 1.0;
        (0..self.basis).map(|j| s.powi(j as i32)).collect()
    }

    /// Δ_θ(x, t) for one row.
    pub fn delta(&self, x: &[f32], t: f32) -> Vec<f32> {
        let d = x.len();
        let blk = d * d + d;
        let mut out = vec![0f32; d];
        for (j, p) in self.phi(t).into_iter().enumerate() {
            let th = &self.theta[j * blk..(j + 1) * blk];
            for i in 0..d {
                let w: f32 = (0..d).map(|k| th[i * d + k] * x[k]).sum();
                out[i] += p * (w + th[d * d + i]);
            }
        }
        out
    }
}

impl Field for Corrected {
    fn dim(&self) -> usize {
        self.base.dim()
    }
    fn ctx_dim(&self) -> usize {
        0
    }
    fn velocity(&self, x: &[f32], t: &[f32], ctx: &[f32]) -> Result<Vec<f32>, TuneError> {
        let d = self.dim();
        let mut v = self.base.velocity(x, t, ctx)?;
        for (r, &tt) in t.iter().enumerate() {
            let dl = self.delta(&x[r * d..(r + 1) * d], tt);
            v[r * d..(r + 1) * d].iter_mut().zip(dl).for_each(|(a, b)| *a += b);
        }
        Ok(v)
    }
    fn vjp_x(&self, x: &[f32], t: &[f32], ctx: &[f32], u: &[f32]) -> Result<Vec<f32>, TuneError> {
        let d = self.dim();
        let blk = d * d + d;
        let mut g = self.base.vjp_x(x, t, ctx, u)?;
        for (r, &tt) in t.iter().enumerate() {
            for (j, p) in self.phi(tt).into_iter().enumerate() {
                let th = &self.theta[j * blk..(j + 1) * blk];
                for k in 0..d {
                    g[r * d + k] += p * (0..d).map(|i| th[i * d + k] * u[r * d + i]).sum::<f32>();
                }
            }
        }
        Ok(g)
    }
}

impl TrainableField for Corrected {
    fn params(&self) -> &[f32] {
        &self.theta
    }
    fn params_mut(&mut self) -> &mut [f32] {
        &mut self.theta
    }
    fn param_grad(&self, x: &[f32], t: &[f32], _ctx: &[f32], dv: &[f32]) -> Result<Vec<f32>, TuneError> {
        let d = self.dim();
        let b = rows_t(x, t, d)?;
        check_len("Corrected param_grad dv", dv, b * d)?;
        let blk = d * d + d;
        let mut g = vec![0f64; self.theta.len()];
        for r in 0..b {
            for (j, p) in self.phi(t[r]).into_iter().enumerate() {
                for i in 0..d {
                    let dvi = (p * dv[r * d + i]) as f64;
                    for k in 0..d {
                        g[j * blk + i * d + k] += dvi * x[r * d + k] as f64;
                    }
                    g[j * blk + d * d + i] += dvi;
                }
            }
        }
        Ok(g.into_iter().map(|v| v as f32).collect())
    }
}
