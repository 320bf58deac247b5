//! `weightflow slurm zoo|grid|detector [OPTIONS] -- ARGS`: a Slurm job array for a sharded
//! `zoo train`, `experiment shift` or `detector fit` (ARGS are that command's arguments, checked
//! with its parser: a bad one is a usage error, exit 2, before any script is written). Writes
//! into `<out>/slurm/` (detector: `<out>.slurm/`; or `--script-dir`): `array.sbatch` (one array
//! task per shard, running the command with `--shard $SLURM_ARRAY_TASK_ID/N --threads
//! $SLURM_CPUS_PER_TASK`), `merge.sbatch` (`zoo merge`, `experiment report`, or the same
//! `detector fit` without --shard, which merges the bank parts and saves the detector), and
//! `submit.sh`, which submits the array and then the merge with `--dependency=afterok:<array
//! job>`; `--submit` does the same from here.

use super::detector::{DetectorMethod, FitArgs};
use super::experiment::ShiftArgs;
use super::zoo::TrainArgs;
use crate::shift::Method;
use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use std::path::{Path, PathBuf};

/// `weightflow slurm ...`
#[derive(Args, Debug)]
pub struct SlurmArgs {
    #[command(subcommand)]
    pub command: SlurmCommand,
}

/// What to run on the cluster.
#[derive(Subcommand, Debug)]
pub enum SlurmCommand {
    /// A zoo: `weightflow slurm zoo [OPTIONS] -- <zoo train arguments>`, merged by `zoo merge`.
    Zoo(JobArgs),
    /// A shift-detection grid: `weightflow slurm grid [OPTIONS] -- <experiment shift arguments>`,
    /// merged by `experiment report`.
    Grid(JobArgs),
    /// The null banks of a saved detector: `weightflow slurm detector [OPTIONS] -- <detector fit
    /// arguments>`; each array task builds its shard of the banks (`detector fit --shard I/N`),
    /// the merge job runs the same `detector fit` without --shard (it merges the parts and saves
    /// the detector). Scripts and logs go beside the detector, in <--out>.slurm.
    Detector(JobArgs),
}

/// Options of the job array and the merge job.
#[derive(Args, Debug)]
pub struct JobArgs {
    /// Shards N: one array task each.
    #[arg(long, default_value_t = 4)]
    pub shards: usize,
    /// CPUs per array task (`--cpus-per-task`); the command's `--threads` is set from
    /// SLURM_CPUS_PER_TASK.
    #[arg(long, default_value_t = 1)]
    pub cpus_per_task: usize,
    /// Time limit per array task (`--time`, Slurm's format: MINUTES, HH:MM:SS, D-HH:MM:SS).
    #[arg(long, default_value = "01:00:00")]
    pub time: String,
    /// Memory per array task (`--mem`, e.g. 4G).
    #[arg(long, default_value = "4G")]
    pub mem: String,
    /// Time limit of the merge job.
    #[arg(long, default_value = "00:15:00")]
    pub merge_time: String,
    /// Partition (`--partition`; default: the cluster's).
    #[arg(long)]
    pub partition: Option<String>,
    /// Account (`--account`; default: the user's).
    #[arg(long)]
    pub account: Option<String>,
    /// At most this many array tasks at once (`--array=0-(N-1)%M`); default: no limit.
    #[arg(long)]
    pub max_parallel: Option<usize>,
    /// Extra `#SBATCH` option for both jobs, e.g. `--qos=short` (repeatable).
    #[arg(long = "sbatch-option", value_name = "OPTION")]
    pub sbatch_options: Vec<String>,
    /// The weightflow binary the jobs run (default: this one; it must be reachable from the
    /// compute nodes, as must the data and the output folder).
    #[arg(long)]
    pub bin: Option<PathBuf>,
    /// Where the scripts and the job logs go (default: <--out of the command>/slurm;
    /// detector: <--out>.slurm, since the saved detector replaces its folder).
    #[arg(long)]
    pub script_dir: Option<PathBuf>,
    /// Submit the array and the dependent merge job with sbatch.
    #[arg(long)]
    pub submit: bool,
    /// Print one JSON object (script paths and, with --submit, job ids).
    #[arg(long)]
    pub json: bool,
    /// The command's own arguments, after `--` (without --shard and --threads).
    #[arg(last = true, required = true, value_name = "ARGS")]
    pub args: Vec<String>,
}

