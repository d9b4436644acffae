//! Secrets at the edge: `PutSecret`, `GetSecret`, `ListSecrets`,
//! `WatchSecret`, each checked per path (`secrets:<access>:<path>`) in the
//! handler; no value leaves unrecorded.

use super::access::needs;
use super::fields::duration;
use crate::authority::Authority;
use crate::recorder::Recorder;
use crate::secrets::{self, SecretError, Secrets, Value, Version};
use paved_grpc::{auth, status};
use paved_proto::secrets_broker::v1::{
    DeleteSecretRequest, DeleteSecretResponse, GetSecretRequest, GetSecretResponse, ListSecretsRequest, ListSecretsResponse,
    PutSecretRequest, PutSecretResponse, Secret, SecretVersion, WatchSecretRequest, WatchSecretResponse,
};
use paved_proto::timestamp_from_millis;
use paved_token::Claims;
use std::time::Duration;
use tonic::{Request, Response, Status};

pub(super) type SecretStream = std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<WatchSecretResponse, Status>> + Send>>;

pub(super) struct SecretsApi {
    pub secrets: Secrets,
    /// Whether a watch's token still stands.
    pub authority: Authority,
    pub recorder: Recorder,
}

impl From<Version> for SecretVersion {
    fn from(v: Version) -> Self {
        SecretVersion {
            path: v.path,
            version: v.version,
            create_time: Some(timestamp_from_millis(v.create_time_ms)),
            generated: v.generated,
            rotate_time: v.rotate_time_ms.map(timestamp_from_millis),
            expire_time: v.expire_time_ms.map(timestamp_from_millis),
        }
    }
}

fn secret(version: Version, value: Vec<u8>) -> Secret {
    Secret { meta: Some(version.into()), value }
}

fn invalid_path(field: &str) -> Status {
    let why = "lowercase letters, digits, `-`, `_`, `.` and `/`, no empty or dot segment, at most 256 characters";
    status::invalid_argument("INVALID_SECRET_PATH", format!("invalid {field}"), [(field.to_string(), why.to_string())])
}

impl SecretsApi {
    /// PERMISSION_DENIED, with a `secret.denied` event, unless the caller
    /// holds `secrets:<access>:<path>`.
    async fn may(&self, caller: &Claims, access: &str, path: &str) -> Result<(), Status> {
        needs(&self.recorder, caller, &format!("secrets:{access}:{path}"), path, "secret.denied").await
    }

    pub(super) async fn put(&self, request: Request<PutSecretRequest>) -> Result<Response<PutSecretResponse>, Status> {
        let caller = auth::caller(&request)?;
        let req = request.into_inner();
        if !secrets::valid_path(&req.path) {
            return Err(invalid_path("path"));
        }
        self.may(&caller, "write", &req.path).await?;
        let value = match (req.value.is_empty(), req.generate_bytes) {
            (false, 0) if req.value.len() <= secrets::MAX_VALUE => Value::Given(req.value),
            (true, n @ 16..=1024) => {
                let every =
                    duration(req.rotate_every.as_ref(), "rotate_every", secrets::DEFAULT_ROTATION, Duration::from_secs(365 * 86400))
                        .map_err(|v| status::invalid_argument("INVALID_SECRET", "invalid rotate_every", [v]))?;
                Value::Generated { bytes: n, rotate_every: every }
            }
            _ => {
                let why = format!("a value of 1 to {} bytes, or generate_bytes between 16 and 1024, not both", secrets::MAX_VALUE);
                return Err(status::invalid_argument("INVALID_SECRET", "invalid secret", [("value".to_string(), why)]));
            }
        };
        let version = self.secrets.put(&caller.sub, &req.path, value).await?;
        Ok(Response::new(PutSecretResponse { version: Some(version.into()) }))
    }

    pub(super) async fn delete(&self, request: Request<DeleteSecretRequest>) -> Result<Response<DeleteSecretResponse>, Status> {
        let caller = auth::caller(&request)?;
        let req = request.into_inner();
        if !secrets::valid_path(&req.path) {
            return Err(invalid_path("path"));
        }
        self.may(&caller, "write", &req.path).await?;
        let versions = self.secrets.delete(&caller.sub, &req.path).await?;
        Ok(Response::new(DeleteSecretResponse { path: req.path, versions }))
    }

