//! `paved audit key|checkpoint|verify|fetch`: the audit service's
//! transparency log as a verifier uses it — the key that checks it, its
//! latest checkpoint, a whole check of it (online, or over a copy), and
//! that copy.

use crate::{
    DEFAULT_ENDPOINT,
    client::{channel, connect, failed},
};
use anyhow::Context;
use http_body_util::{BodyExt, Empty};
use paved_audit::log::{
    tiles::{TileRef, WIDTH},
    verify::{self, Directory, Source},
};
use paved_proto::audit::v1::{GetCheckpointRequest, GetLogKeyRequest, ListCheckpointsRequest, audit_service_client::AuditServiceClient};
use std::{path::PathBuf, process::ExitCode};

#[derive(clap::Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    command: AuditCommand,
    #[arg(long, global = true, default_value = DEFAULT_ENDPOINT, env = "PAVED_ENDPOINT")]
    endpoint: String,
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
        /// The verifier key to trust (`paved audit key`, kept from
        /// earlier); without it, the one the log gives now.
        #[arg(long)]
        key: Option<String>,
        /// Check a copy in this directory (`paved audit fetch`), its latest
        /// checkpoint, with no connection at all; needs --key.
        #[arg(long, value_name = "DIR")]
        offline: Option<PathBuf>,
    },
    /// Copy the log (checkpoint, hash tiles, entry bundles) to a directory
    /// at its tlog-tiles paths, for `verify --offline`. Needs no token.
    Fetch { dir: PathBuf },
}

pub async fn run(args: AuditArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        AuditCommand::Key => println!("{}", log_key(&args.endpoint).await?),
        AuditCommand::Checkpoint => {
            let checkpoint =
                AuditServiceClient::new(connect(&args.endpoint).await?).get_checkpoint(GetCheckpointRequest {}).await.map_err(failed)?;
            print!("{}", checkpoint.into_inner().checkpoint.map(|c| c.note).unwrap_or_default());
        }
        AuditCommand::Verify { key, offline: Some(dir) } => {
            let key = key.context("--offline needs --key: a copy cannot vouch for its own key")?;
            return report(verify::verify(&Directory(dir), &key, &[]).await?, &key);
        }
        AuditCommand::Verify { key, offline: None } => {
            let key = match key {
                Some(key) => key,
                None => {
                    let key = log_key(&args.endpoint).await?;
                    eprintln!("checking with the key the log gives now, {key}: pass --key to check against one you trust");
                    key
                }
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
            return report(verify::verify(&Http::new(&args.endpoint), &key, &history).await?, &key);
        }
        AuditCommand::Fetch { dir } => fetch(&Http::new(&args.endpoint), &dir).await?,
    }
    Ok(ExitCode::SUCCESS)
}

async fn log_key(endpoint: &str) -> anyhow::Result<String> {
    let key = AuditServiceClient::new(channel(endpoint).await?).get_log_key(GetLogKeyRequest {}).await.map_err(failed)?;
    key.into_inner().verifier_keys.into_iter().next().ok_or_else(|| anyhow::anyhow!("the log published no key"))
}

fn report(outcome: Result<verify::Verified, verify::Finding>, key: &str) -> anyhow::Result<ExitCode> {
    match outcome {
        Ok(v) => {
            println!("verified: {} entries, {} checkpoints, signed by {key}", v.size, v.checkpoints);
            Ok(ExitCode::SUCCESS)
        }
        Err(finding) => {
            println!("NOT verified: {finding}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// The log's read side over plain HTTP on the endpoint's port.
struct Http {
    base: String,
    client: hyper_util::client::legacy::Client<hyper_util::client::legacy::connect::HttpConnector, Empty<bytes::Bytes>>,
}

impl Http {
    fn new(endpoint: &str) -> Self {
        let host = endpoint.strip_prefix("http://").unwrap_or(endpoint).trim_end_matches('/');
        let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
        Self { base: format!("http://{host}{}", paved_audit::log::http::PREFIX), client }
    }
}

impl Source for Http {
    async fn get(&self, path: &str) -> anyhow::Result<Option<Vec<u8>>> {
        let url = format!("{}{path}", self.base);
        let response =
            self.client.get(url.parse()?).await.with_context(|| format!("GET {url} (is `paved up` running? https is not served here)"))?;
        let status = response.status();
        if status == http::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let body = response.into_body().collect().await.with_context(|| format!("GET {url}"))?.to_bytes().to_vec();
        anyhow::ensure!(status.is_success(), "GET {url}: {status}: {}", String::from_utf8_lossy(&body).trim());
        Ok(Some(body))
    }
}

/// Copies the checkpoint and every tile of its tree to `dir`.
async fn fetch(source: &Http, dir: &std::path::Path) -> anyhow::Result<()> {
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
    println!("copied the log of {size} entries ({} tiles) to {}", tiles.len(), dir.display());
    Ok(())
}
