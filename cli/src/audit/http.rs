//! The log's read side over HTTP on the endpoint's port (tlog-tiles under
//! `/audit/log/`): plain for an `http://` endpoint (embedded mode), and
//! for `https://` (production, mTLS) over the platform's TLS with the
//! server verified against `PAVED_CA_BUNDLE`, as the CLI's gRPC calls are.

use anyhow::Context;
use http_body_util::{BodyExt, Full};
use paved_audit::log::verify::Source;

type Plain = hyper_util::client::legacy::Client<hyper_util::client::legacy::connect::HttpConnector, Full<bytes::Bytes>>;

#[derive(Clone)]
enum Transport {
    Plain(Box<Plain>),
    /// HTTP/2 over the channel the gRPC calls use: the same TLS, the same
    /// check of the server.
    Tls(tonic::transport::Channel),
}

/// The log's read side on the endpoint's port.
#[derive(Clone)]
pub struct Http {
    base: String,
    transport: Transport,
}

impl Http {
    /// `127.0.0.1:7400`, `http://127.0.0.1:7400`, `https://…` or the same
    /// with `/audit/log/` after it. Fails only for an https endpoint
    /// without the trust bundle.
    pub fn new(endpoint: &str) -> anyhow::Result<Self> {
        let (tls, host) = match endpoint.strip_prefix("https://") {
            Some(host) => (true, host),
            None => (false, endpoint.strip_prefix("http://").unwrap_or(endpoint)),
        };
        let host = host.trim_end_matches('/');
        let host = host.strip_suffix("/audit/log").unwrap_or(host);
        let transport = if tls {
            Transport::Tls(crate::client::tls_channel(&format!("https://{host}"))?)
        } else {
            Transport::Plain(Box::new(hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http()))
        };
        Ok(Self { base: format!("http://{host}{}", paved_audit::log::http::PREFIX), transport })
    }

    /// Sends `request`; the answer's status and body.
    async fn send(&self, request: http::Request<Full<bytes::Bytes>>) -> anyhow::Result<(http::StatusCode, bytes::Bytes)> {
        match &self.transport {
            Transport::Plain(client) => {
                let response = client.request(request).await?;
                let status = response.status();
                Ok((status, response.into_body().collect().await?.to_bytes()))
            }
            Transport::Tls(channel) => {
                use tower::ServiceExt;
                let response = channel.clone().oneshot(request.map(tonic::body::Body::new)).await?;
                let status = response.status();
                Ok((status, response.into_body().collect().await?.to_bytes()))
            }
        }
    }
}

impl Source for Http {
    async fn get(&self, path: &str) -> anyhow::Result<Option<Vec<u8>>> {
        let url = format!("{}{path}", self.base);
        let request = http::Request::get(&url).body(Full::default())?;
        let (status, body) = self.send(request).await.with_context(|| format!("GET {url} (is the platform running there?)"))?;
        if status == http::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let body = body.to_vec();
        anyhow::ensure!(status.is_success(), "GET {url}: {status}: {}", String::from_utf8_lossy(&body).trim());
        Ok(Some(body))
    }
}

impl Http {
    /// POSTs `body` to a path under the prefix; the answer's text, or why not.
    pub async fn post(&self, path: &str, body: Vec<u8>) -> anyhow::Result<String> {
        let url = format!("{}{path}", self.base);
        let request = http::Request::post(&url).body(Full::new(bytes::Bytes::from(body)))?;
        let (status, body) = self.send(request).await.with_context(|| format!("POST {url}"))?;
        let text = String::from_utf8_lossy(&body).trim().to_string();
        anyhow::ensure!(status.is_success(), "POST {url}: {status}: {text}");
        Ok(text)
    }
}
