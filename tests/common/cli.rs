//! Running the weightflow binary from the integration tests, and the small synthetic data specs
//! and Detectron sizes the shift-detection tests share.

use std::process::Command;

pub const BIN: &str = env!("CARGO_BIN_EXE_weightflow");
pub const REF: &str = "synthetic:shapes,n=400,seed=5:train";
pub const SHIFTED: &str = "synthetic:shapes-shift,n=200,seed=6:test";
pub const NULL: &str = "synthetic:shapes,n=200,seed=7:test";
/// Small sizes keep each Detectron call to a few seconds on 2 cores.
pub const SMALL: [&str; 12] = [
    "--n-reference",
    "100",
    "--null-pool",
    "200",
    "--null-runs",
    "6",
    "--ensemble",
    "2",
    "--epochs",
    "1",
    "--threads",
    "2",
];

/// Runs the binary: (exit code, −1 when ended by a signal; stdout; stderr).
pub fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN).args(args).output().expect("run weightflow");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs the binary, asserts success and returns its stdout.
pub fn ok(args: &[&str]) -> String {
    let (code, out, err) = run(args);
    assert_eq!(code, 0, "weightflow {args:?} failed:\n{err}");
    out
}

/// Trains the small 2-model CNN3 zoo of the shift tests on `REF` into `out`.
pub fn small_zoo(out: &str) {
    ok(&[
        "zoo",
        "train",
        "--data",
        REF,
        "--test",
        NULL,
        "--models",
        "2",
        "--epochs",
        "2",
        "--batch",
        "32",
        "--lr",
        "3e-3",
        "--val-fraction",
        "0.16",
        "--threads",
        "2",
        "--quiet",
        "--out",
        out,
    ]);
}

/// Trains a tiny meta-model (10 iterations, width 32) on `zoo` into `out` with `extra`
/// arguments; returns its `--json` summary.
pub fn tiny_meta(zoo: &str, out: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec![
        "flow",
        "train",
        "--zoo",
        zoo,
        "--out",
        out,
        "--iterations",
        "10",
        "--width",
        "32",
        "--quiet",
        "--json",
    ];
    args.extend_from_slice(extra);
    let text = ok(&args);
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("not one JSON object ({e}): {text}"))
}
