//! `weightflow experiment shift`: the shift-detection grid (methods × |Q| × seeds × shifts),
//! resumable, with JSON, markdown and plot reports.

use super::choices::{name, MethodArg};
use super::detect::TestOptions;
use crate::shift::experiment::{run_grid, summarize_cells, write_reports, GridConfig};
use crate::shift::Method;
use anyhow::Context;
use clap::{Args, Subcommand};
use std::path::PathBuf;

/// `weightflow experiment ...`
#[derive(Args, Debug)]
pub struct ExperimentArgs {
    #[command(subcommand)]
    pub command: ExperimentCommand,
}

/// Experiment subcommands.
#[derive(Subcommand, Debug)]
pub enum ExperimentCommand {
    /// The shift-detection grid (paper Table 3); rerun the same command to resume.
    Shift(ShiftArgs),
}

/// Arguments of `experiment shift`.
#[derive(Args, Debug)]
pub struct ShiftArgs {
    /// In-distribution dataset spec: P, the null bank and the null queries come from it.
    #[arg(long)]
    pub source: String,
    /// Shifted dataset specs, comma-separated (commas inside a spec's options, as in
    /// `synthetic:shapes-shift,n=200:test`, stay with their spec).
    #[arg(long, required = true)]
    pub shifted: String,
    /// Query sizes |Q|.
    #[arg(long, value_delimiter = ',', default_value = "10,20,50")]
    pub sizes: Vec<usize>,
    /// Seeds per cell (0..SEEDS).
    #[arg(long, default_value_t = 10)]
    pub seeds: u64,
    /// Methods, comma-separated; `oracle` is f's error rate on Q against the true labels (how
    /// harmful each shift is at each |Q|, not a detector).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "detectron,bbsd,mmd")]
    pub methods: Vec<MethodArg>,
    #[command(flatten)]
    pub opts: TestOptions,
    /// Output directory (cells.jsonl, results.json, results.md, auroc.png/svg; with --md-trace the Figure 2 plots figure2_auroc/figure2_cdc.png/svg and figure2.json).
    #[arg(long)]
    pub out: PathBuf,
    /// Print one JSON object (results.json) instead of the markdown table.
    #[arg(long)]
    pub json: bool,
}

/// Runs an experiment subcommand.
pub fn run(a: ExperimentArgs) -> anyhow::Result<()> {
    match a.command {
        ExperimentCommand::Shift(s) => run_shift(s),
    }
}

fn run_shift(a: ShiftArgs) -> anyhow::Result<()> {
    let _lock = crate::fsio::lock_output(&a.out, None)?;
    let methods: Vec<Method> = a.methods.iter().map(|&m| m.into()).collect();
    let shifted = split_specs(&a.shifted);
    let cfg = GridConfig {
        methods,
        sizes: a.sizes.clone(),
        seeds: a.seeds,
        shifted: shifted.clone(),
        alpha: a.opts.alpha,
        quiet: a.opts.quiet,
    };
    let t0 = std::time::Instant::now();
    let setup = a.opts.setup(&a.source)?;
    let (cells, computed) = run_grid(&setup, &cfg, &a.out).with_context(|| format!("grid into {}", a.out.display()))?;
    let rows = summarize_cells(&cells, cfg.alpha)?;
    let header = serde_json::json!({
        "source": a.source, "shifted": shifted, "sizes": a.sizes, "seeds": a.seeds,
        "methods": a.methods.iter().map(name).collect::<Vec<_>>(), "alpha": cfg.alpha, "setup": setup.key,
        "n_reference": a.opts.n_reference, "null_runs": a.opts.null_runs,
        "cells": cells.len(), "computed_now": computed, "wall_s": t0.elapsed().as_secs_f64(),
    });
    write_reports(&a.out, &rows, header.clone())?;
    let fig2 = crate::shift::figure2::figure2_curves(&cells)?;
    crate::shift::figure2::write_figure2(&a.out, &fig2)?;
    if a.json {
        let mut doc = header;
        doc["rows"] = serde_json::to_value(&rows)?;
        println!("{}", serde_json::to_string(&doc)?);
    } else {
        print!("{}", crate::shift::experiment::markdown(&rows)?);
        if !a.opts.quiet {
            eprintln!(
                "{} cells ({} computed now) in {:.1}s; reports in {}",
                cells.len(),
                computed,
                t0.elapsed().as_secs_f64(),
                a.out.display()
            );
        }
    }
    Ok(())
}

/// Splits a comma-separated list of dataset specs: a piece starts a new spec only when it begins
/// with `KIND:` (a name without `=` before the first colon); other pieces are options of the
/// previous spec.
pub fn split_specs(list: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for piece in list.split(',') {
        let starts_spec = piece
            .split_once(':')
            .is_some_and(|(kind, _)| !kind.is_empty() && !kind.contains('='));
        match out.last_mut() {
            Some(last) if !starts_spec => {
                last.push(',');
                last.push_str(piece);
            }
            _ => out.push(piece.to_string()),
        }
    }
    out.retain(|s| !s.trim().is_empty());
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn spec_lists_keep_option_commas() {
        assert_eq!(
            super::split_specs("synthetic:shapes-shift,n=200,seed=6:test,mnist:d:test@gaussian_noise:3"),
            vec![
                "synthetic:shapes-shift,n=200,seed=6:test",
                "mnist:d:test@gaussian_noise:3"
            ]
        );
        assert_eq!(super::split_specs("a:b,c:d"), vec!["a:b", "c:d"]);
    }
}
