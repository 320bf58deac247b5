//! The shift-detection grid split into shards and merged back. Every run of `experiment shift`
//! writes its definition ([`GridSpec`]) as `grid.json`, or `grid.shard-I-of-N.json` with
//! `--shard I/N`; a shard computes the cells at positions ≡ I (mod N) of the work list
//! ([`work_list`]: methods × sizes × seeds × queries, the order of the whole run) and appends them
//! to its own `cells.shard-I-of-N.jsonl`, so shards share a folder without touching each other's
//! files. [`collect`] reads every spec and cells file of a folder, checks that they describe one
//! grid, and returns its cells in work-list order (what the whole run summarizes) together with
//! the shards that are missing, incomplete or still running.

use super::experiment::{read_cells, Cell};
use super::ShiftError;
use crate::fsio::DirLock;
use crate::report::json::write_json;
use crate::report::ReportError;
use crate::shard::Shard;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// One cell's identity: (method, |Q|, seed, query).
pub type CellKey = (String, usize, u64, String);

/// What a grid run computes, as written next to its cells.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GridSpec {
    /// The setup key every cell of this grid carries.
    pub setup: String,
    /// Method names (as cells record them), |Q| values, seeds 0..seeds, and the queries:
    /// `"null"` then the shifted specs; the null query also runs seeds seeds..null_seeds.
    pub methods: Vec<String>,
    pub sizes: Vec<usize>,
    pub seeds: u64,
    #[serde(default)]
    pub null_seeds: u64,
    pub queries: Vec<String>,
    /// The significance level of the summary.
    pub alpha: f64,
    /// The static part of `results.json`'s header (the command's settings).
    pub header: serde_json::Value,
    /// The shard this run computed (absent: the whole grid).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
}

/// The cells file of a run: `cells.jsonl`, or `cells.shard-I-of-N.jsonl` for a shard.
pub fn cells_file(shard: Option<Shard>) -> String {
    match shard {
        None => "cells.jsonl".into(),
        Some(s) => format!("cells.{}.jsonl", s.tag()),
    }
}

/// The spec file of a run: `grid.json`, or `grid.shard-I-of-N.json` for a shard.
pub fn spec_file(shard: Option<Shard>) -> String {
    match shard {
        None => "grid.json".into(),
        Some(s) => format!("grid.{}.json", s.tag()),
    }
}

/// The cells of the whole grid in the order the whole run computes them
/// ([`super::experiment::run_grid`]'s loops).
pub fn work_list(spec: &GridSpec) -> Vec<CellKey> {
    let mut v = Vec::new();
    for m in &spec.methods {
        for &size in &spec.sizes {
            for seed in 0..spec.null_seeds.max(spec.seeds) {
                for q in spec.queries.iter().filter(|q| seed < spec.seeds || *q == "null") {
                    v.push((m.clone(), size, seed, q.clone()));
                }
            }
        }
    }
    v
}

/// Writes `spec` into `out` under its [`spec_file`] name.
pub fn write_spec(out: &Path, spec: &GridSpec) -> Result<(), ShiftError> {
    let v = serde_json::to_value(spec).map_err(|e| ShiftError::Invalid(e.to_string()))?;
    Ok(write_json(&out.join(spec_file(spec.shard)), &v)?)
}

/// A grid folder read back by [`collect`].
#[derive(Clone, Debug)]
pub struct Collected {
    /// The grid (its `shard` cleared).
    pub spec: GridSpec,
    /// Its finished cells in [`work_list`] order.
    pub cells: Vec<Cell>,
    /// Cells in the work list.
    pub total: usize,
    /// N when the folder holds shards.
    pub shards: Option<usize>,
    /// One line per shard (or whole run) that is missing, incomplete or still running.
    pub problems: Vec<String>,
}

fn io(path: &Path, e: std::io::Error) -> ShiftError {
    ShiftError::Report(ReportError::Io {
        path: path.display().to_string(),
        source: e,
    })
}

