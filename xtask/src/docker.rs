//! A Docker engine and the images `cargo xtask test compose` runs
//! compose.yaml with. No image registry is reachable where Paved is tested:
//! the base image is Debian made with `debootstrap` and `docker import`, the
//! third-party images are stand-ins built from Debian's packages
//! (`xtask/stand-ins/`), and the Paved image is the Dockerfile's own runtime
//! stage around the binaries built on this host.

use crate::run;
use anyhow::{Context, bail};
use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// Debian bookworm, minimal, made here.
pub const BASE: &str = "paved-base:bookworm";
/// The image compose.yaml's Paved services run.
pub const PAVED: &str = "paved:dev";
/// The label every stand-in carries: an image without it is never replaced.
const STAND_IN_LABEL: &str = "dev.paved.stand-in";
/// The label of the Paved image built here from the host's binaries.
const BUILT_HERE: &str = "dev.paved.built-from-host";

/// Docker's client. Debian's engine has no buildx: builds use the classic
/// builder.
pub fn docker() -> Command {
    let mut command = Command::new("docker");
    command.env("DOCKER_BUILDKIT", "0");
    command
}

/// Runs `command` (its input empty unless the caller gave one); its
/// standard output, or an error with its standard error. Named by its
/// program and arguments only: its environment may hold a token or the
/// root key.
pub fn output(command: &mut Command) -> anyhow::Result<String> {
    let named = crate::named(command);
    let out = command.output().with_context(|| format!("start {named}"))?;
    if !out.status.success() {
        bail!("{named} failed with {}: {}", out.status, String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A running Docker engine; the one this process started stops with it.
pub struct Engine {
    started: Option<Child>,
}

impl Engine {
    /// The engine that runs, or one started now (Debian's `docker.io`,
    /// installed when missing) logging to `work/dockerd.log`.
    pub fn ensure(work: &Path) -> anyhow::Result<Self> {
        install_missing()?;
        if engine_answers() {
            return Ok(Self { started: None });
        }
        std::fs::create_dir_all(work)?;
        let log = std::fs::File::create(work.join("dockerd.log"))?;
        eprintln!("xtask: starting dockerd (log: {})", work.join("dockerd.log").display());
        let child = Command::new("dockerd")
            .args(["--storage-driver", "overlay2"])
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("start dockerd")?;
        let engine = Self { started: Some(child) };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !engine_answers() {
            if Instant::now() > deadline {
                bail!("dockerd did not answer within 60 s; see {}", work.join("dockerd.log").display());
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        Ok(engine)
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        if let Some(child) = &mut self.started {
            eprintln!("xtask: stopping the dockerd it started");
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            let _ = child.wait();
        }
    }
}

fn engine_answers() -> bool {
    docker()
        .args(["info", "--format", "{{.ServerVersion}}"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Debian's Docker engine, docker-compose 1.29 and debootstrap.
fn install_missing() -> anyhow::Result<()> {
    let missing: Vec<&str> = [("dockerd", "docker.io"), ("docker-compose", "docker-compose"), ("debootstrap", "debootstrap")]
        .into_iter()
        .filter(|(program, _)| {
            Command::new("sh").args(["-c", &format!("command -v {program}")]).output().map_or(true, |o| !o.status.success())
        })
        .map(|(_, package)| package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    crate::apt_install(&missing)
}

/// The labels of image `tag`, or `None` when there is no such image.
fn labels(tag: &str) -> Option<serde_json::Value> {
    let out = docker().args(["image", "inspect", "--format", "{{json .Config.Labels}}", tag]).stderr(Stdio::null()).output().ok()?;
    out.status.success().then(|| serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null))
}

/// [`BASE`], made with debootstrap under `work` when missing; also tagged
/// `debian:bookworm-slim` (the Dockerfile's runtime base) when there is
/// none.
pub fn ensure_base(work: &Path) -> anyhow::Result<()> {
    if labels(BASE).is_none() {
        let rootfs = work.join("bookworm");
        let _ = std::fs::remove_dir_all(&rootfs);
        let mirror = std::env::var("PAVED_DEBIAN_MIRROR").unwrap_or_else(|_| "http://deb.debian.org/debian".into());
        eprintln!("xtask: making {BASE} with debootstrap from {mirror} (about a minute)");
        let log = work.join("debootstrap.log");
        std::fs::create_dir_all(work)?;
        let log_file = std::fs::File::create(&log)?;
        let status = Command::new("debootstrap")
            .args(["--variant=minbase", "bookworm"])
            .arg(&rootfs)
            .arg(&mirror)
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .status()
            .context("start debootstrap")?;
        if !status.success() {
            bail!("debootstrap failed with {status}; see {}", log.display());
        }
        // As Debian's own images: packages installed in a build never start
        // their services.
        let policy = rootfs.join("usr/sbin/policy-rc.d");
        std::fs::write(&policy, "#!/bin/sh\nexit 101\n")?;
        std::fs::set_permissions(&policy, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
        let mut tar = Command::new("tar").arg("-C").arg(&rootfs).args(["-c", "."]).stdout(Stdio::piped()).spawn().context("start tar")?;
        let stdout = tar.stdout.take().context("tar's output")?;
        output(docker().args(["import", "-", BASE]).stdin(stdout))?;
        if !tar.wait()?.success() {
            bail!("tar of {} failed", rootfs.display());
        }
        std::fs::remove_dir_all(&rootfs)?;
    }
    if labels("debian:bookworm-slim").is_none() {
        run(docker().args(["tag", BASE, "debian:bookworm-slim"]))?;
    }
    Ok(())
}

/// Builds the stand-in in `context` as `tag`, unless an image of that name
/// that is not a stand-in (a real one) is there.
pub fn stand_in(tag: &str, context: &Path) -> anyhow::Result<()> {
    if let Some(labels) = labels(tag)
        && labels.get(STAND_IN_LABEL).is_none()
    {
        eprintln!("xtask: {tag} is a real image; using it");
        return Ok(());
    }
    eprintln!("xtask: building the stand-in {tag}");
    output(docker().args(["build", "-q", "-t", tag]).arg(context)).map(drop)
}

/// The Paved image: the runtime stage of `deploy/docker/Dockerfile` with
/// the binaries in `bin` (debug information stripped) instead of those its
/// build stage compiles (which needs the rust image).
pub fn paved_image(root: &Path, bin: &Path, context: &Path) -> anyhow::Result<()> {
    const BUILT: &str = "COPY --from=build /src/target/release/paved* /src/target/release/hello /usr/local/bin/";
    let dockerfile = std::fs::read_to_string(root.join("deploy/docker/Dockerfile")).context("read deploy/docker/Dockerfile")?;
    let start = dockerfile.rfind("\nFROM ").context("the Dockerfile has no runtime stage")?;
    let runtime = &dockerfile[start + 1..];
    if !runtime.contains(BUILT) {
        bail!("deploy/docker/Dockerfile's runtime stage no longer holds `{BUILT}`: update xtask/src/docker.rs");
    }
    let _ = std::fs::remove_dir_all(context);
    std::fs::create_dir_all(context.join("bin"))?;
    std::fs::write(context.join("Dockerfile"), runtime.replace(BUILT, "COPY bin/ /usr/local/bin/"))?;
    for entry in std::fs::read_dir(bin)? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        if path.is_file() && !name.contains('.') && (name.starts_with("paved") || name == "hello") {
            strip(&path, &context.join("bin").join(&name))?;
        }
    }
    eprintln!("xtask: building {PAVED}");
    output(docker().args(["build", "-q", "--label", BUILT_HERE, "-t", PAVED]).arg(context)).map(drop)
}

/// Copies a binary without its debug information (a debug build's binaries
/// are mostly that).
pub fn strip(from: &Path, to: &Path) -> anyhow::Result<()> {
    output(Command::new("objcopy").arg("--strip-debug").arg(from).arg(to)).map(drop)
}

/// Removes the images earlier builds of these left untagged.
pub fn prune() -> anyhow::Result<()> {
    for label in [STAND_IN_LABEL, BUILT_HERE] {
        output(docker().args(["image", "prune", "--force", "--filter", &format!("label={label}")]))?;
    }
    Ok(())
}
