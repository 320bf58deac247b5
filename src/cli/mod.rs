//! The command line: one file per command group; this module only parses and dispatches.

pub mod bench;
pub mod choices;
pub mod data;
pub mod demo;
pub mod detect;
pub mod detector;
pub mod experiment;
pub mod flow;
pub mod slurm;
pub mod tune;
pub mod zoo;

use clap::{Parser, Subcommand};

/// weightflow: generative flow models over neural-network weights, and covariate-shift
/// detection with them.
#[derive(Parser, Debug)]
#[command(
    name = "weightflow",
    version,
    about,
    long_about = None,
    after_help = "Results go to stdout (one JSON object with --json), progress and logs to stderr.\nExit status: 0 success, 1 runtime error, 2 usage error."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the whole pipeline on built-in synthetic data in a few minutes.
    Demo(demo::DemoArgs),
    /// Inspect, export, render and download datasets.
    Data(data::DataArgs),
    /// Model zoos: train, inspect, evaluate, export.
    Zoo(zoo::ZooArgs),
    /// The NM-CFM meta-model: train on zoos, sample networks, inspect.
    Flow(flow::FlowArgs),
    /// Fine-tune a meta-model toward a reward (Adjoint Matching).
    Tune(tune::TuneArgs),
    /// Test one unlabeled query sample for a covariate shift.
    Detect(detect::DetectArgs),
    /// Fit a shift detector once, save it, test many unlabeled batches with it.
    Detector(detector::DetectorArgs),
    /// Experiment grids (shift detection over sizes, seeds and shifts).
    Experiment(experiment::ExperimentArgs),
    /// Run a sharded zoo, grid or detector bank on a Slurm cluster: a job array plus the dependent
    /// merge job.
    Slurm(slurm::SlurmArgs),
    /// Time the population engine on the workloads of shared/bench/reference_torch.py.
    Bench(bench::BenchArgs),
}

/// A usage error found after parsing (bad values or combinations of arguments): `main` prints it
/// and exits with status 2, as for clap's own usage errors.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// A [`UsageError`] as an `anyhow` error.
pub fn usage_error(msg: impl Into<String>) -> anyhow::Error {
    UsageError(msg.into()).into()
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Demo(a) => demo::run_demo(a),
        Command::Data(a) => data::run(a),
        Command::Zoo(a) => zoo::run(a),
        Command::Flow(a) => flow::run(a),
        Command::Tune(a) => tune::run(a),
        Command::Detect(a) => detect::run(a),
        Command::Detector(a) => detector::run(a),
        Command::Experiment(a) => experiment::run(a),
        Command::Slurm(a) => slurm::run(a),
        Command::Bench(a) => bench::run(a),
    }
}