/// Parses `prefix ARGS` as a weightflow command line (so a typo fails here, not on the cluster).
fn parse_command(prefix: &[&str], args: &[String]) -> anyhow::Result<super::Command> {
    let argv = std::iter::once("weightflow".to_string())
        .chain(prefix.iter().map(|s| s.to_string()))
        .chain(args.iter().cloned());
    match super::Cli::try_parse_from(argv) {
        Ok(cli) => Ok(cli.command),
        Err(e) => Err(super::usage_error(format!(
            "the arguments after -- are not a valid `weightflow {}` command line:\n{}",
            prefix.join(" "),
            e.render()
        ))),
    }
}

fn words(w: &[&str]) -> Vec<String> {
    w.iter().map(|s| s.to_string()).collect()
}

/// A word as bash reads it back unchanged.
pub fn shell_quote(s: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "_-./:=,@%+".contains(c);
    if !s.is_empty() && s.chars().all(safe) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn quote_all<'a>(words: impl IntoIterator<Item = &'a str>) -> String {
    words.into_iter().map(shell_quote).collect::<Vec<_>>().join(" ")
}

/// The `#SBATCH` header lines shared by both jobs.
fn common_header(j: &JobArgs, chdir: &Path) -> Vec<String> {
    let mut h = vec![format!("--chdir={}", chdir.display())];
    if let Some(p) = &j.partition {
        h.push(format!("--partition={p}"));
    }
    if let Some(a) = &j.account {
        h.push(format!("--account={a}"));
    }
    h.extend(j.sbatch_options.iter().cloned());
    h
}

fn script(lines_sbatch: &[String], comment: &str, body: &str) -> String {
    let mut s = format!("#!/bin/bash\n# {comment}\n");
    for l in lines_sbatch {
        s.push_str(&format!("#SBATCH {l}\n"));
    }
    s.push_str("set -euo pipefail\n");
    s.push_str(body);
    s
}

/// What one `slurm` call writes.
pub struct Scripts {
    pub array: String,
    pub merge: String,
    pub submit: String,
}

/// The scripts for `kind` (`zoo` or `grid`), the command words `cmd` (e.g. `zoo train ARGS`)
/// and the merge words `merge_cmd`, with logs under `dir/logs`.
pub fn make_scripts(
    j: &JobArgs,
    kind: &str,
    bin: &Path,
    chdir: &Path,
    dir: &Path,
    cmd: &[String],
    merge_cmd: &[String],
) -> Scripts {
    let n = j.shards;
    let bin = shell_quote(&bin.display().to_string());
    let logs = dir.join("logs");
    let mut a = vec![
        format!("--job-name=wf-{kind}"),
        match j.max_parallel {
            Some(m) => format!("--array=0-{}%{m}", n - 1),
            None => format!("--array=0-{}", n - 1),
        },
        format!("--cpus-per-task={}", j.cpus_per_task),
        format!("--time={}", j.time),
        format!("--mem={}", j.mem),
        format!("--output={}/%x-%A_%a.out", logs.display()),
    ];
    a.extend(common_header(j, chdir));
    let array_body = format!(
        "threads=${{SLURM_CPUS_PER_TASK:-{}}}\nexec {bin} {} --shard \"${{SLURM_ARRAY_TASK_ID}}/{n}\" --threads \"$threads\"\n",
        j.cpus_per_task,
        quote_all(cmd.iter().map(String::as_str))
    );
    let mut m = vec![
        format!("--job-name=wf-{kind}-merge"),
        "--cpus-per-task=1".to_string(),
        format!("--time={}", j.merge_time),
        format!("--mem={}", j.mem),
        format!("--output={}/%x-%j.out", logs.display()),
    ];
    m.extend(common_header(j, chdir));
    let merge_body = format!("exec {bin} {}\n", quote_all(merge_cmd.iter().map(String::as_str)));
    let submit =
        "#!/bin/bash\n# Submits the shards' job array, then the merge job that starts when every shard succeeded.\n\
        set -euo pipefail\ncd \"$(dirname \"$0\")\"\n\
        array=$(sbatch --parsable array.sbatch)\narray=${array%%;*}\n\
        merge=$(sbatch --parsable --dependency=afterok:\"$array\" merge.sbatch)\nmerge=${merge%%;*}\n\
        echo \"$array $merge\"\n"
            .to_string();
    Scripts {
        array: script(
            &a,
            &format!("weightflow {kind}: one array task per shard (written by `weightflow slurm {kind}`)"),
            &array_body,
        ),
        merge: script(
            &m,
            &format!("weightflow {kind}: merges the shards once the array succeeded"),
            &merge_body,
        ),
        submit,
    }
}

