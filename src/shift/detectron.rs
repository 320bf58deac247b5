//! Detectron (Ginsberg et al., ICLR 2023), the baseline shift detector, as the official code
//! (rgklab/detectron) runs it; DESIGN.md, "Detectron".
//!
//! A constrained disagreement classifier (CDC) g starts as a copy of the base model f and is
//! trained on P ∪ Q with the per-batch loss
//! `(1/|batch|) (Σ_{x∈P} CE(g(x), f(x)) + λ Σ_{x∈Q} DCE(g(x), f(x)))`, P labelled by f's own
//! predictions. An ensemble of up to `ensemble` CDCs is trained one after the other (each
//! `epochs` epochs, Adam); after each, the Q samples it rejects (argmax g ≠ argmax f) are dropped
//! from Q; training stops early when the count of remaining Q samples has not fallen for
//! `patience` CDCs. The batch composition and λ depend on the [`Budget`] ([`cdc`]): the official
//! one puts every remaining Q sample in every batch of 512 with `λ = 1/(steps·count + 1)`.
//! Two statistics, tested as the official analysis (`experiments/analysis.py`) does:
//! - **disagreement**: the count of Q samples never rejected; shift when it is below the largest
//!   cut X whose false-positive rate on the null runs, `#{null count < X}/runs`, is ≤ α;
//! - **entropy**: per-sample entropies of the softmax averaged over **f and** the CDCs on Q,
//!   KS-tested against the pooled entropies of the null runs; shift when the p-value is below the
//!   largest cut whose rate among the null runs' own leave-one-out p-values is ≤ α.
//!
//! The in-distribution runs form a [`NullBank`], computed once per base model, P and |Q|, saved
//! as JSON next to a given path after every population of runs (a killed bank resumes) and
//! reused. Independent runs (seeds) train together as one engine population: the m-th CDCs of K
//! runs are K models of one `Population` (per-model batches, one Adam per model).

mod cdc;

use super::bank_shards::{self, ShardedBank};
use super::stats::{argmax_rows, averaged_softmax_entropy, ks_2samp, quantile_test, KsMethod};
use super::{DetectionResult, ShiftError};
use crate::data::{Dataset, Normalization};
use crate::engine::loss::softmax;
use crate::engine::rng::stream;
use crate::engine::{Input, Population};
use crate::nets::ArchSpec;
use crate::report::json::{read_json, write_json};
use crate::shard::Shard;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// How much each CDC trains, and on what.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Budget {
    /// The official procedure: P = f's training split, batches of 512 with every remaining Q
    /// sample in each, 5 epochs per CDC, λ = 1/(steps·count + 1) per CDC.
    Official,
    /// A cheap variant (not the paper's): a small held-out P, batches of 100 P images with the Q
    /// samples spread over the epoch, 3 epochs per CDC, λ = κ/(|Q|+1).
    Fast,
}

impl Budget {
    pub fn name(self) -> &'static str {
        match self {
            Budget::Official => "official",
            Budget::Fast => "fast",
        }
    }
}

/// Hyperparameters of Detectron (defaults: the official procedure, DESIGN.md).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DetectronConfig {
    /// Batch composition and λ rule.
    pub budget: Budget,
    /// Maximum number of CDCs in the ensemble (5).
    pub ensemble: usize,
    /// Epochs per CDC (official 5, fast 3).
    pub epochs: usize,
    /// Adam learning rate (1e-3).
    pub lr: f32,
    /// Official: images per batch, P and the remaining Q together (512). Fast: P images per batch
    /// (100).
    pub batch_size: usize,
    /// Stop when the remaining-Q count has not fallen for this many CDCs (2).
    pub patience: usize,
    /// κ in λ = κ/(|Q|+1) (fast budget only; 1).
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
        Self::for_budget(Budget::Official)
    }
}

