//! ODE solvers for `dx/dt = f(t, x)` on a flat state (a batch of rows): Euler, midpoint and RK4
//! with fixed steps, and adaptive Dormand–Prince 5(4) with error control `rtol`/`atol`
//! (Hairer, Nørsett, Wanner, "Solving ODEs I", II.4). Every solver counts function evaluations.

use serde::{Deserialize, Serialize};

/// Which integrator to use.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Solver {
    Euler,
    Midpoint,
    Rk4,
    /// Adaptive Dormand–Prince 5(4).
    Dopri5 {
        rtol: f64,
        atol: f64,
    },
}

impl std::str::FromStr for Solver {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "euler" => Ok(Solver::Euler),
            "midpoint" => Ok(Solver::Midpoint),
            "rk4" => Ok(Solver::Rk4),
            "dopri5" | "adaptive" => Ok(Solver::Dopri5 { rtol: 1e-3, atol: 1e-4 }),
            o => Err(format!("unknown solver '{o}' (euler, midpoint, rk4, dopri5)")),
        }
    }
}

/// The end state and the number of function evaluations.
#[derive(Clone, Debug)]
pub struct Solution {
    pub x: Vec<f32>,
    pub nfe: usize,
}

fn axpy(x: &[f32], h: f64, k: &[&[f32]], c: &[f64]) -> Vec<f32> {
    let mut y = x.to_vec();
    for (kk, &cc) in k.iter().zip(c) {
        if cc != 0.0 {
            let s = (h * cc) as f32;
            y.iter_mut().zip(kk.iter()).for_each(|(y, v)| *y += s * v);
        }
    }
    y
}

/// Integrates from `t0` to `t1` (either direction) with `steps` fixed steps (ignored by Dopri5,
/// which starts from (t1 − t0)/steps).
pub fn integrate<F>(solver: Solver, mut f: F, x0: &[f32], t0: f64, t1: f64, steps: usize) -> Solution
where
    F: FnMut(f64, &[f32]) -> Vec<f32>,
{
    let steps = steps.max(1);
    let mut x = x0.to_vec();
    let mut nfe = 0usize;
    let mut eval = |t: f64, x: &[f32]| {
        nfe += 1;
        f(t, x)
    };
    let h = (t1 - t0) / steps as f64;
    match solver {
        Solver::Euler => {
            for i in 0..steps {
                let k1 = eval(t0 + i as f64 * h, &x);
                x = axpy(&x, h, &[&k1], &[1.0]);
            }
        }
        Solver::Midpoint => {
            for i in 0..steps {
                let t = t0 + i as f64 * h;
                let k1 = eval(t, &x);
                let xm = axpy(&x, h, &[&k1], &[0.5]);
                let k2 = eval(t + 0.5 * h, &xm);
                x = axpy(&x, h, &[&k2], &[1.0]);
            }
        }
        Solver::Rk4 => {
            for i in 0..steps {
                let t = t0 + i as f64 * h;
                let k1 = eval(t, &x);
                let k2 = eval(t + 0.5 * h, &axpy(&x, h, &[&k1], &[0.5]));
                let k3 = eval(t + 0.5 * h, &axpy(&x, h, &[&k2], &[0.5]));
                let k4 = eval(t + h, &axpy(&x, h, &[&k3], &[1.0]));
                x = axpy(
                    &x,
                    h,
                    &[&k1, &k2, &k3, &k4],
                    &[1.0 / 6.0, 1.0 / 3.0, 1.0 / 3.0, 1.0 / 6.0],
                );
            }
        }
        Solver::Dopri5 { rtol, atol } => {
            x = dopri5(&mut eval, x, t0, t1, h, rtol, atol);
        }
    }
    Solution { x, nfe }
}

