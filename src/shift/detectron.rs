//! Detectron (Ginsberg et al., ICLR 2023), the baseline shift detector, as in DESIGN.md.
//!
//! A constrained disagreement classifier (CDC) g starts as a copy of the base model f and is
//! trained on P ∪ Q with the per-batch loss
//! `(1/|batch|) (Σ_{x∈P} CE(g(x), f(x)) + λ Σ_{x∈Q} DCE(g(x), f(x)))`, `λ = κ/(|Q|+1)`,
//! where P is labelled by f's own predictions. An ensemble of up to `ensemble` CDCs is trained one
//! after the other (each ≤ `epochs` epochs, Adam); after each, the Q samples it rejects
//! (argmax g ≠ argmax f) are dropped from Q; training stops early when the count of remaining Q
//! samples has not fallen for `patience` rounds. Two statistics:
//! - **disagreement**: the number of Q samples rejected by some CDC (|Q| − never rejected),
//!   compared with the (1−α) quantile of the same count on in-distribution samples;
//! - **entropy**: per-sample entropies of the CDCs' averaged softmax on Q, KS-tested against
//!   the pooled entropies of the in-distribution runs.
//!
//! The in-distribution runs form a [`NullBank`], computed once per base model and |Q|, saved as
//! JSON next to a given path and reused. Independent runs (seeds) train together as one engine
//! population: the m-th CDCs of K runs are K models of one `Population` (per-model batches).

use super::stats::{averaged_softmax_entropy, ks_2samp, ks_critical_value, quantile_test, KsMethod};
use super::{DetectionResult, ShiftError};
use crate::engine::loss::{softmax, SampleLoss};
use crate::engine::rng::stream;
use crate::engine::{Input, Mode, Objective, OptimConfig, Optimizer, Population};
use crate::nets::ArchSpec;
use crate::report::json::{read_json, write_json};
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Hyperparameters of Detectron (defaults: DESIGN.md).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DetectronConfig {
    /// Maximum number of CDCs in the ensemble (5).
    pub ensemble: usize,
    /// Maximum epochs per CDC (5).
    pub epochs: usize,
    /// Adam learning rate (1e-3).
    pub lr: f32,
    /// P samples per batch (the Q samples of an epoch are spread evenly over its batches).
    pub batch_size: usize,
    /// Stop when the remaining-Q count has not fallen for this many rounds (2).
    pub patience: usize,
    /// κ in λ = κ/(|Q|+1) (1).
    pub kappa: f32,
    /// Significance level of the tests (0.05).
    pub alpha: f64,
    /// Worker threads of the engine (not part of the result; ignored when comparing banks).
    #[serde(skip, default = "default_threads")]
    pub threads: usize,
    /// At most this many runs train together as one population.
    #[serde(skip, default = "default_parallel")]
    pub max_parallel: usize,
}

fn default_threads() -> usize {
    rayon::current_num_threads().max(1)
}

fn default_parallel() -> usize {
    16
}

impl Default for DetectronConfig {
    fn default() -> Self {
        DetectronConfig {
            ensemble: 5,
            epochs: 5,
            lr: 1e-3,
            batch_size: 100,
            patience: 2,
            kappa: 1.0,
            alpha: 0.05,
            threads: default_threads(),
            max_parallel: default_parallel(),
        }
    }
}

impl DetectronConfig {
    fn validate(&self) -> Result<(), ShiftError> {
        let bad = |m: String| Err(ShiftError::Invalid(m));
        if self.ensemble == 0 || self.epochs == 0 || self.batch_size == 0 {
            return bad(format!(
                "Detectron needs ensemble, epochs and batch size ≥ 1 (got {}, {}, {})",
                self.ensemble, self.epochs, self.batch_size
            ));
        }
        if !(self.lr > 0.0 && self.lr.is_finite() && self.kappa >= 0.0 && self.kappa.is_finite()) {
            return bad(format!(
                "Detectron lr {} / kappa {} must be finite and positive",
                self.lr, self.kappa
            ));
        }
        if !(self.alpha > 0.0 && self.alpha < 1.0) {
            return bad(format!("significance level {} is not in (0, 1)", self.alpha));
        }
        Ok(())
    }

