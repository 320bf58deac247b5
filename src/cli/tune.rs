//! `weightflow tune`: reward fine-tuning of a meta-model by Adjoint Matching, with before/after
//! accuracies of generated classifiers, a per-iteration JSON log, an SVG plot and an optional SGD
//! fine-tuning baseline.

use super::choices::{name, BaselineArg, Keep, RewardArg, Sampler, ScopeArg};
use crate::data::{self, Dataset, Normalization};
use crate::flow::model::MetaModel;
use crate::flow::sample::{embed_context, sample};
use crate::report::plot::{save_figure, LinePlot, Series};
use crate::tune::adjoint::{AmConfig, IterStats, Timings};
use crate::tune::baseline::SgdBaseline;
use crate::tune::classify::{accuracies, objective_losses, ClassifierObjective, ClassifierReward};
use crate::tune::meta::{decoder, endpoint_form, fine_tune_from, sample_sde, sample_sde_flow_coords, warm_start};
use crate::tune::tilt::{cross_entropy_reach, REACH_LAMBDAS};
use crate::tune::warm::{lowest, WarmStartConfig};
use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use rand::seq::index::sample as sample_indices;
use std::path::{Path, PathBuf};

/// Bounds of the logit scale of `--reward ce-calibrated`.
const CALIBRATED_SCALES: (f32, f32) = (0.01, 100.0);

/// Arguments of `weightflow tune`. `--help` lists the everyday options; the settings of the
/// fine-tuning itself (`hide_short_help`) appear with `--help-all`.
#[derive(clap::Args, Debug)]
#[command(disable_help_flag = true)]
pub struct TuneArgs {
    /// Meta-model directory (from `weightflow flow train`).
    #[arg(long)]
    pub meta: PathBuf,
    /// Reward: `ce` is −cross-entropy on --data; `ce-calibrated` is −cross-entropy after the best
    /// rescaling of each classifier's logits on the minibatch (s ∈ [0.01, 100]), which rewards
    /// accuracy rather than confidence.
    #[arg(long, value_enum, default_value_t = RewardArg::Ce)]
    pub reward: RewardArg,
    /// Labelled dataset spec of the reward.
    #[arg(long)]
    pub data: String,
    /// Dataset spec for the before/after accuracies [default: --data].
    #[arg(long)]
    pub eval: Option<String>,
    /// Adjoint Matching iterations.
    #[arg(long, alias = "iterations", default_value_t = 50)]
    pub iters: usize,
    /// Output meta-model directory.
    #[arg(long)]
    pub out: PathBuf,
    /// Classifiers generated for the before/after accuracies.
    #[arg(long, default_value_t = 32, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub eval_models: usize,
    /// Evaluation images used (drawn at random with a fixed seed, the same every run; 0 = all).
    #[arg(long, default_value_t = 2000)]
    pub eval_limit: usize,
    /// Measure the eval accuracy every N iterations for the log and the plot (0 = only
    /// before/after).
    #[arg(long, default_value_t = 10)]
    pub eval_every: usize,
    /// Which iterate is the result: `best` = the highest smoothed batch-median reward (EMA 0.8 of
    /// the training reward, not the eval set), `last` = the final one. The JSON's `kept_iter`
    /// says which (iterations done, 1-based).
    #[arg(long, value_enum, default_value_t = Keep::Best)]
    pub keep: Keep,
    /// Elite warm start: draw this many candidates from the base law (the SDE), keep the
    /// `--warm-elite` with the lowest loss of --reward on --data, and move the field onto them by
    /// flow matching before Adjoint Matching starts (0 = off). It can only find what the
    /// candidates hold. The JSON's `warm_start` reports the elite's own accuracies and the
    /// warm-started law's before fine-tuning.
    #[arg(long, default_value_t = 0)]
    pub warm_start: usize,
    /// Also estimate what the tilt p_base·exp(λr) can reach from the before classifiers: their
    /// eval accuracies reweighted by exp(−λ·CE on all of --data), for λ = 1, 3, 10, 30, 100, 300
    /// (`reach` in the JSON, with effective sample sizes). One pass over --data per classifier;
    /// `--iters 0 --eval-models 256 --reach` measures it alone.
    #[arg(long)]
    pub reach: bool,
    /// Also run a baseline: `sgd` fine-tunes the generated classifiers directly (Adam).
    #[arg(long, value_enum)]
    pub baseline: Option<BaselineArg>,
    /// Baseline iterations [default: --iters].
    #[arg(long)]
    pub baseline_iters: Option<usize>,
    /// Seed of the generation, the reward minibatches and the fine-tuning.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Worker threads [default: all cores].
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    /// No progress output on stderr.
    #[arg(long)]
    pub quiet: bool,
    /// Print help (the everyday options; see --help-all).
    #[arg(short = 'h', long = "help", action = clap::ArgAction::HelpShort)]
    pub help: Option<bool>,
    /// Print help with every option, the fine-tuning's settings included.
    #[arg(long = "help-all", action = clap::ArgAction::HelpLong)]
    pub help_all: Option<bool>,

