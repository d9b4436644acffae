use super::*;
use signed_note::{Note, Signer as _, VerifierList};

/// transparency-dev/formats note_cosigv1_test.go: a published witness key
/// (remora) and a cosignature whose timestamp is 1727964367.
const REMORA: &str = "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2";
const SIGNATURE: &str = "ZGhGuQAAAABm/qTPeyKXD+R2rzyQsxPiP8mXum7qq/iF0u4vanlqJyocWODBt97w9uL+8qT7S5gxEHWWOworDcFiEBYJXORmnFBOBA==";

#[test]
fn the_published_key_and_signature_parse() {
    let remora = CosignatureVerifier::new(REMORA).expect("a cosignature/v1 key");
    assert_eq!(remora.label(), "remora.n621.de+da77ade7");
    let bytes = STANDARD.decode(SIGNATURE).expect("base64");
    // key id, then the signature proper.
    assert_eq!(timestamp(&bytes[4..]), Some(1_727_964_367));
    // An Ed25519 (0x01) key or a wrong id is not a witness key.
    assert!(CosignatureVerifier::new("TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6").is_err());
    assert!(CosignatureVerifier::new("remora.n621.de+00000000+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2").is_err());
}

#[test]
fn a_cosignature_verifies_over_the_text_it_signed_and_no_other() {
    let mut witness = Cosigner::new("witness.example", &[4; 32]).expect("key");
    witness.timestamp = 1_800_000_000;
    let verifier = CosignatureVerifier::new(&witness.verifier_key()).expect("its own key");
    assert_eq!(signed_note::Verifier::key_id(&verifier), witness.key_id());
    let text = b"example.com/log\n5\nf+7CoKgXKE/tNys9TTXcr/ad6U/K3xvznmzew9y6SP0=\n";
    let mut note = Note::new(text, &[]).expect("note");
    note.add_sigs(&[&witness]).expect("cosign");
    let bytes = note.to_bytes();
    assert_eq!(cosigned_by(&bytes, std::slice::from_ref(&verifier)), vec![verifier.label()]);
    let signature = note.verify(&VerifierList::new(vec![Box::new(verifier.clone())])).expect("verifies").0[0].signature().to_vec();
    assert_eq!(timestamp(&signature), Some(1_800_000_000));
    // Another tree under the same signature: not cosigned.
    let forged = String::from_utf8(bytes).expect("text").replace("\n5\n", "\n6\n");
    assert!(cosigned_by(forged.as_bytes(), std::slice::from_ref(&verifier)).is_empty());
    // The same seed as a plain Ed25519 note key does not open it.
    let other = Cosigner::new("witness.example", &[5; 32]).expect("key");
    assert!(cosigned_by(&note.to_bytes(), &[CosignatureVerifier::new(&other.verifier_key()).expect("key")]).is_empty());
}
