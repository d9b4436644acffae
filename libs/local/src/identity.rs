//! What a process is started with to be who it is: its identity and the
//! secrets its spec has delivered ([`Identity`], from the [`Bootstrap`]
//! callback), the directory its secret files are written to, and the
//! rotations that follow while it runs.
//!
//! Values pass through here into the process's environment and files
//! only: none is logged, recorded or reported (a file is named in the
//! log, never its content).

use crate::{launch::Launch, process::Group};
use std::{
    io::Write,
    os::unix::fs::{DirBuilderExt, OpenOptionsExt},
    path::{Path, PathBuf},
    sync::Arc,
};
use tokio::sync::mpsc;

/// Asked before every process start, with the `sha256:…` digest of the
/// executable it is about to run (computed here, from the file itself), for
/// its [`Identity`]: a fresh single-use bootstrap token each time, exchanged
/// with that digest (a restarted process cannot reuse a spent one), and the
/// secrets its spec delivers, read with that identity.
pub type Bootstrap = Arc<dyn Fn(Launch, String) -> futures::future::BoxFuture<'static, Result<Identity, String>> + Send + Sync>;

/// Rotations of what a running process was given (see [`Identity`]).
pub(crate) type Rotations = Option<mpsc::UnboundedReceiver<Rotation>>;

/// Why a process was not started.
pub(crate) enum NotStarted {
    /// Trying again will not help: no such program, an artifact that
    /// changed, secrets that cannot be delivered here.
    Final(String),
    /// Its identity or secrets could not be had now (the broker down, a
    /// secret not there yet): another attempt, with backoff.
    Retry(String),
}

/// What [`Bootstrap`] gives a process about to start.
#[derive(Default)]
pub struct Identity {
    /// Environment beyond the spec's: its identity token, where the broker
    /// is, and the env values whose `${secret:…}` references are resolved.
    pub env: Vec<(String, String)>,
    /// `secret_files`, by name: written before it starts, mode 0600, to
    /// its own directory (`$PAVED_SECRETS_DIR`).
    pub files: Vec<(String, Vec<u8>)>,
    /// New versions of what it was given, for as long as it runs; whoever
    /// sends stops once this is dropped.
    pub rotations: Option<mpsc::UnboundedReceiver<Rotation>>,
    /// What must never appear in what is reported of the process (the tail
    /// of its output in a failure, say): its token, its secrets' values.
    pub redact: Vec<String>,
}

/// A delivered secret's new version.
pub enum Rotation {
    /// A secret file's new value: rewritten, then the process gets SIGHUP.
    File { name: String, value: Vec<u8> },
    /// A value it was started with changed, and its spec says `restart`.
    Restart,
}

/// What a process about to run `program` is given to be who it is. The
/// digest is computed from the file itself, on every start: the store's
/// file may have changed since the revision was approved, and then the
/// process is not started.
pub(crate) async fn obtain(bootstrap: Option<&Bootstrap>, launch: &Launch, program: &Path) -> Result<Identity, NotStarted> {
    let running = crate::digest::of_program(program).await.map_err(NotStarted::Final)?;
    if let Some(refused) = crate::digest::mismatch(program, &launch.artifact_digest, &running) {
        tracing::error!(revision = %launch.revision_id, named = %launch.artifact_digest, running = %running, "an artifact no longer hashes to its digest: not started");
        return Err(NotStarted::Final(refused));
    }
    let Some(bootstrap) = bootstrap else {
        // Started with `${secret:…}` as text, it would be started broken.
        return match launch.spec.delivers_secrets() {
            true => Err(NotStarted::Final("its spec delivers secrets, and this runtime has no secrets broker to read them from".into())),
            false => Ok(Identity::default()),
        };
    };
    match bootstrap(launch.clone(), running).await {
        Ok(identity) => Ok(identity),
        // Without its identity a workload cannot read the secrets it
        // declared: not started rather than started broken.
        Err(e) if !launch.spec.secrets.is_empty() => Err(NotStarted::Retry(format!("no identity from the secrets broker: {e}"))),
        Err(e) => {
            tracing::debug!(revision = %launch.revision_id, error = %e, "no identity; the workload declares no secrets");
            Ok(Identity::default())
        }
    }
}

/// A secret file's new value, written whole into `dir`, then SIGHUP to the
/// process (its group leader: what the spec started, not what it spawned)
/// when it handles SIGHUP; false when it does not, and must be restarted to
/// read the new file (SIGHUP's default action would end it).
pub(crate) fn rewrite(dir: &Path, group: &Group, name: &str, value: Vec<u8>) -> bool {
    if let Err(e) = write(dir, &[(name.to_string(), value)]) {
        tracing::warn!(dir = %dir.display(), file = %name, error = %e, "cannot rewrite a secret file");
        return true;
    }
    if !group.pid.is_some_and(|pid| handles(pid.as_raw(), nix::sys::signal::Signal::SIGHUP)) {
        tracing::info!(dir = %dir.display(), file = %name, "a secret file was rewritten; the process has no SIGHUP handler: restarting it");
        return false;
    }
    group.signal_leader(nix::sys::signal::Signal::SIGHUP);
    tracing::info!(dir = %dir.display(), file = %name, "a secret file was rewritten with its new version; SIGHUP sent");
    true
}

