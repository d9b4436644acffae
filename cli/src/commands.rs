//! `paved status`, `render` and `deploy`: gRPC clients of a running platform.

use crate::{SERVICES, output};
use anyhow::Context;
use paved_grpc::client::AuthChannel;
use paved_proto::provisioner::v1::{
    ApplyWorkloadRequest, GetRevisionRequest, ListWorkloadsRequest, PlanAction, PlanWorkloadRequest, PlanWorkloadResponse, Revision,
    RevisionState, Rollout, provisioner_service_client::ProvisionerServiceClient,
};
use serde::Serialize;
use std::{path::Path, time::Duration};
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};
use tonic_types::StatusExt;

/// A channel to `endpoint` presenting the CLI's token for it (see
/// [`crate::credentials`]).
pub async fn connect(endpoint: &str) -> anyhow::Result<AuthChannel> {
    connect_with(endpoint, &crate::credentials::token_for(endpoint)?).await
}

/// A channel to `endpoint` presenting `token`.
pub async fn connect_with(endpoint: &str, token: &str) -> anyhow::Result<AuthChannel> {
    Ok(paved_grpc::client::Bearer::new(token)?.on(channel(endpoint).await?))
}

/// A channel without a token (for open methods: the key set). An
/// `https://` endpoint (production with mTLS) is reached over TLS, the
/// server verified against the trust bundle in `PAVED_CA_BUNDLE` (`paved ca
/// bundle` prints it); the CLI presents no certificate, only its token.
pub async fn channel(endpoint: &str) -> anyhow::Result<tonic::transport::Channel> {
    let url = if endpoint.contains("://") { endpoint.to_string() } else { format!("http://{endpoint}") };
    if url.starts_with("https://") {
        let file = std::env::var_os("PAVED_CA_BUNDLE")
            .context("an https endpoint needs the platform's trust bundle: set PAVED_CA_BUNDLE to its file (`paved ca bundle`)")?;
        let bundle = std::fs::read_to_string(&file).with_context(|| format!("PAVED_CA_BUNDLE {}", file.display()))?;
        let tls = paved_grpc::tls::Tls::new(format!("{}/people/cli", paved_grpc::tls::TRUST_DOMAIN), None);
        tls.set_bundle(&bundle).with_context(|| format!("PAVED_CA_BUNDLE {}", file.display()))?;
        // Any of the platform's services (the endpoint may forward), never a workload's.
        return paved_grpc::tls::connect(&url, Some(&tls), Some(paved_grpc::tls::PLATFORM_PREFIX), |e| {
            e.connect_timeout(Duration::from_secs(3)).timeout(Duration::from_secs(30))
        });
    }
    tonic::transport::Channel::from_shared(url.clone())
        .with_context(|| format!("invalid endpoint {endpoint:?}"))?
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(30))
        .connect()
        .await
        .with_context(|| format!("cannot reach Paved at {endpoint} (is `paved up` running?)"))
}

/// A gRPC error as a person should read it: the message, then each field violation.
pub fn explain(status: &tonic::Status) -> String {
    let mut out = status.message().to_string();
    if status.code() == tonic::Code::Unauthenticated {
        out.push_str("\n  log in with `paved login` (the token `paved up` printed) or set PAVED_TOKEN");
    }
    if let Some(bad) = status.get_details_bad_request() {
        for v in bad.field_violations {
            if !out.contains(&v.description) {
                out.push_str(&format!("\n  {}: {}", v.field, v.description));
            }
        }
    }
    out
}

#[derive(Debug, Serialize)]
pub struct Status {
    pub services: Vec<ServiceStatus>,
    pub workloads: Vec<WorkloadStatus>,
}

#[derive(Debug, Serialize)]
pub struct ServiceStatus {
    pub name: String,
    pub state: String,
}

#[derive(Debug, Serialize)]
pub struct WorkloadStatus {
    pub name: String,
    pub environment: String,
    pub revision: i64,
    pub revision_id: String,
    pub state: String,
    pub endpoint: String,
}

