//! `paved audit …`: the audit service's transparency log as a verifier
//! uses it — the key that checks it, its latest checkpoint, a whole check
//! of it (online, or over a copy) and that copy; questions with checkable
//! answers (`query`), a revision's lineage as one bundle (`trace`,
//! `verify-bundle`), and erasure of a person (`erase`).

mod describe;
mod http;
mod query;
mod trace;
mod witness;

use crate::{
    DEFAULT_ENDPOINT,
    client::{channel, connect, failed},
    output::{Format, print},
};
use anyhow::Context;
use http::Http;
use paved_audit::log::{
    cosign::{CosignatureVerifier, cosigned_by},
    tiles::{TileRef, WIDTH},
    verify::{self, Directory, Source},
};
use paved_proto::audit::v1::{
    GetCheckpointRequest, GetLogKeyRequest, ListCheckpointsRequest, RotateLogKeyRequest, audit_service_client::AuditServiceClient,
};
use std::{path::PathBuf, process::ExitCode};

#[derive(clap::Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    command: AuditCommand,
    #[arg(long, global = true, default_value = DEFAULT_ENDPOINT, env = "PAVED_ENDPOINT")]
    endpoint: String,
    /// `json`: one JSON document on stdout (docs/cli.md); not for `witness`,
    /// which logs as it goes.
    #[arg(long, short, global = true, value_enum, default_value_t)]
    output: Format,
}

#[derive(clap::Subcommand)]
enum AuditCommand {
    /// Print the log's verifier key in signed-note form
    /// (`<name>+<id>+<base64>`): what checks its checkpoints. Needs no token.
    Key,
    /// Print the latest signed checkpoint, as served at
    /// `/audit/log/checkpoint`.
    Checkpoint,
    /// Check the whole log: every checkpoint's signature, every entry
    /// against the leaf hash the log stored, the tree of the entries
    /// against every checkpoint's root. Exits 1 naming the first bad entry.
    Verify {
        /// A verifier key to trust (`paved audit key`, kept from earlier;
        /// repeatable); without one, the keys the log gives now. The log's
        /// other keys are trusted once a checkpoint shows one signing beside
        /// a trusted key (a rotation's overlap).
        #[arg(long = "key")]
        keys: Vec<String>,
        /// Check a copy in this directory (`paved audit fetch`), its latest
        /// checkpoint, with no connection at all; needs --key.
        #[arg(long, value_name = "DIR")]
        offline: Option<PathBuf>,
        /// A witness's cosignature/v1 verifier key (repeatable): the log must
        /// show a checkpoint cosigned by --quorum of them.
        #[arg(long = "witness", value_name = "KEY")]
        witnesses: Vec<String>,
        /// How many of the witnesses must have cosigned (default: all).
        #[arg(long, requires = "witnesses")]
        quorum: Option<usize>,
    },
    /// Rotate the log's signing key: the new key signs from now on, the
    /// current one beside it for --overlap, so that verifiers holding it
    /// learn the new one. Needs write:audit.
    RotateKey {
        #[arg(long, default_value = "24h", value_parser = crate::ttl::parse_ttl)]
        overlap: std::time::Duration,
    },
    /// Witness the log: check each new checkpoint extends the last one
    /// accepted, cosign it, hand the cosignature to the log.
    Witness(witness::WitnessArgs),
    /// Copy the log (checkpoint, hash tiles, entry bundles) to a directory
    /// at its tlog-tiles paths, for `verify --offline`. Needs no token.
    Fetch { dir: PathBuf },
    /// The entries of one workload (--workload with --env) or one actor
    /// (--actor: a token subject or SPIFFE id), each checked against the
    /// key and its inclusion proof; fails if the answer left an entry out.
    /// Needs read:audit.
    Query {
        #[arg(long, requires = "env", conflicts_with = "actor")]
        workload: Option<String>,
        #[arg(long, requires = "workload")]
        env: Option<String>,
        #[arg(long, required_unless_present = "workload")]
        actor: Option<String>,
        /// Show only events whose type contains this, e.g. canary or
        /// token.issued (all are still fetched and checked).
        #[arg(long = "type", value_name = "TYPE")]
        kind: Option<String>,
        /// Appended at or after: a duration back from now (24h, 30m, 7d)
        /// or an RFC 3339 time.
        #[arg(long, value_parser = query::parse_time)]
        since: Option<prost_types::Timestamp>,
        /// Appended before, the same way.
        #[arg(long, value_parser = query::parse_time)]
        until: Option<prost_types::Timestamp>,
        #[arg(long)]
        key: Option<String>,
    },
    /// A revision's lineage in one bundle: its deployment, the artifact
    /// and attestations the policy saw, the decision, identity and
    /// credentials, every canary verdict, promotion or rollback — each
    /// entry with its inclusion proof against one checkpoint. Needs
    /// read:audit.
    Trace {
        workload: String,
        #[arg(long)]
        env: String,
        /// The revision number (default: the latest).
        #[arg(long)]
        revision: Option<i64>,
        /// Write the bundle here (JSON) for `verify-bundle`.
        #[arg(long, value_name = "FILE")]
        bundle: Option<PathBuf>,
        #[arg(long)]
        key: Option<String>,
    },
    /// Check a bundle from `trace` offline, with nothing but the key.
    VerifyBundle {
        file: PathBuf,
        #[arg(long)]
        key: String,
    },
    /// Erase a person from the log: their commitments' salt is deleted, the
    /// entries and proofs stay, queries for them find nothing. Needs
    /// write:audit.
    Erase {
        #[arg(long)]
        subject: String,
    },
}