impl DetectronConfig {
    /// The defaults of `budget`.
    pub fn for_budget(budget: Budget) -> Self {
        let (epochs, batch_size) = match budget {
            Budget::Official => (5, 512),
            Budget::Fast => (3, 100),
        };
        DetectronConfig {
            budget,
            ensemble: 5,
            epochs,
            lr: 1e-3,
            batch_size,
            patience: 2,
            kappa: 1.0,
            alpha: 0.05,
            threads: default_threads(),
            max_parallel: default_parallel(),
        }
    }

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

/// The images the CDCs must agree on (P).
#[derive(Clone, Copy, Debug)]
pub enum Images<'a> {
    /// Normalized images `[n, C, H, W]`.
    Tensor(&'a [f32]),
    /// The images `idx` (all when None) of a dataset, normalized with `norm` when a batch is
    /// gathered: a whole training split stays u8 (a quarter of a normalized copy).
    Data {
        ds: &'a Dataset,
        idx: Option<&'a [usize]>,
        norm: &'a Normalization,
    },
}

impl Images<'_> {
    /// The number of images, checked against the architecture (at least one).
    fn count(&self, spec: &ArchSpec, what: &str) -> Result<usize, ShiftError> {
        match self {
            Images::Tensor(x) => images(x, spec, 1, what),
            Images::Data { ds, idx, .. } => {
                if ds.image_len() != spec.input_len() {
                    return Err(ShiftError::Shape(format!(
                        "{what}: images of {:?} do not fit the model input {:?}",
                        ds.shape, spec.input
                    )));
                }
                let n = idx.map_or(ds.len(), |v| v.len());
                if let Some(&i) = idx.and_then(|v| v.iter().find(|&&i| i >= ds.len())) {
                    return Err(ShiftError::Invalid(format!(
                        "{what}: index {i} beyond the {} images of {}",
                        ds.len(),
                        ds.name
                    )));
                }
                if n == 0 {
                    return Err(ShiftError::Empty(format!("{what}: no images")));
                }
                Ok(n)
            }
        }
    }

