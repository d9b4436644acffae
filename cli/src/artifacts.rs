//! `paved artifact push|get|keygen|sign|verify`: push to the
//! content-addressed store, keys, signed attestations and their
//! verification.

use crate::{
    DEFAULT_ENDPOINT,
    client::{connect, failed},
    output::{Format, print},
};
use anyhow::Context;
use paved_grpc::client::AuthChannel;
use paved_proto::provisioner::v1::{
    Artifact, AttachAttestationRequest, GetArtifactRequest, PushArtifactRequest, PushArtifactResponse,
    provisioner_service_client::ProvisionerServiceClient,
};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::{
    io::Read,
    path::{Path, PathBuf},
    process::ExitCode,
};

const CHUNK: usize = 256 * 1024;

#[derive(clap::Args)]
pub struct ArtifactArgs {
    #[command(subcommand)]
    command: ArtifactCommand,
    #[arg(long, global = true, default_value = DEFAULT_ENDPOINT, env = "PAVED_ENDPOINT")]
    endpoint: String,
    /// Lines for people, or JSON for scripts.
    #[arg(long, short, global = true, value_enum, default_value_t)]
    output: Format,
}

#[derive(clap::Subcommand)]
enum ArtifactCommand {
    /// Stream a file to the store; prints its sha256 digest.
    Push { path: PathBuf },
    /// An artifact's size and attestations.
    Get { digest: String },
    /// Write a new Ed25519 private key to FILE; prints the public key.
    Keygen {
        #[arg(long)]
        out: PathBuf,
    },
    /// Sign a JSON payload as an attestation of DIGEST and attach it.
    Sign {
        digest: String,
        /// sbom, vulnerabilities ({"findings": [{"id", "cvss"}]}) or coverage ({"ratio"}).
        #[arg(long)]
        kind: String,
        #[arg(long)]
        payload: PathBuf,
        /// The private key file (from `paved artifact keygen`).
        #[arg(long)]
        key: PathBuf,
    },
    /// Verify DIGEST's attestations against public keys: exit 0 when all verify.
    Verify {
        digest: String,
        /// A public key (hex) or a file holding it (repeatable).
        #[arg(long = "key", required = true)]
        keys: Vec<String>,
    },
}

