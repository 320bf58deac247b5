//! Conditional flow matching with σ = 0 (Lipman et al. 2023; Tong et al. 2024):
//! `x_t = (1 − t)·x0 + t·x1`, target `u_t = x1 − x0`, `t ~ U[0, 1]`, loss = MSE(v(x_t, t), u_t).
//! I-CFM pairs source and target samples independently; OT-CFM re-pairs each minibatch by the
//! exact assignment on squared Euclidean cost (or an entropic plan).

use super::coupling::{assignment, sample_from_plan, sinkhorn, sq_cost};
use crate::engine::rng::Rng;
use serde::{Deserialize, Serialize};

/// How a minibatch of sources is paired with its targets.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Coupling {
    /// Independent pairs (I-CFM).
    Independent,
    /// Exact minibatch OT assignment (OT-CFM).
    Exact,
    /// Entropic OT: Sinkhorn with regularization `reg` (relative to the mean cost).
    Sinkhorn { reg: f64, iters: usize },
}

impl std::str::FromStr for Coupling {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "independent" | "icfm" | "i-cfm" => Ok(Coupling::Independent),
            "exact" | "ot" | "ot-cfm" | "otcfm" => Ok(Coupling::Exact),
            "sinkhorn" => Ok(Coupling::Sinkhorn { reg: 0.05, iters: 100 }),
            o => Err(format!("unknown coupling '{o}' (independent, exact, sinkhorn)")),
        }
    }
}

/// For each target row j, the source row paired with it: the identity for I-CFM, the OT
/// assignment otherwise. `x0`, `x1` are `[n, d]`.
pub fn pair(coupling: Coupling, x0: &[f32], x1: &[f32], d: usize, rng: &mut Rng) -> Vec<usize> {
    let n = x1.len() / d.max(1);
    match coupling {
        Coupling::Independent => (0..n).collect(),
        Coupling::Exact => assignment(&sq_cost(x1, x0, d), n),
        Coupling::Sinkhorn { reg, iters } => {
            let plan = sinkhorn(&sq_cost(x1, x0, d), n, n, reg, iters);
            sample_from_plan(&plan, n, n, rng)
        }
    }
}

/// The point `x_t [n, d]` and target velocity `u [n, d]` of the straight path for each row.
pub fn path(x0: &[f32], x1: &[f32], t: &[f32], d: usize) -> (Vec<f32>, Vec<f32>) {
    let mut xt = Vec::with_capacity(x1.len());
    let mut u = Vec::with_capacity(x1.len());
    for (i, &tv) in t.iter().enumerate() {
        let (a, b) = (&x0[i * d..(i + 1) * d], &x1[i * d..(i + 1) * d]);
        xt.extend(a.iter().zip(b).map(|(a, b)| (1.0 - tv) * a + tv * b));
        u.extend(a.iter().zip(b).map(|(a, b)| b - a));
    }
    (xt, u)
}

/// MSE `(1/(n·d)) Σ (v − u)²` and its gradient `∂L/∂v = 2(v − u)/(n·d)`.
pub fn mse(v: &[f32], u: &[f32]) -> (f32, Vec<f32>) {
    let n = v.len().max(1) as f32;
    let mut loss = 0.0f64;
    let g = v
        .iter()
        .zip(u)
        .map(|(a, b)| {
            let d = a - b;
            loss += (d * d) as f64;
            2.0 * d / n
        })
        .collect();
    ((loss / n as f64) as f32, g)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::rng::stream;

    #[test]
    fn path_and_target_match_closed_form() {
        let x0 = [1.0f32, -2.0, 0.5, 0.0];
        let x1 = [3.0f32, 2.0, -0.5, 1.0];
        let (xt, u) = path(&x0, &x1, &[0.25, 1.0], 2);
        assert_eq!(u, vec![2.0, 4.0, -1.0, 1.0]);
        assert_eq!(xt, vec![1.5, -1.0, -0.5, 1.0]);
        // d x_t / dt = u: finite difference in t.
        let (a, _) = path(&x0[..2], &x1[..2], &[0.3], 2);
        let (b, _) = path(&x0[..2], &x1[..2], &[0.4], 2);
        for j in 0..2 {
            assert!(((b[j] - a[j]) / 0.1 - u[j]).abs() < 1e-4);
        }
        let (l, g) = mse(&[1.0, 2.0], &[0.0, 0.0]);
        assert!((l - 2.5).abs() < 1e-6 && g == vec![1.0, 2.0]);
    }

    #[test]
    fn ot_pairing_undoes_a_shuffle() {
        // Targets are a shuffled, slightly shifted copy of the sources: OT recovers the shuffle.
        let x0: Vec<f32> = (0..6).flat_map(|i| [i as f32 * 3.0, -(i as f32)]).collect();
        let perm = [4usize, 0, 5, 2, 1, 3];
        let x1: Vec<f32> = perm.iter().flat_map(|&i| [x0[2 * i] + 0.1, x0[2 * i + 1]]).collect();
        let mut rng = stream(0, "t", 0);
        assert_eq!(pair(Coupling::Exact, &x0, &x1, 2, &mut rng), perm.to_vec());
        assert_eq!(
            pair(Coupling::Independent, &x0, &x1, 2, &mut rng),
            (0..6).collect::<Vec<_>>()
        );
        let s = Coupling::Sinkhorn { reg: 0.001, iters: 200 };
        assert_eq!(pair(s, &x0, &x1, 2, &mut rng), perm.to_vec());
    }
}
