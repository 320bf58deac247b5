//! Rewards of generated classifiers, evaluated and differentiated by the population engine:
//!
//! - [`ClassifierReward`] with [`ClassifierObjective::CrossEntropy`]: r(w) = −(mean cross-entropy of
//!   classifier w on a labelled minibatch), fresh seeded minibatch per call;
//! - [`ClassifierObjective::Cdc`]: r(g) = −ℓ_cdc(P, Q; g) for Meta-Detectron, where
//!   ℓ_cdc = (1/(|P|+|Q|))(Σ_P CE(g(x), f(x)) + λ Σ_Q DCE(g(x), f(x))), λ = κ/(|Q|+1), and the labels
//!   are the base classifier f's predictions (P: a minibatch of the in-distribution set, Q: all of it).
//!
//! The flow may run in other coordinates than the weights (standardized, or a VAE latent): a
//! [`WeightDecoder`] maps flow coordinates x to weights w and pulls ∇_w r back to ∇_x r.

use super::reward::Reward;
use super::temperature::optimal_scale;
use super::{check_len, TuneError};
use crate::data::{Dataset, Normalization};
use crate::engine::loss::{Objective, SampleLoss};
use crate::engine::population::{Input, Mode, Population};
use crate::engine::rng::stream;
use crate::nets::{ArchSpec, LayerSpec};
use rand::seq::index::sample as sample_indices;

/// Maps flow coordinates to weight vectors and pulls gradients back.
pub trait WeightDecoder {
    /// Dimension of the flow coordinates.
    fn dim_in(&self) -> usize;
    /// Dimension of a weight vector.
    fn dim_out(&self) -> usize;
    /// `w [B, dim_out]` for `x [B, dim_in]`.
    fn decode(&self, x: &[f32]) -> Result<Vec<f32>, TuneError>;
    /// `gwᵀ ∂w/∂x` per row, `[B, dim_in]`.
    fn vjp(&self, x: &[f32], gw: &[f32]) -> Result<Vec<f32>, TuneError>;
}

/// w = shift + scale ⊙ x (identity, or undoing a per-coordinate standardization).
#[derive(Clone, Debug)]
pub struct AffineDecoder {
    pub shift: Vec<f32>,
    pub scale: Vec<f32>,
}

impl AffineDecoder {
    pub fn identity(dim: usize) -> Self {
        AffineDecoder {
            shift: vec![0.0; dim],
            scale: vec![1.0; dim],
        }
    }
}

impl WeightDecoder for AffineDecoder {
    fn dim_in(&self) -> usize {
        self.scale.len()
    }
    fn dim_out(&self) -> usize {
        self.scale.len()
    }
    fn decode(&self, x: &[f32]) -> Result<Vec<f32>, TuneError> {
        let d = self.scale.len();
        Ok(x.iter()
            .enumerate()
            .map(|(i, &v)| self.shift[i % d] + self.scale[i % d] * v)
            .collect())
    }
    fn vjp(&self, _x: &[f32], gw: &[f32]) -> Result<Vec<f32>, TuneError> {
        let d = self.scale.len();
        Ok(gw.iter().enumerate().map(|(i, &g)| self.scale[i % d] * g).collect())
    }
}

fn engine_err(e: crate::nets::NetError) -> TuneError {
    TuneError::Reward(e.to_string())
}

/// Logits `[K, n, classes]` of K classifiers on the images `idx` of `data`, in chunks.
pub fn logits(
    spec: &ArchSpec,
    w: &[f32],
    k: usize,
    data: &Dataset,
    idx: &[usize],
    norm: &Normalization,
    threads: usize,
) -> Result<Vec<f32>, TuneError> {
    let pop = Population::new(spec, w, k, threads).map_err(engine_err)?;
    let c = spec.num_classes();
    let mut out = vec![0f32; k * idx.len() * c];
    let chunk = 500;
    for (ci, part) in idx.chunks(chunk).enumerate() {
        let x = data.to_tensor(part, norm);
        let l = pop.logits(Input::Shared(&x), part.len()).map_err(engine_err)?;
        check_len("engine logits", &l, k * part.len() * c)?;
        for m in 0..k {
            let dst = (m * idx.len() + ci * chunk) * c;
            out[dst..dst + part.len() * c].copy_from_slice(&l[m * part.len() * c..(m + 1) * part.len() * c]);
        }
    }
    Ok(out)
}

