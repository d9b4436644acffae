//! Secrets delivered at launch, as users of Vault Agent or Kubernetes
//! expect: every `${secret:<name>}` of the spec's env resolved, and each of
//! its `secret_files` read, with the workload's own identity (never the
//! provisioner's) right after its bootstrap exchange; then, while the
//! process runs, each new version handed to the runtime as a [`Rotation`]
//! (`on_rotation` says which: files rewritten and a signal, or a restart).
//!
//! Values only pass through here to the runtime: never into a log line, an
//! event, an error or the provisioner's database. Errors name the path.

use paved_grpc::client::{AuthChannel, Bearer};
use paved_local::{Identity, Rotation};
use paved_proto::secrets_broker::v1::{
    GetSecretRequest, RenewTokenRequest, WatchSecretRequest, secrets_broker_service_client::SecretsBrokerServiceClient,
};
use paved_spec::{OnRotation, WorkloadSpec};
use std::{collections::BTreeMap, time::Duration};
use tokio::sync::mpsc;
use tonic::transport::Channel;

/// The identity token's life is 15 minutes: renewed well before.
const RENEW_EVERY: Duration = Duration::from_secs(5 * 60);
/// Before a watch that ended is opened again; doubled while it keeps
/// failing, up to `REOPEN_MAX`.
const REOPEN_AFTER: Duration = Duration::from_secs(1);
const REOPEN_MAX: Duration = Duration::from_secs(60);

/// A fresh identity for the same process (a new bootstrap exchange), for
/// when its token can no longer be renewed.
pub(crate) type Refresh = std::sync::Arc<dyn Fn() -> futures::future::BoxFuture<'static, Result<String, String>> + Send + Sync>;

/// A secret's version as the watch tells them apart: a secret deleted and
/// put again starts at version 1 with a new creation time.
type Seen = (u32, Option<prost_types::Timestamp>);

/// The secrets `spec` delivers, by name: its env references, then its files.
fn delivered(spec: &WorkloadSpec) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let refs = spec.env.values().flat_map(|v| paved_spec::secret_references(v));
    for name in refs.chain(spec.secret_files.iter().map(String::as_str)) {
        if !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
    }
    names
}