    // The fine-tuning's settings (shown by --help-all).
    /// Trajectories per Adjoint-Matching iteration.
    #[arg(long, default_value_t = 64, hide_short_help = true)]
    pub batch: usize,
    /// SDE / adjoint time steps.
    #[arg(long, default_value_t = 20, hide_short_help = true)]
    pub steps: usize,
    /// Time steps in the loss per iteration (0 = all).
    #[arg(long, default_value_t = 0, hide_short_help = true)]
    pub loss_steps: usize,
    /// Images per reward minibatch.
    #[arg(long, default_value_t = 256, hide_short_help = true)]
    pub reward_batch: usize,
    /// Reward multiplier λ: the target law is ∝ p_base·exp(λ r).
    #[arg(long, default_value_t = 300.0, hide_short_help = true)]
    pub reward_scale: f32,
    /// Adam learning rate of the velocity network.
    #[arg(long, default_value_t = 3e-4, hide_short_help = true)]
    pub lr: f32,
    /// Iterations of linear learning-rate warmup (0 = none).
    #[arg(long, default_value_t = 10, hide_short_help = true)]
    pub warmup: usize,
    /// Parameters that move: all (the paper's), the output layer, or its bias.
    #[arg(long, value_enum, default_value_t = ScopeArg::All, hide_short_help = true)]
    pub scope: ScopeArg,
    /// Polyak averaging of the fine-tuned parameters (decay in [0, 1); 0 = off); the result and
    /// the logged accuracies use the average.
    #[arg(long, default_value_t = 0.9, hide_short_help = true)]
    pub ema: f32,
    /// Per-sample loss clipping at an EMA of this batch quantile (≥ 1 disables clipping).
    #[arg(long, default_value_t = 0.9, hide_short_help = true)]
    pub clip_quantile: f32,
    /// First time of the SDE grid (the memoryless SDE starts from N(0, I) there).
    #[arg(long, default_value_t = 1e-3, hide_short_help = true)]
    pub t0: f32,
    /// Grid spacing power p: t_k = t0 + (1 − t0)(k/N)^p (1 = uniform; 2–3 refine small t).
    #[arg(long, default_value_t = 3.0, hide_short_help = true)]
    pub grid_power: f32,
    /// Only grid steps with t ≥ this time enter the regression loss (0 = all).
    #[arg(long, default_value_t = 0.0, hide_short_help = true)]
    pub loss_t_min: f32,
    /// Give every loss time step the same share of the loss (weights 1/EMA of its mean loss).
    #[arg(long, hide_short_help = true)]
    pub step_normalize: bool,
    /// Whitening scale of constant source coordinates (Kaiming biases), in standardized units.
    #[arg(long, default_value_t = 0.1, hide_short_help = true)]
    pub degenerate_scale: f32,
    /// Sampler of the before/after classifiers: `sde` is the memoryless SDE on the fine-tuning
    /// grid (the law Adjoint Matching drives to p_base·exp(λr)); `ode` is the meta-model's own
    /// solver and steps (it follows the tilted law only as far as the learned control is exact).
    #[arg(long, value_enum, default_value_t = Sampler::Sde, hide_short_help = true)]
    pub eval_sampler: Sampler,
    /// Images of --data the warm start scores each candidate on (drawn once with a fixed seed;
    /// 0 = all).
    #[arg(long, default_value_t = 10000, hide_short_help = true)]
    pub warm_score_images: usize,
    /// Candidates the warm start keeps.
    #[arg(long, default_value_t = 2, hide_short_help = true)]
    pub warm_elite: usize,
    /// Flow-matching iterations of the warm start.
    #[arg(long, default_value_t = 300, hide_short_help = true)]
    pub warm_iters: usize,
    /// Pairs per flow-matching iteration of the warm start.
    #[arg(long, default_value_t = 64, hide_short_help = true)]
    pub warm_batch: usize,
    /// Adam learning rate of the warm start.
    #[arg(long, default_value_t = 1e-3, hide_short_help = true)]
    pub warm_lr: f32,
}