    /// Writes the images `which` (positions in this set) into `out [which.len(), C, H, W]`.
    fn gather(&self, which: &[usize], out: &mut [f32]) {
        match self {
            Images::Tensor(x) => {
                let len = out.len() / which.len().max(1);
                for (r, &i) in which.iter().enumerate() {
                    out[r * len..(r + 1) * len].copy_from_slice(&x[i * len..(i + 1) * len]);
                }
            }
            Images::Data { ds, idx, norm } => {
                let rows: Vec<usize> = match idx {
                    Some(v) => which.iter().map(|&i| v[i]).collect(),
                    None => which.to_vec(),
                };
                out.copy_from_slice(&ds.to_tensor(&rows, norm));
            }
        }
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
    /// λ of each CDC.
    pub lambdas: Vec<f64>,
    /// Optimizer steps of all CDCs together.
    pub steps: usize,
    /// Per-sample entropy of the softmax averaged over f and the CDCs on Q `[|Q|]`.
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

/// f's softmax on the normalized images `x [n, ...]`, `[n, C]`.
fn softmax_rows(base: &BaseModel<'_>, x: &[f32], n: usize, threads: usize) -> Result<Vec<f32>, ShiftError> {
    let pop = Population::new(base.spec, base.weights, 1, threads)?;
    let c = base.spec.num_classes();
    let z = logits_chunked(&pop, x, n, 256)?;
    let mut out = vec![0f32; n * c];
    for (zr, o) in z.chunks_exact(c).zip(out.chunks_exact_mut(c)) {
        softmax(zr, o);
    }
    Ok(out)
}

/// f's predicted labels on the `n` images of `p`, in chunks.
fn predict(base: &BaseModel<'_>, p: &Images<'_>, n: usize, threads: usize) -> Result<Vec<u32>, ShiftError> {
    let pop = Population::new(base.spec, base.weights, 1, threads)?;
    let (c, len) = (base.spec.num_classes(), base.spec.input_len());
    let mut out = Vec::with_capacity(n);
    let mut buf = Vec::new();
    for start in (0..n).step_by(1024) {
        let which: Vec<usize> = (start..(start + 1024).min(n)).collect();
        buf.resize(which.len() * len, 0.0);
        p.gather(&which, &mut buf);
        let z = pop.logits(Input::PerModel(&buf), which.len())?;
        out.extend(argmax_rows(&z, c));
    }
    Ok(out)
}

/// State of one run during the procedure.
pub(crate) struct RunState<'a> {
    seed: u64,
    pub(crate) q: &'a [f32],
    pub(crate) nq: usize,
    pub(crate) q_labels: Vec<u32>,
    pub(crate) remaining: Vec<usize>,
    pub(crate) counts: Vec<usize>,
    pub(crate) lambdas: Vec<f64>,
    pub(crate) steps: usize,
    /// Softmax on all of Q of f, then of each trained CDC, `[1 + rounds][nq·C]`.
    pub(crate) probs: Vec<Vec<f32>>,
    done: bool,
}

/// Runs the Detectron procedure on each query set `queries[k]` (normalized `[n_k, C, H, W]`,
/// its own `seeds[k]`), training the runs' CDCs together (at most `cfg.max_parallel` per
/// population). `p` is the in-distribution training set of the CDCs (P).
pub fn run_detectron(
    base: &BaseModel<'_>,
    p: &Images<'_>,
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
    let np = p.count(base.spec, "Detectron P set")?;
    let p_labels = predict(base, p, np, cfg.threads)?;
    let classes = base.spec.num_classes();
    let bar = crate::report::progress_bar((queries.len() * cfg.ensemble) as u64, "detectron", quiet);
    let mut out = Vec::with_capacity(queries.len());
    for (qs, ss) in queries
        .chunks(cfg.max_parallel.max(1))
        .zip(seeds.chunks(cfg.max_parallel.max(1)))
    {
        let mut runs = Vec::with_capacity(qs.len());
        for (k, (&q, &seed)) in qs.iter().zip(ss).enumerate() {
            let nq = images(q, base.spec, 1, &format!("Detectron query set {k}"))?;
            // Fails early when |Q| does not fit the batch or P is too small.
            cdc::steps_per_epoch(cfg, np, nq)?;
            let f_probs = softmax_rows(base, q, nq, cfg.threads)?;
            runs.push(RunState {
                seed,
                q,
                nq,
                q_labels: super::stats::argmax_rows(&f_probs, classes),
                remaining: (0..nq).collect(),
                counts: vec![nq],
                lambdas: Vec::new(),
                steps: 0,
                probs: vec![f_probs],
                done: false,
            });
        }
        for round in 0..cfg.ensemble {
            let active: Vec<usize> = (0..runs.len()).filter(|&k| !runs[k].done).collect();
            if active.is_empty() {
                break;
            }
            cdc::train_round(base, p, &p_labels, &mut runs, &active, round, cfg)?;
            bar.inc(active.len() as u64);
            for &k in &active {
                let r = &mut runs[k];
                let c = r.counts.len();
                // Official early stopping: the count has not fallen for `patience` CDCs.
                let stalled =
                    c > cfg.patience && r.counts[c - 1 - cfg.patience..].iter().all(|&v| v == r.counts[c - 1]);
                r.done = r.remaining.is_empty() || stalled;
            }
        }
        bar.inc(runs.iter().map(|r| (cfg.ensemble + 1 - r.counts.len()) as u64).sum());
        for r in runs {
            let m = r.probs.len();
            let flat: Vec<f32> = r.probs.concat(); // [1 + rounds, nq, C]
            let entropies = averaged_softmax_entropy(&flat, m, r.nq, classes)?;
            out.push(DetectronRun {
                seed: r.seed,
                n_query: r.nq,
                rejected: r.nq - r.remaining.len(),
                remaining: r.counts,
                lambdas: r.lambdas,
                steps: r.steps,
                entropies,
            });
        }
    }
    bar.finish_and_clear();
    Ok(out)
}

/// Detectron statistics on in-distribution query sets, for one base model, P and |Q|.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NullBank {
    pub format_version: u32,
    /// [`BaseModel::fingerprint`] of the base model.
    pub base_model: String,
    pub n_query: usize,
    pub config: DetectronConfig,
    /// Seed of the query draws; run r draws with `stream(seed, "detectron-null", r)`.
    pub seed: u64,
    pub runs: Vec<DetectronRun>,
}

/// Current null-bank file format.
pub const NULL_BANK_VERSION: u32 = 2;

impl ShardedBank for NullBank {
    type Run = DetectronRun;
    fn runs(&self) -> &[DetectronRun] {
        &self.runs
    }
    fn runs_mut(&mut self) -> &mut Vec<DetectronRun> {
        &mut self.runs
    }
    fn same_bank(&self, other: &Self) -> bool {
        self.format_version == other.format_version
            && self.base_model == other.base_model
            && self.n_query == other.n_query
            && self.seed == other.seed
            && self.config.same_procedure(&other.config)
    }
}

