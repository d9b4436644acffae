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

/// [`of_file`] on a blocking thread.
pub(crate) async fn of_program(path: &Path) -> Result<String, String> {
    let owned = path.to_path_buf();
    tokio::task::spawn_blocking(move || of_file(&owned))
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
}
