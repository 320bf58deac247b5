//! `weightflow demo`: the whole pipeline on built-in synthetic data, as the sequence of ordinary
//! commands a user would type. Each step prints its command line first, so the demo doubles as a
//! worked example; rerunning it resumes (every step's output lives under `--out`).

use super::{run, Cli};
use clap::Parser;
use std::path::PathBuf;

/// Arguments of `weightflow demo`.
#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Random seed for every step.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Folder for the demo's zoo, meta-model and reports.
    #[arg(long, default_value = "runs/demo")]
    pub out: PathBuf,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

/// The demo's steps as command lines (without the program name).
pub fn steps(a: &DemoArgs) -> Vec<Vec<String>> {
    let out = a.out.display().to_string();
    let seed = a.seed.to_string();
    let train = "synthetic:shapes:train".to_string();
    let test = "synthetic:shapes:test".to_string();
    let mut zoo = vec![
        "zoo",
        "train",
        "--data",
        &train,
        "--test",
        &test,
        "--arch",
        "cnn3",
        "--models",
        "8",
        "--epochs",
        "3",
        "--lr",
        "1e-3",
        "--weight-decay",
        "1e-3",
        "--seed",
        &seed,
    ]
    .into_iter()
    .map(String::from)
    .collect::<Vec<_>>();
    zoo.extend(["--out".into(), format!("{out}/zoo")]);
    if let Some(t) = a.threads {
        zoo.extend(["--threads".into(), t.to_string()]);
    }
    let info = vec!["data".into(), "info".into(), train.clone()];
    let zoo_dir = format!("{out}/zoo");
    let meta = format!("{out}/meta");
    let shifted_test = "synthetic:shapes-shift:test".to_string();
    // Fine-tuning target: low contrast, a shift on which the zoo's classifiers differ (61–75 %),
    // so the tilt p_base·exp(λr) has better classifiers to move to. On `shapes-shift` every base
    // classifier is confidently wrong; there the tilt lowers the cross-entropy by lowering the
    // confidence and the accuracy falls.
    let tune_train = "synthetic:shapes:train@contrast:5".to_string();
    let tune_eval = "synthetic:shapes:test@contrast:5".to_string();
    let cmd = |parts: &[&str]| parts.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let mut steps = vec![
        info,
        zoo,
        cmd(&["zoo", "info", &zoo_dir]),
        cmd(&["zoo", "eval", &zoo_dir, "--data", &shifted_test]),
        cmd(&["flow", "train", "--zoo", &zoo_dir, "--out", &meta, "--seed", &seed]),
        cmd(&[
            "flow",
            "sample",
            "--meta",
            &meta,
            "--context",
            &test,
            "-n",
            "8",
            "--eval",
            &test,
            "--out",
            &format!("{out}/generated"),
            "--seed",
            &seed,
        ]),
        cmd(&[
            "tune",
            "--meta",
            &meta,
            "--reward",
            "ce",
            "--data",
            &tune_train,
            "--eval",
            &tune_eval,
            "--iters",
            "30",
            "--out",
            &format!("{out}/meta-tuned"),
            "--seed",
            &seed,
        ]),
    ];
    // The label oracle shows how harmful the shift is to f; BBSD, a classic baseline, tests the
    // same sample for any change of f's outputs; then Meta-Detectron on the shifted and the
    // in-distribution sample.
    for method in ["oracle", "bbsd"] {
        steps.push(cmd(&[
            "detect",
            "--method",
            method,
            "--meta",
            &meta,
            "--reference",
            &train,
            "--query",
            &shifted_test,
            "--n-query",
            "20",
            "--seed",
            &seed,
        ]));
    }
    for query in [&shifted_test, &test] {
        steps.push(cmd(&[
            "detect",
            "--method",
            "meta-detectron",
            "--meta",
            &meta,
            "--reference",
            &train,
            "--query",
            query,
            "--n-query",
            "20",
            "--seed",
            &seed,
        ]));
    }
    steps
}

/// Runs the demo.
pub fn run_demo(a: DemoArgs) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let steps = steps(&a);
    for (i, step) in steps.iter().enumerate() {
        println!("\n[{}/{}] $ weightflow {}", i + 1, steps.len(), step.join(" "));
        let cli = Cli::try_parse_from(std::iter::once("weightflow".to_string()).chain(step.iter().cloned()))?;
        run(cli)?;
    }
    println!(
        "\ndemo finished in {:.0} s; outputs in {}",
        started.elapsed().as_secs_f64(),
        a.out.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every step is a valid command line, and the demo ends with the shift tests.
    #[test]
    fn every_step_parses() {
        let a = DemoArgs {
            seed: 3,
            out: PathBuf::from("demo-out"),
            threads: Some(1),
        };
        let steps = steps(&a);
        for step in &steps {
            let argv = std::iter::once("weightflow".to_string()).chain(step.iter().cloned());
            if let Err(e) = Cli::try_parse_from(argv) {
                panic!("{step:?}: {e}");
            }
        }
        let methods: Vec<&str> = steps
            .iter()
            .filter(|s| s[0] == "detect")
            .map(|s| s[2].as_str())
            .collect();
        assert_eq!(methods, ["oracle", "bbsd", "meta-detectron", "meta-detectron"]);
    }
}