impl NullBank {
    /// The bank file for |Q| = `n_query` next to `path` (e.g. the base model or meta-model file):
    /// `<path>.detectron-null-q<n>.json`.
    pub fn path_next_to(path: &Path, n_query: usize) -> PathBuf {
        let mut s = path.as_os_str().to_owned();
        s.push(format!(".detectron-null-q{n_query}.json"));
        PathBuf::from(s)
    }

    /// An empty bank.
    fn empty(base: &BaseModel<'_>, n_query: usize, seed: u64, cfg: &DetectronConfig) -> NullBank {
        NullBank {
            format_version: NULL_BANK_VERSION,
            base_model: base.fingerprint(),
            n_query,
            config: cfg.clone(),
            seed,
            runs: Vec::new(),
        }
    }

    /// Whether this bank's runs are what `extend` would compute for these arguments.
    fn matches(&self, base: &BaseModel<'_>, n_query: usize, seed: u64, cfg: &DetectronConfig) -> bool {
        self.same_bank(&Self::empty(base, n_query, seed, cfg))
    }

    /// Adds runs until the bank holds `runs`: run r draws `n_query` images without replacement
    /// from the in-distribution `pool [n, C, H, W]` with `stream(seed, "detectron-null", r)`.
    /// Runs train in balanced populations of at most `max_parallel`; after each population the
    /// bank is written to `save` (when given), so a killed computation resumes there.
    #[allow(clippy::too_many_arguments)]
    pub fn extend(
        &mut self,
        base: &BaseModel<'_>,
        p: &Images<'_>,
        pool: &[f32],
        runs: usize,
        save: Option<&Path>,
        quiet: bool,
    ) -> Result<(), ShiftError> {
        if runs < 2 {
            return Err(ShiftError::Invalid(format!(
                "a null bank needs at least 2 runs, got {runs}"
            )));
        }
        let missing = runs.saturating_sub(self.runs.len());
        if missing == 0 {
            return Ok(());
        }
        let groups = missing.div_ceil(self.config.max_parallel.max(1));
        let per = missing.div_ceil(groups);
        while self.runs.len() < runs {
            let first = self.runs.len();
            let group: Vec<usize> = (first..(first + per).min(runs)).collect();
            let new = self.compute_runs(base, p, pool, &group, quiet)?;
            self.runs.extend(new);
            if let Some(path) = save {
                write_json(path, self)?;
            }
        }
        Ok(())
    }

    /// The runs `indices` of this bank, trained as one population: run r draws `n_query` images
    /// without replacement from `pool` with `stream(seed, "detectron-null", r)` and trains with
    /// the seed `derive_seed(seed, "detectron-null-run", r)`.
    fn compute_runs(
        &self,
        base: &BaseModel<'_>,
        p: &Images<'_>,
        pool: &[f32],
        indices: &[usize],
        quiet: bool,
    ) -> Result<Vec<DetectronRun>, ShiftError> {
        let len = base.spec.input_len();
        let n = images(pool, base.spec, self.n_query.max(1), "Detectron in-distribution pool")?;
        let mut queries: Vec<Vec<f32>> = Vec::new();
        let mut seeds = Vec::new();
        for &r in indices {
            let r = r as u64;
            let idx = rand::seq::index::sample(&mut stream(self.seed, "detectron-null", r), n, self.n_query);
            queries.push(
                idx.iter()
                    .flat_map(|i| pool[i * len..(i + 1) * len].iter().copied())
                    .collect(),
            );
            seeds.push(crate::engine::rng::derive_seed(self.seed, "detectron-null-run", r));
        }
        let refs: Vec<&[f32]> = queries.iter().map(|q| q.as_slice()).collect();
        run_detectron(base, p, &refs, &seeds, &self.config, quiet)
    }

    /// Builds (or resumes) the part of `shard` of the bank at `NullBank::path_next_to(next_to,
    /// n_query)` with `runs` runs ([`bank_shards::build_part`]): the runs r ≡ I (mod N), in
    /// populations of at most `max_parallel`. Returns the runs the part holds and should hold.
    #[allow(clippy::too_many_arguments)]
    pub fn build_shard(
        next_to: &Path,
        base: &BaseModel<'_>,
        p: &Images<'_>,
        pool: &[f32],
        n_query: usize,
        runs: usize,
        seed: u64,
        cfg: &DetectronConfig,
        shard: Shard,
        quiet: bool,
    ) -> Result<(usize, usize), ShiftError> {
        if runs < 2 {
            return Err(ShiftError::Invalid(format!(
                "a null bank needs at least 2 runs, got {runs}"
            )));
        }
        let empty = Self::empty(base, n_query, seed, cfg);
        let path = Self::path_next_to(next_to, n_query);
        let part = bank_shards::build_part(&path, shard, runs, &empty, cfg.max_parallel, |group| {
            empty.compute_runs(base, p, pool, group, quiet)
        })?;
        Ok((part.bank.runs.len(), part.indices().len()))
    }

