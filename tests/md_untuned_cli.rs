//! The Meta-Detectron ablation `meta-detectron-untuned` (0 fine-tuning iterations, g = f's own
//! draw) end to end on synthetic shapes with a tiny meta-model: a grid with both methods gives
//! each its own rows (nested statistics included) and banks, the untuned one does no
//! fine-tuning (no ℓ_cdc, g = f so its disagreement and entropy gain are 0, its entropy is f's),
//! and `detect` and `detector fit` accept it by name.

use serde_json::Value;

mod common;

use common::cli::{ok, NULL, REF, SHIFTED, SMALL};

#[test]
fn untuned_ablation_beside_meta_detectron() {
    let dir = tempfile::tempdir().unwrap();
    let d = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let (zoo, meta) = (d("zoo"), d("meta"));
    common::cli::small_zoo(&zoo);
    common::cli::tiny_meta(&zoo, &meta, &[]);
    let md = ["--md-iters", "2", "--md-null-runs", "3"];

    let out = d("grid");
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
        "2",
        "--methods",
        "meta-detectron,meta-detectron-untuned",
        "--meta",
        &meta,
        "--quiet",
        "--json",
        "--out",
        &out,
    ];
    grid.extend_from_slice(&SMALL);
    grid.extend_from_slice(&md);
    let doc: Value = serde_json::from_str(ok(&grid).trim()).unwrap();
    // 2 methods × (2 null queries + 2 shifted seeds)
    assert_eq!(doc["computed_now"], 8, "{doc}");
    let mut detectors: Vec<&str> = doc["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["detector"].as_str().unwrap())
        .collect();
    detectors.sort_unstable();
    assert_eq!(
        detectors,
        [
            "meta-detectron",
            "meta-detectron-disagreement",
            "meta-detectron-entropy-gain",
            "meta-detectron-untuned",
            "meta-detectron-untuned-disagreement",
            "meta-detectron-untuned-entropy-gain",
        ],
        "{doc}"
    );
    for r in doc["rows"].as_array().unwrap() {
        assert_eq!((r["n_null"].clone(), r["n_shift"].clone()), (2.into(), 2.into()), "{r}");
    }

    // per cell: the tuned runs fine-tune 2 iterations, the untuned ones none, and g = f there
    let cells: Vec<Value> = std::fs::read_to_string(format!("{out}/cells.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(cells.len(), 8);
    let mut moved = 0;
    for c in &cells {
        let r = &c["results"][0];
        assert_eq!(r["method"], c["method"], "{c}");
        let cdc = r["cdc_per_iter"].as_array().unwrap().len();
        if c["method"] == "meta-detectron-untuned" {
            assert_eq!((r["iters"].as_u64(), cdc), (Some(0), 0), "{r}");
            assert_eq!(r["disagreement"]["method"], "meta-detectron-untuned-disagreement");
            assert_eq!(r["disagreement"]["statistic"], 0.0, "g differs from f: {r}");
            assert_eq!(r["entropy_gain"]["statistic"], 0.0, "g differs from f: {r}");
        } else {
            assert_eq!(c["method"], "meta-detectron");
            assert_eq!((r["iters"].as_u64(), cdc), (Some(2), 2), "{r}");
            if r["entropy_gain"]["statistic"].as_f64().unwrap() != 0.0 {
                moved += 1;
            }
        }
    }
    assert!(moved > 0, "the fine-tuned g never differs from f");
    // the untuned entropy is f's: the same query gives the tuned run's entropy minus its gain
    let find = |method: &str| {
        cells
            .iter()
            .find(|c| c["method"] == method && c["query"] == "null" && c["seed"] == 0)
            .map(|c| c["results"][0].clone())
            .unwrap()
    };
    let (t, u) = (find("meta-detectron"), find("meta-detectron-untuned"));
    let f_entropy = t["statistic"].as_f64().unwrap() - t["entropy_gain"]["statistic"].as_f64().unwrap();
    assert!((u["statistic"].as_f64().unwrap() - f_entropy).abs() < 1e-9, "{t}\n{u}");
    let banks = std::fs::read_dir(format!("{meta}/shift-cache"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().contains("meta-detectron-q10"))
        })
        .count();
    assert_eq!(banks, 2, "one P* bank per method");

    // `detect` and a saved detector take the name as well
    let mut args = vec![
        "detect",
        "--method",
        "meta-detectron-untuned",
        "--meta",
        &meta,
        "--reference",
        REF,
        "--query",
        NULL,
        "--n-query",
        "10",
        "--json",
        "--quiet",
    ];
    args.extend_from_slice(&SMALL);
    args.extend_from_slice(&md);
    let r: Value = serde_json::from_str(ok(&args).trim()).unwrap();
    assert_eq!(
        (r["method"].as_str(), r["iters"].as_u64()),
        (Some("meta-detectron-untuned"), Some(0)),
        "{r}"
    );
    assert_eq!(r["setup_s"], 0.0, "the grid's bank is reused: {r}");
    let det = d("det");
    let mut fit = vec![
        "detector",
        "fit",
        "--method",
        "meta-detectron-untuned",
        "--meta",
        &meta,
        "--reference",
        REF,
        "--sizes",
        "10",
        "--out",
        &det,
        "--quiet",
    ];
    fit.extend_from_slice(&SMALL);
    fit.extend_from_slice(&md);
    // a saved detector keeps P without labels, so it cannot fine-tune on P's true labels
    let mut true_labels = fit.clone();
    true_labels.extend_from_slice(&["--md-p-labels", "true"]);
    let (code, _, err) = common::cli::run(&true_labels);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("--md-p-labels predicted"), "{err}");
    ok(&fit);
    let cfg: Value = serde_json::from_str(&std::fs::read_to_string(format!("{det}/detector.json")).unwrap()).unwrap();
    assert_eq!(cfg["method"], "meta-detectron-untuned", "{cfg}");
    let q = "synthetic:shapes-shift,n=10,seed=6:test";
    let r: Value = serde_json::from_str(ok(&["detector", "test", &det, "--query", q, "--json"]).trim()).unwrap();
    assert_eq!(
        (r["method"].as_str(), r["iters"].as_u64()),
        (Some("meta-detectron-untuned"), Some(0)),
        "{r}"
    );
}
