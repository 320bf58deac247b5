//! `weightflow tune`: reward fine-tuning of a meta-model by Adjoint Matching, with before/after
//! accuracies of generated classifiers, a per-iteration JSON log, an SVG plot and an optional SGD
//! fine-tuning baseline.

use crate::data::{self, Dataset, Normalization};
use crate::flow::model::MetaModel;
use crate::flow::sample::{embed_context, sample};
use crate::tune::adjoint::{AmConfig, IterStats, Timings};
use crate::tune::baseline::SgdBaseline;
use crate::tune::classify::{accuracies, objective_losses, ClassifierObjective, ClassifierReward};
use crate::tune::meta::{decoder, endpoint_form, fine_tune_from, sample_sde, sample_sde_flow_coords, warm_start};
use crate::tune::plot::svg_panels;
use crate::tune::tilt::{cross_entropy_reach, REACH_LAMBDAS};
use crate::tune::warm::{lowest, WarmStartConfig};
use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use rand::seq::index::sample as sample_indices;
use std::path::{Path, PathBuf};

/// Bounds of the logit scale of `--reward ce-calibrated`.
const CALIBRATED_SCALES: (f32, f32) = (0.01, 100.0);

/// Arguments of `weightflow tune`.
#[derive(clap::Args, Debug)]
pub struct TuneArgs {
    /// Meta-model directory (from `weightflow flow train`).
    #[arg(long)]
    pub meta: PathBuf,
    /// Reward: `ce` (−cross-entropy on --data) or `ce-calibrated` (−cross-entropy after the best
    /// rescaling of each classifier's logits on the minibatch, s ∈ [0.01, 100]: accuracy-like and
    /// scale-free, so flattening the output of confidently wrong classifiers earns nothing).
    #[arg(long, default_value = "ce")]
    pub reward: String,
    /// Labelled dataset spec of the reward.
    #[arg(long)]
    pub data: String,
    /// Dataset spec for the before/after accuracies (default: --data).
    #[arg(long)]
    pub eval: Option<String>,
    /// Adjoint Matching iterations.
    #[arg(long, default_value_t = 50)]
    pub iters: usize,
    /// Output meta-model directory.
    #[arg(long)]
    pub out: PathBuf,
    /// Trajectories per iteration (64: fewer leave the regression targets at small t, where the
    /// mode choice is made, too noisy; RESULTS.md, sessions 11–12).
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// SDE / adjoint steps.
    #[arg(long, default_value_t = 20)]
    pub steps: usize,
    /// Time steps in the loss per iteration (0 = all).
    #[arg(long, default_value_t = 0)]
    pub loss_steps: usize,
    /// Images per reward minibatch.
    #[arg(long, default_value_t = 256)]
    pub reward_batch: usize,
    /// Reward multiplier λ (target ∝ p_base·exp(λ r)). 300 realizes more of the tilt than 100 in
    /// 100 iterations and ends on a narrow law (MNIST level 2, three seeds: +41 to +48 points
    /// against +25 to +37 in 150; RESULTS.md, session 19)
    #[arg(long, default_value_t = 300.0)]
    pub reward_scale: f32,
    /// Adam learning rate of the velocity network (5e-4 and 1e-3 collapse some runs).
    #[arg(long, default_value_t = 3e-4)]
    pub lr: f32,
    /// Whitening scale of constant source coordinates (Kaiming biases), in standardized units.
    #[arg(long, default_value_t = 0.1)]
    pub degenerate_scale: f32,
    /// First time of the SDE grid (the memoryless SDE starts from N(0, I) there)
    #[arg(long, default_value_t = 1e-3)]
    pub t0: f32,
    /// Grid spacing power p: t_k = t0 + (1 − t0)(k/N)^p (1 = uniform; 2–3 refine small t)
    #[arg(long, default_value_t = 3.0)]
    pub grid_power: f32,
    /// Per-sample loss clipping at an EMA of this batch quantile (≥ 1 disables clipping)
    #[arg(long, default_value_t = 0.9)]
    pub clip_quantile: f32,
    /// Polyak averaging of the fine-tuned parameters (decay in [0, 1); 0 = off): the result and
    /// the logged accuracies use the average
    #[arg(long, default_value_t = 0.9)]
    pub ema: f32,
    /// Only grid steps with t ≥ this time enter the regression loss (0 = all)
    #[arg(long, default_value_t = 0.0)]
    pub loss_t_min: f32,
    /// Give every loss time step the same share of the loss (weights 1/EMA of its mean loss)
    #[arg(long)]
    pub step_normalize: bool,
    /// Iterations of linear learning-rate warmup (0 = none). Without it Adam's first steps move
    /// every parameter by ≈ lr and the SDE samples' reward falls from −0.9 to −3…−5 for about 15
    /// of the 50 iterations (RESULTS.md, session 12)
    #[arg(long, default_value_t = 10)]
    pub warmup: usize,
    /// Parameters that move: all (the paper's), output (the last layer) or output-bias
    #[arg(long, default_value = "all")]
    pub scope: String,
    /// Sampler of the before/after classifiers: `sde` (the memoryless SDE on the fine-tuning grid:
    /// the law Adjoint Matching's loss drives to p_base·exp(λr)) or `ode` (the meta-model's own
    /// solver and steps, which follows the tilted law only as far as the learned control is
    /// exact). For the base both give the same law; after fine-tuning the SDE's is the closer to
    /// the tilt (64 classifiers: SDE +6.1 points, ODE +5.2; RESULTS.md, session 13)
    #[arg(long, default_value = "sde")]
    pub eval_sampler: String,
    /// Classifiers generated for the before/after accuracies (the generated law has modes a few
    /// classifiers miss: with 8 the measured gain varies by ±5 points from draw to draw)
    #[arg(long, default_value_t = 32)]
    pub eval_models: usize,
    /// Evaluation images used (N drawn at random with a fixed seed, the same every run; 0 = all).
    #[arg(long, default_value_t = 2000)]
    pub eval_limit: usize,
    /// Measure eval accuracy every N iterations in the log (0 = only before/after).
    #[arg(long, default_value_t = 10)]
    pub eval_every: usize,
    /// Also estimate what the tilt p_base·exp(λr) can reach from the before classifiers: their
    /// eval accuracies reweighted by exp(−λ·CE on all of --data), for λ = 1, 3, 10, 30, 100, 300
    /// (`reach` in the JSON, with effective sample sizes; as `flow sample --tilt-data`, but for
    /// the --eval-sampler law). One pass over --data per classifier; `--iters 0 --eval-models 256
    /// --reach` measures it alone.
    #[arg(long)]
    pub reach: bool,
    /// Which iterate is the result: `best` = the one with the highest smoothed batch-median
    /// reward (EMA 0.8; the training reward, not the eval set), `last` = the final one. A sharp
    /// tilt can throw a concentrated law off in one step late in a run (RESULTS.md, session 19).
    /// The JSON's `kept_iter` says which (iterations done, 1-based).
    #[arg(long, default_value = "best")]
    pub keep: String,
    /// Also run a baseline: `sgd` fine-tunes the generated classifiers directly (Adam).
    #[arg(long)]
    pub baseline: Option<String>,
    /// Baseline iterations (default: --iters).
    #[arg(long)]
    pub baseline_iters: Option<usize>,
    /// Elite warm start: draw this many candidates from the base law (the SDE), keep the
    /// `--warm-elite` with the lowest loss of --reward on --data (`--warm-score-images` of it),
    /// and move the field onto them by flow matching before Adjoint Matching starts (0 = off).
    /// Adjoint Matching is local: on MNIST level 2 it stops on a 74 % mode while 1 in 256 base
    /// classifiers scores 90 %; with `--reward ce-calibrated --warm-start 256` all 32 classifiers
    /// end at 87–93 % on seed 1 (RESULTS.md, session 23). It finds only what the candidates hold:
    /// where none scores above 80 % (seed 2) the run ends near 77 %. The JSON's `warm_start`
    /// reports the elite's own accuracies and the warm-started law's before fine-tuning.
    #[arg(long, default_value_t = 0)]
    pub warm_start: usize,
    /// Images of --data the warm start scores each candidate on (drawn once with a fixed seed;
    /// 0 = all).
    #[arg(long, default_value_t = 10000)]
    pub warm_score_images: usize,
    /// Candidates the warm start keeps. Fewer is better in RESULTS.md's session 23 (MNIST level
    /// 2: 2, 4 and 8 end at 91.3, 88.8 and 85.3 %).
    #[arg(long, default_value_t = 2)]
    pub warm_elite: usize,
    /// Flow-matching iterations of the warm start.
    #[arg(long, default_value_t = 300)]
    pub warm_iters: usize,
    /// Pairs per flow-matching iteration of the warm start.
    #[arg(long, default_value_t = 64)]
    pub warm_batch: usize,
    /// Adam learning rate of the warm start.
    #[arg(long, default_value_t = 1e-3)]
    pub warm_lr: f32,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
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

/// Runs `weightflow tune`.
pub fn run(a: TuneArgs) -> anyhow::Result<()> {
    let _lock = crate::fsio::lock_output(&a.out, None)?;
    let objective = match a.reward.as_str() {
        "ce" => ClassifierObjective::CrossEntropy,
        "ce-calibrated" => ClassifierObjective::CalibratedCrossEntropy {
            min_scale: CALIBRATED_SCALES.0,
            max_scale: CALIBRATED_SCALES.1,
        },
        other => bail!("--reward {other}: expected 'ce' or 'ce-calibrated'"),
    };
    if a.eval_models == 0 {
        bail!("--eval-models must be at least 1");
    }
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
        keep_best: match a.keep.as_str() {
            "best" => true,
            "last" => false,
            other => bail!("--keep {other}: expected best or last"),
        },
        scope: a.scope.parse()?,
        reward_scale: a.reward_scale,
        lr: a.lr,
        seed: a.seed,
        ..AmConfig::default()
    };
    let use_sde = match a.eval_sampler.as_str() {
        "ode" => false,
        "sde" => true,
        other => bail!("--eval-sampler {other}: expected ode or sde"),
    };
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
            eprintln!("warm-started law ({} classifiers): {wm:.4} ± {ws:.4}", a.eval_models);
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
    let mut eval_curve: Vec<f64> = Vec::new();
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
                let m = mean_std(&acc).0;
                row["eval_acc"] = serde_json::json!(m);
                eval_curve.push(m);
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
    let plot_path = a.out.join("tune.svg");
    let svg = svg_panels(
        "Adjoint Matching",
        &[
            (
                "reward (mean over batch)",
                stats.iter().map(|s| s.reward_mean as f64).collect(),
            ),
            ("regression loss", stats.iter().map(|s| s.loss as f64).collect()),
            (
                &format!("eval accuracy every {} iterations", a.eval_every),
                eval_curve.clone(),
            ),
        ],
    );
    crate::fsio::write_atomic(&plot_path, svg.as_bytes()).with_context(|| plot_path.display().to_string())?;

