//! `paved cost`: what workloads cost, by team, environment or workload —
//! by the resources they requested and by those they used, and what
//! sleeping saved (`report`).

use crate::{
    DEFAULT_ENDPOINT,
    client::{connect, failed},
    output,
};
use paved_proto::cost_scheduler::v1::{
    CostGrouping, CostLine, GetCostReportRequest, GetCostReportResponse, cost_scheduler_service_client::CostSchedulerServiceClient,
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
}

#[derive(clap::Args)]
struct ReportArgs {
    /// One line per team, environment or workload.
    #[arg(long, value_enum, default_value = "team")]
    by: By,
    /// How far back the window reaches (`30d`, `12h`, `90m`).
    #[arg(long, default_value = "30d", value_parser = parse_since)]
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

fn parse_since(text: &str) -> Result<u64, String> {
    match crate::ttl::seconds(text) {
        Some(Ok(s)) if s > 0 => Ok(s),
        Some(Ok(_)) => Err(format!("--since {text:?} must be more than 0")),
        _ => Err(format!("invalid --since {text:?}: expected e.g. 30d, 12h or 90m")),
    }
}

pub async fn run(args: CostArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        CostCommand::Report(args) => report(args).await,
    }
}

async fn report(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let mut client = CostSchedulerServiceClient::new(connect(&args.endpoint).await?);
    let group_by = match args.by {
        By::Team => CostGrouping::Team,
        By::Env => CostGrouping::Environment,
        By::Workload => CostGrouping::Workload,
    };
    let now = chrono::Utc::now().timestamp_millis();
    let start = now - i64::try_from(args.since).unwrap_or(i64::MAX / 1000).saturating_mul(1000);
    let request = GetCostReportRequest {
        group_by: group_by as i32,
        start_time: Some(paved_proto::timestamp_from_millis(start)),
        end_time: Some(paved_proto::timestamp_from_millis(now)),
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
    let time = |t: Option<&prost_types::Timestamp>| {
        t.and_then(|t| chrono::DateTime::from_timestamp(t.seconds, 0)).map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    };
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
