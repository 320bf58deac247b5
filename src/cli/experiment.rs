//! `weightflow experiment shift|report`: the shift-detection grid (methods × |Q| × seeds ×
//! shifts), resumable and splittable into shards, with JSON, markdown and plot reports.

use super::choices::{name, MethodArg};
use super::detect::TestOptions;
use crate::shard::Shard;
use crate::shift::experiment::{run_grid, summarize_cells, write_reports, Cell, GridConfig};
use crate::shift::grid_shards::{collect, write_spec, GridSpec};
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
    Shift(Box<ShiftArgs>),
    /// Write results.json, results.md and the plots of a grid folder from its cells: merges the
    /// shards of `experiment shift --shard I/N` and names those missing or incomplete.
    Report(ReportArgs),
}

/// Arguments of `experiment report`.
#[derive(Args, Debug)]
pub struct ReportArgs {
    /// The grid folder (`--out` of `experiment shift`).
    pub dir: PathBuf,
    /// Write the reports from the cells there are even when shards are missing or incomplete
    /// (default: an error naming them).
    #[arg(long)]
    pub allow_partial: bool,
    /// Print results.json to stdout as well.
    #[arg(long)]
    pub json: bool,
    /// No summary on stderr.
    #[arg(long)]
    pub quiet: bool,
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
    /// Null queries per method and |Q| (seeds 0..N, each scored against every shifted cell);
    /// below --seeds means --seeds.
    #[arg(long, default_value_t = 0)]
    pub null_queries: u64,
    /// Methods, comma-separated; `meta-detectron-untuned` is Meta-Detectron with 0 fine-tuning
    /// iterations (rows `meta-detectron-untuned*`, beside `meta-detectron*`: what the
    /// fine-tuning adds); `oracle` is f's error rate on Q against the true labels (how harmful
    /// each shift is at each |Q|, not a detector).
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
    /// Compute only shard I of N (0-based): the cells at positions I, I+N, I+2N, ... of the
    /// grid's work list, into OUT/cells.shard-I-of-N.jsonl (no reports); shards may run at the
    /// same time into one folder, and `experiment report OUT` merges them.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<Shard>,
}

/// Runs an experiment subcommand.
pub fn run(a: ExperimentArgs) -> anyhow::Result<()> {
    match a.command {
        ExperimentCommand::Shift(s) => run_shift(*s),
        ExperimentCommand::Report(r) => run_report(r),
    }
}

fn run_shift(a: ShiftArgs) -> anyhow::Result<()> {
    // a shard locks only its own files (`.lock.shard-I-of-N`), the whole run the folder
    let _lock = crate::fsio::lock_output(&a.out, a.shard.map(|s| (s.index, s.count)))
        .with_context(|| format!("--out {}", a.out.display()))?;
    let methods: Vec<Method> = a.methods.iter().map(|&m| m.into()).collect();
    let shifted = split_specs(&a.shifted);
    let cfg = GridConfig {
        methods,
        sizes: a.sizes.clone(),
        seeds: a.seeds,
        null_seeds: a.null_queries,
        shifted: shifted.clone(),
        alpha: a.opts.alpha,
        quiet: a.opts.quiet,
        shard: a.shard,
    };
    let t0 = std::time::Instant::now();
    let setup = a.opts.setup(&a.source)?;
    let header = serde_json::json!({
        "source": a.source, "shifted": shifted, "sizes": a.sizes, "seeds": a.seeds, "null_queries": a.null_queries.max(a.seeds),
        "methods": a.methods.iter().map(name).collect::<Vec<_>>(), "alpha": cfg.alpha, "setup": setup.key,
        "n_reference": a.opts.n_reference, "null_runs": a.opts.null_runs,
    });
    let mut queries = vec!["null".to_string()];
    queries.extend(shifted);
    let spec = GridSpec {
        setup: setup.key.clone(),
        methods: cfg.methods.iter().map(|m| m.name().to_string()).collect(),
        sizes: a.sizes.clone(),
        seeds: a.seeds,
        null_seeds: a.null_queries,
        queries,
        alpha: cfg.alpha,
        header: header.clone(),
        shard: a.shard,
    };
    std::fs::create_dir_all(&a.out).with_context(|| format!("--out {}", a.out.display()))?;
    write_spec(&a.out, &spec)?;
    let (cells, computed) = run_grid(&setup, &cfg, &a.out).with_context(|| format!("grid into {}", a.out.display()))?;
    if let Some(s) = a.shard {
        let owned = crate::shift::grid_shards::work_list(&spec)
            .len()
            .saturating_sub(s.index)
            .div_ceil(s.count);
        if a.json {
            let doc = serde_json::json!({"shard": s.to_string(), "cells": cells.len(), "cells_of_shard": owned,
                "computed_now": computed, "wall_s": t0.elapsed().as_secs_f64()});
            println!("{}", serde_json::to_string(&doc)?);
        }
        if !a.opts.quiet {
            eprintln!(
                "shard {s}: {} of its {owned} cells ({computed} computed now) in {:.1}s; once every shard is done: weightflow experiment report {}",
                cells.len(),
                t0.elapsed().as_secs_f64(),
                a.out.display()
            );
        }
        return Ok(());
    }
    write_all(&a.out, &cells, header, computed, t0, a.json, a.opts.quiet)
}

