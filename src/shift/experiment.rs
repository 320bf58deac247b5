//! The shift-detection grid (paper Table 3): for each method, |Q| and seed, one test on each
//! shifted spec, and `null_seeds` tests on null queries (drawn from images never in P or a null
//! bank's pool, [`Setup::null_queries`]), every shifted cell scored against all of them.
//! Resumable: each finished cell is appended as one JSON line to `cells.jsonl` and skipped on a
//! rerun. The summary per (detector, |Q|, shift) is TPR@α ± se and AUROC ± DeLong se
//! ([`summarize`], scores = the detector's statistic, higher = more shifted), the false-positive
//! rate on the null tests and
//! the mean wall time per test; written as `results.json`, `results.md` and `auroc.{png,svg}`
//! (Figure 2, from traced Meta-Detectron cells, is [`super::figure2`]).

use super::pipeline::{Method, Setup};
use super::stats::{rejection_rate, summarize};
use super::{DetectionResult, ShiftError};
use crate::data::{self, Dataset};
use crate::report::json::{write_atomic, write_json};
use crate::report::plot::{LinePlot, Series};
use crate::report::table::{fmt_pm, Table};
use crate::report::ReportError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// The grid.
#[derive(Clone, Debug)]
pub struct GridConfig {
    pub methods: Vec<Method>,
    pub sizes: Vec<usize>,
    /// Seeds 0..seeds.
    pub seeds: u64,
    /// Null queries per method and |Q| (seeds 0..null_seeds); fewer than `seeds` means `seeds`.
    pub null_seeds: u64,
    /// Shifted dataset specs.
    pub shifted: Vec<String>,
    pub alpha: f64,
    pub quiet: bool,
    /// Compute only this shard's cells (positions ≡ I mod N of [`super::grid_shards::work_list`]),
    /// into `cells.shard-I-of-N.jsonl`.
    pub shard: Option<crate::shard::Shard>,
}

/// One finished test of the grid.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    /// The setup (f, reference, split) the test ran against.
    pub setup: String,
    pub method: String,
    pub size: usize,
    pub seed: u64,
    /// `"null"` or the shifted spec.
    pub query: String,
    pub results: Vec<DetectionResult>,
}

impl Cell {
    /// A Meta-Detectron cell at |Q| = 20 holding `r` (test fixtures).
    #[cfg(test)]
    pub(crate) fn meta_detectron_fixture(query: &str, seed: u64, r: DetectionResult) -> Cell {
        Cell {
            setup: "s".into(),
            method: "meta-detectron".into(),
            size: 20,
            seed,
            query: query.into(),
            results: vec![r],
        }
    }

    fn key(&self) -> (String, usize, u64, String) {
        (self.method.clone(), self.size, self.seed, self.query.clone())
    }
}

/// One row of the summary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SummaryRow {
    /// Detector (a result's `method`, e.g. `detectron-entropy`).
    pub detector: String,
    pub size: usize,
    pub shift: String,
    pub tpr: f64,
    pub tpr_se: f64,
    pub auroc: f64,
    /// DeLong standard error of the AUROC.
    #[serde(default)]
    pub auroc_se: f64,
    pub fpr_null: f64,
    pub fpr_null_se: f64,
    /// Mean seconds per test (without one-time cached work) over this detector's tests at this size.
    pub mean_wall_s: f64,
    pub n_null: usize,
    pub n_shift: usize,
}

/// Reads the finished cells of `path` (missing file: none). A torn last line (a killed run) is
/// ignored ([`run_grid`] cuts it before appending); a bad line elsewhere is an error naming it.
pub fn read_cells(path: &Path) -> Result<Vec<Cell>, ShiftError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(path, e)),
    };
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut out = Vec::with_capacity(lines.len());
    for (i, l) in lines.iter().enumerate() {
        match serde_json::from_str::<Cell>(l) {
            Ok(c) => out.push(c),
            Err(_) if i + 1 == lines.len() && !text.ends_with('\n') => {}
            Err(e) => {
                return Err(ShiftError::Invalid(format!(
                    "{}: line {} is not a grid cell: {e}",
                    path.display(),
                    i + 1
                )))
            }
        }
    }
    Ok(out)
}

fn io(path: &Path, e: std::io::Error) -> ShiftError {
    ShiftError::Report(ReportError::Io {
        path: path.display().to_string(),
        source: e,
    })
}

