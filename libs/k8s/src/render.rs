//! Rendering a workload spec into manifests: the builder that turns each
//! part of the spec into a typed `k8s-openapi` object, in apply order.

use crate::{
    gateway::{BackendRef, HttpRoute, HttpRouteRule, HttpRouteSpec, ParentRef},
    manifest::Manifest,
};
use k8s_openapi::{
    api::{
        apps::v1::{Deployment, DeploymentSpec},
        core::v1::{
            Capabilities, Container, ContainerPort, EmptyDirVolumeSource, EnvVar, EnvVarSource, HTTPGetAction, KeyToPath,
            PodSecurityContext, PodSpec, PodTemplateSpec, Probe, ProjectedVolumeSource, ResourceRequirements, SeccompProfile,
            SecretKeySelector, SecretProjection, SecurityContext, Service, ServiceAccount, ServicePort, ServiceSpec, Volume, VolumeMount,
            VolumeProjection,
        },
        networking::v1::{NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPort, NetworkPolicySpec},
        policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec},
        rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject},
    },
    apimachinery::pkg::{
        api::resource::Quantity,
        apis::meta::v1::{LabelSelector, ObjectMeta},
        util::intstr::IntOrString,
    },
};
use paved_spec::{Quantities, Run, WorkloadSpec};

/// Where a pod's `secret_files` are mounted (`$PAVED_SECRETS_DIR`).
const SECRETS_DIR: &str = "/var/run/paved/secrets";
use std::{collections::BTreeMap, time::Duration};

/// Where the manifests point outside the spec.
#[derive(Debug, Clone)]
pub struct Target {
    /// Image repository prefix: the image is `<registry>/<workload>@sha256:…`.
    pub registry: String,
    /// The Gateway API `Gateway` a canary's route attaches to.
    pub gateway: String,
    /// Render the spec as a canary taking this percentage of traffic.
    pub canary_weight: Option<u32>,
    /// Render it asleep: its Deployments at `replicas: 0`.
    pub asleep: bool,
}

impl Default for Target {
    fn default() -> Self {
        Self { registry: "registry.paved.local".into(), gateway: "paved".into(), canary_weight: None, asleep: false }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error(
        "the Kubernetes target runs artifacts pinned by digest: push the executable with `paved artifact push` and set `artifact: sha256:…` (this spec runs {0})"
    )]
    NotPinned(String),
    #[error("a canary weight is a percentage between 1 and 99, got {0}")]
    CanaryWeight(u32),
    #[error("workload name {0:?} cannot name Kubernetes services: it must start with a letter and have at most 56 characters")]
    Name(String),
    #[error("cannot encode {0}: {1}")]
    Encode(String, serde_json::Error),
}

const MANAGED_BY: &str = "paved";
const NON_ROOT_UID: i64 = 65532;

/// The manifests for `spec` in `environment`, in the order they apply.
pub fn manifests(spec: &WorkloadSpec, environment: &str, target: &Target) -> Result<Vec<Manifest>, RenderError> {
    let image = match &spec.run {
        Run::Artifact(digest) if paved_spec::is_digest(digest) => {
            format!("{}/{}@{digest}", target.registry.trim_end_matches('/'), spec.name)
        }
        Run::Artifact(path) => return Err(RenderError::NotPinned(format!("the file {path}"))),
        Run::Command(argv) => return Err(RenderError::NotPinned(format!("the command {:?}", argv.join(" ")))),
    };
    if let Some(w) = target.canary_weight
        && !(1..=99).contains(&w)
    {
        return Err(RenderError::CanaryWeight(w));
    }
    // Service names are DNS-1035 labels, and `<name>-canary` must fit 63.
    if !spec.name.starts_with(|c: char| c.is_ascii_lowercase()) || spec.name.len() > 56 {
        return Err(RenderError::Name(spec.name.clone()));
    }
    let k = Builder { spec, namespace: environment, asleep: target.asleep };
    let mut out = Vec::new();
    let mut push = |kind: &str, name: &str, object: &dyn erased::Object| -> Result<(), RenderError> {
        let body = object.json().map_err(|e| RenderError::Encode(format!("{kind}/{name}"), e))?;
        let api_version = body["apiVersion"].as_str().unwrap_or_default().to_string();
        out.push(Manifest { api_version, kind: kind.into(), name: name.into(), namespace: environment.into(), body });
        Ok(())
    };
    let name = spec.name.as_str();
    push("ServiceAccount", name, &k.service_account())?;
    push("Role", name, &k.role())?;
    push("RoleBinding", name, &k.role_binding())?;
    push("NetworkPolicy", "default-deny", &k.default_deny())?;
    push("NetworkPolicy", name, &k.network_policy())?;
    push("PodDisruptionBudget", name, &k.pdb())?;
    match target.canary_weight {
        None => {
            push("Deployment", name, &k.deployment(name, "stable", &image))?;
            push("Service", name, &k.service(name, "stable"))?;
        }
        Some(weight) => {
            let canary = format!("{name}-canary");
            push("Deployment", &canary, &k.deployment(&canary, "canary", &image))?;
            push("Service", &canary, &k.service(&canary, "canary"))?;
            push("HTTPRoute", name, &k.http_route(&target.gateway, weight))?;
        }
    }
    Ok(out)
}

