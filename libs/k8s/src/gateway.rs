//! The few fields of Gateway API's `HTTPRoute` (gateway.networking.k8s.io/v1)
//! a canary needs: Gateway API is not part of the core API `k8s-openapi`
//! covers, so these are written by hand.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct HttpRoute {
    pub(crate) api_version: &'static str,
    pub(crate) kind: &'static str,
    pub(crate) metadata: ObjectMeta,
    pub(crate) spec: HttpRouteSpec,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct HttpRouteSpec {
    pub(crate) parent_refs: Vec<ParentRef>,
    pub(crate) rules: Vec<HttpRouteRule>,
}

#[derive(Debug, Serialize)]
pub(crate) struct ParentRef {
    pub(crate) name: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct HttpRouteRule {
    pub(crate) backend_refs: Vec<BackendRef>,
}

#[derive(Debug, Serialize)]
pub(crate) struct BackendRef {
    pub(crate) kind: String,
    pub(crate) name: String,
    pub(crate) port: u16,
    pub(crate) weight: u32,
}