/// Runs the missing cells of the grid (appending each to `<out>/cells.jsonl`, or to the shard's
/// `cells.shard-I-of-N.jsonl`) and returns all cells of this setup in that file, plus how many
/// were computed now.
pub fn run_grid(setup: &Setup, cfg: &GridConfig, out: &Path) -> Result<(Vec<Cell>, usize), ShiftError> {
    if cfg.methods.is_empty() || cfg.sizes.is_empty() || cfg.seeds == 0 {
        return Err(ShiftError::Invalid(
            "the grid needs at least one method, size and seed".into(),
        ));
    }
    std::fs::create_dir_all(out).map_err(|e| io(out, e))?;
    let path = out.join(super::grid_shards::cells_file(cfg.shard));
    // a torn last line of a killed run is cut, so that the next cell starts on a line of its own
    crate::fsio::repair_log_tail(&path, |l| serde_json::from_str::<Cell>(l).is_ok()).map_err(|e| io(&path, e))?;
    let mut cells: Vec<Cell> = read_cells(&path)?
        .into_iter()
        .filter(|c| c.setup == setup.key)
        .collect();
    let done: std::collections::HashSet<_> = cells.iter().map(Cell::key).collect();
    let mut shifted: Vec<(String, Dataset)> = Vec::with_capacity(cfg.shifted.len());
    for s in &cfg.shifted {
        shifted.push((s.clone(), data::load(s)?));
    }
    let null_seeds = cfg.null_seeds.max(cfg.seeds);
    let total = cfg.methods.len() * cfg.sizes.len() * (null_seeds + cfg.seeds * shifted.len() as u64) as usize;
    let mine = |i: usize| cfg.shard.is_none_or(|s| s.owns(i));
    let total = (0..total).filter(|&i| mine(i)).count();
    let mut position = 0; // in the work list (the loops below, `grid_shards::work_list`)
    let bar = crate::report::progress_bar(total as u64, "grid", cfg.quiet);
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| io(&path, e))?;
    let mut computed = 0;
    for &method in &cfg.methods {
        // Null queries (and shifted copies of their split, same length) come from images never
        // in P or the null bank's pool (`Setup::null_queries`).
        let (null_ds, query_idx) = setup.null_queries(method)?;
        let mut queries: Vec<(&str, &Dataset)> = vec![("null", null_ds)];
        queries.extend(shifted.iter().map(|(s, d)| (s.as_str(), d)));
        for &size in &cfg.sizes {
            for seed in 0..null_seeds {
                for &(name, ds) in queries.iter().filter(|(n, _)| seed < cfg.seeds || *n == "null") {
                    position += 1;
                    if !mine(position - 1) {
                        continue;
                    }
                    bar.inc(1);
                    let key = (method.name().to_string(), size, seed, name.to_string());
                    if done.contains(&key) {
                        continue;
                    }
                    let among = (ds.len() == null_ds.len()).then_some(query_idx.as_slice());
                    let (q, labels) = setup.query_labeled(ds, Some(size), among, seed)?;
                    let results = setup.test(method, &q, Some(&labels), seed)?;
                    let cell = Cell {
                        setup: setup.key.clone(),
                        method: key.0,
                        size,
                        seed,
                        query: key.3,
                        results,
                    };
                    let line = serde_json::to_string(&cell).map_err(|e| ShiftError::Invalid(e.to_string()))?;
                    crate::fsio::append_line(&mut file, &line).map_err(|e| io(&path, e))?;
                    cells.push(cell);
                    computed += 1;
                }
            }
        }
    }
    bar.finish_and_clear();
    Ok((cells, computed))
}

/// The summary rows of `cells`: one per detector, size and shifted spec.
pub fn summarize_cells(cells: &[Cell], alpha: f64) -> Result<Vec<SummaryRow>, ShiftError> {
    // (detector, size) -> query -> results
    // Secondary tests nested in a result (Meta-Detectron's disagreement) get rows of their own,
    // unless the cell also lists them at the top level (Detectron's disagreement is both).
    let flat: Vec<(&Cell, Vec<DetectionResult>)> = cells
        .iter()
        .map(|c| {
            let mut rs = c.results.clone();
            for r in &c.results {
                for mut n in r.nested() {
                    if rs.iter().any(|x| x.method == n.method) {
                        continue;
                    }
                    if let Some(w) = r.extra.get("wall_s") {
                        n.extra.entry("wall_s").or_insert_with(|| w.clone());
                    }
                    rs.push(n);
                }
            }
            (c, rs)
        })
        .collect();
    let mut by: BTreeMap<(String, usize), BTreeMap<String, Vec<&DetectionResult>>> = BTreeMap::new();
    for (c, rs) in &flat {
        for r in rs {
            by.entry((r.method.clone(), c.size))
                .or_default()
                .entry(c.query.clone())
                .or_default()
                .push(r);
        }
    }
    let mut rows = Vec::new();
    for ((detector, size), queries) in &by {
        let Some(null) = queries.get("null") else { continue };
        let null_scores: Vec<f64> = null.iter().map(|r| r.statistic).collect();
        let (fpr, fpr_se) = rejection_rate(&null.iter().map(|r| r.shift).collect::<Vec<_>>())?;
        let walls: Vec<f64> = queries
            .values()
            .flatten()
            .filter_map(|r| r.extra.get("wall_s").and_then(|v| v.as_f64()))
            .collect();
        let mean_wall = walls.iter().sum::<f64>() / walls.len().max(1) as f64;
        for (shift, rs) in queries.iter().filter(|(q, _)| q.as_str() != "null") {
            let scores: Vec<f64> = rs.iter().map(|r| r.statistic).collect();
            let s = summarize(&null_scores, &scores, alpha)?;
            rows.push(SummaryRow {
                detector: detector.clone(),
                size: *size,
                shift: shift.clone(),
                tpr: s.tpr,
                tpr_se: s.tpr_se,
                auroc: s.auroc,
                auroc_se: s.auroc_se,
                fpr_null: fpr,
                fpr_null_se: fpr_se,
                mean_wall_s: mean_wall,
                n_null: s.n_null,
                n_shift: s.n_shift,
            });
        }
    }
    Ok(rows)
}

