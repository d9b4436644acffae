//! Replicas the platform before this one left running (see `record`): found
//! at a start, held through their pidfds from then on (so that a recorded id
//! the OS gives to another process can no longer be mistaken for them), and
//! either adopted by a start of their revision or stopped.

use crate::{process::Proc, record};
use std::{collections::HashMap, path::Path, path::PathBuf};

/// A replica left running, as recorded, held through its pidfd.
#[derive(Debug)]
pub(crate) struct Orphan {
    pub(crate) file: PathBuf,
    pub(crate) pgid: i32,
    pub(crate) port: u16,
    pub(crate) process: Proc,
}

impl Orphan {
    /// Stops it at once, unless it has exited already (its group id may be
    /// another's by now): it runs a revision nobody asked for again.
    pub(crate) fn reap(self) {
        if !self.process.has_exited() {
            tracing::warn!(pid = self.pgid, file = %self.file.display(), "stopping a workload process that no platform runs any more");
            let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(self.pgid), nix::sys::signal::Signal::SIGKILL);
        }
        let _ = std::fs::remove_file(&self.file);
    }
}

/// The replicas recorded in `run_dir` that still run, by runtime key and
/// replica index. Records of processes that are gone (or whose id now names
/// another process) are removed; a replica recorded without its port (by a
/// platform older than adoption) is stopped.
pub(crate) fn find(run_dir: &Path) -> HashMap<String, HashMap<usize, Orphan>> {
    let (records, junk) = record::all(run_dir);
    for file in junk {
        let _ = std::fs::remove_file(file);
    }
    let mut orphans: HashMap<String, HashMap<usize, Orphan>> = HashMap::new();
    for (file, r) in records {
        // The pidfd first, then the check: once it is open, the id cannot
        // name another process, so what was checked stays true.
        let process = match Proc::adopt(r.pgid) {
            Ok(process) if record::is_ours(r.pgid, &r.key) => process,
            _ => {
                let _ = std::fs::remove_file(&file);
                continue;
            }
        };
        let orphan = Orphan { file, pgid: r.pgid, port: r.port.unwrap_or(0), process };
        match r.port {
            Some(_) => {
                orphans.entry(r.key).or_default().insert(r.index, orphan);
            }
            None => orphan.reap(),
        }
    }
    orphans
}

/// Stops every workload replica recorded in `run_dir` that still runs: what
/// the data plane's host does when it stops for good, its control plane gone.
pub fn stop_recorded(run_dir: &Path) {
    for orphan in find(run_dir).into_values().flat_map(HashMap::into_values) {
        orphan.reap();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A recorded replica that runs is found and stopped; records of one
    /// that is gone, or of a process that is not ours, are removed.
    #[test]
    fn finds_what_runs_and_stops_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut ours = std::process::Command::new("sleep");
        ours.arg("30").env("PAVED_REVISION", "r1");
        std::os::unix::process::CommandExt::process_group(&mut ours, 0);
        let mut ours = ours.spawn().expect("sleep");
        let pid = ours.id() as i32;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !record::is_ours(pid, "r1") && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        record::write(&record::path(dir.path(), "r1", 0), pid, 8080).expect("record");
        let mut other = std::process::Command::new("sleep").arg("30").spawn().expect("sleep");
        record::write(&record::path(dir.path(), "r2", 0), other.id() as i32, 8081).expect("record");
        record::write(&record::path(dir.path(), "r3", 0), i32::MAX - 1, 8082).expect("record");

        let found = find(dir.path());
        assert_eq!(found.keys().collect::<Vec<_>>(), vec!["r1"], "only the process that names its revision");
        assert_eq!(found["r1"][&0].port, 8080);
        assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 1, "the other records removed");
        assert!(other.try_wait().expect("wait").is_none(), "a process not ours is left alone");

        drop(found);
        stop_recorded(dir.path());
        assert!(!ours.wait().expect("wait").success(), "stopped");
        assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 0);
        other.kill().expect("kill");
        other.wait().expect("wait");
    }
}
