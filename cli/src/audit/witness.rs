//! `paved audit witness`: a witness of the log, so that its operator cannot
//! show two different logs. It keeps the last checkpoint it accepted, reads
//! each new one over tlog-tiles, checks that the old tree is a prefix of
//! the new one (its hashes read through tiles authenticated against the new
//! root), cosigns it (C2SP tlog-cosignature) and hands the cosignature to
//! the log, which serves it under the checkpoint.

use super::http::Http;
use anyhow::Context;
use base64::{Engine, engine::general_purpose::STANDARD};
use paved_audit::log::{cosign::Cosigner, tiles::TileRef, verify::Source};
use std::path::{Path, PathBuf};
use tlog_tiles::{Checkpoint, Tile, TileHashReader, TileReader};

#[derive(clap::Args)]
pub struct WitnessArgs {
    /// The log's read side, e.g. http://127.0.0.1:7400.
    #[arg(long)]
    log: String,
    /// The log's verifier key (`paved audit key`, kept from earlier).
    #[arg(long)]
    key: String,
    /// The witness's own key, made on first use (the file is private).
    #[arg(long, value_name = "FILE")]
    witness_key: PathBuf,
    /// The witness's name in its key and cosignatures.
    #[arg(long, default_value = "paved-witness")]
    name: String,
    /// Where the last accepted checkpoint is kept (default: beside the key,
    /// `<FILE>.state`).
    #[arg(long, value_name = "FILE")]
    state: Option<PathBuf>,
    /// How often to look for a new checkpoint, e.g. 1s, 30s, 5m.
    #[arg(long, default_value = "1s", value_parser = crate::ttl::parse_ttl)]
    interval: std::time::Duration,
    /// Look once, cosign if there is something new, and exit: 1 if the log
    /// is refused.
    #[arg(long)]
    once: bool,
    /// Print the witness's verifier key (what the log and verifiers trust)
    /// and exit.
    #[arg(long)]
    print_key: bool,
}

/// The witness's key file: `PRIVATE+KEY+<name>+<id>+<base64 of 0x04 ‖ seed>`.
fn load_or_create(path: &Path, name: &str) -> anyhow::Result<Cosigner> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let parts: Vec<&str> = text.trim().splitn(5, '+').collect();
            let [_, _, name, _, key] = parts[..] else { anyhow::bail!("{} is not a witness key file", path.display()) };
            let bytes = STANDARD.decode(key).with_context(|| format!("{}: the key is not base64", path.display()))?;
            let seed: [u8; 32] = bytes.get(1..).and_then(|s| s.try_into().ok()).context("a witness key holds 32 bytes")?;
            Cosigner::new(name, &seed).map_err(|e| anyhow::anyhow!(e))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let seed: [u8; 32] = rand::random();
            let cosigner = Cosigner::new(name, &seed).map_err(|e| anyhow::anyhow!(e))?;
            let id = cosigner.verifier_key().split('+').nth(1).unwrap_or_default().to_string();
            let text = format!("PRIVATE+KEY+{name}+{id}+{}\n", STANDARD.encode([&[0x04u8][..], &seed].concat()));
            crate::artifacts::write_private(path, &text)?;
            eprintln!("made a witness key in {}", path.display());
            Ok(cosigner)
        }
        Err(e) => Err(e).with_context(|| format!("read {}", path.display())),
    }
}

/// Tiles read over HTTP for `tlog_tiles`' (synchronous) reader, from a
/// blocking thread.
struct Fetched {
    http: Http,
    runtime: tokio::runtime::Handle,
}

impl TileReader for Fetched {
    fn height(&self) -> u8 {
        8
    }

    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, tlog_tiles::Error> {
        tiles
            .iter()
            .map(|t| {
                let path = TileRef { level: Some(t.level()), index: t.level_index(), width: t.width() }.path();
                self.runtime.block_on(self.http.get(&path)).ok().flatten().ok_or(tlog_tiles::Error::InvalidTile)
            })
            .collect()
    }

