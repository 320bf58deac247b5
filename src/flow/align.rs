//! Permutation alignment of a zoo's networks before meta-model training: Git Re-Basin weight
//! matching (Ainsworth, Hayase & Srinivasa 2023, "Git Re-Basin: Merging models modulo
//! permutation symmetries", Algorithm 1).
//!
//! Permuting the output units of a hidden layer, together with the matching inputs of the next
//! layer, leaves the network's function unchanged, so a zoo holds many weight vectors per
//! function. Weight matching moves every model B of a group to the permutation of it nearest to
//! a reference A (the group's first target), maximizing Σ_ℓ ⟨W_A^ℓ, P_ℓ W_B^ℓ P_{ℓ−1}ᵀ⟩ by
//! coordinate descent: for one layer ℓ at a time, with the other permutations fixed, the best
//! P_ℓ solves a linear assignment problem on `S[i, j]` = the inner product of everything that
//! touches unit i of A with everything that touches unit j of B (incoming weights, bias,
//! outgoing weights), solved exactly by [`super::coupling::assignment`]; sweeps repeat until no
//! layer changes. A step is taken only when it raises ⟨A, B⟩, so ‖A − B‖ never grows (the norms
//! are permutation invariant).
//!
//! Permutable units ([`unit_groups`]): the outputs of every conv or linear layer but the last;
//! max-pooling, activations and dropout act per channel, and a flatten `[C, H, W]` → `[C·H·W]`
//! keeps channel c in the contiguous block `c·H·W..(c+1)·H·W` of the next linear layer's inputs.
//! The architectures have no normalization layers, so a unit owns its weight row, its bias and
//! its columns of the next layer.

use super::coupling::assignment;
use super::train::TargetGroup;
use super::FlowError;
use crate::nets::{ArchSpec, LayerSpec};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Permutation alignment of the targets before training.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AlignMode {
    /// The checkpoints as trained.
    #[default]
    None,
    /// Git Re-Basin weight matching of every target to its group's first target.
    WeightMatching,
}

/// Most coordinate-descent sweeps per model (a sweep visits every permutable layer once).
pub const MAX_SWEEPS: usize = 50;

/// One hidden layer with permutable units inside a flat weight vector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnitGroup {
    /// Number of units U.
    pub units: usize,
    /// Offset of the producer's weight `[U, fan_in]` (row u: unit u's incoming weights; a conv
    /// weight `[U, C, k, k]` has fan_in = C·k·k).
    pub w_in: usize,
    pub fan_in: usize,
    /// Offset of the producer's bias `[U]`.
    pub bias: usize,
    /// Offset of the consumer's weight `[rows, U·block]`: unit u owns the columns
    /// `u·block..(u+1)·block` of every row (block = k·k for a conv, H·W after a flatten, 1 for a
    /// linear after a linear).
    pub w_out: usize,
    pub rows: usize,
    pub block: usize,
}

impl UnitGroup {
    /// Values touching one unit: incoming row, bias, outgoing blocks.
    fn feature_len(&self) -> usize {
        self.fan_in + 1 + self.rows * self.block
    }

    /// Features `[U, feature_len]` of every unit of `w` (f64).
    fn features(&self, w: &[f32]) -> Vec<f64> {
        let f = self.feature_len();
        let mut out = Vec::with_capacity(self.units * f);
        let cols = self.units * self.block;
        for u in 0..self.units {
            let row = &w[self.w_in + u * self.fan_in..][..self.fan_in];
            out.extend(row.iter().map(|&x| x as f64));
            out.push(w[self.bias + u] as f64);
            for r in 0..self.rows {
                let blk = &w[self.w_out + r * cols + u * self.block..][..self.block];
                out.extend(blk.iter().map(|&x| x as f64));
            }
        }
        out
    }

    /// Reorders the units of `w` in place: new unit i is old unit `sigma[i]`.
    pub fn permute(&self, w: &mut [f32], sigma: &[usize]) {
        let gather = |w: &mut [f32], start: usize, len: usize| {
            let old = w[start..start + self.units * len].to_vec();
            for (i, &s) in sigma.iter().enumerate() {
                w[start + i * len..][..len].copy_from_slice(&old[s * len..][..len]);
            }
        };
        gather(w, self.w_in, self.fan_in);
        gather(w, self.bias, 1);
        let cols = self.units * self.block;
        for r in 0..self.rows {
            gather(w, self.w_out + r * cols, self.block);
        }
    }
}

