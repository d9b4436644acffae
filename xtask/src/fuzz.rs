//! `cargo xtask fuzz [TARGET…] [--seconds N]`: the fuzz targets of
//! `fuzz/` under libFuzzer (cargo fuzz, on the nightly toolchain), each for
//! N seconds (600 by default), one after the other. Before a run the seeds
//! are written into the corpus; after it, the corpus is minimised (`cargo
//! fuzz cmin`) so that what is committed stays small, and a line reports
//! the executions, the coverage and the corpus. Without a target it lists
//! them. A crash is reported, with the input that reproduces it, once
//! every target has run.

use crate::{cargo, run};
use anyhow::{Context, bail};
use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Instant,
};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The targets, as `fuzz/fuzz_targets/<name>.rs` names them.
fn targets() -> anyhow::Result<Vec<String>> {
    let dir = root().join("fuzz/fuzz_targets");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .with_context(|| format!("read {}", dir.display()))?
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.strip_suffix(".rs").map(str::to_string))
        .collect();
    names.sort();
    Ok(names)
}

pub fn command(args: &[String]) -> anyhow::Result<()> {
    let all = targets()?;
    let mut seconds = 600u64;
    let mut chosen = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => seconds = args.next().context("--seconds needs a value")?.parse().context("--seconds takes a whole number")?,
            "--all" => chosen.extend(all.iter().cloned()),
            name if all.iter().any(|t| t == name) => chosen.push(name.to_string()),
            other => bail!("unknown target or argument {other:?}; the targets: {}", all.join(", ")),
        }
    }
    // libFuzzer reads 0 as "no limit".
    if seconds == 0 {
        bail!("--seconds must be at least 1");
    }
    chosen.sort();
    chosen.dedup();
    if chosen.is_empty() {
        println!("fuzz targets (cargo xtask fuzz <target>… [--seconds N], or --all):");
        for name in &all {
            println!("  {name}");
        }
        return Ok(());
    }
    ensure_cargo_fuzz()?;
    run(cargo().args(["run", "-q", "-p", "paved-fuzzing", "--example", "seeds", "--"]).arg(root().join("fuzz/corpus")))?;
    let target_dir = crate::target_dir("fuzz");
    // Each target runs even when one before it crashed; the crashes are
    // told at the end.
    let mut crashed = Vec::new();
    let mut reports = Vec::new();
    for name in &chosen {
        match fuzz(name, seconds, &target_dir) {
            Ok(report) => reports.push(report),
            Err(e) => crashed.push(format!("{e:#}")),
        }
    }
    for report in reports {
        println!("{report}");
    }
    if !crashed.is_empty() {
        bail!("{}", crashed.join("\n"));
    }
    Ok(())
}

/// cargo fuzz on the nightly toolchain, installed from crates.io if missing.
fn ensure_cargo_fuzz() -> anyhow::Result<()> {
    let nightly = Command::new("rustup").args(["run", "nightly", "rustc", "--version"]).output();
    if !nightly.is_ok_and(|o| o.status.success()) {
        bail!("cargo fuzz needs a nightly toolchain: rustup toolchain install nightly");
    }
    if Command::new("cargo").args(["+nightly", "fuzz", "--version"]).output().is_ok_and(|o| o.status.success()) {
        return Ok(());
    }
    run(cargo().args(["install", "cargo-fuzz", "--locked"]))
}

fn nightly_fuzz(dir: &Path) -> Command {
    let mut command = Command::new("cargo");
    command.args(["+nightly", "fuzz"]).current_dir(dir.join("fuzz"));
    // rust-toolchain.toml pins stable for the workspace; the fuzz crate
    // needs nightly's sanitizer flags. What `cargo run` set for xtask goes
    // too: build scripts (ring's) rerun when CARGO_MANIFEST_DIR changes,
    // and a build from a shell would then start over.
    // The user's own settings (CARGO_HOME, CARGO_NET_*, registries) stay.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        let set_by_cargo_run = ["CARGO_MANIFEST_", "CARGO_PKG_", "RUSTUP_TOOLCHAIN"].iter().any(|p| key.starts_with(p))
            || ["CARGO", "CARGO_CRATE_NAME", "CARGO_BIN_NAME", "CARGO_PRIMARY_PACKAGE", "RUSTC", "RUST_RECURSION_COUNT"]
                .contains(&key.as_ref());
        if set_by_cargo_run {
            command.env_remove(key.as_ref());
        }
    }
    command
}

/// One target for `seconds`; its report line.
fn fuzz(name: &str, seconds: u64, target_dir: &Path) -> anyhow::Result<String> {
    let root = root();
    let corpus = root.join("fuzz/corpus").join(name);
    let mut command = nightly_fuzz(&root);
    // With debug assertions, as the tests build: an overflow that a
    // release build would wrap into a wrong value is a finding too.
    command.args(["run", name, "--debug-assertions", "--target-dir"]).arg(target_dir).arg(&corpus).arg("--").args([
        format!("-max_total_time={seconds}"),
        "-print_final_stats=1".into(),
        "-rss_limit_mb=4096".into(),
        "-timeout=10".into(),
    ]);
    eprintln!("xtask: fuzzing {name} for {seconds} s ({})", crate::named(&command));
    let mut started = Instant::now();
    let mut child = command.stderr(Stdio::piped()).spawn().context("start cargo fuzz")?;
    let (mut execs, mut coverage, mut crash) = (None, None, None);
    if let Some(stderr) = child.stderr.take() {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            // libFuzzer's status lines go on, so the run shows progress.
            eprintln!("{line}");
            // The clock starts once the build is done and the corpus read.
            if line.contains(" INITED ") {
                started = Instant::now();
            }
            if let Some(n) = line.strip_prefix("stat::number_of_executed_units:") {
                execs = n.trim().parse::<u64>().ok();
            }
            if line.contains(" cov: ") {
                coverage = line.split_once(" cov: ").map(|(_, rest)| format!("cov: {}", rest.split(" exec/s").next().unwrap_or(rest)));
            }
            if let Some(path) = line.split("Test unit written to ").nth(1) {
                crash = Some(path.trim().to_string());
            }
        }
    }
    let status = child.wait()?;
    if let Some(path) = crash {
        bail!(
            "{name} crashed; reproduce with `cargo +nightly fuzz run --debug-assertions {name} {path}` in fuzz/, fix it, and keep the input in fuzz/regressions/{name}/"
        );
    }
    if !status.success() {
        bail!("cargo fuzz run {name} failed with {status}");
    }
    let took = started.elapsed().as_secs().max(1);
    run(nightly_fuzz(&root).args(["cmin", name, "--debug-assertions", "--target-dir"]).arg(target_dir).arg(&corpus))?;
    let kept = std::fs::read_dir(&corpus).map(|d| d.count()).unwrap_or(0);
    let execs = execs.map_or_else(|| "? execs".to_string(), |n| format!("{n} execs ({}/s)", n / took));
    Ok(format!(
        "fuzz {name}: {execs} in {took} s; {}; corpus {kept} inputs after cmin",
        coverage.unwrap_or_else(|| "no coverage line".into())
    ))
}