/// Arg-max class per row of `logits [rows, classes]`.
pub fn predictions(logits: &[f32], classes: usize) -> Vec<u32> {
    logits
        .chunks(classes)
        .map(|r| {
            r.iter()
                .enumerate()
                .fold(
                    (0usize, f32::NEG_INFINITY),
                    |b, (j, &v)| if v > b.1 { (j, v) } else { b },
                )
                .0 as u32
        })
        .collect()
}

/// The indices of the evaluation subset: all of `data`, or `limit` of them drawn at random with a
/// fixed seed (sorted). Not the first `limit`: folder datasets are sorted by class, so the first
/// 2,000 CIFAR-10 test images are all airplanes and automobiles.
pub fn eval_indices(len: usize, limit: Option<usize>) -> Vec<usize> {
    match limit {
        Some(n) if n < len => {
            let mut idx =
                rand::seq::index::sample(&mut crate::engine::rng::stream(0, "eval-subset", 0), len, n).into_vec();
            idx.sort_unstable();
            idx
        }
        _ => (0..len).collect(),
    }
}

/// Accuracy of each of K classifiers on `data` (all of it, or `limit` images, see [`eval_indices`]).
pub fn accuracies(
    spec: &ArchSpec,
    w: &[f32],
    k: usize,
    data: &Dataset,
    norm: &Normalization,
    limit: Option<usize>,
    threads: usize,
) -> Result<Vec<f32>, TuneError> {
    let idx = eval_indices(data.len(), limit);
    let n = idx.len();
    if n == 0 {
        return Err(TuneError::Reward(format!("{}: no images to evaluate on", data.name)));
    }
    let l = logits(spec, w, k, data, &idx, norm, threads)?;
    let c = spec.num_classes();
    let pred = predictions(&l, c);
    Ok((0..k)
        .map(|m| {
            idx.iter()
                .enumerate()
                .filter(|&(i, &j)| pred[m * n + i] == data.labels[j])
                .count() as f32
                / n as f32
        })
        .collect())
}

/// The loss −r of each of K classifiers `w [K, D]` on the images `idx` of `data`, for the
/// label objectives: the mean cross-entropy, or the temperature-calibrated one
/// ([`super::temperature`], one scale per classifier over all of `idx`). Ranks candidates the
/// way the reward does (the warm start of `tune`). `Cdc` has no labels of its own: an error.
#[allow(clippy::too_many_arguments)]
pub fn objective_losses(
    spec: &ArchSpec,
    w: &[f32],
    k: usize,
    data: &Dataset,
    idx: &[usize],
    norm: &Normalization,
    objective: &ClassifierObjective,
    threads: usize,
) -> Result<Vec<f64>, TuneError> {
    let (lo, hi) = match objective {
        ClassifierObjective::CrossEntropy => (1.0, 1.0),
        ClassifierObjective::CalibratedCrossEntropy { min_scale, max_scale } => (*min_scale as f64, *max_scale as f64),
        ClassifierObjective::Cdc { .. } => {
            return Err(TuneError::Config(
                "candidate losses need a label objective (ce or ce-calibrated)".into(),
            ))
        }
    };
    if idx.is_empty() {
        return Err(TuneError::Reward(format!("{}: no images to score on", data.name)));
    }
    let c = spec.num_classes();
    let labels: Vec<u32> = idx.iter().map(|&i| data.labels[i]).collect();
    let all = logits(spec, w, k, data, idx, norm, threads)?; // [K, n, C]
    Ok(all
        .chunks(idx.len() * c)
        .map(|l| {
            let s = if lo < hi {
                super::temperature::optimal_scale(l, &labels, c, lo, hi)
            } else {
                lo
            };
            super::temperature::scaled_ce(l, &labels, c, s).0
        })
        .collect())
}

