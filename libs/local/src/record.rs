//! The run directory's records: one file per running replica,
//! `<key>-<index>.pgid`, holding its process group id and the port it
//! serves on (`<pgid> <port>`). They outlive the platform that wrote them,
//! so that the next one finds what is still running: it adopts a replica it
//! is asked to run again, and stops the others (see `runtime`). `usage`
//! reads the same records to measure each replica.
//!
//! A file written before the port was recorded holds only the group id: it
//! is read, for usage and to stop it, but never adopted (nothing says where
//! it serves).

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
};

/// One running replica, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    /// The runtime key it runs under (a revision id, or a baseline's key).
    pub(crate) key: String,
    /// Which replica of the revision, from 0.
    pub(crate) index: usize,
    /// Its process group (the leader's pid: `process_group(0)`).
    pub(crate) pgid: i32,
    /// The port it listens on, when recorded.
    pub(crate) port: Option<u16>,
}

/// The file of replica `index` of `key`.
pub(crate) fn path(run_dir: &Path, key: &str, index: usize) -> PathBuf {
    run_dir.join(format!("{key}-{index}.pgid"))
}

/// Records a replica that was just started: whole or not at all (written
/// beside, then renamed), since a torn record could be adopted on a wrong port.
pub(crate) fn write(file: &Path, pgid: i32, port: u16) -> std::io::Result<()> {
    let partial = file.with_extension("pgid.partial");
    std::fs::write(&partial, format!("{pgid} {port}"))?;
    std::fs::rename(partial, file)
}

/// Reads one record file; `None` when it is not one (or is torn).
pub(crate) fn read(file: &Path) -> Option<Record> {
    let stem = file.file_stem()?.to_str()?;
    let (key, index) = stem.rsplit_once('-')?;
    let text = std::fs::read_to_string(file).ok()?;
    let mut fields = text.split_whitespace();
    let pgid = fields.next()?.parse().ok()?;
    let port = match fields.next() {
        Some(port) => Some(port.parse().ok()?),
        None => None,
    };
    Some(Record { key: key.to_string(), index: index.parse().ok()?, pgid, port })
}

/// Every record in `run_dir`, by file. Files that are not records are
/// returned apart, to be removed.
pub(crate) fn all(run_dir: &Path) -> (HashMap<PathBuf, Record>, Vec<PathBuf>) {
    let mut records = HashMap::new();
    let mut junk = Vec::new();
    let Ok(entries) = std::fs::read_dir(run_dir) else { return (records, junk) };
    for entry in entries.flatten() {
        let file = entry.path();
        match read(&file) {
            Some(record) => {
                records.insert(file, record);
            }
            None => junk.push(file),
        }
    }
    (records, junk)
}

/// Whether the process `pid` is one of ours running `key`: its environment
/// names the revision. A recorded id the OS has since given to another
/// process is not.
pub(crate) fn is_ours(pid: i32, key: &str) -> bool {
    let wanted = format!("PAVED_REVISION={key}");
    std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|env| env.split(|b| *b == 0).any(|kv| kv == wanted.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_it_writes_and_older_records() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = path(dir.path(), "0193-rev-baseline", 1);
        write(&file, 4242, 8123).expect("write");
        let record = read(&file).expect("a record");
        assert_eq!(record, Record { key: "0193-rev-baseline".into(), index: 1, pgid: 4242, port: Some(8123) });

        // Written before ports were recorded: read, not adoptable.
        let old = path(dir.path(), "old", 0);
        std::fs::write(&old, "77\n").expect("write");
        assert_eq!(read(&old).expect("an old record").port, None);

        std::fs::write(dir.path().join("torn-0.pgid"), "12 x").expect("write");
        std::fs::write(dir.path().join("stray"), "12").expect("write");
        let (records, junk) = all(dir.path());
        assert_eq!(records.len(), 2);
        assert_eq!(junk.len(), 2, "{junk:?}");
    }

    #[test]
    fn only_a_process_that_names_the_revision_is_ours() {
        let me = std::process::id() as i32;
        assert!(!is_ours(me, "no-such-revision"));
        let mut child = std::process::Command::new("sleep").arg("5").env("PAVED_REVISION", "r1").spawn().expect("sleep");
        let pid = child.id() as i32;
        // Right after the spawn, /proc may still show the environment from
        // before the exec.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !is_ours(pid, "r1") && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(is_ours(pid, "r1"));
        assert!(!is_ours(pid, "r2"));
        child.kill().expect("kill");
        child.wait().expect("wait");
    }
}
