//! Project chores, in Rust rather than shell scripts:
//!
//! - `cargo xtask up [ARGS]`: build the binaries and run `paved up [ARGS]`;
//! - `cargo xtask test`: make sure PostgreSQL and Redis run and the Python
//!   tools are installed (`venv.rs`), build the binaries the tests start,
//!   run the whole test suite; `cargo xtask test compose`: compose.yaml on
//!   a real Docker engine (`compose.rs`, images from `docker.rs`);
//! - `cargo xtask chaos [--minutes N] [--seed S]`: the platform in
//!   production mode under faults and load, its invariants checked (the
//!   `chaos` integration test, which the suite runs for a minute);
//! - `cargo xtask fuzz [TARGET…] [--seconds N]`: the fuzz targets under
//!   cargo fuzz (`fuzz.rs`); every test run replays their corpus;
//! - `cargo xtask sdk generate|check`: the SDKs' generated stubs (`sdk.rs`);
//! - `cargo xtask bench`: the rerunnable benchmarks (see `bench.rs`, which
//!   dispatches to one module per benchmark; the helpers they share, such
//!   as `free_port` and `median`, are in `measure.rs`, which imports none
//!   of them).

mod audit;
mod bench;
mod canary;
mod compose;
mod cost;
mod dbcreds;
mod docker;
mod fuzz;
mod init;
mod looks;
mod measure;
mod pipeline;
mod sdk;
mod tokens;
mod venv;

use anyhow::{Context, bail};
use std::{
    net::TcpStream,
    path::PathBuf,
    process::{Command, ExitCode},
    time::Duration,
};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("up") => up(&args[1..]),
        Some("test") => test(&args[1..]),
        Some("bench") => bench::run(&args[1..]),
        Some("cycles") => cycles(),
        Some("chaos") => chaos(&args[1..]),
        Some("sdk") => sdk::command(&args[1..]),
        Some("fuzz") => fuzz::command(&args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask <up [paved up args] | test [cargo test args] | test compose | bench [names] | cycles | chaos [--minutes N] [--seed S] | fuzz [targets | --all] [--seconds N] | sdk generate|check>"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}

pub fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// A command as it is said: its program and arguments, never its
/// environment (which may hold a secret).
pub fn named(cmd: &Command) -> String {
    let args: Vec<String> = cmd.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
    format!("{} {}", cmd.get_program().to_string_lossy(), args.join(" "))
}

pub fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let named = named(cmd);
    eprintln!("xtask: running {named}");
    let status = cmd.status().with_context(|| format!("start {named}"))?;
    if !status.success() {
        bail!("{named} failed with {status}");
    }
    Ok(())
}

/// The directory cargo puts binaries in for `profile`.
pub fn target_dir(profile: &str) -> PathBuf {
    let base = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    base.join(profile)
}

pub fn build_bins(release: bool) -> anyhow::Result<PathBuf> {
    let mut cmd = cargo();
    cmd.args(["build", "--workspace", "--bins"]);
    if release {
        cmd.arg("--release");
    }
    run(&mut cmd)?;
    Ok(target_dir(if release { "release" } else { "debug" }))
}

/// Every workspace crate's module graph, checked for cycles: a module
/// that uses another must not be used by it, directly or through others.
fn cycles() -> anyhow::Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let script = root.join("xtask/modgraph.py");
    let mut crates = Vec::new();
    for group in ["libs", "services"] {
        for entry in std::fs::read_dir(root.join(group)).with_context(|| format!("read {group}/"))? {
            crates.push(entry?.path());
        }
    }
    crates.extend(["cli", "xtask", "integration-tests", "examples/hello"].map(|c| root.join(c)));
    crates.sort();
    let mut cyclic = Vec::new();
    for krate in crates.iter().filter(|c| c.join("src").is_dir()) {
        let out = Command::new("python3").arg(&script).arg(krate.join("src")).output().context("run python3 xtask/modgraph.py")?;
        let name = krate.strip_prefix(&root).unwrap_or(krate).display().to_string();
        let text = String::from_utf8_lossy(&out.stdout);
        println!("{name}: {}", text.lines().filter(|l| l.starts_with("CYCLE") || l.contains("cycles")).collect::<Vec<_>>().join("; "));
        if !out.status.success() {
            cyclic.push(name);
        }
    }
    if !cyclic.is_empty() {
        bail!("module import cycles in {}", cyclic.join(", "));
    }
    Ok(())
}

fn up(args: &[String]) -> anyhow::Result<()> {
    let bin = build_bins(false)?;
    run(Command::new(bin.join("paved")).arg("up").args(args))
}

