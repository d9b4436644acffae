//! `paved render`: a workload's spec resolved for an environment (its
//! overlay applied), as Paved reads it or as Kubernetes manifests, which it
//! can also apply. [`render`] is how every command that sends a spec reads it.

use anyhow::Context;
use std::{
    path::{Path, PathBuf},
    process::ExitCode,
};

/// What `paved render` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum RenderTarget {
    /// The resolved spec (the local runtime's input).
    #[default]
    Paved,
    /// Kubernetes manifests.
    Kubernetes,
}

#[derive(clap::Args)]
pub struct RenderArgs {
    /// A directory with a paved.yaml or score.yaml, or the spec file itself.
    dir: PathBuf,
    #[arg(long)]
    env: String,
    #[arg(long, value_enum, default_value_t)]
    target: RenderTarget,
    /// Kubernetes: render the spec as a canary taking this percentage of
    /// traffic (its own Deployment and Service, and a weighted HTTPRoute).
    #[arg(long, value_name = "PERCENT")]
    canary_weight: Option<u32>,
    /// Kubernetes: the image repository prefix (`<registry>/<workload>@sha256:…`).
    #[arg(long, default_value = "registry.paved.local")]
    registry: String,
    /// Kubernetes: the Gateway API gateway a canary's HTTPRoute attaches to.
    #[arg(long, default_value = "paved")]
    gateway: String,
    /// Kubernetes: render it asleep (its Deployments at `replicas: 0`), as
    /// `paved sleep` leaves it on the local runtime.
    #[arg(long)]
    asleep: bool,
    /// Kubernetes: the operator's default schedules by environment (the
    /// file `paved up --schedule-defaults` reads), for a spec without one.
    #[arg(long, env = "PAVED_SCHEDULE_DEFAULTS")]
    schedule_defaults: Option<PathBuf>,
    /// Kubernetes: apply the manifests with server-side apply to the
    /// cluster of the kubeconfig ($KUBECONFIG, else ~/.kube/config).
    #[arg(long)]
    apply: bool,
    #[arg(long, env = "KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
}

pub async fn run(args: RenderArgs) -> anyhow::Result<ExitCode> {
    match args {
        RenderArgs {
            dir,
            env,
            target: RenderTarget::Paved,
            canary_weight: None,
            apply: false,
            asleep: false,
            schedule_defaults: _,
            ..
        } => {
            print!("{}", render(&dir, &env)?.0.text);
            Ok(ExitCode::SUCCESS)
        }
        RenderArgs { target: RenderTarget::Paved, .. } => {
            anyhow::bail!("--canary-weight, --asleep and --apply are for --target kubernetes")
        }
        RenderArgs {
            dir,
            env,
            target: RenderTarget::Kubernetes,
            canary_weight,
            registry,
            gateway,
            asleep,
            schedule_defaults,
            apply,
            kubeconfig,
        } => {
            let mut spec = render(&dir, &env)?.0.spec;
            let defaults = paved_spec::ScheduleDefaults::load(schedule_defaults.as_deref()).map_err(|e| anyhow::anyhow!(e))?;
            spec.schedule = defaults.of(&spec, &env).cloned();
            let manifests = paved_k8s::manifests(&spec, &env, &paved_k8s::Target { registry, gateway, canary_weight, asleep })?;
            if !apply {
                print!("{}", paved_k8s::to_yaml(&manifests));
                return Ok(ExitCode::SUCCESS);
            }
            let kubeconfig = kubeconfig
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".kube/config")))
                .filter(|p| p.is_file())
                .context("no kubeconfig: set KUBECONFIG or --kubeconfig, or create ~/.kube/config")?;
            for a in paved_k8s::apply(&kubeconfig, &manifests).await? {
                println!("{}/{} applied (resourceVersion {})", a.kind, a.name, a.resource_version);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `<dir>/paved.yaml` (else `<dir>/score.yaml`, or the spec file `dir`
/// names) resolved for `environment`: with `paved.<environment>.yaml` beside
/// it when there is one (`paved.preview.yaml` for `pr-<n>`; `score.…` for a
/// Score file). Returns the rendered spec and the base file's absolute path.
pub fn render(dir: &Path, environment: &str) -> anyhow::Result<(paved_spec::Rendered, PathBuf)> {
    paved_spec::validate_name(environment).map_err(|e| anyhow::anyhow!("invalid environment: {e}"))?;
    let base = match dir {
        d if d.is_file() => d.to_path_buf(),
        d if !d.join("paved.yaml").exists() && d.join("score.yaml").is_file() => d.join("score.yaml"),
        d => d.join("paved.yaml"),
    };
    let base = std::path::absolute(&base).unwrap_or(base);
    let read = |path: &Path| std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()));
    let text = read(&base)?;
    let folder = base.parent().unwrap_or(Path::new("."));
    let stem = base.file_stem().map_or_else(|| "paved".into(), |s| s.to_string_lossy());
    let overlay = match paved_spec::overlay_files(&stem, environment).into_iter().map(|f| folder.join(f)).find(|p| p.is_file()) {
        Some(path) => Some((read(&path)?, path.display().to_string())),
        None => None,
    };
    let rendered = paved_spec::render(&text, &base.display().to_string(), overlay.as_ref().map(|(t, f)| (t.as_str(), f.as_str())))?;
    Ok((rendered, base))
}
