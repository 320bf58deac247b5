//! Minibatch couplings between source and target samples for OT-CFM: the exact assignment
//! minimizing Σ_i ‖x0_i − x1_{π(i)}‖² (Hungarian algorithm with potentials, O(n³)), and entropic
//! OT (Sinkhorn) with a pairing drawn from the plan.

use crate::engine::rng::Rng;
use rand::Rng as _;

/// Squared Euclidean cost matrix `[n0, n1]` between rows of `a [n0, d]` and `b [n1, d]` (f64).
pub fn sq_cost(a: &[f32], b: &[f32], d: usize) -> Vec<f64> {
    let mut c = Vec::with_capacity((a.len() / d.max(1)) * (b.len() / d.max(1)));
    for ra in a.chunks(d) {
        for rb in b.chunks(d) {
            c.push(ra.iter().zip(rb).map(|(x, y)| ((x - y) as f64).powi(2)).sum());
        }
    }
    c
}

/// The permutation π minimizing Σ_i cost[i, π(i)] for a square `cost [n, n]` (row i → column π[i]).
/// Hungarian method with row/column potentials (Kuhn–Munkres, shortest augmenting paths).
pub fn assignment(cost: &[f64], n: usize) -> Vec<usize> {
    assert_eq!(
        cost.len(),
        n * n,
        "assignment: cost has {} entries for n = {n}",
        cost.len()
    );
    // 1-based arrays; p[j] = row matched to column j (0 = none).
    let inf = f64::INFINITY;
    let (mut u, mut v) = (vec![0.0f64; n + 1], vec![0.0f64; n + 1]);
    let (mut p, mut way) = (vec![0usize; n + 1], vec![0usize; n + 1]);
    for i in 1..=n {
        p[0] = i;
        let mut j0 = 0usize;
        let mut minv = vec![inf; n + 1];
        let mut used = vec![false; n + 1];
        loop {
            used[j0] = true;
            let i0 = p[j0];
            let row = &cost[(i0 - 1) * n..i0 * n];
            let ui = u[i0];
            let (mut delta, mut j1) = (inf, 0usize);
            for j in 1..=n {
                if !used[j] {
                    let cur = row[j - 1] - ui - v[j];
                    if cur < minv[j] {
                        minv[j] = cur;
                        way[j] = j0;
                    }
                    if minv[j] < delta {
                        delta = minv[j];
                        j1 = j;
                    }
                }
            }
            for j in 0..=n {
                if used[j] {
                    u[p[j]] += delta;
                    v[j] -= delta;
                } else {
                    minv[j] -= delta;
                }
            }
            j0 = j1;
            if p[j0] == 0 {
                break;
            }
        }
        loop {
            let j1 = way[j0];
            p[j0] = p[j1];
            j0 = j1;
            if j0 == 0 {
                break;
            }
        }
    }
    let mut pi = vec![0usize; n];
    for j in 1..=n {
        if p[j] > 0 {
            pi[p[j] - 1] = j - 1;
        }
    }
    pi
}

/// Entropic OT plan `[n0, n1]` with uniform marginals, `reg` relative to the mean cost,
/// `iters` Sinkhorn iterations in the log domain.
pub fn sinkhorn(cost: &[f64], n0: usize, n1: usize, reg: f64, iters: usize) -> Vec<f64> {
    let mean = cost.iter().sum::<f64>() / cost.len().max(1) as f64;
    let eps = (reg * mean).max(1e-12);
    let (la, lb) = (-(n0 as f64).ln(), -(n1 as f64).ln());
    let (mut f, mut g) = (vec![0.0f64; n0], vec![0.0f64; n1]);
    let lse = |vals: &mut dyn Iterator<Item = f64>| {
        let v: Vec<f64> = vals.collect();
        let m = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        m + v.iter().map(|x| (x - m).exp()).sum::<f64>().ln()
    };
    for _ in 0..iters {
        for i in 0..n0 {
            f[i] = eps * (la - lse(&mut (0..n1).map(|j| (g[j] - cost[i * n1 + j]) / eps)));
        }
        for j in 0..n1 {
            g[j] = eps * (lb - lse(&mut (0..n0).map(|i| (f[i] - cost[i * n1 + j]) / eps)));
        }
    }
    let mut plan = vec![0.0; n0 * n1];
    for i in 0..n0 {
        for j in 0..n1 {
            plan[i * n1 + j] = ((f[i] + g[j] - cost[i * n1 + j]) / eps).exp();
        }
    }
    plan
}

/// For each row i of `plan [n0, n1]`, a column drawn with probability ∝ plan[i, ·].
pub fn sample_from_plan(plan: &[f64], n0: usize, n1: usize, rng: &mut Rng) -> Vec<usize> {
    (0..n0)
        .map(|i| {
            let row = &plan[i * n1..(i + 1) * n1];
            let total: f64 = row.iter().sum();
            let mut r = rng.gen::<f64>() * total;
            for (j, &p) in row.iter().enumerate() {
                r -= p;
                if r <= 0.0 {
                    return j;
                }
            }
            n1 - 1
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::engine::rng::stream;

    /// Every permutation of 0..n (brute-force references).
    pub(crate) fn permutations(n: usize) -> Vec<Vec<usize>> {
        if n == 0 {
            return vec![vec![]];
        }
        let mut out = Vec::new();
        for p in permutations(n - 1) {
            for pos in 0..=p.len() {
                let mut q = p.clone();
                q.insert(pos, n - 1);
                out.push(q);
            }
        }
        out
    }

    /// Σ_i cost[i, π(i)].
    pub(crate) fn total(cost: &[f64], n: usize, pi: &[usize]) -> f64 {
        (0..n).map(|i| cost[i * n + pi[i]]).sum()
    }

    #[test]
    fn assignment_matches_brute_force() {
        let mut rng = stream(5, "test", 0);
        for n in 1..=7 {
            let perms = permutations(n);
            for trial in 0..6 {
                let cost: Vec<f64> = if trial == 0 {
                    // Points on a line: squared distances, many near-ties.
                    let a: Vec<f32> = (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect();
                    let b: Vec<f32> = (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect();
                    sq_cost(&a, &b, 1)
                } else {
                    (0..n * n).map(|_| rng.gen_range(0.0..10.0)).collect()
                };
                let best = perms.iter().map(|p| total(&cost, n, p)).fold(f64::INFINITY, f64::min);
                let pi = assignment(&cost, n);
                let mut seen = pi.clone();
                seen.sort();
                assert_eq!(seen, (0..n).collect::<Vec<_>>(), "not a permutation");
                assert!((total(&cost, n, &pi) - best).abs() < 1e-9, "n={n} trial={trial}");
            }
        }
    }

    #[test]
    fn sinkhorn_has_uniform_marginals_and_concentrates_at_small_reg() {
        let a = [0.0f32, 1.0, 2.0, 3.0];
        let b = [3.1f32, 0.1, 2.1, 1.1];
        let cost = sq_cost(&a, &b, 1);
        let plan = sinkhorn(&cost, 4, 4, 0.01, 200);
        for i in 0..4 {
            let row: f64 = plan[i * 4..(i + 1) * 4].iter().sum();
            let col: f64 = (0..4).map(|k| plan[k * 4 + i]).sum();
            assert!((row - 0.25).abs() < 1e-6 && (col - 0.25).abs() < 1e-3, "{row} {col}");
        }
        let pi = sample_from_plan(&plan, 4, 4, &mut stream(0, "t", 0));
        assert_eq!(pi, assignment(&cost, 4));
        assert_eq!(pi, vec![1, 3, 2, 0]);
    }
}
