//! The audit service's transparency log, as an outside verifier reads it:
//! events published on the real stream (Redis) become leaves of one tree
//! on the real PostgreSQL; the checkpoint verifies with the verifier key
//! alone (the `signed_note` crate's verifier); the tiles and entry bundles
//! served over plain HTTP rebuild the signed root (checked by the
//! `tlog_tiles` crate's tile reader and by a separate RFC 6962 hash here);
//! gRPC proofs check; a restart keeps the tree and extends it.

use paved_integration_tests::{audit_options, authed, eventually, http_get, postgres_database, redis_namespace, start_broker};
use paved_proto::audit::v1::{
    GetCheckpointRequest, GetConsistencyProofRequest, GetInclusionProofRequest, GetLogKeyRequest, ListLogEntriesRequest, LogEntry,
    audit_service_client::AuditServiceClient, get_inclusion_proof_request::Leaf,
};
use paved_proto::events::v1::envelope::Payload;
use paved_proto::provisioner::v1::WorkloadRegistered;
use paved_service::{BasicConfig, run_consumer};
use prost::Message;
use sha2::{Digest, Sha256};
use std::{collections::HashMap, net::SocketAddr, time::Duration};
use tlog_tiles::{Checkpoint, Hash, Tile, TileHashReader, TileReader, check_record, check_tree, record_hash};
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;
use tonic_types::StatusExt;

/// RFC 6962's Merkle tree hash, written out: the check does not rest on
/// the code that built the tree.
fn mth(leaves: &[Vec<u8>]) -> [u8; 32] {
    match leaves.len() {
        0 => Sha256::digest([]).into(),
        1 => Sha256::new().chain_update([0u8]).chain_update(&leaves[0]).finalize().into(),
        n => {
            // The largest power of two below n.
            let mut k = 1;
            while k * 2 < n {
                k *= 2;
            }
            Sha256::new().chain_update([1u8]).chain_update(mth(&leaves[..k])).chain_update(mth(&leaves[k..])).finalize().into()
        }
    }
}

/// Tiles fetched over HTTP, handed to the crate's verifying tile reader.
struct Fetched(HashMap<(u8, u64, u32), Vec<u8>>);

impl TileReader for Fetched {
    fn height(&self) -> u8 {
        8
    }

    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, tlog_tiles::Error> {
        tiles.iter().map(|t| self.0.get(&(t.level(), t.level_index(), t.width())).cloned().ok_or(tlog_tiles::Error::InvalidTile)).collect()
    }

    fn save_tiles(&self, _: &[Tile], _: &[Vec<u8>]) {}
}

/// `tile/<L>/<N>[.p/<W>]` as tlog-tiles writes it.
fn tile_path(level: &str, n: u64, width: u64) -> String {
    let partial = if width == 256 { String::new() } else { format!(".p/{width}") };
    format!("tile/{level}/{n:03}{partial}")
}

pub(crate) async fn start(
    database: &str,
    stream: &str,
    broker: SocketAddr,
    shutdown: &CancellationToken,
) -> (SocketAddr, tokio::task::JoinHandle<anyhow::Result<()>>) {
    start_with(database, stream, broker, shutdown, audit_options()).await
}

pub(crate) async fn start_with(
    database: &str,
    stream: &str,
    broker: SocketAddr,
    shutdown: &CancellationToken,
    options: paved_audit::Options,
) -> (SocketAddr, tokio::task::JoinHandle<anyhow::Result<()>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let common = paved_integration_tests::service_common(addr, broker, database, stream);
    let task = tokio::spawn(run_consumer::<paved_audit::Audit>(BasicConfig { common, options }, listener, shutdown.clone()));
    (addr, task)
}

pub(crate) async fn publish(stream: &paved_stream::SharedStream, producer: &str, subjects: impl Iterator<Item = String>) -> Vec<String> {
    let mut ids = Vec::new();
    for subject in subjects {
        let event = paved_stream::event::envelope(producer, "t", subject, Payload::WorkloadRegistered(WorkloadRegistered::default()));
        stream.publish(&paved_stream::stream_name(producer), &paved_stream::event::encode(&event)).await.expect("publish");
        ids.push(event.id);
    }
    ids
}

