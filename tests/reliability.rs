//! The failures of the bad-input, crash and concurrency probe battery (issue "Nothing lost,
//! nothing panics"), one test each: torn logs resume, output folders are locked, meta-models are
//! committed whole and validated on load, counts are bounded, output into a closed pipe is quiet.
//! (The reader-level items — `.npy` panics, tar/gzip/npz/PNG bombs, synthetic counts, float round
//! trips — are unit tests next to their readers; see docs/fuzz.md.)

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

mod common;

use common::toy_meta;
use serde_json::Value;
use weightflow::flow::MetaModel;
use weightflow::fsio::DirLock;

const BIN: &str = env!("CARGO_BIN_EXE_weightflow");
const REF: &str = "synthetic:shapes,n=300,seed=5:train";
const SHIFTED: &str = "synthetic:shapes-shift,n=100,seed=6:test";
const NULL: &str = "synthetic:shapes,n=100,seed=7:test";

/// Runs the binary with a 1 GiB memory budget: (exit code, stdout, stderr).
fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .env("WEIGHTFLOW_MEMORY_BUDGET", "1G")
        .output()
        .expect("run weightflow");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(args: &[&str]) -> String {
    let (code, o, e) = run(args);
    assert_eq!(code, Some(0), "weightflow {args:?} failed:\n{e}");
    o
}

/// Asserts a clean runtime error (exit 1, no panic) whose message contains every `needle`.
fn fails_with(args: &[&str], needles: &[&str]) -> String {
    let (code, _, e) = run(args);
    assert_eq!(code, Some(1), "weightflow {args:?}: exit {code:?}\n{e}");
    assert!(!e.contains("panicked"), "{e}");
    for n in needles {
        assert!(e.contains(n), "weightflow {args:?}: no `{n}` in:\n{e}");
    }
    e
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// One small exported classifier shared by the CLI tests (trained once per test binary).
fn classifier() -> &'static Path {
    static MODEL: OnceLock<PathBuf> = OnceLock::new();
    MODEL.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("wf-reliability-{}", std::process::id()));
        let zoo = dir.join("zoo");
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
            "1",
            "--batch",
            "32",
            "--threads",
            "1",
            "--quiet",
            "--out",
            s(&zoo),
        ]);
        let f = dir.join("f.safetensors");
        ok(&["zoo", "export", s(&zoo), "--model", "0", "--out", s(&f)]);
        f
    })
}

fn edit_config(dir: &Path, edit: impl FnOnce(&mut Value)) {
    let p = dir.join("config.json");
    let mut v: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    edit(&mut v);
    std::fs::write(&p, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
}

fn load_err(dir: &Path) -> String {
    MetaModel::load(dir).map(|_| ()).unwrap_err().to_string()
}

/// Item 1: a torn `cells.jsonl` (a kill before a cell's newline) resumes, twice.
#[test]
fn torn_cells_log_resumes() {
    let f = classifier();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("grid");
    let grid = |seeds: &'static str| -> Vec<String> {
        [
            "experiment",
            "shift",
            "--source",
            REF,
            "--shifted",
            SHIFTED,
            "--sizes",
            "10",
            "--seeds",
            seeds,
            "--methods",
            "bbsd",
            "--model",
            s(f),
            "--n-reference",
            "100",
            "--quiet",
            "--out",
            s(&out),
        ]
        .map(String::from)
        .to_vec()
    };
    let args = grid("1");
    ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let cells = out.join("cells.jsonl");
    let len = std::fs::metadata(&cells).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&cells)
        .unwrap()
        .set_len(len - 1)
        .unwrap();
    let args = grid("2");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ok(&args);
    ok(&args);
    let text = std::fs::read_to_string(&cells).unwrap();
    assert!(text.ends_with('\n'));
    let lines: Vec<&str> = text.lines().collect();
    // 2 seeds × (null + shifted); the torn cell was recomputed once
    assert_eq!(lines.len(), 4, "{text}");
    for l in lines {
        serde_json::from_str::<Value>(l).unwrap();
    }
}

/// Item 2: a second writer of an output folder fails, naming the folder and the holder's pid.
#[test]
fn a_second_writer_of_an_output_folder_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let pid = std::process::id().to_string();
    let out = dir.path().join("out");
    let _held = DirLock::acquire(&out).unwrap();
    let o = s(&out);
    let cases: Vec<Vec<&str>> = vec![
        vec!["zoo", "train", "--data", REF, "--test", NULL, "--out", o],
        vec!["experiment", "shift", "--source", REF, "--shifted", SHIFTED, "--out", o],
        vec!["flow", "train", "--zoo", o, "--out", o],
        vec!["flow", "sample", "--meta", o, "--context", REF, "--out", o],
        vec!["data", "export", REF, "--out", o],
    ];
    for args in cases {
        fails_with(&args, &[o, &pid, "in use"]);
    }
    // shards of one run take their own lock files in the shared folder
    let shard = weightflow::fsio::lock_output(&out, Some((0, 2))).unwrap();
    drop(shard);
}