/// The [`Identity`] of a process that proved `token`, on `channel`: `env`
/// (its token and the broker's URL) with the spec's resolved values, its
/// files, and a watch of what rotates.
pub(crate) async fn deliver(
    channel: Channel,
    token: &str,
    prefix: &str,
    spec: &WorkloadSpec,
    env: Vec<(String, String)>,
    refresh: Refresh,
) -> Result<Identity, String> {
    let names = delivered(spec);
    let mut identity = Identity { env, redact: vec![token.to_string()], ..Identity::default() };
    if names.is_empty() {
        return Ok(identity);
    }
    let bearer = Bearer::new(token).map_err(|e| e.to_string())?;
    let client = SecretsBrokerServiceClient::new(bearer.on(channel.clone()));
    let mut values: BTreeMap<String, (Seen, Vec<u8>)> = BTreeMap::new();
    for name in &names {
        let (seen, value) = read(&client, &format!("{prefix}/{name}")).await?;
        identity.redact.push(String::from_utf8_lossy(&value).into_owned());
        values.insert(name.clone(), (seen, value));
    }
    for (key, value) in &spec.env {
        if paved_spec::secret_references(value).is_empty() {
            continue;
        }
        let text = |name: &str| values.get(name).and_then(|(_, v)| std::str::from_utf8(v).ok());
        let resolved = paved_spec::substitute_secrets(value, text)
            .map_err(|name| format!("env {key}: secret {prefix}/{name} is not UTF-8 text: deliver it as a file (`secret_files`)"))?;
        identity.env.push((key.clone(), resolved));
    }
    identity.files = spec.secret_files.iter().filter_map(|n| values.get(n).map(|(_, v)| (n.clone(), v.clone()))).collect();
    if spec.rotates() {
        // Signal: only files change under a running process. Restart:
        // anything it was started with.
        let watched: Vec<String> = match spec.on_rotation {
            OnRotation::Signal => spec.secret_files.clone(),
            OnRotation::Restart => names,
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let known = watched.iter().map(|n| (n.clone(), values.get(n).map(|(seen, _)| *seen).unwrap_or_default())).collect();
        let watcher = Watcher { channel, bearer, refresh, prefix: prefix.to_string(), on_rotation: spec.on_rotation, known };
        tokio::spawn(watch(watcher, tx));
        identity.rotations = Some(rx);
    }
    Ok(identity)
}

/// A secret's latest version and value; an error names the path and the
/// broker's reason, never a value.
async fn read(client: &SecretsBrokerServiceClient<AuthChannel>, path: &str) -> Result<(Seen, Vec<u8>), String> {
    let request = GetSecretRequest { path: path.to_string(), version: 0 };
    match client.clone().get_secret(request).await {
        Ok(answer) => {
            let secret = answer.into_inner().secret.ok_or_else(|| format!("secret {path}: the broker sent no value"))?;
            Ok((seen(secret.meta), secret.value))
        }
        Err(s) if s.code() == tonic::Code::NotFound => Err(format!("secret {path} does not exist: put it with `paved secrets put {path}`")),
        Err(s) => Err(format!("cannot read secret {path}: {}", s.message())),
    }
}

fn seen(meta: Option<paved_proto::secrets_broker::v1::SecretVersion>) -> Seen {
    meta.map(|m| (m.version, m.create_time)).unwrap_or_default()
}

/// What a rotation watch keeps: how to reach the broker as the workload,
/// and the version of each watched secret it was last given.
struct Watcher {
    channel: Channel,
    bearer: Bearer,
    refresh: Refresh,
    prefix: String,
    on_rotation: OnRotation,
    known: BTreeMap<String, Seen>,
}

/// Watches every secret of `w` until the runtime drops the receiver,
/// renewing the identity token and opening each watch again when it ends
/// (it ends when the token that opened it expires).
async fn watch(w: Watcher, tx: mpsc::UnboundedSender<Rotation>) {
    let (seen_tx, mut updates) = mpsc::unbounded_channel::<(String, Seen, Vec<u8>)>();
    let mut watches = tokio::task::JoinSet::new();
    for name in w.known.keys() {
        let client = SecretsBrokerServiceClient::new(w.bearer.on(w.channel.clone()));
        let (path, seen_tx, name) = (format!("{}/{name}", w.prefix), seen_tx.clone(), name.clone());
        watches.spawn(async move {
            let mut pause = REOPEN_AFTER;
            loop {
                if let Ok(stream) = client.clone().watch_secret(WatchSecretRequest { path: path.clone() }).await {
                    let mut stream = stream.into_inner();
                    while let Ok(Some(update)) = stream.message().await {
                        pause = REOPEN_AFTER;
                        if let Some(secret) = update.secret
                            && seen_tx.send((name.clone(), seen(secret.meta), secret.value)).is_err()
                        {
                            return;
                        }
                    }
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(REOPEN_MAX);
            }
        });
    }
    drop(seen_tx);
    let mut known = w.known;
    let mut renew = tokio::time::interval(RENEW_EVERY);
    renew.tick().await;
    loop {
        tokio::select! {
            _ = tx.closed() => break,
            _ = renew.tick() => renew_token(&w.bearer, &w.channel, &w.refresh).await,
            update = updates.recv() => {
                let Some((name, seen, value)) = update else { break };
                // An older version of the same secret is old news; the same
                // version number with another creation time is a new secret.
                if known.get(&name).is_some_and(|k| k.1 == seen.1 && seen.0 <= k.0) {
                    continue;
                }
                let version = seen.0;
                known.insert(name.clone(), seen);
                tracing::info!(secret = %format!("{}/{name}", w.prefix), version, "a delivered secret has a new version");
                let rotation = match w.on_rotation {
                    OnRotation::Signal => Rotation::File { name, value },
                    OnRotation::Restart => Rotation::Restart,
                };
                if tx.send(rotation).is_err() {
                    break;
                }
            }
        }
    }
    watches.abort_all();
}

/// Renews the identity token the watches present (its copy in the
/// process renews itself); when it can no longer be renewed (24 h after
/// its exchange, or revoked), a fresh identity for the same process.
async fn renew_token(bearer: &Bearer, channel: &Channel, refresh: &Refresh) {
    let mut client = SecretsBrokerServiceClient::new(bearer.on(channel.clone()));
    let token = match client.renew_token(RenewTokenRequest { ttl: None }).await {
        Ok(renewed) => Ok(renewed.into_inner().token),
        Err(s) => {
            tracing::info!(reason = %s.message(), "a delivering identity cannot be renewed; asking for a new one");
            refresh().await
        }
    };
    if let Err(e) = token.and_then(|t| bearer.set(&t).map_err(|e| e.to_string())) {
        tracing::warn!(error = %e, "no identity to watch rotations with; trying again at the next renewal");
    }
}
