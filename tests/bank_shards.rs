//! Null banks built in shards, end to end on synthetic shapes with a one-model zoo trained here:
//! `detector fit --shard I/N` builds 3 parts, the unsharded fit names a missing shard, then
//! merges them into a detector whose banks equal the single fit's byte for byte; `detect --shard`
//! builds parts in the cache that the unsharded `detect` merges and tests with; `slurm detector`
//! writes the array and the dependent merge; bad arguments are usage errors (exit 2).

use serde_json::Value;
use std::path::Path;

mod common;

use common::cli::{ok, run, NULL, REF, SMALL};

/// A small CNN3 f exported from a one-model zoo: `<dir>/f.safetensors`.
fn model(dir: &Path) -> String {
    let zoo = dir.join("zoo").to_str().unwrap().to_string();
    ok(&[
        "zoo",
        "train",
        "--data",
        REF,
        "--test",
        NULL,
        "--models",
        "1",
        "--epochs",
        "2",
        "--batch",
        "32",
        "--lr",
        "3e-3",
        "--threads",
        "2",
        "--quiet",
        "--out",
        &zoo,
    ]);
    let f = dir.join("f.safetensors").to_str().unwrap().to_string();
    ok(&["zoo", "export", &zoo, "--model", "0", "--out", &f]);
    f
}

fn with_small<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut v = args.to_vec();
    v.extend(SMALL);
    v.extend(["--budget", "fast", "--quiet"]); // 6 null runs
    v
}

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().to_string(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn banks_built_in_shards_merge_to_the_single_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let f = model(dir.path());
    let fit = |out: &str, extra: &[&str]| {
        let mut a = vec![
            "detector",
            "fit",
            "--method",
            "detectron",
            "--reference",
            REF,
            "--model",
            &f,
            "--sizes",
            "10,20",
            "--out",
            out,
        ];
        a.extend(extra);
        with_small(&a).into_iter().map(String::from).collect::<Vec<String>>()
    };
    let go = |a: &[String]| run(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let (one, three) = (d("one"), d("three"));
    let (code, _, err) = go(&fit(&one, &[]));
    assert_eq!(code, 0, "{err}");

    for i in [0, 2] {
        let (code, out, err) = go(&fit(&three, &["--shard", &format!("{i}/3")]));
        assert_eq!(code, 0, "{err}");
        let want = 2; // runs i and i + 3
        assert!(
            out.contains(&format!("shard {i}/3")) && out.contains(&format!("{want} of {want} runs")),
            "{out}"
        );
        assert!(
            !Path::new(&three).join("detector.json").exists(),
            "a shard saves no detector"
        );
    }
    let (code, _, err) = go(&fit(&three, &[]));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("shard 1/3: missing") && !err.contains("shard 0/3"),
        "{err}"
    );
    let (code, _, err) = go(&fit(&three, &["--shard", "1/3"]));
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = go(&fit(&three, &[]));
    assert_eq!(code, 0, "{err}");
    assert!(!Path::new(&three).join("shards").exists(), "the parts are merged away");
    let banks = files(&Path::new(&one).join("banks"));
    assert_eq!(banks.len(), 2, "one bank per size");
    assert_eq!(
        banks,
        files(&Path::new(&three).join("banks")),
        "merged banks = single fit's"
    );
    for file in ["detector.json", "model.safetensors", "reference.npy"] {
        assert_eq!(
            std::fs::read(Path::new(&one).join(file)).unwrap(),
            std::fs::read(Path::new(&three).join(file)).unwrap(),
            "{file}"
        );
    }

    // bbsd has no bank to shard: a usage error
    let mut bad = fit(&d("b"), &["--shard", "0/2"]);
    bad[3] = "bbsd".into();
    let (code, _, err) = go(&bad);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--shard 0/2"), "{err}");

    // detect: parts in f's cache, merged by the unsharded detect, which tests
    let detect = |extra: &[&str]| {
        let mut a = with_small(&[
            "detect",
            "--method",
            "detectron",
            "--reference",
            REF,
            "--query",
            NULL,
            "--n-query",
            "10",
            "--model",
            &f,
            "--json",
        ]);
        a.extend(extra);
        a.into_iter().map(String::from).collect::<Vec<String>>()
    };
    for i in 0..2 {
        let (code, out, err) = go(&detect(&["--shard", &format!("{i}/2")]));
        assert_eq!(code, 0, "{err}");
        let v: Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(v["runs_done"], v["runs_total"], "{v}");
        assert!(
            v["part"].as_str().unwrap().ends_with(&format!(".shard-{i}-of-2.json")),
            "{v}"
        );
    }
    let (code, out, err) = go(&detect(&[]));
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["null_runs"], 6, "{v}");
    let cache = format!("{f}.shift-cache");
    let bank = files(Path::new(&cache));
    let bank: Vec<_> = bank.iter().filter(|(n, _)| n.ends_with("q10.json")).collect();
    assert_eq!(bank.len(), 1, "one merged bank, no parts left");
    let single = banks.iter().find(|(n, _)| n.ends_with("q10.json")).unwrap();
    assert_eq!(
        bank[0].1, single.1,
        "detect's merged bank = the detector's single-run bank"
    );
}