    /// The fields that determine results (threads and parallelism excluded).
    fn same_procedure(&self, other: &Self) -> bool {
        let strip = |c: &Self| DetectronConfig {
            threads: 1,
            max_parallel: 1,
            ..c.clone()
        };
        strip(self) == strip(other)
    }
}

/// The base model f: an architecture and one weight vector `[D]`.
#[derive(Clone, Copy, Debug)]
pub struct BaseModel<'a> {
    pub spec: &'a ArchSpec,
    pub weights: &'a [f32],
}

impl BaseModel<'_> {
    /// SHA-256 of the architecture (JSON) and the weights (little-endian f32), hex.
    pub fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        h.update(serde_json::to_vec(self.spec).unwrap_or_default());
        for w in self.weights {
            h.update(w.to_le_bytes());
        }
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// The outcome of the Detectron procedure on one query set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DetectronRun {
    pub seed: u64,
    /// |Q|.
    pub n_query: usize,
    /// Q samples rejected by at least one CDC (|Q| − never rejected).
    pub rejected: usize,
    /// Remaining Q count before the first and after each CDC.
    pub remaining: Vec<usize>,
    /// Per-sample entropy of the CDCs' averaged softmax on Q `[|Q|]`.
    pub entropies: Vec<f64>,
}

impl DetectronRun {
    /// Number of CDCs trained.
    pub fn rounds(&self) -> usize {
        self.remaining.len().saturating_sub(1)
    }
}

/// Checks an image tensor `[n, C, H, W]` against the architecture; returns n.
fn images(x: &[f32], spec: &ArchSpec, min: usize, what: &str) -> Result<usize, ShiftError> {
    let len = spec.input_len();
    if len == 0 || !x.len().is_multiple_of(len) {
        return Err(ShiftError::Shape(format!(
            "{what}: {} values are not a whole number of {:?} images",
            x.len(),
            spec.input
        )));
    }
    let n = x.len() / len;
    if n < min {
        return Err(ShiftError::Empty(format!("{what}: {n} images, need at least {min}")));
    }
    if let Some((i, v)) = x.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(ShiftError::NonFinite(format!(
            "{what}: image {}, value {} is {v}",
            i / len,
            i % len
        )));
    }
    Ok(n)
}

/// Logits `[K, n, C]` of K models on per-model inputs `[K, n, ...]`, in chunks of `chunk` samples.
pub(crate) fn logits_chunked(pop: &Population<'_>, x: &[f32], n: usize, chunk: usize) -> Result<Vec<f32>, ShiftError> {
    let (k, len, c) = (pop.models, pop.spec.input_len(), pop.spec.num_classes());
    let mut out = vec![0f32; k * n * c];
    let mut start = 0;
    while start < n {
        let m = chunk.min(n - start);
        let mut buf = Vec::with_capacity(k * m * len);
        for j in 0..k {
            buf.extend_from_slice(&x[(j * n + start) * len..(j * n + start + m) * len]);
        }
        let z = pop.logits(Input::PerModel(&buf), m)?; // [K, m, C]
        for j in 0..k {
            out[(j * n + start) * c..(j * n + start + m) * c].copy_from_slice(&z[j * m * c..(j + 1) * m * c]);
        }
        start += m;
    }
    Ok(out)
}

/// f's predicted labels on `x [n, ...]`.
fn predict(base: &BaseModel<'_>, x: &[f32], n: usize, threads: usize) -> Result<Vec<u32>, ShiftError> {
    let pop = Population::new(base.spec, base.weights, 1, threads)?;
    let c = base.spec.num_classes();
    let z = logits_chunked(&pop, x, n, 256)?;
    Ok(super::stats::argmax_rows(&z, c))
}

