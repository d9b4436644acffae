//! `paved cost`: what workloads cost, by team, environment or workload —
//! by the resources they requested and by those they used, and what
//! sleeping saved (`report`); teams' monthly budgets (`budget`); requests
//! from measured use (`rightsize`, in its own module).

use crate::{
    DEFAULT_ENDPOINT,
    client::{connect, failed},
    output,
};
use paved_proto::cost_scheduler::v1::{
    Budget, CostGrouping, CostLine, GetCostReportRequest, GetCostReportResponse, ListBudgetsRequest, SetBudgetRequest,
    cost_scheduler_service_client::CostSchedulerServiceClient,
};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct CostArgs {
    #[command(subcommand)]
    command: CostCommand,
}

#[derive(clap::Subcommand)]
enum CostCommand {
    /// Cost over a window (the last 30 days unless --since).
    Report(ReportArgs),
    /// Teams' monthly budgets per environment: a deploy that would take a
    /// team over its budget is denied by the default policy.
    Budget(BudgetArgs),
    /// Requests and limits for a workload from what it used; --apply
    /// deploys them through the normal rollout.
    Rightsize(crate::rightsize::RightsizeArgs),
}

#[derive(clap::Args)]
struct BudgetArgs {
    #[command(subcommand)]
    command: BudgetCommand,
}

#[derive(clap::Subcommand)]
enum BudgetCommand {
    /// Set a team's monthly budget in an environment (--monthly 0 removes it).
    Set(SetArgs),
    /// Every budget, with the team's month at what it runs now.
    List(ListArgs),
}

#[derive(clap::Args)]
struct SetArgs {
    #[arg(long)]
    team: String,
    #[arg(long)]
    env: String,
    /// In the price sheet's currency.
    #[arg(long)]
    monthly: f64,
    #[arg(long, default_value = DEFAULT_ENDPOINT, env = "PAVED_ENDPOINT")]
    endpoint: String,
}

#[derive(clap::Args)]
struct ListArgs {
    #[arg(long, value_enum, default_value_t)]
    output: output::Format,
    #[arg(long, default_value = DEFAULT_ENDPOINT, env = "PAVED_ENDPOINT")]
    endpoint: String,
}

#[derive(clap::Args)]
struct ReportArgs {
    /// One line per team, environment or workload.
    #[arg(long, value_enum, default_value = "team")]
    by: By,
    /// How far back the window reaches (`30d`, `12h`, `90m`).
    #[arg(long, default_value = "30d", value_parser = crate::ttl::parse_since)]
    since: u64,
    #[arg(long, value_enum, default_value_t)]
    output: output::Format,
    #[arg(long, default_value = DEFAULT_ENDPOINT, env = "PAVED_ENDPOINT")]
    endpoint: String,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum By {
    Team,
    Env,
    Workload,
}

pub async fn run(args: CostArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        CostCommand::Report(args) => report(args).await,
        CostCommand::Budget(BudgetArgs { command: BudgetCommand::Set(args) }) => set_budget(args).await,
        CostCommand::Budget(BudgetArgs { command: BudgetCommand::List(args) }) => list_budgets(args).await,
        CostCommand::Rightsize(args) => crate::rightsize::run(args).await,
    }
}

async fn set_budget(args: SetArgs) -> anyhow::Result<ExitCode> {
    let mut client = CostSchedulerServiceClient::new(connect(&args.endpoint).await?);
    let request = SetBudgetRequest { team: args.team.clone(), environment: args.env.clone(), monthly: args.monthly };
    let set = client.set_budget(request).await.map_err(failed)?.into_inner();
    match set.budget {
        Some(b) => println!(
            "budget of {} in {}: {:.2} a month; it runs {:.2} a month now ({:.0}%)",
            b.team,
            b.environment,
            b.monthly,
            b.forecast_monthly,
            100.0 * b.forecast_ratio
        ),
        None => println!("budget of {} in {}: removed", args.team, args.env),
    }
    Ok(ExitCode::SUCCESS)
}