/// Dormand–Prince 5(4) with FSAL and the standard step-size controller.
fn dopri5<F>(f: &mut F, mut x: Vec<f32>, t0: f64, t1: f64, h0: f64, rtol: f64, atol: f64) -> Vec<f32>
where
    F: FnMut(f64, &[f32]) -> Vec<f32>,
{
    const C: [f64; 6] = [1.0 / 5.0, 3.0 / 10.0, 4.0 / 5.0, 8.0 / 9.0, 1.0, 1.0];
    const A: [&[f64]; 6] = [
        &[1.0 / 5.0],
        &[3.0 / 40.0, 9.0 / 40.0],
        &[44.0 / 45.0, -56.0 / 15.0, 32.0 / 9.0],
        &[19372.0 / 6561.0, -25360.0 / 2187.0, 64448.0 / 6561.0, -212.0 / 729.0],
        &[
            9017.0 / 3168.0,
            -355.0 / 33.0,
            46732.0 / 5247.0,
            49.0 / 176.0,
            -5103.0 / 18656.0,
        ],
        &[
            35.0 / 384.0,
            0.0,
            500.0 / 1113.0,
            125.0 / 192.0,
            -2187.0 / 6784.0,
            11.0 / 84.0,
        ],
    ];
    // 5th-order weights = A[5]; error = (b5 − b4) per stage (7 stages incl. FSAL).
    const E: [f64; 7] = [
        71.0 / 57600.0,
        0.0,
        -71.0 / 16695.0,
        71.0 / 1920.0,
        -17253.0 / 339200.0,
        22.0 / 525.0,
        -1.0 / 40.0,
    ];
    let dir = (t1 - t0).signum();
    let span = (t1 - t0).abs();
    let mut h = h0.abs().min(span).max(1e-12 * span.max(1.0));
    let mut t = t0;
    let mut k1 = f(t, &x);
    while (t1 - t) * dir > 1e-12 * span.max(1.0) {
        h = h.min((t1 - t).abs());
        let hs = h * dir;
        // Stages k1..k7; the last stage point (weights A[5] = b5) is the 5th-order solution,
        // and its slope k7 is the next step's k1 (FSAL).
        let mut ks: Vec<Vec<f32>> = vec![k1.clone()];
        let mut x_new = Vec::new();
        for s in 0..6 {
            let refs: Vec<&[f32]> = ks.iter().map(|k| k.as_slice()).collect();
            let xs = axpy(&x, hs, &refs, A[s]);
            ks.push(f(t + C[s] * hs, &xs));
            x_new = xs;
        }
        let mut err = 0.0f64;
        for i in 0..x.len() {
            let e: f64 = (0..7).map(|s| E[s] * ks[s][i] as f64).sum::<f64>() * hs;
            let sc = atol + rtol * (x[i].abs().max(x_new[i].abs()) as f64);
            err += (e / sc).powi(2);
        }
        let err = (err / x.len().max(1) as f64).sqrt();
        if err <= 1.0 || h <= 1e-10 * span.max(1.0) {
            t += hs;
            x = x_new;
            k1 = ks.swap_remove(6);
        }
        let fac = if err == 0.0 {
            5.0
        } else {
            (0.9 * err.powf(-0.2)).clamp(0.2, 5.0)
        };
        h *= fac;
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    /// dx/dt = A x with A = [[0, 1], [−1, 0]] (rotation) plus dy/dt = −2 t y:
    /// x(t) = R(t) x0, y(t) = y0 exp(−t²).
    fn rhs(t: f64, x: &[f32]) -> Vec<f32> {
        vec![x[1], -x[0], (-2.0 * t * x[2] as f64) as f32]
    }

    fn exact(t: f64) -> [f64; 3] {
        [t.cos(), -t.sin(), (-t * t).exp()]
    }

    fn err(x: &[f32], t: f64) -> f64 {
        let e = exact(t);
        (0..3).map(|i| (x[i] as f64 - e[i]).abs()).fold(0.0, f64::max)
    }

    #[test]
    fn fixed_step_solvers_converge_at_their_order() {
        let x0 = [1.0f32, 0.0, 1.0];
        for (solver, order, nfe_per_step) in [(Solver::Euler, 1, 1), (Solver::Midpoint, 2, 2), (Solver::Rk4, 4, 4)] {
            let a = integrate(solver, rhs, &x0, 0.0, 2.0, 20);
            let b = integrate(solver, rhs, &x0, 0.0, 2.0, 40);
            assert_eq!(a.nfe, 20 * nfe_per_step);
            let (ea, eb) = (err(&a.x, 2.0), err(&b.x, 2.0));
            let rate = (ea / eb).log2();
            assert!(
                (rate - order as f64).abs() < 0.5 || eb < 2e-6,
                "{solver:?}: {ea} → {eb}, rate {rate}"
            );
        }
        let r = integrate(Solver::Rk4, rhs, &x0, 0.0, 2.0, 50);
        assert!(err(&r.x, 2.0) < 1e-5);
    }

    #[test]
    fn dopri5_meets_tolerance_and_runs_backwards() {
        let x0 = [1.0f32, 0.0, 1.0];
        let loose = integrate(Solver::Dopri5 { rtol: 1e-3, atol: 1e-4 }, rhs, &x0, 0.0, 3.0, 1);
        let tight = integrate(Solver::Dopri5 { rtol: 1e-6, atol: 1e-7 }, rhs, &x0, 0.0, 3.0, 1);
        assert!(err(&loose.x, 3.0) < 1e-2, "{}", err(&loose.x, 3.0));
        assert!(err(&tight.x, 3.0) < 1e-5, "{}", err(&tight.x, 3.0));
        assert!(tight.nfe > loose.nfe);
        let e = exact(3.0);
        let back = integrate(
            Solver::Dopri5 { rtol: 1e-6, atol: 1e-7 },
            rhs,
            &[e[0] as f32, e[1] as f32, e[2] as f32],
            3.0,
            0.0,
            1,
        );
        assert!(err(&back.x, 0.0) < 1e-4, "{:?}", back.x);
    }
}
