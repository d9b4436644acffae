//! `paved init <name> [--template http|worker]`: a new workload's starting
//! point — its spec (with an analysis that judges each step, resources, a
//! team), overlays for dev, staging and prod, and a hello-world program —
//! that `paved deploy <name> --env dev` takes live as it is.

use anyhow::{Context, bail};
use std::{path::PathBuf, process::ExitCode};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Template {
    /// An HTTP service: answers `/` and `/healthz`.
    #[default]
    Http,
    /// A background worker: works in a loop, and answers `/healthz` only.
    Worker,
}

#[derive(clap::Args)]
pub struct InitArgs {
    /// The workload's name (a DNS label); also the directory, unless --dir.
    name: String,
    #[arg(long, value_enum, default_value_t)]
    template: Template,
    /// Who pays for it (`paved cost report --by team`).
    #[arg(long, default_value = "my-team")]
    team: String,
    /// Where to write it (default: ./<name>); it must not exist or be empty.
    #[arg(long)]
    dir: Option<PathBuf>,
    #[arg(long, short, value_enum, default_value_t)]
    output: crate::output::Format,
}

/// The files of a template, with `{{name}}` and `{{team}}` to fill in.
fn files(template: Template) -> [(&'static str, &'static str); 6] {
    let program = match template {
        Template::Http => ("server.py", include_str!("init/http.py")),
        Template::Worker => ("worker.py", include_str!("init/worker.py")),
    };
    let (spec, dev) = match template {
        Template::Http => (include_str!("init/http.paved.yaml"), include_str!("init/paved.dev.yaml")),
        Template::Worker => (include_str!("init/worker.paved.yaml"), include_str!("init/worker.paved.dev.yaml")),
    };
    [
        ("paved.yaml", spec),
        ("paved.dev.yaml", dev),
        ("paved.staging.yaml", include_str!("init/paved.staging.yaml")),
        ("paved.prod.yaml", include_str!("init/paved.prod.yaml")),
        program,
        ("README.md", include_str!("init/README.md")),
    ]
}

pub fn run(args: InitArgs) -> anyhow::Result<ExitCode> {
    paved_spec::validate_name(&args.name).map_err(|e| anyhow::anyhow!("invalid workload name: {e}"))?;
    paved_spec::validate_name(&args.team).map_err(|e| anyhow::anyhow!("invalid team: {e}"))?;
    let dir = args.dir.unwrap_or_else(|| PathBuf::from(&args.name));
    if dir.read_dir().is_ok_and(|mut d| d.next().is_some()) {
        bail!("{} exists and is not empty: choose another --dir", dir.display());
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    let written = write(&dir, &args.name, &args.team, args.template)?;
    // Checked as `paved deploy` will: what it wrote deploys as it is.
    for env in ["dev", "staging", "prod"] {
        crate::render::render(&dir, env).with_context(|| format!("the new spec for {env} (a bug in `paved init`)"))?;
    }
    let text = || {
        let files: String = written.iter().map(|file| format!("  {file}\n")).collect();
        format!(
            "{}: {} workload in {}\n{files}\nTake it live:  paved deploy {} --env dev\n",
            args.name,
            name(args.template),
            dir.display(),
            dir.display()
        )
    };
    let json = || {
        let template = match args.template {
            Template::Http => "http",
            Template::Worker => "worker",
        };
        serde_json::json!({ "name": args.name, "template": template, "team": args.team, "dir": dir, "files": written })
    };
    crate::output::print(args.output, text, json)?;
    Ok(ExitCode::SUCCESS)
}

fn name(template: Template) -> &'static str {
    match template {
        Template::Http => "an HTTP",
        Template::Worker => "a worker",
    }
}

/// Writes the template's files into `dir`; returns their names.
pub fn write(dir: &std::path::Path, name: &str, team: &str, template: Template) -> anyhow::Result<Vec<&'static str>> {
    let mut written = Vec::new();
    for (file, text) in files(template) {
        let text = text.replace("{{name}}", name).replace("{{team}}", team);
        std::fs::write(dir.join(file), text).with_context(|| format!("write {}", dir.join(file).display()))?;
        written.push(file);
    }
    Ok(written)
}
