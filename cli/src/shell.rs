//! `paved completions <shell>` and `paved man`: the shell completions and
//! man pages clap derives from the commands, so they never drift from them.

use std::{io::Write, path::Path, process::ExitCode};

#[derive(clap::Args)]
pub struct CompletionsArgs {
    /// bash, zsh, fish, elvish or powershell.
    shell: clap_complete::Shell,
}

#[derive(clap::Args)]
pub struct ManArgs {
    /// Where paved.1 and a page per command (paved-deploy.1, …) are written.
    #[arg(long, default_value = ".")]
    dir: std::path::PathBuf,
}

/// Prints the completion script of `shell` for `command` (the CLI's own).
pub fn completions(args: CompletionsArgs, mut command: clap::Command) -> anyhow::Result<ExitCode> {
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut command, "paved", &mut out);
    std::io::stdout().write_all(&out)?;
    Ok(ExitCode::SUCCESS)
}

/// Writes the man pages of `command` and every subcommand into the directory.
pub fn man(args: ManArgs, command: clap::Command) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&args.dir).map_err(|e| anyhow::anyhow!("create {}: {e}", args.dir.display()))?;
    clap_mangen::generate_to(command, &args.dir).map_err(|e| anyhow::anyhow!("write man pages into {}: {e}", args.dir.display()))?;
    let pages = std::fs::read_dir(&args.dir)?.filter_map(Result::ok).filter(|e| is_page(&e.path())).count();
    println!("{pages} man pages in {} (man -l {}/paved.1)", args.dir.display(), args.dir.display());
    Ok(ExitCode::SUCCESS)
}

fn is_page(path: &Path) -> bool {
    path.extension().is_some_and(|x| x == "1")
}
