//! Training of the constrained disagreement classifiers (CDCs): the per-epoch batch plans of the
//! two budgets, the batch assembly for a population of runs, and one CDC round.
//!
//! Official budget (rgklab/detectron's `PQSampler` and `alpha`): with `count` Q samples still
//! agreed on, every batch holds `batch − count` P images (a fresh permutation of P each epoch,
//! the last incomplete batch dropped) plus **all** `count` remaining Q samples, so an epoch has
//! `⌊|P| / (batch − count)⌋` steps and `λ = 1/(steps·count + 1)`, recomputed for each CDC.
//! Fast budget: `batch` P images per step (the last batch may be short) and the remaining Q
//! samples spread evenly over the epoch's steps, `λ = κ/(|Q|+1)` with the original |Q|.

use super::{BaseModel, Budget, DetectronConfig, Images, RunState};
use crate::engine::loss::{softmax, SampleLoss};
use crate::engine::rng::{derive_seed, stream};
use crate::engine::{Input, Mode, Objective, OptimConfig, Optimizer, Population};
use crate::shift::ShiftError;
use rand::seq::SliceRandom;

/// One step of one run: P indices and Q indices (into the run's query set).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Step {
    pub p: Vec<usize>,
    pub q: Vec<usize>,
}

/// Steps per epoch of a CDC for `np` P images and `count` remaining Q samples.
pub(crate) fn steps_per_epoch(cfg: &DetectronConfig, np: usize, count: usize) -> Result<usize, ShiftError> {
    match cfg.budget {
        Budget::Official => {
            let part = cfg.batch_size.checked_sub(count).filter(|&v| v > 0).ok_or_else(|| {
                ShiftError::Invalid(format!(
                    "the official batch of {} holds every remaining query sample: |Q| = {count} must be below it",
                    cfg.batch_size
                ))
            })?;
            match np / part {
                0 => Err(ShiftError::Invalid(format!(
                    "|P| = {np} is smaller than one batch's P part ({part} = {} − {count})",
                    cfg.batch_size
                ))),
                s => Ok(s),
            }
        }
        Budget::Fast => Ok(np.div_ceil(cfg.batch_size)),
    }
}

/// λ of a CDC trained with `count` remaining Q samples out of `nq` (see the module doc).
pub(crate) fn lambda(cfg: &DetectronConfig, np: usize, nq: usize, count: usize) -> Result<f32, ShiftError> {
    Ok(match cfg.budget {
        Budget::Official => 1.0 / (steps_per_epoch(cfg, np, count)? as f32 * count as f32 + 1.0),
        Budget::Fast => cfg.kappa / (nq as f32 + 1.0),
    })
}

/// The steps of one epoch: `p_order` a permutation of P, `q_order` the remaining Q samples.
pub(crate) fn epoch_plan(cfg: &DetectronConfig, p_order: &[usize], q_order: &[usize]) -> Result<Vec<Step>, ShiftError> {
    let (np, count) = (p_order.len(), q_order.len());
    let steps = steps_per_epoch(cfg, np, count)?;
    Ok(match cfg.budget {
        Budget::Official => {
            let part = cfg.batch_size - count;
            (0..steps)
                .map(|t| Step {
                    p: p_order[t * part..(t + 1) * part].to_vec(),
                    q: q_order.to_vec(),
                })
                .collect()
        }
        Budget::Fast => (0..steps)
            .map(|t| Step {
                p: p_order[t * cfg.batch_size..((t + 1) * cfg.batch_size).min(np)].to_vec(),
                q: q_order[t * count / steps..(t + 1) * count / steps].to_vec(),
            })
            .collect(),
    })
}