/// A conv or linear layer: (layer index, output units, input values per output unit).
fn param_layers(spec: &ArchSpec) -> Vec<(usize, usize, usize)> {
    spec.layers
        .iter()
        .enumerate()
        .filter_map(|(i, l)| match *l {
            LayerSpec::Conv2d {
                in_ch, out_ch, kernel, ..
            } => Some((i, out_ch, in_ch * kernel * kernel)),
            LayerSpec::Linear { in_f, out_f } => Some((i, out_f, in_f)),
            _ => None,
        })
        .collect()
}

/// The permutable hidden layers of `spec`, in order (empty for a single-layer network).
pub fn unit_groups(spec: &ArchSpec) -> Result<Vec<UnitGroup>, FlowError> {
    spec.shapes().map_err(|e| FlowError::Invalid(e.to_string()))?;
    let layout = spec.layout();
    let offset = |i: usize, what: &str| {
        layout
            .get(&format!("module_list.{i}.{what}"))
            .map(|e| e.offset)
            .ok_or_else(|| FlowError::Invalid(format!("{}: layer {i} has no {what}", spec.name)))
    };
    let params = param_layers(spec);
    let mut groups = Vec::new();
    for pair in params.windows(2) {
        let ((p, units, fan_in), (q, rows, in_len)) = (pair[0], pair[1]);
        if units == 0 || in_len % units != 0 {
            return Err(FlowError::Invalid(format!(
                "{}: layer {q} reads {in_len} inputs, not blocks of layer {p}'s {units} units",
                spec.name
            )));
        }
        groups.push(UnitGroup {
            units,
            w_in: offset(p, "weight")?,
            fan_in,
            bias: offset(p, "bias")?,
            w_out: offset(q, "weight")?,
            rows,
            block: in_len / units,
        });
    }
    Ok(groups)
}

/// Euclidean distance ‖a − b‖ (f64).
pub fn l2(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| ((x - y) as f64).powi(2))
        .sum::<f64>()
        .sqrt()
}

