//! Questions with checkable answers, as an auditor asks them through
//! `paved audit query`: a workload's entries and an actor's, each proven
//! against the signed checkpoint; a server that leaves an entry out (its
//! query rows tampered with in the real PostgreSQL) is caught by the
//! back-pointers inside the entries; a person erased is no longer found,
//! and the log still verifies.

use crate::audit_log::start;
use paved_integration_tests::{authed, eventually, paved_with, postgres_database, redis_namespace, start_broker, text};
use paved_proto::audit::v1::{
    GetInclusionProofRequest, ListLogEntriesRequest, audit_service_client::AuditServiceClient, get_inclusion_proof_request::Leaf,
};
use paved_proto::events::v1::envelope::Payload;
use paved_proto::{provisioner::v1::RevisionDeployed, secrets_broker::v1::BrokerActed};
use sea_orm::ConnectionTrait;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

fn deployed(name: &str, number: i64) -> paved_stream::Envelope {
    let payload =
        Payload::RevisionDeployed(RevisionDeployed { workload: name.into(), environment: "prod".into(), number, ..Default::default() });
    paved_stream::event::envelope(
        "provisioner",
        "paved.provisioner.v1.revision.deployed",
        format!("environments/prod/workloads/{name}"),
        payload,
    )
}

fn dora_issued(n: u32) -> paved_stream::Envelope {
    let acted = BrokerActed {
        action: "token.issued".into(),
        actor: "dora".into(),
        target: format!("jti-{n}"),
        for_subject: "dora".into(),
        ..Default::default()
    };
    paved_stream::event::envelope(
        "secrets-broker",
        "paved.secrets_broker.v1.token.issued",
        format!("tokens/jti-{n}"),
        Payload::BrokerActed(acted),
    )
}

