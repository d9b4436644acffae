//! The audit log as a verifier outside it reads it: checkpoints (signed
//! notes, cosigned by witnesses), entry bundles of the tiles, and the
//! `paved-audit-bundle/v1` files `paved audit verify-bundle` checks.

use paved_audit::log::{bundle, cosign, note::LogKey, verify};

/// The log's key and a witness's, from fixed seeds: seeds are signed with them.
pub const LOG_NAME: &str = "example.com/audit";
pub const LOG_SEED: [u8; 32] = [3; 32];
pub const WITNESS_NAME: &str = "witness.example";
pub const WITNESS_SEED: [u8; 32] = [4; 32];

fn log_key(seed: &[u8; 32]) -> String {
    match LogKey::new(LOG_NAME, seed) {
        Ok(key) => key.verifier_key(),
        Err(e) => panic!("the fixed log key: {e}"),
    }
}

pub fn verifier_key() -> String {
    log_key(&LOG_SEED)
}

/// A note as a checkpoint (with the log's key, and with another key of the
/// same name, which must never verify it), its cosignatures, and the same
/// bytes as an entry bundle.
pub fn checkpoint(data: &[u8]) {
    let ours = verifier_key();
    if let Ok(c) = verify::checkpoint(data, &ours) {
        assert!(verify::checkpoint(data, &log_key(&[5; 32])).is_err(), "a checkpoint of size {} verifies with a stranger's key", c.size());
    }
    let _ = verify::checkpoint_any(data, &[ours.clone(), "not a key".into()]);
    let _ = verify::trusted(std::slice::from_ref(&ours), &[log_key(&[5; 32])], &[data.to_vec()]);
    let witness = match cosign::Cosigner::new(WITNESS_NAME, &WITNESS_SEED) {
        Ok(w) => w.verifier_key(),
        Err(e) => panic!("the fixed witness: {e}"),
    };
    let Ok(known) = cosign::CosignatureVerifier::new(&witness) else { panic!("the witness's own key") };
    let _ = cosign::cosigned_by(data, &[known]);
    if let Some(entries) = verify::bundle_entries(data) {
        assert_eq!(verify::bundle(&entries).as_deref(), Some(data), "an entry bundle reads back to other bytes");
    }
}

/// A `paved-audit-bundle/v1` file, verified offline with the log's key.
pub fn bundle(data: &[u8]) {
    let Ok(file) = serde_json::from_slice::<bundle::Bundle>(data) else { return };
    let key = verifier_key();
    if let Ok(entries) = bundle::verify(&file, &key) {
        // What a reader of a verified bundle takes for granted: entries in
        // the log's order, inside the signed tree, all about the workload.
        let Ok(checkpoint) = verify::checkpoint(file.checkpoint.as_bytes(), &key) else {
            panic!("a bundle verified on a checkpoint that does not")
        };
        assert!(entries.windows(2).all(|w| w[0].0 < w[1].0), "a verified bundle's entries are out of order");
        for (index, entry) in &entries {
            assert!(*index < checkpoint.size(), "entry {index} verified beyond a tree of {}", checkpoint.size());
            assert_eq!(entry.workload, file.workload, "entry {index} is about another workload");
        }
    }
}
