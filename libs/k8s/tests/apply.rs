//! Server-side apply as the API server sees it. No Kubernetes API server can
//! run on this machine, so a small HTTP server stands in for one: it records
//! each request and answers as the API server does, with the applied object
//! and a new `resourceVersion`.

use axum::{
    body::Bytes,
    http::{HeaderMap, Method, StatusCode, Uri},
    response::IntoResponse,
};
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone)]
struct Request {
    method: Method,
    uri: String,
    content_type: String,
    body: serde_json::Value,
}

#[tokio::test]
async fn manifests_are_applied_server_side_in_order() {
    let seen: Arc<Mutex<Vec<Request>>> = Arc::default();
    let record = seen.clone();
    let app = axum::Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
        let record = record.clone();
        async move {
            let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
            let Ok(mut body) = serde_json::from_slice::<serde_json::Value>(&body) else {
                return (StatusCode::BAD_REQUEST, "not JSON").into_response();
            };
            let mut seen = record.lock().expect("lock");
            seen.push(Request { method, uri: uri.to_string(), content_type, body: body.clone() });
            body["metadata"]["resourceVersion"] = seen.len().to_string().into();
            ([("content-type", "application/json")], body.to_string()).into_response()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = std::env::temp_dir().join(format!("paved-k8s-apply-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let kubeconfig = dir.join("config");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: local\n  cluster:\n    server: http://{addr}\ncontexts:\n- name: local\n  context:\n    cluster: local\n    user: paved\ncurrent-context: local\nusers:\n- name: paved\n  user:\n    token: not-a-real-token\n"
        ),
    )
    .expect("write kubeconfig");

    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/web.paved.yaml")).expect("spec");
    let spec = paved_spec::parse(&text, "web.paved.yaml").expect("valid");
    let target = paved_k8s::Target { canary_weight: Some(5), ..Default::default() };
    let manifests = paved_k8s::manifests(&spec, "staging", &target).expect("render");
    let applied = paved_k8s::apply(&kubeconfig, &manifests).await.expect("apply");

    let seen = seen.lock().expect("lock").clone();
    assert_eq!(seen.len(), manifests.len(), "one request per manifest");
    assert_eq!(applied.iter().map(|a| a.resource_version.as_str()).collect::<Vec<_>>(), ["1", "2", "3", "4", "5", "6", "7", "8", "9"]);
    let paths: Vec<&str> = seen.iter().map(|r| r.uri.split('?').next().unwrap_or_default()).collect();
    assert_eq!(
        paths,
        [
            "/api/v1/namespaces/staging/serviceaccounts/web",
            "/apis/rbac.authorization.k8s.io/v1/namespaces/staging/roles/web",
            "/apis/rbac.authorization.k8s.io/v1/namespaces/staging/rolebindings/web",
            "/apis/networking.k8s.io/v1/namespaces/staging/networkpolicies/default-deny",
            "/apis/networking.k8s.io/v1/namespaces/staging/networkpolicies/web",
            "/apis/policy/v1/namespaces/staging/poddisruptionbudgets/web",
            "/apis/apps/v1/namespaces/staging/deployments/web-canary",
            "/api/v1/namespaces/staging/services/web-canary",
            "/apis/gateway.networking.k8s.io/v1/namespaces/staging/httproutes/web",
        ]
    );
    for (request, manifest) in seen.iter().zip(&manifests) {
        assert_eq!(request.method, Method::PATCH);
        assert_eq!(request.content_type, "application/apply-patch+yaml", "server-side apply");
        assert!(request.uri.contains("fieldManager=paved") && request.uri.contains("force=true"), "{}", request.uri);
        assert_eq!(request.body, manifest.body, "the manifest as rendered");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_missing_kubeconfig_is_a_clear_error() {
    let e = paved_k8s::apply(std::path::Path::new("/nonexistent/kubeconfig"), &[]).await.expect_err("no kubeconfig");
    assert!(format!("{e:#}").contains("read kubeconfig /nonexistent/kubeconfig"), "{e:#}");
}