/// The event ids of every leaf, in order, once all of `ids` are among them.
pub(crate) async fn leaves_once_all_in(
    client: &AuditServiceClient<paved_grpc::client::AuthChannel>,
    ids: &[String],
    timeout: Duration,
) -> Vec<String> {
    eventually(&format!("all {} events in the log", ids.len()), timeout, || {
        let mut client = client.clone();
        async move {
            let mut leaves: Vec<String> = Vec::new();
            loop {
                let request = ListLogEntriesRequest { start: leaves.len() as u64, count: 1_000 };
                let page = client.list_log_entries(request).await.ok()?.into_inner();
                if page.entries.is_empty() {
                    break;
                }
                leaves.extend(page.entries.iter().map(|e| LogEntry::decode(&e[..]).expect("entry").event.expect("event").id));
            }
            let seen: std::collections::HashSet<&String> = leaves.iter().collect();
            ids.iter().all(|id| seen.contains(id)).then_some(leaves)
        }
    })
    .await
}

/// The `paved-audit` binary on `addr`, as production runs it.
pub(crate) struct AuditProcess {
    pub(crate) child: tokio::process::Child,
    addr: SocketAddr,
    database: String,
    stream: String,
    broker: SocketAddr,
}

impl AuditProcess {
    pub(crate) fn spawn(addr: SocketAddr, database: &str, stream: &str, broker: SocketAddr) -> Self {
        let child = paved_integration_tests::clean_command("paved-audit")
            .env("PAVED_LISTEN", addr.to_string())
            .env("PAVED_DATABASE_URL", database)
            .env("PAVED_STREAM_URL", stream)
            .env("PAVED_BROKER_URL", format!("http://{broker}"))
            .env("PAVED_ROOT_KEY", paved_integration_tests::ROOT_KEY)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start paved-audit");
        Self { child, addr, database: database.into(), stream: stream.into(), broker }
    }

    /// SIGKILL, then started again on the same settings.
    pub(crate) async fn kill_and_restart(&mut self) {
        self.child.start_kill().expect("SIGKILL");
        self.child.wait().await.expect("killed");
        *self = Self::spawn(self.addr, &self.database, &self.stream, self.broker);
    }
}

/// Waits for a signed checkpoint of at least `size` leaves: (note, checkpoint).
pub(crate) async fn checkpoint_of(addr: SocketAddr, size: u64) -> (String, Checkpoint) {
    eventually(&format!("a checkpoint of {size} entries"), Duration::from_secs(60), || async move {
        let (status, headers, body) = http_get(&format!("http://{addr}/audit/log/checkpoint")).await;
        if !status.is_success() {
            return None;
        }
        assert_eq!(headers.get("cache-control").map(|v| v.to_str().unwrap_or_default()), Some("no-store"));
        let note = String::from_utf8(body).expect("a note is text");
        let text = signed_note::Note::from_bytes(note.as_bytes()).expect("a signed note");
        let checkpoint = Checkpoint::from_bytes(text.text()).expect("a tlog checkpoint");
        (checkpoint.size() >= size).then_some((note, checkpoint))
    })
    .await
}

