//! Server-side apply of rendered manifests through `kube`: Paved owns the
//! fields it sets (field manager `paved`, conflicts forced, since the spec is
//! the source of truth), and re-applying the same manifests changes nothing.

use crate::manifest::Manifest;
use kube::{
    Client, Config,
    api::{Api, Patch, PatchParams},
    config::{KubeConfigOptions, Kubeconfig},
    core::{ApiResource, DynamicObject, GroupVersionKind},
};
use std::path::Path;

/// What one manifest's apply did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub kind: String,
    pub name: String,
    /// The object's `metadata.resourceVersion` after the apply.
    pub resource_version: String,
}

/// Applies `manifests` in order with the cluster and credentials of the
/// kubeconfig at `kubeconfig`, stopping at the first error (which names the
/// object and the API server's answer).
pub async fn apply(kubeconfig: &Path, manifests: &[Manifest]) -> anyhow::Result<Vec<Applied>> {
    use anyhow::Context;
    let file = Kubeconfig::read_from(kubeconfig).with_context(|| format!("read kubeconfig {}", kubeconfig.display()))?;
    let config = Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
        .await
        .with_context(|| format!("use kubeconfig {}", kubeconfig.display()))?;
    let client = Client::try_from(config).context("a Kubernetes client")?;
    let params = PatchParams::apply("paved").force();
    let mut out = Vec::new();
    for m in manifests {
        let (group, version) = m.api_version.rsplit_once('/').unwrap_or(("", &m.api_version));
        let resource = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, &m.kind), &plural(&m.kind));
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &m.namespace, &resource);
        let applied = api
            .patch(&m.name, &params, &Patch::Apply(&m.body))
            .await
            .with_context(|| format!("server-side apply of {}/{} in namespace {}", m.kind, m.name, m.namespace))?;
        out.push(Applied {
            kind: m.kind.clone(),
            name: m.name.clone(),
            resource_version: applied.metadata.resource_version.unwrap_or_default(),
        });
    }
    Ok(out)
}

/// The resource path of a kind Paved renders (`NetworkPolicy` →
/// `networkpolicies`).
fn plural(kind: &str) -> String {
    let lower = kind.to_ascii_lowercase();
    match lower.strip_suffix('y') {
        Some(stem) => format!("{stem}ies"),
        None => format!("{lower}s"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn plurals_of_the_rendered_kinds() {
        let kinds = ["ServiceAccount", "Role", "RoleBinding", "NetworkPolicy", "PodDisruptionBudget", "Deployment", "Service", "HTTPRoute"];
        let plurals: Vec<String> = kinds.iter().map(|k| super::plural(k)).collect();
        assert_eq!(
            plurals,
            [
                "serviceaccounts",
                "roles",
                "rolebindings",
                "networkpolicies",
                "poddisruptionbudgets",
                "deployments",
                "services",
                "httproutes"
            ]
        );
    }
}