/// The markdown table of `rows`.
pub fn markdown(rows: &[SummaryRow]) -> Result<String, ShiftError> {
    let mut t = Table::new(&[
        "detector",
        "|Q|",
        "shift",
        "TPR@5 ± se",
        "AUROC ± se",
        "FPR (null) ± se",
        "s/test",
        "n",
    ]);
    for r in rows {
        t.push_row(&[
            r.detector.clone(),
            r.size.to_string(),
            r.shift.clone(),
            fmt_pm(r.tpr, r.tpr_se, 3),
            fmt_pm(r.auroc, r.auroc_se, 3),
            fmt_pm(r.fpr_null, r.fpr_null_se, 3),
            format!("{:.2}", r.mean_wall_s),
            format!("{}/{}", r.n_null, r.n_shift),
        ])?;
    }
    Ok(t.to_markdown())
}

/// AUROC against |Q|, one line per detector (mean over the shifts), with ± one standard error
/// (Hanley–McNeil per shift, combined as the standard error of the mean over the shifts) and
/// the chance level.
pub fn auroc_plot(rows: &[SummaryRow]) -> LinePlot {
    // detector -> |Q| -> [(auroc, se)]
    type BySize = BTreeMap<usize, Vec<(f64, f64)>>;
    let mut by: BTreeMap<&str, BySize> = BTreeMap::new();
    for r in rows {
        by.entry(r.detector.as_str())
            .or_default()
            .entry(r.size)
            .or_default()
            .push((r.auroc, r.auroc_se));
    }
    let mut plot = LinePlot::new("Shift detection: AUROC vs |Q| (mean over shifts)", "|Q|", "AUROC");
    plot.dodge = true;
    for (det, sizes) in by {
        let (pts, se): (Vec<(f64, f64)>, Vec<f64>) = sizes
            .into_iter()
            .map(|(s, v)| {
                let k = v.len() as f64;
                let mean = v.iter().map(|p| p.0).sum::<f64>() / k;
                ((s as f64, mean), v.iter().map(|p| p.1 * p.1).sum::<f64>().sqrt() / k)
            })
            .unzip();
        plot = plot.with_series(Series::new(det, pts).with_se(se));
    }
    plot.auroc_axis()
}

/// Writes `results.json`, `results.md` and `auroc.{png,svg}` into `out`.
pub fn write_reports(out: &Path, rows: &[SummaryRow], header: serde_json::Value) -> Result<(), ShiftError> {
    let mut doc = header;
    doc["rows"] = serde_json::to_value(rows).map_err(|e| ShiftError::Invalid(e.to_string()))?;
    write_json(&out.join("results.json"), &doc)?;
    write_atomic(&out.join("results.md"), markdown(rows)?.as_bytes())?;
    if !rows.is_empty() {
        let plot = auroc_plot(rows);
        plot.save(&out.join("auroc.png"), 720, 480)?;
        plot.save(&out.join("auroc.svg"), 720, 480)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Meta-Detectron cell whose entropy statistic is `ent` and nested disagreement `dis`.
    fn md_cell(seed: u64, query: &str, ent: f64, dis: f64) -> Cell {
        let nested = DetectionResult::new("meta-detectron-disagreement", dis, 0.5, 0.5, false, 20, seed);
        let r = DetectionResult::new("meta-detectron", ent, 0.5, 0.5, false, 20, seed)
            .with("wall_s", 3.0)
            .with("disagreement", nested.to_json());
        Cell::meta_detectron_fixture(query, seed, r)
    }

    #[test]
    fn nested_statistics_get_their_own_rows() {
        // Entropy separates null from shifted perfectly; disagreement ranks them the other way.
        let mut cells = Vec::new();
        for s in 0..4 {
            cells.push(md_cell(s, "null", 0.1 * s as f64, 0.9));
            cells.push(md_cell(s, "shifted", 1.0 + s as f64, 0.1));
        }
        let rows = summarize_cells(&cells, 0.05).unwrap();
        let get = |d: &str| rows.iter().find(|r| r.detector == d).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(get("meta-detectron").auroc, 1.0);
        assert_eq!(get("meta-detectron-disagreement").auroc, 0.0);
        assert_eq!(get("meta-detectron-disagreement").mean_wall_s, 3.0);
        assert_eq!(get("meta-detectron-disagreement").n_null, 4);
        // A nested result that the cell also lists at the top level is counted once.
        for c in &mut cells {
            let top = c.results[0].nested().remove(0);
            c.results.push(top);
        }
        let rows = summarize_cells(&cells, 0.05).unwrap();
        assert_eq!(rows.len(), 2);
        assert!(rows.iter().all(|r| r.n_null == 4 && r.n_shift == 4), "{rows:?}");
    }
}