pub async fn run(args: AuditArgs) -> anyhow::Result<ExitCode> {
    let output = args.output;
    match args.command {
        AuditCommand::Key => {
            let key = log_key(&args.endpoint).await?;
            print(output, || format!("{key}\n"), || serde_json::json!({ "verifier_key": key }))?;
        }
        AuditCommand::Checkpoint => {
            let checkpoint =
                AuditServiceClient::new(connect(&args.endpoint).await?).get_checkpoint(GetCheckpointRequest {}).await.map_err(failed)?;
            let note = checkpoint.into_inner().checkpoint.map(|c| c.note).unwrap_or_default();
            let json = || {
                let size = signed_note::Note::from_bytes(note.as_bytes())
                    .ok()
                    .and_then(|n| tlog_tiles::Checkpoint::from_bytes(n.text()).ok())
                    .map(|c| c.size());
                serde_json::json!({ "note": note, "size": size })
            };
            print(output, || note.clone(), json)?;
        }
        AuditCommand::Verify { keys, offline: Some(dir), witnesses, quorum } => {
            anyhow::ensure!(!keys.is_empty(), "--offline needs --key: a copy cannot vouch for its own key");
            let witnessed = witnessed(&witnesses, quorum)?;
            let latest = Directory(dir.clone()).get("checkpoint").await?.into_iter().collect::<Vec<_>>();
            return report(verify::verify(&Directory(dir), &keys, &[]).await?, &keys, witnessed.as_ref(), &latest, output);
        }
        AuditCommand::Verify { keys, offline: None, witnesses, quorum } => {
            let witnessed = witnessed(&witnesses, quorum)?;
            let published =
                AuditServiceClient::new(channel(&args.endpoint).await?).get_log_key(GetLogKeyRequest {}).await.map_err(failed)?;
            let published = published.into_inner();
            let published: Vec<String> = published.verifier_keys.into_iter().chain(published.retired_keys).collect();
            let given = if keys.is_empty() {
                eprintln!("checking with the keys the log gives now: pass --key to check against one you trust");
                published.clone()
            } else {
                keys
            };
            let mut client = AuditServiceClient::new(connect(&args.endpoint).await?);
            let mut history = Vec::new();
            let mut page_token = String::new();
            loop {
                let page =
                    client.list_checkpoints(ListCheckpointsRequest { page_size: 1000, page_token }).await.map_err(failed)?.into_inner();
                history.extend(page.checkpoints.into_iter().map(|c| c.note.into_bytes()));
                if page.next_page_token.is_empty() {
                    break;
                }
                page_token = page.next_page_token;
            }
            let latest = Http::new(&args.endpoint)?.get("checkpoint").await?.into_iter();
            let notes: Vec<Vec<u8>> = history.iter().cloned().chain(latest).collect();
            let keys = verify::trusted(&given, &published, &notes);
            return report(
                verify::verify(&Http::new(&args.endpoint)?, &keys, &history).await?,
                &keys,
                witnessed.as_ref(),
                &history,
                output,
            );
        }
        AuditCommand::Fetch { dir } => {
            let (size, tiles) = fetch(&Http::new(&args.endpoint)?, &dir).await?;
            let text = || format!("copied the log of {size} entries ({tiles} tiles) to {}\n", dir.display());
            print(output, text, || serde_json::json!({ "size": size, "tiles": tiles, "dir": dir }))?;
        }
        AuditCommand::Witness(witness) => {
            anyhow::ensure!(output == Format::Table, "`audit witness` logs as it goes: no --output json");
            return witness::run(witness).await;
        }
        AuditCommand::RotateKey { overlap } => {
            let mut client = AuditServiceClient::new(connect(&args.endpoint).await?);
            // The deprecated field too, for a log older than `overlap`.
            #[allow(deprecated)]
            let request =
                RotateLogKeyRequest { overlap: Some(paved_proto::duration_from_std(overlap)), overlap_seconds: overlap.as_secs() };
            let rotated = client.rotate_log_key(request).await.map_err(failed)?.into_inner();
            let retire_time = crate::output::rfc3339(rotated.retire_time.as_ref());
            print(
                output,
                || format!("{}\n", rotated.verifier_key),
                || serde_json::json!({ "verifier_key": rotated.verifier_key, "retire_time": retire_time }),
            )?;
            if output == Format::Table {
                eprintln!("the previous key signs beside it until {}", crate::output::time(rotated.retire_time.as_ref()));
            }
        }
        AuditCommand::Query { workload, env, actor, kind, since, until, key } => {
            let key = trusted(key, &args.endpoint).await?;
            let whose = match (workload, env, actor) {
                (Some(name), Some(env), _) => query::Whose::Workload { name, env },
                (_, _, Some(actor)) => query::Whose::Actor(actor),
                _ => anyhow::bail!("name a workload (--workload with --env) or an actor (--actor)"),
            };
            let mut client = AuditServiceClient::new(connect(&args.endpoint).await?);
            match query::fetch(&mut client, &key, &whose, since, until).await? {
                Some(found) => query::print(&found, kind.as_deref(), output == Format::Json)?,
                None => eprintln!("no entries: the log holds no salt for that name (never seen, or erased)"),
            }
        }
        AuditCommand::Trace { workload, env, revision, bundle: file, key } => {
            let key = trusted(key, &args.endpoint).await?;
            let mut client = AuditServiceClient::new(connect(&args.endpoint).await?);
            let bundle = trace::trace(&mut client, &key, &workload, &env, revision).await?;
            trace::print(&bundle, &trace::verify(&bundle, &key)?, output)?;
            if let Some(file) = file {
                std::fs::write(&file, serde_json::to_vec_pretty(&bundle)?).with_context(|| format!("write {}", file.display()))?;
                eprintln!("bundle of {} entries written to {}", bundle.entries.len(), file.display());
            }
        }
        AuditCommand::VerifyBundle { file, key } => {
            let bundle = trace::read(&file)?;
            match trace::verify(&bundle, &key) {
                Ok(entries) if output == Format::Json => trace::print(&bundle, &entries, output)?,
                Ok(entries) => {
                    trace::print(&bundle, &entries, output)?;
                    println!("verified: {} entries, each included in the checkpoint signed by {key}", entries.len());
                }
                Err(e) => {
                    print(output, || format!("{e:#}\n"), || serde_json::json!({ "verified": false, "finding": format!("{e:#}") }))?;
                    return Ok(ExitCode::FAILURE);
                }
            }
        }
        AuditCommand::Erase { subject } => {
            query::erase(&mut AuditServiceClient::new(connect(&args.endpoint).await?), &subject, output).await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The key given, or the one the log gives now (said so: a log can vouch
/// only for itself).
async fn trusted(key: Option<String>, endpoint: &str) -> anyhow::Result<String> {
    match key {
        Some(key) => Ok(key),
        None => {
            let key = log_key(endpoint).await?;
            eprintln!("checking with the key the log gives now, {key}: pass --key to check against one you trust");
            Ok(key)
        }
    }
}

async fn log_key(endpoint: &str) -> anyhow::Result<String> {
    let key = AuditServiceClient::new(channel(endpoint).await?).get_log_key(GetLogKeyRequest {}).await.map_err(failed)?;
    key.into_inner().verifier_keys.into_iter().next().ok_or_else(|| anyhow::anyhow!("the log published no key"))
}

/// The witnesses a verification requires, and how many of them.
fn witnessed(keys: &[String], quorum: Option<usize>) -> anyhow::Result<Option<(Vec<CosignatureVerifier>, usize)>> {
    if keys.is_empty() {
        return Ok(None);
    }
    let verifiers = keys.iter().map(|k| CosignatureVerifier::new(k).map_err(|e| anyhow::anyhow!(e))).collect::<Result<Vec<_>, _>>()?;
    let quorum = quorum.unwrap_or(verifiers.len());
    anyhow::ensure!((1..=verifiers.len()).contains(&quorum), "--quorum {quorum} of {} witnesses given", verifiers.len());
    Ok(Some((verifiers, quorum)))
}

/// The outcome; with witnesses, the largest of `notes` (checkpoints the log
/// signed, which the verification checked against the tree) they cosigned.
fn report(
    outcome: Result<verify::Verified, verify::Finding>,
    keys: &[String],
    witnessed: Option<&(Vec<CosignatureVerifier>, usize)>,
    notes: &[Vec<u8>],
    output: Format,
) -> anyhow::Result<ExitCode> {
    let json = output == Format::Json;
    let v = match outcome {
        Ok(v) => v,
        Err(finding) => {
            print(
                output,
                || format!("NOT verified: {finding}\n"),
                || serde_json::json!({ "verified": false, "finding": finding.to_string() }),
            )?;
            return Ok(ExitCode::FAILURE);
        }
    };
    let mut verified = serde_json::json!({ "verified": true, "entries": v.size, "checkpoints": v.checkpoints, "keys": keys });
    if !json {
        println!("verified: {} entries, {} checkpoints, signed by {}", v.size, v.checkpoints, keys.join(" or "));
    }
    let Some((witnesses, quorum)) = witnessed else {
        if json {
            println!("{}", serde_json::to_string_pretty(&verified)?);
        }
        return Ok(ExitCode::SUCCESS);
    };
    let best = notes
        .iter()
        .filter_map(|note| {
            let by = cosigned_by(note, witnesses);
            let size = verify::checkpoint_any(note, keys).ok()?.size();
            (by.len() >= *quorum).then_some((size, by))
        })
        .max_by_key(|(size, _)| *size);
    let (line, code) = match &best {
        Some((size, by)) => {
            let line =
                format!("witnessed: the checkpoint of {size} entries is cosigned by {} ({} of {quorum} required)", by.join(", "), by.len());
            verified["witnessed"] = serde_json::json!({ "size": size, "by": by, "quorum": quorum });
            (line, ExitCode::SUCCESS)
        }
        None => {
            verified["verified"] = false.into();
            let line = format!("NOT verified: no checkpoint is cosigned by {quorum} of the {} witnesses given", witnesses.len());
            verified["finding"] = line.trim_start_matches("NOT verified: ").into();
            (line, ExitCode::FAILURE)
        }
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&verified)?);
    } else {
        println!("{line}");
    }
    Ok(code)
}

/// Copies the checkpoint and every tile of its tree to `dir`; the log's
/// size and how many tiles.
async fn fetch(source: &Http, dir: &std::path::Path) -> anyhow::Result<(u64, usize)> {
    let note = source.get("checkpoint").await?.context("the log has no checkpoint yet")?;
    let text = signed_note::Note::from_bytes(&note).map_err(|e| anyhow::anyhow!("the checkpoint is not a signed note: {e}"))?;
    let size = tlog_tiles::Checkpoint::from_bytes(text.text()).map_err(|e| anyhow::anyhow!("not a checkpoint: {e}"))?.size();
    let mut tiles = Vec::new();
    for level in std::iter::once(None).chain((0..8u8).map(Some)) {
        let hashes = size >> (8 * u32::from(level.unwrap_or(0)));
        if level.is_some_and(|l| l > 0) && hashes == 0 {
            break;
        }
        for index in 0..hashes.div_ceil(WIDTH) {
            tiles.push(TileRef { level, index, width: (hashes - index * WIDTH).min(WIDTH) as u32 });
        }
    }
    for (i, tile) in tiles.iter().enumerate() {
        let path = tile.path();
        let data = source.get(&path).await?.with_context(|| format!("the log does not serve {path}"))?;
        let file = dir.join(&path);
        if let Some(parent) = file.parent() {
            tokio::fs::create_dir_all(parent).await.with_context(|| format!("create {}", parent.display()))?;
        }
        tokio::fs::write(&file, data).await.with_context(|| format!("write {}", file.display()))?;
        if (i + 1) % 1000 == 0 {
            eprintln!("{} of {} tiles", i + 1, tiles.len());
        }
    }
    // The checkpoint last: a copy cut short has none, and does not verify.
    tokio::fs::write(dir.join("checkpoint"), &note).await.with_context(|| format!("write {}", dir.join("checkpoint").display()))?;
    Ok((size, tiles.len()))
}
