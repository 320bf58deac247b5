//! A zoo trained in shards: `zoo train --shard I/N --out DIR` trains models m ≡ I (mod N) as
//! the zoo `DIR/shard-I-of-N` (its manifest's `shard` field says which models it holds); shards
//! run anywhere, in any order, each resumable and under its own lock `DIR/.lock.shard-I-of-N`.
//! [`merge`] checks that every shard is present and at the same epoch and writes the whole zoo
//! into `DIR` itself: `W[K, D]` of every epoch with the rows in model order, the optimizer state
//! of the last epoch, and `manifest.json`, written last. The merged zoo equals the single run's
//! (same checkpoint bytes and metrics; timings are the shards' sums) and can be resumed by an
//! unsharded `zoo train` with a larger `--epochs`.

use super::manifest::{EpochRecord, Manifest};
use super::store::{self, Zoo};
use super::ZooError;
use crate::engine::Optimizer;
use crate::fsio::DirLock;
use crate::shard::Shard;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The models of a whole run that one shard zoo holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardPart {
    pub shard: Shard,
    /// K of the whole run (`--models`).
    pub total_models: usize,
    /// The run's indices of this zoo's models, ascending (`shard.indices(total_models)`).
    pub model_indices: Vec<usize>,
}

impl ShardPart {
    /// The part of `shard` in a run of `total_models` models.
    pub fn new(shard: Shard, total_models: usize) -> ShardPart {
        ShardPart {
            shard,
            total_models,
            model_indices: shard.indices(total_models),
        }
    }
}

/// The zoo folder of `shard` inside the sharded zoo `dir`.
pub fn shard_dir(dir: &Path, shard: Shard) -> PathBuf {
    dir.join(shard.tag())
}

/// The shard folders (`shard-I-of-N`) found in `dir`, sorted.
pub fn find_shards(dir: &Path) -> Result<Vec<Shard>, ZooError> {
    let entries = std::fs::read_dir(dir).map_err(|e| ZooError::io(dir, e))?;
    let mut found: Vec<Shard> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .filter_map(|e| match Shard::parse_tagged(&e.file_name().to_string_lossy()) {
            Some((s, "")) => Some(s),
            _ => None,
        })
        .collect();
    found.sort();
    Ok(found)
}

/// What [`merge`] wrote.
#[derive(Clone, Debug, PartialEq)]
pub struct MergeSummary {
    /// N, and the shards that hold models (those of index ≥ K hold none).
    pub shards: usize,
    pub shards_with_models: usize,
    pub models: usize,
    pub epochs: usize,
}

/// Why a sharded zoo cannot be merged yet: one line per shard that is missing, unreadable,
/// still running or behind the others.
fn not_ready(dir: &Path, problems: &[String]) -> ZooError {
    ZooError::format(
        dir,
        format!(
            "the sharded zoo is not complete:\n  {}\n(run or resume those shards with the same `zoo train ... --shard I/N` command, then merge again)",
            problems.join("\n  ")
        ),
    )
}

/// Merges the shard zoos of `dir` into the whole zoo in `dir` (see the module doc). Every shard
/// that owns models must be present and at the same epoch, `expect_epochs` when given (the
/// `--epochs` of the training command). Takes the folder's lock `.lock` and fails while a shard's
/// lock is held (that shard is still training).
pub fn merge(dir: &Path, expect_epochs: Option<usize>) -> Result<MergeSummary, ZooError> {
    let shards = find_shards(dir)?;
    let Some(first) = shards.first() else {
        return Err(ZooError::format(
            dir,
            "no shard folders (shard-I-of-N) here: train with `zoo train --shard I/N --out DIR`",
        ));
    };
    let n = first.count;
    if let Some(other) = shards.iter().find(|s| s.count != n) {
        return Err(ZooError::format(
            dir,
            format!(
                "holds shards of {n} and of {} parts ({} and {}): one sharded zoo per folder",
                other.count,
                first.tag(),
                other.tag()
            ),
        ));
    }
    let _lock = DirLock::acquire(dir).map_err(|e| ZooError::io(dir, e))?;
    let mut problems = Vec::new();
    let mut zoos: Vec<Zoo> = Vec::new();
    for s in &shards {
        match DirLock::acquire_named(dir, &s.lock_name()) {
            Ok(l) => drop(l),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                problems.push(format!("shard {s}: still running ({e})"));
                continue;
            }
            Err(e) => return Err(ZooError::io(dir.join(s.lock_name()), e)),
        }
        match Zoo::open(shard_dir(dir, *s)) {
            Ok(z) if z.manifest.shard.as_ref().map(|p| p.shard) == Some(*s) => zoos.push(z),
            Ok(z) => problems.push(format!("shard {s}: {} is not the zoo of that shard", z.dir.display())),
            Err(e) => problems.push(format!("shard {s}: incomplete ({e})")),
        }
    }
    let Some(z0) = zoos.first().cloned() else {
        return Err(not_ready(dir, &problems));
    };
    let total = z0.manifest.shard.as_ref().map_or(0, |p| p.total_models);
    let with_models: Vec<Shard> = Shard::all(n).filter(|s| !s.indices(total).is_empty()).collect();
    for s in &with_models {
        if !shards.contains(s) {
            problems.push(format!("shard {s}: missing (no folder {})", s.tag()));
        }
    }
    let most = zoos.iter().map(|z| z.manifest.epochs).max().unwrap_or(0);
    let epochs = expect_epochs.unwrap_or(most);
    if most > epochs {
        problems.push(format!("shards hold {most} epochs, more than the {epochs} asked for"));
    }
    let ident = |m: &Manifest| {
        let mut v = m.identity();
        v.retain(|(f, _)| *f != "models");
        (
            v,
            m.data.clone(),
            m.normalization,
            m.shard.as_ref().map(|p| p.total_models),
        )
    };
    for z in &zoos {
        let s = z.manifest.shard.as_ref().map(|p| p.shard).unwrap_or(*first);
        if ident(&z.manifest) != ident(&z0.manifest) {
            problems.push(format!(
                "shard {s}: trained with other settings than shard {} (compare their manifest.json)",
                z0.manifest.shard.as_ref().map_or(*first, |p| p.shard)
            ));
        } else if z.manifest.epochs < epochs {
            problems.push(format!(
                "shard {s}: incomplete, {} of {epochs} epochs",
                z.manifest.epochs
            ));
        }
    }
    if !problems.is_empty() {
        return Err(not_ready(dir, &problems));
    }
    let existing = dir.join(store::MANIFEST_FILE);
    if existing.exists() {
        let m = Manifest::read(&existing)?;
        if m.epochs > epochs {
            return Err(ZooError::format(
                &existing,
                format!(
                    "the merged zoo here was trained on to {} epochs, past the shards' {epochs}: not overwriting it",
                    m.epochs
                ),
            ));
        }
    }
    write_merged(dir, &zoos, total, epochs)?;
    Ok(MergeSummary {
        shards: n,
        shards_with_models: with_models.len(),
        models: total,
        epochs,
    })
}