async fn list_budgets(args: ListArgs) -> anyhow::Result<ExitCode> {
    let mut client = CostSchedulerServiceClient::new(connect(&args.endpoint).await?);
    let (mut budgets, mut page_token) = (Vec::<Budget>::new(), String::new());
    let currency = loop {
        let page = client.list_budgets(ListBudgetsRequest { page_size: 1000, page_token }).await.map_err(failed)?.into_inner();
        budgets.extend(page.budgets);
        if page.next_page_token.is_empty() {
            break page.currency;
        }
        page_token = page.next_page_token;
    };
    match args.output {
        output::Format::Json => {
            let all: Vec<_> = budgets
                .iter()
                .map(|b| {
                    serde_json::json!({"team": b.team, "environment": b.environment, "monthly": b.monthly,
                    "forecast_monthly": b.forecast_monthly, "forecast_ratio": b.forecast_ratio})
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&serde_json::json!({"currency": currency, "budgets": all}))?);
        }
        output::Format::Table => {
            let rows: Vec<Vec<String>> = budgets
                .iter()
                .map(|b| {
                    let share = format!("{:.0}%", 100.0 * b.forecast_ratio);
                    vec![b.team.clone(), b.environment.clone(), format!("{:.2}", b.monthly), format!("{:.2}", b.forecast_monthly), share]
                })
                .collect();
            let (monthly, forecast) = (format!("MONTHLY {currency}"), format!("RUNS {currency}"));
            print!("{}", output::table(&["TEAM", "ENVIRONMENT", &monthly, &forecast, "USED"], &rows));
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn report(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let mut client = CostSchedulerServiceClient::new(connect(&args.endpoint).await?);
    let group_by = match args.by {
        By::Team => CostGrouping::Team,
        By::Env => CostGrouping::Environment,
        By::Workload => CostGrouping::Workload,
    };
    let (start, end) = (crate::ttl::ago_ms(args.since), chrono::Utc::now().timestamp_millis());
    let request = GetCostReportRequest {
        group_by: group_by as i32,
        start_time: Some(paved_proto::timestamp_from_millis(start)),
        end_time: Some(paved_proto::timestamp_from_millis(end)),
    };
    let report = client.get_cost_report(request).await.map_err(failed)?.into_inner();
    match args.output {
        output::Format::Json => println!("{}", serde_json::to_string_pretty(&json(&report, args.by))?),
        output::Format::Table => print!("{}", table(&report, args.by)),
    }
    Ok(ExitCode::SUCCESS)
}

/// The JSON scripts read: one object per line, the total, the window.
fn json(report: &GetCostReportResponse, by: By) -> serde_json::Value {
    let line = |l: &CostLine| {
        let mut o = serde_json::json!({
            "replica_hours": l.replica_hours,
            "requested_cost": l.requested_cost,
            "used_cost": l.used_cost,
            "cpu_core_hours": l.cpu_core_hours,
            "memory_gib_hours": l.memory_gib_hours,
            "slept_hours": l.slept_hours,
            "savings": l.savings,
            "samples": l.samples,
        });
        for (key, value, shown) in [
            ("team", &l.team, matches!(by, By::Team | By::Workload)),
            ("environment", &l.environment, matches!(by, By::Env | By::Workload)),
            ("workload", &l.workload, matches!(by, By::Workload)),
        ] {
            if shown {
                o[key] = serde_json::Value::String(value.clone());
            }
        }
        o
    };
    let time = output::rfc3339;
    serde_json::json!({
        "currency": report.currency,
        "start": time(report.start_time.as_ref()),
        "end": time(report.end_time.as_ref()),
        "lines": report.lines.iter().map(line).collect::<Vec<_>>(),
        "total": report.total.as_ref().map(line),
    })
}

fn table(report: &GetCostReportResponse, by: By) -> String {
    let money = |v: f64| format!("{v:.2}");
    let names = |l: &CostLine| -> Vec<String> {
        let team = if l.team.is_empty() { "(no team)".to_string() } else { l.team.clone() };
        match by {
            By::Team => vec![team],
            By::Env => vec![l.environment.clone()],
            By::Workload => vec![team, l.environment.clone(), l.workload.clone()],
        }
    };
    let figures = |l: &CostLine| {
        vec![
            format!("{:.1}", l.replica_hours),
            money(l.requested_cost),
            money(l.used_cost),
            format!("{:.1}", l.slept_hours),
            money(l.savings),
        ]
    };
    let mut rows: Vec<Vec<String>> = report.lines.iter().map(|l| [names(l), figures(l)].concat()).collect();
    if let Some(total) = &report.total {
        let mut row = vec!["total".to_string()];
        row.resize(names(total).len(), String::new());
        rows.push([row, figures(total)].concat());
    }
    let currency = &report.currency;
    let (requested, used, saved) = (format!("REQUESTED {currency}"), format!("USED {currency}"), format!("SAVED {currency}"));
    let mut header: Vec<&str> = match by {
        By::Team => vec!["TEAM"],
        By::Env => vec!["ENVIRONMENT"],
        By::Workload => vec!["TEAM", "ENVIRONMENT", "WORKLOAD"],
    };
    header.extend(["REPLICA-HOURS", &requested, &used, "SLEPT-HOURS", &saved]);
    let window = format!("from {} to {} (UTC)\n", output::time(report.start_time.as_ref()), output::time(report.end_time.as_ref()));
    window + &output::table(&header, &rows)
}