/// Lets `manifests` push every typed object through one function.
mod erased {
    pub trait Object {
        fn json(&self) -> Result<serde_json::Value, serde_json::Error>;
    }
    impl<T: serde::Serialize> Object for T {
        fn json(&self) -> Result<serde_json::Value, serde_json::Error> {
            serde_json::to_value(self)
        }
    }
}

struct Builder<'a> {
    spec: &'a WorkloadSpec,
    namespace: &'a str,
    /// Deployments at `replicas: 0`.
    asleep: bool,
}

impl Builder<'_> {
    fn meta(&self, name: &str) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(self.namespace.to_string()),
            labels: Some(self.labels(None)),
            ..Default::default()
        }
    }

    fn labels(&self, track: Option<&str>) -> BTreeMap<String, String> {
        let mut labels = BTreeMap::from([
            ("app.kubernetes.io/name".to_string(), self.spec.name.clone()),
            ("app.kubernetes.io/managed-by".to_string(), MANAGED_BY.to_string()),
        ]);
        if let Some(track) = track {
            labels.insert("paved.dev/track".into(), track.into());
        }
        // Cost tools that attribute by label (OpenCost, Kubecost) see the team.
        if let Some(team) = &self.spec.team {
            labels.insert("paved.dev/team".into(), team.clone());
        }
        labels
    }

    /// The spec's schedule as annotations: Paved's own always, and
    /// kube-downscaler's (the same vocabulary, so a kube-downscaler in the
    /// cluster acts on it) when every range fits its stricter grammar (see
    /// [`downscaler_range`]); excluded dates and idleness, which it has no
    /// word for, as Paved's.
    fn schedule_annotations(&self) -> Option<BTreeMap<String, String>> {
        let schedule = self.spec.schedule.as_ref()?;
        let mut annotations = BTreeMap::new();
        let (kind, ranges) = match &schedule.hours {
            paved_spec::Hours::Always => ("uptime", None),
            paved_spec::Hours::Uptime(ranges) => ("uptime", Some(ranges)),
            paved_spec::Hours::Downtime(ranges) => ("downtime", Some(ranges)),
        };
        let ranges: Vec<&str> = ranges.map_or_else(Vec::new, |r| r.iter().map(|r| r.text()).collect());
        let paved = match (&schedule.hours, ranges.is_empty()) {
            (paved_spec::Hours::Always, _) => "always".to_string(),
            (_, true) => "never".to_string(),
            _ => ranges.join(", "),
        };
        annotations.insert(format!("paved.dev/{kind}"), paved.clone());
        let downscaler: Option<Vec<String>> =
            if ranges.is_empty() { Some(vec![paved]) } else { ranges.iter().map(|r| downscaler_range(r)).collect() };
        if let Some(ranges) = downscaler {
            annotations.insert(format!("downscaler/{kind}"), ranges.join(","));
            annotations.insert("downscaler/downtime-replicas".to_string(), "0".to_string());
        }
        if !schedule.exclude.is_empty() {
            let dates: Vec<String> = schedule.exclude.iter().map(|d| d.to_string()).collect();
            annotations.insert("paved.dev/exclude".to_string(), dates.join(","));
        }
        if let Some(idle) = schedule.idle_after {
            annotations.insert("paved.dev/idle-after".to_string(), format!("{}s", idle.as_secs()));
        }
        Some(annotations)
    }

    /// Every pod of the workload, whatever its track.
    fn selector(&self, track: Option<&str>) -> LabelSelector {
        let mut labels = BTreeMap::from([("app.kubernetes.io/name".to_string(), self.spec.name.clone())]);
        if let Some(track) = track {
            labels.insert("paved.dev/track".into(), track.into());
        }
        LabelSelector { match_labels: Some(labels), ..Default::default() }
    }

    fn service_account(&self) -> ServiceAccount {
        ServiceAccount { metadata: self.meta(&self.spec.name), automount_service_account_token: Some(false), ..Default::default() }
    }

    fn role(&self) -> Role {
        let rules = (!self.spec.secrets.is_empty()).then(|| {
            vec![PolicyRule {
                api_groups: Some(vec![String::new()]),
                resources: Some(vec!["secrets".into()]),
                resource_names: Some(self.spec.secrets.clone()),
                verbs: vec!["get".into()],
                ..Default::default()
            }]
        });
        Role { metadata: self.meta(&self.spec.name), rules: Some(rules.unwrap_or_default()) }
    }

    fn role_binding(&self) -> RoleBinding {
        RoleBinding {
            metadata: self.meta(&self.spec.name),
            role_ref: RoleRef { api_group: "rbac.authorization.k8s.io".into(), kind: "Role".into(), name: self.spec.name.clone() },
            subjects: Some(vec![Subject {
                kind: "ServiceAccount".into(),
                name: self.spec.name.clone(),
                namespace: Some(self.namespace.to_string()),
                ..Default::default()
            }]),
        }
    }

    fn default_deny(&self) -> NetworkPolicy {
        let mut meta = self.meta("default-deny");
        meta.labels = Some(BTreeMap::from([("app.kubernetes.io/managed-by".to_string(), MANAGED_BY.to_string())]));
        NetworkPolicy {
            metadata: meta,
            spec: Some(NetworkPolicySpec {
                pod_selector: Some(LabelSelector::default()),
                policy_types: Some(vec!["Ingress".into()]),
                ..Default::default()
            }),
        }
    }

    fn network_policy(&self) -> NetworkPolicy {
        NetworkPolicy {
            metadata: self.meta(&self.spec.name),
            spec: Some(NetworkPolicySpec {
                pod_selector: Some(self.selector(None)),
                policy_types: Some(vec!["Ingress".into()]),
                ingress: Some(vec![NetworkPolicyIngressRule {
                    ports: Some(vec![NetworkPolicyPort {
                        port: Some(IntOrString::Int(self.spec.port.into())),
                        protocol: Some("TCP".into()),
                        ..Default::default()
                    }]),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        }
    }

    fn pdb(&self) -> PodDisruptionBudget {
        PodDisruptionBudget {
            metadata: self.meta(&self.spec.name),
            spec: Some(PodDisruptionBudgetSpec {
                max_unavailable: Some(IntOrString::Int(1)),
                selector: Some(self.selector(None)),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn deployment(&self, name: &str, track: &str, image: &str) -> Deployment {
        let spec = self.spec;
        let mut meta = self.meta(name);
        meta.labels = Some(self.labels(Some(track)));
        meta.annotations = self.schedule_annotations();
        if self.asleep {
            // So a kube-downscaler scales it back up when its hours begin.
            meta.annotations.get_or_insert_with(BTreeMap::new).insert("downscaler/original-replicas".into(), spec.replicas.to_string());
        }
        Deployment {
            metadata: meta,
            spec: Some(DeploymentSpec {
                replicas: Some(if self.asleep { 0 } else { spec.replicas as i32 }),
                selector: self.selector(Some(track)),
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta { labels: Some(self.labels(Some(track))), ..Default::default() }),
                    spec: Some(PodSpec {
                        service_account_name: Some(spec.name.clone()),
                        automount_service_account_token: Some(!spec.secrets.is_empty()),
                        security_context: Some(PodSecurityContext {
                            run_as_non_root: Some(!spec.security.run_as_root),
                            run_as_user: Some(if spec.security.run_as_root { 0 } else { NON_ROOT_UID }),
                            // Mounted files (the secret files) belong to its group.
                            fs_group: (!spec.secret_files.is_empty()).then_some(NON_ROOT_UID),
                            seccomp_profile: Some(SeccompProfile { type_: "RuntimeDefault".into(), ..Default::default() }),
                            ..Default::default()
                        }),
                        containers: vec![self.container(image)],
                        volumes: Some(self.volumes()),
                        ..Default::default()
                    }),
                },
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn container(&self, image: &str) -> Container {
        let spec = self.spec;
        let probe = |failure_threshold: u32| Probe {
            http_get: Some(HTTPGetAction {
                path: Some(spec.health.path.clone()),
                port: IntOrString::String("http".into()),
                ..Default::default()
            }),
            period_seconds: Some(seconds(spec.health.period)),
            timeout_seconds: Some(seconds(spec.health.timeout)),
            failure_threshold: Some(failure_threshold as i32),
            ..Default::default()
        };
        let startup_attempts = spec.health.startup_timeout.as_millis().div_ceil(spec.health.period.as_millis().max(1)) as u32;
        Container {
            name: spec.name.clone(),
            image: Some(image.to_string()),
            ports: Some(vec![ContainerPort {
                name: Some("http".into()),
                container_port: spec.port.into(),
                protocol: Some("TCP".into()),
                ..Default::default()
            }]),
            env: Some(self.env()),
            resources: Some(ResourceRequirements {
                requests: quantities(&spec.resources.requests),
                limits: quantities(&spec.resources.limits),
                ..Default::default()
            }),
            security_context: Some(SecurityContext {
                allow_privilege_escalation: Some(spec.security.privileged),
                privileged: Some(spec.security.privileged),
                read_only_root_filesystem: Some(true),
                capabilities: Some(Capabilities { drop: Some(vec!["ALL".into()]), ..Default::default() }),
                ..Default::default()
            }),
            readiness_probe: Some(probe(spec.health.failure_threshold)),
            liveness_probe: Some(probe(spec.health.failure_threshold)),
            startup_probe: Some(probe(startup_attempts.max(1))),
            volume_mounts: Some(self.volume_mounts()),
            ..Default::default()
        }
    }

    /// A writable `/tmp`, and the `secret_files` as one projected volume:
    /// Secret `<name>` (key `value`) at `<SECRETS_DIR>/<name>`, 0440 and
    /// owned by the pod's `fsGroup` (the files are root's otherwise). The
    /// kubelet refreshes the files when a Secret changes; it sends no signal.
    fn volumes(&self) -> Vec<Volume> {
        let tmp = Volume { name: "tmp".into(), empty_dir: Some(EmptyDirVolumeSource::default()), ..Default::default() };
        let files = self.spec.secret_files.iter().map(|name| VolumeProjection {
            secret: Some(SecretProjection {
                name: name.clone(),
                items: Some(vec![KeyToPath { key: "value".into(), path: name.clone(), ..Default::default() }]),
                ..Default::default()
            }),
            ..Default::default()
        });
        let secrets = (!self.spec.secret_files.is_empty()).then(|| Volume {
            name: "paved-secrets".into(),
            projected: Some(ProjectedVolumeSource { sources: Some(files.collect()), default_mode: Some(0o440) }),
            ..Default::default()
        });
        std::iter::once(tmp).chain(secrets).collect()
    }

    fn volume_mounts(&self) -> Vec<VolumeMount> {
        let tmp = VolumeMount { name: "tmp".into(), mount_path: "/tmp".into(), ..Default::default() };
        let secrets = (!self.spec.secret_files.is_empty()).then(|| VolumeMount {
            name: "paved-secrets".into(),
            mount_path: SECRETS_DIR.into(),
            read_only: Some(true),
            ..Default::default()
        });
        std::iter::once(tmp).chain(secrets).collect()
    }

    /// `PORT`, then the spec's variables. A value that is exactly one
    /// `${secret:x}` reads Secret `x` (key `value`); a secret inside a longer
    /// value is read into `PAVED_SECRET_X` first and expanded with `$(…)`.
    fn env(&self) -> Vec<EnvVar> {
        let secret_var = |name: &str| format!("PAVED_SECRET_{}", name.to_ascii_uppercase().replace('-', "_"));
        let from_secret = |var: String, secret: &str| EnvVar {
            name: var,
            value_from: Some(EnvVarSource {
                secret_key_ref: Some(SecretKeySelector { name: secret.to_string(), key: "value".into(), ..Default::default() }),
                ..Default::default()
            }),
            ..Default::default()
        };
        // Reached at the pod's address (its Service): every interface.
        let mut env = vec![
            EnvVar { name: "PORT".into(), value: Some(self.spec.port.to_string()), ..Default::default() },
            EnvVar { name: "HOST".into(), value: Some("0.0.0.0".into()), ..Default::default() },
        ];
        if !self.spec.secret_files.is_empty() {
            env.push(EnvVar { name: "PAVED_SECRETS_DIR".into(), value: Some(SECRETS_DIR.into()), ..Default::default() });
        }
        let mut embedded: Vec<&str> = Vec::new();
        let mut vars = Vec::new();
        for (key, value) in &self.spec.env {
            let whole = value.strip_prefix("${secret:").and_then(|s| s.strip_suffix('}'));
            if let Some(secret) = whole.filter(|s| self.spec.secrets.iter().any(|d| d == s)) {
                vars.push(from_secret(key.clone(), secret));
                continue;
            }
            // Kubernetes expands `$(VAR)` and turns `$$` into `$` in every
            // value: escape each `$` so the workload sees the value as written
            // (as the local runtime passes it), then expand only the declared
            // secrets. An undeclared reference stays text: never a Secret read.
            let mut expanded = value.replace('$', "$$");
            for secret in &self.spec.secrets {
                let reference = format!("$${{secret:{secret}}}");
                if expanded.contains(&reference) {
                    expanded = expanded.replace(&reference, &format!("$({})", secret_var(secret)));
                    if !embedded.contains(&secret.as_str()) {
                        embedded.push(secret);
                    }
                }
            }
            vars.push(EnvVar { name: key.clone(), value: Some(expanded), ..Default::default() });
        }
        // `$(VAR)` expands only variables defined earlier in the list.
        env.extend(embedded.into_iter().map(|s| from_secret(secret_var(s), s)));
        env.extend(vars);
        env
    }

    fn service(&self, name: &str, track: &str) -> Service {
        Service {
            metadata: self.meta(name),
            spec: Some(ServiceSpec {
                selector: self.selector(Some(track)).match_labels,
                ports: Some(vec![ServicePort {
                    name: Some("http".into()),
                    port: self.spec.port.into(),
                    target_port: Some(IntOrString::String("http".into())),
                    protocol: Some("TCP".into()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn http_route(&self, gateway: &str, weight: u32) -> HttpRoute {
        let name = &self.spec.name;
        let backend = |service: String, weight: u32| BackendRef { kind: "Service".into(), name: service, port: self.spec.port, weight };
        HttpRoute {
            api_version: "gateway.networking.k8s.io/v1",
            kind: "HTTPRoute",
            metadata: self.meta(name),
            spec: HttpRouteSpec {
                parent_refs: vec![ParentRef { name: gateway.to_string() }],
                rules: vec![HttpRouteRule {
                    backend_refs: vec![backend(name.clone(), 100 - weight), backend(format!("{name}-canary"), weight)],
                }],
            },
        }
    }
}

/// Whole seconds, at least 1: Kubernetes probes count in seconds.
/// A range in kube-downscaler's grammar (`Mon-Fri 07:30-20:30 Europe/Berlin`:
/// a day range, a time range within one day, a zone), or None when it has
/// no way to say it: a range past midnight (`Fri 22:00-06:00`). A single
/// day is written as a range of one (`Sat` → `Sat-Sat`).
fn downscaler_range(text: &str) -> Option<String> {
    let parts: Vec<&str> = text.split_whitespace().collect();
    let [days, hours, zone] = parts.as_slice() else { return None };
    let days = if days.contains('-') { days.to_string() } else { format!("{days}-{days}") };
    let (from, to) = hours.split_once('-')?;
    let minutes = |t: &str| t.split_once(':').and_then(|(h, m)| Some(h.parse::<u32>().ok()? * 60 + m.parse::<u32>().ok()?));
    (minutes(from)? < minutes(to)?).then(|| format!("{days} {hours} {zone}"))
}

fn seconds(d: Duration) -> i32 {
    d.as_millis().div_ceil(1000).max(1) as i32
}

fn quantities(q: &Quantities) -> Option<BTreeMap<String, Quantity>> {
    let map: BTreeMap<String, Quantity> = [("cpu", &q.cpu), ("memory", &q.memory)]
        .into_iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| (k.to_string(), Quantity(v.clone()))))
        .collect();
    (!map.is_empty()).then_some(map)
}