/// What a [`ClassifierReward`] scores.
#[derive(Clone, Debug)]
pub enum ClassifierObjective {
    /// −cross-entropy to the dataset's labels.
    CrossEntropy,
    /// −cross-entropy after the best rescaling s ∈ [min_scale, max_scale] of each classifier's
    /// logits on the minibatch ([`super::temperature`]): scale-free, so flattening the output is
    /// not rewarded. The rescaling is applied to the output layer (logits are affine in it).
    CalibratedCrossEntropy { min_scale: f32, max_scale: f32 },
    /// −ℓ_cdc: `p_labels` are f's predictions on the reward dataset (P), `q` the query set with
    /// f's predictions `q_labels`, and λ = `kappa/(|Q|+1)`.
    Cdc {
        p_labels: Vec<u32>,
        q: Dataset,
        q_labels: Vec<u32>,
        kappa: f32,
    },
}

/// A reward r(w) of classifiers w = decode(x) on a dataset (see the module doc).
pub struct ClassifierReward<'a> {
    pub spec: &'a ArchSpec,
    pub data: &'a Dataset,
    pub norm: Normalization,
    pub decoder: Box<dyn WeightDecoder + 'a>,
    pub objective: ClassifierObjective,
    /// Minibatch size drawn from `data` per call (all of it when ≥ len).
    pub batch: usize,
    pub seed: u64,
    pub threads: usize,
    /// Mean accuracy of the classifiers on the last minibatch (cross-entropy objective).
    pub last_accuracy: Option<f32>,
    calls: u64,
}

impl<'a> ClassifierReward<'a> {
    pub fn new(
        spec: &'a ArchSpec,
        data: &'a Dataset,
        norm: Normalization,
        decoder: Box<dyn WeightDecoder + 'a>,
        objective: ClassifierObjective,
        batch: usize,
        seed: u64,
    ) -> Result<Self, TuneError> {
        if data.is_empty() || batch == 0 {
            return Err(TuneError::Reward(format!("{}: empty dataset or zero batch", data.name)));
        }
        if decoder.dim_out() != spec.layout().dim() {
            return Err(TuneError::Reward(format!(
                "decoder gives {} weights, architecture {} needs {}",
                decoder.dim_out(),
                spec.name,
                spec.layout().dim()
            )));
        }
        if let ClassifierObjective::CalibratedCrossEntropy { min_scale, max_scale } = objective {
            if !(min_scale >= 0.0 && max_scale > min_scale && max_scale.is_finite()) {
                return Err(TuneError::Reward(format!(
                    "calibrated CE: logit scale bounds must satisfy 0 ≤ min < max < ∞, got [{min_scale}, {max_scale}]"
                )));
            }
            output_layer(spec)?;
        }
        if let ClassifierObjective::Cdc {
            p_labels, q, q_labels, ..
        } = &objective
        {
            if p_labels.len() != data.len() || q_labels.len() != q.len() || q.is_empty() {
                return Err(TuneError::Reward(format!(
                    "CDC reward: {} P labels for {} images, {} Q labels for {} images",
                    p_labels.len(),
                    data.len(),
                    q_labels.len(),
                    q.len()
                )));
            }
        }
        Ok(ClassifierReward {
            spec,
            data,
            norm,
            decoder,
            objective,
            batch,
            seed,
            threads: rayon::current_num_threads(),
            last_accuracy: None,
            calls: 0,
        })
    }
}

