//! `weightflow zoo train|merge|info|eval|export`: model zoos on the command line.

use super::choices::{name, ActivationArg, ArchArg, InitArg};
use crate::engine::OptimConfig;
use crate::shard::Shard;
use crate::zoo::manifest::{mean, std_dev};
use crate::zoo::{self, TrainConfig, TrainEvent, Zoo};
use anyhow::Context;
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;

/// `weightflow zoo ...`
#[derive(Args, Debug)]
pub struct ZooArgs {
    #[command(subcommand)]
    pub command: ZooCommand,
}

/// Zoo subcommands.
#[derive(Subcommand, Debug)]
pub enum ZooCommand {
    /// Train K models together, keeping every epoch; rerun the same command to resume.
    Train(TrainArgs),
    /// Join the shards of `zoo train --shard I/N --out DIR` into the whole zoo in DIR.
    Merge(MergeArgs),
    /// Summary and per-model, per-epoch metrics of a zoo.
    Info(InfoArgs),
    /// Evaluate every model of a zoo on a dataset.
    Eval(EvalArgs),
    /// Write one model as a PyTorch-loadable state_dict (safetensors) plus a Python snippet.
    Export(ExportArgs),
}

/// Arguments of `zoo train` (defaults: the ModelZoo CNN3 recipe of DESIGN.md).
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Training dataset spec, e.g. `mnist:/work/shared/data/mnist:train`.
    #[arg(long)]
    pub data: String,
    /// Test dataset spec, e.g. `mnist:/work/shared/data/mnist:test`.
    #[arg(long)]
    pub test: String,
    /// Architecture.
    #[arg(long, value_enum, default_value_t = ArchArg::Cnn3)]
    pub arch: ArchArg,
    /// Number of models K.
    #[arg(long, default_value_t = 16)]
    pub models: usize,
    /// Epochs to complete (a rerun with a larger value continues training).
    #[arg(long, default_value_t = 50)]
    pub epochs: usize,
    /// Images per minibatch of each model.
    #[arg(long, default_value_t = 10)]
    pub batch: usize,
    /// Adam learning rate.
    #[arg(long, default_value_t = 1e-4)]
    pub lr: f32,
    /// L2 weight decay added to the gradient (torch Adam).
    #[arg(long, default_value_t = 1e-2)]
    pub weight_decay: f32,
    /// Activation.
    #[arg(long, value_enum, default_value_t = ActivationArg::Gelu)]
    pub act: ActivationArg,
    /// Weight initialization.
    #[arg(long, value_enum, default_value_t = InitArg::KaimingUniform)]
    pub init: InitArg,
    /// Fraction of the training data held out for validation (stratified, seeded); 0 = train
    /// on all of it. The paper's CIFAR-10 zoo holds out 8k of 50k: 0.16.
    #[arg(long, default_value_t = 0.0)]
    pub val_fraction: f32,
    /// Seed of the models' initializations, the data order and the validation split.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Worker threads [default: all cores]; the same seed and threads give the same bytes.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Output directory (created; an existing zoo there is resumed).
    #[arg(long)]
    pub out: PathBuf,
    /// Train only shard I of N (0-based): models m with m mod N = I, with the whole run's seeds,
    /// as the zoo OUT/shard-I-of-N; shards may run at the same time on a shared filesystem, and
    /// `zoo merge OUT` joins them into the whole zoo.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<Shard>,
    /// No progress bar or per-epoch lines on stderr.
    #[arg(long)]
    pub quiet: bool,
    /// Print the zoo's summary (as `zoo info --json`, without the per-epoch tables) as one JSON
    /// object.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `zoo merge`.
