//! A workload process and what is left of it: its output (written by the
//! process itself to its log file, so that it outlives its supervisor), its
//! process group (stopped as one, and recorded on disk: see `record`), and
//! how a program is found. A process is either our child or, after a
//! restart of the platform, adopted: watched through a pidfd.

use std::{
    io::{Read, Seek},
    path::{Path, PathBuf},
    time::Duration,
};
use tokio::process::Child;

/// Output lines kept for a failure message.
const TAIL_LINES: usize = 10;
/// How far back from the end of the log those lines are looked for.
const TAIL_BYTES: u64 = 16 * 1024;
/// How often an adopted process is checked for having exited.
const ADOPTED_POLL: Duration = Duration::from_millis(100);
/// How long a stopped process gets between SIGTERM and SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// A process's output: the log file it appends to (stdout and stderr), and
/// where this run of it began there, so that a failure message quotes this
/// run and not an earlier one.
#[derive(Debug, Clone)]
pub(crate) struct Output {
    log: PathBuf,
    from: u64,
}

impl Output {
    /// Opens (creates) the log for a process about to start: the file is
    /// given to the process as its stdout and stderr.
    pub(crate) fn open(log: PathBuf) -> std::io::Result<(Self, std::fs::File)> {
        let file = std::fs::OpenOptions::new().create(true).append(true).open(&log)?;
        let from = file.metadata()?.len();
        Ok((Self { log, from }, file))
    }

    /// The output of a process that already runs: what it writes from now on.
    pub(crate) fn continued(log: PathBuf) -> Self {
        let from = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
        Self { log, from }
    }

    /// The last lines this run wrote.
    fn last_lines(&self) -> String {
        let Ok(mut file) = std::fs::File::open(&self.log) else { return String::new() };
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        let start = self.from.max(len.saturating_sub(TAIL_BYTES));
        let mut bytes = Vec::new();
        if file.seek(std::io::SeekFrom::Start(start)).is_err() || file.read_to_end(&mut bytes).is_err() {
            return String::new();
        }
        let text = String::from_utf8_lossy(&bytes);
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n")
    }
}

pub(crate) fn tail(output: &Output) -> String {
    let text = output.last_lines();
    if text.is_empty() { String::new() } else { format!("; last output:\n{text}") }
}

/// A running workload process.
#[derive(Debug)]
pub(crate) enum Proc {
    /// Started by this runtime.
    Child(Child),
    /// Left running by the platform before this one: not our child, so its
    /// exit is seen through a pidfd (which, unlike a pid, cannot come to
    /// name another process) and its exit status is not ours to read. The
    /// pidfd is polled, not registered with tokio's reactor: registering a
    /// descriptor takes unsafe code since tokio 1.54, and an exit seen
    /// 100 ms late costs nothing here (health checks are slower).
    Adopted(std::os::fd::OwnedFd),
}

impl Proc {
    /// Takes over the running process `pid`.
    pub(crate) fn adopt(pid: i32) -> std::io::Result<Self> {
        let pid = rustix::process::Pid::from_raw(pid).ok_or_else(|| std::io::Error::other("not a process id"))?;
        Ok(Self::Adopted(rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::NONBLOCK)?))
    }

    /// Waits until the process exits; says how it ended.
    pub(crate) async fn wait(&mut self) -> String {
        match self {
            Self::Child(child) => match child.wait().await {
                Ok(status) => match status.code() {
                    Some(code) => format!("exited with code {code}"),
                    None => format!("was killed ({status})"),
                },
                Err(e) => format!("could not be waited for: {e}"),
            },
            Self::Adopted(fd) => loop {
                match exited(fd) {
                    Ok(false) => tokio::time::sleep(ADOPTED_POLL).await,
                    Ok(true) => return "exited".to_string(),
                    Err(e) => return format!("could not be waited for: {e}"),
                }
            },
        }
    }

    /// Whether an adopted process has exited (a child is asked by `wait`).
    pub(crate) fn has_exited(&self) -> bool {
        match self {
            Self::Child(_) => false,
            Self::Adopted(fd) => exited(fd).unwrap_or(true),
        }
    }
}

