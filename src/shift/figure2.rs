//! The paper's Figure 2 from a grid's cells: Meta-Detectron's AUROC and the CDC loss ℓ_cdc along
//! the fine-tuning iterations. Each Meta-Detectron cell run with `--md-trace` records the
//! entropy statistic of ½(f + g_i) after every iteration i (`entropy_per_iter`) and the mean
//! ℓ_cdc of each iteration's batch (`cdc_per_iter`). Per (|Q|, shift) the AUROC at iteration i
//! separates the null queries' statistics at i from the shifted ones' at i; ℓ_cdc is averaged
//! over the queries of each kind. Written as `figure2.json` and `figure2_{auroc,cdc}.{png,svg}`.

use super::experiment::Cell;
use super::stats::{auroc, auroc_se_hanley_mcneil};
use super::ShiftError;
use crate::report::json::write_json;
use crate::report::plot::{LinePlot, Series};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// One (|Q|, shift) curve of Figure 2.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IterCurve {
    pub size: usize,
    pub shift: String,
    /// AUROC of the entropy statistic after iterations 1..=n (null vs shifted queries).
    pub auroc: Vec<f64>,
    /// Mean ℓ_cdc of iterations 1..=n on the shifted queries and on the null queries.
    pub cdc_shift: Vec<f64>,
    pub cdc_null: Vec<f64>,
    pub n_null: usize,
    pub n_shift: usize,
}

/// The per-iteration entropy and ℓ_cdc of the Meta-Detectron result of a cell, if it has a trace.
fn traces(cell: &Cell) -> Option<(Vec<f64>, Vec<f64>)> {
    let r = cell.results.iter().find(|r| r.method == "meta-detectron")?;
    let nums = |key: &str| -> Option<Vec<f64>> {
        let v: Vec<f64> = r
            .extra
            .get(key)?
            .as_array()?
            .iter()
            .filter_map(|x| x.as_f64())
            .collect();
        (!v.is_empty()).then_some(v)
    };
    Some((nums("entropy_per_iter")?, nums("cdc_per_iter").unwrap_or_default()))
}

/// Mean over rows of the first `n` entries (rows shorter than `n` are cut to the shortest).
fn column_means(rows: &[&Vec<f64>], n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| rows.iter().filter_map(|r| r.get(i)).sum::<f64>() / rows.len().max(1) as f64)
        .collect()
}

/// Element-wise mean of equally indexed series (cut to the shortest).
fn mean_series<'a>(series: impl Iterator<Item = &'a Vec<f64>>) -> Vec<f64> {
    let rows: Vec<&Vec<f64>> = series.collect();
    let n = rows.iter().map(|r| r.len()).min().unwrap_or(0);
    column_means(&rows, n)
}

/// The (entropy, ℓ_cdc) traces of the runs of one query kind.
type Runs = Vec<(Vec<f64>, Vec<f64>)>;

/// The Figure 2 curves of the traced Meta-Detectron cells, one per (|Q|, shifted spec) that has
/// traced null queries as well; empty when nothing was traced.
pub fn figure2_curves(cells: &[Cell]) -> Result<Vec<IterCurve>, ShiftError> {
    // size -> query -> [(entropy trace, cdc trace)]
    let mut by: BTreeMap<usize, BTreeMap<&str, Runs>> = BTreeMap::new();
    for c in cells {
        if let Some(t) = traces(c) {
            by.entry(c.size)
                .or_default()
                .entry(c.query.as_str())
                .or_default()
                .push(t);
        }
    }
    let mut curves = Vec::new();
    for (size, queries) in &by {
        let Some(null) = queries.get("null") else { continue };
        for (shift, runs) in queries.iter().filter(|(q, _)| **q != "null") {
            let n = null.iter().chain(runs).map(|(e, _)| e.len()).min().unwrap_or(0);
            let mut au = Vec::with_capacity(n);
            for i in 0..n {
                let neg: Vec<f64> = null.iter().map(|(e, _)| e[i]).collect();
                let pos: Vec<f64> = runs.iter().map(|(e, _)| e[i]).collect();
                au.push(auroc(&neg, &pos)?);
            }
            let cdc = |rs: &Runs| mean_series(rs.iter().map(|(_, c)| c));
            curves.push(IterCurve {
                size: *size,
                shift: shift.to_string(),
                auroc: au,
                cdc_shift: cdc(runs),
                cdc_null: cdc(null),
                n_null: null.len(),
                n_shift: runs.len(),
            });
        }
    }
    Ok(curves)
}

