//! Revisions as people name them: by number. The API names a revision by
//! its id (a UUID); the commands that print one look its number up here
//! and show the id only in `--output json`.

use crate::client::failed;
use paved_grpc::client::AuthChannel;
use paved_proto::provisioner::v1::{GetRevisionRequest, provisioner_service_client::ProvisionerServiceClient};
use std::collections::HashMap;

/// Revision id → number, for the ids given (an empty id is left out, and
/// so is one the platform no longer knows: it is shown as its id).
pub async fn numbers<'a>(channel: &AuthChannel, ids: impl IntoIterator<Item = &'a str>) -> anyhow::Result<HashMap<String, i64>> {
    let mut client = ProvisionerServiceClient::new(channel.clone());
    let mut out = HashMap::new();
    for id in ids {
        if id.is_empty() || out.contains_key(id) {
            continue;
        }
        match client.get_revision(GetRevisionRequest { id: id.to_string() }).await {
            Ok(r) => {
                if let Some(revision) = r.into_inner().revision {
                    out.insert(id.to_string(), revision.number);
                }
            }
            Err(s) if s.code() == tonic::Code::NotFound => {}
            Err(s) => return Err(failed(s)),
        }
    }
    Ok(out)
}

/// How a table shows a revision: its number, else its id.
pub fn label(numbers: &HashMap<String, i64>, id: &str) -> String {
    numbers.get(id).map_or_else(|| id.to_string(), i64::to_string)
}