#[tokio::test]
async fn the_log_verifies_from_its_tiles_and_proofs_and_survives_a_restart() {
    let database = postgres_database("it_audit_log").await;
    let stream_url = redis_namespace("it_audit_log").await;
    let stream = paved_stream::open(&stream_url, 10_000).await.expect("stream");
    let shutdown = CancellationToken::new();
    let (broker, token, broker_task) = start_broker(&stream_url, &shutdown).await;
    let audit_shutdown = shutdown.child_token();
    let (addr, task) = start(&database, &stream_url, broker, &audit_shutdown).await;

    // 600 events on two producers' streams: past two full tiles.
    let mut ids = publish(&stream, "provisioner", (0..400).map(|i| format!("w{i}"))).await;
    ids.extend(publish(&stream, "canary-analyzer", (0..200).map(|i| format!("c{i}"))).await);
    // The broker's own events (its token) land in the log too: wait for ours.
    let channel = eventually("the audit service", Duration::from_secs(30), || async {
        Channel::from_shared(format!("http://{addr}")).ok()?.connect().await.ok()
    })
    .await;

    // The key, from an open method: no token.
    let key = eventually("the log's key", Duration::from_secs(30), || {
        let mut open = AuditServiceClient::new(channel.clone());
        async move { open.get_log_key(GetLogKeyRequest {}).await.ok() }
    })
    .await
    .into_inner();
    assert_eq!(key.origin, "paved/audit");
    let verifier = key.verifier_keys[0].clone();
    assert!(verifier.starts_with("paved/audit+"), "{verifier}");

    let mut client = AuditServiceClient::new(authed(channel.clone(), &token));
    // The broker's events count too: wait for the last of each of our
    // streams (each stream's order holds) to be in a checkpoint.
    for last in [&ids[399], &ids[599]] {
        eventually("our events in a checkpoint", Duration::from_secs(60), || {
            let (mut client, id) = (client.clone(), last.clone());
            async move { client.get_inclusion_proof(GetInclusionProofRequest { leaf: Some(Leaf::EventId(id)), tree_size: 0 }).await.ok() }
        })
        .await;
    }
    let (note, checkpoint) = checkpoint_of(addr, 600).await;
    let size = checkpoint.size();
    let verifiers = signed_note::VerifierList::new(vec![Box::new(signed_note::StandardVerifier::new(&verifier).expect("a verifier key"))]);
    signed_note::Note::from_bytes(note.as_bytes()).expect("note").verify(&verifiers).expect("the checkpoint verifies with the key alone");
    assert_eq!(checkpoint.origin(), "paved/audit");

    // Every entry, from the entry bundles; the last bundle partial.
    let mut leaves: Vec<Vec<u8>> = Vec::new();
    for n in 0..size.div_ceil(256) {
        let width = (size - n * 256).min(256);
        let (status, headers, body) = http_get(&format!("http://{addr}/audit/log/{}", tile_path("entries", n, width))).await;
        assert!(status.is_success(), "entries {n}: {status}");
        assert!(headers["cache-control"].to_str().expect("text").contains("immutable"));
        let mut rest = &body[..];
        while !rest.is_empty() {
            let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
            leaves.push(rest[2..2 + len].to_vec());
            rest = &rest[2 + len..];
        }
    }
    assert_eq!(leaves.len() as u64, size);
    assert_eq!(mth(&leaves), checkpoint.hash().0, "the entries hash to the signed root");
    // Each of our events once, in the order each stream gave them.
    let logged: Vec<String> = leaves.iter().map(|l| LogEntry::decode(&l[..]).expect("a LogEntry").event.expect("event").id).collect();
    let ours: Vec<&String> = logged.iter().filter(|id| ids.contains(id)).collect();
    assert_eq!(ours.len(), ids.len(), "every event once");
    let position = |id: &String| logged.iter().position(|l| l == id).expect("logged");
    assert!(ids[..400].windows(2).all(|w| position(&w[0]) < position(&w[1])), "a stream's order is kept");

    // The hash tiles, through the crate's reader, which checks each tile
    // against the signed root before it answers.
    let mut tiles = HashMap::new();
    for (level, hashes) in [(0u8, size), (1, size >> 8), (2, size >> 16)] {
        for n in 0..hashes.div_ceil(256) {
            let width = (hashes - n * 256).min(256);
            let (status, _, body) = http_get(&format!("http://{addr}/audit/log/{}", tile_path(&level.to_string(), n, width))).await;
            assert!(status.is_success(), "tile {level}/{n}: {status}");
            tiles.insert((level, n, u32::try_from(width).expect("small")), body);
        }
    }
    let fetched = Fetched(tiles);
    let reader = TileHashReader::new(size, *checkpoint.hash(), &fetched);
    assert_eq!(tlog_tiles::tree_hash(size, &reader).expect("tiles verify"), *checkpoint.hash());
    // A tile past the tree, and a path tlog-tiles would not write: 404.
    assert_eq!(http_get(&format!("http://{addr}/audit/log/tile/0/999")).await.0, 404);
    assert_eq!(http_get(&format!("http://{addr}/audit/log/tile/0/0")).await.0, 404);

    // An inclusion proof by event id, against the latest checkpoint.
    let proof = client
        .get_inclusion_proof(GetInclusionProofRequest { leaf: Some(Leaf::EventId(ids[450].clone())), tree_size: 0 })
        .await
        .expect("proof")
        .into_inner();
    let hashes: Vec<Hash> = proof.hashes.iter().map(|h| Hash(h.as_slice().try_into().expect("32 bytes"))).collect();
    let root = Hash(proof.checkpoint.as_ref().expect("checkpoint").root_hash.as_slice().try_into().expect("32 bytes"));
    check_record(&hashes, proof.tree_size, root, proof.index, record_hash(&proof.entry)).expect("inclusion checks");
    assert_eq!(LogEntry::decode(&proof.entry[..]).expect("entry").event.expect("event").id, ids[450]);
    // Past the tree: OUT_OF_RANGE, naming the size.
    let past = client
        .get_inclusion_proof(GetInclusionProofRequest { leaf: Some(Leaf::Index(0)), tree_size: 1_000_000 })
        .await
        .expect_err("beyond the log");
    assert_eq!(past.code(), tonic::Code::OutOfRange, "{past:?}");
    let info = past.get_error_details().error_info().cloned().expect("ErrorInfo");
    assert_eq!(info.reason, "BEYOND_LOG");
    assert!(info.metadata["size"].parse::<u64>().expect("a size") >= size);
    assert_eq!(past.get_error_details().bad_request().expect("violations").field_violations[0].field, "tree_size");

    // Entries over gRPC are the same bytes.
    let listed = client.list_log_entries(ListLogEntriesRequest { start: 256, count: 10 }).await.expect("entries").into_inner();
    assert_eq!(listed.entries, leaves[256..266]);

    // The service restarts on the same database and goes on with the tree.
    audit_shutdown.cancel();
    task.await.expect("task").expect("clean stop");
    let (addr, task) = start(&database, &stream_url, broker, &shutdown).await;
    let more = publish(&stream, "provisioner", (0..300).map(|i| format!("after{i}"))).await;
    let (_, later) = checkpoint_of(addr, size + 300).await;
    let channel = Channel::from_shared(format!("http://{addr}")).expect("uri").connect().await.expect("connect");
    let mut client = AuditServiceClient::new(authed(channel, &token));
    let consistency = client
        .get_consistency_proof(GetConsistencyProofRequest { from_size: size, to_size: later.size() })
        .await
        .expect("consistency")
        .into_inner();
    let hashes: Vec<Hash> = consistency.hashes.iter().map(|h| Hash(h.as_slice().try_into().expect("32 bytes"))).collect();
    check_tree(&hashes, later.size(), *later.hash(), size, *checkpoint.hash()).expect("the old tree is a prefix of the new");
    let latest = client.get_checkpoint(GetCheckpointRequest {}).await.expect("checkpoint").into_inner().checkpoint.expect("checkpoint");
    assert!(latest.size >= later.size());
    let last = client
        .get_inclusion_proof(GetInclusionProofRequest { leaf: Some(Leaf::EventId(more[299].clone())), tree_size: later.size() })
        .await
        .expect("proof")
        .into_inner();
    assert_eq!(last.tree_size, later.size());

    shutdown.cancel();
    task.await.expect("task").expect("clean stop");
    broker_task.await.expect("broker").expect("clean stop");
}

