//! Zoo training: K models in one [`Population`] with [`Input::PerModel`] minibatches, Adam
//! (torch L2 weight decay) over the flat `[K·D]` parameters, a checkpoint after every epoch,
//! and exact resume.
//!
//! Per-epoch protocol (the manifest is the commit point):
//! 1. write `epoch_{e}.safetensors`, 2. write `optimizer_{e}.safetensors`, 3. write
//!    `manifest.json` with `epochs = e`, 4. delete `optimizer_{e-1}`.
//!
//! A rerun reads `epochs` from the manifest, loads that epoch's weights and optimizer state and
//! continues; files of later, uncommitted epochs are overwritten. All randomness is a function
//! of (model seed, epoch, step), so a resumed run writes the same bytes as an uninterrupted one
//! with the same thread count.
//!
//! [`train_shard`] trains only the models of one shard (`--shard I/N`: models m ≡ I mod N, with
//! the seeds `derive_seed(seed, "model", m)` of the whole run) into `<out>/shard-I-of-N`; the
//! engine runs each model independently of the others in its population, so a shard's models
//! are bit-identical to the same models of the whole run ([`super::shards::merge`] joins them).

use super::eval::{argmax, evaluate};
use super::manifest::{identity_fields, DataInfo, EpochRecord, Manifest, ModelMetrics, FORMAT_NAME, FORMAT_VERSION};
use super::shards::ShardPart;
use super::store::{self, Zoo, MANIFEST_FILE};
use super::ZooError;
use crate::data::{Dataset, Normalization};
use crate::engine::rng::{derive_seed, stream};
use crate::engine::{Input, Mode, Objective, OptimConfig, Optimizer, Population};
use crate::nets::init::InitScheme;
use crate::nets::{Activation, ArchSpec};
use crate::shard::Shard;
use rand::seq::SliceRandom;
use std::path::Path;
use std::time::Instant;

/// Everything `zoo train` needs.
#[derive(Clone, Debug)]
pub struct TrainConfig {
    /// Dataset specs for `data::load`.
    pub train_spec: String,
    pub test_spec: String,
    /// Architecture name (`cnn3`, `small-cnn`, `mlp`) and activation.
    pub arch: String,
    pub act: Activation,
    pub init: InitScheme,
    /// K.
    pub models: usize,
    /// Train until this many epochs are complete (a resumed run may raise it).
    pub epochs: usize,
    pub batch: usize,
    pub optimizer: OptimConfig,
    /// Fraction of the training spec held out for validation (stratified, seeded by `seed`).
    pub val_fraction: f32,
    pub seed: u64,
    pub threads: usize,
}

/// What the training loop reports (the CLI draws a progress bar from it).
#[derive(Clone, Debug)]
pub enum TrainEvent<'a> {
    /// Data loaded; training starts after `from_epoch` completed epochs.
    Start {
        from_epoch: usize,
        epochs: usize,
        steps_per_epoch: usize,
        models: usize,
        train_images: usize,
    },
    /// One minibatch step done; `mean_acc` is the running training accuracy of this epoch
    /// averaged over the models.
    Step {
        epoch: usize,
        step: usize,
        img_per_s: f64,
        mean_acc: f64,
    },
    /// An epoch was evaluated and committed to disk.
    Epoch(&'a EpochRecord),
}

fn data_err(spec: &str, reason: impl Into<String>) -> ZooError {
    ZooError::Data {
        spec: spec.to_string(),
        reason: reason.into(),
    }
}

/// The datasets of a run.
struct Splits {
    train: Dataset,
    val: Dataset,
    test: Dataset,
    norm: Normalization,
}

