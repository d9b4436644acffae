//! `paved cost rightsize`: requests and limits for a workload from what its
//! replicas used (the cost scheduler's samples, or Prometheus' series),
//! with the evidence and the
//! monthly saving; `--apply` deploys them as a new revision of the running
//! spec, through the normal rollout (its canary included), never in place.

use crate::{
    DEFAULT_ENDPOINT,
    client::{connect, failed},
    deploy, output,
};
use anyhow::Context;
use paved_proto::cost_scheduler::v1::{
    GetResourceRecommendationRequest, ResourceRecommendation, UsageSource, cost_scheduler_service_client::CostSchedulerServiceClient,
};
use paved_proto::provisioner::v1::{GetRevisionRequest, GetWorkloadRequest, provisioner_service_client::ProvisionerServiceClient};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct RightsizeArgs {
    workload: String,
    #[arg(long)]
    env: String,
    /// The percentile of use the requests are set to.
    #[arg(long, default_value_t = 95.0, conflicts_with = "vpa")]
    percentile: f64,
    /// The VPA recommender's way instead: p90 plus 15% headroom.
    #[arg(long)]
    vpa: bool,
    /// How far back the samples reach (`7d`, `12h`).
    #[arg(long, default_value = "7d", value_parser = crate::ttl::parse_since)]
    since: u64,
    /// Where the use is read from; by default Prometheus when the cost
    /// scheduler has one configured, else its samples.
    #[arg(long, value_enum)]
    source: Option<Source>,
    /// Deploy the recommendation as a new revision, followed to its end.
    #[arg(long)]
    apply: bool,
    #[arg(long, value_enum, default_value_t)]
    output: output::Format,
    #[arg(long, default_value = DEFAULT_ENDPOINT, env = "PAVED_ENDPOINT")]
    endpoint: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Source {
    /// The cost scheduler's samples of the local runtime.
    Samples,
    /// PromQL range queries to the cost scheduler's Prometheus.
    Prometheus,
}

const MIB: f64 = 1_048_576.0;

fn cpu(cores: f64) -> String {
    format!("{}m", (cores * 1000.0).round())
}

fn memory(bytes: f64) -> String {
    format!("{}Mi", (bytes / MIB).ceil())
}

pub async fn run(args: RightsizeArgs) -> anyhow::Result<ExitCode> {
    let channel = connect(&args.endpoint).await?;
    let (percentile, headroom) = if args.vpa { (90.0, 0.15) } else { (args.percentile, 0.0) };
    let start = crate::ttl::ago_ms(args.since);
    let request = GetResourceRecommendationRequest {
        environment: args.env.clone(),
        workload: args.workload.clone(),
        percentile,
        headroom,
        start_time: Some(paved_proto::timestamp_from_millis(start)),
        source: match args.source {
            None => UsageSource::Unspecified,
            Some(Source::Samples) => UsageSource::Samples,
            Some(Source::Prometheus) => UsageSource::Prometheus,
        } as i32,
    };
    let answer = CostSchedulerServiceClient::new(channel.clone()).get_resource_recommendation(request).await.map_err(failed)?;
    let r = answer.into_inner().recommendation.context("the cost scheduler returned no recommendation")?;
    match args.output {
        output::Format::Json => println!("{}", serde_json::to_string_pretty(&json(&r))?),
        output::Format::Table => print!("{}", describe(&args.workload, &args.env, &r)),
    }
    if !args.apply {
        return Ok(ExitCode::SUCCESS);
    }
    let mut provisioner = ProvisionerServiceClient::new(channel.clone());
    let request = GetWorkloadRequest { environment: args.env.clone(), name: args.workload.clone() };
    let workload = provisioner.get_workload(request).await.map_err(failed)?.into_inner().workload.context("no workload returned")?;
    let revision = provisioner.get_revision(GetRevisionRequest { id: workload.current_revision.clone() }).await.map_err(failed)?;
    let running = revision.into_inner().revision.context("no revision returned")?;
    let text = with_resources(&running.spec_yaml, &r)?;
    let json = args.output == output::Format::Json;
    let deployed = deploy::apply(channel, &args.env, text, "", &args.workload, true, |line| {
        if !json {
            eprintln!("{line}");
        }
    })
    .await?;
    if !json {
        println!("revision {} of {}: promoted with the recommended resources", deployed.revision.number, args.workload);
    }
    Ok(ExitCode::SUCCESS)
}

/// The running spec with the recommended requests and limits. A Score
/// file's resources live per container: it is left to its author.
fn with_resources(spec_yaml: &str, r: &ResourceRecommendation) -> anyhow::Result<String> {
    let mut spec: yaml_serde::Value = yaml_serde::from_str(spec_yaml).context("the running spec does not parse")?;
    if spec.get("apiVersion").is_some() {
        anyhow::bail!(
            "the workload runs a Score file: set containers.<name>.resources there (requests cpu {}, memory {}) and deploy it",
            cpu(r.cpu_request_cores),
            memory(r.memory_request_bytes)
        );
    }
    let resources = format!(
        "requests: {{cpu: {}, memory: {}}}\nlimits: {{cpu: {}, memory: {}}}\n",
        cpu(r.cpu_request_cores),
        memory(r.memory_request_bytes),
        cpu(r.cpu_limit_cores),
        memory(r.memory_limit_bytes)
    );
    let mapping = spec.as_mapping_mut().context("the running spec is not a mapping")?;
    mapping.insert("resources".into(), yaml_serde::from_str(&resources)?);
    Ok(yaml_serde::to_string(&spec)?)
}

fn json(r: &ResourceRecommendation) -> serde_json::Value {
    let time = output::rfc3339;
    serde_json::json!({
        "revision_id": r.revision_id,
        "evidence": {
            "source": source(r), "cpu_query": r.cpu_query, "memory_query": r.memory_query, "step_seconds": step_seconds(r),
            "samples": r.samples, "start": time(r.start_time.as_ref()), "end": time(r.end_time.as_ref()),
            "percentile": r.percentile, "headroom": r.headroom,
            "used": {"cpu": cpu(r.used_cpu_cores), "memory": memory(r.used_memory_bytes)},
            "memory_peak": memory(r.memory_peak_bytes),
        },
        "current": {"requests": {"cpu": cpu(r.current_cpu_request_cores), "memory": memory(r.current_memory_request_bytes)}},
        "recommended": {
            "requests": {"cpu": cpu(r.cpu_request_cores), "memory": memory(r.memory_request_bytes)},
            "limits": {"cpu": cpu(r.cpu_limit_cores), "memory": memory(r.memory_limit_bytes)},
        },
        "replicas": r.replicas,
        "monthly_saving": r.monthly_saving,
        "currency": r.currency,
    })
}

fn source(r: &ResourceRecommendation) -> &'static str {
    match r.source() {
        UsageSource::Prometheus => "prometheus",
        _ => "samples",
    }
}

