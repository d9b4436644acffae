//! The data directory is the platform's alone. It holds the root key, the
//! databases (sealed signing keys, token ids, secrets' ciphertexts, the
//! audit log) and the workloads' logs: another user who can read it learns
//! what they should not, and one who can write it can swap a database or
//! the root key under the platform.

use anyhow::Context;
use std::{
    os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt},
    path::Path,
};

/// Creates `dir` (mode 0700), or takes one this user owns, closed to
/// others (0700) if it was not: a group-writable one too, as a umask of
/// 002 makes them (the group is then the user's own). Refuses one that
/// another user owns, or that every user can write.
pub(super) fn claim(dir: &Path) -> anyhow::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("create data directory {}", dir.display()))?;
    let meta = std::fs::metadata(dir).with_context(|| format!("read {}", dir.display()))?;
    let me = rustix::process::getuid().as_raw();
    anyhow::ensure!(
        meta.uid() == me,
        "{} belongs to uid {}, not to this user ({me}): give `paved up` a data directory of its own (--data-dir)",
        dir.display(),
        meta.uid()
    );
    let mode = meta.mode() & 0o777;
    anyhow::ensure!(
        mode & 0o002 == 0,
        "{} can be written by other users (mode {mode:o}): they could replace its root key or databases; `chmod 700 {}` or choose another --data-dir",
        dir.display(),
        dir.display()
    );
    if mode & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).with_context(|| format!("chmod 700 {}", dir.display()))?;
        // Some filesystems (vfat, some FUSE) take a chmod and change nothing.
        let now = std::fs::metadata(dir).map(|m| m.mode() & 0o777).unwrap_or(mode);
        anyhow::ensure!(
            now & 0o077 == 0,
            "{} stays open to other users (mode {now:o}) on its filesystem: choose another --data-dir",
            dir.display()
        );
        tracing::info!(dir = %dir.display(), was = format!("{mode:o}"), "the data directory is closed to other users now (0700)");
    }
    Ok(())
}

/// Closes every file and directory under `dir` to other users (files
/// 0600 or 0700, directories 0700): what was made before (or by a release
/// that left them readable), and the databases, which SQLite creates with
/// the process's umask (its WAL files then take the database's mode). What
/// is made later follows the umask, behind the directory's 0700. A file
/// that cannot be changed is logged: the directory, checked by [`claim`],
/// already keeps others out.
pub(super) fn close_contents(dir: &Path) {
    if let Err(e) = close_under(dir) {
        tracing::warn!(dir = %dir.display(), error = format!("{e:#}"), "some files under the data directory stay open to other users");
    }
}

fn close_under(dir: &Path) -> anyhow::Result<()> {
    // A file that goes meanwhile (a record renamed into place) is no concern.
    let gone = |e: &std::io::Error| e.kind() == std::io::ErrorKind::NotFound;
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if gone(&e) => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("read {}", dir.display())),
    };
    for entry in entries {
        let path = entry?.path();
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(meta) => meta,
            Err(e) if gone(&e) => continue,
            Err(e) => return Err(e).with_context(|| format!("read {}", path.display())),
        };
        if meta.file_type().is_symlink() {
            continue;
        }
        if meta.is_dir() {
            close_under(&path)?;
        }
        let mode = meta.mode() & 0o777;
        if mode & 0o077 != 0 {
            match std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode & 0o700)) {
                Err(e) if !gone(&e) => return Err(e).with_context(|| format!("chmod {}", path.display())),
                _ => {}
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).expect("metadata").mode() & 0o777
    }

    #[test]
    fn a_data_directory_is_made_private_or_refused_when_others_can_write_it() {
        let root = tempfile::tempdir().expect("temp dir");
        let new = root.path().join("a/b");
        claim(&new).expect("created");
        assert_eq!(mode(&new), 0o700);

        let open = root.path().join("open");
        std::fs::create_dir(&open).expect("mkdir");
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        std::fs::create_dir(open.join("logs")).expect("mkdir");
        std::fs::write(open.join("provisioner.db"), b"").expect("db");
        std::fs::set_permissions(open.join("provisioner.db"), std::fs::Permissions::from_mode(0o644)).expect("chmod");
        claim(&open).expect("taken");
        close_contents(&open);
        assert_eq!((mode(&open), mode(&open.join("logs")), mode(&open.join("provisioner.db"))), (0o700, 0o700, 0o600));

        // A umask of 002: the group is the user's own.
        let grouped = root.path().join("grouped");
        std::fs::create_dir(&grouped).expect("mkdir");
        std::fs::set_permissions(&grouped, std::fs::Permissions::from_mode(0o775)).expect("chmod");
        claim(&grouped).expect("taken");
        assert_eq!(mode(&grouped), 0o700);

        let shared = root.path().join("shared");
        std::fs::create_dir(&shared).expect("mkdir");
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        let refused = claim(&shared).expect_err("others can write it").to_string();
        assert!(refused.contains("can be written by other users (mode 777)"), "{refused}");
        assert_eq!(mode(&shared), 0o777, "left as it was");
    }
}
