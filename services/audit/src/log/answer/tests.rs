use super::*;
use crate::log::{entry, note::LogKey};
use paved_proto::provisioner::v1::RevisionDeployed;
use std::collections::HashMap;
use tlog_tiles::{HashReader, prove_record, stored_hashes, tree_hash};

/// Every stored hash of a small tree, in memory.
struct Memory(Vec<Hash>);

impl HashReader for Memory {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog_tiles::Error> {
        indexes.iter().map(|&i| self.0.get(i as usize).copied().ok_or(tlog_tiles::Error::IndexesNotInTree)).collect()
    }
}

/// (index, entry, audit path), as an answer carries them.
type Sent = (u64, Vec<u8>, Vec<Vec<u8>>);

const SHOP: &str = "environments/prod/workloads/shop";

/// A log of 12 entries, every third about shop (2, 5, 8, 11), the rest
/// about other workloads; its signed checkpoint and the key.
fn log() -> (Vec<Vec<u8>>, Memory, String, String) {
    let events: Vec<_> = (0..12)
        .map(|i| {
            let name = if i % 3 == 2 { "shop".to_string() } else { format!("other-{i}") };
            let payload = paved_proto::events::v1::envelope::Payload::RevisionDeployed(RevisionDeployed {
                workload: name.clone(),
                environment: "prod".into(),
                number: i,
                ..Default::default()
            });
            paved_stream::event::envelope(
                "provisioner",
                "paved.provisioner.v1.revision.deployed",
                format!("environments/prod/workloads/{name}"),
                payload,
            )
        })
        .collect();
    let refs: Vec<_> = events.iter().collect();
    let leaves = entry::leaves(&refs, "s", prost_types::Timestamp::default(), 0, &HashMap::new(), &mut HashMap::new());
    let entries: Vec<Vec<u8>> = leaves.iter().map(|l| l.entry.encode_to_vec()).collect();
    let mut memory = Memory(Vec::new());
    for (n, e) in entries.iter().enumerate() {
        let more = stored_hashes(n as u64, e, &memory).expect("hashes");
        memory.0.extend(more);
    }
    let key = LogKey::new("example.com/audit", &[3; 32]).expect("key");
    let note = key.checkpoint(12, tree_hash(12, &memory).expect("root")).expect("sign");
    (entries, memory, note, key.verifier_key())
}

fn answer(entries: &[Vec<u8>], memory: &Memory, indexes: &[u64]) -> Vec<Sent> {
    indexes
        .iter()
        .map(|&i| {
            let proof = prove_record(12, i, memory).expect("proof");
            (i, entries[i as usize].clone(), proof.iter().map(|h| h.0.to_vec()).collect())
        })
        .collect()
}

fn received(answer: &[Sent]) -> Vec<Received<'_>> {
    answer.iter().map(|(index, entry, hashes)| Received { index: *index, entry, hashes }).collect()
}

#[test]
fn a_whole_answer_checks_out() {
    let (entries, memory, note, key) = log();
    let full = answer(&entries, &memory, &[2, 5, 8, 11]);
    let (size, decoded) = check(note.as_bytes(), &key, &Chain::Workload(SHOP.into()), Before::Start, &received(&full)).expect("checks");
    assert_eq!(size, 12);
    assert_eq!(decoded.len(), 4);
    // The next page, continuing from 5.
    let rest = answer(&entries, &memory, &[8, 11]);
    check(note.as_bytes(), &key, &Chain::Workload(SHOP.into()), Before::Index(5), &received(&rest)).expect("second page");
}

#[test]
fn an_entry_left_out_is_named() {
    let (entries, memory, note, key) = log();
    let chain = Chain::Workload(SHOP.into());
    let omitted = answer(&entries, &memory, &[2, 8, 11]);
    let finding = check(note.as_bytes(), &key, &chain, Before::Start, &received(&omitted)).expect_err("omission");
    assert_eq!(finding.index, Some(8));
    assert!(finding.what.contains("names entry 5") && finding.what.contains("left out"), "{finding}");
    // The first left out.
    let late = answer(&entries, &memory, &[5, 8, 11]);
    let finding = check(note.as_bytes(), &key, &chain, Before::Start, &received(&late)).expect_err("first omitted");
    assert_eq!(finding.index, Some(5));
}

#[test]
fn a_wrong_proof_a_foreign_entry_or_key_is_refused() {
    let (entries, memory, note, key) = log();
    let chain = Chain::Workload(SHOP.into());
    let mut forged = answer(&entries, &memory, &[2, 5]);
    forged[1].1[3] ^= 1;
    let finding = check(note.as_bytes(), &key, &chain, Before::Start, &received(&forged)).expect_err("forged");
    assert_eq!(finding.index, Some(5));
    assert!(finding.what.contains("inclusion proof"), "{finding}");
    let foreign = answer(&entries, &memory, &[3]);
    let finding = check(note.as_bytes(), &key, &chain, Before::Unchecked, &received(&foreign)).expect_err("foreign");
    assert!(finding.what.contains("not \"environments/prod/workloads/shop\""), "{finding}");
    let other = LogKey::new("example.com/audit", &[4; 32]).expect("key").verifier_key();
    assert!(check(note.as_bytes(), &other, &chain, Before::Start, &[]).is_err());
}

#[test]
fn a_salt_must_open_the_commitment() {
    let (_, _, note, key) = log();
    let chain = entry::commitment(&[9; 32], "dora");
    let good = Chain::Actor { chain: chain.clone(), person: Some(("dora".into(), vec![9; 32])) };
    check(note.as_bytes(), &key, &good, Before::Start, &[]).expect("opens");
    let bad = Chain::Actor { chain, person: Some(("eve".into(), vec![9; 32])) };
    assert!(check(note.as_bytes(), &key, &bad, Before::Start, &[]).is_err());
}