/// One training batch of K runs, `N = p_slots + q_slots` rows per model.
#[derive(Debug)]
pub(crate) struct Batch {
    /// `[K, N, C, H, W]`.
    pub x: Vec<f32>,
    /// `[K·N]`.
    pub labels: Vec<u32>,
    /// `[N]`: cross-entropy for the P slots, DCE for the Q slots.
    pub kinds: Vec<SampleLoss>,
    /// `[K·N]`: `N/n_k` on P, `λ_k·N/n_k` on Q, 0 on padding, so the engine's `(1/N) Σ w ℓ`
    /// equals `(1/n_k)(Σ_P CE + λ_k Σ_Q DCE)` with n_k the real batch size of run k.
    pub weights: Vec<f32>,
    pub n: usize,
}

/// Assembles a batch: run k's step `steps[k]` (P indices into `p`, Q indices into `q[k]`), the
/// P part in rows `0..p_slots`, the Q part in rows `p_slots..p_slots + q_slots`; `lambda[k]`
/// weighs run k's Q part. A run without a step (`None`) gets an all-padding batch.
#[allow(clippy::too_many_arguments)]
pub(crate) fn assemble_batch(
    len: usize,
    p: &Images<'_>,
    p_labels: &[u32],
    q: &[&[f32]],
    q_labels: &[&[u32]],
    steps: &[Option<&Step>],
    p_slots: usize,
    q_slots: usize,
    lambda: &[f32],
) -> Batch {
    let k = q.len();
    let n = p_slots + q_slots;
    let mut x = vec![0f32; k * n * len];
    let mut labels = vec![0u32; k * n];
    let mut weights = vec![0f32; k * n];
    let mut kinds = vec![SampleLoss::CrossEntropy; p_slots];
    kinds.extend(std::iter::repeat_n(SampleLoss::Disagreement, q_slots));
    for (j, step) in steps.iter().enumerate() {
        let Some(step) = step else { continue };
        let real = (step.p.len() + step.q.len()) as f32;
        let row0 = j * n;
        p.gather(&step.p, &mut x[row0 * len..(row0 + step.p.len()) * len]);
        for (r, &i) in step.p.iter().enumerate() {
            labels[row0 + r] = p_labels[i];
            weights[row0 + r] = n as f32 / real;
        }
        for (s, &i) in step.q.iter().enumerate() {
            let row = row0 + p_slots + s;
            x[row * len..(row + 1) * len].copy_from_slice(&q[j][i * len..(i + 1) * len]);
            labels[row] = q_labels[j][i];
            weights[row] = lambda[j] * n as f32 / real;
        }
    }
    Batch {
        x,
        labels,
        kinds,
        weights,
        n,
    }
}