    /// A bank of `runs` runs ([`NullBank::extend`]), not saved.
    #[allow(clippy::too_many_arguments)]
    pub fn compute(
        base: &BaseModel<'_>,
        p: &Images<'_>,
        pool: &[f32],
        n_query: usize,
        runs: usize,
        seed: u64,
        cfg: &DetectronConfig,
        quiet: bool,
    ) -> Result<NullBank, ShiftError> {
        let mut bank = Self::empty(base, n_query, seed, cfg);
        bank.extend(base, p, pool, runs, None, quiet)?;
        Ok(bank)
    }

    /// The bank at `NullBank::path_next_to(next_to, n_query)` with at least `runs` runs: read
    /// when it exists for this base model, |Q|, seed and procedure, completed when it holds fewer
    /// runs (a killed computation resumes), merged from its shard parts when there are any
    /// ([`bank_shards::merge_parts`]; an error names the shards missing), computed otherwise;
    /// saved after every population.
    /// Returns the bank and whether any run was computed.
    #[allow(clippy::too_many_arguments)]
    pub fn load_or_compute(
        next_to: &Path,
        base: &BaseModel<'_>,
        p: &Images<'_>,
        pool: &[f32],
        n_query: usize,
        runs: usize,
        seed: u64,
        cfg: &DetectronConfig,
        quiet: bool,
    ) -> Result<(NullBank, bool), ShiftError> {
        let path = Self::path_next_to(next_to, n_query);
        let read = || match path.exists() {
            true => read_json::<NullBank>(&path)
                .ok()
                .filter(|b| b.matches(base, n_query, seed, cfg)),
            false => None,
        };
        let mut bank = read().unwrap_or_else(|| Self::empty(base, n_query, seed, cfg));
        if bank.runs.len() < runs {
            let empty = Self::empty(base, n_query, seed, cfg);
            let complete = || read().filter(|b| b.runs.len() >= runs);
            if let Some(merged) = bank_shards::merge_or_reread(&path, runs, &empty, complete)? {
                bank = merged;
            }
        }
        bank.config.threads = cfg.threads;
        bank.config.max_parallel = cfg.max_parallel;
        let before = bank.runs.len();
        bank.extend(base, p, pool, runs, Some(&path), quiet)?;
        Ok((bank.clone(), bank.runs.len() > before))
    }

    /// Never-rejected counts of the runs.
    pub fn counts(&self) -> Vec<f64> {
        self.runs.iter().map(|r| (r.n_query - r.rejected) as f64).collect()
    }

    /// Rejected counts of the runs.
    pub fn rejected(&self) -> Vec<f64> {
        self.runs.iter().map(|r| r.rejected as f64).collect()
    }

    /// The per-sample entropies of the runs `from..`, pooled.
    fn pooled_entropies(&self, skip: Option<usize>) -> Vec<f64> {
        self.runs
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != skip)
            .flat_map(|(_, r)| r.entropies.iter().copied())
            .collect()
    }

    /// All per-sample entropies of all runs, pooled.
    pub fn entropies(&self) -> Vec<f64> {
        self.pooled_entropies(None)
    }

    /// Each run's KS p-value against the pooled entropies of the other runs (the official
    /// analysis's null p-values).
    pub fn leave_one_out_p_values(&self) -> Result<Vec<f64>, ShiftError> {
        (0..self.runs.len())
            .map(|i| Ok(ks_2samp(&self.runs[i].entropies, &self.pooled_entropies(Some(i)), KsMethod::Auto)?.p_value))
            .collect()
    }
}

/// The largest cut c such that the fraction of `null` values strictly below c is ≤ α (the
/// official analysis's threshold on its grid): the (⌊α·n⌋+1)-th smallest value, +∞ when
/// ⌊α·n⌋ ≥ n. A test statistic below the cut rejects.
pub fn lower_tail_cut(null: &[f64], alpha: f64) -> f64 {
    let mut v = null.to_vec();
    v.sort_by(f64::total_cmp);
    let k = (alpha * v.len() as f64 + 1e-9).floor() as usize;
    v.get(k).copied().unwrap_or(f64::INFINITY)
}

