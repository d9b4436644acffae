//! What rendering produces: one manifest, addressed the way server-side
//! apply needs, and the YAML stream `paved render` writes. Its own module
//! so that `apply` depends on the output type, not on the renderer.

/// One manifest: what server-side apply needs to address it, and its body.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub namespace: String,
    pub body: serde_json::Value,
}

/// The manifests as one multi-document YAML stream.
pub fn to_yaml(manifests: &[Manifest]) -> String {
    manifests
        .iter()
        .map(|m| yaml_serde::to_string(&m.body).unwrap_or_else(|e| format!("# cannot write {}/{}: {e}\n", m.kind, m.name)))
        .collect::<Vec<_>>()
        .join("---\n")
}