/// `paved audit verify` as an auditor runs it: online against a running
/// service whose database is tampered with one way after another, each
/// undone before the next; then offline over a copy (`paved audit fetch`).
#[tokio::test]
async fn verify_names_the_entry_that_was_changed_removed_or_moved_and_a_forged_checkpoint() {
    use paved_integration_tests::{paved_with, text};
    use sea_orm::ConnectionTrait;
    let database = postgres_database("it_audit_verify").await;
    let stream_url = redis_namespace("it_audit_verify").await;
    let stream = paved_stream::open(&stream_url, 10_000).await.expect("stream");
    let shutdown = CancellationToken::new();
    let (broker, token, broker_task) = start_broker(&stream_url, &shutdown).await;
    let (addr, task) = start(&database, &stream_url, broker, &shutdown).await;
    publish(&stream, "provisioner", (0..300).map(|i| format!("v{i}"))).await;
    checkpoint_of(addr, 300).await;
    let endpoint = addr.to_string();
    let key = {
        let out = paved_with("", &["audit", "key", "--endpoint", &endpoint]).await;
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout).trim().to_string()
    };
    let verify = || {
        let (endpoint, key, token) = (endpoint.clone(), key.clone(), token.clone());
        async move {
            let out = paved_with(&token, &["audit", "verify", "--endpoint", &endpoint, "--key", &key]).await;
            (out.status.code(), text(&out.stdout), text(&out.stderr))
        }
    };
    let (code, out, err) = verify().await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.starts_with("verified: "), "{out}");
    // The same for scripts.
    let json = |args: &[&str]| {
        let args: Vec<String> =
            args.iter().map(|a| a.to_string()).chain(["--output", "json", "--endpoint", &endpoint].map(String::from)).collect();
        let token = token.clone();
        async move {
            let out = paved_with(&token, &args.iter().map(String::as_str).collect::<Vec<_>>()).await;
            let json: serde_json::Value =
                serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {}", text(&out.stderr)));
            (out.status.code(), json)
        }
    };
    assert_eq!(json(&["audit", "key"]).await.1["verifier_key"], key.as_str());
    let (_, checkpoint) = json(&["audit", "checkpoint"]).await;
    assert!(
        checkpoint["size"].as_u64().is_some_and(|s| s >= 300) && checkpoint["note"].as_str().is_some_and(|n| n.contains("paved/audit")),
        "{checkpoint}"
    );
    let (code, verified) = json(&["audit", "verify", "--key", &key]).await;
    assert!(code == Some(0) && verified["verified"] == true && verified["entries"].as_u64().is_some_and(|n| n >= 300), "{verified}");

    let db = sea_orm::Database::connect(&database).await.expect("the audit database");
    let sql = |q: String| {
        let db = db.clone();
        async move { db.execute_unprepared(&q).await.unwrap_or_else(|e| panic!("{q}: {e}")) }
    };
    // One entry changed.
    sql("UPDATE log_leaves SET leaf = leaf || '\\x00'::bytea WHERE leaf_index = 5".into()).await;
    let (code, out, _) = verify().await;
    assert_eq!(code, Some(1), "{out}");
    assert!(out.starts_with("NOT verified: entry 5: does not hash to the leaf hash"), "{out}");
    let (code, verified) = json(&["audit", "verify", "--key", &key]).await;
    assert!(code == Some(1) && verified["verified"] == false, "{verified}");
    assert!(verified["finding"].as_str().is_some_and(|f| f.starts_with("entry 5: ")), "{verified}");
    sql("UPDATE log_leaves SET leaf = substring(leaf from 1 for length(leaf) - 1) WHERE leaf_index = 5".into()).await;
    assert_eq!(verify().await.0, Some(0), "undone");

    // Two entries swapped.
    let swap = |a: u64, b: u64| {
        format!(
            "UPDATE log_leaves SET leaf = CASE leaf_index WHEN {a} THEN (SELECT leaf FROM log_leaves WHERE leaf_index = {b}) \
             ELSE (SELECT leaf FROM log_leaves WHERE leaf_index = {a}) END WHERE leaf_index IN ({a}, {b})"
        )
    };
    sql(swap(3, 4)).await;
    let (code, out, _) = verify().await;
    assert_eq!(code, Some(1), "{out}");
    assert!(out.starts_with("NOT verified: entry 3: "), "{out}");
    sql(swap(3, 4)).await;
    assert_eq!(verify().await.0, Some(0), "undone");

    // A checkpoint forged: a tree signed by another key under the log's name.
    let forger = paved_audit::log::note::LogKey::new("paved/audit", &[9; 32]).expect("key");
    let note = forger.checkpoint(1_000_000, tlog_tiles::record_hash(b"forged")).expect("sign");
    sql(format!("INSERT INTO log_checkpoints (size, note, create_time_ms) VALUES (1000000, '{note}', 0)")).await;
    let (code, out, _) = verify().await;
    assert_eq!(code, Some(1), "{out}");
    assert!(out.starts_with("NOT verified: a checkpoint's signature does not verify with the key"), "{out}");
    sql("DELETE FROM log_checkpoints WHERE size = 1000000".into()).await;

    // A copy checks offline, and a copy with one byte changed does not.
    let dir = tempfile::tempdir().expect("temp dir");
    let copy = dir.path().to_str().expect("utf-8").to_string();
    let (code, fetched) = json(&["audit", "fetch", &copy]).await;
    assert!(
        code == Some(0) && fetched["size"].as_u64().is_some_and(|s| s >= 300) && fetched["tiles"].as_u64().is_some_and(|t| t > 0),
        "{fetched}"
    );
    let offline = || {
        let (copy, key) = (copy.clone(), key.clone());
        async move {
            let out = paved_with("", &["audit", "verify", "--offline", &copy, "--key", &key]).await;
            (out.status.code(), text(&out.stdout))
        }
    };
    assert_eq!(offline().await.0, Some(0));
    let flip = |file: std::path::PathBuf, at: usize| {
        let mut bytes = std::fs::read(&file).expect("a tile");
        bytes[at] ^= 1;
        std::fs::write(&file, bytes).expect("write");
    };
    // Past entry 0's length prefix and into its bytes.
    flip(dir.path().join("tile/entries/000"), 10);
    let (code, out) = offline().await;
    assert_eq!(code, Some(1), "{out}");
    assert!(out.starts_with("NOT verified: entry 0: "), "{out}");
    flip(dir.path().join("tile/entries/000"), 10);
    assert_eq!(offline().await.0, Some(0), "undone");
    // A hash tile above level 0, which clients' proofs read.
    flip(dir.path().join("tile/1/000.p/1"), 0);
    let (code, out) = offline().await;
    assert_eq!(code, Some(1), "{out}");
    assert!(out.starts_with("NOT verified: tile/1/000.p/1 is missing or is not the tile the entries make"), "{out}");

    // One entry removed, the rest moved up: the first moved one is named.
    sql("DELETE FROM log_leaves WHERE leaf_index = 7".into()).await;
    sql("UPDATE log_leaves SET leaf_index = -leaf_index WHERE leaf_index > 7".into()).await;
    sql("UPDATE log_leaves SET leaf_index = -leaf_index - 1 WHERE leaf_index < 0".into()).await;
    let (code, out, _) = verify().await;
    assert_eq!(code, Some(1), "{out}");
    assert!(out.starts_with("NOT verified: entry 7: "), "{out}");

    shutdown.cancel();
    task.await.expect("task").expect("clean stop");
    broker_task.await.expect("broker").expect("clean stop");
}

