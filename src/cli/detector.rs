//! `weightflow detector fit|test|info`: a shift detector fitted once against a reference set,
//! saved to a directory ([`crate::shift::detector`]) and applied to many unlabeled batches.

use super::detect::TestOptions;
use crate::data::DatasetSpec;
use crate::shard::Shard;
use crate::shift::{Detector, FitInputs, Method};
use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use std::io::Write;
use std::path::PathBuf;

/// Exit code of `detector test --fail-on-shift` when some batch is shifted.
pub const SHIFT_EXIT_CODE: i32 = 3;

/// Arguments of `weightflow detector`.
#[derive(Args, Debug)]
pub struct DetectorArgs {
    #[command(subcommand)]
    pub command: DetectorCommand,
}

/// The `detector` subcommands (parsed once, so the size of the largest variant does not matter).
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum DetectorCommand {
    /// Fit a detector against a reference set and save it to a directory.
    Fit(FitArgs),
    /// Test unlabeled batches with a saved detector (one result per --query).
    Test(TestArgs),
    /// Show what a saved detector holds.
    Info(InfoArgs),
}

/// The detectors a saved detector can run (the label oracle needs labels, so it is none).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DetectorMethod {
    Bbsd,
    Mmd,
    Detectron,
    MetaDetectron,
    // Meta-Detectron with 0 fine-tuning iterations (its ablation).
    MetaDetectronUntuned,
}

impl From<DetectorMethod> for Method {
    fn from(m: DetectorMethod) -> Method {
        match m {
            DetectorMethod::Bbsd => Method::Bbsd,
            DetectorMethod::Mmd => Method::Mmd,
            DetectorMethod::Detectron => Method::Detectron,
            DetectorMethod::MetaDetectron => Method::MetaDetectron,
            DetectorMethod::MetaDetectronUntuned => Method::MetaDetectronUntuned,
        }
    }
}

/// Arguments of `weightflow detector fit`.
#[derive(Args, Debug)]
pub struct FitArgs {
    /// The test the detector runs.
    #[arg(long, value_enum)]
    pub method: DetectorMethod,
    /// In-distribution dataset spec (f's training distribution), e.g. `mnist:DIR:train`.
    #[arg(long)]
    pub reference: String,
    /// Batch sizes |Q| to compute null banks for, comma-separated (Detectron, Meta-Detectron;
    /// bbsd and mmd test any size).
    #[arg(long, value_delimiter = ',', default_value = "20")]
    pub sizes: Vec<usize>,
    /// The detector directory to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Build only shard I of N (0-based) of the null banks (detectron, meta-detectron): the runs
    /// r with r mod N = I, as parts in OUT/shards, resumable; no detector is saved. Shards may
    /// run at the same time on a shared filesystem; once all are done, the same command without
    /// --shard merges the parts (naming any shard missing) and saves the detector.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<Shard>,
    #[command(flatten)]
    pub opts: TestOptions,
}

/// Arguments of `weightflow detector test`.
#[derive(Args, Debug)]
pub struct TestArgs {
    /// The detector directory (`detector fit --out`).
    pub dir: PathBuf,
    /// An unlabeled batch: a dataset spec such as `npy:batch.npy` (uint8, or float in [0, 1] or
    /// [0, 255]; NHWC or NCHW), `folder:DIR` (a folder of images) or `mnist:DIR:test`. Repeat
    /// for several batches.
    #[arg(long, required = true)]
    pub query: Vec<String>,
    /// Seed of the test.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Exit with code 3 when some batch is shifted (0 when none is).
    #[arg(long)]
    pub fail_on_shift: bool,
    /// Print one JSON object per batch (one per line).
    #[arg(long)]
    pub json: bool,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// No progress output.
    #[arg(long)]
    pub quiet: bool,
}

/// Arguments of `weightflow detector info`.
#[derive(Args, Debug)]
pub struct InfoArgs {
    /// The detector directory.
    pub dir: PathBuf,
    /// Print the configuration as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// An exit code other than 0 or 1 that a command asks for (returned as an error so that
/// destructors run; `main` exits with it without printing).
#[derive(Debug)]
pub struct ExitCode(pub i32);

impl std::fmt::Display for ExitCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit code {}", self.0)
    }
}

impl std::error::Error for ExitCode {}

/// Runs `weightflow detector`.
pub fn run(a: DetectorArgs) -> anyhow::Result<()> {
    match a.command {
        DetectorCommand::Fit(a) => fit(a),
        DetectorCommand::Test(a) => test(a),
        DetectorCommand::Info(a) => info(a),
    }
}