#[test]
fn slurm_detector_writes_the_array_and_the_merge_and_bad_arguments_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let det = dir.path().join("det").to_str().unwrap().to_string();
    let fit = [
        "--method",
        "detectron",
        "--reference",
        REF,
        "--model",
        "f.safetensors",
        "--sizes",
        "10,20",
        "--budget",
        "fast",
        "--out",
        &det,
    ];
    let mut a = vec!["slurm", "detector", "--shards", "3", "--json", "--"];
    a.extend(fit);
    let out: Value = serde_json::from_str(ok(&a).trim()).unwrap();
    let script = out["array_script"].as_str().unwrap();
    assert!(script.starts_with(&format!("{det}.slurm/")), "{out}");
    let array = std::fs::read_to_string(script).unwrap();
    assert!(
        array.contains("#SBATCH --array=0-2")
            && array.contains("detector fit --method detectron")
            && array.contains("--shard \"${SLURM_ARRAY_TASK_ID}/3\""),
        "{array}"
    );
    let merge = std::fs::read_to_string(out["merge_script"].as_str().unwrap()).unwrap();
    assert!(
        merge.contains("detector fit --method detectron") && !merge.contains("--shard"),
        "{merge}"
    );
    let submit = std::fs::read_to_string(out["submit_script"].as_str().unwrap()).unwrap();
    assert!(
        submit.contains("--dependency=afterok:\"$array\" merge.sbatch"),
        "{submit}"
    );

    // forwarded arguments are checked with the command's own parser: usage errors, exit 2
    for (kind, args, names) in [
        (
            "detector",
            vec!["--method", "detectron", "--out", "x", "--refrence", "y"],
            "--refrence",
        ),
        (
            "detector",
            vec!["--method", "bbsd", "--reference", "y", "--out", "x"],
            "bbsd",
        ),
        ("detector", [&fit[..], &["--shard", "0/2"]].concat(), "--shard"),
        (
            "zoo",
            vec!["--data", "x", "--test", "y", "--out", "z", "--epochs", "many"],
            "--epochs",
        ),
        ("grid", vec!["--bogus"], "--bogus"),
    ] {
        let mut a = vec!["slurm", kind, "--"];
        a.extend(args);
        let (code, _, err) = run(&a);
        assert_eq!(code, 2, "slurm {kind}: {err}");
        assert!(err.contains(names), "slurm {kind}: {err}");
    }
}

/// Meta-Detectron's P* bank in 2 shards merges to the single fit's bank (its runs are
/// independent: equal apart from their `seconds`).
#[test]
fn meta_detectron_banks_in_shards_equal_the_single_fit() {
    let dir = tempfile::tempdir().unwrap();
    let d = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let zoo = d("zoo");
    ok(&[
        "zoo",
        "train",
        "--data",
        REF,
        "--test",
        NULL,
        "--models",
        "4",
        "--epochs",
        "1",
        "--threads",
        "2",
        "--quiet",
        "--out",
        &zoo,
    ]);
    let meta = d("meta");
    ok(&[
        "flow",
        "train",
        "--zoo",
        &zoo,
        "--out",
        &meta,
        "--iterations",
        "50",
        "--width",
        "32",
        "--threads",
        "2",
        "--quiet",
    ]);
    let fit = |out: &str, extra: &[&str]| {
        let mut a = vec![
            "detector",
            "fit",
            "--method",
            "meta-detectron",
            "--reference",
            REF,
            "--meta",
            &meta,
        ];
        a.extend("--sizes 10 --md-null-runs 5 --md-iters 2 --n-reference 100 --threads 2 --quiet".split(' '));
        a.extend(["--out", out]);
        a.extend(extra);
        run(&a)
    };
    let (one, two) = (d("one"), d("two"));
    assert_eq!(fit(&one, &[]).0, 0);
    let (_, out, _) = fit(&two, &["--shard", "1/2"]);
    assert!(out.contains("2 of 2 runs"), "{out}");
    let (code, _, err) = fit(&two, &[]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("shard 0/2: missing"), "{err}");
    assert_eq!(fit(&two, &["--shard", "0/2"]).0, 0);
    assert_eq!(fit(&two, &[]).0, 0);
    let bank = |dir: &str| {
        let (name, bytes) = files(&Path::new(dir).join("banks")).remove(0);
        let mut v: Value = serde_json::from_slice(&bytes).unwrap();
        for r in v["runs"].as_array_mut().unwrap() {
            r.as_object_mut().unwrap().remove("seconds");
        }
        (name, v)
    };
    let (a, b) = (bank(&one), bank(&two));
    assert_eq!(a.1["runs"].as_array().unwrap().len(), 5);
    assert_eq!(a, b);
}