#[tokio::test]
async fn answers_are_proven_an_omission_is_caught_and_an_erased_person_is_gone() {
    let database = postgres_database("it_audit_query").await;
    let stream_url = redis_namespace("it_audit_query").await;
    let stream = paved_stream::open(&stream_url, 10_000).await.expect("stream");
    let shutdown = CancellationToken::new();
    let (broker, token, broker_task) = start_broker(&stream_url, &shutdown).await;
    let (addr, task) = start(&database, &stream_url, broker, &shutdown).await;
    let channel = eventually("the audit service", Duration::from_secs(30), || async {
        Channel::from_shared(format!("http://{addr}")).ok()?.connect().await.ok()
    })
    .await;
    let mut client = AuditServiceClient::new(authed(channel, &token));

    // One at a time, each in a checkpoint before the next: five deploys of
    // shop among others' and dora's, each appended at its own time.
    let events = [
        deployed("shop", 1),
        deployed("cart", 1),
        deployed("shop", 2),
        dora_issued(1),
        deployed("shop", 3),
        deployed("cart", 2),
        deployed("shop", 4),
        dora_issued(2),
        deployed("shop", 5),
    ];
    let mut index = Vec::new();
    for event in &events {
        let producer = if event.source == "provisioner" { "provisioner" } else { "secrets-broker" };
        stream.publish(&paved_stream::stream_name(producer), &paved_stream::event::encode(event)).await.expect("publish");
        let id = event.id.clone();
        let proof = eventually("the event in a checkpoint", Duration::from_secs(30), || {
            let (mut client, id) = (client.clone(), id.clone());
            async move { client.get_inclusion_proof(GetInclusionProofRequest { leaf: Some(Leaf::EventId(id)), tree_size: 0 }).await.ok() }
        })
        .await;
        index.push(proof.into_inner().index);
    }
    let shop: Vec<u64> = [0, 2, 4, 6, 8].iter().map(|&i| index[i]).collect();

    let endpoint = addr.to_string();
    let key = text(&paved_with("", &["audit", "key", "--endpoint", &endpoint]).await.stdout).trim().to_string();
    let query = |extra: Vec<String>| {
        let (endpoint, key, token) = (endpoint.clone(), key.clone(), token.clone());
        async move {
            let mut args: Vec<String> = ["audit", "query", "--endpoint", &endpoint, "--key", &key].iter().map(|s| s.to_string()).collect();
            args.extend(extra);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = paved_with(&token, &args).await;
            (out.status.code(), text(&out.stdout), text(&out.stderr))
        }
    };
    let shop_args =
        |more: &[&str]| -> Vec<String> { ["--workload", "shop", "--env", "prod"].iter().chain(more).map(|s| s.to_string()).collect() };

    let (code, out, err) = query(shop_args(&["--output", "json"])).await;
    assert_eq!(code, Some(0), "{out}{err}");
    let rows: Vec<serde_json::Value> = serde_json::from_str(&out).expect("json");
    assert_eq!(rows.iter().map(|r| r["index"].as_u64().expect("index")).collect::<Vec<_>>(), shop);
    assert!(err.contains("verified: 5 entries of environments/prod/workloads/shop"), "{err}");
    let appended: Vec<i64> = rows.iter().map(|r| r["append_time"].as_i64().expect("time")).collect();
    assert!(appended.windows(2).all(|w| w[0] < w[1]), "each appended at its own time: {appended:?}");
    let (code, out, _) = query(shop_args(&[])).await;
    assert_eq!(code, Some(0));
    assert_eq!(out.lines().filter(|l| l.contains("revision.deployed")).count(), 5, "{out}");

    // The server leaves shop's third deploy out of its answer: caught, and
    // the entry that points past it named.
    let db = sea_orm::Database::connect(&database).await.expect("the audit database");
    let hide = |on: bool| {
        let db = db.clone();
        let sql = if on {
            format!("UPDATE audit_entries SET workload = 'hidden' WHERE leaf_index = {}", shop[2])
        } else {
            format!("UPDATE audit_entries SET workload = 'environments/prod/workloads/shop' WHERE leaf_index = {}", shop[2])
        };
        async move { db.execute_unprepared(&sql).await.expect("tamper") }
    };
    hide(true).await;
    let (code, out, err) = query(shop_args(&[])).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(
        err.contains(&format!("entry {}: it names entry {} as the previous entry", shop[3], shop[2])) && err.contains("left out"),
        "{err}"
    );
    // Asked from the hidden entry's time on, the answer starts one later:
    // the entry before its first is not older than the bound.
    let since = chrono::DateTime::from_timestamp_millis(appended[2]).expect("time").to_rfc3339();
    let (code, _, err) = query(shop_args(&["--since", &since])).await;
    assert_eq!(code, Some(1));
    assert!(err.contains(&format!("entry {}, the one before the answer's first, was appended after --since", shop[2])), "{err}");
    hide(false).await;
    let (code, out, err) = query(shop_args(&["--since", &since, "--output", "json"])).await;
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(serde_json::from_str::<Vec<serde_json::Value>>(&out).expect("json").len(), 3);

    // dora's entries hold a commitment, never the name.
    let (code, out, err) = query(vec!["--actor".into(), "dora".into()]).await;
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out.lines().filter(|l| l.contains("token.issued")).count(), 2, "{out}");
    assert!(!out.contains("dora"), "the name is in the answer: {out}");
    let leaves = client.list_log_entries(ListLogEntriesRequest { start: 0, count: 1000 }).await.expect("entries").into_inner().entries;
    assert!(leaves.iter().all(|l| !l.windows(4).any(|w| w == b"dora")), "a leaf holds the name");

    // Erased: the log and its proofs stand, dora is found no more.
    let erase = || paved_with(&token, &["audit", "erase", "--subject", "dora", "--endpoint", &endpoint, "--output", "json"]);
    let out = erase().await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let erased: serde_json::Value = serde_json::from_slice(&out.stdout).expect("erase JSON");
    assert!(erased["subject"] == "dora" && erased["entries"] == 2 && erased["commitment"].is_string(), "{erased}");
    let (code, out, err) = query(vec!["--actor".into(), "dora".into()]).await;
    assert_eq!((code, out.as_str()), (Some(0), ""), "{err}");
    assert!(err.contains("no entries"), "{err}");
    let out = erase().await;
    assert!(!out.status.success() && text(&out.stderr).contains("no salt for dora"), "{}", text(&out.stderr));
    let out = paved_with(&token, &["audit", "verify", "--endpoint", &endpoint, "--key", &key]).await;
    assert!(text(&out.stdout).starts_with("verified: "), "{}", text(&out.stdout));

    shutdown.cancel();
    task.await.expect("task").expect("clean stop");
    broker_task.await.expect("broker").expect("clean stop");
}