    let (bm, bs) = mean_std(&acc_before);
    let (am_, as_) = mean_std(&acc_after);
    let mut out = serde_json::json!({
        "meta": a.meta, "out": a.out, "reward": a.reward, "data": a.data, "eval": eval_spec, "iters": a.iters,
        "config": cfg, "degenerate_scale": a.degenerate_scale, "reward_batch": a.reward_batch,
        "eval_sampler": a.eval_sampler, "before_acc": bm, "before_acc_std": bs, "after_acc": am_, "after_acc_std": as_,
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
    if let Some(b) = &a.baseline {
        if b != "sgd" {
            bail!("--baseline {b}: only 'sgd' is available");
        }
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
        eprintln!(
            "accuracy of {} generated classifiers on {eval_spec}: {:.4} ± {:.4} → {:.4} ± {:.4} after {} iterations ({:.2} s/iter: sampling {:.2}, reward {:.2}, adjoint {:.2}, regression {:.2})",
            a.eval_models, bm, bs, am_, as_, a.iters, mt.total, mt.sampling, mt.reward, mt.adjoint, mt.regression
        );
        if let Some(k) = tuned.best_iter.filter(|&i| i + 1 < a.iters as u64) {
            eprintln!(
                "kept the field of iteration {} (highest smoothed median reward; --keep last for the final one)",
                k + 1
            );
        }
        if let Some(b) = out.get("baseline") {
            eprintln!("SGD baseline: {} → {}", b["before_acc"], b["after_acc"]);
        }
        eprintln!(
            "fine-tuned meta-model in {}; log {}; plot {}",
            a.out.display(),
            log_path.display(),
            plot_path.display()
        );
    }
    Ok(())
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
            "warm start: best {} of {} base classifiers score {em:.4} ± {es:.4}; flow-matching loss {:.4} → {:.4}",
            wcfg.elite,
            wcfg.candidates,
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
