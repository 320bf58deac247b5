//! `weightflow detect` and `weightflow experiment shift` end to end on synthetic shapes: a small
//! CNN3 zoo trained here (one model exported as the `--model` file) and a tiny meta-model.
//! BBSD, MMD and Detectron flag the shifted domain and answer in the one JSON shape; the
//! Detectron null bank is computed once, cached next to the model and reused (same answer);
//! Meta-Detectron runs with a tiny meta-model, caches its P* bank and reuses it; the grid resumes without recomputing.

use serde_json::Value;
use std::path::Path;

mod common;

use common::cli::{ok, NULL, REF, SHIFTED, SMALL};

/// The exit status as success, for the assertions below.
fn run(args: &[&str]) -> (bool, String, String) {
    let (code, out, err) = common::cli::run(args);
    (code == 0, out, err)
}

/// Trains a 2-model zoo and exports model 0; returns the model file.
fn model(dir: &Path) -> String {
    let zoo = dir.join("zoo");
    let z = zoo.to_str().unwrap();
    common::cli::small_zoo(z);
    let f = dir.join("f.safetensors");
    ok(&["zoo", "export", z, "--model", "0", "--out", f.to_str().unwrap()]);
    f.to_str().unwrap().to_string()
}

fn detect(method: &str, model_flag: &str, model: &str, query: &str, seed: &str) -> Value {
    detect_with(method, model_flag, model, query, seed, &[])
}

/// [`detect`] with extra arguments.
fn detect_with(method: &str, model_flag: &str, model: &str, query: &str, seed: &str, extra: &[&str]) -> Value {
    let mut args = vec![
        "detect",
        "--method",
        method,
        model_flag,
        model,
        "--reference",
        REF,
        "--query",
        query,
        "--n-query",
        "20",
        "--seed",
        seed,
        "--quiet",
        "--json",
    ];
    args.extend_from_slice(&SMALL);
    args.extend_from_slice(extra);
    let out = ok(&args);
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("not one JSON object ({e}): {out}"))
}

/// A JSON array of numbers as f64 values (panics on anything else: this is a test).
fn numbers(v: &Value) -> Vec<f64> {
    let a = v.as_array().unwrap_or_else(|| panic!("not an array: {v}"));
    a.iter()
        .map(|x| x.as_f64().unwrap_or_else(|| panic!("not a number: {x}")))
        .collect()
}

fn has_shape(v: &Value) {
    for k in [
        "method",
        "statistic",
        "threshold",
        "p_value",
        "shift",
        "n_query",
        "seed",
        "wall_s",
    ] {
        assert!(v.get(k).is_some(), "missing {k} in {v}");
    }
    assert!(v["shift"].is_boolean(), "{v}");
    assert_eq!(v["n_query"], 20, "{v}");
}