#[derive(Args, Debug)]
pub struct MergeArgs {
    /// The folder the shards were trained into (`--out` of `zoo train --shard I/N`).
    pub dir: PathBuf,
    /// Require this many epochs in every shard (the training command's `--epochs`); default:
    /// every shard at the same epoch.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `zoo info`.
#[derive(Args, Debug)]
pub struct InfoArgs {
    /// Zoo directory.
    pub dir: PathBuf,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `zoo eval`.
#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Zoo directory.
    pub dir: PathBuf,
    /// Dataset spec to evaluate on.
    #[arg(long)]
    pub data: String,
    /// Epoch [default: the last].
    #[arg(long)]
    pub epoch: Option<usize>,
    /// Worker threads [default: all cores].
    #[arg(long)]
    pub threads: Option<usize>,
    /// No progress output on stderr.
    #[arg(long)]
    pub quiet: bool,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `zoo export`.
#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Zoo directory.
    pub dir: PathBuf,
    /// The model to export.
    #[arg(long, required_unless_present = "all", conflicts_with = "all")]
    pub model: Option<usize>,
    /// Export every model of the zoo: --out is then a directory that receives
    /// `model_K.safetensors` and `model_K.py` for each model K.
    #[arg(long)]
    pub all: bool,
    /// Epoch [default: the last].
    #[arg(long)]
    pub epoch: Option<usize>,
    /// Output safetensors file (the importable Python module goes next to it as `.py`), or the
    /// output directory with --all.
    #[arg(long)]
    pub out: PathBuf,
    /// Print one JSON object (the files written and the snippet) instead of the snippet.
    #[arg(long)]
    pub json: bool,
}

/// Runs a zoo subcommand.
pub fn run(args: ZooArgs) -> anyhow::Result<()> {
    match args.command {
        ZooCommand::Train(a) => train(a),
        ZooCommand::Merge(a) => merge(a),
        ZooCommand::Info(a) => info(a),
        ZooCommand::Eval(a) => eval(a),
        ZooCommand::Export(a) => export(a),
    }
}

fn default_threads(t: Option<usize>) -> usize {
    t.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1))
        .max(1)
}

fn train(a: TrainArgs) -> anyhow::Result<()> {
    // a shard locks only its own part (`.lock.shard-I-of-N`), the whole run the folder
    let _lock = crate::fsio::lock_output(&a.out, a.shard.map(|s| (s.index, s.count)))
        .with_context(|| format!("--out {}", a.out.display()))?;
    let cfg = TrainConfig {
        train_spec: a.data,
        test_spec: a.test,
        arch: name(&a.arch),
        act: a.act.into(),
        init: a.init.into(),
        models: a.models,
        epochs: a.epochs,
        batch: a.batch,
        optimizer: OptimConfig::adam(a.lr, a.weight_decay),
        val_fraction: a.val_fraction,
        seed: a.seed,
        threads: default_threads(a.threads),
    };
    let quiet = a.quiet;
    let mut bar: Option<ProgressBar> = None;
    let mut steps_per_epoch = 1;
    let mut on_event = |ev: TrainEvent<'_>| {
        if quiet {
            return;
        }
        match ev {
            TrainEvent::Start {
                from_epoch,
                epochs,
                steps_per_epoch: s,
                models,
                train_images,
            } => {
                steps_per_epoch = s;
                if from_epoch > 0 {
                    eprintln!("resuming after epoch {from_epoch}");
                }
                eprintln!("{models} models × {train_images} training images, epochs {from_epoch}→{epochs}");
                let total = (epochs.saturating_sub(from_epoch) * s) as u64;
                let pb = ProgressBar::new(total);
                pb.set_style(
                    ProgressStyle::with_template("{bar:30} {pos}/{len} steps  {msg}  ETA {eta}")
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                bar = Some(pb);
            }
            TrainEvent::Step {
                epoch,
                step,
                img_per_s,
                mean_acc,
            } => {
                if let Some(pb) = &bar {
                    pb.inc(1);
                    if step % 20 == 0 || step == steps_per_epoch {
                        pb.set_message(format!(
                            "epoch {epoch}  {img_per_s:.0} img/s  train acc {:.2}%",
                            100.0 * mean_acc
                        ));
                    }
                }
            }
            TrainEvent::Epoch(r) => {
                let line = format!(
                    "epoch {:3}: mean test acc {:.2}%  train acc {:.2}%  ({:.0} img/s, train {:.1}s, eval {:.1}s)",
                    r.epoch,
                    100.0 * r.mean_test_acc(),
                    100.0 * mean(r.models.iter().map(|m| m.train_acc)),
                    r.train_img_per_s,
                    r.train_s,
                    r.eval_s
                );
                match &bar {
                    Some(pb) if !pb.is_hidden() => pb.println(line),
                    _ => eprintln!("{line}"),
                }
            }
        }
    };
    let z = match a.shard {
        None => zoo::train(&cfg, &a.out, &mut on_event)?,
        Some(shard) => {
            if shard.indices(cfg.models).is_empty() {
                if !quiet {
                    eprintln!("shard {shard} owns none of the {} models: nothing to do", cfg.models);
                }
                return Ok(());
            }
            zoo::train_shard(&cfg, shard, &a.out, &mut on_event)?
        }
    };
    if let Some(pb) = bar {
        pb.finish_and_clear();
    }
    if a.json {
        println!("{}", serde_json::to_string(&summary(&z))?);
    } else {
        let last = &z.manifest.history[z.manifest.epochs];
        println!(
            "{}: {} models, {} epochs, mean test acc {:.2}%",
            z.dir.display(),
            z.manifest.models,
            z.manifest.epochs,
            100.0 * last.mean_test_acc()
        );
        if let Some(p) = &z.manifest.shard {
            eprintln!(
                "shard {} done (models {:?}); once every shard is done: weightflow zoo merge {}",
                p.shard,
                p.model_indices,
                a.out.display()
            );
        }
    }
    Ok(())
}