fn fit(a: FitArgs) -> anyhow::Result<()> {
    let t = std::time::Instant::now();
    if let (Some(shard), DetectorMethod::Bbsd | DetectorMethod::Mmd) = (a.shard, a.method) {
        return Err(super::usage_error(format!(
            "--shard {shard}: shards split the null banks of detectron and meta-detectron; {} has none",
            Method::from(a.method)
        )));
    }
    let (source, cfg) = a.opts.source_and_config()?;
    let quiet = cfg.quiet;
    let (reference, native) = DatasetSpec::parse(&a.reference)
        .and_then(|s| s.load_with_native_shape())
        .with_context(|| format!("--reference {}", a.reference))?;
    let method: Method = a.method.into();
    let banks = crate::shift::detector::shard_dir(&a.out);
    let inputs = FitInputs {
        method,
        source: &source,
        reference,
        reference_spec: &a.reference,
        native_shape: native,
        sizes: &a.sizes,
        cfg,
    };
    if let Some(shard) = a.shard {
        let (config, built) = Detector::fit_shard(inputs, &banks, shard).with_context(|| {
            format!(
                "fitting shard {shard} of {:?} against --reference {}",
                a.method, a.reference
            )
        })?;
        for b in &built {
            println!(
                "shard {shard} of the {} null bank {}: {} of {} runs",
                config.method,
                b.bank.display(),
                b.done,
                b.total
            );
        }
        if !a.opts.quiet {
            eprintln!(
                "shard {shard} of detector {} done; once every shard is done, the same `detector fit` without --shard \
             merges them and saves the detector to {}",
                config.id,
                a.out.display()
            );
        }
        return Ok(());
    }
    let det = Detector::fit_in(inputs, banks.is_dir().then_some(banks.as_path()))
        .with_context(|| format!("fitting {:?} against --reference {}", a.method, a.reference))?;
    det.save(&a.out)?;
    if let Some(w) = det.config.alpha_warning() {
        eprintln!("warning: {w}");
    }
    if !quiet {
        eprintln!("fitted in {:.1} s", t.elapsed().as_secs_f64());
    }
    println!(
        "detector {} ({}, |Q| ∈ {:?}) saved to {}",
        det.config.id,
        det.config.method,
        det.config.sizes,
        a.out.display()
    );
    Ok(())
}

fn test(a: TestArgs) -> anyhow::Result<()> {
    let threads = a.threads.unwrap_or_else(rayon::current_num_threads).max(1);
    let det = Detector::load(&a.dir, threads, a.quiet).with_context(|| format!("detector {}", a.dir.display()))?;
    if let Some(w) = det.config.alpha_warning() {
        eprintln!("warning: {w}");
    }
    let mut any_shift = false;
    let mut out = std::io::stdout().lock();
    for spec in &a.query {
        let t = std::time::Instant::now();
        let (ds, native) = DatasetSpec::parse(spec)
            .and_then(|s| s.load_with_native_shape())
            .with_context(|| format!("--query {spec}"))?;
        let r = det
            .test(&ds, native, a.seed)
            .with_context(|| format!("--query {spec}"))?
            .with("query", spec.clone())
            .with("total_s", t.elapsed().as_secs_f64());
        any_shift |= r.shift;
        if a.json {
            writeln!(out, "{}", serde_json::to_string(&r)?)?;
        } else {
            writeln!(out, "{spec}: {}", r.verdict_line())?;
        }
    }
    out.flush()?;
    if a.fail_on_shift && any_shift {
        return Err(ExitCode(SHIFT_EXIT_CODE).into());
    }
    Ok(())
}

fn info(a: InfoArgs) -> anyhow::Result<()> {
    let c = Detector::read_config(&a.dir)?;
    if a.json {
        println!("{}", serde_json::to_string(&c)?);
        return Ok(());
    }
    let [ch, h, w] = c.reference.shape;
    println!("detector {} (weightflow {})", c.id, c.crate_version);
    println!("  method      {} (alpha {})", c.method, c.alpha);
    println!("  batch sizes {:?}", c.sizes);
    println!(
        "  base model  {} ({}), from {}",
        c.arch.name,
        c.arch.layout().dim(),
        c.model_source
    );
    println!(
        "  reference   {} ({} images of {ch}×{h}×{w}, |P| = {}, sha256 {})",
        c.reference.spec, c.reference.images, c.setup.n_reference, c.reference.sha256
    );
    if let Some(w) = c.alpha_warning() {
        println!("  warning     {w}");
    }
    Ok(())
}