/// Summarizes `cells` and writes results.json (`header` plus the counts and wall time),
/// results.md, the AUROC plot and Figure 2; prints the table (or the JSON) to stdout.
fn write_all(
    out: &std::path::Path,
    cells: &[Cell],
    mut header: serde_json::Value,
    computed: usize,
    t0: std::time::Instant,
    json: bool,
    quiet: bool,
) -> anyhow::Result<()> {
    let alpha = header["alpha"].as_f64().unwrap_or(0.05);
    let rows = summarize_cells(cells, alpha)?;
    header["cells"] = cells.len().into();
    header["computed_now"] = computed.into();
    header["wall_s"] = t0.elapsed().as_secs_f64().into();
    write_reports(out, &rows, header.clone())?;
    let fig2 = crate::shift::figure2::figure2_curves(cells)?;
    crate::shift::figure2::write_figure2(out, &fig2)?;
    if json {
        let mut doc = header;
        doc["rows"] = serde_json::to_value(&rows)?;
        println!("{}", serde_json::to_string(&doc)?);
    } else {
        print!("{}", crate::shift::experiment::markdown(&rows)?);
    }
    if !quiet {
        eprintln!(
            "{} cells ({} computed now) in {:.1}s; reports in {}",
            cells.len(),
            computed,
            t0.elapsed().as_secs_f64(),
            out.display()
        );
    }
    Ok(())
}

fn run_report(a: ReportArgs) -> anyhow::Result<()> {
    let t0 = std::time::Instant::now();
    let c = collect(&a.dir)?;
    if !c.problems.is_empty() {
        let list = c.problems.join("\n  ");
        if !a.allow_partial {
            anyhow::bail!(
                "{}: {} of {} cells done:\n  {list}\n(run or resume those shards with the same `experiment shift ... --shard I/N` command; --allow-partial reports what there is)",
                a.dir.display(),
                c.cells.len(),
                c.total
            );
        }
        eprintln!("warning: reporting {} of {} cells:\n  {list}", c.cells.len(), c.total);
    } else if !a.quiet {
        match c.shards {
            Some(n) => eprintln!("{n} shards complete: {} cells", c.total),
            None => eprintln!("grid complete: {} cells", c.total),
        }
    }
    let _lock = crate::fsio::lock_output(&a.dir, None).with_context(|| format!("{}", a.dir.display()))?;
    write_all(&a.dir, &c.cells, c.spec.header.clone(), 0, t0, a.json, a.quiet)
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