#[test]
fn detect_and_grid_on_synthetic_shift() {
    let dir = tempfile::tempdir().unwrap();
    let f = model(dir.path());

    // Baselines: the shifted domain is flagged, the in-distribution sample is not.
    for m in ["bbsd", "mmd"] {
        let s = detect(m, "--model", &f, SHIFTED, "1");
        let n = detect(m, "--model", &f, NULL, "1");
        has_shape(&s);
        has_shape(&n);
        assert_eq!(s["method"], m);
        assert_eq!(s["shift"], true, "{m} misses the shift: {s}");
        assert_eq!(n["shift"], false, "{m} flags the null: {n}");
        assert!(s["p_value"].as_f64().unwrap() > 0.0);
    }

    // The label oracle: f's error rate on Q against its error on the reference pool.
    let s = detect("oracle", "--model", &f, SHIFTED, "1");
    let n = detect("oracle", "--model", &f, NULL, "1");
    for v in [&s, &n] {
        has_shape(v);
        assert_eq!(v["method"], "oracle-error");
        let (e, p0, p) = (
            v["statistic"].as_f64().unwrap(),
            v["reference_error"].as_f64().unwrap(),
            v["p_value"].as_f64().unwrap(),
        );
        assert!(
            (0.0..=1.0).contains(&e) && (0.0..=1.0).contains(&p0) && p > 0.0 && p <= 1.0,
            "{v}"
        );
        assert_eq!(v["shift"], p <= 0.05, "{v}");
        // The threshold is the smallest error rate whose binomial tail is ≤ α.
        assert_eq!(v["shift"], e >= v["threshold"].as_f64().unwrap(), "{v}");
    }

    // Detectron, official budget (small batches here): P is the whole reference split, the JSON
    // reports the budget, the null bank comes from the reference's test split.
    let o = detect_with("detectron", "--model", &f, SHIFTED, "1", &["--batch", "64"]);
    has_shape(&o);
    let train_len = 400;
    assert_eq!(o["budget"], "official", "{o}");
    assert_eq!(o["p_images"], train_len, "{o}");
    assert_eq!(
        (o["batch"].clone(), o["epochs"].clone(), o["null_runs"].clone()),
        (64.into(), 1.into(), 6.into()),
        "{o}"
    );
    let cdcs = o["cdcs"].as_u64().unwrap() as usize;
    assert!((1..=2).contains(&cdcs), "{o}");
    assert!(o["steps"].as_u64().unwrap() as usize >= cdcs * (train_len / 64), "{o}");
    assert_eq!(numbers(&o["lambdas"]).len(), cdcs, "{o}");
    // One test per null run: the threshold comes from the null runs' own p-values.
    assert_eq!(numbers(&o["null_counts"]).len(), 6, "{o}");
    assert!(o["p_threshold"].as_f64().unwrap() > 0.0, "{o}");
    // P smaller than one batch is an error naming the sizes.
    let (good, _, err) = run(&[
        "detect",
        "--method",
        "detectron",
        "--model",
        &f,
        "--reference",
        REF,
        "--query",
        SHIFTED,
        "--n-query",
        "20",
        "--p-images",
        "30",
        "--batch",
        "64",
        "--quiet",
    ]);
    assert!(!good && err.contains("|P| = 30"), "{err}");
    for e in std::fs::read_dir(format!("{f}.shift-cache")).unwrap() {
        std::fs::remove_file(e.unwrap().path()).unwrap();
    }

    // Detectron, fast budget: first call computes the null bank (cached next to the model), the
    // second reuses it.
    let fast = ["--budget", "fast"];
    let s = detect_with("detectron", "--model", &f, SHIFTED, "1", &fast);
    has_shape(&s);
    assert_eq!(s["method"], "detectron-entropy");
    assert!(s["setup_s"].as_f64().unwrap() > 0.0, "bank not computed: {s}");
    assert_eq!(s["shift"], true, "Detectron misses the shift: {s}");
    assert!(s["disagreement"]["method"] == "detectron-disagreement", "{s}");
    let cache = Path::new(&format!("{f}.shift-cache")).to_path_buf();
    let banks: Vec<_> = std::fs::read_dir(&cache).unwrap().collect();
    assert_eq!(banks.len(), 1, "one null bank file in {}", cache.display());
    let again = detect_with("detectron", "--model", &f, SHIFTED, "1", &fast);
    assert_eq!(again["setup_s"].as_f64().unwrap(), 0.0, "bank recomputed: {again}");
    for k in ["statistic", "p_value", "threshold", "shift"] {
        assert_eq!(again[k], s[k], "{k} differs on the cached rerun");
    }
    let n = detect_with("detectron", "--model", &f, NULL, "1", &fast);
    assert_eq!(n["shift"], false, "Detectron flags the null: {n}");

    // A meta-model generates f.
    let zoo = dir.path().join("zoo");
    let meta = dir.path().join("meta");
    let train_flow = |out: &Path, extra: &[&str]| -> Value {
        common::cli::tiny_meta(zoo.to_str().unwrap(), out.to_str().unwrap(), extra)
    };
    // By default the last epoch's checkpoints (2 models) are the targets; `--epochs-from 1` takes
    // every trained checkpoint (2 models × epochs 1..=2).
    assert_eq!(train_flow(&meta, &[])["targets"], 2);
    assert_eq!(
        train_flow(&dir.path().join("meta-all"), &["--epochs-from", "1"])["targets"],
        4
    );
    let m = meta.to_str().unwrap();
    // `flow sample --eval` reports each generated classifier's accuracy and cross-entropy.
    let gen = dir.path().join("gen");
    let g = gen.to_str().unwrap();
    let sample = |n: &'static str| -> Vec<&str> {
        vec![
            "flow",
            "sample",
            "--meta",
            m,
            "--context",
            REF,
            "-n",
            n,
            "--tilt-data",
            REF,
            "--out",
            g,
        ]
    };
    let mut args = sample("3");
    args.extend_from_slice(&["--eval", NULL, "--tilt-lambdas", "0,10", "--json"]);
    let out = ok(&args);
    let s: Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("not one JSON object ({e}): {out}"));
    let losses = numbers(&s["loss"]);
    assert_eq!(losses.len(), 3, "{s}");
    assert!(losses.iter().all(|l| l.is_finite() && *l > 0.0), "{s}");
    let mean = losses.iter().sum::<f64>() / 3.0;
    assert!((s["mean_loss"].as_f64().unwrap() - mean).abs() < 1e-9, "{s}");
    // The tilt estimate: λ = 0 is the plain mean accuracy over all 3 classifiers.
    let tilt = s["tilt"].as_array().unwrap();
    assert_eq!(tilt.len(), 2, "{s}");
    assert!(
        (tilt[0]["mean"].as_f64().unwrap() - s["mean_acc"].as_f64().unwrap()).abs() < 1e-9,
        "{s}"
    );
    assert!((tilt[0]["ess"].as_f64().unwrap() - 3.0).abs() < 1e-9, "{s}");
    let ess = tilt[1]["ess"].as_f64().unwrap();
    assert!((1.0..=3.0 + 1e-9).contains(&ess), "{s}");
    // --tilt-data reweights --eval accuracies, so it needs --eval.
    let (good, _, err) = run(&sample("2"));
    assert!(!good && err.contains("--eval"), "{err}");
    // `tune --reach` reports the same estimate for the law it fine-tunes (here with no iteration).
    let tuned = dir.path().join("tuned");
    let out = ok(&[
        "tune",
        "--meta",
        m,
        "--reward",
        "ce",
        "--data",
        REF,
        "--eval",
        NULL,
        "--iters",
        "0",
        "--eval-models",
        "3",
        "--reach",
        "--json",
        "--quiet",
        "--out",
        tuned.to_str().unwrap(),
    ]);
    let t: Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("not one JSON object ({e}): {out}"));
    let accs = numbers(&t["before_accs"]);
    let reach = t["reach"].as_array().unwrap();
    assert_eq!(reach.len(), 6, "{t}");
    let (lo, hi) = accs.iter().fold((1.0f64, 0.0f64), |(l, h), &x| (l.min(x), h.max(x)));
    for p in reach {
        let (mean, ess) = (p["mean"].as_f64().unwrap(), p["ess"].as_f64().unwrap());
        assert!(mean >= lo - 1e-9 && mean <= hi + 1e-9, "{t}");
        assert!((1.0 - 1e-9..=3.0 + 1e-9).contains(&ess), "{t}");
    }
    // The calibrated reward runs end to end and is recorded; an unknown reward is refused by name.
    let calibrated = dir.path().join("tuned-cal");
    let tune_with = |reward: &'static str| {
        run(&[
            "tune",
            "--meta",
            m,
            "--reward",
            reward,
            "--data",
            REF,
            "--iters",
            "2",
            "--batch",
            "4",
            "--eval-models",
            "2",
            "--json",
            "--quiet",
            "--out",
            calibrated.to_str().unwrap(),
        ])
    };
    let (good, out, err) = tune_with("ce-calibrated");
    assert!(good, "{err}");
    let t: Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("not one JSON object ({e}): {out}"));
    assert_eq!(t["reward"], "ce-calibrated", "{t}");
    assert!(t["final_reward"].as_f64().is_some_and(f64::is_finite), "{t}");
    let (good, _, err) = tune_with("accuracy");
    assert!(!good && err.contains("'accuracy'") && err.contains("--reward"), "{err}");
    // The elite warm start: the kept candidates are the lowest-loss ones, and the JSON reports
    // their accuracies and the warm-started law's; an elite larger than the pool is refused.
    let warm = |elite: &'static str| {
        run(&[
            "tune",
            "--meta",
            m,
            "--data",
            REF,
            "--iters",
            "1",
            "--batch",
            "4",
            "--eval-models",
            "2",
            "--warm-start",
            "6",
            "--warm-elite",
            elite,
            "--warm-iters",
            "3",
            "--warm-batch",
            "4",
            "--json",
            "--quiet",
            "--out",
            calibrated.to_str().unwrap(),
        ])
    };
    let (good, out, err) = warm("2");
    assert!(good, "{err}");
    let t: Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("not one JSON object ({e}): {out}"));
    let w = &t["warm_start"];
    let losses = numbers(&w["elite_losses"]);
    assert_eq!(losses.len(), 2, "{t}");
    assert!(
        losses[0] <= losses[1] && losses[1] <= w["candidate_loss_median"].as_f64().unwrap(),
        "{t}"
    );
    assert_eq!(numbers(&w["elite_accs"]).len(), 2, "{t}");
    assert_eq!(numbers(&w["warm_accs"]).len(), 2, "{t}");
    assert!(w["loss_last20"].as_f64().is_some_and(f64::is_finite), "{t}");
    let (good, _, err) = warm("7");
    assert!(!good && err.contains("--warm-start") && err.contains("elite"), "{err}");
    let b = detect("bbsd", "--meta", m, SHIFTED, "2");
    has_shape(&b);
    // Meta-Detectron (2 fine-tuning iterations, 3 P* samples): the first call computes the P*
    // bank next to the meta-model, the second reads it back.
    let md = |query: &str| -> Value {
        let mut args = vec![
            "detect",
            "--method",
            "meta-detectron",
            "--meta",
            m,
            "--reference",
            REF,
            "--query",
            query,
            "--n-query",
            "20",
            "--seed",
            "3",
            "--md-iters",
            "2",
            "--md-null-runs",
            "3",
            "--md-trace",
            "--quiet",
            "--json",
        ];
        args.extend_from_slice(&SMALL);
        let out = ok(&args);
        serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("not one JSON object ({e}): {out}"))
    };
    let first = md(SHIFTED);
    has_shape(&first);
    assert_eq!(first["method"], "meta-detectron", "{first}");
    assert!(
        first["setup_s"].as_f64().unwrap() > 0.0,
        "P* bank not computed: {first}"
    );
    assert_eq!(first["null_entropies"].as_array().unwrap().len(), 3, "{first}");
    assert_eq!(first["cdc_per_iter"].as_array().unwrap().len(), 2, "{first}");
    assert_eq!(first["entropy_per_iter"].as_array().unwrap().len(), 2, "{first}");
    let stat = first["statistic"].as_f64().unwrap();
    assert!(stat.is_finite() && stat >= 0.0 && stat <= 10f64.ln() + 1e-9, "{first}");
    let dis = first["disagreement"]["statistic"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&dis), "{first}");
    let md_banks: Vec<_> = std::fs::read_dir(meta.join("shift-cache"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("meta-detectron"))
        .collect();
    assert_eq!(md_banks.len(), 1, "one P* bank next to the meta-model");
    let second = md(NULL);
    has_shape(&second);
    assert_eq!(second["setup_s"].as_f64().unwrap(), 0.0, "P* bank recomputed: {second}");
    assert_eq!(second["null_entropies"], first["null_entropies"], "cached bank differs");
    assert_eq!(second["threshold"], first["threshold"]);
    let (okay, _, err) = run(&["detect", "--method", "bbsd", "--reference", REF, "--query", NULL]);
    assert!(!okay && err.contains("--meta"), "{err}");

    // The grid: runs, writes its reports, and a rerun computes nothing and gives the same rows.
    let out = dir.path().join("grid");
    let mut grid = vec![
        "experiment",
        "shift",
        "--source",
        REF,
        "--shifted",
        SHIFTED,
        "--sizes",
        "10",
        "--seeds",
        "3",
        "--null-queries",
        "5",
        "--methods",
        "bbsd,mmd",
        "--model",
        &f,
        "--permutations",
        "200",
        "--quiet",
        "--json",
        "--out",
        out.to_str().unwrap(),
    ];
    grid.extend_from_slice(&SMALL);
    let first: Value = serde_json::from_str(ok(&grid).trim()).unwrap();
    // 2 methods × (5 null queries + 3 shifted seeds).
    assert_eq!(first["computed_now"], 16, "{first}");
    for name in ["cells.jsonl", "results.json", "results.md", "auroc.png", "auroc.svg"] {
        assert!(out.join(name).exists(), "missing {name}");
    }
    let rows = first["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "bbsd and mmd at |Q| = 10: {first}");
    for r in rows {
        assert!(r["auroc"].as_f64().unwrap() > 0.5, "{r}");
        assert_eq!((r["n_null"].clone(), r["n_shift"].clone()), (5.into(), 3.into()), "{r}");
        assert!(r["auroc_se"].as_f64().unwrap() >= 0.0, "{r}");
    }
    let second: Value = serde_json::from_str(ok(&grid).trim()).unwrap();
    assert_eq!(second["computed_now"], 0, "{second}");
    assert_eq!(second["cells"], 16);
    assert_eq!(second["rows"], first["rows"]);
    let md = std::fs::read_to_string(out.join("results.md")).unwrap();
    assert!(md.contains("bbsd") && md.contains("AUROC"), "{md}");
}