/// The zoo normalization recorded by the meta-model (its `config.json` `groups[].normalization`),
/// else the statistics of `fallback`.
fn normalization(meta_dir: &Path, fallback: &Dataset) -> Normalization {
    let from_file = std::fs::read(meta_dir.join("config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v.get("groups")?.get(0)?.get("normalization").cloned())
        .and_then(|n| serde_json::from_value::<Normalization>(n).ok());
    from_file.unwrap_or_else(|| Normalization::from_dataset(fallback))
}

fn context_items(ds: &Dataset, max: usize, seed: u64) -> Vec<f32> {
    let n = ds.len();
    let mut idx: Vec<usize> = if n > max {
        sample_indices(&mut crate::engine::rng::stream(seed, "flow-context-pool", 0), n, max).into_vec()
    } else {
        (0..n).collect()
    };
    idx.sort_unstable();
    ds.to_tensor(&idx, &Normalization::IDENTITY)
}

/// A progress bar of `len` steps labelled `label` (hidden when `quiet`).
fn progress_bar(label: &str, len: usize, quiet: bool) -> ProgressBar {
    let pb = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(len as u64)
    };
    let template = format!("{label} {{bar:30}} {{pos}}/{{len}} [{{elapsed_precise}}<{{eta_precise}}] {{msg}}");
    pb.set_style(ProgressStyle::with_template(&template).unwrap_or_else(|_| ProgressStyle::default_bar()));
    pb
}

fn mean_std(v: &[f32]) -> (f64, f64) {
    let n = v.len().max(1) as f64;
    let m = v.iter().map(|&x| x as f64).sum::<f64>() / n;
    (m, (v.iter().map(|&x| (x as f64 - m).powi(2)).sum::<f64>() / n).sqrt())
}

/// Runs `weightflow tune` on `--threads` worker threads.
pub fn run(a: TuneArgs) -> anyhow::Result<()> {
    let _lock = crate::fsio::lock_output(&a.out, None)?;
    let threads = a
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .context("--threads")?;
    pool.install(|| tune(a))
}

fn tune(a: TuneArgs) -> anyhow::Result<()> {
    let objective = match a.reward {
        RewardArg::Ce => ClassifierObjective::CrossEntropy,
        RewardArg::CeCalibrated => ClassifierObjective::CalibratedCrossEntropy {
            min_scale: CALIBRATED_SCALES.0,
            max_scale: CALIBRATED_SCALES.1,
        },
    };
    let meta = MetaModel::load(&a.meta).with_context(|| format!("--meta {}", a.meta.display()))?;
    let Some(arch) = meta.space.arch.clone() else {
        bail!(
            "--meta {}: this meta-model does not generate networks",
            a.meta.display()
        )
    };
    if meta.config.coupling != crate::flow::cfm::Coupling::Independent && !a.quiet {
        eprintln!(
            "warning: --meta {} was trained with minibatch-OT pairs ({:?}); the memoryless SDE that \
             Adjoint Matching samples and tilts has that flow's law only for independent pairs \
             (`flow train --coupling independent`), with OT pairs it is a contracted copy",
            a.meta.display(),
            meta.config.coupling
        );
    }
    let train = data::load(&a.data).with_context(|| format!("--data {}", a.data))?;
    let eval_spec = a.eval.clone().unwrap_or_else(|| a.data.clone());
    let eval = data::load(&eval_spec).with_context(|| format!("--eval {eval_spec}"))?;
    let norm = normalization(&a.meta, &train);
    let limit = (a.eval_limit > 0).then_some(a.eval_limit);
    let threads = rayon::current_num_threads();
    let items = context_items(&train, 2000, a.seed);
    let ctx = embed_context(&meta, &items, a.seed)?;
    let steps = meta.config.sample_steps;
    let solver = meta.config.solver;

    let cfg = AmConfig {
        steps: a.steps,
        endpoint_steps: endpoint_form(&meta),
        batch: a.batch,
        loss_steps: a.loss_steps,
        t0: a.t0,
        grid_power: a.grid_power,
        clip_quantile: a.clip_quantile,
        warmup: a.warmup,
        loss_t_min: a.loss_t_min,
        step_normalize: a.step_normalize,
        ema: a.ema,
        keep_best: a.keep == Keep::Best,
        scope: a.scope.into(),
        reward_scale: a.reward_scale,
        lr: a.lr,
        seed: a.seed,
        ..AmConfig::default()
    };
    let use_sde = a.eval_sampler == Sampler::Sde;
    // Before/after classifiers: the same seed (paired), from the ODE or the memoryless SDE.
    let generate = |field: &crate::flow::VelocityMlp| -> anyhow::Result<Vec<f32>> {
        if use_sde {
            Ok(sample_sde(
                &meta,
                field,
                &ctx,
                a.eval_models,
                &cfg,
                a.degenerate_scale,
                a.seed,
            )?)
        } else {
            let mut m = meta.clone();
            m.velocity = field.clone();
            Ok(sample(&m, &items, a.eval_models, steps, solver, a.seed)?.x)
        }
    };
    let w_before = generate(&meta.velocity)?;
    let acc_before = accuracies(&arch, &w_before, a.eval_models, &eval, &norm, limit, threads)?;
    let reach = if a.reach {
        let r = crate::zoo::evaluate(&arch, &w_before, a.eval_models, &train, &norm, threads).context("--reach")?;
        let accs: Vec<f64> = acc_before.iter().map(|&x| x as f64).collect();
        Some(cross_entropy_reach(&r.loss, &accs, &REACH_LAMBDAS)?)
    } else {
        None
    };
    let warm = if a.warm_start > 0 {
        let wcfg = WarmStartConfig {
            candidates: a.warm_start,
            elite: a.warm_elite,
            iters: a.warm_iters,
            batch: a.warm_batch,
            lr: a.warm_lr,
            endpoint_weight: endpoint_form(&meta),
            seed: a.seed,
        };
        let score_idx =
            crate::tune::classify::eval_indices(train.len(), (a.warm_score_images > 0).then_some(a.warm_score_images));
        let setting = WarmSetting {
            arch: &arch,
            train: &train,
            score_idx: &score_idx,
            objective: &objective,
            eval: &eval,
            norm: &norm,
            limit,
            threads,
        };
        let (field, mut report) = elite_warm_start(&meta, &ctx, &cfg, a.degenerate_scale, &wcfg, &setting, a.quiet)
            .context("--warm-start")?;
        let w_warm = generate(&field)?;
        let acc_warm = accuracies(&arch, &w_warm, a.eval_models, &eval, &norm, limit, threads)?;
        let (wm, ws) = mean_std(&acc_warm);
        report["warm_acc"] = serde_json::json!(wm);
        report["warm_acc_std"] = serde_json::json!(ws);
        report["warm_accs"] = serde_json::json!(acc_warm);
        if !a.quiet {
            eprintln!(
                "warm-started law ({} classifiers): accuracy {:.2}% ± {:.2}",
                a.eval_models,
                100.0 * wm,
                100.0 * ws
            );
        }
        Some((field, report))
    } else {
        None
    };
    let mut reward = ClassifierReward::new(
        &arch,
        &train,
        norm,
        Box::new(decoder(&meta)),
        objective,
        a.reward_batch,
        a.seed,
    )?;
    let pb = progress_bar("tune", a.iters, a.quiet);
    let mut log_rows: Vec<serde_json::Value> = Vec::new();
    // (iterations done, mean, std) of the eval accuracy during the run.
    let mut eval_curve: Vec<(usize, f64, f64)> = Vec::new();
    let t_start = std::time::Instant::now();
    let start = warm.as_ref().map_or_else(|| meta.velocity.clone(), |(f, _)| f.clone());
    let tuned = fine_tune_from(
        &meta,
        start,
        &mut reward,
        cfg.clone(),
        &ctx,
        a.iters,
        a.degenerate_scale,
        |s: &IterStats, v| {
            let mut row = serde_json::to_value(s).unwrap_or_default();
            let done = s.iter as usize + 1;
            if a.eval_every > 0 && done.is_multiple_of(a.eval_every) && done < a.iters {
                let w = generate(v).map_err(|e| crate::tune::TuneError::Field(e.to_string()))?;
                let acc = accuracies(&arch, &w, a.eval_models, &eval, &norm, limit, threads)?;
                let (m, sd) = mean_std(&acc);
                row["eval_acc"] = serde_json::json!(m);
                eval_curve.push((done, m, sd));
            }
            log_rows.push(row);
            pb.set_message(format!("reward {:.4} loss {:.3e}", s.reward_mean, s.loss));
            pb.inc(1);
            Ok(())
        },
    )?;
    pb.finish_and_clear();
    let tune_s = t_start.elapsed().as_secs_f64();
    let mut meta2 = meta.clone();
    let stats = tuned.log;
    meta2.velocity = tuned.velocity;
    let w_after = generate(&meta2.velocity)?;
    let acc_after = accuracies(&arch, &w_after, a.eval_models, &eval, &norm, limit, threads)?;
    meta2
        .save(&a.out)
        .with_context(|| format!("--out {}", a.out.display()))?;

    let n = stats.len().max(1) as f64;
    let mut mt = Timings::default();
    for s in &stats {
        mt.sampling += s.time.sampling / n;
        mt.reward += s.time.reward / n;
        mt.adjoint += s.time.adjoint / n;
        mt.regression += s.time.regression / n;
        mt.total += s.time.total / n;
    }
    let log_path = a.out.join("tune_log.json");
    crate::fsio::write_atomic(&log_path, &serde_json::to_vec_pretty(&log_rows)?)
        .with_context(|| log_path.display().to_string())?;
    let (bm, bs) = mean_std(&acc_before);
    let (am_, as_) = mean_std(&acc_after);
    let mut curve = vec![(0, bm, bs)];
    curve.extend(eval_curve.iter().copied());
    curve.push((a.iters, am_, as_));
    // no iteration (`--iters 0`) leaves nothing to plot
    let plot_path = (!stats.is_empty()).then(|| a.out.join("tune.svg"));
    if let Some(path) = &plot_path {
        let figure = tune_figure(&stats, &curve, a.eval_models);
        save_figure(path, &figure, 720, 900)?;
        save_figure(&path.with_extension("png"), &figure, 720, 900)?;
    }
    let mut out = serde_json::json!({
        "meta": a.meta, "out": a.out, "reward": name(&a.reward), "data": a.data, "eval": eval_spec, "iters": a.iters,
        "config": cfg, "degenerate_scale": a.degenerate_scale, "reward_batch": a.reward_batch,
        "eval_sampler": name(&a.eval_sampler), "before_acc": bm, "before_acc_std": bs, "after_acc": am_, "after_acc_std": as_,
        "before_accs": acc_before, "after_accs": acc_after, "eval_models": a.eval_models,
        "eval_images": limit.unwrap_or(eval.len()).min(eval.len()),
        "seconds": tune_s, "seconds_per_iter": mt, "log": log_path, "plot": plot_path,
        "final_reward": stats.last().map(|s| s.reward_mean),
        "kept_iter": tuned.best_iter.map_or(a.iters as u64, |i| i + 1),
    });
    if let Some(reach) = &reach {
        out["reach"] = serde_json::to_value(reach)?;
    }
    if let Some((_, report)) = warm {
        out["warm_start"] = report;
    }
    if let Some(BaselineArg::Sgd) = a.baseline {
        let base = SgdBaseline {
            iters: a.baseline_iters.unwrap_or(a.iters),
            batch: 64,
            lr: 1e-3,
            weight_decay: 0.0,
            seed: a.seed,
        };
        let mut w = w_before.clone();
        let r = base.run(&arch, &mut w, a.eval_models, &train, &eval, &norm, limit)?;
        out["baseline"] = serde_json::json!({
            "method": "sgd (Adam 1e-3, batch 64, on the generated classifiers)", "iters": base.iters,
            "before_acc": mean_std(&r.before_acc).0, "after_acc": mean_std(&r.after_acc).0,
            "after_acc_std": mean_std(&r.after_acc).1, "seconds": r.seconds,
        });
    }
    if a.json {
        println!("{}", serde_json::to_string(&out)?);
    } else {
        println!(
            "accuracy of {} generated classifiers on {eval_spec}: {:.2}% ± {:.2} → {:.2}% ± {:.2} after {} iterations ({:.2} s/iter: sampling {:.2}, reward {:.2}, adjoint {:.2}, regression {:.2})",
            a.eval_models,
            100.0 * bm,
            100.0 * bs,
            100.0 * am_,
            100.0 * as_,
            a.iters,
            mt.total,
            mt.sampling,
            mt.reward,
            mt.adjoint,
            mt.regression
        );
        if let Some(k) = tuned.best_iter.filter(|&i| i + 1 < a.iters as u64) {
            println!(
                "kept the field of iteration {} (highest smoothed median reward; --keep last for the final one)",
                k + 1
            );
        }
        if let Some(b) = out.get("baseline") {
            let pct = |k: &str| 100.0 * b[k].as_f64().unwrap_or(f64::NAN);
            println!("SGD baseline: {:.2}% → {:.2}%", pct("before_acc"), pct("after_acc"));
        }
        println!(
            "fine-tuned meta-model in {}; log {}; plot {}",
            a.out.display(),
            log_path.display(),
            plot_path
                .as_ref()
                .map_or("none (no iteration)".to_string(), |p| p.display().to_string())
        );
    }
    Ok(())
}

/// The figure of a run along the iterations: the batch-median reward (what `--keep best`
/// tracks; the mean, moved by single exploded samples, is in the log), log10 of the mean
/// regression loss, and the eval accuracy in % (mean ± its standard error over the
/// `eval_models` classifiers).
fn tune_figure(stats: &[IterStats], curve: &[(usize, f64, f64)], eval_models: usize) -> Vec<LinePlot> {
    let at = |i: usize, v: f64| ((i + 1) as f64, v);
    let reward = LinePlot::new("Reward of the batch (median)", "iteration", "reward").with_series(Series::new(
        "median",
        stats
            .iter()
            .enumerate()
            .map(|(i, s)| at(i, s.reward_median as f64))
            .collect(),
    ));
    let loss = LinePlot::new("Regression loss", "iteration", "log10 loss").with_series(Series::new(
        "mean per sample",
        stats
            .iter()
            .enumerate()
            .map(|(i, s)| at(i, (s.loss as f64).log10()))
            .collect(),
    ));
    let n = (eval_models.max(1) as f64).sqrt();
    let acc = LinePlot::new(
        &format!("Accuracy of {eval_models} generated classifiers"),
        "iteration",
        "accuracy (%)",
    )
    .with_series(
        Series::new(
            "mean ± se",
            curve.iter().map(|&(i, m, _)| (i as f64, 100.0 * m)).collect(),
        )
        .with_se(curve.iter().map(|&(_, _, sd)| 100.0 * sd / n).collect()),
    );
    vec![reward, loss, acc]
}

/// The data and evaluation settings the warm start scores candidates with.
struct WarmSetting<'a> {
    arch: &'a crate::nets::ArchSpec,
    train: &'a Dataset,
    /// The images of `train` the candidates are scored on.
    score_idx: &'a [usize],
    /// The reward's objective, which ranks the candidates.
    objective: &'a ClassifierObjective,
    eval: &'a Dataset,
    norm: &'a Normalization,
    limit: Option<usize>,
    threads: usize,
}

