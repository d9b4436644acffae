//! `otlp-receiver --config=FILE`: the compose test's stand-in for the
//! OpenTelemetry Collector (whose image cannot be pulled here). It reads
//! the endpoint from the collector configuration compose mounts
//! (`receivers.otlp.protocols.grpc.endpoint`) and prints one JSON line per
//! span received: `{"service": …, "span": …, "workload": …}`.

use paved_integration_tests::otlp::Receiver;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    match serve().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("otlp-receiver: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve() -> anyhow::Result<()> {
    let file = std::env::args()
        .skip(1)
        .find_map(|a| a.strip_prefix("--config=").map(str::to_string))
        .ok_or_else(|| anyhow::anyhow!("usage: otlp-receiver --config=FILE"))?;
    let text = std::fs::read_to_string(&file).map_err(|e| anyhow::anyhow!("{file}: {e}"))?;
    let config: yaml_serde::Value = yaml_serde::from_str(&text).map_err(|e| anyhow::anyhow!("{file}: {e}"))?;
    let endpoint = config["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("{file}: no receivers.otlp.protocols.grpc.endpoint"))?;
    let listener = tokio::net::TcpListener::bind(endpoint).await.map_err(|e| anyhow::anyhow!("bind {endpoint}: {e}"))?;
    eprintln!("otlp-receiver: OTLP/gRPC on {endpoint}");
    let receiver = Receiver::with(|r| {
        let line = serde_json::json!({ "service": r.service, "span": r.span.name, "workload": r.attribute("paved.workload") });
        println!("{line}");
    });
    receiver.serve(listener).await?;
    Ok(())
}
