//! `paved policy test`: a Rego policy bundle's unit tests, run here as
//! `opa test` would, before the bundle gates any deploy.

use std::{path::PathBuf, process::ExitCode};

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
    let failed = results.iter().filter(|r| r.failure.is_some()).count();
    // Only a bundle with tests, all passing, passes.
    let passed = failed == 0 && !results.is_empty();
    let json = || {
        let tests: Vec<serde_json::Value> = results
            .iter()
            .map(|r| serde_json::json!({ "name": r.name, "file": r.file, "passed": r.failure.is_none(), "failure": r.failure }))
            .collect();
        serde_json::json!({ "passed": passed, "tests": tests, "failed": failed })
    };
    crate::output::print(output, || report(&results, failed), json)?;
    Ok(if passed { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// `paved policy test <dir>` for people: one line per test, then a summary.
fn report(results: &[paved_policy::TestResult], failed: usize) -> String {
    let mut out = String::new();
    for r in results {
        match &r.failure {
            None => out.push_str(&format!("PASS {}\n", r.name)),
            Some(why) => out.push_str(&format!("FAIL {} ({}): {why}\n", r.name, r.file)),
        }
    }
    let verdict = if failed == 0 { "PASS" } else { "FAIL" };
    out.push_str(&format!("{verdict}: {} passed, {failed} failed\n", results.len() - failed));
    out
}