/// Candidates drawn per SDE batch of the warm start (bounds the trajectory memory).
const WARM_CHUNK: usize = 64;

/// `--warm-start`: draws the candidates from the base law's SDE, keeps the elite by the reward's
/// loss (cross-entropy, or the calibrated one) on `--warm-score-images` images of --data, and
/// distils the field onto it ([`warm_start`]). Returns the field and the JSON report (the
/// elite's own accuracies, its losses, the distillation loss curve's ends).
fn elite_warm_start(
    meta: &MetaModel,
    ctx: &[f32],
    am: &AmConfig,
    degenerate_scale: f32,
    wcfg: &WarmStartConfig,
    s: &WarmSetting,
    quiet: bool,
) -> anyhow::Result<(crate::flow::VelocityMlp, serde_json::Value)> {
    use crate::tune::classify::WeightDecoder;
    wcfg.validate()?;
    let started = std::time::Instant::now();
    let d = crate::tune::Field::dim(&meta.velocity);
    let mut xs = Vec::with_capacity(wcfg.candidates * d);
    for (i, first) in (0..wcfg.candidates).step_by(WARM_CHUNK).enumerate() {
        let n = WARM_CHUNK.min(wcfg.candidates - first);
        // Seeds apart from the before/after draws (which use --seed itself).
        let seed = wcfg.seed.wrapping_mul(1000).wrapping_add(1 + i as u64);
        xs.extend(sample_sde_flow_coords(
            meta,
            &meta.velocity,
            ctx,
            n,
            am,
            degenerate_scale,
            seed,
        )?);
    }
    let w = decoder(meta).decode(&xs)?;
    let losses_all = objective_losses(
        s.arch,
        &w,
        wcfg.candidates,
        s.train,
        s.score_idx,
        s.norm,
        s.objective,
        s.threads,
    )?;
    let elite = lowest(&losses_all, wcfg.elite);
    // Rows `elite` of `v [candidates, len]`.
    let gather = |v: &[f32]| -> Vec<f32> {
        let len = v.len() / wcfg.candidates;
        elite
            .iter()
            .flat_map(|&i| v[i * len..(i + 1) * len].iter().copied())
            .collect()
    };
    let elite_acc = accuracies(s.arch, &gather(&w), wcfg.elite, s.eval, s.norm, s.limit, s.threads)?;
    let pb = progress_bar("warm start", wcfg.iters, quiet);
    let (field, losses) = warm_start(meta, &gather(&xs), ctx, wcfg, degenerate_scale, |_, loss| {
        pb.set_message(format!("flow-matching loss {loss:.3}"));
        pb.inc(1);
    })?;
    pb.finish_and_clear();
    let mut sorted = losses_all.clone();
    sorted.sort_by(f64::total_cmp);
    let (em, es) = mean_std(&elite_acc);
    if !quiet {
        eprintln!(
            "warm start: best {} of {} base classifiers score {:.2}% ± {:.2}; flow-matching loss {:.4} → {:.4}",
            wcfg.elite,
            wcfg.candidates,
            100.0 * em,
            100.0 * es,
            losses.first().copied().unwrap_or(f32::NAN),
            losses.last().copied().unwrap_or(f32::NAN)
        );
    }
    let tail = losses.len().clamp(1, 20);
    let report = serde_json::json!({
        "config": wcfg, "elite_acc": em, "elite_acc_std": es, "elite_accs": elite_acc,
        "elite_losses": elite.iter().map(|&i| losses_all[i]).collect::<Vec<_>>(),
        "candidate_loss_median": sorted[sorted.len() / 2],
        "loss_first": losses.first(), "loss_last20": losses.iter().rev().take(tail).sum::<f32>() / tail as f32,
        "seconds": started.elapsed().as_secs_f64(),
    });
    Ok((field, report))
}
