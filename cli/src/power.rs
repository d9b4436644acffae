//! `paved sleep` and `paved wake`: a person puts a workload to sleep or
//! wakes it, held against its schedule for `--for` (or until the schedule
//! next changes). Who asked, why and until when go into the audit log.

use crate::{
    DEFAULT_ENDPOINT,
    client::{connect, failed},
};
use paved_proto::provisioner::v1::{
    PowerReason, SleepWorkloadRequest, WakeWorkloadRequest, Workload, provisioner_service_client::ProvisionerServiceClient,
};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct PowerArgs {
    workload: String,
    #[arg(long)]
    env: String,
    /// Hold it so this long against its schedule and idleness (`2h`, `30m`,
    /// `1d`); without it, until its schedule next changes.
    #[arg(long = "for", value_parser = parse_hold)]
    hold: Option<u64>,
    /// Said beside the reason in the audit log.
    #[arg(long, default_value = "")]
    note: String,
    #[arg(long, default_value = DEFAULT_ENDPOINT, env = "PAVED_ENDPOINT")]
    endpoint: String,
    #[arg(long, short, value_enum, default_value_t)]
    output: crate::output::Format,
}

fn parse_hold(text: &str) -> Result<u64, String> {
    match crate::ttl::seconds(text) {
        Some(Ok(s)) if s > 0 => Ok(s),
        Some(Ok(_)) => Err(format!("--for {text:?} must be more than 0")),
        _ => Err(format!("invalid --for {text:?}: expected e.g. 2h, 30m or 1d")),
    }
}

pub async fn sleep(args: PowerArgs) -> anyhow::Result<ExitCode> {
    power(args, false).await
}

pub async fn wake(args: PowerArgs) -> anyhow::Result<ExitCode> {
    power(args, true).await
}

async fn power(args: PowerArgs, wake: bool) -> anyhow::Result<ExitCode> {
    let mut client = ProvisionerServiceClient::new(connect(&args.endpoint).await?);
    let (environment, workload, note) = (args.env.clone(), args.workload.clone(), args.note);
    let (reason, hold) = (PowerReason::Person as i32, args.hold.map(|s| prost_types::Duration { seconds: s as i64, nanos: 0 }));
    // The deprecated field too, for a platform older than `hold`.
    let hold_seconds = args.hold.map_or(0, |s| s as i64);
    let (changed, view) = if wake {
        #[allow(deprecated)]
        let request = WakeWorkloadRequest { environment, workload, reason, note, hold, hold_seconds };
        let done = client.wake_workload(request).await.map_err(failed)?.into_inner();
        (done.changed, done.workload)
    } else {
        #[allow(deprecated)]
        let request = SleepWorkloadRequest { environment, workload, reason, note, hold, hold_seconds };
        let done = client.sleep_workload(request).await.map_err(failed)?.into_inner();
        (done.changed, done.workload)
    };
    let what = match (wake, changed) {
        (true, true) => "waking",
        (true, false) => "awake already",
        (false, true) => "asleep",
        (false, false) => "was asleep already",
    };
    let hold_until = crate::output::rfc3339(view.as_ref().and_then(|w| w.hold_until.as_ref()));
    crate::output::print(
        args.output,
        || format!("{} in {}: {what}{}\n", args.workload, args.env, held(view.as_ref())),
        || {
            serde_json::json!({
                "workload": args.workload, "environment": args.env, "changed": changed,
                "state": view.as_ref().map(crate::status::workload_state), "hold_until": hold_until,
            })
        },
    )?;
    Ok(ExitCode::SUCCESS)
}

fn held(workload: Option<&Workload>) -> String {
    crate::output::rfc3339(workload.and_then(|w| w.hold_until.as_ref())).map_or_else(String::new, |t| format!(", held until {t}"))
}