/// Trains the `round`-th CDC of each active run (one population, one Adam per run, each CDC a
/// fresh copy of f), then records its softmax on the run's whole Q and drops the Q samples it
/// rejects.
pub(crate) fn train_round(
    base: &BaseModel<'_>,
    p: &Images<'_>,
    p_labels: &[u32],
    runs: &mut [RunState<'_>],
    active: &[usize],
    round: usize,
    cfg: &DetectronConfig,
) -> Result<(), ShiftError> {
    let (spec, len, classes) = (base.spec, base.spec.input_len(), base.spec.num_classes());
    let np = p_labels.len();
    let k = active.len();
    let d = base.weights.len();
    let mut w: Vec<f32> = base.weights.repeat(k); // [K, D]: every CDC starts as f
    let mut opts: Vec<Optimizer> = (0..k)
        .map(|_| Optimizer::new(OptimConfig::adam(cfg.lr, 0.0), d))
        .collect();
    let mut lambdas = Vec::with_capacity(k);
    for &j in active {
        let r = &runs[j];
        lambdas.push(lambda(cfg, np, r.nq, r.remaining.len())?);
    }
    let q_sets: Vec<&[f32]> = active.iter().map(|&j| runs[j].q).collect();
    let q_labels: Vec<&[u32]> = active.iter().map(|&j| runs[j].q_labels.as_slice()).collect();
    let mut counters = vec![0u64; k];
    for epoch in 0..cfg.epochs {
        let tag = (round * cfg.epochs + epoch) as u64;
        let mut plans = Vec::with_capacity(k);
        for &j in active {
            let mut po: Vec<usize> = (0..np).collect();
            po.shuffle(&mut stream(runs[j].seed, "detectron-p-order", tag));
            let mut qo = runs[j].remaining.clone();
            qo.shuffle(&mut stream(runs[j].seed, "detectron-q-order", tag));
            plans.push(epoch_plan(cfg, &po, &qo)?);
        }
        let steps = plans.iter().map(Vec::len).max().unwrap_or(0);
        let slots = |f: fn(&Step) -> usize| plans.iter().flatten().map(f).max().unwrap_or(0);
        let (mut p_slots, mut q_slots) = (slots(|s| s.p.len()), slots(|s| s.q.len()));
        if cfg.budget == Budget::Fast {
            // Slots that bound every run's step whatever runs train beside it, so a run's batches
            // (and so its result, bit for bit) do not depend on the population it trains in.
            let per_epoch = np.div_ceil(cfg.batch_size).max(1);
            p_slots = p_slots.max(cfg.batch_size.min(np));
            q_slots = q_slots.max(
                active
                    .iter()
                    .map(|&j| runs[j].nq.div_ceil(per_epoch))
                    .max()
                    .unwrap_or(0),
            );
        }
        for t in 0..steps {
            let step: Vec<Option<&Step>> = plans.iter().map(|pl| pl.get(t)).collect();
            let batch = assemble_batch(len, p, p_labels, &q_sets, &q_labels, &step, p_slots, q_slots, &lambdas);
            let objective = crate::engine::Objective::Classify {
                labels: &batch.labels,
                kinds: Some(&batch.kinds),
                weights: Some(&batch.weights),
            };
            let seeds: Vec<u64> = active
                .iter()
                .zip(&counters)
                .map(|(&j, &c)| derive_seed(runs[j].seed, "detectron-dropout", ((round as u64) << 32) | c))
                .collect();
            let grads = {
                let pop = Population::new(spec, &w, k, cfg.threads)?;
                pop.gradient(
                    Input::PerModel(&batch.x),
                    batch.n,
                    &objective as &Objective<'_>,
                    Mode::Train { seeds: &seeds },
                    false,
                )?
            };
            if let Some((i, v)) = grads.dw.iter().enumerate().find(|(_, v)| !v.is_finite()) {
                return Err(ShiftError::NonFinite(format!(
                    "Detectron CDC gradient {i} (model {}) is {v} in round {round}, epoch {epoch}",
                    i / d
                )));
            }
            for (s, st) in step.iter().enumerate() {
                if st.is_some() {
                    opts[s].update(&mut w[s * d..(s + 1) * d], &grads.dw[s * d..(s + 1) * d]);
                    counters[s] += 1;
                }
            }
        }
    }
    // Evaluate every CDC on its run's whole Q (per-model inputs, padded to the largest Q).
    let max_nq = active.iter().map(|&j| runs[j].nq).max().unwrap_or(0);
    let mut x = vec![0f32; k * max_nq * len];
    for (s, &j) in active.iter().enumerate() {
        x[s * max_nq * len..(s * max_nq + runs[j].nq) * len].copy_from_slice(runs[j].q);
    }
    let pop = Population::new(spec, &w, k, cfg.threads)?;
    let z = super::logits_chunked(&pop, &x, max_nq, 256)?; // [K, max_nq, C]
    for (s, &j) in active.iter().enumerate() {
        let r = &mut runs[j];
        let mut probs = vec![0f32; r.nq * classes];
        for i in 0..r.nq {
            let row = (s * max_nq + i) * classes;
            softmax(&z[row..row + classes], &mut probs[i * classes..(i + 1) * classes]);
        }
        let pred = crate::shift::stats::argmax_rows(&probs, classes);
        r.remaining.retain(|&i| pred[i] == r.q_labels[i]);
        r.counts.push(r.remaining.len());
        r.lambdas.push(lambdas[s] as f64);
        r.steps += counters[s] as usize;
        r.probs.push(probs);
    }
    Ok(())
}
