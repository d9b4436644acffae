use super::*;
use paved_proto::{events::v1::AccessDenied, provisioner::v1::RevisionDeployed, secrets_broker::v1::BrokerActed};

fn broker(actor: &str, target: &str, for_subject: &str) -> Envelope {
    let acted = BrokerActed {
        action: "token.issued".into(),
        actor: actor.into(),
        target: target.into(),
        for_subject: for_subject.into(),
        ..Default::default()
    };
    paved_stream::event::envelope(
        "secrets-broker",
        "paved.secrets_broker.v1.token.issued",
        format!("tokens/{target}"),
        Payload::BrokerActed(acted),
    )
}

fn deployed(env: &str, name: &str) -> Envelope {
    let payload = Payload::RevisionDeployed(RevisionDeployed { workload: name.into(), environment: env.into(), ..Default::default() });
    paved_stream::event::envelope(
        "provisioner",
        "paved.provisioner.v1.revision.deployed",
        format!("environments/{env}/workloads/{name}"),
        payload,
    )
}

fn at() -> prost_types::Timestamp {
    paved_proto::timestamp_from_millis(1_765_000_000_000)
}

#[test]
fn people_are_names_not_the_platform_or_workloads() {
    assert!(is_person("dora"));
    assert!(!is_person("paved"));
    assert!(!is_person(""));
    assert!(!is_person("spiffe://paved/dev/hello"));
    let event = broker("dora", "jti-1", "spiffe://paved/dev/hello");
    assert_eq!(people(&event), vec!["dora"]);
}

#[test]
fn a_workload_is_the_subject_or_an_identity_the_broker_acted_for() {
    assert_eq!(workload(&deployed("prod", "shop")).as_deref(), Some("environments/prod/workloads/shop"));
    assert_eq!(workload(&broker("dora", "jti", "spiffe://paved/dev/hello")).as_deref(), Some("environments/dev/workloads/hello"));
    assert_eq!(workload(&broker("spiffe://paved/dev/hello", "jti", "")).as_deref(), Some("environments/dev/workloads/hello"));
    // A platform service is no workload, an environment alone neither.
    assert_eq!(workload(&broker("spiffe://paved/platform/provisioner", "jti", "")), None);
    let mut env_only = deployed("dev", "x");
    env_only.subject = "environments/dev".into();
    assert_eq!(workload(&env_only), None);
}

#[test]
fn a_commitment_depends_on_salt_and_name_and_opens_with_both() {
    let a = commitment(&[1; 32], "dora");
    assert!(a.starts_with("sha256:") && a.len() == 7 + 64, "{a}");
    assert_eq!(a, commitment(&[1; 32], "dora"));
    assert_ne!(a, commitment(&[2; 32], "dora"));
    assert_ne!(a, commitment(&[1; 32], "dorb"));
}

#[test]
fn leaves_commit_to_people_in_the_entry_and_the_event_and_chain_back() {
    let salts = HashMap::from([("dora".to_string(), vec![7u8; 32])]);
    let dora = commitment(&[7; 32], "dora");
    let (a, b, c) = (deployed("prod", "shop"), broker("dora", "jti-1", "spiffe://paved/prod/shop"), deployed("prod", "shop"));
    let d = paved_stream::event::envelope(
        "provisioner",
        "paved.events.v1.access.denied",
        "methods/x".into(),
        Payload::AccessDenied(AccessDenied { subject: "dora".into(), ..Default::default() }),
    );
    // Leaf 9 of the shop chain came before.
    let mut heads = HashMap::from([(chain_key(Chain::Workload, "environments/prod/workloads/shop"), 9)]);
    let leaves = leaves(&[&a, &b, &c, &d], "s", at(), 10, &salts, &mut heads);
    let entries: Vec<&LogEntry> = leaves.iter().map(|l| &l.entry).collect();
    assert_eq!(entries.iter().map(|e| e.workload_prev).collect::<Vec<_>>(), [Some(9), Some(10), Some(11), None]);
    assert_eq!(entries.iter().map(|e| e.actor_prev).collect::<Vec<_>>(), [None, None, None, Some(11)]);
    assert_eq!(entries[1].actor, dora);
    assert_eq!(entries[3].actor, dora);
    let Some(Payload::BrokerActed(acted)) = &entries[1].event.as_ref().expect("event").payload else { panic!("not broker") };
    assert_eq!(acted.actor, dora);
    // A workload's identity is no person: kept as it was.
    assert_eq!(acted.for_subject, "spiffe://paved/prod/shop");
    let Some(Payload::AccessDenied(denied)) = &entries[3].event.as_ref().expect("event").payload else { panic!("not denied") };
    assert_eq!(denied.subject, dora);
    // Nothing of the name is left in any leaf's bytes.
    for entry in &entries {
        let bytes = prost::Message::encode_to_vec(*entry);
        assert!(!bytes.windows(4).any(|w| w == b"dora"), "the name is in a leaf");
    }
    assert_eq!(heads.get(&chain_key(Chain::Workload, "environments/prod/workloads/shop")), Some(&12));
    assert_eq!(heads.get(&chain_key(Chain::Actor, &dora)), Some(&13));
}

#[test]
fn names_in_free_text_are_committed_as_words_only() {
    assert_eq!(
        replace_word("dora lacks scope issue:subjects to issue for mallory", "dora", "C"),
        "C lacks scope issue:subjects to issue for mallory"
    );
    assert_eq!(replace_word("dorado and dora-x and dora.smith and dora.", "dora", "C"), "dorado and dora-x and dora.smith and C.");
    let salts = HashMap::from([("dora".to_string(), vec![1u8; 32]), ("mallory".to_string(), vec![2u8; 32])]);
    let mut event = broker("dora", "", "mallory");
    if let Some(Payload::BrokerActed(acted)) = &mut event.payload {
        acted.reason = "dora lacks scope issue:subjects to issue for mallory".into();
    }
    let leaf = &leaves(&[&event], "s", at(), 0, &salts, &mut HashMap::new())[0];
    let Some(Payload::BrokerActed(acted)) = &leaf.entry.event.as_ref().expect("event").payload else { panic!("not broker") };
    assert_eq!(
        acted.reason,
        format!("{} lacks scope issue:subjects to issue for {}", commitment(&[1; 32], "dora"), commitment(&[2; 32], "mallory"))
    );
}