/// The two Detectron tests of `run` against `bank`, as the official analysis does them:
/// - `detectron-disagreement`: statistic = rejected count (|Q| − never rejected); shift ⇔ the
///   never-rejected count is below [`lower_tail_cut`] of the null counts, i.e. the statistic
///   is above `threshold = |Q| − cut`; p = (1 + #{null rejected ≥ statistic})/(1 + runs);
/// - `detectron-entropy`: the KS p-value of the run's entropies against the pooled entropies
///   of all null runs but the first (the pool size of the leave-one-out null p-values);
///   statistic = −ln p; shift ⇔ p is below [`lower_tail_cut`] of the null runs' leave-one-out
///   p-values (`p_threshold`), i.e. the statistic is above `threshold = −ln p_threshold`.
pub fn decide(run: &DetectronRun, bank: &NullBank, alpha: f64) -> Result<[DetectionResult; 2], ShiftError> {
    if run.n_query != bank.n_query {
        return Err(ShiftError::Invalid(format!(
            "null bank is for |Q| = {}, the test has |Q| = {}",
            bank.n_query, run.n_query
        )));
    }
    if bank.runs.len() < 2 {
        return Err(ShiftError::Invalid(format!(
            "the null bank has {} runs, need at least 2",
            bank.runs.len()
        )));
    }
    let nq = run.n_query as f64;
    let count = nq - run.rejected as f64;
    let cut = lower_tail_cut(&bank.counts(), alpha).min(nq + 1.0);
    let p_dis = quantile_test(run.rejected as f64, &bank.rejected(), alpha)?.p_value;
    let dis = DetectionResult::new(
        "detectron-disagreement",
        run.rejected as f64,
        nq - cut,
        p_dis,
        count < cut,
        run.n_query,
        run.seed,
    );
    let null_p = bank.leave_one_out_p_values()?;
    let p_cut = lower_tail_cut(&null_p, alpha).min(1.0);
    let ks = ks_2samp(
        &run.entropies,
        &bank.runs[1..]
            .iter()
            .flat_map(|r| r.entropies.clone())
            .collect::<Vec<_>>(),
        KsMethod::Auto,
    )?;
    let ent = DetectionResult::new(
        "detectron-entropy",
        -ks.p_value.max(f64::MIN_POSITIVE).ln(),
        -p_cut.max(f64::MIN_POSITIVE).ln(),
        ks.p_value,
        ks.p_value < p_cut,
        run.n_query,
        run.seed,
    )
    .with("ks_statistic", ks.statistic)
    .with("p_threshold", p_cut)
    .with(
        "mean_entropy",
        run.entropies.iter().sum::<f64>() / run.entropies.len().max(1) as f64,
    );
    let common = |r: DetectionResult| {
        r.with("alpha", alpha)
            .with("budget", bank.config.budget.name())
            .with("batch", bank.config.batch_size)
            .with("epochs", bank.config.epochs)
            .with("ensemble", bank.config.ensemble)
            .with("cdcs", run.rounds())
            .with("steps", run.steps)
            .with("lambdas", run.lambdas.clone())
            .with("rounds", run.rounds())
            .with("remaining", run.remaining.clone())
            .with("null_runs", bank.runs.len())
            .with("null_counts", bank.counts())
    };
    Ok([common(dis), common(ent)])
}

/// One Detectron test of the query set `q` against `bank`: runs the procedure with `seed`, then
/// [`decide`]s both statistics; `extra.wall_s` holds the seconds the procedure took and
/// `p_images` the size of P.
pub fn detectron_test(
    base: &BaseModel<'_>,
    p: &Images<'_>,
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
    let np = p.count(base.spec, "Detectron P set")?;
    let start = std::time::Instant::now();
    let run = run_detectron(base, p, &[q], &[seed], cfg, quiet)?.remove(0);
    let wall = start.elapsed().as_secs_f64();
    let [a, b] = decide(&run, bank, cfg.alpha)?;
    let extra = |r: DetectionResult| r.with("wall_s", wall).with("p_images", np);
    Ok([extra(a), extra(b)])
}

#[cfg(test)]
mod tests;
