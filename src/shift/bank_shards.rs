//! Null banks (Detectron's [`super::NullBank`], Meta-Detectron's [`super::meta_detectron::MetaNullBank`])
//! built in shards and merged back.
//!
//! A bank of R runs is the work list 0..R; `--shard I/N` computes the runs r ≡ I (mod N)
//! ([`Shard::indices`]). Run r draws its query and seeds from streams indexed by r alone, so a
//! shard's runs are the single run's runs. The shard's part of the bank `<stem>.json` is the file
//! `<stem>.shard-I-of-N.json` beside it ([`BankPart`]: the bank's header and the shard's runs so
//! far, in order), written after every group of runs under the lock `.lock.shard-I-of-N` of the
//! folder, so shards share one folder and each one resumes where it stopped. [`merge_parts`]
//! checks that every shard of N is present, built with the same settings and complete, interleaves
//! the runs back into run order (run r is the (r div N)-th run of shard r mod N), writes the whole
//! bank `<stem>.json` and removes the parts.

use super::ShiftError;
use crate::fsio::DirLock;
use crate::report::json::{read_json, write_json};
use crate::shard::Shard;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A bank whose runs can be built in shards.
pub trait ShardedBank: Serialize + DeserializeOwned + Clone {
    type Run: Clone;
    fn runs(&self) -> &[Self::Run];
    fn runs_mut(&mut self) -> &mut Vec<Self::Run>;
    /// Whether `other` was built from the same inputs with the same procedure (runs aside).
    fn same_bank(&self, other: &Self) -> bool;
}

/// One shard's part of a bank of `total_runs` runs: `bank.runs` holds the first runs of
/// `shard.indices(total_runs)`, in order.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(bound = "B: ShardedBank")]
pub struct BankPart<B> {
    pub shard: Shard,
    pub total_runs: usize,
    pub bank: B,
}

impl<B: ShardedBank> BankPart<B> {
    /// The run indices of the whole bank this part must hold.
    pub fn indices(&self) -> Vec<usize> {
        self.shard.indices(self.total_runs)
    }

    /// Whether the part holds all its runs.
    pub fn is_complete(&self) -> bool {
        self.bank.runs().len() >= self.indices().len()
    }
}

/// `<stem>.shard-I-of-N.json` for the bank file `<stem>.json`.
pub fn part_path(bank: &Path, shard: Shard) -> PathBuf {
    let name = bank
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let stem = name.strip_suffix(".json").unwrap_or(&name);
    bank.with_file_name(format!("{stem}.{}.json", shard.tag()))
}

/// The shard parts of the bank file `bank` found beside it, sorted by shard.
pub fn find_parts(bank: &Path) -> Vec<(Shard, PathBuf)> {
    let name = bank
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let stem = format!("{}.", name.strip_suffix(".json").unwrap_or(&name));
    let dir = match bank.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut found: Vec<(Shard, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let f = e.file_name().to_string_lossy().to_string();
            match Shard::parse_tagged(f.strip_prefix(&stem)?) {
                Some((s, ".json")) => Some((s, e.path())),
                _ => None,
            }
        })
        .collect();
    found.sort();
    found
}

