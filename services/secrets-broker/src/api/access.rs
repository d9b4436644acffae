//! What a handler checks of its caller beyond the auth layer: that a token
//! let through on any audience is for the broker or the platform, and that
//! it holds the scope the request needs — a refusal being an event.

use crate::identities::SOURCE;
use crate::recorder::Recorder;
use paved_grpc::{auth, status};
use paved_token::Claims;
use tonic::Status;

/// Token-only methods take any audience past the auth layer (a workload's
/// identity is for the broker, not for the platform): here, only a token
/// for the broker or the platform.
pub(super) fn for_broker(caller: &Claims) -> Result<(), Status> {
    if caller.aud != auth::PLATFORM_AUDIENCE && caller.aud != SOURCE {
        return Err(status::unauthenticated(
            "TOKEN_WRONG_AUDIENCE",
            format!("a token for {} cannot be used here: ask for one for {} or {}", caller.aud, auth::PLATFORM_AUDIENCE, SOURCE),
        ));
    }
    Ok(())
}

/// A token for the broker or the platform holding `scope`; a denial is
/// the event `denied` about `target`.
pub(super) async fn needs(recorder: &Recorder, caller: &Claims, scope: &str, target: &str, denied: &str) -> Result<(), Status> {
    for_broker(caller)?;
    if !caller.allows(scope) {
        recorder.record(denied, &caller.sub, target, &format!("lacks {scope}")).await;
        return Err(auth::missing_scope(&caller.sub, scope));
    }
    Ok(())
}