/// Points (1, v_0), (2, v_1), … of a per-iteration series.
fn by_iteration(v: &[f64]) -> Vec<(f64, f64)> {
    v.iter().enumerate().map(|(i, &y)| ((i + 1) as f64, y)).collect()
}

/// Writes `figure2.json` (every curve) and the two plots into `out`: AUROC along the iterations,
/// one line per |Q| (mean over the shifts, as the paper's figure), and ℓ_cdc along the
/// iterations per |Q| on the shifted queries (mean over the shifts) and on the null queries.
/// Does nothing without curves.
pub fn write_figure2(out: &Path, curves: &[IterCurve]) -> Result<(), ShiftError> {
    if curves.is_empty() {
        return Ok(());
    }
    write_json(&out.join("figure2.json"), &curves)?;
    let mut au = LinePlot::new(
        "Meta-Detectron: AUROC along fine-tuning (mean over shifts)",
        "iteration",
        "AUROC",
    );
    let mut cdc = LinePlot::new("Meta-Detectron: CDC loss along fine-tuning", "iteration", "CDC loss");
    let mut by_size: BTreeMap<usize, Vec<&IterCurve>> = BTreeMap::new();
    curves.iter().for_each(|c| by_size.entry(c.size).or_default().push(c));
    for (size, cs) in &by_size {
        let label = format!("|Q| = {size}");
        let mean = mean_series(cs.iter().map(|c| &c.auroc));
        // ± one standard error: Hanley–McNeil per shift, over the mean of the shifts.
        let se: Vec<f64> = (0..mean.len())
            .map(|i| {
                let v: f64 = cs
                    .iter()
                    .map(|c| auroc_se_hanley_mcneil(c.auroc[i], c.n_null, c.n_shift).powi(2))
                    .sum();
                v.sqrt() / cs.len() as f64
            })
            .collect();
        au = au.with_series(Series::new(label.clone(), by_iteration(&mean)).with_se(se));
        let shifted = mean_series(cs.iter().map(|c| &c.cdc_shift));
        cdc = cdc.with_series(Series::new(format!("{label}, shifted"), by_iteration(&shifted)));
        cdc = cdc.with_series(Series::new(format!("{label}, null"), by_iteration(&cs[0].cdc_null)));
    }
    let au = au.auroc_axis();
    for (plot, stem) in [(&au, "figure2_auroc"), (&cdc, "figure2_cdc")] {
        plot.save(&out.join(format!("{stem}.png")), 720, 480)?;
        plot.save(&out.join(format!("{stem}.svg")), 720, 480)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shift::DetectionResult;

    fn cell(query: &str, seed: u64, ent: Vec<f64>, cdc: Vec<f64>) -> Cell {
        let r = DetectionResult::new("meta-detectron", *ent.last().unwrap(), 0.0, 1.0, false, 20, seed)
            .with("entropy_per_iter", ent)
            .with("cdc_per_iter", cdc);
        Cell::meta_detectron_fixture(query, seed, r)
    }

    /// Shifted statistics that separate from the null ones only after the second iteration give
    /// AUROC 0.5-ish, then 1; ℓ_cdc is averaged per kind.
    #[test]
    fn auroc_and_cdc_per_iteration() {
        let cells = vec![
            cell("null", 0, vec![0.1, 0.2, 0.2], vec![2.0, 1.0, 1.0]),
            cell("null", 1, vec![0.3, 0.1, 0.3], vec![4.0, 3.0, 1.0]),
            cell("noise", 0, vec![0.2, 0.5, 0.6], vec![1.0, 0.5, 0.0]),
            cell("noise", 1, vec![0.2, 0.4, 0.9], vec![3.0, 1.5, 1.0]),
        ];
        let curves = figure2_curves(&cells).unwrap();
        assert_eq!(curves.len(), 1);
        let c = &curves[0];
        assert_eq!((c.size, c.shift.as_str(), c.n_null, c.n_shift), (20, "noise", 2, 2));
        assert_eq!(c.auroc, vec![0.5, 1.0, 1.0]);
        assert_eq!(c.cdc_null, vec![3.0, 2.0, 1.0]);
        assert_eq!(c.cdc_shift, vec![2.0, 1.0, 0.5]);
        let dir = tempfile::tempdir().unwrap();
        write_figure2(dir.path(), &curves).unwrap();
        for f in [
            "figure2.json",
            "figure2_auroc.png",
            "figure2_auroc.svg",
            "figure2_cdc.svg",
        ] {
            assert!(dir.path().join(f).exists(), "{f}");
        }
        // untraced cells give no figure
        let mut plain = cells.clone();
        plain.iter_mut().for_each(|c| c.results[0].extra.clear());
        assert!(figure2_curves(&plain).unwrap().is_empty());
    }
}
