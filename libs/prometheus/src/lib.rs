//! A Prometheus client: range queries over the HTTP API
//! (`/api/v1/query_range`), for the canary analyzer's metrics named by
//! PromQL and the cost scheduler's usage.
//!
//! Every way a query can come back without usable numbers — Prometheus
//! unreachable, an answer that is not Prometheus', a query it refuses, no
//! series, only NaN — is an error naming it, so a judge says "inconclusive
//! because …" and a recommendation says why there is none, never passing
//! on missing data.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use serde::Deserialize;
use std::{
    collections::BTreeMap,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProviderError {
    #[error("Prometheus at {url} is unreachable: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("Prometheus answered HTTP {status} without a Prometheus error body: {body}")]
    Http { status: u16, body: String },
    #[error("Prometheus refused the query ({kind}): {message}")]
    Query { kind: String, message: String },
    #[error("no data for {query}: {why}")]
    NoData { query: String, why: String },
    #[error("Prometheus' answer is malformed: {0}")]
    Malformed(String),
}

/// One series of a range query: its labels and (unix seconds, value) pairs.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub labels: BTreeMap<String, String>,
    pub values: Vec<(f64, f64)>,
}

pub struct Prometheus {
    base: String,
    client: Client<HttpConnector, Empty<Bytes>>,
    timeout: Duration,
}

impl Prometheus {
    /// `base`: e.g. `http://127.0.0.1:9090`.
    pub fn new(base: &str, timeout: Duration) -> Self {
        Self { base: base.trim_end_matches('/').to_string(), client: Client::builder(TokioExecutor::new()).build_http(), timeout }
    }

    /// Evaluates `query` from `start` to `end` every `step`. At least one
    /// series with a number in it, or an error.
    pub async fn query_range(&self, query: &str, start: SystemTime, end: SystemTime, step: Duration) -> Result<Vec<Series>, ProviderError> {
        let secs = |t: SystemTime| t.duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
        let url = format!(
            "{}/api/v1/query_range?query={}&start={:.3}&end={:.3}&step={:.3}",
            self.base,
            encode(query),
            secs(start),
            secs(end),
            step.as_secs_f64().max(0.001)
        );
        let unreachable = |reason: String| ProviderError::Unreachable { url: self.base.clone(), reason };
        let uri: http::Uri = url.parse().map_err(|e| ProviderError::Malformed(format!("query URL: {e}")))?;
        let response = tokio::time::timeout(self.timeout, self.client.get(uri))
            .await
            .map_err(|_| unreachable(format!("no answer within {:?}", self.timeout)))?
            .map_err(|e| unreachable(e.to_string()))?;
        let status = response.status().as_u16();
        let body = tokio::time::timeout(self.timeout, response.into_body().collect())
            .await
            .map_err(|_| unreachable(format!("the answer did not finish within {:?}", self.timeout)))?
            .map_err(|e| unreachable(e.to_string()))?
            .to_bytes();
        parse(query, status, &body)
    }
}

#[derive(Deserialize)]
struct Answer {
    status: String,
    data: Option<Data>,
    #[serde(rename = "errorType")]
    error_type: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    result: Vec<RawSeries>,
}

#[derive(Deserialize)]
struct RawSeries {
    metric: BTreeMap<String, String>,
    values: Vec<(f64, String)>,
}

/// An answer of the query range API (`status` its HTTP status).
fn parse(query: &str, status: u16, body: &[u8]) -> Result<Vec<Series>, ProviderError> {
    let answer: Answer = serde_json::from_slice(body)
        .map_err(|_| ProviderError::Http { status, body: String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned() })?;
    if answer.status != "success" {
        return Err(ProviderError::Query {
            kind: answer.error_type.unwrap_or_else(|| format!("HTTP {status}")),
            message: answer.error.unwrap_or_default(),
        });
    }
    let data = answer.data.ok_or_else(|| ProviderError::Malformed("a success without data".into()))?;
    if data.result_type != "matrix" {
        return Err(ProviderError::Malformed(format!("a range query gave a {}, not a matrix", data.result_type)));
    }
    let no_data = |why: &str| ProviderError::NoData { query: query.to_string(), why: why.to_string() };
    if data.result.is_empty() {
        return Err(no_data("no series matched"));
    }
    let mut out = Vec::with_capacity(data.result.len());
    for s in data.result {
        // Prometheus writes values as strings, "NaN" and "+Inf" included.
        let values = s
            .values
            .into_iter()
            .map(|(t, v)| v.parse::<f64>().map(|v| (t, v)).map_err(|_| ProviderError::Malformed(format!("value {v:?}"))))
            .collect::<Result<Vec<_>, _>>()?;
        out.push(Series { labels: s.metric, values });
    }
    if out.iter().all(|s| s.values.iter().all(|(_, v)| !v.is_finite())) {
        return Err(no_data("every value is NaN or infinite"));
    }
    Ok(out)
}

/// Percent-encodes a query parameter (RFC 3986: all but unreserved).
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_without_numbers_are_errors_that_say_why() {
        let ok =
            br#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"job":"a"},"values":[[1.5,"2"],[2.5,"NaN"]]}]}}"#;
        let series = parse("q", 200, ok).expect("a series");
        assert_eq!(series[0].labels["job"], "a");
        assert_eq!(series[0].values[0], (1.5, 2.0));
        assert!(series[0].values[1].1.is_nan());
        let nan = br#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"NaN"]]}]}}"#;
        assert_eq!(parse("q", 200, nan), Err(ProviderError::NoData { query: "q".into(), why: "every value is NaN or infinite".into() }));
        let none = br#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#;
        assert!(matches!(parse("q", 200, none), Err(ProviderError::NoData { .. })));
        let refused = br#"{"status":"error","errorType":"bad_data","error":"parse error"}"#;
        assert_eq!(parse("q", 400, refused), Err(ProviderError::Query { kind: "bad_data".into(), message: "parse error".into() }));
        assert!(matches!(parse("q", 502, b"<html>bad gateway</html>"), Err(ProviderError::Http { status: 502, .. })));
        assert_eq!(encode("sum(up{job=\"a b\"})"), "sum%28up%7Bjob%3D%22a%20b%22%7D%29");
    }
}
