//! `paved policy test`: a Rego policy bundle's unit tests, run here as
//! `opa test` would, before the bundle gates any deploy.

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
};

#[derive(clap::Args)]
pub struct PolicyArgs {
    #[command(subcommand)]
    command: PolicyCommand,
}

#[derive(clap::Subcommand)]
enum PolicyCommand {
    /// Run a bundle's unit tests (`test_*` rules in `*_test.rego`), as `opa test` does.
    Test {
        /// A directory of .rego files, e.g. deploy/policies.
        dir: PathBuf,
        #[arg(long, short, value_enum, default_value_t)]
        output: crate::output::Format,
    },
}

pub fn run(args: PolicyArgs) -> anyhow::Result<ExitCode> {
    let PolicyCommand::Test { dir, output } = args.command;
    let results = paved_policy::Bundle::load(&dir)?.test()?;
    let (report, passed) = report(&results);
    let json = || {
        let tests: Vec<serde_json::Value> = results
            .iter()
            .map(|r| serde_json::json!({ "name": r.name, "file": r.file, "passed": r.failure.is_none(), "failure": r.failure }))
            .collect();
        let failed = results.iter().filter(|r| r.failure.is_some()).count();
        serde_json::json!({ "passed": passed, "tests": tests, "failed": failed })
    };
    crate::output::print(output, || report, json)?;
    Ok(if passed { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// `paved policy test <dir>`: runs the bundle's `test_*` rules; one line per
/// test, then a summary. True when all passed.
pub fn policy_test(dir: &Path) -> anyhow::Result<(String, bool)> {
    Ok(report(&paved_policy::Bundle::load(dir)?.test()?))
}

/// One line per test, then a summary; true when there were tests and all passed.
fn report(results: &[paved_policy::TestResult]) -> (String, bool) {
    let mut out = String::new();
    for r in results {
        match &r.failure {
            None => out.push_str(&format!("PASS {}\n", r.name)),
            Some(why) => out.push_str(&format!("FAIL {} ({}): {why}\n", r.name, r.file)),
        }
    }
    let failed = results.iter().filter(|r| r.failure.is_some()).count();
    let verdict = if failed == 0 { "PASS" } else { "FAIL" };
    out.push_str(&format!("{verdict}: {} passed, {failed} failed\n", results.len() - failed));
    (out, failed == 0 && !results.is_empty())
}