    pub(super) async fn get(&self, request: Request<GetSecretRequest>) -> Result<Response<GetSecretResponse>, Status> {
        let caller = auth::caller(&request)?;
        let req = request.into_inner();
        if !secrets::valid_path(&req.path) {
            return Err(invalid_path("path"));
        }
        self.may(&caller, "read", &req.path).await?;
        let (version, value) = self.secrets.get(&req.path, req.version).await?;
        // No value leaves unrecorded.
        if !self.recorder.record("secret.read", &caller.sub, &format!("{}#{}", version.path, version.version), "").await {
            return Err(status::unavailable("EVENTS_UNAVAILABLE", "the read cannot be recorded now: try again"));
        }
        Ok(Response::new(GetSecretResponse { secret: Some(secret(version, value)) }))
    }

    pub(super) async fn list(&self, request: Request<ListSecretsRequest>) -> Result<Response<ListSecretsResponse>, Status> {
        let caller = auth::caller(&request)?;
        let req = request.into_inner();
        if !req.prefix.is_empty() && !secrets::valid_path(req.prefix.trim_end_matches('/')) {
            return Err(invalid_path("prefix"));
        }
        self.may(&caller, "read", &format!("{}*", req.prefix)).await?;
        let (size, offset) = status::page(req.page_size, &req.page_token)?;
        let secrets = self.secrets.list(&req.prefix, size, offset).await?;
        let next_page_token = status::next_page_token(offset, size, secrets.len());
        Ok(Response::new(ListSecretsResponse { secrets: secrets.into_iter().map(SecretVersion::from).collect(), next_page_token }))
    }

    pub(super) async fn watch(&self, request: Request<WatchSecretRequest>) -> Result<Response<SecretStream>, Status> {
        let caller = auth::caller(&request)?;
        let path = request.into_inner().path;
        if !secrets::valid_path(&path) {
            return Err(invalid_path("path"));
        }
        self.may(&caller, "read", &path).await?;
        let (secrets, authority, recorder) = (self.secrets.clone(), self.authority.clone(), self.recorder.clone());
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let mut writes = secrets.writes();
        tokio::spawn(async move {
            // The version last sent, with its creation time: a secret
            // deleted and written again starts at version 1 once more.
            let mut sent: Option<(u32, i64)> = None;
            loop {
                // A watch lives no longer than the token that opened it.
                if let Some(why) = authority.no_longer_valid(&caller).await {
                    let _ = tx.send(Err(status::unauthenticated("WATCH_TOKEN_ENDED", format!("the watch's token {why}")))).await;
                    return;
                }
                match secrets.get(&path, 0).await {
                    Ok((version, value)) if sent != Some((version.version, version.create_time_ms)) => {
                        sent = Some((version.version, version.create_time_ms));
                        let read = format!("{path}#{}", version.version);
                        if !recorder.record("secret.read", &caller.sub, &read, "watch").await {
                            let _ = tx.send(Err(status::unavailable("EVENTS_UNAVAILABLE", "the read cannot be recorded now"))).await;
                            return;
                        }
                        if tx.send(Ok(WatchSecretResponse { secret: Some(secret(version, value)) })).await.is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    // Not written yet: sent once it is.
                    Err(SecretError::NotFound(_)) if sent.is_none() => {}
                    // Deleted after a value was sent: the watcher must not
                    // go on using it as if it stood.
                    Err(SecretError::NotFound(_)) => {
                        let _ = tx.send(Err(status::not_found("SECRET_DELETED", format!("secret {path} was deleted")))).await;
                        return;
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e.into())).await;
                        return;
                    }
                }
                // A write here wakes at once; another replica's within a second.
                tokio::select! {
                    _ = tx.closed() => return,
                    _ = writes.changed() => {}
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        });
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))))
    }
}
