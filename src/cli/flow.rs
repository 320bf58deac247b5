//! `weightflow flow train|sample|info`: the NM-CFM meta-model on the command line.

use super::choices::{AlignArg, CouplingArg, SolverArg, SourceArg, StandardizeArg};
use crate::data::{self, Dataset, Normalization};
use crate::flow::context::ItemKind;
use crate::flow::model::{FlowConfig, TargetSpace};
use crate::flow::opt::OptSettings;
use crate::flow::source::Source;
use crate::flow::vae::{LatentCodec, VaeConfig, VaeTrainSettings};
use crate::flow::{sample, train, MetaModel, Solver, TargetGroup};
use crate::nets::ParamLayout;
use crate::zoo::{self, Zoo};
use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use rand::seq::index::sample as sample_indices;
use std::path::PathBuf;

/// `weightflow flow ...`
#[derive(Args, Debug)]
pub struct FlowArgs {
    #[command(subcommand)]
    pub command: FlowCommand,
}

/// Flow subcommands.
#[derive(Subcommand, Debug)]
pub enum FlowCommand {
    /// Train a meta-model on the checkpoints of one or more zoos (one condition group per zoo).
    Train(TrainArgs),
    /// Generate networks conditioned on images of a dataset; optionally evaluate them.
    Sample(SampleArgs),
    /// Print a meta-model's settings and training summary.
    Info(InfoArgs),
}

/// Arguments of `flow train`; the defaults are [`FlowConfig::default`]'s.
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Zoo directories, comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    pub zoo: Vec<PathBuf>,
    /// First epoch whose checkpoints are targets [default: the last epoch of each zoo]. `1`
    /// takes every trained checkpoint, a law over whole training runs.
    #[arg(long)]
    pub epochs_from: Option<usize>,
    /// Last epoch used as targets [default: the last].
    #[arg(long)]
    pub epochs_to: Option<usize>,
    /// Output meta-model directory.
    #[arg(long)]
    pub out: PathBuf,
    /// Training iterations.
    #[arg(long, alias = "iterations", default_value_t = FlowConfig::default().iterations)]
    pub iters: usize,
    /// Hidden width of the velocity network.
    #[arg(long, default_value_t = FlowConfig::default().width)]
    pub width: usize,
    /// Hidden layers of the velocity network.
    #[arg(long, default_value_t = FlowConfig::default().depth)]
    pub depth: usize,
    /// Target networks per minibatch.
    #[arg(long, default_value_t = FlowConfig::default().batch)]
    pub batch: usize,
    /// Adam learning rate.
    #[arg(long, default_value_t = FlowConfig::default().opt.lr)]
    pub lr: f32,
    /// Pairing of sources and targets: independent (I-CFM, what `tune`'s memoryless SDE needs),
    /// exact (OT-CFM) or sinkhorn.
    #[arg(long, value_enum, default_value_t = CouplingArg::Independent)]
    pub coupling: CouplingArg,
    /// Source distribution p0.
    #[arg(long, value_enum, default_value_t = SourceArg::KaimingNormal)]
    pub source: SourceArg,
    /// Standardization of the weights: per coordinate, per layer, or none.
    #[arg(long, value_enum, default_value_t = StandardizeArg::Coordinate)]
    pub standardize: StandardizeArg,
    /// Permutation alignment of each zoo's checkpoints to its first before training (and before
    /// the VAE): weight matching (Git Re-Basin) or none.
    #[arg(long, value_enum, default_value_t = AlignArg::None)]
    pub align: AlignArg,
    /// Context embedding size; 0 trains an unconditional model.
    #[arg(long, default_value_t = FlowConfig::default().ctx_dim)]
    pub ctx_dim: usize,
    /// Images per context set.
    #[arg(long, default_value_t = FlowConfig::default().context_k)]
    pub context_k: usize,
    /// Images per zoo kept as the pool context sets are drawn from.
    #[arg(long, default_value_t = 2000)]
    pub context_pool: usize,
    /// Seed of the training.
    #[arg(long, default_value_t = FlowConfig::default().seed)]
    pub seed: u64,
    /// Train a VAE with this latent size on the targets first, then the flow on its latent codes
    /// (encoder means) from a N(0, I) source; `flow sample` decodes [default: no VAE].
    #[arg(long)]
    pub vae_latent: Option<usize>,
    /// VAE hidden widths, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "256")]
    pub vae_hidden: Vec<usize>,
    /// VAE KL weight β.
    #[arg(long, default_value_t = 1e-3)]
    pub vae_beta: f32,
    /// VAE training steps.
    #[arg(long, default_value_t = 2000)]
    pub vae_steps: usize,
    /// Worker threads [default: all cores].
    #[arg(long)]
    pub threads: Option<usize>,
    /// No progress output on stderr.
    #[arg(long)]
    pub quiet: bool,
    /// Print one JSON object with the training summary.
    #[arg(long)]
    pub json: bool,
}

