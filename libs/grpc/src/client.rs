//! The client side of authentication: a channel that presents a token on
//! every call. The token can be replaced while clients use the channel (a
//! service renews its own before it expires).

use std::sync::{Arc, RwLock};
use tonic::{
    metadata::{AsciiMetadataKey, AsciiMetadataValue, MetadataValue},
    service::{Interceptor, interceptor::InterceptedService},
    transport::Channel,
};

/// A channel whose calls carry `authorization: Bearer <token>`.
pub type AuthChannel = InterceptedService<Channel, Bearer>;

/// The token a client presents; clones share it.
#[derive(Clone, Default)]
pub struct Bearer {
    value: Arc<RwLock<Option<AsciiMetadataValue>>>,
}

impl std::fmt::Debug for Bearer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token.
        f.write_str("Bearer(…)")
    }
}

impl Bearer {
    /// Presents `token`; an empty one presents none.
    pub fn new(token: &str) -> anyhow::Result<Self> {
        let bearer = Self::default();
        bearer.set(token)?;
        Ok(bearer)
    }

    /// Replaces the token for the calls that follow.
    pub fn set(&self, token: &str) -> anyhow::Result<()> {
        let value = if token.is_empty() {
            None
        } else {
            let mut value: AsciiMetadataValue = MetadataValue::try_from(format!("Bearer {}", token.trim()))
                .map_err(|_| anyhow::anyhow!("a token is printable ASCII without spaces"))?;
            // Kept out of debug output and HTTP/2 header compression tables.
            value.set_sensitive(true);
            Some(value)
        };
        *self.value.write().unwrap_or_else(|e| e.into_inner()) = value;
        Ok(())
    }

    pub fn is_set(&self) -> bool {
        self.value.read().unwrap_or_else(|e| e.into_inner()).is_some()
    }

    /// `channel` with this token on every call.
    pub fn on(&self, channel: Channel) -> AuthChannel {
        InterceptedService::new(channel, self.clone())
    }
}

impl Interceptor for Bearer {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = self.value.read().unwrap_or_else(|e| e.into_inner()).clone() {
            request.metadata_mut().insert("authorization", value);
        }
        // The caller's trace (and the lineage it carries) goes on with the
        // call: `traceparent` and `baggage`.
        let mut headers = http::HeaderMap::new();
        paved_telemetry::propagation::inject_current(&mut headers);
        for (name, value) in &headers {
            if let (Ok(key), Ok(value)) = (name.as_str().parse::<AsciiMetadataKey>(), AsciiMetadataValue::try_from(value.as_bytes())) {
                request.metadata_mut().insert(key, value);
            }
        }
        Ok(request)
    }
}