/// Reads the grid in `dir` (see the module doc): every `grid*.json` must describe the same grid
/// and every sharded run must use the same N.
pub fn collect(dir: &Path) -> Result<Collected, ShiftError> {
    let bad = |r: String| ShiftError::Invalid(format!("{}: {r}", dir.display()));
    let mut specs: Vec<GridSpec> = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| io(dir, e))?;
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n == "grid.json" || (n.starts_with("grid.shard-") && n.ends_with(".json")))
        .collect();
    names.sort();
    for n in &names {
        let path = dir.join(n);
        let text = std::fs::read_to_string(&path).map_err(|e| io(&path, e))?;
        let s: GridSpec = serde_json::from_str(&text)
            .map_err(|e| ShiftError::Invalid(format!("{}: not a grid spec: {e}", path.display())))?;
        if spec_file(s.shard) != *n {
            return Err(bad(format!("{n} holds the spec of {}", spec_file(s.shard))));
        }
        specs.push(s);
    }
    let Some(first) = specs.first() else {
        return Err(bad(
            "no grid.json or grid.shard-I-of-N.json: not a folder `experiment shift` wrote".into(),
        ));
    };
    let unsharded = GridSpec {
        shard: None,
        ..first.clone()
    };
    for s in &specs {
        if (GridSpec {
            shard: None,
            ..s.clone()
        }) != unsharded
        {
            return Err(bad(format!(
                "{} and {} describe different grids (settings differ): one grid per folder",
                spec_file(first.shard),
                spec_file(s.shard)
            )));
        }
    }
    let counts: Vec<usize> = specs.iter().filter_map(|s| s.shard.map(|x| x.count)).collect();
    if counts.iter().any(|&c| c != counts[0]) {
        return Err(bad(format!(
            "holds shards of different counts N ({counts:?}): use one N per folder"
        )));
    }
    let n_shards = counts.first().copied();

    // every cell of this grid in any cells file, by key (the first copy wins)
    let work = work_list(&unsharded);
    let mut found: HashMap<CellKey, Cell> = HashMap::new();
    for s in &specs {
        let path = dir.join(cells_file(s.shard));
        for c in read_cells(&path)? {
            if c.setup == unsharded.setup {
                let k = (c.method.clone(), c.size, c.seed, c.query.clone());
                found.entry(k).or_insert(c);
            }
        }
    }
    let cells: Vec<Cell> = work.iter().filter_map(|k| found.remove(k)).collect();

    // which runs are missing, incomplete or running
    let mut problems = Vec::new();
    let have: HashMap<CellKey, ()> = cells
        .iter()
        .map(|c| ((c.method.clone(), c.size, c.seed, c.query.clone()), ()))
        .collect();
    let mut missing: BTreeMap<Option<Shard>, usize> = BTreeMap::new();
    let mut owned: BTreeMap<Option<Shard>, usize> = BTreeMap::new();
    for (i, k) in work.iter().enumerate() {
        let owner = n_shards.map(|n| Shard { index: i % n, count: n });
        *owned.entry(owner).or_default() += 1;
        if !have.contains_key(k) {
            *missing.entry(owner).or_default() += 1;
        }
    }
    for s in &specs {
        if let Some(sh) = s.shard {
            if let Err(e) = DirLock::acquire_named(dir, &sh.lock_name()) {
                if e.kind() == std::io::ErrorKind::WouldBlock {
                    problems.push(format!("shard {sh}: still running ({e})"));
                }
            }
        }
    }
    for (owner, m) in &missing {
        let of = owned.get(owner).copied().unwrap_or(0);
        let started = specs
            .iter()
            .any(|s| s.shard == *owner || (owner.is_some() && s.shard.is_none()));
        let who = owner.map_or("the grid".to_string(), |s| format!("shard {s}"));
        problems.push(if started {
            format!("{who}: incomplete, {} of {of} cells done", of - m)
        } else {
            format!("{who}: missing (no {})", spec_file(*owner))
        });
    }
    Ok(Collected {
        total: work.len(),
        cells,
        shards: n_shards,
        problems,
        spec: unsharded,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shift::DetectionResult;

    fn spec(shard: Option<Shard>) -> GridSpec {
        GridSpec {
            setup: "s".into(),
            methods: vec!["bbsd".into()],
            sizes: vec![10, 20],
            seeds: 2,
            null_seeds: 0,
            queries: vec!["null".into(), "shifted".into()],
            alpha: 0.05,
            header: serde_json::json!({"source": "x"}),
            shard,
        }
    }

    fn append(dir: &Path, shard: Option<Shard>, k: &CellKey) {
        use std::io::Write;
        let c = Cell {
            setup: "s".into(),
            method: k.0.clone(),
            size: k.1,
            seed: k.2,
            query: k.3.clone(),
            results: vec![DetectionResult::new("bbsd", 1.0, 0.5, 0.1, true, k.1, k.2)],
        };
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(cells_file(shard)))
            .unwrap();
        writeln!(f, "{}", serde_json::to_string(&c).unwrap()).unwrap();
    }

    #[test]
    fn shards_merge_in_work_list_order_and_gaps_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let work = work_list(&spec(None));
        assert_eq!(work.len(), 8);
        assert_eq!(work[1], ("bbsd".to_string(), 10, 0, "shifted".to_string()));
        // shards 0 and 2 of 3 complete, written in reverse; shard 1 never started
        for s in [Shard::new(2, 3).unwrap(), Shard::new(0, 3).unwrap()] {
            write_spec(dir.path(), &spec(Some(s))).unwrap();
            for i in s.indices(work.len()).into_iter().rev() {
                append(dir.path(), Some(s), &work[i]);
            }
        }
        let c = collect(dir.path()).unwrap();
        assert_eq!((c.total, c.shards, c.cells.len()), (8, Some(3), 5));
        let keys: Vec<usize> = c
            .cells
            .iter()
            .map(|x| {
                work.iter()
                    .position(|k| *k == (x.method.clone(), x.size, x.seed, x.query.clone()))
                    .unwrap()
            })
            .collect();
        assert_eq!(keys, vec![0, 2, 3, 5, 6]);
        assert_eq!(c.problems.len(), 1, "{:?}", c.problems);
        assert!(c.problems[0].contains("shard 1/3") && c.problems[0].contains("missing"));
        // shard 1 started: incomplete, 1 of 3
        write_spec(dir.path(), &spec(Some(Shard::new(1, 3).unwrap()))).unwrap();
        append(dir.path(), Some(Shard::new(1, 3).unwrap()), &work[1]);
        let c = collect(dir.path()).unwrap();
        assert!(c.problems[0].contains("incomplete, 1 of 3"), "{:?}", c.problems);
        // a shard of another grid is refused
        let mut other = spec(Some(Shard::new(1, 3).unwrap()));
        other.seeds = 3;
        write_spec(dir.path(), &other).unwrap();
        let e = collect(dir.path()).unwrap_err().to_string();
        assert!(e.contains("different grids"), "{e}");
        // extra null seeds run the null query only
        let mut more = spec(None);
        more.null_seeds = 4;
        let w = work_list(&more);
        assert_eq!(w.len(), 2 * (4 + 2));
        assert_eq!(w[4], ("bbsd".to_string(), 10, 2, "null".to_string()));
        assert_eq!(w[5], ("bbsd".to_string(), 10, 3, "null".to_string()));
    }
}