/// Runs `sbatch --parsable ARGS` and returns the job id.
fn sbatch(args: &[&str]) -> anyhow::Result<String> {
    let out = std::process::Command::new("sbatch")
        .arg("--parsable")
        .args(args)
        .output()
        .context("running sbatch (is Slurm's client installed and on PATH?)")?;
    if !out.status.success() {
        bail!(
            "sbatch {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let id = text.trim().split(';').next().unwrap_or("").to_string();
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit() || b == b'_') {
        bail!("sbatch {} printed no job id: {text:?}", args.join(" "));
    }
    Ok(id)
}

/// Runs a slurm subcommand.
pub fn run(a: SlurmArgs) -> anyhow::Result<()> {
    let (kind, j) = match a.command {
        SlurmCommand::Zoo(j) => ("zoo", j),
        SlurmCommand::Grid(j) => ("grid", j),
        SlurmCommand::Detector(j) => ("detector", j),
    };
    if j.shards == 0 || j.cpus_per_task == 0 {
        return Err(super::usage_error("--shards and --cpus-per-task must be at least 1"));
    }
    let leave_out = |given: bool, what: &str| match given {
        true => Err(super::usage_error(format!(
            "leave --shard and --threads out of the {what} arguments: each array task sets them"
        ))),
        false => Ok(()),
    };
    let (cmd_words, out, merge_cmd): (Vec<&str>, PathBuf, Vec<String>) = match kind {
        "zoo" => {
            let t: TrainArgs = match parse_command(&["zoo", "train"], &j.args)? {
                super::Command::Zoo(super::zoo::ZooArgs {
                    command: super::zoo::ZooCommand::Train(t),
                }) => t,
                _ => bail!("the arguments after -- are not a `zoo train` command line"),
            };
            leave_out(t.shard.is_some() || t.threads.is_some(), "zoo train")?;
            let merge = words(&[
                "zoo",
                "merge",
                &t.out.display().to_string(),
                "--epochs",
                &t.epochs.to_string(),
            ]);
            (vec!["zoo", "train"], t.out, merge)
        }
        "detector" => {
            let f: FitArgs = match parse_command(&["detector", "fit"], &j.args)? {
                super::Command::Detector(super::detector::DetectorArgs {
                    command: super::detector::DetectorCommand::Fit(f),
                }) => f,
                _ => bail!("the arguments after -- are not a `detector fit` command line"),
            };
            leave_out(f.shard.is_some() || f.opts.threads.is_some(), "detector fit")?;
            if !matches!(
                f.method,
                DetectorMethod::Detectron | DetectorMethod::MetaDetectron | DetectorMethod::MetaDetectronUntuned
            ) {
                return Err(super::usage_error(format!(
                    "--method {}: only the null banks of detectron and meta-detectron(-untuned) are built in shards",
                    Method::from(f.method)
                )));
            }
            let mut merge = words(&["detector", "fit"]);
            merge.extend(j.args.iter().cloned());
            merge.extend(words(&["--threads", "1"]));
            (vec!["detector", "fit"], f.out, merge)
        }
        _ => {
            let s: ShiftArgs = match parse_command(&["experiment", "shift"], &j.args)? {
                super::Command::Experiment(super::experiment::ExperimentArgs {
                    command: super::experiment::ExperimentCommand::Shift(s),
                }) => *s,
                _ => bail!("the arguments after -- are not an `experiment shift` command line"),
            };
            leave_out(s.shard.is_some() || s.opts.threads.is_some(), "experiment shift")?;
            if !s.opts.quiet
                && s.methods.iter().any(|m| {
                    matches!(
                        m,
                        super::choices::MethodArg::Detectron
                            | super::choices::MethodArg::MetaDetectron
                            | super::choices::MethodArg::MetaDetectronUntuned
                    )
                })
            {
                eprintln!(
                    "note: every shard builds the Detectron/Meta-Detectron banks it finds missing in the meta-model's \
                     shift-cache; build them once before submitting (`weightflow detect` per |Q|, in shards with \
                     --shard I/N, docs/slurm.md)"
                );
            }
            let merge = words(&["experiment", "report", &s.out.display().to_string()]);
            (vec!["experiment", "shift"], s.out, merge)
        }
    };
    let chdir = std::env::current_dir().context("the current folder")?;
    let bin = match &j.bin {
        Some(b) => std::path::absolute(b).with_context(|| format!("--bin {}", b.display()))?,
        None => std::env::current_exe().context("locating this weightflow binary (give --bin)")?,
    };
    let default_dir = match kind {
        "detector" => {
            let mut d = out.clone().into_os_string();
            d.push(".slurm");
            PathBuf::from(d)
        }
        _ => out.join("slurm"),
    };
    let dir = std::path::absolute(j.script_dir.clone().unwrap_or(default_dir)).context("the script folder")?;
    let mut cmd = words(&cmd_words);
    cmd.extend(j.args.iter().cloned());
    let s = make_scripts(&j, kind, &bin, &chdir, &dir, &cmd, &merge_cmd);
    std::fs::create_dir_all(dir.join("logs")).with_context(|| format!("creating {}", dir.join("logs").display()))?;
    let (pa, pm, ps) = (
        dir.join("array.sbatch"),
        dir.join("merge.sbatch"),
        dir.join("submit.sh"),
    );
    for (p, text) in [(&pa, &s.array), (&pm, &s.merge), (&ps, &s.submit)] {
        crate::fsio::write_atomic(p, text.as_bytes()).with_context(|| format!("writing {}", p.display()))?;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&ps, std::fs::Permissions::from_mode(0o755))
            .with_context(|| format!("making {} executable", ps.display()))?;
    }
    let jobs = if j.submit {
        let array = sbatch(&[&pa.display().to_string()])?;
        let merge = sbatch(&[&format!("--dependency=afterok:{array}"), &pm.display().to_string()])?;
        Some((array, merge))
    } else {
        None
    };
    if j.json {
        let doc = serde_json::json!({
            "array_script": pa.display().to_string(), "merge_script": pm.display().to_string(),
            "submit_script": ps.display().to_string(), "shards": j.shards,
            "array_job": jobs.as_ref().map(|x| &x.0), "merge_job": jobs.as_ref().map(|x| &x.1),
        });
        println!("{}", serde_json::to_string(&doc)?);
    } else {
        match &jobs {
            Some((array, merge)) => println!("{array} {merge}"),
            None => println!("{}", ps.display()),
        }
        eprintln!(
            "{}: {} array tasks; {}",
            pa.display(),
            j.shards,
            match &jobs {
                Some((array, merge)) =>
                    format!("submitted array job {array} and merge job {merge} (after it succeeds)"),
                None => format!("submit with {} (or rerun with --submit)", ps.display()),
            }
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_round_trips_through_bash_words() {
        assert_eq!(shell_quote("synthetic:shapes,n=10:test"), "synthetic:shapes,n=10:test");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn scripts_hold_the_array_the_resources_and_the_merge() {
        let cli = super::super::Cli::try_parse_from([
            "weightflow",
            "slurm",
            "zoo",
            "--shards",
            "3",
            "--cpus-per-task",
            "2",
            "--time",
            "0:30:00",
            "--mem",
            "2G",
            "--max-parallel",
            "2",
            "--",
            "--data",
            "synthetic:shapes:train",
            "--test",
            "synthetic:shapes:test",
            "--out",
            "z",
        ])
        .unwrap();
        let super::super::Command::Slurm(SlurmArgs {
            command: SlurmCommand::Zoo(j),
        }) = cli.command
        else {
            panic!("not slurm zoo")
        };
        let cmd: Vec<String> = ["zoo", "train"]
            .iter()
            .map(|s| s.to_string())
            .chain(j.args.clone())
            .collect();
        let merge = vec!["zoo".into(), "merge".into(), "z".into()];
        let s = make_scripts(
            &j,
            "zoo",
            Path::new("/b/wf"),
            Path::new("/w"),
            Path::new("/w/z/slurm"),
            &cmd,
            &merge,
        );
        for want in [
            "#SBATCH --array=0-2%2",
            "#SBATCH --cpus-per-task=2",
            "#SBATCH --time=0:30:00",
            "#SBATCH --mem=2G",
            "#SBATCH --chdir=/w",
            "--shard \"${SLURM_ARRAY_TASK_ID}/3\" --threads \"$threads\"",
            "threads=${SLURM_CPUS_PER_TASK:-2}",
            "exec /b/wf zoo train --data synthetic:shapes:train",
        ] {
            assert!(s.array.contains(want), "array script lacks {want}:\n{}", s.array);
        }
        assert!(s.merge.contains("exec /b/wf zoo merge z\n"), "{}", s.merge);
        assert!(
            s.submit.contains("--dependency=afterok:\"$array\" merge.sbatch"),
            "{}",
            s.submit
        );
        // a typo in the command's arguments fails before any script is written
        let e = parse_command(&["zoo", "train"], &["--dta".to_string()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("zoo train"), "{e}");
    }
}