fn merge(a: MergeArgs) -> anyhow::Result<()> {
    let s = zoo::merge(&a.dir, a.epochs)?;
    if a.json {
        let doc = serde_json::json!({"path": a.dir.display().to_string(), "shards": s.shards,
            "shards_with_models": s.shards_with_models, "models": s.models, "epochs": s.epochs});
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        println!(
            "{}: merged {} shards into {} models × {} epochs",
            a.dir.display(),
            s.shards_with_models,
            s.models,
            s.epochs
        );
    }
    Ok(())
}

/// Summary statistics of the zoo's last epoch (accuracies as fractions; timings under keys
/// naming seconds, so a tool can compare two zoos without them).
pub fn summary(z: &Zoo) -> serde_json::Value {
    let m = &z.manifest;
    let last = &m.history[m.epochs];
    let accs: Vec<f64> = last.models.iter().map(|x| x.test_acc).collect();
    let mut order: Vec<usize> = (0..accs.len()).collect();
    order.sort_by(|&i, &j| accs[j].total_cmp(&accs[i]).then(i.cmp(&j)));
    let top5: Vec<serde_json::Value> = order
        .iter()
        .take(5)
        .map(|&i| serde_json::json!({"model": i, "test_acc": accs[i]}))
        .collect();
    let trained: Vec<&zoo::EpochRecord> = m.history.iter().skip(1).collect();
    let train_s: f64 = trained.iter().map(|r| r.train_s).sum();
    let eval_s: f64 = m.history.iter().map(|r| r.eval_s).sum();
    let imgs = (m.data.train_images * m.models * trained.len()) as f64;
    serde_json::json!({
        "path": z.dir.display().to_string(),
        "arch": m.arch.name,
        "dim": m.dim,
        "models": m.models,
        "epochs": m.epochs,
        "train_spec": m.train_spec,
        "test_spec": m.test_spec,
        "data": m.data,
        "normalization": m.normalization,
        "optimizer": m.optimizer,
        "batch": m.batch,
        "seed": m.seed,
        "threads": m.threads,
        "mean_test_acc": mean(accs.iter().copied()),
        "std_test_acc": std_dev(&accs),
        "min_test_acc": accs.iter().copied().fold(f64::INFINITY, f64::min),
        "max_test_acc": accs.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        "top5_mean_test_acc": mean(order.iter().take(5).map(|&i| accs[i])),
        "top5_test_acc": top5,
        "mean_val_acc": last.models.iter().map(|x| x.val_acc).collect::<Option<Vec<f64>>>().map(|v| mean(v.into_iter())),
        "mean_train_acc": mean(last.models.iter().map(|x| x.train_acc)),
        "train_seconds": train_s,
        "eval_seconds": eval_s,
        "train_img_per_second": if train_s > 0.0 { imgs / train_s } else { 0.0 },
    })
}

fn info(a: InfoArgs) -> anyhow::Result<()> {
    let z = Zoo::open(&a.dir)?;
    let m = &z.manifest;
    let mut s = summary(&z);
    if a.json {
        let per_epoch: Vec<serde_json::Value> = m
            .history
            .iter()
            .map(|r| {
                let accs: Vec<f64> = r.models.iter().map(|x| x.test_acc).collect();
                serde_json::json!({"epoch": r.epoch, "mean_test_acc": mean(accs.iter().copied()),
                    "std_test_acc": std_dev(&accs), "train_seconds": r.train_s, "eval_seconds": r.eval_s,
                    "train_img_per_second": r.train_img_per_s})
            })
            .collect();
        let per_model: Vec<serde_json::Value> = (0..m.models)
            .map(|k| {
                let ep: Vec<&zoo::ModelMetrics> = m.history.iter().map(|r| &r.models[k]).collect();
                serde_json::json!({"model": k, "seed": m.model_seeds[k], "epochs": ep})
            })
            .collect();
        s["per_epoch"] = serde_json::Value::Array(per_epoch);
        s["per_model"] = serde_json::Value::Array(per_model);
        println!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(());
    }
    let pct = |k: &str| s[k].as_f64().unwrap_or(f64::NAN) * 100.0;
    println!(
        "{}: {} × {} (D = {}), {} epochs on {} (test {})",
        a.dir.display(),
        m.models,
        m.arch.name,
        m.dim,
        m.epochs,
        m.train_spec,
        m.test_spec
    );
    println!(
        "test accuracy: mean {:.2}%  std {:.2}  min {:.2}%  max {:.2}%  top-5 mean {:.2}%",
        pct("mean_test_acc"),
        pct("std_test_acc"),
        pct("min_test_acc"),
        pct("max_test_acc"),
        pct("top5_mean_test_acc")
    );
    println!(
        "training: {:.0} s, {:.0} img/s over all models",
        s["train_seconds"].as_f64().unwrap_or(0.0),
        s["train_img_per_second"].as_f64().unwrap_or(0.0)
    );
    println!("epoch  mean test acc  mean train acc");
    for r in &m.history {
        println!(
            "{:5}  {:12.2}%  {:13.2}%",
            r.epoch,
            100.0 * r.mean_test_acc(),
            100.0 * mean(r.models.iter().map(|x| x.train_acc))
        );
    }
    Ok(())
}