fn describe(workload: &str, environment: &str, r: &ResourceRecommendation) -> String {
    let found = match r.source() {
        UsageSource::Prometheus => format!("{} points from Prometheus (step {}s)", r.samples, step_seconds(r)),
        _ => format!("{} samples", r.samples),
    };
    let how = if r.headroom > 0.0 { format!("p{} + {:.0}%", r.percentile, r.headroom * 100.0) } else { format!("p{}", r.percentile) };
    let saving = if r.monthly_saving >= 0.0 {
        format!("saves {:.2} {} a month", r.monthly_saving, r.currency)
    } else {
        format!("costs {:.2} {} a month more", -r.monthly_saving, r.currency)
    };
    format!(
        "{workload} in {environment}: {found} from {} to {} (UTC), {how} of use per replica\n\
         \x20 cpu request     {} -> {}   (used {})\n\
         \x20 memory request  {} -> {}   (used {}, peak {})\n\
         \x20 limits          cpu {}, memory {}\n\
         \x20 {saving} by request ({} replicas)\n",
        output::time(r.start_time.as_ref()),
        output::time(r.end_time.as_ref()),
        cpu(r.current_cpu_request_cores),
        cpu(r.cpu_request_cores),
        cpu(r.used_cpu_cores),
        memory(r.current_memory_request_bytes),
        memory(r.memory_request_bytes),
        memory(r.used_memory_bytes),
        memory(r.memory_peak_bytes),
        cpu(r.cpu_limit_cores),
        memory(r.memory_limit_bytes),
        r.replicas
    )
}

/// The Prometheus query step in whole seconds; 0 for samples.
fn step_seconds(r: &ResourceRecommendation) -> i64 {
    r.step.as_ref().map_or(0, |d| d.seconds)
}
