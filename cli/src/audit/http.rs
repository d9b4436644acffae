//! The log's read side over plain HTTP on the endpoint's port
//! (tlog-tiles under `/audit/log/`).

use anyhow::Context;
use http_body_util::{BodyExt, Full};
use paved_audit::log::verify::Source;

/// The log's read side over plain HTTP on the endpoint's port.
#[derive(Clone)]
pub struct Http {
    base: String,
    client: hyper_util::client::legacy::Client<hyper_util::client::legacy::connect::HttpConnector, Full<bytes::Bytes>>,
}

impl Http {
    /// `127.0.0.1:7400`, `http://127.0.0.1:7400` or the same with
    /// `/audit/log/` after it.
    pub fn new(endpoint: &str) -> Self {
        let host = endpoint.strip_prefix("http://").unwrap_or(endpoint).trim_end_matches('/');
        let host = host.strip_suffix("/audit/log").unwrap_or(host);
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

impl Http {
    /// POSTs `body` to a path under the prefix; the answer's text, or why not.
    pub async fn post(&self, path: &str, body: Vec<u8>) -> anyhow::Result<String> {
        let url = format!("{}{path}", self.base);
        let request = http::Request::post(&url).body(Full::new(bytes::Bytes::from(body)))?;
        let response = self.client.request(request).await.with_context(|| format!("POST {url}"))?;
        let status = response.status();
        let body = response.into_body().collect().await.with_context(|| format!("POST {url}"))?.to_bytes();
        let text = String::from_utf8_lossy(&body).trim().to_string();
        anyhow::ensure!(status.is_success(), "POST {url}: {status}: {text}");
        Ok(text)
    }
}