pub async fn status(channel: AuthChannel) -> anyhow::Result<Status> {
    let mut health = HealthClient::new(channel.clone());
    let mut services = Vec::new();
    for (name, grpc) in SERVICES {
        let state = match health.check(HealthCheckRequest { service: grpc.to_string() }).await {
            Ok(r) => match r.into_inner().status() {
                ServingStatus::Serving => "serving",
                ServingStatus::NotServing => "not_serving",
                _ => "unknown",
            },
            Err(s) if s.code() == tonic::Code::NotFound => "absent",
            Err(_) => "unreachable",
        };
        services.push(ServiceStatus { name: name.to_string(), state: state.to_string() });
    }
    let mut client = ProvisionerServiceClient::new(channel.clone());
    let mut workloads = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_workloads(ListWorkloadsRequest { environment: String::new(), page_size: 500, page_token })
            .await
            .map_err(|s| anyhow::anyhow!("list workloads: {}", explain(&s)))?
            .into_inner();
        for w in page.workloads {
            let revision = match w.current_revision.as_str() {
                "" => None,
                id => client.get_revision(GetRevisionRequest { id: id.to_string() }).await.ok().and_then(|r| r.into_inner().revision),
            };
            workloads.push(WorkloadStatus {
                name: w.name,
                environment: w.environment,
                revision: revision.as_ref().map_or(0, |r| r.number),
                revision_id: w.current_revision,
                state: RevisionState::try_from(w.state).unwrap_or_default().short_name().to_string(),
                endpoint: w.endpoint,
            });
        }
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    Ok(Status { services, workloads })
}

pub fn print_status(status: &Status, format: output::Format) -> anyhow::Result<()> {
    match format {
        output::Format::Json => println!("{}", serde_json::to_string_pretty(status)?),
        output::Format::Table => {
            let rows: Vec<Vec<String>> = status.services.iter().map(|s| vec![s.name.clone(), s.state.clone()]).collect();
            print!("{}", output::table(&["SERVICE", "STATE"], &rows));
            println!();
            let rows: Vec<Vec<String>> = status
                .workloads
                .iter()
                .map(|w| {
                    vec![w.name.clone(), w.environment.clone(), w.revision.to_string(), w.state.clone(), format!("http://{}", w.endpoint)]
                })
                .collect();
            print!("{}", output::table(&["WORKLOAD", "ENVIRONMENT", "REVISION", "STATE", "ENDPOINT"], &rows));
        }
    }
    Ok(())
}

/// `<dir>/paved.yaml` (else `<dir>/score.yaml`, or the spec file `dir`
/// names) resolved for `environment`: with `paved.<environment>.yaml` beside
/// it when there is one (`paved.preview.yaml` for `pr-<n>`; `score.…` for a
/// Score file). Returns the rendered spec and the base file's absolute path.
pub fn render(dir: &Path, environment: &str) -> anyhow::Result<(paved_spec::Rendered, std::path::PathBuf)> {
    paved_spec::validate_name(environment).map_err(|e| anyhow::anyhow!("invalid environment: {e}"))?;
    let base = match dir {
        d if d.is_file() => d.to_path_buf(),
        d if !d.join("paved.yaml").exists() && d.join("score.yaml").is_file() => d.join("score.yaml"),
        d => d.join("paved.yaml"),
    };
    let base = std::path::absolute(&base).unwrap_or(base);
    let read = |path: &Path| std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()));
    let text = read(&base)?;
    let folder = base.parent().unwrap_or(Path::new("."));
    let stem = base.file_stem().map_or_else(|| "paved".into(), |s| s.to_string_lossy());
    let overlay = match paved_spec::overlay_files(&stem, environment).into_iter().map(|f| folder.join(f)).find(|p| p.is_file()) {
        Some(path) => Some((read(&path)?, path.display().to_string())),
        None => None,
    };
    let rendered = paved_spec::render(&text, &base.display().to_string(), overlay.as_ref().map(|(t, f)| (t.as_str(), f.as_str())))?;
    Ok((rendered, base))
}