fn folder_of(bank: &Path) -> PathBuf {
    match bank.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn lock_shard(bank: &Path, shard: Shard) -> Result<DirLock, ShiftError> {
    let dir = folder_of(bank);
    DirLock::acquire_named(&dir, &shard.lock_name()).map_err(|e| {
        ShiftError::Invalid(match e.kind() {
            std::io::ErrorKind::WouldBlock => format!("shard {shard}: {e}"),
            _ => format!("{}: {e}", dir.join(shard.lock_name()).display()),
        })
    })
}

/// Builds (or resumes) the part of `shard` of the bank file `bank` with `total_runs` runs and the
/// header of `empty` (a bank without runs): `compute(group)` computes the runs of the run indices
/// `group`, taken `group_size` at a time (balanced); the part is saved after every group.
/// A saved part built with other settings is started over. Returns the part.
pub fn build_part<B: ShardedBank>(
    bank: &Path,
    shard: Shard,
    total_runs: usize,
    empty: &B,
    group_size: usize,
    mut compute: impl FnMut(&[usize]) -> Result<Vec<B::Run>, ShiftError>,
) -> Result<BankPart<B>, ShiftError> {
    let _lock = lock_shard(bank, shard)?;
    let path = part_path(bank, shard);
    let saved = match path.exists() {
        true => read_json::<BankPart<B>>(&path)
            .ok()
            .filter(|p| p.shard == shard && p.total_runs == total_runs && p.bank.same_bank(empty)),
        false => None,
    };
    let mut part = saved.unwrap_or_else(|| BankPart {
        shard,
        total_runs,
        bank: empty.clone(),
    });
    let want = part.indices();
    let todo = &want[part.bank.runs().len().min(want.len())..];
    if todo.is_empty() {
        return Ok(part);
    }
    let groups = todo.len().div_ceil(group_size.max(1));
    let per = todo.len().div_ceil(groups);
    for group in todo.chunks(per) {
        let runs = compute(group)?;
        if runs.len() != group.len() {
            return Err(ShiftError::Shape(format!(
                "{} runs computed for {} run indices",
                runs.len(),
                group.len()
            )));
        }
        part.bank.runs_mut().extend(runs);
        write_json(&path, &part)?;
    }
    Ok(part)
}

/// Merges the shard parts of the bank file `bank` into the whole bank of `total_runs` runs with
/// the header of `empty`, writes it to `bank` and removes the parts. `Ok(None)` when there are no
/// parts; an error listing every shard that is missing, still running, incomplete or built with
/// other settings when the parts do not make the whole bank.
pub fn merge_parts<B: ShardedBank>(bank: &Path, total_runs: usize, empty: &B) -> Result<Option<B>, ShiftError> {
    let found = find_parts(bank);
    let Some(&(first, _)) = found.first() else {
        return Ok(None);
    };
    let n = first.count;
    let mut problems = Vec::new();
    if let Some((other, p)) = found.iter().find(|(s, _)| s.count != n) {
        problems.push(format!(
            "shards of {n} and of {} (e.g. {}): remove the parts of the split you do not use",
            other.count,
            p.display()
        ));
    }
    let mut locks = Vec::new();
    let mut parts = Vec::new();
    for s in Shard::all(n) {
        let path = part_path(bank, s);
        if !path.exists() {
            problems.push(format!("shard {s}: missing (no file {})", path.display()));
            continue;
        }
        match lock_shard(bank, s) {
            Ok(l) => locks.push(l),
            Err(e) => {
                problems.push(format!("shard {s}: still running ({e})"));
                continue;
            }
        }
        match read_json::<BankPart<B>>(&path) {
            Err(e) => problems.push(format!("shard {s}: unreadable ({e})")),
            Ok(p) if !p.bank.same_bank(empty) || p.shard != s => problems.push(format!(
                "shard {s}: built with other settings ({}); remove it and rebuild the shard",
                path.display()
            )),
            Ok(p) if p.total_runs != total_runs => problems.push(format!(
                "shard {s}: part of a bank of {} runs, not {total_runs} ({})",
                p.total_runs,
                path.display()
            )),
            Ok(p) if !p.is_complete() => problems.push(format!(
                "shard {s}: incomplete, {} of {} runs ({})",
                p.bank.runs().len(),
                p.indices().len(),
                path.display()
            )),
            Ok(p) => parts.push(p),
        }
    }
    if !problems.is_empty() {
        return Err(ShiftError::Invalid(format!(
            "the null bank {} is built in {n} shards that do not make the whole bank yet:\n  {}",
            bank.display(),
            problems.join("\n  ")
        )));
    }
    let mut whole = empty.clone();
    whole.runs_mut().clear();
    for r in 0..total_runs {
        whole.runs_mut().push(parts[r % n].bank.runs()[r / n].clone());
    }
    write_json(bank, &whole)?;
    for s in Shard::all(n) {
        let _ = std::fs::remove_file(part_path(bank, s));
    }
    drop(locks);
    Ok(Some(whole))
}

/// [`merge_parts`] for a caller that found no usable bank at `bank`; when the merge finds no
/// parts or fails (e.g. on the shard locks), `read` looks at `bank` again, since a process
/// beside this one may have merged the parts meanwhile; `read` returns only a bank it can use.
pub fn merge_or_reread<B: ShardedBank>(
    bank: &Path,
    total_runs: usize,
    empty: &B,
    read: impl Fn() -> Option<B>,
) -> Result<Option<B>, ShiftError> {
    match merge_parts(bank, total_runs, empty) {
        Ok(Some(b)) => Ok(Some(b)),
        other => match read() {
            Some(b) => Ok(Some(b)),
            None => other,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    struct Toy {
        key: u32,
        runs: Vec<u64>,
    }

    impl ShardedBank for Toy {
        type Run = u64;
        fn runs(&self) -> &[u64] {
            &self.runs
        }
        fn runs_mut(&mut self) -> &mut Vec<u64> {
            &mut self.runs
        }
        fn same_bank(&self, other: &Self) -> bool {
            self.key == other.key
        }
    }

    fn square(g: &[usize]) -> Result<Vec<u64>, ShiftError> {
        Ok(g.iter().map(|&r| (r * r) as u64).collect())
    }

    #[test]
    fn parts_merge_into_run_order_and_missing_shards_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let bank = dir.path().join("k.detectron-null-q5.json");
        let empty = Toy { key: 1, runs: vec![] };
        assert!(merge_parts(&bank, 7, &empty).unwrap().is_none());
        for i in [0, 2] {
            build_part(&bank, Shard::new(i, 3).unwrap(), 7, &empty, 2, square).unwrap();
        }
        assert_eq!(
            part_path(&bank, Shard::new(2, 3).unwrap()).file_name().unwrap(),
            "k.detectron-null-q5.shard-2-of-3.json"
        );
        let e = merge_parts(&bank, 7, &empty).unwrap_err().to_string();
        assert!(e.contains("shard 1/3: missing") && !e.contains("shard 0/3"), "{e}");
        // a part of other settings is named; a killed shard resumes from its saved runs
        let other = Toy { key: 2, runs: vec![] };
        let mut calls = 0;
        build_part(&bank, Shard::new(1, 3).unwrap(), 7, &other, 1, |g| {
            calls += 1;
            square(g)
        })
        .unwrap();
        assert_eq!(calls, 2);
        let e = merge_parts(&bank, 7, &empty).unwrap_err().to_string();
        assert!(e.contains("shard 1/3: built with other settings"), "{e}");
        let mut calls = 0;
        let part = build_part(&bank, Shard::new(1, 3).unwrap(), 7, &empty, 1, |g| {
            calls += 1;
            if calls == 2 {
                return Err(ShiftError::Invalid("killed".into()));
            }
            square(g)
        });
        assert!(part.is_err());
        let part = build_part(&bank, Shard::new(1, 3).unwrap(), 7, &empty, 1, |g| {
            assert_eq!(g, &[4], "resumes after run 1");
            square(g)
        })
        .unwrap();
        assert!(part.is_complete());
        let whole = merge_parts(&bank, 7, &empty).unwrap().unwrap();
        assert_eq!(whole.runs, vec![0, 1, 4, 9, 16, 25, 36]);
        assert_eq!(read_json::<Toy>(&bank).unwrap(), whole);
        assert!(find_parts(&bank).is_empty(), "the parts are removed");
        // a second merger finds no parts left and reads the bank the first one wrote
        let again = merge_or_reread(&bank, 7, &empty, || read_json::<Toy>(&bank).ok()).unwrap();
        assert_eq!(again, Some(whole));
    }
}
