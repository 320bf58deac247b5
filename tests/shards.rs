//! Work split with `--shard I/N` merges into what one run writes: a zoo trained in shards (one
//! of them interrupted and resumed) merges to the same checkpoint and optimizer bytes and
//! metrics; an experiment grid run in shards reports the same rows; missing or incomplete shards
//! are named; `slurm zoo|grid` writes the job-array scripts.

use serde_json::Value;
use std::path::Path;
use std::process::Command;
use weightflow::shard::Shard;
use weightflow::zoo::{self, Zoo};

mod common;

use common::zoo_config as config;

const BIN: &str = env!("CARGO_BIN_EXE_weightflow");

fn shard(s: &str) -> Shard {
    s.parse().unwrap()
}

fn bytes(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{}/{name}: {e}", dir.display()))
}

#[test]
fn a_zoo_trained_in_shards_merges_to_the_single_run() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let whole = zoo::train(&config(2), &a, &mut |_| {}).unwrap();

    // shard 1/2 (model 1) stops after one epoch; shard 0/2 (models 0 and 2) finishes
    let s1 = zoo::train_shard(&config(1), shard("1/2"), &b, &mut |_| {}).unwrap();
    assert_eq!(s1.manifest.models, 1);
    assert_eq!(s1.manifest.model_seeds, vec![whole.manifest.model_seeds[1]]);
    zoo::train_shard(&config(2), shard("0/2"), &b, &mut |_| {}).unwrap();
    let e = Zoo::open(&b).unwrap_err().to_string();
    assert!(e.contains("zoo merge"), "{e}");
    let e = zoo::merge(&b, Some(2)).unwrap_err().to_string();
    assert!(e.contains("shard 1/2: incomplete, 1 of 2 epochs"), "{e}");
    // resumed to 2 epochs, then merged
    zoo::train_shard(&config(2), shard("1/2"), &b, &mut |_| {}).unwrap();
    let m = zoo::merge(&b, Some(2)).unwrap();
    assert_eq!((m.shards, m.models, m.epochs), (2, 3, 2));
    for f in [
        "epoch_0000.safetensors",
        "epoch_0001.safetensors",
        "epoch_0002.safetensors",
        "optimizer_0002.safetensors",
    ] {
        assert!(bytes(&a, f) == bytes(&b, f), "{f} differs from the single run's");
    }
    let merged = Zoo::open(&b).unwrap();
    assert_eq!(merged.manifest.model_seeds, whole.manifest.model_seeds);
    assert!(merged.manifest.shard.is_none());
    for (x, y) in whole.manifest.history.iter().zip(&merged.manifest.history) {
        assert_eq!(x.models, y.models, "epoch {}", x.epoch);
    }
    // the merged zoo resumes as a whole zoo, like the single run
    let a3 = zoo::train(&config(3), &a, &mut |_| {}).unwrap();
    let b3 = zoo::train(&config(3), &b, &mut |_| {}).unwrap();
    assert_eq!(a3.manifest.history[3].models, b3.manifest.history[3].models);
    let e = zoo::merge(&b, None).unwrap_err().to_string();
    assert!(e.contains("not overwriting"), "{e}");

    // a missing shard is named; a shard that owns no model is an error; settings must match
    let c = tmp.path().join("c");
    zoo::train_shard(&config(1), shard("0/2"), &c, &mut |_| {}).unwrap();
    let e = zoo::merge(&c, None).unwrap_err().to_string();
    assert!(e.contains("shard 1/2: missing"), "{e}");
    let e = zoo::train_shard(&config(1), shard("3/4"), &c, &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(e.contains("3/4") && e.contains("none"), "{e}");
    let mut other = config(1);
    other.seed = 12;
    let e = zoo::train_shard(&other, shard("0/2"), &c, &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(e.contains("seed"), "{e}");
}

fn run(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN).args(args).output().expect("run weightflow");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(args: &[&str]) -> String {
    let (s, o, e) = run(args);
    assert!(s, "weightflow {args:?} failed:\n{e}");
    o
}

/// The summary rows of a results.json without their timings.
fn rows(path: &Path) -> Vec<Value> {
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut rows = doc["rows"].as_array().unwrap().clone();
    for r in &mut rows {
        r.as_object_mut().unwrap().remove("mean_wall_s");
    }
    rows
}

#[test]
fn a_grid_run_in_shards_reports_the_single_runs_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let z = d.join("zoo");
    let zs = z.to_str().unwrap();
    let data = "synthetic:shapes,n=300,seed=5";
    ok(&[
        "zoo",
        "train",
        "--data",
        &format!("{data}:train"),
        "--test",
        &format!("{data}:test"),
        "--models",
        "1",
        "--epochs",
        "1",
        "--lr",
        "3e-3",
        "--batch",
        "32",
        "--threads",
        "2",
        "--quiet",
        "--out",
        zs,
    ]);
    let f = d.join("f.safetensors");
    ok(&["zoo", "export", zs, "--model", "0", "--out", f.to_str().unwrap()]);
    let (g1, g3) = (d.join("g1"), d.join("g3"));
    let grid = |out: &Path, extra: &[&str]| {
        let mut v: Vec<String> = [
            "experiment",
            "shift",
            "--source",
            &format!("{data}:test"),
            "--shifted",
            "synthetic:shapes-shift,n=200,seed=6:test",
            "--sizes",
            "10,20",
            "--seeds",
            "2",
            "--methods",
            "bbsd,mmd",
            "--model",
            f.to_str().unwrap(),
            "--permutations",
            "100",
            "--n-reference",
            "60",
            "--quiet",
            "--out",
            out.to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let args = grid(&g1, &["--threads", "2"]);
    ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    for i in [2, 0] {
        let args = grid(&g3, &["--threads", "2", "--shard", &format!("{i}/3")]);
        ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    }
    assert!(d.join("g3/cells.shard-2-of-3.jsonl").exists());
    assert!(!d.join("g3/results.json").exists(), "a shard writes no reports");
    let (s, _, e) = run(&["experiment", "report", g3.to_str().unwrap()]);
    assert!(!s && e.contains("shard 1/3: missing"), "{e}");
    ok(&[
        "experiment",
        "report",
        g3.to_str().unwrap(),
        "--allow-partial",
        "--quiet",
    ]);
    let args = grid(&g3, &["--threads", "2", "--shard", "1/3"]);
    ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    ok(&["experiment", "report", g3.to_str().unwrap(), "--quiet"]);
    let whole = rows(&g1.join("results.json"));
    assert_eq!(whole.len(), 4, "bbsd and mmd at |Q| 10 and 20");
    assert_eq!(whole, rows(&g3.join("results.json")));
    for f in ["results.md", "auroc.png", "auroc.svg"] {
        assert!(g3.join(f).exists(), "report wrote no {f}");
    }
    // the single run's folder reports too, to the same rows
    ok(&["experiment", "report", g1.to_str().unwrap(), "--quiet"]);
    assert_eq!(whole, rows(&g1.join("results.json")));

    // the Slurm scripts of this grid
    let mut slurm: Vec<String> = ["slurm", "grid", "--shards", "3", "--cpus-per-task", "2", "--json", "--"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    slurm.extend(grid(&d.join("gs"), &[]).into_iter().skip(2));
    let out: Value = serde_json::from_str(ok(&slurm.iter().map(String::as_str).collect::<Vec<_>>()).trim()).unwrap();
    let array = std::fs::read_to_string(out["array_script"].as_str().unwrap()).unwrap();
    assert!(
        array.contains("#SBATCH --array=0-2") && array.contains("experiment shift"),
        "{array}"
    );
    let merge = std::fs::read_to_string(out["merge_script"].as_str().unwrap()).unwrap();
    assert!(merge.contains("experiment report"), "{merge}");
}