/// The `paved-audit` binary killed with SIGKILL while events pour in, then
/// started again: every event is in the log exactly once, and the log
/// verifies.
#[tokio::test]
async fn a_killed_audit_service_loses_and_duplicates_nothing() {
    use paved_integration_tests::{paved_with, text};
    let database = postgres_database("it_audit_kill").await;
    let stream_url = redis_namespace("it_audit_kill").await;
    let stream = paved_stream::open(&stream_url, 100_000).await.expect("stream");
    let shutdown = CancellationToken::new();
    let (broker, token, broker_task) = start_broker(&stream_url, &shutdown).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let mut audit = AuditProcess::spawn(addr, &database, &stream_url, broker);
    // 3,000 events, published while the service is killed and restarted.
    let publisher = {
        let stream = stream.clone();
        tokio::spawn(async move { publish(&stream, "provisioner", (0..3_000).map(|i| format!("k{i}"))).await })
    };
    let up = || async {
        eventually("paved-audit to listen", Duration::from_secs(30), || async {
            Channel::from_shared(format!("http://{addr}")).ok()?.connect().await.ok()
        })
        .await
    };
    up().await;
    checkpoint_of(addr, 300).await;
    audit.kill_and_restart().await;
    let ids = publisher.await.expect("publisher");
    let channel = up().await;
    let client = AuditServiceClient::new(authed(channel, &token));
    let logged = leaves_once_all_in(&client, &ids, Duration::from_secs(60)).await;
    let distinct: std::collections::HashSet<&String> = logged.iter().collect();
    assert_eq!(distinct.len(), logged.len(), "no event is two leaves");
    // Not asserted: the stream's order across the kill. Events the killed
    // process had taken but not appended come back once their claim
    // interval passes, after newer ones (docs/limits.md).
    checkpoint_of(addr, logged.len() as u64).await;
    let key = {
        let out = paved_with("", &["audit", "key", "--endpoint", &addr.to_string()]).await;
        text(&out.stdout).trim().to_string()
    };
    let out = paved_with(&token, &["audit", "verify", "--endpoint", &addr.to_string(), "--key", &key]).await;
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    audit.child.start_kill().expect("stop");
    shutdown.cancel();
    broker_task.await.expect("broker").expect("clean stop");
}
