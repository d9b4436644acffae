//! The seeds every target starts from: the repository's own specs and
//! overlays, and tokens, events, attestations, checkpoints and bundles
//! made here as the platform makes them, so that the fuzzer begins past
//! the first check of each parser. `cargo xtask fuzz` writes them into
//! `fuzz/corpus/<target>/seed-<name>` before a run.

pub use crate::audit::verifier_key;
use crate::audit::{LOG_NAME, LOG_SEED, WITNESS_NAME, WITNESS_SEED};
use crate::look::{ANALYSES, BASE, counts, look};
use base64::{Engine, engine::general_purpose::STANDARD as B64};
use paved_audit::log::{
    bundle::{Bundle, BundleEntry, FORMAT},
    cosign::Cosigner,
    entry,
    note::LogKey,
    verify,
};
use paved_proto::{
    canary_analyzer::v1::JudgeLookRequest,
    events::v1::{AccessDenied, Envelope, envelope::Payload},
    provisioner::v1::{RevisionDeployed, RevisionStateChanged, WorkloadPowered},
    secrets_broker::v1::BrokerActed,
    timestamp_from_millis,
};
use prost::Message;
use std::collections::HashMap;

/// A seed: its target, its file name and its bytes.
pub type Seed = (&'static str, String, Vec<u8>);

pub fn seeds() -> Vec<Seed> {
    let mut all = Vec::new();
    let mut add = |target: &'static str, name: &str, bytes: Vec<u8>| all.push((target, format!("seed-{name}"), bytes));
    for (name, text) in SPECS {
        add("spec", name, text.as_bytes().to_vec());
    }
    for (name, text) in SCORES {
        add("score", name, text.as_bytes().to_vec());
    }
    for (name, base, overlay) in OVERLAYS {
        add("overlay", name, format!("{base}\0{overlay}").into_bytes());
    }
    for (i, analysis) in ANALYSES.iter().enumerate() {
        if let Some(section) = analysis.strip_prefix("analysis:\n") {
            let dedented: String = section.lines().map(|l| format!("{}\n", l.strip_prefix("  ").unwrap_or(l))).collect();
            add("analysis", &format!("analysis-{i}"), dedented.into_bytes());
        }
    }
    for pick in 0..ANALYSES.len() {
        // The spec it sends stands for any pick.
        for (name, looks) in rollouts().into_iter().filter(|(name, _)| pick == 0 || *name != "sent-spec") {
            let mut bytes = vec![pick as u8];
            for look in looks {
                bytes.extend(look.encode_length_delimited_to_vec());
            }
            add("judge_look", &format!("{name}-{pick}"), bytes);
        }
    }
    for (name, token) in tokens() {
        add("token", name, token.into_bytes());
    }
    for (name, event) in events() {
        add("envelope", name, event.encode_to_vec());
    }
    for (name, fields) in attestations() {
        add("attestation", name, fields.join("\0").into_bytes());
    }
    let (note, cosigned, bundle, entries) = audit_log();
    add("checkpoint", "checkpoint", note.into_bytes());
    add("checkpoint", "cosigned", cosigned.into_bytes());
    add("checkpoint", "entry-bundle", entries);
    add("audit_bundle", "bundle", bundle);
    all
}

const SPECS: &[(&str, &str)] = &[
    ("hello", include_str!("../../../examples/hello/paved.yaml")),
    ("http", include_str!("../../../cli/src/init/http.paved.yaml")),
    ("worker", include_str!("../../../cli/src/init/worker.paved.yaml")),
    ("audit", include_str!("../../../deploy/platform/audit.yaml")),
    ("canary-analyzer", include_str!("../../../deploy/platform/canary-analyzer.yaml")),
    ("cost-scheduler", include_str!("../../../deploy/platform/cost-scheduler.yaml")),
    ("secrets-broker", include_str!("../../../deploy/platform/secrets-broker.yaml")),
    ("web", include_str!("../../k8s/tests/golden/web.paved.yaml")),
    ("full", FULL),
];

/// Every section of a spec, as `docs/spec.md` shows them.
const FULL: &str = "name: shop\nteam: web\nartifact: sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n\
port: 8080\nhealth: {path: /healthz, period: 1s, timeout: 1s, failure_threshold: 3, startup_timeout: 30s}\n\
env: {DB: '${secret:db-password}', MODE: prod}\nreplicas: 2\n\
resources: {requests: {cpu: 100m, memory: 64Mi}, limits: {cpu: 500m, memory: 128Mi}}\n\
security: {run_as_root: false, privileged: false}\nsecrets: [db-password]\ndatabases: [orders]\ncertificate: true\n\
rollout: {steps: [1, 5, 25, 50, 100], interval: 30s, max_error_rate: 0.01, max_p99_latency: 500ms}\n\
analysis:\n  alpha: 0.01\n  max_extensions: 3\n  metrics:\n    errors: {kind: error-rate, slo: 0.01, max_change: 0.5, critical: true}\n\
schedule: {uptime: 'Mon-Fri 07:30-20:30 Europe/Berlin', idle_after: 30m}\n";

const SCORES: &[(&str, &str)] = &[
    ("hello-score", include_str!("../../../examples/hello-score/score.yaml")),
    ("testdata", include_str!("../../spec/testdata/hello.score.yaml")),
];

const OVERLAYS: &[(&str, &str, &str)] = &[
    ("hello-prod", include_str!("../../../examples/hello/paved.yaml"), include_str!("../../../cli/src/init/paved.prod.yaml")),
    ("hello-dev", include_str!("../../../examples/hello/paved.yaml"), include_str!("../../../cli/src/init/paved.dev.yaml")),
    ("hello-staging", include_str!("../../../examples/hello/paved.yaml"), include_str!("../../../cli/src/init/paved.staging.yaml")),
    ("score-qa", include_str!("../../../examples/hello-score/score.yaml"), include_str!("../../../examples/hello-score/score.qa.yaml")),
    ("schedule", BASE, "schedule: {uptime: 'Mon-Fri 08:00-18:00 UTC'}\n"),
];

/// Looks of rollouts: a good canary, a bad one, an idle step, a step
/// over two intervals, and one whose first look sends its spec, with a
/// infinity then a failed query among its Prometheus values.
fn rollouts() -> Vec<(&'static str, Vec<JudgeLookRequest>)> {
    let mut sent: Vec<JudgeLookRequest> = (1..=3).map(|i| look(i, 0, counts(200, 0, 10), counts(200, 0, 10), i == 3)).collect();
    sent[0].spec_yaml = format!("{BASE}{}", ANALYSES[3]);
    sent[0].spec_path = "paved.yaml".into();
    (sent[1].baseline_weight, sent[2].baseline_weight) = (21, 23);
    vec![
        ("sent-spec", sent),
        ("good", (1..=3).map(|i| look(i, (i - 1) as u32, counts(200, 0, 10), counts(200, 0, 10), true)).collect()),
        ("bad", (1..=3).map(|i| look(i, 0, counts(200, 60, 30), counts(200, 0, 10), i == 3)).collect()),
        ("idle", vec![look(1, 0, counts(0, 0, 0), counts(0, 0, 0), true)]),
        ("extended", (1..=4).map(|i| look(i, 0, counts(5, 0, 10), counts(5, 0, 10), i % 2 == 0)).collect()),
    ]
}

fn tokens() -> Vec<(&'static str, String)> {
    let (issuer, _) = crate::token::keys();
    let claims = |aud: &str, jti: &str, exp: i64| paved_token::Claims {
        sub: "spiffe://paved/dev/web".into(),
        aud: aud.into(),
        scp: vec!["secrets:read:web/*".into(), "deploy:dev".into()],
        iat: 1_800_000_000,
        exp,
        ren: 1_800_003_600,
        jti: jti.into(),
        kid: String::new(),
        // A workload identity's proved artifact.
        dig: format!("sha256:{}", "ab".repeat(32)),
    };
    vec![
        ("valid", issuer.sign(claims("paved.secrets_broker", "a1", 1_800_000_600))),
        ("revoked", issuer.sign(claims("paved.provisioner", "revoked", 1_800_000_600))),
        ("expired", issuer.sign(claims("paved.provisioner", "a2", 1_700_000_000))),
        ("audience", issuer.sign(claims("paved.audit", "a3", 1_800_000_600))),
        ("bootstrap", format!("pvb1.{}", "A".repeat(43))),
    ]
}

fn events() -> Vec<(&'static str, Envelope)> {
    let event = |kind: &str, subject: &str, payload: Payload| Envelope {
        id: "0190c3b4-0000-7000-8000-000000000001".into(),
        source: "paved.provisioner".into(),
        r#type: kind.into(),
        subject: subject.into(),
        time: Some(timestamp_from_millis(1_800_000_000_000)),
        traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into(),
        tracestate: String::new(),
        payload: Some(payload),
    };
    let web = "environments/dev/workloads/web";
    vec![
        (
            "deployed",
            event(
                "paved.provisioner.v1.revision.deployed",
                web,
                Payload::RevisionDeployed(RevisionDeployed {
                    workload: "web".into(),
                    environment: "dev".into(),
                    number: 3,
                    ..Default::default()
                }),
            ),
        ),
        (
            "state",
            event(
                "paved.provisioner.v1.revision.state_changed",
                web,
                Payload::RevisionStateChanged(RevisionStateChanged {
                    workload: "web".into(),
                    environment: "dev".into(),
                    revision_id: "r3".into(),
                    to: 3,
                    message: "healthy".into(),
                    ..Default::default()
                }),
            ),
        ),
        (
            "acted",
            event(
                "paved.secrets_broker.v1.broker.acted",
                "secrets/web/db",
                Payload::BrokerActed(BrokerActed {
                    actor: "dora.smith".into(),
                    for_subject: "spiffe://paved/dev/web".into(),
                    target: "web/db".into(),
                    reason: "dora.smith read web/db for spiffe://paved/dev/web".into(),
                    ..Default::default()
                }),
            ),
        ),
        (
            "denied",
            event(
                "paved.secrets_broker.v1.access.denied",
                "secrets/web/db",
                Payload::AccessDenied(AccessDenied {
                    subject: "eve".into(),
                    message: "eve may not read web/db".into(),
                    ..Default::default()
                }),
            ),
        ),
        (
            "powered",
            event(
                "paved.cost_scheduler.v1.workload.powered",
                web,
                Payload::WorkloadPowered(WorkloadPowered {
                    actor: "ops@example.com".into(),
                    note: "asleep for ops@example.com".into(),
                    ..Default::default()
                }),
            ),
        ),
    ]
}

fn attestations() -> Vec<(&'static str, Vec<String>)> {
    let private = crate::attestation::PRIVATE;
    let Ok(public) = paved_attest::public_key(private) else { panic!("the fixed key") };
    let digest = format!("sha256:{}", "ab".repeat(32));
    [
        ("sbom", "sbom", r#"{"components": [{"name": "tokio", "version": "1.48.0"}]}"#),
        ("vulnerabilities", "vulnerabilities", r#"{"findings": [{"id": "CVE-2026-0001", "cvss": 7.5}]}"#),
        ("coverage", "coverage", r#"{"ratio": 0.82}"#),
    ]
    .into_iter()
    .map(|(name, kind, payload)| {
        let Ok(signature) = paved_attest::sign(private, &digest, kind, payload.as_bytes()) else { panic!("sign") };
        (name, vec![digest.clone(), kind.into(), payload.into(), signature, public.clone(), digest.clone(), "sbom".into(), "{}".into()])
    })
    .collect()
}

/// Every stored hash of a small tree, in memory.
struct Memory(Vec<tlog_tiles::Hash>);

impl tlog_tiles::HashReader for Memory {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<tlog_tiles::Hash>, tlog_tiles::Error> {
        indexes.iter().map(|&i| self.0.get(i as usize).copied().ok_or(tlog_tiles::Error::IndexesNotInTree)).collect()
    }
}

/// A log of six entries about two workloads, as the audit service builds
/// it: its checkpoint, the checkpoint cosigned by a witness, a bundle of
/// `web`'s revision 1 and an entry bundle of the tiles.
fn audit_log() -> (String, String, Vec<u8>, Vec<u8>) {
    let events: Vec<Envelope> = (0..6)
        .map(|i| {
            let name = if i % 2 == 0 { "web" } else { "shop" };
            let payload = Payload::RevisionDeployed(RevisionDeployed {
                workload: name.into(),
                environment: "prod".into(),
                number: i / 2 + 1,
                ..Default::default()
            });
            // Fixed ids and times: the committed seeds stay what this makes.
            Envelope {
                id: format!("0190c3b4-0000-7000-8000-00000000000{i}"),
                source: "paved.provisioner".into(),
                r#type: "paved.provisioner.v1.revision.deployed".into(),
                subject: format!("environments/prod/workloads/{name}"),
                time: Some(timestamp_from_millis(1_800_000_000_000 + i * 1000)),
                payload: Some(payload),
                ..Envelope::default()
            }
        })
        .collect();
    let refs: Vec<&Envelope> = events.iter().collect();
    let leaves = entry::leaves(&refs, "s", prost_types::Timestamp::default(), 0, &HashMap::new(), &mut HashMap::new());
    let entries: Vec<Vec<u8>> = leaves.iter().map(|l| l.entry.encode_to_vec()).collect();
    let mut memory = Memory(Vec::new());
    for (n, e) in entries.iter().enumerate() {
        let Ok(more) = tlog_tiles::stored_hashes(n as u64, e, &memory) else { panic!("hashes") };
        memory.0.extend(more);
    }
    let size = entries.len() as u64;
    let Ok(root) = tlog_tiles::tree_hash(size, &memory) else { panic!("root") };
    let Ok(note) = LogKey::new(LOG_NAME, &LOG_SEED).and_then(|k| k.checkpoint(size, root)) else { panic!("checkpoint") };
    let Ok(mut witness) = Cosigner::new(WITNESS_NAME, &WITNESS_SEED) else { panic!("witness") };
    witness.timestamp = 1_800_000_000;
    let Ok(mut cosigned) = signed_note::Note::from_bytes(note.as_bytes()) else { panic!("note") };
    if cosigned.add_sigs(&[&witness]).is_err() {
        panic!("cosign");
    }
    let cosigned = String::from_utf8_lossy(&cosigned.to_bytes()).into_owned();
    // web's revision 1 and everything after it on web's chain: 0, 2, 4.
    let bundle_entries = [0u64, 2, 4]
        .iter()
        .map(|&i| {
            let Ok(proof) = tlog_tiles::prove_record(size, i, &memory) else { panic!("proof") };
            BundleEntry { index: i, entry: B64.encode(&entries[i as usize]), hashes: proof.iter().map(|h| B64.encode(h.0)).collect() }
        })
        .collect();
    let bundle = Bundle {
        format: FORMAT.into(),
        workload: "environments/prod/workloads/web".into(),
        revision: 1,
        checkpoint: note.clone(),
        entries: bundle_entries,
    };
    let Ok(bundle) = serde_json::to_vec_pretty(&bundle) else { panic!("bundle") };
    let Some(tile_bundle) = verify::bundle(&entries) else { panic!("entry bundle") };
    (note, cosigned, bundle, tile_bundle)
}
