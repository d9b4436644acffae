//! The log's read side as C2SP tlog-tiles over HTTP, beside gRPC on
//! the service's port under `/audit/log/`: `checkpoint`,
//! `tile/<L>/<N>[.p/<W>]` and `tile/entries/<N>[.p/<W>]`. Open, as a
//! transparency log's read side is: anyone may check it, with the
//! verifier key alone, without Paved code.

use super::{append::Log, read::ReadError, tiles::TileRef};
use axum::{
    extract::State,
    response::{IntoResponse, Response},
};
use http::{HeaderValue, StatusCode, header};
use std::sync::Arc;

/// Where the routes sit on the service's port.
pub const PREFIX: &str = "/audit/log/";

/// Adds the routes to the server's router.
pub fn mount(routes: &mut tonic::service::Routes, log: Arc<Log>) {
    let router = routes.axum_router_mut();
    let tiles = axum::Router::new()
        .route("/audit/log/checkpoint", axum::routing::get(checkpoint))
        .route("/audit/log/tile/{*path}", axum::routing::get(tile))
        .route("/audit/log/cosignature", axum::routing::post(cosignature))
        .with_state(log);
    *router = std::mem::take(router).merge(tiles);
}

async fn checkpoint(State(log): State<Arc<Log>>) -> Response {
    match log.checkpoint().await {
        // Checkpoints change: clients must not cache them.
        Ok(signed) => {
            ([(header::CONTENT_TYPE, "text/plain; charset=utf-8"), (header::CACHE_CONTROL, "no-store")], signed.note).into_response()
        }
        Err(e) => failure(e),
    }
}

async fn tile(State(log): State<Arc<Log>>, uri: http::Uri) -> Response {
    // The path as sent, not as decoded: one tile, one path (a cache keyed
    // by `%30%30%30` must not hold tile 000).
    let Some(tile) = uri.path().strip_prefix(PREFIX).and_then(TileRef::parse) else {
        return (StatusCode::NOT_FOUND, "not a tlog-tiles path\n").into_response();
    };
    match log.tile(tile).await {
        Ok(Some(data)) => {
            let mut response = data.into_response();
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
            // A tile at a width never changes: a partial one is a prefix
            // of its full self, and is served under its own path.
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable"));
            response
        }
        Ok(None) => (StatusCode::NOT_FOUND, "the log has no such tile yet\n").into_response(),
        Err(e) => failure(e),
    }
}

/// A witness hands in the checkpoint it cosigned (the signed note with its
/// cosignature line); kept if the witness is trusted and the checkpoint is
/// one this log signed. Open: the cosignature is the credential.
async fn cosignature(State(log): State<Arc<Log>>, body: axum::body::Bytes) -> Response {
    use super::witnessed::CosignError;
    match log.add_cosignatures(&body).await {
        Ok(witnesses) => (StatusCode::OK, format!("kept the cosignatures of {}\n", witnesses.join(", "))).into_response(),
        Err(e @ CosignError::Malformed(_)) => (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
        Err(e @ CosignError::NotOurs) => (StatusCode::CONFLICT, format!("{e}\n")).into_response(),
        Err(e @ CosignError::Untrusted(_)) => (StatusCode::FORBIDDEN, format!("{e}\n")).into_response(),
        Err(CosignError::Db(e)) => failure(ReadError::Db(e)),
    }
}

/// A failure as HTTP: the cause is logged under an id, never sent.
fn failure(e: ReadError) -> Response {
    match e {
        ReadError::NoCheckpoint => (StatusCode::SERVICE_UNAVAILABLE, "no checkpoint has been signed yet\n").into_response(),
        e => {
            let id = paved_grpc::status::error_id();
            tracing::error!(error_id = %id, error = %e, "the audit log could not be read");
            let code = if matches!(e, ReadError::Db(_)) { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::INTERNAL_SERVER_ERROR };
            (code, format!("the log cannot be read (error id {id})\n")).into_response()
        }
    }
}