pub async fn run(args: ArtifactArgs) -> anyhow::Result<ExitCode> {
    let (endpoint, format) = (args.endpoint.as_str(), args.output);
    let people = format == Format::Table;
    match args.command {
        ArtifactCommand::Keygen { out } => {
            let (private, public) = paved_attest::generate();
            write_private(&out, &private)?;
            print(format, || format!("{public}\n"), || json!({ "public_key": public, "private_key_file": out.display().to_string() }))?;
            if people {
                eprintln!("private key written to {}; trust the public key with `paved up --trusted-key NAME={public}`", out.display());
            }
        }
        ArtifactCommand::Push { path } => {
            let terminal = people && std::io::IsTerminal::is_terminal(&std::io::stderr());
            let pushed = push(connect(endpoint).await?, &path, move |sent, total| {
                if terminal {
                    eprint!("\rpushing {} / {} KiB", sent / 1024, total / 1024);
                }
            })
            .await?;
            if terminal {
                eprintln!();
            }
            if people {
                eprintln!("{} bytes{}", pushed.size, if pushed.existed { ", already in the store" } else { "" });
            }
            let pushed_json = || json!({ "digest": pushed.digest, "size": pushed.size, "existed": pushed.existed });
            print(format, || format!("{}\n", pushed.digest), pushed_json)?;
        }
        ArtifactCommand::Get { digest } => {
            let artifact = get(connect(endpoint).await?, &digest).await?;
            print(format, || describe(&artifact), || artifact_json(&artifact, None))?;
        }
        ArtifactCommand::Sign { digest, kind, payload, key } => {
            let signer = sign(connect(endpoint).await?, &digest, &kind, &payload, &key).await?;
            let signed = || json!({ "digest": digest, "kind": kind, "signer": signer });
            print(format, || format!("attached {kind} to {digest}, signed by {signer}\n"), signed)?;
        }
        ArtifactCommand::Verify { digest, keys } => {
            let keys = keys.iter().map(|k| read_key(k)).collect::<anyhow::Result<Vec<_>>>()?;
            let artifact = get(connect(endpoint).await?, &digest).await?;
            let verdicts = verify(&artifact, &keys);
            let ok = !verdicts.is_empty() && verdicts.iter().all(|v| *v);
            print(format, || verify_report(&artifact, &verdicts), || artifact_json(&artifact, Some(&verdicts)))?;
            if !ok {
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes a private key readable by its owner only.
pub(crate) fn write_private(path: &Path, key: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| anyhow::anyhow!("create {}: {e} (an existing key is never overwritten)", path.display()))?;
    file.write_all(key.as_bytes())?;
    Ok(())
}

/// The sha256 digest of a file, read in chunks.
pub fn file_digest(path: &Path) -> anyhow::Result<(String, u64)> {
    let mut file = std::fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
    let (mut hasher, mut buf, mut size) = (Sha256::new(), vec![0u8; CHUNK], 0u64);
    loop {
        let n = file.read(&mut buf).with_context(|| format!("read {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((format!("sha256:{}", hex::encode(hasher.finalize())), size))
}

/// Streams `path` to the store; the server checks the digest computed here.
/// `progress` gets the bytes sent so far and the total.
pub async fn push(
    channel: AuthChannel,
    path: &Path,
    mut progress: impl FnMut(u64, u64) + Send + 'static,
) -> anyhow::Result<PushArtifactResponse> {
    let (digest, size) = file_digest(path)?;
    let mut file = std::fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let reader = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let mut sent = 0u64;
        let mut first = true;
        loop {
            let mut buf = vec![0u8; CHUNK];
            let n = file.read(&mut buf)?;
            if n == 0 && !first {
                return Ok(());
            }
            buf.truncate(n);
            sent += n as u64;
            let expected_digest = if first { digest.clone() } else { String::new() };
            first = false;
            if tx.blocking_send(PushArtifactRequest { expected_digest, chunk: buf }).is_err() {
                return Ok(());
            }
            progress(sent, size);
            if n == 0 {
                return Ok(());
            }
        }
    });
    let response = ProvisionerServiceClient::new(channel)
        .push_artifact(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .map_err(failed)?
        .into_inner();
    reader.await.context("reading the artifact")??;
    Ok(response)
}

/// Signs `payload` as an attestation of `kind` for `digest` with the private
/// key in `key_file` and attaches it. Returns the signer's name as the
/// platform knows it.
pub async fn sign(channel: AuthChannel, digest: &str, kind: &str, payload_file: &Path, key_file: &Path) -> anyhow::Result<String> {
    let payload = std::fs::read_to_string(payload_file).with_context(|| format!("read {}", payload_file.display()))?;
    serde_json::from_str::<serde_json::Value>(&payload).with_context(|| format!("{} is not JSON", payload_file.display()))?;
    let private = std::fs::read_to_string(key_file).with_context(|| format!("read {}", key_file.display()))?;
    let signature = paved_attest::sign(&private, digest, kind, payload.as_bytes())?;
    let public_key = paved_attest::public_key(&private)?;
    let request = AttachAttestationRequest { digest: digest.into(), kind: kind.into(), payload_json: payload, signature, public_key };
    let attached = ProvisionerServiceClient::new(channel).attach_attestation(request).await.map_err(failed)?.into_inner();
    Ok(attached.attestation.map(|a| a.signer).unwrap_or_default())
}

async fn get(channel: AuthChannel, digest: &str) -> anyhow::Result<Artifact> {
    ProvisionerServiceClient::new(channel)
        .get_artifact(GetArtifactRequest { digest: digest.into() })
        .await
        .map_err(failed)?
        .into_inner()
        .artifact
        .context("the server returned no artifact")
}

/// An artifact for people: size, then each attestation's kind, signer and payload.
pub fn describe(artifact: &Artifact) -> String {
    let mut out = format!("{} ({} bytes)\n", artifact.digest, artifact.size);
    for a in &artifact.attestations {
        out.push_str(&format!("  {:<16} signed by {}: {}\n", a.kind, a.signer, a.payload_json.trim()));
    }
    out
}

/// Checks every attestation of `digest` against `public_keys` (hex): one
/// line per attestation; true when each verifies with one of the keys.
/// Whether each attestation verifies with one of `public_keys`.
pub fn verify(artifact: &Artifact, public_keys: &[String]) -> Vec<bool> {
    let digest = &artifact.digest;
    let verifies = |a: &paved_proto::provisioner::v1::Attestation| {
        public_keys.iter().any(|k| paved_attest::verify(k, digest, &a.kind, a.payload_json.as_bytes(), &a.signature).is_ok())
    };
    artifact.attestations.iter().map(verifies).collect()
}

fn verify_report(artifact: &Artifact, verdicts: &[bool]) -> String {
    let mut out = format!("{} ({} bytes)\n", artifact.digest, artifact.size);
    for (a, ok) in artifact.attestations.iter().zip(verdicts) {
        let verdict = if *ok { "OK  " } else { "FAIL" };
        out.push_str(&format!("  {verdict} {:<16} signed by {} ({})\n", a.kind, a.signer, a.public_key));
    }
    if artifact.attestations.is_empty() {
        out.push_str("  no attestations\n");
    }
    out
}

/// An artifact for scripts: its attestations with their payloads as JSON
/// (and, when verified, whether each did).
fn artifact_json(artifact: &Artifact, verdicts: Option<&[bool]>) -> serde_json::Value {
    let attestations: Vec<serde_json::Value> = artifact
        .attestations
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let payload = serde_json::from_str::<serde_json::Value>(&a.payload_json).unwrap_or_else(|_| json!(a.payload_json));
            let mut out = json!({ "kind": a.kind, "signer": a.signer, "public_key": a.public_key, "payload": payload });
            if let Some(verdicts) = verdicts {
                out["verified"] = json!(verdicts.get(i).copied().unwrap_or(false));
            }
            out
        })
        .collect();
    let mut out = json!({ "digest": artifact.digest, "size": artifact.size, "attestations": attestations });
    if let Some(verdicts) = verdicts {
        out["verified"] = json!(!verdicts.is_empty() && verdicts.iter().all(|v| *v));
    }
    out
}

/// A public key given as hex, or as a file holding it.
pub fn read_key(text: &str) -> anyhow::Result<String> {
    let path = Path::new(text);
    if path.is_file() {
        return Ok(std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?.trim().to_string());
    }
    Ok(text.trim().to_string())
}
