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
    },
}

pub fn run(args: PolicyArgs) -> anyhow::Result<ExitCode> {
    let PolicyCommand::Test { dir } = args.command;
    let (report, passed) = policy_test(&dir)?;
    print!("{report}");
    Ok(if passed { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// `paved policy test <dir>`: runs the bundle's `test_*` rules; one line per
/// test, then a summary. True when all passed.
pub fn policy_test(dir: &Path) -> anyhow::Result<(String, bool)> {
    let bundle = paved_policy::Bundle::load(dir)?;
    let results = bundle.test()?;
    let mut out = String::new();
    for r in &results {
        match &r.failure {
            None => out.push_str(&format!("PASS {}\n", r.name)),
            Some(why) => out.push_str(&format!("FAIL {} ({}): {why}\n", r.name, r.file)),
        }
    }
    let failed = results.iter().filter(|r| r.failure.is_some()).count();
    let verdict = if failed == 0 { "PASS" } else { "FAIL" };
    out.push_str(&format!("{verdict}: {} passed, {failed} failed\n", results.len() - failed));
    Ok((out, failed == 0 && !results.is_empty()))
}
