//! `weightflow bench`: times the engine on the workloads of `shared/bench/reference_torch.py`
//! (same shapes), so the two can be compared side by side (see `tools/bench.sh`).

use std::time::Instant;

use anyhow::Context;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use serde_json::json;

use crate::engine::{Input, Mode, Objective, OptimConfig, Optimizer, Population};
use crate::nets::{Activation, ArchSpec};

/// Arguments of `weightflow bench`.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Worker threads (sets the rayon global pool).
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Training steps per timing of the batch-10 workloads.
    #[arg(long, default_value_t = 200)]
    pub steps: usize,
    /// Only time the K=64 population forward and forward+backward.
    #[arg(long, hide = true)]
    pub pop_only: bool,
    /// No progress lines on stderr.
    #[arg(long)]
    pub quiet: bool,
}

/// Forward FLOPs of one CNN3 on one 3×32×32 image (as reference_torch.py counts them).
const CNN3_FWD_FLOP: f64 = 2.0
    * (30.0 * 30.0 * 16.0 * 27.0 + 13.0 * 13.0 * 32.0 * 144.0 + 4.0 * 4.0 * 15.0 * 288.0 + 60.0 * 20.0 + 20.0 * 10.0);

fn randn(rng: &mut crate::engine::rng::Rng, len: usize, scale: f32) -> Vec<f32> {
    (0..len)
        .map(|_| {
            let z: f32 = StandardNormal.sample(rng);
            scale * z
        })
        .collect()
}

/// Median seconds of `reps` runs of `f` after one warm-up run.
fn median<F: FnMut() -> anyhow::Result<()>>(reps: usize, mut f: F) -> anyhow::Result<f64> {
    f()?;
    let mut ts = Vec::with_capacity(reps);
    for _ in 0..reps {
        let t = Instant::now();
        f()?;
        ts.push(t.elapsed().as_secs_f64());
    }
    ts.sort_by(|a, b| a.total_cmp(b));
    Ok(ts[ts.len() / 2])
}

/// Trains `k` CNN3s (batch 10 each, per-model input, Adam lr 1e-4, wd 1e-2) for `steps` steps;
/// returns images per second over all models.
fn train_img_per_s(spec: &ArchSpec, k: usize, steps: usize, threads: usize) -> anyhow::Result<f64> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let d = spec.layout().dim();
    let mut w = randn(&mut rng, k * d, 0.1);
    let b = 10;
    let x = randn(&mut rng, k * b * spec.input_len(), 1.0);
    let labels: Vec<u32> = (0..(k * b) as u32).map(|i| (i * 7) % 10).collect();
    let mut opt = Optimizer::new(OptimConfig::adam(1e-4, 1e-2), k * d);
    let secs = median(3, || {
        for _ in 0..steps {
            let pop = Population::new(spec, &w, k, threads)?;
            let obj = Objective::Classify {
                labels: &labels,
                kinds: None,
                weights: None,
            };
            let g = pop.gradient(Input::PerModel(&x), b, &obj, Mode::Eval, false)?;
            opt.update(&mut w, &g.dw);
        }
        Ok(())
    })?;
    Ok((k * b * steps) as f64 / secs)
}

/// Runs the benchmark.
pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    let threads = args.threads.max(1);
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .context("setting up the rayon thread pool")?;
    let spec = ArchSpec::cnn3(3, 10, Activation::Gelu);
    let d = spec.layout().dim();
    let (k, n) = (64, 256);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let w = randn(&mut rng, k * d, 0.1);
    let x = randn(&mut rng, n * spec.input_len(), 1.0);
    let labels: Vec<u32> = (0..n as u32).map(|i| (i * 3) % 10).collect();
    let pop = Population::new(&spec, &w, k, threads)?;
    let say = |what: &str| {
        if !args.quiet {
            eprintln!("timing {what}");
        }
    };
    say("K=64 CNN3 forward, 256 images");
    let fwd = median(5, || {
        pop.logits(Input::Shared(&x), n)?;
        Ok(())
    })?;
    let obj = Objective::Classify {
        labels: &labels,
        kinds: None,
        weights: None,
    };
    say("K=64 CNN3 forward+backward, 256 images");
    let fwdbwd = median(3, || {
        pop.gradient(Input::Shared(&x), n, &obj, Mode::Eval, false)?;
        Ok(())
    })?;
    let (one, zoo) = if args.pop_only {
        (f64::NAN, f64::NAN)
    } else {
        say("1 CNN3 training");
        let one = train_img_per_s(&spec, 1, args.steps, threads)?;
        say("16 CNN3s training");
        (one, train_img_per_s(&spec, 16, (args.steps / 4).max(1), threads)?)
    };
    let pop_gflop = CNN3_FWD_FLOP * (k * n) as f64 / 1e9;
    let res = json!({
        "threads": threads,
        "P": d,
        "pop_fwd_ms": fwd * 1e3,
        "pop_fwdbwd_ms": fwdbwd * 1e3,
        "cnn3_train_img_per_s": one,
        "pop_zoo_train_img_per_s": zoo,
        "pop_fwd_gflop_per_s": pop_gflop / fwd,
        "pop_fwdbwd_gflop_per_s": 3.0 * pop_gflop / fwdbwd,
        "cnn3_train_gflop_per_s": 3.0 * CNN3_FWD_FLOP * one / 1e9,
        "pop_zoo_train_gflop_per_s": 3.0 * CNN3_FWD_FLOP * zoo / 1e9,
        "pop_fwdbwd_gflop": 3.0 * pop_gflop,
    });
    if args.json {
        println!("{res}");
    } else {
        println!("workload                               time / rate        GFLOP/s");
        println!(
            "K=64 CNN3 forward, 256 images          {:>9.1} ms    {:>8.1}",
            fwd * 1e3,
            pop_gflop / fwd
        );
        println!(
            "K=64 CNN3 forward+backward, 256 images {:>9.1} ms    {:>8.1}",
            fwdbwd * 1e3,
            3.0 * pop_gflop / fwdbwd
        );
        println!(
            "1 CNN3 training, batch 10 (Adam)       {:>9.0} img/s {:>8.1}",
            one,
            3.0 * CNN3_FWD_FLOP * one / 1e9
        );
        println!(
            "16 CNN3s training, batch 10 each       {:>9.0} img/s {:>8.1}",
            zoo,
            3.0 * CNN3_FWD_FLOP * zoo / 1e9
        );
        println!("threads: {threads}");
    }
    Ok(())
}