fn load_splits(cfg: &TrainConfig) -> Result<Splits, ZooError> {
    let full = crate::data::load(&cfg.train_spec).map_err(|e| data_err(&cfg.train_spec, e.to_string()))?;
    let test = crate::data::load(&cfg.test_spec).map_err(|e| data_err(&cfg.test_spec, e.to_string()))?;
    for ds in [&full, &test] {
        ds.require_labels("training a zoo")
            .map_err(|e| data_err(&ds.name, e.to_string()))?;
    }
    let (train, val) = full.split(cfg.val_fraction, cfg.seed);
    if train.is_empty() {
        return Err(data_err(
            &cfg.train_spec,
            "no training images left after the validation split",
        ));
    }
    if test.is_empty() {
        return Err(data_err(&cfg.test_spec, "the test set is empty"));
    }
    if test.num_classes() > full.num_classes() {
        return Err(data_err(
            &cfg.test_spec,
            format!(
                "{} classes, the training set has {}",
                test.num_classes(),
                full.num_classes()
            ),
        ));
    }
    let norm = Normalization::from_dataset(&train);
    Ok(Splits { train, val, test, norm })
}

fn check_config(cfg: &TrainConfig) -> Result<(), ZooError> {
    let bad = |s: &str| Err(ZooError::Invalid(s.to_string()));
    if cfg.models == 0 {
        return bad("--models must be at least 1");
    }
    if cfg.batch == 0 {
        return bad("--batch must be at least 1");
    }
    if !(0.0..1.0).contains(&cfg.val_fraction) {
        return bad("--val-fraction must be in [0, 1)");
    }
    if !(cfg.optimizer.lr() > 0.0 && cfg.optimizer.lr().is_finite()) {
        return bad("--lr must be positive");
    }
    let wd = cfg.optimizer.weight_decay();
    if !(wd >= 0.0 && wd.is_finite()) {
        return Err(ZooError::Invalid(format!("--weight-decay {wd}: must be a number ≥ 0")));
    }
    Ok(())
}

fn metrics_for(
    spec: &ArchSpec,
    w: &[f32],
    k: usize,
    s: &Splits,
    threads: usize,
    train_running: Option<(&[f64], &[f64])>,
) -> Result<Vec<ModelMetrics>, ZooError> {
    let test = evaluate(spec, w, k, &s.test, &s.norm, threads)?;
    let val = if s.val.is_empty() {
        None
    } else {
        Some(evaluate(spec, w, k, &s.val, &s.norm, threads)?)
    };
    let (tl, ta) = match train_running {
        Some((l, a)) => (l.to_vec(), a.to_vec()),
        None => {
            let r = evaluate(spec, w, k, &s.train, &s.norm, threads)?;
            (r.loss, r.acc)
        }
    };
    Ok((0..k)
        .map(|m| ModelMetrics {
            train_loss: tl[m],
            train_acc: ta[m],
            val_loss: val.as_ref().map(|v| v.loss[m]),
            val_acc: val.as_ref().map(|v| v.acc[m]),
            test_loss: test.loss[m],
            test_acc: test.acc[m],
        })
        .collect())
}