/// One training batch of K runs, `N = P part + Q slots` samples per model.
#[derive(Debug)]
pub(crate) struct Batch {
    /// `[K, N, C, H, W]`.
    pub x: Vec<f32>,
    /// `[K·N]`.
    pub labels: Vec<u32>,
    /// `[N]`: cross-entropy for the P part, DCE for the Q slots.
    pub kinds: Vec<SampleLoss>,
    /// `[K·N]`: `N/n_k` on P, `λ_k·N/n_k` on Q, 0 on padding, so the engine's `(1/N) Σ w ℓ`
    /// equals `(1/n_k)(Σ_P CE + λ_k Σ_Q DCE)` with n_k the real batch size of run k.
    pub weights: Vec<f32>,
    pub n: usize,
}

/// Assembles a batch: `p_idx` (shared length) indexes `p`, `q_idx[k]` (≤ `slots`) indexes run k's
/// query set `q[k]`; `lambda[k]` weighs run k's Q part.
#[allow(clippy::too_many_arguments)]
pub(crate) fn assemble_batch(
    len: usize,
    p: &[f32],
    p_labels: &[u32],
    p_idx: &[&[usize]],
    q: &[&[f32]],
    q_labels: &[Vec<u32>],
    q_idx: &[&[usize]],
    slots: usize,
    lambda: &[f32],
) -> Batch {
    let k = q.len();
    let bp = p_idx.first().map(|v| v.len()).unwrap_or(0);
    let n = bp + slots;
    let mut x = vec![0f32; k * n * len];
    let mut labels = vec![0u32; k * n];
    let mut weights = vec![0f32; k * n];
    let mut kinds = vec![SampleLoss::CrossEntropy; bp];
    kinds.extend(std::iter::repeat_n(SampleLoss::Disagreement, slots));
    for j in 0..k {
        let real = (bp + q_idx[j].len()) as f32;
        for (r, &i) in p_idx[j].iter().enumerate() {
            let row = j * n + r;
            x[row * len..(row + 1) * len].copy_from_slice(&p[i * len..(i + 1) * len]);
            labels[row] = p_labels[i];
            weights[row] = n as f32 / real;
        }
        for (s, &i) in q_idx[j].iter().enumerate() {
            let row = j * n + bp + s;
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

/// State of one run during the procedure.
struct RunState<'a> {
    seed: u64,
    q: &'a [f32],
    nq: usize,
    q_labels: Vec<u32>,
    remaining: Vec<usize>,
    counts: Vec<usize>,
    /// Softmax of each trained CDC on all of Q, `[rounds][nq·C]`.
    probs: Vec<Vec<f32>>,
    done: bool,
}

/// Runs the Detectron procedure on each query set `queries[k]` (its own `seeds[k]`), training
/// the runs' CDCs together (at most `cfg.max_parallel` per population). `p [n_p, C, H, W]` is the
/// in-distribution training set of the CDCs.
pub fn run_detectron(
    base: &BaseModel<'_>,
    p: &[f32],
    queries: &[&[f32]],
    seeds: &[u64],
    cfg: &DetectronConfig,
    quiet: bool,
) -> Result<Vec<DetectronRun>, ShiftError> {
    cfg.validate()?;
    if queries.len() != seeds.len() {
        return Err(ShiftError::Shape(format!(
            "{} query sets but {} seeds",
            queries.len(),
            seeds.len()
        )));
    }
    crate::nets::validate_weights(base.spec, base.weights, 1, "Detectron base model")?;
    let np = images(p, base.spec, 1, "Detectron P set")?;
    let p_labels = predict(base, p, np, cfg.threads)?;
    let bar = crate::report::progress_bar((queries.len() * cfg.ensemble) as u64, "detectron", quiet);
    let mut out = Vec::with_capacity(queries.len());
    for (qs, ss) in queries
        .chunks(cfg.max_parallel.max(1))
        .zip(seeds.chunks(cfg.max_parallel.max(1)))
    {
        let mut runs = Vec::with_capacity(qs.len());
        for (k, (&q, &seed)) in qs.iter().zip(ss).enumerate() {
            let nq = images(q, base.spec, 1, &format!("Detectron query set {k}"))?;
            runs.push(RunState {
                seed,
                q,
                nq,
                q_labels: predict(base, q, nq, cfg.threads)?,
                remaining: (0..nq).collect(),
                counts: vec![nq],
                probs: Vec::new(),
                done: false,
            });
        }
        for round in 0..cfg.ensemble {
            let active: Vec<usize> = (0..runs.len()).filter(|&k| !runs[k].done).collect();
            if active.is_empty() {
                break;
            }
            train_round(base, p, &p_labels, &mut runs, &active, round, cfg)?;
            bar.inc(active.len() as u64);
            for &k in &active {
                let r = &mut runs[k];
                let c = r.counts.len();
                let stalled =
                    c > cfg.patience && r.counts[c - 1 - cfg.patience..].iter().all(|&v| v == r.counts[c - 1]);
                r.done = r.remaining.is_empty() || stalled;
            }
        }
        bar.inc(runs.iter().map(|r| (cfg.ensemble + 1 - r.counts.len()) as u64).sum());
        for r in runs {
            let classes = base.spec.num_classes();
            let m = r.probs.len();
            let flat: Vec<f32> = r.probs.concat(); // [M, nq, C]
            let entropies = averaged_softmax_entropy(&flat, m, r.nq, classes)?;
            out.push(DetectronRun {
                seed: r.seed,
                n_query: r.nq,
                rejected: r.nq - r.remaining.len(),
                remaining: r.counts,
                entropies,
            });
        }
    }
    bar.finish_and_clear();
    Ok(out)
}

/// Trains the `round`-th CDC of each active run (one population), then records its softmax on
/// Q and drops the Q samples it rejects.
fn train_round(
    base: &BaseModel<'_>,
    p: &[f32],
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
    let mut opt = Optimizer::new(OptimConfig::adam(cfg.lr, 0.0), k * d);
    let batches = np.div_ceil(cfg.batch_size);
    let lambda: Vec<f32> = active.iter().map(|&j| cfg.kappa / (runs[j].nq as f32 + 1.0)).collect();
    let q_sets: Vec<&[f32]> = active.iter().map(|&j| runs[j].q).collect();
    let q_labels: Vec<Vec<u32>> = active.iter().map(|&j| runs[j].q_labels.clone()).collect();
    let mut step = 0u64;
    for epoch in 0..cfg.epochs {
        let tag = (round * cfg.epochs + epoch) as u64;
        let mut p_order = Vec::with_capacity(k);
        let mut q_order = Vec::with_capacity(k);
        for &j in active {
            let mut po: Vec<usize> = (0..np).collect();
            po.shuffle(&mut stream(runs[j].seed, "detectron-p-order", tag));
            let mut qo = runs[j].remaining.clone();
            qo.shuffle(&mut stream(runs[j].seed, "detectron-q-order", tag));
            p_order.push(po);
            q_order.push(qo);
        }
        let max_q = q_order.iter().map(|v| v.len()).max().unwrap_or(0);
        let slots = max_q.div_ceil(batches);
        for t in 0..batches {
            let (a, b) = (t * cfg.batch_size, ((t + 1) * cfg.batch_size).min(np));
            let p_idx: Vec<&[usize]> = p_order.iter().map(|o| &o[a..b]).collect();
            // Q samples of the epoch spread evenly over its batches.
            let q_idx: Vec<&[usize]> = q_order
                .iter()
                .map(|o| &o[t * o.len() / batches..(t + 1) * o.len() / batches])
                .collect();
            let batch = assemble_batch(len, p, p_labels, &p_idx, &q_sets, &q_labels, &q_idx, slots, &lambda);
            let objective = Objective::Classify {
                labels: &batch.labels,
                kinds: Some(&batch.kinds),
                weights: Some(&batch.weights),
            };
            let seeds: Vec<u64> = active
                .iter()
                .map(|&j| crate::engine::rng::derive_seed(runs[j].seed, "detectron-dropout", step))
                .collect();
            let grads = {
                let pop = Population::new(spec, &w, k, cfg.threads)?;
                pop.gradient(
                    Input::PerModel(&batch.x),
                    batch.n,
                    &objective,
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
            opt.update(&mut w, &grads.dw);
            step += 1;
        }
    }
    // Evaluate every CDC on its run's whole Q (per-model inputs, padded to the largest Q).
    let max_nq = active.iter().map(|&j| runs[j].nq).max().unwrap_or(0);
    let mut x = vec![0f32; k * max_nq * len];
    for (s, &j) in active.iter().enumerate() {
        x[s * max_nq * len..(s * max_nq + runs[j].nq) * len].copy_from_slice(runs[j].q);
    }
    let pop = Population::new(spec, &w, k, cfg.threads)?;
    let z = logits_chunked(&pop, &x, max_nq, 256)?; // [K, max_nq, C]
    for (s, &j) in active.iter().enumerate() {
        let r = &mut runs[j];
        let mut probs = vec![0f32; r.nq * classes];
        for i in 0..r.nq {
            let row = (s * max_nq + i) * classes;
            softmax(&z[row..row + classes], &mut probs[i * classes..(i + 1) * classes]);
        }
        let pred = super::stats::argmax_rows(&probs, classes);
        r.remaining.retain(|&i| pred[i] == r.q_labels[i]);
        r.counts.push(r.remaining.len());
        r.probs.push(probs);
    }
    Ok(())
}

/// Detectron statistics on in-distribution query sets, for one base model and |Q|.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NullBank {
    pub format_version: u32,
    /// [`BaseModel::fingerprint`] of the base model.
    pub base_model: String,
    pub n_query: usize,
    pub config: DetectronConfig,
    pub runs: Vec<DetectronRun>,
}

/// Current null-bank file format.
pub const NULL_BANK_VERSION: u32 = 1;

impl NullBank {
    /// The bank file for |Q| = `n_query` next to `path` (e.g. the base model or meta-model file):
    /// `<path>.detectron-null-q<n>.json`.
    pub fn path_next_to(path: &Path, n_query: usize) -> PathBuf {
        let mut s = path.as_os_str().to_owned();
        s.push(format!(".detectron-null-q{n_query}.json"));
        PathBuf::from(s)
    }

    /// Runs the procedure `runs` times on `n_query` images drawn without replacement from the
    /// in-distribution `pool [n, C, H, W]` (run r draws with `stream(seed, "detectron-null", r)`).
    #[allow(clippy::too_many_arguments)]
    pub fn compute(
        base: &BaseModel<'_>,
        p: &[f32],
        pool: &[f32],
        n_query: usize,
        runs: usize,
        seed: u64,
        cfg: &DetectronConfig,
        quiet: bool,
    ) -> Result<NullBank, ShiftError> {
        if runs < 2 {
            return Err(ShiftError::Invalid(format!(
                "a null bank needs at least 2 runs, got {runs}"
            )));
        }
        let len = base.spec.input_len();
        let n = images(pool, base.spec, n_query.max(1), "Detectron in-distribution pool")?;
        let mut queries: Vec<Vec<f32>> = Vec::with_capacity(runs);
        let mut seeds = Vec::with_capacity(runs);
        for r in 0..runs as u64 {
            let idx = rand::seq::index::sample(&mut stream(seed, "detectron-null", r), n, n_query);
            queries.push(
                idx.iter()
                    .flat_map(|i| pool[i * len..(i + 1) * len].iter().copied())
                    .collect(),
            );
            seeds.push(crate::engine::rng::derive_seed(seed, "detectron-null-run", r));
        }
        let refs: Vec<&[f32]> = queries.iter().map(|q| q.as_slice()).collect();
        Ok(NullBank {
            format_version: NULL_BANK_VERSION,
            base_model: base.fingerprint(),
            n_query,
            config: cfg.clone(),
            runs: run_detectron(base, p, &refs, &seeds, cfg, quiet)?,
        })
    }

    /// Loads the bank at `NullBank::path_next_to(next_to, n_query)` when it exists and matches the
    /// base model, |Q|, the procedure and has ≥ `runs` runs; otherwise computes and saves it.
    /// Returns the bank and whether it was computed.
    #[allow(clippy::too_many_arguments)]
    pub fn load_or_compute(
        next_to: &Path,
        base: &BaseModel<'_>,
        p: &[f32],
        pool: &[f32],
        n_query: usize,
        runs: usize,
        seed: u64,
        cfg: &DetectronConfig,
        quiet: bool,
    ) -> Result<(NullBank, bool), ShiftError> {
        let path = Self::path_next_to(next_to, n_query);
        if path.exists() {
            let bank: NullBank = read_json(&path)?;
            if bank.format_version == NULL_BANK_VERSION
                && bank.base_model == base.fingerprint()
                && bank.n_query == n_query
                && bank.runs.len() >= runs
                && bank.config.same_procedure(cfg)
            {
                return Ok((bank, false));
            }
        }
        let bank = Self::compute(base, p, pool, n_query, runs, seed, cfg, quiet)?;
        write_json(&path, &bank)?;
        Ok((bank, true))
    }

    /// Rejected counts of the runs.
    pub fn rejected(&self) -> Vec<f64> {
        self.runs.iter().map(|r| r.rejected as f64).collect()
    }

    /// All per-sample entropies of all runs, pooled.
    pub fn entropies(&self) -> Vec<f64> {
        self.runs.iter().flat_map(|r| r.entropies.iter().copied()).collect()
    }
}

/// The two Detectron tests of `run` against `bank`:
/// - `detectron-disagreement`: statistic = rejected count, threshold = (1−α) quantile of the bank's
///   counts, shift ⇔ statistic > threshold, p = (1 + #{bank ≥ s})/(1 + runs);
/// - `detectron-entropy`: statistic = KS D between the run's entropies and the bank's pooled
///   entropies, threshold = the KS critical value, shift ⇔ p ≤ α.
pub fn decide(run: &DetectronRun, bank: &NullBank, alpha: f64) -> Result<[DetectionResult; 2], ShiftError> {
    if run.n_query != bank.n_query {
        return Err(ShiftError::Invalid(format!(
            "null bank is for |Q| = {}, the test has |Q| = {}",
            bank.n_query, run.n_query
        )));
    }
    let null_counts = bank.rejected();
    let qt = quantile_test(run.rejected as f64, &null_counts, alpha)?;
    let dis = DetectionResult::new(
        "detectron-disagreement",
        run.rejected as f64,
        qt.threshold,
        qt.p_value,
        qt.reject,
        run.n_query,
        run.seed,
    );
    let null_h = bank.entropies();
    let ks = ks_2samp(&run.entropies, &null_h, KsMethod::Auto)?;
    let crit = ks_critical_value(run.entropies.len(), null_h.len(), alpha, KsMethod::Auto).unwrap_or(f64::NAN);
    let ent = DetectionResult::new(
        "detectron-entropy",
        ks.statistic,
        crit,
        ks.p_value,
        ks.p_value <= alpha,
        run.n_query,
        run.seed,
    )
    .with(
        "mean_entropy",
        run.entropies.iter().sum::<f64>() / run.entropies.len().max(1) as f64,
    );
    let common = |r: DetectionResult| {
        r.with("alpha", alpha)
            .with("rounds", run.rounds())
            .with("remaining", run.remaining.clone())
            .with("null_runs", bank.runs.len())
    };
    Ok([common(dis), common(ent)])
}

/// One Detectron test of the query set `q` against `bank`: runs the procedure with `seed`, then
/// [`decide`]s both statistics; `extra.wall_s` holds the seconds the procedure took.
pub fn detectron_test(
    base: &BaseModel<'_>,
    p: &[f32],
    q: &[f32],
    seed: u64,
    bank: &NullBank,
    cfg: &DetectronConfig,
    quiet: bool,
) -> Result<[DetectionResult; 2], ShiftError> {
    if !bank.config.same_procedure(cfg) {
        return Err(ShiftError::Invalid(
            "the null bank was computed with a different Detectron configuration".into(),
        ));
    }
    if bank.base_model != base.fingerprint() {
        return Err(ShiftError::Invalid(
            "the null bank belongs to a different base model".into(),
        ));
    }
    let start = std::time::Instant::now();
    let run = run_detectron(base, p, &[q], &[seed], cfg, quiet)?.remove(0);
    let wall = start.elapsed().as_secs_f64();
    let [a, b] = decide(&run, bank, cfg.alpha)?;
    Ok([a.with("wall_s", wall), b.with("wall_s", wall)])
}

#[cfg(test)]
mod tests;
