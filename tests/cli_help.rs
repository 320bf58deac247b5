//! The command line's conventions, checked on every subcommand: `--help` exits 0; every fixed
//! choice lists its `[possible values: ...]` and every default shows as `[default: ...]`;
//! the commands that produce a result take `--json`, those that compute `--threads` and
//! `--quiet`; usage errors exit 2, runtime errors 1; a closed stdout pipe ends the process
//! without a panic.

use clap::CommandFactory;
use std::process::{Command, Stdio};
use weightflow::cli::Cli;

mod common;

use common::cli::{run, BIN};

/// Commands that produce a result (`--json`).
const RESULTS: [&str; 13] = [
    "zoo train",
    "zoo info",
    "zoo eval",
    "zoo export",
    "flow train",
    "flow sample",
    "flow info",
    "tune",
    "detect",
    "experiment shift",
    "data info",
    "data export",
    "bench",
];

/// Commands that compute (`--threads`, `--quiet`).
const COMPUTE: [&str; 8] = [
    "zoo train",
    "zoo eval",
    "flow train",
    "flow sample",
    "tune",
    "detect",
    "experiment shift",
    "bench",
];

/// Every leaf subcommand as its path of names, with its clap description.
fn leaves(cmd: &clap::Command, path: Vec<String>, out: &mut Vec<(Vec<String>, clap::Command)>) {
    let subs: Vec<&clap::Command> = cmd.get_subcommands().filter(|c| c.get_name() != "help").collect();
    if subs.is_empty() {
        out.push((path.clone(), cmd.clone()));
    }
    for s in subs {
        let mut p = path.clone();
        p.push(s.get_name().to_string());
        leaves(s, p, out);
    }
}

/// The help text of each option, by its long name: the lines from the one that names it up to
/// the next option.
fn blocks(help: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in help.lines() {
        let t = line.trim_start();
        let indent = line.len() - t.len();
        let names_option = indent <= 6 && t.starts_with('-');
        if names_option {
            let long = t
                .split([' ', ','])
                .find(|w| w.starts_with("--"))
                .map(|w| w.trim_start_matches("--").split('=').next().unwrap_or("").to_string())
                .unwrap_or_default();
            out.push((long, String::new()));
        } else if !line.is_empty() && indent == 0 {
            // A heading ("Arguments:", "Options:") ends the block.
            out.push((String::new(), String::new()));
            continue;
        }
        if let Some(b) = out.last_mut() {
            b.1.push_str(line);
            b.1.push('\n');
        }
    }
    out
}

#[test]
fn every_help_follows_the_conventions() {
    let mut all = Vec::new();
    leaves(&Cli::command(), Vec::new(), &mut all);
    assert!(all.len() >= 15, "found only {} subcommands", all.len());
    let mut failures = Vec::new();
    for (path, cmd) in &all {
        let name = path.join(" ");
        let mut args: Vec<&str> = path.iter().map(|s| s.as_str()).collect();
        let (code, help, err) = run(&[args.as_slice(), &["--help"]].concat());
        if code != 0 {
            failures.push(format!("{name} --help: exit {code}: {err}"));
            continue;
        }
        // `tune` keeps the fine-tuning's settings for --help-all.
        let has_all = cmd.get_arguments().any(|a| a.get_long() == Some("help-all"));
        let full = if has_all {
            args.push("--help-all");
            let (code, text, _) = run(&args);
            assert_eq!(code, 0, "{name} --help-all");
            assert!(text.len() > help.len(), "{name}: --help-all shows more than --help");
            text
        } else {
            help.clone()
        };
        let by_name = blocks(&full);
        let block = |long: &str| by_name.iter().find(|(n, _)| n == long).map(|(_, b)| b.as_str());
        for a in cmd.get_arguments() {
            let Some(long) = a.get_long() else { continue };
            if a.is_hide_set() || ["help", "help-all", "version"].contains(&long) {
                continue;
            }
            let Some(text) = block(long) else {
                failures.push(format!("{name}: --{long} missing from the help"));
                continue;
            };
            if !a.get_possible_values().is_empty()
                && a.get_action().takes_values()
                && !text.contains("possible values: ")
                && !text.contains("Possible values:")
            {
                failures.push(format!("{name}: --{long} shows no [possible values]"));
            }
            if !a.get_default_values().is_empty() && !text.contains("[default: ") {
                failures.push(format!("{name}: --{long} shows no [default]"));
            }
            if a.get_help().is_none() {
                failures.push(format!("{name}: --{long} has no description"));
            }
        }
        let has =
            |flag: &str| cmd.get_arguments().any(|a| a.get_long() == Some(flag)) && help.contains(&format!("--{flag}"));
        if RESULTS.contains(&name.as_str()) && !has("json") {
            failures.push(format!("{name}: no --json"));
        }
        if COMPUTE.contains(&name.as_str()) && !(has("threads") && has("quiet")) {
            failures.push(format!("{name}: no --threads and --quiet"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn tune_help_keeps_the_research_settings_for_help_all() {
    let (_, short, _) = run(&["tune", "--help"]);
    let (_, all, _) = run(&["tune", "--help-all"]);
    for everyday in ["--meta", "--reward", "--iters", "--json", "--threads", "--help-all"] {
        assert!(short.contains(everyday), "tune --help lacks {everyday}");
    }
    for research in ["--reward-scale", "--grid-power", "--clip-quantile", "--warm-lr"] {
        assert!(!short.contains(research), "tune --help shows {research}");
        assert!(all.contains(research), "tune --help-all lacks {research}");
    }
}

#[test]
fn usage_errors_exit_2_and_runtime_errors_1() {
    let (code, _, err) = run(&["detect", "--method", "nope", "--reference", "a", "--query", "b"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("possible values"), "{err}");
    let (code, _, _) = run(&[
        "flow",
        "sample",
        "--meta",
        "m",
        "--context",
        "c",
        "--out",
        "o",
        "-n",
        "0",
    ]);
    assert_eq!(code, 2, "-n 0 is a usage error");
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-zoo");
    let (code, out, err) = run(&["zoo", "info", missing.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.starts_with("error: ") && err.contains("no-zoo"), "{err}");
    let (code, out, _) = run(&["--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("Exit status"));
}

/// `weightflow ... | head -1`: the reader closes the pipe; the writer must end without a panic.
#[test]
fn a_closed_pipe_ends_the_output_quietly() {
    let mut child = Command::new(BIN)
        .args(["data", "download", "--list"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
}