/// Trains (or resumes) the zoo in `out` and returns it opened.
pub fn train(
    cfg: &TrainConfig,
    out: &Path,
    on_event: &mut (dyn FnMut(TrainEvent<'_>) + Send),
) -> Result<Zoo, ZooError> {
    check_config(cfg)?;
    in_pool(cfg, |cfg| train_in_pool(cfg, None, out, on_event))?
}

/// Trains (or resumes) the models of `shard` of the zoo `cfg` describes, as the zoo
/// `<dir>/shard-I-of-N` ([`super::shards::shard_dir`]), and returns it opened. A shard that owns
/// none of the `cfg.models` models is an error (check [`crate::shard::Shard::indices`] first).
pub fn train_shard(
    cfg: &TrainConfig,
    shard: Shard,
    dir: &Path,
    on_event: &mut (dyn FnMut(TrainEvent<'_>) + Send),
) -> Result<Zoo, ZooError> {
    check_config(cfg)?;
    let part = ShardPart::new(shard, cfg.models);
    if part.model_indices.is_empty() {
        return Err(ZooError::Invalid(format!(
            "--shard {shard} owns none of the {} models (--models)",
            cfg.models
        )));
    }
    let out = super::shards::shard_dir(dir, shard);
    in_pool(cfg, |cfg| train_in_pool(cfg, Some(part), &out, on_event))?
}

fn in_pool<T: Send>(cfg: &TrainConfig, f: impl FnOnce(&TrainConfig) -> T + Send) -> Result<T, ZooError> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(cfg.threads.max(1))
        .build()
        .map_err(|e| ZooError::Invalid(format!("--threads {}: {e}", cfg.threads)))?;
    Ok(pool.install(|| f(cfg)))
}

fn train_in_pool(
    cfg: &TrainConfig,
    part: Option<ShardPart>,
    out: &Path,
    on_event: &mut (dyn FnMut(TrainEvent<'_>) + Send),
) -> Result<Zoo, ZooError> {
    let s = load_splits(cfg)?;
    let classes = s.train.num_classes();
    let spec = ArchSpec::by_name(&cfg.arch, s.train.shape[0], classes, cfg.act)?;
    spec.shapes()?;
    if s.train.shape != spec.input {
        return Err(data_err(
            &cfg.train_spec,
            format!("images are {:?}, {} takes {:?}", s.train.shape, spec.name, spec.input),
        ));
    }
    let layout = spec.layout();
    // the models of this run: all of them, or those of the shard
    let model_ids: Vec<usize> = match &part {
        Some(p) => p.model_indices.clone(),
        None => (0..cfg.models).collect(),
    };
    let (k, d) = (model_ids.len(), layout.dim());
    // weights, gradients and two Adam moments of K models, before anything is allocated
    crate::limits::check_alloc(
        &format!("--models {k} of {} ({d} weights each)", spec.name),
        crate::limits::product(&[k, d, 4 * 4]),
    )
    .map_err(|e| ZooError::Invalid(e.to_string()))?;
    let threads = cfg.threads.max(1);
    let manifest_path = out.join(MANIFEST_FILE);
    let data_info = DataInfo {
        train_images: s.train.len(),
        val_images: s.val.len(),
        test_images: s.test.len(),
        class_names: s.train.class_names.clone(),
    };

    let (mut manifest, mut w, mut opt) = if manifest_path.exists() {
        let zoo = Zoo::open(out)?;
        let m = zoo.manifest.clone();
        if m.shard != part {
            let show = |p: &Option<ShardPart>| p.as_ref().map_or("none".to_string(), |p| p.shard.to_string());
            return Err(ZooError::Mismatch {
                path: manifest_path,
                field: "shard".into(),
                existing: show(&m.shard),
                requested: show(&part),
            });
        }
        let want = identity_fields(
            &spec,
            k,
            &cfg.train_spec,
            &cfg.test_spec,
            cfg.val_fraction,
            cfg.init,
            cfg.batch,
            &cfg.optimizer,
            cfg.seed,
        );
        for ((field, have), (_, req)) in m.identity().into_iter().zip(want) {
            if have != req {
                return Err(ZooError::Mismatch {
                    path: manifest_path,
                    field: field.to_string(),
                    existing: have,
                    requested: req,
                });
            }
        }
        if m.data != data_info || m.normalization != s.norm {
            return Err(ZooError::Mismatch {
                path: manifest_path,
                field: "data (image counts, classes or normalization)".into(),
                existing: format!("{:?}", m.data),
                requested: format!("{:?}", data_info),
            });
        }
        let w = zoo.load_epoch(m.epochs)?;
        let fresh = Optimizer::new(cfg.optimizer, k * d);
        let opt = if m.epochs == 0 {
            fresh
        } else {
            store::read_optimizer(out, m.epochs, fresh, k)?
        };
        (m, w, opt)
    } else {
        if out.exists() {
            let foreign = std::fs::read_dir(out)
                .map_err(|e| ZooError::io(out, e))?
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .find(|n| !is_zoo_file(n));
            if let Some(f) = foreign {
                return Err(ZooError::format(
                    out,
                    format!("exists, has no {MANIFEST_FILE} and holds '{f}': not a zoo directory"),
                ));
            }
        }
        std::fs::create_dir_all(out).map_err(|e| ZooError::io(out, e))?;
        let model_seeds: Vec<u64> = model_ids
            .iter()
            .map(|&m| derive_seed(cfg.seed, "model", m as u64))
            .collect();
        let mut w = vec![0f32; k * d];
        for (m, wk) in w.chunks_mut(d).enumerate() {
            cfg.init.fill(&layout, wk, &mut stream(model_seeds[m], "init", 0));
        }
        let t0 = Instant::now();
        let models = metrics_for(&spec, &w, k, &s, threads, None)?;
        let rec0 = EpochRecord {
            epoch: 0,
            train_s: 0.0,
            eval_s: t0.elapsed().as_secs_f64(),
            train_img_per_s: 0.0,
            models,
        };
        store::write_epoch(out, 0, &w, k, d)?;
        let m = Manifest {
            format: FORMAT_NAME.into(),
            format_version: FORMAT_VERSION,
            arch: spec.clone(),
            layout: layout.clone(),
            dim: d,
            models: k,
            epochs: 0,
            train_spec: cfg.train_spec.clone(),
            test_spec: cfg.test_spec.clone(),
            val_fraction: cfg.val_fraction,
            normalization: s.norm,
            data: data_info,
            init: cfg.init,
            batch: cfg.batch,
            optimizer: cfg.optimizer,
            seed: cfg.seed,
            model_seeds,
            threads,
            weights_tensor: super::manifest::WEIGHTS_TENSOR.into(),
            history: vec![rec0],
            shard: part.clone(),
        };
        write_manifest(out, &m)?;
        on_event(TrainEvent::Epoch(&m.history[0]));
        (m, w, Optimizer::new(cfg.optimizer, k * d))
    };
    remove_stale(out, manifest.epochs)?;

    let n = s.train.len();
    let b = cfg.batch;
    let steps = n.div_ceil(b);
    on_event(TrainEvent::Start {
        from_epoch: manifest.epochs,
        epochs: cfg.epochs,
        steps_per_epoch: steps,
        models: k,
        train_images: n,
    });
    let mut x: Vec<f32> = Vec::new();
    let mut labels: Vec<u32> = Vec::with_capacity(k * b);
    for epoch in manifest.epochs + 1..=cfg.epochs {
        let t0 = Instant::now();
        // [K][n] data order of each model in this epoch
        let orders: Vec<Vec<usize>> = manifest
            .model_seeds
            .iter()
            .map(|&ms| {
                let mut p: Vec<usize> = (0..n).collect();
                p.shuffle(&mut stream(ms, "data-order", epoch as u64));
                p
            })
            .collect();
        let mut loss_sum = vec![0f64; k];
        let mut correct = vec![0usize; k];
        let mut seen = 0usize;
        for step in 0..steps {
            let (lo, hi) = (step * b, ((step + 1) * b).min(n));
            let nb = hi - lo;
            x.clear();
            labels.clear();
            for order in &orders {
                let idx = &order[lo..hi];
                x.extend(s.train.to_tensor(idx, &s.norm)); // [nb, C, H, W]
                labels.extend(idx.iter().map(|&i| s.train.labels[i]));
            } // x: [K, nb, C, H, W], labels: [K·nb]
            let global_step = ((epoch - 1) * steps + step) as u64;
            let seeds: Vec<u64> = manifest
                .model_seeds
                .iter()
                .map(|&ms| derive_seed(ms, "dropout", global_step))
                .collect();
            let g = {
                let pop = Population::new(&spec, &w, k, threads)?;
                let obj = Objective::Classify {
                    labels: &labels,
                    kinds: None,
                    weights: None,
                };
                pop.gradient(Input::PerModel(&x), nb, &obj, Mode::Train { seeds: &seeds }, false)?
            };
            for m in 0..k {
                if !g.loss[m].is_finite() {
                    return Err(ZooError::Invalid(format!(
                        "model {m} diverged (loss {}) in epoch {epoch}, step {step}: lower --lr",
                        g.loss[m]
                    )));
                }
                loss_sum[m] += g.loss[m] as f64 * nb as f64;
                for r in 0..nb {
                    let z = &g.logits[(m * nb + r) * classes..(m * nb + r + 1) * classes];
                    if argmax(z) == labels[m * nb + r] as usize {
                        correct[m] += 1;
                    }
                }
            }
            seen += nb;
            opt.update(&mut w, &g.dw);
            let el = t0.elapsed().as_secs_f64().max(1e-9);
            on_event(TrainEvent::Step {
                epoch,
                step: step + 1,
                img_per_s: (seen * k) as f64 / el,
                mean_acc: correct.iter().sum::<usize>() as f64 / (seen * k) as f64,
            });
        }
        let train_s = t0.elapsed().as_secs_f64();
        let tl: Vec<f64> = loss_sum.iter().map(|l| l / n as f64).collect();
        let ta: Vec<f64> = correct.iter().map(|&c| c as f64 / n as f64).collect();
        let t1 = Instant::now();
        let models = metrics_for(&spec, &w, k, &s, threads, Some((&tl, &ta)))?;
        let rec = EpochRecord {
            epoch,
            train_s,
            eval_s: t1.elapsed().as_secs_f64(),
            train_img_per_s: (n * k) as f64 / train_s.max(1e-9),
            models,
        };
        store::write_epoch(out, epoch, &w, k, d)?;
        store::write_optimizer(out, epoch, &opt, k, d)?;
        manifest.epochs = epoch;
        manifest.threads = threads;
        manifest.history.push(rec);
        write_manifest(out, &manifest)?;
        remove_file_if_exists(&out.join(store::optimizer_file(epoch - 1)))?;
        on_event(TrainEvent::Epoch(&manifest.history[epoch]));
    }
    Ok(Zoo {
        dir: out.to_path_buf(),
        manifest,
    })
}

pub(crate) fn write_manifest(out: &Path, m: &Manifest) -> Result<(), ZooError> {
    let path = out.join(MANIFEST_FILE);
    let text = serde_json::to_string_pretty(m).map_err(|e| ZooError::format(&path, e.to_string()))?;
    store::write_atomic(&path, text.as_bytes())
}

/// Whether `name` is a file this module writes into a zoo directory.
fn is_zoo_file(name: &str) -> bool {
    let name = crate::fsio::temp_target(name).unwrap_or(name);
    name == MANIFEST_FILE
        || crate::fsio::is_lock_file(name)
        || ((name.starts_with("epoch_") || name.starts_with("optimizer_")) && name.ends_with(".safetensors"))
}

fn remove_file_if_exists(p: &Path) -> Result<(), ZooError> {
    match std::fs::remove_file(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ZooError::io(p, e)),
    }
}

/// Removes temp files, checkpoints of uncommitted epochs and optimizer states other than the
/// one of the committed epoch `done`.
pub(crate) fn remove_stale(out: &Path, done: usize) -> Result<(), ZooError> {
    let entries = std::fs::read_dir(out).map_err(|e| ZooError::io(out, e))?;
    for entry in entries.filter_map(|e| e.ok()) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let num = |prefix: &str| {
            name.strip_prefix(prefix)
                .and_then(|r| r.strip_suffix(".safetensors"))
                .and_then(|r| r.parse::<usize>().ok())
        };
        let stale = name.ends_with(".tmp")
            || num("epoch_").is_some_and(|e| e > done)
            || num("optimizer_").is_some_and(|e| e != done);
        if stale {
            remove_file_if_exists(&entry.path())?;
        }
    }
    Ok(())
}