/// The servers the tests need, with the command that starts each when it is
/// down (the machine's own service commands).
const SERVERS: [(&str, u16, &str); 2] = [
    ("PostgreSQL", 5432, "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"),
    (
        "Redis",
        6379,
        "redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save '' --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log",
    ),
];

fn ensure_servers() -> anyhow::Result<()> {
    for (name, port, start) in SERVERS {
        if reachable(port) {
            continue;
        }
        eprintln!("xtask: {name} is not running on 127.0.0.1:{port}; starting it");
        run(Command::new("sh").args(["-c", start]))?;
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !reachable(port) {
            if std::time::Instant::now() > deadline {
                bail!("{name} did not start on 127.0.0.1:{port}; the tests need it");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    Ok(())
}

fn reachable(port: u16) -> bool {
    TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(1)).is_ok()
}

fn test(args: &[String]) -> anyhow::Result<()> {
    if args == ["compose"] {
        return compose::test();
    }
    ensure_servers()?;
    let validator = venv::ensure_kubernetes_validate()?;
    ensure_prometheus()?;
    // The SDKs' tests: Python in its virtualenv, TypeScript built; the
    // stubs of both must match proto/.
    let python = sdk::ensure_python()?;
    sdk::check_generated(&python)?;
    sdk::ensure_typescript()?;
    sdk::ensure_go()?;
    venv::check_dashboards()?;
    // The integration tests start the real binaries (hello, the services).
    build_bins(false)?;
    let test = || {
        let mut command = cargo();
        command.args(["test", "--workspace"]).env("PAVED_KUBERNETES_VALIDATE", &validator).env("PAVED_PYTHON_SDK", &python);
        command.env("PAVED_BUF", sdk::buf());
        command
    };
    if !args.is_empty() {
        return run(test().args(args));
    }
    // The canary demonstration tells a 30% slower canary from an identical
    // one by their latencies: with fifty other tests loading both cores the
    // scheduling noise is as large as that, so it runs alone, after them.
    // The chaos run kills processes and loads the machine: alone too, as
    // are the load tests (one at a time: each loads both cores).
    run(test().args(["--", "--skip", ISOLATED, "--skip", CHAOS, "--skip", UNDER_LOAD]))?;
    run(test().args(["--", ISOLATED]))?;
    run(test().args(["--", UNDER_LOAD, "--test-threads=1"]))?;
    run(test().args(["--", CHAOS, "--nocapture"]))
}

/// Tests whose verdicts depend on the machine being otherwise quiet.
const ISOLATED: &str = "canary::canaries_with_errors_or_latency";

/// The load tests (`integration-tests/tests/it/under_load.rs`).
pub const UNDER_LOAD: &str = "under_load::";

/// The fault-injection run (`integration-tests/tests/it/chaos/`).
const CHAOS: &str = "chaos::under_fire";

/// `cargo xtask chaos [--minutes N] [--seed S]`: the chaos run alone, for
/// N minutes of faults (1 by default), replaying seed S when given.
fn chaos(args: &[String]) -> anyhow::Result<()> {
    let mut command = cargo();
    command.args(["test", "-p", "paved-integration-tests", "--test", "it", "--", CHAOS, "--nocapture"]);
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--minutes" => {
                let minutes: u64 = value()?.parse().context("--minutes takes a whole number")?;
                command.env("PAVED_CHAOS_SECONDS", (minutes * 60).to_string());
            }
            "--seed" => {
                let seed: u64 = value()?.parse().context("--seed takes a number")?;
                command.env("PAVED_CHAOS_SEED", seed.to_string());
            }
            other => bail!("unknown argument {other:?}: cargo xtask chaos [--minutes N] [--seed S]"),
        }
    }
    ensure_servers()?;
    build_bins(false)?;
    run(&mut command)
}

/// Prometheus (Debian's), which the metric provider's tests run against.
fn ensure_prometheus() -> anyhow::Result<()> {
    if Command::new("prometheus").arg("--version").output().is_ok_and(|o| o.status.success()) {
        return Ok(());
    }
    apt_install(&["prometheus"])
}

/// Installs Debian's `packages` (without their recommendations).
pub fn apt_install(packages: &[&str]) -> anyhow::Result<()> {
    eprintln!("xtask: installing {} (apt-get)", packages.join(" "));
    run(Command::new("apt-get").args(["update", "-qq"]))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(packages)
        .env("DEBIAN_FRONTEND", "noninteractive"))
}
