//! Keys at the edge: `GetKeySet` (open: verifiers fetch it before they can
//! verify anything), `RotateSigningKey`, and `RewrapKeys`, which re-seals
//! every area's keys under the current root key.

use crate::authority::Authority;
use crate::ca::Ca;
use crate::database::Databases;
use crate::keys::{KeySet, PublicKey};
use crate::recorder::Recorder;
use crate::secrets::Secrets;
use paved_grpc::{auth, status};
use paved_proto::secrets_broker::v1::{
    self as pb, GetKeySetRequest, GetKeySetResponse, RevokedToken, RewrapKeysRequest, RewrapKeysResponse, RotateSigningKeyRequest,
    RotateSigningKeyResponse,
};
use paved_proto::timestamp_from_millis;
use tonic::{Request, Response, Status};

pub(super) struct KeysApi {
    pub authority: Authority,
    pub secrets: Secrets,
    pub databases: Databases,
    pub ca: Ca,
    pub recorder: Recorder,
}

impl From<&PublicKey> for pb::PublicKey {
    fn from(key: &PublicKey) -> Self {
        pb::PublicKey {
            key_id: key.key_id.clone(),
            ed25519: key.ed25519.clone(),
            create_time: Some(timestamp_from_millis(key.create_time_ms)),
            retire_time: key.retire_time_ms.map(timestamp_from_millis),
        }
    }
}

impl From<&KeySet> for GetKeySetResponse {
    fn from(set: &KeySet) -> Self {
        GetKeySetResponse {
            version: set.version,
            not_modified: false,
            keys: set.keys.iter().map(pb::PublicKey::from).collect(),
            revoked: set
                .revoked
                .iter()
                .map(|r| RevokedToken { token_id: r.token_id.clone(), expire_time: Some(timestamp_from_millis(r.expire_time_ms)) })
                .collect(),
        }
    }
}

impl KeysApi {
    pub(super) async fn key_set(&self, request: Request<GetKeySetRequest>) -> Result<Response<GetKeySetResponse>, Status> {
        let known = request.into_inner().known_version;
        let set = self.authority.key_set().await?;
        if known == set.version {
            return Ok(Response::new(GetKeySetResponse { version: set.version, not_modified: true, ..Default::default() }));
        }
        Ok(Response::new(GetKeySetResponse::from(&*set)))
    }

    pub(super) async fn rotate(&self, request: Request<RotateSigningKeyRequest>) -> Result<Response<RotateSigningKeyResponse>, Status> {
        let caller = auth::require(&request, "rotate:keys")?;
        let key_id = self.authority.rotate(&caller.sub).await?;
        let keys = self.authority.key_set().await?.keys.iter().map(pb::PublicKey::from).collect();
        Ok(Response::new(RotateSigningKeyResponse { key_id, keys }))
    }

    pub(super) async fn rewrap(&self, request: Request<RewrapKeysRequest>) -> Result<Response<RewrapKeysResponse>, Status> {
        let caller = auth::require(&request, "rotate:keys")?;
        let signing = self.authority.rewrap().await? + self.ca.rewrap().await?;
        let (secret_keys, failed) = self.secrets.rewrap().await?;
        let data = secret_keys + self.databases.rewrap().await?;
        let root_key_id = self.authority.keys().current().id.clone();
        let what = format!("{signing} signing and CA keys, {data} data keys and connection URLs, {failed} data keys that do not open");
        self.recorder.record("root_key.rewrapped", &caller.sub, &root_key_id, &what).await;
        if failed > 0 {
            return Err(status::data_loss("KEYS_DO_NOT_OPEN", format!("{what}: the broker's log names them")));
        }
        Ok(Response::new(RewrapKeysResponse { rewrapped: i32::try_from(signing + data).unwrap_or(i32::MAX), root_key_id }))
    }
}