/// Whether the process of a pidfd has exited: its pidfd is readable then.
fn exited(fd: &std::os::fd::OwnedFd) -> rustix::io::Result<bool> {
    let mut polled = [rustix::event::PollFd::new(fd, rustix::event::PollFlags::IN)];
    match rustix::event::poll(&mut polled, Some(&rustix::event::Timespec { tv_sec: 0, tv_nsec: 0 })) {
        Ok(n) => Ok(n > 0),
        Err(rustix::io::Errno::INTR) => Ok(false),
        Err(e) => Err(e),
    }
}

pub(crate) async fn exit_message(process: &mut Proc, output: &Output) -> String {
    let what = process.wait().await;
    format!("process {what}{}", tail(output))
}

/// The process group of a workload process (its own: `process_group(0)`),
/// and the file that records it while it runs.
#[derive(Debug)]
pub(crate) struct Group {
    pub(crate) pid: Option<nix::unistd::Pid>,
    pub(crate) file: Option<PathBuf>,
}

impl Group {
    /// `signal` to the group's leader alone: the process the spec started.
    pub(crate) fn signal_leader(&self, signal: nix::sys::signal::Signal) {
        if let Some(leader) = self.pid {
            let _ = nix::sys::signal::kill(leader, signal);
        }
    }

    pub(crate) fn signal(&self, signal: nix::sys::signal::Signal) {
        if let Some(group) = self.pid {
            // ESRCH (nothing left in the group) is the expected end.
            let _ = nix::sys::signal::killpg(group, signal);
        }
    }
}

/// SIGTERM to the process group, SIGKILL after the grace period; and SIGKILL
/// to whatever is left of the group in any case.
pub(crate) async fn stop(process: &mut Proc, group: Group) {
    group.signal(nix::sys::signal::Signal::SIGTERM);
    if tokio::time::timeout(STOP_GRACE, process.wait()).await.is_err() {
        group.signal(nix::sys::signal::Signal::SIGKILL);
        // Our child is reaped here; an adopted one by its parent (init).
        let _ = tokio::time::timeout(STOP_GRACE, process.wait()).await;
    }
    group.signal(nix::sys::signal::Signal::SIGKILL);
    if let Some(file) = group.file {
        let _ = std::fs::remove_file(file);
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

    /// An adopted process is watched through its pidfd: waiting does not
    /// end while it runs, and ends soon after it is killed.
    #[tokio::test]
    async fn an_adopted_process_is_seen_to_exit() {
        let mut child = std::process::Command::new("sleep").arg("30").spawn().expect("sleep");
        let mut adopted = Proc::adopt(child.id() as i32).expect("adopt");
        assert!(tokio::time::timeout(Duration::from_millis(300), adopted.wait()).await.is_err(), "it still runs");
        child.kill().expect("kill");
        let how = tokio::time::timeout(Duration::from_secs(2), adopted.wait()).await.expect("seen to exit");
        assert_eq!(how, "exited");
        child.wait().expect("reap");
    }

    #[test]
    fn a_failure_quotes_the_last_lines_of_this_run() {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("r-0.log");
        std::fs::write(&log, "an earlier run\n").expect("write");
        let (output, mut file) = Output::open(log.clone()).expect("open");
        assert_eq!(tail(&output), "", "an earlier run is not quoted");
        use std::io::Write;
        for i in 0..15 {
            writeln!(file, "line {i}").expect("write");
        }
        let quoted = tail(&output);
        assert!(quoted.starts_with("; last output:\nline 5\n") && quoted.ends_with("line 14"), "{quoted}");
        assert_eq!(tail(&Output::continued(log)), "", "an adopted process is quoted from its adoption on");
    }

    #[test]
    fn resolves_programs() {
        let path = std::ffi::OsString::from("/usr/bin:/bin");
        assert!(resolve("sh", Path::new("/"), &path).is_ok());
        let err = resolve("no-such-program-paved", Path::new("/"), &path).expect_err("unknown program");
        assert!(err.contains("not found on PATH"), "{err}");
        assert!(resolve("./missing", Path::new("/tmp"), &path).expect_err("missing file").contains("not an executable"));
    }
}