impl ClassifierReward<'_> {
    /// The optimal logit scale s* of each of the K classifiers `w` on the minibatch.
    fn logit_scales(
        &self,
        w: &[f32],
        k: usize,
        images: &[f32],
        labels: &[u32],
        min_scale: f32,
        max_scale: f32,
    ) -> Result<Vec<f32>, TuneError> {
        let (n, c) = (labels.len(), self.spec.num_classes());
        let pop = Population::new(self.spec, w, k, self.threads).map_err(engine_err)?;
        let l = pop.logits(Input::Shared(images), n).map_err(engine_err)?;
        check_len("engine logits", &l, k * n * c)?;
        Ok(l.chunks(n * c)
            .map(|lm| optimal_scale(lm, labels, c, min_scale as f64, max_scale as f64) as f32)
            .collect())
    }
}

/// The flat range of the output layer's weight and bias (the logits are affine in them).
fn output_layer(spec: &ArchSpec) -> Result<std::ops::Range<usize>, TuneError> {
    let layout = spec.layout();
    let n = layout.entries.len();
    match spec.layers.last() {
        Some(LayerSpec::Linear { .. }) if n >= 2 => {
            Ok(layout.entries[n - 2].offset..layout.entries[n - 1].offset + layout.entries[n - 1].len())
        }
        _ => Err(TuneError::Reward(format!(
            "calibrated CE needs an architecture that ends in a linear layer; {} does not",
            spec.name
        ))),
    }
}

/// Multiplies the `range` of row m of `x [K, dim]` by `scales[m]`.
fn scale_rows(mut x: Vec<f32>, scales: &[f32], range: &std::ops::Range<usize>, dim: usize) -> Vec<f32> {
    for (row, &s) in x.chunks_mut(dim).zip(scales) {
        row[range.clone()].iter_mut().for_each(|v| *v *= s);
    }
    x
}