fn eval(a: EvalArgs) -> anyhow::Result<()> {
    let z = Zoo::open(&a.dir)?;
    let m = &z.manifest;
    let epoch = a.epoch.unwrap_or(m.epochs);
    let w = z.load_epoch(epoch)?;
    let ds = crate::data::load(&a.data).with_context(|| format!("--data {}", a.data))?;
    ds.require_labels("zoo eval (accuracy)")?;
    let threads = default_threads(a.threads);
    if !a.quiet {
        eprintln!("evaluating {} models at epoch {epoch} on {} images", m.models, ds.len());
    }
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build()?;
    let r = pool.install(|| zoo::evaluate(&m.arch, &w, m.models, &ds, &m.normalization, threads))?;
    let out = serde_json::json!({
        "dir": a.dir.display().to_string(), "data": a.data, "epoch": epoch, "images": ds.len(),
        "mean_acc": mean(r.acc.iter().copied()), "std_acc": std_dev(&r.acc),
        "mean_loss": mean(r.loss.iter().copied()), "acc": r.acc, "loss": r.loss,
        "disagreement": r.disagreement,
    });
    if a.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!(
            "{} epoch {epoch} on {} ({} images): mean acc {:.2}% ± {:.2}, mean loss {:.4}, pairwise disagreement {}",
            a.dir.display(),
            a.data,
            ds.len(),
            100.0 * mean(r.acc.iter().copied()),
            100.0 * std_dev(&r.acc),
            mean(r.loss.iter().copied()),
            r.disagreement
                .map_or("n/a".to_string(), |d| format!("{:.2}%", 100.0 * d))
        );
    }
    Ok(())
}

fn export(a: ExportArgs) -> anyhow::Result<()> {
    let z = Zoo::open(&a.dir)?;
    let epoch = a.epoch.unwrap_or(z.manifest.epochs);
    let Some(model) = a.model.filter(|_| !a.all) else {
        let _lock = crate::fsio::DirLock::acquire(&a.out).with_context(|| format!("--out {}", a.out.display()))?;
        let mut files = Vec::new();
        for k in 0..z.manifest.models {
            let out = a.out.join(format!("model_{k}.safetensors"));
            zoo::export::export_model(&z, k, epoch, &out)?;
            if !a.json {
                println!("{} {}", out.display(), out.with_extension("py").display());
            }
            files.push(serde_json::json!({"model": k, "safetensors": out, "python": out.with_extension("py")}));
        }
        if a.json {
            let doc = serde_json::json!({"dir": a.dir, "epoch": epoch, "out": a.out, "models": files});
            println!("{}", serde_json::to_string(&doc)?);
        } else {
            eprintln!(
                "wrote {} models at epoch {epoch} to {}",
                z.manifest.models,
                a.out.display()
            );
        }
        return Ok(());
    };
    let snippet = zoo::export::export_model(&z, model, epoch, &a.out)?;
    let py = a.out.with_extension("py");
    if a.json {
        let out = serde_json::json!({
            "dir": a.dir, "model": model, "epoch": epoch, "safetensors": a.out, "python": py,
            "snippet": snippet,
        });
        println!("{}", serde_json::to_string(&out)?);
    } else {
        println!("{snippet}");
        eprintln!(
            "wrote {} (model {model} at epoch {epoch}) and {}",
            a.out.display(),
            py.display()
        );
    }
    Ok(())
}