/// Item 3: replacing a meta-model is one commit: a failed (killed) save leaves the old model,
/// and weights of another run under a config are refused, naming the weights file.
#[test]
fn meta_models_are_committed_whole() {
    let (a, b) = (toy_meta(1), toy_meta(2));
    let root = tempfile::tempdir().unwrap();
    let (da, db) = (root.path().join("a"), root.path().join("b"));
    a.save(&da).unwrap();
    b.save(&db).unwrap();
    let r = b.save_with(&da, |_| Err(weightflow::flow::FlowError::Invalid("killed".into())));
    assert!(r.is_err());
    assert_eq!(MetaModel::load(&da).unwrap().velocity.params, a.velocity.params);
    // the two-rename failure: b's weights under a's config
    std::fs::copy(db.join("model.safetensors"), da.join("model.safetensors")).unwrap();
    let e = load_err(&da);
    assert!(e.contains("a/model.safetensors") && e.contains("SHA-256"), "{e}");
    // a folder of other files is not replaced
    let other = root.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("notes.txt"), "keep").unwrap();
    assert!(a.save(&other).is_err());
    assert_eq!(std::fs::read_to_string(other.join("notes.txt")).unwrap(), "keep");
}

/// Items 6, 9 and 12: sizes and ranges in `config.json` are checked before allocating, with
/// errors naming the file and the field (depth 2^62 was `capacity overflow`, width 10^9 an abort,
/// context_k 0 an error naming neither, sample_steps 10^12 a hang).
#[test]
fn meta_model_configs_are_validated_on_load() {
    let root = tempfile::tempdir().unwrap();
    let m = toy_meta(3);
    let cases: [(&str, &str, Value, &str); 6] = [
        ("config", "depth", Value::from(1u64 << 62), "config.depth"),
        ("velocity", "depth", Value::from(1u64 << 62), "velocity"),
        ("config", "width", Value::from(1_000_000_000u64), "config.width"),
        ("velocity", "width", Value::from(1_000_000_000u64), "velocity"),
        ("config", "context_k", Value::from(0), "config.context_k"),
        (
            "config",
            "sample_steps",
            Value::from(1_000_000_000_000u64),
            "config.sample_steps",
        ),
    ];
    for (i, (section, field, value, needle)) in cases.into_iter().enumerate() {
        let d = root.path().join(format!("m{i}"));
        m.save(&d).unwrap();
        edit_config(&d, |v| v[section][field] = value);
        let e = load_err(&d);
        assert!(
            e.contains("config.json") && e.contains(needle),
            "{section}.{field}: {e}"
        );
        let (code, _, err) = run(&["flow", "info", s(&d)]);
        assert_eq!(code, Some(1), "{err}");
    }
}

/// Item 10: NaN weights are refused on load, naming the file and the tensor.
#[test]
fn non_finite_weights_are_refused_on_load() {
    let root = tempfile::tempdir().unwrap();
    let mut m = toy_meta(4);
    m.velocity.params[3] = f32::NAN;
    m.save(root.path()).unwrap();
    let e = load_err(root.path());
    assert!(
        e.contains("model.safetensors") && e.contains("velocity.") && e.contains("NaN"),
        "{e}"
    );
    let (code, _, err) = run(&["flow", "info", s(root.path())]);
    assert_eq!(code, Some(1), "flow info accepted NaN weights: {err}");
}

/// Items 9 and 11: counts beyond the memory budget and a NaN weight decay are clear errors
/// (`zoo train --models 100000000` and `flow sample -n 1000000000` aborted).
#[test]
fn bad_counts_and_settings_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let o = dir.path().join("z");
    let zoo = |extra: &[&'static str]| -> Vec<String> {
        let mut v: Vec<String> = [
            "zoo", "train", "--data", REF, "--test", NULL, "--epochs", "0", "--quiet", "--out",
        ]
        .map(String::from)
        .to_vec();
        v.push(s(&o).to_string());
        v.extend(extra.iter().map(|x| x.to_string()));
        v
    };
    let a = zoo(&["--models", "100000000"]);
    fails_with(
        &a.iter().map(String::as_str).collect::<Vec<_>>(),
        &["--models 100000000", "memory budget"],
    );
    let a = zoo(&["--weight-decay", "nan"]);
    fails_with(&a.iter().map(String::as_str).collect::<Vec<_>>(), &["--weight-decay"]);
    fails_with(
        &["data", "info", "synthetic:shapes,n=99999999999999"],
        &["n=99999999999999", "memory budget"],
    );
    let meta = dir.path().join("meta");
    toy_meta(5).save(&meta).unwrap();
    let gen = dir.path().join("gen");
    fails_with(
        &[
            "flow",
            "sample",
            "--meta",
            s(&meta),
            "--context",
            REF,
            "-n",
            "1000000000",
            "--out",
            s(&gen),
        ],
        &["-n 1000000000", "memory budget"],
    );
    fails_with(
        &[
            "flow",
            "sample",
            "--meta",
            s(&meta),
            "--context",
            REF,
            "--steps",
            "1000000000000",
            "--out",
            s(&gen),
        ],
        &["--steps"],
    );
}

/// Item 6: output into a closed pipe (`data download --list | head -1`) ends quietly, no panic.
#[test]
fn output_into_a_closed_pipe_does_not_panic() {
    let mut child = Command::new(BIN)
        .args(["data", "download", "--list"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(101), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