impl Reward for ClassifierReward<'_> {
    fn dim(&self) -> usize {
        self.decoder.dim_in()
    }

    fn value_and_grad(&mut self, x: &[f32]) -> Result<(Vec<f32>, Vec<f32>), TuneError> {
        let d_in = self.decoder.dim_in();
        if x.is_empty() || !x.len().is_multiple_of(d_in) {
            return Err(TuneError::Shape {
                what: "classifier reward input".into(),
                expected: d_in,
                got: x.len(),
            });
        }
        let k = x.len() / d_in;
        let w = self.decoder.decode(x)?;
        let mut rng = stream(self.seed, "reward-minibatch", self.calls);
        self.calls += 1;
        let n = self.batch.min(self.data.len());
        let idx = sample_indices(&mut rng, self.data.len(), n).into_vec();
        let mut images = self.data.to_tensor(&idx, &self.norm);
        let (labels, kinds, weights): (Vec<u32>, Option<Vec<SampleLoss>>, Option<Vec<f32>>) = match &self.objective {
            ClassifierObjective::CrossEntropy | ClassifierObjective::CalibratedCrossEntropy { .. } => {
                (idx.iter().map(|&i| self.data.labels[i]).collect(), None, None)
            }
            ClassifierObjective::Cdc {
                p_labels,
                q,
                q_labels,
                kappa,
            } => {
                let all_q: Vec<usize> = (0..q.len()).collect();
                images.extend(q.to_tensor(&all_q, &self.norm));
                let lambda = kappa / (q.len() as f32 + 1.0);
                let mut l: Vec<u32> = idx.iter().map(|&i| p_labels[i]).collect();
                l.extend_from_slice(q_labels);
                let mut kd = vec![SampleLoss::CrossEntropy; n];
                kd.extend(std::iter::repeat_n(SampleLoss::Disagreement, q.len()));
                let mut wt = vec![1.0; n];
                wt.extend(std::iter::repeat_n(lambda, q.len()));
                (l, Some(kd), Some(wt))
            }
        };
        let total = labels.len();
        // Calibrated CE: w' = w with the output layer scaled by s*, so that f(w') = s*·f(w).
        let calibration = match self.objective {
            ClassifierObjective::CalibratedCrossEntropy { min_scale, max_scale } => {
                let scales = self.logit_scales(&w, k, &images, &labels, min_scale, max_scale)?;
                Some((scales, output_layer(self.spec)?))
            }
            _ => None,
        };
        let w = match &calibration {
            Some((scales, out)) => scale_rows(w, scales, out, self.spec.layout().dim()),
            None => w,
        };
        let pop = Population::new(self.spec, &w, k, self.threads).map_err(engine_err)?;
        let obj = Objective::Classify {
            labels: &labels,
            kinds: kinds.as_deref(),
            weights: weights.as_deref(),
        };
        let mut g = pop
            .gradient(Input::Shared(&images), total, &obj, Mode::Eval, false)
            .map_err(engine_err)?;
        check_len("engine loss", &g.loss, k)?;
        check_len("engine weight gradient", &g.dw, w.len())?;
        if let Some((scales, out)) = calibration {
            // envelope theorem: ∂CE(s* f(w))/∂w at fixed s*; ∂w'/∂w = s* on the output layer
            g.dw = scale_rows(g.dw, &scales, &out, self.spec.layout().dim());
        }
        if !matches!(self.objective, ClassifierObjective::Cdc { .. }) {
            let c = self.spec.num_classes();
            let pred = predictions(&g.logits, c);
            let hits = pred.iter().enumerate().filter(|(j, &p)| p == labels[j % total]).count();
            self.last_accuracy = Some(hits as f32 / (k * total) as f32);
        }
        let neg: Vec<f32> = g.dw.iter().map(|v| -v).collect();
        let gx = self.decoder.vjp(x, &neg)?;
        Ok((g.loss.iter().map(|l| -l).collect(), gx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nets::Activation;
    use rand::Rng as _;

    /// The evaluation subset spans a class-sorted set, is fixed and sorted, and `None` (or a limit
    /// above the length) takes everything.
    #[test]
    fn eval_subset_is_random_not_the_first_images() {
        let idx = eval_indices(10_000, Some(2000));
        assert_eq!(idx.len(), 2000);
        assert_eq!(idx, eval_indices(10_000, Some(2000)));
        assert!(idx.windows(2).all(|w| w[0] < w[1]));
        // class-sorted labels (1,000 per class): every class is drawn, about 200 each
        let mut per_class = [0usize; 10];
        idx.iter().for_each(|&i| per_class[i / 1000] += 1);
        assert!(per_class.iter().all(|&c| (150..250).contains(&c)), "{per_class:?}");
        assert_eq!(eval_indices(5, None), vec![0, 1, 2, 3, 4]);
        assert_eq!(eval_indices(5, Some(9)), vec![0, 1, 2, 3, 4]);
    }

    fn tiny() -> (ArchSpec, Dataset) {
        let spec = ArchSpec::mlp([3, 4, 4], &[5], 10, Activation::Tanh);
        let mut rng = stream(0, "tiny-data", 0);
        let n = 40;
        let images: Vec<u8> = (0..n * 48).map(|_| rng.gen()).collect();
        let labels: Vec<u32> = (0..n).map(|i| (i % 10) as u32).collect();
        let names = (0..10).map(|c| c.to_string()).collect();
        (spec, Dataset::new("tiny", images, labels, [3, 4, 4], names).unwrap())
    }

    fn fd_check(r: &mut ClassifierReward<'_>, x: &[f32]) {
        let (_, g) = r.value_and_grad(x).unwrap();
        for j in [0usize, 7, 100, 250, 300] {
            let (mut xp, mut xm) = (x.to_vec(), x.to_vec());
            xp[j] += 1e-2;
            xm[j] -= 1e-2;
            let fd = (r.value_and_grad(&xp).unwrap().0[0] as f64 - r.value_and_grad(&xm).unwrap().0[0] as f64) / 2e-2;
            assert!(
                (fd - g[j] as f64).abs() < 2e-3 + 2e-2 * fd.abs(),
                "coordinate {j}: fd {fd} vs {}",
                g[j]
            );
        }
    }

    /// ∇_x r through the engine and a non-trivial decoder, CE and CDC, against central differences.
    #[test]
    fn classifier_rewards_match_finite_differences() {
        let (spec, data) = tiny();
        let d = spec.layout().dim();
        let mut rng = stream(1, "tiny-x", 0);
        let x: Vec<f32> = (0..d).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let dec = AffineDecoder {
            shift: (0..d).map(|i| (i % 3) as f32 * 0.01).collect(),
            scale: (0..d).map(|i| 0.2 + (i % 5) as f32 * 0.05).collect(),
        };
        let norm = Normalization::IDENTITY;
        let mut ce = ClassifierReward::new(
            &spec,
            &data,
            norm,
            Box::new(dec.clone()),
            ClassifierObjective::CrossEntropy,
            1000,
            0,
        )
        .unwrap();
        fd_check(&mut ce, &x);
        assert!(ce.last_accuracy.is_some());
        let q = data.subset(&[0, 3, 5, 9, 11]);
        let cdc = ClassifierObjective::Cdc {
            p_labels: data.labels.iter().map(|l| (l + 1) % 10).collect(),
            q_labels: vec![1, 2, 3, 4, 5],
            q,
            kappa: 2.0,
        };
        let mut r = ClassifierReward::new(&spec, &data, norm, Box::new(dec.clone()), cdc, 1000, 0).unwrap();
        fd_check(&mut r, &x);
        let calibrated = ClassifierObjective::CalibratedCrossEntropy {
            min_scale: 0.01,
            max_scale: 100.0,
        };
        let mut r = ClassifierReward::new(&spec, &data, norm, Box::new(dec), calibrated, 1000, 0).unwrap();
        fd_check(&mut r, &x);
    }

    /// The calibrated CE reward ignores the scale of the output layer and is never below the
    /// uncalibrated one.
    #[test]
    fn the_calibrated_reward_is_scale_free() {
        let (spec, data) = tiny();
        let d = spec.layout().dim();
        let mut rng = stream(3, "tiny-x", 0);
        let w: Vec<f32> = (0..d).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let out = output_layer(&spec).unwrap();
        assert_eq!(out.end, d);
        let mut w2 = w.clone();
        w2[out.clone()].iter_mut().for_each(|v| *v *= 3.0);
        let norm = Normalization::IDENTITY;
        let objective = ClassifierObjective::CalibratedCrossEntropy {
            min_scale: 0.01,
            max_scale: 100.0,
        };
        let reward = |o: ClassifierObjective, w: &[f32]| {
            let dec = Box::new(AffineDecoder::identity(d));
            let mut r = ClassifierReward::new(&spec, &data, norm, dec, o, 1000, 0).unwrap();
            r.value_and_grad(w).unwrap().0[0]
        };
        let (a, b) = (reward(objective.clone(), &w), reward(objective.clone(), &w2));
        assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        let plain = reward(ClassifierObjective::CrossEntropy, &w);
        let plain3 = reward(ClassifierObjective::CrossEntropy, &w2);
        assert!(
            a >= plain.max(plain3) - 1e-5,
            "calibrated {a}, plain {plain} / {plain3}"
        );
        assert!((plain - plain3).abs() > 1e-2, "the plain CE must depend on the scale");
        let conv = ArchSpec::cnn3(3, 10, Activation::Gelu);
        assert!(output_layer(&conv).is_ok());
        let inverted = ClassifierObjective::CalibratedCrossEntropy {
            min_scale: 1.0,
            max_scale: 0.5,
        };
        let dec = Box::new(AffineDecoder::identity(d));
        let err = ClassifierReward::new(&spec, &data, norm, dec, inverted, 10, 0)
            .err()
            .unwrap();
        assert!(err.to_string().contains("logit scale bounds"), "{err}");
    }

    /// The candidate losses of the warm start equal −(the reward) on a minibatch holding every
    /// image, for both label objectives, and for two classifiers at once.
    #[test]
    fn objective_losses_are_the_rewards_on_all_images() {
        let (spec, data) = tiny();
        let d = spec.layout().dim();
        let mut rng = stream(4, "tiny-x", 0);
        let w: Vec<f32> = (0..2 * d).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let norm = Normalization::IDENTITY;
        let all: Vec<usize> = (0..data.len()).collect();
        let calibrated = ClassifierObjective::CalibratedCrossEntropy {
            min_scale: 0.01,
            max_scale: 100.0,
        };
        for objective in [ClassifierObjective::CrossEntropy, calibrated] {
            let losses = objective_losses(&spec, &w, 2, &data, &all, &norm, &objective, 1).unwrap();
            let dec = Box::new(AffineDecoder::identity(d));
            let mut r = ClassifierReward::new(&spec, &data, norm, dec, objective.clone(), 1000, 0).unwrap();
            let (vals, _) = r.value_and_grad(&w).unwrap();
            for (l, v) in losses.iter().zip(&vals) {
                assert!((l + *v as f64).abs() < 1e-4, "{objective:?}: loss {l} vs reward {v}");
            }
            assert!((losses[0] - losses[1]).abs() > 1e-3, "two different classifiers");
        }
        let cdc = ClassifierObjective::Cdc {
            p_labels: data.labels.clone(),
            q: data.subset(&[0, 1]),
            q_labels: vec![0, 1],
            kappa: 1.0,
        };
        assert!(objective_losses(&spec, &w, 2, &data, &all, &norm, &cdc, 1).is_err());
        assert!(objective_losses(&spec, &w, 2, &data, &[], &norm, &ClassifierObjective::CrossEntropy, 1).is_err());
    }

    /// Adjoint Matching with the CE reward on a velocity MLP over the tiny classifier's weights
    /// raises the reward of ODE samples.
    #[test]
    fn adjoint_matching_raises_the_classifier_reward() {
        use crate::flow::{VelocityConfig, VelocityMlp};
        use crate::tune::adjoint::{AdjointMatching, AmConfig};
        use crate::tune::field::Whitening;
        let (spec, data) = tiny();
        let d = spec.layout().dim();
        let cfg = VelocityConfig {
            dim: d,
            ctx_dim: 0,
            time_freqs: 2,
            width: 64,
            depth: 1,
            residual: false,
            param: crate::flow::velocity::Parameterization::Velocity,
        };
        let base = VelocityMlp::new(cfg, 1, &mut stream(0, "tiny-velocity", 0));
        let dec = AffineDecoder::identity(d);
        let norm = Normalization::IDENTITY;
        let mut r = ClassifierReward::new(
            &spec,
            &data,
            norm,
            Box::new(dec),
            ClassifierObjective::CrossEntropy,
            1000,
            0,
        )
        .unwrap();
        let am_cfg = AmConfig {
            steps: 10,
            batch: 8,
            reward_scale: 2000.0,
            lr: 1e-2,
            ..AmConfig::default()
        };
        // Generated weights concentrate around w* (x = w* + 0.1 z), as a trained meta-model's do.
        let mut rng = stream(2, "tiny-center", 0);
        let whiten = Whitening {
            alpha: (0..d).map(|_| rng.gen_range(-0.5..0.5)).collect(),
            beta: vec![0.1; d],
        };
        let mut am = AdjointMatching::new(&base, base.clone(), whiten, am_cfg).unwrap();
        let mean_r = |x: &[f32], r: &mut ClassifierReward<'_>| -> f32 {
            let v = r.value_and_grad(x).unwrap().0;
            v.iter().sum::<f32>() / v.len() as f32
        };
        let before = mean_r(&am.sample_ode(64, &[], 10, 4, true).unwrap(), &mut r);
        for i in 0..100 {
            let s = am.step(&mut r, &[]).unwrap();
            if i % 10 == 0 {
                eprintln!(
                    "{i}: reward {} loss {} clipped {} grad {}",
                    s.reward_mean, s.loss, s.clipped, s.grad_norm
                );
            }
        }
        let after = mean_r(&am.sample_ode(64, &[], 10, 4, false).unwrap(), &mut r);
        eprintln!("mean reward {before} → {after}");
        assert!(after > before + 0.2, "{before} → {after}");
    }
}
