//! What the workload processes use, read from `/proc` (through `procfs`,
//! which knows the traps of its formats, such as a command name holding
//! spaces and parentheses in `stat`).
//!
//! Each replica runs in a process group of its own (see `process::Group`),
//! recorded in the run directory as `<key>-<index>.pgid`. A sample adds up
//! every process now in that group, each with what its children used
//! before they exited and were reaped (`cutime`, `cstime`): a shell that
//! starts the real server, or a server that recycles workers, is measured
//! whole. (A child reaped by a process outside the group is not.)

use std::{collections::HashMap, path::Path};

/// One replica's use, read at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessUsage {
    /// The runtime key it runs under (a revision id, or a baseline's key).
    pub key: String,
    /// Which replica of the revision, from 0.
    pub instance: u32,
    /// Identifies this process across restarts of the replica: the CPU
    /// time below counts from when it started, so a new value here starts
    /// a new count.
    pub process: String,
    /// User and system CPU seconds since the process started.
    pub cpu_seconds: f64,
    /// Resident memory now.
    pub memory_bytes: u64,
    /// The most resident memory each process of the group has held.
    pub memory_peak_bytes: u64,
}

/// Reads every replica recorded in `run_dir`. A replica whose processes
/// are gone by the time they are read is left out: it uses nothing.
pub fn read(run_dir: &Path) -> Vec<ProcessUsage> {
    let groups = recorded_groups(run_dir);
    if groups.is_empty() {
        return Vec::new();
    }
    let ticks = procfs::ticks_per_second() as f64;
    let page = procfs::page_size();
    let mut found: HashMap<i32, ProcessUsage> = HashMap::new();
    let Ok(processes) = procfs::process::all_processes() else { return Vec::new() };
    for process in processes.flatten() {
        // A process may exit between the listing and the read.
        let Ok(stat) = process.stat() else { continue };
        let Some((key, instance)) = groups.get(&stat.pgrp) else { continue };
        let peak_kib = process.status().ok().and_then(|s| s.vmhwm).unwrap_or(0);
        let entry = found.entry(stat.pgrp).or_insert_with(|| ProcessUsage {
            key: key.clone(),
            instance: *instance,
            process: String::new(),
            cpu_seconds: 0.0,
            memory_bytes: 0,
            memory_peak_bytes: 0,
        });
        // What it used, and what its children used before it reaped them:
        // a worker a server recycles is counted through its parent.
        let used = stat.utime + stat.stime + (stat.cutime + stat.cstime).max(0) as u64;
        if stat.pid == stat.pgrp {
            entry.process = format!("{}@{}", stat.pid, stat.starttime);
        }
        entry.cpu_seconds += used as f64 / ticks;
        entry.memory_bytes += stat.rss * page;
        entry.memory_peak_bytes += peak_kib * 1024;
    }
    // A group whose leader has exited has no identity to count from.
    found.into_values().filter(|u| !u.process.is_empty()).collect()
}

/// Process group id → (runtime key, replica index), from the run directory.
fn recorded_groups(run_dir: &Path) -> HashMap<i32, (String, u32)> {
    let (records, _) = crate::record::all(run_dir);
    records.into_values().filter_map(|r| Some((r.pgid, (r.key, u32::try_from(r.index).ok()?)))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;

    /// A real process group: a shell that burns CPU in a child and holds
    /// memory, read as the runtime reads its replicas.
    #[test]
    fn reads_a_process_group_from_proc() {
        let dir = tempfile::tempdir().expect("temp dir");
        // The child burns about 0.3 s of CPU and exits (counted through the
        // leader's cutime once reaped); the leader then holds ~32 MiB.
        let mut child = std::process::Command::new("sh")
            .args([
                "-c",
                "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done & wait; x=$(head -c 33554432 /dev/zero | tr '\\0' a); sleep 30",
            ])
            .process_group(0)
            .spawn()
            .expect("sh");
        let pid = child.id() as i32;
        std::fs::write(dir.path().join("rev-1-2.pgid"), pid.to_string()).expect("record");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let usage = loop {
            let all = read(dir.path());
            assert_eq!(all.len(), 1, "one group recorded, one read: {all:?}");
            if all[0].memory_bytes > 32 << 20 || std::time::Instant::now() > deadline {
                break all[0].clone();
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        let _ = child.wait();
        assert_eq!((usage.key.as_str(), usage.instance), ("rev-1", 2));
        assert!(usage.process.starts_with(&format!("{pid}@")), "{usage:?}");
        assert!(usage.cpu_seconds > 0.05, "the child's CPU is counted: {usage:?}");
        assert!(usage.memory_bytes > 32 << 20, "the shell's variable is resident: {usage:?}");
        assert!(usage.memory_peak_bytes >= usage.memory_bytes, "{usage:?}");
        assert!(read(dir.path()).is_empty(), "a group that is gone uses nothing");
    }

    #[test]
    fn nothing_recorded_reads_nothing() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("not-a-number.pgid"), "x").expect("write");
        assert!(read(dir.path()).is_empty());
        assert!(read(Path::new("/nonexistent/paved")).is_empty());
    }
}