/// Scatters row `r` of each shard's `[k_s, D]` matrix into row `model_indices[r]` of `[K, D]`.
fn scatter(out: &mut [f32], part: &ShardPart, rows: &[f32], d: usize) {
    for (r, &m) in part.model_indices.iter().enumerate() {
        out[m * d..(m + 1) * d].copy_from_slice(&rows[r * d..(r + 1) * d]);
    }
}

fn part_of(z: &Zoo) -> Result<&ShardPart, ZooError> {
    z.manifest
        .shard
        .as_ref()
        .ok_or_else(|| ZooError::format(&z.dir, "manifest has no shard"))
}

/// Writes the merged checkpoints, the last optimizer state and (last) the manifest.
fn write_merged(dir: &Path, zoos: &[Zoo], k: usize, epochs: usize) -> Result<(), ZooError> {
    let m0 = &zoos[0].manifest;
    let d = m0.dim;
    let mut history = Vec::with_capacity(epochs + 1);
    let mut model_seeds = vec![0u64; k];
    for z in zoos {
        for (r, &m) in part_of(z)?.model_indices.iter().enumerate() {
            model_seeds[m] = z.manifest.model_seeds[r];
        }
    }
    for e in 0..=epochs {
        let mut w = vec![0f32; k * d];
        let mut models = vec![m0.history[e].models[0]; k];
        let (mut train_s, mut eval_s) = (0.0, 0.0);
        for z in zoos {
            let part = part_of(z)?;
            scatter(&mut w, part, &z.load_epoch(e)?, d);
            let rec = &z.manifest.history[e];
            for (r, &m) in part.model_indices.iter().enumerate() {
                models[m] = rec.models[r];
            }
            train_s += rec.train_s;
            eval_s += rec.eval_s;
        }
        store::write_epoch(dir, e, &w, k, d)?;
        let imgs = (m0.data.train_images * k) as f64;
        history.push(EpochRecord {
            epoch: e,
            train_s,
            eval_s,
            train_img_per_s: if e == 0 || train_s <= 0.0 { 0.0 } else { imgs / train_s },
            models,
        });
    }
    if epochs > 0 {
        let mut opt = Optimizer::new(m0.optimizer, k * d);
        let mut step = None;
        for z in zoos {
            let part = part_of(z)?;
            let ks = part.model_indices.len();
            let o = store::read_optimizer(&z.dir, epochs, Optimizer::new(m0.optimizer, ks * d), ks)?;
            if step.is_some_and(|s| s != o.step) {
                return Err(ZooError::format(
                    z.dir.join(store::optimizer_file(epochs)),
                    format!("step count {} differs from the other shards' {step:?}", o.step),
                ));
            }
            step = Some(o.step);
            scatter(&mut opt.m, part, &o.m, d);
            if !opt.v.is_empty() {
                scatter(&mut opt.v, part, &o.v, d);
            }
        }
        opt.step = step.unwrap_or(0);
        store::write_optimizer(dir, epochs, &opt, k, d)?;
    }
    let manifest = Manifest {
        models: k,
        epochs,
        model_seeds,
        threads: zoos.iter().map(|z| z.manifest.threads).max().unwrap_or(1),
        history,
        shard: None,
        ..m0.clone()
    };
    manifest.check(&dir.join(store::MANIFEST_FILE))?;
    super::train::write_manifest(dir, &manifest)?;
    super::train::remove_stale(dir, epochs)
}