/// Whether process `pid` catches or ignores `signal` (its `SigCgt` and
/// `SigIgn` masks in `/proc/<pid>/status`): sending it will not end it.
fn handles(pid: i32, signal: nix::sys::signal::Signal) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else { return false };
    let bit = 1u64 << ((signal as i32) - 1);
    let mask = |field: &str| {
        status.lines().find_map(|l| l.strip_prefix(field)).and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok()).unwrap_or(0)
    };
    (mask("SigCgt:") | mask("SigIgn:")) & bit != 0
}

/// `message` with every value in `values` replaced by `***`.
pub(crate) fn scrub(message: String, values: &[String]) -> String {
    values.iter().filter(|v| !v.is_empty()).fold(message, |m, v| if m.contains(v.as_str()) { m.replace(v.as_str(), "***") } else { m })
}

/// The directory of replica `index` of `revision` under `root`.
pub(crate) fn dir(root: &Path, revision: &str, index: usize) -> PathBuf {
    root.join(format!("{revision}-{index}"))
}

/// Writes `files` into `dir` (made 0700 if missing), each 0600 and
/// replaced whole (written aside, then renamed): a process reading one
/// sees the old value or the new, never half of one.
pub(crate) fn write(dir: &Path, files: &[(String, Vec<u8>)]) -> std::io::Result<()> {
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    for (name, value) in files {
        let aside = dir.join(format!(".{name}.new"));
        let _ = std::fs::remove_file(&aside);
        let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&aside)?;
        file.write_all(value)?;
        file.sync_all()?;
        std::fs::rename(&aside, dir.join(name))?;
    }
    Ok(())
}

/// Removes the directories of every replica of `revision` under `root`.
pub(crate) fn remove_all(root: &Path, revision: &str) {
    let Ok(entries) = std::fs::read_dir(root) else { return };
    let prefix = format!("{revision}-");
    for entry in entries.flatten() {
        let name = entry.file_name();
        let index = name.to_str().and_then(|n| n.strip_prefix(&prefix));
        if index.is_some_and(|i| !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()))
            && let Err(e) = std::fs::remove_dir_all(entry.path())
        {
            tracing::warn!(dir = %entry.path().display(), error = %e, "cannot remove a replica's secret files");
        }
    }
}

/// Removes every replica directory under `root` whose revision `running`
/// does not name.
pub(crate) fn remove_unrecorded(root: &Path, running: impl Fn(&str) -> bool) {
    let Ok(entries) = std::fs::read_dir(root) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let key = name.to_str().and_then(|n| n.rsplit_once('-')).map(|(key, _)| key.to_string());
        if key.is_some_and(|key| !running(&key)) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn files_are_private_and_replaced_whole() {
        let root = tempfile::tempdir().expect("dir");
        let dir = super::dir(root.path(), "r-1", 0);
        super::write(&dir, &[("tls-key".into(), b"one".to_vec())]).expect("write");
        super::write(&dir, &[("tls-key".into(), b"two".to_vec())]).expect("rewrite");
        assert_eq!(std::fs::read(dir.join("tls-key")).expect("read"), b"two");
        let mode = |p: &std::path::Path| std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
        assert_eq!((mode(&dir), mode(&dir.join("tls-key"))), (0o700, 0o600));
        assert_eq!(std::fs::read_dir(&dir).expect("list").count(), 1, "nothing left aside");
        let other = super::dir(root.path(), "r-10", 0);
        super::write(&other, &[]).expect("another revision");
        super::remove_all(root.path(), "r-1");
        assert!(!dir.exists() && other.exists(), "only r-1's replicas");
        super::remove_unrecorded(root.path(), |key| key == "r-10");
        assert!(other.exists(), "a running revision's files stay");
        super::remove_unrecorded(root.path(), |_| false);
        assert!(!other.exists(), "what no replica runs for goes");
    }

    #[test]
    fn values_are_scrubbed_and_handlers_seen() {
        let values = ["hunter2".to_string(), String::new()];
        assert_eq!(super::scrub("exited: DSN=postgres://a:hunter2@db hunter2".into(), &values), "exited: DSN=postgres://a:***@db ***");
        // This test process has no SIGHUP handler; a shell trapping it has.
        assert!(!super::handles(std::process::id() as i32, nix::sys::signal::Signal::SIGHUP));
        let mut trapping = std::process::Command::new("sh").args(["-c", "trap 'exit 0' HUP; sleep 5 & wait"]).spawn().expect("sh");
        let pid = trapping.id() as i32;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !super::handles(pid, nix::sys::signal::Signal::SIGHUP) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(super::handles(pid, nix::sys::signal::Signal::SIGHUP), "the shell's trap is seen");
        let _ = trapping.kill();
        let _ = trapping.wait();
    }
}