/// What a deploy did: the revision, and the rollout it started (as it ended
/// when followed).
#[derive(Debug)]
pub struct Deployed {
    pub revision: Revision,
    pub rollout: Option<Rollout>,
    pub changed: bool,
}

/// Resolves and validates the spec locally (so a bad spec fails with its
/// file, line and column before anything is sent), applies it, and, when
/// `follow`, follows its rollout until it ends.
pub async fn deploy(
    channel: AuthChannel,
    dir: &Path,
    environment: &str,
    follow: bool,
    mut progress: impl FnMut(&str),
) -> anyhow::Result<Deployed> {
    let (rendered, file) = render(dir, environment)?;
    let (text, spec) = (rendered.text, rendered.spec);
    let mut client = ProvisionerServiceClient::new(channel.clone());
    let applied = client
        .apply_workload(ApplyWorkloadRequest {
            environment: environment.to_string(),
            spec_yaml: text,
            spec_path: file.display().to_string(),
            request_id: uuid::Uuid::new_v4().to_string(),
        })
        .await
        .map_err(|s| anyhow::anyhow!("{}", explain(&s)))?
        .into_inner();
    let revision = applied.revision.context("the server returned no revision")?;
    for warning in &applied.policy_warnings {
        progress(&format!("policy warns: {warning}"));
    }
    let mut deployed = Deployed { revision, rollout: applied.rollout, changed: applied.changed };
    let number = deployed.revision.number;
    match (&deployed.rollout, applied.changed) {
        (None, _) => {
            progress(&format!("{} in {environment} already runs this spec (revision {number}); nothing to do", spec.name));
            return Ok(deployed);
        }
        (Some(r), false) => {
            progress(&format!("{} in {environment}: revision {number} is already rolling out (rollout {})", spec.name, r.id))
        }
        (Some(r), true) => progress(&format!("deploying {} revision {number} to {environment} (rollout {})", spec.name, r.id)),
    }
    if !follow {
        return Ok(deployed);
    }
    let id = deployed.rollout.as_ref().map(|r| r.id.clone()).unwrap_or_default();
    let ended = crate::rollouts::follow(channel, &id, progress).await?;
    let state = crate::rollouts::state(&ended);
    deployed.rollout = Some(ended.clone());
    if state != paved_proto::provisioner::v1::RolloutState::Promoted {
        anyhow::bail!(
            "revision {number} of {} was not promoted: rollout {} {}: {}",
            spec.name,
            ended.id,
            state.short_name(),
            ended.message
        );
    }
    Ok(deployed)
}

/// What `paved deploy` would change: the spec resolved and validated
/// locally, then compared by the provisioner with what runs.
pub async fn plan(channel: AuthChannel, dir: &Path, environment: &str) -> anyhow::Result<(String, PlanWorkloadResponse)> {
    let (rendered, file) = render(dir, environment)?;
    let request =
        PlanWorkloadRequest { environment: environment.to_string(), spec_yaml: rendered.text, spec_path: file.display().to_string() };
    let plan =
        ProvisionerServiceClient::new(channel).plan_workload(request).await.map_err(|s| anyhow::anyhow!("{}", explain(&s)))?.into_inner();
    Ok((rendered.spec.name, plan))
}

/// A plan for people: what changes, field by field, then any drift.
pub fn describe_plan(name: &str, environment: &str, plan: &PlanWorkloadResponse) -> String {
    let action = PlanAction::try_from(plan.action).unwrap_or_default();
    let mut out = match action {
        PlanAction::Create => format!("{name} in {environment}: create\n"),
        PlanAction::Update => format!("{name} in {environment}: update (a new revision, rolled out)\n"),
        _ => format!("{name} in {environment}: no changes\n"),
    };
    if action != PlanAction::None {
        for c in &plan.changes {
            let line = match (c.before.is_empty(), c.after.is_empty()) {
                (true, _) => format!("  + {}: {}\n", c.path, c.after),
                (_, true) => format!("  - {}: {}\n", c.path, c.before),
                _ => format!("  ~ {}: {} -> {}\n", c.path, c.before, c.after),
            };
            out.push_str(&line);
        }
        if action == PlanAction::Update && plan.changes.is_empty() {
            out.push_str(&format!("  (the same spec: {}, so it is deployed again)\n", plan.reason));
        }
    }
    for d in &plan.drift {
        out.push_str(&format!("  ! drift: {d}\n"));
    }
    for w in &plan.policy_warnings {
        out.push_str(&format!("  ? policy warns: {w}\n"));
    }
    for d in &plan.policy_denials {
        out.push_str(&format!("  ! policy: {d}\n"));
    }
    if !plan.policy_denials.is_empty() {
        out.push_str(&format!("a deploy would be denied by policy bundle {}\n", plan.policy_bundle_digest));
    }
    out
}

