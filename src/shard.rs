//! Deterministic shards of a work list: `--shard I/N` (0-based I) owns the items whose position
//! in the work list is ≡ I (mod N). The split is a pure function of the list, so every shard knows
//! its part without talking to the others; interleaving keeps shards balanced when the list is
//! ordered by cost (e.g. grid cells by |Q|). A shard's files and lock carry its tag
//! `shard-I-of-N`.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A malformed `--shard` value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--shard {value}: {reason} (expected I/N with 0 ≤ I < N, e.g. 0/4)")]
pub struct ShardError {
    pub value: String,
    pub reason: String,
}

/// Shard `index` of `count` (0 ≤ index < count).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// Shard `index` of `count`, checked.
    pub fn new(index: usize, count: usize) -> Result<Shard, ShardError> {
        let err = |reason: &str| ShardError {
            value: format!("{index}/{count}"),
            reason: reason.into(),
        };
        if count == 0 {
            return Err(err("N must be at least 1"));
        }
        if index >= count {
            return Err(err("I must be below N"));
        }
        Ok(Shard { index, count })
    }

    /// Whether the item at position `i` of the work list belongs to this shard.
    pub fn owns(&self, i: usize) -> bool {
        i % self.count == self.index
    }

    /// The positions this shard owns in a work list of `n` items, ascending.
    pub fn indices(&self, n: usize) -> Vec<usize> {
        (self.index..n).step_by(self.count).collect()
    }

    /// `shard-I-of-N`, the tag of this shard's files.
    pub fn tag(&self) -> String {
        format!("shard-{}-of-{}", self.index, self.count)
    }

    /// The name of this shard's lock file in a shared output folder (`.lock.shard-I-of-N`).
    pub fn lock_name(&self) -> String {
        format!(".lock.{}", self.tag())
    }

    /// Parses a name that starts with a tag: `shard-I-of-N<rest>` → (shard, rest).
    pub fn parse_tagged(name: &str) -> Option<(Shard, &str)> {
        let r = name.strip_prefix("shard-")?;
        let (i, r) = r.split_once("-of-")?;
        let end = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
        let (n, rest) = r.split_at(end);
        let s = Shard::new(i.parse().ok()?, n.parse().ok()?).ok()?;
        Some((s, rest))
    }

    /// Every shard of `count`.
    pub fn all(count: usize) -> impl Iterator<Item = Shard> {
        (0..count).map(move |index| Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = ShardError;

    fn from_str(s: &str) -> Result<Shard, ShardError> {
        let err = |reason: &str| ShardError {
            value: s.to_string(),
            reason: reason.into(),
        };
        let (i, n) = s.split_once('/').ok_or_else(|| err("no '/'"))?;
        let i = i.trim().parse().map_err(|_| err("I is not a whole number"))?;
        let n = n.trim().parse().map_err(|_| err("N is not a whole number"))?;
        Shard::new(i, n).map_err(|e| err(&e.reason))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_the_work_list() {
        for n in 1..6 {
            let mut seen = vec![0; 11];
            for s in Shard::all(n) {
                for i in s.indices(11) {
                    assert!(s.owns(i));
                    seen[i] += 1;
                }
            }
            assert!(seen.iter().all(|&c| c == 1), "N = {n}: {seen:?}");
        }
        assert_eq!(Shard::new(1, 4).unwrap().indices(10), vec![1, 5, 9]);
        assert!(Shard::new(5, 8).unwrap().indices(3).is_empty());
    }

    #[test]
    fn parses_and_rejects() {
        let s: Shard = "2/4".parse().unwrap();
        assert_eq!((s.index, s.count), (2, 4));
        assert_eq!(s.to_string(), "2/4");
        assert_eq!(s.tag(), "shard-2-of-4");
        assert_eq!(s.lock_name(), ".lock.shard-2-of-4");
        for bad in ["4/4", "1/0", "x/2", "3", "-1/2", "1/2/3"] {
            let e = bad.parse::<Shard>().unwrap_err().to_string();
            assert!(e.contains(bad) && e.contains("I/N"), "{e}");
        }
        assert_eq!(
            Shard::parse_tagged("shard-3-of-12.jsonl"),
            Some((Shard::new(3, 12).unwrap(), ".jsonl"))
        );
        assert_eq!(Shard::parse_tagged("shard-12-of-3"), None);
        assert_eq!(Shard::parse_tagged("cells.jsonl"), None);
    }
}