impl TrainArgs {
    /// The flow's configuration.
    pub fn config(&self) -> FlowConfig {
        let mut cfg = FlowConfig {
            iterations: self.iters,
            width: self.width,
            depth: self.depth,
            batch: self.batch,
            ctx_dim: self.ctx_dim,
            context_k: self.context_k,
            seed: self.seed,
            coupling: self.coupling.into(),
            source: self.source.into(),
            standardize: self.standardize.into(),
            align: self.align.into(),
            threads: self.threads.unwrap_or(0),
            ..FlowConfig::default()
        };
        cfg.opt.lr = self.lr;
        cfg
    }
}

/// Arguments of `flow sample`.
#[derive(Args, Debug)]
pub struct SampleArgs {
    /// Meta-model directory.
    #[arg(long)]
    pub meta: PathBuf,
    /// Dataset spec whose images condition the generation.
    #[arg(long)]
    pub context: String,
    /// Number of networks to generate.
    #[arg(short = 'n', long, default_value_t = 20, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub n: usize,
    /// ODE steps [default: the model's].
    #[arg(long)]
    pub steps: Option<usize>,
    /// ODE solver [default: the model's].
    #[arg(long, value_enum)]
    pub solver: Option<SolverArg>,
    /// Output directory for `generated.safetensors` (and `eval.json`).
    #[arg(long)]
    pub out: PathBuf,
    /// Dataset spec to evaluate the generated classifiers on.
    #[arg(long)]
    pub eval: Option<String>,
    /// Also export every generated network for PyTorch into this directory: `net_I.safetensors`
    /// (state_dict names; architecture and normalization in its metadata) and an importable
    /// `net_I.py` whose `load()` reads it.
    #[arg(long)]
    pub export_torch: Option<PathBuf>,
    /// Labelled dataset spec of a cross-entropy reward r = −CE (as `tune --reward ce --data
    /// SPEC`): also report what the tilt p_base·exp(λr) that fine-tuning targets can reach, the
    /// --eval accuracy of the generated classifiers reweighted by exp(λr), with its effective
    /// sample size (needs --eval; more classifiers, -n, make larger λ trustworthy).
    #[arg(long, requires = "eval")]
    pub tilt_data: Option<String>,
    /// The λ values of --tilt-data.
    #[arg(long, value_delimiter = ',', default_values_t = crate::tune::tilt::REACH_LAMBDAS)]
    pub tilt_lambdas: Vec<f64>,
    /// Seed of the generation.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
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

/// Arguments of `flow info`.
#[derive(Args, Debug)]
pub struct InfoArgs {
    /// Meta-model directory.
    pub meta: PathBuf,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// Runs a flow subcommand.
pub fn run(args: FlowArgs) -> anyhow::Result<()> {
    match args.command {
        FlowCommand::Train(a) => run_train(a),
        FlowCommand::Sample(a) => run_sample(a),
        FlowCommand::Info(a) => run_info(a),
    }
}

/// Items of a context set: images on the plain [0, 1] scale (the same for every dataset, so
/// the encoder sees differences between datasets), `[n, 3, 32, 32]`.
fn context_items(ds: &Dataset, max: usize, seed: u64) -> Vec<f32> {
    let n = ds.len();
    let idx: Vec<usize> = if n > max {
        let mut v = sample_indices(&mut crate::engine::rng::stream(seed, "flow-context-pool", 0), n, max).into_vec();
        v.sort_unstable();
        v
    } else {
        (0..n).collect()
    };
    ds.to_tensor(&idx, &Normalization::IDENTITY)
}

fn image_items() -> ItemKind {
    ItemKind::Images {
        channels: 3,
        side: 32,
        pool: 4,
    }
}

fn run_train(a: TrainArgs) -> anyhow::Result<()> {
    let _lock = crate::fsio::lock_output(&a.out, None)?;
    let mut cfg = a.config();
    let mut groups = Vec::new();
    let mut arch = None;
    for dir in &a.zoo {
        let z = Zoo::open(dir).with_context(|| format!("--zoo {}", dir.display()))?;
        let m = &z.manifest;
        match &arch {
            None => arch = Some((m.arch.clone(), m.layout.clone())),
            Some((spec, _)) if *spec != m.arch => {
                bail!("--zoo {}: architecture differs from the first zoo's", dir.display())
            }
            _ => {}
        }
        let last = a.epochs_to.unwrap_or(m.epochs).min(m.epochs);
        let first = a.epochs_from.unwrap_or(last);
        if first > last || first == 0 && last == 0 {
            bail!(
                "--zoo {}: no epochs in {first}..={last} (zoo has {} epochs)",
                dir.display(),
                m.epochs
            );
        }
        let mut targets = Vec::new();
        for e in first..=last {
            targets.extend(
                z.load_epoch(e)
                    .with_context(|| format!("{}: epoch {e}", dir.display()))?,
            );
        }
        let ds = data::load(&m.train_spec).with_context(|| format!("{}: dataset {}", dir.display(), m.train_spec))?;
        let items = context_items(&ds, a.context_pool, cfg.seed);
        if !a.quiet {
            eprintln!(
                "{}: {} targets (epochs {first}..={last} of {} models), {} context images from {}",
                dir.display(),
                targets.len() / m.dim,
                m.models,
                items.len() / 3072,
                m.train_spec
            );
        }
        groups.push(TargetGroup {
            targets,
            items,
            name: m.train_spec.clone(),
            normalization: Some(m.normalization),
        });
    }
    let Some((spec, layout)) = arch else {
        bail!("--zoo: no zoo given")
    };
    let aligned = crate::flow::align::align_groups(&spec, &mut groups, cfg.align).context("--align")?;
    if let (Some(s), false) = (&aligned, a.quiet) {
        for g in &s.groups {
            eprintln!(
                "aligned {} targets of {} ({} sweeps at most): mean L2 to the first {:.4} → {:.4}",
                g.targets, g.name, g.max_sweeps, g.mean_l2_before, g.mean_l2_after
            );
        }
        eprintln!("alignment took {:.2}s", s.seconds);
    }
    let (layout, codec) = match a.vae_latent {
        None => (layout, None),
        Some(l) => {
            let (latent, codec) = fit_codec(&a, &cfg, &layout, l, &mut groups)?;
            (latent, Some(codec))
        }
    };
    if codec.is_some() {
        cfg.source = Source::Gaussian;
    }
    let space = TargetSpace {
        layout,
        arch: Some(spec),
        items: (cfg.ctx_dim > 0).then(image_items),
    };
    let bar = (!a.quiet).then(|| {
        let pb = ProgressBar::new(cfg.iterations as u64);
        pb.set_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} it  {msg}  ETA {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        pb
    });
    let mut ema = f32::NAN;
    let mut cb = |it: usize, loss: f32| {
        ema = if ema.is_nan() { loss } else { 0.98 * ema + 0.02 * loss };
        if let Some(pb) = &bar {
            pb.inc(1);
            if it.is_multiple_of(10) {
                pb.set_message(format!("loss {ema:.4}"));
            }
        }
    };
    let mut meta = train(&cfg, &space, &groups, Some(&mut cb)).context("flow train")?;
    meta.summary.align = aligned;
    if let Some(pb) = &bar {
        pb.finish_and_clear();
    }
    meta.save_with(&a.out, |dir| codec.as_ref().map_or(Ok(()), |c| c.save(dir)))?;
    let s = &meta.summary;
    if a.json {
        println!("{}", serde_json::to_string(&s)?);
    } else {
        println!(
            "trained {} iterations in {:.1}s, final loss {:.4}; saved {}",
            s.iterations,
            s.seconds,
            s.final_loss,
            a.out.display()
        );
    }
    Ok(())
}

/// Trains the [`LatentCodec`] on all groups' targets and replaces each group's targets by their
/// latent codes; returns the latent layout and the codec.
fn fit_codec(
    a: &TrainArgs,
    cfg: &FlowConfig,
    layout: &ParamLayout,
    latent: usize,
    groups: &mut [TargetGroup],
) -> anyhow::Result<(ParamLayout, LatentCodec)> {
    let d = layout.dim();
    let all: Vec<f32> = groups.iter().flat_map(|g| g.targets.iter().copied()).collect();
    let vcfg = VaeConfig {
        data_dim: d,
        latent,
        hidden: a.vae_hidden.clone(),
        beta: a.vae_beta,
    };
    let settings = VaeTrainSettings {
        steps: a.vae_steps,
        batch: cfg.batch,
        opt: OptSettings {
            ema_decay: 0.0,
            ..cfg.opt
        },
        seed: cfg.seed,
    };
    let t0 = std::time::Instant::now();
    let (codec, losses) = LatentCodec::fit(&all, layout, cfg.standardize, vcfg, &settings, cfg.gemm_threads())
        .context("--vae-latent: VAE training")?;
    for g in groups.iter_mut() {
        g.targets = codec
            .encode(&g.targets)
            .with_context(|| format!("group {}: VAE encoding", g.name))?;
    }
    if !a.quiet {
        let last = losses.last().map(|l| (l.recon, l.kl)).unwrap_or((f32::NAN, f32::NAN));
        eprintln!(
            "VAE {d} → {latent}: {} steps in {:.1}s, final recon MSE {:.4}, KL {:.3}",
            losses.len(),
            t0.elapsed().as_secs_f64(),
            last.0,
            last.1
        );
    }
    let mut latent_layout = ParamLayout::default();
    latent_layout.push("latent", vec![latent]);
    Ok((latent_layout, codec))
}

fn run_sample(a: SampleArgs) -> anyhow::Result<()> {
    let _lock = crate::fsio::lock_output(&a.out, None)?;
    let meta = MetaModel::load(&a.meta).with_context(|| format!("--meta {}", a.meta.display()))?;
    // the samples, the solver's state and the decoded weights: a few [n, D] f32 buffers
    let d_max = meta.dim().max(meta.space.layout.dim());
    crate::limits::check_alloc(&format!("-n {}", a.n), crate::limits::product(&[a.n, d_max, 4 * 4]))?;
    let ds = data::load(&a.context).with_context(|| format!("--context {}", a.context))?;
    let items = context_items(&ds, 2000, a.seed);
    let solver: Solver = a.solver.map_or(meta.config.solver, Solver::from);
    let steps = a.steps.unwrap_or(meta.config.sample_steps);
    if steps == 0 || steps > crate::flow::model::MAX_STEPS {
        bail!("--steps {steps}: must lie in [1, {}]", crate::flow::model::MAX_STEPS);
    }
    if let Some(l) = a.tilt_lambdas.iter().find(|l| !(l.is_finite() && **l >= 0.0)) {
        bail!("--tilt-lambdas: every λ must be finite and ≥ 0, got {l}");
    }
    let t0 = std::time::Instant::now();
    let mut s = sample(&meta, &items, a.n, steps, solver, a.seed)?;
    let mut d = meta.dim();
    if LatentCodec::exists(&a.meta) {
        let threads = a.threads.unwrap_or_else(rayon::current_num_threads);
        let codec = LatentCodec::load(&a.meta, threads).with_context(|| format!("--meta {}", a.meta.display()))?;
        s.x = codec.decode(&s.x).context("VAE decoding")?;
        d = codec.vae.config.data_dim;
    }
    let sample_s = t0.elapsed().as_secs_f64();
    std::fs::create_dir_all(&a.out).with_context(|| format!("--out {}", a.out.display()))?;
    let arch_json = serde_json::to_string(&meta.space.arch)?;
    let st =
        zoo::store::safetensors_bytes(&[("weights", vec![a.n, d], &s.x)], &arch_json).map_err(anyhow::Error::msg)?;
    zoo::store::write_atomic(&a.out.join("generated.safetensors"), &st)?;
    let embedding = crate::flow::sample::embed_context(&meta, &items, a.seed)?;
    let group = meta.nearest_group(&embedding);
    if let Some(dir) = &a.export_torch {
        let Some(arch) = &meta.space.arch else {
            bail!("--export-torch: this meta-model does not generate networks")
        };
        let norm = group.and_then(|g| g.normalization).unwrap_or(Normalization::IDENTITY);
        let _lock = crate::fsio::DirLock::acquire(dir).with_context(|| format!("--export-torch {}", dir.display()))?;
        for (i, w) in s.x.chunks(d.max(1)).enumerate() {
            let extra = serde_json::json!({
                "meta": std::fs::canonicalize(&a.meta).unwrap_or_else(|_| a.meta.clone()).display().to_string(),
                "context": a.context, "seed": a.seed, "index": i,
            });
            zoo::export::export_network(
                arch,
                &norm,
                &ds.class_names,
                w,
                extra,
                &dir.join(format!("net_{i}.safetensors")),
            )
            .with_context(|| format!("--export-torch {}", dir.display()))?;
        }
    }
    let mut out = serde_json::json!({
        "n": a.n, "steps": steps, "solver": solver, "nfe": s.nfe, "sample_s": sample_s,
        "context": a.context, "nearest_group": group.map(|g| g.name.clone()),
        "out": a.out.join("generated.safetensors"),
    });
    if let Some(spec) = &a.eval {
        let Some(arch) = &meta.space.arch else {
            bail!("--eval: this meta-model does not generate networks")
        };
        let norm = group.and_then(|g| g.normalization).unwrap_or(Normalization::IDENTITY);
        let eds = data::load(spec).with_context(|| format!("--eval {spec}"))?;
        let threads = a.threads.unwrap_or_else(rayon::current_num_threads);
        let r = zoo::evaluate(arch, &s.x, a.n, &eds, &norm, threads).with_context(|| format!("--eval {spec}"))?;
        let mut acc = r.acc.clone();
        let mean = acc.iter().sum::<f64>() / acc.len() as f64;
        let std = (acc.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / acc.len() as f64).sqrt();
        acc.sort_by(|x, y| y.total_cmp(x));
        let k = acc.len().min(5);
        let top5 = acc[..k].iter().sum::<f64>() / k as f64;
        out["eval"] = serde_json::json!(spec);
        out["acc"] = serde_json::json!(r.acc);
        out["mean_acc"] = serde_json::json!(mean);
        out["std_acc"] = serde_json::json!(std);
        out["top5_acc"] = serde_json::json!(top5);
        out["disagreement"] = serde_json::json!(r.disagreement);
        // Mean cross-entropy per classifier: with −loss as a reward, weighting the samples by
        // exp(−λ·loss) estimates what the tilt p_base·exp(λr) of `tune` can reach.
        out["loss"] = serde_json::json!(r.loss);
        out["mean_loss"] = serde_json::json!(r.loss.iter().sum::<f64>() / r.loss.len() as f64);
        if let Some(tspec) = &a.tilt_data {
            let tds = data::load(tspec).with_context(|| format!("--tilt-data {tspec}"))?;
            let rt =
                zoo::evaluate(arch, &s.x, a.n, &tds, &norm, threads).with_context(|| format!("--tilt-data {tspec}"))?;
            let curve =
                crate::tune::tilt::cross_entropy_reach(&rt.loss, &r.acc, &a.tilt_lambdas).context("--tilt-lambdas")?;
            out["tilt_data"] = serde_json::json!(tspec);
            out["tilt"] = serde_json::to_value(&curve)?;
        }
        let text = serde_json::to_vec_pretty(&out)?;
        zoo::store::write_atomic(&a.out.join("eval.json"), &text)?;
    }
    if a.json {
        println!("{}", serde_json::to_string(&out)?);
    } else {
        println!(
            "generated {} networks ({} NFE, {:.2}s) into {}",
            a.n,
            s.nfe,
            sample_s,
            a.out.display()
        );
        let pct = |v: &serde_json::Value| 100.0 * v.as_f64().unwrap_or(f64::NAN);
        if let Some(m) = out.get("mean_acc") {
            println!(
                "accuracy on {}: mean {:.2}% ± {:.2}, top-5 mean {:.2}%, pairwise disagreement {:.2}%",
                out["eval"].as_str().unwrap_or_default(),
                pct(m),
                pct(&out["std_acc"]),
                pct(&out["top5_acc"]),
                pct(&out["disagreement"])
            );
        }
        if let Some(curve) = out.get("tilt").and_then(|c| c.as_array()) {
            println!(
                "tilt p_base·exp(λr), r = −CE on {}:",
                out["tilt_data"].as_str().unwrap_or_default()
            );
            for p in curve {
                println!(
                    "  λ {:>6}: mean accuracy {:.2}% (effective samples {:.1} of {})",
                    p["lambda"].as_f64().unwrap_or(f64::NAN),
                    pct(&p["mean"]),
                    p["ess"].as_f64().unwrap_or(f64::NAN),
                    a.n
                );
            }
        }
    }
    Ok(())
}

fn run_info(a: InfoArgs) -> anyhow::Result<()> {
    let meta = MetaModel::load(&a.meta).with_context(|| format!("{}", a.meta.display()))?;
    let info = serde_json::json!({
        "dim": meta.dim(),
        "velocity_params": meta.velocity.params.len(),
        "encoder_params": meta.encoder.as_ref().map(|e| e.params.len()).unwrap_or(0),
        "config": meta.config,
        "summary": meta.summary,
        "groups": meta.groups.iter().map(|g| serde_json::json!({"name": g.name, "targets": g.targets})).collect::<Vec<_>>(),
        "arch": meta.space.arch.as_ref().map(|a| a.name.clone()),
    });
    if a.json {
        println!("{}", serde_json::to_string(&info)?);
    } else {
        let c = &meta.config;
        println!("{}: generates {} parameters", a.meta.display(), meta.dim());
        if let Some(arch) = &meta.space.arch {
            println!("  networks       {}", arch.name);
        }
        println!(
            "  velocity MLP   width {}, depth {}, {} parameters; context encoder {} parameters (embedding {})",
            c.width,
            c.depth,
            meta.velocity.params.len(),
            info["encoder_params"],
            c.ctx_dim
        );
        println!(
            "  training       {} iterations, batch {}, lr {}, coupling {}, seed {}",
            c.iterations,
            c.batch,
            c.opt.lr,
            serde_json::to_value(c.coupling)?["kind"].as_str().unwrap_or("?"),
            c.seed
        );
        println!(
            "  sampling       {} steps of {}",
            c.sample_steps,
            serde_json::to_value(c.solver)?["kind"].as_str().unwrap_or("?")
        );
        let t = &meta.summary;
        println!(
            "  trained        {} iterations in {:.1} s, final loss {:.4}, {} targets in {} groups",
            t.iterations, t.seconds, t.final_loss, t.targets, t.groups
        );
        for g in &meta.groups {
            println!("  group          {} ({} targets)", g.name, g.targets);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::cli::{Cli, Command};
    use crate::flow::model::FlowConfig;
    use clap::Parser;

    /// `flow train` without options trains with [`FlowConfig::default`], as its help says.
    #[test]
    fn train_defaults_are_the_config_defaults() {
        let cli = Cli::try_parse_from(["weightflow", "flow", "train", "--zoo", "z", "--out", "o"]).unwrap();
        let Command::Flow(f) = cli.command else {
            panic!("not flow")
        };
        let super::FlowCommand::Train(t) = f.command else {
            panic!("not train")
        };
        let d = FlowConfig::default();
        let c = t.config();
        assert_eq!(c, d);
        let cli = Cli::try_parse_from([
            "weightflow",
            "flow",
            "train",
            "--zoo",
            "z",
            "--out",
            "o",
            "--iterations",
            "7",
        ]);
        let Command::Flow(f) = cli.unwrap().command else {
            panic!("not flow")
        };
        let super::FlowCommand::Train(t) = f.command else {
            panic!("not train")
        };
        assert_eq!(t.config().iterations, 7, "--iterations is an alias of --iters");
    }
}