    fn save_tiles(&self, _: &[Tile], _: &[Vec<u8>]) {}
}

/// One look: `Ok(Some(size))` when a new checkpoint was cosigned.
async fn step(http: &Http, key: &str, cosigner: &mut Cosigner, state: &Path) -> anyhow::Result<Option<u64>> {
    let note = http.get("checkpoint").await?.context("the log has no checkpoint yet")?;
    let new = paved_audit::log::verify::checkpoint(&note, key).map_err(|f| anyhow::anyhow!("{f}"))?;
    // The text exactly as the log signed it: what the cosignature covers.
    let text = signed_note::Note::from_bytes(&note).map_err(|e| anyhow::anyhow!("{e}"))?.text().to_vec();
    let old = match std::fs::read(state) {
        Ok(bytes) => Some(Checkpoint::from_bytes(&bytes).map_err(|_| anyhow::anyhow!("{} is not a checkpoint", state.display()))?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("read {}", state.display())),
    };
    if let Some(old) = &old {
        anyhow::ensure!(old.origin() == new.origin(), "the log is now {:?}, not {:?}", new.origin(), old.origin());
        anyhow::ensure!(new.size() >= old.size(), "the log went back from {} entries to {}: refused", old.size(), new.size());
        if new.size() == old.size() {
            anyhow::ensure!(new.hash() == old.hash(), "the log shows two different trees of {} entries: refused", new.size());
            return Ok(None);
        }
        // The old tree's root, computed from hashes of the new tree's tiles
        // (each checked against the new root): the old is a prefix of the new.
        let fetched = Fetched { http: http.clone(), runtime: tokio::runtime::Handle::current() };
        let (size, root, old_size) = (new.size(), *new.hash(), old.size());
        let prefix =
            tokio::task::spawn_blocking(move || tlog_tiles::tree_hash(old_size, &TileHashReader::new(size, root, &fetched))).await?;
        match prefix {
            Ok(hash) if hash == *old.hash() => {}
            Ok(_) => anyhow::bail!("the log's tree of {} entries does not extend the {} it showed before: refused", new.size(), old.size()),
            Err(e) => anyhow::bail!("the log's tiles do not prove its tree of {} entries ({e}): refused", new.size()),
        }
    }
    cosigner.timestamp = u64::try_from(chrono::Utc::now().timestamp()).unwrap_or_default();
    let mut cosigned = signed_note::Note::new(&text, &[]).map_err(|e| anyhow::anyhow!("{e}"))?;
    cosigned.add_sigs(&[&*cosigner]).map_err(|e| anyhow::anyhow!("{e}"))?;
    http.post("cosignature", cosigned.to_bytes()).await?;
    // Accepted once the log has the cosignature: a failed hand-in is
    // checked again from the old checkpoint next time.
    std::fs::write(state, &text).with_context(|| format!("write {}", state.display()))?;
    Ok(Some(new.size()))
}

pub async fn run(args: WitnessArgs) -> anyhow::Result<std::process::ExitCode> {
    let mut cosigner = load_or_create(&args.witness_key, &args.name)?;
    if args.print_key {
        println!("{}", cosigner.verifier_key());
        return Ok(std::process::ExitCode::SUCCESS);
    }
    let state = args.state.clone().unwrap_or_else(|| {
        let mut path = args.witness_key.clone().into_os_string();
        path.push(".state");
        path.into()
    });
    let http = Http::new(&args.log)?;
    eprintln!("witnessing {} as {}", args.log, cosigner.verifier_key());
    loop {
        match step(&http, &args.key, &mut cosigner, &state).await {
            Ok(Some(size)) => println!("cosigned the checkpoint of {size} entries"),
            Ok(None) => {}
            Err(e) if args.once => {
                println!("NOT cosigned: {e:#}");
                return Ok(std::process::ExitCode::FAILURE);
            }
            Err(e) => eprintln!("NOT cosigned: {e:#}"),
        }
        if args.once {
            return Ok(std::process::ExitCode::SUCCESS);
        }
        tokio::time::sleep(args.interval).await;
    }
}
