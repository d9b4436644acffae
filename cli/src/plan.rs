//! `paved plan`: what `paved deploy` would change, field by field, and any
//! drift or policy verdict; its exit code says which.

use crate::{
    DEFAULT_ENDPOINT,
    client::{connect, failed},
    output::Format,
    render::render,
};
use paved_grpc::client::AuthChannel;
use paved_proto::provisioner::v1::{
    PlanAction, PlanWorkloadRequest, PlanWorkloadResponse, provisioner_service_client::ProvisionerServiceClient,
};
use std::{
    path::{Path, PathBuf},
    process::ExitCode,
};

#[derive(clap::Args)]
pub struct PlanArgs {
    /// A directory with a paved.yaml, or the spec file itself.
    dir: PathBuf,
    #[arg(long)]
    env: String,
    #[arg(long, default_value = DEFAULT_ENDPOINT, env = "PAVED_ENDPOINT")]
    endpoint: String,
    #[arg(long, short, value_enum, default_value_t)]
    output: Format,
}

pub async fn run(args: PlanArgs) -> anyhow::Result<ExitCode> {
    let PlanArgs { dir, env, endpoint, output } = args;
    let (name, plan) = plan(connect(&endpoint).await?, &dir, &env).await?;
    match output {
        Format::Json => {
            let action = PlanAction::try_from(plan.action).unwrap_or_default();
            let changes: Vec<_> =
                plan.changes.iter().map(|c| serde_json::json!({"path": c.path, "before": c.before, "after": c.after})).collect();
            let out = serde_json::json!({
                "workload": name, "environment": env, "action": action.as_str_name().trim_start_matches("PLAN_ACTION_").to_lowercase(),
                "current_revision": plan.current_revision, "changes": changes, "drift": plan.drift, "reason": plan.reason,
                "cost": plan.cost.as_ref().map(|c| serde_json::json!({
                    "currency": c.currency, "before_monthly": c.current_monthly, "after_monthly": c.monthly,
                    "awake_share": c.awake_share, "team": c.team, "budget_monthly": c.budget_monthly, "team_monthly": c.team_monthly,
                })),
                "cost_error": plan.cost_error,
                "policy": {"denials": plan.policy_denials, "warnings": plan.policy_warnings},
            });
            println!("{out}");
        }
        Format::Table => print!("{}", describe_plan(&name, &env, &plan)),
    }
    Ok(ExitCode::from(plan_exit_code(&plan)))
}

/// What `paved deploy` would change: the spec resolved and validated
/// locally, then compared by the provisioner with what runs.
pub async fn plan(channel: AuthChannel, dir: &Path, environment: &str) -> anyhow::Result<(String, PlanWorkloadResponse)> {
    let (rendered, file) = render(dir, environment)?;
    let request = PlanWorkloadRequest {
        environment: environment.to_string(),
        spec_yaml: rendered.text,
        spec_path: file.display().to_string(),
        spec: None,
    };
    let plan = ProvisionerServiceClient::new(channel).plan_workload(request).await.map_err(failed)?.into_inner();
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
    out.push_str(&describe_cost(plan));
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

/// The month before and after, and the team's budget, in one or two lines.
fn describe_cost(plan: &PlanWorkloadResponse) -> String {
    let Some(c) = &plan.cost else {
        return format!("  cost: unknown ({})\n", plan.cost_error);
    };
    let share =
        if c.awake_share < 1.0 { format!(", awake {:.0}% of the time by its schedule", c.awake_share * 100.0) } else { String::new() };
    let mut out = format!("  cost: {:.2} -> {:.2} {} a month by request{share}\n", c.current_monthly, c.monthly, c.currency);
    if c.budget_monthly > 0.0 {
        out.push_str(&format!(
            "  budget: team {} would run {:.2} of its {:.2} {} a month here ({:.0}%)\n",
            c.team,
            c.team_monthly,
            c.budget_monthly,
            c.currency,
            100.0 * c.team_monthly / c.budget_monthly
        ));
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
