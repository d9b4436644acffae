//! The digest of the executable a process is started from, computed by the
//! runtime itself right before it starts it: what the process proves at its
//! bootstrap exchange, and what an artifact's file must still hash to.

use sha2::{Digest, Sha256};
use std::path::Path;

/// `sha256:<hex>` of the file at `path`, read through (blocking: call it
/// off the async threads).
pub fn of_file(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let (mut file, mut hasher, mut buf) = (std::fs::File::open(path)?, Sha256::new(), vec![0u8; 64 * 1024]);
    loop {
        match file.read(&mut buf)? {
            0 => return Ok(format!("sha256:{}", hex::encode(hasher.finalize()))),
            n => hasher.update(&buf[..n]),
        }
    }
}

/// What identifies a file's content without reading it: any write, chmod,
/// rename over it or `touch` changes its inode, size or change time, and
/// the change time cannot be set back by its owner.
type Stamp = (u64, u64, u64, i64, i64, i64, i64);

fn stamp(meta: &std::fs::Metadata) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino(), meta.size(), meta.mtime(), meta.mtime_nsec(), meta.ctime(), meta.ctime_nsec())
}

/// Digests by path, kept while the file's [`Stamp`] holds: hashing a
/// large executable at every start (a wake on request above all) costs
/// more than the start itself.
static KNOWN: std::sync::Mutex<Option<std::collections::HashMap<std::path::PathBuf, (Stamp, String)>>> = std::sync::Mutex::new(None);

/// [`of_file`], or the digest computed before if the file's stamp is the same.
fn of_file_known(path: &Path) -> std::io::Result<String> {
    let before = stamp(&std::fs::metadata(path)?);
    let cached = KNOWN.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert_with(Default::default).get(path).cloned();
    if let Some((known, digest)) = cached
        && known == before
    {
        return Ok(digest);
    }
    let digest = of_file(path)?;
    // Kept only if nothing changed while it was read.
    if stamp(&std::fs::metadata(path)?) == before {
        KNOWN
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert_with(Default::default)
            .insert(path.to_path_buf(), (before, digest.clone()));
    }
    Ok(digest)
}

/// [`of_file_known`] on a blocking thread.
pub(crate) async fn of_program(path: &Path) -> Result<String, String> {
    let owned = path.to_path_buf();
    tokio::task::spawn_blocking(move || of_file_known(&owned))
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()))
        .map_err(|e| format!("cannot read {} to compute its digest: {e}", path.display()))
}

/// Why a process is not started from `path`: its file is not the artifact
/// `named` (what the revision was approved with) but `running`.
pub(crate) fn mismatch(path: &Path, named: &str, running: &str) -> Option<String> {
    (!named.is_empty() && !named.eq_ignore_ascii_case(running)).then(|| {
        format!(
            "{} is {running}, not the artifact {named} its revision names: not started (the artifact store was changed)",
            path.display()
        )
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn digests_a_file_as_sha256_sum_does() {
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("abc");
        std::fs::write(&file, "abc").expect("write");
        // FIPS 180-2's "abc" vector.
        let want = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(super::of_file(&file).expect("digest"), want);
        assert_eq!(super::mismatch(&file, &want.to_uppercase().replace("SHA256:", "sha256:"), want), None, "hex case does not matter");
        assert_eq!(super::mismatch(&file, "", want), None, "a command names no artifact");
        let other = format!("sha256:{}", "0".repeat(64));
        let refused = super::mismatch(&file, &other, want).expect("refused");
        assert!(refused.contains(want) && refused.contains(&other), "{refused}");
    }

    #[test]
    fn a_known_digest_holds_only_while_the_file_is_unchanged() {
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("program");
        std::fs::write(&file, "abc").expect("write");
        let first = super::of_file_known(&file).expect("digest");
        assert_eq!(super::of_file_known(&file).expect("known"), first);
        // Same size, written in place: its change time moves on.
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&file, "abd").expect("rewrite");
        assert_eq!(super::of_file_known(&file).expect("digest"), super::of_file(&file).expect("digest"));
        assert_ne!(super::of_file_known(&file).expect("digest"), first);
        // Renamed over: another inode.
        let forged = dir.path().join("forged");
        std::fs::write(&forged, "abc").expect("write");
        std::fs::rename(&forged, &file).expect("rename");
        assert_eq!(super::of_file_known(&file).expect("digest"), first);
    }
}
