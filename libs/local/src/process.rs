//! A workload process and what is left of it: its stderr tail, its log,
//! its process group (stopped as one, and recorded on disk so that a killed
//! platform's processes are stopped at the next start), and how a program
//! is found.

use std::{
    collections::VecDeque,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    process::Child,
};

/// stderr lines kept for the failure message.
const STDERR_LINES: usize = 10;
/// How long a stopped process gets between SIGTERM and SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// The last lines of a process's stderr, and whether its pipes are closed.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tail {
    lines: Arc<Mutex<VecDeque<String>>>,
    closed: Arc<(std::sync::atomic::AtomicBool, tokio::sync::Notify)>,
}

impl Tail {
    fn close(&self) {
        self.closed.0.store(true, std::sync::atomic::Ordering::SeqCst);
        self.closed.1.notify_waiters();
    }

    /// Waits (at most `limit`) until everything the process wrote has been
    /// read: a process that exits at once is usually still being read.
    async fn settled(&self, limit: Duration) {
        let notified = self.closed.1.notified();
        if !self.closed.0.load(std::sync::atomic::Ordering::SeqCst) {
            let _ = tokio::time::timeout(limit, notified).await;
        }
    }

    fn push(&self, line: String) {
        let mut lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        if lines.len() == STDERR_LINES {
            lines.pop_front();
        }
        lines.push_back(line);
    }
    fn text(&self) -> String {
        let lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        lines.iter().cloned().collect::<Vec<_>>().join("\n")
    }
}

pub(crate) fn tail(stderr: &Tail) -> String {
    let text = stderr.text();
    if text.is_empty() { String::new() } else { format!("; stderr:\n{text}") }
}

pub(crate) async fn exit_message(status: std::io::Result<std::process::ExitStatus>, stderr: &Tail) -> String {
    // Its children may hold the pipes open; do not wait for them long.
    stderr.settled(Duration::from_millis(500)).await;
    let what = match status {
        Ok(s) => match s.code() {
            Some(code) => format!("exited with code {code}"),
            None => format!("was killed ({s})"),
        },
        Err(e) => format!("could not be waited for: {e}"),
    };
    format!("process {what}{}", tail(stderr))
}

/// Copies stdout and stderr to the log file, keeping stderr's last lines.
pub(crate) async fn pump(out: tokio::process::ChildStdout, err: tokio::process::ChildStderr, log: PathBuf, tail: Tail) {
    let file = tokio::fs::OpenOptions::new().create(true).append(true).open(&log).await;
    let mut file = match file {
        Ok(f) => Some(f),
        Err(e) => {
            tracing::warn!(log = %log.display(), error = %e, "cannot open workload log");
            None
        }
    };
    let mut out = BufReader::new(out).lines();
    let mut err = BufReader::new(err).lines();
    let (mut out_open, mut err_open) = (true, true);
    while out_open || err_open {
        let line = tokio::select! {
            l = out.next_line(), if out_open => match l { Ok(Some(l)) => l, _ => { out_open = false; continue } },
            l = err.next_line(), if err_open => match l { Ok(Some(l)) => { tail.push(l.clone()); l }, _ => { err_open = false; continue } },
        };
        if let Some(f) = file.as_mut()
            && f.write_all(format!("{line}\n").as_bytes()).await.is_err()
        {
            file = None;
        }
    }
    tail.close();
}

/// The process group of a workload process (its own: `process_group(0)`),
/// and the file that records it while it runs.
#[derive(Debug)]
pub(crate) struct Group {
    pub(crate) pid: Option<nix::unistd::Pid>,
    pub(crate) file: Option<PathBuf>,
}

impl Group {
    fn signal(&self, signal: nix::sys::signal::Signal) {
        if let Some(group) = self.pid {
            // ESRCH (nothing left in the group) is the expected end.
            let _ = nix::sys::signal::killpg(group, signal);
        }
    }
}

/// SIGTERM to the process group, SIGKILL after the grace period; and SIGKILL
/// to whatever is left of the group in any case.
pub(crate) async fn stop(child: &mut Child, group: Group) {
    group.signal(nix::sys::signal::Signal::SIGTERM);
    if tokio::time::timeout(STOP_GRACE, child.wait()).await.is_err() {
        let _ = child.kill().await;
    }
    group.signal(nix::sys::signal::Signal::SIGKILL);
    if let Some(file) = group.file {
        let _ = std::fs::remove_file(file);
    }
}

/// Kills the process groups recorded in `run_dir` that are still workload
/// processes. A recorded id the OS has since given to another process is
/// left alone: only a process whose environment names a Paved revision is
/// one of ours.
pub(crate) fn reap_orphans(run_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(run_dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(pid) = std::fs::read_to_string(&path).ok().and_then(|s| s.trim().parse::<i32>().ok()) else {
            let _ = std::fs::remove_file(&path);
            continue;
        };
        let revision = path.file_stem().and_then(|s| s.to_str()).and_then(|s| s.rsplit_once('-')).map(|(r, _)| r.to_string());
        let ours = std::fs::read(format!("/proc/{pid}/environ"))
            .ok()
            .zip(revision)
            .is_some_and(|(env, revision)| env.split(|b| *b == 0).any(|kv| kv == format!("PAVED_REVISION={revision}").as_bytes()));
        if ours {
            tracing::warn!(pid, file = %path.display(), "stopping a workload process left behind by a platform that was killed");
            let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
        let _ = std::fs::remove_file(&path);
    }
}

/// A port the OS considers free right now.
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

/// Finds a program: a path with '/' relative to `workdir`, else on `path_var`.
pub(crate) fn resolve(program: &str, workdir: &Path, path_var: &std::ffi::OsStr) -> Result<PathBuf, String> {
    if program.contains('/') {
        return resolve_file(&workdir.join(program));
    }
    std::env::split_paths(path_var)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
        .ok_or_else(|| format!("program {program:?} not found on PATH ({})", path_var.to_string_lossy()))
}

pub(crate) fn resolve_file(path: &Path) -> Result<PathBuf, String> {
    if is_executable(path) { Ok(path.to_path_buf()) } else { Err(format!("{} is not an executable file", path.display())) }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_programs() {
        let path = std::ffi::OsString::from("/usr/bin:/bin");
        assert!(resolve("sh", Path::new("/"), &path).is_ok());
        let err = resolve("no-such-program-paved", Path::new("/"), &path).expect_err("unknown program");
        assert!(err.contains("not found on PATH"), "{err}");
        assert!(resolve("./missing", Path::new("/tmp"), &path).expect_err("missing file").contains("not an executable"));
    }
}
