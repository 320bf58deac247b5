//! `flow train --align`: weight matching of a zoo's checkpoints, reported in the `--json` summary
//! and recorded in the saved config; meta-models saved before the option load as `none`.

mod common;

use common::cli::ok;

#[test]
fn align_flag_is_reported_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).display().to_string();
    let (zoo, meta) = (p("zoo"), p("meta"));
    ok(&[
        "zoo",
        "train",
        "--data",
        "synthetic:shapes,n=60,seed=3:train",
        "--test",
        "synthetic:shapes,n=30,seed=4:test",
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
    let small = [
        "--iters",
        "2",
        "--width",
        "16",
        "--depth",
        "1",
        "--context-k",
        "4",
        "--threads",
        "2",
        "--quiet",
    ];
    let train = |align: &str| -> serde_json::Value {
        let mut args = vec![
            "flow", "train", "--zoo", &zoo, "--out", &meta, "--json", "--align", align,
        ];
        args.extend(small);
        serde_json::from_str(ok(&args).trim()).unwrap()
    };
    let info = || -> serde_json::Value { serde_json::from_str(ok(&["flow", "info", &meta, "--json"]).trim()).unwrap() };

    let s = train("weight-matching");
    let a = &s["align"];
    assert_eq!(a["method"], "weight-matching", "{s}");
    let (before, after) = (
        a["mean_l2_before"].as_f64().unwrap(),
        a["mean_l2_after"].as_f64().unwrap(),
    );
    assert!(before > 0.0 && after < before, "alignment moved no model closer: {a}");
    assert_eq!(a["groups"][0]["targets"], 4, "{a}");
    assert_eq!(info()["config"]["align"], "weight-matching");

    let s = train("none");
    assert!(s.get("align").is_none(), "{s}");
    assert_eq!(info()["config"]["align"], "none");

    // a config.json written before the option had no `align` field
    let cfg = dir.path().join("meta/config.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&cfg).unwrap()).unwrap();
    v["config"].as_object_mut().unwrap().remove("align");
    std::fs::write(&cfg, serde_json::to_vec(&v).unwrap()).unwrap();
    assert_eq!(info()["config"]["align"], "none");
}