/// 0 when nothing would change and nothing drifted, 2 when something would,
/// 1 when the policy gate would deny the deploy.
pub fn plan_exit_code(plan: &PlanWorkloadResponse) -> u8 {
    if !plan.policy_denials.is_empty() {
        1
    } else if plan.action == PlanAction::None as i32 && plan.drift.is_empty() {
        0
    } else {
        2
    }
}

/// `paved policy test <dir>`: runs the bundle's `test_*` rules; one line per
/// test, then a summary. True when all passed.
pub fn policy_test(dir: &Path) -> anyhow::Result<(String, bool)> {
    let bundle = paved_policy::Bundle::load(dir)?;
    let results = bundle.test()?;
    let mut out = String::new();
    for r in &results {
        match &r.failure {
            None => out.push_str(&format!("PASS {}\n", r.name)),
            Some(why) => out.push_str(&format!("FAIL {} ({}): {why}\n", r.name, r.file)),
        }
    }
    let failed = results.iter().filter(|r| r.failure.is_some()).count();
    let verdict = if failed == 0 { "PASS" } else { "FAIL" };
    out.push_str(&format!("{verdict}: {} passed, {failed} failed\n", results.len() - failed));
    Ok((out, failed == 0 && !results.is_empty()))
}

/// A time to live such as `48h`, `30m`, `2d` or `90s`.
pub fn parse_ttl(text: &str) -> Result<Duration, String> {
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().map_err(|_| format!("invalid ttl {text:?}: expected e.g. 48h, 30m, 2d"))?;
    let seconds = match unit {
        "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        "d" => n.saturating_mul(86_400),
        _ => return Err(format!("invalid ttl {text:?}: the unit must be s, m, h or d")),
    };
    if seconds == 0 || seconds > 30 * 86_400 {
        return Err(format!("ttl {text:?} must be more than 0 and at most 30d"));
    }
    Ok(Duration::from_secs(seconds))
}

/// `paved preview open`: renders `<dir>` for `pr-<pr>` (with
/// `paved.preview.yaml` when there is one) and deploys it there.
pub async fn open_preview(
    channel: AuthChannel,
    dir: &Path,
    pr: u32,
    ttl: Duration,
) -> anyhow::Result<paved_proto::provisioner::v1::OpenPreviewResponse> {
    let environment = format!("pr-{pr}");
    let (rendered, file) = render(dir, &environment)?;
    let request = paved_proto::provisioner::v1::OpenPreviewRequest {
        pr: i32::try_from(pr).context("pr is too large")?,
        ttl_seconds: i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX),
        spec_yaml: rendered.text,
        spec_path: file.display().to_string(),
        request_id: uuid::Uuid::new_v4().to_string(),
    };
    Ok(ProvisionerServiceClient::new(channel).open_preview(request).await.map_err(|s| anyhow::anyhow!("{}", explain(&s)))?.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ttls() {
        assert_eq!(parse_ttl("48h"), Ok(Duration::from_secs(48 * 3600)));
        assert_eq!(parse_ttl("2d"), Ok(Duration::from_secs(2 * 86_400)));
        assert_eq!(parse_ttl("90s"), Ok(Duration::from_secs(90)));
        assert!(parse_ttl("31d").expect_err("too long").contains("at most 30d"));
        assert!(parse_ttl("5y").expect_err("unit").contains("s, m, h or d"));
        assert!(parse_ttl("h").expect_err("number").contains("invalid ttl"));
    }
}
