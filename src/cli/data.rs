//! `weightflow data ...`: inspect (`info`), materialize (`export`), look at (`show`) and fetch
//! (`download`) datasets given as spec strings (see `data::spec`).

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};

use crate::data::{self, corrupt, image_io, DatasetSpec};

/// Arguments of `weightflow data`.
#[derive(Args, Debug)]
pub struct DataArgs {
    #[command(subcommand)]
    pub command: DataCommand,
}

/// The `data` subcommands.
#[derive(Subcommand, Debug)]
pub enum DataCommand {
    /// Count images per class, shape, per-channel mean and std of a dataset spec.
    Info {
        /// KIND:PATH[:SPLIT][@CORRUPTION:SEVERITY[:SEED]]
        spec: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Write a dataset (e.g. a corrupted one) as PNG class folders or .npy arrays.
    Export {
        /// KIND:PATH[:SPLIT][@CORRUPTION:SEVERITY[:SEED]]
        spec: String,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// File format: PNG class folders or .npy arrays.
        #[arg(long, value_enum, default_value_t = ExportFormat::Png)]
        format: ExportFormat,
        /// Split name used for the output [default: the spec's split, else `train`].
        #[arg(long)]
        split: Option<String>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Render an image grid (one row per class; with a corruption, one row per severity).
    Show {
        spec: String,
        /// Output PNG.
        #[arg(long)]
        out: PathBuf,
        /// Images per row.
        #[arg(long, default_value_t = 10)]
        cols: usize,
        /// Upscaling factor.
        #[arg(long, default_value_t = 3)]
        scale: usize,
        /// With a corruption in the spec: rows = the clean images and severities 1..5.
        #[arg(long)]
        severities: bool,
    },
    /// Download the official files of a dataset into ROOT/NAME (sha256/md5 checked, resumable).
    Download {
        /// mnist, fashion-mnist, cifar10, cifar100, stl10, cifar10.1, camelyon17
        name: Option<String>,
        /// Folder the dataset's own folder is created in.
        #[arg(long, default_value = "data")]
        root: PathBuf,
        /// List the known datasets and their URLs.
        #[arg(long)]
        list: bool,
    },
}

/// Output format of `data export`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ExportFormat {
    Png,
    Npy,
}

/// Runs a `data` subcommand.
pub fn run(args: DataArgs) -> anyhow::Result<()> {
    match args.command {
        DataCommand::Info { spec, json } => info(&spec, json),
        DataCommand::Export {
            spec,
            out,
            format,
            split,
            json,
        } => {
            let _lock = crate::fsio::lock_output(&out, None)?;
            let parsed = DatasetSpec::parse(&spec)?;
            let ds = parsed.load()?;
            let split = split.or(parsed.split.clone()).unwrap_or_else(|| "train".into());
            match format {
                ExportFormat::Png => image_io::export_png_folder(&ds, &out, &split)?,
                ExportFormat::Npy => image_io::export_npy(&ds, &out, &split)?,
            }
            let format = format
                .to_possible_value()
                .map(|v| v.get_name().to_string())
                .unwrap_or_default();
            if json {
                let v = serde_json::json!({
                    "spec": spec, "out": out, "format": format, "split": split, "images": ds.len(),
                });
                println!("{}", serde_json::to_string(&v)?);
            } else {
                println!(
                    "wrote {} images of `{spec}` to {} as {format}, split `{split}`",
                    ds.len(),
                    out.display()
                );
            }
            Ok(())
        }
        DataCommand::Show {
            spec,
            out,
            cols,
            scale,
            severities,
        } => show(&spec, &out, cols.max(1), scale.clamp(1, 16), severities),
        DataCommand::Download { name, root, list } => {
            if list || name.is_none() {
                for s in data::download::SOURCES {
                    println!("{} (spec kind `{}`):", s.name, s.kind);
                    for f in s.files {
                        println!("  {}  ->  {}", f.url, f.file);
                    }
                }
                return Ok(());
            }
            let name = name.unwrap_or_default();
            let (dir, report) = data::download::download(&name, &root)?;
            for line in report {
                println!("{line}");
            }
            let kind = data::download::source(&name)?.kind;
            println!("ready: use the spec `{kind}:{}[:SPLIT]`", dir.display());
            Ok(())
        }
    }
}

fn info(spec: &str, json: bool) -> anyhow::Result<()> {
    let t = std::time::Instant::now();
    let ds = data::load(spec)?;
    let secs = t.elapsed().as_secs_f64();
    let (mean, std) = ds.channel_stats();
    let per_class = ds.per_class();
    if json {
        let v = serde_json::json!({
            "spec": spec,
            "count": ds.len(),
            "classes": ds.class_names,
            "num_classes": ds.num_classes(),
            "per_class": per_class,
            "shape": ds.shape,
            "mean": mean,
            "std": std,
            "load_seconds": secs,
        });
        println!("{}", serde_json::to_string(&v)?);
    } else {
        println!("{spec}");
        println!("  images   {} of shape {:?}, loaded in {secs:.2}s", ds.len(), ds.shape);
        println!("  mean     {:.4} {:.4} {:.4}", mean[0], mean[1], mean[2]);
        println!("  std      {:.4} {:.4} {:.4}", std[0], std[1], std[2]);
        println!("  classes  {}", ds.num_classes());
        for (name, n) in ds.class_names.iter().zip(&per_class) {
            println!("    {name:<16} {n}");
        }
    }
    Ok(())
}

fn show(spec: &str, out: &std::path::Path, cols: usize, scale: usize, severities: bool) -> anyhow::Result<()> {
    let parsed = DatasetSpec::parse(spec)?;
    if severities {
        let c = parsed
            .corruption
            .context("--severities needs a corruption suffix such as @fog:3")?;
        let clean_spec = DatasetSpec {
            corruption: None,
            ..parsed.clone()
        };
        let clean = clean_spec.load()?;
        // one image per class first, then the rest, up to `cols` columns
        let idx = spread(&clean, cols);
        let base = clean.subset(&idx);
        let mut sets = vec![base.clone()];
        for s in 1..=5u8 {
            sets.push(corrupt::apply(&base, c.corruption, s, c.seed)?);
        }
        let rows: Vec<Vec<_>> = sets
            .iter()
            .map(|d| (0..d.len()).map(|i| Some((d, i))).collect())
            .collect();
        image_io::save_grid(out, &rows, scale)?;
        println!(
            "wrote {} (rows: clean, {} severity 1..5)",
            out.display(),
            c.corruption.name()
        );
        return Ok(());
    }
    let ds = parsed.load()?;
    let rows: Vec<Vec<_>> = (0..ds.num_classes())
        .map(|c| {
            ds.labels
                .iter()
                .enumerate()
                .filter(|(_, &l)| l as usize == c)
                .take(cols)
                .map(|(i, _)| Some((&ds, i)))
                .collect()
        })
        .filter(|r: &Vec<_>| !r.is_empty())
        .take(20)
        .collect();
    image_io::save_grid(out, &rows, scale)?;
    println!("wrote {} ({} rows, one per class)", out.display(), rows.len());
    Ok(())
}

/// Up to `n` indices, cycling over the classes.
fn spread(ds: &data::Dataset, n: usize) -> Vec<usize> {
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); ds.num_classes()];
    for (i, &l) in ds.labels.iter().enumerate() {
        by_class[l as usize].push(i);
    }
    let mut out = Vec::new();
    let mut k = 0;
    while out.len() < n.min(ds.len()) {
        for members in &by_class {
            if let Some(&i) = members.get(k) {
                if out.len() < n {
                    out.push(i);
                }
            }
        }
        k += 1;
    }
    out
}