/// Weight matching of `w` to `reference` in place (both `[D]` of the architecture of
/// `groups`); returns the number of sweeps run (the last one changed nothing, or
/// [`MAX_SWEEPS`] were reached).
pub fn weight_matching(groups: &[UnitGroup], reference: &[f32], w: &mut [f32]) -> usize {
    let ref_features: Vec<Vec<f64>> = groups.iter().map(|g| g.features(reference)).collect();
    let mut sweeps = 0;
    while sweeps < MAX_SWEEPS {
        sweeps += 1;
        let mut changed = false;
        for (g, fa) in groups.iter().zip(&ref_features) {
            let (n, f) = (g.units, g.feature_len());
            let fb = g.features(w);
            // S[i, j] = ⟨features of A's unit i, features of B's unit j⟩; cost = −S.
            let mut s = vec![0.0f64; n * n];
            for i in 0..n {
                let a = &fa[i * f..][..f];
                for j in 0..n {
                    s[i * n + j] = a.iter().zip(&fb[j * f..][..f]).map(|(x, y)| x * y).sum();
                }
            }
            let cost: Vec<f64> = s.iter().map(|v| -v).collect();
            let sigma = assignment(&cost, n);
            let now: f64 = (0..n).map(|i| s[i * n + i]).sum();
            let best: f64 = (0..n).map(|i| s[i * n + sigma[i]]).sum();
            // Only a strict gain moves: ties (equal units) cannot cycle.
            if best > now + 1e-9 * (1.0 + now.abs()) {
                g.permute(w, &sigma);
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    sweeps
}

/// What alignment did to one group.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GroupAlignment {
    pub name: String,
    /// Number of targets (the reference included).
    pub targets: usize,
    /// Mean ‖w − w_ref‖ over the targets other than the reference, before and after.
    pub mean_l2_before: f64,
    pub mean_l2_after: f64,
    /// Most coordinate-descent sweeps any target needed.
    pub max_sweeps: usize,
}

/// What alignment did to all groups (stored in the training summary).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AlignSummary {
    pub method: AlignMode,
    /// Mean ‖w − w_ref‖ over every non-reference target of every group, before and after.
    pub mean_l2_before: f64,
    pub mean_l2_after: f64,
    pub seconds: f64,
    pub groups: Vec<GroupAlignment>,
}

/// Aligns every group's targets `[M, D]` of architecture `spec` to the group's first target
/// (`mode` None: nothing to do, `Ok(None)`). Targets are processed in parallel on the rayon pool.
pub fn align_groups(
    spec: &ArchSpec,
    groups: &mut [TargetGroup],
    mode: AlignMode,
) -> Result<Option<AlignSummary>, FlowError> {
    if mode == AlignMode::None {
        return Ok(None);
    }
    let start = std::time::Instant::now();
    let units = unit_groups(spec)?;
    let d = spec.layout().dim();
    let mut summary = AlignSummary {
        method: mode,
        ..AlignSummary::default()
    };
    let (mut before_sum, mut after_sum, mut count) = (0.0f64, 0.0f64, 0usize);
    for g in groups.iter_mut() {
        if d == 0 || g.targets.is_empty() || g.targets.len() % d != 0 {
            return Err(FlowError::Shape(format!(
                "align group {}: {} target values are not rows of D={d}",
                g.name,
                g.targets.len()
            )));
        }
        let (reference, rest) = g.targets.split_at_mut(d);
        let stats: Vec<(f64, f64, usize)> = rest
            .par_chunks_mut(d)
            .map(|w| {
                let before = l2(reference, w);
                let sweeps = weight_matching(&units, reference, w);
                (before, l2(reference, w), sweeps)
            })
            .collect();
        let k = stats.len();
        let mean = |f: fn(&(f64, f64, usize)) -> f64| {
            if k == 0 {
                0.0
            } else {
                stats.iter().map(f).sum::<f64>() / k as f64
            }
        };
        before_sum += stats.iter().map(|s| s.0).sum::<f64>();
        after_sum += stats.iter().map(|s| s.1).sum::<f64>();
        count += k;
        summary.groups.push(GroupAlignment {
            name: g.name.clone(),
            targets: k + 1,
            mean_l2_before: mean(|s| s.0),
            mean_l2_after: mean(|s| s.1),
            max_sweeps: stats.iter().map(|s| s.2).max().unwrap_or(0),
        });
    }
    if count > 0 {
        summary.mean_l2_before = before_sum / count as f64;
        summary.mean_l2_after = after_sum / count as f64;
    }
    summary.seconds = start.elapsed().as_secs_f64();
    Ok(Some(summary))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::population::{Input, Population};
    use crate::engine::rng::{stream, Rng};
    use crate::flow::coupling::assignment;
    use crate::nets::init::InitScheme;
    use crate::nets::Activation;
    use rand::seq::SliceRandom;
    use rand::Rng as _;

    fn random_net(spec: &ArchSpec, rng: &mut Rng) -> Vec<f32> {
        let layout = spec.layout();
        let mut w = vec![0.0f32; layout.dim()];
        InitScheme::TorchDefault.fill(&layout, &mut w, rng);
        // nonzero biases, so the bias part of the permutation is exercised
        for e in layout.entries.iter().filter(|e| e.name.ends_with("bias")) {
            for v in &mut w[e.range()] {
                *v = rng.gen_range(-0.5..0.5);
            }
        }
        w
    }

    fn random_permutation(n: usize, rng: &mut Rng) -> Vec<usize> {
        let mut p: Vec<usize> = (0..n).collect();
        p.shuffle(rng);
        p
    }

    fn scramble(groups: &[UnitGroup], w: &mut [f32], rng: &mut Rng) {
        for g in groups {
            let p = random_permutation(g.units, rng);
            g.permute(w, &p);
        }
    }

    fn archs() -> Vec<ArchSpec> {
        vec![
            ArchSpec::cnn3(3, 10, Activation::Relu),
            // its 36 flat features fit 28×28 inputs
            ArchSpec {
                input: [1, 28, 28],
                ..ArchSpec::small_cnn(1, 10, Activation::Gelu)
            },
            ArchSpec::mlp([1, 8, 8], &[12, 7], 5, Activation::Tanh),
        ]
    }

    #[test]
    fn cnn3_groups_follow_the_flatten() {
        let g = unit_groups(&ArchSpec::cnn3(3, 10, Activation::Relu)).unwrap();
        let shape: Vec<(usize, usize, usize, usize)> = g.iter().map(|g| (g.units, g.fan_in, g.rows, g.block)).collect();
        assert_eq!(
            shape,
            vec![(16, 27, 32, 9), (32, 144, 15, 9), (15, 288, 20, 4), (20, 60, 10, 1)]
        );
    }

    #[test]
    fn permuted_network_computes_the_same_function() {
        for (s, spec) in archs().iter().enumerate() {
            let groups = unit_groups(spec).unwrap();
            let mut rng = stream(7, "align-fn", s as u64);
            let w = random_net(spec, &mut rng);
            let mut p = w.clone();
            scramble(&groups, &mut p, &mut rng);
            assert!(l2(&w, &p) > 1e-2, "{}: the permutation moved nothing", spec.name);
            let n = 4;
            let x: Vec<f32> = (0..n * spec.input_len()).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let both: Vec<f32> = w.iter().chain(&p).copied().collect();
            let logits = Population::new(spec, &both, 2, 1)
                .unwrap()
                .logits(Input::Shared(&x), n)
                .unwrap();
            let (a, b) = logits.split_at(logits.len() / 2);
            for (u, v) in a.iter().zip(b) {
                assert!((u - v).abs() < 1e-4 * (1.0 + u.abs()), "{}: {u} vs {v}", spec.name);
            }
        }
    }

    #[test]
    fn weight_matching_recovers_a_known_permutation() {
        for (s, spec) in archs().iter().enumerate() {
            let groups = unit_groups(spec).unwrap();
            let mut rng = stream(11, "align-recover", s as u64);
            let w = random_net(spec, &mut rng);
            let mut p = w.clone();
            scramble(&groups, &mut p, &mut rng);
            assert!(l2(&w, &p) > 1e-2);
            weight_matching(&groups, &w, &mut p);
            assert_eq!(p, w, "{}: aligned copy differs from the original", spec.name);
        }
    }

    #[test]
    fn alignment_never_moves_away_from_the_reference() {
        let spec = ArchSpec::cnn3(1, 10, Activation::Relu);
        let mut rng = stream(3, "align-mono", 0);
        let targets: Vec<f32> = (0..6).flat_map(|_| random_net(&spec, &mut rng)).collect();
        let d = spec.layout().dim();
        let mut groups = vec![TargetGroup {
            targets: targets.clone(),
            items: Vec::new(),
            name: "g".into(),
            normalization: None,
        }];
        let s = align_groups(&spec, &mut groups, AlignMode::WeightMatching)
            .unwrap()
            .unwrap();
        let aligned = &groups[0].targets;
        assert_eq!(&aligned[..d], &targets[..d], "the reference stays");
        for m in 1..6 {
            let before = l2(&targets[..d], &targets[m * d..(m + 1) * d]);
            let after = l2(&aligned[..d], &aligned[m * d..(m + 1) * d]);
            assert!(after <= before + 1e-9, "model {m}: {after} > {before}");
        }
        assert!(s.mean_l2_after < s.mean_l2_before, "{s:?}");
        assert_eq!(s.groups[0].targets, 6);
        // independent random networks: matching finds a strictly closer permutation
        assert!(s.mean_l2_after < 0.99 * s.mean_l2_before, "{s:?}");
        let none = align_groups(&spec, &mut groups, AlignMode::None).unwrap();
        assert!(none.is_none());
        let mut bad = vec![TargetGroup {
            targets: vec![0.0; d + 1],
            items: Vec::new(),
            name: "bad".into(),
            normalization: None,
        }];
        assert!(align_groups(&spec, &mut bad, AlignMode::WeightMatching).is_err());
    }

    /// The solver minimizes; weight matching hands it −S (signed, with ties at zero).
    #[test]
    fn maximizing_assignment_matches_brute_force() {
        use crate::flow::coupling::tests::{permutations, total};
        let mut rng = stream(5, "align-lap", 0);
        for n in 1..=6 {
            let perms = permutations(n);
            for trial in 0..10 {
                let s: Vec<f64> = (0..n * n)
                    .map(|_| if trial == 0 { 0.0 } else { rng.gen_range(-3.0..3.0) })
                    .collect();
                let cost: Vec<f64> = s.iter().map(|v| -v).collect();
                let sigma = assignment(&cost, n);
                let best = perms.iter().map(|p| total(&s, n, p)).fold(f64::NEG_INFINITY, f64::max);
                assert!(
                    (total(&s, n, &sigma) - best).abs() < 1e-9,
                    "n={n}: {} vs {best}",
                    total(&s, n, &sigma)
                );
            }
        }
    }
}
